//! Bluesky Jetstream events: posts, reposts (as retweets), deletes, and the
//! identity events that teach us an account's handle. Likes, follows,
//! blocks, profile updates, account events and other collections carry no
//! posts and are skipped without error.
//!
//! Facet offsets are UTF-8 byte offsets into the text. Hashtags and links
//! come from the facets' features; a mention's feature names only a DID, so
//! its handle is the cached one, else the `@handle` the text shows at the
//! facet's byte range, else the DID.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use model::{Author, Counts, Kind, Post, PostBundle, PostEvent, ReplyTo, Source};
use serde::Deserialize;

use crate::{ParseError, rfc3339};

/// Handles remembered per generation. When the current generation is
/// full, it becomes the previous one and the oldest is dropped: a cheap
/// approximation of least-recently-used that bounds memory at twice this.
const HANDLES_PER_GENERATION: usize = 100_000;

const POST: &str = "app.bsky.feed.post";
const REPOST: &str = "app.bsky.feed.repost";

/// What the parser remembers between Jetstream events.
#[derive(Default)]
pub(crate) struct JetstreamState {
    handles: HashMap<String, String>,
    previous_handles: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    did: Cow<'a, str>,
    time_us: Option<i64>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    commit: Option<Commit<'a>>,
    #[serde(borrow)]
    identity: Option<Identity<'a>>,
}

#[derive(Deserialize)]
struct Identity<'a> {
    #[serde(borrow)]
    handle: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    #[serde(borrow)]
    operation: Cow<'a, str>,
    #[serde(borrow)]
    collection: Cow<'a, str>,
    #[serde(borrow)]
    rkey: Cow<'a, str>,
    /// Only read for posts and reposts: other collections' records have
    /// other shapes, so they stay raw.
    #[serde(borrow)]
    record: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct PostRecord<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(borrow, rename = "createdAt")]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    langs: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    facets: Vec<Facet<'a>>,
    #[serde(borrow)]
    reply: Option<Reply<'a>>,
    #[serde(borrow)]
    embed: Option<Embed<'a>>,
}

#[derive(Deserialize)]
struct RepostRecord<'a> {
    #[serde(borrow)]
    subject: StrongRef<'a>,
    #[serde(borrow, rename = "createdAt")]
    created_at: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StrongRef<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    parent: StrongRef<'a>,
}

#[derive(Deserialize)]
struct Facet<'a> {
    index: Option<ByteSlice>,
    #[serde(borrow, default)]
    features: Vec<Feature<'a>>,
}

#[derive(Deserialize, Clone, Copy)]
struct ByteSlice {
    #[serde(rename = "byteStart")]
    byte_start: usize,
    #[serde(rename = "byteEnd")]
    byte_end: usize,
}

#[derive(Deserialize)]
struct Feature<'a> {
    #[serde(borrow, rename = "$type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tag: Option<Cow<'a, str>>,
    #[serde(borrow)]
    did: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Embed<'a> {
    #[serde(borrow, rename = "$type")]
    kind: Option<Cow<'a, str>>,
    /// `app.bsky.embed.record`: a strong ref; `recordWithMedia`: an
    /// `app.bsky.embed.record` whose own `record` is the strong ref.
    #[serde(borrow)]
    record: Option<EmbeddedRecord<'a>>,
    #[serde(borrow)]
    external: Option<StrongRef<'a>>,
    #[serde(borrow)]
    media: Option<Box<Embed<'a>>>,
}

#[derive(Deserialize)]
struct EmbeddedRecord<'a> {
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow)]
    record: Option<StrongRef<'a>>,
}

fn at_uri(did: &str, collection: &str, rkey: &str) -> String {
    format!("at://{did}/{collection}/{rkey}")
}

/// The DID in an `at://DID/collection/rkey` URI.
fn uri_did(uri: &str) -> Option<&str> {
    uri.strip_prefix("at://")?.split('/').next()
}

impl JetstreamState {
    /// The handle of a DID, if an identity event taught it.
    fn known_handle(&self, did: &str) -> Option<&str> {
        self.handles.get(did).or_else(|| self.previous_handles.get(did)).map(String::as_str)
    }

    fn learn(&mut self, did: &str, handle: &str) {
        if self.handles.len() >= HANDLES_PER_GENERATION {
            self.previous_handles = std::mem::take(&mut self.handles);
        }
        self.handles.insert(did.to_owned(), handle.to_owned());
    }

    pub(crate) fn parse(&mut self, payload: &str) -> Result<Vec<PostEvent>, ParseError> {
        let event: Event = serde_json::from_str(payload)?;
        match event.kind.as_ref() {
            "identity" => {
                if let Some(handle) = event.identity.as_ref().and_then(|identity| identity.handle.as_deref())
                    && !handle.is_empty()
                    && handle != "handle.invalid"
                {
                    self.learn(&event.did, handle);
                }
                Ok(Vec::new())
            }
            "commit" => {
                let commit = event.commit.as_ref().ok_or(ParseError::Field("commit"))?;
                self.commit(&event, commit)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn commit(&self, event: &Event, commit: &Commit) -> Result<Vec<PostEvent>, ParseError> {
        let collection = commit.collection.as_ref();
        if collection != POST && collection != REPOST {
            return Ok(Vec::new());
        }
        let did = event.did.as_ref();
        let id = at_uri(did, collection, &commit.rkey);
        match commit.operation.as_ref() {
            "delete" => Ok(vec![PostEvent::Delete { id }]),
            "create" | "update" => {
                let record = commit.record.ok_or(ParseError::Field("commit.record"))?.get();
                let author = Author {
                    id: did.to_owned(),
                    handle: self.known_handle(did).unwrap_or(did).to_owned(),
                    name: String::new(),
                };
                let post = if collection == REPOST {
                    let repost: RepostRecord = serde_json::from_str(record)?;
                    let created_at = created_at(repost.created_at.as_deref(), event.time_us)?;
                    repost_post(id, author, created_at, &repost.subject.uri)
                } else {
                    let record: PostRecord = serde_json::from_str(record)?;
                    let created_at = created_at(record.created_at.as_deref(), event.time_us)?;
                    self.post(id, author, created_at, &record)
                };
                Ok(vec![PostEvent::Upsert(PostBundle::single(post))])
            }
            _ => Ok(Vec::new()),
        }
    }

    fn post(&self, id: String, author: Author, created_at: DateTime<Utc>, record: &PostRecord) -> Post {
        let text = record.text.as_ref();
        let (mut hashtags, mut mentions, mut urls) = (Vec::new(), Vec::new(), Vec::new());
        for facet in &record.facets {
            // The text the facet covers; `get` refuses ranges off char boundaries.
            let covered = facet.index.and_then(|index| text.get(index.byte_start..index.byte_end)).unwrap_or_default();
            for feature in &facet.features {
                match feature.kind.as_deref() {
                    Some("app.bsky.richtext.facet#tag") => {
                        let tag = feature.tag.as_deref().unwrap_or(covered);
                        let tag = tag.trim_start_matches(['#', '＃']);
                        if !tag.is_empty() {
                            hashtags.push(tag.to_owned());
                        }
                    }
                    Some("app.bsky.richtext.facet#mention") => {
                        let Some(did) = feature.did.as_deref() else {
                            continue;
                        };
                        let shown = covered.strip_prefix('@').filter(|handle| !handle.is_empty());
                        mentions.push(self.known_handle(did).or(shown).unwrap_or(did).to_owned());
                    }
                    Some("app.bsky.richtext.facet#link") => {
                        if let Some(uri) = feature.uri.as_deref() {
                            urls.push(uri.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut has_media = false;
        let mut quoted_id = None;
        let mut embeds = record.embed.iter().collect::<Vec<_>>();
        while let Some(embed) = embeds.pop() {
            match embed.kind.as_deref().unwrap_or_default() {
                "app.bsky.embed.images" | "app.bsky.embed.video" => has_media = true,
                "app.bsky.embed.external" => {
                    if let Some(external) = &embed.external
                        && !urls.iter().any(|url| *url == external.uri)
                    {
                        urls.push(external.uri.as_ref().to_owned());
                    }
                }
                "app.bsky.embed.record" | "app.bsky.embed.recordWithMedia" => {
                    let strong_ref = embed.record.as_ref().and_then(|record| {
                        record.uri.as_deref().or(record.record.as_ref().map(|inner| inner.uri.as_ref()))
                    });
                    // Embedded lists and feed generators are not quotes.
                    if let Some(uri) = strong_ref.filter(|uri| uri.contains("/app.bsky.feed.post/")) {
                        quoted_id = Some(uri.to_owned());
                    }
                    if let Some(media) = &embed.media {
                        embeds.push(media);
                    }
                }
                _ => {}
            }
        }
        let reply_to = record.reply.as_ref().map(|reply| {
            let parent = reply.parent.uri.as_ref();
            let parent_did = uri_did(parent);
            ReplyTo {
                post_id: Some(parent.to_owned()),
                author_id: parent_did.map(str::to_owned),
                handle: parent_did.and_then(|did| self.known_handle(did)).map(str::to_owned),
            }
        });
        let kind = if reply_to.is_some() {
            Kind::Reply
        } else if quoted_id.is_some() {
            Kind::Quote
        } else {
            Kind::Post
        };
        Post {
            id,
            source: Source::Bluesky,
            kind,
            author,
            text: text.to_owned(),
            lang: record.langs.first().map(|lang| lang.as_ref().to_owned()),
            created_at,
            claimed_at: None,
            retweeted_id: None,
            quoted_id,
            reply_to,
            hashtags,
            mentions,
            urls,
            cashtags: Vec::new(),
            has_media,
            counts: Counts::default(),
        }
    }
}

/// The record's `createdAt`, else the event's time (both are the author's
/// claim or the relay's clock; neither is more authoritative for display).
fn created_at(created_at: Option<&str>, time_us: Option<i64>) -> Result<DateTime<Utc>, ParseError> {
    if let Some(created_at) = created_at
        && let Ok(time) = rfc3339(created_at, "record.createdAt")
    {
        return Ok(time);
    }
    time_us.and_then(|time_us| Utc.timestamp_micros(time_us).single()).ok_or(ParseError::Field("record.createdAt"))
}

fn repost_post(id: String, author: Author, created_at: DateTime<Utc>, subject: &str) -> Post {
    Post {
        id,
        source: Source::Bluesky,
        kind: Kind::Retweet,
        author,
        text: String::new(),
        lang: None,
        created_at,
        claimed_at: None,
        retweeted_id: Some(subject.to_owned()),
        quoted_id: None,
        reply_to: None,
        hashtags: Vec::new(),
        mentions: Vec::new(),
        urls: Vec::new(),
        cashtags: Vec::new(),
        has_media: false,
        counts: Counts::default(),
    }
}
