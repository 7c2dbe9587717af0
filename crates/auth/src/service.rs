//! [`AuthService`]: the account rules, independent of HTTP.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinSet;

use crate::config::{AuthBackends, AuthConfig};
use crate::deck::{Deck, DeckLimits, validate_deck};
use crate::error::AuthError;
use crate::mail::{Mail, Mailer, OutboxMailer, SmtpMailer};
use crate::password::{PasswordHasher, check_password_policy};
use crate::ratelimit::{MemoryRateLimiter, RateDecision, RateLimit, RateLimiter, RedisRateLimiter};
use crate::store::{
    CreateOutcome, EmailTokenRecord, Member, MemberStore, RefreshTokenRecord, RotateOutcome, SqlMemberStore,
    TokenPurpose,
};
use crate::ticket::{MemoryTicketStore, RedisTicketStore, TicketGrant, TicketStore};
use crate::tokens::{Claims, JwtKeys, hash_token, new_id, new_secret_token};
use api::client::rate_key_for_ip;

use api::TicketResponse;
pub use api::account::SessionTokens;

/// The accounts role. Cheap to share behind an `Arc`.
pub struct AuthService {
    config: AuthConfig,
    members: Arc<dyn MemberStore>,
    tickets: Arc<dyn TicketStore>,
    limiter: Arc<dyn RateLimiter>,
    mailer: Arc<dyn Mailer>,
    keys: JwtKeys,
    hasher: PasswordHasher,
    /// A real hash of a random password, verified against when the e-mail is unknown so
    /// that a login for a missing account costs the same as a wrong password.
    dummy_hash: String,
    deck_limits: DeckLimits,
    /// Mail being sent in the background; drained by [`AuthService::flush_mail`].
    mail_tasks: Mutex<JoinSet<()>>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("keys", &self.keys).finish_non_exhaustive()
    }
}

/// Key prefixes in Redis, so one Redis can serve several roles.
const REDIS_TICKET_PREFIX: &str = "deck:auth:ticket:";
const REDIS_LIMIT_PREFIX: &str = "deck:auth:limit:";

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn secs_i64(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Trims and lower-cases an address and checks its shape; the only proof that it works is
/// the verification mail.
fn normalize_email(email: &str) -> Result<String, AuthError> {
    let email = email.trim().to_lowercase();
    let bad = || AuthError::invalid("email", "a valid e-mail address is required");
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>') {
        return Err(bad());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || domain.len() < 3 || !domain.contains('.') || local.contains('@') {
        return Err(bad());
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(bad());
    }
    Ok(email)
}

/// The mail with a verification link (to `<public_url>/#/verify?token=…`).
fn verification_mail(public_url: &str, email: &str, token: &str) -> Mail {
    let link = format!("{public_url}/#/verify?token={token}");
    Mail {
        to: email.to_owned(),
        subject: "Confirm your Deck account".to_owned(),
        text: format!(
            "Welcome to Deck.\n\nOpen this link and enter the password you chose to confirm your e-mail \
             address:\n\n{link}\n\nThe link works once and expires in 24 hours. If you did not sign up, ignore \
             this message.\n"
        ),
        link: Some(link),
    }
}

/// The mail with a password-reset link.
fn reset_mail(public_url: &str, email: &str, token: &str) -> Mail {
    let link = format!("{public_url}/#/reset?token={token}");
    Mail {
        to: email.to_owned(),
        subject: "Reset your Deck password".to_owned(),
        text: format!(
            "Open this link to choose a new password:\n\n{link}\n\nThe link works once and expires in \
             24 hours. If you did not ask for it, ignore this message; your password is unchanged.\n"
        ),
        link: Some(link),
    }
}

impl AuthService {
    /// A service over the given stores.
    pub async fn new(
        config: AuthConfig,
        members: Arc<dyn MemberStore>,
        tickets: Arc<dyn TicketStore>,
        limiter: Arc<dyn RateLimiter>,
        mailer: Arc<dyn Mailer>,
    ) -> Result<Self, AuthError> {
        let keys = JwtKeys::from_config(&config)?;
        let hasher = PasswordHasher::new(config.argon2)?;
        let dummy_hash = hasher.hash(&new_secret_token()).await?;
        Ok(AuthService {
            config,
            members,
            tickets,
            limiter,
            mailer,
            keys,
            hasher,
            dummy_hash,
            deck_limits: DeckLimits::default(),
            mail_tasks: Mutex::new(JoinSet::new()),
        })
    }

    /// Connects the stores the backends name: SQLite file `auth.sqlite` in the data folder
    /// unless a MySQL URL is given; memory tickets and counters unless a Redis URL is given;
    /// the outbox folder unless SMTP is configured. Migrations run here.
    pub async fn connect(config: AuthConfig, backends: &AuthBackends) -> Result<Self, AuthError> {
        let members: Arc<dyn MemberStore> = match &backends.mysql_url {
            Some(url) => Arc::new(SqlMemberStore::connect(url).await?),
            None => {
                crate::files::create_private_dir(&backends.data_dir)
                    .map_err(|error| AuthError::Config(format!("data dir: {error}")))?;
                let path = backends.data_dir.join("auth.sqlite");
                crate::files::precreate_private_file(&path)
                    .map_err(|error| AuthError::Config(format!("{}: {error}", path.display())))?;
                Arc::new(SqlMemberStore::open_sqlite(&path).await?)
            }
        };
        let (tickets, limiter): (Arc<dyn TicketStore>, Arc<dyn RateLimiter>) = match &backends.redis_url {
            Some(url) => (
                Arc::new(RedisTicketStore::connect(url, REDIS_TICKET_PREFIX).await?),
                Arc::new(RedisRateLimiter::connect(url, REDIS_LIMIT_PREFIX).await?),
            ),
            None => (Arc::new(MemoryTicketStore::new()), Arc::new(MemoryRateLimiter::new())),
        };
        let mailer: Arc<dyn Mailer> = match &backends.smtp {
            Some(smtp) => Arc::new(SmtpMailer::new(smtp, &config.mail_from)?),
            None => Arc::new(OutboxMailer::new(backends.data_dir.join("outbox"), &config.mail_from)?),
        };
        Self::new(config, members, tickets, limiter, mailer).await
    }

    /// The configuration in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The deck limits in force.
    pub fn deck_limits(&self) -> &DeckLimits {
        &self.deck_limits
    }

    /// The member store (for tests and administration).
    pub fn members(&self) -> &Arc<dyn MemberStore> {
        &self.members
    }

    /// Counts one hit against a limit and refuses with 429 when over it. A limiter that
    /// fails (Redis down) lets the request through with an error in the log: limits
    /// protect against guessing, and every decision that grants access still goes
    /// through the SQL store.
    pub async fn check_rate(&self, scope: &str, key: &str, limit: RateLimit) -> Result<(), AuthError> {
        // Keys are hashed so that Redis never holds e-mail addresses or client IPs.
        let counter_key = format!("{scope}:{}", &hash_token(key)[..32]);
        match self.limiter.hit(&counter_key, limit).await {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after_secs }) => {
                tracing::info!(scope, "rate limit reached");
                Err(AuthError::RateLimited { retry_after_secs })
            }
            Err(error) => {
                tracing::error!(%error, scope, "rate limiter unavailable; request let through");
                Ok(())
            }
        }
    }

    async fn check_ip(&self, scope: &str, ip: IpAddr, limit: RateLimit) -> Result<(), AuthError> {
        self.check_rate(scope, &rate_key_for_ip(ip), limit).await
    }

    /// Sends mail in the background so that answers never wait on (or reveal) mail work.
    fn send_later(&self, mail: Mail) {
        let mailer = Arc::clone(&self.mailer);
        let mut tasks = self.mail_tasks.lock();
        // Reap finished sends so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            if let Err(error) = mailer.send(&mail).await {
                tracing::warn!(%error, subject = %mail.subject, "mail not sent");
            }
        });
    }

    /// Waits until every mail queued so far has been handed over (tests, shutdown).
    pub async fn flush_mail(&self) {
        let mut tasks = std::mem::take(&mut *self.mail_tasks.lock());
        while tasks.join_next().await.is_some() {}
    }

    async fn new_email_token(
        &self,
        user_id: &str,
        purpose: TokenPurpose,
        password_hash: Option<String>,
    ) -> Result<String, AuthError> {
        let token = new_secret_token();
        let now = now_secs();
        self.members
            .insert_email_token(&EmailTokenRecord {
                token_hash: hash_token(&token),
                user_id: user_id.to_owned(),
                purpose,
                password_hash,
                created_at: now,
                expires_at: now.saturating_add(secs_i64(self.config.email_token_ttl_secs)),
            })
            .await?;
        Ok(token)
    }

    fn verification_mail(&self, email: &str, token: &str) -> Mail {
        verification_mail(self.config.public_url.trim_end_matches('/'), email, token)
    }

    /// Sign-up. Answers the same whether or not the address has an account: a new address
    /// gets a verification link; a verified one gets an "you already have an account"
    /// notice; an unverified one gets a fresh link that, when followed, sets the password
    /// chosen now (so whoever reads the mailbox decides the password, which defeats
    /// pre-registering someone else's address).
    pub async fn signup(&self, email: &str, password: &str, ip: IpAddr) -> Result<(), AuthError> {
        let limits = self.config.limits;
        self.check_ip("signup-ip", ip, limits.signup_ip).await?;
        let email = normalize_email(email)?;
        check_password_policy(password, &email, "password")?;
        self.check_rate("signup-account", &email, limits.signup_account).await?;
        // Hash in every branch so that all branches cost the same.
        let password_hash = self.hasher.hash(password).await?;
        let now = now_secs();
        let member = Member {
            id: new_id(),
            email: email.clone(),
            password_hash: password_hash.clone(),
            verified_at: None,
            created_at: now,
        };
        match self.members.create_member(&member).await? {
            CreateOutcome::Created => {
                let token = self.new_email_token(&member.id, TokenPurpose::Verify, Some(password_hash)).await?;
                self.send_later(self.verification_mail(&email, &token));
            }
            CreateOutcome::EmailTaken => {
                let existing = self
                    .members
                    .member_by_email(&email)
                    .await?
                    .ok_or_else(|| AuthError::Internal("member vanished during sign-up".to_owned()))?;
                if existing.verified_at.is_some() {
                    let login = format!("{}/#/login", self.config.public_url.trim_end_matches('/'));
                    let reset = format!("{}/#/reset", self.config.public_url.trim_end_matches('/'));
                    self.send_later(Mail {
                        to: email.clone(),
                        subject: "You already have a Deck account".to_owned(),
                        text: format!(
                            "Someone (hopefully you) tried to sign up to Deck with this address, which already \
                             has an account.\n\nLog in: {login}\nForgot your password? {reset}\n\n\
                             If it was not you, you can ignore this message; nothing changed.\n"
                        ),
                        link: Some(login),
                    });
                } else {
                    let token = self.new_email_token(&existing.id, TokenPurpose::Verify, Some(password_hash)).await?;
                    self.send_later(self.verification_mail(&email, &token));
                }
            }
        }
        Ok(())
    }

    /// Follows a verification link: single use, unexpired, and only with the password
    /// chosen at the sign-up that sent this link (for a resent link: the account's
    /// password). Following a link proves the mailbox; the password proves that whoever
    /// follows it is the person who signed up. A verify without a password or with the
    /// wrong one changes nothing and does not use the link up, so a mail scanner (or an
    /// attacker who pre-registered the address) cannot take the owner's chance away.
    /// On success every other verify token of the address ends, so an earlier sign-up's
    /// link can never install its password later.
    pub async fn verify_email(&self, token: &str, password: Option<&str>, ip: IpAddr) -> Result<(), AuthError> {
        self.check_ip("token-ip", ip, self.config.limits.token_ip).await?;
        let password = password.unwrap_or_default();
        if password.is_empty() {
            return Err(AuthError::invalid("password", "enter the password you chose when you signed up"));
        }
        let token_hash = hash_token(token.trim());
        let now = now_secs();
        let record = self
            .members
            .peek_email_token(&token_hash, TokenPurpose::Verify, now)
            .await?
            .ok_or(AuthError::InvalidEmailToken)?;
        // Guessing the password of a link one holds is limited per link.
        self.check_rate("verify-token", &token_hash, self.config.limits.login_account).await?;
        let expected = match &record.password_hash {
            Some(hash) => hash.clone(),
            None => {
                self.members.member_by_id(&record.user_id).await?.ok_or(AuthError::InvalidEmailToken)?.password_hash
            }
        };
        if password.chars().count() > crate::password::MAX_PASSWORD_CHARS
            || !self.hasher.verify(password, &expected).await?
        {
            return Err(AuthError::WrongVerifyPassword);
        }
        // The conditional update is the single-use guarantee between concurrent verifies.
        let record = self
            .members
            .consume_email_token(&token_hash, TokenPurpose::Verify, now)
            .await?
            .ok_or(AuthError::InvalidEmailToken)?;
        if let Some(password_hash) = &record.password_hash {
            self.members.set_password(&record.user_id, password_hash, now).await?;
        }
        self.members.mark_verified(&record.user_id, now).await?;
        self.members.invalidate_email_tokens(&record.user_id, TokenPurpose::Verify, now).await?;
        Ok(())
    }

    /// Sends a new verification link to an unverified account; answers alike otherwise.
    /// The lookup and the mail happen after the answer, so that its timing says nothing
    /// about the address either.
    pub async fn resend_verification(&self, email: &str, ip: IpAddr) -> Result<(), AuthError> {
        let limits = self.config.limits;
        self.check_ip("reset-ip", ip, limits.reset_ip).await?;
        let email = normalize_email(email)?;
        self.check_rate("reset-account", &email, limits.reset_account).await?;
        self.in_background(email, TokenPurpose::Verify);
        Ok(())
    }

    /// Login. Unknown address and wrong password answer alike (and cost alike: a dummy
    /// hash is verified for unknown addresses). Only with the right password does an
    /// unverified account learn that it is unverified.
    pub async fn login(&self, email: &str, password: &str, ip: IpAddr) -> Result<SessionTokens, AuthError> {
        let limits = self.config.limits;
        self.check_ip("login-ip", ip, limits.login_ip).await?;
        let email = normalize_email(email).map_err(|_| AuthError::InvalidCredentials)?;
        // Per account and address, so that one attacker cannot lock the owner out; plus a
        // high per-account ceiling against guessing spread over many addresses.
        // With a backoff: 5 a minute, 15 in 15 minutes, 40 a day.
        let account_and_address = format!("{email}\n{}", rate_key_for_ip(ip));
        self.check_rate("login-account", &account_and_address, limits.login_account).await?;
        self.check_rate("login-account-slow", &account_and_address, limits.login_account_slow).await?;
        self.check_rate("login-account-daily", &account_and_address, limits.login_account_daily).await?;
        self.check_rate("login-account-total", &email, limits.login_account_total).await?;
        if password.chars().count() > crate::password::MAX_PASSWORD_CHARS {
            // Same answer, but no hashing of megabytes on request.
            return Err(AuthError::InvalidCredentials);
        }
        let member = self.members.member_by_email(&email).await?;
        let phc = member.as_ref().map_or(self.dummy_hash.as_str(), |member| member.password_hash.as_str());
        let password_ok = self.hasher.verify(password, phc).await?;
        let member = match member {
            Some(member) if password_ok => member,
            _ => return Err(AuthError::InvalidCredentials),
        };
        // An unverified account answers like a wrong password: otherwise signing up an
        // address and logging in with the chosen password would tell whether the address
        // already had an account (the new account would say "unverified").
        if member.verified_at.is_none() {
            return Err(AuthError::InvalidCredentials);
        }
        self.start_session(&member.id).await
    }

    async fn start_session(&self, user_id: &str) -> Result<SessionTokens, AuthError> {
        let family_id = new_id();
        let refresh_token = new_secret_token();
        let now = now_secs();
        let expires_at =
            now.saturating_add(secs_i64(self.config.refresh_ttl_secs.min(self.config.session_lifetime_secs)));
        self.members
            .create_family(&RefreshTokenRecord {
                token_hash: hash_token(&refresh_token),
                family_id: family_id.clone(),
                user_id: user_id.to_owned(),
                created_at: now,
                expires_at,
            })
            .await?;
        Ok(SessionTokens {
            access_token: self.access_token(user_id, &family_id, now)?,
            refresh_token: Some(refresh_token),
            expires_in: self.config.access_ttl_secs,
            refresh_expires_in: u64::try_from(expires_at - now).unwrap_or(0),
        })
    }

    /// Signs an access token for a member's session.
    pub fn access_token(&self, user_id: &str, family_id: &str, now: i64) -> Result<String, AuthError> {
        self.keys.sign(&Claims {
            sub: user_id.to_owned(),
            sid: family_id.to_owned(),
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            iat: now,
            exp: now.saturating_add(secs_i64(self.config.access_ttl_secs)),
        })
    }

    /// Rotates a refresh token. A token presented a second time (theft, or a replay)
    /// revokes its whole family, so both the thief and the victim must log in again;
    /// except within `refresh_reuse_grace_secs` of its rotation, when it is taken for a
    /// second tab that refreshed at the same moment and gets a sibling token in the same
    /// session. No token outlives the session's absolute lifetime.
    pub async fn refresh(&self, refresh_token: &str, ip: IpAddr) -> Result<SessionTokens, AuthError> {
        self.check_ip("token-ip", ip, self.config.limits.token_ip).await?;
        let old_hash = hash_token(refresh_token.trim());
        let state = self.members.refresh_token(&old_hash).await?.ok_or(AuthError::InvalidRefreshToken)?;
        let now = now_secs();
        let family_id = state.record.family_id.clone();
        if state.family_revoked_at.is_some() {
            return Err(AuthError::InvalidRefreshToken);
        }
        let session_ends_at = state.family_created_at.saturating_add(secs_i64(self.config.session_lifetime_secs));
        if state.record.expires_at <= now || session_ends_at <= now {
            return Err(AuthError::InvalidRefreshToken);
        }
        let next_token = new_secret_token();
        let next = RefreshTokenRecord {
            token_hash: hash_token(&next_token),
            family_id: family_id.clone(),
            user_id: state.record.user_id.clone(),
            created_at: now,
            expires_at: now.saturating_add(secs_i64(self.config.refresh_ttl_secs)).min(session_ends_at),
        };
        let tokens = |refresh_token: String| -> Result<SessionTokens, AuthError> {
            Ok(SessionTokens {
                access_token: self.access_token(&state.record.user_id, &family_id, now)?,
                refresh_token: Some(refresh_token),
                expires_in: self.config.access_ttl_secs,
                refresh_expires_in: u64::try_from(next.expires_at - now).unwrap_or(0),
            })
        };
        let used_at = match state.used_at {
            None => match self.members.rotate_refresh_token(&old_hash, &next, now).await? {
                RotateOutcome::Rotated => return tokens(next_token),
                // Someone rotated it between our read and our write.
                RotateOutcome::AlreadyUsed => now,
            },
            Some(used_at) => used_at,
        };
        if now.saturating_sub(used_at) < secs_i64(self.config.refresh_reuse_grace_secs) {
            self.members.add_refresh_token(&next).await?;
            tracing::info!(family = %family_id, "concurrent refresh within the grace period: sibling token issued");
            return tokens(next_token);
        }
        self.members.revoke_family(&family_id, now).await?;
        tracing::warn!(family = %family_id, "refresh token reused: session revoked");
        Err(AuthError::RefreshReused)
    }

    /// Logout: revokes the session named by a refresh token and/or an access token's `sid`.
    /// An unknown refresh token is not an error (logging out twice is fine).
    pub async fn logout(&self, refresh_token: Option<&str>, claims: Option<&Claims>) -> Result<(), AuthError> {
        if refresh_token.is_none() && claims.is_none() {
            return Err(AuthError::Unauthorized);
        }
        let now = now_secs();
        if let Some(token) = refresh_token
            && let Some(state) = self.members.refresh_token(&hash_token(token.trim())).await?
        {
            self.members.revoke_family(&state.record.family_id, now).await?;
        }
        if let Some(claims) = claims {
            self.members.revoke_family(&claims.sid, now).await?;
        }
        Ok(())
    }

    /// "Log out everywhere": ends every session of the member, this one included. Access
    /// tokens already issued live out their few minutes; no refresh token works again.
    pub async fn logout_everywhere(&self, claims: &Claims) -> Result<u64, AuthError> {
        let n_revoked = self.members.revoke_member_families(&claims.sub, None, now_secs()).await?;
        tracing::info!(n_revoked, "logged out everywhere");
        Ok(n_revoked)
    }

    /// Asks for a password-reset link; answers alike whether or not the address exists,
    /// in body and in timing (the lookup and the mail happen after the answer).
    pub async fn request_reset(&self, email: &str, ip: IpAddr) -> Result<(), AuthError> {
        let limits = self.config.limits;
        self.check_ip("reset-ip", ip, limits.reset_ip).await?;
        let email = normalize_email(email)?;
        self.check_rate("reset-account", &email, limits.reset_account).await?;
        self.in_background(email, TokenPurpose::Reset);
        Ok(())
    }

    /// Looks the address up and mails a reset link (or, for `Verify`, a new verification
    /// link to an unverified account) on the mail task set, after the request answered.
    fn in_background(&self, email: String, purpose: TokenPurpose) {
        let mailer = Arc::clone(&self.mailer);
        let members = Arc::clone(&self.members);
        let public_url = self.config.public_url.trim_end_matches('/').to_owned();
        let ttl = secs_i64(self.config.email_token_ttl_secs);
        let mut tasks = self.mail_tasks.lock();
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let outcome = async {
                let Some(member) = members.member_by_email(&email).await? else {
                    return Ok::<_, AuthError>(None);
                };
                if purpose == TokenPurpose::Verify && member.verified_at.is_some() {
                    return Ok(None);
                }
                let token = new_secret_token();
                let now = now_secs();
                members
                    .insert_email_token(&EmailTokenRecord {
                        token_hash: hash_token(&token),
                        user_id: member.id.clone(),
                        purpose,
                        password_hash: None,
                        created_at: now,
                        expires_at: now.saturating_add(ttl),
                    })
                    .await?;
                Ok(Some(match purpose {
                    TokenPurpose::Verify => verification_mail(&public_url, &email, &token),
                    TokenPurpose::Reset => reset_mail(&public_url, &email, &token),
                }))
            }
            .await;
            match outcome {
                Ok(Some(mail)) => {
                    if let Err(error) = mailer.send(&mail).await {
                        tracing::warn!(%error, subject = %mail.subject, "mail not sent");
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "could not prepare an account mail"),
            }
        });
    }

    /// Sets a new password with a reset link: single use, unexpired. Ends every session and
    /// marks the address verified (the link proves it).
    pub async fn confirm_reset(&self, token: &str, new_password: &str, ip: IpAddr) -> Result<(), AuthError> {
        self.check_ip("token-ip", ip, self.config.limits.token_ip).await?;
        // Check the password shape first, so a rejected password does not burn the link.
        if new_password.chars().count() > crate::password::MAX_PASSWORD_CHARS {
            return Err(AuthError::invalid("password", "password must have at most 128 characters"));
        }
        check_password_policy(new_password, "", "password")?;
        let token_hash = hash_token(token.trim());
        let now = now_secs();
        let password_hash = self.hasher.hash(new_password).await?;
        let record = self
            .members
            .consume_email_token(&token_hash, TokenPurpose::Reset, now)
            .await?
            .ok_or(AuthError::InvalidEmailToken)?;
        let member = self.members.member_by_id(&record.user_id).await?.ok_or(AuthError::InvalidEmailToken)?;
        self.members.set_password(&member.id, &password_hash, now).await?;
        self.members.mark_verified(&member.id, now).await?;
        self.members.invalidate_email_tokens(&member.id, TokenPurpose::Reset, now).await?;
        self.members.invalidate_email_tokens(&member.id, TokenPurpose::Verify, now).await?;
        self.members.revoke_member_families(&member.id, None, now).await?;
        Ok(())
    }

    /// Changes the password of a signed-in member; ends every other session.
    pub async fn change_password(&self, claims: &Claims, current: &str, new_password: &str) -> Result<(), AuthError> {
        self.check_rate("login-account", &claims.sub, self.config.limits.login_account).await?;
        let member = self.members.member_by_id(&claims.sub).await?.ok_or(AuthError::Unauthorized)?;
        if !self.members.family_active(&claims.sid).await? {
            return Err(AuthError::Unauthorized);
        }
        if current.chars().count() > crate::password::MAX_PASSWORD_CHARS
            || !self.hasher.verify(current, &member.password_hash).await?
        {
            return Err(AuthError::WrongPassword);
        }
        check_password_policy(new_password, &member.email, "new_password")?;
        let password_hash = self.hasher.hash(new_password).await?;
        let now = now_secs();
        self.members.set_password(&member.id, &password_hash, now).await?;
        self.members.invalidate_email_tokens(&member.id, TokenPurpose::Reset, now).await?;
        self.members.invalidate_email_tokens(&member.id, TokenPurpose::Verify, now).await?;
        let n_revoked = self.members.revoke_member_families(&member.id, Some(&claims.sid), now).await?;
        tracing::info!(n_revoked, "password changed; other sessions ended");
        self.send_later(Mail {
            to: member.email,
            subject: "Your Deck password was changed".to_owned(),
            text: "The password of your Deck account was just changed and your other sessions were ended.\n\
                   If this was not you, reset your password now.\n"
                .to_owned(),
            link: None,
        });
        Ok(())
    }

    /// Validates an access token (signature by `kid`, HS256 only, expiry, issuer,
    /// audience). Stateless, for the hot path: a revoked session's access token lives out
    /// its 15 minutes, while its refresh token is refused at once.
    pub async fn authenticate(&self, bearer: &str) -> Result<Claims, AuthError> {
        self.authenticate_sync(bearer)
    }

    /// [`AuthService::authenticate`] without the `async`, for middleware that cannot await.
    pub fn authenticate_sync(&self, bearer: &str) -> Result<Claims, AuthError> {
        // Either a bare token or a whole `Bearer …` header value.
        let token = http::HeaderValue::from_str(bearer)
            .ok()
            .and_then(|value| api::client::bearer_token(&value).map(str::to_owned))
            .unwrap_or_else(|| bearer.trim().to_owned());
        self.keys.validate(&token)
    }

    /// The member's saved deck, or `None` when nothing was saved yet.
    pub async fn load_deck(&self, claims: &Claims) -> Result<Option<Deck>, AuthError> {
        let Some(bytes) = self.members.load_deck(&claims.sub).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| AuthError::Internal(format!("stored deck unreadable: {error}")))
    }

    /// Validates and stores the member's deck.
    pub async fn save_deck(&self, claims: &Claims, deck: &Deck) -> Result<(), AuthError> {
        validate_deck(deck, &self.deck_limits)?;
        let bytes = serde_json::to_vec(deck).map_err(|error| AuthError::Internal(error.to_string()))?;
        if bytes.len() > self.deck_limits.max_bytes {
            return Err(AuthError::BodyTooLarge);
        }
        self.members.save_deck(&claims.sub, &bytes, now_secs()).await?;
        Ok(())
    }

    /// Issues a single-use stream ticket, tied to the member when `claims` is given.
    pub async fn issue_ticket(&self, claims: Option<&Claims>, ip: IpAddr) -> Result<TicketResponse, AuthError> {
        self.check_ip("ticket-ip", ip, self.config.limits.ticket_ip).await?;
        let ticket = new_secret_token();
        let grant = TicketGrant { user_id: claims.map(|claims| claims.sub.clone()), issued_at: now_secs() };
        self.tickets
            .put(&hash_token(&ticket), &grant, Duration::from_secs(self.config.ticket_ttl_secs))
            .await
            .map_err(|error| {
                tracing::error!(%error, "ticket store unavailable");
                AuthError::Unavailable
            })?;
        Ok(TicketResponse { ticket, expires_in: self.config.ticket_ttl_secs })
    }

    /// Redeems a stream ticket: `Some` once, then `None`; `None` when expired or unknown.
    pub async fn redeem_ticket(&self, ticket: &str) -> Option<TicketGrant> {
        match self.tickets.take(&hash_token(ticket.trim())).await {
            Ok(grant) => grant,
            Err(error) => {
                tracing::error!(%error, "ticket store unavailable");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_email;

    #[test]
    fn email_shapes() {
        assert_eq!(normalize_email("  Alice@Example.ORG ").unwrap(), "alice@example.org");
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "alice@localhost",
            "a b@example.org",
            "a@b@c.org",
            "a@.org",
            "a@x..org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
