//! Prometheus metrics of the pipeline and the HTTP roles, on one registry
//! that every crate registers its collectors on.

use prometheus::{CounterVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Stored entries that could not be read (an undecodable post, a posting
/// whose cursor is malformed) and were skipped by a read: exported as
/// `deck_store_unreadable_total`. Process-wide, counted by the stores.
pub static STORE_UNREADABLE_TOTAL: std::sync::LazyLock<IntCounter> = std::sync::LazyLock::new(|| {
    IntCounter::new("store_unreadable_total", "Stored entries skipped by reads because they are unreadable")
        .expect("a valid constant metric name")
});

/// Posts refused by a store because their id is longer than
/// `model::MAX_ID_BYTES`: exported as `deck_store_refused_total`.
pub static STORE_REFUSED_TOTAL: std::sync::LazyLock<IntCounter> = std::sync::LazyLock::new(|| {
    IntCounter::new("store_refused_total", "Posts refused by the store (id too long to store safely)")
        .expect("a valid constant metric name")
});

/// Retention sweeps of the embedded store, by outcome (`ok`, `failed`: an
/// error or a panic, logged and tried again at the next sweep): exported as
/// `deck_retention_sweeps_total{outcome}`.
pub static RETENTION_SWEEPS_TOTAL: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new("retention_sweeps_total", "Retention sweeps of the embedded store, by outcome"),
        &["outcome"],
    )
    .expect("a valid constant metric name")
});

/// Posts that left the embedded store with their expired segments (fjall's
/// row estimate): exported as `deck_retention_expired_posts_total`.
pub static RETENTION_EXPIRED_POSTS_TOTAL: std::sync::LazyLock<IntCounter> = std::sync::LazyLock::new(|| {
    IntCounter::new("retention_expired_posts_total", "Posts dropped by retention with their segments (estimate)")
        .expect("a valid constant metric name")
});

/// The phases of an embedded store write, as [`STORE_WRITE_SECONDS_TOTAL`] labels them.
pub const STORE_WRITE_PHASES: [&str; 5] = ["read", "bodies", "postings", "commit", "fsync"];

/// Seconds the embedded store's batch writes spent in each phase: `read`
/// (idempotence and count lookups, merging), `bodies` (encoding each post
/// once), `postings` (finding terms and building and sorting keys),
/// `commit` (fjall's batch into its memtables and journal), `fsync`:
/// exported as `deck_store_write_seconds_total{phase}`.
pub static STORE_WRITE_SECONDS_TOTAL: std::sync::LazyLock<CounterVec> = std::sync::LazyLock::new(|| {
    CounterVec::new(
        Opts::new("store_write_seconds_total", "Seconds the embedded store's batch writes spent, by phase"),
        &["phase"],
    )
    .expect("a valid constant metric name")
});

/// Every counter Deck exports at `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Raw records read from sources, by source.
    pub records_in: IntCounterVec,
    /// Records that could not be parsed, by source.
    pub malformed: IntCounterVec,
    /// Records processed and committed (good or malformed).
    pub records_processed: IntCounter,
    /// Posts stored for the first time.
    pub posts_stored: IntCounter,
    /// Posts deleted.
    pub posts_deleted: IntCounter,
    /// Seconds per timeline query.
    pub query_seconds: Histogram,
    /// Seconds per processor batch (parse, store, trends, publish).
    pub batch_seconds: Histogram,
    /// Open WebSocket connections.
    pub sockets_open: IntGauge,
    /// Frames sent over WebSockets.
    pub frames_sent: IntCounter,
    /// Columns dropped for a slow reader (resync sent).
    pub resyncs: IntCounter,
    /// Processor batches whose changes the live feed refused for good (a
    /// processed-topic message too large for the broker): each was stored,
    /// and every live column was told to resync instead.
    pub publish_gaps: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("deck".into()), None)?;
        let records_in =
            IntCounterVec::new(Opts::new("records_in_total", "Raw records read from sources"), &["source"])?;
        let malformed =
            IntCounterVec::new(Opts::new("malformed_total", "Records that could not be parsed"), &["source"])?;
        let records_processed = IntCounter::new("records_processed_total", "Records processed and committed")?;
        let posts_stored = IntCounter::new("posts_stored_total", "Posts stored for the first time")?;
        let posts_deleted = IntCounter::new("posts_deleted_total", "Posts deleted")?;
        let query_seconds = Histogram::with_opts(
            HistogramOpts::new("query_seconds", "Timeline query latency")
                .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0]),
        )?;
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new("batch_seconds", "Processor batch latency")
                .buckets(vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0]),
        )?;
        let sockets_open = IntGauge::new("sockets_open", "Open WebSocket connections")?;
        let frames_sent = IntCounter::new("frames_sent_total", "WebSocket frames sent")?;
        let resyncs = IntCounter::new("resyncs_total", "Columns dropped for a slow reader")?;
        let publish_gaps = IntCounter::new(
            "publish_gaps_total",
            "Processor batches the live feed refused for good; every live column was told to resync",
        )?;
        registry.register(Box::new(records_in.clone()))?;
        registry.register(Box::new(malformed.clone()))?;
        registry.register(Box::new(records_processed.clone()))?;
        registry.register(Box::new(posts_stored.clone()))?;
        registry.register(Box::new(posts_deleted.clone()))?;
        registry.register(Box::new(query_seconds.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(sockets_open.clone()))?;
        registry.register(Box::new(frames_sent.clone()))?;
        registry.register(Box::new(resyncs.clone()))?;
        registry.register(Box::new(publish_gaps.clone()))?;
        // The store's own counters (process-wide): unreadable entries skipped, posts refused.
        registry.register(Box::new(STORE_UNREADABLE_TOTAL.clone()))?;
        registry.register(Box::new(STORE_REFUSED_TOTAL.clone()))?;
        registry.register(Box::new(RETENTION_SWEEPS_TOTAL.clone()))?;
        // Both outcomes are exported from the start, so an alert on failures has a series to read.
        for outcome in ["ok", "failed"] {
            RETENTION_SWEEPS_TOTAL.with_label_values(&[outcome]);
        }
        registry.register(Box::new(RETENTION_EXPIRED_POSTS_TOTAL.clone()))?;
        registry.register(Box::new(STORE_WRITE_SECONDS_TOTAL.clone()))?;
        for phase in STORE_WRITE_PHASES {
            STORE_WRITE_SECONDS_TOTAL.with_label_values(&[phase]);
        }
        Ok(Metrics {
            registry,
            records_in,
            malformed,
            records_processed,
            posts_stored,
            posts_deleted,
            query_seconds,
            batch_seconds,
            sockets_open,
            frames_sent,
            resyncs,
            publish_gaps,
        })
    }
}
