//! Sessions in the browser (ASVS 5.0 V7): the refresh token in an `HttpOnly;
//! Secure; SameSite=Strict` cookie scoped to `/api/auth`, two tabs refreshing
//! at the same moment staying signed in, and an absolute session lifetime.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use auth::AuthConfig;
use axum::body::Body;
use common::*;
use http::{Request, StatusCode};
use serde_json::json;

const IP: &str = "192.0.2.40";

/// A POST with a cookie header and a body of the given content type.
async fn post_with_cookie(
    harness: &Harness,
    uri: &str,
    cookie: Option<&str>,
    content_type: &str,
    body: &str,
) -> Answer {
    let mut builder = Request::builder().method("POST").uri(uri).header("content-type", content_type);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    send(&harness.router, builder.body(Body::from(body.to_owned())).unwrap(), IP).await
}

/// The `deck_refresh=…` pair of a response's `Set-Cookie`, and the whole header.
fn set_cookie(answer: &Answer) -> (String, String) {
    let header = answer.headers.get("set-cookie").expect("a Set-Cookie header").to_str().unwrap().to_owned();
    let pair = header.split(';').next().unwrap().trim().to_owned();
    (pair, header)
}

async fn cookie_login(harness: &Harness, email: &str) -> Answer {
    signed_in(harness, email, IP).await;
    post(&harness.router, "/api/auth/login", json!({"email": email, "password": PASSWORD, "refresh_cookie": true}), IP)
        .await
}

#[tokio::test]
async fn the_refresh_token_lives_in_an_http_only_cookie_no_script_can_read() {
    let harness = sqlite_harness(config()).await;
    let login = cookie_login(&harness, &fresh_email("cookie")).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body["access_token"].is_string());
    assert!(login.body.get("refresh_token").is_none(), "the token is not in the body: {}", login.body);
    let (cookie, header) = set_cookie(&login);
    assert!(cookie.starts_with("deck_refresh=") && cookie.len() > 50, "{header}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/auth", "Max-Age=2592000"] {
        assert!(header.split("; ").any(|part| part == attribute), "{attribute} missing from {header}");
    }
    assert_eq!(login.headers.get("cache-control").unwrap(), "no-store");

    // Refresh with the cookie alone: new tokens, the rotated refresh token in the cookie again.
    let refreshed = post_with_cookie(&harness, "/api/auth/refresh", Some(&cookie), "application/json", "{}").await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert!(refreshed.body.get("refresh_token").is_none());
    assert!(harness.service.authenticate(refreshed.body["access_token"].as_str().unwrap()).await.is_ok());
    let (rotated, _) = set_cookie(&refreshed);
    assert_ne!(rotated, cookie);

    // A cross-site "simple" POST carries the cookie but cannot be JSON: refused.
    let cross_site = post_with_cookie(&harness, "/api/auth/refresh", Some(&rotated), "text/plain", "{}").await;
    assert_eq!(cross_site.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // No cookie and no token: 401.
    let none = post_with_cookie(&harness, "/api/auth/refresh", None, "application/json", "{}").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);

    // Logout with the cookie ends the session and clears the cookie.
    let logout = post_with_cookie(&harness, "/api/auth/logout", Some(&rotated), "application/json", "{}").await;
    assert_eq!(logout.status, StatusCode::OK);
    let (cleared, header) = set_cookie(&logout);
    assert_eq!(cleared, "deck_refresh=");
    assert!(header.contains("Max-Age=0"), "{header}");
    let after = post_with_cookie(&harness, "/api/auth/refresh", Some(&rotated), "application/json", "{}").await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&after).1.contains("Max-Age=0"), "a dead cookie is cleared");
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_both_stay_signed_in() {
    let harness = sqlite_harness(config()).await;
    let login = cookie_login(&harness, &fresh_email("tabs")).await;
    let (cookie, _) = set_cookie(&login);

    // Both tabs send the same cookie at the same moment.
    let (first, second) = tokio::join!(
        post_with_cookie(&harness, "/api/auth/refresh", Some(&cookie), "application/json", "{}"),
        post_with_cookie(&harness, "/api/auth/refresh", Some(&cookie), "application/json", "{}"),
    );
    assert_eq!((first.status, second.status), (StatusCode::OK, StatusCode::OK), "{} / {}", first.body, second.body);
    // And a tab that saw the old cookie a moment later (within the grace) is still in.
    let late = post_with_cookie(&harness, "/api/auth/refresh", Some(&cookie), "application/json", "{}").await;
    assert_eq!(late.status, StatusCode::OK, "{}", late.body);

    // Every cookie handed out works, each once, and all belong to the one session.
    let cookies = [set_cookie(&first).0, set_cookie(&second).0, set_cookie(&late).0];
    for cookie in &cookies {
        let answer = post_with_cookie(&harness, "/api/auth/refresh", Some(cookie), "application/json", "{}").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let sid = |answer: &Answer| {
        let token = answer.body["access_token"].as_str().unwrap().to_owned();
        let harness = &harness;
        async move { harness.service.authenticate(&token).await.unwrap().sid }
    };
    assert_eq!(sid(&first).await, sid(&second).await);
    assert_eq!(sid(&first).await, sid(&late).await);
}

#[tokio::test]
async fn a_token_used_again_after_the_grace_revokes_the_session() {
    let harness = sqlite_harness(AuthConfig { refresh_reuse_grace_secs: 0, ..config() }).await;
    let login = cookie_login(&harness, &fresh_email("theft")).await;
    let (stolen, _) = set_cookie(&login);
    let owner = post_with_cookie(&harness, "/api/auth/refresh", Some(&stolen), "application/json", "{}").await;
    assert_eq!(owner.status, StatusCode::OK);
    let thief = post_with_cookie(&harness, "/api/auth/refresh", Some(&stolen), "application/json", "{}").await;
    assert_eq!((thief.status, thief.body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("refresh_reused")));
    let (owners, _) = set_cookie(&owner);
    let owner_again = post_with_cookie(&harness, "/api/auth/refresh", Some(&owners), "application/json", "{}").await;
    assert_eq!(owner_again.status, StatusCode::UNAUTHORIZED, "the whole session ended");
}

#[tokio::test]
async fn no_refresh_outlives_the_sessions_absolute_lifetime() {
    // Refreshing keeps a session going for at most an hour, although each refresh token
    // alone would live 30 days.
    let harness = sqlite_harness(AuthConfig { session_lifetime_secs: 3_600, ..config() }).await;
    let email = fresh_email("lifetime");
    signed_in(&harness, &email, IP).await;
    let login = post(&harness.router, "/api/auth/login", json!({"email": email, "password": PASSWORD}), IP).await;
    assert!(login.body["refresh_expires_in"].as_u64().unwrap() <= 3_600, "{}", login.body);
    let mut token = login.body["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let answer = post(&harness.router, "/api/auth/refresh", json!({"refresh_token": token}), IP).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.body["refresh_expires_in"].as_u64().unwrap() <= 3_600, "{}", answer.body);
        token = answer.body["refresh_token"].as_str().unwrap().to_owned();
    }

    // A session whose lifetime is over cannot be refreshed at all.
    let ended = sqlite_harness(AuthConfig { session_lifetime_secs: 0, ..config() }).await;
    let email = fresh_email("ended");
    signed_in(&ended, &email, IP).await;
    let login = post(&ended.router, "/api/auth/login", json!({"email": email, "password": PASSWORD}), IP).await;
    let answer =
        post(&ended.router, "/api/auth/refresh", json!({"refresh_token": login.body["refresh_token"]}), IP).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["code"], "invalid_refresh_token");
}
