//! Property tests: arbitrary Unicode (controls, odd planes, bidi overrides,
//! zero-width joiners, long values) in every field of a post, through the
//! normalization boundary, the embedded store's timeline, the percolator
//! and the matcher, which must all agree ([`fuzz_harness::post_roundtrip`]).

use fuzz_harness::PostInput;
use proptest::prelude::*;

/// Strings weighted towards what breaks text handling.
fn hostile_string(max_chars: usize) -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '\u{0}',
        '\u{1}',
        '\u{1f}',
        '\u{7f}',
        '\u{85}',
        '\u{200b}',
        '\u{200d}',
        '\u{202e}',
        '\u{2066}',
        '\u{feff}',
        '\u{fffd}',
        '\u{ffff}',
        '\u{10ffff}',
        '\u{e0001}',
        '#',
        '@',
        '$',
        ':',
        ' ',
        '\n',
        '한',
        '글',
        'ㅋ',
        'a',
        'Z',
        '0',
        '_',
        '-',
        '/',
        '.',
    ]);
    let any_char = prop::char::any();
    prop::collection::vec(prop_oneof![3 => special, 1 => any_char], 0..max_chars)
        .prop_map(|chars| chars.into_iter().collect())
}

/// A value past every documented limit (`docs/limits.md`: 640-byte tags and
/// names, 2,048-byte ids and addresses, 3,000-byte Bluesky text): a short
/// hostile unit repeated into 1–30 KB.
fn long_string() -> impl Strategy<Value = String> {
    (hostile_string(6), 200usize..5_000).prop_map(|(unit, times)| {
        let unit = if unit.is_empty() { "가".to_owned() } else { unit };
        unit.repeat(times)
    })
}

fn entity_list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop_oneof![4 => hostile_string(12), 4 => "[a-z가-힣]{1,8}", 1 => long_string()], 0..4)
}

fn query_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z가-힣]{1,6}",
        "#[a-z가-힣]{1,6}",
        "-[a-z]{1,4} [a-z]{1,4}",
        "lang:(ko|en|und)",
        "from:[a-z0-9]{1,6}",
        "@[a-z]{1,6}",
        "\\$[A-Z]{1,4}",
        "\\([a-z]{1,4} OR #[a-z]{1,4}\\) -filter:retweets",
        hostile_string(16),
    ]
}

fn post_input() -> impl Strategy<Value = PostInput> {
    (
        (
            any::<u8>(),
            prop_oneof![4 => "[0-9]{1,19}", 4 => hostile_string(24), 1 => long_string()],
            prop_oneof![4 => hostile_string(12), 1 => long_string()],
            prop_oneof![4 => hostile_string(16), 1 => long_string()],
        ),
        (
            prop_oneof![4 => hostile_string(16), 1 => long_string()],
            prop_oneof![3 => hostile_string(64), 1 => long_string()],
            prop::option::of(prop_oneof!["(ko|en|und|ja)", hostile_string(8)]),
        ),
        (entity_list(), entity_list(), entity_list(), entity_list()),
        (-100_000i32..100_000, any::<u64>(), query_text()),
        (
            prop::option::of(prop_oneof!["https://[a-z]{1,8}\\.example/[a-z]{0,8}", hostile_string(16)]),
            prop::option::of(hostile_string(24)),
            prop::collection::vec((hostile_string(24), hostile_string(24), any::<u32>()), 0..3),
        ),
    )
        .prop_map(
            |(
                (source, id, author_id, handle),
                (name, text, lang),
                (hashtags, mentions, urls, cashtags),
                (claimed_offset_s, likes, query),
                (avatar_url, permalink, media),
            )| PostInput {
                source,
                id,
                author_id,
                handle,
                name,
                text,
                lang,
                hashtags,
                mentions,
                urls,
                cashtags,
                claimed_offset_s,
                likes,
                avatar_url,
                permalink,
                media,
                query,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_posts_agree_across_store_percolator_and_matcher(input in post_input()) {
        fuzz_harness::post_roundtrip(&input);
    }

    #[test]
    fn hostile_queries_never_panic_and_agree(text in query_text()) {
        fuzz_harness::query(text.as_bytes());
    }
}
