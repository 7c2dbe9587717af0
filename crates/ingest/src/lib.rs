//! Where posts come from. Sources ([`Source`]) read a stream — the demo
//! generator, a replay file, later the network services — and hand on raw
//! records without parsing them; the [`Parser`] (run by processors) detects
//! each record's format and maps it to the normalized [`model::Post`].
//!
//! Formats, detected per record: X API v2 stream messages and response
//! pages, X API v1.1 statuses, search pages, timelines and delete notices,
//! Bluesky Jetstream events, Mastodon statuses and streaming frames, and
//! Deck's own demo records (`{"deck": PostBundle}`).

pub mod backoff;
mod demo;
mod health;
mod jetstream;
mod jetstream_source;
mod mastodon;
mod mastodon_source;
mod net;
pub mod normalize;
mod replay;
mod sse;
mod x;
mod x_rules;
mod x_source;

/// Entry points for the fuzz targets (`fuzz/`) and the corpus replay in
/// `crates/fuzz-harness`: the parts of the sources that read outside bytes,
/// apart from the network.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::sse::sse_decode;

    /// Sanitized status HTML → plain text and links (Mastodon).
    pub fn html_to_text(html: &str) -> (String, Vec<String>) {
        crate::mastodon::html_to_text(html)
    }

    /// The entities a post would get from its text when the source gives none.
    pub fn fill_entities(post: &mut model::Post) {
        crate::fill_entities(post);
    }
}

use std::borrow::Cow;

use model::{PostEvent, RawRecord};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use demo::{DemoGenerator, DemoSource};
pub use health::{HealthHandle, SourceHealth, SourceStatus};
pub use jetstream_source::{DEFAULT_JETSTREAM_URL, JETSTREAM_COLLECTIONS, JetstreamConfig, JetstreamSource};
pub use mastodon_source::{MastodonConfig, MastodonSource, MastodonTransport, compare_status_ids};
pub use replay::{MAX_LINE_BYTES, ReplaySource};
pub use x_rules::{X_RULE_TAG, XRule, XRules, XRulesError, XRulesLimits, XRulesSync};
pub use x_source::{DEFAULT_X_BASE_URL, X_STREAM_QUERY, XConfig, XSource};

/// A record that cannot be turned into posts. The message says what is
/// wrong; the caller logs it together with the record's origin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The payload is not one complete JSON document (cut off, two values
    /// back to back, not JSON at all).
    #[error("malformed JSON: {0}")]
    Json(String),
    /// Valid JSON of a known format, but a required field is missing or has
    /// the wrong type.
    #[error("unexpected message shape: {0}")]
    Shape(String),
    /// Valid JSON, but none of the formats Deck reads.
    #[error("unknown message format (none of X v2, X v1.1, Jetstream, Mastodon, Deck)")]
    UnknownFormat,
    /// A field the format requires is absent or unusable.
    #[error("missing or malformed field `{0}`")]
    Field(&'static str),
    /// The source could not hand the message on as text (too long, not
    /// UTF-8); it sent this marker so the record is counted where records are.
    #[error("unreadable record: {0}")]
    Unreadable(String),
    /// A post or delete whose id cannot be stored safely (see [`normalize`]).
    #[error(transparent)]
    Unusable(#[from] normalize::NormalizeError),
}

impl From<serde_json::Error> for ParseError {
    fn from(error: serde_json::Error) -> Self {
        match error.classify() {
            serde_json::error::Category::Data => ParseError::Shape(error.to_string()),
            _ => ParseError::Json(error.to_string()),
        }
    }
}

/// A source that cannot start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The `--source` spec is not one Deck knows or is incomplete.
    #[error("bad source `{spec}`: {reason}")]
    Spec { spec: String, reason: String },
    /// Reading the replay file failed.
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Options every source may use.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// Replay pace in lines per second; `None` is as fast as the pipeline takes them.
    pub replay_rate: Option<f64>,
    /// Demo posts per second (steady rate; bursts come on top).
    pub demo_rate: f64,
    /// Demo seed: the same seed gives the same stream of posts.
    pub demo_seed: u64,
    /// The X API host (`--x-base-url`).
    pub x_base_url: String,
    /// X's app-only bearer token; `None` reads `X_BEARER_TOKEN`.
    pub x_bearer_token: Option<String>,
    /// When set, the X stream's rules are synced to these at start
    /// (see [`XRules::sync`]).
    pub x_rules: Option<Vec<String>>,
    /// A Mastodon access token; `None` reads `MASTODON_TOKEN` (optional).
    pub mastodon_token: Option<String>,
    /// Mastodon hashtag streams to read besides the public stream.
    pub mastodon_hashtags: Vec<String>,
    /// Where network sources report their health (`GET /api/sources`).
    pub health: SourceHealth,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            replay_rate: None,
            demo_rate: 20.0,
            demo_seed: 7,
            x_base_url: DEFAULT_X_BASE_URL.to_owned(),
            x_bearer_token: None,
            x_rules: None,
            mastodon_token: None,
            mastodon_hashtags: Vec::new(),
            health: SourceHealth::default(),
        }
    }
}

/// A stream of raw records.
///
/// Network sources fit the same shape: they connect in `run`, resume from
/// `checkpoint` (Jetstream's `time_us`, Mastodon's last status id), put the
/// resume point of each record in [`model::Origin::checkpoint`] and
/// reconnect with back-off until `shutdown`.
#[async_trait::async_trait]
pub trait Source: Send {
    /// Stable name used for checkpoints and metrics, e.g. `replay:/path` or `demo`.
    fn name(&self) -> &str;

    /// Runs until the source ends (a replay's end of file) or `shutdown`.
    /// Sends records into `out`; awaiting the send is the backpressure.
    /// `checkpoint` is the last checkpoint stored for this source's name
    /// (`None` on the first start).
    async fn run(
        self: Box<Self>,
        checkpoint: Option<String>,
        out: mpsc::Sender<RawRecord>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError>;
}

/// Builds a source from its command-line spec: `demo`, `replay:PATH`,
/// `jetstream[:URL]`, `x` or `mastodon:URL`. The source's name (its
/// checkpoint key) is the spec as given.
pub fn from_spec(spec: &str, options: &SourceOptions) -> Result<Box<dyn Source>, SourceError> {
    let refuse = |reason: &str| SourceError::Spec { spec: spec.to_owned(), reason: reason.to_owned() };
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    match (kind, rest) {
        ("demo", "") => Ok(Box::new(DemoSource::new(options.demo_rate, options.demo_seed))),
        ("replay", "") => Err(refuse("replay needs a path: replay:PATH")),
        ("replay", path) => Ok(Box::new(ReplaySource::new(path, options.replay_rate))),
        ("jetstream", url) => {
            let url = if url.is_empty() { DEFAULT_JETSTREAM_URL } else { url };
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(refuse("jetstream needs a ws:// or wss:// URL"));
            }
            let mut config = JetstreamConfig::new(url);
            config.health = options.health.clone();
            Ok(Box::new(JetstreamSource::new(spec, config)))
        }
        ("x", "") => {
            let token = options
                .x_bearer_token
                .clone()
                .or_else(|| std::env::var("X_BEARER_TOKEN").ok())
                .filter(|token| !token.trim().is_empty())
                .ok_or_else(|| refuse("the X stream needs a bearer token in X_BEARER_TOKEN"))?;
            let mut config = XConfig::new(&options.x_base_url, token.trim());
            config.health = options.health.clone();
            config.rules = options.x_rules.clone();
            Ok(Box::new(XSource::new(spec, config)))
        }
        ("x", _) => Err(refuse("x takes no argument; use --x-base-url for another host")),
        ("mastodon", "") => Err(refuse("mastodon needs a server: mastodon:https://HOST")),
        ("mastodon", url) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(refuse("mastodon needs an http:// or https:// server URL"));
            }
            let mut config = MastodonConfig::new(url);
            config.token = options
                .mastodon_token
                .clone()
                .or_else(|| std::env::var("MASTODON_TOKEN").ok())
                .filter(|token| !token.trim().is_empty());
            config.hashtags = options.mastodon_hashtags.clone();
            config.health = options.health.clone();
            Ok(Box::new(MastodonSource::new(spec, config)))
        }
        _ => Err(refuse("expected demo, replay:PATH, jetstream[:URL], x or mastodon:URL")),
    }
}

/// A cheap, best-effort look at the post id (or, for Jetstream, the
/// account's DID, so one account's events stay in order) for the log's
/// partition key. One scan that skips everything but the few fields that
/// name a post (a text search for `"id"` would find nested ids first);
/// `None` when the payload names no single post or is not JSON.
pub fn partition_key(payload: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(borrow)]
        did: Option<Cow<'a, str>>,
        #[serde(borrow)]
        id_str: Option<Cow<'a, str>>,
        #[serde(borrow)]
        data: Option<&'a RawValue>,
        #[serde(borrow)]
        delete: Option<DeletePeek<'a>>,
        #[serde(borrow)]
        deck: Option<DeckPeek<'a>>,
        #[serde(borrow)]
        uri: Option<Cow<'a, str>>,
        account: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct IdPeek<'a> {
        /// A string in v2 and Deck records, a (lossy) number in v1.1.
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(borrow)]
        id_str: Option<Cow<'a, str>>,
    }
    impl<'a> IdPeek<'a> {
        fn id(&self) -> Option<Cow<'a, str>> {
            serde_json::from_str(self.id?.get()).ok()
        }
    }
    #[derive(Deserialize)]
    struct DeletePeek<'a> {
        #[serde(borrow)]
        status: Option<IdPeek<'a>>,
    }
    #[derive(Deserialize)]
    struct DeckPeek<'a> {
        #[serde(borrow)]
        post: Option<IdPeek<'a>>,
    }
    if !payload.trim_start().starts_with('{') {
        return None;
    }
    let peek: Peek = serde_json::from_str(payload).ok()?;
    let key = if let Some(did) = peek.did {
        did
    } else if let Some(id) = peek.id_str {
        id
    } else if let Some(data) = peek.data {
        // A stream line's post; a page's first post.
        let first = match data.get().as_bytes().first() {
            Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(data.get()).ok()?.into_iter().next()?,
            _ => data,
        };
        serde_json::from_str::<IdPeek>(first.get()).ok()?.id()?
    } else if let Some(delete) = peek.delete {
        delete.status?.id_str?
    } else if let Some(deck) = peek.deck {
        deck.post?.id()?
    } else if peek.account.is_some() {
        peek.uri?
    } else {
        return None;
    };
    (!key.is_empty()).then(|| key.into_owned())
}

/// The keys that tell the formats apart. Each is borrowed as raw JSON, so
/// this first pass only scans the document; the format's own typed pass
/// then reads the parts it needs.
#[derive(Deserialize)]
struct Sniff<'a> {
    // Deck demo.
    #[serde(borrow)]
    deck: Option<&'a RawValue>,
    // X v2.
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    includes: Option<&'a RawValue>,
    #[serde(borrow)]
    errors: Option<&'a RawValue>,
    // X v1.1.
    #[serde(borrow)]
    id_str: Option<&'a RawValue>,
    #[serde(borrow)]
    user: Option<&'a RawValue>,
    #[serde(borrow)]
    statuses: Option<&'a RawValue>,
    #[serde(borrow)]
    delete: Option<&'a RawValue>,
    // Jetstream.
    #[serde(borrow)]
    did: Option<&'a RawValue>,
    #[serde(borrow)]
    kind: Option<&'a RawValue>,
    // Mastodon status, and streaming frame (`event` + `payload`).
    #[serde(borrow)]
    uri: Option<&'a RawValue>,
    #[serde(borrow)]
    account: Option<&'a RawValue>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    // The marker a source sends for a line it could not hand on.
    #[serde(borrow)]
    deck_unreadable: Option<Cow<'a, str>>,
}

/// Turns raw records into post events. Keeps what it learns across records:
/// Bluesky handles from identity events, Mastodon status URIs by local id
/// (streaming deletes name only the local id).
#[derive(Default)]
pub struct Parser {
    jetstream: jetstream::JetstreamState,
    mastodon: mastodon::MastodonState,
    /// Records parsed into at least zero events, and records refused.
    n_parsed: u64,
    n_malformed: u64,
}

impl Parser {
    /// A parser with empty caches.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// The events in one record: none for likes, follows, identity events,
    /// operational notices and other messages that carry no posts. Every
    /// post has passed [`normalize`], with the record's receive time (the
    /// processor's clock for records that do not carry one).
    pub fn parse(&mut self, record: &RawRecord) -> Result<Vec<PostEvent>, ParseError> {
        let received =
            record.received_ms.and_then(chrono::DateTime::from_timestamp_millis).unwrap_or_else(chrono::Utc::now);
        self.parse_payload_from(&record.origin.source, &record.payload, received)
    }

    /// [`Parser::parse`] on a bare payload received now (no origin:
    /// Mastodon deletes are matched against statuses seen from any source).
    pub fn parse_payload(&mut self, payload: &str) -> Result<Vec<PostEvent>, ParseError> {
        self.parse_payload_from("", payload, chrono::Utc::now())
    }

    /// [`Parser::parse_payload`] for a payload received at `received`.
    pub fn parse_payload_at(
        &mut self,
        payload: &str,
        received: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<PostEvent>, ParseError> {
        self.parse_payload_from("", payload, received)
    }

    /// How many records parsed, and how many were refused, so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.n_parsed, self.n_malformed)
    }

    fn parse_payload_from(
        &mut self,
        origin: &str,
        payload: &str,
        received: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<PostEvent>, ParseError> {
        let result = self.parse_document(origin, payload).and_then(|mut events| {
            normalize::events(&mut events, received, fill_entities)?;
            Ok(events)
        });
        match &result {
            Ok(_) => self.n_parsed += 1,
            Err(_) => self.n_malformed += 1,
        }
        result
    }

    fn parse_document(&mut self, origin: &str, payload: &str) -> Result<Vec<PostEvent>, ParseError> {
        let payload = payload.trim();
        if payload.starts_with('[') {
            // A v1.1 timeline or a Mastodon timeline: an array of statuses.
            let items: Vec<&RawValue> = serde_json::from_str(payload)?;
            let mut events = Vec::with_capacity(items.len());
            for item in items {
                if !item.get().starts_with('{') {
                    return Err(ParseError::Field("statuses[]"));
                }
                events.extend(self.parse_object(origin, item.get())?);
            }
            return Ok(events);
        }
        if !payload.starts_with('{') {
            // Also catches a bare number or string, which serde would accept.
            return match serde_json::from_str::<serde::de::IgnoredAny>(payload) {
                Err(error) => Err(error.into()),
                Ok(_) => Err(ParseError::UnknownFormat),
            };
        }
        self.parse_object(origin, payload)
    }

    fn parse_object(&mut self, origin: &str, payload: &str) -> Result<Vec<PostEvent>, ParseError> {
        let sniff: Sniff = serde_json::from_str(payload)?;
        if let Some(reason) = sniff.deck_unreadable {
            return Err(ParseError::Unreadable(reason.into_owned()));
        }
        if let Some(deck) = sniff.deck {
            return demo::parse(deck.get());
        }
        if sniff.did.is_some() && sniff.kind.is_some() {
            return self.jetstream.parse(payload);
        }
        if sniff.data.is_some() || (sniff.errors.is_some() && sniff.id_str.is_none()) {
            return x::v2_message(sniff.data, sniff.includes);
        }
        if let Some(statuses) = sniff.statuses {
            return x::v1_statuses(statuses.get());
        }
        if let Some(delete) = sniff.delete {
            return x::v1_delete(delete.get());
        }
        if sniff.id_str.is_some() && sniff.user.is_some() {
            return x::v1_status(payload).map(|event| vec![event]);
        }
        if sniff.uri.is_some() && sniff.account.is_some() && sniff.content.is_some() {
            return self.mastodon.status(origin, payload).map(|event| vec![event]);
        }
        if let Some(event) = sniff.event {
            let event: Cow<str> = serde_json::from_str(event.get())?;
            return self.mastodon.frame(origin, &event, sniff.payload.map(RawValue::get));
        }
        Err(ParseError::UnknownFormat)
    }
}

/// A source that gave no entities gets them from the text, by the
/// twitter-text rules. A repost without text (Bluesky) stays empty: its
/// content is its original's.
fn fill_entities(post: &mut model::Post) {
    if !(post.hashtags.is_empty() && post.mentions.is_empty() && post.urls.is_empty() && post.cashtags.is_empty())
        || post.text.is_empty()
    {
        return;
    }
    let entities = extract::extract(&post.text);
    post.hashtags = entities.hashtags;
    post.mentions = entities.mentions;
    post.urls = entities.urls;
    post.cashtags = entities.cashtags;
}

/// A count as sources send it: a number, rarely a string (X's `"100+"` in
/// old payloads) or null.
#[derive(Clone, Copy, Default)]
pub(crate) struct Count(pub(crate) u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl serde::de::Visitor<'_> for CountVisitor {
            type Value = Count;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a count")
            }
            fn visit_u64<E>(self, value: u64) -> Result<Count, E> {
                Ok(Count(value))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Count, E> {
                Ok(Count(u64::try_from(value).unwrap_or(0)))
            }
            fn visit_f64<E>(self, value: f64) -> Result<Count, E> {
                Ok(Count(if value.is_finite() && value > 0.0 { value as u64 } else { 0 }))
            }
            fn visit_str<E>(self, value: &str) -> Result<Count, E> {
                let digits = value.trim_end_matches(|c: char| !c.is_ascii_digit());
                Ok(Count(digits.parse().unwrap_or(0)))
            }
            fn visit_unit<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_none<E>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// Parses an RFC 3339 time as the sources write it.
fn rfc3339(text: &str, field: &'static str) -> Result<chrono::DateTime<chrono::Utc>, ParseError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&chrono::Utc))
        .map_err(|_| ParseError::Field(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_come_from_ids_and_accounts() {
        assert_eq!(partition_key(r#"{"data":{"id":"123","text":"x"}}"#).as_deref(), Some("123"));
        assert_eq!(partition_key(r#"{"created_at":"x","id":5,"id_str":"5"}"#).as_deref(), Some("5"));
        assert_eq!(partition_key(r#"{"did":"did:plc:abc","time_us":1}"#).as_deref(), Some("did:plc:abc"));
        assert_eq!(partition_key(r#"{"delete":{"status":{"id":1,"id_str":"1"}}}"#).as_deref(), Some("1"));
        let nested_ids_first = r#"{"data":[{"context_annotations":[{"domain":{"id":"139"}}],"id":"42","text":"x"}]}"#;
        assert_eq!(partition_key(nested_ids_first).as_deref(), Some("42"));
        assert_eq!(partition_key(r#"{"deck":{"post":{"id":"7","author":{"id":"demo-1"}}}}"#).as_deref(), Some("7"));
        assert_eq!(
            partition_key(r#"{"id":"1","uri":"https://m.example/s/1","account":{}}"#).as_deref(),
            Some("https://m.example/s/1")
        );
        assert_eq!(partition_key(r#"{"statuses":[]}"#), None);
        assert_eq!(partition_key("garbage"), None);
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        let mut parser = Parser::new();
        assert!(matches!(parser.parse_payload("{\"data\": {\"id\": 1"), Err(ParseError::Json(_))));
        assert_eq!(parser.parse_payload("{\"hello\": 1}"), Err(ParseError::UnknownFormat));
        assert_eq!(parser.parse_payload("42"), Err(ParseError::UnknownFormat));
        assert!(matches!(parser.parse_payload("[1, 2]"), Err(ParseError::Field(_))));
        assert!(matches!(parser.parse_payload("{} {}"), Err(ParseError::Json(_))));
        assert!(matches!(parser.parse_payload(""), Err(ParseError::Json(_))));
        let no_user_id = r#"{"id_str":"1","user":{"screen_name":"x"},"text":"hi"}"#;
        let error = parser.parse_payload(no_user_id).unwrap_err();
        assert!(matches!(&error, ParseError::Shape(message) if message.contains("id_str")), "{error}");
        assert_eq!(parser.counts(), (0, 7));
    }

    #[test]
    fn v2_error_notices_carry_no_posts() {
        let mut parser = Parser::new();
        let notice = r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}"#;
        assert_eq!(parser.parse_payload(notice), Ok(Vec::new()));
    }
}
