//! The index invariant, checked over random posts and random queries: when a
//! query matches a post, its plan admits the post's terms. The vocabulary is
//! small and shared by posts and queries so that matches are frequent.

// Tests may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use model::{Post, StoredPost};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, TestRunner};
use search::{Doc, Plan, Query};

const WORDS: &[&str] = &[
    "bts",
    "BTS",
    "army",
    "Butter",
    "dynamite",
    "love",
    "yourself",
    "jimin",
    "k-pop",
    "don't",
    "3000",
    "방탄소년단",
    "방탄소년단이",
    "방탄소년단의",
    "방탄",
    "소년단",
    "아미들에게",
    "컴백했다",
    "지민님",
    "BTS가",
    "新曲",
    "最高",
    "の新曲",
    "防弾少年団",
    "ｶﾑﾊﾞｯｸ",
    "คัมแบ็ค",
    "💜",
    "👍🏽",
    "❤️",
    "🇰🇷",
    "#BTS",
    "#방탄소년단",
    "@bts_twt",
    "$TSLA",
    "!!",
    "ＢＴＳ",
    "youtube.com",
    "https://t.co/x1",
    "&amp;",
    "é",
    "e\u{301}",
];
const HANDLES: &[&str] = &["bts_twt", "jimin", "army_daily", "rm.bsky.social"];
const LANGS: &[&str] = &["ko", "en", "ja", "ko-KR", "und"];
const HASHTAGS: &[&str] = &["BTS", "방탄소년단", "防弾少年団", "Butter", "bts_butter"];
const URLS: &[&str] = &["https://www.youtube.com/watch?v=abc", "https://weverse.io/bts/artist", "http://bts.jp/新曲"];

fn text() -> impl Strategy<Value = String> {
    let separators = prop::sample::select(vec![" ", " ", "", ", ", "!"]);
    prop::collection::vec((prop::sample::select(WORDS), separators), 0..10)
        .prop_map(|parts| parts.into_iter().map(|(word, separator)| format!("{word}{separator}")).collect())
}

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(pool), 0..3)
        .prop_map(|picked| picked.into_iter().map(str::to_string).collect())
}

fn plain_post() -> impl Strategy<Value = Post> {
    (
        prop::sample::select(HANDLES),
        prop::sample::select(LANGS),
        text(),
        (subset(HASHTAGS), subset(HANDLES), subset(URLS)),
        (any::<bool>(), prop::option::of(prop::sample::select(HANDLES)), any::<bool>()),
        (0u64..3000, 0u64..3000, 0i64..20),
    )
        .prop_map(
            |(handle, lang, text, (hashtags, mentions, urls), (has_media, reply_to, quote), (retweets, likes, day))| {
                let mut post = common::post(handle, lang, &text);
                post.hashtags = hashtags;
                post.mentions = mentions;
                post.urls = urls;
                post.has_media = has_media;
                if let Some(to) = reply_to {
                    post = common::reply(post, to);
                }
                if quote {
                    post.quoted_id = Some("quoted".into());
                }
                post.counts.retweets = retweets;
                post.counts.likes = likes;
                post.created_at = Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap() + Duration::days(day);
                post
            },
        )
}

fn stored_post() -> impl Strategy<Value = StoredPost> {
    (plain_post(), prop::option::of(prop::sample::select(HANDLES)), any::<bool>()).prop_map(
        |(post, retweeter, original_stored)| match retweeter {
            None => common::stored(post),
            Some(retweeter) if original_stored => common::retweet(retweeter, post),
            Some(retweeter) => common::orphan_retweet(retweeter, post),
        },
    )
}

fn atom() -> impl Strategy<Value = String> {
    let word = prop::sample::select(WORDS).prop_map(str::to_string);
    let phrase =
        prop::collection::vec(prop::sample::select(WORDS), 1..3).prop_map(|words| format!("\"{}\"", words.join(" ")));
    let operator = prop_oneof![
        prop::sample::select(HANDLES).prop_map(|h| format!("from:{h}")),
        prop::sample::select(HANDLES).prop_map(|h| format!("to:@{h}")),
        prop::sample::select(HANDLES).prop_map(|h| format!("@{h}")),
        prop::sample::select(HASHTAGS).prop_map(|h| format!("#{h}")),
        prop::sample::select(vec!["ko", "en", "ja", "ko-kr"]).prop_map(|l| format!("lang:{l}")),
        prop::sample::select(vec!["media", "links", "retweets", "replies", "quote"])
            .prop_map(|f| format!("filter:{f}")),
        (0u64..3000).prop_map(|n| format!("min_retweets:{n}")),
        (0u64..3000).prop_map(|n| format!("min_faves:{n}")),
        (1u32..28).prop_map(|d| format!("since:2024-06-{d:02}")),
        (1u32..28).prop_map(|d| format!("until:2024-06-{d:02}")),
        Just("$tsla".to_string()),
    ];
    prop_oneof![3 => word, 1 => phrase, 2 => operator]
}

fn query() -> impl Strategy<Value = String> {
    let leaf = (any::<bool>(), atom()).prop_map(|(negated, atom)| if negated { format!("-{atom}") } else { atom });
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|terms| terms.join(" ")),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|terms| terms.join(" OR ")),
            (any::<bool>(), inner).prop_map(|(negated, term)| format!("{}({term})", if negated { "-" } else { "" })),
        ]
    })
}

/// Checks the invariant for every pair; returns how many pairs matched.
fn check_invariant(queries: &[String], posts: &[StoredPost]) -> Result<usize, TestCaseError> {
    let docs: Vec<(Doc, Vec<search::Term>)> = posts
        .iter()
        .map(|post| {
            let doc = Doc::new(post);
            let terms = doc.terms();
            (doc, terms)
        })
        .collect();
    let mut n_matches = 0;
    for text in queries {
        let Ok(query) = Query::parse(text) else {
            // Only queries made entirely of punctuation fail here.
            continue;
        };
        let plan = query.plan();
        if let Plan::AnyOf(conjunctions) = &plan {
            prop_assert!(!conjunctions.is_empty() && conjunctions.iter().all(|c| !c.is_empty()));
        }
        for (post, (doc, terms)) in posts.iter().zip(&docs) {
            if query.matches_doc(doc) {
                n_matches += 1;
                prop_assert!(
                    plan.admits(terms),
                    "query {:?} matches post {:?} but plan {:?} misses terms {:?}",
                    text,
                    post.post.text,
                    plan,
                    terms
                );
            }
            prop_assert_eq!(query.matches(post), query.matches_doc(doc));
        }
    }
    Ok(n_matches)
}

proptest! {
    #![proptest_config(Config { cases: 512, ..Config::default() })]

    #[test]
    fn plan_admits_every_match(
        queries in prop::collection::vec(query(), 1..6),
        posts in prop::collection::vec(stored_post(), 1..10),
    ) {
        check_invariant(&queries, &posts)?;
    }

    #[test]
    fn parsing_never_panics_and_errors_point_inside(text in "[ -~가-힣ぁ-ん“”＂（）－：#@\\-\"()]{0,40}") {
        match Query::parse(&text) {
            Ok(query) => {
                let _ = query.plan();
            }
            Err(error) => prop_assert!(error.position <= text.chars().count(), "{:?}: {}", text, error),
        }
    }

    #[test]
    fn parsing_arbitrary_unicode_never_panics(text in any::<String>()) {
        let _ = Query::parse(&text).map(|query| query.plan());
    }
}

/// The property above is only meaningful if random queries match random
/// posts often enough; this guards against a generator that never matches.
#[test]
fn random_queries_do_match_random_posts() {
    let mut runner = TestRunner::deterministic();
    let mut n_matches = 0;
    for _ in 0..200 {
        let queries = prop::collection::vec(query(), 5).new_tree(&mut runner).unwrap().current();
        let posts = prop::collection::vec(stored_post(), 10).new_tree(&mut runner).unwrap().current();
        n_matches += check_invariant(&queries, &posts).unwrap();
    }
    // 200 × 5 × 10 pairs; a healthy generator matches a good share of them.
    assert!(n_matches > 500, "only {n_matches} matches");
}
