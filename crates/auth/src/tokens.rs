//! Access tokens (HS256 JWTs with a `kid`) and the opaque random tokens used for refresh,
//! e-mail links and stream tickets, of which only a SHA-256 hash is ever stored.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{AuthConfig, JwtKey};
use crate::error::AuthError;

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Member id.
    pub sub: String,
    /// Session (refresh-token family) id, so that logout and password changes can name it.
    pub sid: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

/// The signing and validation keys, by `kid`.
pub struct JwtKeys {
    active_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        f.debug_struct("JwtKeys")
            .field("active_kid", &self.active_kid)
            .field("kids", &self.decoding.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Shortest HMAC secret accepted: as long as the SHA-256 output (RFC 7518 §3.2).
const MIN_SECRET_BYTES: usize = 32;

impl JwtKeys {
    /// Builds the key set from the configuration. With no keys configured, a random
    /// ephemeral key is made so the embedded demo works out of the box.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        let mut keys = config.keys.clone();
        let mut active_kid = config.active_kid.clone();
        if keys.is_empty() {
            tracing::warn!("no JWT keys configured: using a random key; sessions end at restart");
            active_kid = "ephemeral".to_owned();
            keys.push(JwtKey { kid: active_kid.clone(), secret: new_secret_token() });
        }
        let mut decoding = HashMap::new();
        let mut encoding = None;
        for key in &keys {
            if key.secret.len() < MIN_SECRET_BYTES {
                return Err(AuthError::Config(format!(
                    "JWT key {:?} is shorter than {MIN_SECRET_BYTES} bytes",
                    key.kid
                )));
            }
            if key.kid == active_kid {
                encoding = Some(EncodingKey::from_secret(key.secret.as_bytes()));
            }
            decoding.insert(key.kid.clone(), DecodingKey::from_secret(key.secret.as_bytes()));
        }
        let encoding =
            encoding.ok_or_else(|| AuthError::Config(format!("active_kid {active_kid:?} names no configured key")))?;
        // Only HS256 is accepted: `alg: none` and every other algorithm fail before any
        // signature check, which rules out algorithm-confusion attacks.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[&config.audience]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(JwtKeys { active_kid, encoding, decoding, validation })
    }

    /// Signs claims with the active key.
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.active_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|error| AuthError::Internal(error.to_string()))
    }

    /// Checks the signature (with the key its `kid` names), the algorithm, expiry, issuer
    /// and audience. Every failure is the same [`AuthError::Unauthorized`].
    pub fn validate(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Unauthorized)?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::Unauthorized);
        }
        let key = header.kid.as_deref().and_then(|kid| self.decoding.get(kid)).ok_or(AuthError::Unauthorized)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::Unauthorized)
    }
}

/// A fresh 256-bit random token, base64url without padding (43 characters).
pub fn new_secret_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh 128-bit random id in hex (member, family ids).
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// The SHA-256 of a token, in hex: what the stores keep instead of the token.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}
