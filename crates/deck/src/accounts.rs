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
    /// HS256 signing secret (at least 32 bytes). Without it, a secret is made
    /// once and kept in `<data-dir>/jwt-secret`, so sessions survive restarts.
    #[arg(long, env = "DECK_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Key id of the signing secret (rotate by changing both).
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
    /// Most Argon2 password hashes computed at once; 0 = one fewer than the
    /// cores (at least one), which keeps a core for everything else.
    #[arg(long, env = "DECK_HASHES_AT_ONCE", default_value_t = 0)]
    pub hashes_at_once: usize,
}

/// The signing secret: configured, or made once and kept in the data dir.
fn signing_secret(args: &AccountArgs, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(secret) = &args.jwt_secret {
        anyhow::ensure!(secret.len() >= 32, "DECK_JWT_SECRET must be at least 32 bytes");
        return Ok(secret.clone());
    }
    let path = data_dir.join("jwt-secret");
    if let Ok(secret) = std::fs::read_to_string(&path)
        && secret.trim().len() >= 32
    {
        return Ok(secret.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let bytes: [u8; 48] = rand::random();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    std::fs::write(&path, &secret).with_context(|| format!("write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restrict {}", path.display()))?;
    }
    Ok(secret)
}

pub async fn service(
    args: &AccountArgs,
    engines: &EngineArgs,
    data_dir: &Path,
    port: u16,
) -> anyhow::Result<Arc<auth::AuthService>> {
    let mut config = auth::AuthConfig {
        keys: vec![auth::JwtKey { kid: args.jwt_kid.clone(), secret: signing_secret(args, data_dir)? }],
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
