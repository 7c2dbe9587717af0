//! The two stages around the log: [`run_source`] moves a source's records
//! into the log; a [`Processor`] reads the log, parses, stores, counts trends,
//! publishes to the live feed, and commits its position last.

use std::sync::Arc;
use std::time::{Duration, Instant};

use model::{Applied, PostEvent, RawRecord};
use store::{PostStore, WriteBatch};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use trends::{TrendEvent, TrendStore};

use crate::health::{Stage, Transient, retry};
use crate::{Log, LogError, Metrics};

/// Where processed changes go once they are durable: the live feed (in one
/// process) or the processed-posts topic that feed nodes consume. A
/// transient error is retried (the processor commits nothing past an
/// unpublished batch); [`LogError::Rejected`] is answered with
/// [`Publisher::publish_gap`].
#[async_trait::async_trait]
pub trait Publisher: Send + Sync {
    async fn publish(&self, published: &Published) -> Result<(), LogError>;

    /// Tells every live column that changes of a stored batch will never
    /// reach it, so that it resyncs from the store: what the processor does
    /// when [`Publisher::publish`] refused the batch for good.
    async fn publish_gap(&self) -> Result<(), LogError> {
        self.publish(&Arc::new(Applied { gap: true, ..Applied::default() })).await
    }
}

/// What one processor batch changed.
pub type Published = Arc<Applied>;

#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Trends(#[from] trends::TrendsError),
    #[error(transparent)]
    Source(#[from] ingest::SourceError),
    /// A task of the stage panicked: a bug, never retried.
    #[error("{0} panicked")]
    Panicked(String),
}

impl Transient for LogError {
    fn is_transient(&self) -> bool {
        matches!(self, LogError::Backend(_))
    }
}

impl Transient for store::StoreError {
    fn is_transient(&self) -> bool {
        // An engine that does not answer comes back; corrupt data or a
        // failed storage task does not.
        matches!(self, store::StoreError::Engine(_))
    }
}

impl Transient for trends::TrendsError {
    fn is_transient(&self) -> bool {
        matches!(self, trends::TrendsError::Redis(_) | trends::TrendsError::Timeout(_))
    }
}

impl Transient for ProcessorError {
    fn is_transient(&self) -> bool {
        match self {
            ProcessorError::Log(error) => error.is_transient(),
            ProcessorError::Store(error) => error.is_transient(),
            ProcessorError::Trends(error) => error.is_transient(),
            ProcessorError::Source(_) | ProcessorError::Panicked(_) => false,
        }
    }
}

/// Tuning of a processor.
#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    /// Consumer group; every processor of one deployment shares it.
    pub group: String,
    /// Records per batch (one store commit and one fsync per batch).
    pub max_batch: usize,
    /// How long a batch waits for its first record.
    pub max_wait: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig { group: "deck-processors".into(), max_batch: 2048, max_wait: Duration::from_millis(50) }
    }
}

/// Reads the log, and for each batch: parse → store → trends → publish → commit.
pub struct Processor {
    pub log: Arc<dyn Log>,
    pub store: Arc<dyn PostStore>,
    pub trends: Arc<dyn TrendStore>,
    pub publisher: Arc<dyn Publisher>,
    pub metrics: Metrics,
    pub config: ProcessorConfig,
}

impl Processor {
    /// Runs until `shutdown`; a batch in progress is finished (stored and
    /// committed) or, if the process dies first, delivered again.
    ///
    /// Each step of a batch (store, trends, publish, commit) that fails
    /// transiently is retried in place, with backoff, on the same records:
    /// nothing is committed past a batch that is not wholly written, so an
    /// engine outage delays posts but loses none. A permanent failure is
    /// returned (the supervisor stops the process).
    pub async fn run(self, stage: Stage, shutdown: CancellationToken) -> Result<(), ProcessorError> {
        let Some(mut consumer) =
            retry(&stage, "join the log", &shutdown, || self.log.consumer(&self.config.group)).await?
        else {
            return Ok(());
        };
        stage.running();
        let mut parser = ingest::Parser::new();
        // The next batch, polled and parsed while the one before it was
        // being stored (parsing runs here while the store works on its own
        // thread), not yet processed or committed.
        let mut next: Option<(Vec<crate::Delivery>, WriteBatch)> = None;
        while !shutdown.is_cancelled() {
            let (deliveries, batch) = match next.take() {
                Some(polled) => polled,
                None => match self.poll_and_parse(consumer.as_mut(), &mut parser, &stage, &shutdown).await? {
                    Polled::Batch(deliveries, batch) => (deliveries, batch),
                    Polled::Nothing => continue,
                    Polled::Shutdown => break,
                },
            };
            stage.work_started();
            let started = Instant::now();
            let (processed, polled) = tokio::join!(
                self.process(batch, &stage, &shutdown),
                self.poll_and_parse(consumer.as_mut(), &mut parser, &stage, &shutdown),
            );
            if let Polled::Batch(next_deliveries, next_batch) = polled? {
                next = Some((next_deliveries, next_batch));
            }
            if !processed? {
                break;
            }
            if !commit(consumer.as_mut(), &deliveries, &stage, &shutdown).await? {
                break;
            }
            stage.work_done();
            stage.running();
            self.metrics.records_processed.inc_by(deliveries.len() as u64);
            self.metrics.batch_seconds.observe(started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Polls the next batch and parses it. A transient poll failure is
    /// reported and answered with [`Polled::Nothing`] after a pause.
    async fn poll_and_parse(
        &self,
        consumer: &mut dyn crate::LogConsumer,
        parser: &mut ingest::Parser,
        stage: &Stage,
        shutdown: &CancellationToken,
    ) -> Result<Polled, ProcessorError> {
        let polled = tokio::select! {
            polled = consumer.poll(self.config.max_batch, self.config.max_wait) => polled,
            () = shutdown.cancelled() => return Ok(Polled::Shutdown),
        };
        let deliveries = match polled {
            Ok(deliveries) => deliveries,
            Err(error) if error.is_transient() => {
                stage.retrying(&format!("poll the log: {error}"));
                tokio::select! {
                    () = tokio::time::sleep(self.config.max_wait.max(Duration::from_millis(200))) => return Ok(Polled::Nothing),
                    () = shutdown.cancelled() => return Ok(Polled::Shutdown),
                }
            }
            Err(error) => return Err(error.into()),
        };
        if deliveries.is_empty() {
            return Ok(Polled::Nothing);
        }
        let records: Vec<&RawRecord> = deliveries.iter().map(|delivery| &delivery.record).collect();
        let batch = parse_batch(&self.metrics, |record| parser.parse(record), &records);
        Ok(Polled::Batch(deliveries, batch))
    }

    /// Stores, counts and publishes one batch, each step retried until it
    /// succeeds. `false` when `shutdown` came first (nothing to commit).
    async fn process(
        &self,
        batch: WriteBatch,
        stage: &Stage,
        shutdown: &CancellationToken,
    ) -> Result<bool, ProcessorError> {
        if batch.events.is_empty() && batch.checkpoints.is_empty() {
            return Ok(true);
        }
        let recorded = trend_events(&batch);
        let mut attempts = 0u32;
        let applied = retry(stage, "store", shutdown, || {
            attempts += 1;
            // Retrying needs the batch again; the first attempt may take it.
            let attempt_batch = batch.clone();
            async move { self.store.apply(attempt_batch).await }
        })
        .await?;
        let Some(mut applied) = applied else { return Ok(false) };
        if attempts > 1 {
            // An attempt that failed may still have written some posts, and
            // the one that succeeded then no longer sees them as new: hand
            // every upserted post the store does not list to the live
            // columns as inserted, so none is missing there.
            restore_inserted(&batch, &mut applied);
        }
        if !recorded.is_empty() && retry(stage, "trends", shutdown, || self.trends.record(&recorded)).await?.is_none() {
            return Ok(false);
        }
        let removed: Vec<TrendEvent> = applied
            .deleted
            .iter()
            .map(|stored| TrendEvent::from_post(&stored.post, stored.retweeted.as_deref()))
            .collect();
        if !removed.is_empty() && retry(stage, "trends", shutdown, || self.trends.remove(&removed)).await?.is_none() {
            return Ok(false);
        }
        self.metrics.posts_stored.inc_by(applied.inserted.len() as u64 + applied.stored_behind_horizon);
        self.metrics.posts_deleted.inc_by(applied.deleted.len() as u64);
        let published: Published = Arc::new(applied);
        match retry(stage, "publish", shutdown, || self.publisher.publish(&published)).await {
            Ok(Some(())) => Ok(true),
            Ok(None) => Ok(false),
            Err(LogError::Rejected(reason)) => {
                // Stored, but the live feed can never take it (e.g. a message
                // over the broker's size limit): retrying would stall every
                // column for good, and skipping it would leave them a silent
                // gap. Every live column resyncs from the store instead.
                let ids: Vec<&str> = [&published.inserted, &published.updated, &published.deleted]
                    .into_iter()
                    .flatten()
                    .take(5)
                    .map(|stored| stored.post.id.as_str())
                    .collect();
                tracing::error!(
                    stage = stage.name(),
                    %reason,
                    n_posts = published.inserted.len() + published.updated.len() + published.deleted.len(),
                    first_ids = ?ids,
                    "the live feed refused a stored batch for good; every live column is told to resync"
                );
                self.metrics.publish_gaps.inc();
                Ok(retry(stage, "publish a gap", shutdown, || self.publisher.publish_gap()).await?.is_some())
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// What one poll of the log gave.
enum Polled {
    Batch(Vec<crate::Delivery>, WriteBatch),
    Nothing,
    Shutdown,
}

/// Commits `deliveries`, retrying transient failures like [`retry`] does
/// (a consumer cannot be borrowed by a retried closure). `false` when
/// `shutdown` came first.
async fn commit(
    consumer: &mut dyn crate::LogConsumer,
    deliveries: &[crate::Delivery],
    stage: &Stage,
    shutdown: &CancellationToken,
) -> Result<bool, ProcessorError> {
    let mut backoff = crate::health::retry_backoff();
    loop {
        match consumer.commit(deliveries).await {
            Ok(()) => return Ok(true),
            Err(error) if error.is_transient() => {
                stage.retrying(&format!("commit: {error}"));
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                    () = shutdown.cancelled() => return Ok(false),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// What the trend store counts of a batch: every upserted post and the
/// posts embedded in it.
pub fn trend_events(batch: &WriteBatch) -> Vec<TrendEvent> {
    let mut recorded = Vec::with_capacity(batch.events.len());
    for event in &batch.events {
        if let PostEvent::Upsert(bundle) = event {
            recorded.push(TrendEvent::from_post(&bundle.post, bundle.retweeted.as_deref()));
            for embedded in [&bundle.retweeted, &bundle.quoted].into_iter().flatten() {
                recorded.push(TrendEvent::from_post(embedded, None));
            }
        }
    }
    recorded
}

/// Adds to `applied.inserted` each upserted post of `batch` that `applied`
/// does not mention (see [`Processor::process`]).
fn restore_inserted(batch: &WriteBatch, applied: &mut Applied) {
    let listed: std::collections::HashSet<String> = [&applied.inserted, &applied.updated, &applied.deleted]
        .into_iter()
        .flatten()
        .map(|stored| stored.post.id.clone())
        .collect();
    for event in &batch.events {
        if let PostEvent::Upsert(bundle) = event
            && !listed.contains(&bundle.post.id)
        {
            applied.inserted.push(model::StoredPost {
                post: bundle.post.clone(),
                retweeted: bundle.retweeted.clone(),
                quoted: bundle.quoted.clone(),
            });
        }
    }
}

/// Parses records with `parse`; a malformed one is counted and logged with
/// where it came from, and the good ones around it go on. A panic while
/// parsing or normalizing one record (a bug that hostile input found) is
/// caught and counted the same way, so it costs that record, never the
/// batch. Every record's checkpoint is kept, malformed or not.
fn parse_batch<E: std::fmt::Display>(
    metrics: &Metrics,
    mut parse: impl FnMut(&RawRecord) -> Result<Vec<PostEvent>, E>,
    records: &[&RawRecord],
) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for record in records {
        match isolated(|| parse(record)) {
            Ok(events) => batch.events.extend(events),
            Err(error) => {
                metrics.malformed.with_label_values(&[record.origin.source.as_str()]).inc();
                tracing::warn!(origin = %record.origin, %error, "malformed record skipped");
            }
        }
        if let Some(checkpoint) = &record.origin.checkpoint {
            batch.checkpoints.push((record.origin.source.clone(), checkpoint.clone()));
        }
    }
    batch
}

/// Runs one record's parse; a panic inside it becomes an error naming the
/// panic. The parser's caches are plain maps, so a record that panicked
/// halfway leaves at most a stale entry behind.
fn isolated<T, E: std::fmt::Display>(parse: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)) {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(panic) => Err(format!("parsing panicked: {}", telemetry::panic_message(panic.as_ref()))),
    }
}

/// Stores a batch and brings the trends in step with it.
///
/// Every upserted post of the batch goes to the trend store, not only the
/// ones new to the post store: if a processor died between the two writes,
/// the re-delivered post is no longer new to the post store, and the trend
/// store (idempotent by post id, and remembering deletes) must still see it.
pub async fn apply_and_count(
    store: &dyn PostStore,
    trends: &dyn TrendStore,
    batch: WriteBatch,
) -> Result<Applied, ProcessorError> {
    if batch.events.is_empty() && batch.checkpoints.is_empty() {
        return Ok(Applied::default());
    }
    let recorded = trend_events(&batch);
    let applied = store.apply(batch).await?;
    if !recorded.is_empty() {
        trends.record(&recorded).await?;
    }
    let removed: Vec<TrendEvent> =
        applied.deleted.iter().map(|stored| TrendEvent::from_post(&stored.post, stored.retweeted.as_deref())).collect();
    if !removed.is_empty() {
        trends.remove(&removed).await?;
    }
    Ok(applied)
}

/// Records a source may have read ahead of the log.
const SOURCE_BUFFER: usize = 16_384;
/// Most records per append.
const MAX_APPEND: usize = 8_192;

/// Moves one source's records into the log, in batches, until the source
/// ends or `shutdown`. The source resumes from the checkpoint stored with
/// the posts it produced before. An append that fails transiently (the log
/// unreachable) is retried with the same records; the source waits meanwhile.
pub async fn run_source(
    source: Box<dyn ingest::Source>,
    log: Arc<dyn Log>,
    store: Arc<dyn PostStore>,
    metrics: Metrics,
    stage: Stage,
    shutdown: CancellationToken,
) -> Result<(), ProcessorError> {
    let name = source.name().to_owned();
    let Some(checkpoint) = retry(&stage, "read the checkpoint", &shutdown, || store.checkpoint(&name)).await? else {
        return Ok(());
    };
    stage.running();
    // Each append waits for the log's acknowledgement (Kafka: `acks=all`,
    // after `linger.ms`), so a fast source needs large appends to keep the
    // producer busy; a slow one makes small ones, as soon as records come.
    let (records_tx, mut records_rx) = mpsc::channel::<RawRecord>(SOURCE_BUFFER);
    let source_task = tokio::spawn(source.run(checkpoint, records_tx, shutdown.clone()));
    let records_in = metrics.records_in.with_label_values(&[name.as_str()]);
    let mut batch = Vec::with_capacity(MAX_APPEND);
    while records_rx.recv_many(&mut batch, MAX_APPEND).await > 0 {
        records_in.inc_by(batch.len() as u64);
        stage.work_started();
        // The log needs the records by value; an attempt that fails hands
        // them on no further, so each attempt gets its own copy.
        let appended = retry(&stage, "append to the log", &shutdown, || log.append(batch.clone())).await?;
        if appended.is_none() {
            // Shut down while the log was unreachable: the source resumes
            // from its stored checkpoint next time, so nothing is lost.
            break;
        }
        stage.work_done();
        batch.clear();
    }
    drop(records_rx);
    match source_task.await {
        Ok(result) => result?,
        Err(error) if error.is_panic() => return Err(ProcessorError::Panicked(format!("source {name}"))),
        Err(error) => tracing::error!(source = %name, %error, "source task failed"),
    }
    tracing::info!(source = %name, "source finished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Origin;

    #[test]
    fn a_record_that_panics_costs_that_record_and_the_batch_goes_on() {
        let metrics = Metrics::new().unwrap_or_else(|error| panic!("{error}"));
        let records: Vec<RawRecord> = (1..=3)
            .map(|position| RawRecord {
                key: position.to_string(),
                origin: Origin { source: "replay:hostile".into(), position, checkpoint: Some(format!("c{position}")) },
                payload: format!("record {position}"),
                received_ms: None,
            })
            .collect();
        let refs: Vec<&RawRecord> = records.iter().collect();
        let batch = parse_batch(
            &metrics,
            |record| {
                assert_ne!(record.origin.position, 2, "a bug that hostile input found");
                Ok::<_, String>(vec![PostEvent::Delete { id: record.key.clone() }])
            },
            &refs,
        );
        let ids: Vec<_> = batch
            .events
            .iter()
            .map(|event| match event {
                PostEvent::Delete { id } => id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["1", "3"]);
        assert_eq!(metrics.malformed.with_label_values(&["replay:hostile"]).get(), 1);
        // The position moves past the bad record too: it is not parsed again.
        let checkpoints: Vec<_> = batch.checkpoints.iter().map(|(_, checkpoint)| checkpoint.as_str()).collect();
        assert_eq!(checkpoints, ["c1", "c2", "c3"]);
    }

    /// A publisher whose feed refuses every batch for good (as Kafka refuses
    /// a message over the topic's `max.message.bytes`) but takes gaps.
    #[derive(Default)]
    struct RefusingPublisher {
        calls: std::sync::Mutex<Vec<&'static str>>,
    }

    #[async_trait::async_trait]
    impl Publisher for RefusingPublisher {
        async fn publish(&self, published: &Published) -> Result<(), LogError> {
            let mut calls = self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if published.gap {
                calls.push("gap");
                return Ok(());
            }
            calls.push("batch");
            Err(LogError::Rejected("Broker: Message size too large".into()))
        }
    }

    #[tokio::test]
    async fn a_batch_the_feed_refuses_for_good_is_stored_committed_and_resyncs_every_column() {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let store = Arc::new(store::EmbeddedStore::open(dir.path()).unwrap_or_else(|error| panic!("{error}")));
        let log = Arc::new(crate::EmbeddedLog::new(1, 100));
        let payload = r#"{"data":{"id":"77","text":"hello #bts","author_id":"9","created_at":"2026-12-01T10:00:00.000Z"},"includes":{"users":[{"id":"9","username":"army","name":"Army"}]}}"#;
        log.append(vec![RawRecord {
            key: "77".into(),
            origin: Origin { source: "replay:refused".into(), position: 1, checkpoint: None },
            payload: payload.into(),
            received_ms: None,
        }])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        let publisher = Arc::new(RefusingPublisher::default());
        let metrics = Metrics::new().unwrap_or_else(|error| panic!("{error}"));
        let processor = Processor {
            log: log.clone(),
            store: store.clone(),
            trends: Arc::new(trends::EmbeddedTrends::new()),
            publisher: publisher.clone(),
            metrics: metrics.clone(),
            config: ProcessorConfig { max_wait: Duration::from_millis(10), ..ProcessorConfig::default() },
        };
        let health = crate::Health::new(Duration::from_secs(60));
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(processor.run(health.stage("processor"), shutdown.clone()));

        let deadline = Instant::now() + Duration::from_secs(30);
        while metrics.records_processed.get() < 1 {
            assert!(Instant::now() < deadline, "the refused batch was never committed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        let outcome = running.await.unwrap_or_else(|error| panic!("{error}"));
        assert!(outcome.is_ok(), "the processor went on: {outcome:?}");
        // Refused once (never retried: it could not succeed), then a gap.
        assert_eq!(*publisher.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner()), ["batch", "gap"]);
        assert_eq!(metrics.publish_gaps.get(), 1);
        // The post is stored, so the resynced columns read it from the store.
        let stored = store.get(&["77".to_owned()]).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(stored.len(), 1);
        // And the log position moved past it: it is not processed again.
        let mut consumer = log.consumer("deck-processors").await.unwrap_or_else(|error| panic!("{error}"));
        let again = consumer.poll(10, Duration::from_millis(20)).await.unwrap_or_else(|error| panic!("{error}"));
        assert!(again.is_empty(), "committed");
    }

    #[test]
    fn a_panic_while_parsing_is_an_error_of_that_record() {
        let panicking = isolated(|| -> Result<(), String> { panic!("index out of bounds") });
        assert_eq!(panicking, Err("parsing panicked: index out of bounds".to_owned()));
        assert_eq!(isolated(|| Ok::<_, String>(7)), Ok(7));
        assert_eq!(isolated(|| Err::<(), _>("bad")), Err("bad".to_owned()));
    }
}
