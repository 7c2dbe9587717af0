//! The accounts' wire types: the bodies of `/api/auth/*` and `/api/me/deck`
//! (docs/api.md, "Accounts"). The `auth` crate reads and answers them; the
//! web client imports them from `web/src/bindings`.
//!
//! Every request body refuses unknown fields (a typo is a 400 naming the
//! field, never a silently ignored setting).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// `POST /api/auth/signup`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
}

/// `POST /api/auth/verify`: following the mailed link proves the mailbox;
/// the password chosen at sign-up must come with it, or nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct VerifyRequest {
    pub token: String,
    #[serde(default)]
    #[ts(optional)]
    pub password: Option<String>,
}

/// `POST /api/auth/resend` and `POST /api/auth/reset/request`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct EmailRequest {
    pub email: String,
}

/// `POST /api/auth/login`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Send the refresh token as an `HttpOnly` cookie rather than in the
    /// body (the web client, so that no script can read it).
    #[serde(default)]
    #[ts(optional, as = "Option<bool>")]
    pub refresh_cookie: bool,
}

/// `POST /api/auth/refresh` and `POST /api/auth/logout`: without
/// `refresh_token`, the token is the refresh cookie's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct RefreshRequest {
    #[serde(default)]
    #[ts(optional)]
    pub refresh_token: Option<String>,
}

/// `POST /api/auth/reset/confirm`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct ResetConfirmRequest {
    pub token: String,
    pub password: String,
}

/// `POST /api/auth/password`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct PasswordChangeRequest {
    pub current_password: String,
    pub new_password: String,
}

/// What login and refresh answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct SessionTokens {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque token for `/api/auth/refresh`; single use. Left out of the
    /// body when it travels in the `HttpOnly` cookie instead (the web client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub refresh_token: Option<String>,
    /// Seconds the access token lives.
    #[ts(type = "number")]
    pub expires_in: u64,
    /// Seconds the refresh token lives (at most until the session's absolute end).
    #[ts(type = "number")]
    pub refresh_expires_in: u64,
}

/// What the account actions without a body of their own answer
/// (`verification_sent`, `verified`, `logged_out`, `password_changed`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct StatusResponse {
    pub status: String,
}

/// `GET|PUT /api/me/deck`: a member's open deck (its columns in display
/// order and its deck-wide mutes) and, from clients that keep several, the
/// library of named decks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct Deck {
    /// Columns, left to right.
    pub columns: Vec<DeckColumn>,
    /// Deck-wide mutes of the open deck: words, `/regex/`, `@account`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(optional, as = "Option<Vec<String>>")]
    pub mutes: Vec<String>,
    /// Every named deck, the open one included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub library: Option<DeckLibrary>,
}

/// The named decks of a member, and which one is open.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct DeckLibrary {
    /// The id of the open deck (one of `decks`).
    pub current: String,
    pub decks: Vec<NamedDeck>,
}

/// One named deck of the library.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct NamedDeck {
    /// Client-chosen id, unique within the library.
    pub id: String,
    pub name: String,
    pub columns: Vec<DeckColumn>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(optional, as = "Option<Vec<String>>")]
    pub mutes: Vec<String>,
}

/// One column as the web client keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct DeckColumn {
    /// Client-chosen id, unique within the deck.
    pub id: String,
    /// Title shown in the header.
    pub title: String,
    /// Column query (the search language of `crates/search`).
    pub query: String,
    /// Width in CSS pixels.
    pub width: f64,
    /// The client's own settings of the column (kind, trends window,
    /// mutes, …), kept as given within the size limit: the server reads
    /// none of them.
    #[serde(default)]
    #[ts(type = "Record<string, unknown>")]
    pub filters: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_may_be_left_out_and_unknown_ones_are_refused() {
        let login: LoginRequest = serde_json::from_str(r#"{"email":"a@example.com","password":"pw"}"#)
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(!login.refresh_cookie);
        let verify: VerifyRequest = serde_json::from_str(r#"{"token":"t"}"#).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(verify.password, None);
        assert!(serde_json::from_str::<SignupRequest>(r#"{"email":"a","password":"b","admin":true}"#).is_err());
        let tokens = SessionTokens {
            access_token: "a".into(),
            refresh_token: None,
            expires_in: 900,
            refresh_expires_in: 86_400,
        };
        let json = serde_json::to_value(&tokens).unwrap_or_else(|error| panic!("{error}"));
        assert!(json.get("refresh_token").is_none(), "{json}");
    }
}
