//! Reconnect delays for the network sources, and the [`Sleep`] through which
//! a source waits them out (tests record the delays instead of waiting).

use std::time::Duration;

use rand::Rng;

/// How the delay grows from one failed attempt to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// `first`, `first + step`, `first + 2·step`, …
    Linear(Duration),
    /// `first`, `2·first`, `4·first`, …
    Doubling,
}

/// A reconnect schedule: a first delay, its growth, a ceiling, and an
/// optional jitter. [`Backoff::reset`] after a connection proved healthy.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    growth: Growth,
    max: Duration,
    jitter: f64,
    n_attempts: u32,
}

impl Backoff {
    /// Linear growth from `first` by `step` up to `max`, no jitter.
    pub fn linear(first: Duration, step: Duration, max: Duration) -> Backoff {
        Backoff { first, growth: Growth::Linear(step), max, jitter: 0.0, n_attempts: 0 }
    }

    /// Doubling from `first` up to `max`, no jitter.
    pub fn exponential(first: Duration, max: Duration) -> Backoff {
        Backoff { first, growth: Growth::Doubling, max, jitter: 0.0, n_attempts: 0 }
    }

    /// Takes up to `fraction` (0–1) off each delay at random, so many
    /// clients cut off together do not reconnect in lockstep. A delay is
    /// then in `[base · (1 − fraction), base]`.
    pub fn with_jitter(mut self, fraction: f64) -> Backoff {
        self.jitter = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
        self
    }

    /// The delay before the next attempt, without jitter; advances the schedule.
    pub fn next_base_delay(&mut self) -> Duration {
        let attempt = self.n_attempts;
        self.n_attempts = self.n_attempts.saturating_add(1);
        let delay = match self.growth {
            Growth::Linear(step) => self.first.saturating_add(step.saturating_mul(attempt)),
            // Past 2^20 the ceiling has long been reached.
            Growth::Doubling => self.first.saturating_mul(1u32 << attempt.min(20)),
        };
        delay.min(self.max)
    }

    /// The delay before the next attempt, with jitter; advances the schedule.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next_base_delay();
        if self.jitter == 0.0 {
            return base;
        }
        let cut = rand::rng().random_range(0.0..=self.jitter);
        base.mul_f64(1.0 - cut)
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.n_attempts = 0;
    }

    /// The jitter fraction (0 when there is none).
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
}

/// X's documented reconnect rules for the filtered stream (docs.x.com,
/// filtered stream "Handling disconnections"): network errors back off
/// linearly by 250 ms up to 16 s; HTTP errors exponentially from 5 s up to
/// 320 s; HTTP 429 exponentially from one minute. X names no ceiling for
/// 429; we stop doubling at 16 minutes, just past the 15-minute rate-limit
/// window.
#[derive(Clone, Debug)]
pub struct XBackoff {
    /// TCP/TLS failures, read errors, stalls and closed streams.
    pub network: Backoff,
    /// Any HTTP error status other than 429.
    pub http: Backoff,
    /// HTTP 429 Too Many Requests.
    pub rate_limited: Backoff,
}

impl Default for XBackoff {
    fn default() -> Self {
        XBackoff {
            network: Backoff::linear(Duration::from_millis(250), Duration::from_millis(250), Duration::from_secs(16)),
            http: Backoff::exponential(Duration::from_secs(5), Duration::from_secs(320)),
            rate_limited: Backoff::exponential(Duration::from_secs(60), Duration::from_secs(960)),
        }
    }
}

impl XBackoff {
    /// All three schedules back to their first delay (after a healthy connection).
    pub fn reset(&mut self) {
        self.network.reset();
        self.http.reset();
        self.rate_limited.reset();
    }
}

/// The default schedule of the WebSocket sources (Jetstream, Mastodon):
/// doubling from 1 s up to 2 minutes, with up to half of each delay taken
/// off at random.
pub fn websocket_backoff() -> Backoff {
    Backoff::exponential(Duration::from_secs(1), Duration::from_secs(120)).with_jitter(0.5)
}

/// Waits out a reconnect delay. Sources take it as a trait object so tests
/// can record the delays a source asks for and return at once, instead of
/// waiting or asserting on the wall clock.
#[async_trait::async_trait]
pub trait Sleep: Send + Sync {
    /// Returns after `delay` (or at once, for a recording test double).
    async fn sleep(&self, delay: Duration);
}

/// [`Sleep`] on the tokio timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSleep;

#[async_trait::async_trait]
impl Sleep for TokioSleep {
    async fn sleep(&self, delay: Duration) {
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(delays: &[u64]) -> Vec<Duration> {
        delays.iter().map(|ms| Duration::from_millis(*ms)).collect()
    }

    #[test]
    fn x_schedules_follow_the_documentation() {
        let mut backoff = XBackoff::default();
        let network: Vec<_> = (0..66).map(|_| backoff.network.next_delay()).collect();
        assert_eq!(network[..4], millis(&[250, 500, 750, 1000]));
        assert_eq!(network[62], Duration::from_secs(15) + Duration::from_millis(750));
        assert_eq!(network[63], Duration::from_secs(16));
        assert_eq!(network[65], Duration::from_secs(16));
        let http: Vec<_> = (0..8).map(|_| backoff.http.next_delay()).collect();
        assert_eq!(http, millis(&[5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 320_000]));
        let limited: Vec<_> = (0..3).map(|_| backoff.rate_limited.next_delay()).collect();
        assert_eq!(limited, millis(&[60_000, 120_000, 240_000]));
        backoff.reset();
        assert_eq!(backoff.http.next_delay(), Duration::from_secs(5));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let mut backoff = websocket_backoff();
        for attempt in 0..12u32 {
            let base = Duration::from_secs(1 << attempt).min(Duration::from_secs(120));
            let delay = backoff.next_delay();
            assert!(delay <= base && delay >= base.mul_f64(0.5), "{delay:?} vs {base:?}");
        }
    }
}
