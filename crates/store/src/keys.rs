//! Key encoding shared by both stores, safe for any input: no term value,
//! however odd (U+0000, separators, very long), lands inside another term's
//! key range, and no key exceeds an engine's limit.
//!
//! - A term is kept verbatim up to [`MAX_TERM_KEY_BYTES`]; a longer one is
//!   replaced by its first bytes, a U+0000 and the SHA-256 of the whole term
//!   in hex. That form is always longer than any verbatim term, so the two
//!   never meet, and candidates are verified by the matcher anyway, so a
//!   hashed term keeps lookups exact.
//! - In fjall keys a term is length-prefixed (`u16` big-endian, then the
//!   bytes), so a key range of one term is exactly the keys that start with
//!   that prefix: a term that contains another term plus a separator is a
//!   different length, hence a different prefix.
//! - Post ids are at most [`model::MAX_ID_BYTES`]: a store refuses a post with
//!   a longer id (see [`id_fits`]) rather than cut or hash it.

use std::borrow::Cow;

use search::Term;
use sha2::{Digest, Sha256};

/// Terms up to this many bytes are kept verbatim in keys.
pub const MAX_TERM_KEY_BYTES: usize = 512;
/// Bytes of an over-long term kept before its hash (for readable keys).
const HASHED_TERM_PREFIX_BYTES: usize = 480;

/// The form of a term in keys and Cassandra partition keys: the term itself,
/// or (when longer than [`MAX_TERM_KEY_BYTES`]) a prefix and its hash.
pub fn term_key(term: &Term) -> Cow<'_, str> {
    bounded(term.as_str())
}

fn bounded(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_TERM_KEY_BYTES {
        return Cow::Borrowed(text);
    }
    let prefix = model::truncate_at_char_boundary(text, HASHED_TERM_PREFIX_BYTES);
    let digest = Sha256::digest(text.as_bytes());
    let mut hashed = String::with_capacity(prefix.len() + 1 + 64);
    hashed.push_str(prefix);
    hashed.push('\0');
    for byte in digest {
        hashed.push_str(&format!("{byte:02x}"));
    }
    // At least 477 + 1 + 64 bytes: longer than any verbatim term.
    Cow::Owned(hashed)
}

/// Whether a post id can be stored: at most [`model::MAX_ID_BYTES`].
pub fn id_fits(id: &str) -> bool {
    id.len() <= model::MAX_ID_BYTES
}

/// `text` as a length-prefixed key part: `u16` big-endian length, then the
/// bytes. Callers pass only bounded text (a [`term_key`] or an id that
/// [`id_fits`]).
pub fn length_prefixed(text: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + text.len());
    push_length_prefixed(&mut key, text);
    key
}

/// Appends `text` to `key` as [`length_prefixed`] writes it.
pub fn push_length_prefixed(key: &mut Vec<u8>, text: &str) {
    let length = u16::try_from(text.len()).unwrap_or(u16::MAX);
    key.extend_from_slice(&length.to_be_bytes());
    key.extend_from_slice(&text.as_bytes()[..usize::from(length)]);
}

/// The first key after every key that starts with `prefix`, or `None` when
/// there is none (a prefix of only 0xFF bytes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_terms_are_hashed_longer_than_any_verbatim_term() {
        let long = Term::from_raw("h".repeat(70_000));
        let key = term_key(&long);
        assert!(key.len() > MAX_TERM_KEY_BYTES && key.len() < 600, "{}", key.len());
        let other = Term::from_raw(format!("{}x", "h".repeat(70_000)));
        assert_ne!(term_key(&other), key);
        let short = Term::from_raw("h:bts");
        assert_eq!(term_key(&short), "h:bts");
    }

    #[test]
    fn a_term_with_a_separator_is_not_inside_another_terms_range() {
        let tag = length_prefixed("h:tag");
        let evil = length_prefixed("h:tag\0\u{1}");
        assert!(!evil.starts_with(&tag));
        let end = prefix_end(&tag).unwrap();
        assert!(!(evil.as_slice() >= tag.as_slice() && evil.as_slice() < end.as_slice()));
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[0, 5]), Some(vec![0, 6]));
    }
}
