//! Retention (`--retention`): posts behind the horizon leave the embedded
//! store with their postings and retweet rows, reads end at the horizon
//! (`next: null`), and the store says where the horizon is (a `since`
//! older than it gets `resync`).

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use model::{Author, Counts, Kind, Post, PostBundle, PostEvent, Source};
use search::Query;
use store::{EmbeddedStore, PostStore, Range, WriteBatch};

fn post(id: &str, age: Duration, tags: &[&str]) -> Post {
    Post {
        id: id.to_owned(),
        source: Source::Demo,
        kind: Kind::Post,
        author: Author { id: "1".into(), handle: "alice".into(), name: "Alice".into(), avatar_url: None },
        text: format!("hello {}", tags.iter().map(|tag| format!("#{tag}")).collect::<Vec<_>>().join(" ")),
        lang: Some("en".into()),
        created_at: Utc::now() - chrono::Duration::from_std(age).unwrap(),
        claimed_at: None,
        retweeted_id: None,
        quoted_id: None,
        reply_to: None,
        hashtags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        mentions: Vec::new(),
        urls: Vec::new(),
        cashtags: Vec::new(),
        has_media: false,
        counts: Counts::default(),
        media: Vec::new(),
        card: None,
        sensitive: false,
        permalink: None,
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
        let page = store.timeline(&query, Range::default(), 100).await.unwrap();
        assert_eq!(page.posts.len(), 5);
        assert!(page.next.is_none());
        let horizon_ms = store.horizon_ms().unwrap();
        // Counted from the newest post (a minute old), not from now.
        assert!((Utc::now().timestamp_millis() - horizon_ms - 3_660_000).abs() < 30_000);

        assert_eq!(store.expire_now().await.unwrap(), 51);
        assert!(store.get(&["old000".into(), "old-rt".into()]).await.unwrap().is_empty());
        assert_eq!(store.get(&["new0".into()]).await.unwrap().len(), 1);
        assert_eq!(store.expire_now().await.unwrap(), 0, "a second sweep finds nothing");
        store.compact().await.unwrap();
    }
    // Behind the store's back: only the new posts' rows are left.
    let keyspace = fjall::Config::new(dir.path()).open().unwrap();
    let open = |name: &str| keyspace.open_partition(name, fjall::PartitionCreateOptions::default()).unwrap();
    assert_eq!(open("posts").len().unwrap(), 5);
    assert_eq!(open("retweets").len().unwrap(), 0);
    let n_postings = open("postings").len().unwrap();
    // Each new post: `*`, its word, tag, language, author, kind terms.
    assert!(n_postings > 0 && n_postings <= 5 * 12, "{n_postings} postings left");
    for item in open("postings").iter() {
        let (key, _) = item.unwrap();
        assert!(!String::from_utf8_lossy(&key).contains("old"), "an old posting is left");
    }
}
