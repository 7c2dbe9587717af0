//! Every account rule through the HTTP router (`Router::oneshot`), on real SQLite.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure with its reason.

mod common;

use std::net::IpAddr;

use auth::{AuthConfig, Claims, RateLimit, RateLimits};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use http::{Method, StatusCode};
use serde_json::json;

const IP: &str = "198.51.100.10";

#[tokio::test]
async fn signup_writes_a_verification_mail_and_login_waits_for_it() {
    let harness = sqlite_harness(config()).await;
    let email = "alice@example.org";
    let answer =
        post(&harness.router, "/api/auth/signup", json!({"email": "  Alice@Example.org", "password": PASSWORD}), IP)
            .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.body, json!({"status": "verification_sent"}));
    harness.service.flush_mail().await;
    let mails = wait_for_mails(&harness.outbox, 1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    // An RFC 5322 message: the headers, a blank line, the body.
    for header in ["From: ", "To: alice@example.org", "Subject: Confirm your Deck account", "Date: ", "Message-ID: "] {
        assert!(mail.contains(header), "missing {header:?} in\n{mail}");
    }
    assert!(mail.contains("\r\n\r\n"));
    assert!(mail.contains("http://127.0.0.1:8080/#/verify?token="));
    let token = link_token(mail, "verify");
    assert_eq!(token.len(), 43);

    // Unverified, right or wrong password: the answer of a wrong password, so that signing
    // up and logging in does not tell whether the address had an account.
    let right = post(&harness.router, "/api/auth/login", json!({"email": email, "password": PASSWORD}), IP).await;
    let wrong =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": "wrong password!"}), IP).await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED);
    assert_eq!((right.status, &right.raw), (wrong.status, &wrong.raw));

    // Without the password, or with another, the link does nothing and stays usable.
    let answer = post(&harness.router, "/api/auth/verify", json!({"token": token}), IP).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["field"], "password");
    let answer =
        post(&harness.router, "/api/auth/verify", json!({"token": token, "password": "not it at all"}), IP).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.body["code"], "wrong_password");
    let answer = post(&harness.router, "/api/auth/verify", json!({"token": token, "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::OK);
    // Single use.
    let answer = post(&harness.router, "/api/auth/verify", json!({"token": token, "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["code"], "invalid_token");
    assert_eq!(answer.body["field"], "token");

    let answer = post(&harness.router, "/api/auth/login", json!({"email": email, "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["expires_in"], 900);
    let access = answer.body["access_token"].as_str().unwrap();
    let claims = harness.service.authenticate(access).await.unwrap();
    assert_eq!(claims.exp - claims.iat, 900);
    assert!(answer.body["refresh_token"].as_str().unwrap().len() >= 43);
    // The header names the key.
    let header = URL_SAFE_NO_PAD.decode(access.split('.').next().unwrap()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "kid": "k1", "typ": "JWT"}));
}

#[tokio::test]
async fn answers_do_not_reveal_whether_an_account_exists() {
    let harness = sqlite_harness(config()).await;
    let known = "known@example.org";
    signed_in(&harness, known, IP).await;
    let n_mails = outbox_files(&harness.outbox).len();

    // Sign-up: same status and body; the owner gets an "already have an account" mail.
    let existing =
        post(&harness.router, "/api/auth/signup", json!({"email": known, "password": "another fine password"}), IP)
            .await;
    let new = post(
        &harness.router,
        "/api/auth/signup",
        json!({"email": "new@example.org", "password": "another fine password"}),
        IP,
    )
    .await;
    assert_eq!((existing.status, &existing.raw), (new.status, &new.raw));
    harness.service.flush_mail().await;
    let mails = wait_for_mails(&harness.outbox, n_mails + 2).await;
    assert!(
        mails.iter().any(|mail| mail.contains("To: known@example.org") && mail.contains("already have a Deck account"))
    );
    // The existing account's password did not change.
    let answer = post(&harness.router, "/api/auth/login", json!({"email": known, "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::OK);

    // Login: unknown e-mail and wrong password answer byte for byte alike.
    let unknown =
        post(&harness.router, "/api/auth/login", json!({"email": "nobody@example.org", "password": PASSWORD}), IP)
            .await;
    let wrong =
        post(&harness.router, "/api/auth/login", json!({"email": known, "password": "not the password"}), IP).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!((unknown.status, &unknown.raw), (wrong.status, &wrong.raw));
    assert_eq!(unknown.body["error"], "invalid email or password");

    // Reset: alike, and only the real account gets mail.
    let n_mails = outbox_files(&harness.outbox).len();
    let real = post(&harness.router, "/api/auth/reset/request", json!({"email": known}), IP).await;
    let ghost = post(&harness.router, "/api/auth/reset/request", json!({"email": "ghost@example.org"}), IP).await;
    assert_eq!(real.status, StatusCode::ACCEPTED);
    assert_eq!((real.status, &real.raw), (ghost.status, &ghost.raw));
    harness.service.flush_mail().await;
    let mails = wait_for_mails(&harness.outbox, n_mails + 1).await;
    assert_eq!(mails.len(), n_mails + 1);
    assert!(!mails.iter().any(|mail| mail.contains("ghost@example.org")));

    // Resend: alike too.
    let real = post(&harness.router, "/api/auth/resend", json!({"email": known}), IP).await;
    let ghost = post(&harness.router, "/api/auth/resend", json!({"email": "ghost@example.org"}), IP).await;
    assert_eq!((real.status, &real.raw), (ghost.status, &ghost.raw));
}

#[tokio::test]
async fn the_mailbox_owner_sets_the_password_of_a_pre_registered_address() {
    let harness = sqlite_harness(config()).await;
    let email = "victim@example.org";
    let attacker_ip = "203.0.113.66";
    let attacker_password = "attacker chosen pw";
    // An attacker registers the victim's address first, and never sees the mail.
    let answer =
        post(&harness.router, "/api/auth/signup", json!({"email": email, "password": attacker_password}), attacker_ip)
            .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    harness.service.flush_mail().await;
    let mails = wait_for_mails(&harness.outbox, 1).await;
    let attacker_token = link_token(&mails[0], "verify");
    // The victim's mail scanner follows the link: without a password, and with guesses.
    let scanner = "192.0.2.200";
    let answer = post(&harness.router, "/api/auth/verify", json!({"token": attacker_token}), scanner).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    for guess in ["", "password", PASSWORD] {
        let answer =
            post(&harness.router, "/api/auth/verify", json!({"token": attacker_token, "password": guess}), scanner)
                .await;
        assert!(answer.status.is_client_error(), "{guess}: {:?}", answer.body);
    }
    // The attacker's password does not log in: the account is still unverified.
    let attacker =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": attacker_password}), attacker_ip)
            .await;
    assert_eq!(attacker.status, StatusCode::UNAUTHORIZED);
    // The victim signs up with their own password and follows their own link.
    let answer = post(&harness.router, "/api/auth/signup", json!({"email": email, "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    harness.service.flush_mail().await;
    let mails = wait_for_mails(&harness.outbox, 2).await;
    let victim_token = link_token(&mails[1], "verify");
    // The victim's own link does not take the attacker's password.
    let answer =
        post(&harness.router, "/api/auth/verify", json!({"token": victim_token, "password": attacker_password}), IP)
            .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer =
        post(&harness.router, "/api/auth/verify", json!({"token": victim_token, "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    // The older link died with the verification, even with the attacker's password.
    let answer = post(
        &harness.router,
        "/api/auth/verify",
        json!({"token": attacker_token, "password": attacker_password}),
        attacker_ip,
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let attacker =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": attacker_password}), attacker_ip)
            .await;
    assert_eq!(attacker.status, StatusCode::UNAUTHORIZED);
    let victim = post(&harness.router, "/api/auth/login", json!({"email": email, "password": PASSWORD}), IP).await;
    assert_eq!(victim.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_up_then_login_does_not_tell_whether_the_address_had_an_account() {
    let harness = sqlite_harness(config()).await;
    let known = "taken@example.org";
    signed_in(&harness, known, IP).await;
    let chosen = "attacker probe password";
    let mut answers = Vec::new();
    for email in [known, "free@example.org"] {
        let signup = post(&harness.router, "/api/auth/signup", json!({"email": email, "password": chosen}), IP).await;
        let login = post(&harness.router, "/api/auth/login", json!({"email": email, "password": chosen}), IP).await;
        answers.push((signup.status, signup.raw, login.status, login.raw));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].2, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn json_endpoints_refuse_other_content_types() {
    let harness = sqlite_harness(config()).await;
    for content_type in
        [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data")]
    {
        let mut builder = http::Request::builder().method(Method::POST).uri("/api/auth/login");
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        let body = json!({"email": "a@example.org", "password": PASSWORD}).to_string();
        let mut request = builder.body(axum::body::Body::from(body)).unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo("192.0.2.1:1".parse::<std::net::SocketAddr>().unwrap()));
        let response = tower::ServiceExt::oneshot(harness.router.clone(), request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}");
    }
    // `application/json; charset=utf-8` is JSON.
    let answer =
        post(&harness.router, "/api/auth/login", json!({"email": "a@example.org", "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn password_rules_name_the_field() {
    let harness = sqlite_harness(config()).await;
    let cases = [("short", "at least 8"), ("password123", "too common"), ("iloveyou", "too common")];
    for (password, needle) in cases {
        let answer =
            post(&harness.router, "/api/auth/signup", json!({"email": "p@example.org", "password": password}), IP)
                .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{password}");
        assert_eq!(answer.body["field"], "password");
        assert_eq!(answer.body["code"], "invalid_input");
        assert!(answer.body["error"].as_str().unwrap().contains(needle), "{:?}", answer.body);
    }
    let too_long = "x".repeat(129);
    let answer =
        post(&harness.router, "/api/auth/signup", json!({"email": "p@example.org", "password": too_long}), IP).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // 64 characters, no composition rules: fine.
    let answer =
        post(&harness.router, "/api/auth/signup", json!({"email": "p@example.org", "password": "z".repeat(64)}), IP)
            .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    // Malformed input names the field too.
    let answer = post(&harness.router, "/api/auth/signup", json!({"email": "p@example.org"}), IP).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["field"], "password");
    let answer =
        post(&harness.router, "/api/auth/signup", json!({"email": "not-an-address", "password": PASSWORD}), IP).await;
    assert_eq!(answer.body["field"], "email");
}

fn forge(claims: &serde_json::Value, header: &serde_json::Value, secret: Option<&[u8]>) -> String {
    use hmac_sha256_for_tests as hmac;
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{head}.{body}");
    let signature =
        secret.map(|key| URL_SAFE_NO_PAD.encode(hmac::sign(key, signing_input.as_bytes()))).unwrap_or_default();
    format!("{signing_input}.{signature}")
}

/// HMAC-SHA256 written out here, so the forged tokens do not depend on the code under test.
mod hmac_sha256_for_tests {
    use sha2::{Digest, Sha256};

    pub fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
        let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
        let inner_hash = Sha256::new().chain_update(&inner).chain_update(message).finalize();
        Sha256::new().chain_update(&outer).chain_update(inner_hash).finalize().to_vec()
    }
}

#[tokio::test]
async fn forged_unsigned_expired_and_foreign_tokens_are_refused() {
    let harness = sqlite_harness(config()).await;
    let login = signed_in(&harness, "jwt@example.org", IP).await;
    let good = login["access_token"].as_str().unwrap();
    let claims = harness.service.authenticate(good).await.unwrap();
    let ok = call(&harness.router, Method::GET, "/api/me/deck", None, Some(good), IP).await;
    assert_eq!(ok.status, StatusCode::OK);

    let now = chrono::Utc::now().timestamp();
    let base =
        json!({"sub": claims.sub, "sid": claims.sid, "iss": "deck", "aud": "deck", "iat": now, "exp": now + 600});
    let hs256 = json!({"alg": "HS256", "typ": "JWT", "kid": "k1"});
    // Our own forgery with the right key is accepted: the forging code is right.
    let control = forge(&base, &hs256, Some(SECRET.as_bytes()));
    assert_eq!(
        call(&harness.router, Method::GET, "/api/me/deck", None, Some(&control), IP).await.status,
        StatusCode::OK
    );

    let mut expired = base.clone();
    expired["iat"] = json!(now - 3600);
    expired["exp"] = json!(now - 1800);
    let mut foreign_audience = base.clone();
    foreign_audience["aud"] = json!("someone-else");
    let mut foreign_issuer = base.clone();
    foreign_issuer["iss"] = json!("evil");
    let mut exp_as_string = base.clone();
    exp_as_string["exp"] = json!("9999999999");
    let mut tampered = control.clone();
    tampered.replace_range(tampered.len() - 3.., "AAA");
    let bad_tokens = [
        ("wrong key", forge(&base, &hs256, Some(b"another secret of at least thirty-two bytes"))),
        ("alg none", forge(&base, &json!({"alg": "none", "typ": "JWT", "kid": "k1"}), None)),
        ("alg none with signature", forge(&base, &json!({"alg": "none", "kid": "k1"}), Some(SECRET.as_bytes()))),
        ("HS512", forge(&base, &json!({"alg": "HS512", "kid": "k1"}), Some(SECRET.as_bytes()))),
        ("unknown kid", forge(&base, &json!({"alg": "HS256", "kid": "k9"}), Some(SECRET.as_bytes()))),
        ("no kid", forge(&base, &json!({"alg": "HS256"}), Some(SECRET.as_bytes()))),
        ("expired", forge(&expired, &hs256, Some(SECRET.as_bytes()))),
        ("wrong audience", forge(&foreign_audience, &hs256, Some(SECRET.as_bytes()))),
        ("wrong issuer", forge(&foreign_issuer, &hs256, Some(SECRET.as_bytes()))),
        ("exp as a string", forge(&exp_as_string, &hs256, Some(SECRET.as_bytes()))),
        ("tampered signature", tampered),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in bad_tokens {
        let answer = call(&harness.router, Method::GET, "/api/me/deck", None, Some(&token), IP).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what} was accepted");
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
        assert!(harness.service.authenticate(&token).await.is_err(), "{what}");
    }
    // No token at all.
    assert_eq!(
        call(&harness.router, Method::GET, "/api/me/deck", None, None, IP).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rotated_keys_keep_old_tokens_valid_until_removed() {
    let old_config = config();
    let harness = sqlite_harness(old_config.clone()).await;
    let login = signed_in(&harness, "rotate@example.org", IP).await;
    let old_token = login["access_token"].as_str().unwrap().to_owned();

    let mut rotated = old_config.clone();
    rotated.keys.push(auth::JwtKey { kid: "k2".into(), secret: "the second key, also thirty-two bytes long".into() });
    rotated.active_kid = "k2".into();
    let keys = auth::JwtKeys::from_config(&rotated).unwrap();
    let claims: Claims = keys.validate(&old_token).unwrap();
    let new_token = keys.sign(&claims).unwrap();
    assert!(keys.validate(&new_token).is_ok());

    let mut retired = rotated.clone();
    retired.keys.retain(|key| key.kid == "k2");
    let keys = auth::JwtKeys::from_config(&retired).unwrap();
    assert!(keys.validate(&old_token).is_err());
    assert!(keys.validate(&new_token).is_ok());
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    // No grace: a token presented again at once is taken for a stolen one (the grace
    // for two tabs refreshing together is tested in `sessions.rs`).
    let harness = sqlite_harness(AuthConfig { refresh_reuse_grace_secs: 0, ..config() }).await;
    let login = signed_in(&harness, "refresh@example.org", IP).await;
    let first = login["refresh_token"].as_str().unwrap().to_owned();

    let answer = post(&harness.router, "/api/auth/refresh", json!({"refresh_token": first}), IP).await;
    assert_eq!(answer.status, StatusCode::OK);
    let second = answer.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(harness.service.authenticate(answer.body["access_token"].as_str().unwrap()).await.is_ok());

    // The thief (or a replay) presents the used token: refused, and the family dies.
    let answer = post(&harness.router, "/api/auth/refresh", json!({"refresh_token": first}), IP).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["code"], "refresh_reused");
    let answer = post(&harness.router, "/api/auth/refresh", json!({"refresh_token": second}), IP).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["code"], "invalid_refresh_token");

    // Another session of the same member is untouched.
    let other =
        post(&harness.router, "/api/auth/login", json!({"email": "refresh@example.org", "password": PASSWORD}), IP)
            .await;
    let other_refresh = other.body["refresh_token"].as_str().unwrap();
    assert_eq!(
        post(&harness.router, "/api/auth/refresh", json!({"refresh_token": other_refresh}), IP).await.status,
        StatusCode::OK
    );
    // An unknown token is simply refused.
    let answer = post(&harness.router, "/api/auth/refresh", json!({"refresh_token": "made-up"}), IP).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_revokes_the_session() {
    let harness = sqlite_harness(config()).await;
    let a = signed_in(&harness, "logout@example.org", IP).await;
    let refresh = a["refresh_token"].as_str().unwrap();
    let answer = post(&harness.router, "/api/auth/logout", json!({"refresh_token": refresh}), IP).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        post(&harness.router, "/api/auth/refresh", json!({"refresh_token": refresh}), IP).await.status,
        StatusCode::UNAUTHORIZED
    );

    // With only the access token (the contract's bare POST).
    let b = post(&harness.router, "/api/auth/login", json!({"email": "logout@example.org", "password": PASSWORD}), IP)
        .await
        .body;
    let answer = call(&harness.router, Method::POST, "/api/auth/logout", None, b["access_token"].as_str(), IP).await;
    assert_eq!(answer.status, StatusCode::OK);
    let refresh = b["refresh_token"].as_str().unwrap();
    assert_eq!(
        post(&harness.router, "/api/auth/refresh", json!({"refresh_token": refresh}), IP).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Neither: nothing to log out.
    assert_eq!(
        call(&harness.router, Method::POST, "/api/auth/logout", None, None, IP).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let harness = sqlite_harness(config()).await;
    let email = "change@example.org";
    let here = signed_in(&harness, email, IP).await;
    let elsewhere =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": PASSWORD}), IP).await.body;
    let access = here["access_token"].as_str().unwrap();
    let new_password = "a brand new passphrase";

    let wrong = call(
        &harness.router,
        Method::POST,
        "/api/auth/password",
        Some(json!({"current_password": "nope nope nope", "new_password": new_password})),
        Some(access),
        IP,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(wrong.body["field"], "current_password");
    let weak = call(
        &harness.router,
        Method::POST,
        "/api/auth/password",
        Some(json!({"current_password": PASSWORD, "new_password": "password1"})),
        Some(access),
        IP,
    )
    .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert_eq!(weak.body["field"], "new_password");
    let unauthenticated = call(
        &harness.router,
        Method::POST,
        "/api/auth/password",
        Some(json!({"current_password": PASSWORD, "new_password": new_password})),
        None,
        IP,
    )
    .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);

    let answer = call(
        &harness.router,
        Method::POST,
        "/api/auth/password",
        Some(json!({"current_password": PASSWORD, "new_password": new_password})),
        Some(access),
        IP,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    // The other session's refresh token is dead; this one lives on.
    let answer =
        post(&harness.router, "/api/auth/refresh", json!({"refresh_token": elsewhere["refresh_token"]}), IP).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = post(&harness.router, "/api/auth/refresh", json!({"refresh_token": here["refresh_token"]}), IP).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": PASSWORD}), IP).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": new_password}), IP).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn password_reset_by_mail() {
    let harness = sqlite_harness(config()).await;
    let email = "reset@example.org";
    let session = signed_in(&harness, email, IP).await;
    let n_mails = outbox_files(&harness.outbox).len();
    assert_eq!(
        post(&harness.router, "/api/auth/reset/request", json!({"email": email}), IP).await.status,
        StatusCode::ACCEPTED
    );
    harness.service.flush_mail().await;
    let mails = wait_for_mails(&harness.outbox, n_mails + 1).await;
    let mail = mails.last().unwrap();
    assert!(mail.contains("http://127.0.0.1:8080/#/reset?token="));
    let token = link_token(mail, "reset");

    // A refused password does not use up the link.
    let answer =
        post(&harness.router, "/api/auth/reset/confirm", json!({"token": token, "password": "12345678"}), IP).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["field"], "password");
    let new_password = "reset to something long";
    let answer =
        post(&harness.router, "/api/auth/reset/confirm", json!({"token": token, "password": new_password}), IP).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    // Single use.
    let answer = post(
        &harness.router,
        "/api/auth/reset/confirm",
        json!({"token": token, "password": "yet another passphrase"}),
        IP,
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["code"], "invalid_token");
    // Every session ended.
    let answer =
        post(&harness.router, "/api/auth/refresh", json!({"refresh_token": session["refresh_token"]}), IP).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": new_password}), IP).await.status,
        StatusCode::OK
    );
    // A verify token is no reset token.
    let answer = post(
        &harness.router,
        "/api/auth/reset/confirm",
        json!({"token": "x".repeat(43), "password": new_password}),
        IP,
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stream_tickets_work_once_and_carry_the_user() {
    let harness = sqlite_harness(config()).await;
    let answer = call(&harness.router, Method::POST, "/api/stream/ticket", None, None, IP).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["expires_in"], 30);
    let ticket = answer.body["ticket"].as_str().unwrap().to_owned();
    let grant = harness.service.redeem_ticket(&ticket).await.unwrap();
    assert_eq!(grant.user_id, None);
    assert!(harness.service.redeem_ticket(&ticket).await.is_none());
    assert!(harness.service.redeem_ticket("never-issued").await.is_none());

    let login = signed_in(&harness, "ticket@example.org", IP).await;
    let access = login["access_token"].as_str().unwrap();
    let answer = call(&harness.router, Method::POST, "/api/stream/ticket", None, Some(access), IP).await;
    let ticket = answer.body["ticket"].as_str().unwrap().to_owned();
    let claims = harness.service.authenticate(access).await.unwrap();
    assert_eq!(harness.service.redeem_ticket(&ticket).await.unwrap().user_id, Some(claims.sub));
    assert!(harness.service.redeem_ticket(&ticket).await.is_none());

    // A bad token is refused rather than silently downgraded to anonymous.
    let answer = call(&harness.router, Method::POST, "/api/stream/ticket", None, Some("forged"), IP).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn brute_force_gets_429_with_retry_after() {
    let harness = sqlite_harness(config()).await;
    let email = "target@example.org";
    // Per account and address: 5 a minute from the attacker's address ...
    let attacker = "192.0.2.66";
    for _ in 0..5 {
        let answer = post(
            &harness.router,
            "/api/auth/login",
            json!({"email": email, "password": "guess guess guess"}),
            attacker,
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let answer =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": "guess guess guess"}), attacker)
            .await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.body["code"], "rate_limited");
    let retry_after: u64 = answer.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    // ... while the owner, from their own address, is not locked out.
    let answer =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": "guess guess guess"}), "192.0.2.7")
            .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);

    // Per IP: 20 a minute, over any number of accounts.
    let ip = "203.0.113.20";
    for attempt in 0..20 {
        let answer = post(
            &harness.router,
            "/api/auth/login",
            json!({"email": format!("spray{attempt}@example.org"), "password": "guess guess guess"}),
            ip,
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let answer = post(
        &harness.router,
        "/api/auth/login",
        json!({"email": "spray-last@example.org", "password": "guess guess guess"}),
        ip,
    )
    .await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(answer.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn signup_reset_and_ticket_limits() {
    let tight = RateLimit { max: 2, window_secs: 60 };
    let config = AuthConfig {
        limits: RateLimits { signup_ip: tight, reset_account: tight, ticket_ip: tight, ..RateLimits::default() },
        ..config()
    };
    let harness = sqlite_harness(config).await;
    for n in 0..2 {
        let answer = post(
            &harness.router,
            "/api/auth/signup",
            json!({"email": format!("s{n}@example.org"), "password": PASSWORD}),
            IP,
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    let answer =
        post(&harness.router, "/api/auth/signup", json!({"email": "s9@example.org", "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(answer.headers.contains_key("retry-after"));

    for n in 0..2 {
        let answer = post(
            &harness.router,
            "/api/auth/reset/request",
            json!({"email": "s0@example.org"}),
            &format!("192.0.2.{n}"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    let answer =
        post(&harness.router, "/api/auth/reset/request", json!({"email": "s0@example.org"}), "192.0.2.50").await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);

    for _ in 0..2 {
        assert_eq!(
            call(&harness.router, Method::POST, "/api/stream/ticket", None, None, IP).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        call(&harness.router, Method::POST, "/api/stream/ticket", None, None, IP).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn ticket_status(harness: &Harness, peer: &str, forwarded_for: &str) -> StatusCode {
    use tower::ServiceExt;
    let mut request = http::Request::builder()
        .method(Method::POST)
        .uri("/api/stream/ticket")
        .header("x-forwarded-for", forwarded_for)
        .body(axum::body::Body::empty())
        .unwrap();
    let peer: std::net::SocketAddr = format!("{peer}:5000").parse().unwrap();
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    harness.router.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let one = RateLimit { max: 1, window_secs: 60 };
    let proxy: IpAddr = "10.0.0.1".parse().unwrap();
    let config = AuthConfig {
        limits: RateLimits { ticket_ip: one, ..RateLimits::default() },
        trusted_proxies: vec![proxy],
        ..config()
    };
    let harness = sqlite_harness(config).await;
    // Behind the trusted proxy, two clients have two buckets.
    assert_eq!(ticket_status(&harness, "10.0.0.1", "198.51.100.1").await, StatusCode::OK);
    assert_eq!(ticket_status(&harness, "10.0.0.1", "198.51.100.2").await, StatusCode::OK);
    assert_eq!(ticket_status(&harness, "10.0.0.1", "198.51.100.2").await, StatusCode::TOO_MANY_REQUESTS);
    // A direct client cannot pick a fresh bucket by sending the header.
    assert_eq!(ticket_status(&harness, "203.0.113.5", "198.51.100.3").await, StatusCode::OK);
    assert_eq!(ticket_status(&harness, "203.0.113.5", "198.51.100.4").await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn saved_decks_are_validated_and_bounded() {
    let harness = sqlite_harness(config()).await;
    let login = signed_in(&harness, "deck@example.org", IP).await;
    let access = login["access_token"].as_str();
    let empty = call(&harness.router, Method::GET, "/api/me/deck", None, access, IP).await;
    assert_eq!(empty.body, json!({"columns": []}));

    let deck = json!({"columns": [
        {"id": "bts", "title": "BTS", "query": "BTS", "width": 340.0, "filters": {}},
        {"id": "trends", "title": "Trends", "query": "", "width": 440.0, "filters": {"kind": "trends", "window": "1h"}}
    ]});
    let answer = call(&harness.router, Method::PUT, "/api/me/deck", Some(deck.clone()), access, IP).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let stored = call(&harness.router, Method::GET, "/api/me/deck", None, access, IP).await;
    assert_eq!(stored.body, deck);
    // Another member sees their own (empty) deck.
    let other = signed_in(&harness, "other@example.org", IP).await;
    let theirs = call(&harness.router, Method::GET, "/api/me/deck", None, other["access_token"].as_str(), IP).await;
    assert_eq!(theirs.body, json!({"columns": []}));

    let column = |id: usize| json!({"id": id.to_string(), "title": "t", "query": "q", "width": 340, "filters": {}});
    let too_many = json!({"columns": (0..51).map(column).collect::<Vec<_>>()});
    let long_query =
        json!({"columns": [{"id": "a", "title": "t", "query": "x".repeat(513), "width": 340, "filters": {}}]});
    let unknown_field =
        json!({"columns": [{"id": "a", "title": "t", "query": "q", "width": 340, "filters": {}, "evil": 1}]});
    let cases = [(too_many, "columns"), (long_query, "columns.query"), (unknown_field, "body")];
    for (body, field) in cases {
        let answer = call(&harness.router, Method::PUT, "/api/me/deck", Some(body), access, IP).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.body["field"], field, "{:?}", answer.body);
    }
    let huge = json!({"columns": [{"id": "a", "title": "t", "query": "q", "width": 340, "filters": {"pad": "x".repeat(300_000)}}]});
    let answer = call(&harness.router, Method::PUT, "/api/me/deck", Some(huge), access, IP).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.body["code"], "too_large");
    // Nothing of the refused decks was stored.
    assert_eq!(call(&harness.router, Method::GET, "/api/me/deck", None, access, IP).await.body, deck);

    // The library of named decks and their deck-wide mutes is kept whole.
    let full = |id: &str| json!({"id": id, "title": "t", "query": "q", "width": 340.0, "filters": {}});
    let library = json!({
        "columns": [full("a")],
        "mutes": ["spoiler", "@troll"],
        "library": {"current": "d2", "decks": [
            {"id": "d1", "name": "Comeback", "columns": [full("a"), full("b")]},
            {"id": "d2", "name": "방탄 덱", "columns": [full("a")], "mutes": ["spoiler", "@troll"]}
        ]}
    });
    let saved = call(&harness.router, Method::PUT, "/api/me/deck", Some(library.clone()), access, IP).await;
    assert_eq!(saved.status, StatusCode::OK, "{:?}", saved.body);
    assert_eq!(call(&harness.router, Method::GET, "/api/me/deck", None, access, IP).await.body, library);
    let lost =
        json!({"columns": [], "library": {"current": "d9", "decks": [{"id": "d1", "name": "x", "columns": []}]}});
    let answer = call(&harness.router, Method::PUT, "/api/me/deck", Some(lost), access, IP).await;
    assert_eq!((answer.status, answer.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("library.current")));
    let answer = call(&harness.router, Method::PUT, "/api/me/deck", Some(deck.clone()), access, IP).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        call(&harness.router, Method::PUT, "/api/me/deck", Some(deck), None, IP).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn embedded_backends_file_mail_in_the_data_dir_outbox() {
    let data_dir = tempfile::tempdir().unwrap();
    let backends = auth::AuthBackends { data_dir: data_dir.path().to_path_buf(), ..Default::default() };
    let service = std::sync::Arc::new(auth::AuthService::connect(config(), &backends).await.unwrap());
    let router = auth::router(std::sync::Arc::clone(&service));
    let answer =
        post(&router, "/api/auth/signup", json!({"email": "embedded@example.org", "password": PASSWORD}), IP).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    service.flush_mail().await;
    let mails = wait_for_mails(&data_dir.path().join("outbox"), 1).await;
    assert!(mails[0].contains("To: embedded@example.org"));
    assert!(data_dir.path().join("auth.sqlite").exists());
}

/// Behind the per-minute window (tested above) the per-account-and-address limit backs
/// off over longer windows: here the quarter-hour step alone (the minute step opened
/// wide), which holds a guesser for most of the quarter-hour, while the owner's own
/// address is free. (Real waits are not used: the defaults are 5 / min, 15 / 15 min and
/// 40 / day, in `docs/security.md`.)
#[tokio::test]
async fn a_patient_guesser_is_slowed_by_a_growing_backoff() {
    let defaults = RateLimits::default();
    assert!(defaults.login_account_slow.window_secs > defaults.login_account.window_secs);
    assert!(defaults.login_account_daily.window_secs > defaults.login_account_slow.window_secs);
    let limits = RateLimits {
        login_account: RateLimit { max: 1_000, window_secs: 60 },
        login_account_slow: RateLimit { max: 15, window_secs: 15 * 60 },
        ..defaults
    };
    let harness = sqlite_harness(AuthConfig { limits, ..config() }).await;
    let email = "patient@example.org";
    let attacker = "192.0.2.67";
    for _ in 0..15 {
        let answer = post(
            &harness.router,
            "/api/auth/login",
            json!({"email": email, "password": "guess guess guess"}),
            attacker,
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let answer =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": "guess guess guess"}), attacker)
            .await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = answer.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 60 && retry_after <= 15 * 60, "{retry_after}");
    // The owner, from their own address, is not locked out.
    let answer =
        post(&harness.router, "/api/auth/login", json!({"email": email, "password": "guess guess guess"}), "192.0.2.8")
            .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}
