//! X (Twitter) payloads: API v2 stream messages and response pages, API
//! v1.1 statuses, search pages and delete notices.
//!
//! Both field-name generations are accepted: `referenced_tweets` /
//! `retweet_count` (the v2 data dictionary) and `referenced_posts` /
//! `repost_count` (X's newer wording), with `retweeted` or `reposted` as the
//! reference type. Ids are always read as strings (`id_str` in v1.1: the
//! numeric `id` loses precision as a JSON number).
//!
//! The wire structs borrow from the payload (`Cow` is borrowed unless the
//! JSON string has escapes), so a message costs one pass and only the
//! strings that end up in a [`Post`] are copied.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use model::{Author, Counts, Kind, Post, PostBundle, PostEvent, ReplyTo, Source};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::{Count, ParseError, rfc3339};

/// Milliseconds since the Unix epoch at X's snowflake epoch.
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

/// A snowflake id's creation time, for payloads that carry no `created_at`.
fn snowflake_time(id: &str) -> Option<DateTime<Utc>> {
    let id: u64 = id.parse().ok()?;
    let since_epoch = i64::try_from(id >> 22).ok()?;
    Utc.timestamp_millis_opt(SNOWFLAKE_EPOCH_MS + since_epoch).single()
}

// ---------------------------------------------------------------- API v2 --

#[derive(Deserialize)]
struct V2Tweet<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    /// Long posts carry their whole text here; `text` is then cut.
    #[serde(borrow)]
    note_tweet: Option<NoteTweet<'a>>,
    #[serde(borrow)]
    lang: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    author_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    referenced_tweets: Option<Vec<V2Reference<'a>>>,
    #[serde(borrow)]
    referenced_posts: Option<Vec<V2Reference<'a>>>,
    #[serde(borrow)]
    in_reply_to_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    entities: Option<V2Entities<'a>>,
    attachments: Option<V2Attachments>,
    public_metrics: Option<V2Metrics>,
}

#[derive(Deserialize)]
struct NoteTweet<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    entities: Option<V2Entities<'a>>,
}

#[derive(Deserialize)]
struct V2Reference<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
struct V2Entities<'a> {
    #[serde(borrow, default)]
    hashtags: Vec<V2Tag<'a>>,
    #[serde(borrow, default)]
    mentions: Vec<V2Mention<'a>>,
    #[serde(borrow, default)]
    urls: Vec<UrlEntity<'a>>,
    #[serde(borrow, default)]
    cashtags: Vec<V2Tag<'a>>,
}

#[derive(Deserialize)]
struct V2Tag<'a> {
    #[serde(borrow)]
    tag: Cow<'a, str>,
}

#[derive(Deserialize)]
struct V2Mention<'a> {
    #[serde(borrow)]
    username: Cow<'a, str>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

/// A URL entity (the same shape in v1.1 and v2).
#[derive(Deserialize)]
struct UrlEntity<'a> {
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    expanded_url: Option<Cow<'a, str>>,
}

impl UrlEntity<'_> {
    fn best(&self) -> Option<String> {
        self.expanded_url.as_deref().filter(|url| !url.is_empty()).or(self.url.as_deref()).map(str::to_owned)
    }
}

#[derive(Deserialize)]
struct V2Attachments {
    #[serde(default)]
    media_keys: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct V2Metrics {
    retweet_count: Option<Count>,
    repost_count: Option<Count>,
    #[serde(default)]
    like_count: Count,
    #[serde(default)]
    reply_count: Count,
    #[serde(default)]
    quote_count: Count,
}

#[derive(Deserialize, Default)]
struct V2Includes<'a> {
    #[serde(borrow, default)]
    users: Vec<V2User<'a>>,
    #[serde(borrow, default)]
    tweets: Vec<V2Tweet<'a>>,
}

#[derive(Deserialize)]
struct V2User<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

/// One v2 message: a stream line (`data` is one post) or a response page
/// (`data` is an array). Without `data` (operational `errors` notices)
/// there are no posts, and that is not an error.
pub(crate) fn v2_message(data: Option<&RawValue>, includes: Option<&RawValue>) -> Result<Vec<PostEvent>, ParseError> {
    let Some(data) = data else {
        return Ok(Vec::new());
    };
    let tweets: Vec<V2Tweet> = match data.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str(data.get())?,
        Some(b'{') => vec![serde_json::from_str(data.get())?],
        Some(b'n') => Vec::new(),
        _ => return Err(ParseError::Field("data")),
    };
    let includes: V2Includes = match includes {
        Some(includes) if includes.get() != "null" => serde_json::from_str(includes.get())?,
        _ => V2Includes::default(),
    };
    let users: HashMap<&str, &V2User> = includes.users.iter().map(|user| (user.id.as_ref(), user)).collect();
    let included: HashMap<&str, &V2Tweet> = includes.tweets.iter().map(|tweet| (tweet.id.as_ref(), tweet)).collect();
    let mut events = Vec::with_capacity(tweets.len());
    for tweet in &tweets {
        let post = v2_post(tweet, &users)?;
        let embedded = |id: &Option<String>| -> Result<Option<Box<Post>>, ParseError> {
            match id.as_deref().and_then(|id| included.get(id)) {
                Some(tweet) => Ok(Some(Box::new(v2_post(tweet, &users)?))),
                None => Ok(None),
            }
        };
        let retweeted = embedded(&post.retweeted_id)?;
        let quoted = embedded(&post.quoted_id)?;
        events.push(PostEvent::Upsert(PostBundle { post, retweeted, quoted }));
    }
    Ok(events)
}

fn v2_post(tweet: &V2Tweet, users: &HashMap<&str, &V2User>) -> Result<Post, ParseError> {
    let id = tweet.id.as_ref();
    let note = tweet.note_tweet.as_ref();
    let text =
        note.and_then(|note| note.text.as_deref()).or(tweet.text.as_deref()).ok_or(ParseError::Field("data.text"))?;
    let created_at = match tweet.created_at.as_deref() {
        Some(created_at) => rfc3339(created_at, "data.created_at")?,
        None => snowflake_time(id).ok_or(ParseError::Field("data.created_at"))?,
    };
    let author_id = tweet.author_id.as_deref().unwrap_or_default();
    let author = match users.get(author_id) {
        Some(user) => Author {
            id: author_id.to_owned(),
            handle: user.username.as_deref().unwrap_or(author_id).to_owned(),
            name: user.name.as_deref().unwrap_or_default().to_owned(),
        },
        None => Author { id: author_id.to_owned(), handle: author_id.to_owned(), name: String::new() },
    };
    let (mut retweeted_id, mut quoted_id, mut replied_to) = (None, None, None);
    let references = tweet.referenced_tweets.iter().chain(tweet.referenced_posts.iter()).flatten();
    for reference in references {
        let referenced = Some(reference.id.as_ref().to_owned());
        match reference.kind.as_ref() {
            "retweeted" | "reposted" => retweeted_id = referenced,
            "quoted" => quoted_id = referenced,
            "replied_to" => replied_to = referenced,
            _ => {}
        }
    }
    // The note's entities index the whole text; the post's, the cut text.
    let entities = note.and_then(|note| note.entities.as_ref()).or(tweet.entities.as_ref());
    let reply_user = tweet.in_reply_to_user_id.as_deref();
    let kind = if retweeted_id.is_some() {
        Kind::Retweet
    } else if replied_to.is_some() || reply_user.is_some() {
        Kind::Reply
    } else if quoted_id.is_some() {
        Kind::Quote
    } else {
        Kind::Post
    };
    let reply_to = (kind == Kind::Reply).then(|| {
        let handle = reply_user.and_then(|user_id| {
            users
                .get(user_id)
                .and_then(|user| user.username.as_deref())
                .or_else(|| {
                    entities?
                        .mentions
                        .iter()
                        .find(|mention| mention.id.as_deref() == Some(user_id))
                        .map(|mention| mention.username.as_ref())
                })
                .map(str::to_owned)
        });
        ReplyTo { post_id: replied_to, author_id: reply_user.map(str::to_owned), handle }
    });
    let (hashtags, mentions, urls, cashtags) = match entities {
        Some(entities) => (
            entities.hashtags.iter().map(|tag| tag.tag.as_ref().to_owned()).collect(),
            entities.mentions.iter().map(|mention| mention.username.as_ref().to_owned()).collect(),
            entities.urls.iter().filter_map(UrlEntity::best).collect(),
            entities.cashtags.iter().map(|tag| tag.tag.as_ref().to_owned()).collect(),
        ),
        None => Default::default(),
    };
    let counts = match &tweet.public_metrics {
        Some(metrics) => Counts {
            retweets: metrics.retweet_count.or(metrics.repost_count).unwrap_or_default().0,
            likes: metrics.like_count.0,
            replies: metrics.reply_count.0,
            quotes: metrics.quote_count.0,
        },
        None => Counts::default(),
    };
    Ok(Post {
        id: id.to_owned(),
        source: Source::X,
        kind,
        author,
        text: text.to_owned(),
        lang: tweet.lang.as_deref().map(str::to_owned),
        created_at,
        claimed_at: None,
        retweeted_id,
        quoted_id,
        reply_to,
        hashtags,
        mentions,
        urls,
        cashtags,
        has_media: tweet.attachments.as_ref().is_some_and(|attachments| !attachments.media_keys.is_empty()),
        counts,
    })
}

// -------------------------------------------------------------- API v1.1 --

#[derive(Deserialize)]
struct V1Status<'a> {
    #[serde(borrow)]
    id_str: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    /// Extended mode (`tweet_mode=extended`) puts the text here.
    #[serde(borrow)]
    full_text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    lang: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user: V1User<'a>,
    /// Compatibility mode: the whole text and its entities of a cut post.
    #[serde(borrow)]
    extended_tweet: Option<V1Extended<'a>>,
    #[serde(borrow)]
    entities: Option<V1Entities<'a>>,
    extended_entities: Option<V1Media>,
    #[serde(borrow)]
    retweeted_status: Option<Box<V1Status<'a>>>,
    #[serde(borrow)]
    quoted_status: Option<Box<V1Status<'a>>>,
    #[serde(borrow)]
    quoted_status_id_str: Option<Cow<'a, str>>,
    #[serde(borrow)]
    in_reply_to_status_id_str: Option<Cow<'a, str>>,
    #[serde(borrow)]
    in_reply_to_user_id_str: Option<Cow<'a, str>>,
    #[serde(borrow)]
    in_reply_to_screen_name: Option<Cow<'a, str>>,
    #[serde(default)]
    retweet_count: Count,
    #[serde(default)]
    favorite_count: Count,
    #[serde(default)]
    reply_count: Count,
    #[serde(default)]
    quote_count: Count,
}

#[derive(Deserialize)]
struct V1User<'a> {
    #[serde(borrow)]
    id_str: Cow<'a, str>,
    #[serde(borrow)]
    screen_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct V1Extended<'a> {
    #[serde(borrow)]
    full_text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    entities: Option<V1Entities<'a>>,
    extended_entities: Option<V1Media>,
}

#[derive(Deserialize)]
struct V1Entities<'a> {
    #[serde(borrow, default)]
    hashtags: Vec<V1Text<'a>>,
    #[serde(borrow, default)]
    user_mentions: Vec<V1Mention<'a>>,
    #[serde(borrow, default)]
    urls: Vec<UrlEntity<'a>>,
    #[serde(borrow, default)]
    symbols: Vec<V1Text<'a>>,
    #[serde(default)]
    media: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct V1Text<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Deserialize)]
struct V1Mention<'a> {
    #[serde(borrow)]
    screen_name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct V1Media {
    #[serde(default)]
    media: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct V1Delete<'a> {
    #[serde(borrow)]
    status: Option<V1DeletedStatus<'a>>,
}

#[derive(Deserialize)]
struct V1DeletedStatus<'a> {
    #[serde(borrow)]
    id_str: Option<Cow<'a, str>>,
}

/// A v1.1 search page's `statuses` array.
pub(crate) fn v1_statuses(statuses: &str) -> Result<Vec<PostEvent>, ParseError> {
    let statuses: Vec<V1Status> = serde_json::from_str(statuses)?;
    statuses.iter().map(v1_bundle).collect()
}

/// One v1.1 status (a stream line or a timeline entry).
pub(crate) fn v1_status(payload: &str) -> Result<PostEvent, ParseError> {
    let status: V1Status = serde_json::from_str(payload)?;
    v1_bundle(&status)
}

fn v1_bundle(status: &V1Status) -> Result<PostEvent, ParseError> {
    let post = v1_post(status)?;
    let retweeted = status.retweeted_status.as_deref().map(v1_post).transpose()?.map(Box::new);
    // A retweet of a quote repeats the quote at the top level; it belongs to
    // the original (through its `quoted_id`), not to the retweet.
    let quoted = match (&status.retweeted_status, status.quoted_status.as_deref()) {
        (None, Some(quoted)) => Some(Box::new(v1_post(quoted)?)),
        _ => None,
    };
    Ok(PostEvent::Upsert(PostBundle { post, retweeted, quoted }))
}

fn v1_post(status: &V1Status) -> Result<Post, ParseError> {
    let id = status.id_str.as_ref();
    let extended = status.extended_tweet.as_ref();
    let text = extended
        .and_then(|extended| extended.full_text.as_deref())
        .or(status.full_text.as_deref())
        .or(status.text.as_deref())
        .ok_or(ParseError::Field("text"))?;
    let created_at = status
        .created_at
        .as_deref()
        .and_then(|created_at| DateTime::parse_from_str(created_at, "%a %b %d %H:%M:%S %z %Y").ok())
        .map(|time| time.with_timezone(&Utc))
        .or_else(|| snowflake_time(id))
        .ok_or(ParseError::Field("created_at"))?;
    let user = &status.user;
    let author = Author {
        id: user.id_str.as_ref().to_owned(),
        handle: user.screen_name.as_deref().unwrap_or_default().to_owned(),
        name: user.name.as_deref().unwrap_or_default().to_owned(),
    };
    // The entities of the extended text index the whole text; use them when there.
    let entities = extended.and_then(|extended| extended.entities.as_ref()).or(status.entities.as_ref());
    let extended_entities =
        extended.and_then(|extended| extended.extended_entities.as_ref()).or(status.extended_entities.as_ref());
    let has_media = extended_entities.is_some_and(|media| !media.media.is_empty())
        || entities.is_some_and(|entities| !entities.media.is_empty());
    let retweeted_id = status.retweeted_status.as_ref().map(|original| original.id_str.as_ref().to_owned());
    let quoted_id = status
        .quoted_status_id_str
        .as_deref()
        .or(status.quoted_status.as_ref().map(|quoted| quoted.id_str.as_ref()))
        .map(str::to_owned);
    let reply_post = status.in_reply_to_status_id_str.as_deref().map(str::to_owned);
    let reply_user = status.in_reply_to_user_id_str.as_deref().map(str::to_owned);
    let kind = if retweeted_id.is_some() {
        Kind::Retweet
    } else if reply_post.is_some() {
        Kind::Reply
    } else if quoted_id.is_some() {
        Kind::Quote
    } else {
        Kind::Post
    };
    let reply_to = (kind == Kind::Reply).then(|| ReplyTo {
        post_id: reply_post,
        author_id: reply_user,
        handle: status.in_reply_to_screen_name.as_deref().map(str::to_owned),
    });
    let (hashtags, mentions, urls, cashtags) = match entities {
        Some(entities) => (
            entities.hashtags.iter().map(|tag| tag.text.as_ref().to_owned()).collect(),
            entities.user_mentions.iter().map(|mention| mention.screen_name.as_ref().to_owned()).collect(),
            entities.urls.iter().filter_map(UrlEntity::best).collect(),
            entities.symbols.iter().map(|tag| tag.text.as_ref().to_owned()).collect(),
        ),
        None => Default::default(),
    };
    Ok(Post {
        id: id.to_owned(),
        source: Source::X,
        kind,
        author,
        text: text.to_owned(),
        lang: status.lang.as_deref().map(str::to_owned),
        created_at,
        claimed_at: None,
        retweeted_id,
        quoted_id,
        reply_to,
        hashtags,
        mentions,
        urls,
        cashtags,
        has_media,
        counts: Counts {
            retweets: status.retweet_count.0,
            likes: status.favorite_count.0,
            replies: status.reply_count.0,
            quotes: status.quote_count.0,
        },
    })
}

/// `{"delete":{"status":{"id_str":…}}}`.
pub(crate) fn v1_delete(notice: &str) -> Result<Vec<PostEvent>, ParseError> {
    let notice: V1Delete = serde_json::from_str(notice)?;
    let id = notice.status.and_then(|status| status.id_str).ok_or(ParseError::Field("delete.status.id_str"))?;
    Ok(vec![PostEvent::Delete { id: id.into_owned() }])
}
