//! What every role reports: the Prometheus [`Metrics`] on one shared
//! registry, and the [`SourceHealth`] of network sources. No engine driver
//! lives here, so the edge (`gateway`) reads both without depending on the
//! roles that write them (`pipeline`, `ingest`).

pub mod health;
mod metrics;
mod sources;

pub use health::{Health, Probe, Readiness, Stage, StageState};
pub use metrics::{Metrics, STORE_REFUSED_TOTAL, STORE_UNREADABLE_TOTAL};
pub use sources::{HealthHandle, SourceHealth, SourceStatus};
