//! The media proxy: `GET /media/{post}/{slot}` serves a picture of a stored
//! post from Deck's own origin, so readers' browsers never contact the
//! networks' CDNs and the page's CSP keeps `img-src 'self'`.
//!
//! The path names a stored post and a slot (`api::MediaSlot`), never an
//! address: the proxy looks the post up and fetches the address the source
//! gave. It cannot be turned into an open proxy, and there is no key to keep.
//! On top of that, every fetch is checked:
//! - the host must be on the allow-list (each source's CDN hosts; configurable);
//! - every address the name resolves to must be public (no loopback, private,
//!   link-local, … unless [`MediaConfig::allow_private_addresses`] is set for
//!   tests), and the connection goes to the checked addresses only (the
//!   check is the HTTP client's resolver, so a second lookup cannot differ);
//! - no proxies from the environment, no redirects, a time limit and a size
//!   limit; the answer must say `image/…` and its first bytes must be JPEG,
//!   PNG, GIF, WebP or AVIF (SVG is refused: it can carry script).
//!
//! Fetched images go to a bounded on-disk cache under the data dir (least
//! recently used first out), keyed by the SHA-256 of the source address, so
//! a picture shared by many posts is fetched once. Demo pictures
//! ([`model::DEMO_MEDIA_ORIGIN`]) are drawn here and never fetched.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use prometheus::{IntCounterVec, IntGauge, Opts};
use sha2::Digest as _;
use store_api::PostStore;

/// The CDN hosts of each source. An entry starting with `.` allows that
/// domain's subdomains.
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &[
    // X: photos, avatars, video posters, card pictures.
    "pbs.twimg.com",
    "abs.twimg.com",
    // Bluesky: pictures, avatars and video posters.
    "cdn.bsky.app",
    "video.bsky.app",
];

/// Settings of the media proxy.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// Where cached images live (created if missing), e.g. `<data-dir>/media-cache`.
    pub cache_dir: PathBuf,
    /// Bytes the cache may hold on disk before the least recently used go.
    pub cache_max_bytes: u64,
    /// Hosts images may be fetched from (see [`DEFAULT_ALLOWED_HOSTS`]).
    /// Mastodon servers keep media on their own hosts: add them here.
    pub allowed_hosts: Vec<String>,
    /// The largest image fetched.
    pub max_image_bytes: usize,
    /// Time limit of one fetch, connection included.
    pub fetch_timeout: Duration,
    /// Allow loopback and private addresses (tests with a stand-in CDN only).
    pub allow_private_addresses: bool,
}

impl MediaConfig {
    /// The defaults, with the cache in `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> MediaConfig {
        MediaConfig {
            cache_dir,
            cache_max_bytes: 512 * 1024 * 1024,
            allowed_hosts: DEFAULT_ALLOWED_HOSTS.iter().map(|host| (*host).to_owned()).collect(),
            max_image_bytes: 8 * 1024 * 1024,
            fetch_timeout: Duration::from_secs(10),
            allow_private_addresses: false,
        }
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            match allowed.strip_prefix('.') {
                Some(domain) => host == domain || host.ends_with(&allowed),
                None => host == allowed,
            }
        })
    }
}

/// Why a picture is not served (all answer 404 to the reader; the reason
/// goes to the log and the metrics).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no such post or picture")]
    NotFound,
    #[error("host not on the allow-list: {0}")]
    HostNotAllowed(String),
    #[error("address refused: {0}")]
    AddressRefused(String),
    #[error("fetch failed: {0}")]
    Fetch(String),
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("image larger than {0} bytes")]
    TooLarge(usize),
    #[error("store: {0}")]
    Store(String),
    #[error("cache: {0}")]
    Cache(String),
}

impl MediaError {
    fn label(&self) -> &'static str {
        match self {
            MediaError::NotFound => "not_found",
            MediaError::HostNotAllowed(_) | MediaError::AddressRefused(_) => "refused",
            MediaError::NotAnImage(_) | MediaError::TooLarge(_) => "rejected",
            MediaError::Fetch(_) => "fetch_error",
            MediaError::Store(_) | MediaError::Cache(_) => "error",
        }
    }
}

/// The image formats served, told by their first bytes.
fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" && (&bytes[8..12] == b"avif" || &bytes[8..12] == b"avis") {
        Some("image/avif")
    } else {
        None
    }
}

/// Whether an address is on the public internet (not loopback, private,
/// link-local, shared, documentation, multicast or otherwise reserved).
pub fn is_public_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b)) // NAT64
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, _, _] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_documentation()
        || v4.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

/// The HTTP client's resolver: resolves with the system, then keeps only
/// public addresses (or every address, for tests). The client connects to
/// what this returns, so the checked address is the one used.
struct CheckedResolver {
    allow_private_addresses: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private_addresses;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| allow_private || is_public_address(address.ip()))
                .collect();
            if addresses.is_empty() {
                return Err(Box::new(MediaError::AddressRefused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What the cache holds: file name → (bytes, last use).
struct CacheIndex {
    entries: HashMap<String, (u64, Instant)>,
    total_bytes: u64,
}

/// The proxy's counters, registered in the process's registry.
#[derive(Clone)]
struct MediaMetrics {
    requests: IntCounterVec,
    cache_bytes: IntGauge,
    cache_files: IntGauge,
    fetched_bytes: prometheus::IntCounter,
}

impl MediaMetrics {
    fn register(registry: &prometheus::Registry) -> Result<MediaMetrics, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "media_requests_total",
                "Media proxy requests by result (hit, fetched, demo, not_found, refused, rejected, fetch_error, error)",
            ),
            &["result"],
        )?;
        let cache_bytes = IntGauge::new("media_cache_bytes", "Bytes of images in the media cache on disk")?;
        let cache_files = IntGauge::new("media_cache_files", "Images in the media cache on disk")?;
        let fetched_bytes =
            prometheus::IntCounter::new("media_fetched_bytes_total", "Bytes of images fetched from the networks")?;
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(cache_bytes.clone()),
            Box::new(cache_files.clone()),
            Box::new(fetched_bytes.clone()),
        ] {
            // A second proxy in the same process (tests) shares the first's counters.
            match registry.register(collector) {
                Ok(()) | Err(prometheus::Error::AlreadyReg) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(MediaMetrics { requests, cache_bytes, cache_files, fetched_bytes })
    }
}

/// The media proxy of one gateway.
pub struct MediaProxy {
    config: MediaConfig,
    client: reqwest::Client,
    store: Arc<dyn PostStore>,
    cache: Mutex<CacheIndex>,
    metrics: MediaMetrics,
}

impl MediaProxy {
    /// Opens (or creates) the cache directory and indexes what it holds.
    pub fn new(
        config: MediaConfig,
        store: Arc<dyn PostStore>,
        registry: &prometheus::Registry,
    ) -> Result<MediaProxy, MediaError> {
        std::fs::create_dir_all(&config.cache_dir).map_err(|error| MediaError::Cache(error.to_string()))?;
        let mut entries = HashMap::new();
        let mut total_bytes = 0;
        let now = Instant::now();
        for entry in std::fs::read_dir(&config.cache_dir).map_err(|error| MediaError::Cache(error.to_string()))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(metadata) = entry.metadata() else { continue };
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) && metadata.is_file() {
                total_bytes += metadata.len();
                entries.insert(name, (metadata.len(), now));
            } else if name.ends_with(".part") {
                // A write cut off by a crash.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            .user_agent("Deck media proxy")
            .dns_resolver(Arc::new(CheckedResolver { allow_private_addresses: config.allow_private_addresses }))
            .build()
            .map_err(|error| MediaError::Fetch(error.to_string()))?;
        let metrics = MediaMetrics::register(registry).map_err(|error| MediaError::Cache(error.to_string()))?;
        metrics.cache_bytes.set(i64::try_from(total_bytes).unwrap_or(i64::MAX));
        metrics.cache_files.set(i64::try_from(entries.len()).unwrap_or(i64::MAX));
        Ok(MediaProxy { config, client, store, cache: Mutex::new(CacheIndex { entries, total_bytes }), metrics })
    }

    /// The image for `/media/{post}/{slot}`: its content type and bytes.
    pub async fn image(&self, post: &str, slot: &str) -> Result<(&'static str, Vec<u8>), MediaError> {
        let result = self.image_inner(post, slot).await;
        let label = match &result {
            Ok((_, _, label)) => label,
            Err(error) => error.label(),
        };
        self.metrics.requests.with_label_values(&[label]).inc();
        result.map(|(content_type, bytes, _)| (content_type, bytes))
    }

    async fn image_inner(&self, post: &str, slot: &str) -> Result<(&'static str, Vec<u8>, &'static str), MediaError> {
        let (post_id, slot) = api::parse_media_path(&format!("{post}/{slot}")).ok_or(MediaError::NotFound)?;
        let stored = self.store.get(&[post_id]).await.map_err(|error| MediaError::Store(error.to_string()))?;
        let stored = stored.into_iter().next().ok_or(MediaError::NotFound)?;
        let url = slot.source_url(&stored.post).ok_or(MediaError::NotFound)?.to_owned();
        if let Some(path) = url.strip_prefix(model::DEMO_MEDIA_ORIGIN) {
            let path = path.to_owned();
            let png = tokio::task::spawn_blocking(move || crate::demo_pictures::draw(&path))
                .await
                .map_err(|error| MediaError::Cache(error.to_string()))?
                .ok_or(MediaError::NotFound)?;
            return Ok(("image/png", png, "demo"));
        }
        let key = hex(&sha2::Sha256::digest(url.as_bytes()));
        if let Some(bytes) = self.cached(&key).await
            && let Some(content_type) = sniff_image(&bytes)
        {
            return Ok((content_type, bytes, "hit"));
        }
        let (content_type, bytes) = self.fetch(&url).await?;
        self.metrics.fetched_bytes.inc_by(bytes.len() as u64);
        self.store_in_cache(&key, &bytes).await;
        Ok((content_type, bytes, "fetched"))
    }

    async fn cached(&self, key: &str) -> Option<Vec<u8>> {
        {
            let mut cache = self.cache.lock().ok()?;
            let entry = cache.entries.get_mut(key)?;
            entry.1 = Instant::now();
        }
        tokio::fs::read(self.config.cache_dir.join(key)).await.ok()
    }

    /// Fetches one image with every check of the module's header.
    async fn fetch(&self, url: &str) -> Result<(&'static str, Vec<u8>), MediaError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| MediaError::NotFound)?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(MediaError::HostNotAllowed(parsed.scheme().to_owned()));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(domain)) => domain.to_owned(),
            Some(url::Host::Ipv4(v4)) => {
                if !self.config.allow_private_addresses && !is_public_address(IpAddr::V4(v4)) {
                    return Err(MediaError::AddressRefused(v4.to_string()));
                }
                v4.to_string()
            }
            Some(url::Host::Ipv6(v6)) => {
                if !self.config.allow_private_addresses && !is_public_address(IpAddr::V6(v6)) {
                    return Err(MediaError::AddressRefused(v6.to_string()));
                }
                v6.to_string()
            }
            None => return Err(MediaError::NotFound),
        };
        if !self.config.allows_host(&host) {
            return Err(MediaError::HostNotAllowed(host));
        }
        let response = self
            .client
            .get(parsed)
            .header(header::ACCEPT, "image/avif,image/webp,image/png,image/jpeg,image/gif")
            .send()
            .await
            .map_err(|error| MediaError::Fetch(error.to_string()))?;
        if !response.status().is_success() {
            return Err(MediaError::Fetch(format!("status {}", response.status())));
        }
        let declared = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !declared.starts_with("image/") || declared.starts_with("image/svg") {
            return Err(MediaError::NotAnImage(declared));
        }
        let limit = self.config.max_image_bytes;
        if response.content_length().is_some_and(|length| length > limit as u64) {
            return Err(MediaError::TooLarge(limit));
        }
        let mut bytes = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| MediaError::Fetch(error.to_string()))?;
            if bytes.len() + chunk.len() > limit {
                return Err(MediaError::TooLarge(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        let content_type =
            sniff_image(&bytes).ok_or_else(|| MediaError::NotAnImage(format!("{declared}, bytes differ")))?;
        Ok((content_type, bytes))
    }

    /// Writes an image to the cache (a temporary file renamed into place),
    /// then drops the least recently used until the cache fits its bound.
    async fn store_in_cache(&self, key: &str, bytes: &[u8]) {
        if bytes.len() as u64 > self.config.cache_max_bytes {
            return;
        }
        let path = self.config.cache_dir.join(key);
        let part = self.config.cache_dir.join(format!("{key}.part"));
        if tokio::fs::write(&part, bytes).await.is_err() || tokio::fs::rename(&part, &path).await.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
            return;
        }
        let evicted = {
            let Ok(mut cache) = self.cache.lock() else { return };
            if let Some((old_bytes, _)) = cache.entries.insert(key.to_owned(), (bytes.len() as u64, Instant::now())) {
                cache.total_bytes -= old_bytes;
            }
            cache.total_bytes += bytes.len() as u64;
            let mut evicted = Vec::new();
            if cache.total_bytes > self.config.cache_max_bytes {
                let mut by_age: Vec<(Instant, String, u64)> =
                    cache.entries.iter().map(|(name, (size, used))| (*used, name.clone(), *size)).collect();
                by_age.sort();
                // Down to 90 %, so that eviction does not run on every write.
                let target = self.config.cache_max_bytes / 10 * 9;
                for (_, name, size) in by_age {
                    if cache.total_bytes <= target {
                        break;
                    }
                    cache.entries.remove(&name);
                    cache.total_bytes -= size;
                    evicted.push(name);
                }
            }
            self.metrics.cache_bytes.set(i64::try_from(cache.total_bytes).unwrap_or(i64::MAX));
            self.metrics.cache_files.set(i64::try_from(cache.entries.len()).unwrap_or(i64::MAX));
            evicted
        };
        for name in evicted {
            let _ = tokio::fs::remove_file(self.config.cache_dir.join(name)).await;
        }
    }

    /// Bytes and files the cache holds now.
    pub fn cache_figures(&self) -> (u64, usize) {
        self.cache.lock().map(|cache| (cache.total_bytes, cache.entries.len())).unwrap_or_default()
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// `GET /media/{post}/{slot}`.
pub(crate) async fn serve(
    State(state): State<crate::AppState>,
    Path((post, slot)): Path<(String, String)>,
) -> Response {
    let Some(proxy) = state.media.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match proxy.image(&post, &slot).await {
        Ok((content_type, bytes)) => {
            let mut response = Response::new(Body::from(bytes));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            // A path names one post's picture: it does not change.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
            headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
            response
        }
        Err(error) => {
            if !matches!(error, MediaError::NotFound) {
                tracing::debug!(%error, post, slot, "media not served");
            }
            StatusCode::NOT_FOUND.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public_address(private.parse().unwrap()), "{private}");
        }
        for public in ["151.101.0.1", "2606:4700::1111"] {
            assert!(is_public_address(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn images_are_told_by_their_bytes() {
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image(b"GIF89a"), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"<svg xmlns="), None);
        assert_eq!(sniff_image(b"<html>"), None);
    }

    /// A PNG of `len` bytes: the signature, then padding (the proxy tells
    /// images by their first bytes).
    fn png(len: usize) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.resize(len, 0);
        bytes
    }

    /// A stand-in CDN on 127.0.0.1: `/png/N` (an N-byte PNG), `/slow` (a PNG
    /// after 5 s), `/redirect` (302 to `/png/10`), `/chunked/N` (N bytes of
    /// PNG with no length, in 64 KiB chunks).
    async fn start_cdn() -> (u16, tokio::task::JoinHandle<()>) {
        use axum::routing::get;
        let image = |bytes: Vec<u8>| ([(header::CONTENT_TYPE, "image/png")], bytes);
        let app = axum::Router::new()
            .route("/png/{len}", get(move |Path(len): Path<usize>| async move { image(png(len)) }))
            .route(
                "/slow",
                get(move || async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    image(png(10))
                }),
            )
            .route("/redirect", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/png/10")]) }))
            .route(
                "/chunked/{len}",
                get(|Path(len): Path<usize>| async move {
                    let bytes = png(len);
                    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                        bytes.chunks(64 * 1024).map(|chunk| Ok(chunk.to_vec())).collect();
                    ([(header::CONTENT_TYPE, "image/png")], Body::from_stream(futures::stream::iter(chunks)))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
        let port = listener.local_addr().map(|address| address.port()).unwrap_or_default();
        (port, tokio::spawn(async move { axum::serve(listener, app).await.unwrap_or_else(|error| panic!("{error}")) }))
    }

    /// A real embedded store holding one post per address, each as an
    /// author's avatar (the `avatar` slot); returns the post ids in order.
    async fn store_with_avatars(dir: &std::path::Path, urls: &[String]) -> (Arc<dyn PostStore>, Vec<String>) {
        let store = store::EmbeddedStore::open(dir).unwrap_or_else(|error| panic!("{error}"));
        let mut events = Vec::new();
        let mut ids = Vec::new();
        for (idx, url) in urls.iter().enumerate() {
            let id = format!("{}", 1_000 + idx);
            let author = model::Author {
                id: format!("a{idx}"),
                handle: format!("a{idx}"),
                name: String::new(),
                avatar_url: Some(url.clone()),
            };
            let post = model::Post::new(id.clone(), model::Source::Demo, author, "pictures", chrono::Utc::now());
            events.push(model::PostEvent::Upsert(model::PostBundle::single(post)));
            ids.push(id);
        }
        store
            .apply(store_api::WriteBatch { events, checkpoints: Vec::new() })
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        (Arc::new(store), ids)
    }

    fn avatar_path(id: &str) -> String {
        let path = api::media_path(id, api::MediaSlot::Avatar);
        path.trim_start_matches(api::MEDIA_PATH_PREFIX).to_owned()
    }

    async fn image(proxy: &MediaProxy, id: &str) -> Result<(&'static str, Vec<u8>), MediaError> {
        let path = avatar_path(id);
        let (post, slot) = path.split_once('/').unwrap_or_default();
        proxy.image(post, slot).await
    }

    #[tokio::test]
    async fn the_proxy_refuses_oversize_slow_and_redirected_images_and_evicts_the_least_recently_used() {
        let (port, cdn) = start_cdn().await;
        let base = format!("http://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let urls: Vec<String> = [
            "/png/1000",
            "/png/1001",
            "/png/1002",
            "/png/1003",        // 0–3: the cache's turn
            "/png/2000000",     // 4: a declared length over the limit
            "/chunked/2000000", // 5: no length, over the limit as it streams
            "/slow",            // 6: slower than the time limit
            "/redirect",        // 7: a redirect, even to an allowed image
        ]
        .iter()
        .map(|path| format!("{base}{path}"))
        .collect();
        let (store, ids) = store_with_avatars(&dir.path().join("store"), &urls).await;
        let config = MediaConfig {
            cache_max_bytes: 3_100,
            allowed_hosts: vec!["127.0.0.1".into()],
            max_image_bytes: 1_000_000,
            fetch_timeout: Duration::from_millis(500),
            allow_private_addresses: true,
            ..MediaConfig::new(dir.path().join("cache"))
        };
        let registry = prometheus::Registry::new();
        let proxy = MediaProxy::new(config, store, &registry).unwrap_or_else(|error| panic!("{error}"));

        assert!(matches!(image(&proxy, &ids[4]).await, Err(MediaError::TooLarge(1_000_000))));
        assert!(matches!(image(&proxy, &ids[5]).await, Err(MediaError::TooLarge(1_000_000))));
        let slow = image(&proxy, &ids[6]).await;
        assert!(matches!(&slow, Err(MediaError::Fetch(_))), "{slow:?}");
        let redirected = image(&proxy, &ids[7]).await;
        assert!(matches!(&redirected, Err(MediaError::Fetch(reason)) if reason.contains("302")), "{redirected:?}");
        assert_eq!(proxy.cache_figures(), (0, 0), "nothing refused is cached");

        // Three images fit in 3,100 bytes; the fourth evicts down to 90 %,
        // least recently used first (the first was read again, so the second goes).
        for (idx, id) in ids[..3].iter().enumerate() {
            let fetched = image(&proxy, id).await.map(|(kind, bytes)| (kind, bytes.len()));
            assert_eq!(fetched.ok(), Some(("image/png", 1000 + idx)));
        }
        assert!(image(&proxy, &ids[0]).await.is_ok());
        assert!(image(&proxy, &ids[3]).await.is_ok());
        let (bytes, files) = proxy.cache_figures();
        assert!(bytes <= 3_100 / 10 * 9 && files == 2, "{bytes} bytes in {files} files");
        let on_disk = std::fs::read_dir(dir.path().join("cache")).map(|entries| entries.count()).unwrap_or_default();
        assert_eq!(on_disk, 2, "evicted files leave the disk");
        let hits = |proxy: &MediaProxy| proxy.metrics.requests.with_label_values(&["hit"]).get();
        let before = hits(&proxy);
        assert!(image(&proxy, &ids[0]).await.is_ok());
        assert_eq!(hits(&proxy), before + 1, "the recently used image stayed");
        assert!(image(&proxy, &ids[1]).await.is_ok());
        assert_eq!(hits(&proxy), before + 1, "the least recently used one was fetched again");
        cdn.abort();
    }

    #[test]
    fn hosts_match_exactly_or_as_subdomains_of_a_dotted_entry() {
        let mut config = MediaConfig::new(PathBuf::from("/nonexistent"));
        config.allowed_hosts.push(".files.example".into());
        assert!(config.allows_host("pbs.twimg.com"));
        assert!(config.allows_host("PBS.twimg.com."));
        assert!(!config.allows_host("evil-pbs.twimg.com"));
        assert!(!config.allows_host("pbs.twimg.com.evil.example"));
        assert!(config.allows_host("a.files.example"));
        assert!(config.allows_host("files.example"));
        assert!(!config.allows_host("xfiles.example"));
    }
}
