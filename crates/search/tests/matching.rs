//! Matching as data: queries against real-looking posts in English, Korean,
//! Japanese and emoji, and the retweet rules.

// Tests may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use model::StoredPost;
use search::{Doc, Query};

/// Asserts, for each (query, expected) pair, that the query matches the post
/// as expected, and that the plan admits the post whenever it matches.
fn check(post: &StoredPost, table: &[(&str, bool)]) {
    let doc = Doc::new(post);
    let terms = doc.terms();
    for (query, expected) in table {
        let parsed = Query::parse(query).unwrap_or_else(|err| panic!("{query:?}: {err}"));
        assert_eq!(parsed.matches_doc(&doc), *expected, "query {query:?} on post {:?}", post.post.text);
        assert_eq!(parsed.matches(post), *expected, "query {query:?} via matches()");
        if *expected {
            assert!(parsed.plan().admits(&terms), "plan of {query:?} misses the post; terms {terms:?}");
        }
    }
}

#[test]
fn english_words_phrases_and_hashtags() {
    let mut english = with_hashtags(
        with_mentions(
            post(
                "army_daily",
                "en",
                "BTS just dropped the Love Yourself remaster!! Streaming party tonight @bts_twt #BTS #LoveYourself https://t.co/AbC123",
            ),
            &["bts_twt"],
        ),
        &["BTS", "LoveYourself"],
    );
    english.urls = vec!["https://www.youtube.com/watch?v=xyz".to_string()];
    english.has_media = true;
    english.counts.retweets = 1200;
    english.counts.likes = 5400;
    check(
        &stored(english),
        &[
            ("bts", true),
            ("BTS", true),
            ("ｂｔｓ", true),
            ("bts remaster", true),
            ("bts butter", false),
            ("butter OR remaster", true),
            ("butter OR dynamite", false),
            ("bts -butter", true),
            ("bts -remaster", false),
            ("\"love yourself remaster\"", true),
            ("\"love yourself\"", true),
            ("\"yourself love\"", false),
            ("\"party streaming\"", false),
            ("#bts", true),
            ("#LoveYourself", true),
            ("loveyourself", true),
            ("#love", false),
            ("#army", false),
            ("@bts_twt", true),
            ("@BTS_TWT", true),
            ("@hybe", false),
            ("from:army_daily", true),
            ("from:@Army_Daily", true),
            ("from:bts_twt", false),
            ("lang:en", true),
            ("lang:ko", false),
            ("filter:media", true),
            ("filter:links", true),
            ("-filter:retweets", true),
            ("filter:retweets", false),
            ("filter:replies", false),
            ("min_retweets:1000", true),
            ("min_retweets:1200", true),
            ("min_retweets:1201", false),
            ("min_faves:5000", true),
            ("min_faves:6000", false),
            ("since:2024-06-13", true),
            ("since:2024-06-14", false),
            ("until:2024-06-13", false),
            ("until:2024-06-14", true),
            ("youtube", true),
            ("youtube.com", true),
            ("https://youtube.com/watch", true),
            // The shortened link in the text is not searchable text.
            ("t.co", false),
            ("abc123", false),
            ("(bts OR jimin) (remaster OR butter) -filter:replies", true),
            ("bts (jimin OR butter)", false),
            ("-(jimin OR butter)", true),
            ("-(bts OR butter)", false),
            ("foo:bar", false),
        ],
    );
}

#[test]
fn replies_quotes_and_mastodon_handles() {
    let mut answer = reply(post("jk.bsky.social", "en", "@rm.bsky.social congrats on the album!!"), "rm.bsky.social");
    answer.mentions = vec!["rm.bsky.social".into()];
    answer.quoted_id = Some("q1".into());
    check(
        &stored(answer),
        &[
            ("to:rm.bsky.social", true),
            ("to:@RM.bsky.social", true),
            ("to:jk.bsky.social", false),
            ("from:jk.bsky.social", true),
            ("@rm.bsky.social", true),
            ("filter:replies", true),
            ("-filter:replies", false),
            ("filter:quote", true),
            ("congrats album", true),
            ("filter:links", false),
        ],
    );
}

#[test]
fn korean_particles() {
    let korean = stored(post(
        "bangtan_kr",
        "ko",
        "방탄소년단이 오늘 컴백했다! 방탄소년단의 새 앨범은 정말 최고. 아미들에게 감사 BTS가 1위💜",
    ));
    check(
        &korean,
        &[
            ("방탄소년단", true),
            ("방탄소년단이", true),
            ("방탄소년단의", true),
            ("앨범", true),
            ("아미", true),
            ("아미들", true),
            ("bts", true),
            ("BTS가", true),
            ("컴백", true),
            ("방탄", false),
            ("소년단", false),
            ("\"방탄소년단의 새 앨범\"", true),
            ("\"새 앨범\"", true),
            ("\"방탄소년단 새 앨범\"", false),
            ("감사 -방탄소년단", false),
            ("lang:ko 방탄소년단 OR 방탄", true),
            ("1위", true),
            ("💜", true),
            ("💜 방탄소년단", true),
        ],
    );
    for text in [
        "방탄소년단은 최고",
        "방탄소년단에게 보내는 편지",
        "방탄소년단을 응원해",
        "방탄소년단과 함께",
        "방탄소년단도 나왔다",
        "방탄소년단까지",
        "방탄소년단처럼",
        "방탄소년단한테",
        "방탄소년단에서",
        "방탄소년단이랑",
        "방탄소년단으로",
        "방탄소년단께서",
        "방탄소년단입니다",
        "방탄소년단보다",
    ] {
        check(&stored(post("fan", "ko", text)), &[("방탄소년단", true)]);
    }
    // Split by a space, it is a different phrase.
    check(
        &stored(post("fan", "ko", "방탄 소년단 최고")),
        &[("방탄소년단", false), ("방탄", true), ("\"방탄 소년단\"", true)],
    );
    // A word that merely starts the same is not a particle form.
    check(&stored(post("fan", "ko", "방탄소년단원들")), &[("방탄소년단", false)]);
    check(&stored(post("fan", "ko", "지민님께 감사")), &[("지민", true)]);
    check(&stored(post("fan", "ko", "컴백 축하해 응원합니다")), &[("축하", true), ("응원", true), ("축하해", true)]);
}

#[test]
fn japanese_chinese_thai_substrings() {
    let japanese =
        stored(with_hashtags(post("army_jp", "ja", "BTSの新曲、最高すぎる！！ #防弾少年団 ｶﾑﾊﾞｯｸ"), &["防弾少年団"]));
    check(
        &japanese,
        &[
            ("新曲", true),
            ("新", true),
            ("最高", true),
            ("最高すぎる", true),
            ("高す", true),
            ("の新曲", true),
            ("bts", true),
            ("btsの新曲", true),
            ("\"btsの新曲\"", true),
            ("bts新曲", false),
            ("曲最", false),
            ("旧曲", false),
            ("防弾少年団", true),
            ("#防弾少年団", true),
            ("少年", true),
            ("カムバック", true),
            ("ｶﾑﾊﾞｯｸ", true),
            ("lang:ja 新曲", true),
        ],
    );
    check(&stored(post("cn", "zh", "防弹少年团新专辑发布")), &[("新专辑", true), ("专辑发布", true), ("新歌", false)]);
    check(&stored(post("th", "th", "บีทีเอสคัมแบ็คแล้ว")), &[("คัมแบ็ค", true), ("บีทีเอส", true), ("ไทย", false)]);
}

#[test]
fn emoji() {
    let hearts = stored(post("fan", "en", "I love you 3000💜💜 👍🏽 🇰🇷"));
    check(
        &hearts,
        &[
            ("💜", true),
            ("💜💜", true),
            ("love💜", false),
            ("3000💜", true),
            ("👍", true),
            ("👍🏻", true),
            ("🇰🇷", true),
            ("🇯🇵", false),
            ("❤️", false),
            ("💜 -❤", true),
        ],
    );
    check(&stored(post("fan", "en", "❤️❤️ so good")), &[("❤", true), ("❤️", true), ("💜", false)]);
}

#[test]
fn retweets_match_on_the_original_content_and_the_retweeter() {
    let mut original = with_hashtags(
        with_mentions(post("bts_twt", "ko", "오늘 공연 고마워요 아미 @bighit_music #BTS"), &["bighit_music"]),
        &["BTS"],
    );
    original.counts.retweets = 50_000;
    original.counts.likes = 120_000;
    original.has_media = true;
    let rt = retweet("army_daily", original.clone());
    check(
        &rt,
        &[
            ("공연", true),
            ("아미", true),
            ("#bts", true),
            ("@bighit_music", true),
            ("lang:ko", true),
            ("filter:media", true),
            ("min_retweets:50000", true),
            ("min_faves:100000", true),
            // The RT prefix is not content.
            ("@bts_twt", false),
            ("rt", false),
            ("bts_twt", false),
            // from: is about who posted the retweet.
            ("from:army_daily", true),
            ("from:bts_twt", false),
            ("filter:retweets", true),
            ("-filter:retweets", false),
            ("공연 -filter:retweets", false),
            ("from:army_daily filter:retweets #bts", true),
            // Time is the retweet's own (an hour after the original).
            ("since:2024-06-13", true),
        ],
    );
    // The original itself.
    check(&stored(original.clone()), &[("from:bts_twt", true), ("from:army_daily", false), ("-filter:retweets", true)]);
    // The retweet's own counts (zero) do not count.
    assert_eq!(rt.post.counts.retweets, 0);

    // Without the stored original, the retweet's own text stands in, minus its prefix.
    let orphan = orphan_retweet("army_daily", original);
    check(
        &orphan,
        &[
            ("공연", true),
            ("rt", false),
            ("@bts_twt", false),
            ("@bighit_music", true),
            ("from:army_daily", true),
            ("filter:retweets", true),
        ],
    );

    // A retweet of a post that mentions its own author again keeps that mention.
    let self_mention = with_mentions(post("bts_twt", "en", "thanks @bts_twt team"), &["bts_twt"]);
    check(&orphan_retweet("fan", self_mention), &[("@bts_twt", true)]);
}

#[test]
fn languages_with_regions_and_missing_languages() {
    check(&stored(post("fan", "ko-KR", "안녕")), &[("lang:ko", true), ("lang:ko-kr", true), ("lang:ko-kp", false)]);
    let mut unknown = post("fan", "en", "hello");
    unknown.lang = None;
    check(&stored(unknown), &[("lang:en", false), ("-lang:en", true), ("hello", true)]);
}

#[test]
fn html_entities_from_x_are_decoded() {
    check(
        &stored(post("fan", "en", "RM &amp; Jin &lt;3")),
        &[("amp", false), ("rm jin", true), ("\"rm jin\"", true), ("lt", false)],
    );
}

#[test]
fn doc_terms_cover_words_stems_grams_and_flags() {
    let mut post = with_hashtags(post("Fan_1", "ko-KR", "방탄소년단이 最高 bts"), &["BTS"]);
    post.has_media = true;
    let terms: Vec<String> = Doc::new(&stored(post)).terms().iter().map(|t| t.as_str().to_string()).collect();
    for expected in [
        "*",
        "w:방탄소년단이",
        "w:방탄소년단",
        "w:bts",
        "g:最",
        "g:高",
        "g:最高",
        "h:bts",
        "a:fan_1",
        "l:ko-kr",
        "l:ko",
        "f:media",
    ] {
        assert!(terms.contains(&expected.to_string()), "missing {expected} in {terms:?}");
    }
    assert!(!terms.iter().any(|t| t == "k:retweet" || t == "f:links"));
    let mut sorted = terms.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, terms);
}
