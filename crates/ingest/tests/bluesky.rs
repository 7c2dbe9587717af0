//! Bluesky Jetstream events from the recorded test data through the parser.

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{bundles, parse_lines, read, record};
use ingest::Parser;
use model::{Kind, PostEvent, Source};

const WINDOW: &str = "bluesky/jetstream-v1-production-window.jsonl";

#[test]
fn production_window_gives_the_documented_counts() {
    let results = parse_lines(WINDOW);
    assert_eq!(results.len(), 152);
    let mut events = Vec::new();
    for (line, result) in results {
        events.extend(result.unwrap_or_else(|error| panic!("line {line}: {error}")));
    }
    let posts: Vec<_> = bundles(&events).into_iter().map(|bundle| &bundle.post).collect();
    let count = |check: &dyn Fn(&model::Post) -> bool| posts.iter().filter(|post| check(post)).count();
    assert_eq!(count(&|post| post.kind != Kind::Retweet), 17);
    assert_eq!(count(&|post| post.kind == Kind::Retweet), 15);
    assert_eq!(count(&|post| post.kind == Kind::Reply), 8);
    assert_eq!(count(&|post| post.has_media), 2);
    let deletes: Vec<_> = events.iter().filter(|event| matches!(event, PostEvent::Delete { .. })).collect();
    assert_eq!(
        deletes,
        [&PostEvent::Delete {
            id: "at://did:plc:4smmjsqf6l5jkzczvw6vsrqc/app.bsky.feed.post/3mpt73z3ejc2p".to_owned()
        }]
    );
    for post in &posts {
        assert_eq!(post.source, Source::Bluesky);
        assert!(post.id.starts_with(&format!("at://{}/app.bsky.feed.", post.author.id)));
        // No identity event named these accounts' handles: the DID stands in.
        assert_eq!(post.author.handle, post.author.id);
        assert!(post.author.name.is_empty());
    }
    for repost in posts.iter().filter(|post| post.kind == Kind::Retweet) {
        assert!(repost.id.contains("/app.bsky.feed.repost/"));
        assert!(repost.retweeted_id.as_deref().unwrap().starts_with("at://"));
        assert!(repost.text.is_empty() && repost.hashtags.is_empty());
    }
    for reply in posts.iter().filter(|post| post.kind == Kind::Reply) {
        let reply_to = reply.reply_to.as_ref().unwrap();
        let parent = reply_to.post_id.as_deref().unwrap();
        assert!(parent.starts_with(&format!("at://{}/", reply_to.author_id.as_deref().unwrap())));
    }
    let langs: std::collections::HashSet<_> = posts.iter().filter_map(|post| post.lang.as_deref()).collect();
    for lang in ["en", "tr", "ja", "ko", "de", "ru", "es"] {
        assert!(langs.contains(lang), "{lang}");
    }
    assert!(posts.iter().any(|post| post.text == "이쁘시네용~~~" && post.lang.as_deref() == Some("ko")));
    assert_eq!(count(&|post| post.kind != Kind::Retweet && post.lang.is_none()), 1);
}

#[test]
fn facets_give_hashtags_and_links_at_their_byte_offsets() {
    let lines: Vec<String> = read(WINDOW).lines().map(str::to_owned).collect();
    let mut parser = Parser::new();
    let post_at = |parser: &mut Parser, line: usize| {
        let events = parser.parse(&record("jetstream", line as u64, &lines[line - 1])).unwrap();
        bundles(&events)[0].post.clone()
    };
    let post = post_at(&mut parser, 46);
    assert_eq!(post.hashtags, ["HowToTellAiToShutUp", "IndieRebellion"]);
    let post = post_at(&mut parser, 148);
    assert_eq!(post.hashtags, ["talesatwonderworld", "balanwonderworldoc"]);
    // The link facet gives the whole URL, where the text shows it shortened.
    assert_eq!(
        post.urls[0],
        "https://www.tumblr.com/tempo-tales/765681292369166336/behind-them-timmi-and-wankyu-follow-silently-but?source=share"
    );
    assert!(post.text.contains("www.tumblr.com/tempo-tales/..."));
    let post = post_at(&mut parser, 2);
    assert_eq!(post.urls[0], "https://www.youtube.com/watch?v=V5lDo-jw8mA");
}

#[test]
fn multibyte_text_before_a_facet_is_counted_in_bytes() {
    // "지민 " is 7 bytes: the tag facet starts at byte 7, not character 3.
    let line = r##"{"did":"did:plc:fan","time_us":1783175888000000,"kind":"commit","commit":{"rev":"x","operation":"create","collection":"app.bsky.feed.post","rkey":"3abc","record":{"$type":"app.bsky.feed.post","createdAt":"2026-07-04T14:38:00.000Z","langs":["ko"],"text":"지민 #BTS @army.bsky.social 💜","facets":[{"index":{"byteStart":7,"byteEnd":11},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"BTS"}]},{"index":{"byteStart":12,"byteEnd":29},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:army"}]}],"embed":{"$type":"app.bsky.embed.recordWithMedia","record":{"$type":"app.bsky.embed.record","record":{"uri":"at://did:plc:bts/app.bsky.feed.post/3xyz","cid":"c"}},"media":{"$type":"app.bsky.embed.images","images":[]}}},"cid":"c"}}"##;
    let events = Parser::new().parse(&record("jetstream", 1, line)).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.hashtags, ["BTS"]);
    // Handle unknown: the text at the facet's bytes shows it.
    assert_eq!(post.mentions, ["army.bsky.social"]);
    assert_eq!(post.kind, Kind::Quote);
    assert_eq!(post.quoted_id.as_deref(), Some("at://did:plc:bts/app.bsky.feed.post/3xyz"));
    assert!(post.has_media);
}

#[test]
fn a_facet_that_breaks_the_lexicon_is_skipped_and_the_post_kept() {
    // Negative, fractional and huge byte indices, a tag that is a number: each
    // such facet goes, the post and its good facets stay.
    let line = r##"{"did":"did:plc:fan","time_us":1783175888000000,"kind":"commit","commit":{"rev":"x","operation":"create","collection":"app.bsky.feed.post","rkey":"3abd","record":{"$type":"app.bsky.feed.post","createdAt":"2026-07-04T14:38:00.000Z","text":"#BTS forever","facets":[{"index":{"byteStart":-5,"byteEnd":1e300},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"negative"}]},{"index":{"byteStart":0,"byteEnd":4},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":7}]},{"index":{"byteStart":4000000000,"byteEnd":4000000010},"features":[{"$type":"app.bsky.richtext.facet#link","uri":"https://bts.example/"}]},{"index":{"byteStart":0,"byteEnd":4},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"BTS"}]}]},"cid":"c"}}"##;
    let events = Parser::new().parse(&record("jetstream", 1, line)).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.text, "#BTS forever");
    assert_eq!(post.hashtags, ["BTS"]);
    // A link facet's address does not depend on its byte range.
    assert_eq!(post.urls, ["https://bts.example/"]);
}

#[test]
fn identity_events_teach_handles_that_later_posts_use() {
    let mut parser = Parser::new();
    let identity = r#"{"did":"did:plc:q235v55g5unth4zjjdpacfdr","time_us":1779719009157000,"kind":"identity","identity":{"did":"did:plc:q235v55g5unth4zjjdpacfdr","handle":"rsv.example.com","seq":1,"time":"2026-05-25T14:23:28.000Z"}}"#;
    assert_eq!(parser.parse(&record("jetstream", 1, identity)).unwrap(), Vec::new());
    let golden: Vec<String> = read("bluesky/jetstream-v1-golden.jsonl").lines().map(str::to_owned).collect();
    let events = parser.parse(&record("jetstream", 2, &golden[1])).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.author.id, "did:plc:q235v55g5unth4zjjdpacfdr");
    assert_eq!(post.author.handle, "rsv.example.com");
    assert_eq!(post.text, "Try RSV for a good time !!");
    assert_eq!(post.kind, Kind::Reply);
    // A fresh parser has not learned it.
    let events = Parser::new().parse(&record("jetstream", 2, &golden[1])).unwrap();
    assert_eq!(bundles(&events)[0].post.author.handle, "did:plc:q235v55g5unth4zjjdpacfdr");
}

#[test]
fn golden_events_map_by_kind() {
    let results = parse_lines("bluesky/jetstream-v1-golden.jsonl");
    assert_eq!(results.len(), 10);
    let mut kinds = Vec::new();
    for (line, result) in results {
        for event in result.unwrap_or_else(|error| panic!("line {line}: {error}")) {
            kinds.push(match event {
                PostEvent::Upsert(bundle) => bundle.post.kind.as_str().to_owned(),
                PostEvent::Delete { id } => format!("delete {}", id.split('/').nth(3).unwrap()),
            });
        }
    }
    // Likes, follows, profile updates, identity, account and block events
    // carry no posts; the delete is of another lexicon's record.
    assert_eq!(kinds, ["reply", "retweet"]);
}
