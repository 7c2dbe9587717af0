//! Source health lives in `telemetry` (the gateway reads it without
//! depending on the sources); re-exported here for the sources' reporting.

pub use telemetry::{HealthHandle, SourceHealth, SourceStatus};
