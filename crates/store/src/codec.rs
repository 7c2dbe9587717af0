//! How a [`Post`] is written into both stores' post bodies (the embedded
//! `posts` partition and Cassandra's `posts.body` blob): postcard behind a
//! two-byte header, so a new layout can be told from an old one.
//!
//! Postcard is not self-describing: a field added to `Post` changes the
//! layout. So a body starts with `0x00` and a layout version; the first
//! layout (before media, cards and avatars) had no header, and since its
//! first byte is the length of a non-empty id it never starts with `0x00`.
//! Bodies in that layout stay readable (they decode to posts without
//! pictures). **Adding a field to `Post` means a new [`LAYOUT`] and a
//! converter from the previous one here**; the test below pins both.

use chrono::{DateTime, Utc};
use model::{Counts, Kind, Post, ReplyTo, Source};
use serde::{Deserialize, Serialize};

/// The layout version written now: 1 added avatars, media, cards,
/// `sensitive` and `permalink`.
pub const LAYOUT: u8 = 1;

pub(crate) fn encode(post: &Post) -> Result<Vec<u8>, postcard::Error> {
    let mut body = vec![0x00, LAYOUT];
    postcard::to_io(post, &mut body)?;
    Ok(body)
}

/// A body in any layout this version knows, else a reason for the caller's
/// corrupt-record error.
pub(crate) fn decode(body: &[u8]) -> Result<Post, String> {
    match body {
        [0x00, LAYOUT, rest @ ..] => postcard::from_bytes(rest).map_err(|error| error.to_string()),
        [0x00, version, ..] => Err(format!("post layout {version} is newer than this Deck reads ({LAYOUT})")),
        _ => postcard::from_bytes::<LayoutZero>(body).map(Post::from).map_err(|error| error.to_string()),
    }
}

/// The first layout of a post (no header).
#[derive(Serialize, Deserialize)]
struct LayoutZero {
    id: String,
    source: Source,
    kind: Kind,
    author: AuthorZero,
    text: String,
    lang: Option<String>,
    created_at: DateTime<Utc>,
    claimed_at: Option<DateTime<Utc>>,
    retweeted_id: Option<String>,
    quoted_id: Option<String>,
    reply_to: Option<ReplyTo>,
    hashtags: Vec<String>,
    mentions: Vec<String>,
    urls: Vec<String>,
    cashtags: Vec<String>,
    has_media: bool,
    counts: Counts,
}

#[derive(Serialize, Deserialize)]
struct AuthorZero {
    id: String,
    handle: String,
    name: String,
}

impl From<LayoutZero> for Post {
    fn from(old: LayoutZero) -> Post {
        Post {
            id: old.id,
            source: old.source,
            kind: old.kind,
            author: model::Author {
                id: old.author.id,
                handle: old.author.handle,
                name: old.author.name,
                avatar_url: None,
            },
            text: old.text,
            lang: old.lang,
            created_at: old.created_at,
            claimed_at: old.claimed_at,
            retweeted_id: old.retweeted_id,
            quoted_id: old.quoted_id,
            reply_to: old.reply_to,
            hashtags: old.hashtags,
            mentions: old.mentions,
            urls: old.urls,
            cashtags: old.cashtags,
            has_media: old.has_media,
            counts: old.counts,
            media: Vec::new(),
            card: None,
            sensitive: false,
            permalink: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use model::{Card, Media, MediaKind};

    fn old_post() -> LayoutZero {
        LayoutZero {
            id: "1440717092546756616".into(),
            source: Source::X,
            kind: Kind::Post,
            author: AuthorZero { id: "7".into(), handle: "army".into(), name: "Army".into() },
            text: "hello #BTS".into(),
            lang: Some("en".into()),
            created_at: Utc.timestamp_opt(1_632_300_000, 0).single().unwrap_or_default(),
            claimed_at: None,
            retweeted_id: None,
            quoted_id: None,
            reply_to: None,
            hashtags: vec!["BTS".into()],
            mentions: Vec::new(),
            urls: Vec::new(),
            cashtags: Vec::new(),
            has_media: true,
            counts: Counts { retweets: 3, likes: 4, replies: 0, quotes: 0 },
        }
    }

    #[test]
    fn bodies_written_before_media_still_read() {
        let body = postcard::to_stdvec(&old_post()).unwrap();
        let post = decode(&body).unwrap();
        assert_eq!(post.id, "1440717092546756616");
        assert_eq!(post.author.name, "Army");
        assert_eq!(post.counts.likes, 4);
        assert!(post.has_media && post.media.is_empty() && post.permalink.is_none());
    }

    #[test]
    fn the_current_layout_round_trips_and_a_newer_one_is_refused() {
        let mut post = decode(&postcard::to_stdvec(&old_post()).unwrap()).unwrap();
        post.author.avatar_url = Some("https://pbs.twimg.com/profile_images/1/a_normal.jpg".into());
        post.media.push(Media {
            kind: MediaKind::Photo,
            url: Some("https://pbs.twimg.com/media/E_3PMNiUUAkMapz.jpg".into()),
            preview_url: None,
            width: Some(800),
            height: Some(800),
            alt: Some("a cat".into()),
        });
        post.card = Some(Card { url: "https://example.com/".into(), ..Card::default() });
        post.sensitive = true;
        post.permalink = Some("https://x.com/army/status/1440717092546756616".into());
        let body = encode(&post).unwrap();
        assert_eq!(&body[..2], &[0x00, LAYOUT]);
        assert_eq!(decode(&body).unwrap(), post);
        let mut newer = body.clone();
        newer[1] = LAYOUT + 1;
        assert!(decode(&newer).unwrap_err().contains("newer"));
    }
}
