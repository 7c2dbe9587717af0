//! Bluesky Jetstream events: posts, reposts (as retweets), deletes, and the
//! identity events that teach us an account's handle.
//!
//! Facet offsets are UTF-8 byte offsets; hashtags, mentions and links are
//! read from the facets' features, so offsets only matter for display.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use model::{Author, Counts, Kind, Post, PostBundle, PostEvent, ReplyTo, Source};
use serde_json::Value;

use crate::{ParseError, str_field};

/// Handles remembered; beyond this the cache starts over (a DID shows
/// until its next identity event).
const MAX_HANDLES: usize = 200_000;

#[derive(Default)]
pub(crate) struct JetstreamState {
    handles: HashMap<String, String>,
}

fn at_uri(did: &str, collection: &str, rkey: &str) -> String {
    format!("at://{did}/{collection}/{rkey}")
}

fn created_at(record: &Value, time_us: Option<i64>) -> Result<DateTime<Utc>, ParseError> {
    if let Some(created_at) = record["createdAt"].as_str()
        && let Ok(time) = DateTime::parse_from_rfc3339(created_at)
    {
        return Ok(time.with_timezone(&Utc));
    }
    time_us.and_then(|time_us| Utc.timestamp_micros(time_us).single()).ok_or(ParseError::Field("createdAt"))
}

impl JetstreamState {
    pub(crate) fn handle(&self, did: &str) -> String {
        self.handles.get(did).cloned().unwrap_or_else(|| did.to_owned())
    }

    pub(crate) fn parse(&mut self, event: &Value) -> Result<Vec<PostEvent>, ParseError> {
        let did = str_field(event, "did")?;
        match str_field(event, "kind")? {
            "identity" => {
                if let Some(handle) = event["identity"]["handle"].as_str() {
                    if self.handles.len() >= MAX_HANDLES {
                        self.handles.clear();
                    }
                    self.handles.insert(did.to_owned(), handle.to_owned());
                }
                Ok(Vec::new())
            }
            "commit" => self.commit(did, event),
            _ => Ok(Vec::new()),
        }
    }

    fn commit(&self, did: &str, event: &Value) -> Result<Vec<PostEvent>, ParseError> {
        let commit = &event["commit"];
        let collection = str_field(commit, "collection")?;
        if collection != "app.bsky.feed.post" && collection != "app.bsky.feed.repost" {
            return Ok(Vec::new());
        }
        let rkey = str_field(commit, "rkey")?;
        let id = at_uri(did, collection, rkey);
        match str_field(commit, "operation")? {
            "delete" => Ok(vec![PostEvent::Delete { id }]),
            "create" | "update" => {
                let record = &commit["record"];
                if !record.is_object() {
                    return Err(ParseError::Field("commit.record"));
                }
                let created_at = created_at(record, event["time_us"].as_i64())?;
                let author = Author { id: did.to_owned(), handle: self.handle(did), name: String::new() };
                let post = if collection == "app.bsky.feed.repost" {
                    let subject = record["subject"]["uri"].as_str().ok_or(ParseError::Field("subject.uri"))?;
                    repost(id, author, created_at, subject)
                } else {
                    self.post(id, author, created_at, record)?
                };
                Ok(vec![PostEvent::Upsert(PostBundle::single(post))])
            }
            _ => Ok(Vec::new()),
        }
    }

    fn post(&self, id: String, author: Author, created_at: DateTime<Utc>, record: &Value) -> Result<Post, ParseError> {
        let text = str_field(record, "text")?.to_owned();
        let (mut hashtags, mut mentions, mut urls) = (Vec::new(), Vec::new(), Vec::new());
        for facet in record["facets"].as_array().into_iter().flatten() {
            for feature in facet["features"].as_array().into_iter().flatten() {
                match feature["$type"].as_str() {
                    Some("app.bsky.richtext.facet#tag") => {
                        if let Some(tag) = feature["tag"].as_str() {
                            hashtags.push(tag.trim_start_matches('#').to_owned());
                        }
                    }
                    Some("app.bsky.richtext.facet#mention") => {
                        if let Some(did) = feature["did"].as_str() {
                            mentions.push(self.handle(did));
                        }
                    }
                    Some("app.bsky.richtext.facet#link") => {
                        if let Some(uri) = feature["uri"].as_str() {
                            urls.push(uri.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
        let embed = &record["embed"];
        let embed_type = embed["$type"].as_str().unwrap_or_default();
        let quoted_id = match embed_type {
            "app.bsky.embed.record" => embed["record"]["uri"].as_str(),
            "app.bsky.embed.recordWithMedia" => embed["record"]["record"]["uri"].as_str(),
            _ => None,
        }
        .map(str::to_owned);
        let has_media = matches!(embed_type, "app.bsky.embed.images" | "app.bsky.embed.video")
            || (embed_type == "app.bsky.embed.recordWithMedia");
        if embed_type == "app.bsky.embed.external"
            && let Some(uri) = embed["external"]["uri"].as_str()
            && !urls.iter().any(|url| url == uri)
        {
            urls.push(uri.to_owned());
        }
        let reply_parent = record["reply"]["parent"]["uri"].as_str();
        let reply_to = reply_parent.map(|parent| {
            // at://DID/app.bsky.feed.post/RKEY: the replied-to account is the DID.
            let parent_did = parent.strip_prefix("at://").and_then(|rest| rest.split('/').next()).map(str::to_owned);
            ReplyTo {
                post_id: Some(parent.to_owned()),
                handle: parent_did.as_deref().map(|did| self.handle(did)),
                author_id: parent_did,
            }
        });
        let kind = if reply_to.is_some() {
            Kind::Reply
        } else if quoted_id.is_some() {
            Kind::Quote
        } else {
            Kind::Post
        };
        Ok(Post {
            id,
            source: Source::Bluesky,
            kind,
            author,
            text,
            lang: record["langs"][0].as_str().map(str::to_owned),
            created_at,
            retweeted_id: None,
            quoted_id,
            reply_to,
            hashtags,
            mentions,
            urls,
            cashtags: Vec::new(),
            has_media,
            counts: Counts::default(),
        })
    }
}

fn repost(id: String, author: Author, created_at: DateTime<Utc>, subject: &str) -> Post {
    Post {
        id,
        source: Source::Bluesky,
        kind: Kind::Retweet,
        author,
        text: String::new(),
        lang: None,
        created_at,
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
