//! Opening a Mastodon server's streams: where the streaming API lives
//! (`/api/v1/instance`), the WebSocket with one `subscribe` per stream, and
//! the Server-Sent Events fallback, both as one stream of [`Incoming`]
//! items.

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use super::backfill::encode_component;
use super::{FramePeek, Frames, Incoming, MastodonSource, OpenError};
use crate::sse::sse_frames;

#[derive(Deserialize)]
struct InstancePeek {
    urls: Option<InstanceUrls>,
}

#[derive(Deserialize)]
struct InstanceUrls {
    streaming_api: Option<String>,
}

impl MastodonSource {
    /// Where the streaming API lives: `urls.streaming_api` of
    /// `/api/v1/instance`, else the server itself.
    pub(super) async fn streaming_base(&self, client: &reqwest::Client) -> String {
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

    pub(super) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Opens the stream(s) over WebSocket or SSE.
    pub(super) async fn open(&self, client: &reqwest::Client, base: &str, sse: bool) -> Result<Frames, OpenError> {
        let opening = async { if sse { self.open_sse(client, base).await } else { self.open_websocket(base).await } };
        tokio::time::timeout(self.config.connect_timeout, opening)
            .await
            .unwrap_or_else(|_| Err(OpenError::Other("connecting timed out".to_owned())))
    }

    pub(super) async fn open_websocket(&self, base: &str) -> Result<Frames, OpenError> {
        let base = with_scheme(base, [("https://", "wss://"), ("http://", "ws://")]);
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

    pub(super) async fn open_sse(&self, client: &reqwest::Client, base: &str) -> Result<Frames, OpenError> {
        // The instance names its streaming server with a WebSocket scheme.
        let base = with_scheme(base, [("wss://", "https://"), ("ws://", "http://")]);
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
}

/// A WebSocket text message: a frame, or an in-band error.
fn websocket_text(text: &str) -> Incoming {
    match serde_json::from_str::<FramePeek>(text) {
        Ok(FramePeek { event: None, error: Some(error), .. }) => Incoming::ServerError(error.get().to_owned()),
        _ => Incoming::Frame(text.to_owned()),
    }
}

/// `base` with the first matching scheme of `swaps` replaced (`from`, `to`);
/// unchanged if none matches.
fn with_scheme(base: &str, swaps: [(&str, &str); 2]) -> String {
    swaps
        .iter()
        .find_map(|(from, to)| base.strip_prefix(from).map(|rest| format!("{to}{rest}")))
        .unwrap_or_else(|| base.to_owned())
}
