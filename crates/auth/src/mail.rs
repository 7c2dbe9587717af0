//! Outgoing mail: the embedded outbox folder (one RFC 5322 `.eml` file per message) and
//! SMTP through lettre.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpTls};
use crate::error::MailError;

/// One plain-text message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// The link the message carries, if any. It holds a secret token, so it is never logged.
    pub link: Option<String>,
}

/// Hands messages to the mail system.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends (or files) one message.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

fn build_message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox =
        mail.to.parse().map_err(|error: lettre::address::AddressError| MailError::Message(error.to_string()))?;
    // lettre picks the transfer encoding (quoted-printable once a line passes 76
    // characters, as links do).
    Message::builder()
        .message_id(None)
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
        .map_err(|error| MailError::Message(error.to_string()))
}

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse().map_err(|error: lettre::address::AddressError| MailError::Message(format!("sender {from:?}: {error}")))
}

/// Writes each message to `<data-dir>/outbox/` as an `.eml` file, so the demo works without
/// a mail server. The folder is 0700 and each file 0600 from the moment it exists: the
/// messages carry verification and reset links. The log names the file, never the link.
#[derive(Clone, Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    /// Files messages in `dir` (created if missing), sent from `from`.
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Result<Self, MailError> {
        let dir = dir.into();
        crate::files::create_private_dir(&dir)?;
        Ok(OutboxMailer { dir, from: parse_from(from)? })
    }

    /// The folder messages go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        let bytes = message.formatted();
        // Time first so a directory listing sorts by arrival; the random part keeps
        // names unique across processes.
        let name =
            format!("{}-{}.eml", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"), &crate::tokens::new_id()[..12]);
        let partial = self.dir.join(format!(".{name}.partial"));
        let path = self.dir.join(&name);
        // Write then rename, so a reader never sees half a message; the file is created
        // 0600, never widened and narrowed afterwards.
        let write_partial = partial.clone();
        tokio::task::spawn_blocking(move || crate::files::write_private_file(&write_partial, &bytes))
            .await
            .map_err(|error| MailError::Message(format!("outbox writer: {error}")))??;
        tokio::fs::rename(&partial, &path).await?;
        tracing::info!(subject = %mail.subject, file = %path.display(), "mail filed in outbox");
        Ok(())
    }
}

/// Sends through an SMTP relay.
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for `config`, with credentials from `DECK_SMTP_USER` and
    /// `DECK_SMTP_PASSWORD` when both are set.
    pub fn new(config: &SmtpConfig, from: &str) -> Result<Self, MailError> {
        let credentials = match (std::env::var("DECK_SMTP_USER"), std::env::var("DECK_SMTP_PASSWORD")) {
            (Ok(user), Ok(password)) => Some(Credentials::new(user, password)),
            _ => None,
        };
        Self::with_credentials(config, from, credentials)
    }

    /// A mailer with explicit credentials (or none).
    pub fn with_credentials(
        config: &SmtpConfig,
        from: &str,
        credentials: Option<Credentials>,
    ) -> Result<Self, MailError> {
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(|error| MailError::Smtp(error.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|error| MailError::Smtp(error.to_string()))?,
        };
        let mut builder = builder.port(config.port);
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        Ok(SmtpMailer { transport: builder.build(), from: parse_from(from)? })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = build_message(&self.from, mail)?;
        self.transport.send(message).await.map_err(|error| MailError::Smtp(error.to_string()))?;
        tracing::info!(to = %mail.to, subject = %mail.subject, "mail sent over SMTP");
        Ok(())
    }
}
