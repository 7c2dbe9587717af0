//! `mastodon:URL`: a Mastodon server's streaming API — the public stream
//! and any hashtag streams — over WebSocket (`/api/v1/streaming`, one
//! connection, a `subscribe` message per stream), with Server-Sent Events
//! (`/api/v1/streaming/public`, `/api/v1/streaming/hashtag?tag=`) as the
//! fallback when the WebSocket handshake is refused.
//!
//! Every frame goes on as one record in the WebSocket shape
//! (`{"event","payload"}`, the payload a JSON string); SSE events are
//! turned into the same shape. The parser maps `update`, `status.update`
//! and `delete` and ignores the rest.
//!
//! The stream does not catch up after a disconnect, so every reconnect
//! (and a start with a saved checkpoint) first backfills the gap from the
//! REST timelines, oldest first (`min_id` = the last status id seen,
//! following the `Link: rel="prev"` pages), then reads the stream, which
//! was subscribed before the backfill began so nothing falls between the
//! two. The checkpoint is the highest status id seen.
//!
//! All of a server's records share one partition key (the source's name):
//! a streaming `delete` names only the local id, which the parser can
//! match only if it saw the status first, so order matters more than
//! spreading Mastodon's modest rate over partitions.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use model::{Origin, RawRecord};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod backfill;
mod connect;

use crate::SourceError;
use crate::backoff::{Backoff, Sleep, TokioSleep, websocket_backoff};
use crate::health::{HealthHandle, SourceHealth};
use crate::net::{Disconnect, install_tls_provider, next_or_stall, pause, send, unreadable};

/// How the source reaches the streaming API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MastodonTransport {
    /// WebSocket; SSE when the handshake is refused with an HTTP error.
    Auto,
    /// WebSocket only.
    WebSocket,
    /// Server-Sent Events only.
    Sse,
}

/// How a Mastodon source connects.
#[derive(Clone)]
pub struct MastodonConfig {
    /// The server, e.g. `https://mastodon.social`.
    pub base_url: String,
    /// An access token; public streams on most servers need one.
    pub token: Option<String>,
    /// Read the federated public stream.
    pub public: bool,
    /// Hashtag streams to read (without `#`).
    pub hashtags: Vec<String>,
    /// WebSocket, SSE, or WebSocket with SSE as the fallback.
    pub transport: MastodonTransport,
    /// Ask `/api/v1/instance` where the streaming server is (it is often
    /// another host); off, the streaming API is taken to be at `base_url`.
    pub discover_streaming_url: bool,
    /// Reopen a stream silent for this long (servers send a heartbeat
    /// every 15–30 s).
    pub stall_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// Statuses per backfill page (Mastodon's maximum is 40).
    pub backfill_page_size: usize,
    /// Backfill pages per timeline and reconnect, at most; a longer gap
    /// is left unfilled and logged.
    pub backfill_max_pages: usize,
    /// Delays between attempts; reset once a connection delivers.
    pub backoff: Backoff,
    /// Waits out the delays (tests record them instead).
    pub sleep: Arc<dyn Sleep>,
    /// Where the source reports its health.
    pub health: SourceHealth,
}

impl MastodonConfig {
    /// Defaults for the server at `base_url`: the public stream, WebSocket
    /// with SSE fallback, a 90 s stall timeout, backfill of up to 10 pages
    /// of 40 statuses.
    pub fn new(base_url: &str) -> MastodonConfig {
        MastodonConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: None,
            public: true,
            hashtags: Vec::new(),
            transport: MastodonTransport::Auto,
            discover_streaming_url: true,
            stall_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(15),
            backfill_page_size: 40,
            backfill_max_pages: 10,
            backoff: websocket_backoff(),
            sleep: Arc::new(TokioSleep),
            health: SourceHealth::default(),
        }
    }
}

/// Reads a Mastodon server's streams.
pub struct MastodonSource {
    name: String,
    config: MastodonConfig,
}

impl MastodonSource {
    /// A source named `name` (normally `mastodon:URL`).
    pub fn new(name: &str, config: MastodonConfig) -> MastodonSource {
        MastodonSource { name: name.to_owned(), config }
    }
}

/// One item from a stream connection.
pub(crate) enum Incoming {
    /// A frame in the WebSocket shape.
    Frame(String),
    /// A heartbeat (SSE comment, WebSocket ping).
    Alive,
    /// A message that cannot travel as text.
    Unreadable(String),
    /// An in-band error from the server (`{"error", "status"}`).
    ServerError(String),
}

pub(crate) type Frames = Pin<Box<dyn Stream<Item = Result<Incoming, String>> + Send>>;

/// Why opening the stream failed.
enum OpenError {
    /// The WebSocket handshake got an HTTP answer other than an upgrade.
    Refused(u16),
    /// Anything else.
    Other(String),
}

/// What survives from one connection to the next.
struct Progress {
    /// The highest status id seen (the checkpoint).
    last_id: Option<String>,
    position: u64,
}

#[derive(Deserialize)]
struct FramePeek<'a> {
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct StatusPeek<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
}

/// Orders Mastodon ids: numeric ids (every current server) by value, as
/// strings of digits compare by length then text; others by text.
pub fn compare_status_ids(left: &str, right: &str) -> Ordering {
    let numeric = |id: &str| !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit());
    if numeric(left) && numeric(right) {
        left.len().cmp(&right.len()).then_with(|| left.cmp(right))
    } else {
        left.cmp(right)
    }
}

fn advance(last_id: &mut Option<String>, id: &str) {
    if last_id.as_deref().is_none_or(|last| compare_status_ids(id, last) == Ordering::Greater) {
        *last_id = Some(id.to_owned());
    }
}

fn event_time_us(created_at: Option<&str>) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(created_at?).ok().map(|time| time.timestamp_micros())
}

#[async_trait::async_trait]
impl crate::Source for MastodonSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(
        self: Box<Self>,
        checkpoint: Option<String>,
        out: mpsc::Sender<RawRecord>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError> {
        install_tls_provider();
        let health = self.config.health.register(&self.name, "mastodon");
        let client = reqwest::Client::builder()
            .connect_timeout(self.config.connect_timeout)
            .user_agent(concat!("deck/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| SourceError::Spec {
                spec: self.name.clone(),
                reason: format!("cannot build an HTTP client: {error}"),
            })?;
        let mut progress = Progress { last_id: checkpoint.filter(|id| !id.trim().is_empty()), position: 0 };
        let mut streaming_base: Option<String> = None;
        let mut use_sse = self.config.transport == MastodonTransport::Sse;
        let mut backoff = self.config.backoff.clone();
        let mut first_attempt = true;
        loop {
            if !first_attempt {
                health.reconnecting();
                let delay = backoff.next_delay();
                tracing::info!(source = %self.name, ?delay, "reconnecting to Mastodon");
                if !pause(&self.config.sleep, delay, &shutdown).await {
                    return Ok(());
                }
            }
            first_attempt = false;
            if streaming_base.is_none() {
                streaming_base = Some(self.streaming_base(&client).await);
            }
            let base = streaming_base.clone().unwrap_or_else(|| self.config.base_url.clone());
            let opened = tokio::select! {
                opened = self.open(&client, &base, use_sse) => opened,
                () = shutdown.cancelled() => return Ok(()),
            };
            let frames = match opened {
                Ok(frames) => frames,
                Err(OpenError::Refused(status)) if !use_sse && self.config.transport == MastodonTransport::Auto => {
                    tracing::warn!(source = %self.name, status, "WebSocket refused; falling back to server-sent events");
                    use_sse = true;
                    let opened = tokio::select! {
                        opened = self.open(&client, &base, true) => opened,
                        () = shutdown.cancelled() => return Ok(()),
                    };
                    match opened {
                        Ok(frames) => frames,
                        Err(error) => {
                            self.failed(&health, error);
                            continue;
                        }
                    }
                }
                Err(error) => {
                    self.failed(&health, error);
                    continue;
                }
            };
            health.connected();
            tracing::info!(source = %self.name, sse = use_sse, "connected to Mastodon streaming");
            if let Some(since) = progress.last_id.clone() {
                match self.backfill(&client, &since, &mut progress, &health, &out, &shutdown).await {
                    Ok(()) => {}
                    Err(Disconnect::Stop) => return Ok(()),
                    Err(Disconnect::Network(reason)) => {
                        tracing::warn!(source = %self.name, %reason, "backfill incomplete");
                    }
                }
            }
            match self.read(frames, &mut progress, &mut backoff, &health, &out, &shutdown).await {
                Disconnect::Stop => {
                    health.disconnected(None);
                    return Ok(());
                }
                Disconnect::Network(reason) => {
                    tracing::warn!(source = %self.name, %reason, "Mastodon stream ended");
                    health.disconnected(Some(reason));
                }
            }
        }
    }
}

impl MastodonSource {
    fn failed(&self, health: &HealthHandle, error: OpenError) {
        let reason = match error {
            OpenError::Refused(status) => format!("HTTP {status}"),
            OpenError::Other(reason) => reason,
        };
        tracing::warn!(source = %self.name, %reason, "Mastodon streaming connection failed");
        health.disconnected(Some(reason));
    }

    /// The record for the status just counted in `progress`, carrying the
    /// checkpoint to resume after it.
    fn record(&self, progress: &Progress, payload: String) -> RawRecord {
        RawRecord {
            key: self.name.clone(),
            origin: Origin {
                source: self.name.clone(),
                position: progress.position,
                checkpoint: progress.last_id.clone(),
            },
            payload,
            received_ms: Some(chrono::Utc::now().timestamp_millis()),
        }
    }

    /// Reads one connection until it ends, handing each frame on.
    async fn read(
        &self,
        mut frames: Frames,
        progress: &mut Progress,
        backoff: &mut Backoff,
        health: &HealthHandle,
        out: &mpsc::Sender<RawRecord>,
        shutdown: &CancellationToken,
    ) -> Disconnect {
        loop {
            let incoming = match next_or_stall(&mut frames, self.config.stall_timeout, shutdown).await {
                Err(disconnect) => return disconnect,
                Ok(None) => return Disconnect::Network("connection closed".to_owned()),
                Ok(Some(Err(reason))) => return Disconnect::Network(reason),
                Ok(Some(Ok(incoming))) => incoming,
            };
            let payload = match incoming {
                Incoming::Alive => {
                    health.touch();
                    continue;
                }
                Incoming::ServerError(error) => {
                    // E.g. an unknown stream or a token without the right
                    // scope: the server keeps the socket open, so say it
                    // loudly and read on.
                    health.frame();
                    health.error(error.clone());
                    tracing::error!(source = %self.name, %error, "Mastodon streaming error");
                    continue;
                }
                Incoming::Unreadable(reason) => {
                    health.frame();
                    health.malformed_frame();
                    unreadable(&reason)
                }
                Incoming::Frame(frame) => {
                    health.frame();
                    frame
                }
            };
            backoff.reset();
            let event_us = update_status(&payload).and_then(|(id, created_at_us)| {
                advance(&mut progress.last_id, &id);
                created_at_us
            });
            progress.position += 1;
            health.record(event_us);
            if !send(out, self.record(progress, payload), shutdown).await {
                return Disconnect::Stop;
            }
        }
    }
}

/// The id and event time of an `update` frame's status.
fn update_status(frame: &str) -> Option<(String, Option<i64>)> {
    let peek = serde_json::from_str::<FramePeek>(frame).ok()?;
    if peek.event.as_deref() != Some("update") {
        return None;
    }
    let payload = peek.payload?.get();
    let status: Cow<str> =
        if payload.starts_with('"') { serde_json::from_str(payload).ok()? } else { Cow::Borrowed(payload) };
    let status = serde_json::from_str::<StatusPeek>(&status).ok()?;
    Some((status.id.into_owned(), event_time_us(status.created_at.as_deref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ids_order_numerically() {
        assert_eq!(compare_status_ids("99", "100"), Ordering::Less);
        assert_eq!(compare_status_ids("117024236332527350", "106692867363994015"), Ordering::Greater);
        let mut last = Some("100".to_owned());
        advance(&mut last, "99");
        assert_eq!(last.as_deref(), Some("100"));
        advance(&mut last, "101");
        assert_eq!(last.as_deref(), Some("101"));
    }

    #[test]
    fn update_frames_give_their_status_id() {
        let frame = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/testdata/mastodon/docs-examples/websocket-update-public.json"
        ));
        let (id, created_at) = update_status(frame).unwrap();
        assert!(!id.is_empty());
        assert!(created_at.is_some());
        assert_eq!(update_status(r#"{"event":"delete","payload":"1"}"#), None);
    }
}
