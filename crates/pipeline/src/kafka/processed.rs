//! The processed-posts topic: [`KafkaPublisher`] writes what each batch
//! applied, and [`ProcessedConsumer`] (a feed node) follows it from the end.

use serde_json::value::RawValue;

use super::*;

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

/// One message of the processed topic, as a feed node reads it: part of
/// one processor batch.
#[derive(Default, Serialize, Deserialize)]
struct ProcessedMessage {
    inserted: Vec<WirePost>,
    updated: Vec<WirePost>,
    deleted: Vec<WirePost>,
    /// [`Applied::gap`]: changes were lost on the way, resync every column.
    #[serde(default)]
    gap: bool,
}

/// One message of the processed topic, as the publisher builds it: its
/// posts already serialized, so that its size is known as it grows.
#[derive(Default, Serialize)]
struct OutgoingMessage {
    inserted: Vec<Box<RawValue>>,
    updated: Vec<Box<RawValue>>,
    deleted: Vec<Box<RawValue>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    gap: bool,
    #[serde(skip)]
    bytes: usize,
}

impl OutgoingMessage {
    fn len(&self) -> usize {
        self.inserted.len() + self.updated.len() + self.deleted.len()
    }

    /// Whether `post_bytes` more would take this message past a message's
    /// budget (a message always takes its first post, whatever its size).
    fn is_full_for(&self, post_bytes: usize) -> bool {
        self.len() > 0 && (self.len() >= POSTS_PER_MESSAGE || self.bytes + post_bytes > MESSAGE_BUDGET_BYTES)
    }
}

/// Publishes what processors stored to the processed topic, for feed nodes.
///
/// A batch is split by post id over the topic's partitions (so the changes
/// of one post stay in order across batches) into messages of at most
/// [`POSTS_PER_MESSAGE`] posts and, past their first post, at most
/// [`MESSAGE_BUDGET_BYTES`]: normalized posts can be large (a 25,000-character
/// X post with a quoted one and their media), and a message over the topic's
/// `max.message.bytes` could never be sent.
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

    /// Sends one batch and waits until Kafka acknowledged it. A message the
    /// broker refuses for good (over the topic's `max.message.bytes`) is
    /// [`LogError::Rejected`]; others are transient.
    pub async fn send(&self, applied: &Applied) -> Result<(), LogError> {
        let mut by_partition: HashMap<u32, Vec<OutgoingMessage>> = HashMap::new();
        if applied.gap {
            // Every feed node reads every partition: one message tells them all.
            by_partition.entry(0).or_default().push(OutgoingMessage { gap: true, ..OutgoingMessage::default() });
        }
        let lists = [(&applied.inserted, 0usize), (&applied.updated, 1), (&applied.deleted, 2)];
        for (posts, list_idx) in lists {
            for stored in posts {
                let wire = serde_json::value::to_raw_value(&WirePost::from_stored(stored)).map_err(backend)?;
                let post_bytes = wire.get().len() + 1;
                let partition = partition_for(&stored.post.id, self.partitions);
                let messages = by_partition.entry(partition).or_default();
                if messages.last().is_none_or(|message| message.is_full_for(post_bytes)) {
                    messages.push(OutgoingMessage::default());
                }
                if let Some(message) = messages.last_mut() {
                    message.bytes += post_bytes;
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
                        gap: batch.gap,
                        ..Applied::default()
                    }));
                }
                Err(error) => {
                    // Its posts are lost to the live columns (they are in the
                    // store): a gap, so that every column resyncs.
                    tracing::warn!(partition = message.partition(), offset = message.offset(), %error, "undecodable processed batch: every live column resyncs");
                    return Ok(Some(Applied { gap: true, ..Applied::default() }));
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
