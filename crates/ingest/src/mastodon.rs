//! Mastodon statuses (REST responses and streaming `update` payloads) and
//! streaming frames (`{"event", "payload"}`, the WebSocket shape; an SSE
//! reader turns its events into the same frames).
//!
//! A status is identified by its `uri` (the ActivityPub id, unique across
//! servers), not by the server-local `id`. Streaming deletes name only the
//! local id, so the parser remembers local id → uri for recent statuses.
//!
//! `content` is HTML that the server has already sanitized to a handful of
//! elements (`p`, `br`, `a`, `span`, …). We turn it into text with
//! `html5gum`, a WHATWG-conformant tokenizer: it decodes character
//! references exactly as browsers do and needs no DOM, which a full
//! `html5ever` tree (or `html2text`'s Markdown-flavoured rendering, which
//! would leave `[link](…)` markup in the text) would add for nothing.

use std::borrow::Cow;
use std::collections::HashMap;

use model::{Author, Card, Counts, Kind, Media, MediaKind, Post, PostBundle, PostEvent, ReplyTo, Source};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{Count, ParseError, rfc3339};

/// Local id → uri pairs remembered per generation (see the Jetstream handle cache).
const URIS_PER_GENERATION: usize = 100_000;

/// What the parser remembers between Mastodon records.
#[derive(Default)]
pub(crate) struct MastodonState {
    uris: HashMap<String, String>,
    previous_uris: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Status<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    uri: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    #[serde(borrow)]
    language: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Cow<'a, str>,
    #[serde(borrow)]
    spoiler_text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account: Account<'a>,
    #[serde(borrow)]
    reblog: Option<Box<Status<'a>>>,
    /// Mastodon 4.4+ quotes; older forks use other shapes, read leniently.
    #[serde(borrow)]
    quote: Option<&'a RawValue>,
    #[serde(borrow)]
    in_reply_to_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    in_reply_to_account_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tags: Vec<Tag<'a>>,
    #[serde(borrow, default)]
    mentions: Vec<Mention<'a>>,
    #[serde(borrow, default)]
    media_attachments: Vec<Attachment<'a>>,
    #[serde(borrow)]
    card: Option<StatusCard<'a>>,
    #[serde(default)]
    sensitive: bool,
    /// The status's page (null for some remote statuses).
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(default)]
    reblogs_count: Count,
    #[serde(default)]
    favourites_count: Count,
    #[serde(default)]
    replies_count: Count,
    #[serde(default)]
    quotes_count: Count,
}

#[derive(Deserialize)]
struct Account<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    acct: Option<Cow<'a, str>>,
    #[serde(borrow)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow)]
    display_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow)]
    avatar: Option<Cow<'a, str>>,
    #[serde(borrow)]
    avatar_static: Option<Cow<'a, str>>,
}

/// A `MediaAttachment`.
#[derive(Deserialize)]
struct Attachment<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    preview_url: Option<Cow<'a, str>>,
    /// The original on the author's server, for media of remote statuses.
    #[serde(borrow)]
    remote_url: Option<Cow<'a, str>>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    meta: Option<AttachmentMeta>,
}

#[derive(Deserialize)]
struct AttachmentMeta {
    original: Option<AttachmentSize>,
}

#[derive(Deserialize)]
struct AttachmentSize {
    width: Option<u32>,
    height: Option<u32>,
}

/// A `PreviewCard`.
#[derive(Deserialize)]
struct StatusCard<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow)]
    image: Option<Cow<'a, str>>,
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.filter(|text| !text.is_empty()).map(str::to_owned)
}

fn attachment(attachment: &Attachment) -> Option<Media> {
    let kind = match attachment.kind.as_ref() {
        "image" => MediaKind::Photo,
        "video" => MediaKind::Video,
        "gifv" => MediaKind::Gif,
        // Audio and `unknown` attachments have no picture to show.
        _ => return None,
    };
    let size = attachment.meta.as_ref().and_then(|meta| meta.original.as_ref());
    Some(Media {
        kind,
        url: non_empty(attachment.url.as_deref()).or_else(|| non_empty(attachment.remote_url.as_deref())),
        preview_url: non_empty(attachment.preview_url.as_deref()),
        width: size.and_then(|size| size.width),
        height: size.and_then(|size| size.height),
        alt: non_empty(attachment.description.as_deref()),
    })
}

#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Mention<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    acct: Cow<'a, str>,
    #[serde(borrow)]
    url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Quote<'a> {
    #[serde(borrow)]
    quoted_status: Option<Box<Status<'a>>>,
}

impl MastodonState {
    fn remember(&mut self, origin: &str, local_id: &str, uri: &str) {
        if self.uris.len() >= URIS_PER_GENERATION {
            self.previous_uris = std::mem::take(&mut self.uris);
        }
        self.uris.insert(format!("{origin}\0{local_id}"), uri.to_owned());
    }

    fn uri_of(&self, origin: &str, local_id: &str) -> Option<&str> {
        let key = format!("{origin}\0{local_id}");
        self.uris.get(&key).or_else(|| self.previous_uris.get(&key)).map(String::as_str)
    }

    /// One status document.
    pub(crate) fn status(&mut self, origin: &str, payload: &str) -> Result<PostEvent, ParseError> {
        let status: Status = serde_json::from_str(payload)?;
        let post = self.post(origin, &status)?;
        let retweeted = match &status.reblog {
            Some(original) => Some(Box::new(self.post(origin, original)?)),
            None => None,
        };
        let quoted = match quoted_status(&status) {
            Some(quoted) if status.reblog.is_none() => Some(Box::new(self.post(origin, &quoted)?)),
            _ => None,
        };
        Ok(PostEvent::Upsert(PostBundle { post, retweeted, quoted }))
    }

    /// One streaming frame: `update` and `status.update` carry a status (as
    /// a JSON string), `delete` a local id; other events carry no posts.
    pub(crate) fn frame(
        &mut self,
        origin: &str,
        event: &str,
        payload: Option<&str>,
    ) -> Result<Vec<PostEvent>, ParseError> {
        match event {
            "update" | "status.update" => {
                let payload = payload.ok_or(ParseError::Field("payload"))?;
                // The WebSocket sends the status double-encoded, as a string;
                // accept it inline too.
                let status: Cow<str> =
                    if payload.starts_with('"') { serde_json::from_str(payload)? } else { Cow::Borrowed(payload) };
                Ok(vec![self.status(origin, &status)?])
            }
            "delete" => {
                let payload = payload.ok_or(ParseError::Field("payload"))?;
                let local_id: Cow<str> =
                    if payload.starts_with('"') { serde_json::from_str(payload)? } else { Cow::Borrowed(payload) };
                // A status we never saw cannot be named by its uri; there is
                // nothing of it stored to forget either.
                Ok(self
                    .uri_of(origin, &local_id)
                    .map(|uri| PostEvent::Delete { id: uri.to_owned() })
                    .into_iter()
                    .collect())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn post(&mut self, origin: &str, status: &Status) -> Result<Post, ParseError> {
        self.remember(origin, &status.id, &status.uri);
        let created_at = rfc3339(&status.created_at, "created_at")?;
        let (content, links) = html_to_text(&status.content);
        let text = match status.spoiler_text.as_deref().filter(|spoiler| !spoiler.is_empty()) {
            // A content warning is part of what readers see first.
            Some(spoiler) => format!("{spoiler}\n\n{content}"),
            None => content,
        };
        let account = &status.account;
        let author = Author {
            id: account_id(account),
            handle: account.acct.as_deref().or(account.username.as_deref()).unwrap_or(&account.id).to_owned(),
            name: account.display_name.as_deref().unwrap_or_default().to_owned(),
            avatar_url: non_empty(account.avatar.as_deref()).or_else(|| non_empty(account.avatar_static.as_deref())),
        };
        // Tag names are sometimes normalized (`MUSICTUESDAY` for
        // `#musicTuesday`): keep the text's spelling and order, then any the
        // text does not show.
        let entities = extract::extract(&text);
        let mut hashtags = entities.hashtags;
        for tag in &status.tags {
            if !hashtags.iter().any(|seen| seen.to_lowercase() == tag.name.to_lowercase()) {
                hashtags.push(tag.name.as_ref().to_owned());
            }
        }
        let mentions = status.mentions.iter().map(|mention| mention.acct.as_ref().to_owned()).collect();
        let reply_to = status.in_reply_to_id.as_deref().map(|parent_id| {
            let replied_account = status.in_reply_to_account_id.as_deref();
            let mention = status
                .mentions
                .iter()
                .find(|mention| replied_account.is_some() && mention.id.as_deref() == replied_account);
            let author_is_parent = replied_account == Some(account.id.as_ref());
            ReplyTo {
                post_id: self.uri_of(origin, parent_id).map(str::to_owned),
                author_id: match mention {
                    Some(mention) => mention.url.as_deref().map(str::to_owned),
                    None if author_is_parent => Some(account_id(account)),
                    None => None,
                },
                handle: match mention {
                    Some(mention) => Some(mention.acct.as_ref().to_owned()),
                    None if author_is_parent => Some(author.handle.clone()),
                    None => None,
                },
            }
        });
        let retweeted_id = status.reblog.as_ref().map(|original| original.uri.as_ref().to_owned());
        let quoted_id = quoted_status(status).map(|quoted| quoted.uri.into_owned());
        let kind = if retweeted_id.is_some() {
            Kind::Retweet
        } else if reply_to.is_some() {
            Kind::Reply
        } else if quoted_id.is_some() {
            Kind::Quote
        } else {
            Kind::Post
        };
        Ok(Post {
            id: status.uri.as_ref().to_owned(),
            source: Source::Mastodon,
            kind,
            author,
            cashtags: entities.cashtags,
            text,
            lang: status.language.as_deref().map(str::to_owned),
            created_at,
            claimed_at: None,
            retweeted_id,
            quoted_id,
            reply_to,
            hashtags,
            mentions,
            urls: links,
            has_media: !status.media_attachments.is_empty(),
            counts: Counts {
                retweets: status.reblogs_count.0,
                likes: status.favourites_count.0,
                replies: status.replies_count.0,
                quotes: status.quotes_count.0,
            },
            media: status.media_attachments.iter().filter_map(attachment).collect(),
            card: status.card.as_ref().filter(|card| !card.url.is_empty()).map(|card| Card {
                url: card.url.as_ref().to_owned(),
                title: card.title.as_deref().unwrap_or_default().to_owned(),
                description: card.description.as_deref().unwrap_or_default().to_owned(),
                image_url: non_empty(card.image.as_deref()),
            }),
            sensitive: status.sensitive,
            // A boost's own page is the original's; remote statuses without
            // a `url` are shown at their ActivityPub id, which is a page too.
            permalink: non_empty(status.url.as_deref())
                .or_else(|| status.reblog.as_ref().and_then(|original| non_empty(original.url.as_deref())))
                .or_else(|| status.uri.starts_with("https://").then(|| status.uri.as_ref().to_owned())),
        })
    }
}

/// An account's stable id: its profile URL, which mentions carry too (so a
/// reply's `author_id` matches the replied-to author's `id`).
fn account_id(account: &Account) -> String {
    account.url.as_deref().or(account.uri.as_deref()).unwrap_or(&account.id).to_owned()
}

/// The quoted status of a Mastodon 4.4+ quote, when the server shows it.
fn quoted_status<'a>(status: &Status<'a>) -> Option<Status<'a>> {
    let quote: Quote = serde_json::from_str(status.quote?.get()).ok()?;
    quote.quoted_status.map(|quoted| *quoted)
}

/// Sanitized status HTML → plain text, and the links that are neither
/// mentions nor hashtags (in order). Paragraphs are separated by a blank
/// line, `<br>` is a line break, everything else is its text: Mastodon
/// splits long links into "invisible" and "ellipsis" spans, and keeping
/// every span's text gives back the whole link.
pub(crate) fn html_to_text(html: &str) -> (String, Vec<String>) {
    use html5gum::{Token, Tokenizer};

    let mut text = String::with_capacity(html.len());
    let mut links = Vec::new();
    for token in Tokenizer::new(html).flatten() {
        match token {
            Token::StartTag(tag) => match tag.name.as_slice() {
                b"br" => text.push('\n'),
                b"p" => {
                    let kept = text.trim_end().len();
                    if kept > 0 {
                        text.truncate(kept);
                        text.push_str("\n\n");
                    }
                }
                b"a" => {
                    let class = tag
                        .attributes
                        .get(b"class".as_slice())
                        .map(|class| String::from_utf8_lossy(class).into_owned())
                        .unwrap_or_default();
                    let is_entity = class.split_whitespace().any(|name| name == "mention" || name == "hashtag");
                    if !is_entity && let Some(href) = tag.attributes.get(b"href".as_slice()) {
                        let href = String::from_utf8_lossy(href);
                        // An empty link (`<a href="">`) is no link.
                        if !href.trim().is_empty() {
                            links.push(href.trim().to_owned());
                        }
                    }
                }
                _ => {}
            },
            Token::String(string) => text.push_str(&String::from_utf8_lossy(&string)),
            _ => {}
        }
    }
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        text = trimmed.to_owned();
    }
    (text, links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_text_without_markup() {
        let html = r#"<p>Hello <span class="h-card"><a href="https://example.social/@bob" class="u-url mention">@<span>bob</span></a></span> &amp; <a href="https://example.social/tags/BTS" class="mention hashtag" rel="tag">#<span>BTS</span></a></p><p>see <a href="https://example.com/a/very/long/path" rel="nofollow noopener" target="_blank"><span class="invisible">https://</span><span class="ellipsis">example.com/a/very</span><span class="invisible">/long/path</span></a><br>bye &lt;script&gt;</p>"#;
        let (text, links) = html_to_text(html);
        assert_eq!(text, "Hello @bob & #BTS\n\nsee https://example.com/a/very/long/path\nbye <script>");
        assert_eq!(links, vec!["https://example.com/a/very/long/path".to_owned()]);
        assert_eq!(html_to_text("").0, "");
        assert_eq!(html_to_text("<p>unclosed <b>bold").0, "unclosed bold");
    }
}
