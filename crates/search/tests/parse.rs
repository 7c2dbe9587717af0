//! Parsing as data: which queries parse to which index plans, and where each
//! mistake is reported.

// Tests may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use search::{Plan, Query, Term};

/// The plan as lists of raw terms, or `None` for [`Plan::All`].
fn plan_of(query: &str) -> Option<Vec<Vec<String>>> {
    let parsed = Query::parse(query).unwrap_or_else(|err| panic!("{query:?}: {err}"));
    assert_eq!(parsed.text(), query);
    match parsed.plan() {
        Plan::All => None,
        Plan::AnyOf(conjunctions) => {
            assert!(conjunctions.iter().all(|c| !c.is_empty()), "{query:?}: empty conjunction");
            Some(conjunctions.into_iter().map(|c| c.iter().map(|t: &Term| t.as_str().to_string()).collect()).collect())
        }
    }
}

fn any_of(conjunctions: &[&[&str]]) -> Option<Vec<Vec<String>>> {
    Some(conjunctions.iter().map(|c| c.iter().map(|t| t.to_string()).collect()).collect())
}

#[test]
fn plans() {
    let table: &[(&str, Option<Vec<Vec<String>>>)] = &[
        ("bts", any_of(&[&["w:bts"]])),
        ("BTS", any_of(&[&["w:bts"]])),
        ("ＢＴＳ", any_of(&[&["w:bts"]])),
        ("bts -filter:retweets", any_of(&[&["w:bts"]])),
        ("a OR b", any_of(&[&["w:a"], &["w:b"]])),
        ("-foo", None),
        ("-foo -bar", None),
        ("lang:ko", any_of(&[&["l:ko"]])),
        ("#bts lang:ko", any_of(&[&["h:bts", "l:ko"]])),
        ("#BTS", any_of(&[&["h:bts"]])),
        ("@BTS_twt", any_of(&[&["m:bts_twt"]])),
        ("@bts_twt:", any_of(&[&["m:bts_twt"]])),
        ("from:jimin", any_of(&[&["a:jimin"]])),
        ("from:@Jimin", any_of(&[&["a:jimin"]])),
        ("to:bts_twt", any_of(&[&["r:bts_twt"]])),
        ("$TSLA", any_of(&[&["c:tsla"]])),
        ("filter:media", any_of(&[&["f:media"]])),
        ("filter:links", any_of(&[&["f:links"]])),
        ("filter:retweets", any_of(&[&["k:retweet"]])),
        ("filter:replies", any_of(&[&["k:reply"]])),
        ("filter:quote", any_of(&[&["k:quote"]])),
        ("min_retweets:100", None),
        ("bts min_faves:10 since:2024-06-01 until:2024-06-14", any_of(&[&["w:bts"]])),
        // OR binds tighter than AND: a (b OR c).
        ("a b OR c", any_of(&[&["w:a", "w:b"], &["w:a", "w:c"]])),
        ("(a b) OR c", any_of(&[&["w:c"], &["w:a", "w:b"]])),
        ("a AND b", any_of(&[&["w:a", "w:b"]])),
        ("a OR -b", None),
        // Only one `-` negates; a second is punctuation of the word.
        ("--bts", None),
        ("-(-bts)", any_of(&[&["w:bts"]])),
        ("\"love yourself\"", any_of(&[&["w:love", "w:yourself"]])),
        ("“love yourself”", any_of(&[&["w:love", "w:yourself"]])),
        ("k-pop", any_of(&[&["w:k", "w:pop"]])),
        ("\"bts\"", any_of(&[&["w:bts"]])),
        ("방탄소년단", any_of(&[&["w:방탄소년단"]])),
        ("BTS가", any_of(&[&["w:bts", "w:가"]])),
        ("新曲", any_of(&[&["g:新曲"]])),
        ("新", any_of(&[&["g:新"]])),
        ("防弾少年団", any_of(&[&["g:少年", "g:年団", "g:弾少", "g:防弾"]])),
        ("💜", any_of(&[&["w:💜"]])),
        ("lang:ko-KR", any_of(&[&["l:ko-kr"]])),
        // Unknown operators are words, as on Twitter.
        ("foo:bar", any_of(&[&["w:bar", "w:foo"]])),
        ("https://www.youtube.com/watch", any_of(&[&["w:com", "w:watch", "w:youtube"]])),
        // Terms with nothing searchable are left out.
        ("bts !!", any_of(&[&["w:bts"]])),
        ("bts OR ??", any_of(&[&["w:bts"]])),
        ("bts - army", any_of(&[&["w:army", "w:bts"]])),
        // The rarest kind of term comes first in a conjunction.
        ("lang:ja filter:media from:bts_twt", any_of(&[&["a:bts_twt", "l:ja", "f:media"]])),
        // Absorption: (a) OR (a b) needs only a.
        ("a OR (a b)", any_of(&[&["w:a"]])),
    ];
    for (query, expected) in table {
        assert_eq!(&plan_of(query), expected, "query {query:?}");
    }
}

#[test]
fn errors_point_at_the_mistake() {
    let table: &[(&str, usize, &str)] = &[
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("\"love yourself", 0, "quote"),
        ("bts \"love", 4, "quote"),
        ("(bts OR army", 0, "never closed"),
        ("bts (army", 4, "never closed"),
        ("bts)", 3, "no matching"),
        ("(bts))", 5, "no matching"),
        ("()", 0, "empty"),
        ("OR bts", 0, "before"),
        ("bts OR", 4, "after"),
        ("bts OR OR army", 4, "after"),
        ("(bts OR) army", 5, "after"),
        ("AND bts", 0, "before"),
        ("bts AND", 4, "after"),
        ("from:", 0, "needs a value"),
        ("bts from:", 4, "needs a value"),
        ("-from:", 1, "needs a value"),
        ("from:@", 5, "account name"),
        ("min_retweets:abc", 13, "whole number"),
        ("bts min_faves:-3", 14, "whole number"),
        ("since:2024-13-01", 6, "YYYY-MM-DD"),
        ("until:yesterday", 6, "YYYY-MM-DD"),
        ("since:2024-6-1", 6, "YYYY-MM-DD"),
        ("filter:cats", 7, "unknown filter"),
        ("bts -filter:verified", 12, "unknown filter"),
        ("lang:한국어", 5, "language code"),
        ("!!", 0, "nothing to search"),
        ("bts OR (", 7, "never closed"),
        // Positions count characters, not bytes.
        ("방탄소년단 min_retweets:많이", 19, "whole number"),
        ("💜💜 (", 3, "never closed"),
    ];
    for (query, position, message) in table {
        let error = Query::parse(query).expect_err(query);
        assert_eq!(error.position, *position, "query {query:?}: {error}");
        assert!(error.message.contains(message), "query {query:?}: {:?}", error.message);
    }
}

#[test]
fn long_and_deep_queries_are_refused() {
    let long = "bts ".repeat(600);
    assert!(Query::parse(&long).unwrap_err().message.contains("too long"));
    let deep = format!("{}bts{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(Query::parse(&deep).unwrap_err().position, 32);
    let fine = format!("{}bts{}", "(".repeat(10), ")".repeat(10));
    assert!(Query::parse(&fine).is_ok());
}

/// The examples of docs/query-language.md parse or fail as it says.
#[test]
fn documented_examples() {
    for query in [
        "bts",
        "bts -filter:retweets",
        "방탄소년단 OR #BTS lang:ko",
        "\"love yourself\" min_retweets:100",
        "from:bts_twt filter:media",
        "@bts_twt -from:bts_twt",
        "新曲 lang:ja since:2024-06-01",
        "(jimin OR 지민) 💜 -filter:replies",
        "-(spoiler OR leak)",
        "-\"sold out\"",
        "(bts OR army) (concert OR 콘서트)",
        "12:30",
        "from:rm.bsky.social",
        "filter:nativeretweets min_likes:5 min_replies:2 filter:images filter:quotes",
    ] {
        assert!(Query::parse(query).is_ok(), "{query:?}");
    }
    let docs = include_str!("../../../docs/query-language.md");
    let mistakes = docs.split("## Mistakes").nth(1).unwrap();
    let mut n_checked = 0;
    for row in mistakes.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let query = cells[1].split(" / ").next().unwrap().trim_matches('`');
        let message = cells[2].split(" / ").next().unwrap();
        let error = Query::parse(query).expect_err(query);
        assert!(error.message.starts_with(message), "{query:?}: {:?} vs documented {message:?}", error.message);
        n_checked += 1;
    }
    assert!(n_checked >= 13);
}

#[test]
fn query_bombs_are_refused_with_a_position() {
    use search::limits::{MAX_PLAN_CONJUNCTIONS, MAX_QUERY_CHARS, MAX_TERMS};
    // 100 KB, thousands of ORs, thousands of negations, deep nesting.
    let bombs = [
        "x".repeat(100_000),
        "💜".repeat(MAX_QUERY_CHARS + 1),
        vec!["a"; 3_000].join(" OR "),
        (0..3_000).map(|word_idx| format!("-w{word_idx}")).collect::<Vec<_>>().join(" "),
        format!("{}bts{}", "(".repeat(5_000), ")".repeat(5_000)),
    ];
    for bomb in &bombs {
        let error = Query::parse(bomb).expect_err("a bomb parses");
        assert!(error.position <= MAX_QUERY_CHARS, "{error}");
    }
    // Just over the term limit, within the length limit: refused at the first term too many.
    let many: Vec<String> = (0..=MAX_TERMS).map(|word_idx| format!("w{word_idx}")).collect();
    let error = Query::parse(&many.join(" OR ")).unwrap_err();
    assert!(error.message.contains("too many search terms"), "{error}");
    assert_eq!(error.position, many[..MAX_TERMS].iter().map(|word| word.chars().count() + 4).sum::<usize>());
    assert!(Query::parse(&many[..MAX_TERMS].join(" OR ")).is_ok());
    // Within the term limit, but its ORs multiply out past the plan's limit.
    let groups: Vec<String> = (0..8).map(|group_idx| format!("(g{group_idx}a OR g{group_idx}b)")).collect();
    let product = groups.join(" ");
    assert!(Query::parse(&product).is_ok(), "an AND of ORs degrades soundly");
    let alternatives: Vec<String> = (0..5)
        .map(|alternative_idx| {
            let groups: Vec<String> = (0..6)
                .map(|group_idx| format!("(a{alternative_idx}g{group_idx} OR b{alternative_idx}g{group_idx})"))
                .collect();
            format!("({})", groups.join(" "))
        })
        .collect();
    let error = Query::parse(&alternatives.join(" OR ")).unwrap_err();
    assert!(error.message.contains("too many alternatives"), "{error}");
    const { assert!(MAX_PLAN_CONJUNCTIONS < 5 * 64) };
}
