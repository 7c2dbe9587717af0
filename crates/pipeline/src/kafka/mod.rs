//! The distributed [`Log`]: Apache Kafka through `rdkafka` (librdkafka built
//! from its bundled sources), and the processed-posts topic that feed nodes
//! read ([`KafkaPublisher`] writes it, [`ProcessedConsumer`] reads it).
//!
//! Producer: idempotent (`enable.idempotence=true`, so retries neither
//! duplicate nor reorder), `acks=all`, keyed by [`RawRecord::key`] with the
//! Java client's partitioner (`murmur2_random`) so that every producer of a
//! deployment puts one key in one partition, lz4-compressed batches lingering
//! a few milliseconds. The value is the JSON of the [`RawRecord`].
//!
//! Consumer: one `StreamConsumer` per group member, partitions balanced by
//! the cooperative-sticky assignor. Offsets are committed by librdkafka's
//! auto-commit (`enable.auto.commit=true`, every `auto_commit_interval_ms`),
//! but only offsets the processor *stored* are committed, and
//! [`LogConsumer::commit`] stores them only once a batch was processed
//! (`enable.auto.offset.store=false`). A member that dies before storing
//! leaves its records to be delivered again (at-least-once); a member that
//! leaves cleanly commits what it stored on the way out. A new group starts
//! from the earliest offset (`auto.offset.reset=earliest`).

mod log;
mod processed;

pub use log::{KafkaConsumer, KafkaLog};
pub use processed::{KafkaPublisher, ProcessedConsumer};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use model::{Origin, Post, RawRecord, StoredPost};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use store::Applied;
use tokio_util::sync::CancellationToken;

use crate::log::partition_for;
use crate::{Delivery, Log, LogConsumer, LogError, Published, Publisher};

/// Posts per message on the processed topic at most.
const POSTS_PER_MESSAGE: usize = 200;
/// Bytes of posts per message on the processed topic before the next post
/// starts a new one (under Kafka's default 1 MB `max.message.bytes`).
const MESSAGE_BUDGET_BYTES: usize = 512 * 1024;
/// The largest message Deck's producer sends, and the `max.message.bytes`
/// of the topics it creates: one normalized post with its retweeted and
/// quoted originals at every limit of `docs/limits.md` is about 2.5 MB of
/// JSON, and a raw record is at most 1 MiB (`ingest::MAX_LINE_BYTES`).
const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// How long start-up waits for the cluster's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of Deck's Kafka topics and clients. The defaults are for a
/// production cluster of at least three brokers; [`KafkaConfig::single_node`]
/// fits the one broker of `scripts/cluster`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]` (`DECK_KAFKA`).
    pub brokers: String,
    /// Raw records from the sources, keyed by post id (or author).
    pub raw_topic: String,
    /// What processors stored, for the feed nodes.
    pub processed_topic: String,
    /// Partitions of the raw topic: the most processors that can share the
    /// work. 12 divides among 1, 2, 3, 4, 6 or 12 processors evenly.
    pub partitions: i32,
    /// Partitions of the processed topic (every feed node reads them all).
    pub processed_partitions: i32,
    /// Replicas of each partition: 3 in production.
    pub replication_factor: i32,
    /// Replicas that must have a record before `acks=all` acknowledges it:
    /// 2 in production (one broker may be down without stopping writes).
    pub min_insync_replicas: i32,
    /// How long the raw topic keeps records: 7 days, time to replay into a
    /// rebuilt store.
    pub retention_ms: i64,
    /// How long the processed topic keeps batches: 1 day (feed nodes only
    /// read it live).
    pub processed_retention_ms: i64,
    /// Producer batching delay.
    pub linger_ms: u32,
    /// Producer compression: `lz4` (cheap on CPU), `snappy` or `none`.
    pub compression: String,
    /// A group member that sends no heartbeat for this long is considered
    /// dead and its partitions move to the others.
    pub session_timeout_ms: u32,
    /// How often stored offsets are committed.
    pub auto_commit_interval_ms: u32,
    /// Create missing topics at start-up (with the settings above).
    pub create_topics: bool,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            raw_topic: "deck.raw".into(),
            processed_topic: "deck.processed".into(),
            partitions: 12,
            processed_partitions: 6,
            replication_factor: 3,
            min_insync_replicas: 2,
            retention_ms: 7 * 24 * 3_600_000,
            processed_retention_ms: 24 * 3_600_000,
            linger_ms: 5,
            compression: "lz4".into(),
            session_timeout_ms: 45_000,
            auto_commit_interval_ms: 1_000,
            create_topics: true,
        }
    }
}

impl KafkaConfig {
    /// Production defaults for the given bootstrap servers.
    pub fn new(brokers: &str) -> KafkaConfig {
        KafkaConfig { brokers: brokers.to_owned(), ..KafkaConfig::default() }
    }

    /// A one-broker development cluster: replication factor 1, and a few
    /// partitions so that several processors can still share the work.
    pub fn single_node(brokers: &str) -> KafkaConfig {
        KafkaConfig {
            partitions: 4,
            processed_partitions: 2,
            replication_factor: 1,
            min_insync_replicas: 1,
            ..KafkaConfig::new(brokers)
        }
    }

    fn producer(&self) -> Result<FutureProducer, LogError> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", self.linger_ms.to_string())
            .set("compression.type", &self.compression)
            // The Java client's partitioner: every producer agrees on a key's partition.
            .set("partitioner", "murmur2_random")
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .create()
            .map_err(backend)
    }
}

fn backend(error: impl std::fmt::Display) -> LogError {
    LogError::Backend(error.to_string())
}

/// Creates the raw and processed topics if they are missing.
pub async fn create_topics(config: &KafkaConfig) -> Result<(), LogError> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &config.brokers).create().map_err(backend)?;
    let min_insync = config.min_insync_replicas.to_string();
    let raw_retention = config.retention_ms.to_string();
    let processed_retention = config.processed_retention_ms.to_string();
    let max_message = MAX_MESSAGE_BYTES.to_string();
    let raw = NewTopic::new(&config.raw_topic, config.partitions, TopicReplication::Fixed(config.replication_factor))
        .set("min.insync.replicas", &min_insync)
        .set("retention.ms", &raw_retention)
        .set("max.message.bytes", &max_message);
    let processed = NewTopic::new(
        &config.processed_topic,
        config.processed_partitions,
        TopicReplication::Fixed(config.replication_factor),
    )
    .set("min.insync.replicas", &min_insync)
    .set("retention.ms", &processed_retention)
    .set("max.message.bytes", &max_message);
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = admin.create_topics([&raw, &processed], &options).await.map_err(backend)?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, "Kafka topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(LogError::Backend(format!("create topic {topic}: {code}")));
            }
        }
    }
    Ok(())
}

/// The partition count of `topic`, waiting (up to a deadline) until the
/// cluster's metadata knows it: a topic created a moment ago may not be
/// visible on every broker yet.
async fn partition_count(producer: &FutureProducer, topic: &str) -> Result<u32, LogError> {
    let deadline = tokio::time::Instant::now() + METADATA_TIMEOUT;
    loop {
        let client = producer.clone();
        let name = topic.to_owned();
        // Metadata requests block: keep them off the runtime's threads.
        let count = tokio::task::spawn_blocking(move || {
            let metadata = client.client().fetch_metadata(Some(&name), Duration::from_secs(5)).map_err(backend)?;
            Ok::<_, LogError>(
                metadata
                    .topics()
                    .iter()
                    .find(|found| found.name() == name && found.error().is_none())
                    .map(|found| found.partitions().len() as u32)
                    .unwrap_or(0),
            )
        })
        .await
        .map_err(backend)?;
        match count {
            Ok(count) if count > 0 => return Ok(count),
            Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(_) => return Err(LogError::Backend(format!("topic {topic} does not exist"))),
            Err(error) => return Err(error),
        }
    }
}

/// Sends keyed payloads and waits until every one is acknowledged (by all
/// in-sync replicas, with `acks=all`).
async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    messages: Vec<(&[u8], Vec<u8>, Option<i32>)>,
) -> Result<(), LogError> {
    let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::new();
    for (key, payload, partition) in messages {
        loop {
            let mut record = FutureRecord::to(topic).key(key).payload(&payload);
            if let Some(partition) = partition {
                record = record.partition(partition);
            }
            match producer.send_result(record) {
                Ok(delivery) => {
                    in_flight.push_back(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // The client's queue is full: wait for the oldest send to finish.
                    match in_flight.pop_front() {
                        Some(oldest) => acknowledged(oldest.await)?,
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
                Err((error, _)) => return Err(produce_error(error)),
            }
        }
    }
    for delivery in in_flight {
        acknowledged(delivery.await)?;
    }
    Ok(())
}

fn acknowledged(result: <DeliveryFuture as std::future::Future>::Output) -> Result<(), LogError> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => Err(produce_error(error)),
        Err(_) => Err(LogError::Backend("producer dropped a delivery".into())),
    }
}

/// A failed send as a [`LogError`]: [`LogError::Rejected`] when the message
/// itself is refused (sending it again cannot succeed), else transient.
fn produce_error(error: KafkaError) -> LogError {
    match error.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::BadMessage,
        ) => LogError::Rejected(error.to_string()),
        _ => backend(error),
    }
}
