//! The raw-records log on Kafka: [`KafkaLog`] appends, [`KafkaConsumer`]
//! reads as a member of the processors' consumer group and commits.

use super::*;

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
