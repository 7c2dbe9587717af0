//! The same scenarios as the embedded default, on the real engines (Kafka,
//! Cassandra, Redis, MariaDB started by `scripts/cluster up`): a replay with
//! malformed lines answers columns exactly; a processor killed with `kill -9`
//! in the middle of the stream and restarted (now two of them, sharing the
//! partitions) leaves every post stored exactly once; a client of a feed
//! node that restarts resumes without a gap.
//!
//! Needs DECK_TEST_KAFKA, DECK_TEST_CASSANDRA, DECK_TEST_REDIS and
//! DECK_TEST_MYSQL (scripts/test sets them); fails without them unless
//! DECK_SKIP_ENGINES=1, which skips loudly.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Deck, Role, assert_newest_first_without_repeats, ids, write_replay, x_posts_with_hashtag};

/// The engine variables for a deployment of its own (`namespace`).
fn engines(namespace: &str) -> Option<Vec<(String, String)>> {
    let mut envs = Vec::new();
    for (test_var, var) in [
        ("DECK_TEST_KAFKA", "DECK_KAFKA"),
        ("DECK_TEST_CASSANDRA", "DECK_CASSANDRA"),
        ("DECK_TEST_REDIS", "DECK_REDIS"),
        ("DECK_TEST_MYSQL", "DECK_MYSQL"),
    ] {
        match std::env::var(test_var).ok().filter(|value| !value.is_empty()) {
            Some(value) => envs.push((var.to_owned(), value)),
            None if std::env::var("DECK_SKIP_ENGINES").as_deref() == Ok("1") => {
                eprintln!("!!!!! distributed: SKIPPED (DECK_SKIP_ENGINES=1; {test_var} is not set) !!!!!");
                return None;
            }
            None => panic!(
                "{test_var} is not set: run `eval \"$(scripts/cluster up)\"` and export DECK_TEST_* (scripts/test does), or set DECK_SKIP_ENGINES=1"
            ),
        }
    }
    envs.push(("DECK_NAMESPACE".into(), namespace.to_owned()));
    Some(envs)
}

fn namespace(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("t{test}{}", nanos % 1_000_000_000)
}

async fn wait_for_posts(deck: &Deck, query: &str, at_least: usize) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let posts = deck.whole_timeline(query, 100).await;
        if posts.len() >= at_least {
            return posts;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "only {} of {at_least} posts for {query}", posts.len());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn serve_on_the_engines_answers_columns_exactly() {
    let namespace = namespace("serve");
    let Some(envs) = engines(&namespace) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (replay, n_records) = write_replay(dir.path());
    let source = format!("replay:{}", replay.display());
    let data_dir = dir.path().join("data");
    let mut deck = Deck::start_role("serve", &data_dir, &["--source", &source], &envs).await;
    deck.wait_for_records(n_records as f64).await;
    assert!(deck.metric("deck_malformed_total").await >= 2.0);
    for tag in ["kpop", "brexit"] {
        let expected = x_posts_with_hashtag(&replay, tag);
        let posts = wait_for_posts(&deck, &format!("#{tag}"), expected.len()).await;
        assert_newest_first_without_repeats(&posts);
        let got: BTreeSet<String> = ids(&posts).into_iter().collect();
        assert_eq!(got, expected, "#{tag} on Cassandra");
    }
    let (status, trends) = deck.get_json("/api/trends?window=24h").await;
    assert_eq!(status, 200);
    assert!(!trends["hashtags"].as_array().unwrap().is_empty(), "Redis trends: {trends}");
    let (status, _) = deck.get_json("/api/trends?window=2h").await;
    assert_eq!(status, 400);

    // Restart and replay again: nothing doubles.
    let everything = deck.whole_timeline("-zzqqxxnotaword", 100).await;
    deck.terminate();
    let deck = Deck::start_role("serve", &data_dir, &["--source", &source], &envs).await;
    deck.wait_for_records(n_records as f64).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ids(&deck.whole_timeline("-zzqqxxnotaword", 100).await), ids(&everything));
}

#[tokio::test]
async fn a_processor_killed_mid_stream_leaves_every_post_stored_once() {
    let namespace = namespace("fault");
    let Some(envs) = engines(&namespace) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (replay, _) = write_replay(dir.path());
    let data_dir = dir.path().join("data");
    let expected = x_posts_with_hashtag(&replay, "brexit");

    // A feed node to look through; an ingest node replaying slowly; one processor.
    let feed = Deck::start_role("feed", &data_dir, &[], &envs).await;
    let source = format!("replay:{}", replay.display());
    let _ingest = Role::start("ingest", &data_dir, &["--source", &source, "--replay-rate", "40"], &envs);
    let mut first = Role::start("process", &data_dir, &[], &envs);
    let started = Instant::now();
    loop {
        let n_stored = feed.whole_timeline("-zzqqxxnotaword", 100).await.len();
        if n_stored > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the first processor stored nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill_hard();

    // Two processors take over and share the partitions.
    let _second = Role::start("process", &data_dir, &[], &envs);
    let _third = Role::start("process", &data_dir, &[], &envs);
    let posts = wait_for_posts(&feed, "#brexit", expected.len()).await;
    let got: Vec<String> = ids(&posts);
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "a post is stored twice");
    assert_eq!(unique, expected);

    // One front door: `deck gateway` forwards HTTP and WebSockets to the feed node.
    let upstream = feed.url("");
    let front = Deck::start_role("gateway", &data_dir, &["--upstream", &upstream], &[]).await;
    assert_eq!(ids(&front.whole_timeline("#brexit", 50).await), got);
    let ticket: serde_json::Value =
        reqwest::Client::new().post(front.url("/api/stream/ticket")).send().await.unwrap().json().await.unwrap();
    let url = format!("ws://127.0.0.1:{}/api/stream?ticket={}", front.port, ticket["ticket"].as_str().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures::{SinkExt, StreamExt};
    let subscribe = serde_json::json!({"type": "subscribe", "column": "c", "q": "#brexit", "since": posts[posts.len() / 2]["cursor"]});
    socket.send(tokio_tungstenite::tungstenite::Message::Text(subscribe.to_string().into())).await.unwrap();
    let mut caught_up = Vec::new();
    while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
        let frame: serde_json::Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        match frame["type"].as_str() {
            Some("post") => caught_up.push(frame["post"]["id"].as_str().unwrap().to_owned()),
            Some("caught_up") => break,
            _ => {}
        }
    }
    let newer: Vec<String> = got[..posts.len() / 2].iter().rev().cloned().collect();
    assert_eq!(caught_up, newer, "resume through the gateway");
}
