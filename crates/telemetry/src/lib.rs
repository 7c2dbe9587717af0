//! What every role reports: the Prometheus [`Metrics`] on one shared
//! registry, and the [`SourceHealth`] of network sources. No engine driver
//! lives here, so the edge (`gateway`) reads both without depending on the
//! roles that write them (`pipeline`, `ingest`).

pub mod health;
mod metrics;
mod sources;

pub use health::{Health, Probe, Readiness, Stage, StageState};
pub use metrics::{
    Metrics, RETENTION_EXPIRED_POSTS_TOTAL, RETENTION_SWEEPS_TOTAL, STORE_REFUSED_TOTAL, STORE_UNREADABLE_TOTAL,
    STORE_WRITE_PHASES, STORE_WRITE_SECONDS_TOTAL,
};
pub use sources::{HealthHandle, SourceHealth, SourceStatus};

/// The message of a caught panic (`panic!("…")` or a formatted one), for the
/// log line and the error that name it; empty when the payload is neither.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
