//! Fixed-window counters per key: in memory (embedded) or in Redis (distributed).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::StoreError;

/// At most `max` hits per `window_secs` seconds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Hits allowed in one window.
    pub max: u32,
    /// Window length in seconds.
    pub window_secs: u64,
}

impl RateLimit {
    /// `max` hits per minute.
    pub const fn per_minute(max: u32) -> Self {
        RateLimit { max, window_secs: 60 }
    }
}

/// The answer to one hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// Within the limit.
    Allowed,
    /// Over the limit; try again after this many seconds.
    Limited {
        /// Seconds until the window ends (at least 1).
        retry_after_secs: u64,
    },
}

/// Counts hits per key. Implementations must be atomic across every process sharing them.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Records one hit on `key` and says whether it is within `limit`.
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, StoreError>;
}

/// In-process counters for the embedded mode.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    windows: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Above this many keys, a hit first sweeps out the windows that ended.
const SWEEP_ABOVE_KEYS: usize = 10_000;

impl MemoryRateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, StoreError> {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        if windows.len() > SWEEP_ABOVE_KEYS {
            windows.retain(|_, (_, ends_at)| *ends_at > now);
        }
        let entry = windows.entry(key.to_owned()).or_insert((0, now + Duration::from_secs(limit.window_secs)));
        if entry.1 <= now {
            *entry = (0, now + Duration::from_secs(limit.window_secs));
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(decide(entry.0, limit, entry.1.saturating_duration_since(now)))
    }
}

fn decide(count: u32, limit: RateLimit, remaining: Duration) -> RateDecision {
    if count <= limit.max {
        RateDecision::Allowed
    } else {
        // Round up so that a client waiting exactly Retry-After finds a new window.
        let retry_after_secs = remaining.as_millis().div_ceil(1000).max(1);
        RateDecision::Limited { retry_after_secs: u64::try_from(retry_after_secs).unwrap_or(u64::MAX) }
    }
}

/// Counters in Redis, shared by every process: one key per window, `INCR` and `PEXPIRE`
/// in one Lua script so a crash between them cannot leave a counter without expiry.
#[derive(Clone)]
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    prefix: String,
    script: redis::Script,
}

const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

impl RedisRateLimiter {
    /// Connects to `redis_url`; keys are `{prefix}{key}`.
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(redis_url)?;
        let connection = ConnectionManager::new(client).await?;
        Ok(RedisRateLimiter { connection, prefix: prefix.to_owned(), script: redis::Script::new(HIT_SCRIPT) })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &str, limit: RateLimit) -> Result<RateDecision, StoreError> {
        let mut connection = self.connection.clone();
        let window_ms = limit.window_secs.saturating_mul(1000).max(1);
        let (count, ttl_ms): (i64, i64) =
            self.script.key(format!("{}{key}", self.prefix)).arg(window_ms).invoke_async(&mut connection).await?;
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let remaining = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
        Ok(decide(count, limit, remaining))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn window_limits_and_resets() {
        let limiter = MemoryRateLimiter::new();
        let limit = RateLimit { max: 3, window_secs: 60 };
        for _ in 0..3 {
            assert_eq!(limiter.hit("k", limit).await.unwrap(), RateDecision::Allowed);
        }
        assert_eq!(limiter.hit("k", limit).await.unwrap(), RateDecision::Limited { retry_after_secs: 60 });
        assert_eq!(limiter.hit("other", limit).await.unwrap(), RateDecision::Allowed);
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(limiter.hit("k", limit).await.unwrap(), RateDecision::Limited { retry_after_secs: 15 });
        tokio::time::advance(Duration::from_secs(15)).await;
        assert_eq!(limiter.hit("k", limit).await.unwrap(), RateDecision::Allowed);
    }
}
