//! Configuration of the accounts role: one serde struct, passed in, never global.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ratelimit::RateLimit;

/// One HMAC key for signing access tokens, named by the `kid` header of the tokens it signs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JwtKey {
    /// Key id written into the JWT header; validation picks the key by it.
    pub kid: String,
    /// The shared secret (at least 32 bytes).
    pub secret: String,
}

/// Everything the accounts role needs to know; defaults suit the embedded demo.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Signing keys. Keeping an old key here after changing `active_kid` lets tokens it
    /// signed live out their 15 minutes. Empty: a random key is made at start-up (tokens
    /// then do not survive a restart), with a warning.
    pub keys: Vec<JwtKey>,
    /// The `kid` of the key that signs new tokens.
    pub active_kid: String,
    /// `iss` claim written and required.
    pub issuer: String,
    /// `aud` claim written and required.
    pub audience: String,
    /// Lifetime of access tokens, seconds (15 minutes).
    pub access_ttl_secs: u64,
    /// Idle lifetime of a refresh token, seconds (30 days); each rotation starts a new
    /// one, never past the session's absolute lifetime.
    pub refresh_ttl_secs: u64,
    /// Absolute lifetime of a session (a refresh-token family), seconds (30 days): however
    /// often it is refreshed, the member logs in again after this (ASVS 7.3.2).
    pub session_lifetime_secs: u64,
    /// How long after a refresh token was rotated away presenting it again is taken for a
    /// second tab refreshing at the same moment (a sibling token is issued in the same
    /// session), rather than for a stolen token (which revokes the session), seconds (30).
    pub refresh_reuse_grace_secs: u64,
    /// Lifetime of verification and reset tokens, seconds (24 hours).
    pub email_token_ttl_secs: u64,
    /// Lifetime of a stream ticket, seconds.
    pub ticket_ttl_secs: u64,
    /// Base of the links in mails, e.g. `https://deck.example`.
    pub public_url: String,
    /// Sender of the mails.
    pub mail_from: String,
    /// Peers whose `X-Forwarded-For` header is believed. Empty: the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Brute-force limits.
    pub limits: RateLimits,
    /// Password hashing cost.
    pub argon2: Argon2Config,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            keys: Vec::new(),
            active_kid: String::new(),
            issuer: "deck".to_owned(),
            audience: "deck".to_owned(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            session_lifetime_secs: 30 * 24 * 3600,
            refresh_reuse_grace_secs: 30,
            email_token_ttl_secs: 24 * 3600,
            ticket_ttl_secs: 30,
            public_url: "http://127.0.0.1:8080".to_owned(),
            mail_from: "Deck <no-reply@deck.invalid>".to_owned(),
            trusted_proxies: Vec::new(),
            limits: RateLimits::default(),
            argon2: Argon2Config::default(),
        }
    }
}

/// Argon2id parameters. The defaults are OWASP's (m = 19 MiB, t = 2, p = 1).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Most hashes computed at once; the others wait their turn without a
    /// thread. 0 means one fewer than the machine's cores (at least one),
    /// so that a storm of logins always leaves a core to every other request.
    pub max_concurrent: usize,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config { memory_kib: 19_456, iterations: 2, parallelism: 1, max_concurrent: 0 }
    }
}

impl Argon2Config {
    /// [`Argon2Config::max_concurrent`] with 0 resolved for this machine.
    pub fn concurrency(&self) -> usize {
        match self.max_concurrent {
            0 => std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1)),
            n => n,
        }
    }
}

/// Per-account and per-IP windows. An "account" key is the normalised e-mail address
/// (whether or not a member has it) or, once signed in, the member id.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Login attempts per account from one client address (IPv6 by /64). Keyed by both, so
    /// that one attacker guessing from their address cannot lock the owner out.
    pub login_account: RateLimit,
    /// The backoff behind `login_account`, same key: longer windows with more attempts, so
    /// that a guesser who waits out each minute is slowed to a few tries an hour, then a day.
    pub login_account_slow: RateLimit,
    /// The last step of that backoff.
    pub login_account_daily: RateLimit,
    /// Login attempts per account from all addresses together: bounds guessing spread over
    /// many addresses. Set high, since reaching it locks the account for its window.
    pub login_account_total: RateLimit,
    /// Login attempts per client IP.
    pub login_ip: RateLimit,
    /// Sign-ups per client IP.
    pub signup_ip: RateLimit,
    /// Sign-ups (and so mails) per e-mail address.
    pub signup_account: RateLimit,
    /// Reset and resend requests per client IP.
    pub reset_ip: RateLimit,
    /// Reset and resend requests (and so mails) per e-mail address.
    pub reset_account: RateLimit,
    /// Token redemptions (verify, reset confirm, refresh) per client IP.
    pub token_ip: RateLimit,
    /// Stream tickets per client IP.
    pub ticket_ip: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            login_account: RateLimit::per_minute(5),
            login_account_slow: RateLimit { max: 15, window_secs: 15 * 60 },
            login_account_daily: RateLimit { max: 40, window_secs: 24 * 3600 },
            login_account_total: RateLimit { max: 100, window_secs: 3600 },
            login_ip: RateLimit::per_minute(20),
            signup_ip: RateLimit { max: 20, window_secs: 3600 },
            signup_account: RateLimit { max: 3, window_secs: 3600 },
            reset_ip: RateLimit { max: 20, window_secs: 3600 },
            reset_account: RateLimit { max: 3, window_secs: 3600 },
            token_ip: RateLimit::per_minute(60),
            ticket_ip: RateLimit::per_minute(60),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (only for a relay on the same host or in tests).
    None,
    /// Upgrade with STARTTLS, refusing to go on without it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Where the SMTP mailer sends. Credentials come from `DECK_SMTP_USER` and
/// `DECK_SMTP_PASSWORD`, never from the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name.
    pub host: String,
    /// Relay port (587 for STARTTLS, 465 for TLS, 25 plain).
    pub port: u16,
    /// Transport security.
    #[serde(default)]
    pub tls: SmtpTls,
}

/// Which engines back the stores; `None` means embedded.
#[derive(Clone, Debug, Default)]
pub struct AuthBackends {
    /// Data folder: `auth.sqlite` and `outbox/` live here in embedded mode.
    pub data_dir: PathBuf,
    /// `mysql://…` URL (`DECK_MYSQL`): members in MySQL/MariaDB instead of SQLite.
    pub mysql_url: Option<String>,
    /// `redis://…` URL (`DECK_REDIS`): tickets and counters in Redis instead of memory.
    pub redis_url: Option<String>,
    /// SMTP relay: mail goes out instead of into the outbox folder.
    pub smtp: Option<SmtpConfig>,
}
