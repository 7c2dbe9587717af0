//! Hashtag scanner: twitter-text's `validHashtag` rule, hand-written.

use crate::Span;
use crate::chars::{is_hashtag_alpha, is_hashtag_alphanumeric};

/// Finds hashtags, without checking for overlap with URLs, as byte spans
/// covering the hash sign and the tag.
pub(crate) fn scan(text: &str, spans: &mut Vec<Span>) {
    // End of the last regex match, so that a character consumed by it cannot
    // serve as the boundary before the next hash sign (as in twitter-text).
    let mut consumed_until = 0;
    let bytes = text.as_bytes();
    let mut search_from = 0;
    while let Some(hash_start) = next_hash_sign(bytes, search_from) {
        let hash_len = if bytes[hash_start] == b'#' { 1 } else { 3 };
        search_from = hash_start + hash_len;
        if !boundary_allows(text, hash_start, consumed_until) {
            continue;
        }
        let tag_start = hash_start + hash_len;
        let mut tag_end = tag_start;
        let mut has_alpha = false;
        for c in text[tag_start..].chars() {
            if tag_end == tag_start && matches!(c, '\u{fe0f}' | '\u{20e3}') {
                // A keycap emoji such as #️⃣, not a hashtag.
                break;
            }
            if !is_hashtag_alphanumeric(c) {
                break;
            }
            has_alpha |= is_hashtag_alpha(c);
            tag_end += c.len_utf8();
        }
        if !has_alpha {
            continue;
        }
        consumed_until = tag_end;
        search_from = tag_end;
        let after = &text[tag_end..];
        if after.starts_with(['#', '\u{ff03}']) || after.starts_with("://") {
            continue;
        }
        spans.push(Span { start: hash_start, end: tag_end, value_start: tag_start, value_end: tag_end });
    }
}

/// Byte position of the next `#` or `＃` (U+FF03, bytes EF BC 83) at or after `from`.
fn next_hash_sign(bytes: &[u8], from: usize) -> Option<usize> {
    let mut position = from;
    while let Some(offset) = memchr::memchr2(b'#', 0xef, &bytes[position..]) {
        let found = position + offset;
        if bytes[found] == b'#' || bytes.get(found + 1..found + 3) == Some(&[0xbc, 0x83]) {
            return Some(found);
        }
        position = found + 1;
    }
    None
}

/// twitter-text's `hashtagBoundary`: the start of the text, a variation
/// selector, or any character that is neither part of a word nor `&`.
fn boundary_allows(text: &str, hash_start: usize, consumed_until: usize) -> bool {
    let Some(before) = text[..hash_start].chars().next_back() else {
        return true;
    };
    if hash_start - before.len_utf8() < consumed_until {
        return false;
    }
    matches!(before, '\u{fe0e}' | '\u{fe0f}') || !(is_hashtag_alphanumeric(before) || before == '&')
}
