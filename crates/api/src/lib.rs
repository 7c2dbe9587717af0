//! Deck's wire types: the JSON that HTTP and WebSocket clients see.
//!
//! **Architecture invariant:** only this crate (and the gateway that serves
//! it) knows the wire format. Domain types convert into these at the edge.
//! `cargo test -p api` exports every type to `web/src/bindings/` with ts-rs,
//! so the TypeScript client cannot drift from the server.

pub mod account;
pub mod client;

use base64::Engine as _;
use model::{Kind, MediaKind, Source, StoredPost};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What a post is (`Post.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum PostKind {
    Post,
    Retweet,
    Quote,
    Reply,
}

impl From<Kind> for PostKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Post => PostKind::Post,
            Kind::Retweet => PostKind::Retweet,
            Kind::Quote => PostKind::Quote,
            Kind::Reply => PostKind::Reply,
        }
    }
}

/// The network a post came from (`Post.source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum PostSource {
    X,
    Bluesky,
    Mastodon,
    Demo,
}

impl From<Source> for PostSource {
    fn from(source: Source) -> Self {
        match source {
            Source::X => PostSource::X,
            Source::Bluesky => PostSource::Bluesky,
            Source::Mastodon => PostSource::Mastodon,
            Source::Demo => PostSource::Demo,
        }
    }
}

/// What a media item is (`Media.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum MediaType {
    Photo,
    Video,
    Gif,
}

impl From<MediaKind> for MediaType {
    fn from(kind: MediaKind) -> Self {
        match kind {
            MediaKind::Photo => MediaType::Photo,
            MediaKind::Video => MediaType::Video,
            MediaKind::Gif => MediaType::Gif,
        }
    }
}

/// The author of a post.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Author {
    pub id: String,
    pub handle: String,
    pub name: String,
    /// The profile picture, served by Deck (`/media/…`); null when unknown.
    pub avatar_url: Option<String>,
}

/// A picture or clip attached to a post (docs/api.md, "Media").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Media {
    pub kind: MediaType,
    /// A photo: its full-size image, served by Deck (`/media/…`). A video or
    /// GIF: where to play it (the file on its network, else the post's page);
    /// open it in a new tab, never load it into the page.
    pub url: String,
    /// A still to show in a timeline, served by Deck (`/media/…`): a photo's
    /// smaller rendition, a video's poster. Null for a clip without a poster.
    pub preview_url: Option<String>,
    /// Pixel size of the full item, where the source says (reserve the space).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Alt text written by the author.
    pub alt: Option<String>,
}

/// A link preview (docs/api.md, "Card").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Card {
    /// The page the card links to (outside Deck).
    pub url: String,
    pub title: String,
    pub description: String,
    /// The page's preview picture, served by Deck (`/media/…`).
    pub image_url: Option<String>,
}

/// Which picture of a stored post a `/media/{post}/{slot}` path names.
///
/// Image addresses in the API are paths on Deck's own origin that name a
/// stored post and a slot; the media proxy looks the post up and fetches the
/// address the source gave. Nothing else can be fetched through it, so it
/// cannot be used as an open proxy, and readers never contact the networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaSlot {
    /// `avatar`: the author's profile picture.
    Avatar,
    /// `N`: media item N's full-size image (photos only).
    Full(usize),
    /// `N.s`: media item N's still (preview or poster).
    Still(usize),
    /// `card`: the link card's picture.
    Card,
}

/// The path prefix of every proxied image.
pub const MEDIA_PATH_PREFIX: &str = "/media/";

impl MediaSlot {
    fn as_path_part(self) -> String {
        match self {
            MediaSlot::Avatar => "avatar".to_owned(),
            MediaSlot::Full(idx) => idx.to_string(),
            MediaSlot::Still(idx) => format!("{idx}.s"),
            MediaSlot::Card => "card".to_owned(),
        }
    }

    /// Parses the slot part of a media path.
    pub fn parse(part: &str) -> Option<MediaSlot> {
        let index = |digits: &str| -> Option<usize> {
            if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()
        };
        match part {
            "avatar" => Some(MediaSlot::Avatar),
            "card" => Some(MediaSlot::Card),
            _ => match part.strip_suffix(".s") {
                Some(digits) => index(digits).map(MediaSlot::Still),
                None => index(part).map(MediaSlot::Full),
            },
        }
    }

    /// The source's address of this slot's picture in a stored post.
    pub fn source_url(self, post: &model::Post) -> Option<&str> {
        match self {
            MediaSlot::Avatar => post.author.avatar_url.as_deref(),
            MediaSlot::Full(idx) => {
                let media = post.media.get(idx)?;
                (media.kind == MediaKind::Photo).then_some(media.url.as_deref()).flatten()
            }
            MediaSlot::Still(idx) => post.media.get(idx)?.still_url(),
            MediaSlot::Card => post.card.as_ref()?.image_url.as_deref(),
        }
    }
}

/// `/media/{post id, base64url}/{slot}`: the Deck-origin path of a picture.
pub fn media_path(post_id: &str, slot: MediaSlot) -> String {
    format!(
        "{MEDIA_PATH_PREFIX}{}/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(post_id),
        slot.as_path_part()
    )
}

/// Splits a media path (after `/media/`) into the post id and the slot.
pub fn parse_media_path(rest: &str) -> Option<(String, MediaSlot)> {
    let (post, slot) = rest.split_once('/')?;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(post).ok()?;
    Some((String::from_utf8(id).ok()?, MediaSlot::parse(slot)?))
}

/// The post a reply answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ReplyTo {
    pub post_id: Option<String>,
    pub handle: Option<String>,
}

/// A post as clients see it (CONTRACT.md, "Post (JSON)").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Post {
    pub id: String,
    pub kind: PostKind,
    pub text: String,
    pub lang: Option<String>,
    /// RFC 3339: the time Deck orders the post by, never later than when
    /// it was received.
    pub created_at: String,
    /// RFC 3339: the time the source claimed, present only where it differs
    /// from `created_at` (a post dated after its arrival).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub claimed_at: Option<String>,
    pub author: Author,
    pub hashtags: Vec<String>,
    pub mentions: Vec<String>,
    pub cashtags: Vec<String>,
    pub urls: Vec<String>,
    #[ts(type = "number")]
    pub retweet_count: u64,
    #[ts(type = "number")]
    pub like_count: u64,
    #[ts(type = "number")]
    pub reply_count: u64,
    #[ts(type = "number")]
    pub quote_count: u64,
    pub has_media: bool,
    /// Pictures and clips in the source's order. Images are Deck-origin
    /// `/media/…` paths. A retweet without media of its own shows its original's.
    pub media: Vec<Media>,
    /// The link preview, where the source gives one.
    pub card: Option<Card>,
    /// The source marks the media sensitive (blur until the reader asks).
    pub sensitive: bool,
    /// The post on its own network; null where there is none (demo posts).
    pub permalink: Option<String>,
    pub source: PostSource,

    pub reply_to: Option<ReplyTo>,
    /// A retweet's original, where known.
    pub retweeted: Option<Box<Post>>,
    /// A quote's quoted post, where known.
    pub quoted: Option<Box<Post>>,
    /// This post's position in every timeline (same string as `next`/`before`).
    pub cursor: String,
}

impl Post {
    fn from_domain(post: &model::Post) -> Post {
        Post {
            id: post.id.clone(),
            kind: post.kind.into(),
            text: post.text.clone(),
            lang: post.lang.clone(),
            created_at: post.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            claimed_at: post.claimed_at.map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            author: Author {
                id: post.author.id.clone(),
                handle: post.author.handle.clone(),
                name: post.author.name.clone(),
                avatar_url: post.author.avatar_url.as_ref().map(|_| media_path(&post.id, MediaSlot::Avatar)),
            },
            hashtags: post.hashtags.clone(),
            mentions: post.mentions.clone(),
            cashtags: post.cashtags.clone(),
            urls: post.urls.clone(),
            retweet_count: post.counts.retweets,
            like_count: post.counts.likes,
            reply_count: post.counts.replies,
            quote_count: post.counts.quotes,
            has_media: post.has_media,
            media: post
                .media
                .iter()
                .enumerate()
                .map(|(idx, media)| {
                    let still = media.still_url().map(|_| media_path(&post.id, MediaSlot::Still(idx)));
                    let url = match media.kind {
                        MediaKind::Photo if media.url.is_some() => media_path(&post.id, MediaSlot::Full(idx)),
                        MediaKind::Photo => still.clone().unwrap_or_default(),
                        MediaKind::Video | MediaKind::Gif => media
                            .url
                            .clone()
                            .or_else(|| post.permalink.clone())
                            .or_else(|| still.clone())
                            .unwrap_or_default(),
                    };
                    Media {
                        kind: media.kind.into(),
                        url,
                        preview_url: still,
                        width: media.width,
                        height: media.height,
                        alt: media.alt.clone(),
                    }
                })
                .collect(),
            card: post.card.as_ref().map(|card| Card {
                url: card.url.clone(),
                title: card.title.clone(),
                description: card.description.clone(),
                image_url: card.image_url.as_ref().map(|_| media_path(&post.id, MediaSlot::Card)),
            }),
            sensitive: post.sensitive,
            permalink: post.permalink.clone(),
            source: post.source.into(),
            reply_to: post
                .reply_to
                .as_ref()
                .map(|reply_to| ReplyTo { post_id: reply_to.post_id.clone(), handle: reply_to.handle.clone() }),
            retweeted: None,
            quoted: None,
            cursor: post.cursor().encode(),
        }
    }
}

impl From<&StoredPost> for Post {
    fn from(stored: &StoredPost) -> Post {
        let mut post = Post::from_domain(&stored.post);
        post.retweeted = stored.retweeted.as_deref().map(|original| Box::new(Post::from_domain(original)));
        post.quoted = stored.quoted.as_deref().map(|quoted| Box::new(Post::from_domain(quoted)));
        // A retweet shows its original's live counts: that is what people retweet.
        if stored.post.kind == Kind::Retweet
            && let Some(original) = &stored.retweeted
        {
            post.retweet_count = original.counts.retweets;
            post.like_count = original.counts.likes;
        }
        // A retweet's content is its original's: so are its pictures.
        if let Some(original) = &post.retweeted {
            if post.media.is_empty() {
                post.media = original.media.clone();
            }
            if post.card.is_none() {
                post.card = original.card.clone();
            }
            post.sensitive |= original.sensitive;
        }
        post
    }
}

/// `GET /api/timeline` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TimelineResponse {
    pub posts: Vec<Post>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    pub next: Option<String>,
}

/// Every error answer of the HTTP API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ErrorResponse {
    pub error: String,
    /// A short machine-readable code (`bad_query`, `bad_cursor`, `rate_limited`, …).
    pub code: Option<String>,
    /// For a bad query: the 0-based character position of the mistake.
    pub position: Option<usize>,
    /// For bad input: the field that caused it.
    pub field: Option<String>,
}

/// One row of the hashtag ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct HashtagCount {
    pub tag: String,
    #[ts(type = "number")]
    pub count: u64,
}

/// One row of the trending-by-velocity ranking, in numbers a person can
/// read (docs/trends.md, "Reading a trending row"): "+120 accounts · 8×
/// usual", or "new".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TrendingTag {
    pub tag: String,
    /// What the list is ranked by: accounts above the usual level (`added`, unrounded).
    pub score: f64,
    /// Distinct accounts that used the tag in the window.
    #[ts(type = "number")]
    pub accounts: u64,
    /// Accounts expected from the tag's own baseline (unrounded).
    pub expected: f64,
    /// The usual number of accounts in a window this long, to one decimal.
    pub usual: f64,
    /// Accounts above the usual level: `accounts − max(usual, 1)`, rounded.
    #[ts(type = "number")]
    pub added: u64,
    /// `accounts / max(usual, 1)` to one decimal; null when the tag is new.
    pub ratio: Option<f64>,
    /// Nobody used the tag in the baseline: it is new, not "N× usual".
    pub new: bool,
}

impl TrendingTag {
    /// The row for a tag used by `accounts` accounts in the window against
    /// `expected` from its baseline (the trends crate's ranking).
    pub fn from_counts(tag: String, score: f64, accounts: u64, expected: f64) -> TrendingTag {
        let floored = expected.max(1.0);
        let tenths = |value: f64| (value * 10.0).round() / 10.0;
        let new = expected <= 0.0;
        TrendingTag {
            tag,
            score,
            accounts,
            expected,
            usual: tenths(expected),
            added: (accounts as f64 - floored).max(0.0).round() as u64,
            ratio: (!new).then(|| tenths(accounts as f64 / floored)),
            new,
        }
    }
}

/// One row of the most-retweeted ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RetweetedPost {
    pub post: Post,
    #[ts(type = "number")]
    pub count: u64,
}

/// `GET /api/trends` answer, and the payload of a `trends` frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TrendsResponse {
    /// `5m` | `1h` | `24h`.
    pub window: String,
    /// RFC 3339 end of the window (the newest post seen), or null before any post.
    pub ends_at: Option<String>,
    pub hashtags: Vec<HashtagCount>,
    pub trending: Vec<TrendingTag>,
    pub top_retweeted: Vec<RetweetedPost>,
}

/// A message from a WebSocket client (docs/protocol.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum ClientMessage {
    /// Start a column. With `since`, stored posts newer than that cursor come first.
    Subscribe {
        column: String,
        q: String,
        #[ts(optional = nullable)]
        since: Option<String>,
    },
    Unsubscribe {
        column: String,
    },
    /// Receive ranking updates for a window (at most one a second, only on change).
    SubscribeTrends {
        #[ts(optional = nullable)]
        window: Option<String>,
    },
    UnsubscribeTrends,
    Ping,
}

/// A message from the server to a WebSocket client (docs/protocol.md).
// Built once per frame and serialized at once; never stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum ServerMessage {
    /// A column was accepted.
    Subscribed {
        column: String,
    },
    /// A post that matches a column, as it is stored (or from catch-up).
    Post {
        column: String,
        post: Post,
        cursor: String,
    },
    /// Catch-up after `since` is complete; live posts follow.
    CaughtUp {
        column: String,
    },
    /// A post was deleted: remove it from every column.
    Delete {
        id: String,
    },
    /// Live counts of a post changed.
    Counts {
        id: String,
        #[ts(type = "number")]
        retweet_count: u64,
        #[ts(type = "number")]
        like_count: u64,
    },
    /// The server dropped this column's backlog: reload it from history.
    Resync {
        column: String,
    },
    /// A new ranking for a subscribed trends window.
    Trends {
        trends: TrendsResponse,
    },
    /// Something was wrong with a client message; the socket stays open.
    Error {
        code: String,
        message: String,

        column: Option<String>,

        position: Option<usize>,
    },
    Pong,
}

/// A `post` frame ([`ServerMessage::Post`]) whose post is already
/// serialized: the fan-out serializes each post once ([`PostFrame::post_json`]),
/// shares it between every column it goes to, and writes the frame with the
/// column id only when it is sent. The same JSON as `ServerMessage::Post`
/// (`feed`'s tests compare them).
#[derive(Clone, Copy, Debug)]
pub struct PostFrame<'a> {
    pub column: &'a str,
    /// The post, serialized by [`PostFrame::post_json`].
    pub post_json: &'a str,
    pub cursor: &'a str,
}

impl PostFrame<'_> {
    /// The post's JSON, serialized once and shared.
    pub fn post_json(post: &Post) -> serde_json::Result<String> {
        serde_json::to_string(post)
    }

    /// The frame's text: `{"type":"post","column":…,"post":…,"cursor":…}`,
    /// the field order of `ServerMessage::Post`.
    pub fn to_text(&self) -> String {
        let mut text = Vec::with_capacity(self.post_json.len() + self.column.len() + self.cursor.len() + 64);
        text.extend_from_slice(br#"{"type":"post","column":"#);
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut text, self.column);
        text.extend_from_slice(br#","post":"#);
        text.extend_from_slice(self.post_json.as_bytes());
        text.extend_from_slice(br#","cursor":"#);
        let _ = serde_json::to_writer(&mut text, self.cursor);
        text.push(b'}');
        String::from_utf8(text).unwrap_or_default()
    }
}

/// `POST /api/stream/ticket` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TicketResponse {
    pub ticket: String,
    #[ts(type = "number")]
    pub expires_in: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of docs/trends.md, "Reading a trending row".
    #[test]
    fn trending_rows_read_as_documented() {
        let rising = TrendingTag::from_counts("BTS".into(), 119.0, 135, 15.0);
        assert_eq!((rising.added, rising.ratio, rising.usual, rising.new), (120, Some(9.0), 15.0, false));
        let new = TrendingTag::from_counts("Comeback".into(), 49.0, 50, 0.0);
        assert_eq!((new.added, new.ratio, new.usual, new.new), (49, None, 0.0, true));
        let rare = TrendingTag::from_counts("고마워".into(), 3.5, 4, 0.25);
        assert_eq!((rare.added, rare.ratio, rare.usual, rare.new), (3, Some(4.0), 0.3, false));
        let json = serde_json::to_value(&rising).unwrap();
        for field in ["tag", "accounts", "usual", "added", "ratio", "new"] {
            assert!(json.get(field).is_some(), "{field}");
        }
    }

    #[test]
    fn client_messages_use_the_contract_names() {
        let subscribe: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","column":"c1","q":"BTS","since":"abc"}"#).unwrap();
        assert_eq!(
            subscribe,
            ClientMessage::Subscribe { column: "c1".into(), q: "BTS".into(), since: Some("abc".into()) }
        );
        let resync = serde_json::to_value(ServerMessage::Resync { column: "c1".into() }).unwrap();
        assert_eq!(resync, serde_json::json!({"type": "resync", "column": "c1"}));
    }

    #[test]
    fn a_shared_post_frame_has_the_shape_of_the_post_message() {
        let post = serde_json::json!({"id": "1", "text": "BTS \"보라해\" 💜", "author": {"handle": "army"}});
        let post_json = post.to_string();
        let text = PostFrame { column: "c\"1", post_json: &post_json, cursor: "abc" }.to_text();
        assert!(text.starts_with(r#"{"type":"post","column":"c\"1","post":{"#), "{text}");
        let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(frame, serde_json::json!({"type": "post", "column": "c\"1", "post": post, "cursor": "abc"}));
    }
}
