//! Hostile values against both stores: a 70,000-byte id, a hashtag holding
//! U+0000 and separator bytes, over-long terms. The key encoding must keep
//! every term's postings apart and every key within the engine's limits,
//! whatever the ingest boundary lets through. Also: a read that meets an
//! unreadable stored entry skips it, and a data dir from a newer format is
//! refused.
//!
//! The Cassandra half needs `DECK_TEST_CASSANDRA` (or `DECK_CASSANDRA`);
//! without it, it fails unless `DECK_SKIP_ENGINES=1`, which skips loudly.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "cassandra")]
use std::io::Write as _;
#[cfg(feature = "cassandra")]
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Utc};
use model::{Author, Kind, Post, PostBundle, PostEvent, Source};
use search::Query;
#[cfg(feature = "cassandra")]
use store::{CassandraConfig, CassandraStore};
use store::{EmbeddedStore, PostStore, Range, StoreError, WriteBatch};

fn post(id: &str, second: i64, tags: &[&str]) -> Post {
    let author = Author { id: "did:plc:a".into(), handle: "a.bsky.social".into(), name: "A".into(), avatar_url: None };
    let text = tags.iter().map(|tag| format!("#{tag}")).collect::<Vec<_>>().join(" ");
    Post {
        lang: Some("en".into()),
        hashtags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        ..Post::new(id, Source::Bluesky, author, text, Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap())
    }
}

/// Ordinary `#thattag` posts, mixed with hostile ones in one batch.
fn hostile_batch() -> (WriteBatch, Vec<String>, String) {
    let long_tag = "x".repeat(600);
    let mut events = Vec::new();
    let mut ordinary = Vec::new();
    for post_idx in 0..30 {
        let id = format!("at://did:plc:a/app.bsky.feed.post/{post_idx:04}");
        ordinary.push(id.clone());
        events.push(PostEvent::Upsert(PostBundle::single(post(&id, post_idx, &["thattag"]))));
        if post_idx % 3 == 0 {
            // A tag that starts like the ordinary one, then a U+0000 and 0x01.
            let evil = format!("evil{post_idx}");
            events.push(PostEvent::Upsert(PostBundle::single(post(&evil, post_idx, &["thattag\u{0}\u{1}zz"]))));
            let evil = format!("evil-ff{post_idx}");
            events.push(PostEvent::Upsert(PostBundle::single(post(&evil, post_idx, &["thattag\u{0}\u{FFFF}"]))));
        }
    }
    // A 70,000-byte record key (fjall's key limit is 65,535 bytes) and a
    // retweet of it: refused and never counted, the rest is stored.
    let huge_id = format!("at://did:plc:a/app.bsky.feed.post/{}", "k".repeat(70_000));
    events.push(PostEvent::Upsert(PostBundle::single(post(&huge_id, 40, &["thattag"]))));
    let mut retweet = post("rt-of-huge", 41, &[]);
    retweet.kind = Kind::Retweet;
    retweet.retweeted_id = Some(huge_id.clone());
    events.push(PostEvent::Upsert(PostBundle::single(retweet)));
    events.push(PostEvent::Delete { id: huge_id });
    // A 70,000-byte hashtag and a 600-byte one (both over the verbatim limit).
    events.push(PostEvent::Upsert(PostBundle::single(post("long-tag-70k", 42, &[&"y".repeat(70_000)]))));
    events.push(PostEvent::Upsert(PostBundle::single(post("long-tag-600", 43, &[&long_tag]))));
    ordinary.reverse();
    (WriteBatch { events, checkpoints: vec![("replay".into(), "7".into())] }, ordinary, long_tag)
}

async fn walk(store: &dyn PostStore, query: &str, page_size: usize) -> Vec<String> {
    let query = Query::parse(query).unwrap();
    let mut range = Range::default();
    let mut ids = Vec::new();
    loop {
        let page = store.timeline(&store::Reader::internal(), &query, range.clone(), page_size).await.unwrap();
        ids.extend(page.posts.iter().map(|post| post.post.id.clone()));
        match page.next {
            Some(next) => range.before = Some(next),
            None => return ids,
        }
    }
}

async fn check_hostile(store: &dyn PostStore) {
    let (batch, ordinary, long_tag) = hostile_batch();
    store.apply(batch).await.unwrap();
    assert_eq!(store.checkpoint("replay").await.unwrap().as_deref(), Some("7"));
    // Every page of the ordinary tag: every ordinary post once, nothing else.
    for page_size in [1, 7, 100] {
        assert_eq!(walk(store, "#thattag", page_size).await, ordinary, "page size {page_size}");
    }
    // The over-long tag is found exactly, by its hashed key.
    assert_eq!(walk(store, &format!("#{long_tag}"), 10).await, vec!["long-tag-600".to_owned()]);
    // The retweet of the refused post is stored; the refused one is not.
    assert_eq!(store.get(&["rt-of-huge".to_owned()]).await.unwrap().len(), 1);
    assert_eq!(walk(store, "from:a.bsky.social -#thattag", 100).await.len(), 2 + 20 + 1);
}

#[tokio::test]
async fn hostile_values_stay_in_their_own_keys_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    check_hostile(&store).await;
}

#[cfg(feature = "cassandra")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_stay_in_their_own_keys_cassandra() {
    let contact_points = std::env::var("DECK_TEST_CASSANDRA").or_else(|_| std::env::var("DECK_CASSANDRA"));
    let Ok(contact_points) = contact_points else {
        if std::env::var("DECK_SKIP_ENGINES").as_deref() == Ok("1") {
            let _ = writeln!(std::io::stderr(), "!!!!! hostile cassandra: SKIPPED (DECK_SKIP_ENGINES=1) !!!!!");
            return;
        }
        panic!("needs a real Apache Cassandra: set DECK_TEST_CASSANDRA (or DECK_SKIP_ENGINES=1 to skip loudly)");
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let config = CassandraConfig {
        keyspace: format!("deck_test_hostile_{}", nanos % 1_000_000_000_000),
        bucket_ms: 60_000,
        ..CassandraConfig::single_node(&contact_points)
    };
    let store = CassandraStore::connect_migrated(&config).await.unwrap();
    check_hostile(&store).await;
    let _ = store.driver_session().query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", config.keyspace), ()).await;
}

#[tokio::test]
async fn an_unreadable_post_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let events = (0..5)
            .map(|post_idx| PostEvent::Upsert(PostBundle::single(post(&format!("{post_idx}"), post_idx, &["bts"]))))
            .collect();
        store.apply(WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();
    }
    {
        // Damage one stored post behind the store's back, in its time segment.
        let keyspace = fjall::Config::new(dir.path()).open().unwrap();
        let names = keyspace.list_partitions();
        let segment_posts: Vec<_> = names.iter().filter(|name| name.starts_with("posts_")).collect();
        assert_eq!(segment_posts.len(), 1, "five posts a few seconds apart share a segment: {names:?}");
        let posts = keyspace.open_partition(segment_posts[0], fjall::PartitionCreateOptions::default()).unwrap();
        posts.insert("2", [0xFF, 0xFF, 0xFF]).unwrap();
        keyspace.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let before = store::UNREADABLE_TOTAL.get();
    let ids = walk(&store, "#bts", 2).await;
    assert_eq!(ids, ["4", "3", "1", "0"]);
    assert!(store::UNREADABLE_TOTAL.get() > before);
    // A bare id lookup skips it too.
    assert_eq!(store.get(&["2".into(), "3".into()]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_data_dir_from_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());
    {
        let keyspace = fjall::Config::new(dir.path()).open().unwrap();
        let meta = keyspace.open_partition("meta", fjall::PartitionCreateOptions::default()).unwrap();
        meta.insert("format", (store::embedded::FORMAT_VERSION + 1).to_be_bytes()).unwrap();
        keyspace.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    match EmbeddedStore::open(dir.path()) {
        Err(StoreError::Format(message)) => assert!(message.contains("newer"), "{message}"),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a newer format was opened"),
    }
}
