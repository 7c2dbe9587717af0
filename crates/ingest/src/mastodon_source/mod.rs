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

use futures::{SinkExt, Stream, StreamExt};
use model::{Origin, RawRecord};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use crate::SourceError;
use crate::backoff::{Backoff, Sleep, TokioSleep, websocket_backoff};
use crate::health::{HealthHandle, SourceHealth};
use crate::net::{Disconnect, install_tls_provider, next_or_stall, pause, send, unreadable};
use crate::sse::sse_frames;

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

#[derive(Deserialize)]
struct InstancePeek {
    urls: Option<InstanceUrls>,
}

#[derive(Deserialize)]
struct InstanceUrls {
    streaming_api: Option<String>,
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

    /// Where the streaming API lives: `urls.streaming_api` of
    /// `/api/v1/instance`, else the server itself.
    async fn streaming_base(&self, client: &reqwest::Client) -> String {
        if self.config.discover_streaming_url {
            let url = format!("{}/api/v1/instance", self.config.base_url);
            let instance = async {
                let response = client.get(&url).send().await.ok()?.error_for_status().ok()?;
                let instance: InstancePeek = response.json().await.ok()?;
                instance.urls?.streaming_api
            };
            if let Ok(Some(streaming)) = tokio::time::timeout(self.config.connect_timeout, instance).await {
                return streaming.trim_end_matches('/').to_owned();
            }
        }
        self.config.base_url.clone()
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Opens the stream(s) over WebSocket or SSE.
    async fn open(&self, client: &reqwest::Client, base: &str, sse: bool) -> Result<Frames, OpenError> {
        let opening = async { if sse { self.open_sse(client, base).await } else { self.open_websocket(base).await } };
        tokio::time::timeout(self.config.connect_timeout, opening)
            .await
            .unwrap_or_else(|_| Err(OpenError::Other("connecting timed out".to_owned())))
    }

    async fn open_websocket(&self, base: &str) -> Result<Frames, OpenError> {
        let base = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.to_owned()
        };
        let url = format!("{base}/api/v1/streaming");
        let mut request = url.as_str().into_client_request().map_err(|error| OpenError::Other(error.to_string()))?;
        if let Some(token) = &self.config.token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| OpenError::Other("the token is not a valid header value".to_owned()))?;
            request.headers_mut().insert("authorization", value);
        }
        let (mut socket, _response) = match tokio_tungstenite::connect_async(request).await {
            Ok(connected) => connected,
            Err(tungstenite::Error::Http(response)) => {
                return Err(OpenError::Refused(response.status().as_u16()));
            }
            Err(error) => return Err(OpenError::Other(error.to_string())),
        };
        let mut subscriptions = Vec::new();
        if self.config.public {
            subscriptions.push(serde_json::json!({ "type": "subscribe", "stream": "public" }));
        }
        for tag in &self.config.hashtags {
            subscriptions.push(serde_json::json!({ "type": "subscribe", "stream": "hashtag", "tag": tag }));
        }
        for subscription in subscriptions {
            socket
                .send(Message::text(subscription.to_string()))
                .await
                .map_err(|error| OpenError::Other(error.to_string()))?;
        }
        let frames = socket.map(|message| match message {
            Ok(Message::Text(text)) => Ok(websocket_text(text.as_str())),
            Ok(Message::Binary(bytes)) => Ok(Incoming::Unreadable(format!("binary frame of {} bytes", bytes.len()))),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(Incoming::Alive),
            Ok(Message::Close(frame)) => Err(format!("closed by the server: {frame:?}")),
            Err(error) => Err(error.to_string()),
        });
        Ok(Box::pin(frames))
    }

    async fn open_sse(&self, client: &reqwest::Client, base: &str) -> Result<Frames, OpenError> {
        // The instance names its streaming server with a WebSocket scheme.
        let base = if let Some(rest) = base.strip_prefix("wss://") {
            format!("https://{rest}")
        } else if let Some(rest) = base.strip_prefix("ws://") {
            format!("http://{rest}")
        } else {
            base.to_owned()
        };
        let mut paths = Vec::new();
        if self.config.public {
            paths.push(format!("{base}/api/v1/streaming/public"));
        }
        for tag in &self.config.hashtags {
            paths.push(format!("{base}/api/v1/streaming/hashtag?tag={}", encode_component(tag)));
        }
        let mut streams = Vec::with_capacity(paths.len());
        for url in paths {
            let request = self.authorize(client.get(&url)).header("accept", "text/event-stream");
            let response = request.send().await.map_err(|error| OpenError::Other(error.to_string()))?;
            if !response.status().is_success() {
                return Err(OpenError::Other(format!("HTTP {} from {url}", response.status())));
            }
            streams.push(sse_frames(response));
        }
        Ok(Box::pin(futures::stream::select_all(streams)))
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

    /// Hands on the statuses after `since` from the REST timelines, oldest first.
    async fn backfill(
        &self,
        client: &reqwest::Client,
        since: &str,
        progress: &mut Progress,
        health: &HealthHandle,
        out: &mpsc::Sender<RawRecord>,
        shutdown: &CancellationToken,
    ) -> Result<(), Disconnect> {
        let limit = self.config.backfill_page_size.clamp(1, 40);
        let mut timelines = Vec::new();
        if self.config.public {
            timelines.push(format!("{}/api/v1/timelines/public", self.config.base_url));
        }
        for tag in &self.config.hashtags {
            timelines.push(format!("{}/api/v1/timelines/tag/{}", self.config.base_url, encode_component(tag)));
        }
        for timeline in timelines {
            let mut url = format!("{timeline}?min_id={}&limit={limit}", encode_component(since));
            for page_idx in 0..self.config.backfill_max_pages {
                let request = self.authorize(client.get(&url)).send();
                let response = tokio::select! {
                    response = tokio::time::timeout(self.config.connect_timeout, request) => response,
                    () = shutdown.cancelled() => return Err(Disconnect::Stop),
                };
                let response = match response {
                    Ok(Ok(response)) if response.status().is_success() => response,
                    Ok(Ok(response)) => {
                        return Err(Disconnect::Network(format!("HTTP {} from {url}", response.status())));
                    }
                    Ok(Err(error)) => return Err(Disconnect::Network(error.to_string())),
                    Err(_elapsed) => return Err(Disconnect::Network(format!("{url} timed out"))),
                };
                let newer = prev_link(response.headers());
                let body = response.text().await.map_err(|error| Disconnect::Network(error.to_string()))?;
                let statuses: Vec<&RawValue> = serde_json::from_str(&body)
                    .map_err(|error| Disconnect::Network(format!("backfill page: {error}")))?;
                let mut page: Vec<(String, Option<i64>, &RawValue)> = statuses
                    .iter()
                    .filter_map(|status| {
                        let peek = serde_json::from_str::<StatusPeek>(status.get()).ok()?;
                        Some((peek.id.into_owned(), event_time_us(peek.created_at.as_deref()), *status))
                    })
                    .collect();
                // Servers answer newest first; hand on oldest first so the
                // checkpoint only moves forward.
                page.sort_by(|left, right| compare_status_ids(&left.0, &right.0));
                let newest = page.last().map(|(id, _, _)| id.clone());
                for (id, event_us, status) in page {
                    advance(&mut progress.last_id, &id);
                    progress.position += 1;
                    health.record(event_us);
                    if !send(out, self.record(progress, status.get().to_owned()), shutdown).await {
                        return Err(Disconnect::Stop);
                    }
                }
                let Some(newest) = newest else { break };
                if statuses.len() < limit {
                    break;
                }
                if page_idx + 1 == self.config.backfill_max_pages {
                    tracing::warn!(source = %self.name, %timeline, "backfill stopped at its page limit; older gap statuses were skipped");
                }
                url = newer.unwrap_or_else(|| format!("{timeline}?min_id={}&limit={limit}", encode_component(&newest)));
            }
        }
        Ok(())
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

/// A WebSocket text message: a frame, or an in-band error.
fn websocket_text(text: &str) -> Incoming {
    match serde_json::from_str::<FramePeek>(text) {
        Ok(FramePeek { event: None, error: Some(error), .. }) => Incoming::ServerError(error.get().to_owned()),
        _ => Incoming::Frame(text.to_owned()),
    }
}

/// The `rel="prev"` target of a `Link` header: Mastodon's page of newer statuses.
fn prev_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|param| {
                let param = param.trim();
                param == "rel=\"prev\"" || param == "rel=prev"
            })
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

/// What stays as it is in a query or path component: RFC 3986's unreserved
/// characters; everything else (hashtags may be non-ASCII) is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a query or path component.
fn encode_component(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_keep_unreserved_characters_and_encode_the_rest_as_utf8() {
        assert_eq!(encode_component("a-b_c.d~E9"), "a-b_c.d~E9");
        assert_eq!(encode_component("방탄 #&/?"), "%EB%B0%A9%ED%83%84%20%23%26%2F%3F");
    }

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
