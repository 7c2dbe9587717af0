//! Deck's front door. One axum router serves every HTTP and WebSocket route;
//! one middleware stack in front of it adds request ids, access logs,
//! security headers, CORS for the configured origins and body limits.
//!
//! **Architecture invariant:** only this crate and `api` know HTTP and JSON;
//! the roles behind it (store, feed, trends, auth) are plain Rust.

mod demo_pictures;
mod errors;
pub mod media;
pub mod proxy;
mod ratelimit;
mod stream;
mod timeline;
mod trends_routes;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use feed::Hub;
use store_api::PostStore;
use telemetry::Metrics;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use trends::TrendStore;

pub use errors::ApiError;
pub use ratelimit::{BucketConfig, TokenBuckets};
pub use stream::{TicketGrant, Tickets};
pub use trends_routes::{ranking_of, run_trends_ticker, spawn_trends_ticker};

/// Settings of the edge.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Origins allowed to open WebSockets and make CORS requests, e.g.
    /// `http://127.0.0.1:8080`. A request without `Origin` (not a browser) is allowed.
    pub allowed_origins: Vec<String>,
    /// Columns one WebSocket may subscribe.
    pub max_columns_per_connection: usize,
    /// A live column's query must require at least one indexed term (as X's
    /// filtered-stream rules do): a query that could match every post
    /// (`-a -b`) would run the matcher on every post. `false` lets any
    /// query go live (`--live-any-query`).
    pub live_needs_positive_term: bool,
    /// WebSockets one client address may hold open.
    pub max_connections_per_ip: usize,
    /// Largest WebSocket message accepted from a client.
    pub max_message_bytes: usize,
    /// A socket with no message (pong included) for this long is closed.
    pub idle_timeout: Duration,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// Posts a `since` catch-up may send before the column is told to resync instead.
    pub max_catch_up_posts: usize,
    /// Store reads (pages, each within the store's work budget) a `since`
    /// catch-up may make before the column is told to resync instead.
    pub max_catch_up_reads: usize,
    /// The built web client on disk (`--web-dir`, for development); it
    /// wins over `web_assets`.
    pub static_dir: Option<PathBuf>,
    /// The built web client compiled into the binary; with neither this nor
    /// `static_dir`, no static files are served.
    pub web_assets: Option<Arc<dyn WebAssets>>,
    /// Peers whose `X-Forwarded-For` names the client (e.g. `deck gateway`); every
    /// per-client limit keys on the address they report. Empty: the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// `GET /api/timeline` per client (user or address): 429 with `Retry-After` beyond it.
    pub timeline_rate: BucketConfig,
    /// Store work units (postings and posts examined) a timeline read may spend for its
    /// one token; each further such share costs another token. 0: every read costs one.
    pub timeline_work_per_token: usize,
    /// WebSocket messages per client: an error frame `rate_limited` beyond it.
    pub stream_message_rate: BucketConfig,
    /// Extra origins the page may connect to (`connect-src` of the CSP), besides itself.
    pub connect_origins: Vec<String>,
    /// Send `Strict-Transport-Security`: the public URL is HTTPS, or a trusted proxy says
    /// `X-Forwarded-Proto: https`.
    pub hsts: bool,
}

/// The files of the built web client, by path relative to its root
/// (`index.html`, `assets/…`); the `deck` binary embeds them.
pub trait WebAssets: Send + Sync + std::fmt::Debug {
    /// The bytes of one file, if there is one at `path`.
    fn get(&self, path: &str) -> Option<std::borrow::Cow<'static, [u8]>>;
}

/// Serves one embedded file; a path that names no file gets `index.html`
/// (the client routes by hash, so that is only for stray links), as
/// `ServeDir` with its fallback does for `--web-dir`.
async fn embedded_asset(
    axum::extract::State(assets): axum::extract::State<Arc<dyn WebAssets>>,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let requested = uri.path().trim_start_matches('/');
    let requested = if requested.is_empty() { "index.html" } else { requested };
    let (path, bytes) = match assets.get(requested) {
        Some(bytes) => (requested, bytes),
        None => match assets.get("index.html") {
            Some(bytes) => ("index.html", bytes),
            None => return ApiError::NotFound("no such file").into_response(),
        },
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    // Built asset names carry a content hash; the page itself must be fetched again.
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    ([(header::CONTENT_TYPE, mime.as_ref().to_owned()), (header::CACHE_CONTROL, cache.to_owned())], bytes)
        .into_response()
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            allowed_origins: vec!["http://127.0.0.1:8080".into(), "http://localhost:8080".into()],
            max_columns_per_connection: 50,
            live_needs_positive_term: true,
            max_connections_per_ip: 256,
            // Room for a 100 KB query bomb to be answered with an error frame
            // (the query limit is 2,000 characters) instead of closing the socket.
            max_message_bytes: 128 * 1024,
            idle_timeout: Duration::from_secs(90),
            ping_interval: Duration::from_secs(30),
            max_catch_up_posts: 2_000,
            max_catch_up_reads: 8,
            static_dir: None,
            trusted_proxies: Vec::new(),
            // Generous: the web client opens a few pages per column; a scraper hammering one
            // address is held to 20 per second after a burst of 200.
            timeline_rate: BucketConfig { per_second: 20.0, burst: 200.0 },
            timeline_work_per_token: 1000,
            stream_message_rate: BucketConfig { per_second: 20.0, burst: 200.0 },
            connect_origins: Vec::new(),
            hsts: false,
            web_assets: None,
        }
    }
}

/// Checks bearer tokens at the front door (the accounts role provides it).
pub trait Authenticator: Send + Sync {
    /// The user a valid access token belongs to; `None` for a forged,
    /// unsigned, expired or foreign token.
    fn user_of(&self, bearer: &str) -> Option<String>;
}

/// The signed-in user of a request, set by the token check.
#[derive(Clone, Debug)]
pub struct AuthenticatedUser(pub String);

/// The token check in front of every route: a request that carries a bearer
/// token must carry a valid one (401 otherwise); the user goes into the
/// request's extensions. The accounts routes check their own tokens.
async fn check_token(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let bearer = api::client::bearer_of(request.headers()).map(str::to_owned);
    if let (Some(bearer), Some(authenticator)) = (bearer, &state.authenticator)
        && !request.uri().path().starts_with("/api/auth/")
    {
        match authenticator.user_of(&bearer) {
            Some(user) => {
                request.extensions_mut().insert(AuthenticatedUser(user));
            }
            None => return ApiError::Unauthorized("invalid or expired access token").into_response(),
        }
    }
    next.run(request).await
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn PostStore>,
    pub trends: Arc<dyn TrendStore>,
    pub hub: Arc<Hub>,
    pub tickets: Arc<dyn Tickets>,
    pub metrics: Metrics,
    pub config: Arc<GatewayConfig>,
    pub trend_frames: trends_routes::TrendFrames,
    /// Health of this process's network sources, for `/api/sources` and `/metrics`.
    pub source_health: telemetry::SourceHealth,
    /// Validates bearer tokens; without one, tokens are not checked here.
    pub authenticator: Option<Arc<dyn Authenticator>>,
    /// Stages and engine probes of this process, for `/readyz`.
    pub health: telemetry::Health,
    /// The `/media/…` proxy; without one, `/media/…` answers 404.
    pub media: Option<Arc<media::MediaProxy>>,
    /// Open WebSockets per client address key (IPv6 by /64).
    connections_per_ip: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    timeline_buckets: Arc<TokenBuckets>,
    stream_message_buckets: Arc<TokenBuckets>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn PostStore>,
        trends: Arc<dyn TrendStore>,
        hub: Arc<Hub>,
        tickets: Arc<dyn Tickets>,
        metrics: Metrics,
        config: GatewayConfig,
    ) -> AppState {
        AppState {
            timeline_buckets: Arc::new(TokenBuckets::new(config.timeline_rate)),
            stream_message_buckets: Arc::new(TokenBuckets::new(config.stream_message_rate)),
            store,
            trends,
            hub,
            tickets,
            metrics,
            config: Arc::new(config),
            trend_frames: trends_routes::TrendFrames::new(),
            source_health: telemetry::SourceHealth::new(),
            authenticator: None,
            health: telemetry::Health::new(DEFAULT_MAX_LAG),
            media: None,
            connections_per_ip: Arc::default(),
        }
    }
}

/// The lag bound of `/readyz` when none is configured.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(30);

async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 with the report when every stage runs, every engine
/// answers and no stage lags past its bound; 503 with the same report
/// (whose `failing` names each reason) otherwise.
async fn readyz(axum::extract::State(health): axum::extract::State<telemetry::Health>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let readiness = health.readiness().await;
    let status = if readiness.ready { http::StatusCode::OK } else { http::StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CACHE_CONTROL, "no-store")], axum::Json(readiness)).into_response()
}

/// `/healthz` and `/readyz`, answered on the public and the admin listener.
pub fn health_router(health: telemetry::Health) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).with_state(health)
}

/// What the admin listener serves from.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: Metrics,
    pub health: telemetry::Health,
    /// Health of this process's network sources, for `/api/sources` and `/metrics`.
    pub source_health: telemetry::SourceHealth,
    /// The live feed of this process, if it has one (its queues are in `/metrics`).
    pub hub: Option<Arc<Hub>>,
    /// The trend store of this process, if it has one (its memory is in `/metrics`).
    pub trends: Option<Arc<dyn TrendStore>>,
}

impl AdminState {
    /// The admin side of a process that runs the HTTP API (`serve`, `feed`).
    pub fn of(state: &AppState) -> AdminState {
        AdminState {
            metrics: state.metrics.clone(),
            health: state.health.clone(),
            source_health: state.source_health.clone(),
            hub: Some(state.hub.clone()),
            trends: Some(state.trends.clone()),
        }
    }
}

/// The admin listener's routes (`--admin-port`, 127.0.0.1 by default):
/// `/metrics`, `/api/sources`, `/healthz` and `/readyz`. Never on the public port.
pub fn admin_router(admin: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/sources", get(sources))
        .with_state(admin.clone())
        .merge(health_router(admin.health))
        .layer(TraceLayer::new_for_http())
}

async fn metrics(axum::extract::State(state): axum::extract::State<AdminState>) -> String {
    use prometheus::core::Collector as _;
    let mut families = state.metrics.registry.gather();
    // Live frames waiting in WebSocket queues, against --stream-total-queue-bytes.
    if let Some(hub) = &state.hub
        && let Ok(queued) = prometheus::IntGauge::new(
            "deck_stream_queued_bytes",
            "Bytes of live frames queued for WebSockets and not yet sent",
        )
    {
        queued.set(i64::try_from(hub.queued_bytes()).unwrap_or(i64::MAX));
        families.extend(queued.collect());
    }
    // What the in-process trends hold (bounded by the horizon and
    // DEFAULT_MAX_TRACKED_IDS; see docs/deploy.md).
    if let Some(stats) = state.trends.as_ref().and_then(|trends| trends.memory_stats()) {
        for (name, help, value) in [
            (
                "deck_trends_tracked_ids",
                "Post ids the embedded trends remember for duplicate detection",
                stats.tracked_ids as u64,
            ),
            (
                "deck_trends_interned_names",
                "Tags, forms, accounts and originals the embedded trends hold",
                stats.interned as u64,
            ),
            ("deck_trends_buckets", "Minutes of event time the embedded trends hold", stats.buckets as u64),
            (
                "deck_trends_evicted_id_sets",
                "Minutes whose post ids were forgotten early to bound memory",
                stats.evicted_id_sets,
            ),
        ] {
            if let Ok(gauge) = prometheus::IntGauge::new(name, help) {
                gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
                families.extend(gauge.collect());
            }
        }
    }
    // Resident memory, read at scrape time (Linux).
    if let Some(rss_bytes) = resident_bytes()
        && let Ok(rss) =
            prometheus::IntGauge::new("deck_process_resident_memory_bytes", "Resident set size of this process")
    {
        rss.set(i64::try_from(rss_bytes).unwrap_or(i64::MAX));
        families.extend(rss.collect());
    }
    // Source health, read at scrape time; label values escaped by the encoder.
    families.extend(state.source_health.metric_families());
    let mut text = prometheus::TextEncoder::new().encode_to_string(&families).unwrap_or_default();
    // Stage states and restarts (stage names are Deck's own, never outside input).
    text.push_str(&state.health.prometheus_text());
    text
}

/// The resident set size from `/proc/self/statm`, where there is one.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `GET /api/sources`: connected or not, last event time, lag, reconnects.
async fn sources(axum::extract::State(state): axum::extract::State<AdminState>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "sources": state.source_health.snapshot() }))
}

/// The whole HTTP surface of the posts roles, behind the gateway layers.
/// `extra` carries routes of other roles (accounts, which also issues the
/// stream tickets) merged in before the layers, so one stack guards all.
pub fn router(state: AppState, extra: Router) -> Router {
    let static_dir = state.config.static_dir.clone();
    let csp = HeaderValue::from_str(&content_security_policy(&state.config.connect_origins))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    let hsts_state = state.clone();
    let web_assets = state.config.web_assets.clone();
    let cors_origins: Vec<HeaderValue> =
        state.config.allowed_origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    // `/metrics` and `/api/sources` are on the admin listener only
    // (`admin_router`); `/readyz` is a route here, so the web client's
    // fallback never answers it.
    let mut app = Router::new()
        .route(
            "/api/timeline",
            get(timeline::timeline)
                .route_layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::limit_timeline)),
        )
        .route("/api/trends", get(trends_routes::trends))
        .route("/media/{post}/{slot}", get(media::serve))
        .route("/api/stream", get(stream::upgrade))
        .with_state(state.clone())
        .merge(health_router(state.health.clone()))
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(state, check_token));
    if let Some(dir) = static_dir {
        let index = dir.join("index.html");
        app = app.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(index)));
    } else if let Some(assets) = web_assets {
        app = app.fallback_service(axum::routing::get(embedded_asset).with_state(assets));
    }
    app = app.layer(axum::middleware::from_fn_with_state(hsts_state, strict_transport));
    let request_id = HeaderName::from_static("x-request-id");
    app.layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(TraceLayer::new_for_http())
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(256 * 1024))
            .layer(
                CorsLayer::new()
                    .allow_origin(AllowOrigin::list(cors_origins))
                    .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
                    .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
            )
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, csp)),
    )
}

/// The Content-Security-Policy: everything from this origin only; `connect-src` names this
/// origin (which covers its own `ws:`/`wss:` in current browsers) plus the configured
/// origins, never a `ws: wss:` wildcard that would let injected script talk anywhere.
pub fn content_security_policy(connect_origins: &[String]) -> String {
    let mut connect = String::from("'self'");
    for origin in connect_origins {
        // Only plain origins: a `;` or a space would smuggle in another directive.
        if !origin.is_empty() && origin.chars().all(|c| c.is_ascii_graphic() && c != ';' && c != ',') {
            connect.push(' ');
            connect.push_str(origin);
        }
    }
    format!(
        "default-src 'self'; connect-src {connect}; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )
}

/// `Strict-Transport-Security` when served over HTTPS (configured), or when a trusted proxy
/// says the request came over HTTPS; otherwise nothing (HSTS over plain HTTP is ignored).
async fn strict_transport(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer_trusted = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .is_some_and(|info| state.config.trusted_proxies.contains(&info.0.ip()));
    let proxied_https = peer_trusted
        && request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let mut response = next.run(request).await;
    if state.config.hsts || proxied_https {
        response
            .headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    response
}

/// Serves `app` on `listener` until `shutdown`, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
