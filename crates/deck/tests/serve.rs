//! End to end on the real binary and the embedded engines: a replay of real
//! recorded payloads with malformed lines among them answers column queries
//! with exactly the right posts, newest first, paging without gap or repeat;
//! bad queries are 400s; restarts and re-replays duplicate nothing; an
//! acknowledged post survives `kill -9`.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashSet};
use std::io::Write as _;
use std::path::Path;

use common::{Deck, testdata};
use serde_json::Value;

/// The replay file: real X v2 pages and stream lines, real Jetstream events,
/// a truncated line (from the recording itself), a line of junk and blank keep-alives.
fn write_replay(dir: &Path) -> (std::path::PathBuf, usize) {
    let mut lines: Vec<String> = Vec::new();
    for file in ["tweets/v2/twarc-csv-kpop.jsonl", "tweets/v2/twarc-csv-streaming_output_with_error.jsonl"] {
        lines.extend(std::fs::read_to_string(testdata(file)).unwrap().lines().map(str::to_owned));
    }
    lines.push("this is not JSON {".into());
    lines.push(String::new());
    lines.extend(
        std::fs::read_to_string(testdata("bluesky/jetstream-v1-production-window.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_owned),
    );
    lines.push(String::new());
    lines.extend(
        std::fs::read_to_string(testdata("tweets/v2/twarc-csv-brexit.jsonl")).unwrap().lines().map(str::to_owned),
    );
    let n_records = lines.iter().filter(|line| !line.trim().is_empty()).count();
    let path = dir.join("replay.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for line in &lines {
        writeln!(file, "{line}").unwrap();
    }
    (path, n_records)
}

/// An oracle written from the X API's documented shape, independent of
/// Deck's parser: the ids of the posts of the v2 lines that carry `tag`
/// (a retweet carries its original's hashtags; originals and quoted posts
/// delivered in `includes` are posts too).
fn x_posts_with_hashtag(path: &Path, tag: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let has_tag = |tweet: &Value| {
        tweet["entities"]["hashtags"].as_array().is_some_and(|tags| {
            tags.iter().any(|entry| entry["tag"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(tag)))
        })
    };
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else { continue };
        if message.get("did").is_some() {
            continue;
        }
        let includes: Vec<Value> = message["includes"]["tweets"].as_array().cloned().unwrap_or_default();
        let find = |id: &str| includes.iter().find(|tweet| tweet["id"] == id).cloned();
        let tweets = match &message["data"] {
            Value::Array(tweets) => tweets.clone(),
            Value::Object(_) => vec![message["data"].clone()],
            _ => continue,
        };
        for tweet in tweets {
            let mut content = tweet.clone();
            for reference in tweet["referenced_tweets"].as_array().cloned().unwrap_or_default() {
                let Some(id) = reference["id"].as_str() else { continue };
                let Some(referenced) = find(id) else { continue };
                match reference["type"].as_str() {
                    Some("retweeted") => {
                        if has_tag(&referenced) {
                            ids.insert(id.to_owned());
                        }
                        content = referenced;
                    }
                    Some("quoted") if has_tag(&referenced) => {
                        ids.insert(id.to_owned());
                    }
                    _ => {}
                }
            }
            if has_tag(&content) {
                ids.insert(tweet["id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids
}

fn ids(posts: &[Value]) -> Vec<String> {
    posts.iter().map(|post| post["id"].as_str().unwrap().to_owned()).collect()
}

fn assert_newest_first_without_repeats(posts: &[Value]) {
    let unique: HashSet<&str> = posts.iter().map(|post| post["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), posts.len(), "a post repeats");
    for pair in posts.windows(2) {
        let (newer, older) = (&pair[0]["created_at"], &pair[1]["created_at"]);
        let newer = chrono::DateTime::parse_from_rfc3339(newer.as_str().unwrap()).unwrap();
        let older = chrono::DateTime::parse_from_rfc3339(older.as_str().unwrap()).unwrap();
        assert!(newer >= older, "not newest first: {newer} before {older}");
    }
}

#[tokio::test]
async fn replay_answers_columns_exactly_and_restarts_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (replay, n_records) = write_replay(dir.path());
    let source = format!("replay:{}", replay.display());
    let data_dir = dir.path().join("data");

    let mut deck = Deck::start(&data_dir, &["--source", &source]).await;
    deck.wait_for_records(n_records as f64).await;
    assert!(deck.metric("deck_malformed_total").await >= 2.0, "the truncated line and the junk line are counted");

    for tag in ["kpop", "brexit", "잇츠라이브"] {
        let expected = x_posts_with_hashtag(&replay, tag);
        assert!(!expected.is_empty(), "the oracle finds #{tag}");
        for page_size in [7, 50] {
            let posts = deck.whole_timeline(&format!("#{tag}"), page_size).await;
            assert_newest_first_without_repeats(&posts);
            let got: BTreeSet<String> = ids(&posts).into_iter().collect();
            assert_eq!(got, expected, "#{tag} with pages of {page_size}");
        }
    }

    // Jetstream posts are there too, under their at:// ids.
    let everything = deck.whole_timeline("-zzqqxxnotaword", 100).await;
    assert_newest_first_without_repeats(&everything);
    let n_bluesky = everything.iter().filter(|post| post["source"] == "bluesky").count();
    assert!(n_bluesky >= 17, "jetstream posts stored: {n_bluesky}");

    // Bad queries: 400 with the position of the mistake.
    let (status, body) = deck.get_json("/api/timeline?q=%22unclosed").await;
    assert_eq!(status, 400);
    assert_eq!(body["position"], 0, "{body}");
    let (status, body) = deck.get_json("/api/timeline?q=BTS%20min_retweets:lots").await;
    assert_eq!(status, 400);
    assert!(body["position"].as_u64().unwrap() >= 4, "{body}");
    let (status, _) = deck.get_json("/api/timeline?q=BTS&before=garbage").await;
    assert_eq!(status, 400);

    // Restart on the same data and replay the same file again: nothing doubles.
    deck.terminate();
    let deck = Deck::start(&data_dir, &["--source", &source]).await;
    deck.wait_for_records(n_records as f64).await;
    let again = deck.whole_timeline("-zzqqxxnotaword", 100).await;
    assert_eq!(ids(&again), ids(&everything));
    let retweets_again = deck.whole_timeline("#kpop filter:retweets", 100).await;
    for retweet in &retweets_again {
        assert_eq!(retweet["kind"], "retweet");
        assert!(retweet["retweeted"]["id"].is_string(), "a retweet carries its original");
    }
}

#[tokio::test]
async fn acknowledged_posts_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (replay, n_records) = write_replay(dir.path());
    let data_dir = dir.path().join("data");
    let mut deck = Deck::start(&data_dir, &["--source", &format!("replay:{}", replay.display())]).await;
    deck.wait_for_records(n_records as f64).await;
    let before = ids(&deck.whole_timeline("-zzqqxxnotaword", 100).await);
    assert!(before.len() > 200);
    deck.kill_hard();
    drop(deck);
    let deck = Deck::start(&data_dir, &["--source", "none"]).await;
    let after = ids(&deck.whole_timeline("-zzqqxxnotaword", 100).await);
    assert_eq!(after, before);
}
