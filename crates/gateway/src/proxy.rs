//! `deck gateway` as its own process: the front door that forwards every
//! request to one of several upstream nodes (`deck feed`, which serves the
//! HTTP API and the live stream), skipping nodes that fail their health
//! check. HTTP requests are forwarded as they are; a WebSocket is accepted
//! here (after the origin check) and spliced to a WebSocket to the node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite;

use crate::ApiError;

/// One upstream node and whether it answered its last health check.
pub struct Upstream {
    /// Base URL, e.g. `http://127.0.0.1:8081`.
    pub base: String,
    healthy: AtomicBool,
}

/// The nodes behind the gateway, chosen round-robin among the healthy ones.
pub struct Upstreams {
    nodes: Vec<Upstream>,
    next: AtomicUsize,
    client: reqwest::Client,
    allowed_origins: Vec<String>,
    /// Largest WebSocket message accepted from a client (the feed's limit).
    max_message_bytes: usize,
}

/// Headers that describe one connection, not the message: never forwarded.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
    header::PROXY_AUTHORIZATION,
    header::HOST,
    header::CONTENT_LENGTH,
];

/// Largest request body forwarded.
const MAX_BODY_BYTES: usize = 256 * 1024;

impl Upstreams {
    pub fn new(bases: &[String], allowed_origins: Vec<String>) -> Arc<Upstreams> {
        let nodes = bases
            .iter()
            .map(|base| Upstream { base: base.trim_end_matches('/').to_owned(), healthy: AtomicBool::new(true) })
            .collect();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        let max_message_bytes = crate::GatewayConfig::default().max_message_bytes;
        Arc::new(Upstreams { nodes, next: AtomicUsize::new(0), client, allowed_origins, max_message_bytes })
    }

    /// A healthy node, round-robin; any node if none is known healthy.
    fn pick(&self) -> Option<&Upstream> {
        let n_nodes = self.nodes.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n_nodes)
            .map(|offset| &self.nodes[(start + offset) % n_nodes])
            .find(|node| node.healthy.load(Ordering::Relaxed))
            .or_else(|| self.nodes.get(start % n_nodes.max(1)))
    }

    /// For `/readyz`: fine while at least one node answered its last
    /// health check; otherwise an error naming every node.
    pub fn readiness(&self) -> Result<(), String> {
        let unhealthy: Vec<&str> = self
            .nodes
            .iter()
            .filter(|node| !node.healthy.load(Ordering::Relaxed))
            .map(|node| node.base.as_str())
            .collect();
        if unhealthy.len() < self.nodes.len() {
            Ok(())
        } else {
            Err(format!("no upstream answers its health check: {}", unhealthy.join(", ")))
        }
    }

    /// Checks every node's `/healthz` every `interval` until `shutdown`.
    pub fn spawn_health_checks(self: &Arc<Self>, interval: Duration, shutdown: tokio_util::sync::CancellationToken) {
        let upstreams = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                for node in &upstreams.nodes {
                    let check = upstreams.client.get(format!("{}/healthz", node.base)).timeout(interval).send().await;
                    let healthy = check.is_ok_and(|response| response.status().is_success());
                    if node.healthy.swap(healthy, Ordering::Relaxed) != healthy {
                        tracing::warn!(node = %node.base, healthy, "upstream health changed");
                    }
                }
            }
        });
    }
}

/// The gateway process's router: its own `/healthz` and `/readyz`;
/// everything else goes upstream.
pub fn proxy_router(upstreams: Arc<Upstreams>, health: telemetry::Health) -> axum::Router {
    axum::Router::new().fallback(forward).with_state(upstreams).merge(crate::health_router(health))
}

async fn forward(
    State(upstreams): State<Arc<Upstreams>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let Some(node) = upstreams.pick() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no upstream").into_response();
    };
    let path_and_query = request.uri().path_and_query().map(|value| value.as_str().to_owned()).unwrap_or_default();
    let is_upgrade =
        request.headers().get(header::UPGRADE).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if is_upgrade {
        return forward_websocket(&upstreams, node, &path_and_query, peer, request).await;
    }
    let method = request.method().clone();
    let mut headers = request.headers().clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // The nodes see the client, not the gateway, when they trust this proxy
    // (`--trusted-proxy`); they ignore the header otherwise.
    if let Ok(client) = HeaderValue::from_str(&peer.ip().to_string()) {
        headers.append(HeaderName::from_static("x-forwarded-for"), client);
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let upstream = upstreams
        .client
        .request(method, format!("{}{path_and_query}", node.base))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match upstream {
        Ok(response) => {
            let status = response.status();
            let mut headers = HeaderMap::new();
            for (name, value) in response.headers() {
                if !HOP_BY_HOP.contains(name) {
                    headers.append(name.clone(), value.clone());
                }
            }
            let body = Body::from_stream(response.bytes_stream());
            (status, headers, body).into_response()
        }
        Err(error) => {
            node.healthy.store(false, Ordering::Relaxed);
            tracing::warn!(node = %node.base, %error, "upstream request failed");
            (StatusCode::BAD_GATEWAY, "upstream unavailable").into_response()
        }
    }
}

async fn forward_websocket(
    upstreams: &Upstreams,
    node: &Upstream,
    path_and_query: &str,
    peer: SocketAddr,
    request: Request,
) -> Response {
    if !crate::stream::origin_allowed(&upstreams.allowed_origins, request.headers()) {
        return ApiError::Forbidden("origin not allowed").into_response();
    }
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // Connect upstream first, so a refused ticket is refused to the client. The node sees
    // the client's address (it keys its per-address socket and message limits on it when
    // it trusts this proxy with `--trusted-proxy`).
    let url = format!("{}{path_and_query}", node.base.replacen("http", "ws", 1));
    let mut upstream_request = match tungstenite::client::IntoClientRequest::into_client_request(url) {
        Ok(upstream_request) => upstream_request,
        Err(error) => {
            tracing::warn!(node = %node.base, %error, "upstream socket URL");
            return (StatusCode::BAD_GATEWAY, "upstream unavailable").into_response();
        }
    };
    for value in parts.headers.get_all("x-forwarded-for") {
        upstream_request.headers_mut().append(HeaderName::from_static("x-forwarded-for"), value.clone());
    }
    if let Ok(client) = HeaderValue::from_str(&peer.ip().to_string()) {
        upstream_request.headers_mut().append(HeaderName::from_static("x-forwarded-for"), client);
    }
    let (upstream, _) = match tokio_tungstenite::connect_async(upstream_request).await {
        Ok(connected) => connected,
        Err(tungstenite::Error::Http(response)) => {
            return StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY).into_response();
        }
        Err(error) => {
            tracing::warn!(node = %node.base, %error, "upstream socket failed");
            return (StatusCode::BAD_GATEWAY, "upstream unavailable").into_response();
        }
    };
    // The same message limits as the feed's own socket: a client cannot make the gateway
    // buffer more than one small message per socket.
    let max_message = upstreams.max_message_bytes;
    upgrade.read_buffer_size(4 * 1024).max_message_size(max_message).max_frame_size(max_message).on_upgrade(
        move |client| async move {
            let (mut client_tx, mut client_rx) = client.split();
            let (mut upstream_tx, mut upstream_rx) = upstream.split();
            let to_upstream = async {
                while let Some(Ok(message)) = client_rx.next().await {
                    let message = match message {
                        Message::Text(text) => tungstenite::Message::Text(text.as_str().into()),
                        Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
                        Message::Ping(bytes) => tungstenite::Message::Ping(bytes),
                        Message::Pong(bytes) => tungstenite::Message::Pong(bytes),
                        Message::Close(_) => break,
                    };
                    if upstream_tx.send(message).await.is_err() {
                        break;
                    }
                }
            };
            let to_client = async {
                while let Some(Ok(message)) = upstream_rx.next().await {
                    let message = match message {
                        tungstenite::Message::Text(text) => Message::Text(text.as_str().into()),
                        tungstenite::Message::Binary(bytes) => Message::Binary(bytes),
                        tungstenite::Message::Ping(bytes) => Message::Ping(bytes),
                        tungstenite::Message::Pong(bytes) => Message::Pong(bytes),
                        tungstenite::Message::Close(_) | tungstenite::Message::Frame(_) => break,
                    };
                    if client_tx.send(message).await.is_err() {
                        break;
                    }
                }
            };
            tokio::select! {
                () = to_upstream => {}
                () = to_client => {}
            }
        },
    )
}
