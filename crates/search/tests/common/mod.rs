//! Builders for real-looking posts shared by the integration tests.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use model::{Author, Kind, Post, ReplyTo, Source, StoredPost};

pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// A plain post by `handle`, in `lang`, at 2024-06-13T00:00:00Z.
pub fn post(handle: &str, lang: &str, text: &str) -> Post {
    let author = Author {
        id: format!("id-{handle}"),
        handle: handle.to_string(),
        name: handle.to_uppercase(),
        avatar_url: None,
    };
    let id = format!("{handle}-{}", text.len());
    Post {
        lang: Some(lang.to_string()),
        ..Post::new(id, Source::X, author, text, Utc.with_ymd_and_hms(2024, 6, 13, 0, 0, 0).unwrap())
    }
}

pub fn with_hashtags(mut post: Post, hashtags: &[&str]) -> Post {
    post.hashtags = hashtags.iter().map(|h| h.to_string()).collect();
    post
}

pub fn with_mentions(mut post: Post, mentions: &[&str]) -> Post {
    post.mentions = mentions.iter().map(|m| m.to_string()).collect();
    post
}

pub fn reply(mut post: Post, to_handle: &str) -> Post {
    post.kind = Kind::Reply;
    post.reply_to = Some(ReplyTo {
        post_id: Some("1".into()),
        author_id: Some(format!("id-{to_handle}")),
        handle: Some(to_handle.to_string()),
    });
    post
}

pub fn stored(post: Post) -> StoredPost {
    StoredPost { post, retweeted: None, quoted: None }
}

/// `retweeter` retweets `original` (stored alongside, as the store resolves it).
pub fn retweet(retweeter: &str, original: Post) -> StoredPost {
    let mut rt = post(retweeter, original.lang.as_deref().unwrap_or("und"), "");
    rt.text = format!("RT @{}: {}", original.author.handle, original.text);
    rt.id = format!("rt-{}", original.id);
    rt.kind = Kind::Retweet;
    rt.retweeted_id = Some(original.id.clone());
    rt.mentions = std::iter::once(original.author.handle.clone()).chain(original.mentions.clone()).collect();
    rt.hashtags = original.hashtags.clone();
    rt.created_at = original.created_at + chrono::Duration::hours(1);
    StoredPost { post: rt, retweeted: Some(Box::new(original)), quoted: None }
}

/// The same retweet, but with the original missing from the store.
pub fn orphan_retweet(retweeter: &str, original: Post) -> StoredPost {
    let mut stored = retweet(retweeter, original);
    stored.retweeted = None;
    stored
}
