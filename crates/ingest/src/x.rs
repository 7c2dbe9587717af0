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
use model::{Author, Card, Counts, Kind, Media, MediaKind, Post, PostBundle, PostEvent, ReplyTo, Source};
use serde::Deserialize;
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
    #[serde(borrow)]
    attachments: Option<V2Attachments<'a>>,
    public_metrics: Option<V2Metrics>,
    possibly_sensitive: Option<bool>,
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

/// A URL entity (the same shape in v1.1 and v2; v2 adds the page's
/// `title`, `description` and preview `images`, the link card).
#[derive(Deserialize)]
struct UrlEntity<'a> {
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    expanded_url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    unwound_url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    images: Vec<V2CardImage<'a>>,
    /// Set on the link X adds for an attached photo or video (no card).
    #[serde(borrow)]
    media_key: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct V2CardImage<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
    width: Option<u32>,
}

impl UrlEntity<'_> {
    fn best(&self) -> Option<String> {
        self.expanded_url.as_deref().filter(|url| !url.is_empty()).or(self.url.as_deref()).map(str::to_owned)
    }
}

#[derive(Deserialize)]
struct V2Attachments<'a> {
    #[serde(borrow, default)]
    media_keys: Vec<Cow<'a, str>>,
}

/// One `includes.media` object.
#[derive(Deserialize)]
struct V2Media<'a> {
    #[serde(borrow)]
    media_key: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    preview_image_url: Option<Cow<'a, str>>,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(borrow)]
    alt_text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    variants: Vec<Variant<'a>>,
}

/// A playable rendition of a video (v2 `variants`, v1.1 `video_info.variants`).
#[derive(Deserialize)]
struct Variant<'a> {
    #[serde(alias = "bitrate")]
    bit_rate: Option<u64>,
    #[serde(borrow)]
    content_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
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
    #[serde(borrow, default)]
    media: Vec<V2Media<'a>>,
}

#[derive(Deserialize)]
struct V2User<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    profile_image_url: Option<Cow<'a, str>>,
}

/// What one v2 message's `includes` let a post refer to.
struct V2Lookup<'m, 'a> {
    users: HashMap<&'m str, &'m V2User<'a>>,
    media: HashMap<&'m str, &'m V2Media<'a>>,
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
    let lookup = V2Lookup {
        users: includes.users.iter().map(|user| (user.id.as_ref(), user)).collect(),
        media: includes.media.iter().map(|media| (media.media_key.as_ref(), media)).collect(),
    };
    let included: HashMap<&str, &V2Tweet> = includes.tweets.iter().map(|tweet| (tweet.id.as_ref(), tweet)).collect();
    let mut events = Vec::with_capacity(tweets.len());
    for tweet in &tweets {
        let post = v2_post(tweet, &lookup)?;
        let embedded = |id: &Option<String>| -> Result<Option<Box<Post>>, ParseError> {
            match id.as_deref().and_then(|id| included.get(id)) {
                Some(tweet) => Ok(Some(Box::new(v2_post(tweet, &lookup)?))),
                None => Ok(None),
            }
        };
        let retweeted = embedded(&post.retweeted_id)?;
        let quoted = embedded(&post.quoted_id)?;
        events.push(PostEvent::Upsert(PostBundle { post, retweeted, quoted }));
    }
    Ok(events)
}

fn v2_post(tweet: &V2Tweet, lookup: &V2Lookup) -> Result<Post, ParseError> {
    let users = &lookup.users;
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
            avatar_url: user.profile_image_url.as_deref().filter(|url| !url.is_empty()).map(str::to_owned),
        },
        None => {
            Author { id: author_id.to_owned(), handle: author_id.to_owned(), name: String::new(), avatar_url: None }
        }
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
    let card = entities.and_then(|entities| v2_card(&entities.urls));
    let media_keys =
        tweet.attachments.as_ref().map(|attachments| attachments.media_keys.as_slice()).unwrap_or_default();
    let media = media_keys.iter().filter_map(|key| lookup.media.get(key.as_ref())).copied().map(v2_media).collect();
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
    let permalink = Some(permalink(&author, id));
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
        has_media: !media_keys.is_empty(),
        counts,
        media,
        card,
        sensitive: tweet.possibly_sensitive.unwrap_or(false),
        permalink,
    })
}

/// `https://x.com/USER/status/ID`; X's own `i/status` form when the
/// author's handle is not known (the message did not include the user).
fn permalink(author: &Author, id: &str) -> String {
    let handle = author.handle.as_str();
    let known =
        !handle.is_empty() && handle != author.id && handle.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if known { format!("https://x.com/{handle}/status/{id}") } else { format!("https://x.com/i/status/{id}") }
}

/// `https://pbs.twimg.com/media/NAME.EXT` → the same photo at X's `small`
/// size (at most 680 px), which is what a timeline shows.
fn small_photo(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://pbs.twimg.com/media/")?;
    let (name, ext) = rest.rsplit_once('.')?;
    let plain =
        |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (plain(name) && plain(ext)).then(|| format!("https://pbs.twimg.com/media/{name}?format={ext}&name=small"))
}

fn media_kind(kind: &str) -> MediaKind {
    match kind {
        "video" => MediaKind::Video,
        "animated_gif" => MediaKind::Gif,
        _ => MediaKind::Photo,
    }
}

/// The best MP4 rendition of a video (highest bit rate), if the source listed any.
fn best_variant(variants: &[Variant]) -> Option<String> {
    variants
        .iter()
        .filter(|variant| variant.content_type.as_deref() == Some("video/mp4"))
        .max_by_key(|variant| variant.bit_rate.unwrap_or(0))
        .and_then(|variant| variant.url.as_deref())
        .map(str::to_owned)
}

fn v2_media(media: &V2Media) -> Media {
    let kind = media_kind(&media.kind);
    let (url, preview_url) = match kind {
        MediaKind::Photo => {
            let url = media.url.as_deref().map(str::to_owned);
            let preview =
                url.as_deref().and_then(small_photo).or_else(|| media.preview_image_url.as_deref().map(str::to_owned));
            (url, preview)
        }
        MediaKind::Video | MediaKind::Gif => {
            (best_variant(&media.variants), media.preview_image_url.as_deref().map(str::to_owned))
        }
    };
    Media {
        kind,
        url,
        preview_url,
        width: media.width,
        height: media.height,
        alt: media.alt_text.as_deref().filter(|alt| !alt.is_empty()).map(str::to_owned),
    }
}

/// The link card of a v2 post: the first link (not an attached photo's)
/// that X unwound to a page with a title.
fn v2_card(urls: &[UrlEntity]) -> Option<Card> {
    let entity = urls
        .iter()
        .find(|entity| entity.media_key.is_none() && entity.title.as_deref().is_some_and(|title| !title.is_empty()))?;
    let url =
        entity.unwound_url.as_deref().filter(|url| !url.is_empty()).map(str::to_owned).or_else(|| entity.best())?;
    // X lists the original and a 150×150 crop; a card shows a picture a few
    // hundred pixels wide, so take the largest one up to 1200 px, else the smallest.
    let image = entity
        .images
        .iter()
        .filter(|image| image.width.is_some_and(|width| width <= 1200))
        .max_by_key(|image| image.width)
        .or_else(|| entity.images.iter().min_by_key(|image| image.width));
    Some(Card {
        url,
        title: entity.title.as_deref().unwrap_or_default().to_owned(),
        description: entity.description.as_deref().unwrap_or_default().to_owned(),
        image_url: image.map(|image| image.url.as_ref().to_owned()),
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
    #[serde(borrow)]
    extended_entities: Option<V1Media<'a>>,
    possibly_sensitive: Option<bool>,
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
    #[serde(borrow)]
    profile_image_url_https: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct V1Extended<'a> {
    #[serde(borrow)]
    full_text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    entities: Option<V1Entities<'a>>,
    #[serde(borrow)]
    extended_entities: Option<V1Media<'a>>,
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
    #[serde(borrow, default)]
    media: Vec<V1MediaItem<'a>>,
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
struct V1Media<'a> {
    #[serde(borrow, default)]
    media: Vec<V1MediaItem<'a>>,
}

/// One v1.1 media entity (`extended_entities.media[]`, or the first photo in `entities.media`).
#[derive(Deserialize)]
struct V1MediaItem<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    media_url_https: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ext_alt_text: Option<Cow<'a, str>>,
    sizes: Option<V1Sizes>,
    #[serde(borrow)]
    video_info: Option<V1VideoInfo<'a>>,
}

#[derive(Deserialize)]
struct V1Sizes {
    large: Option<V1Size>,
}

#[derive(Deserialize)]
struct V1Size {
    w: Option<u32>,
    h: Option<u32>,
}

#[derive(Deserialize)]
struct V1VideoInfo<'a> {
    #[serde(borrow, default)]
    variants: Vec<Variant<'a>>,
}

fn v1_media(item: &V1MediaItem) -> Media {
    let kind = media_kind(item.kind.as_deref().unwrap_or("photo"));
    let image = item.media_url_https.as_deref().map(str::to_owned);
    let (url, preview_url) = match kind {
        MediaKind::Photo => (image.clone(), image.as_deref().and_then(small_photo).or(image)),
        MediaKind::Video | MediaKind::Gif => {
            (item.video_info.as_ref().and_then(|info| best_variant(&info.variants)), image)
        }
    };
    let large = item.sizes.as_ref().and_then(|sizes| sizes.large.as_ref());
    Media {
        kind,
        url,
        preview_url,
        width: large.and_then(|size| size.w),
        height: large.and_then(|size| size.h),
        alt: item.ext_alt_text.as_deref().filter(|alt| !alt.is_empty()).map(str::to_owned),
    }
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
        avatar_url: user.profile_image_url_https.as_deref().filter(|url| !url.is_empty()).map(str::to_owned),
    };
    // The entities of the extended text index the whole text; use them when there.
    let entities = extended.and_then(|extended| extended.entities.as_ref()).or(status.entities.as_ref());
    let extended_entities =
        extended.and_then(|extended| extended.extended_entities.as_ref()).or(status.extended_entities.as_ref());
    let has_media = extended_entities.is_some_and(|media| !media.media.is_empty())
        || entities.is_some_and(|entities| !entities.media.is_empty());
    // `extended_entities` lists every item; `entities.media` only the first photo.
    let media = match extended_entities.filter(|media| !media.media.is_empty()) {
        Some(extended) => extended.media.iter().map(v1_media).collect(),
        None => entities.map(|entities| entities.media.iter().map(v1_media).collect()).unwrap_or_default(),
    };
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
    let permalink = Some(permalink(&author, id));
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
        media,
        card: None,
        sensitive: status.possibly_sensitive.unwrap_or(false),
        permalink,
    })
}

/// `{"delete":{"status":{"id_str":…}}}`.
pub(crate) fn v1_delete(notice: &str) -> Result<Vec<PostEvent>, ParseError> {
    let notice: V1Delete = serde_json::from_str(notice)?;
    let id = notice.status.and_then(|status| status.id_str).ok_or(ParseError::Field("delete.status.id_str"))?;
    Ok(vec![PostEvent::Delete { id: id.into_owned() }])
}
