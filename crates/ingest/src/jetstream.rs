//! Bluesky Jetstream events: posts, reposts (as retweets), deletes, the
//! identity events that teach us an account's handle, and the profile
//! records (`app.bsky.actor.profile`) that teach us its display name and
//! avatar. Likes, follows, blocks, account events and other collections
//! carry no posts and are skipped without error.
//!
//! Pictures are blobs named by CID; Bluesky's CDN serves them at
//! `https://cdn.bsky.app/img/{feed_thumbnail|feed_fullsize|avatar}/plain/DID/CID@jpeg`
//! and videos at `https://video.bsky.app/watch/DID/CID/…`.
//!
//! Facet offsets are UTF-8 byte offsets into the text. Hashtags and links
//! come from the facets' features; a mention's feature names only a DID, so
//! its handle is the cached one, else the `@handle` the text shows at the
//! facet's byte range, else the DID.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use model::{Author, Card, Counts, Kind, Media, MediaKind, Post, PostBundle, PostEvent, ReplyTo, Source};
use serde::Deserialize;

use crate::{ParseError, rfc3339};

/// Handles remembered per generation. When the current generation is
/// full, it becomes the previous one and the oldest is dropped: a cheap
/// approximation of least-recently-used that bounds memory at twice this.
const HANDLES_PER_GENERATION: usize = 100_000;

/// Profiles (display name and avatar) remembered per generation, bounded
/// the same way as the handles.
const PROFILES_PER_GENERATION: usize = 50_000;

const POST: &str = "app.bsky.feed.post";
const REPOST: &str = "app.bsky.feed.repost";
const PROFILE: &str = "app.bsky.actor.profile";

/// Self-labels that mark a post's media as sensitive (Bluesky's adult and
/// graphic-media labels).
const SENSITIVE_LABELS: [&str; 5] = ["porn", "sexual", "nudity", "graphic-media", "gore"];

/// What the parser remembers between Jetstream events.
#[derive(Default)]
pub(crate) struct JetstreamState {
    handles: HashMap<String, String>,
    previous_handles: HashMap<String, String>,
    profiles: HashMap<String, Profile>,
    previous_profiles: HashMap<String, Profile>,
}

/// What an account's profile record says about it.
#[derive(Clone, Debug, Default)]
struct Profile {
    name: String,
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct ProfileRecord<'a> {
    #[serde(borrow, rename = "displayName")]
    display_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    avatar: Option<Blob<'a>>,
}

/// A blob reference: `{"$type":"blob","ref":{"$link":CID},"mimeType",…}`,
/// or the legacy `{"cid":CID,"mimeType"}`.
#[derive(Deserialize)]
struct Blob<'a> {
    #[serde(borrow, rename = "ref")]
    reference: Option<BlobLink<'a>>,
    #[serde(borrow)]
    cid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BlobLink<'a> {
    #[serde(borrow, rename = "$link")]
    link: Cow<'a, str>,
}

impl Blob<'_> {
    /// The blob's CID, if it is one (base32/base58 letters and digits only,
    /// so it can be put in a CDN path as it is).
    fn cid(&self) -> Option<&str> {
        let cid = self.reference.as_ref().map(|reference| reference.link.as_ref()).or(self.cid.as_deref())?;
        (!cid.is_empty() && cid.len() <= 128 && cid.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(cid)
    }
}

/// A DID that can be put in a URL path as it is (`did:plc:…`, `did:web:host`).
fn path_safe_did(did: &str) -> bool {
    did.starts_with("did:")
        && did.len() <= 256
        && did.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'-' | b'_' | b'%'))
}

/// A picture on Bluesky's CDN: `preset` is `avatar`, `feed_thumbnail` or `feed_fullsize`.
fn cdn_image(preset: &str, did: &str, blob: &Blob) -> Option<String> {
    let cid = blob.cid()?;
    path_safe_did(did).then(|| format!("https://cdn.bsky.app/img/{preset}/plain/{did}/{cid}@jpeg"))
}

/// `https://bsky.app/profile/DID/post/RKEY` for an `at://DID/app.bsky.feed.post/RKEY` URI.
fn post_permalink(uri: &str) -> Option<String> {
    let (did, rkey) = uri.strip_prefix("at://")?.split_once("/app.bsky.feed.post/")?;
    let rkey_ok = !rkey.is_empty()
        && rkey.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':'));
    (path_safe_did(did) && rkey_ok).then(|| format!("https://bsky.app/profile/{did}/post/{rkey}"))
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
    /// Kept raw and read one by one: a facet that breaks the lexicon (a
    /// negative or fractional byte index, a tag that is not a string) is
    /// skipped, and the post keeps its text and its other facets.
    #[serde(borrow, default)]
    facets: Vec<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    reply: Option<Reply<'a>>,
    #[serde(borrow)]
    embed: Option<Embed<'a>>,
    #[serde(borrow)]
    labels: Option<SelfLabels<'a>>,
}

#[derive(Deserialize)]
struct SelfLabels<'a> {
    #[serde(borrow, default)]
    values: Vec<SelfLabel<'a>>,
}

#[derive(Deserialize)]
struct SelfLabel<'a> {
    #[serde(borrow)]
    val: Cow<'a, str>,
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
    external: Option<External<'a>>,
    #[serde(borrow)]
    media: Option<Box<Embed<'a>>>,
    /// `app.bsky.embed.images`.
    #[serde(borrow, default)]
    images: Vec<EmbedImage<'a>>,
    /// `app.bsky.embed.video`.
    #[serde(borrow)]
    video: Option<Blob<'a>>,
    #[serde(borrow)]
    alt: Option<Cow<'a, str>>,
    #[serde(rename = "aspectRatio")]
    aspect_ratio: Option<AspectRatio>,
}

#[derive(Deserialize)]
struct External<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    thumb: Option<Blob<'a>>,
}

#[derive(Deserialize)]
struct EmbedImage<'a> {
    #[serde(borrow)]
    image: Option<Blob<'a>>,
    #[serde(borrow)]
    alt: Option<Cow<'a, str>>,
    #[serde(rename = "aspectRatio")]
    aspect_ratio: Option<AspectRatio>,
}

#[derive(Deserialize, Clone, Copy)]
struct AspectRatio {
    width: Option<u32>,
    height: Option<u32>,
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

    /// The profile of a DID, if a profile record taught it.
    fn known_profile(&self, did: &str) -> Option<&Profile> {
        self.profiles.get(did).or_else(|| self.previous_profiles.get(did))
    }

    fn learn_profile(&mut self, did: &str, profile: Profile) {
        if self.profiles.len() >= PROFILES_PER_GENERATION {
            self.previous_profiles = std::mem::take(&mut self.profiles);
        }
        self.profiles.insert(did.to_owned(), profile);
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

    fn commit(&mut self, event: &Event, commit: &Commit) -> Result<Vec<PostEvent>, ParseError> {
        let collection = commit.collection.as_ref();
        if collection == PROFILE {
            if matches!(commit.operation.as_ref(), "create" | "update")
                && let Some(record) = commit.record
                && let Ok(profile) = serde_json::from_str::<ProfileRecord>(record.get())
            {
                let did = event.did.as_ref();
                let avatar_url = profile.avatar.as_ref().and_then(|avatar| cdn_image("avatar", did, avatar));
                let name = profile.display_name.as_deref().unwrap_or_default().trim().to_owned();
                self.learn_profile(did, Profile { name, avatar_url });
            }
            return Ok(Vec::new());
        }
        if collection != POST && collection != REPOST {
            return Ok(Vec::new());
        }
        let did = event.did.as_ref();
        let id = at_uri(did, collection, &commit.rkey);
        match commit.operation.as_ref() {
            "delete" => Ok(vec![PostEvent::Delete { id }]),
            "create" | "update" => {
                let record = commit.record.ok_or(ParseError::Field("commit.record"))?.get();
                let profile = self.known_profile(did);
                let author = Author {
                    id: did.to_owned(),
                    handle: self.known_handle(did).unwrap_or(did).to_owned(),
                    name: profile.map(|profile| profile.name.clone()).unwrap_or_default(),
                    avatar_url: profile.and_then(|profile| profile.avatar_url.clone()),
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
        let facets = record.facets.iter().filter_map(|raw| serde_json::from_str::<Facet>(raw.get()).ok());
        for facet in facets {
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
        let did = author.id.as_str();
        let mut has_media = false;
        let mut media = Vec::new();
        let mut card = None;
        let mut quoted_id = None;
        let mut embeds = record.embed.iter().collect::<Vec<_>>();
        while let Some(embed) = embeds.pop() {
            match embed.kind.as_deref().unwrap_or_default() {
                "app.bsky.embed.images" => {
                    has_media = true;
                    for image in &embed.images {
                        let Some(blob) = &image.image else { continue };
                        let url = cdn_image("feed_fullsize", did, blob);
                        if url.is_none() {
                            continue;
                        }
                        media.push(Media {
                            kind: MediaKind::Photo,
                            url,
                            preview_url: cdn_image("feed_thumbnail", did, blob),
                            width: image.aspect_ratio.and_then(|ratio| ratio.width),
                            height: image.aspect_ratio.and_then(|ratio| ratio.height),
                            alt: image.alt.as_deref().filter(|alt| !alt.is_empty()).map(str::to_owned),
                        });
                    }
                }
                "app.bsky.embed.video" => {
                    has_media = true;
                    if let Some(cid) = embed.video.as_ref().and_then(Blob::cid)
                        && path_safe_did(did)
                    {
                        media.push(Media {
                            kind: MediaKind::Video,
                            url: Some(format!("https://video.bsky.app/watch/{did}/{cid}/playlist.m3u8")),
                            preview_url: Some(format!("https://video.bsky.app/watch/{did}/{cid}/thumbnail.jpg")),
                            width: embed.aspect_ratio.and_then(|ratio| ratio.width),
                            height: embed.aspect_ratio.and_then(|ratio| ratio.height),
                            alt: embed.alt.as_deref().filter(|alt| !alt.is_empty()).map(str::to_owned),
                        });
                    }
                }
                "app.bsky.embed.external" => {
                    if let Some(external) = &embed.external {
                        if !urls.iter().any(|url| *url == external.uri) {
                            urls.push(external.uri.as_ref().to_owned());
                        }
                        card = Some(Card {
                            url: external.uri.as_ref().to_owned(),
                            title: external.title.as_deref().unwrap_or_default().to_owned(),
                            description: external.description.as_deref().unwrap_or_default().to_owned(),
                            image_url: external
                                .thumb
                                .as_ref()
                                .and_then(|thumb| cdn_image("feed_thumbnail", did, thumb)),
                        });
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
        let sensitive = record
            .labels
            .as_ref()
            .is_some_and(|labels| labels.values.iter().any(|label| SENSITIVE_LABELS.contains(&label.val.as_ref())));
        let permalink = post_permalink(&id);
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
            media,
            card,
            sensitive,
            permalink,
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
        kind: Kind::Retweet,
        retweeted_id: Some(subject.to_owned()),
        // A repost has no page of its own: it links to what it reposts.
        permalink: post_permalink(subject),
        ..Post::new(id, Source::Bluesky, author, "", created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did(n: usize) -> String {
        format!("did:plc:{n}")
    }

    #[test]
    fn the_profile_and_handle_caches_keep_at_most_two_generations() {
        let mut state = JetstreamState::default();
        let n_profiles = 2 * PROFILES_PER_GENERATION + 10;
        for n in 0..n_profiles {
            state.learn_profile(&did(n), Profile { name: format!("fan {n}"), avatar_url: None });
        }
        assert!(state.profiles.len() + state.previous_profiles.len() <= 2 * PROFILES_PER_GENERATION);
        assert_eq!(state.known_profile(&did(n_profiles - 1)).map(|profile| profile.name.as_str()), Some("fan 100009"));
        // The generation before the newest still answers; the oldest is forgotten.
        assert!(state.known_profile(&did(n_profiles - PROFILES_PER_GENERATION)).is_some());
        assert!(state.known_profile(&did(0)).is_none());

        let n_handles = 2 * HANDLES_PER_GENERATION + 10;
        for n in 0..n_handles {
            state.learn(&did(n), &format!("fan{n}.bsky.social"));
        }
        assert!(state.handles.len() + state.previous_handles.len() <= 2 * HANDLES_PER_GENERATION);
        assert_eq!(state.known_handle(&did(n_handles - 1)), Some("fan200009.bsky.social"));
        assert!(state.known_handle(&did(0)).is_none());
    }
}
