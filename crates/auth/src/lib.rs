//! Deck accounts: sign-up with e-mail verification, login, JWT access tokens and rotating
//! refresh tokens, password reset and change, saved decks, stream tickets and rate limits.
//!
//! The crate is organised by role. [`AuthService`] holds the rules; [`router`] is the HTTP
//! face the gateway mounts; the stores sit behind traits ([`MemberStore`], [`TicketStore`],
//! [`RateLimiter`], [`Mailer`]) with an embedded and a distributed implementation side by
//! side, chosen once at start-up by [`AuthService::connect`].
//!
//! **Invariant:** every revocation lives in the SQL member store; Redis only holds
//! short-lived tickets and counters, so losing it can never make a revoked token valid.

mod config;
mod deck;
mod error;
mod files;
mod http;
mod mail;
mod password;
mod ratelimit;
mod service;
mod store;
mod ticket;
mod tokens;

pub use api::client::{bearer_token, client_ip, rate_key_for_ip};
pub use config::{Argon2Config, AuthBackends, AuthConfig, JwtKey, RateLimits, SmtpConfig, SmtpTls};
pub use deck::{Deck, DeckColumn, DeckLibrary, DeckLimits, NamedDeck, validate_deck};
pub use error::{AuthError, MailError, StoreError};
pub use files::{create_private_dir, open_private_file, precreate_private_file, write_private_file};
pub use http::{ClientIp, is_json_content_type, router};
pub use mail::{Mail, Mailer, OutboxMailer, SmtpMailer};
pub use password::{PasswordHasher, check_password_policy, is_common_password};
pub use ratelimit::{MemoryRateLimiter, RateDecision, RateLimit, RateLimiter, RedisRateLimiter};
pub use service::{AuthService, SessionTokens};
pub use store::{
    CreateOutcome, EmailTokenRecord, Member, MemberStore, RefreshTokenRecord, RefreshTokenState, RotateOutcome,
    SqlMemberStore, TokenPurpose,
};
pub use ticket::{MemoryTicketStore, RedisTicketStore, TicketGrant, TicketStore};
pub use tokens::{Claims, JwtKeys, hash_token, new_id, new_secret_token};
