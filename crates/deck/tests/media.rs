//! The media fields and the `/media/…` proxy end to end on the real binary:
//! the real `#kpop` X v2 page gives photos, avatars and permalinks; a
//! stand-in CDN on 127.0.0.1 (allowed for this test only) serves images
//! through Deck's origin, which caches them and refuses non-images, hosts
//! off the allow-list and, without the test flag, loopback addresses; the
//! demo's pictures are drawn by Deck itself.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::header;
use common::{Deck, testdata};

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8,
    6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0, 1, 0, 0, 5, 0, 1,
    0x0D, 0x0A, 0x2D, 0xB4, 0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// The stand-in CDN: a real PNG, HTML that claims to be a PNG, and a page.
async fn start_cdn() -> (u16, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/img.png", get(|| async { ([(header::CONTENT_TYPE, "image/png")], PNG) }))
        .route(
            "/fake.png",
            get(|| async { ([(header::CONTENT_TYPE, "image/png")], "<html><script>x</script></html>") }),
        )
        .route("/page", get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html></html>") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (port, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
}

/// One X v2 stream line whose photo, avatar and card picture live at `base`.
fn stream_line(id: &str, photo: &str, avatar: &str, card_image: &str) -> String {
    serde_json::json!({
        "data": {
            "id": id, "text": "pictures #mediatest https://t.co/x", "author_id": "42", "lang": "en",
            "created_at": "2024-05-01T10:00:00.000Z", "possibly_sensitive": true,
            "attachments": {"media_keys": [format!("3_{id}")]},
            "entities": {"urls": [{"start": 19, "end": 34, "url": "https://t.co/x", "expanded_url": "https://example.com/a",
                "title": "A page", "description": "About it", "images": [{"url": card_image, "width": 600, "height": 300}]}],
                "hashtags": [{"start": 9, "end": 18, "tag": "mediatest"}]}
        },
        "includes": {
            "users": [{"id": "42", "username": "tester", "name": "Tester", "profile_image_url": avatar}],
            "media": [{"media_key": format!("3_{id}"), "type": "photo", "url": photo, "width": 1, "height": 1, "alt_text": "a dot"}]
        }
    })
    .to_string()
}

async fn get(deck: &Deck, path: &str) -> (u16, Option<String>, Vec<u8>) {
    let response = reqwest::get(deck.url(path)).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|value| value.to_str().unwrap().to_owned());
    (status, content_type, response.bytes().await.unwrap().to_vec())
}

async fn wait_for_post(deck: &Deck, query: &str, id: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let posts = deck.whole_timeline(query, 100).await;
        if let Some(post) = posts.into_iter().find(|post| post["id"] == id) {
            return post;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "post {id} not stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn posts_carry_media_and_the_proxy_serves_only_checked_images() {
    let (cdn_port, cdn) = start_cdn().await;
    let base = format!("http://127.0.0.1:{cdn_port}");
    let dir = tempfile::tempdir().unwrap();
    let replay = dir.path().join("media.jsonl");
    let kpop = std::fs::read_to_string(testdata("tweets/v2/twarc-csv-kpop.jsonl")).unwrap();
    let lines = [
        kpop.trim().to_owned(),
        stream_line(
            "1900000000000000001",
            &format!("{base}/img.png"),
            &format!("{base}/fake.png"),
            &format!("{base}/page"),
        ),
        // A host that is not on the allow-list.
        stream_line(
            "1900000000000000002",
            "http://127.0.0.2:9/img.png",
            // Never fetched before the restart, so never cached.
            &format!("{base}/img.png?avatar"),
            &format!("{base}/img.png"),
        ),
    ];
    std::fs::write(&replay, lines.join("\n") + "\n").unwrap();
    let data_dir = dir.path().join("data");
    let source = format!("replay:{}", replay.display());
    let args = ["--source", &source, "--source", "demo", "--demo-rate", "2", "--media-host", "127.0.0.1"];
    let mut test_args = args.to_vec();
    test_args.push("--media-allow-private");
    let mut deck = Deck::start(&data_dir, &test_args).await;

    // The real #kpop page: photos, avatars and permalinks.
    let post = wait_for_post(&deck, "#mediatest", "1900000000000000001").await;
    let kpop = deck.whole_timeline("-zzqqxxnotaword", 100).await;
    let kpop: Vec<_> = kpop
        .into_iter()
        .filter(|post| post["source"] == "x" && post["id"].as_str().unwrap().starts_with("14"))
        .collect();
    assert!(kpop.len() >= 100, "{}", kpop.len());
    let with_avatar = kpop
        .iter()
        .filter(|post| post["author"]["avatar_url"].as_str().is_some_and(|url| url.starts_with("/media/")))
        .count();
    assert!(with_avatar * 100 >= kpop.len() * 95, "{with_avatar} of {}", kpop.len());
    for post in &kpop {
        let permalink = post["permalink"].as_str().unwrap();
        assert!(permalink.ends_with(&format!("/status/{}", post["id"].as_str().unwrap())), "{permalink}");
    }
    // Every post whose message carries a photo (its own, or its retweeted
    // original's) has it in `media`, at a Deck address.
    let photo_posts = x_posts_with_photos(&testdata("tweets/v2/twarc-csv-kpop.jsonl"));
    // 63 posts there name media keys; the pages' `includes.media` resolves 16 of them to photos.
    assert_eq!(photo_posts.len(), 16, "posts with photos in the recording");
    for id in &photo_posts {
        let post = kpop.iter().find(|post| post["id"] == id.as_str()).unwrap_or_else(|| panic!("{id} stored"));
        let media = post["media"].as_array().unwrap();
        assert!(
            media.iter().any(|item| item["kind"] == "photo" && item["url"].as_str().unwrap().starts_with("/media/")),
            "{id}: {media:?}"
        );
    }
    let photo_post = kpop.iter().find(|post| post["id"] == "1440717067863216142").unwrap();
    let photo = &photo_post["media"][0];
    assert_eq!(photo["kind"], "photo");
    assert!(
        photo["url"].as_str().unwrap().starts_with("/media/")
            && photo["preview_url"].as_str().unwrap().starts_with("/media/")
    );

    // Through the proxy: the stand-in CDN's PNG, then from the cache.
    let photo_url = post["media"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(post["media"][0]["alt"], "a dot");
    assert_eq!(post["sensitive"], true);
    assert_eq!(post["permalink"], "https://x.com/tester/status/1900000000000000001");
    let (status, content_type, bytes) = get(&deck, &photo_url).await;
    assert_eq!((status, content_type.as_deref(), bytes.as_slice()), (200, Some("image/png"), PNG));
    assert_eq!(deck.metric("deck_media_cache_files").await, 1.0);
    let (status, _, bytes) = get(&deck, &photo_url).await;
    assert_eq!((status, bytes.as_slice()), (200, PNG));
    assert!(deck.metric("deck_media_requests_total{result=\"hit\"}").await >= 1.0);
    // HTML that says image/png, and a page: refused.
    assert_eq!(get(&deck, post["author"]["avatar_url"].as_str().unwrap()).await.0, 404);
    assert_eq!(get(&deck, post["card"]["image_url"].as_str().unwrap()).await.0, 404);
    // A host off the allow-list: refused.
    let other = wait_for_post(&deck, "#mediatest", "1900000000000000002").await;
    assert_eq!(get(&deck, other["media"][0]["url"].as_str().unwrap()).await.0, 404);
    // Paths that name nothing stored.
    assert_eq!(get(&deck, "/media/bm90LWEtcG9zdA/0").await.0, 404);
    assert_eq!(get(&deck, &photo_url.replace("/0", "/7")).await.0, 404);
    assert!(deck.metric("deck_media_requests_total{result=\"refused\"}").await >= 1.0);

    // Demo pictures are drawn by Deck.
    let demo = deck.whole_timeline("filter:media -#mediatest -#kpop", 20).await;
    let demo_post = demo.iter().find(|post| post["source"] == "demo" && post["media"][0]["url"].is_string());
    if let Some(demo_post) = demo_post {
        let (status, content_type, bytes) = get(&deck, demo_post["media"][0]["url"].as_str().unwrap()).await;
        assert_eq!((status, content_type.as_deref()), (200, Some("image/png")));
        assert!(bytes.starts_with(b"\x89PNG"));
    }
    let any_demo = deck.whole_timeline("-#mediatest -#kpop", 5).await;
    let avatar =
        any_demo.iter().find_map(|post| post["author"]["avatar_url"].as_str().filter(|_| post["source"] == "demo"));
    if let Some(avatar) = avatar {
        assert_eq!(get(&deck, avatar).await.1.as_deref(), Some("image/png"));
    }
    deck.terminate();

    // Without the test flag, loopback is refused even for an allowed host;
    // what is cached is still served.
    let deck = Deck::start(&data_dir, &args).await;
    let (status, _, body) = get(&deck, &photo_url).await;
    assert_eq!(status, 200, "{photo_url}: {}", String::from_utf8_lossy(&body));
    assert_eq!(get(&deck, other["author"]["avatar_url"].as_str().unwrap()).await.0, 404);
    cdn.abort();
}

/// Ids of the X v2 posts in a recording whose message carries a photo in
/// `includes.media`: their own, or (a retweet) their original's.
fn x_posts_with_photos(path: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let photos: Vec<&str> = message["includes"]["media"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| item["type"] == "photo")
            .filter_map(|item| item["media_key"].as_str())
            .collect();
        let has_photo = |tweet: &serde_json::Value| {
            tweet["attachments"]["media_keys"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|key| key.as_str().is_some_and(|key| photos.contains(&key)))
        };
        // A stream line holds one tweet; a page of the search API (as here) several.
        let tweets = match &message["data"] {
            serde_json::Value::Array(tweets) => tweets.iter().collect::<Vec<_>>(),
            tweet => vec![tweet],
        };
        for tweet in tweets {
            let original = tweet["referenced_tweets"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|reference| reference["type"] == "retweeted")
                .and_then(|reference| {
                    message["includes"]["tweets"].as_array()?.iter().find(|included| included["id"] == reference["id"])
                });
            if has_photo(tweet) || original.is_some_and(has_photo) {
                ids.insert(tweet["id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids
}
