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
        return ApiError::Upstream {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "no_upstream",
            message: "no upstream node is configured",
        }
        .into_response();
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
        return ApiError::PayloadTooLarge.into_response();
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
            UPSTREAM_UNAVAILABLE.into_response()
        }
    }
}

/// What a client gets when the node its request went to does not answer (the
/// node is marked unhealthy, so the next request goes to another).
const UPSTREAM_UNAVAILABLE: ApiError = ApiError::Upstream {
    status: StatusCode::BAD_GATEWAY,
    code: "upstream_unavailable",
    message: "the upstream node did not answer; try again",
};

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
        Err(rejection) => {
            return ApiError::BadRequest { code: "bad_upgrade", message: rejection.body_text() }.into_response();
        }
    };
    // Connect upstream first, so a refused ticket is refused to the client. The node sees
    // the client's address (it keys its per-address socket and message limits on it when
    // it trusts this proxy with `--trusted-proxy`).
    let url = format!("{}{path_and_query}", node.base.replacen("http", "ws", 1));
    let mut upstream_request = match tungstenite::client::IntoClientRequest::into_client_request(url) {
        Ok(upstream_request) => upstream_request,
        Err(error) => {
            tracing::warn!(node = %node.base, %error, "upstream socket URL");
            return UPSTREAM_UNAVAILABLE.into_response();
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
            // The node refused the socket (a bad ticket, a limit): its answer, status and body.
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            return match response.into_body().filter(|body| !body.is_empty()) {
                Some(body) => (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
                    .into_response(),
                None => ApiError::Upstream {
                    status,
                    code: "upstream_refused",
                    message: "the upstream node refused the socket",
                }
                .into_response(),
            };
        }
        Err(error) => {
            tracing::warn!(node = %node.base, %error, "upstream socket failed");
            node.healthy.store(false, Ordering::Relaxed);
            return UPSTREAM_UNAVAILABLE.into_response();
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

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    fn request(path: &str) -> Request {
        let mut request = Request::builder().uri(path).body(Body::empty()).unwrap_or_else(|error| panic!("{error}"));
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
        request
    }

    /// A node that answers `GET /api/who` with its name and the client
    /// address it was told.
    async fn live_node(name: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
        let address = listener.local_addr().unwrap_or_else(|error| panic!("{error}"));
        let app = axum::Router::new().route(
            "/api/who",
            get(move |headers: HeaderMap| async move {
                let client = headers.get("x-forwarded-for").and_then(|value| value.to_str().ok()).unwrap_or_default();
                format!("{name} {client}")
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    /// An address where nothing listens.
    async fn dead_node() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
        let address = listener.local_addr().unwrap_or_else(|error| panic!("{error}"));
        drop(listener);
        format!("http://{address}")
    }

    async fn answer(router: &axum::Router, path: &str) -> (StatusCode, String) {
        let response = router.clone().oneshot(request(path)).await.unwrap_or_else(|error| panic!("{error}"));
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_else(|error| panic!("{error}"));
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_node_that_does_not_answer_costs_one_request_then_the_others_take_over() {
        let upstreams = Upstreams::new(&[dead_node().await, live_node("b").await], Vec::new());
        let router = proxy_router(upstreams, telemetry::Health::new(Duration::from_secs(60)));
        let mut answers = Vec::new();
        for _ in 0..6 {
            answers.push(answer(&router, "/api/who").await);
        }
        let failed: Vec<&(StatusCode, String)> =
            answers.iter().filter(|(status, _)| *status != StatusCode::OK).collect();
        assert!(failed.len() <= 1, "{answers:?}");
        for (status, body) in failed {
            assert_eq!(*status, StatusCode::BAD_GATEWAY);
            let error: api::ErrorResponse =
                serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"));
            assert_eq!(error.code.as_deref(), Some("upstream_unavailable"));
        }
        // The healthy node answered the rest, told the client's address;
        // round robin tries the dead node by the second request at the latest.
        let live = (StatusCode::OK, "b 127.0.0.1".to_owned());
        assert!(answers.iter().all(|answer| answer == &live || answer.0 == StatusCode::BAD_GATEWAY), "{answers:?}");
        assert!(answers[2..].iter().all(|answer| answer == &live), "{answers:?}");
    }

    #[tokio::test]
    async fn without_nodes_and_over_the_body_limit_the_answers_are_json_errors() {
        let router = proxy_router(Upstreams::new(&[], Vec::new()), telemetry::Health::new(Duration::from_secs(60)));
        let (status, body) = answer(&router, "/api/who").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let error: api::ErrorResponse = serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body}"));
        assert_eq!(error.code.as_deref(), Some("no_upstream"));

        let router = proxy_router(
            Upstreams::new(&[live_node("a").await], Vec::new()),
            telemetry::Health::new(Duration::from_secs(60)),
        );
        let mut large = Request::builder()
            .method("POST")
            .uri("/api/who")
            .body(Body::from(vec![b'x'; MAX_BODY_BYTES + 1]))
            .unwrap_or_else(|error| panic!("{error}"));
        large.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
        let response = router.oneshot(large).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_else(|error| panic!("{error}"));
        let error: api::ErrorResponse = serde_json::from_slice(&body).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(error.code.as_deref(), Some("body_too_large"));
    }

    #[tokio::test]
    async fn health_routes_answer_on_the_gateway_itself() {
        let router = proxy_router(
            Upstreams::new(&[dead_node().await], Vec::new()),
            telemetry::Health::new(Duration::from_secs(60)),
        );
        let (status, _) = answer(&router, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }
}
