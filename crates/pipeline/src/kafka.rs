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

/// Posts per message on the processed topic (keeps messages well under
/// Kafka's default 1 MB limit).
const POSTS_PER_MESSAGE: usize = 200;
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
    let raw = NewTopic::new(&config.raw_topic, config.partitions, TopicReplication::Fixed(config.replication_factor))
        .set("min.insync.replicas", &min_insync)
        .set("retention.ms", &raw_retention);
    let processed = NewTopic::new(
        &config.processed_topic,
        config.processed_partitions,
        TopicReplication::Fixed(config.replication_factor),
    )
    .set("min.insync.replicas", &min_insync)
    .set("retention.ms", &processed_retention);
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
                Err((error, _)) => return Err(backend(error)),
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
        Ok(Err((error, _))) => Err(backend(error)),
        Err(_) => Err(LogError::Backend("producer dropped a delivery".into())),
    }
}

/// Apache Kafka as Deck's [`Log`]. Cheap to clone.
#[derive(Clone)]
pub struct KafkaLog {
    config: Arc<KafkaConfig>,
    producer: FutureProducer,
    partitions: u32,
}

impl KafkaLog {
    /// Connects, creates the topics if configured to, and learns the raw
    /// topic's partition count.
    pub async fn connect(config: KafkaConfig) -> Result<KafkaLog, LogError> {
        if config.create_topics {
            create_topics(&config).await?;
        }
        let producer = config.producer()?;
        let partitions = partition_count(&producer, &config.raw_topic).await?;
        Ok(KafkaLog { config: Arc::new(config), producer, partitions })
    }

    /// The settings in force.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// A member of consumer group `group`, as its concrete type (which can
    /// also tell its current assignment).
    pub fn kafka_consumer(&self, group: &str) -> Result<KafkaConsumer, LogError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", self.config.auto_commit_interval_ms.to_string())
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", self.config.session_timeout_ms.to_string())
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create()
            .map_err(backend)?;
        consumer.subscribe(&[&self.config.raw_topic]).map_err(backend)?;
        Ok(KafkaConsumer { consumer, topic: self.config.raw_topic.clone() })
    }
}

#[async_trait::async_trait]
impl Log for KafkaLog {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    async fn append(&self, records: Vec<RawRecord>) -> Result<(), LogError> {
        let mut messages = Vec::with_capacity(records.len());
        for record in &records {
            messages.push((record.key.as_bytes(), serde_json::to_vec(record).map_err(backend)?, None));
        }
        produce_all(&self.producer, &self.config.raw_topic, messages).await
    }

    async fn consumer(&self, group: &str) -> Result<Box<dyn LogConsumer>, LogError> {
        Ok(Box::new(self.kafka_consumer(group)?))
    }

    async fn ping(&self) -> Result<(), LogError> {
        let client = self.producer.clone();
        let topic = self.config.raw_topic.clone();
        // A metadata request answered by a broker (not librdkafka's cache);
        // it blocks, so off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            client.client().fetch_metadata(Some(&topic), crate::health::PROBE_TIMEOUT).map(|_| ()).map_err(backend)
        })
        .await
        .map_err(backend)?
    }
}

/// One member of a consumer group on the raw topic.
pub struct KafkaConsumer {
    consumer: StreamConsumer,
    topic: String,
}

impl KafkaConsumer {
    /// The partitions currently assigned to this member, sorted.
    pub fn assigned_partitions(&self) -> Result<Vec<u32>, LogError> {
        let assignment = self.consumer.assignment().map_err(backend)?;
        let mut partitions: Vec<u32> = assignment
            .elements_for_topic(&self.topic)
            .iter()
            .filter_map(|element| u32::try_from(element.partition()).ok())
            .collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    fn delivery(&self, message: &rdkafka::message::BorrowedMessage<'_>) -> Option<Delivery> {
        let partition = u32::try_from(message.partition()).ok()?;
        let offset = u64::try_from(message.offset()).ok()?;
        let payload = message.payload().unwrap_or_default();
        let record = serde_json::from_slice::<RawRecord>(payload).unwrap_or_else(|error| {
            // Not a record Deck wrote: hand it on as it is, so the processor
            // counts it as malformed, logs where it was, and commits past it.
            tracing::warn!(topic = %self.topic, partition, offset, %error, "undecodable Kafka record");
            RawRecord {
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                origin: Origin {
                    source: format!("kafka:{}/{partition}", self.topic),
                    position: offset,
                    checkpoint: None,
                },
                payload: String::from_utf8_lossy(payload).into_owned(),
                received_ms: None,
            }
        });
        Some(Delivery { partition, offset, record })
    }
}

#[async_trait::async_trait]
impl LogConsumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, max_wait: Duration) -> Result<Vec<Delivery>, LogError> {
        let mut deliveries = Vec::new();
        let first = match tokio::time::timeout(max_wait, self.consumer.recv()).await {
            Err(_) => return Ok(deliveries),
            Ok(Ok(message)) => message,
            Ok(Err(error)) => {
                // Broker trouble is transient for a consumer: librdkafka
                // reconnects and rejoins; report nothing read this time.
                tracing::warn!(%error, "Kafka consumer error");
                tokio::time::sleep(max_wait.min(Duration::from_millis(200))).await;
                return Ok(deliveries);
            }
        };
        deliveries.extend(self.delivery(&first));
        drop(first);
        while deliveries.len() < max.max(1) {
            // Take what is already fetched without waiting (the inner future is polled first).
            match tokio::time::timeout(Duration::ZERO, self.consumer.recv()).await {
                Ok(Ok(message)) => deliveries.extend(self.delivery(&message)),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "Kafka consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(deliveries)
    }

    async fn commit(&mut self, deliveries: &[Delivery]) -> Result<(), LogError> {
        let mut highest: BTreeMap<u32, u64> = BTreeMap::new();
        for delivery in deliveries {
            let slot = highest.entry(delivery.partition).or_insert(delivery.offset);
            *slot = (*slot).max(delivery.offset);
        }
        for (partition, offset) in highest {
            let (Ok(partition), Ok(offset)) = (i32::try_from(partition), i64::try_from(offset)) else {
                continue;
            };
            // librdkafka stores `offset + 1`, the next offset to read; auto-commit sends it.
            if let Err(error) = self.consumer.store_offset(&self.topic, partition, offset) {
                // The partition moved to another member during the batch: it
                // will deliver these records again (at-least-once).
                tracing::debug!(partition, offset, %error, "offset not stored (partition revoked)");
            }
        }
        Ok(())
    }
}

/// One post on the processed topic.
#[derive(Serialize, Deserialize)]
struct WirePost {
    post: Post,
    retweeted: Option<Post>,
    quoted: Option<Post>,
}

impl WirePost {
    fn from_stored(stored: &StoredPost) -> WirePost {
        WirePost {
            post: stored.post.clone(),
            retweeted: stored.retweeted.as_deref().cloned(),
            quoted: stored.quoted.as_deref().cloned(),
        }
    }

    fn into_stored(self) -> StoredPost {
        StoredPost { post: self.post, retweeted: self.retweeted.map(Box::new), quoted: self.quoted.map(Box::new) }
    }
}

/// One message of the processed topic: part of one processor batch.
#[derive(Default, Serialize, Deserialize)]
struct ProcessedMessage {
    inserted: Vec<WirePost>,
    updated: Vec<WirePost>,
    deleted: Vec<WirePost>,
}

impl ProcessedMessage {
    fn len(&self) -> usize {
        self.inserted.len() + self.updated.len() + self.deleted.len()
    }
}

/// Publishes what processors stored to the processed topic, for feed nodes.
///
/// A batch is split by post id over the topic's partitions (so the changes
/// of one post stay in order across batches) into messages of at most
/// [`POSTS_PER_MESSAGE`] posts.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    topic: String,
    partitions: u32,
}

impl KafkaPublisher {
    /// Connects (creating the topics if configured to).
    pub async fn connect(config: &KafkaConfig) -> Result<KafkaPublisher, LogError> {
        if config.create_topics {
            create_topics(config).await?;
        }
        let producer = config.producer()?;
        let partitions = partition_count(&producer, &config.processed_topic).await?;
        Ok(KafkaPublisher { producer, topic: config.processed_topic.clone(), partitions })
    }

    /// Sends one batch and waits until Kafka acknowledged it.
    pub async fn send(&self, applied: &Applied) -> Result<(), LogError> {
        let mut by_partition: HashMap<u32, Vec<ProcessedMessage>> = HashMap::new();
        let lists = [(&applied.inserted, 0usize), (&applied.updated, 1), (&applied.deleted, 2)];
        for (posts, list_idx) in lists {
            for stored in posts {
                let partition = partition_for(&stored.post.id, self.partitions);
                let messages = by_partition.entry(partition).or_default();
                if messages.last().is_none_or(|message| message.len() >= POSTS_PER_MESSAGE) {
                    messages.push(ProcessedMessage::default());
                }
                if let Some(message) = messages.last_mut() {
                    let wire = WirePost::from_stored(stored);
                    match list_idx {
                        0 => message.inserted.push(wire),
                        1 => message.updated.push(wire),
                        _ => message.deleted.push(wire),
                    }
                }
            }
        }
        let mut encoded: Vec<(&[u8], Vec<u8>, Option<i32>)> = Vec::new();
        for (partition, messages) in by_partition {
            for message in messages {
                encoded.push((b"", serde_json::to_vec(&message).map_err(backend)?, i32::try_from(partition).ok()));
            }
        }
        produce_all(&self.producer, &self.topic, encoded).await
    }
}

#[async_trait::async_trait]
impl Publisher for KafkaPublisher {
    async fn publish(&self, published: &Published) -> Result<(), LogError> {
        // The processor retries a failed send before it commits, so feed
        // nodes get every batch. After a partial failure the messages that
        // did go out are sent again; the web client merges posts by id.
        self.send(published).await
    }
}

/// Reads every partition of the processed topic from the end (a feed node
/// needs every post, but only from now on), outside any consumer group.
pub struct ProcessedConsumer {
    consumer: StreamConsumer,
}

impl ProcessedConsumer {
    /// Connects and positions at the current end of every partition: batches
    /// published after this returns are delivered.
    pub async fn start(config: &KafkaConfig) -> Result<ProcessedConsumer, LogError> {
        if config.create_topics {
            create_topics(config).await?;
        }
        let consumer: Arc<StreamConsumer> = Arc::new(
            ClientConfig::new()
                .set("bootstrap.servers", &config.brokers)
                // Required by the client; never joined (partitions are assigned, not subscribed).
                .set("group.id", "deck-feed")
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .create()
                .map_err(backend)?,
        );
        let topic = config.processed_topic.clone();
        let positioned = consumer.clone();
        // Watermark and metadata requests block: keep them off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            let metadata = positioned.fetch_metadata(Some(&topic), METADATA_TIMEOUT).map_err(backend)?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|found| found.name() == topic)
                .flat_map(|found| found.partitions().iter().map(|partition| partition.id()))
                .collect();
            if partitions.is_empty() {
                return Err(LogError::Backend(format!("topic {topic} has no partitions")));
            }
            let mut assignment = TopicPartitionList::new();
            for partition in partitions {
                let (_, high) = positioned.fetch_watermarks(&topic, partition, METADATA_TIMEOUT).map_err(backend)?;
                assignment.add_partition_offset(&topic, partition, Offset::Offset(high)).map_err(backend)?;
            }
            positioned.assign(&assignment).map_err(backend)
        })
        .await
        .map_err(backend)??;
        let consumer =
            Arc::try_unwrap(consumer).map_err(|_| LogError::Backend("processed consumer still shared".into()))?;
        Ok(ProcessedConsumer { consumer })
    }

    /// The next batch (part of a processor batch), or `None` at `shutdown`.
    pub async fn next(&mut self, shutdown: &CancellationToken) -> Result<Option<Applied>, LogError> {
        loop {
            let message = tokio::select! {
                message = self.consumer.recv() => message,
                () = shutdown.cancelled() => return Ok(None),
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "Kafka processed-topic consumer error");
                    continue;
                }
            };
            match serde_json::from_slice::<ProcessedMessage>(message.payload().unwrap_or_default()) {
                Ok(batch) => {
                    return Ok(Some(Applied {
                        inserted: batch.inserted.into_iter().map(WirePost::into_stored).collect(),
                        updated: batch.updated.into_iter().map(WirePost::into_stored).collect(),
                        deleted: batch.deleted.into_iter().map(WirePost::into_stored).collect(),
                    }));
                }
                Err(error) => {
                    tracing::warn!(partition = message.partition(), offset = message.offset(), %error, "undecodable processed batch skipped");
                }
            }
        }
    }

    /// Calls `on_batch` with every batch until `shutdown` (a feed node hands
    /// them to its `Hub::publish`).
    pub async fn run(
        mut self,
        mut on_batch: impl FnMut(Published) + Send,
        shutdown: CancellationToken,
    ) -> Result<(), LogError> {
        while let Some(applied) = self.next(&shutdown).await? {
            on_batch(Arc::new(applied));
        }
        Ok(())
    }
}
