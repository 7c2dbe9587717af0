//! Route-level tests of the public HTTP surface through `Router::oneshot`
//! (issue 18): success and error paths answer the documented statuses and
//! `{error, code}` bodies, on the real embedded store and trends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{self, Request, StatusCode};
use model::{Author, Post, PostBundle, PostEvent, Source};
use serde_json::Value;
use store::{EmbeddedStore, PostStore, WriteBatch};
use tower::ServiceExt as _;

/// Redeems nothing: these tests never open a socket.
struct NoTickets;

#[async_trait::async_trait]
impl gateway::Tickets for NoTickets {
    async fn redeem(&self, _ticket: &str) -> Option<gateway::TicketGrant> {
        None
    }
}

struct Fixture {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

async fn fixture(config: gateway::GatewayConfig) -> Fixture {
    fixture_with_posts(config, 0).await
}

/// The fixture, plus `extra` English posts without a hashtag (ids from 100).
async fn fixture_with_posts(config: gateway::GatewayConfig, extra: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let now = chrono::Utc::now();
    let events = (0..extra)
        .map(|idx| {
            let author = Author { id: "8".into(), handle: "talker".into(), name: "Talker".into(), avatar_url: None };
            let post = Post {
                lang: Some("en".into()),
                ..Post::new(
                    (100 + idx).to_string(),
                    Source::Demo,
                    author,
                    "just talking",
                    now - chrono::Duration::milliseconds(idx as i64 + 1),
                )
            };
            PostEvent::Upsert(PostBundle::single(post))
        })
        .collect();
    store.apply(WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();
    let post = Post {
        lang: Some("en".into()),
        hashtags: vec!["BTS".into()],
        ..Post::new(
            "1",
            Source::Demo,
            Author { id: "7".into(), handle: "fan".into(), name: "Fan".into(), avatar_url: None },
            "hello #BTS 방탄",
            chrono::Utc::now(),
        )
    };
    store
        .apply(WriteBatch { events: vec![PostEvent::Upsert(PostBundle::single(post))], checkpoints: Vec::new() })
        .await
        .unwrap();
    let state = gateway::AppState::new(
        Arc::new(store),
        Arc::new(trends::EmbeddedTrends::new()),
        Arc::new(feed::Hub::new(feed::HubConfig::default())),
        Arc::new(NoTickets),
        pipeline::Metrics::new().unwrap(),
        config,
    );
    Fixture { router: gateway::router(state, axum::Router::new()), _dir: dir }
}

async fn get(fixture: &Fixture, uri: &str) -> (StatusCode, http::HeaderMap, Value) {
    get_from(fixture, uri, "192.0.2.1:50000").await
}

async fn get_from(fixture: &Fixture, uri: &str, peer: &str) -> (StatusCode, http::HeaderMap, Value) {
    let mut request = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = fixture.router.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_timeline_and_trends_error_is_json_with_its_code() {
    let fixture = fixture(gateway::GatewayConfig::default()).await;
    let (status, _, body) = get(&fixture, "/api/timeline?q=%23bts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["posts"][0]["id"], "1");
    let (status, _, body) = get(&fixture, "/api/timeline?q=%EB%B0%A9%ED%83%84").await;
    assert_eq!((status, body["posts"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "Korean search");

    for (uri, code) in [
        ("/api/timeline?q=%22unclosed", "bad_query"),
        ("/api/timeline?q=bts&limit=abc", "bad_params"),
        ("/api/timeline?q=bts&before=not-a-cursor", "bad_cursor"),
        ("/api/trends?window=7m", "bad_window"),
        ("/api/timeline?q=bts&limit=-1", "bad_params"),
    ] {
        let (status, headers, body) = get(&fixture, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], code, "{uri}: {body}");
        assert!(body["error"].as_str().is_some_and(|error| !error.is_empty()), "{uri}: {body}");
        assert!(headers[http::header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"), "{uri}");
    }
    let (_, _, body) = get(&fixture, "/api/timeline?q=%22unclosed").await;
    assert_eq!(body["position"], 0);
    let (status, _, _) = get(&fixture, "/api/trends?window=5m").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_over_its_timeline_rate_gets_429_with_retry_after() {
    let config = gateway::GatewayConfig {
        timeline_rate: gateway::BucketConfig { per_second: 0.5, burst: 3.0 },
        ..gateway::GatewayConfig::default()
    };
    let fixture = fixture(config).await;
    for _ in 0..3 {
        assert_eq!(get(&fixture, "/api/timeline?q=bts").await.0, StatusCode::OK);
    }
    let (status, headers, body) = get(&fixture, "/api/timeline?q=bts").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], "rate_limited");
    let retry_after: u64 = headers[http::header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
}

/// Timeline reads `peer` gets answered 200 before its first 429, sending `uri` (at most 20).
async fn reads_before_refusal(fixture: &Fixture, uri: &str, peer: &str) -> usize {
    for served in 0..20 {
        let (status, _, _) = get_from(fixture, uri, peer).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return served;
        }
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    20
}

#[tokio::test]
async fn a_client_sending_costly_queries_is_charged_for_the_work_and_refused_sooner() {
    // Every post that has `talking` also has `just`: the read walks all 3,000 postings of
    // `talking` and tests each post against the negation, thousands of work units for an
    // empty page.
    let costly = "/api/timeline?q=talking%20-just&limit=100";
    let cheap = "/api/timeline?q=%23bts";
    let config = |work_per_token| gateway::GatewayConfig {
        timeline_rate: gateway::BucketConfig { per_second: 0.01, burst: 10.0 },
        timeline_work_per_token: work_per_token,
        ..gateway::GatewayConfig::default()
    };
    let fixture = fixture_with_posts(config(1000), 3000).await;
    let cheap_reads = reads_before_refusal(&fixture, cheap, "192.0.2.1:1").await;
    let costly_reads = reads_before_refusal(&fixture, costly, "192.0.2.2:1").await;
    assert_eq!(cheap_reads, 10, "an ordinary page costs one token");
    assert!((1..=4).contains(&costly_reads), "each costly read also paid for its work: {costly_reads} reads");

    // With the charge off, every read costs one token, however costly.
    let fixture = fixture_with_posts(config(0), 3000).await;
    assert_eq!(reads_before_refusal(&fixture, costly, "192.0.2.2:1").await, 10);
}
