//! Where posts come from. Sources ([`Source`]) read a stream — the demo
//! generator, a replay file, a network service — and hand on raw records
//! without parsing them; the [`Parser`] (run by processors) detects each
//! record's format and maps it to the normalized [`model::Post`].

mod demo;
mod jetstream;
mod replay;
mod x;

use model::{PostEvent, RawRecord};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use demo::DemoSource;
pub use replay::ReplaySource;

/// A record that cannot be turned into posts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("unknown message format (none of X v2, X v1.1, Jetstream, Deck)")]
    UnknownFormat,
    #[error("missing or malformed field `{0}`")]
    Field(&'static str),
}

/// A source that cannot start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("bad source `{spec}`: {reason}")]
    Spec { spec: String, reason: String },
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Options every source may use.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// Replay pace in lines per second; `None` is as fast as possible.
    pub replay_rate: Option<f64>,
    /// Demo posts per second.
    pub demo_rate: f64,
    /// Demo seed: the same seed gives the same stream.
    pub demo_seed: u64,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions { replay_rate: None, demo_rate: 20.0, demo_seed: 7 }
    }
}

/// A stream of raw records.
#[async_trait::async_trait]
pub trait Source: Send {
    /// Stable name used for checkpoints and metrics, e.g. `replay:/path` or `demo`.
    fn name(&self) -> &str;

    /// Runs until the source ends (a replay's end of file) or `shutdown`.
    /// Sends records into `out`; awaiting the send is the backpressure.
    /// `checkpoint` is the last checkpoint stored for this source's name.
    async fn run(
        self: Box<Self>,
        checkpoint: Option<String>,
        out: mpsc::Sender<RawRecord>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError>;
}

/// Builds a source from its command-line spec.
pub fn from_spec(spec: &str, options: &SourceOptions) -> Result<Box<dyn Source>, SourceError> {
    let unsupported = |reason: &str| SourceError::Spec { spec: spec.to_owned(), reason: reason.to_owned() };
    match spec.split_once(':').map_or((spec, ""), |(kind, rest)| (kind, rest)) {
        ("demo", _) => Ok(Box::new(DemoSource::new(options.demo_rate, options.demo_seed))),
        ("replay", "") => Err(unsupported("replay needs a path: replay:PATH")),
        ("replay", path) => Ok(Box::new(ReplaySource::new(path, options.replay_rate))),
        ("jetstream" | "x" | "mastodon", _) => Err(unsupported("this network source is not available in this build")),
        _ => Err(unsupported("use demo, replay:PATH, jetstream[:URL], x or mastodon:URL")),
    }
}

/// A cheap look at the post id (or the Bluesky account) for the log's
/// partition key, without a full parse.
pub fn partition_key(payload: &str) -> Option<String> {
    let find = |field: &str| -> Option<String> {
        let start = payload.find(field)? + field.len();
        let rest = payload[start..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_owned())
    };
    // Jetstream: one account's events stay in order.
    if payload.starts_with("{\"did\"") {
        return find("\"did\"");
    }
    find("\"id_str\"").or_else(|| find("\"id\""))
}

/// Turns raw records into post events; keeps what it learns across records
/// (Bluesky handles from identity events).
#[derive(Default)]
pub struct Parser {
    jetstream: jetstream::JetstreamState,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// The events in one record (none for a keep-alive, a like, a follow…).
    pub fn parse(&mut self, record: &RawRecord) -> Result<Vec<PostEvent>, ParseError> {
        self.parse_payload(&record.payload)
    }

    pub fn parse_payload(&mut self, payload: &str) -> Result<Vec<PostEvent>, ParseError> {
        let value: Value = serde_json::from_str(payload).map_err(|error| ParseError::Json(error.to_string()))?;
        let mut events = match &value {
            Value::Array(statuses) => x::v1_statuses(statuses)?,
            Value::Object(object) if object.contains_key("deck") => demo::parse(&value["deck"])?,
            Value::Object(object) if object.contains_key("did") && object.contains_key("kind") => {
                self.jetstream.parse(&value)?
            }
            Value::Object(object) if object.contains_key("data") || object.contains_key("errors") => x::v2_message(&value)?,
            Value::Object(object) if object.contains_key("statuses") => {
                x::v1_statuses(value["statuses"].as_array().ok_or(ParseError::Field("statuses"))?)?
            }
            Value::Object(object) if object.contains_key("delete") => x::v1_delete(&value)?,
            Value::Object(object) if object.contains_key("id_str") && object.contains_key("user") => {
                x::v1_statuses(std::slice::from_ref(&value))?
            }
            _ => return Err(ParseError::UnknownFormat),
        };
        for event in &mut events {
            if let PostEvent::Upsert(bundle) = event {
                fill_entities(&mut bundle.post);
                for embedded in [&mut bundle.retweeted, &mut bundle.quoted].into_iter().flatten() {
                    fill_entities(embedded);
                }
            }
        }
        Ok(events)
    }
}

/// A source that gave no entities gets them from the text, by the
/// twitter-text rules. A retweet's entities are its original's.
fn fill_entities(post: &mut model::Post) {
    if !(post.hashtags.is_empty() && post.mentions.is_empty() && post.urls.is_empty() && post.cashtags.is_empty()) {
        return;
    }
    let entities = extract::extract(&post.text);
    post.hashtags = entities.hashtags;
    post.mentions = entities.mentions;
    post.urls = entities.urls;
    post.cashtags = entities.cashtags;
}

/// Reads a string field.
fn str_field<'a>(value: &'a Value, field: &'static str) -> Result<&'a str, ParseError> {
    value[field].as_str().ok_or(ParseError::Field(field))
}

/// Reads a count that sources send as a number (or, rarely, a string).
fn count(value: &Value) -> u64 {
    value.as_u64().or_else(|| value.as_str().and_then(|text| text.parse().ok())).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_come_from_ids_and_accounts() {
        assert_eq!(partition_key(r#"{"data":{"id":"123","text":"x"}}"#).as_deref(), Some("123"));
        assert_eq!(partition_key(r#"{"created_at":"x","id":5,"id_str":"5"}"#).as_deref(), Some("5"));
        assert_eq!(partition_key(r#"{"did":"did:plc:abc","time_us":1}"#).as_deref(), Some("did:plc:abc"));
        assert_eq!(partition_key("garbage"), None);
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        let mut parser = Parser::new();
        assert!(matches!(parser.parse_payload("{\"data\": {\"id\": 1"), Err(ParseError::Json(_))));
        assert_eq!(parser.parse_payload("{\"hello\": 1}"), Err(ParseError::UnknownFormat));
        assert_eq!(parser.parse_payload("[1, 2]"), Err(ParseError::Field("id_str")));
    }
}
