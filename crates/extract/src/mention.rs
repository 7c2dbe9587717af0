//! Mention, list and reply scanner: twitter-text's `validMentionOrList` and `validReply`.

use crate::chars::{is_directional_marker, is_latin_accent, is_space};

/// A mention (`@name`) or list (`@name/slug`), as byte positions in the text.
pub(crate) struct RawMention {
    /// Position of the at sign.
    pub start: usize,
    /// Position of the first character of the screen name.
    pub name_start: usize,
    /// End of the screen name (and start of the `/slug`, if any).
    pub name_end: usize,
    /// End of the whole mention, slug included.
    pub end: usize,
}

const MAX_SCREEN_NAME: usize = 20;
const MAX_LIST_SLUG_TAIL: usize = 24;

/// Finds every mention and list in order of appearance.
pub(crate) fn scan(text: &str, mentions: &mut Vec<RawMention>) {
    let bytes = text.as_bytes();
    let mut consumed_until = 0;
    let mut search_from = 0;
    while let Some(at_start) = next_at_sign(bytes, search_from) {
        let at_len = if bytes[at_start] == b'@' { 1 } else { 3 };
        search_from = at_start + at_len;
        if !preceding_allows(bytes, at_start, consumed_until) {
            continue;
        }
        let name_start = at_start + at_len;
        let name_end = name_start + ascii_run(&bytes[name_start..], MAX_SCREEN_NAME, is_name_byte);
        if name_end == name_start {
            continue;
        }
        let mut end = name_end;
        if bytes.get(name_end) == Some(&b'/') && bytes.get(name_end + 1).is_some_and(u8::is_ascii_alphabetic) {
            let slug_tail = &bytes[name_end + 2..];
            end = name_end + 2 + ascii_run(slug_tail, MAX_LIST_SLUG_TAIL, |b| is_name_byte(b) || b == b'-');
        }
        consumed_until = end;
        search_from = end;
        if invalid_mention_end(&text[end..]) {
            continue;
        }
        mentions.push(RawMention { start: at_start, name_start, name_end, end });
    }
}

/// The screen name of a reply: a mention that opens the text, after nothing
/// but spaces and directional markers.
pub(crate) fn reply(text: &str) -> Option<&str> {
    let trimmed = text.trim_start_matches(|c| is_space(c) || is_directional_marker(c));
    let after_at = trimmed.strip_prefix('@').or_else(|| trimmed.strip_prefix('\u{ff20}'))?;
    let name_len = ascii_run(after_at.as_bytes(), MAX_SCREEN_NAME, is_name_byte);
    if name_len == 0 || invalid_mention_end(&after_at[name_len..]) {
        return None;
    }
    Some(&after_at[..name_len])
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Length of the leading run of bytes accepted by `accept`, at most `max`.
fn ascii_run(bytes: &[u8], max: usize, accept: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take(max).take_while(|&&byte| accept(byte)).count()
}

/// twitter-text's `endMentionMatch`: a mention followed by another at sign, an
/// accented Latin letter or `://` is part of something else (an e-mail
/// address, a longer name, a URL).
fn invalid_mention_end(after: &str) -> bool {
    match after.chars().next() {
        Some('@' | '\u{ff20}') => true,
        Some(c) if is_latin_accent(c) => true,
        _ => after.starts_with("://"),
    }
}

/// Byte position of the next `@` or `＠` (U+FF20, bytes EF BC A0) at or after `from`.
fn next_at_sign(bytes: &[u8], from: usize) -> Option<usize> {
    let mut position = from;
    while let Some(offset) = memchr::memchr2(b'@', 0xef, &bytes[position..]) {
        let found = position + offset;
        if bytes[found] == b'@' || bytes.get(found + 1..found + 3) == Some(&[0xbc, 0xa0]) {
            return Some(found);
        }
        position = found + 1;
    }
    None
}

/// twitter-text's `validMentionPrecedingChars`: the start of the text, a
/// character that cannot end a word, name or e-mail user, or `RT`/`RT:`
/// (in any case) as a retweet marker.
fn preceding_allows(bytes: &[u8], at_start: usize, consumed_until: usize) -> bool {
    if at_start == 0 {
        return true;
    }
    let before = &bytes[..at_start];
    // The byte before is either ASCII or the last byte of a non-ASCII
    // character; only ASCII ones (and the `＠` sign) are excluded.
    let last = before[before.len() - 1];
    let excluded =
        last.is_ascii_alphanumeric() || b"_!#$%&*@".contains(&last) || before.ends_with("\u{ff20}".as_bytes());
    if !excluded {
        let last_len = if last.is_ascii() {
            1
        } else {
            // Step back over continuation bytes to the start of the character.
            before.iter().rev().take_while(|&&b| b & 0xc0 == 0x80).count() + 1
        };
        return at_start - last_len >= consumed_until;
    }
    // The retweet marker: `rt` right before the at sign, itself at the start
    // of the text or after a character that cannot be part of a word.
    let Some(rt_start) = at_start.checked_sub(2) else {
        return false;
    };
    if !before[rt_start..].eq_ignore_ascii_case(b"rt") {
        return false;
    }
    match rt_start.checked_sub(1) {
        None => consumed_until == 0,
        Some(previous) => {
            let byte = bytes[previous];
            let allowed = !(byte.is_ascii_alphanumeric() || b"_+~.-".contains(&byte));
            // A non-ASCII character is allowed; where it starts does not
            // matter for the consumption check, which only looks at ASCII.
            allowed && previous >= consumed_until
        }
    }
}
