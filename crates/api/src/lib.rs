//! Deck's wire types: the JSON that HTTP and WebSocket clients see.
//!
//! **Architecture invariant:** only this crate (and the gateway that serves
//! it) knows the wire format. Domain types convert into these at the edge.
//! `cargo test -p api` exports every type to `web/src/bindings/` with ts-rs,
//! so the TypeScript client cannot drift from the server.

use model::{Kind, StoredPost};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The author of a post.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Author {
    pub id: String,
    pub handle: String,
    pub name: String,
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
    /// `post` | `retweet` | `quote` | `reply`.
    pub kind: String,
    pub text: String,
    pub lang: Option<String>,
    /// RFC 3339.
    pub created_at: String,
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
    /// `x` | `bluesky` | `mastodon` | `demo`.
    pub source: String,

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
            kind: post.kind.as_str().to_owned(),
            text: post.text.clone(),
            lang: post.lang.clone(),
            created_at: post.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            author: Author {
                id: post.author.id.clone(),
                handle: post.author.handle.clone(),
                name: post.author.name.clone(),
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
            source: post.source.as_str().to_owned(),
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

/// One row of the trending-by-velocity ranking.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TrendingTag {
    pub tag: String,
    pub score: f64,
    /// Distinct accounts that used the tag in the window.
    #[ts(type = "number")]
    pub accounts: u64,
    /// Accounts expected from the tag's own baseline.
    pub expected: f64,
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
