//! The pipeline: sources append raw records to a partitioned [`Log`];
//! processors consume it, parse and extract, store, update trends and hand
//! what changed to the live feed, and only then commit their position.
//!
//! **Architecture invariant:** a consumer's position is committed only after
//! every write for the records before it was acknowledged (at-least-once);
//! every write downstream is idempotent, so a re-delivery changes nothing.

pub mod health;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod log;
pub mod processor;

pub use health::{Health, Probe, Readiness, Stage, StageState, Transient, retry};
#[cfg(feature = "kafka")]
pub use kafka::{KafkaConfig, KafkaConsumer, KafkaLog, KafkaPublisher, ProcessedConsumer};
pub use log::{Delivery, EmbeddedLog, Log, LogConsumer, LogError};
pub use processor::{
    Processor, ProcessorConfig, ProcessorError, Published, Publisher, apply_and_count, run_source, trend_events,
};
pub use telemetry::Metrics;
