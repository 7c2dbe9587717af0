//! Errors of the accounts role and how each maps to an HTTP status and a JSON body.
//!
//! Clients see a short fixed message and a code; internal detail only reaches the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failure of a store engine (SQL or Redis).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQL engine failed.
    #[error("sql: {0}")]
    Sql(#[from] sqlx::Error),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored value could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// A failure to hand a message to the mail system.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An address or header could not be built.
    #[error("message: {0}")]
    Message(String),
    /// Writing to the outbox folder failed.
    #[error("outbox: {0}")]
    Io(#[from] std::io::Error),
    /// The SMTP relay refused or could not be reached.
    #[error("smtp: {0}")]
    Smtp(String),
}

/// Everything an accounts operation can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A request field is missing or malformed.
    #[error("{message}")]
    InvalidInput {
        /// The JSON field at fault.
        field: &'static str,
        /// What is wrong with it, for people.
        message: String,
    },
    /// Unknown e-mail or wrong password (deliberately indistinguishable).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The password was right but the e-mail is not verified yet.
    #[error("email not verified")]
    Unverified,
    /// The current password given to change it was wrong.
    #[error("current password is wrong")]
    WrongPassword,
    /// The password given with a verification link is not the one chosen at sign-up.
    #[error("this is not the password chosen when signing up")]
    WrongVerifyPassword,
    /// A JSON endpoint got a body whose `Content-Type` is not JSON.
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// No access token, or one that is forged, expired or meant for someone else.
    #[error("missing or invalid access token")]
    Unauthorized,
    /// A verification or reset token that is unknown, used or expired.
    #[error("invalid or expired token")]
    InvalidEmailToken,
    /// A refresh token that is unknown, expired or revoked.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A refresh token presented a second time: its whole family is now revoked.
    #[error("refresh token already used; session revoked")]
    RefreshReused,
    /// Too many attempts in the window.
    #[error("too many requests")]
    RateLimited {
        /// Seconds until the window ends.
        retry_after_secs: u64,
    },
    /// The request body is larger than allowed.
    #[error("request body too large")]
    BodyTooLarge,
    /// A dependency is down (e.g. the ticket store).
    #[error("service unavailable")]
    Unavailable,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mailer failed.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The configuration cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// A bug or a failed background task.
    #[error("internal: {0}")]
    Internal(String),
}

impl AuthError {
    /// Shorthand for a bad field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AuthError::InvalidInput { field, message: message.into() }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::InvalidInput { .. } | AuthError::InvalidEmailToken => StatusCode::BAD_REQUEST,
            AuthError::InvalidCredentials
            | AuthError::Unauthorized
            | AuthError::InvalidRefreshToken
            | AuthError::RefreshReused => StatusCode::UNAUTHORIZED,
            AuthError::Unverified | AuthError::WrongPassword | AuthError::WrongVerifyPassword => StatusCode::FORBIDDEN,
            AuthError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AuthError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Store(_) | AuthError::Mail(_) | AuthError::Config(_) | AuthError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable machine-readable code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidInput { .. } => "invalid_input",
            AuthError::InvalidCredentials => "invalid_credentials",
            AuthError::Unverified => "unverified",
            AuthError::WrongPassword | AuthError::WrongVerifyPassword => "wrong_password",
            AuthError::UnsupportedMediaType => "unsupported_media_type",
            AuthError::Unauthorized => "unauthorized",
            AuthError::InvalidEmailToken => "invalid_token",
            AuthError::InvalidRefreshToken => "invalid_refresh_token",
            AuthError::RefreshReused => "refresh_reused",
            AuthError::RateLimited { .. } => "rate_limited",
            AuthError::BodyTooLarge => "too_large",
            AuthError::Unavailable => "unavailable",
            AuthError::Store(_) | AuthError::Mail(_) | AuthError::Config(_) | AuthError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let body = match &self {
            AuthError::InvalidInput { field, message } => {
                json!({ "error": message, "code": code, "field": field })
            }
            AuthError::InvalidEmailToken => {
                json!({ "error": self.to_string(), "code": code, "field": "token" })
            }
            AuthError::WrongPassword => {
                json!({ "error": self.to_string(), "code": code, "field": "current_password" })
            }
            AuthError::WrongVerifyPassword => {
                json!({ "error": self.to_string(), "code": code, "field": "password" })
            }
            AuthError::Store(_) | AuthError::Mail(_) | AuthError::Config(_) | AuthError::Internal(_) => {
                // Internal detail goes to the log, never to the client.
                tracing::error!(error = %self, "auth request failed");
                json!({ "error": "internal error", "code": code })
            }
            _ => json!({ "error": self.to_string(), "code": code }),
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            AuthError::RateLimited { retry_after_secs } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
            }
            AuthError::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
