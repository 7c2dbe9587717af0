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

impl Bucket {
    /// Adds the tokens refilled since the last update, up to the burst.
    fn refill(&mut self, config: BucketConfig, now: Instant) {
        let refilled = now.saturating_duration_since(self.updated).as_secs_f64() * config.per_second;
        self.tokens = (self.tokens + refilled).min(config.burst);
        self.updated = now;
    }
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
        bucket.refill(self.config, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else if per_second > 0.0 {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        } else {
            Err(Duration::from_secs(3600))
        }
    }

    /// Takes `tokens` more from `key` after the fact, for work a request turned out to cost.
    /// The bucket may go into debt, down to minus one burst, and the client is refused
    /// until it has paid it back; so a client that sends costly requests gets fewer of
    /// them, and one that sends cheap ones is charged nothing extra.
    pub fn charge(&self, key: &str, tokens: f64, now: Instant) {
        let BucketConfig { per_second, burst } = self.config;
        if !per_second.is_finite() || !burst.is_finite() || tokens <= 0.0 || tokens.is_nan() {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A client whose bucket was swept since its request is full again: charge it anyway.
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: burst, updated: now });
        bucket.refill(self.config, now);
        bucket.tokens = (bucket.tokens - tokens).max(-burst);
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

/// The store work one timeline read spent (`Page::work`), which the handler hands to
/// [`limit_timeline`] in the response's extensions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadCost(pub usize);

/// Middleware of `/api/timeline`: 429 with `Retry-After` once the client's bucket is empty.
/// A read costs one token, plus one per `timeline_work_per_token` units of store work past
/// the first such share: an ordinary page costs one token, and a read that spends the
/// whole work budget costs about twenty. The key also names the reader to the store, which
/// shares its read slots between readers.
pub(crate) async fn limit_timeline(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let key = client_key(&state, &request);
    if let Err(wait) = state.timeline_buckets.take(&key, Instant::now()) {
        return ApiError::TooManyRequests { retry_after_secs: retry_after_secs(wait) }.into_response();
    }
    request.extensions_mut().insert(store_api::Reader::new(key.clone()));
    let response = next.run(request).await;
    if let Some(ReadCost(units)) = response.extensions().get::<ReadCost>() {
        let extra = work_tokens(*units, state.config.timeline_work_per_token);
        state.timeline_buckets.charge(&key, extra, Instant::now());
    }
    response
}

/// Tokens a read of `units` costs beyond the one every request pays.
pub(crate) fn work_tokens(units: usize, units_per_token: usize) -> f64 {
    if units_per_token == 0 {
        return 0.0;
    }
    units.saturating_sub(units_per_token) as f64 / units_per_token as f64
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

    #[test]
    fn costly_work_is_charged_as_debt_down_to_one_burst() {
        let buckets = TokenBuckets::new(BucketConfig { per_second: 10.0, burst: 20.0 });
        let start = Instant::now();
        assert!(buckets.take("a", start).is_ok());
        // A read that spent 50 tokens' worth: 19 left, 50 charged, floored at -20.
        buckets.charge("a", 50.0, start);
        let wait = buckets.take("a", start).unwrap_err();
        assert_eq!(wait, Duration::from_secs_f64(2.1), "21 tokens short at 10/s");
        // Paid back after 2.1 s, not before.
        assert!(buckets.take("a", start + Duration::from_millis(2000)).is_err());
        assert!(buckets.take("a", start + Duration::from_millis(2200)).is_ok());
        // Another client is not charged.
        assert!(buckets.take("b", start).is_ok());
    }

    #[test]
    fn an_ordinary_read_costs_no_extra_token_and_a_full_budget_about_twenty() {
        assert_eq!(work_tokens(0, 1000), 0.0);
        assert_eq!(work_tokens(40, 1000), 0.0);
        assert_eq!(work_tokens(1000, 1000), 0.0);
        assert_eq!(work_tokens(20_000, 1000), 19.0);
        assert_eq!(work_tokens(20_000, 0), 0.0, "0 turns the charge off");
    }
}
