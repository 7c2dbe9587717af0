//! Deck's domain model: the one normalized [`Post`] every source maps to, the
//! events that flow through the pipeline, and the [`Cursor`] that orders posts.
//!
//! These are plain Rust types. The JSON that clients see lives in the `api`
//! crate; the `serde` derives here are for storage and the internal log only.

#[cfg(feature = "fixtures")]
pub mod fixtures;

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a post came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    X,
    Bluesky,
    Mastodon,
    Demo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::X => "x",
            Source::Bluesky => "bluesky",
            Source::Mastodon => "mastodon",
            Source::Demo => "demo",
        }
    }
}

/// What kind of post this is. A post that both quotes and replies is a reply
/// (the quote is still attached through [`Post::quoted_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Post,
    Retweet,
    Quote,
    Reply,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Post => "post",
            Kind::Retweet => "retweet",
            Kind::Quote => "quote",
            Kind::Reply => "reply",
        }
    }
}

/// The account that wrote a post.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The source's stable id (X user id, Bluesky DID, Mastodon account URI).
    pub id: String,
    /// The handle without `@`; a DID until the handle is known.
    pub handle: String,
    /// The display name; may be empty.
    pub name: String,
    /// The profile picture at the source's CDN, where known.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// The host of the demo source's pictures. Nothing is fetched from it: the
/// media proxy draws them (`demo_media_url` paths), so the demo shows
/// avatars and photos with no network. `.invalid` can never resolve.
pub const DEMO_MEDIA_ORIGIN: &str = "https://demo.deck.invalid";

/// What kind of picture or clip a [`Media`] item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Photo,
    Video,
    /// An animated GIF (X and Mastodon deliver these as silent looping video).
    Gif,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Video => "video",
            MediaKind::Gif => "gif",
        }
    }
}

/// One picture or clip attached to a post, with the addresses the source
/// gave (originals; the gateway serves images through its own `/media/…`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    pub kind: MediaKind,
    /// A photo's full-size image; a video's or GIF's playable file or page.
    pub url: Option<String>,
    /// A still image: a photo's smaller rendition, a video's poster frame.
    pub preview_url: Option<String>,
    /// Size in pixels of the full-size item, where the source says.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The author's description of the picture (alt text).
    pub alt: Option<String>,
}

impl Media {
    /// The image to show in a timeline: the preview, else the photo itself.
    pub fn still_url(&self) -> Option<&str> {
        self.preview_url.as_deref().or(match self.kind {
            MediaKind::Photo => self.url.as_deref(),
            MediaKind::Video | MediaKind::Gif => None,
        })
    }
}

/// A link preview: the page a post links to, as the source summarized it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub url: String,
    pub title: String,
    pub description: String,
    /// The page's preview image at the source's CDN, where known.
    pub image_url: Option<String>,
}

/// Public engagement counts as last seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub retweets: u64,
    pub likes: u64,
    pub replies: u64,
    pub quotes: u64,
}

/// The post a reply answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    /// Id of the post replied to, where known.
    pub post_id: Option<String>,
    /// Id of the account replied to, where known.
    pub author_id: Option<String>,
    /// Handle (without `@`) of the account replied to, where known.
    pub handle: Option<String>,
}

/// One normalized post from any source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// Unique across sources (sources namespace ids that could collide).
    pub id: String,
    pub source: Source,
    pub kind: Kind,
    pub author: Author,
    /// The text as posted. For a retweet this is the `RT @name: …` text, if any;
    /// the content that queries look at is the original's.
    pub text: String,
    /// BCP 47 language tag as the source gives it (`ko`, `en`, `und`), if any.
    pub lang: Option<String>,
    /// The sort time: when the post was written as far as Deck can tell,
    /// never later than when Deck received it (the earlier of the time the
    /// source claims and the receive time, Bluesky's `sortAt` rule).
    pub created_at: DateTime<Utc>,
    /// The time the source claimed, where it differs from `created_at`
    /// (a post dated in the future sorts at its receive time instead).
    /// Never skipped when serializing: stored posts are postcard, which is
    /// not self-describing.
    #[serde(default)]
    pub claimed_at: Option<DateTime<Utc>>,
    /// For a retweet: the original's id.
    pub retweeted_id: Option<String>,
    /// For a quote (or a reply that quotes): the quoted post's id.
    pub quoted_id: Option<String>,
    pub reply_to: Option<ReplyTo>,
    /// Hashtags without `#`, in order of appearance.
    pub hashtags: Vec<String>,
    /// Mentioned handles without `@`, in order of appearance.
    pub mentions: Vec<String>,
    /// Links (expanded where the source gives the expansion), in order.
    pub urls: Vec<String>,
    /// Cashtags without `$`, in order of appearance.
    pub cashtags: Vec<String>,
    pub has_media: bool,
    pub counts: Counts,
    /// Pictures and clips, in the order the source lists them.
    #[serde(default)]
    pub media: Vec<Media>,
    /// The link preview, where the source gives one.
    #[serde(default)]
    pub card: Option<Card>,
    /// The source marks the media (or the post) sensitive: X
    /// `possibly_sensitive`, Bluesky self-labels, Mastodon `sensitive`.
    #[serde(default)]
    pub sensitive: bool,
    /// The post on its own network (`https://x.com/USER/status/ID`,
    /// `https://bsky.app/profile/DID/post/RKEY`, Mastodon's `url`).
    #[serde(default)]
    pub permalink: Option<String>,
}

impl Post {
    /// A plain post (kind [`Kind::Post`]) with nothing but these fields:
    /// no language, entities, references, counts or media. Build the rest
    /// with struct update syntax: `Post { hashtags, ..Post::new(…) }`.
    pub fn new(
        id: impl Into<String>,
        source: Source,
        author: Author,
        text: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Post {
        Post {
            id: id.into(),
            source,
            kind: Kind::Post,
            author,
            text: text.into(),
            lang: None,
            created_at,
            claimed_at: None,
            retweeted_id: None,
            quoted_id: None,
            reply_to: None,
            hashtags: Vec::new(),
            mentions: Vec::new(),
            urls: Vec::new(),
            cashtags: Vec::new(),
            has_media: false,
            counts: Counts::default(),
            media: Vec::new(),
            card: None,
            sensitive: false,
            permalink: None,
        }
    }

    /// The key that orders this post in every timeline.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(self.created_at.timestamp_millis(), &self.id)
    }

    pub fn is_retweet(&self) -> bool {
        self.kind == Kind::Retweet
    }
}

/// A post together with the posts it embeds, as a source delivers it.
///
/// Sources hand over the original of a retweet and the quoted post of a quote
/// when they know them; the store keeps each as a post of its own and a
/// retweet only as a reference to its original.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PostBundle {
    pub post: Post,
    pub retweeted: Option<Box<Post>>,
    pub quoted: Option<Box<Post>>,
}

impl PostBundle {
    pub fn single(post: Post) -> Self {
        PostBundle { post, retweeted: None, quoted: None }
    }
}

/// What a source emits: a post to store or a post to forget.
// Upserts are nearly every event; boxing them would cost an allocation per
// post on the hot path to shrink the rare delete.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PostEvent {
    Upsert(PostBundle),
    Delete { id: String },
}

/// A post read back from storage, with its references resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPost {
    pub post: Post,
    /// The original of a retweet, if stored.
    pub retweeted: Option<Box<Post>>,
    /// The quoted post of a quote, if stored.
    pub quoted: Option<Box<Post>>,
}

impl StoredPost {
    /// The post whose content queries look at: the original for a retweet.
    pub fn content(&self) -> &Post {
        match (&self.post.kind, &self.retweeted) {
            (Kind::Retweet, Some(original)) => original,
            _ => &self.post,
        }
    }
}

/// What one write to the post store changed: the event the roles downstream
/// of the processor receive (live columns, trends), and the content of the
/// processed-posts topic between processors and feed nodes.
#[derive(Debug, Default)]
pub struct Applied {
    /// Posts stored for the first time (re-deliveries are not here).
    pub inserted: Vec<StoredPost>,
    /// Posts already stored whose counts or content changed.
    pub updated: Vec<StoredPost>,
    /// Posts removed by a delete (including retweets of a deleted original).
    pub deleted: Vec<StoredPost>,
    /// Posts stored for the first time but already behind the retention
    /// horizon (an old original that a fresh retweet carries): kept only for
    /// what refers to them until the next sweep, and not in `inserted`,
    /// since no read will show them.
    pub stored_behind_horizon: u64,
    /// Some changes of a stored batch could not be handed on to the live
    /// feed (the processed topic refused them for good): every live column
    /// must resync, reading what it missed from the store.
    pub gap: bool,
}

/// The position of a post in a timeline: newest first by creation time, ties
/// broken by id. Opaque to clients (URL-safe base64 of the sort key).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    key: Vec<u8>,
}

/// A cursor string that is not one Deck made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed cursor")]
pub struct CursorError;

/// The longest post id Deck stores, in bytes. Every source's ids are far
/// shorter (X: decimal strings of ~19 digits; Bluesky: an AT-URI of a DID, a
/// collection and a record key, a few hundred bytes at most; Mastodon: a
/// URL). The stores refuse a post with a longer id, so every key stays far
/// below the engines' limits (fjall: 65,535 bytes per key).
pub const MAX_ID_BYTES: usize = 4_096;

/// `text` cut to at most `max_bytes`, never inside a UTF-8 character.
pub fn truncate_at_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Cursor {
    /// Sort key layout: 8 bytes big-endian time (ms, sign bit flipped so
    /// negative times sort first), 2 bytes id length, the id bytes. Comparing
    /// id length before bytes orders decimal ids (X, demo) numerically.
    ///
    /// An id longer than [`MAX_ID_BYTES`] (which no store keeps) is cut at a
    /// character boundary, so the cursor stays a valid one.
    pub fn new(created_ms: i64, id: &str) -> Self {
        let id = truncate_at_char_boundary(id, MAX_ID_BYTES);
        let mut key = Vec::with_capacity(10 + id.len());
        key.extend_from_slice(&((created_ms as u64) ^ (1 << 63)).to_be_bytes());
        // `id.len() <= MAX_ID_BYTES`, which fits in 16 bits.
        key.extend_from_slice(&(id.len() as u16).to_be_bytes());
        key.extend_from_slice(id.as_bytes());
        Cursor { key }
    }

    /// The smallest possible cursor at a time (all posts at `created_ms` sort after it).
    pub fn at_time(created_ms: i64) -> Self {
        let mut key = Vec::with_capacity(8);
        key.extend_from_slice(&((created_ms as u64) ^ (1 << 63)).to_be_bytes());
        Cursor { key }
    }

    /// A cursor from its sort key; refuses anything [`Cursor::new`] could not
    /// have made (wrong length, an id that is not UTF-8 or longer than
    /// [`MAX_ID_BYTES`]).
    pub fn from_bytes(key: &[u8]) -> Result<Self, CursorError> {
        if key.len() < 10 {
            return Err(CursorError);
        }
        let id_len = usize::from(u16::from_be_bytes([key[8], key[9]]));
        if id_len > MAX_ID_BYTES || key.len() != 10 + id_len || std::str::from_utf8(&key[10..]).is_err() {
            return Err(CursorError);
        }
        Ok(Cursor { key: key.to_vec() })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.key
    }

    pub fn created_ms(&self) -> i64 {
        let mut time = [0u8; 8];
        time.copy_from_slice(&self.key[..8]);
        (u64::from_be_bytes(time) ^ (1 << 63)) as i64
    }

    /// The post id inside the cursor (empty for [`Cursor::at_time`]).
    pub fn id(&self) -> &str {
        self.key.get(10..).and_then(|id| std::str::from_utf8(id).ok()).unwrap_or("")
    }

    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.key)
    }

    pub fn decode(text: &str) -> Result<Self, CursorError> {
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| CursorError)?;
        Cursor::from_bytes(&key)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_orders_by_time_then_numeric_id() {
        let older = Cursor::new(1_000, "99");
        let same_time_bigger_id = Cursor::new(1_000, "100");
        let newer = Cursor::new(1_001, "1");
        let before_epoch = Cursor::new(-5, "1");
        assert!(before_epoch < older);
        assert!(older < same_time_bigger_id);
        assert!(same_time_bigger_id < newer);
        assert!(Cursor::at_time(1_000) < older);
    }

    #[test]
    fn cursor_round_trips_through_text() {
        let cursor = Cursor::new(1_700_000_000_123, "at://did:plc:x/app.bsky.feed.post/3k");
        let decoded = Cursor::decode(&cursor.encode()).unwrap();
        assert_eq!(decoded, cursor);
        assert_eq!(decoded.created_ms(), 1_700_000_000_123);
        assert_eq!(decoded.id(), "at://did:plc:x/app.bsky.feed.post/3k");
    }

    #[test]
    fn malformed_cursors_are_refused() {
        assert_eq!(Cursor::decode("!!"), Err(CursorError));
        assert_eq!(Cursor::decode("AAAA"), Err(CursorError));
        // A length that does not match, an id that is not UTF-8, an id too long.
        let mut key = Cursor::new(1, "abc").as_bytes().to_vec();
        key.push(b'd');
        assert_eq!(Cursor::from_bytes(&key), Err(CursorError));
        let mut key = Cursor::new(1, "abc").as_bytes().to_vec();
        key[10] = 0xFF;
        assert_eq!(Cursor::from_bytes(&key), Err(CursorError));
        let mut key = Cursor::at_time(1).as_bytes().to_vec();
        key.extend_from_slice(&u16::MAX.to_be_bytes());
        key.extend(std::iter::repeat_n(b'a', usize::from(u16::MAX)));
        assert_eq!(Cursor::from_bytes(&key), Err(CursorError));
    }

    #[test]
    fn over_long_ids_are_cut_at_a_character_boundary() {
        // 'é' is two bytes: an odd cut would land inside one.
        let id = "é".repeat(MAX_ID_BYTES);
        let cursor = Cursor::new(5, &id);
        assert!(cursor.id().len() <= MAX_ID_BYTES);
        assert!(id.starts_with(cursor.id()));
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor.clone()));
        let odd = format!("a{}", "é".repeat(MAX_ID_BYTES));
        let cursor = Cursor::new(5, &odd);
        assert_eq!(cursor.id().len(), MAX_ID_BYTES - 1);
        assert_eq!(Cursor::from_bytes(cursor.as_bytes()), Ok(cursor.clone()));
    }
}

/// Where a raw record came from, for logs and error counts, and the position
/// a source resumes from once the record has been stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The source as configured, e.g. `replay:/data/posts.jsonl` or `jetstream`.
    pub source: String,
    /// Where in that source: a line number for a file, a sequence for a stream.
    pub position: u64,
    /// The resume point a source asks to be saved once this record is stored
    /// (Jetstream's `time_us`, Mastodon's last status id). `None` for sources
    /// that do not resume.
    pub checkpoint: Option<String>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.position)
    }
}

/// One unparsed message from a source, as it travels through the log.
///
/// Sources do not parse: processors do, so that parsing scales with the
/// processors and a malformed message is counted where it is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    /// Partition key: the post id where the source can see it cheaply, else
    /// the author (so one account's events stay in order), else the origin.
    pub key: String,
    pub origin: Origin,
    /// The message exactly as the source delivered it (one JSON document).
    pub payload: String,
    /// When Deck received the message (ms since the Unix epoch, the
    /// source's wall clock as it read it). A post never sorts later than
    /// this, and re-processing the record gives the same sort time. `None`
    /// in records written before Deck kept it: the processor's clock is
    /// used then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_ms: Option<i64>,
}
