//! The whole account flow in distributed mode: members in MariaDB, tickets and counters in
//! Redis, through the HTTP router. Also: losing Redis never revives a revoked session.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure with its reason.

mod common;

use std::sync::Arc;

use auth::{MemoryRateLimiter, MemoryTicketStore, RedisRateLimiter, RedisTicketStore, SqlMemberStore, new_id};
use common::*;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn mariadb_and_redis_end_to_end() {
    let Some(mysql) = engine_url("MYSQL", "mariadb_and_redis_end_to_end") else {
        return;
    };
    let Some(redis) = engine_url("REDIS", "mariadb_and_redis_end_to_end") else {
        return;
    };
    let run = new_id();
    let members = Arc::new(SqlMemberStore::connect(&mysql).await.unwrap());
    let harness = harness_with(
        auth::AuthConfig { refresh_reuse_grace_secs: 0, ..config() },
        tempfile::tempdir().unwrap(),
        members.clone(),
        Arc::new(RedisTicketStore::connect(&redis, &format!("deck:test:{run}:ticket:")).await.unwrap()),
        Arc::new(RedisRateLimiter::connect(&redis, &format!("deck:test:{run}:limit:")).await.unwrap()),
    )
    .await;
    let ip = "198.51.100.77";
    let email = fresh_email("dist");

    // Enumeration resistance on this engine too.
    let unknown =
        post(&harness.router, "/api/auth/login", json!({"email": fresh_email("ghost"), "password": PASSWORD}), ip)
            .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let login = signed_in(&harness, &email, ip).await;
    let wrong =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": "wrong wrong wrong"}), ip).await;
    assert_eq!((wrong.status, &wrong.raw), (unknown.status, &unknown.raw));

    // Refresh rotation and reuse detection.
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    let rotated = post(&harness.router, "/api/auth/refresh", json!({"refresh_token": first}), ip).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let second = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    let reuse = post(&harness.router, "/api/auth/refresh", json!({"refresh_token": first}), ip).await;
    assert_eq!(reuse.body["code"], "refresh_reused");

    // Tickets through Redis: once, with the member.
    let access = rotated.body["access_token"].as_str().unwrap();
    let answer = call(&harness.router, Method::POST, "/api/stream/ticket", None, Some(access), ip).await;
    let ticket = answer.body["ticket"].as_str().unwrap().to_owned();
    let claims = harness.service.authenticate(access).await.unwrap();
    assert_eq!(harness.service.redeem_ticket(&ticket).await.unwrap().user_id, Some(claims.sub.clone()));
    assert!(harness.service.redeem_ticket(&ticket).await.is_none());

    // Deck in MariaDB.
    let deck = json!({"columns": [{"id": "bts", "title": "BTS", "query": "BTS", "width": 340.0, "filters": {}}]});
    assert_eq!(
        call(&harness.router, Method::PUT, "/api/me/deck", Some(deck.clone()), Some(access), ip).await.status,
        StatusCode::OK
    );
    assert_eq!(call(&harness.router, Method::GET, "/api/me/deck", None, Some(access), ip).await.body, deck);

    // Per-account limit counted in Redis.
    for _ in 0..4 {
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": "guess guess guess"}), ip).await;
    }
    let limited =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": "guess guess guess"}), ip).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));

    // Redis is lost (a fresh, empty ticket store and counters): the revoked family stays
    // revoked, because revocations live in MariaDB.
    let without_redis = harness_with(
        config(),
        tempfile::tempdir().unwrap(),
        members,
        Arc::new(MemoryTicketStore::new()),
        Arc::new(MemoryRateLimiter::new()),
    )
    .await;
    let answer = post(&without_redis.router, "/api/auth/refresh", json!({"refresh_token": second}), ip).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(without_redis.service.redeem_ticket(&ticket).await.is_none());
}
