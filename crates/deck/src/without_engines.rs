//! Stand-ins for the engine types of a build without the `kafka` or
//! `cassandra` feature. They are uninhabited: no value of them can exist
//! (the engine arguments are refused at start instead, in `backends.rs`), so
//! the wiring in `serve.rs` reads the same in every build and the compiler
//! proves that the distributed paths never run in an embedded-only one.

#[cfg(not(feature = "kafka"))]
pub use kafka::{KafkaConfig, KafkaPublisher, ProcessedConsumer};

#[cfg(not(feature = "kafka"))]
mod kafka {
    use pipeline::{LogError, Published, Publisher};
    use tokio_util::sync::CancellationToken;

    /// Never built: this deck has no Kafka client.
    #[derive(Clone, Debug)]
    pub enum KafkaConfig {}

    /// Never built: this deck has no Kafka client.
    pub enum KafkaPublisher {}

    impl KafkaPublisher {
        pub async fn connect(config: &KafkaConfig) -> Result<KafkaPublisher, LogError> {
            match *config {}
        }
    }

    #[async_trait::async_trait]
    impl Publisher for KafkaPublisher {
        async fn publish(&self, _published: &Published) -> Result<(), LogError> {
            match *self {}
        }
    }

    /// Never built: this deck has no Kafka client.
    pub enum ProcessedConsumer {}

    impl ProcessedConsumer {
        pub async fn start(config: &KafkaConfig) -> Result<ProcessedConsumer, LogError> {
            match *config {}
        }

        pub async fn next(&mut self, _shutdown: &CancellationToken) -> Result<Option<model::Applied>, LogError> {
            match *self {}
        }
    }
}
