//! `x`: the X API v2 filtered stream (`GET /2/tweets/search/stream`); its
//! rules (`/2/tweets/search/stream/rules`) are [`crate::XRules`], in `x_rules.rs`.
//!
//! The stream is newline-delimited JSON over one long HTTP response; blank
//! lines are keep-alives (X sends one every 20 s or so), and a connection
//! with nothing for [`XConfig::stall_timeout`] (20 s, as X advises) is
//! reopened. Each message line goes on as one record; a message that is
//! only `errors` (an operational disconnect, a stream problem) is logged
//! and ends the connection, which is reopened with the network backoff.
//! Reconnect delays follow X's documentation ([`XBackoff`]).
//!
//! The filtered stream has no resume point (`backfill_minutes` is for
//! Enterprise accounts only), so records carry no checkpoint. It carries no
//! deletes either: X delivers them on the batch compliance endpoints, which
//! need their own access level; consuming them is out of scope here.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use model::{Origin, RawRecord};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Sleep, TokioSleep, XBackoff};
use crate::health::{HealthHandle, SourceHealth};
use crate::net::{Disconnect, install_tls_provider, next_or_stall, pause, send, unreadable};
use crate::{MAX_LINE_BYTES, SourceError, XRules};

/// X's API host.
pub const DEFAULT_X_BASE_URL: &str = "https://api.x.com";

/// What Deck asks the stream to include: the author, the referenced tweets
/// and their authors (retweets, quotes, replies), media keys, mentions, and
/// the tweet fields the parser maps.
pub const X_STREAM_QUERY: [(&str, &str); 3] = [
    (
        "expansions",
        "author_id,referenced_tweets.id,referenced_tweets.id.author_id,attachments.media_keys,entities.mentions.username",
    ),
    (
        "tweet.fields",
        "created_at,lang,public_metrics,entities,referenced_tweets,in_reply_to_user_id,attachments,note_tweet",
    ),
    ("user.fields", "username,name"),
];

/// How the X source connects.
#[derive(Clone)]
pub struct XConfig {
    /// `https://api.x.com`, or a stand-in.
    pub base_url: String,
    /// The app-only bearer token.
    pub bearer_token: String,
    /// Reopen the stream when nothing (not even a keep-alive) arrives for this long.
    pub stall_timeout: Duration,
    /// How long connecting and the response head may take.
    pub connect_timeout: Duration,
    /// X's reconnect schedules.
    pub backoff: XBackoff,
    /// Waits out the delays (tests record them instead).
    pub sleep: Arc<dyn Sleep>,
    /// Where the source reports its health.
    pub health: SourceHealth,
    /// When set, the stream's rules are synced to these before connecting
    /// (see [`XRules::sync`]).
    pub rules: Option<Vec<String>>,
}

impl XConfig {
    /// Defaults: a 20 s stall timeout and X's documented backoff.
    pub fn new(base_url: &str, bearer_token: &str) -> XConfig {
        XConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            bearer_token: bearer_token.to_owned(),
            stall_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(15),
            backoff: XBackoff::default(),
            sleep: Arc::new(TokioSleep),
            health: SourceHealth::default(),
            rules: None,
        }
    }
}

/// Reads the X API v2 filtered stream.
pub struct XSource {
    name: String,
    config: XConfig,
}

impl XSource {
    /// A source named `name` (normally `x`).
    pub fn new(name: &str, config: XConfig) -> XSource {
        XSource { name: name.to_owned(), config }
    }
}

/// Why one connection attempt failed; picks X's schedule.
enum Failure {
    Network,
    Http,
    RateLimited,
}

#[async_trait::async_trait]
impl crate::Source for XSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(
        self: Box<Self>,
        _checkpoint: Option<String>,
        out: mpsc::Sender<RawRecord>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError> {
        install_tls_provider();
        let health = self.config.health.register(&self.name, "x");
        let client = http_client(self.config.connect_timeout).map_err(|error| SourceError::Spec {
            spec: self.name.clone(),
            reason: format!("cannot build an HTTP client: {error}"),
        })?;
        if let Some(rules) = &self.config.rules {
            let manager = XRules::with_client(client.clone(), &self.config.base_url, &self.config.bearer_token);
            match manager.sync(rules).await {
                Ok(outcome) => tracing::info!(source = %self.name, ?outcome, "X stream rules synced"),
                Err(error) => tracing::error!(source = %self.name, %error, "syncing X stream rules failed"),
            }
        }
        let url = format!("{}/2/tweets/search/stream", self.config.base_url);
        let mut backoff = self.config.backoff.clone();
        let mut position = 0u64;
        let mut failure: Option<Failure> = None;
        loop {
            if let Some(failure) = failure.take() {
                health.reconnecting();
                let delay = match &failure {
                    Failure::Network => backoff.network.next_delay(),
                    Failure::Http => backoff.http.next_delay(),
                    Failure::RateLimited => backoff.rate_limited.next_delay(),
                };
                tracing::info!(source = %self.name, ?delay, "reconnecting to the X stream");
                if !pause(&self.config.sleep, delay, &shutdown).await {
                    return Ok(());
                }
            }
            let request = client.get(&url).bearer_auth(&self.config.bearer_token).query(&X_STREAM_QUERY).send();
            let response = tokio::select! {
                response = tokio::time::timeout(self.config.connect_timeout, request) => response,
                () = shutdown.cancelled() => return Ok(()),
            };
            let response = match response {
                Ok(Ok(response)) => response,
                Ok(Err(error)) => {
                    tracing::warn!(source = %self.name, %error, "X stream connection failed");
                    health.disconnected(Some(error.to_string()));
                    failure = Some(Failure::Network);
                    continue;
                }
                Err(_elapsed) => {
                    health.disconnected(Some("connect timed out".to_owned()));
                    failure = Some(Failure::Network);
                    continue;
                }
            };
            let status = response.status();
            if !status.is_success() {
                // X explains refusals in a small JSON body; it goes to the log only.
                let body = response.text().await.unwrap_or_default();
                let body: String = body.chars().take(500).collect();
                tracing::warn!(source = %self.name, %status, %body, "X stream refused the connection");
                health.disconnected(Some(format!("HTTP {status}")));
                failure = Some(if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    Failure::RateLimited
                } else {
                    Failure::Http
                });
                continue;
            }
            tracing::info!(source = %self.name, "connected to the X stream");
            health.connected();
            let ended = self.read(response, &mut position, &mut backoff, &health, &out, &shutdown).await;
            match ended {
                Disconnect::Stop => {
                    health.disconnected(None);
                    return Ok(());
                }
                Disconnect::Network(reason) => {
                    tracing::warn!(source = %self.name, %reason, "X stream ended");
                    health.disconnected(Some(reason));
                    failure = Some(Failure::Network);
                }
            }
        }
    }
}

/// One line of the stream as the splitter found it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    KeepAlive,
    Message(String),
    Unreadable(String),
}

/// Splits a byte stream into lines, holding at most [`MAX_LINE_BYTES`] of
/// an unfinished one; a longer line is skipped as it arrives and reported.
#[derive(Default)]
pub(crate) struct LineSplitter {
    buffer: Vec<u8>,
    n_oversized_bytes: usize,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, mut chunk: &[u8], lines: &mut Vec<Line>) {
        while let Some(end) = chunk.iter().position(|byte| *byte == b'\n') {
            self.append(&chunk[..end]);
            lines.push(self.take_line());
            chunk = &chunk[end + 1..];
        }
        self.append(chunk);
    }

    /// Bytes of an unfinished line (a cut-off message when the stream ends).
    pub(crate) fn pending(&self) -> usize {
        self.buffer.len() + self.n_oversized_bytes
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.n_oversized_bytes > 0 || self.buffer.len() + bytes.len() > MAX_LINE_BYTES {
            self.n_oversized_bytes += self.buffer.len() + bytes.len();
            self.buffer.clear();
        } else {
            self.buffer.extend_from_slice(bytes);
        }
    }

    fn take_line(&mut self) -> Line {
        if self.n_oversized_bytes > 0 {
            let n_bytes = std::mem::take(&mut self.n_oversized_bytes);
            return Line::Unreadable(format!("line is {n_bytes} bytes, over the {MAX_LINE_BYTES}-byte limit"));
        }
        let line = std::mem::take(&mut self.buffer);
        match String::from_utf8(line) {
            Ok(text) => {
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    Line::KeepAlive
                } else if trimmed.len() == text.len() {
                    Line::Message(text)
                } else {
                    Line::Message(trimmed.to_owned())
                }
            }
            Err(error) => Line::Unreadable(format!(
                "line is not UTF-8 (invalid byte at offset {})",
                error.utf8_error().valid_up_to()
            )),
        }
    }
}

/// The parts of a stream message the source looks at.
#[derive(Deserialize)]
struct MessagePeek<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    errors: Option<Vec<Problem<'a>>>,
}

#[derive(Deserialize)]
struct DataPeek<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Debug)]
struct Problem<'a> {
    #[serde(borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Option<Cow<'a, str>>,
    #[serde(borrow)]
    disconnect_type: Option<Cow<'a, str>>,
}

impl XSource {
    async fn read(
        &self,
        response: reqwest::Response,
        position: &mut u64,
        backoff: &mut XBackoff,
        health: &HealthHandle,
        out: &mpsc::Sender<RawRecord>,
        shutdown: &CancellationToken,
    ) -> Disconnect {
        let mut body = Box::pin(response.bytes_stream());
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        loop {
            let chunk = match next_or_stall(&mut body, self.config.stall_timeout, shutdown).await {
                Err(disconnect) => return disconnect,
                Ok(Some(Ok(chunk))) => chunk,
                Ok(ended) => {
                    let reason = match ended {
                        Some(Err(error)) => error.to_string(),
                        _ => "the server ended the stream".to_owned(),
                    };
                    if splitter.pending() > 0 {
                        // A message cut off by the disconnect is lost here
                        // and cannot be recovered (no resume on this stream).
                        health.malformed_frame();
                        tracing::warn!(source = %self.name, n_bytes = splitter.pending(), "dropping a message cut off by the disconnect");
                    }
                    return Disconnect::Network(reason);
                }
            };
            health.touch();
            // Bytes arrived: the connection is healthy, so X's schedules start over.
            backoff.reset();
            splitter.push(&chunk, &mut lines);
            for line in lines.drain(..) {
                let payload = match line {
                    Line::KeepAlive => continue,
                    Line::Unreadable(reason) => {
                        health.frame();
                        health.malformed_frame();
                        unreadable(&reason)
                    }
                    Line::Message(text) => {
                        health.frame();
                        text
                    }
                };
                let peek = serde_json::from_str::<MessagePeek>(&payload).ok();
                let data = peek
                    .as_ref()
                    .and_then(|peek| peek.data)
                    .and_then(|data| serde_json::from_str::<DataPeek>(data.get()).ok());
                if let Some(MessagePeek { data: None, errors: Some(problems) }) = &peek {
                    let titles: Vec<String> = problems
                        .iter()
                        .map(|problem| {
                            format!(
                                "{} ({}): {}",
                                problem.title.as_deref().unwrap_or("error"),
                                problem.disconnect_type.as_deref().unwrap_or("-"),
                                problem.detail.as_deref().unwrap_or("")
                            )
                        })
                        .collect();
                    return Disconnect::Network(format!("X sent {}", titles.join("; ")));
                }
                *position += 1;
                let event_us = data
                    .as_ref()
                    .and_then(|data| data.created_at.as_deref())
                    .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
                    .map(|time| time.timestamp_micros());
                let key = match data.and_then(|data| data.id) {
                    Some(id) if !id.is_empty() => id.into_owned(),
                    _ => format!("{}:{}", self.name, position),
                };
                health.record(event_us);
                let record = RawRecord {
                    key,
                    origin: Origin { source: self.name.clone(), position: *position, checkpoint: None },
                    payload,
                    received_ms: Some(chrono::Utc::now().timestamp_millis()),
                };
                if !send(out, record, shutdown).await {
                    return Disconnect::Stop;
                }
            }
        }
    }
}

pub(crate) fn http_client(connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(concat!("deck/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_keep_alives() {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        splitter.push(b"{\"data\":1}\r\n\r\n{\"da", &mut lines);
        assert_eq!(splitter.pending(), 4);
        splitter.push(b"ta\":2}\r\n\xff\n", &mut lines);
        assert_eq!(lines[0], Line::Message("{\"data\":1}".into()));
        assert_eq!(lines[1], Line::KeepAlive);
        assert_eq!(lines[2], Line::Message("{\"data\":2}".into()));
        assert!(matches!(&lines[3], Line::Unreadable(reason) if reason.contains("UTF-8")));
        lines.clear();
        splitter.push(&vec![b'x'; MAX_LINE_BYTES + 10], &mut lines);
        splitter.push(b"yy\n{}\n", &mut lines);
        assert!(matches!(&lines[0], Line::Unreadable(reason) if reason.contains("limit")));
        assert_eq!(lines[1], Line::Message("{}".into()));
        assert_eq!(splitter.pending(), 0);
    }
}
