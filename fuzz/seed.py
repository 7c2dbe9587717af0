#!/usr/bin/env python3
"""Seeds the fuzz corpora from ../shared/testdata (real third-party payloads
and the twitter-text suite) and docs/query-language.md. Run once; libFuzzer
then grows the corpora, and the grown corpora are what is committed
(minimized with `cargo +nightly fuzz cmin`). Re-running only adds seeds."""

import base64, hashlib, json, pathlib, re, struct

HERE = pathlib.Path(__file__).resolve().parent
TESTDATA = HERE.parent.parent / "shared" / "testdata"
if not TESTDATA.is_dir():
    TESTDATA = HERE.parent.parent.parent / "shared" / "testdata"
CORPUS = HERE / "corpus"
MAX_BYTES = 64 * 1024


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > MAX_BYTES:
        return
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def lines(path):
    return [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


for p in sorted((TESTDATA / "tweets" / "v2").iterdir()):
    if p.suffix == ".jsonl":
        for l in lines(p):
            put("x_v2", l)
    else:
        put("x_v2", p.read_text())
for p in sorted((TESTDATA / "tweets" / "v1.1").rglob("*")):
    if p.is_file() and p.suffix in (".json", ".jsonl"):
        text = p.read_text()
        if p.suffix == ".jsonl":
            for l in lines(p):
                put("x_v1", l)
        else:
            put("x_v1", text)
for p in sorted((TESTDATA / "bluesky").rglob("*.jsonl")):
    for l in lines(p)[:400]:
        put("jetstream", l)
for p in sorted((TESTDATA / "mastodon").rglob("*")):
    if not p.is_file():
        continue
    text = p.read_text()
    if p.suffix == ".json":
        put("mastodon", text)
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        for status in doc if isinstance(doc, list) else [doc]:
            if isinstance(status, dict) and isinstance(status.get("content"), str):
                put("mastodon_html", status["content"])
            if isinstance(status, dict) and isinstance(status.get("payload"), str):
                put("mastodon", status["payload"])
    elif p.suffix == ".sse":
        for size in (1, 7, 64, 255):
            put("sse", bytes([size]) + text.encode())
for example in re.findall(r"`([^`\n]+)`", (HERE.parent / "docs" / "query-language.md").read_text()):
    put("query", example)
for q in ["#BTS lang:ko", "방탄소년단 OR 아이유", "(a OR b) (c OR d) -e", "from:jack -filter:retweets", "@bts_bighit",
          "$HYBE", "\"exact phrase\"", "((((a))))", "-x1 -x2", "#브렉시트 filter:media"]:
    put("query", q)
for text in re.findall(r"text: \"((?:[^\"\\]|\\.)*)\"", (TESTDATA / "twitter-text" / "extract.yml").read_text()):
    put("extract", text.encode().decode("unicode_escape", errors="ignore").encode("utf-8", errors="ignore"))
for ms, ident in [(0, "1"), (1_700_000_000_000, "1456789012345678901"), (-5, ""),
                  (1_780_000_000_000, "at://did:plc:abc/app.bsky.feed.post/3k"), (1, "한글")]:
    raw = ident.encode()
    key = struct.pack(">Q", (ms & (2**64 - 1)) ^ (1 << 63)) + struct.pack(">H", len(raw)) + raw
    put("cursor", base64.urlsafe_b64encode(key).rstrip(b"="))
put("cursor", "not a cursor")
for i in range(16):
    put("post_roundtrip", hashlib.sha512(str(i).encode()).digest() * (i + 1))
for target in sorted(p.name for p in CORPUS.iterdir()):
    print(target, len(list((CORPUS / target).iterdir())))
