//! Password policy (length and the common-password list, no composition rules) and
//! Argon2id hashing, which always runs on the blocking pool.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::config::Argon2Config;
use crate::error::AuthError;

/// Fewest characters accepted (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters accepted; long enough for passphrases, short enough to bound hashing.
pub const MAX_PASSWORD_CHARS: usize = 128;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt").lines().filter(|line| !line.is_empty() && !line.starts_with('#')).collect()
});

/// Whether a password is on the embedded list of common passwords (case-insensitive).
pub fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

/// Checks a new password: 8 to 128 characters, not a common password, not the e-mail
/// address or its local part. No composition rules.
pub fn check_password_policy(password: &str, email: &str, field: &'static str) -> Result<(), AuthError> {
    let n_chars = password.chars().count();
    if n_chars < MIN_PASSWORD_CHARS {
        return Err(AuthError::invalid(field, format!("password must have at least {MIN_PASSWORD_CHARS} characters")));
    }
    if n_chars > MAX_PASSWORD_CHARS {
        return Err(AuthError::invalid(field, format!("password must have at most {MAX_PASSWORD_CHARS} characters")));
    }
    if is_common_password(password) {
        return Err(AuthError::invalid(field, "this password is too common; choose another"));
    }
    let lowered = password.to_lowercase();
    let local_part = email.split('@').next().unwrap_or(email);
    if lowered == email || (local_part.chars().count() >= MIN_PASSWORD_CHARS && lowered == local_part) {
        return Err(AuthError::invalid(field, "password must not be your e-mail address"));
    }
    Ok(())
}

/// Argon2id hashing with fixed parameters, off the async runtime's threads,
/// at most [`Argon2Config::concurrency`] at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// A hasher with the given cost parameters.
    pub fn new(config: Argon2Config) -> Result<Self, AuthError> {
        let params = Params::new(config.memory_kib, config.iterations, config.parallelism, None)
            .map_err(|error| AuthError::Config(format!("argon2 parameters: {error}")))?;
        Ok(PasswordHasher {
            argon2: Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params)),
            permits: Arc::new(Semaphore::new(config.concurrency())),
        })
    }

    /// Runs `work` on the blocking pool once a hashing permit is free.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
        let _permit = self.permits.acquire().await.map_err(|error| AuthError::Internal(error.to_string()))?;
        tokio::task::spawn_blocking(work).await.map_err(|error| AuthError::Internal(error.to_string()))
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$m=…`).
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let argon2 = Arc::clone(&self.argon2);
        let password = password.to_owned();
        self.run(move || {
            let mut salt_bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut salt_bytes);
            let salt = SaltString::encode_b64(&salt_bytes).map_err(|error| AuthError::Internal(error.to_string()))?;
            argon2::password_hash::PasswordHasher::hash_password(argon2.as_ref(), password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|error| AuthError::Internal(error.to_string()))
        })
        .await?
    }

    /// Checks a password against a stored PHC string, with the parameters recorded in it.
    /// A malformed stored hash counts as a mismatch.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, AuthError> {
        let argon2 = Arc::clone(&self.argon2);
        let password = password.to_owned();
        let phc = phc.to_owned();
        self.run(move || match PasswordHash::new(&phc) {
            Ok(parsed) => argon2.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let email = "someone@example.org";
        let cases: &[(&str, bool)] = &[
            ("short", false),
            ("1234567", false),
            ("password", false),
            ("PassWord", false),
            ("qwertyuiop", false),
            ("someone@example.org", false),
            ("correct horse battery staple", true),
            ("ümlaut-파스워드", true),
            ("aaaaaaaZ", true),
        ];
        for (password, ok) in cases {
            assert_eq!(check_password_policy(password, email, "password").is_ok(), *ok, "{password}");
        }
        assert!(check_password_policy(&"x".repeat(64), email, "password").is_ok());
        assert!(check_password_policy(&"x".repeat(128), email, "password").is_ok());
        assert!(check_password_policy(&"x".repeat(129), email, "password").is_err());
    }

    #[test]
    fn list_is_loaded() {
        assert!(COMMON_PASSWORDS.len() >= 4_000);
        assert!(is_common_password("iloveyou"));
        assert!(!is_common_password("this is not common at all"));
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = PasswordHasher::new(Argon2Config::default()).unwrap();
        let phc = hasher.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("correct horse", &phc).await.unwrap());
        assert!(!hasher.verify("wrong horse", &phc).await.unwrap());
        assert!(!hasher.verify("correct horse", "not a hash").await.unwrap());
    }
}
