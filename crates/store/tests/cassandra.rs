//! The Cassandra store on a real Apache Cassandra (`scripts/cluster up
//! cassandra`): the same behaviours as the embedded store, which serves as
//! the oracle — timelines agree query by query and page by page, re-delivery
//! changes nothing, deletes stay deleted, checkpoints persist.
//!
//! Needs `DECK_TEST_CASSANDRA` (or `DECK_CASSANDRA`) = contact points; fails
//! without it unless `DECK_SKIP_ENGINES=1`, which skips loudly. Every test
//! works in a keyspace of its own.

// Tests may unwrap: a failure is the report.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Utc};
use model::{Author, Kind, Post, PostBundle, PostEvent, ReplyTo, Source};
use search::Query;
use store::{CassandraConfig, CassandraStore, EmbeddedStore, PostStore, Range, WriteBatch};

mod common;

use common::{HANDLES, LANGS, QUERIES, TAGS, WORDS};

/// Posts spread over this many seconds, with 60 s buckets: reads cross buckets.
const SPAN_SECONDS: u64 = 900;

/// Connects to a fresh keyspace, or `None` when engines are skipped.
async fn fresh_store(test_name: &str) -> Option<(CassandraStore, CassandraConfig)> {
    fresh_store_with(test_name, None).await
}

/// [`fresh_store`] with a retention (`--retention`, in seconds).
async fn fresh_store_with(test_name: &str, retention_secs: Option<u64>) -> Option<(CassandraStore, CassandraConfig)> {
    let contact_points = std::env::var("DECK_TEST_CASSANDRA").or_else(|_| std::env::var("DECK_CASSANDRA"));
    let Ok(contact_points) = contact_points else {
        if std::env::var("DECK_SKIP_ENGINES").as_deref() == Ok("1") {
            // Straight to stderr, past the test harness's capture: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "!!!!! {test_name}: SKIPPED (DECK_SKIP_ENGINES=1): no Cassandra to test against !!!!!"
            );
            return None;
        }
        panic!(
            "{test_name} needs a real Apache Cassandra: run `eval \"$(scripts/cluster up cassandra)\"` \
             (sets DECK_CASSANDRA) or set DECK_TEST_CASSANDRA; DECK_SKIP_ENGINES=1 skips (loudly)"
        );
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let config = CassandraConfig {
        keyspace: format!("deck_test_{test_name}_{}", nanos % 1_000_000_000_000),
        bucket_ms: 60_000,
        retention_secs,
        ..CassandraConfig::single_node(&contact_points)
    };
    let session = CassandraStore::session(&config).await.unwrap();
    CassandraStore::migrate(&session, &config).await.unwrap();
    // Migrating twice is harmless (start-up may always migrate).
    CassandraStore::migrate(&session, &config).await.unwrap();
    let store = CassandraStore::open(std::sync::Arc::new(session), &config).await.unwrap();
    Some((store, config))
}

async fn drop_keyspace(store: &CassandraStore, config: &CassandraConfig) {
    let _ = store.driver_session().query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", config.keyspace), ()).await;
}

/// A small deterministic generator (no dependency needed for fixed data).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

fn post(id: usize, second: u64, author: usize) -> Post {
    let handle = HANDLES[author];
    Post::new(
        format!("{}", 1000 + id),
        Source::Demo,
        Author { id: handle.into(), handle: handle.into(), name: handle.to_uppercase(), avatar_url: None },
        String::new(),
        Utc.timestamp_opt(1_700_000_000 + second as i64, 0).unwrap(),
    )
}

/// Random-looking but fixed posts: words, tags, mentions, replies and
/// retweets (bundled with their original), several sharing a second.
fn bundles(n_posts: usize, seed: u64) -> Vec<PostBundle> {
    let mut random = Lcg(seed);
    let mut bundles: Vec<PostBundle> = Vec::new();
    for post_idx in 0..n_posts {
        let mut post = post(post_idx, random.next(SPAN_SECONDS), random.next(HANDLES.len() as u64) as usize);
        let mut text: Vec<String> =
            (0..random.next(5)).map(|_| WORDS[random.next(WORDS.len() as u64) as usize].to_owned()).collect();
        post.hashtags = (0..random.next(3)).map(|_| TAGS[random.next(TAGS.len() as u64) as usize].to_owned()).collect();
        text.extend(post.hashtags.iter().map(|tag| format!("#{tag}")));
        if random.next(3) == 0 {
            let mention = HANDLES[random.next(HANDLES.len() as u64) as usize];
            post.mentions.push(mention.to_owned());
            text.push(format!("@{mention}"));
        }
        post.text = text.join(" ");
        post.lang = Some(LANGS[random.next(LANGS.len() as u64) as usize].into());
        post.has_media = random.next(2) == 0;
        post.counts.retweets = random.next(6);
        if random.next(5) == 0 {
            post.kind = Kind::Reply;
            let handle = HANDLES[random.next(HANDLES.len() as u64) as usize];
            post.reply_to = Some(ReplyTo { post_id: None, author_id: None, handle: Some(handle.into()) });
        }
        let mut bundle = PostBundle::single(post);
        if post_idx > 0 && random.next(10) < 3 {
            let original_idx = random.next(post_idx as u64) as usize;
            if bundles[original_idx].post.kind != Kind::Retweet {
                let original = bundles[original_idx].post.clone();
                bundle.post.kind = Kind::Retweet;
                bundle.post.text = format!("RT @{}: {}", original.author.handle, original.text);
                bundle.post.retweeted_id = Some(original.id.clone());
                bundle.post.hashtags = original.hashtags.clone();
                bundle.post.mentions = original.mentions.clone();
                bundle.post.reply_to = None;
                bundle.retweeted = Some(Box::new(original));
            }
        }
        bundles.push(bundle);
    }
    bundles
}

fn upserts(bundles: &[PostBundle]) -> WriteBatch {
    WriteBatch { events: bundles.iter().cloned().map(PostEvent::Upsert).collect(), checkpoints: Vec::new() }
}

/// Every page of a query, walked with `next`, as ids.
async fn walk(store: &dyn PostStore, query: &Query, mut range: Range, page_size: usize) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = store.timeline(&store::Reader::internal(), query, range.clone(), page_size).await.unwrap();
        assert!(page.posts.len() <= page_size);
        let cursors: Vec<_> = page.posts.iter().map(|post| post.post.cursor()).collect();
        assert!(cursors.windows(2).all(|pair| pair[0] > pair[1]), "a page is newest first");
        ids.extend(page.posts.iter().map(|post| post.post.id.clone()));
        match page.next {
            Some(next) => range.before = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelines_agree_with_the_embedded_store() {
    let Some((cassandra, config)) = fresh_store("agree").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(dir.path()).unwrap();
    let bundles = bundles(160, 7);
    // Two batches, then everything again (at-least-once): nothing may double.
    for chunk in bundles.chunks(80) {
        let from_cassandra = cassandra.apply(upserts(chunk)).await.unwrap();
        let from_embedded = embedded.apply(upserts(chunk)).await.unwrap();
        let mut cassandra_ids: Vec<_> = from_cassandra.inserted.iter().map(|post| post.post.id.clone()).collect();
        let mut embedded_ids: Vec<_> = from_embedded.inserted.iter().map(|post| post.post.id.clone()).collect();
        cassandra_ids.sort();
        embedded_ids.sort();
        assert_eq!(cassandra_ids, embedded_ids, "the same posts are new");
    }
    let again = cassandra.apply(upserts(&bundles)).await.unwrap();
    embedded.apply(upserts(&bundles)).await.unwrap();
    assert!(again.inserted.is_empty(), "a re-delivery inserts nothing");

    let ids: Vec<String> = bundles.iter().map(|bundle| bundle.post.id.clone()).collect();
    let mut from_cassandra = cassandra.get(&ids).await.unwrap();
    let mut from_embedded = embedded.get(&ids).await.unwrap();
    assert_eq!(cassandra.count().await.unwrap(), from_embedded.len() as u64, "every post counted once");
    from_cassandra.sort_by(|a, b| a.post.id.cmp(&b.post.id));
    from_embedded.sort_by(|a, b| a.post.id.cmp(&b.post.id));
    assert_eq!(from_cassandra, from_embedded, "posts read back alike (retweet counts included)");

    for (query_idx, text) in QUERIES.iter().enumerate() {
        let query = Query::parse(text).unwrap();
        let expected = walk(&embedded, &query, Range::default(), 1000).await;
        let page_size = 1 + query_idx % 7;
        let got = walk(&cassandra, &query, Range::default(), page_size).await;
        assert_eq!(got, expected, "query {text}, pages of {page_size}");
        // A window in the middle: strictly between two posts' cursors.
        if expected.len() >= 4 {
            let window_posts =
                embedded.get(&[expected[expected.len() - 1].clone(), expected[0].clone()]).await.unwrap();
            let range =
                Range { after: Some(window_posts[0].post.cursor()), before: Some(window_posts[1].post.cursor()) };
            let got = walk(&cassandra, &query, range.clone(), 3).await;
            assert_eq!(got, walk(&embedded, &query, range, 3).await, "query {text} within a range");
            assert_eq!(got.len(), expected.len() - 2);
        }
    }

    // The newest post and the scan for rebuilding trends.
    assert_eq!(cassandra.newest().await.unwrap(), embedded.newest().await.unwrap());
    let since_ms = 1_700_000_000_000 + 600_000;
    let expected: Vec<String> =
        embedded.scan_since(since_ms, None, usize::MAX).await.unwrap().into_iter().map(|post| post.post.id).collect();
    assert!(expected.len() > 7);
    for store in [&cassandra as &dyn PostStore, &embedded] {
        // In pages of 7, each going on after the last post of the one before.
        let mut scanned: Vec<String> = Vec::new();
        let mut after = None;
        loop {
            let page = store.scan_since(since_ms, after.as_ref(), 7).await.unwrap();
            assert!(page.len() <= 7);
            let Some(last) = page.last() else { break };
            after = Some(last.post.cursor());
            scanned.extend(page.into_iter().map(|post| post.post.id));
        }
        assert_eq!(scanned, expected, "scan_since: oldest first, from the given time, in pages");
    }
    drop_keyspace(&cassandra, &config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_edit_moves_the_post_between_queries() {
    let Some((store, config)) = fresh_store("edit").await else {
        return;
    };
    let mut first = post(1, 10, 0);
    first.text = "hello bts".into();
    store.apply(upserts(&[PostBundle::single(first.clone())])).await.unwrap();
    let mut edited = first.clone();
    edited.text = "hello army".into();
    edited.counts.likes = 5;
    let applied = store.apply(upserts(&[PostBundle::single(edited)])).await.unwrap();
    assert!(applied.inserted.is_empty());
    assert_eq!(applied.updated.len(), 1);
    let bts = Query::parse("bts").unwrap();
    let army = Query::parse("army").unwrap();
    assert!(walk(&store, &bts, Range::default(), 10).await.is_empty());
    assert_eq!(walk(&store, &army, Range::default(), 10).await, vec!["1001".to_owned()]);
    // An older snapshot of the counts does not lower them.
    let mut stale = first;
    stale.text = "hello army".into();
    stale.counts.likes = 1;
    store.apply(upserts(&[PostBundle::single(stale)])).await.unwrap();
    assert_eq!(store.get(&["1001".to_owned()]).await.unwrap()[0].post.counts.likes, 5);
    drop_keyspace(&store, &config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_leave_every_query_and_stay_deleted() {
    let Some((store, config)) = fresh_store("delete").await else {
        return;
    };
    let mut original = post(0, 0, 0);
    original.text = "bts".into();
    original.hashtags = vec!["BTS".into()];
    let mut bundles = vec![PostBundle::single(original.clone())];
    for retweet_idx in 1..10 {
        let mut retweet = post(retweet_idx, retweet_idx as u64 * 100, retweet_idx % HANDLES.len());
        retweet.kind = Kind::Retweet;
        retweet.text = "RT @alice: bts".into();
        retweet.retweeted_id = Some(original.id.clone());
        bundles.push(PostBundle { post: retweet, retweeted: Some(Box::new(original.clone())), quoted: None });
    }
    let applied = store.apply(upserts(&bundles)).await.unwrap();
    assert_eq!(applied.inserted.len(), 10);
    // Delivered again: the retweets are not counted twice.
    store.apply(upserts(&bundles)).await.unwrap();
    let stored = store.get(&["1000".to_owned()]).await.unwrap();
    assert_eq!(stored[0].post.counts.retweets, 9, "retweets seen raise the original's count");
    assert_eq!(store.count().await.unwrap(), 10);

    // A retweet deleted: off the count. Then the original: its retweets go with it.
    let applied = store
        .apply(WriteBatch { events: vec![PostEvent::Delete { id: "1009".into() }], checkpoints: Vec::new() })
        .await
        .unwrap();
    assert_eq!(applied.deleted.len(), 1);
    let applied = store
        .apply(WriteBatch { events: vec![PostEvent::Delete { id: "1000".into() }], checkpoints: Vec::new() })
        .await
        .unwrap();
    assert_eq!(applied.deleted.len(), 9);
    for text in ["bts", "#bts", "-army", "from:alice", "filter:retweets"] {
        let query = Query::parse(text).unwrap();
        assert!(walk(&store, &query, Range::default(), 100).await.is_empty(), "{text} after the delete");
    }
    assert!(store.get(&["1000".to_owned(), "1001".to_owned()]).await.unwrap().is_empty());
    assert_eq!(store.count().await.unwrap(), 0);
    assert_eq!(store.newest().await.unwrap(), None);

    // A late re-delivery of the deleted posts does not bring them back.
    let applied = store.apply(upserts(&bundles)).await.unwrap();
    assert!(applied.inserted.is_empty() && applied.updated.is_empty());
    assert!(walk(&store, &Query::parse("bts").unwrap(), Range::default(), 100).await.is_empty());

    // A delete that arrives before its post: the post never appears.
    let early = post(50, 5, 1);
    store
        .apply(WriteBatch { events: vec![PostEvent::Delete { id: early.id.clone() }], checkpoints: Vec::new() })
        .await
        .unwrap();
    let applied = store.apply(upserts(&[PostBundle::single(early)])).await.unwrap();
    assert!(applied.inserted.is_empty());
    drop_keyspace(&store, &config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_commit_with_the_posts() {
    let Some((store, config)) = fresh_store("checkpoint").await else {
        return;
    };
    assert_eq!(store.checkpoint("jetstream").await.unwrap(), None);
    let mut batch = upserts(&bundles(3, 11));
    batch.checkpoints = vec![("jetstream".into(), "1".into()), ("jetstream".into(), "1725911162329308".into())];
    store.apply(batch).await.unwrap();
    // A second process (a fresh connection) sees what the first stored.
    let reopened = CassandraStore::connect_migrated(&config).await.unwrap();
    assert_eq!(reopened.checkpoint("jetstream").await.unwrap().as_deref(), Some("1725911162329308"));
    assert_eq!(reopened.count().await.unwrap(), 3);
    assert_eq!(reopened.bucket_ms(), 60_000);
    drop_keyspace(&store, &config).await;
}

/// With a retention, every table that grows with posts has it as its default
/// TTL, the time-bucketed index tables compact by time windows (so expired
/// rows leave in whole SSTables), and a row written carries the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_puts_a_ttl_on_every_growing_table_and_time_windows_on_the_indexes() {
    let retention_secs = 7_200;
    let Some((store, config)) = fresh_store_with("ttl", Some(retention_secs)).await else {
        return;
    };
    store.apply(upserts(&bundles(20, 3))).await.unwrap();
    for table in ["posts", "tombstones", "retweets", "postings", "term_buckets"] {
        let result = store
            .driver_session()
            .query_unpaged(
                "SELECT default_time_to_live, compaction FROM system_schema.tables \
                 WHERE keyspace_name = ? AND table_name = ?",
                (config.keyspace.as_str(), table),
            )
            .await
            .unwrap();
        let (ttl, compaction) =
            result.into_rows_result().unwrap().first_row::<(i32, std::collections::HashMap<String, String>)>().unwrap();
        assert_eq!(i64::from(ttl), retention_secs as i64, "{table}");
        if matches!(table, "postings" | "term_buckets") {
            assert!(compaction["class"].ends_with("TimeWindowCompactionStrategy"), "{table}: {compaction:?}");
            // About 24 windows over the retention: 7,200 s / 60 / 24 = 5 minutes.
            assert_eq!(compaction["compaction_window_size"], "5", "{table}: {compaction:?}");
        }
    }
    let result = store
        .driver_session()
        .query_unpaged(format!("SELECT TTL(body) FROM {}.posts LIMIT 1", config.keyspace), ())
        .await
        .unwrap();
    let (row_ttl,) = result.into_rows_result().unwrap().first_row::<(Option<i32>,)>().unwrap();
    let row_ttl = row_ttl.expect("a stored post expires");
    assert!(row_ttl > 0 && i64::from(row_ttl) <= retention_secs as i64, "{row_ttl}");
    drop_keyspace(&store, &config).await;
}

/// Every picture field (issue 16) is stored and read back as written: the
/// avatar, a photo and a video, the link card, the sensitive mark and the
/// permalink, on the post and on the original a retweet carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_are_stored_and_read_back_whole() {
    let Some((store, config)) = fresh_store("pictures").await else {
        return;
    };
    let mut original = post(1, 10, 0);
    original.text = "photos #bts".into();
    let original = model::fixtures::with_every_picture_field(original);
    let mut retweet = post(2, 20, 1);
    retweet.kind = Kind::Retweet;
    retweet.retweeted_id = Some(original.id.clone());
    retweet.permalink = Some(format!("https://x.com/{}/status/{}", retweet.author.handle, retweet.id));
    let bundle = PostBundle { retweeted: Some(Box::new(original.clone())), ..PostBundle::single(retweet.clone()) };
    store.apply(upserts(&[bundle])).await.unwrap();

    let read = store.get(&[original.id.clone(), retweet.id.clone()]).await.unwrap();
    let stored_original = read.iter().find(|stored| stored.post.id == original.id).unwrap();
    assert_eq!(stored_original.post.media, original.media);
    assert_eq!(stored_original.post.card, original.card);
    assert_eq!(stored_original.post.author.avatar_url, original.author.avatar_url);
    assert!(stored_original.post.sensitive);
    assert_eq!(stored_original.post.permalink, original.permalink);
    let stored_retweet = read.iter().find(|stored| stored.post.id == retweet.id).unwrap();
    assert_eq!(stored_retweet.post.permalink, retweet.permalink);
    let carried = stored_retweet.retweeted.as_ref().expect("the retweet carries its original");
    assert_eq!(carried.media, original.media);
    assert_eq!(carried.card, original.card);
    drop_keyspace(&store, &config).await;
}
