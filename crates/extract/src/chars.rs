//! Character classes used by the scanners, mirroring twitter-text's regexes.

use std::sync::LazyLock;

/// Sorted, non-overlapping inclusive ranges of code points.
struct RangeSet(Vec<(u32, u32)>);

impl RangeSet {
    /// Builds the set of code points matched by a constant regex character class.
    fn from_class(pattern: &str) -> RangeSet {
        let hir = regex_syntax::parse(pattern).expect("constant character class is valid");
        let ranges = match hir.kind() {
            regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(class)) => {
                class.ranges().iter().map(|range| (u32::from(range.start()), u32::from(range.end()))).collect()
            }
            _ => Vec::new(),
        };
        RangeSet(ranges)
    }

    fn contains(&self, c: char) -> bool {
        let code = u32::from(c);
        self.0
            .binary_search_by(|&(start, end)| {
                if end < code {
                    std::cmp::Ordering::Less
                } else if start > code {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }
}

/// Letters and marks: what a hashtag needs at least one of.
static LETTERS_AND_MARKS: LazyLock<RangeSet> = LazyLock::new(|| RangeSet::from_class(r"[\p{L}\p{M}]"));

/// Decimal digits of every script.
static DECIMAL_DIGITS: LazyLock<RangeSet> = LazyLock::new(|| RangeSet::from_class(r"\p{Nd}"));

/// twitter-text's `hashtagAlpha`: a letter or a mark.
pub(crate) fn is_hashtag_alpha(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    LETTERS_AND_MARKS.contains(c)
}

/// twitter-text's `hashtagAlphaNumeric`: letters, marks, decimal digits, `_` and
/// a few joiners and punctuation marks used inside words of some scripts.
pub(crate) fn is_hashtag_alphanumeric(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    matches!(
        c,
        '\u{200c}'
            | '\u{200d}'
            | '\u{a67e}'
            | '\u{05be}'
            | '\u{05f3}'
            | '\u{05f4}'
            | '\u{ff5e}'
            | '\u{301c}'
            | '\u{309b}'
            | '\u{309c}'
            | '\u{30a0}'
            | '\u{30fb}'
            | '\u{3003}'
            | '\u{0f0b}'
            | '\u{0f0c}'
            | '\u{00b7}'
    ) || LETTERS_AND_MARKS.contains(c)
        || DECIMAL_DIGITS.contains(c)
}

/// twitter-text's `latinAccentChars`.
pub(crate) fn is_latin_accent(c: char) -> bool {
    matches!(c,
        '\u{00c0}'..='\u{00d6}'
        | '\u{00d8}'..='\u{00f6}'
        | '\u{00f8}'..='\u{00ff}'
        | '\u{0100}'..='\u{024f}'
        | '\u{0253}' | '\u{0254}' | '\u{0256}' | '\u{0257}' | '\u{0259}' | '\u{025b}'
        | '\u{0263}' | '\u{0268}' | '\u{026f}' | '\u{0272}' | '\u{0289}' | '\u{028b}'
        | '\u{02bb}'
        | '\u{0300}'..='\u{036f}'
        | '\u{1e00}'..='\u{1eff}')
}

/// twitter-text's `spacesGroup`.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c,
        '\u{09}'..='\u{0d}'
        | '\u{20}'
        | '\u{85}'
        | '\u{a0}'
        | '\u{1680}'
        | '\u{180e}'
        | '\u{2000}'..='\u{200a}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{202f}'
        | '\u{205f}'
        | '\u{3000}')
}

/// JavaScript's `\s`, which the cashtag rule uses after the tag.
pub(crate) fn is_js_whitespace(c: char) -> bool {
    is_space(c) && c != '\u{85}' && c != '\u{180e}' || c == '\u{feff}'
}

/// twitter-text's `invalidCharsGroup`: non-characters and the byte-order mark.
pub(crate) fn is_invalid(c: char) -> bool {
    matches!(c, '\u{fffe}' | '\u{feff}' | '\u{ffff}')
}

/// twitter-text's `directionalMarkersGroup`.
pub(crate) fn is_directional_marker(c: char) -> bool {
    matches!(c,
        '\u{202a}'..='\u{202e}'
        | '\u{061c}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{2066}'..='\u{2069}')
}

/// A character that may appear in a domain label (besides `-` and `_`):
/// anything but ASCII punctuation, spaces, invalid characters and
/// directional markers, so that internationalised domains work.
pub(crate) fn is_domain_char(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_punctuation() && !is_space(c);
    }
    !(is_space(c) || is_invalid(c) || is_directional_marker(c))
}

/// twitter-text's `cyrillicLettersAndMarks`.
fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04ff}')
}

/// twitter-text's `validGeneralUrlPathChars`.
pub(crate) fn is_url_path_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "!*';:=+,.$/%#[]-_~&|@".contains(c);
    }
    c == '\u{2013}' || is_cyrillic(c) || is_latin_accent(c)
}

/// twitter-text's `validUrlPathEndingChars` (besides balanced parentheses).
pub(crate) fn is_url_path_ending_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "+-=_#/".contains(c);
    }
    is_cyrillic(c) || is_latin_accent(c)
}

/// twitter-text's `validUrlQueryChars`.
pub(crate) fn is_url_query_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!?*'@();:&=+$/%#[]-_.,~|".contains(c)
}

/// twitter-text's `validUrlQueryEndingChars`.
pub(crate) fn is_url_query_ending_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_&=#/".contains(c)
}

/// Characters after which a TLD does not end (the TLD's lookahead).
pub(crate) fn continues_tld(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '@' | '+' | '-')
}

/// twitter-text's `punct`, which may follow a cashtag.
pub(crate) fn is_twitter_punct(c: char) -> bool {
    c.is_ascii_punctuation()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtag_classes_follow_unicode_categories() {
        assert!(is_hashtag_alpha('트'));
        assert!(is_hashtag_alpha('\u{0e34}'));
        assert!(!is_hashtag_alpha('1'));
        assert!(!is_hashtag_alpha('\u{3003}'));
        assert!(is_hashtag_alphanumeric('\u{3003}'));
        assert!(is_hashtag_alphanumeric('\u{0966}'));
        assert!(!is_hashtag_alphanumeric('。'));
        assert!(!is_hashtag_alphanumeric('✌'));
    }
}
