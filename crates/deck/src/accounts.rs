//! The accounts role's configuration: signing keys, mail, and the stores
//! chosen by the engine variables.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Args;

use crate::backends::EngineArgs;

/// Options of the accounts role.
#[derive(Args, Clone, Debug)]
pub struct AccountArgs {
    /// File holding the HS256 signing keys (0600): one `kid=secret` per line (or a lone
    /// secret, named by `--jwt-kid`). Several keys let tokens signed by an old key live out
    /// their lifetime after a rotation. Secrets may also come from the environment
    /// (`DECK_JWT_SECRET`, or `DECK_JWT_KEYS=kid1=secret1,kid2=secret2`), never from the
    /// command line, where every local user could read them. Without any, a secret is made
    /// once and kept in `<data-dir>/jwt-secret` (0600), so sessions survive restarts.
    #[arg(long, env = "DECK_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<std::path::PathBuf>,
    /// Key id of the key that signs new tokens (rotate: add a key, then switch this).
    #[arg(long, env = "DECK_JWT_KID", default_value = "k1")]
    pub jwt_kid: String,
    /// Where links in mails point (default: this server).
    #[arg(long, env = "DECK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP relay host; without it mail goes to `<data-dir>/outbox/`.
    /// Credentials come from DECK_SMTP_USER and DECK_SMTP_PASSWORD.
    #[arg(long, env = "DECK_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "DECK_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none`.
    #[arg(long, env = "DECK_SMTP_TLS", default_value = "starttls")]
    pub smtp_tls: String,
    /// A proxy (e.g. `deck gateway`) whose `X-Forwarded-For` names the client. Repeatable.
    #[arg(long = "trusted-proxy", env = "DECK_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Stream tickets one client address may take per minute.
    #[arg(long, env = "DECK_TICKETS_PER_MINUTE", default_value_t = 60)]
    pub tickets_per_minute: u32,
    /// `GET /api/timeline` requests per second one client (user or address) may make
    /// after spending its burst; beyond it, 429 with `Retry-After`. 0 = unlimited.
    #[arg(long, env = "DECK_TIMELINE_PER_SECOND", default_value_t = 20.0)]
    pub timeline_per_second: f64,
    /// Burst of `GET /api/timeline` requests one client may make at once.
    #[arg(long, env = "DECK_TIMELINE_BURST", default_value_t = 200.0)]
    pub timeline_burst: f64,
    /// Store work units (postings and posts examined) one `GET /api/timeline` read may
    /// spend for its token; each further share costs another token, so a client that
    /// sends the costliest queries gets fewer reads. A WebSocket `since` catch-up pays
    /// the same way in the message bucket. 0 = every read costs one token.
    #[arg(long, env = "DECK_TIMELINE_WORK_PER_TOKEN", default_value_t = 1000)]
    pub timeline_work_per_token: usize,
    /// WebSocket messages per second one client may send after its burst; beyond it, an
    /// error frame `rate_limited` and the message is dropped. 0 = unlimited.
    #[arg(long, env = "DECK_STREAM_MESSAGES_PER_SECOND", default_value_t = 20.0)]
    pub stream_messages_per_second: f64,
    /// Burst of WebSocket messages one client may send at once.
    #[arg(long, env = "DECK_STREAM_MESSAGE_BURST", default_value_t = 200.0)]
    pub stream_message_burst: f64,
    /// Extra origins the page may connect to (the CSP's `connect-src`). Repeatable.
    #[arg(long = "connect-origin", env = "DECK_CONNECT_ORIGINS", value_delimiter = ',')]
    pub connect_origins: Vec<String>,
    /// Send `Strict-Transport-Security` on every answer (Deck is served over HTTPS). Without
    /// it, HSTS is sent only when a trusted proxy says `X-Forwarded-Proto: https`.
    #[arg(long, env = "DECK_HSTS")]
    pub hsts: bool,
    /// Most Argon2 password hashes computed at once; 0 = one fewer than the
    /// cores (at least one), which keeps a core for everything else.
    #[arg(long, env = "DECK_HASHES_AT_ONCE", default_value_t = 0)]
    pub hashes_at_once: usize,
}

/// Reads `kid=secret` entries (lines or commas); a lone secret gets `default_kid`.
fn parse_keys(text: &str, default_kid: &str, origin: &str) -> anyhow::Result<Vec<auth::JwtKey>> {
    let mut keys = Vec::new();
    for entry in text.split(['\n', ',']).map(str::trim).filter(|entry| !entry.is_empty() && !entry.starts_with('#')) {
        let (kid, secret) = match entry.split_once('=') {
            // A base64 secret may end in '='; a kid never is empty.
            Some((kid, secret)) if !kid.is_empty() && !secret.is_empty() => (kid.trim(), secret.trim()),
            _ => (default_kid, entry),
        };
        anyhow::ensure!(secret.len() >= 32, "{origin}: the secret of key `{kid}` must be at least 32 bytes");
        anyhow::ensure!(!keys.iter().any(|key: &auth::JwtKey| key.kid == kid), "{origin}: key `{kid}` given twice");
        keys.push(auth::JwtKey { kid: kid.to_owned(), secret: secret.to_owned() });
    }
    Ok(keys)
}

/// The signing keys: from the keys file, the environment, or made once and kept in the
/// data dir (created 0600 with the secret in one step, never written then narrowed).
fn signing_keys(args: &AccountArgs, data_dir: &Path) -> anyhow::Result<Vec<auth::JwtKey>> {
    let mut keys = Vec::new();
    if let Some(path) = &args.jwt_secret_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        keys.extend(parse_keys(&text, &args.jwt_kid, &path.display().to_string())?);
    }
    if let Ok(text) = std::env::var("DECK_JWT_KEYS") {
        keys.extend(parse_keys(&text, &args.jwt_kid, "DECK_JWT_KEYS")?);
    }
    if let Ok(secret) = std::env::var("DECK_JWT_SECRET") {
        anyhow::ensure!(secret.trim().len() >= 32, "DECK_JWT_SECRET must be at least 32 bytes");
        keys.push(auth::JwtKey { kid: args.jwt_kid.clone(), secret: secret.trim().to_owned() });
    }
    if !keys.is_empty() {
        anyhow::ensure!(
            keys.iter().any(|key| key.kid == args.jwt_kid),
            "no signing key has the active kid `{}` (--jwt-kid)",
            args.jwt_kid
        );
        return Ok(keys);
    }
    let path = data_dir.join("jwt-secret");
    if let Ok(secret) = std::fs::read_to_string(&path)
        && secret.trim().len() >= 32
    {
        return Ok(vec![auth::JwtKey { kid: args.jwt_kid.clone(), secret: secret.trim().to_owned() }]);
    }
    auth::create_private_dir(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let bytes: [u8; 48] = rand::random();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    auth::write_private_file(&path, secret.as_bytes()).with_context(|| format!("write {}", path.display()))?;
    Ok(vec![auth::JwtKey { kid: args.jwt_kid.clone(), secret }])
}

pub async fn service(
    args: &AccountArgs,
    engines: &EngineArgs,
    data_dir: &Path,
    port: u16,
) -> anyhow::Result<Arc<auth::AuthService>> {
    let mut config = auth::AuthConfig {
        keys: signing_keys(args, data_dir)?,
        active_kid: args.jwt_kid.clone(),
        public_url: args.public_url.clone().unwrap_or_else(|| format!("http://127.0.0.1:{port}")),
        trusted_proxies: args.trusted_proxies.clone(),
        ..auth::AuthConfig::default()
    };
    config.limits.ticket_ip = auth::RateLimit::per_minute(args.tickets_per_minute);
    config.argon2.max_concurrent = args.hashes_at_once;
    let smtp_tls = match args.smtp_tls.as_str() {
        "none" => auth::SmtpTls::None,
        "tls" => auth::SmtpTls::Tls,
        "starttls" => auth::SmtpTls::Starttls,
        other => anyhow::bail!("DECK_SMTP_TLS `{other}`: use starttls, tls or none"),
    };
    let backends = auth::AuthBackends {
        data_dir: data_dir.to_owned(),
        mysql_url: engines.mysql.clone().filter(|url| !url.is_empty()),
        redis_url: engines.redis.clone().filter(|url| !url.is_empty()),
        smtp: args.smtp_host.clone().map(|host| auth::SmtpConfig { host, port: args.smtp_port, tls: smtp_tls }),
    };
    let service = auth::AuthService::connect(config, &backends).await.context("start the accounts role")?;
    Ok(Arc::new(service))
}

/// The accounts role as the gateway needs it: the service and its edge options.
pub struct AccountsRole<'a> {
    /// The accounts service (routes, tickets, token checks).
    pub service: Arc<auth::AuthService>,
    /// Its options, for the per-client limits and browser headers of the edge.
    pub args: &'a AccountArgs,
}

/// A token bucket from the command line: a rate of 0 means no limit.
fn bucket(per_second: f64, burst: f64) -> gateway::BucketConfig {
    if per_second <= 0.0 || burst <= 0.0 {
        gateway::BucketConfig::UNLIMITED
    } else {
        gateway::BucketConfig { per_second, burst: burst.max(1.0) }
    }
}

/// The per-client limits and browser headers of the edge, from the accounts options.
pub fn apply_edge_limits(args: &AccountArgs, config: &mut gateway::GatewayConfig) {
    config.trusted_proxies = args.trusted_proxies.clone();
    config.timeline_rate = bucket(args.timeline_per_second, args.timeline_burst);
    config.timeline_work_per_token = args.timeline_work_per_token;
    config.stream_message_rate = bucket(args.stream_messages_per_second, args.stream_message_burst);
    config.connect_origins = args.connect_origins.clone();
    config.hsts = args.hsts || args.public_url.as_deref().is_some_and(|url| url.starts_with("https://"));
}

/// Lets the stream endpoint redeem the tickets the accounts role issues.
pub struct AuthTickets(pub Arc<auth::AuthService>);

#[async_trait::async_trait]
impl gateway::Tickets for AuthTickets {
    async fn redeem(&self, ticket: &str) -> Option<gateway::TicketGrant> {
        self.0.redeem_ticket(ticket).await.map(|grant| gateway::TicketGrant { user_id: grant.user_id })
    }
}

/// Lets the gateway check access tokens with the accounts role's keys.
pub struct AuthTokens(pub Arc<auth::AuthService>);

impl gateway::Authenticator for AuthTokens {
    fn user_of(&self, bearer: &str) -> Option<String> {
        self.0.authenticate_sync(bearer).ok().map(|claims| claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_keys;

    #[test]
    fn keys_by_kid_or_lone_secret() {
        let long = "s".repeat(32);
        let keys = parse_keys(&format!("# rotation\nold={long}\nnew={long}==\n"), "k1", "test").unwrap();
        assert_eq!(keys.iter().map(|key| key.kid.as_str()).collect::<Vec<_>>(), ["old", "new"]);
        assert_eq!(keys[1].secret, format!("{long}=="));
        let keys = parse_keys(&long, "k1", "test").unwrap();
        assert_eq!(keys[0].kid, "k1");
        assert!(parse_keys("k=short", "k1", "test").is_err());
        assert!(parse_keys(&format!("a={long},a={long}"), "k1", "test").is_err());
    }
}
