//! Per-client token buckets: `/api/timeline` requests and WebSocket messages. A client is
//! its signed-in user, or else its real address (`api::client`, IPv6 by /64), so a proxy
//! in front does not merge everyone into one bucket and an IPv6 host cannot rotate out.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::{ApiError, AppState, AuthenticatedUser};

/// One bucket's shape: `burst` tokens at most, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketConfig {
    /// Tokens added per second (the sustained rate).
    pub per_second: f64,
    /// Bucket size (the burst a client may spend at once).
    pub burst: f64,
}

impl BucketConfig {
    /// A bucket that never refuses (for tests and benchmarks that measure something else).
    pub const UNLIMITED: BucketConfig = BucketConfig { per_second: f64::INFINITY, burst: f64::INFINITY };
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Keyed token buckets in memory. Buckets that have refilled completely carry no state
/// and are dropped when the map grows, so memory stays bounded by the active clients.
pub struct TokenBuckets {
    config: BucketConfig,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets kept before full ones are swept.
const SWEEP_AT: usize = 10_000;

impl TokenBuckets {
    /// Empty buckets of this shape.
    pub fn new(config: BucketConfig) -> Self {
        TokenBuckets { config, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`: `Ok` if there was one, else how long until there is.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let BucketConfig { per_second, burst } = self.config;
        if !per_second.is_finite() || !burst.is_finite() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(key) {
            buckets.retain(|_, bucket| {
                bucket.tokens + now.saturating_duration_since(bucket.updated).as_secs_f64() * per_second < burst
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, updated: now });
        let refill = now.saturating_duration_since(bucket.updated).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else if per_second > 0.0 {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        } else {
            Err(Duration::from_secs(3600))
        }
    }
}

/// The rate-limit key of a request: the signed-in user, or the real client address.
pub(crate) fn client_key(state: &AppState, request: &Request) -> String {
    if let Some(AuthenticatedUser(user)) = request.extensions().get::<AuthenticatedUser>() {
        return format!("user:{user}");
    }
    format!("ip:{}", api::client::rate_key_for_ip(client_address(state, request.extensions(), request.headers())))
}

/// The real client address: the peer, or what trusted proxies say in `X-Forwarded-For`.
pub(crate) fn client_address(state: &AppState, extensions: &http::Extensions, headers: &http::HeaderMap) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| peer.ip());
    api::client::client_ip(peer, headers, &state.config.trusted_proxies)
}

/// Whole seconds for `Retry-After`, at least one.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Middleware of `/api/timeline`: 429 with `Retry-After` once the client's bucket is empty.
/// The key also names the reader to the store, which shares its read slots between readers.
pub(crate) async fn limit_timeline(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let key = client_key(&state, &request);
    if let Err(wait) = state.timeline_buckets.take(&key, Instant::now()) {
        return ApiError::TooManyRequests { retry_after_secs: retry_after_secs(wait) }.into_response();
    }
    request.extensions_mut().insert(store_api::Reader::new(key));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_spends_its_burst_then_refills() {
        let buckets = TokenBuckets::new(BucketConfig { per_second: 2.0, burst: 3.0 });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take("a", start).is_ok());
        }
        let wait = buckets.take("a", start).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO, "{wait:?}");
        // Another client has its own bucket.
        assert!(buckets.take("b", start).is_ok());
        // Half a second later one token is back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(buckets.take("a", later).is_ok());
        assert!(buckets.take("a", later).is_err());
        assert!(TokenBuckets::new(BucketConfig::UNLIMITED).take("a", start).is_ok());
    }
}
