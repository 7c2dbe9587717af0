//! The demo and replay sources, run as the pipeline runs them: into a
//! bounded channel, until they end or are shut down.

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{bundles, read};
use ingest::{MAX_LINE_BYTES, ParseError, Parser, SourceError, SourceOptions, from_spec};
use model::{Kind, RawRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Runs a source until it ends or `n_wanted` records came, then shuts it down.
async fn collect(spec: &str, options: &SourceOptions, n_wanted: usize) -> Vec<RawRecord> {
    let source = from_spec(spec, options).unwrap();
    let (records_tx, mut records_rx) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(None, records_tx, shutdown.clone()));
    let mut records = Vec::new();
    while records.len() < n_wanted {
        match records_rx.recv().await {
            Some(record) => records.push(record),
            None => break,
        }
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    records
}

#[test]
fn specs_name_the_sources() {
    let options = SourceOptions::default();
    assert_eq!(from_spec("demo", &options).unwrap().name(), "demo");
    assert_eq!(from_spec("replay:/tmp/x.jsonl", &options).unwrap().name(), "replay:/tmp/x.jsonl");
    // Refused: a replay without a path, X without a token, an unknown kind.
    for spec in ["replay:", "x", "kafka"] {
        let error = from_spec(spec, &options).err().unwrap();
        assert!(matches!(error, SourceError::Spec { .. }), "{spec}");
    }
    for spec in ["jetstream", "jetstream:wss://example", "mastodon:https://example"] {
        assert_eq!(from_spec(spec, &options).unwrap().name(), spec);
    }
}

#[tokio::test]
async fn replay_skips_keep_alives_and_hands_on_unreadable_lines() {
    let kpop = read("tweets/v2/twarc-csv-kpop.jsonl");
    let stream = read("tweets/v2/twarc-csv-streaming_output_with_error.jsonl");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let stream_lines: Vec<&str> = stream.lines().collect();
    write!(file, "{}\n\n   \r\n{}\n", kpop.trim_end(), stream_lines[0]).unwrap();
    file.write_all(b"{\"text\": \"\xff\xfe broken\"}\n").unwrap();
    file.write_all(&vec![b'x'; MAX_LINE_BYTES + 10]).unwrap();
    file.write_all(b"\n\n").unwrap();
    // The last line has no newline and is cut: a real malformed record.
    write!(file, "{}", stream_lines[7]).unwrap();
    file.flush().unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let records = collect(&format!("replay:{path}"), &SourceOptions::default(), usize::MAX).await;
    let positions: Vec<u64> = records.iter().map(|record| record.origin.position).collect();
    assert_eq!(positions, [1, 4, 5, 6, 8]);
    assert!(records.iter().all(|record| record.origin.source == format!("replay:{path}")));
    assert!(records.iter().all(|record| record.origin.checkpoint.is_none()));
    // Keys: the post id where it can be seen, else the file and line.
    assert_eq!(records[1].key, "1377650090978992134");
    let page: serde_json::Value = serde_json::from_str(&kpop).unwrap();
    assert_eq!(records[0].key, page["data"][0]["id"].as_str().unwrap());
    assert_eq!(records[3].key, format!("{path}:6"));
    let mut parser = Parser::new();
    let results: Vec<_> = records.iter().map(|record| parser.parse(record)).collect();
    assert_eq!(bundles(results[0].as_ref().unwrap()).len(), 100);
    assert_eq!(bundles(results[1].as_ref().unwrap()).len(), 1);
    assert!(matches!(&results[2], Err(ParseError::Unreadable(why)) if why.contains("UTF-8")));
    assert!(
        matches!(&results[3], Err(ParseError::Unreadable(why)) if why.contains(&format!("{} bytes", MAX_LINE_BYTES + 10)))
    );
    assert!(matches!(&results[4], Err(ParseError::Json(_))));
    assert!(records[3].payload.len() < 200, "the oversized line is not handed on");
}

#[tokio::test(start_paused = true)]
async fn replay_paces_lines_per_second() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for line_idx in 0..21 {
        writeln!(file, r#"{{"delete":{{"status":{{"id_str":"{line_idx}"}}}}}}"#).unwrap();
        // Keep-alives are not paced: they are not records.
        writeln!(file).unwrap();
    }
    file.flush().unwrap();
    let options = SourceOptions { replay_rate: Some(10.0), ..SourceOptions::default() };
    let started = tokio::time::Instant::now();
    let records = collect(&format!("replay:{}", file.path().display()), &options, usize::MAX).await;
    let elapsed = started.elapsed();
    assert_eq!(records.len(), 21);
    assert_eq!(records[20].origin.position, 41);
    // 21 lines at 10/s: the first at once, the last two seconds later (paused clock).
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn demo_is_reproducible_with_a_seed() {
    let options = |demo_seed| SourceOptions { demo_rate: 500.0, demo_seed, ..SourceOptions::default() };
    let contents = |records: &[RawRecord]| {
        let mut parser = Parser::new();
        records
            .iter()
            .map(|record| {
                let events = parser.parse(record).unwrap();
                let bundle = bundles(&events)[0].clone();
                assert_eq!(record.key, bundle.post.id);
                let post = bundle.post;
                (post.kind, post.author, post.text, post.lang, post.hashtags, post.has_media)
            })
            .collect::<Vec<_>>()
    };
    let first = collect("demo", &options(42), 300).await;
    let again = collect("demo", &options(42), 300).await;
    let other = collect("demo", &options(43), 300).await;
    assert_eq!(first.len(), 300);
    assert_eq!(contents(&first), contents(&again));
    assert_ne!(contents(&first), contents(&other));
    let posts = contents(&first);
    assert!(posts.iter().any(|post| post.0 == Kind::Retweet));
    // Demo posts carry no entities; the parser extracts them from the text.
    assert!(posts.iter().filter(|post| post.0 != Kind::Retweet).all(|post| !post.4.is_empty()));
    let positions: Vec<u64> = first.iter().map(|record| record.origin.position).collect();
    assert_eq!(positions, (1..=300).collect::<Vec<u64>>());
}

#[tokio::test(start_paused = true)]
async fn demo_retweets_bundle_their_originals() {
    let options = SourceOptions { demo_rate: 1000.0, ..SourceOptions::default() };
    let records = collect("demo", &options, 2_000).await;
    let mut parser = Parser::new();
    let mut n_retweets = 0;
    for record in &records {
        let events = parser.parse(record).unwrap();
        let bundle = bundles(&events)[0];
        if bundle.post.kind == Kind::Retweet {
            n_retweets += 1;
            let original = bundle.retweeted.as_ref().unwrap();
            assert_eq!(bundle.post.retweeted_id.as_deref(), Some(original.id.as_str()));
            assert!(original.counts.retweets >= 1);
            assert!(!original.hashtags.is_empty());
        }
    }
    assert!(n_retweets > 500, "{n_retweets}");
}
