//! The member store: members, e-mail tokens, refresh-token families and saved decks.
//! SQLite in embedded mode and MySQL/MariaDB in distributed mode, one implementation over
//! sqlx's `Any` driver with per-engine migrations and the few dialect differences inside.

mod sql;

use async_trait::async_trait;

pub use sql::SqlMemberStore;

use crate::error::StoreError;

/// A member as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Random 128-bit id in hex.
    pub id: String,
    /// Normalised (trimmed, lower-case) e-mail address.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When the address was verified, seconds since the epoch.
    pub verified_at: Option<i64>,
    /// When the account was made.
    pub created_at: i64,
}

/// What a creation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The member was inserted.
    Created,
    /// A member already has this e-mail address.
    EmailTaken,
}

/// Why an e-mail token was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves the address at sign-up.
    Verify,
    /// Allows setting a new password.
    Reset,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Verify => "verify",
            TokenPurpose::Reset => "reset",
        }
    }
}

/// A verification or reset token as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailTokenRecord {
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// Member it belongs to.
    pub user_id: String,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// For sign-up verification: the password hash chosen with this sign-up, installed
    /// when this very link is followed (so whoever owns the mailbox sets the password).
    pub password_hash: Option<String>,
    /// Made at.
    pub created_at: i64,
    /// Refused from this time on.
    pub expires_at: i64,
}

/// A refresh token as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// The family (session) it belongs to.
    pub family_id: String,
    /// The member.
    pub user_id: String,
    /// Made at.
    pub created_at: i64,
    /// Refused from this time on.
    pub expires_at: i64,
}

/// A refresh token with what decides whether it may still be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenState {
    /// The stored token.
    pub record: RefreshTokenRecord,
    /// When it was rotated away, if it was.
    pub used_at: Option<i64>,
    /// When its family was revoked, if it was.
    pub family_revoked_at: Option<i64>,
    /// When its family (the session) started: the session's absolute lifetime counts
    /// from here.
    pub family_created_at: i64,
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old token is now used and the new one stored.
    Rotated,
    /// The old token had already been used (by someone else, concurrently or before).
    AlreadyUsed,
}

/// Durable account state. Every revocation is recorded here.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// Inserts a member unless the e-mail address is taken.
    async fn create_member(&self, member: &Member) -> Result<CreateOutcome, StoreError>;
    /// The member with this normalised address.
    async fn member_by_email(&self, email: &str) -> Result<Option<Member>, StoreError>;
    /// The member with this id.
    async fn member_by_id(&self, user_id: &str) -> Result<Option<Member>, StoreError>;
    /// Replaces a member's password hash.
    async fn set_password(&self, user_id: &str, password_hash: &str, now: i64) -> Result<(), StoreError>;
    /// Marks the address verified (keeps an earlier verification time).
    async fn mark_verified(&self, user_id: &str, now: i64) -> Result<(), StoreError>;

    /// Stores an e-mail token.
    async fn insert_email_token(&self, token: &EmailTokenRecord) -> Result<(), StoreError>;
    /// Uses an e-mail token once: returns it if it exists, has this purpose, is unused and
    /// unexpired, and marks it used in the same atomic step.
    async fn consume_email_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<Option<EmailTokenRecord>, StoreError>;
    /// Reads an e-mail token without using it: `Some` if it exists, has this purpose, is
    /// unused and unexpired. Verification checks the password against it first, so that a
    /// wrong guess (or a mail scanner) does not burn the owner's link.
    async fn peek_email_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: i64,
    ) -> Result<Option<EmailTokenRecord>, StoreError>;
    /// Marks every unused token of this member and purpose used.
    async fn invalidate_email_tokens(&self, user_id: &str, purpose: TokenPurpose, now: i64) -> Result<(), StoreError>;

    /// Starts a session: a new family with its first refresh token.
    async fn create_family(&self, first: &RefreshTokenRecord) -> Result<(), StoreError>;
    /// Looks a refresh token up with its family's state.
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenState>, StoreError>;
    /// Marks `old_hash` used and stores `next` in one transaction, unless `old_hash` was
    /// already used.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        next: &RefreshTokenRecord,
        now: i64,
    ) -> Result<RotateOutcome, StoreError>;
    /// Adds a token to a live family without using any (a second tab's concurrent
    /// refresh, within the grace period).
    async fn add_refresh_token(&self, token: &RefreshTokenRecord) -> Result<(), StoreError>;
    /// Revokes one family.
    async fn revoke_family(&self, family_id: &str, now: i64) -> Result<(), StoreError>;
    /// Revokes every family of a member except `keep`; returns how many were revoked.
    async fn revoke_member_families(&self, user_id: &str, keep: Option<&str>, now: i64) -> Result<u64, StoreError>;
    /// Whether the family exists and is not revoked.
    async fn family_active(&self, family_id: &str) -> Result<bool, StoreError>;

    /// The member's saved deck (JSON bytes).
    async fn load_deck(&self, user_id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces the member's saved deck.
    async fn save_deck(&self, user_id: &str, deck: &[u8], now: i64) -> Result<(), StoreError>;
}
