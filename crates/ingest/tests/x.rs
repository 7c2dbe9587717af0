//! X payloads from the recorded test data (API v2 pages and stream lines,
//! API v1.1 stream lines, a search page and timelines) through the parser.

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{bundles, parse_lines, read, record};
use ingest::{ParseError, Parser};
use model::{Kind, PostEvent, Source};

const V2_FILES: &[&str] = &[
    "tweets/v2/twarc-csv-kpop.jsonl",
    "tweets/v2/twarc-csv-brexit.jsonl",
    "tweets/v2/twarc-csv-cashtags.jsonl",
    "tweets/v2/twarc-csv-quoted_edit.jsonl",
    "tweets/v2/twarc-csv-mentions_tweet.jsonl",
    "tweets/v2/twarc-csv-many_urls.jsonl",
    "tweets/v2/tweepy-home-timeline-default-fields.json",
];

#[test]
fn every_line_of_every_v2_file_parses() {
    for path in V2_FILES {
        let results = parse_lines(path);
        assert!(!results.is_empty(), "{path}");
        for (line, result) in results {
            let events = result.unwrap_or_else(|error| panic!("{path}:{line}: {error}"));
            assert!(!events.is_empty(), "{path}:{line} has posts");
            for bundle in bundles(&events) {
                assert_eq!(bundle.post.source, Source::X);
                assert!(!bundle.post.id.is_empty() && bundle.post.id.bytes().all(|byte| byte.is_ascii_digit()));
            }
        }
    }
}

#[test]
fn kpop_page_bundles_every_retweeted_original_with_its_author() {
    let results = parse_lines("tweets/v2/twarc-csv-kpop.jsonl");
    assert_eq!(results.len(), 1);
    let events = results[0].1.as_ref().unwrap();
    let bundles = bundles(events);
    assert_eq!(bundles.len(), 100);
    let retweets: Vec<_> = bundles.iter().filter(|bundle| bundle.post.kind == Kind::Retweet).collect();
    assert_eq!(retweets.len(), 78);
    for retweet in &retweets {
        let original = retweet.retweeted.as_ref().expect("original bundled");
        assert_eq!(retweet.post.retweeted_id.as_deref(), Some(original.id.as_str()));
        assert!(retweet.post.text.starts_with("RT @"));
        assert!(!original.author.handle.is_empty() && original.author.handle != original.author.id);
        // The retweet's text names the original's author.
        assert!(retweet.post.text.starts_with(&format!("RT @{}:", original.author.handle)));
    }
    let first = &retweets[0];
    assert_eq!(first.post.id, "1440717170493689866");
    let original = first.retweeted.as_ref().unwrap();
    assert_eq!(original.id, "1440691114135080963");
    assert_eq!(original.author.id, "902035056");
    assert_eq!(original.author.handle, "ChartsEcuador");
    assert!(original.text.contains("@BTS_twt se mantiene en el #1 con #Butter"));
    assert!(original.hashtags.iter().any(|tag| tag == "Butter"));
    assert!(original.mentions.iter().any(|mention| mention == "BTS_twt"));
    let langs = |lang: &str| bundles.iter().filter(|bundle| bundle.post.lang.as_deref() == Some(lang)).count();
    assert_eq!((langs("en"), langs("ko")), (59, 26));
    // Authors come from `includes.users`, display names too.
    assert!(bundles.iter().all(|bundle| bundle.post.author.handle != bundle.post.author.id));
    assert!(bundles.iter().any(|bundle| !bundle.post.author.name.is_empty()));
    assert!(bundles.iter().any(|bundle| bundle.post.has_media));
    let korean_tags =
        bundles.iter().flat_map(|bundle| &bundle.post.hashtags).filter(|tag| *tag == "잇츠라이브").count();
    assert_eq!(korean_tags, 34);
}

#[test]
fn brexit_page_has_quotes_and_replies() {
    let results = parse_lines("tweets/v2/twarc-csv-brexit.jsonl");
    let events = results[0].1.as_ref().unwrap();
    let bundles = bundles(events);
    let count = |kind: Kind| bundles.iter().filter(|bundle| bundle.post.kind == kind).count();
    assert_eq!(count(Kind::Retweet), 67);
    assert_eq!(count(Kind::Reply), 10);
    assert_eq!(count(Kind::Quote), 11);
    for quote in bundles.iter().filter(|bundle| bundle.post.kind == Kind::Quote) {
        let quoted_id = quote.post.quoted_id.as_deref().unwrap();
        if let Some(quoted) = &quote.quoted {
            assert_eq!(quoted.id, quoted_id);
            assert!(!quoted.author.handle.is_empty());
        }
    }
    assert!(bundles.iter().any(|bundle| bundle.quoted.is_some()));
    for reply in bundles.iter().filter(|bundle| bundle.post.kind == Kind::Reply) {
        let reply_to = reply.post.reply_to.as_ref().unwrap();
        assert!(reply_to.post_id.is_some() && reply_to.author_id.is_some());
    }
}

#[test]
fn a_reply_that_quotes_is_a_reply_with_the_quote_attached() {
    let results = parse_lines("tweets/v2/twarc-csv-quoted_edit.jsonl");
    let events = results[0].1.as_ref().unwrap();
    let post = &bundles(events)[0].post;
    assert_eq!(post.kind, Kind::Reply);
    assert_eq!(post.quoted_id.as_deref(), Some("1576994746135764992"));
    let reply_to = post.reply_to.as_ref().unwrap();
    assert_eq!(reply_to.post_id.as_deref(), Some("1576994789110992896"));
    assert_eq!(reply_to.author_id.as_deref(), Some("337119125"));
    assert_eq!(reply_to.handle.as_deref(), Some("wongmjane"));
    assert_eq!(post.urls, ["https://twitter.com/wongmjane/status/1576994746135764992"]);
    assert_eq!(post.counts.likes, 1);
    assert_eq!(post.created_at.to_rfc3339(), "2022-10-03T18:00:23+00:00");
}

#[test]
fn cashtags_and_mentions_come_from_the_entities() {
    let results = parse_lines("tweets/v2/twarc-csv-cashtags.jsonl");
    let post = &bundles(results[0].1.as_ref().unwrap())[0].post;
    assert_eq!(post.cashtags.len(), 11);
    assert_eq!(post.hashtags.len(), 4);
}

#[test]
fn default_fields_timeline_gets_entities_from_the_text() {
    let results = parse_lines("tweets/v2/tweepy-home-timeline-default-fields.json");
    let events = results[0].1.as_ref().unwrap();
    let bundles = bundles(events);
    assert_eq!(bundles.len(), 98);
    // No created_at was requested: the time comes from the snowflake id.
    assert!(bundles.iter().all(|bundle| bundle.post.created_at.timestamp() > 1_600_000_000));
    // No entities were requested: `RT @name:` is found by extraction.
    let retweet_texts = bundles.iter().filter(|bundle| bundle.post.text.starts_with("RT @")).count();
    assert_eq!(retweet_texts, 29);
    assert!(
        bundles
            .iter()
            .filter(|bundle| bundle.post.text.starts_with("RT @"))
            .all(|bundle| !bundle.post.mentions.is_empty())
    );
}

#[test]
fn stream_file_yields_seven_good_records_and_a_malformed_eighth() {
    let results = parse_lines("tweets/v2/twarc-csv-streaming_output_with_error.jsonl");
    assert_eq!(results.len(), 8);
    for (line, result) in &results[..7] {
        let events = result.as_ref().unwrap_or_else(|error| panic!("line {line}: {error}"));
        assert_eq!(bundles(events).len(), 1, "one post per stream line");
    }
    let (line, last) = &results[7];
    assert_eq!(*line, 8);
    let error = last.as_ref().unwrap_err();
    assert!(matches!(error, ParseError::Json(_)), "{error}");
    assert!(error.to_string().contains("EOF"), "{error}");
}

#[test]
fn hashtags_after_emoji_are_read_whole() {
    let results = parse_lines("tweets/v2/twarc-csv-streaming_output_with_error.jsonl");
    let events = results[3].1.as_ref().unwrap();
    let post = &bundles(events)[0].post;
    assert!(!post.hashtags.is_empty());
    for tag in &post.hashtags {
        assert!(post.text.contains(&format!("#{tag}")), "{tag} in {}", post.text);
    }
}

#[test]
fn newer_field_names_are_accepted() {
    let line = r#"{"data":{"id":"1800000000000000001","text":"RT @bts_bighit: hello #BTS","author_id":"1","created_at":"2024-06-01T00:00:00.000Z","referenced_posts":[{"type":"reposted","id":"1800000000000000000"}],"public_metrics":{"repost_count":7,"like_count":3}},"includes":{"users":[{"id":"1","username":"fan","name":"Fan"},{"id":"2","username":"bts_bighit","name":"BIGHIT"}],"tweets":[{"id":"1800000000000000000","text":"hello #BTS","author_id":"2","created_at":"2024-05-31T00:00:00.000Z"}]},"matching_rules":[{"id":"1","tag":"bts"}]}"#;
    let events = Parser::new().parse(&record("test", 1, line)).unwrap();
    let bundle = bundles(&events)[0];
    assert_eq!(bundle.post.kind, Kind::Retweet);
    assert_eq!(bundle.post.counts.retweets, 7);
    let original = bundle.retweeted.as_ref().unwrap();
    assert_eq!(
        (original.author.handle.as_str(), original.hashtags.as_slice()),
        ("bts_bighit", &["BTS".to_owned()][..])
    );
}

#[test]
fn v1_stream_lines_have_their_full_extended_text() {
    let results = parse_lines("tweets/v1.1/python-twitter-stream-lines.jsonl");
    assert_eq!(results.len(), 72);
    let mut n_quotes = 0;
    let text = read("tweets/v1.1/python-twitter-stream-lines.jsonl");
    for ((line, result), raw) in results.iter().zip(text.lines()) {
        let events = result.as_ref().unwrap_or_else(|error| panic!("line {line}: {error}"));
        let bundle = bundles(events)[0];
        let post = &bundle.post;
        assert_ne!(post.kind, Kind::Retweet);
        // Every line is a cut compatibility-mode tweet; the post has the whole text.
        let value: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(value["truncated"], true);
        assert_eq!(post.text, value["extended_tweet"]["full_text"].as_str().unwrap(), "line {line}");
        assert_eq!(post.id, value["id_str"].as_str().unwrap());
        if bundle.quoted.is_some() {
            n_quotes += 1;
        }
    }
    assert_eq!(n_quotes, 8);
    let all_tags: Vec<&String> = results
        .iter()
        .flat_map(|(_, result)| bundles(result.as_ref().unwrap()).into_iter().map(|bundle| &bundle.post.hashtags))
        .flatten()
        .collect();
    for tag in ["BTSARMY", "수호", "SUHO", "iHeartAwards"] {
        assert!(all_tags.iter().any(|seen| *seen == tag), "{tag}");
    }
}

#[test]
fn v1_extended_tweet_text_and_entities_are_used() {
    let payload = read("tweets/v1.1/python-twitter-streaming-extended-tweet.json");
    let value: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let events = Parser::new().parse(&record("test", 1, &payload)).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.text, value["extended_tweet"]["full_text"].as_str().unwrap());
    assert_eq!(post.id, value["id_str"].as_str().unwrap());
}

#[test]
fn simdjson_search_page_maps_every_status() {
    let payload = read("tweets/v1.1/simdjson-search-ja.json");
    let events = Parser::new().parse(&record("test", 1, &payload)).unwrap();
    let bundles = bundles(&events);
    assert_eq!(bundles.len(), 100);
    let retweets: Vec<_> = bundles.iter().filter(|bundle| bundle.post.kind == Kind::Retweet).collect();
    assert_eq!(retweets.len(), 73);
    assert!(retweets.iter().all(|bundle| {
        let original = bundle.retweeted.as_ref().unwrap();
        bundle.post.retweeted_id.as_deref() == Some(original.id.as_str()) && !original.author.handle.is_empty()
    }));
    // Ids are `id_str`: the numeric `id` would have lost precision.
    let value: serde_json::Value = serde_json::from_str(&payload).unwrap();
    for (bundle, status) in bundles.iter().zip(value["statuses"].as_array().unwrap()) {
        assert_eq!(bundle.post.id, status["id_str"].as_str().unwrap());
        assert_eq!(bundle.post.author.handle, status["user"]["screen_name"].as_str().unwrap());
    }
    let langs = |lang: &str| bundles.iter().filter(|bundle| bundle.post.lang.as_deref() == Some(lang)).count();
    assert_eq!((langs("ja"), langs("zh")), (96, 4));
    let tags: Vec<&String> = bundles.iter().flat_map(|bundle| &bundle.post.hashtags).collect();
    assert!(tags.iter().any(|tag| *tag == "RTした人にやる"));
    // "Sun Aug 31 00:29:15 +0000 2014", Twitter's own time format.
    assert_eq!(bundles[0].post.created_at.to_rfc3339(), "2014-08-31T00:29:15+00:00");
    assert_eq!(bundles[0].post.id, "505874924095815681");
}

#[test]
fn v1_timeline_arrays_and_tweet_update_samples_parse() {
    let payload = read("tweets/v1.1/tweepy-home-timeline.json");
    let events = Parser::new().parse(&record("test", 1, &payload)).unwrap();
    let bundles = bundles(&events);
    assert_eq!(bundles.len(), 18);
    assert_eq!(bundles.iter().filter(|bundle| bundle.post.kind == Kind::Retweet).count(), 7);
    let dir = common::testdata("tweets/v1.1/tweet-updates");
    let mut files = Vec::new();
    for group in ["original/classic", "original/lt140-hidden", "original/gt140-hidden-extended", "initial"] {
        for entry in std::fs::read_dir(format!("{dir}/{group}")).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    let mut n_malformed = 0;
    for file in &files {
        let payload = std::fs::read_to_string(file).unwrap();
        match Parser::new().parse(&record("test", 1, &payload)) {
            Ok(events) => assert_eq!(events.len(), 1, "{}", file.display()),
            // Two JSON values back to back are not one record.
            Err(ParseError::Json(message)) => {
                assert!(message.contains("trailing"), "{}: {message}", file.display());
                n_malformed += 1;
            }
            Err(error) => panic!("{}: {error}", file.display()),
        }
    }
    assert_eq!(files.len(), 31);
    assert_eq!(n_malformed, 2);
    let retweet = read("tweets/v1.1/tweet-updates/original/classic/retweet.json");
    let events = Parser::new().parse(&record("test", 1, &retweet)).unwrap();
    assert!(common::bundles(&events)[0].retweeted.is_some());
}

#[test]
fn v1_delete_notices_delete() {
    let notice = r#"{"delete":{"status":{"id":1234567890123456789,"id_str":"1234567890123456789","user_id":3,"user_id_str":"3"},"timestamp_ms":"1520000000000"}}"#;
    let events = Parser::new().parse(&record("test", 1, notice)).unwrap();
    assert_eq!(events, vec![PostEvent::Delete { id: "1234567890123456789".to_owned() }]);
    assert!(Parser::new().parse(&record("test", 1, r#"{"delete":{}}"#)).is_err());
}
