//! Shared helpers of the auth integration tests: engine URLs, a service on real SQLite,
//! the outbox, and requests through `Router::oneshot`.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth::{
    AuthConfig, AuthService, JwtKey, MemberStore, MemoryRateLimiter, MemoryTicketStore, OutboxMailer, RateLimiter,
    SqlMemberStore, TicketStore,
};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

pub const SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";
pub const PASSWORD: &str = "correct horse battery staple";

/// Configuration with a known key, so tests can forge tokens with it and without it.
pub fn config() -> AuthConfig {
    AuthConfig {
        keys: vec![JwtKey { kid: "k1".into(), secret: SECRET.into() }],
        active_kid: "k1".into(),
        ..AuthConfig::default()
    }
}

/// URL of a real engine from `DECK_TEST_<NAME>` or `DECK_<NAME>`. Missing: the test fails,
/// unless `DECK_SKIP_ENGINES=1`, in which case it says loudly that it skipped.
pub fn engine_url(name: &str, test: &str) -> Option<String> {
    for var in [format!("DECK_TEST_{name}"), format!("DECK_{name}")] {
        if let Ok(url) = std::env::var(&var)
            && !url.trim().is_empty()
        {
            return Some(url);
        }
    }
    if std::env::var("DECK_SKIP_ENGINES").as_deref() == Ok("1") {
        eprintln!("!!!!! {test}: SKIPPED (DECK_SKIP_ENGINES=1): no DECK_TEST_{name} / DECK_{name} !!!!!");
        return None;
    }
    panic!(
        "{test} needs a real engine: set DECK_TEST_{name} or DECK_{name} (eval \"$(scripts/cluster up redis mariadb)\"), \
         or DECK_SKIP_ENGINES=1 to skip"
    );
}

/// A service on a temporary SQLite file, memory tickets and counters, and an outbox.
pub struct Harness {
    pub service: Arc<AuthService>,
    pub router: Router,
    pub outbox: PathBuf,
    pub dir: tempfile::TempDir,
}

pub async fn sqlite_harness(config: AuthConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let members = SqlMemberStore::open_sqlite(&dir.path().join("auth.sqlite")).await.unwrap();
    harness_with(config, dir, Arc::new(members), Arc::new(MemoryTicketStore::new()), Arc::new(MemoryRateLimiter::new()))
        .await
}

/// A service over the given stores, with an outbox in `dir`.
pub async fn harness_with(
    config: AuthConfig,
    dir: tempfile::TempDir,
    members: Arc<dyn MemberStore>,
    tickets: Arc<dyn TicketStore>,
    limiter: Arc<dyn RateLimiter>,
) -> Harness {
    let outbox = dir.path().join("outbox");
    let mailer = OutboxMailer::new(&outbox, &config.mail_from).unwrap();
    let service = AuthService::new(config, members, tickets, limiter, Arc::new(mailer)).await.unwrap();
    let service = Arc::new(service);
    Harness { router: auth::router(Arc::clone(&service)), service, outbox, dir }
}

/// The `.eml` files of the outbox, oldest first.
pub fn outbox_files(outbox: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files
}

/// Waits (bounded) until the folder holds at least `n` messages, and returns them as text.
pub async fn wait_for_mails(outbox: &Path, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let files = outbox_files(outbox);
        if files.len() >= n {
            return files.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} mails arrived in {}", outbox.display());
}

/// The token of the first `#/{route}?token=` link in a message.
pub fn link_token(message: &str, route: &str) -> String {
    let message = &unfold_quoted_printable(message);
    let marker = format!("/#/{route}?token=");
    let start = message.find(&marker).unwrap_or_else(|| panic!("no {route} link in:\n{message}")) + marker.len();
    message[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

/// One request through the router, from `ip`.
pub async fn call(
    router: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    bearer: Option<&str>,
    ip: &str,
) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let request = builder.body(body.map_or_else(Body::empty, |value| Body::from(value.to_string()))).unwrap();
    send(router, request, ip).await
}

/// Sends a request built by the caller through the router, from `ip`.
pub async fn send(router: &Router, mut request: Request<Body>, ip: &str) -> Answer {
    let peer: SocketAddr = format!("{ip}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let raw = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Answer { status, headers, body, raw }
}

pub async fn post(router: &Router, uri: &str, body: Value, ip: &str) -> Answer {
    call(router, Method::POST, uri, Some(body), None, ip).await
}

/// A random address, so tests sharing a database never collide.
pub fn fresh_email(tag: &str) -> String {
    format!("{tag}-{}@example.org", &auth::new_id()[..12])
}

/// Signs up, follows the verification link and logs in; returns the login answer.
pub async fn signed_in(harness: &Harness, email: &str, ip: &str) -> Value {
    let before = outbox_files(&harness.outbox).len();
    let answer =
        post(&harness.router, "/api/auth/signup", serde_json::json!({"email": email, "password": PASSWORD}), ip).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    harness.service.flush_mail().await;
    let mails = wait_for_mails(&harness.outbox, before + 1).await;
    let mail = mails.iter().rev().find(|mail| mail.contains(email)).unwrap();
    let token = link_token(mail, "verify");
    let answer =
        post(&harness.router, "/api/auth/verify", serde_json::json!({"token": token, "password": PASSWORD}), ip).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let answer =
        post(&harness.router, "/api/auth/login", serde_json::json!({"email": email, "password": PASSWORD}), ip).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body
}

/// Undoes the quoted-printable soft line breaks and `=3D` that mail bodies may carry.
pub fn unfold_quoted_printable(message: &str) -> String {
    message.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}
