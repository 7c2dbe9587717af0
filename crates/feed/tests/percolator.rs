//! A post reaches a live column exactly when the column's query matches it:
//! the percolator's candidates, verified, equal a scan of every query.
//! (The store's timeline equals the matcher too — see store's agreement
//! test — so live and history agree.)

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use feed::Percolator;
use model::{Author, Counts, Kind, Post, ReplyTo, Source, StoredPost};
use proptest::prelude::*;
use search::{Doc, Query};

const WORDS: &[&str] = &["bts", "army", "jimin", "방탄소년단이", "콘서트", "進撃の", "💜", "hello", "world"];
const TAGS: &[&str] = &["BTS", "ARMY", "방탄소년단", "kpop"];
const HANDLES: &[&str] = &["alice", "bob", "carol"];
const QUERY_PARTS: &[&str] = &[
    "bts",
    "#bts",
    "army",
    "jimin",
    "방탄소년단",
    "콘서트",
    "進撃",
    "💜",
    "\"hello world\"",
    "from:alice",
    "@bob",
    "to:carol",
    "lang:ko",
    "filter:media",
    "-filter:retweets",
    "filter:retweets",
    "min_retweets:2",
    "-army",
    "#kpop",
];

fn post(
    words: &[usize],
    tags: &[usize],
    author: usize,
    retweet: bool,
    media: bool,
    reply: Option<usize>,
) -> StoredPost {
    let text: Vec<String> = words
        .iter()
        .map(|word_idx| WORDS[*word_idx].to_owned())
        .chain(tags.iter().map(|tag_idx| format!("#{}", TAGS[*tag_idx])))
        .collect();
    let author =
        Author { id: HANDLES[author].into(), handle: HANDLES[author].into(), name: String::new(), avatar_url: None };
    let mut content = Post {
        kind: if reply.is_some() { Kind::Reply } else { Kind::Post },
        lang: Some(if words.contains(&3) { "ko" } else { "en" }.into()),
        reply_to: reply.map(|handle| ReplyTo { post_id: None, author_id: None, handle: Some(HANDLES[handle].into()) }),
        hashtags: tags.iter().map(|tag_idx| TAGS[*tag_idx].to_owned()).collect(),
        has_media: media,
        counts: Counts { retweets: words.len() as u64, ..Counts::default() },
        ..Post::new("1", Source::Demo, author, text.join(" "), Utc.timestamp_opt(1_700_000_000, 0).unwrap())
    };
    if !retweet {
        return StoredPost { post: content, retweeted: None, quoted: None };
    }
    let mut retweet = content.clone();
    retweet.id = "2".into();
    retweet.kind = Kind::Retweet;
    retweet.author = Author { id: "dan".into(), handle: "dan".into(), name: String::new(), avatar_url: None };
    retweet.text = format!("RT @{}: {}", content.author.handle, content.text);
    retweet.retweeted_id = Some(content.id.clone());
    content.counts.likes = 1;
    StoredPost { post: retweet, retweeted: Some(Box::new(content)), quoted: None }
}

proptest! {
    #[test]
    fn percolator_matches_exactly_what_the_matcher_matches(
        queries in prop::collection::vec(prop::collection::vec(0..QUERY_PARTS.len(), 1..4), 1..40),
        posts in prop::collection::vec(
            (prop::collection::vec(0..WORDS.len(), 0..5), prop::collection::vec(0..TAGS.len(), 0..3),
             0..HANDLES.len(), any::<bool>(), any::<bool>(), prop::option::of(0..HANDLES.len())),
            1..20),
        use_or in any::<bool>(),
    ) {
        let mut percolator = Percolator::default();
        let mut parsed = Vec::new();
        for (query_idx, parts) in queries.iter().enumerate() {
            let separator = if use_or && parts.len() > 1 { " OR " } else { " " };
            let text: Vec<&str> = parts.iter().map(|part_idx| QUERY_PARTS[*part_idx]).collect();
            let query = Query::parse(&text.join(separator)).unwrap();
            percolator.insert(query_idx as u64, query.clone());
            parsed.push(query);
        }
        // Removing and re-adding keeps the index exact, and removing a
        // query that shares terms with others keeps theirs.
        if let Some(first) = parsed.first() {
            percolator.remove(0);
            percolator.insert(0, first.clone());
        }
        let removed = |query_idx: usize| query_idx % 3 == 2;
        for query_idx in (0..parsed.len()).filter(|query_idx| removed(*query_idx)) {
            percolator.remove(query_idx as u64);
        }
        for (words, tags, author, retweet, media, reply) in &posts {
            let stored = post(words, tags, *author, *retweet, *media, *reply);
            let doc = Doc::new(&stored);
            let expected: Vec<u64> = parsed
                .iter()
                .enumerate()
                .filter(|(query_idx, query)| !removed(*query_idx) && query.matches_doc(&doc))
                .map(|(query_idx, _)| query_idx as u64)
                .collect();
            prop_assert_eq!(percolator.matches(&doc), expected);
        }
    }
}
