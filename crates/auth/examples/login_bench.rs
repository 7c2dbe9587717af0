//! Logins per second with the configured Argon2id parameters (m = 19 MiB, t = 2, p = 1),
//! on real SQLite, calling `AuthService::login` from N concurrent tasks.
//!
//! Then the cost of the gateway's token check alone: `AuthService::authenticate_sync`
//! on a real access token, one core.
//!
//! `cargo run --release -p auth --example login_bench -- [SECONDS] [CONCURRENCY]`

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth::{
    AuthConfig, AuthService, JwtKey, Member, MemberStore, MemoryRateLimiter, MemoryTicketStore, OutboxMailer,
    PasswordHasher, RateLimit, RateLimits, SqlMemberStore,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let concurrency: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2);
    let unlimited = RateLimit { max: u32::MAX, window_secs: 1 };
    let config = AuthConfig {
        keys: vec![JwtKey { kid: "bench".into(), secret: "bench secret of at least thirty-two bytes".into() }],
        active_kid: "bench".into(),
        limits: RateLimits {
            login_account: unlimited,
            login_account_total: unlimited,
            login_ip: unlimited,
            ..RateLimits::default()
        },
        ..AuthConfig::default()
    };
    let dir = tempfile::tempdir()?;
    let members = Arc::new(SqlMemberStore::open_sqlite(&dir.path().join("auth.sqlite")).await?);
    let password = "benchmark passphrase";
    let hash = PasswordHasher::new(config.argon2)?.hash(password).await?;
    let member = Member {
        id: auth::new_id(),
        email: "bench@example.org".into(),
        password_hash: hash,
        verified_at: Some(1),
        created_at: 1,
    };
    members.create_member(&member).await?;
    let mailer = OutboxMailer::new(dir.path().join("outbox"), &config.mail_from)?;
    let service = Arc::new(
        AuthService::new(
            config,
            members,
            Arc::new(MemoryTicketStore::new()),
            Arc::new(MemoryRateLimiter::new()),
            Arc::new(mailer),
        )
        .await?,
    );
    let n_logins = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let service = Arc::clone(&service);
        let n_logins = Arc::clone(&n_logins);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let tokens = service.login("bench@example.org", password, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
                assert!(tokens.is_ok(), "login failed: {tokens:?}");
                n_logins.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = n_logins.load(Ordering::Relaxed);
    println!(
        "logins: {n} in {elapsed:.2}s with {concurrency} concurrent tasks = {:.1} logins/s (argon2id m=19456 KiB, t=2, p=1; {} cores)",
        n as f64 / elapsed,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    let tokens = service.login("bench@example.org", password, IpAddr::V4(Ipv4Addr::LOCALHOST)).await?;
    let bearer = format!("Bearer {}", tokens.access_token);
    let n_checks = 200_000u32;
    let started = Instant::now();
    for _ in 0..n_checks {
        let claims = service.authenticate_sync(std::hint::black_box(&bearer))?;
        std::hint::black_box(claims);
    }
    let per_check = started.elapsed() / n_checks;
    println!(
        "token check: {:.2} µs per access token (HS256 signature, expiry, issuer, audience), one core",
        per_check.as_secs_f64() * 1e6
    );
    Ok(())
}
