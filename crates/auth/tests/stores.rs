//! The same store suites against every engine: SQLite (temp file) and MariaDB for members;
//! memory and Redis for tickets and counters. MariaDB and Redis come from
//! `DECK_TEST_MYSQL` / `DECK_TEST_REDIS` (or `DECK_MYSQL` / `DECK_REDIS`).
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure with its reason.

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth::{
    CreateOutcome, EmailTokenRecord, Member, MemberStore, MemoryRateLimiter, MemoryTicketStore, RateDecision,
    RateLimit, RateLimiter, RedisRateLimiter, RedisTicketStore, RefreshTokenRecord, RotateOutcome, SqlMemberStore,
    TicketGrant, TicketStore, TokenPurpose, hash_token, new_id, new_secret_token,
};
use common::engine_url;

fn member(email: &str) -> Member {
    Member {
        id: new_id(),
        email: email.to_owned(),
        password_hash: "$argon2id$fake".into(),
        verified_at: None,
        created_at: 1_000,
    }
}

fn refresh(family_id: &str, user_id: &str, now: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash_token(&new_secret_token()),
        family_id: family_id.to_owned(),
        user_id: user_id.to_owned(),
        created_at: now,
        expires_at: now + 3600,
    }
}

async fn member_store_suite(store: Arc<dyn MemberStore>) {
    let email = common::fresh_email("store");
    let alice = member(&email);
    assert_eq!(store.create_member(&alice).await.unwrap(), CreateOutcome::Created);
    assert_eq!(store.create_member(&member(&email)).await.unwrap(), CreateOutcome::EmailTaken);
    let found = store.member_by_email(&email).await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(store.member_by_id(&alice.id).await.unwrap().unwrap(), alice);
    assert!(store.member_by_email("absent@example.org").await.unwrap().is_none());

    store.set_password(&alice.id, "$argon2id$new", 2_000).await.unwrap();
    store.mark_verified(&alice.id, 2_000).await.unwrap();
    store.mark_verified(&alice.id, 3_000).await.unwrap();
    let found = store.member_by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "$argon2id$new");
    assert_eq!(found.verified_at, Some(2_000));

    // E-mail tokens: single use, purpose-bound, expiring, and only hashes stored.
    let now = 10_000;
    let token = |purpose, expires_at, password_hash: Option<&str>| EmailTokenRecord {
        token_hash: hash_token(&new_secret_token()),
        user_id: alice.id.clone(),
        purpose,
        password_hash: password_hash.map(str::to_owned),
        created_at: now,
        expires_at,
    };
    let verify = token(TokenPurpose::Verify, now + 86_400, Some("$argon2id$chosen"));
    store.insert_email_token(&verify).await.unwrap();
    assert!(store.consume_email_token(&verify.token_hash, TokenPurpose::Reset, now).await.unwrap().is_none());
    let used = store.consume_email_token(&verify.token_hash, TokenPurpose::Verify, now).await.unwrap().unwrap();
    assert_eq!(used, verify);
    assert!(store.consume_email_token(&verify.token_hash, TokenPurpose::Verify, now).await.unwrap().is_none());

    let expiring = token(TokenPurpose::Reset, now + 86_400, None);
    store.insert_email_token(&expiring).await.unwrap();
    assert!(
        store.consume_email_token(&expiring.token_hash, TokenPurpose::Reset, now + 86_400).await.unwrap().is_none()
    );
    let later = token(TokenPurpose::Reset, now + 86_400, None);
    store.insert_email_token(&later).await.unwrap();
    store.invalidate_email_tokens(&alice.id, TokenPurpose::Reset, now).await.unwrap();
    assert!(store.consume_email_token(&later.token_hash, TokenPurpose::Reset, now).await.unwrap().is_none());

    // Refresh families: rotation once, reuse detected, revocation durable.
    let family = new_id();
    let first = refresh(&family, &alice.id, now);
    store.create_family(&first).await.unwrap();
    assert!(store.family_active(&family).await.unwrap());
    let state = store.refresh_token(&first.token_hash).await.unwrap().unwrap();
    assert_eq!((state.record.clone(), state.used_at, state.family_revoked_at), (first.clone(), None, None));
    let second = refresh(&family, &alice.id, now + 1);
    assert_eq!(store.rotate_refresh_token(&first.token_hash, &second, now + 1).await.unwrap(), RotateOutcome::Rotated);
    let third = refresh(&family, &alice.id, now + 2);
    assert_eq!(
        store.rotate_refresh_token(&first.token_hash, &third, now + 2).await.unwrap(),
        RotateOutcome::AlreadyUsed
    );
    // The refused rotation stored nothing.
    assert!(store.refresh_token(&third.token_hash).await.unwrap().is_none());
    assert_eq!(store.refresh_token(&first.token_hash).await.unwrap().unwrap().used_at, Some(now + 1));
    store.revoke_family(&family, now + 3).await.unwrap();
    assert_eq!(store.refresh_token(&second.token_hash).await.unwrap().unwrap().family_revoked_at, Some(now + 3));
    assert!(!store.family_active(&family).await.unwrap());

    let keep = new_id();
    let drop_a = new_id();
    let drop_b = new_id();
    for family in [&keep, &drop_a, &drop_b] {
        store.create_family(&refresh(family, &alice.id, now)).await.unwrap();
    }
    assert_eq!(store.revoke_member_families(&alice.id, Some(&keep), now + 4).await.unwrap(), 2);
    assert!(store.family_active(&keep).await.unwrap());
    assert!(!store.family_active(&drop_a).await.unwrap());
    assert_eq!(store.revoke_member_families(&alice.id, None, now + 5).await.unwrap(), 1);
    assert!(!store.family_active(&keep).await.unwrap());

    // Decks: absent, then replaced in place.
    assert!(store.load_deck(&alice.id).await.unwrap().is_none());
    store.save_deck(&alice.id, br#"{"columns":[]}"#, now).await.unwrap();
    let big = vec![b'x'; 60 * 1024];
    store.save_deck(&alice.id, &big, now + 1).await.unwrap();
    assert_eq!(store.load_deck(&alice.id).await.unwrap().unwrap(), big);
}

async fn ticket_store_suite(store: Arc<dyn TicketStore>) {
    let grant = TicketGrant { user_id: Some("member-1".into()), issued_at: 42 };
    let anonymous = TicketGrant { user_id: None, issued_at: 43 };
    let (a, b) = (hash_token(&new_secret_token()), hash_token(&new_secret_token()));
    store.put(&a, &grant, Duration::from_secs(30)).await.unwrap();
    store.put(&b, &anonymous, Duration::from_secs(30)).await.unwrap();
    assert_eq!(store.take(&a).await.unwrap(), Some(grant));
    assert_eq!(store.take(&a).await.unwrap(), None);
    assert_eq!(store.take(&b).await.unwrap(), Some(anonymous.clone()));
    // Expiry (real time: the Redis TTL is the server's).
    let c = hash_token(&new_secret_token());
    store.put(&c, &anonymous, Duration::from_millis(200)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.take(&c).await.unwrap(), None);
}

async fn rate_limiter_suite(limiter: Arc<dyn RateLimiter>) {
    let key = format!("suite:{}", new_id());
    let limit = RateLimit { max: 3, window_secs: 60 };
    for _ in 0..3 {
        assert_eq!(limiter.hit(&key, limit).await.unwrap(), RateDecision::Allowed);
    }
    match limiter.hit(&key, limit).await.unwrap() {
        RateDecision::Limited { retry_after_secs } => assert!((1..=60).contains(&retry_after_secs)),
        other => panic!("expected a limit, got {other:?}"),
    }
    assert_eq!(limiter.hit(&format!("{key}:other"), limit).await.unwrap(), RateDecision::Allowed);
    // A window ends and counting starts again.
    let short = RateLimit { max: 1, window_secs: 1 };
    let short_key = format!("{key}:short");
    assert_eq!(limiter.hit(&short_key, short).await.unwrap(), RateDecision::Allowed);
    assert!(matches!(limiter.hit(&short_key, short).await.unwrap(), RateDecision::Limited { .. }));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(limiter.hit(&short_key, short).await.unwrap(), RateDecision::Allowed);
}

#[tokio::test]
async fn sqlite_member_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.sqlite");
    member_store_suite(Arc::new(SqlMemberStore::open_sqlite(&path).await.unwrap())).await;
    // Migrations run again on restart without harm, and the data is still there.
    let reopened = SqlMemberStore::open_sqlite(&path).await.unwrap();
    assert!(reopened.member_by_email("absent@example.org").await.unwrap().is_none());
}

#[tokio::test]
async fn mariadb_member_store() {
    let Some(url) = engine_url("MYSQL", "mariadb_member_store") else {
        return;
    };
    member_store_suite(Arc::new(SqlMemberStore::connect(&url).await.unwrap())).await;
    // A second start runs the migrations again harmlessly.
    SqlMemberStore::connect(&url).await.unwrap();
}

#[tokio::test]
async fn memory_ticket_store() {
    ticket_store_suite(Arc::new(MemoryTicketStore::new())).await;
}

#[tokio::test]
async fn redis_ticket_store() {
    let Some(url) = engine_url("REDIS", "redis_ticket_store") else {
        return;
    };
    let prefix = format!("deck:test:{}:ticket:", new_id());
    ticket_store_suite(Arc::new(RedisTicketStore::connect(&url, &prefix).await.unwrap())).await;
}

#[tokio::test]
async fn memory_rate_limiter() {
    rate_limiter_suite(Arc::new(MemoryRateLimiter::new())).await;
}

#[tokio::test]
async fn redis_rate_limiter() {
    let Some(url) = engine_url("REDIS", "redis_rate_limiter") else {
        return;
    };
    let prefix = format!("deck:test:{}:limit:", new_id());
    rate_limiter_suite(Arc::new(RedisRateLimiter::connect(&url, &prefix).await.unwrap())).await;
}
