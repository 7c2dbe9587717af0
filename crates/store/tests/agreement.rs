//! Property test: for random posts and random queries, the stored-query
//! path (posting lists + verification) returns exactly the posts that the
//! matcher accepts, newest first, and paging never skips or repeats, also
//! when a tiny work budget per read cuts pages short (each read then stops
//! at its frontier and `next` continues from there).

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use model::{Author, Counts, Kind, Post, PostBundle, PostEvent, ReplyTo, Source};
use proptest::prelude::*;
use search::Query;
use store::{EmbeddedStore, PostStore, Range, ReadLimits, WriteBatch};

mod common;

use common::{HANDLES, LANGS, QUERIES, TAGS, WORDS};

#[derive(Clone, Debug)]
struct PostSpec {
    words: Vec<usize>,
    tags: Vec<usize>,
    mention: Option<usize>,
    author: usize,
    lang: usize,
    second: i64,
    media: bool,
    retweets: u64,
    retweet_of: Option<usize>,
    reply_to: Option<usize>,
}

fn post_spec() -> impl Strategy<Value = PostSpec> {
    (
        prop::collection::vec(0..WORDS.len(), 0..5),
        prop::collection::vec(0..TAGS.len(), 0..3),
        prop::option::of(0..HANDLES.len()),
        0..HANDLES.len(),
        0..LANGS.len(),
        0..30i64,
        any::<bool>(),
        0..6u64,
        prop::option::weighted(0.3, 0..40usize),
        prop::option::weighted(0.2, 0..HANDLES.len()),
    )
        .prop_map(|(words, tags, mention, author, lang, second, media, retweets, retweet_of, reply_to)| PostSpec {
            words,
            tags,
            mention,
            author,
            lang,
            second,
            media,
            retweets,
            retweet_of,
            reply_to,
        })
}

fn build(specs: &[PostSpec]) -> Vec<PostBundle> {
    let mut bundles: Vec<PostBundle> = Vec::new();
    for (post_idx, spec) in specs.iter().enumerate() {
        let mut text: Vec<String> = spec.words.iter().map(|word_idx| WORDS[*word_idx].to_owned()).collect();
        text.extend(spec.tags.iter().map(|tag_idx| format!("#{}", TAGS[*tag_idx])));
        if let Some(mention) = spec.mention {
            text.push(format!("@{}", HANDLES[mention]));
        }
        let handle = HANDLES[spec.author];
        let mut post = Post {
            id: format!("{}", 1000 + post_idx),
            source: Source::Demo,
            kind: Kind::Post,
            author: Author { id: handle.into(), handle: handle.into(), name: handle.to_uppercase(), avatar_url: None },
            text: text.join(" "),
            lang: Some(LANGS[spec.lang].into()),
            // Several posts share a second: ties are broken by id.
            created_at: Utc.timestamp_opt(1_700_000_000 + spec.second, 0).unwrap(),
            claimed_at: None,
            retweeted_id: None,
            quoted_id: None,
            reply_to: None,
            hashtags: spec.tags.iter().map(|tag_idx| TAGS[*tag_idx].to_owned()).collect(),
            mentions: spec.mention.map(|mention| vec![HANDLES[mention].to_owned()]).unwrap_or_default(),
            urls: Vec::new(),
            cashtags: Vec::new(),
            has_media: spec.media,
            media: Vec::new(),
            card: None,
            sensitive: false,
            permalink: None,
            counts: Counts { retweets: spec.retweets, ..Counts::default() },
        };
        if let Some(reply_to) = spec.reply_to {
            post.kind = Kind::Reply;
            post.reply_to = Some(ReplyTo { post_id: None, author_id: None, handle: Some(HANDLES[reply_to].into()) });
        }
        let mut bundle = PostBundle::single(post);
        // A retweet of an earlier original: the content is the original's.
        if let Some(original_idx) = spec.retweet_of.filter(|original_idx| *original_idx < post_idx)
            && bundles[original_idx].post.kind != Kind::Retweet
        {
            let original = bundles[original_idx].post.clone();
            bundle.post.kind = Kind::Retweet;
            bundle.post.text = format!("RT @{}: {}", original.author.handle, original.text);
            bundle.post.retweeted_id = Some(original.id.clone());
            bundle.post.hashtags = original.hashtags.clone();
            bundle.post.mentions = original.mentions.clone();
            bundle.post.reply_to = None;
            bundle.retweeted = Some(Box::new(original));
        }
        bundles.push(bundle);
    }
    bundles
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn stored_queries_agree_with_the_matcher(
        specs in prop::collection::vec(post_spec(), 1..60),
        page_size in 1usize..7,
        read_budget in prop::option::of(1usize..60),
    ) {
        let runtime = runtime();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut store = EmbeddedStore::open(dir.path()).unwrap();
            if let Some(max_work) = read_budget {
                let limits = ReadLimits { max_work, deadline: std::time::Duration::from_secs(60), max_concurrent: 2 };
                store = store.with_read_limits(limits);
            }
            let bundles = build(&specs);
            // Deliver everything twice (at-least-once): nothing may double.
            for _ in 0..2 {
                let events = bundles.iter().cloned().map(PostEvent::Upsert).collect();
                store.apply(WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();
            }
            let ids: Vec<String> = bundles.iter().map(|bundle| bundle.post.id.clone()).collect();
            let mut all = store.get(&ids).await.unwrap();
            all.sort_by_key(|post| std::cmp::Reverse(post.post.cursor()));
            for text in QUERIES {
                let query = Query::parse(text).unwrap();
                let expected: Vec<String> =
                    all.iter().filter(|post| query.matches(post)).map(|post| post.post.id.clone()).collect();
                let mut got = Vec::new();
                let mut range = Range::default();
                // Every read decides at least one posting: bounded by the postings.
                for _ in 0..100_000 {
                    let page = store.timeline(&store::Reader::internal(), &query, range.clone(), page_size).await.unwrap();
                    assert!(page.posts.len() <= page_size);
                    got.extend(page.posts.iter().map(|post| post.post.id.clone()));
                    match page.next {
                        Some(next) => range.before = Some(next),
                        None => break,
                    }
                }
                assert_eq!(got, expected, "query {text}");
            }
        });
    }
}

#[tokio::test]
async fn deletes_leave_every_query_and_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let specs: Vec<PostSpec> = (0..10)
        .map(|post_idx| PostSpec {
            words: vec![0],
            tags: vec![0],
            mention: None,
            author: 0,
            lang: 0,
            second: post_idx,
            media: false,
            retweets: 0,
            retweet_of: (post_idx > 0).then_some(0),
            reply_to: None,
        })
        .collect();
    let bundles = build(&specs);
    let applied = store
        .apply(WriteBatch { events: bundles.iter().cloned().map(PostEvent::Upsert).collect(), checkpoints: Vec::new() })
        .await
        .unwrap();
    assert_eq!(applied.inserted.len(), 10);
    let original = store.get(&["1000".to_owned()]).await.unwrap();
    assert_eq!(original[0].post.counts.retweets, 9, "retweets seen raise the original's count");

    // Deleting the original takes its retweets with it.
    let applied = store
        .apply(WriteBatch { events: vec![PostEvent::Delete { id: "1000".into() }], checkpoints: Vec::new() })
        .await
        .unwrap();
    assert_eq!(applied.deleted.len(), 10);
    let query = Query::parse("bts").unwrap();
    let page = store.timeline(&store::Reader::internal(), &query, Range::default(), 100).await.unwrap();
    assert!(page.posts.is_empty());

    // A late re-delivery of the deleted post does not bring it back.
    store
        .apply(WriteBatch { events: vec![PostEvent::Upsert(bundles[0].clone())], checkpoints: Vec::new() })
        .await
        .unwrap();
    assert!(store.timeline(&store::Reader::internal(), &query, Range::default(), 100).await.unwrap().posts.is_empty());
}

#[tokio::test]
async fn checkpoints_commit_with_the_posts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let bundles = build(&[PostSpec {
            words: vec![1],
            tags: vec![],
            mention: None,
            author: 1,
            lang: 1,
            second: 1,
            media: true,
            retweets: 0,
            retweet_of: None,
            reply_to: None,
        }]);
        store
            .apply(WriteBatch {
                events: bundles.into_iter().map(PostEvent::Upsert).collect(),
                checkpoints: vec![("jetstream".into(), "1725911162329308".into())],
            })
            .await
            .unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.checkpoint("jetstream").await.unwrap().as_deref(), Some("1725911162329308"));
    assert_eq!(store.count().await.unwrap(), 1);
}
