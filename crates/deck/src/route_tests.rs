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
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
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
    let mut request = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let peer: SocketAddr = "192.0.2.1:50000".parse().unwrap();
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
