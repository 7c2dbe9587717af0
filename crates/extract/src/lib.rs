//! Extraction of hashtags, mentions, lists, URLs and cashtags from post text,
//! by the rules of twitter-text (checked against its conformance suite).
//!
//! Every scanner is hand-written (no regex runs per post) and each returns
//! at once when the text lacks the character its entity needs (`#`/`＃`,
//! `@`/`＠`, `$`, `.`), since extraction runs on every ingested post.
//!
//! Values are returned without their sign (`#`, `@`, `$`). The
//! `*_with_indices` functions give `[start, end)` offsets in Unicode code
//! points (not bytes, not UTF-16 units), the sign included, as twitter-text does.
//!
//! Deliberate choices where twitter-text's implementations differ:
//! punctuation (which ends a cashtag and may not appear in a domain) is all
//! of ASCII punctuation, as in the Java implementation, rather than the
//! JavaScript one's list, which omits `"` and `` ` ``.

mod cashtag;
mod chars;
mod hashtag;
mod mention;
mod punycode;
mod tlds;
mod url;

/// The entities found in a post's text, in order of appearance, without
/// their signs. An entity that overlaps an earlier one is dropped (a `#tag`
/// inside a URL's fragment is part of the URL, not a hashtag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entities {
    /// Hashtags without `#`, e.g. `rust` for `#rust`.
    pub hashtags: Vec<String>,
    /// Mentioned screen names without `@`. Lists (`@user/list`) are not
    /// mentions; see [`extract_mentions_or_lists_with_indices`].
    pub mentions: Vec<String>,
    /// URLs as written, with or without their protocol.
    pub urls: Vec<String>,
    /// Cashtags without `$`, e.g. `AAPL` for `$AAPL`.
    pub cashtags: Vec<String>,
}

/// A mention or a list, with its position in code points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionOrList {
    /// The screen name, without `@`.
    pub screen_name: String,
    /// The list slug with its leading `/` (e.g. `/list-name`), or empty for a mention.
    pub list_slug: String,
    /// Code-point offset of the `@`.
    pub start: usize,
    /// Code-point offset just after the screen name or slug.
    pub end: usize,
}

/// Where an entity lies, in bytes: `start..end` includes the sign,
/// `value_start..value_end` is the value returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub value_start: usize,
    pub value_end: usize,
}

impl Span {
    /// A span whose value is all of it (URLs).
    pub(crate) fn whole(start: usize, end: usize) -> Span {
        Span { start, end, value_start: start, value_end: end }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hashtag,
    Mention,
    List,
    Url,
    Cashtag,
}

/// The first byte of `＃` (U+FF03) and `＠` (U+FF20) in UTF-8.
const FULLWIDTH_LEAD_BYTE: u8 = 0xef;

/// Whether the text may hold any entity at all: the common plain post is
/// ruled out by two vectorised scans.
fn may_have_entities(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr3(b'#', b'@', b'$', bytes).is_some() || memchr::memchr2(b'.', FULLWIDTH_LEAD_BYTE, bytes).is_some()
}

fn has_hash_sign(text: &str) -> bool {
    memchr::memchr(b'#', text.as_bytes()).is_some() || text.contains('\u{ff03}')
}

fn has_at_sign(text: &str) -> bool {
    memchr::memchr(b'@', text.as_bytes()).is_some() || text.contains('\u{ff20}')
}

fn has_dollar_sign(text: &str) -> bool {
    memchr::memchr(b'$', text.as_bytes()).is_some()
}

fn has_dot(text: &str) -> bool {
    memchr::memchr(b'.', text.as_bytes()).is_some()
}

fn url_spans(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    if has_dot(text) {
        url::scan(text, &mut spans);
    }
    spans
}

fn hashtag_spans(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    if has_hash_sign(text) {
        hashtag::scan(text, &mut spans);
    }
    spans
}

fn cashtag_spans(text: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    if has_dollar_sign(text) {
        cashtag::scan(text, &mut spans);
    }
    spans
}

fn mention_or_list_spans(text: &str) -> Vec<(Kind, Span)> {
    let mut raw_mentions = Vec::new();
    if has_at_sign(text) {
        mention::scan(text, &mut raw_mentions);
    }
    raw_mentions
        .into_iter()
        .map(|raw| {
            let kind = if raw.end > raw.name_end { Kind::List } else { Kind::Mention };
            let span = Span { start: raw.start, end: raw.end, value_start: raw.name_start, value_end: raw.name_end };
            (kind, span)
        })
        .collect()
}

/// Hashtag spans that do not overlap a URL (a `#fragment` is part of its URL).
fn hashtag_spans_outside_urls(text: &str) -> Vec<Span> {
    let hashtags = hashtag_spans(text);
    if hashtags.is_empty() {
        return hashtags;
    }
    let urls = url_spans(text);
    if urls.is_empty() {
        return hashtags;
    }
    let mut entities: Vec<(Kind, Span)> = hashtags
        .into_iter()
        .map(|span| (Kind::Hashtag, span))
        .chain(urls.into_iter().map(|span| (Kind::Url, span)))
        .collect();
    remove_overlapping(&mut entities);
    entities.into_iter().filter(|(kind, _)| *kind == Kind::Hashtag).map(|(_, span)| span).collect()
}

/// Orders entities by start and drops each one that begins before the
/// previous kept one ends (twitter-text's `removeOverlappingEntities`).
fn remove_overlapping(entities: &mut Vec<(Kind, Span)>) {
    entities.sort_by_key(|(_, span)| span.start);
    let mut kept_end = 0;
    let mut first = true;
    entities.retain(|(_, span)| {
        if !first && span.start < kept_end {
            return false;
        }
        first = false;
        kept_end = span.end;
        true
    });
}

/// Converts increasing byte offsets to code-point offsets in one pass.
struct CharOffsets<'text> {
    text: &'text str,
    byte_offset: usize,
    char_offset: usize,
}

impl<'text> CharOffsets<'text> {
    fn new(text: &'text str) -> Self {
        CharOffsets { text, byte_offset: 0, char_offset: 0 }
    }

    fn char_offset_of(&mut self, byte_offset: usize) -> usize {
        if byte_offset < self.byte_offset {
            self.byte_offset = 0;
            self.char_offset = 0;
        }
        self.char_offset += self.text[self.byte_offset..byte_offset].chars().count();
        self.byte_offset = byte_offset;
        self.char_offset
    }
}

fn values(text: &str, spans: &[Span]) -> Vec<String> {
    spans.iter().map(|span| text[span.value_start..span.value_end].to_owned()).collect()
}

fn values_with_indices(text: &str, spans: &[Span]) -> Vec<(String, usize, usize)> {
    let mut offsets = CharOffsets::new(text);
    spans
        .iter()
        .map(|span| {
            let start = offsets.char_offset_of(span.start);
            let end = offsets.char_offset_of(span.end);
            (text[span.value_start..span.value_end].to_owned(), start, end)
        })
        .collect()
}

/// Extracts every kind of entity at once, dropping entities that overlap an
/// earlier one (as twitter-text's `extractEntitiesWithIndices` does).
pub fn extract(text: &str) -> Entities {
    if !may_have_entities(text) {
        return Entities::default();
    }
    let mut entities: Vec<(Kind, Span)> = Vec::new();
    entities.extend(url_spans(text).into_iter().map(|span| (Kind::Url, span)));
    entities.extend(hashtag_spans(text).into_iter().map(|span| (Kind::Hashtag, span)));
    entities.extend(mention_or_list_spans(text));
    entities.extend(cashtag_spans(text).into_iter().map(|span| (Kind::Cashtag, span)));
    let mut extracted = Entities::default();
    if entities.is_empty() {
        return extracted;
    }
    remove_overlapping(&mut entities);
    for (kind, span) in entities {
        let value = text[span.value_start..span.value_end].to_owned();
        match kind {
            Kind::Hashtag => extracted.hashtags.push(value),
            Kind::Mention => extracted.mentions.push(value),
            Kind::List => {}
            Kind::Url => extracted.urls.push(value),
            Kind::Cashtag => extracted.cashtags.push(value),
        }
    }
    extracted
}

/// Hashtags without `#`, in order; `#` and `＃` both count, a tag needs a
/// letter, and one inside a URL is not a hashtag.
pub fn extract_hashtags(text: &str) -> Vec<String> {
    values(text, &hashtag_spans_outside_urls(text))
}

/// Hashtags as `(tag, start, end)`, offsets in code points covering the `#`.
pub fn extract_hashtags_with_indices(text: &str) -> Vec<(String, usize, usize)> {
    values_with_indices(text, &hashtag_spans_outside_urls(text))
}

fn mention_spans(text: &str) -> Vec<Span> {
    mention_or_list_spans(text).into_iter().filter(|(kind, _)| *kind == Kind::Mention).map(|(_, span)| span).collect()
}

/// Mentioned screen names without `@`, in order (lists excluded).
pub fn extract_mentions(text: &str) -> Vec<String> {
    values(text, &mention_spans(text))
}

/// Mentions as `(screen_name, start, end)`, offsets in code points covering the `@`.
pub fn extract_mentions_with_indices(text: &str) -> Vec<(String, usize, usize)> {
    values_with_indices(text, &mention_spans(text))
}

/// Mentions and lists (`@user/list-name`), with code-point offsets.
pub fn extract_mentions_or_lists_with_indices(text: &str) -> Vec<MentionOrList> {
    let mut offsets = CharOffsets::new(text);
    mention_or_list_spans(text)
        .into_iter()
        .map(|(_, span)| MentionOrList {
            screen_name: text[span.value_start..span.value_end].to_owned(),
            list_slug: text[span.value_end..span.end].to_owned(),
            start: offsets.char_offset_of(span.start),
            end: offsets.char_offset_of(span.end),
        })
        .collect()
}

/// The screen name a post replies to: a mention at its very start (after
/// spaces at most), or `None`.
pub fn extract_reply_username(text: &str) -> Option<String> {
    mention::reply(text).map(str::to_owned)
}

/// URLs, with or without protocol, in order.
pub fn extract_urls(text: &str) -> Vec<String> {
    values(text, &url_spans(text))
}

/// URLs as `(url, start, end)`, offsets in code points.
pub fn extract_urls_with_indices(text: &str) -> Vec<(String, usize, usize)> {
    values_with_indices(text, &url_spans(text))
}

/// Cashtags without `$`, in order (`$TICKER` or `$TICKER.X`, letters only).
pub fn extract_cashtags(text: &str) -> Vec<String> {
    values(text, &cashtag_spans(text))
}

/// Cashtags as `(symbol, start, end)`, offsets in code points covering the `$`.
pub fn extract_cashtags_with_indices(text: &str) -> Vec<(String, usize, usize)> {
    values_with_indices(text, &cashtag_spans(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_every_kind_at_once() {
        let entities = extract("RT @deck: #방탄소년단 #BTS進撃 ✌️#hashtag $AAPL http://example.com/#frag");
        assert_eq!(entities.hashtags, ["방탄소년단", "BTS進撃", "hashtag"]);
        assert_eq!(entities.mentions, ["deck"]);
        assert_eq!(entities.cashtags, ["AAPL"]);
        assert_eq!(entities.urls, ["http://example.com/#frag"]);
    }

    #[test]
    fn plain_text_has_no_entities() {
        assert_eq!(extract("just words, nothing else"), Entities::default());
        assert_eq!(extract(""), Entities::default());
    }

    #[test]
    fn lists_are_not_mentions() {
        assert_eq!(extract("@deck/favourites and @you").mentions, ["you"]);
    }

    #[test]
    fn offsets_are_code_points() {
        assert_eq!(extract_hashtags_with_indices("한국 #한국말"), [("한국말".to_owned(), 3, 7)]);
    }
}
