//! The one boundary every outside value passes on its way to the store.
//!
//! Each format parser (X v2, X v1.1, Jetstream, Mastodon, Deck's demo
//! format) maps a message to [`model::Post`]s as the source wrote them; the
//! [`crate::Parser`] then hands every post of every bundle (the original and
//! the quoted post too) and every delete through this module before it
//! returns them. Here each field is bounded and cleaned, by the limits in
//! [`limits`] (documented in `docs/limits.md`):
//!
//! - **Ids** must be storable as they are (an id is never truncated, since
//!   that could merge two posts): X ids are decimal strings, Bluesky ids are
//!   `at://DID/COLLECTION/RKEY` with a valid DID and record key, Mastodon
//!   ids are URIs without spaces or control characters. A post whose id is
//!   not makes its whole record malformed ([`NormalizeError`]); a reference
//!   (quoted post, parent of a reply) that is not is dropped.
//! - **Index values** (hashtags, mentions, cashtags, handles, URLs,
//!   languages) lose control characters and invisible direction controls;
//!   one that is empty or too long afterwards is dropped, and each list is
//!   capped.
//! - **Text and names** lose control characters (text keeps line breaks and
//!   tabs) and are cut, on a character boundary, at their source's limit.
//! - **Counts** are capped, so no engine's signed 64-bit column overflows.
//! - **Time**: a post sorts at the earlier of the time it claims and the
//!   time Deck received it (Bluesky's `sortAt` rule); where the claim was
//!   later, it is kept in [`model::Post::claimed_at`].

use chrono::{DateTime, Utc};
use model::{Kind, Post, PostBundle, PostEvent, Source};

/// The bounds of every field. Each is near what its source itself allows;
/// `docs/limits.md` gives the reasoning for each.
pub mod limits {
    /// X ids: decimal, at most the digits of a `u64`.
    pub const X_ID_DIGITS: usize = 20;
    /// atproto: a DID is at most 2 KiB.
    pub const DID_BYTES: usize = 2_048;
    /// atproto: a record key is 1 to 512 characters.
    pub const RECORD_KEY_BYTES: usize = 512;
    /// atproto: an NSID (a collection name) is at most 317 characters.
    pub const NSID_BYTES: usize = 317;
    /// atproto: a handle is at most 253 characters (a domain name).
    pub const BLUESKY_HANDLE_BYTES: usize = 253;
    /// Mastodon status and account URIs (and any other id or URL of an id).
    pub const MASTODON_URI_BYTES: usize = 1_024;
    /// Ids of Deck's own demo records.
    pub const DEMO_ID_BYTES: usize = 128;
    /// Any id a delete names (the longest at-URI fits).
    pub const ANY_ID_BYTES: usize = 3_000;
    /// Author ids: a DID, a profile URL, a decimal id.
    pub const AUTHOR_ID_BYTES: usize = 2_048;
    /// Handles and mentions: Mastodon's `user@domain` (30 + 1 + 253) is
    /// the longest any source allows.
    pub const HANDLE_BYTES: usize = 320;
    /// Display names: Bluesky's `displayName` is at most 640 bytes (X: 50
    /// characters, Mastodon: 30).
    pub const NAME_BYTES: usize = 640;
    /// Bluesky lexicon: a tag facet is at most 640 bytes.
    pub const HASHTAG_BYTES: usize = 640;
    /// Cashtags (X: `$` and up to 6 letters; room for other spellings).
    pub const CASHTAG_BYTES: usize = 64;
    /// Links.
    pub const URL_BYTES: usize = 2_048;
    /// A BCP 47 tag (RFC 5646 asks implementations to take 35 characters).
    pub const LANG_BYTES: usize = 35;
    /// Hashtags, mentions, links and cashtags kept per post, each.
    pub const ENTITIES_PER_KIND: usize = 100;
    /// The largest engagement count kept (10^15; every engine stores it).
    pub const COUNT: u64 = 1_000_000_000_000_000;
    /// Bluesky lexicon: a post's text is at most 3,000 bytes.
    pub const BLUESKY_TEXT_BYTES: usize = 3_000;
    /// X: a long post is at most 25,000 characters (of up to 4 bytes).
    pub const X_TEXT_BYTES: usize = 100_000;
    /// Mastodon: 500 characters by default; servers raise it, rarely past
    /// 25,000 characters.
    pub const MASTODON_TEXT_BYTES: usize = 100_000;
    /// Deck's demo posts are short.
    pub const DEMO_TEXT_BYTES: usize = 3_000;
    /// How far a claimed time may lie after the receive time and still be
    /// taken as it is: none, so nothing sorts after its arrival.
    pub const CLOCK_SKEW_MS: i64 = 0;
    /// Media items kept per post (X: 4 photos; Bluesky: 4 images; Mastodon: 4
    /// attachments by default, some servers allow more).
    pub const MEDIA_PER_POST: usize = 16;
    /// Alt text of one picture (Bluesky allows 10,000 characters, X 1,000).
    pub const ALT_BYTES: usize = 10_000;
    /// A link card's title.
    pub const CARD_TITLE_BYTES: usize = 1_000;
    /// A link card's description.
    pub const CARD_DESCRIPTION_BYTES: usize = 3_000;
    /// Pixel width or height of a picture.
    pub const PIXELS: u32 = 100_000;
}

/// A post or delete that cannot be stored safely: its id is not one the
/// source could have made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unusable {field}: {reason}")]
pub struct NormalizeError {
    pub field: &'static str,
    pub reason: String,
}

fn refuse(field: &'static str, value: &str, reason: &str) -> NormalizeError {
    let shown: String = value.chars().take(40).flat_map(char::escape_debug).collect();
    let shown = if value.len() > 40 { format!("{shown}… ({} bytes)", value.len()) } else { shown };
    NormalizeError { field, reason: format!("{reason}: \"{shown}\"") }
}

/// Normalizes every event of one record. `received` is when Deck received
/// the record; `fill_entities` runs on each post between cleaning its text
/// and bounding its entities (so entities found in the text are bounded too).
pub fn events(
    events: &mut [PostEvent],
    received: DateTime<Utc>,
    fill_entities: impl Fn(&mut Post),
) -> Result<(), NormalizeError> {
    for event in events {
        match event {
            PostEvent::Delete { id } => any_id(id, "delete.id")?,
            PostEvent::Upsert(bundle) => self::bundle(bundle, received, &fill_entities)?,
        }
    }
    Ok(())
}

/// Normalizes a bundle: the post and the posts it embeds.
pub fn bundle(
    bundle: &mut PostBundle,
    received: DateTime<Utc>,
    fill_entities: impl Fn(&mut Post),
) -> Result<(), NormalizeError> {
    post(&mut bundle.post, received, &fill_entities)?;
    for embedded in [&mut bundle.retweeted, &mut bundle.quoted].into_iter().flatten() {
        post(embedded, received, &fill_entities)?;
    }
    Ok(())
}

/// Normalizes one post (see the module documentation).
pub fn post(post: &mut Post, received: DateTime<Utc>, fill_entities: impl Fn(&mut Post)) -> Result<(), NormalizeError> {
    let source = post.source;
    post_id(source, &post.id)?;
    if let Some(retweeted_id) = &post.retweeted_id {
        // A retweet is nothing but its reference: without it there is no post.
        reference_id(source, retweeted_id).map_err(|reason| refuse("retweeted_id", retweeted_id, reason))?;
    } else if post.kind == Kind::Retweet {
        return Err(refuse("retweeted_id", "", "a retweet without its original"));
    }
    if post.quoted_id.as_deref().is_some_and(|quoted| reference_id(source, quoted).is_err()) {
        post.quoted_id = None;
        if post.kind == Kind::Quote {
            post.kind = Kind::Post;
        }
    }
    let author = &mut post.author;
    if author.id.len() > limits::AUTHOR_ID_BYTES || author.id.chars().any(is_unsafe_in_id) {
        return Err(refuse("author.id", &author.id, "not an account id"));
    }
    author.handle = term(&author.handle, '@', limits::HANDLE_BYTES).unwrap_or_else(|| author.id.clone());
    author.name = line(&author.name, limits::NAME_BYTES);
    if let Some(reply_to) = &mut post.reply_to {
        if reply_to.post_id.as_deref().is_some_and(|parent| reference_id(source, parent).is_err()) {
            reply_to.post_id = None;
        }
        if reply_to
            .author_id
            .as_deref()
            .is_some_and(|id| id.len() > limits::AUTHOR_ID_BYTES || id.chars().any(is_unsafe_in_id) || id.is_empty())
        {
            reply_to.author_id = None;
        }
        reply_to.handle = reply_to.handle.as_deref().and_then(|handle| term(handle, '@', limits::HANDLE_BYTES));
    }
    post.text = text(&post.text, text_bytes(source));
    post.lang = post.lang.as_deref().and_then(lang);
    fill_entities(post);
    post.hashtags = terms(&post.hashtags, '#', limits::HASHTAG_BYTES);
    post.mentions = terms(&post.mentions, '@', limits::HANDLE_BYTES);
    post.cashtags = terms(&post.cashtags, '$', limits::CASHTAG_BYTES);
    post.urls = urls(&post.urls);
    media(post);
    let counts = &mut post.counts;
    for count in [&mut counts.retweets, &mut counts.likes, &mut counts.replies, &mut counts.quotes] {
        *count = (*count).min(limits::COUNT);
    }
    sort_time(post, received);
    Ok(())
}

/// The sort time: the earlier of the claimed time and the receive time
/// (plus [`limits::CLOCK_SKEW_MS`]). A later claim is kept in `claimed_at`.
/// Re-normalizing a post gives the same result (the claim is not lost).
fn sort_time(post: &mut Post, received: DateTime<Utc>) {
    let claimed = post.claimed_at.unwrap_or(post.created_at);
    let latest = received + chrono::Duration::milliseconds(limits::CLOCK_SKEW_MS);
    if claimed > latest {
        post.created_at = latest;
        post.claimed_at = Some(claimed);
    } else {
        post.created_at = claimed;
        post.claimed_at = None;
    }
}

fn text_bytes(source: Source) -> usize {
    match source {
        Source::X => limits::X_TEXT_BYTES,
        Source::Bluesky => limits::BLUESKY_TEXT_BYTES,
        Source::Mastodon => limits::MASTODON_TEXT_BYTES,
        Source::Demo => limits::DEMO_TEXT_BYTES,
    }
}

/// Characters never kept in an index value or an id: control characters,
/// whitespace, and the invisible ones that change how text around them
/// shows (direction marks, embeddings, overrides and isolates, the byte
/// order mark, line and paragraph separators) or are not characters at all.
fn is_unsafe_in_id(c: char) -> bool {
    c.is_control() || c.is_whitespace() || is_invisible_control(c)
}

fn is_invisible_control(c: char) -> bool {
    matches!(c,
        '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{FFFE}' | '\u{FFFF}')
        || (u32::from(c) & 0xFFFE) == 0xFFFE
        || ('\u{FDD0}'..='\u{FDEF}').contains(&c)
}

/// An index value (hashtag, mention, cashtag, handle): its sigils
/// (`#`/`＃`, `@`/`＠`, `$`) dropped, unsafe characters removed, `None`
/// when nothing is left or it is longer than `max_bytes`.
fn term(value: &str, sigil: char, max_bytes: usize) -> Option<String> {
    let full_width = match sigil {
        '#' => '＃',
        '@' => '＠',
        _ => sigil,
    };
    let value = value.trim().trim_start_matches([sigil, full_width]);
    let cleaned: String = if value.chars().any(is_unsafe_in_id) {
        value.chars().filter(|c| !is_unsafe_in_id(*c)).collect()
    } else {
        value.to_owned()
    };
    (!cleaned.is_empty() && cleaned.len() <= max_bytes).then_some(cleaned)
}

/// A list of index values, each cleaned by [`term`], in the order they
/// appear (repeats kept, as the sources give them), at most
/// [`limits::ENTITIES_PER_KIND`].
fn terms(values: &[String], sigil: char, max_bytes: usize) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(values.len().min(limits::ENTITIES_PER_KIND));
    for value in values {
        if kept.len() == limits::ENTITIES_PER_KIND {
            break;
        }
        if let Some(value) = term(value, sigil, max_bytes) {
            kept.push(value);
        }
    }
    kept
}

fn urls(values: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(values.len().min(limits::ENTITIES_PER_KIND));
    for value in values {
        if kept.len() == limits::ENTITIES_PER_KIND {
            break;
        }
        let value = value.trim();
        if !value.is_empty() && value.len() <= limits::URL_BYTES && !value.chars().any(is_unsafe_in_id) {
            kept.push(value.to_owned());
        }
    }
    kept
}

/// A web address from outside: `http(s)://` (the scheme lower-cased) and
/// something after it, no unsafe characters, at most [`limits::URL_BYTES`].
fn web_address(value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    let rest = if value.get(..8).is_some_and(|start| start.eq_ignore_ascii_case("https://")) {
        ("https://", &value[8..])
    } else if value.get(..7).is_some_and(|start| start.eq_ignore_ascii_case("http://")) {
        ("http://", &value[7..])
    } else {
        return None;
    };
    // The scheme in lower case (`hTtps://` is the same address).
    (value.len() <= limits::URL_BYTES && !rest.1.is_empty() && !value.chars().any(is_unsafe_in_id))
        .then(|| format!("{}{}", rest.0, rest.1))
}

/// Pictures, the link card, the avatar and the permalink: addresses must
/// be web addresses (anything else is dropped), texts are cleaned and cut,
/// sizes bounded, at most [`limits::MEDIA_PER_POST`] items.
fn media(post: &mut Post) {
    post.author.avatar_url = web_address(post.author.avatar_url.as_deref());
    post.permalink = web_address(post.permalink.as_deref());
    post.media.truncate(limits::MEDIA_PER_POST);
    for item in &mut post.media {
        item.url = web_address(item.url.as_deref());
        item.preview_url = web_address(item.preview_url.as_deref());
        item.alt = item.alt.as_deref().map(|alt| text(alt, limits::ALT_BYTES)).filter(|alt| !alt.trim().is_empty());
        item.width = item.width.filter(|pixels| (1..=limits::PIXELS).contains(pixels));
        item.height = item.height.filter(|pixels| (1..=limits::PIXELS).contains(pixels));
    }
    post.media.retain(|item| item.url.is_some() || item.preview_url.is_some());
    if let Some(card) = &mut post.card {
        match web_address(Some(&card.url)) {
            Some(url) => {
                card.url = url;
                card.title = line(&card.title, limits::CARD_TITLE_BYTES);
                card.description = text(&card.description, limits::CARD_DESCRIPTION_BYTES);
                card.image_url = web_address(card.image_url.as_deref());
            }
            None => post.card = None,
        }
    }
}

/// A language tag shaped like BCP 47: a primary subtag of 2 to 8 letters
/// (or `i`/`x`), then subtags of 1 to 8 letters or digits, joined by `-`
/// (`_` is taken for `-`), at most [`limits::LANG_BYTES`].
fn lang(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value.len() > limits::LANG_BYTES {
        return None;
    }
    let mut subtags = value.split(['-', '_']);
    let primary = subtags.next()?;
    let primary_ok = primary.chars().all(|c| c.is_ascii_alphabetic())
        && ((2..=8).contains(&primary.len()) || primary.eq_ignore_ascii_case("i") || primary.eq_ignore_ascii_case("x"));
    let rest_ok =
        subtags.all(|subtag| (1..=8).contains(&subtag.len()) && subtag.chars().all(|c| c.is_ascii_alphanumeric()));
    (primary_ok && rest_ok).then(|| value.replace('_', "-"))
}

/// Post text: control characters removed except line breaks and tabs
/// (`\r\n` and `\r` become `\n`), cut at `max_bytes` on a character boundary.
fn text(value: &str, max_bytes: usize) -> String {
    let needs_cleaning = value.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
    let mut cleaned = if needs_cleaning {
        let mut cleaned = String::with_capacity(value.len());
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => {
                    if chars.peek() != Some(&'\n') {
                        cleaned.push('\n');
                    }
                }
                '\n' | '\t' => cleaned.push(c),
                c if c.is_control() => {}
                c => cleaned.push(c),
            }
        }
        cleaned
    } else {
        value.to_owned()
    };
    truncate(&mut cleaned, max_bytes);
    cleaned
}

/// A one-line value (a display name): control characters become spaces,
/// invisible direction controls go, cut at `max_bytes`.
fn line(value: &str, max_bytes: usize) -> String {
    let mut cleaned: String = if value.chars().any(|c| c.is_control() || is_invisible_control(c)) {
        value.chars().filter(|c| !is_invisible_control(*c)).map(|c| if c.is_control() { ' ' } else { c }).collect()
    } else {
        value.to_owned()
    };
    truncate(&mut cleaned, max_bytes);
    let trimmed = cleaned.trim();
    if trimmed.len() != cleaned.len() { trimmed.to_owned() } else { cleaned }
}

fn truncate(value: &mut String, max_bytes: usize) {
    if value.len() > max_bytes {
        let mut end = max_bytes;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
}

/// A post's own id, by its source's rules.
fn post_id(source: Source, id: &str) -> Result<(), NormalizeError> {
    let checked = match source {
        Source::X => x_id(id),
        Source::Bluesky => at_uri(id, true),
        Source::Mastodon => uri(id, limits::MASTODON_URI_BYTES),
        Source::Demo => demo_id(id),
    };
    checked.map_err(|reason| refuse("id", id, reason))
}

/// An id a post refers to (original, quoted post, parent).
fn reference_id(source: Source, id: &str) -> Result<(), &'static str> {
    match source {
        Source::X => x_id(id),
        Source::Bluesky => at_uri(id, false),
        Source::Mastodon => uri(id, limits::MASTODON_URI_BYTES),
        Source::Demo => demo_id(id),
    }
}

/// An id named by a delete (deletes do not say their source): bounded and
/// without unsafe characters.
fn any_id(id: &str, field: &'static str) -> Result<(), NormalizeError> {
    uri(id, limits::ANY_ID_BYTES).map_err(|reason| refuse(field, id, reason))
}

fn x_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > limits::X_ID_DIGITS || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err("not an X id (1 to 20 decimal digits)");
    }
    Ok(())
}

fn demo_id(id: &str) -> Result<(), &'static str> {
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':');
    if id.is_empty() || id.len() > limits::DEMO_ID_BYTES || !id.bytes().all(allowed) {
        return Err("not a demo id (1 to 128 of A-Z a-z 0-9 - _ . :)");
    }
    Ok(())
}

fn uri(id: &str, max_bytes: usize) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > max_bytes || id.chars().any(is_unsafe_in_id) {
        return Err("not a URI (empty, too long, or with spaces or control characters)");
    }
    Ok(())
}

/// `at://AUTHORITY/COLLECTION/RKEY`. A post's own id names its author by
/// DID and is a post or a repost; a reference may name its author by
/// handle and any collection.
fn at_uri(id: &str, own: bool) -> Result<(), &'static str> {
    let rest = id.strip_prefix("at://").ok_or("not an at:// URI")?;
    let mut parts = rest.splitn(3, '/');
    let (Some(authority), Some(collection), Some(rkey)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not at://AUTHORITY/COLLECTION/RKEY");
    };
    if !(is_did(authority) || (!own && is_handle(authority))) {
        return Err("the authority is not a DID");
    }
    if own && collection != "app.bsky.feed.post" && collection != "app.bsky.feed.repost" {
        return Err("not a post or repost record");
    }
    if !is_nsid(collection) {
        return Err("the collection is not an NSID");
    }
    if !is_record_key(rkey) {
        return Err("not a record key (1 to 512 of A-Z a-z 0-9 . - _ : ~, not . or ..)");
    }
    Ok(())
}

/// atproto DID syntax: `did:METHOD:ID`, method lowercase letters, id of
/// `A-Z a-z 0-9 . _ : % -` not ending in `:` or `%`, at most 2 KiB.
fn is_did(did: &str) -> bool {
    let Some(rest) = did.strip_prefix("did:") else {
        return false;
    };
    let Some((method, identifier)) = rest.split_once(':') else {
        return false;
    };
    did.len() <= limits::DID_BYTES
        && !method.is_empty()
        && method.bytes().all(|byte| byte.is_ascii_lowercase())
        && !identifier.is_empty()
        && identifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'%' | b'-'))
        && !identifier.ends_with([':', '%'])
}

fn is_handle(handle: &str) -> bool {
    !handle.is_empty()
        && handle.len() <= limits::BLUESKY_HANDLE_BYTES
        && handle.contains('.')
        && handle.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-'))
}

fn is_nsid(nsid: &str) -> bool {
    !nsid.is_empty()
        && nsid.len() <= limits::NSID_BYTES
        && nsid.split('.').count() >= 3
        && nsid.split('.').all(|segment| {
            !segment.is_empty() && segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

/// atproto record key syntax.
fn is_record_key(rkey: &str) -> bool {
    (1..=limits::RECORD_KEY_BYTES).contains(&rkey.len())
        && rkey != "."
        && rkey != ".."
        && rkey.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b':' | b'~'))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use model::{Author, ReplyTo};

    use super::*;

    fn bluesky_post(id: &str) -> Post {
        Post {
            lang: Some("en".into()),
            ..Post::new(
                id.to_owned(),
                Source::Bluesky,
                Author {
                    id: "did:plc:abc".into(),
                    handle: "alice.bsky.social".into(),
                    name: "Alice".into(),
                    avatar_url: None,
                },
                "hello",
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default(),
            )
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).single().unwrap_or_default()
    }

    #[test]
    fn bluesky_ids_follow_the_atproto_syntax() {
        assert!(at_uri("at://did:plc:abc/app.bsky.feed.post/3kabc", true).is_ok());
        assert!(at_uri("at://did:web:example.com/app.bsky.feed.repost/self", true).is_ok());
        assert!(at_uri(&format!("at://did:plc:abc/app.bsky.feed.post/{}", "k".repeat(70_000)), true).is_err());
        assert!(at_uri("at://did:plc:abc/app.bsky.feed.post/..", true).is_err());
        assert!(at_uri("at://did:plc:abc/app.bsky.feed.post/a\0b", true).is_err());
        assert!(at_uri("at://did:plc:abc/app.bsky.feed.post/", true).is_err());
        assert!(at_uri("at://alice.bsky.social/app.bsky.feed.post/3k", true).is_err());
        assert!(at_uri("at://alice.bsky.social/app.bsky.feed.post/3k", false).is_ok());
        assert!(at_uri("at://DID:plc:abc/app.bsky.feed.post/3k", true).is_err());
        assert!(at_uri("at://did:plc:abc/app.bsky.graph.list/3k", true).is_err());
        assert!(at_uri("at://did:plc:abc/app.bsky.graph.list/3k", false).is_ok());
    }

    #[test]
    fn a_post_with_an_unstorable_id_is_refused() {
        let mut post = bluesky_post(&format!("at://did:plc:abc/app.bsky.feed.post/{}", "k".repeat(70_000)));
        let error = self::post(&mut post, now(), |_| {}).unwrap_err();
        assert_eq!(error.field, "id");
        assert!(error.reason.len() < 200, "{}", error.reason);
        let mut x = bluesky_post("12a");
        x.source = Source::X;
        assert!(self::post(&mut x, now(), |_| {}).is_err());
        let mut deletes = vec![PostEvent::Delete { id: "a b".into() }];
        assert!(events(&mut deletes, now(), |_| {}).is_err());
    }

    #[test]
    fn index_values_lose_controls_and_odd_ones_go() {
        let mut post = bluesky_post("at://did:plc:abc/app.bsky.feed.post/3k");
        post.hashtags = vec![
            "#that\0tag".into(),
            "\u{202E}bts".into(),
            "x".repeat(641),
            "".into(),
            "#".into(),
            "bts".into(),
            "ok".into(),
        ];
        post.mentions = vec!["@bob\u{0007}".into(), "a b".into()];
        post.urls = vec!["https://example.com/\0".into(), "https://example.com/a".into(), "x".repeat(3_000)];
        post.lang = Some("en\0".into());
        post.author.handle = "\u{202E}alice".into();
        post.author.name = "A\nB\u{202E}".into();
        post.text = "a\0b\r\nc\td".into();
        post.counts.likes = u64::MAX;
        post.reply_to = Some(ReplyTo { post_id: Some("junk".into()), author_id: None, handle: Some("\0".into()) });
        self::post(&mut post, now(), |_| {}).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(post.hashtags, vec!["thattag", "bts", "bts", "ok"]);
        assert_eq!(post.mentions, vec!["bob", "ab"]);
        assert_eq!(post.urls, vec!["https://example.com/a"]);
        assert_eq!(post.lang, None);
        assert_eq!(post.author.handle, "alice");
        assert_eq!(post.author.name, "A B");
        assert_eq!(post.text, "ab\nc\td");
        assert_eq!(post.counts.likes, limits::COUNT);
        assert_eq!(post.reply_to, Some(ReplyTo { post_id: None, author_id: None, handle: None }));
    }

    #[test]
    fn entity_lists_are_capped_and_text_is_cut_on_a_char_boundary() {
        let mut post = bluesky_post("at://did:plc:abc/app.bsky.feed.post/3k");
        post.hashtags = (0..5_000).map(|tag_idx| format!("t{tag_idx}")).collect();
        // One ASCII byte first, so that the 3,000-byte limit falls inside a
        // three-byte Hangul syllable: the cut goes back to 1 + 999 × 3 bytes.
        post.text = format!("a{}", "가".repeat(2_000));
        self::post(&mut post, now(), |_| {}).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(post.hashtags.len(), limits::ENTITIES_PER_KIND);
        assert_eq!(post.text.len(), 2_998);
    }

    #[test]
    fn languages_are_shaped_like_bcp47() {
        assert_eq!(lang("ko").as_deref(), Some("ko"));
        assert_eq!(lang("zh_Hant-TW").as_deref(), Some("zh-Hant-TW"));
        assert_eq!(lang("x-klingon").as_deref(), Some("x-klingon"));
        assert_eq!(lang("e"), None);
        assert_eq!(lang("english language"), None);
        assert_eq!(lang(&"a".repeat(40)), None);
        assert_eq!(lang("en--us"), None);
    }

    #[test]
    fn a_post_never_sorts_after_it_arrived() {
        let mut future = bluesky_post("at://did:plc:abc/app.bsky.feed.post/3k");
        let claimed = Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).single().unwrap_or_default();
        future.created_at = claimed;
        self::post(&mut future, now(), |_| {}).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(future.created_at, now());
        assert_eq!(future.claimed_at, Some(claimed));
        // Normalizing again (a re-delivered demo record) keeps the claim.
        self::post(&mut future, now(), |_| {}).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!((future.created_at, future.claimed_at), (now(), Some(claimed)));

        let mut backdated = bluesky_post("at://did:plc:abc/app.bsky.feed.post/3j");
        let old = Utc.with_ymd_and_hms(2001, 1, 1, 0, 0, 0).single().unwrap_or_default();
        backdated.created_at = old;
        self::post(&mut backdated, now(), |_| {}).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!((backdated.created_at, backdated.claimed_at), (old, None));
    }
}
