//! Pictures, avatars, link cards, sensitivity and permalinks from every
//! source's real recordings (and, where the recordings have none, from the
//! documented shapes).

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{bundles, parse_lines, read};
use ingest::Parser;
use model::{MediaKind, Post, PostEvent};

fn all_posts(events: &[PostEvent]) -> Vec<&Post> {
    bundles(events)
        .into_iter()
        .flat_map(|bundle| {
            std::iter::once(&bundle.post).chain(bundle.retweeted.as_deref()).chain(bundle.quoted.as_deref())
        })
        .collect()
}

#[test]
fn kpop_v2_posts_carry_photos_avatars_and_permalinks() {
    let payload = read("tweets/v2/twarc-csv-kpop.jsonl");
    let page: serde_json::Value = serde_json::from_str(payload.trim()).unwrap();
    // What the recording says, joined by hand: media key → type, and the
    // posts whose attachments name a photo that `includes.media` has.
    let media_types: HashMap<&str, &str> = page["includes"]["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|media| (media["media_key"].as_str().unwrap(), media["type"].as_str().unwrap()))
        .collect();
    let recorded = page["data"].as_array().unwrap().iter().chain(page["includes"]["tweets"].as_array().unwrap());
    let with_photo: Vec<&str> = recorded
        .filter(|tweet| {
            tweet["attachments"]["media_keys"].as_array().is_some_and(|keys| {
                keys.iter().any(|key| key.as_str().and_then(|key| media_types.get(key)) == Some(&"photo"))
            })
        })
        .map(|tweet| tweet["id"].as_str().unwrap())
        .collect();
    assert!(with_photo.len() >= 19, "{}", with_photo.len());

    let results = parse_lines("tweets/v2/twarc-csv-kpop.jsonl");
    let events = results[0].1.as_ref().unwrap();
    let posts = all_posts(events);
    let by_id: HashMap<&str, &Post> = posts.iter().map(|post| (post.id.as_str(), *post)).collect();
    for id in &with_photo {
        let post = by_id[id];
        let photo = post.media.iter().find(|media| media.kind == MediaKind::Photo).unwrap_or_else(|| panic!("{id}"));
        let url = photo.url.as_deref().unwrap();
        assert!(url.starts_with("https://pbs.twimg.com/media/"), "{url}");
        assert!(photo.width.is_some() && photo.height.is_some());
        assert!(photo.preview_url.as_deref().unwrap().ends_with("&name=small"));
    }
    // The GIF and the video have posters.
    assert!(posts.iter().flat_map(|post| &post.media).any(|media| media.kind == MediaKind::Gif
        && media.preview_url.as_deref().is_some_and(|url| url.starts_with("https://pbs.twimg.com/"))));
    assert!(posts.iter().flat_map(|post| &post.media).any(|media| media.kind == MediaKind::Video));

    let with_avatar = posts.iter().filter(|post| post.author.avatar_url.is_some()).count();
    assert!(with_avatar * 100 >= posts.len() * 95, "{with_avatar} of {}", posts.len());
    assert!(posts.iter().all(|post| {
        post.author.avatar_url.as_deref().is_none_or(|url| url.starts_with("https://") && url.contains(".twimg.com/"))
    }));
    for post in &posts {
        let permalink = post.permalink.as_deref().unwrap();
        assert_eq!(permalink, format!("https://x.com/{}/status/{}", post.author.handle, post.id));
    }
    // X marks four posts of the page possibly sensitive.
    let n_sensitive = bundles(events).iter().filter(|bundle| bundle.post.sensitive).count();
    assert_eq!(n_sensitive, 4);
    // The first post links a page that X unwound to a card with a picture.
    let first = &bundles(events)[0].post;
    assert_eq!(first.id, "1440717170493689866");
    let original = bundles(events)[0].retweeted.as_deref().unwrap();
    let card = original.card.as_ref().or(first.card.as_ref()).unwrap();
    assert_eq!(card.url, "https://www.chartsecuador.biz/");
    assert_eq!(card.title, "NOTICIAS :: CHARTS :: REVIEWS :: VIDEO :: NUEVA MUSICA");
    assert!(card.image_url.as_deref().unwrap().starts_with("https://pbs.twimg.com/news_img/"));
}

#[test]
fn v1_extended_entities_give_every_picture_and_the_gif_video() {
    let mut parser = Parser::new();
    let events = parser.parse_payload(&read("tweets/v1.1/tweepy-home-timeline.json")).unwrap();
    let posts = all_posts(&events);
    let media: Vec<_> = posts.iter().flat_map(|post| &post.media).collect();
    let photo = media
        .iter()
        .find(|media| media.url.as_deref() == Some("https://pbs.twimg.com/media/EtzDp18XMAIbsk8.jpg"))
        .unwrap();
    assert_eq!((photo.kind, photo.width, photo.height), (MediaKind::Photo, Some(1200), Some(1200)));
    let gif = media.iter().find(|media| media.kind == MediaKind::Gif).unwrap();
    assert_eq!(gif.preview_url.as_deref(), Some("https://pbs.twimg.com/tweet_video_thumb/EtrDt1TVcAEckoj.jpg"));
    assert!(gif.url.as_deref().unwrap().starts_with("https://video.twimg.com/"), "{:?}", gif.url);
    assert!(
        posts.iter().all(|post| post
            .author
            .avatar_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://pbs.twimg.com/")))
    );
    assert!(
        posts
            .iter()
            .all(|post| post.permalink.as_deref().is_some_and(|url| url.ends_with(&format!("/status/{}", post.id))))
    );
}

#[test]
fn jetstream_images_cards_and_profiles() {
    let mut parser = Parser::new();
    let mut posts = Vec::new();
    for line in read("bluesky/jetstream-v1-production-window.jsonl").lines() {
        if let Ok(events) = parser.parse_payload(line) {
            posts.extend(bundles(&events).into_iter().map(|bundle| bundle.post.clone()));
        }
    }
    let photo_post = posts.iter().find(|post| post.id.ends_with("/3mptbxs3hq22j")).unwrap();
    let photo = &photo_post.media[0];
    assert_eq!(
        photo.url.as_deref(),
        Some(
            "https://cdn.bsky.app/img/feed_fullsize/plain/did:plc:6aw7u7xjbaiznddugigmdhvc/bafkreicwsq23gkygrgpijv7ocssxdyjokfv3quss3f2dg4csds3jpeqkwe@jpeg"
        )
    );
    assert!(photo.preview_url.as_deref().unwrap().contains("/feed_thumbnail/plain/"));
    assert_eq!((photo.width, photo.height, photo.alt.as_deref()), (Some(4000), Some(3011), None));
    assert_eq!(
        photo_post.permalink.as_deref(),
        Some("https://bsky.app/profile/did:plc:6aw7u7xjbaiznddugigmdhvc/post/3mptbxs3hq22j")
    );
    let card_post = posts.iter().find(|post| post.id.ends_with("/3mptbyoeyc22k")).unwrap();
    let card = card_post.card.as_ref().unwrap();
    assert_eq!(card.url, "https://www.youtube.com/watch?v=V5lDo-jw8mA");
    assert_eq!(card.title, "What does America's 250th anniversary mean to Native Americans?");
    assert_eq!(
        card.image_url.as_deref(),
        Some(
            "https://cdn.bsky.app/img/feed_thumbnail/plain/did:plc:dclwtltrt2ggsryagfzk7dp4/bafkreias7oxbr6swsuggccmtnqpoeami4jza5x4w3urltn6gzhqf4k6k2e@jpeg"
        )
    );
    assert_eq!(posts.iter().filter(|post| post.card.is_some()).count(), 3);
    assert!(
        posts
            .iter()
            .all(|post| post.permalink.as_deref().is_some_and(|url| url.starts_with("https://bsky.app/profile/did:")))
    );
}

#[test]
fn a_profile_record_names_the_account_and_gives_its_avatar() {
    let profile = read("bluesky/jetstream-v1-golden.jsonl")
        .lines()
        .find(|line| line.contains("\"app.bsky.actor.profile\""))
        .unwrap()
        .to_owned();
    let did = "did:plc:o6t5vwyr7ae73foww7bgye4r";
    let post = format!(
        r#"{{"did":"{did}","time_us":1779719010689999,"kind":"commit","commit":{{"rev":"x","operation":"create","collection":"app.bsky.feed.post","rkey":"3mabc","record":{{"$type":"app.bsky.feed.post","text":"hi","createdAt":"2026-02-15T00:00:00Z","labels":{{"$type":"com.atproto.label.defs#selfLabels","values":[{{"val":"sexual"}}]}},"embed":{{"$type":"app.bsky.embed.recordWithMedia","record":{{"record":{{"uri":"at://did:plc:abc/app.bsky.feed.post/3mq","cid":"bafy"}}}},"media":{{"$type":"app.bsky.embed.video","video":{{"$type":"blob","ref":{{"$link":"bafkreivideo"}},"mimeType":"video/mp4"}},"alt":"a clip","aspectRatio":{{"width":1920,"height":1080}}}}}}}},"cid":"bafy"}}}}"#
    );
    let mut parser = Parser::new();
    assert_eq!(parser.parse_payload(&profile).unwrap(), Vec::new());
    let events = parser.parse_payload(&post).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.author.name, "Multiversal Lokis Unit🔞");
    assert_eq!(
        post.author.avatar_url.as_deref(),
        Some(
            "https://cdn.bsky.app/img/avatar/plain/did:plc:o6t5vwyr7ae73foww7bgye4r/bafkreieajxclqzwk2mczx7hxmoboqpuiveqlbm35gsda5xlaqfmlryu4ri@jpeg"
        )
    );
    assert!(post.sensitive);
    assert_eq!(post.quoted_id.as_deref(), Some("at://did:plc:abc/app.bsky.feed.post/3mq"));
    let video = &post.media[0];
    assert_eq!(video.kind, MediaKind::Video);
    assert_eq!(
        video.preview_url.as_deref(),
        Some(format!("https://video.bsky.app/watch/{did}/bafkreivideo/thumbnail.jpg").as_str())
    );
    assert_eq!((video.width, video.alt.as_deref()), (Some(1920), Some("a clip")));
}

#[test]
fn mastodon_avatar_card_sensitive_and_url() {
    let mut parser = Parser::new();
    let events = parser.parse_payload(&read("mastodon/docs-examples/status-entity-example.json")).unwrap();
    let post = &bundles(&events)[0].post;
    assert_eq!(post.permalink.as_deref(), Some("https://mastodon.social/@Gargron/103270115826048975"));
    assert_eq!(
        post.author.avatar_url.as_deref(),
        Some("https://files.mastodon.social/accounts/avatars/000/000/001/original/d96d39a0abb45b92.jpg")
    );
    let card = post.card.as_ref().unwrap();
    assert!(card.url.starts_with("https://www.theguardian.com/money/2019/dec/07/"));
    assert_eq!(card.image_url, None);

    let boost = parser.parse_payload(&read("mastodon/mastodon-py/rest-reblog-status.json")).unwrap();
    assert!(all_posts(&boost).iter().any(|post| post.sensitive));

    // The documented MediaAttachment shape (the recordings have none).
    let status = r#"{"id":"1","uri":"https://m.example/users/a/statuses/1","url":"https://m.example/@a/1","created_at":"2024-01-01T00:00:00.000Z","content":"<p>pics</p>","sensitive":true,"account":{"id":"9","acct":"a","username":"a","display_name":"A","url":"https://m.example/@a","avatar":"https://m.example/a.png"},"media_attachments":[{"id":"22","type":"image","url":"https://files.m.example/original/a.jpg","preview_url":"https://files.m.example/small/a.jpg","remote_url":null,"description":"A cat on a keyboard","meta":{"original":{"width":640,"height":480},"small":{"width":400,"height":300}}},{"id":"23","type":"gifv","url":"https://files.m.example/original/b.mp4","preview_url":"https://files.m.example/small/b.png","description":null},{"id":"24","type":"audio","url":"https://files.m.example/c.mp3"}]}"#;
    let events = parser.parse_payload(status).unwrap();
    let post = &bundles(&events)[0].post;
    assert!(post.sensitive);
    assert_eq!(post.media.len(), 2);
    assert_eq!(post.media[0].kind, MediaKind::Photo);
    assert_eq!(post.media[0].alt.as_deref(), Some("A cat on a keyboard"));
    assert_eq!((post.media[0].width, post.media[0].height), (Some(640), Some(480)));
    assert_eq!(post.media[1].kind, MediaKind::Gif);
    assert_eq!(post.media[1].preview_url.as_deref(), Some("https://files.m.example/small/b.png"));
}

#[test]
fn demo_posts_have_local_avatars_and_pictures() {
    let mut generator = ingest::DemoGenerator::new(7);
    let posts: Vec<Post> = (0..300).map(|_| generator.next_bundle(false).post).collect();
    assert!(
        posts.iter().all(|post| post
            .author
            .avatar_url
            .as_deref()
            .is_some_and(|url| url.starts_with(model::DEMO_MEDIA_ORIGIN)))
    );
    let with_media: Vec<_> = posts.iter().filter(|post| post.has_media && post.kind != model::Kind::Retweet).collect();
    assert!(!with_media.is_empty());
    for post in with_media {
        assert!((1..=4).contains(&post.media.len()));
        assert!(post.media.iter().all(|media| media.alt.is_some() && media.width.is_some()));
    }
}
