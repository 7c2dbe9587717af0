//! X (Twitter) payloads: API v2 stream messages and response pages, API
//! v1.1 statuses and delete notices.
//!
//! Both field-name generations are accepted: `referenced_tweets` /
//! `retweet_count` (the v2 data dictionary) and `referenced_posts` /
//! `repost_count` (X's current documentation). Ids are always read as
//! strings (`id_str` in v1.1: the numeric `id` loses precision in JSON).

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use model::{Author, Counts, Kind, Post, PostBundle, PostEvent, ReplyTo, Source};
use serde_json::Value;

use crate::{ParseError, count, str_field};

/// Milliseconds since the epoch at X's snowflake epoch.
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

/// A snowflake id's creation time, for payloads that carry no `created_at`.
fn snowflake_time(id: &str) -> Option<DateTime<Utc>> {
    let id: u64 = id.parse().ok()?;
    Utc.timestamp_millis_opt(SNOWFLAKE_EPOCH_MS + (id >> 22) as i64).single()
}

fn strings(values: &Value, field: &str) -> Vec<String> {
    values
        .as_array()
        .map(|entries| entries.iter().filter_map(|entry| entry[field].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// One v2 message: a stream line (`data` is one tweet) or a response page
/// (`data` is an array). `errors` alone (operational notices) carry no posts.
pub(crate) fn v2_message(message: &Value) -> Result<Vec<PostEvent>, ParseError> {
    let tweets: Vec<&Value> = match &message["data"] {
        Value::Array(tweets) => tweets.iter().collect(),
        Value::Object(_) => vec![&message["data"]],
        Value::Null => return Ok(Vec::new()),
        _ => return Err(ParseError::Field("data")),
    };
    let users: HashMap<&str, &Value> = message["includes"]["users"]
        .as_array()
        .map(|users| users.iter().filter_map(|user| Some((user["id"].as_str()?, user))).collect())
        .unwrap_or_default();
    let included: HashMap<&str, &Value> = message["includes"]["tweets"]
        .as_array()
        .map(|tweets| tweets.iter().filter_map(|tweet| Some((tweet["id"].as_str()?, tweet))).collect())
        .unwrap_or_default();
    let mut events = Vec::with_capacity(tweets.len());
    for tweet in tweets {
        let post = v2_tweet(tweet, &users)?;
        let embedded = |id: &Option<String>| -> Result<Option<Box<Post>>, ParseError> {
            match id.as_deref().and_then(|id| included.get(id)) {
                Some(tweet) => Ok(Some(Box::new(v2_tweet(tweet, &users)?))),
                None => Ok(None),
            }
        };
        let retweeted = embedded(&post.retweeted_id)?;
        let quoted = embedded(&post.quoted_id)?;
        events.push(PostEvent::Upsert(PostBundle { post, retweeted, quoted }));
    }
    Ok(events)
}

fn v2_tweet(tweet: &Value, users: &HashMap<&str, &Value>) -> Result<Post, ParseError> {
    let id = str_field(tweet, "id")?.to_owned();
    // Long posts carry their whole text in `note_tweet`.
    let text = tweet["note_tweet"]["text"].as_str().or_else(|| tweet["text"].as_str()).ok_or(ParseError::Field("text"))?;
    let created_at = match tweet["created_at"].as_str() {
        Some(created_at) => {
            DateTime::parse_from_rfc3339(created_at).map_err(|_| ParseError::Field("created_at"))?.with_timezone(&Utc)
        }
        None => snowflake_time(&id).ok_or(ParseError::Field("created_at"))?,
    };
    let author_id = tweet["author_id"].as_str().unwrap_or_default();
    let author = match users.get(author_id) {
        Some(user) => Author {
            id: author_id.to_owned(),
            handle: user["username"].as_str().unwrap_or(author_id).to_owned(),
            name: user["name"].as_str().unwrap_or_default().to_owned(),
        },
        None => Author { id: author_id.to_owned(), handle: author_id.to_owned(), name: String::new() },
    };
    let references = tweet.get("referenced_tweets").or_else(|| tweet.get("referenced_posts"));
    let mut kind = Kind::Post;
    let (mut retweeted_id, mut quoted_id, mut replied_to) = (None, None, None);
    for reference in references.and_then(Value::as_array).into_iter().flatten() {
        let referenced = reference["id"].as_str().map(str::to_owned);
        match reference["type"].as_str() {
            Some("retweeted" | "reposted") => retweeted_id = referenced,
            Some("quoted") => quoted_id = referenced,
            Some("replied_to") => replied_to = referenced,
            _ => {}
        }
    }
    if retweeted_id.is_some() {
        kind = Kind::Retweet;
    } else if replied_to.is_some() || tweet["in_reply_to_user_id"].is_string() {
        kind = Kind::Reply;
    } else if quoted_id.is_some() {
        kind = Kind::Quote;
    }
    let reply_to = (kind == Kind::Reply).then(|| {
        let user_id = tweet["in_reply_to_user_id"].as_str();
        ReplyTo {
            post_id: replied_to,
            author_id: user_id.map(str::to_owned),
            handle: user_id.and_then(|id| users.get(id)).and_then(|user| user["username"].as_str()).map(str::to_owned),
        }
    });
    let entities = &tweet["entities"];
    let urls = entities["urls"]
        .as_array()
        .map(|urls| {
            urls.iter()
                .filter_map(|url| url["expanded_url"].as_str().or_else(|| url["url"].as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let metrics = &tweet["public_metrics"];
    Ok(Post {
        id,
        source: Source::X,
        kind,
        author,
        text: text.to_owned(),
        lang: tweet["lang"].as_str().map(str::to_owned),
        created_at,
        retweeted_id,
        quoted_id,
        reply_to,
        hashtags: strings(&entities["hashtags"], "tag"),
        mentions: strings(&entities["mentions"], "username"),
        urls,
        cashtags: strings(&entities["cashtags"], "tag"),
        has_media: tweet["attachments"]["media_keys"].as_array().is_some_and(|keys| !keys.is_empty()),
        counts: Counts {
            retweets: count(metrics.get("retweet_count").or_else(|| metrics.get("repost_count")).unwrap_or(&Value::Null)),
            likes: count(&metrics["like_count"]),
            replies: count(&metrics["reply_count"]),
            quotes: count(&metrics["quote_count"]),
        },
    })
}

/// v1.1 statuses (a stream line, a timeline array, or a search page's `statuses`).
pub(crate) fn v1_statuses(statuses: &[Value]) -> Result<Vec<PostEvent>, ParseError> {
    statuses
        .iter()
        .map(|status| {
            let post = v1_status(status)?;
            let retweeted = match &status["retweeted_status"] {
                Value::Object(_) => Some(Box::new(v1_status(&status["retweeted_status"])?)),
                _ => None,
            };
            let quoted = match &status["quoted_status"] {
                Value::Object(_) => Some(Box::new(v1_status(&status["quoted_status"])?)),
                _ => None,
            };
            Ok(PostEvent::Upsert(PostBundle { post, retweeted, quoted }))
        })
        .collect()
}

fn v1_status(status: &Value) -> Result<Post, ParseError> {
    let id = str_field(status, "id_str")?.to_owned();
    let extended = &status["extended_tweet"];
    let text = extended["full_text"]
        .as_str()
        .or_else(|| status["full_text"].as_str())
        .or_else(|| status["text"].as_str())
        .ok_or(ParseError::Field("text"))?;
    let created_at = status["created_at"]
        .as_str()
        .and_then(|created_at| DateTime::parse_from_str(created_at, "%a %b %d %H:%M:%S %z %Y").ok())
        .map(|time| time.with_timezone(&Utc))
        .or_else(|| snowflake_time(&id))
        .ok_or(ParseError::Field("created_at"))?;
    let user = &status["user"];
    let author = Author {
        id: str_field(user, "id_str")?.to_owned(),
        handle: user["screen_name"].as_str().unwrap_or_default().to_owned(),
        name: user["name"].as_str().unwrap_or_default().to_owned(),
    };
    let entities = if extended["entities"].is_object() { &extended["entities"] } else { &status["entities"] };
    let extended_entities =
        if extended["extended_entities"].is_object() { &extended["extended_entities"] } else { &status["extended_entities"] };
    let has_media = [&extended_entities["media"], &entities["media"]]
        .iter()
        .any(|media| media.as_array().is_some_and(|media| !media.is_empty()));
    let retweeted_id = status["retweeted_status"]["id_str"].as_str().map(str::to_owned);
    let quoted_id = status["quoted_status_id_str"]
        .as_str()
        .or_else(|| status["quoted_status"]["id_str"].as_str())
        .map(str::to_owned);
    let reply_post = status["in_reply_to_status_id_str"].as_str().map(str::to_owned);
    let reply_user = status["in_reply_to_user_id_str"].as_str().map(str::to_owned);
    let kind = if retweeted_id.is_some() {
        Kind::Retweet
    } else if reply_post.is_some() || reply_user.is_some() {
        Kind::Reply
    } else if quoted_id.is_some() {
        Kind::Quote
    } else {
        Kind::Post
    };
    let reply_to = (kind == Kind::Reply).then(|| ReplyTo {
        post_id: reply_post,
        author_id: reply_user,
        handle: status["in_reply_to_screen_name"].as_str().map(str::to_owned),
    });
    let urls = entities["urls"]
        .as_array()
        .map(|urls| {
            urls.iter()
                .filter_map(|url| url["expanded_url"].as_str().or_else(|| url["url"].as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Post {
        id,
        source: Source::X,
        kind,
        author,
        text: text.to_owned(),
        lang: status["lang"].as_str().map(str::to_owned),
        created_at,
        retweeted_id,
        quoted_id,
        reply_to,
        hashtags: strings(&entities["hashtags"], "text"),
        mentions: strings(&entities["user_mentions"], "screen_name"),
        urls,
        cashtags: strings(&entities["symbols"], "text"),
        has_media,
        counts: Counts {
            retweets: count(&status["retweet_count"]),
            likes: count(&status["favorite_count"]),
            replies: count(&status["reply_count"]),
            quotes: count(&status["quote_count"]),
        },
    })
}

/// `{"delete":{"status":{"id_str":…}}}`.
pub(crate) fn v1_delete(notice: &Value) -> Result<Vec<PostEvent>, ParseError> {
    let status = &notice["delete"]["status"];
    let id = status["id_str"].as_str().ok_or(ParseError::Field("delete.status.id_str"))?;
    Ok(vec![PostEvent::Delete { id: id.to_owned() }])
}
