//! Mastodon statuses and streaming events from the recorded test data
//! through the parser. Server-Sent Events are turned into the WebSocket
//! frame shape (`{"event", "payload"}`), as a streaming source would.

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{bundles, read, record};
use ingest::{ParseError, Parser};
use model::{Kind, PostEvent, Source};

/// The events of an SSE body as WebSocket-shaped frames.
fn sse_frames(path: &str) -> Vec<(String, String)> {
    let mut frames = Vec::new();
    for block in read(path).split("\n\n") {
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event:") {
                event = Some(name.trim().to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        if let Some(event) = event {
            let frame = serde_json::json!({"stream": ["user"], "event": event, "payload": data.join("\n")});
            frames.push((event, frame.to_string()));
        }
    }
    frames
}

fn parse_all(parser: &mut Parser, frames: &[(String, String)]) -> Vec<(String, Vec<PostEvent>)> {
    frames
        .iter()
        .enumerate()
        .map(|(position, (event, frame))| {
            let events = parser
                .parse(&record("mastodon:http://localhost:3000", position as u64, frame))
                .unwrap_or_else(|error| panic!("{event}: {error}"));
            (event.clone(), events)
        })
        .collect()
}

#[test]
fn user_stream_updates_edits_and_deletes() {
    let mut parser = Parser::new();
    let parsed = parse_all(&mut parser, &sse_frames("mastodon/mastodon-py/stream-user.sse"));
    let names: Vec<&str> = parsed.iter().map(|(event, _)| event.as_str()).collect();
    assert_eq!(names, ["update", "notification", "update", "notification", "status.update", "delete"]);
    let first = &bundles(&parsed[0].1)[0].post;
    assert_eq!(first.id, "http://localhost:3000/ap/users/117020617404561855/statuses/117024236332527350");
    assert_eq!(first.source, Source::Mastodon);
    assert_eq!(first.text, "only real cars respond.");
    assert_eq!(first.author.handle, "mastodonpy_test");
    assert_eq!(first.lang.as_deref(), Some("ja"));
    assert_eq!(first.created_at.to_rfc3339(), "2026-08-02T05:22:17.399+00:00");
    assert!(parsed[1].1.is_empty() && parsed[3].1.is_empty(), "notifications carry no posts");
    let edited = &bundles(&parsed[4].1)[0].post;
    assert_eq!(edited.id, first.id, "an edit upserts the same post");
    // The delete names the local id; the parser remembers its uri.
    assert_eq!(parsed[5].1, [PostEvent::Delete { id: first.id.clone() }]);
}

#[test]
fn every_documented_stream_event_parses() {
    for path in [
        "mastodon/docs-examples/sse-user.sse",
        "mastodon/docs-examples/sse-public.sse",
        "mastodon/docs-examples/sse-public-local.sse",
        "mastodon/docs-examples/sse-hashtag.sse",
        "mastodon/docs-examples/sse-hashtag-local.sse",
        "mastodon/docs-examples/sse-list.sse",
        "mastodon/docs-examples/sse-direct.sse",
        "mastodon/mastodon-py/stream-direct.sse",
        "mastodon/mastodon-py/stream-user-local.sse",
    ] {
        let mut parser = Parser::new();
        let frames = sse_frames(path);
        assert!(!frames.is_empty(), "{path}");
        for (event, events) in parse_all(&mut parser, &frames) {
            let n_posts = bundles(&events).len();
            match event.as_str() {
                "update" | "status.update" => assert_eq!(n_posts, 1, "{path} {event}"),
                _ => assert_eq!(n_posts, 0, "{path} {event}"),
            }
            for bundle in bundles(&events) {
                assert!(!bundle.post.text.contains('<'), "{path}: markup left in {:?}", bundle.post.text);
                assert!(bundle.post.id.starts_with("http"));
            }
        }
    }
}

#[test]
fn tags_keep_the_spelling_of_the_text() {
    let mut parser = Parser::new();
    let parsed = parse_all(&mut parser, &sse_frames("mastodon/docs-examples/sse-public.sse"));
    let (event, events) = &parsed[2];
    assert_eq!(event, "status.update");
    let post = &bundles(events)[0].post;
    assert_eq!(post.hashtags, ["musicTuesday", "piano", "neoclassical", "jazz"]);
    assert_eq!(post.urls, ["https://cstudios.bandcamp.com/track/celestia-gravity-assist-no-19-var-2"]);
    assert!(post.text.starts_with("#musicTuesday\n\nHere's a solo #piano track"), "{:?}", post.text);
    assert!(post.text.ends_with("https://cstudios.bandcamp.com/track/celestia-gravity-assist-no-19-var-2"));
}

#[test]
fn a_boost_is_a_retweet_with_its_original() {
    let payload = read("mastodon/mastodon-py/rest-reblog-status.json");
    let events = Parser::new().parse(&record("test", 1, &payload)).unwrap();
    let bundle = bundles(&events)[0];
    assert_eq!(bundle.post.kind, Kind::Retweet);
    assert!(bundle.post.text.is_empty());
    let original = bundle.retweeted.as_ref().unwrap();
    assert_eq!(original.id, "http://localhost:3000/ap/users/117020565966271181/statuses/117020586019094258");
    assert_eq!(bundle.post.retweeted_id.as_deref(), Some(original.id.as_str()));
    assert_eq!(original.text, "Toot!");
    assert_eq!(original.author.name, "John Lennon");
    assert_eq!(original.counts.retweets, 1);
    assert_eq!(original.lang.as_deref(), Some("en"));
}

#[test]
fn rest_statuses_map_content_tags_and_links() {
    let payload = read("mastodon/mastodon-py/rest-timeline-tag-hoot.json");
    let events = Parser::new().parse(&record("test", 1, &payload)).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.text, "#hoot (hashtag toot)");
    assert_eq!(post.hashtags, ["hoot"]);
    assert!(post.urls.is_empty(), "a hashtag link is not a link");

    let payload = read("mastodon/docs-examples/status-entity-example.json");
    let events = Parser::new().parse(&record("test", 1, &payload)).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.id, "https://mastodon.social/users/Gargron/statuses/103270115826048975");
    assert_eq!(post.author.handle, "Gargron");
    let link = "https://www.theguardian.com/money/2019/dec/07/i-lost-my-193000-inheritance-with-one-wrong-digit-on-my-sort-code";
    assert_eq!(post.text, format!("\"I lost my inheritance with one wrong digit on my sort code\"\n\n{link}"));
    assert_eq!(post.urls, [link]);
}

#[test]
fn websocket_frames_parse() {
    let mut parser = Parser::new();
    let payload = read("mastodon/docs-examples/websocket-update-public.json");
    let events = parser.parse(&record("test", 1, &payload)).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.id, "https://fosstodon.org/users/tobtobxx/statuses/108913983628474640");
    assert_eq!(post.author.handle, "tobtobxx@fosstodon.org");
    assert_eq!(post.text, "And now I can't exit the inner nvim because I mapped escape to the parent vim instance 😂");
    // A delete of a status never seen names nothing to forget.
    let payload = read("mastodon/docs-examples/websocket-delete-public.json");
    assert_eq!(parser.parse(&record("test", 2, &payload)), Ok(Vec::new()));
    let payload = read("mastodon/docs-examples/websocket-filters_changed.json");
    assert_eq!(parser.parse(&record("test", 3, &payload)), Ok(Vec::new()));
    let broken = r#"{"event":"update","payload":"{\"id\":\"1\""}"#;
    assert!(matches!(parser.parse(&record("test", 4, broken)), Err(ParseError::Json(_))));
}
