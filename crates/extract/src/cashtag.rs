//! Cashtag scanner: twitter-text's `validCashtag` rule (`$TICKER`, `$TICKER.X`).

use crate::Span;
use crate::chars::{is_js_whitespace, is_space, is_twitter_punct};

const MAX_SYMBOL: usize = 6;
const MAX_SUFFIX: usize = 2;

/// Finds every cashtag, as byte spans covering the dollar sign and the symbol.
pub(crate) fn scan(text: &str, spans: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    for (dollar, _) in text.match_indices('$') {
        let preceded_by_space = text[..dollar].chars().next_back().is_none_or(is_space);
        if !preceded_by_space {
            continue;
        }
        let symbol_start = dollar + 1;
        let letters = ascii_letters(&bytes[symbol_start..]);
        if letters == 0 || letters > MAX_SYMBOL {
            continue;
        }
        let symbol_end = symbol_start + letters;
        let end = suffix_end(text, symbol_end).or_else(|| ends_cashtag(text, symbol_end).then_some(symbol_end));
        if let Some(end) = end {
            spans.push(Span { start: dollar, end, value_start: symbol_start, value_end: end });
        }
    }
}

/// The end of a `.X` or `_XY` suffix after the symbol, if there is a valid one.
fn suffix_end(text: &str, symbol_end: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if !matches!(bytes.get(symbol_end), Some(b'.' | b'_')) {
        return None;
    }
    let letters = ascii_letters(&bytes[symbol_end + 1..]).min(MAX_SUFFIX);
    // Like the regex, try the longest suffix first and accept the first one
    // that the cashtag may end after.
    (1..=letters).rev().map(|n_letters| symbol_end + 1 + n_letters).find(|&end| ends_cashtag(text, end))
}

/// The cashtag's lookahead: the end of the text, a space or punctuation.
fn ends_cashtag(text: &str, end: usize) -> bool {
    text[end..].chars().next().is_none_or(|c| is_js_whitespace(c) || is_twitter_punct(c))
}

fn ascii_letters(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_alphabetic()).count()
}
