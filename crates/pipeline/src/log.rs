//! The [`Log`] trait, shaped like Apache Kafka: records are appended to a
//! partition chosen by key, addressed by offset, and read by consumer groups
//! that commit the next offset to read once they have processed a record.
//!
//! [`EmbeddedLog`] is the one-process implementation: bounded in-memory
//! partitions. It keeps Kafka's contract (per-key order, at-least-once,
//! committed positions) but not its durability: in embedded mode sources
//! resume from the checkpoints saved with the stored posts, so a record that
//! was only in the log when the process died is read again from its source.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::RawRecord;
use tokio::sync::Notify;

/// A record read from the log, with where it was read.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub partition: u32,
    pub offset: u64,
    pub record: RawRecord,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log closed")]
    Closed,
    #[error("log backend: {0}")]
    Backend(String),
    /// What the log feeds has stopped for good (e.g. the fan-out thread):
    /// never retried, so the stage stops the process and names it.
    #[error("{0}")]
    Stopped(String),
    /// The log refused these records for good (on Kafka: a message larger
    /// than the topic's `max.message.bytes`, or one the broker calls
    /// invalid): sending them again cannot succeed, so it is never retried.
    #[error("refused by the log: {0}")]
    Rejected(String),
}

/// A partitioned, offset-addressed log with consumer groups.
#[async_trait::async_trait]
pub trait Log: Send + Sync {
    fn partitions(&self) -> u32;

    /// Appends records, each to the partition of its key. Returns once the
    /// log has accepted all of them (on Kafka: acknowledged by all in-sync
    /// replicas). Waits while the log is full.
    async fn append(&self, records: Vec<RawRecord>) -> Result<(), LogError>;

    /// Joins consumer group `group`; reading starts at the group's committed
    /// positions (the earliest offset for a new group).
    async fn consumer(&self, group: &str) -> Result<Box<dyn LogConsumer>, LogError>;

    /// A cheap check that the log answers (for `/readyz`); the embedded log always does.
    async fn ping(&self) -> Result<(), LogError> {
        Ok(())
    }
}

/// One member of a consumer group.
#[async_trait::async_trait]
pub trait LogConsumer: Send {
    /// Up to `max` records from the assigned partitions, waiting at most
    /// `max_wait` for the first one. An empty batch is not the end.
    async fn poll(&mut self, max: usize, max_wait: Duration) -> Result<Vec<Delivery>, LogError>;

    /// Stores the group's position after `deliveries` (the offset after the
    /// highest one per partition). Call only once they are processed.
    async fn commit(&mut self, deliveries: &[Delivery]) -> Result<(), LogError>;
}

/// The partition for a key: stable across runs and processes.
pub fn partition_for(key: &str, partitions: u32) -> u32 {
    // XXH3 (64-bit, seed 0): specified, so a key's partition is the same for
    // every build and release (std's `DefaultHasher` promises neither).
    (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % u64::from(partitions.max(1))) as u32
}

/// In-memory partitions with Kafka's offsets and group positions.
#[derive(Clone)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Woken on append (for consumers) and on commit (for blocked appenders).
    appended: Notify,
    committed: Notify,
    capacity_per_partition: usize,
}

struct State {
    partitions: Vec<Partition>,
    /// group → committed next offset per partition.
    groups: HashMap<String, Vec<u64>>,
}

struct Partition {
    /// Offset of `records[0]`.
    base_offset: u64,
    records: VecDeque<RawRecord>,
}

impl Partition {
    fn end_offset(&self) -> u64 {
        self.base_offset + self.records.len() as u64
    }
}

impl EmbeddedLog {
    /// A log of `partitions` partitions, each holding at most
    /// `capacity_per_partition` records not yet committed by every group.
    pub fn new(partitions: u32, capacity_per_partition: usize) -> EmbeddedLog {
        let partitions =
            (0..partitions.max(1)).map(|_| Partition { base_offset: 0, records: VecDeque::new() }).collect();
        EmbeddedLog {
            shared: Arc::new(Shared {
                state: Mutex::new(State { partitions, groups: HashMap::new() }),
                appended: Notify::new(),
                committed: Notify::new(),
                capacity_per_partition: capacity_per_partition.max(1),
            }),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, LogError> {
        self.shared.state.lock().map_err(|_| LogError::Backend("log lock poisoned".into()))
    }
}

#[async_trait::async_trait]
impl Log for EmbeddedLog {
    fn partitions(&self) -> u32 {
        self.lock().map(|state| state.partitions.len() as u32).unwrap_or(1)
    }

    async fn append(&self, records: Vec<RawRecord>) -> Result<(), LogError> {
        let mut pending = records.into_iter().peekable();
        while pending.peek().is_some() {
            let committed = self.shared.committed.notified();
            {
                let mut state = self.lock()?;
                let n_partitions = state.partitions.len() as u32;
                while let Some(record) = pending.peek() {
                    let partition_idx = partition_for(&record.key, n_partitions) as usize;
                    let partition = &mut state.partitions[partition_idx];
                    if partition.records.len() >= self.shared.capacity_per_partition {
                        break;
                    }
                    if let Some(record) = pending.next() {
                        partition.records.push_back(record);
                    }
                }
            }
            self.shared.appended.notify_waiters();
            if pending.peek().is_some() {
                // Full: wait for a consumer to commit (backpressure on sources).
                committed.await;
            }
        }
        Ok(())
    }

    async fn consumer(&self, group: &str) -> Result<Box<dyn LogConsumer>, LogError> {
        let mut state = self.lock()?;
        let starts: Vec<u64> = state.partitions.iter().map(|partition| partition.base_offset).collect();
        let positions = state.groups.entry(group.to_owned()).or_insert(starts).clone();
        Ok(Box::new(EmbeddedConsumer { log: self.clone(), group: group.to_owned(), positions }))
    }
}

struct EmbeddedConsumer {
    log: EmbeddedLog,
    group: String,
    /// Next offset to read per partition (ahead of the committed position).
    positions: Vec<u64>,
}

#[async_trait::async_trait]
impl LogConsumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, max_wait: Duration) -> Result<Vec<Delivery>, LogError> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let appended = self.log.shared.appended.notified();
            {
                let state = self.log.lock()?;
                let mut deliveries = Vec::new();
                for (partition_idx, partition) in state.partitions.iter().enumerate() {
                    let position = &mut self.positions[partition_idx];
                    *position = (*position).max(partition.base_offset);
                    while *position < partition.end_offset() && deliveries.len() < max {
                        let record_idx = (*position - partition.base_offset) as usize;
                        deliveries.push(Delivery {
                            partition: partition_idx as u32,
                            offset: *position,
                            record: partition.records[record_idx].clone(),
                        });
                        *position += 1;
                    }
                }
                if !deliveries.is_empty() {
                    return Ok(deliveries);
                }
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn commit(&mut self, deliveries: &[Delivery]) -> Result<(), LogError> {
        {
            let mut state = self.log.lock()?;
            let State { partitions, groups } = &mut *state;
            let committed = groups.entry(self.group.clone()).or_insert_with(|| vec![0; partitions.len()]);
            for delivery in deliveries {
                let slot = &mut committed[delivery.partition as usize];
                *slot = (*slot).max(delivery.offset + 1);
            }
            // Records every group has committed are no longer needed.
            for (partition_idx, partition) in partitions.iter_mut().enumerate() {
                let lowest = groups.values().map(|offsets| offsets[partition_idx]).min().unwrap_or(0);
                while partition.base_offset < lowest && partition.records.pop_front().is_some() {
                    partition.base_offset += 1;
                }
            }
        }
        self.log.shared.committed.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Origin;

    /// The partition of a key never changes between builds: XXH3's own test
    /// vector for the empty input, and the partitions of a few keys, pinned.
    #[test]
    fn partitions_are_pinned() {
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2D06_8005_38D3_94C2);
        let pinned: Vec<u32> =
            ["1", "1588523548181921792", "did:plc:abc", "방탄"].iter().map(|key| partition_for(key, 12)).collect();
        assert_eq!(pinned, [0, 6, 0, 0]);
        assert_eq!(partition_for("anything", 0), 0, "no partitions counts as one");
    }

    fn record(key: &str, position: u64) -> RawRecord {
        RawRecord {
            key: key.to_owned(),
            origin: Origin { source: "test".into(), position, checkpoint: None },
            payload: format!("{{\"n\":{position}}}"),
            received_ms: None,
        }
    }

    #[tokio::test]
    async fn uncommitted_records_are_delivered_again_to_the_next_consumer() {
        let log = EmbeddedLog::new(2, 100);
        log.append((0..10).map(|n| record(&format!("k{n}"), n)).collect()).await.unwrap();
        let mut first = log.consumer("processors").await.unwrap();
        let batch = first.poll(4, Duration::from_millis(10)).await.unwrap();
        assert_eq!(batch.len(), 4);
        first.commit(&batch).await.unwrap();
        let rest = first.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(rest.len(), 6);
        // Crash before committing `rest`: a new member starts at the committed position.
        drop(first);
        let mut second = log.consumer("processors").await.unwrap();
        let again = second.poll(100, Duration::from_millis(10)).await.unwrap();
        let mut again_positions: Vec<u64> = again.iter().map(|d| d.record.origin.position).collect();
        let mut rest_positions: Vec<u64> = rest.iter().map(|d| d.record.origin.position).collect();
        again_positions.sort();
        rest_positions.sort();
        assert_eq!(again_positions, rest_positions);
    }

    #[tokio::test]
    async fn one_key_keeps_its_order() {
        let log = EmbeddedLog::new(4, 100);
        log.append((0..20).map(|n| record("same-key", n)).collect()).await.unwrap();
        let mut consumer = log.consumer("g").await.unwrap();
        let batch = consumer.poll(100, Duration::from_millis(10)).await.unwrap();
        let positions: Vec<u64> = batch.iter().map(|d| d.record.origin.position).collect();
        assert_eq!(positions, (0..20).collect::<Vec<_>>());
        assert!(batch.iter().all(|d| d.partition == batch[0].partition));
    }

    #[tokio::test]
    async fn a_full_log_holds_appenders_until_a_commit() {
        let log = EmbeddedLog::new(1, 3);
        let appender = {
            let log = log.clone();
            tokio::spawn(async move { log.append((0..6).map(|n| record("k", n)).collect()).await })
        };
        let mut consumer = log.consumer("g").await.unwrap();
        let first = consumer.poll(10, Duration::from_millis(200)).await.unwrap();
        assert_eq!(first.len(), 3, "only capacity records fit before a commit");
        assert!(!appender.is_finished());
        consumer.commit(&first).await.unwrap();
        let second = consumer.poll(10, Duration::from_millis(500)).await.unwrap();
        assert_eq!(second.len(), 3);
        appender.await.unwrap().unwrap();
    }
}
