//! Retention (`--retention`): posts behind the horizon leave the embedded
//! store with their postings and retweet rows, reads end at the horizon
//! (`next: null`), and the store says where the horizon is (a `since`
//! older than it gets `resync`).

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use model::{Author, Kind, Post, PostBundle, PostEvent, Source};
use search::Query;
use store::{EmbeddedStore, PostStore, Range, WriteBatch};

fn post(id: &str, age: Duration, tags: &[&str]) -> Post {
    let author = Author { id: "1".into(), handle: "alice".into(), name: "Alice".into(), avatar_url: None };
    let text = format!("hello {}", tags.iter().map(|tag| format!("#{tag}")).collect::<Vec<_>>().join(" "));
    Post {
        lang: Some("en".into()),
        hashtags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        ..Post::new(id, Source::Demo, author, text, Utc::now() - chrono::Duration::from_std(age).unwrap())
    }
}

#[tokio::test]
async fn old_posts_leave_with_their_postings_and_reads_end_at_the_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Duration::from_secs(3_600);
    {
        let store = EmbeddedStore::open(dir.path()).unwrap().with_retention(retention);
        let mut events = Vec::new();
        for post_idx in 0..50 {
            let old = post(&format!("old{post_idx:03}"), Duration::from_secs(7_200 + post_idx), &["bts", "old"]);
            events.push(PostEvent::Upsert(PostBundle::single(old)));
        }
        // A retweet of an old post, itself old: its retweet row goes too.
        let mut retweet = post("old-rt", Duration::from_secs(7_000), &[]);
        retweet.kind = Kind::Retweet;
        retweet.retweeted_id = Some("old000".into());
        events.push(PostEvent::Upsert(PostBundle::single(retweet)));
        for post_idx in 0..5 {
            let new = post(&format!("new{post_idx}"), Duration::from_secs(60 + post_idx), &["bts"]);
            events.push(PostEvent::Upsert(PostBundle::single(new)));
        }
        store.apply(WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();

        // Before any sweep, reads already end at the horizon.
        let query = Query::parse("#bts").unwrap();
        let page = store.timeline(&store::Reader::internal(), &query, Range::default(), 100).await.unwrap();
        assert_eq!(page.posts.len(), 5);
        assert!(page.next.is_none());
        let horizon_ms = store.horizon_ms().unwrap();
        // Counted from the newest post (a minute old), not from now.
        assert!((Utc::now().timestamp_millis() - horizon_ms - 3_660_000).abs() < 30_000);

        // The old posts arrived behind the horizon: all in the limbo segment,
        // dropped whole (fjall's estimate counts rows, with the original's
        // rewrite when its retweet was counted).
        let expired = store.expire_now().await.unwrap();
        assert!((51..=52).contains(&expired), "{expired} rows left");
        assert!(store.get(&["old000".into(), "old-rt".into()]).await.unwrap().is_empty());
        assert_eq!(store.get(&["new0".into()]).await.unwrap().len(), 1);
        assert_eq!(store.expire_now().await.unwrap(), 0, "a second sweep finds nothing");
        drop_retired(&store).await;
        store.compact().await.unwrap();
    }
    // Behind the store's back: only the new posts' rows are left, in one
    // segment (a quarter of the hour wide).
    let keyspace = fjall::Config::new(dir.path()).open().unwrap();
    let names = keyspace.list_partitions();
    let named = |kind: &str| -> Vec<fjall::PartitionHandle> {
        names
            .iter()
            .filter(|name| name.starts_with(&format!("{kind}_")))
            .map(|name| keyspace.open_partition(name, fjall::PartitionCreateOptions::default()).unwrap())
            .collect()
    };
    assert_eq!(named("posts").len(), 1, "{names:?}");
    assert_eq!(named("posts")[0].len().unwrap(), 5);
    assert_eq!(named("retweets")[0].len().unwrap(), 0);
    let postings = &named("postings")[0];
    let n_postings = postings.len().unwrap();
    // Each new post: `*`, its word, tag, language, author, kind terms.
    assert!(n_postings > 0 && n_postings <= 5 * 12, "{n_postings} postings left");
    for item in postings.iter() {
        let (key, _) = item.unwrap();
        assert!(!String::from_utf8_lossy(&key).contains("old"), "an old posting is left");
    }
}

/// A fresh retweet that carries an original from behind the horizon (a
/// retweet cascade outliving the retention): the original is kept for the
/// retweet's display until the next sweep, but it is not a new post for the
/// live columns, since no history read will ever show it. Before, it was
/// listed as inserted and fanned out to its author's columns as a "new"
/// post 12 minutes old (the soak's one 723-second p99 sample).
#[tokio::test]
async fn an_original_from_behind_the_horizon_is_not_a_new_post() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap().with_retention(Duration::from_secs(3_600));
    let fresh = post("fresh", Duration::from_secs(10), &["bts"]);
    store
        .apply(WriteBatch { events: vec![PostEvent::Upsert(PostBundle::single(fresh))], checkpoints: Vec::new() })
        .await
        .unwrap();

    let original = post("original", Duration::from_secs(7_200), &["bts"]);
    let mut retweet = post("retweet", Duration::from_secs(5), &[]);
    retweet.kind = Kind::Retweet;
    retweet.retweeted_id = Some("original".into());
    let bundle = PostBundle { post: retweet, retweeted: Some(Box::new(original)), quoted: None };
    let applied =
        store.apply(WriteBatch { events: vec![PostEvent::Upsert(bundle)], checkpoints: Vec::new() }).await.unwrap();
    let inserted: Vec<&str> = applied.inserted.iter().map(|stored| stored.post.id.as_str()).collect();
    assert_eq!(inserted, ["retweet"]);
    assert_eq!(applied.stored_behind_horizon, 1, "stored all the same (deck_posts_stored_total counts it)");
    // The retweet shows its original until the sweep.
    let shown = store.get(&["retweet".into()]).await.unwrap();
    assert_eq!(shown[0].retweeted.as_ref().map(|original| original.id.as_str()), Some("original"));
}

/// Posts spread over many segments: a walk in small pages crosses every
/// segment boundary in cursor order, a conjunction checks its terms in the
/// right segment, and moving the horizon drops whole segments, whose files
/// leave the disk.
#[tokio::test]
async fn reads_cross_segments_in_order_and_dropped_segments_leave_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    // Segments of 15 minutes.
    let store = EmbeddedStore::open(dir.path()).unwrap().with_retention(Duration::from_secs(3_600));
    // 2,400 posts between 3 h and 2 h ago (one every 1.5 s), every third one
    // also tagged #kpop; the newest of them sets the horizon at 3 h ago.
    let n_posts: u64 = 2_400;
    // Words that do not compress away, so that the segments have a size on disk.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut words = move |n_words: usize| -> String {
        (0..n_words)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                format!(" w{:x}", seed % 1_000_000_007)
            })
            .collect()
    };
    for chunk in (0..n_posts).collect::<Vec<_>>().chunks(400) {
        let events = chunk
            .iter()
            .map(|post_idx| {
                let age = Duration::from_millis(3 * 3_600_000 - post_idx * 1_500);
                let tags: &[&str] = if post_idx % 3 == 0 { &["bts", "kpop"] } else { &["bts"] };
                let mut post = post(&format!("p{post_idx:05}"), age, tags);
                post.text.push_str(&words(40));
                PostEvent::Upsert(PostBundle::single(post))
            })
            .collect();
        store.apply(WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();
    }
    assert!(store.segment_count() >= 4, "{} segments", store.segment_count());

    for (query, expected) in [("#bts", n_posts), ("#bts #kpop", n_posts.div_ceil(3))] {
        let query = Query::parse(query).unwrap();
        let mut range = Range::default();
        let mut ids = Vec::new();
        loop {
            let page = store.timeline(&store::Reader::internal(), &query, range.clone(), 97).await.unwrap();
            ids.extend(page.posts.iter().map(|post| post.post.id.clone()));
            match page.next {
                Some(next) => range.before = Some(next),
                None => break,
            }
        }
        let mut newest_first = ids.clone();
        newest_first.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(ids, newest_first, "{query:?}: not in cursor order");
        assert_eq!(ids.len() as u64, expected, "{query:?}");
    }

    store.compact().await.unwrap();
    let partitions_dir = dir.path().join("partitions");
    let before = dir_size(&partitions_dir);
    assert!(before > 1_000_000, "{before} bytes on disk before the drop");
    // A new post moves the horizon to an hour ago: every old segment is behind it.
    let fresh = post("fresh", Duration::from_secs(1), &["bts"]);
    store
        .apply(WriteBatch { events: vec![PostEvent::Upsert(PostBundle::single(fresh))], checkpoints: Vec::new() })
        .await
        .unwrap();
    let expired = store.expire_now().await.unwrap();
    assert!(expired >= n_posts as usize, "{expired} rows left");
    assert_eq!(store.segment_count(), 1);
    // Out of every read at once; the files go a few sweeps later.
    let page =
        store.timeline(&store::Reader::internal(), &Query::parse("#bts").unwrap(), Range::default(), 10).await.unwrap();
    assert_eq!(page.posts.len(), 1);
    drop_retired(&store).await;
    let after = dir_size(&partitions_dir);
    assert!(after * 10 < before, "the partitions hold {after} bytes after the drop, {before} before");
    let page =
        store.timeline(&store::Reader::internal(), &Query::parse("#bts").unwrap(), Range::default(), 10).await.unwrap();
    assert_eq!(page.posts.iter().map(|post| post.post.id.as_str()).collect::<Vec<_>>(), ["fresh"]);
    assert!(page.next.is_none());
}

/// Sweeps until every retired segment's partitions are deleted (they wait
/// for fjall's flushes of them first), within 30 s.
async fn drop_retired(store: &EmbeddedStore) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.segments_awaiting_drop() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} segments still await their drop",
            store.segments_awaiting_drop()
        );
        store.expire_now().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let metadata = entry.metadata().unwrap();
        total += if metadata.is_dir() { dir_size(&entry.path()) } else { metadata.len() };
    }
    total
}
