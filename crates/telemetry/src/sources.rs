//! Source health: a shared registry where each running source reports
//! whether it is connected, what it has read and how far behind the events
//! it reads are. The gateway serves [`SourceHealth::snapshot`] at
//! `GET /api/sources` and [`SourceHealth::metric_families`] in `/metrics`.
//!
//! A source updates plain atomics on its hot path; the registry's lock is
//! taken only to register a source and to take a snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Marks "no time yet" in the microsecond atomics.
const NEVER: i64 = i64::MIN;

/// The registry of every source's health. Cheap to clone; clones share it.
#[derive(Clone, Debug, Default)]
pub struct SourceHealth {
    sources: Arc<Mutex<BTreeMap<String, Arc<HealthState>>>>,
}

#[derive(Debug)]
struct HealthState {
    kind: &'static str,
    connected: AtomicBool,
    n_connects: AtomicU64,
    n_reconnects: AtomicU64,
    n_frames: AtomicU64,
    n_records: AtomicU64,
    n_malformed_frames: AtomicU64,
    last_event_us: AtomicI64,
    last_received_us: AtomicI64,
    last_error: Mutex<Option<String>>,
}

/// One source's health at the moment of the snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceStatus {
    /// The source's name (its checkpoint key), e.g. `jetstream` or `mastodon:https://…`.
    pub name: String,
    /// `jetstream`, `x` or `mastodon`.
    pub kind: String,
    /// Whether a stream is open right now.
    pub connected: bool,
    /// Event time of the newest event read (the service's time stamp).
    pub last_event_at: Option<DateTime<Utc>>,
    /// When the source last received anything, keep-alives included.
    pub last_received_at: Option<DateTime<Utc>>,
    /// Now minus `last_event_at`, in seconds: how far behind real time the
    /// stream is (clock skew between the service and us included).
    pub lag_seconds: Option<f64>,
    /// Successful connections since start.
    pub connects: u64,
    /// Attempts to connect again after a failure or a dropped stream.
    pub reconnects: u64,
    /// Messages received (keep-alives and pings not counted).
    pub frames: u64,
    /// Records handed on to the pipeline.
    pub records: u64,
    /// Frames the source could not read as text (binary, not UTF-8,
    /// oversized, cut off by a disconnect). Records that are text but not
    /// valid JSON travel on and are counted by the processor
    /// (`deck_malformed_total`).
    pub malformed_frames: u64,
    /// The last connection error, if any.
    pub last_error: Option<String>,
}

impl SourceHealth {
    /// An empty registry.
    pub fn new() -> SourceHealth {
        SourceHealth::default()
    }

    /// Registers a source (or returns the existing entry of that name, so
    /// a restarted source goes on counting) and returns its reporting handle.
    pub fn register(&self, name: &str, kind: &'static str) -> HealthHandle {
        let mut sources = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = sources
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(HealthState {
                    kind,
                    connected: AtomicBool::new(false),
                    n_connects: AtomicU64::new(0),
                    n_reconnects: AtomicU64::new(0),
                    n_frames: AtomicU64::new(0),
                    n_records: AtomicU64::new(0),
                    n_malformed_frames: AtomicU64::new(0),
                    last_event_us: AtomicI64::new(NEVER),
                    last_received_us: AtomicI64::new(NEVER),
                    last_error: Mutex::new(None),
                })
            })
            .clone();
        HealthHandle { state }
    }

    /// Every registered source's health, by name.
    pub fn snapshot(&self) -> Vec<SourceStatus> {
        let now = Utc::now();
        let sources = self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sources
            .iter()
            .map(|(name, state)| {
                let last_event_at = time_of(state.last_event_us.load(Ordering::Relaxed));
                SourceStatus {
                    name: name.clone(),
                    kind: state.kind.to_owned(),
                    connected: state.connected.load(Ordering::Relaxed),
                    last_event_at,
                    last_received_at: time_of(state.last_received_us.load(Ordering::Relaxed)),
                    lag_seconds: last_event_at
                        .map(|event_at| (now - event_at).num_microseconds().unwrap_or(0) as f64 / 1e6),
                    connects: state.n_connects.load(Ordering::Relaxed),
                    reconnects: state.n_reconnects.load(Ordering::Relaxed),
                    frames: state.n_frames.load(Ordering::Relaxed),
                    records: state.n_records.load(Ordering::Relaxed),
                    malformed_frames: state.n_malformed_frames.load(Ordering::Relaxed),
                    last_error: state.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
                }
            })
            .collect()
    }
}

impl SourceHealth {
    /// The health of every source as Prometheus families (`deck_source_*`,
    /// labelled by source name), built with the `prometheus` collectors so
    /// that label values are escaped by the encoder, never by hand.
    pub fn metric_families(&self) -> Vec<prometheus::proto::MetricFamily> {
        let sources = self.snapshot();
        if sources.is_empty() {
            return Vec::new();
        }
        // The names and labels are constants; a failure here is a bug, and
        // a scrape without source health is better than no scrape.
        source_families(&sources).unwrap_or_default()
    }
}

fn source_families(sources: &[SourceStatus]) -> Result<Vec<prometheus::proto::MetricFamily>, prometheus::Error> {
    use prometheus::core::Collector as _;
    use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};
    let connected =
        IntGaugeVec::new(Opts::new("deck_source_connected", "Whether the source has a stream open"), &["source"])?;
    let lag = GaugeVec::new(Opts::new("deck_source_lag_seconds", "Now minus the newest event time read"), &["source"])?;
    let reconnects =
        IntCounterVec::new(Opts::new("deck_source_reconnects_total", "Reconnections after a failure"), &["source"])?;
    let malformed = IntCounterVec::new(
        Opts::new("deck_source_malformed_frames_total", "Frames the source could not hand on"),
        &["source"],
    )?;
    for source in sources {
        let labels = [source.name.as_str()];
        connected.with_label_values(&labels).set(i64::from(source.connected));
        if let Some(lag_seconds) = source.lag_seconds {
            lag.with_label_values(&labels).set(lag_seconds);
        }
        reconnects.with_label_values(&labels).inc_by(source.reconnects);
        malformed.with_label_values(&labels).inc_by(source.malformed_frames);
    }
    let mut families = connected.collect();
    families.extend(lag.collect());
    families.extend(reconnects.collect());
    families.extend(malformed.collect());
    // A family without samples (no source has a lag yet) would fail the
    // text encoder, and with it the whole scrape.
    families.retain(|family| !family.get_metric().is_empty());
    Ok(families)
}

fn time_of(micros: i64) -> Option<DateTime<Utc>> {
    (micros != NEVER).then(|| DateTime::from_timestamp_micros(micros))?
}

/// What one source reports through. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HealthHandle {
    state: Arc<HealthState>,
}

impl HealthHandle {
    /// A handle registered nowhere (for sources built without a registry).
    pub fn detached(kind: &'static str) -> HealthHandle {
        SourceHealth::new().register("", kind)
    }

    /// A stream opened.
    pub fn connected(&self) {
        self.state.connected.store(true, Ordering::Relaxed);
        self.state.n_connects.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    /// The stream closed or failed; `error` says why, if it was an error.
    pub fn disconnected(&self, error: Option<String>) {
        self.state.connected.store(false, Ordering::Relaxed);
        if let Some(error) = error {
            self.error(error);
        }
    }

    /// Remembers `error` as the last error (the connection may stay open).
    pub fn error(&self, error: String) {
        *self.state.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
    }

    /// The source is about to try connecting again.
    pub fn reconnecting(&self) {
        self.state.n_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Something arrived (a keep-alive or ping included).
    pub fn touch(&self) {
        self.state.last_received_us.store(Utc::now().timestamp_micros(), Ordering::Relaxed);
    }

    /// A message arrived.
    pub fn frame(&self) {
        self.state.n_frames.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    /// A message could not be read as text (see [`SourceStatus::malformed_frames`]).
    pub fn malformed_frame(&self) {
        self.state.n_malformed_frames.fetch_add(1, Ordering::Relaxed);
    }

    /// A record was handed on; `event_us` is its event time in Unix
    /// microseconds where the source saw it.
    pub fn record(&self, event_us: Option<i64>) {
        self.state.n_records.fetch_add(1, Ordering::Relaxed);
        if let Some(event_us) = event_us {
            self.state.last_event_us.fetch_max(event_us, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source name with quotes, a backslash and a line break (a Mastodon
    /// URL can carry any of them) still yields well-formed exposition text.
    #[test]
    fn label_values_are_escaped() {
        let health = SourceHealth::new();
        let handle = health.register("mastodon:https://x.test/\"a\\b\nc", "mastodon");
        handle.connected();
        let families = health.metric_families();
        let text = prometheus::TextEncoder::new().encode_to_string(&families).expect("encode");
        assert!(text.contains(r#"deck_source_connected{source="mastodon:https://x.test/\"a\\b\nc"} 1"#), "{text}");
        assert_eq!(text.lines().filter(|line| line.starts_with("deck_source_")).count(), 3, "{text}");
    }

    /// A source that has read nothing yet has no lag sample: the scrape
    /// still encodes (an empty family would fail the whole text).
    #[test]
    fn a_source_without_events_still_encodes() {
        let health = SourceHealth::new();
        health.register("jetstream", "jetstream");
        let families = health.metric_families();
        let text = prometheus::TextEncoder::new().encode_to_string(&families).expect("encode");
        assert!(text.contains(r#"deck_source_connected{source="jetstream"} 0"#), "{text}");
        assert!(!text.contains("deck_source_lag_seconds"), "{text}");
    }

    #[test]
    fn no_sources_no_families() {
        assert!(SourceHealth::new().metric_families().is_empty());
    }
}
