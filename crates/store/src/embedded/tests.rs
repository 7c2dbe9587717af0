//! Data dirs laid out by hand: the format-2 → 3 migration (one `posts`,
//! `postings` and `retweets` partition, retweet counters in `meta`,
//! tombstones without a time), and a journal left by a crash.

use chrono::{TimeZone, Utc};
use fjall::PartitionCreateOptions;
use model::{Author, Kind, Post, PostBundle, PostEvent, Source, StoredPost};
use search::{Doc, Query};

use super::*;

fn post(id: &str, second: i64, tags: &[&str]) -> Post {
    let author = Author { id: "1".into(), handle: "alice".into(), name: "Alice".into(), avatar_url: None };
    let text = tags.iter().map(|tag| format!("#{tag}")).collect::<Vec<_>>().join(" ");
    Post {
        lang: Some("en".into()),
        hashtags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        ..Post::new(id, Source::Demo, author, text, Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap())
    }
}

/// Writes `posts` as format 2 did, with one retweet pair and its counter.
fn write_format_2(dir: &Path, posts: &[Post], tombstoned: &str) {
    let keyspace = Config::new(dir).open().unwrap();
    let open = |name: &str| keyspace.open_partition(name, PartitionCreateOptions::default()).unwrap();
    let (meta, old_posts, old_postings, old_retweets, tombstones) =
        (open("meta"), open("posts"), open("postings"), open("retweets"), open("tombstones"));
    meta.insert(FORMAT_KEY, 2u32.to_be_bytes()).unwrap();
    for post in posts {
        old_posts.insert(post.id.as_bytes(), crate::codec::encode(post).unwrap()).unwrap();
        let original = post.retweeted_id.as_ref().map(|id| posts.iter().find(|post| post.id == *id).unwrap().clone());
        let stored = StoredPost { post: post.clone(), retweeted: original.map(Box::new), quoted: None };
        for term in Doc::new(&stored).terms() {
            old_postings.insert([posting_prefix(&term).as_slice(), post.cursor().as_bytes()].concat(), []).unwrap();
        }
        if let Some(original_id) = &post.retweeted_id {
            old_retweets.insert(retweet_key(original_id, &post.id), []).unwrap();
            meta.insert([LEGACY_RETWEET_COUNT_PREFIX, original_id.as_bytes()].concat(), 1u64.to_be_bytes()).unwrap();
        }
    }
    tombstones.insert(tombstoned, []).unwrap();
    keyspace.persist(PersistMode::SyncAll).unwrap();
}

#[tokio::test]
async fn a_format_2_data_dir_is_migrated_into_time_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut original = post("o", 0, &["bts"]);
    original.counts.retweets = 1;
    let mut retweet = post("rt", 10, &[]);
    retweet.kind = Kind::Retweet;
    retweet.retweeted_id = Some("o".into());
    let posts = [original, post("a", 20, &["bts", "kpop"]), retweet, post("b", 30, &["kpop"])];
    write_format_2(dir.path(), &posts, "gone");

    for _ in 0..2 {
        // Migrated at the first open; the second finds format 3.
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let page = store
            .timeline(&crate::Reader::internal(), &Query::parse("#bts").unwrap(), Range::default(), 10)
            .await
            .unwrap();
        let ids: Vec<&str> = page.posts.iter().map(|post| post.post.id.as_str()).collect();
        assert_eq!(ids, ["a", "rt", "o"], "a retweet matches its original's tags");
        let found = store.get(&["rt".into()]).await.unwrap();
        assert_eq!(found[0].retweeted.as_ref().map(|original| original.counts.retweets), Some(1));
        // The retweet was counted once: a re-delivery does not count it again.
        let mut again = posts[2].clone();
        again.counts.likes = 1;
        store
            .apply(WriteBatch { events: vec![PostEvent::Upsert(PostBundle::single(again))], checkpoints: Vec::new() })
            .await
            .unwrap();
        assert_eq!(store.get(&["o".into()]).await.unwrap()[0].post.counts.retweets, 1);
        // The tombstone is kept: the deleted post stays deleted.
        let gone = post("gone", 40, &["bts"]);
        store
            .apply(WriteBatch { events: vec![PostEvent::Upsert(PostBundle::single(gone))], checkpoints: Vec::new() })
            .await
            .unwrap();
        assert!(store.get(&["gone".into()]).await.unwrap().is_empty());
        assert_eq!(store.newest().await.unwrap().map(|cursor| cursor.id().to_owned()), Some("b".into()));
        assert_eq!(store.segment_count(), 1);
    }
    let keyspace = Config::new(dir.path()).open().unwrap();
    let names = keyspace.list_partitions();
    for legacy in ["posts", "postings", "retweets"] {
        assert!(!names.iter().any(|name| &**name == legacy), "{legacy} is left: {names:?}");
    }
    let meta = keyspace.open_partition("meta", PartitionCreateOptions::default()).unwrap();
    assert_eq!(meta.get(FORMAT_KEY).unwrap().as_deref(), Some(&FORMAT_VERSION.to_be_bytes()[..]));
    assert_eq!(meta.prefix(LEGACY_RETWEET_COUNT_PREFIX).count(), 0);
}

/// fjall-rs/fjall#257: after a crash with several journals, fjall 2.11 woke
/// its flusher once per partition and left the other recovered memtables
/// queued for good; once they filled the write buffer, every write halted.
#[tokio::test]
async fn memtables_recovered_after_a_crash_are_all_flushed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(EmbeddedStore::open(dir.path()).unwrap());
    {
        // A keyspace whose flusher never runs: each rotation leaves a sealed
        // memtable and its journal behind, as a crash in a write burst does.
        let keyspace = Config::new(dir.path()).flush_workers(0).open().unwrap();
        let meta = keyspace.open_partition("meta", PartitionCreateOptions::default()).unwrap();
        for round in 0..6u32 {
            meta.insert(format!("crash-{round}"), round.to_be_bytes()).unwrap();
            assert!(meta.rotate_memtable().unwrap());
        }
        assert_eq!(meta.tree.sealed_memtable_count(), 6);
    }

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.inner.meta.tree.sealed_memtable_count(), 0, "every recovered memtable was flushed");
    for round in 0..6u32 {
        let value = store.inner.meta.get(format!("crash-{round}")).unwrap();
        assert_eq!(value.as_deref(), Some(&round.to_be_bytes()[..]), "the recovered writes are kept");
    }
}

/// The postings a batch writes are put into fjall sorted by key, found on
/// two threads for a batch of 64 posts or more (see
/// `Pending::commit_postings`): two writes of one key in one batch must
/// still apply in the batch's order, also when they were found on
/// different threads. A post stored and deleted in the same batch leaves
/// no posting; a post whose text changes within the batch keeps only its
/// last version's postings.
#[tokio::test]
async fn sorted_posting_writes_keep_the_order_of_one_batch() {
    for fillers in [0, 2 * PARALLEL_INDEXING_MIN] {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let first = post("10", 1, &["gone"]);
        let second = post("20", 2, &["before"]);
        let edited = Post { text: "#after".into(), hashtags: vec!["after".into()], ..second.clone() };
        let others: Vec<Post> = (0..fillers).map(|n| post(&format!("{}", 100 + n), 3 + n as i64, &["other"])).collect();
        let upsert = |post: &Post| PostEvent::Upsert(PostBundle { post: post.clone(), retweeted: None, quoted: None });
        let mut events = vec![upsert(&first), upsert(&second)];
        events.extend(others.iter().map(upsert));
        events.extend([PostEvent::Delete { id: "10".into() }, upsert(&edited)]);
        store.apply(WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();

        let mut expected: Vec<Vec<u8>> = Vec::new();
        for post in others.iter().chain([&edited]) {
            let stored = StoredPost { post: post.clone(), retweeted: None, quoted: None };
            for term in Doc::new(&stored).terms() {
                expected.push([posting_prefix(&term).as_slice(), post.cursor().as_bytes()].concat());
            }
        }
        expected.sort();
        let segments: Vec<Arc<Segment>> = store.inner.segments.read().unwrap().all().cloned().collect();
        let mut postings: Vec<Vec<u8>> = Vec::new();
        for segment in &segments {
            for item in segment.postings.iter() {
                postings.push(item.unwrap().0.to_vec());
            }
        }
        postings.sort();
        assert!(expected.len() > 3 + fillers, "every post has several terms: {expected:?}");
        assert_eq!(postings, expected, "with {fillers} other posts, only the edited post's last version is indexed");
    }
}

/// A batch writes each post's body once, as it stands at the batch's end
/// (see `Pending::commit_bodies`): an original that the batch's retweets
/// count up is stored with the final count, and one that the batch then
/// deletes is not brought back by those deferred writes.
#[tokio::test]
async fn a_batch_writes_each_body_once_in_its_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let retweet_of = |id: &str, second: i64, original: &str| {
        let mut retweet = post(id, second, &[]);
        retweet.kind = Kind::Retweet;
        retweet.retweeted_id = Some(original.into());
        PostEvent::Upsert(PostBundle::single(retweet))
    };
    let mut events = vec![PostEvent::Upsert(PostBundle::single(post("kept", 0, &["bts"])))];
    events.extend((1..=3).map(|n| retweet_of(&format!("k{n}"), n, "kept")));
    events.push(PostEvent::Upsert(PostBundle::single(post("gone", 4, &["bts"]))));
    events.extend((5..=7).map(|n| retweet_of(&format!("g{n}"), n, "gone")));
    events.push(PostEvent::Delete { id: "gone".into() });
    let applied = store.apply(WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();
    assert_eq!(applied.deleted.len(), 4, "the deleted original takes its retweets: {:?}", applied.deleted);

    let found = store.get(&["kept".into(), "gone".into(), "g5".into(), "k1".into()]).await.unwrap();
    let ids: Vec<&str> = found.iter().map(|stored| stored.post.id.as_str()).collect();
    assert_eq!(ids, ["kept", "k1"], "the deleted original and its retweets stay gone");
    assert_eq!(found[0].post.counts.retweets, 3, "the original is stored with the batch's final count");
    let page =
        store.timeline(&crate::Reader::internal(), &Query::parse("#bts").unwrap(), Range::default(), 10).await.unwrap();
    let ids: Vec<&str> = page.posts.iter().map(|stored| stored.post.id.as_str()).collect();
    assert_eq!(ids, ["k3", "k2", "k1", "kept"]);
}

/// The tombstone sweep walks without the writer lock and removes a chunk at
/// a time under it (`Inner::sweep_tombstones`): every stale tombstone goes,
/// across several chunks, the fresh ones stay, and one that a delete
/// refreshed after the walk found it stale is kept.
#[tokio::test]
async fn the_tombstone_sweep_removes_stale_ones_by_chunks_and_keeps_a_refreshed_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let inner = &store.inner;
    let horizon_ms = 1_000_000i64;
    let n_stale = MAINTENANCE_CHUNK * 2 + 7;
    for idx in 0..n_stale {
        inner.tombstones.insert(format!("stale-{idx:06}"), (horizon_ms - 1).to_be_bytes()).unwrap();
    }
    for idx in 0..100 {
        inner.tombstones.insert(format!("fresh-{idx:03}"), horizon_ms.to_be_bytes()).unwrap();
    }
    inner.tombstones.insert("unreadable", [1u8, 2, 3]).unwrap();

    // The walk finds a chunk and says where to go on; a delete then
    // refreshes one of them before the chunk is removed.
    let (stale, last) = inner.stale_tombstones(None, horizon_ms, 10).unwrap();
    assert_eq!(stale.len(), 10);
    assert_eq!(last.as_deref(), Some(stale[9].as_slice()));
    inner.tombstones.insert(&stale[3], (horizon_ms + 5).to_be_bytes()).unwrap();
    assert_eq!(inner.remove_stale_tombstones(&stale, horizon_ms).unwrap(), 9);
    assert!(inner.tombstones.contains_key(&stale[3]).unwrap(), "the refreshed tombstone stays");
    assert!(!inner.tombstones.contains_key(&stale[4]).unwrap());

    // The whole sweep takes the rest, over three chunks.
    assert_eq!(inner.sweep_tombstones(horizon_ms).unwrap(), n_stale - 10 + 1, "the rest and the unreadable one");
    let left: Vec<String> = inner
        .tombstones
        .iter()
        .map(|item| String::from_utf8(item.unwrap().0.to_vec()).unwrap())
        .filter(|key| !key.starts_with("fresh-"))
        .collect();
    assert_eq!(left, [String::from_utf8(stale[3].clone()).unwrap()]);
    assert_eq!(inner.tombstones.iter().filter(|item| item.as_ref().unwrap().0.starts_with(b"fresh-")).count(), 100);
}
