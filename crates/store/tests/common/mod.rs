//! The vocabulary both store tests draw posts and queries from: words,
//! hashtags, handles and languages in several scripts, and queries that
//! cover every operator family.

pub const WORDS: &[&str] =
    &["bts", "army", "jimin", "방탄소년단", "방탄소년단이", "콘서트", "進撃", "💜", "hello", "world"];
pub const TAGS: &[&str] = &["BTS", "bts", "ARMY", "방탄소년단", "kpop"];
pub const HANDLES: &[&str] = &["alice", "bob", "carol", "dan"];
pub const LANGS: &[&str] = &["en", "ko", "ja"];
pub const QUERIES: &[&str] = &[
    "bts",
    "#bts",
    "BTS army",
    "bts OR jimin",
    "\"hello world\"",
    "방탄소년단",
    "콘서트 -bts",
    "進撃",
    "💜",
    "from:alice",
    "@bob",
    "to:carol",
    "lang:ko",
    "filter:media",
    "-filter:retweets",
    "filter:retweets bts",
    "min_retweets:3",
    "#kpop OR from:dan",
    "-army",
    "(bts OR army) lang:en",
];
