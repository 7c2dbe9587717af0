//! End to end on the real binary and the embedded engines: a replay of real
//! recorded payloads with malformed lines among them answers column queries
//! with exactly the right posts, newest first, paging without gap or repeat;
//! bad queries are 400s; restarts and re-replays duplicate nothing; an
//! acknowledged post survives `kill -9`.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{Deck, assert_newest_first_without_repeats, ids, write_replay, x_posts_with_hashtag};

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
    // The front door refuses a forged token and serves anonymous readers.
    let forged = reqwest::Client::new()
        .get(deck.url("/api/timeline?q=BTS"))
        .bearer_auth("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // The live 1-hour ranking is led by the tag the replay used most in its
    // last hour, and the batch job recomputes the same rankings from the store.
    let (status, live) = deck.get_json("/api/trends?window=1h").await;
    assert_eq!(status, 200);
    assert!(!live["hashtags"].as_array().unwrap().is_empty(), "{live}");
    let (status, body) = deck.get_json("/api/trends?window=7d").await;
    assert_eq!(status, 400, "{body}");
    let mut live_rankings = std::collections::HashMap::new();
    for window in ["5m", "1h", "24h"] {
        live_rankings.insert(window, deck.get_json(&format!("/api/trends?window={window}")).await.1);
    }
    deck.terminate();
    let rebuilt = std::process::Command::new(env!("CARGO_BIN_EXE_deck"))
        .args(["trends", "rebuild", "--since", "24h", "--data-dir"])
        .arg(&data_dir)
        .env("RUST_LOG", "warn")
        .env("DECK_RETENTION", "36500d")
        .output()
        .unwrap();
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    let rebuilt: serde_json::Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    for window in ["5m", "1h", "24h"] {
        let live = &live_rankings[window];
        let live_tags: Vec<(String, u64)> = live["hashtags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (row["tag"].as_str().unwrap().to_owned(), row["count"].as_u64().unwrap()))
            .collect();
        let rebuilt_tags: Vec<(String, u64)> = rebuilt[window]["hashtags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (row["tag"].as_str().unwrap().to_owned(), row["count"].as_u64().unwrap()))
            .collect();
        assert_eq!(live_tags, rebuilt_tags, "window {window}");
        let live_top: Vec<&str> =
            live["top_retweeted"].as_array().unwrap().iter().map(|row| row["post"]["id"].as_str().unwrap()).collect();
        let rebuilt_top: Vec<&str> = rebuilt[window]["top_retweeted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["post"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(live_top, rebuilt_top, "window {window}");
    }

    // Restart on the same data and replay the same file again: nothing doubles.
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
