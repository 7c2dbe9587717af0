//! Text normalization and tokenization, shared by queries and posts so that
//! both sides of every comparison see exactly the same tokens.
//!
//! Text is first normalized (NFKC, then Unicode lowercase), which folds
//! full-width Latin (`ＢＴＳ`), half-width katakana and compatibility forms
//! into their plain forms. It is then cut into [`Token`]s:
//!
//! * a run of letters, digits, `_` and combining marks is a [`TokenKind::Word`],
//!   except that Hangul is cut apart from other scripts (`bts가` is `bts` + `가`)
//!   so that a Korean particle glued to a Latin name does not hide the name;
//! * a run of a script written without spaces (Japanese, Chinese, Thai, Lao,
//!   Khmer, Myanmar) is one [`TokenKind::Spaceless`] token, matched by substring;
//! * each emoji (with its skin tone and variation selector dropped, and ZWJ
//!   sequences and flags kept whole) is an [`TokenKind::Emoji`] token;
//! * everything else separates tokens.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization as _};

/// How a token matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TokenKind {
    /// Letters and digits of a space-separated script other than Hangul.
    Word,
    /// Hangul; may carry a Korean particle (see `korean`).
    Hangul,
    /// A run of a script written without spaces; queries match it by substring.
    Spaceless,
    /// One emoji.
    Emoji,
}

/// One token of normalized text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub text: Box<str>,
}

/// NFKC, then Unicode lowercase. ASCII text takes a fast path.
pub(crate) fn normalize(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut normalized = String::with_capacity(text.len());
    // Most text is already in NFKC; the quick check skips the normalizer's
    // buffering for it.
    if unicode_normalization::is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        for c in text.chars() {
            normalized.extend(c.to_lowercase());
        }
        return normalized;
    }
    for c in text.nfkc() {
        if c.is_ascii() {
            normalized.push(c.to_ascii_lowercase());
        } else {
            normalized.extend(c.to_lowercase());
        }
    }
    normalized
}

/// Letters, digits, `_` and combining marks make up words.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_combining_mark(c)
}

fn is_hangul(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1100..=0x11FF | 0x3130..=0x318F | 0xA960..=0xA97F | 0xAC00..=0xD7FF
    )
}

/// Scripts written without spaces between words.
fn is_spaceless(c: char) -> bool {
    matches!(
        u32::from(c),
        0x0E00..=0x0EFF          // Thai, Lao
            | 0x1000..=0x109F    // Myanmar
            | 0x1780..=0x17FF    // Khmer
            | 0x3005..=0x3007    // 々 〆 〇
            | 0x3021..=0x3029    // Hangzhou numerals
            | 0x3031..=0x3035    // kana repeat marks
            | 0x303B..=0x303C
            | 0x3040..=0x30FF    // Hiragana, Katakana
            | 0x3100..=0x312F    // Bopomofo
            | 0x31A0..=0x31FF    // Bopomofo extended, Katakana extensions
            | 0x3400..=0x4DBF    // CJK extension A
            | 0x4E00..=0x9FFF    // CJK unified ideographs
            | 0xF900..=0xFAFF    // CJK compatibility ideographs
            | 0xFF66..=0xFF9F    // half-width katakana (NFKC widens it anyway)
            | 0x20000..=0x3FFFF // CJK extensions B and later
    )
}

/// Characters that start an emoji token.
fn is_emoji(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00A9
            | 0x00AE
            | 0x203C
            | 0x2049
            | 0x2190..=0x21FF
            | 0x2300..=0x23FF
            | 0x25A0..=0x27BF
            | 0x2900..=0x297F
            | 0x2B00..=0x2BFF
            | 0x3030
            | 0x303D
            | 0x3297
            | 0x3299
            | 0x1F000..=0x1F3FA
            | 0x1F400..=0x1FAFF
    )
}

fn is_regional_indicator(c: char) -> bool {
    matches!(u32::from(c), 0x1F1E6..=0x1F1FF)
}

/// Characters dropped without separating tokens: variation selectors, joiners
/// outside emoji, soft hyphens, byte-order marks and skin-tone modifiers (so
/// that 👍 matches 👍🏽).
fn is_ignorable(c: char) -> bool {
    matches!(u32::from(c), 0x00AD | 0x200C | 0x200D | 0x2060 | 0xFE0E | 0xFE0F | 0xFEFF | 0x1F3FB..=0x1F3FF)
}

/// Cuts normalized text into tokens, appending them to `tokens`.
pub(crate) fn tokenize(normalized: &str, tokens: &mut Vec<Token>) {
    let mut current_kind = TokenKind::Word;
    let mut current = String::new();
    let mut chars = normalized.chars().peekable();
    while let Some(c) = chars.next() {
        // Variation selectors are combining marks, so this test comes first.
        if is_ignorable(c) {
            continue;
        }
        if is_word_char(c) {
            let kind = if is_spaceless(c) {
                TokenKind::Spaceless
            } else if is_hangul(c) {
                TokenKind::Hangul
            } else if is_combining_mark(c) && !current.is_empty() {
                // A mark belongs to whatever it follows.
                current_kind
            } else {
                TokenKind::Word
            };
            if kind != current_kind && !current.is_empty() {
                flush(&mut current, current_kind, tokens);
            }
            current_kind = kind;
            current.push(c);
        } else if is_emoji(c) {
            flush(&mut current, current_kind, tokens);
            let mut emoji = String::from(c);
            // Two regional indicators make one flag.
            if let Some(next) = chars.next_if(|&next| is_regional_indicator(c) && is_regional_indicator(next)) {
                emoji.push(next);
            }
            while let Some(&next) = chars.peek() {
                match u32::from(next) {
                    0xFE0E | 0xFE0F | 0x1F3FB..=0x1F3FF => {
                        chars.next();
                    }
                    0xE0020..=0xE007F => {
                        emoji.push(next);
                        chars.next();
                    }
                    0x200D => {
                        chars.next();
                        match chars.peek() {
                            Some(&joined) if is_emoji(joined) => {
                                emoji.push('\u{200D}');
                                emoji.push(joined);
                                chars.next();
                            }
                            _ => break,
                        }
                    }
                    _ => break,
                }
            }
            tokens.push(Token { kind: TokenKind::Emoji, text: emoji.into_boxed_str() });
        } else {
            flush(&mut current, current_kind, tokens);
        }
    }
    flush(&mut current, current_kind, tokens);
}

fn flush(current: &mut String, kind: TokenKind, tokens: &mut Vec<Token>) {
    if !current.is_empty() {
        tokens.push(Token { kind, text: current.as_str().into() });
        current.clear();
    }
}

/// Strips `http://`, `https://` and a leading `www.` from a normalized link so
/// that links and query words about links tokenize the same way.
pub(crate) fn strip_link_prefix(normalized: &str) -> &str {
    let rest = normalized.strip_prefix("https://").or_else(|| normalized.strip_prefix("http://")).unwrap_or(normalized);
    rest.strip_prefix("www.").unwrap_or(rest)
}

/// Whether a normalized query word is written as a link.
pub(crate) fn looks_like_link(normalized: &str) -> bool {
    normalized.starts_with("https://") || normalized.starts_with("http://") || normalized.starts_with("www.")
}

/// Replaces every `http(s)://…` span (up to the next whitespace) with a space.
/// Links are matched through the post's expanded `urls` instead, so shortened
/// `t.co` links do not turn into junk words.
pub(crate) fn remove_links(normalized: &str) -> std::borrow::Cow<'_, str> {
    if !normalized.contains("http") {
        return std::borrow::Cow::Borrowed(normalized);
    }
    let mut kept = String::with_capacity(normalized.len());
    let mut rest = normalized;
    while let Some(start) = find_link_start(rest) {
        kept.push_str(&rest[..start]);
        kept.push(' ');
        let link = &rest[start..];
        let end = link.find(char::is_whitespace).unwrap_or(link.len());
        rest = &link[end..];
    }
    kept.push_str(rest);
    std::borrow::Cow::Owned(kept)
}

fn find_link_start(text: &str) -> Option<usize> {
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find("http") {
        let start = search_from + found;
        let tail = &text[start..];
        // A link starts a word: "xhttps://" is not one.
        let starts_word = text[..start].chars().next_back().is_none_or(|c| !is_word_char(c));
        if starts_word && (tail.starts_with("https://") || tail.starts_with("http://")) {
            return Some(start);
        }
        search_from = start + 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<(TokenKind, String)> {
        let mut tokens = Vec::new();
        tokenize(&normalize(text), &mut tokens);
        tokens.into_iter().map(|token| (token.kind, token.text.into_string())).collect()
    }

    fn texts(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|(_, text)| text).collect()
    }

    #[test]
    fn normalization_folds_width_and_case() {
        assert_eq!(normalize("ＢＴＳ Army"), "bts army");
        assert_eq!(normalize("ｶﾀｶﾅ"), "カタカナ");
        assert_eq!(normalize("ÉCOLE"), "école");
    }

    #[test]
    fn words_split_on_punctuation_and_scripts() {
        assert_eq!(texts("BTS가 1위! #BTS @bts_twt"), ["bts", "가", "1", "위", "bts", "bts_twt"]);
        assert_eq!(texts("don't stop"), ["don", "t", "stop"]);
        assert_eq!(texts("BTSの新曲、最高"), ["bts", "の新曲", "最高"]);
    }

    #[test]
    fn token_kinds() {
        use TokenKind::*;
        assert_eq!(
            tokens("방탄 bts ไทย 💜"),
            [
                (Hangul, "방탄".to_string()),
                (Word, "bts".to_string()),
                (Spaceless, "ไทย".to_string()),
                (Emoji, "💜".to_string())
            ]
        );
    }

    #[test]
    fn emoji_are_tokens_of_their_own() {
        assert_eq!(texts("love💜💜you"), ["love", "💜", "💜", "you"]);
        assert_eq!(texts("👍🏽"), ["👍"]);
        assert_eq!(texts("❤️"), ["❤"]);
        assert_eq!(texts("🇰🇷🇯🇵"), ["🇰🇷", "🇯🇵"]);
        assert_eq!(texts("👨‍👩‍👧 family"), ["👨\u{200D}👩\u{200D}👧", "family"]);
    }

    #[test]
    fn links_are_removed_from_text() {
        assert_eq!(remove_links("watch https://t.co/abc now"), "watch   now");
        assert_eq!(remove_links("no links"), "no links");
        assert_eq!(remove_links("xhttps://a b"), "xhttps://a b");
        assert_eq!(strip_link_prefix("https://www.youtube.com/watch"), "youtube.com/watch");
    }
}
