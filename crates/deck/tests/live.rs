//! Live columns end to end on the real binary: a subscriber that joins
//! mid-replay sees every later match live and the history before its first
//! live post completes the column; `since` resumes exactly; a reader that
//! stops reading does not hold back another; foreign origins and reused
//! tickets are refused.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::Deck;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `n` X API v2 stream messages, one a second of event time; every third
/// mentions BTS. No entities: Deck extracts them.
fn write_stream(path: &std::path::Path, n: usize) {
    let mut file = std::fs::File::create(path).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap();
    for post_idx in 0..n {
        let created_at =
            (start + chrono::Duration::seconds(post_idx as i64)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let text = if post_idx % 3 == 0 {
            format!("BTS stage number {post_idx} was amazing #BTS 💜")
        } else {
            format!("random words about the weather {post_idx} #weather")
        };
        let author = format!("{}", 1000 + post_idx % 17);
        let message = json!({
            "data": {"id": format!("{}", 1_900_000_000_000_000_000u64 + post_idx as u64), "text": text, "author_id": author,
                     "created_at": created_at, "lang": "en"},
            "includes": {"users": [{"id": author, "username": format!("fan{author}"), "name": "A fan"}]},
            "matching_rules": [{"id": "1", "tag": "bts"}]
        });
        writeln!(file, "{message}").unwrap();
    }
}

async fn ticket(deck: &Deck) -> String {
    let response: Value =
        reqwest::Client::new().post(deck.url("/api/stream/ticket")).send().await.unwrap().json().await.unwrap();
    response["ticket"].as_str().unwrap().to_owned()
}

async fn connect(deck: &Deck, ticket: &str, origin: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("ws://127.0.0.1:{}/api/stream?ticket={ticket}", deck.port).into_client_request().unwrap();
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
}

/// A client whose socket buffers almost nothing, so that not reading is
/// felt by the server at once rather than after megabytes of kernel buffers.
async fn connect_with_small_buffer(deck: &Deck, ticket: &str) -> Socket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(format!("127.0.0.1:{}", deck.port).parse().unwrap()).await.unwrap();
    let request = format!("ws://127.0.0.1:{}/api/stream?ticket={ticket}", deck.port).into_client_request().unwrap();
    let (socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.unwrap();
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(tungstenite::Message::Text(message.to_string().into())).await.unwrap();
}

/// Reads frames until `idle` passes with nothing new; returns them parsed.
async fn read_until_quiet(socket: &mut Socket, idle: Duration) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(idle, socket.next()).await {
        if let tungstenite::Message::Text(text) = message {
            frames.push(serde_json::from_str(text.as_str()).unwrap());
        }
    }
    frames
}

/// Reads frames up to and including the `pong` that answers a `ping` sent
/// last: the server answers a socket's messages in order, so everything
/// those messages caused has arrived by then (10 s at most).
async fn read_until_pong(socket: &mut Socket) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
        let Ok(Some(Ok(message))) = message else { panic!("no pong within 10 s; frames so far: {frames:?}") };
        if let tungstenite::Message::Text(text) = message {
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            let pong = frame["type"] == "pong";
            frames.push(frame);
            if pong {
                return frames;
            }
        }
    }
}

fn post_ids(frames: &[Value], column: &str) -> Vec<String> {
    frames
        .iter()
        .filter(|frame| frame["type"] == "post" && frame["column"] == column)
        .map(|frame| frame["post"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn timeline_ids(posts: &[Value]) -> Vec<String> {
    posts.iter().map(|post| post["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_column_is_history_plus_live_without_gap_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("stream.jsonl");
    let n_posts = 900;
    write_stream(&stream, n_posts);
    let deck = Deck::start(
        &dir.path().join("data"),
        &["--source", &format!("replay:{}", stream.display()), "--replay-rate", "300"],
    )
    .await;

    // Join while the replay runs.
    let started = Instant::now();
    while deck.metric("deck_records_processed_total").await < 150.0 {
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut live = connect(&deck, &ticket(&deck).await, None).await.unwrap();
    send(&mut live, json!({"type": "subscribe", "column": "bts", "q": "BTS"})).await;
    deck.wait_for_records(n_posts as f64).await;
    let frames = read_until_quiet(&mut live, Duration::from_millis(700)).await;
    assert_eq!(frames[0], json!({"type": "subscribed", "column": "bts"}));
    let live_ids = post_ids(&frames, "bts");
    assert!(!live_ids.is_empty(), "posts arrived live");

    // Live frames arrive oldest first; history before the first live post completes the column.
    let first_live = frames.iter().find(|frame| frame["type"] == "post").unwrap();
    let first_cursor = first_live["cursor"].as_str().unwrap();
    let mut history = Vec::new();
    let mut before = first_cursor.to_owned();
    loop {
        let (status, page) = deck.get_json(&format!("/api/timeline?q=BTS&limit=100&before={before}")).await;
        assert_eq!(status, 200);
        history.extend(timeline_ids(page["posts"].as_array().unwrap()));
        match page["next"].as_str() {
            Some(next) => before = next.to_owned(),
            None => break,
        }
    }
    let mut combined: Vec<String> = live_ids.iter().rev().cloned().collect();
    combined.extend(history);
    let whole = timeline_ids(&deck.whole_timeline("BTS", 100).await);
    assert_eq!(whole.len(), n_posts.div_ceil(3));
    assert_eq!(combined, whole, "history + live is exactly the column");

    // Resume since a cursor in the middle: exactly the posts after it, oldest first.
    let middle = whole[whole.len() / 2].clone();
    let middle_cursor =
        deck.whole_timeline("BTS", 100).await.iter().find(|post| post["id"] == middle.as_str()).unwrap()["cursor"]
            .as_str()
            .unwrap()
            .to_owned();
    let mut resumed = connect(&deck, &ticket(&deck).await, None).await.unwrap();
    send(&mut resumed, json!({"type": "subscribe", "column": "again", "q": "BTS", "since": middle_cursor})).await;
    let frames = read_until_quiet(&mut resumed, Duration::from_millis(700)).await;
    let resumed_ids = post_ids(&frames, "again");
    let expected: Vec<String> = whole[..whole.len() / 2].iter().rev().cloned().collect();
    assert_eq!(resumed_ids, expected);
    assert!(frames.iter().any(|frame| frame["type"] == "caught_up"));
}

#[tokio::test]
async fn a_reader_that_stops_reading_does_not_hold_back_another() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("stream.jsonl");
    let n_posts = 12_000;
    write_stream(&stream, n_posts);
    let source = format!("replay:{}", stream.display());
    let deck = Deck::start(
        &dir.path().join("data"),
        // `--live-any-query`: the stalled reader's column takes every post.
        &["--source", &source, "--replay-rate", "4000", "--stream-queue-bytes", "1048576", "--live-any-query"],
    )
    .await;
    let mut stalled = connect_with_small_buffer(&deck, &ticket(&deck).await).await;
    send(&mut stalled, json!({"type": "subscribe", "column": "all", "q": "-zzqqxx"})).await;
    let mut reader = connect(&deck, &ticket(&deck).await, None).await.unwrap();
    send(&mut reader, json!({"type": "subscribe", "column": "bts", "q": "BTS"})).await;

    // `stalled` is never read while the whole stream goes by.
    let reader_task = tokio::spawn(async move {
        let mut frames = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(1500), reader.next()).await {
                Ok(Some(Ok(tungstenite::Message::Text(text)))) => {
                    frames.push(serde_json::from_str::<Value>(text.as_str()).unwrap())
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        frames
    });
    deck.wait_for_records(n_posts as f64).await;
    let frames = reader_task.await.unwrap();
    let live = post_ids(&frames, "bts");
    let whole = timeline_ids(&deck.whole_timeline("BTS", 100).await);
    assert!(!frames.iter().any(|frame| frame["type"] == "resync"), "the reading client was not dropped");
    // Everything from its first live post on (it joined while the replay ran).
    let first_live = whole.iter().position(|id| *id == live[0]).expect("the first live post is stored");
    let expected: Vec<String> = whole[..=first_live].iter().rev().cloned().collect();
    assert!(expected.len() > n_posts / 6, "the reader joined early enough to matter");
    assert_eq!(live, expected, "the reading client got every post after it joined");

    // The server stayed bounded and told the stalled client to resync.
    let status = std::fs::read_to_string(format!("/proc/{}/status", deck.child.id())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap();
    assert!(rss_kib < 512 * 1024, "server RSS {rss_kib} KiB");
    // What the stalled client holds is within its queue budget, and /metrics says so.
    let metrics = reqwest::get(deck.admin_url("/metrics")).await.unwrap().text().await.unwrap();
    let queued: usize = metrics
        .lines()
        .find_map(|line| line.strip_prefix("deck_stream_queued_bytes "))
        .and_then(|value| value.trim().parse().ok())
        .expect("deck_stream_queued_bytes in /metrics");
    assert!(queued <= 2 * 1_048_576, "{queued} bytes queued for two connections of 1 MiB each");
    let stalled_frames = read_until_quiet(&mut stalled, Duration::from_millis(1000)).await;
    assert!(
        stalled_frames.iter().any(|frame| frame == &json!({"type": "resync", "column": "all"})),
        "the stalled column was dropped with a resync"
    );
    assert!(post_ids(&stalled_frames, "all").len() < n_posts, "its backlog was bounded");
}

#[tokio::test]
async fn foreign_origins_and_reused_tickets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("stream.jsonl");
    write_stream(&stream, 30);
    let deck = Deck::start(&dir.path().join("data"), &["--source", &format!("replay:{}", stream.display())]).await;
    deck.wait_for_records(30.0).await;

    let refused = connect(&deck, &ticket(&deck).await, Some("http://evil.example")).await;
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("a foreign origin was not refused: {:?}", other.map(|_| ())),
    }
    let own_origin = format!("http://127.0.0.1:{}", deck.port);
    let once = ticket(&deck).await;
    let mut socket = connect(&deck, &once, Some(&own_origin)).await.expect("own origin is allowed");
    match connect(&deck, &once, None).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a used ticket worked again: {:?}", other.map(|_| ())),
    }

    // A bad message gets an error frame; the socket stays usable.
    socket.send(tungstenite::Message::Text("{not json".into())).await.unwrap();
    send(&mut socket, json!({"type": "subscribe", "column": "x", "q": "\"unclosed"})).await;
    send(&mut socket, json!({"type": "launch_rockets"})).await;
    // A live query that could match every post (no positive term) is refused.
    send(&mut socket, json!({"type": "subscribe", "column": "all", "q": "-x1 -x2 OR -filter:retweets"})).await;
    // Query bombs: 100 KB, deep nesting, thousands of ORs.
    send(&mut socket, json!({"type": "subscribe", "column": "big", "q": "bts ".repeat(25_000)})).await;
    send(
        &mut socket,
        json!({"type": "subscribe", "column": "deep", "q": format!("{}bts{}", "(".repeat(500), ")".repeat(500))}),
    )
    .await;
    send(&mut socket, json!({"type": "subscribe", "column": "ors", "q": vec!["a"; 900].join(" OR ")})).await;
    send(&mut socket, json!({"type": "ping"})).await;
    let frames = read_until_pong(&mut socket).await;
    let codes: Vec<&str> = frames.iter().filter_map(|frame| frame["code"].as_str()).collect();
    assert_eq!(
        codes,
        ["bad_json", "bad_query", "bad_message", "needs_positive_term", "bad_query", "bad_query", "bad_query"]
    );
    assert_eq!(frames.iter().find(|frame| frame["code"] == "bad_query").unwrap()["position"], 0);
    assert_eq!(frames.last().unwrap(), &json!({"type": "pong"}));

    // After all that, the same socket serves a good column: its catch-up since
    // the oldest BTS post, then caught_up.
    let whole = deck.whole_timeline("BTS", 100).await;
    let oldest = whole.last().unwrap()["cursor"].as_str().unwrap().to_owned();
    send(&mut socket, json!({"type": "subscribe", "column": "good", "q": "BTS", "since": oldest})).await;
    let frames = read_until_quiet(&mut socket, Duration::from_millis(700)).await;
    let expected: Vec<String> = timeline_ids(&whole[..whole.len() - 1]).into_iter().rev().collect();
    assert_eq!(expected.len(), 9);
    assert_eq!(post_ids(&frames, "good"), expected);
    assert!(frames.iter().any(|frame| frame == &json!({"type": "caught_up", "column": "good"})), "{frames:?}");
}

/// A `since` older than the retention horizon cannot be caught up from: the
/// column gets `resync` at once, and a `since` inside the horizon catches up.
#[tokio::test]
async fn a_since_older_than_the_retention_horizon_gets_resync_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("stream.jsonl");
    // 900 posts one second apart: 15 minutes of event time, 10 of them kept.
    write_stream(&stream, 900);
    let deck = Deck::start(
        &dir.path().join("data"),
        &["--source", &format!("replay:{}", stream.display()), "--retention", "10m"],
    )
    .await;
    deck.wait_for_records(900.0).await;
    let whole = deck.whole_timeline("BTS", 100).await;
    assert!(!whole.is_empty() && whole.len() < 300, "reads stop at the horizon: {} posts", whole.len());

    let mut socket = connect(&deck, &ticket(&deck).await, None).await.unwrap();
    // The first post's time: 2026-11-01T00:00:00Z, 15 minutes before the newest.
    let first_ms = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().timestamp_millis();
    let too_old = model::Cursor::new(first_ms, "1900000000000000000").encode();
    send(&mut socket, json!({"type": "subscribe", "column": "old", "q": "BTS", "since": too_old})).await;
    let inside = whole[1]["cursor"].as_str().unwrap().to_owned();
    send(&mut socket, json!({"type": "subscribe", "column": "recent", "q": "BTS", "since": inside})).await;
    let frames = read_until_quiet(&mut socket, Duration::from_millis(700)).await;
    assert!(post_ids(&frames, "old").is_empty(), "nothing caught up from before the horizon");
    assert!(frames.iter().any(|frame| frame["type"] == "resync" && frame["column"] == "old"), "{frames:?}");
    assert_eq!(post_ids(&frames, "recent"), [whole[0]["id"].as_str().unwrap()]);
    assert!(!frames.iter().any(|frame| frame["type"] == "resync" && frame["column"] == "recent"));
}

/// Query bombs over HTTP: 400 with the position (a URL over 64 KiB cannot
/// even be built by the `http` crate, and hyper answers it 414: docs/limits.md).
#[tokio::test]
async fn query_bombs_over_http_get_400_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let deck = Deck::start(&dir.path().join("data"), &["--source", "none"]).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/api/timeline", deck.port);
    for q in ["bts ".repeat(10_000), format!("{}bts{}", "(".repeat(500), ")".repeat(500)), vec!["-a"; 900].join(" ")] {
        let answer = client.get(&url).query(&[("q", q.as_str())]).send().await.unwrap();
        assert_eq!(answer.status(), 400, "{}", &q[..20]);
        let body: Value = answer.json().await.unwrap();
        assert!(body["position"].is_u64(), "{body}");
    }
}

/// A `since` catch-up pays for the store work it took in the client's
/// message bucket, as a timeline read does in its own (`docs/security.md`):
/// after a costly catch-up the client has fewer messages left.
#[tokio::test]
async fn a_costly_catch_up_is_charged_to_the_clients_message_bucket() {
    /// Pings answered before the first `rate_limited`, after one subscribe
    /// that catches up from the oldest post with a query that walks 2,000
    /// postings and tests each post against a negation, matching none.
    async fn pongs_after_costly_catch_up(work_per_token: &str) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let stream = dir.path().join("stream.jsonl");
        write_stream(&stream, 3000);
        let source = format!("replay:{}", stream.display());
        let args = [
            "--source",
            source.as_str(),
            "--stream-message-burst",
            "10",
            "--stream-messages-per-second",
            "0.01",
            "--timeline-work-per-token",
            work_per_token,
        ];
        let deck = Deck::start(&dir.path().join("data"), &args).await;
        deck.wait_for_records(3000.0).await;
        // The oldest post (number 0 mentions BTS): every weather post is after it.
        let client = reqwest::Client::new();
        let mut before = String::new();
        let mut oldest = String::new();
        loop {
            let url = deck.url(&format!("/api/timeline?q=%23BTS&limit=100&before={before}"));
            let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            if let Some(last) = page["posts"].as_array().and_then(|posts| posts.last()) {
                oldest = last["cursor"].as_str().unwrap().to_owned();
            }
            match page["next"].as_str() {
                Some(next) => before = next.to_owned(),
                None => break,
            }
        }
        assert!(!oldest.is_empty());

        let mut socket = connect(&deck, &ticket(&deck).await, None).await.unwrap();
        send(&mut socket, json!({"type": "subscribe", "column": "w", "q": "weather -random", "since": oldest})).await;
        for _ in 0..10 {
            send(&mut socket, json!({"type": "ping"})).await;
        }
        let (mut pongs, mut refused, mut caught_up) = (0, 0, false);
        while pongs + refused < 10 {
            let message = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
            let Ok(Some(Ok(tungstenite::Message::Text(text)))) = message else {
                panic!("no answer within 10 s: {pongs} pongs, {refused} refused")
            };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            match (frame["type"].as_str(), frame["code"].as_str()) {
                (Some("pong"), _) => pongs += 1,
                (Some("error"), Some("rate_limited")) => refused += 1,
                (Some("caught_up"), _) => caught_up = true,
                (Some("subscribed"), _) => {}
                _ => panic!("unexpected frame {frame}"),
            }
        }
        assert!(caught_up, "the catch-up ended before the pings were answered");
        pongs
    }

    // The subscribe took one of the 10 tokens: 9 pings get through without the charge.
    assert_eq!(pongs_after_costly_catch_up("0").await, 9);
    let charged = pongs_after_costly_catch_up("1000").await;
    assert!(charged < 9, "the catch-up's work was charged: {charged} pongs");
}
