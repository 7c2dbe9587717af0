//! `jetstream[:URL]`: Bluesky's Jetstream over WebSocket, posts and reposts
//! only (`wantedCollections`). Every text message goes on as one record,
//! identity and account events included (the parser learns handles from
//! them). The record's checkpoint is the newest `time_us` seen so far; on
//! every (re)connect the source asks for `cursor = that − 5 s`, so events
//! that arrived out of time order are not skipped. The rewind replays a few
//! seconds of events; the store is idempotent, so they are harmless.
//!
//! Compression: Jetstream's `compress=true` sends zstd frames compressed
//! with a custom dictionary that clients must ship and keep in step with the
//! server, and the zstd crate builds libzstd from C. The bandwidth it saves
//! does not matter at Deck's rates (posts and reposts are a small share of
//! the firehose), so the source does not ask for compression; a binary frame
//! is counted and handed on as unreadable.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use model::{Origin, RawRecord};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::SourceError;
use crate::backoff::{Backoff, Sleep, TokioSleep, websocket_backoff};
use crate::health::{HealthHandle, SourceHealth};
use crate::net::{Disconnect, install_tls_provider, next_or_stall, pause, send, unreadable};

/// The public instance Deck reads by default.
pub const DEFAULT_JETSTREAM_URL: &str = "wss://jetstream2.us-east.bsky.network/subscribe";

/// The collections Deck asks for: posts and reposts.
pub const JETSTREAM_COLLECTIONS: [&str; 2] = ["app.bsky.feed.post", "app.bsky.feed.repost"];

/// How a Jetstream source connects and reconnects.
#[derive(Clone)]
pub struct JetstreamConfig {
    /// The `/subscribe` endpoint (`ws://` or `wss://`).
    pub url: String,
    /// `wantedCollections`; empty asks for everything.
    pub collections: Vec<String>,
    /// How far before the last seen `time_us` a reconnect resumes.
    pub rewind: Duration,
    /// A connection with no message for this long is dropped and reopened.
    pub stall_timeout: Duration,
    /// How long the WebSocket handshake may take.
    pub connect_timeout: Duration,
    /// Delays between attempts; reset once a connection delivers.
    pub backoff: Backoff,
    /// Waits out the delays (tests record them instead).
    pub sleep: Arc<dyn Sleep>,
    /// Where the source reports its health.
    pub health: SourceHealth,
}

impl JetstreamConfig {
    /// Defaults for `url`: posts and reposts, a 5 s rewind, a 30 s stall
    /// timeout (the filtered public stream carries several events a second)
    /// and [`websocket_backoff`].
    pub fn new(url: &str) -> JetstreamConfig {
        JetstreamConfig {
            url: url.to_owned(),
            collections: JETSTREAM_COLLECTIONS.iter().map(|c| (*c).to_owned()).collect(),
            rewind: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            backoff: websocket_backoff(),
            sleep: Arc::new(TokioSleep),
            health: SourceHealth::default(),
        }
    }
}

/// Reads Jetstream.
pub struct JetstreamSource {
    name: String,
    config: JetstreamConfig,
}

impl JetstreamSource {
    /// A source named `name` (its checkpoint key, e.g. `jetstream`).
    pub fn new(name: &str, config: JetstreamConfig) -> JetstreamSource {
        JetstreamSource { name: name.to_owned(), config }
    }

    /// The URL of one connection attempt: the endpoint, the wanted
    /// collections and, when resuming, the cursor.
    pub fn subscribe_url(&self, cursor: Option<i64>) -> String {
        let mut url = self.config.url.clone();
        let mut separator = if url.contains('?') { '&' } else { '?' };
        for collection in &self.config.collections {
            url.push(separator);
            url.push_str("wantedCollections=");
            url.push_str(collection);
            separator = '&';
        }
        if let Some(cursor) = cursor {
            url.push(separator);
            url.push_str(&format!("cursor={cursor}"));
        }
        url
    }
}

/// The two fields the source reads; everything else is skipped unread.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    did: Option<Cow<'a, str>>,
    time_us: Option<i64>,
}

/// What survives from one connection to the next.
struct Progress {
    /// The newest `time_us` seen (the checkpoint).
    cursor: Option<i64>,
    /// Records handed on since start (their `Origin::position`).
    position: u64,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[async_trait::async_trait]
impl crate::Source for JetstreamSource {
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
        let health = self.config.health.register(&self.name, "jetstream");
        let cursor = checkpoint.as_deref().and_then(|text| {
            let parsed = text.trim().parse::<i64>().ok();
            if parsed.is_none() {
                tracing::warn!(source = %self.name, checkpoint = text, "ignoring a checkpoint that is not a time_us");
            }
            parsed
        });
        let mut progress = Progress { cursor, position: 0 };
        let mut backoff = self.config.backoff.clone();
        let rewind_us = i64::try_from(self.config.rewind.as_micros()).unwrap_or(i64::MAX);
        let mut first_attempt = true;
        loop {
            if !first_attempt {
                health.reconnecting();
                let delay = backoff.next_delay();
                tracing::info!(source = %self.name, ?delay, "reconnecting to Jetstream");
                if !pause(&self.config.sleep, delay, &shutdown).await {
                    return Ok(());
                }
            }
            first_attempt = false;
            let url = self.subscribe_url(progress.cursor.map(|cursor| cursor.saturating_sub(rewind_us)));
            let connect =
                tokio::time::timeout(self.config.connect_timeout, tokio_tungstenite::connect_async(url.as_str()));
            let connected = tokio::select! {
                connected = connect => connected,
                () = shutdown.cancelled() => return Ok(()),
            };
            let mut socket = match connected {
                Ok(Ok((socket, _response))) => socket,
                Ok(Err(error)) => {
                    tracing::warn!(source = %self.name, %url, %error, "Jetstream connection failed");
                    health.disconnected(Some(error.to_string()));
                    continue;
                }
                Err(_elapsed) => {
                    tracing::warn!(source = %self.name, %url, "Jetstream handshake timed out");
                    health.disconnected(Some("handshake timed out".to_owned()));
                    continue;
                }
            };
            tracing::info!(source = %self.name, %url, "connected to Jetstream");
            health.connected();
            let ended = self.read(&mut socket, &mut progress, &mut backoff, &health, &out, &shutdown).await;
            match ended {
                Disconnect::Stop => {
                    health.disconnected(None);
                    return Ok(());
                }
                Disconnect::Network(reason) => {
                    tracing::warn!(source = %self.name, %reason, "Jetstream stream ended");
                    health.disconnected(Some(reason));
                }
            }
        }
    }
}

impl JetstreamSource {
    /// Reads one connection until it ends, handing each message on.
    async fn read(
        &self,
        socket: &mut Socket,
        progress: &mut Progress,
        backoff: &mut Backoff,
        health: &HealthHandle,
        out: &mpsc::Sender<RawRecord>,
        shutdown: &CancellationToken,
    ) -> Disconnect {
        loop {
            let message = match next_or_stall(socket, self.config.stall_timeout, shutdown).await {
                Err(disconnect) => return disconnect,
                Ok(None) => return Disconnect::Network("connection closed".to_owned()),
                Ok(Some(Err(error))) => return Disconnect::Network(error.to_string()),
                Ok(Some(Ok(message))) => message,
            };
            let payload = match message {
                Message::Text(text) => {
                    health.frame();
                    String::from(text.as_str())
                }
                Message::Binary(bytes) => {
                    health.frame();
                    health.malformed_frame();
                    unreadable(&format!("binary frame of {} bytes (compression was not requested)", bytes.len()))
                }
                Message::Close(frame) => {
                    return Disconnect::Network(format!("closed by the server: {frame:?}"));
                }
                // tungstenite answers pings itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                    health.touch();
                    continue;
                }
            };
            // The connection delivers, so the next failure starts the
            // schedule afresh.
            backoff.reset();
            progress.position += 1;
            let peek = serde_json::from_str::<Peek>(&payload).ok();
            let time_us = peek.as_ref().and_then(|peek| peek.time_us);
            if let Some(time_us) = time_us {
                progress.cursor = Some(progress.cursor.map_or(time_us, |cursor| cursor.max(time_us)));
            }
            let key = match peek.and_then(|peek| peek.did) {
                Some(did) if !did.is_empty() => did.into_owned(),
                _ => format!("{}:{}", self.name, progress.position),
            };
            health.record(time_us);
            let record = RawRecord {
                key,
                origin: Origin {
                    source: self.name.clone(),
                    position: progress.position,
                    checkpoint: progress.cursor.map(|cursor| cursor.to_string()),
                },
                payload,
                received_ms: Some(chrono::Utc::now().timestamp_millis()),
            };
            if !send(out, record, shutdown).await {
                return Disconnect::Stop;
            }
        }
    }
}
