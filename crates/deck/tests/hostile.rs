//! Hostile records from the open firehose, replayed through the real binary
//! among ordinary posts: the ordinary posts' column stays whole and
//! answerable, nothing sorts after its arrival, trends stay current, the
//! refused records are counted, and the server stays healthy.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;

use chrono::{DateTime, Utc};
use common::{Deck, assert_newest_first_without_repeats, ids};
use serde_json::json;

const TAG: &str = "boundarytag";

fn jetstream_post(rkey: &str, text: &str, created_at: &str, facets: serde_json::Value) -> String {
    json!({
        "did": "did:plc:hostile", "time_us": 1_700_000_000_000_000i64, "kind": "commit",
        "commit": {"rev": "r", "operation": "create", "collection": "app.bsky.feed.post", "rkey": rkey,
            "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": created_at, "facets": facets}}
    })
    .to_string()
}

fn tag_facet(tag: &str) -> serde_json::Value {
    json!({"index": {"byteStart": 0, "byteEnd": 1}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
}

#[tokio::test]
async fn hostile_records_among_ordinary_posts_break_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let started = Utc::now();
    let mut lines = Vec::new();
    let mut ordinary = BTreeSet::new();
    let mut n_malformed = 0;
    for post_idx in 0..30u64 {
        let id = (1_900_000_000_000_000_000u64 + post_idx).to_string();
        let created_at = (started - chrono::Duration::seconds(60 - post_idx as i64)).to_rfc3339();
        lines.push(
            json!({"data": {"id": id, "text": format!("ordinary {post_idx} #{TAG}"), "author_id": "1",
                "created_at": created_at, "entities": {"hashtags": [{"tag": TAG}]}}})
            .to_string(),
        );
        ordinary.insert(id);
        match post_idx % 10 {
            0 => {
                lines.push(jetstream_post(&"k".repeat(70_000), "huge key", &created_at, json!([tag_facet(TAG)])));
                n_malformed += 1;
            }
            1 => lines.push(jetstream_post(
                &format!("future{post_idx}"),
                "from the future #future",
                "2099-01-01T00:00:00.000Z",
                json!([tag_facet("future")]),
            )),
            2 => lines.push(jetstream_post(
                &format!("nul{post_idx}"),
                "nul tag",
                &created_at,
                json!([tag_facet("hostile\u{0000}tag"), tag_facet("\u{202E}evil")]),
            )),
            3 => {
                let facets: Vec<_> = (0..5_000).map(|facet_idx| tag_facet(&format!("t{facet_idx}"))).collect();
                lines.push(jetstream_post(&format!("facets{post_idx}"), "facets", &created_at, json!(facets)));
            }
            4 => {
                lines.push(format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)));
                n_malformed += 1;
            }
            5 => {
                let id = (1_800_000_000_000_000_000u64 + post_idx).to_string();
                lines.push(
                    json!({"data": {"id": id, "text": "x".repeat(500_000), "author_id": "2", "lang": "e\u{0000}n",
                        "created_at": created_at, "public_metrics": {"like_count": u64::MAX}}})
                    .to_string(),
                );
            }
            6 => {
                // Complete but for its id, which is not an X id: refused for that
                // (if it were stored, the column below would hold it).
                lines.push(
                    json!({"data": {"id": "12ab", "text": format!("bad id #{TAG}"), "author_id": "2",
                        "created_at": created_at, "entities": {"hashtags": [{"tag": TAG}]}}})
                    .to_string(),
                );
                n_malformed += 1;
            }
            7 => {
                lines.push("\u{0000}junk\u{FFFF}".to_owned());
                n_malformed += 1;
            }
            8 => {
                // Facets whose byte ranges lie outside the text, backwards, or past any integer.
                let facets = json!([
                    {"index": {"byteStart": 4_000_000_000u64, "byteEnd": 4_000_000_010u64},
                     "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "outofrange"}]},
                    {"index": {"byteStart": 9, "byteEnd": 2},
                     "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://bts.example/"}]},
                    {"index": {"byteStart": -5, "byteEnd": 1e300},
                     "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:x"}]},
                ]);
                lines.push(jetstream_post(&format!("range{post_idx}"), "short", &created_at, facets));
            }
            9 => {
                // X entities whose indices lie outside the text, or are backwards.
                let id = (1_700_000_000_000_000_000u64 + post_idx).to_string();
                lines.push(
                    json!({"data": {"id": id, "text": "short #range", "author_id": "3", "created_at": created_at,
                        "entities": {"hashtags": [{"start": 4_000_000_000u64, "end": 2, "tag": "range"}],
                                     "urls": [{"start": 90, "end": 5, "url": "https://t.co/x",
                                               "expanded_url": "https://bts.example/"}]}}})
                    .to_string(),
                );
            }
            _ => {}
        }
    }
    let path = dir.path().join("hostile.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for line in &lines {
        writeln!(file, "{line}").unwrap();
    }
    drop(file);

    let source = format!("replay:{}", path.display());
    let deck = Deck::start(&dir.path().join("data"), &["--source", &source]).await;
    deck.wait_for_records(lines.len() as f64).await;
    assert!(deck.metric("deck_malformed_total").await >= f64::from(n_malformed));

    for page_size in [1, 7, 100] {
        let posts = deck.whole_timeline(&format!("#{TAG}"), page_size).await;
        assert_newest_first_without_repeats(&posts);
        let got: BTreeSet<String> = ids(&posts).into_iter().collect();
        assert_eq!(got, ordinary, "#{TAG} with pages of {page_size}");
    }

    // Entities and facets out of range do not cost the post: each is stored.
    assert_eq!(deck.whole_timeline("#range", 100).await.len(), 3, "the X posts with entities out of range");
    assert_eq!(deck.whole_timeline("short -#range", 100).await.len(), 3, "the Bluesky posts with facets out of range");

    // Nothing sorts after its arrival; the future post keeps its claim.
    let now = Utc::now();
    let everything = deck.whole_timeline("-zzqqxxnotaword", 100).await;
    for post in &everything {
        let created_at: DateTime<Utc> = post["created_at"].as_str().unwrap().parse().unwrap();
        assert!(created_at <= now, "{} sorts at {created_at}, after {now}", post["id"]);
        assert!(post["text"].as_str().unwrap().len() <= 100_000);
        assert!(post["hashtags"].as_array().unwrap().len() <= 100);
    }
    let future: Vec<_> =
        everything.iter().filter(|post| post["text"].as_str() == Some("from the future #future")).collect();
    assert_eq!(future.len(), 3);
    assert!(future.iter().all(|post| post["claimed_at"] == "2099-01-01T00:00:00.000Z"), "{future:?}");
    let nul_tagged = deck.whole_timeline("#hostiletag", 100).await;
    assert_eq!(nul_tagged.len(), 3, "the tag with U+0000 is stored without it");

    // The trend windows end no later than now and count the ordinary tag.
    let (status, trends) = deck.get_json("/api/trends?window=5m").await;
    assert_eq!(status, 200);
    let ends_at: DateTime<Utc> = trends["ends_at"].as_str().unwrap().parse().unwrap();
    assert!(ends_at <= Utc::now(), "trends end at {ends_at}");
    let counted = trends["hashtags"].as_array().unwrap().iter().any(|row| {
        row["tag"].as_str().is_some_and(|tag| tag.eq_ignore_ascii_case(TAG)) && row["count"].as_u64() >= Some(30)
    });
    assert!(counted, "{trends}");

    let health = reqwest::get(deck.url("/healthz")).await.unwrap();
    assert!(health.status().is_success());
}

/// One demo post of `tag` at `created` (written straight into a store, as a
/// Deck from before the normalization boundary could have).
fn stored_post(id: &str, created: DateTime<Utc>, tag: &str) -> model::PostEvent {
    let post = model::Post {
        lang: Some("en".into()),
        hashtags: vec![tag.to_owned()],
        ..model::Post::new(
            id.to_owned(),
            model::Source::Demo,
            model::Author { id: format!("a{id}"), handle: format!("h{id}"), name: String::new(), avatar_url: None },
            format!("#{tag}"),
            created,
        )
    };
    model::PostEvent::Upsert(model::PostBundle::single(post))
}

#[tokio::test]
async fn a_future_post_from_an_older_store_does_not_freeze_the_restored_trends() {
    use store::PostStore as _;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    {
        let store = store::EmbeddedStore::open(&data_dir.join("posts")).unwrap();
        let now = Utc::now();
        let future = DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let mut events = vec![stored_post("future-1", future, "fromthefuture")];
        for post_idx in 0..3 {
            events.push(stored_post(&format!("now-{post_idx}"), now - chrono::Duration::seconds(30), "happeningnow"));
        }
        store.apply(store::WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();
    }
    let deck = Deck::start(&data_dir, &["--source", "none"]).await;
    let (status, trends) = deck.get_json("/api/trends?window=5m").await;
    assert_eq!(status, 200, "{trends}");
    let ends_at = DateTime::parse_from_rfc3339(trends["ends_at"].as_str().unwrap()).unwrap();
    assert!(ends_at <= Utc::now(), "the window ends in the future: {trends}");
    let tags: Vec<&str> = trends["hashtags"].as_array().unwrap().iter().filter_map(|row| row["tag"].as_str()).collect();
    assert!(tags.contains(&"happeningnow"), "{trends}");
    assert!(!tags.contains(&"fromthefuture"), "{trends}");
}
