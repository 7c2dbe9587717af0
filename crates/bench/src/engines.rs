//! `deck-bench kafka`: the distributed pipeline on the real engines of
//! `scripts/cluster` (Kafka, Cassandra, Redis), in three phases on one fresh
//! topic:
//!
//! 1. **End to end:** Deck's producer path (`pipeline::run_source` into
//!    [`KafkaLog`]) writes `--records` generated X v2 messages while
//!    `--processors` processors (the code `deck process` runs: Kafka consumer
//!    group → parse → Cassandra → Redis trends → processed topic → commit)
//!    read them; posts/s is the records over the time until the last one is
//!    committed.
//! 2. **Deck's producer alone:** the same path writes `--producer-records`,
//!    generated beforehand (a real source receives its bytes; the generator's
//!    JSON building is not the producer's cost).
//! 3. **Kafka's own producer** (`ProducerPerformance`, the class behind
//!    `kafka-producer-perf-test`) writes as many records to the same
//!    broker and topic with the same producer settings (`acks=all`,
//!    idempotence, lz4, `linger.ms=5`) and payloads that are Deck's own
//!    serialized records.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pipeline::{KafkaConfig, KafkaLog, KafkaPublisher, Log, Metrics, Processor, ProcessorConfig};
use store::{CassandraConfig, CassandraStore, PostStore};
use tokio_util::sync::CancellationToken;

use crate::generate;

#[derive(clap::Args)]
pub struct KafkaArgs {
    #[arg(long, env = "DECK_KAFKA", default_value = "127.0.0.1:19092")]
    kafka: String,
    #[arg(long, env = "DECK_CASSANDRA", default_value = "127.0.0.1:19042")]
    cassandra: String,
    #[arg(long, env = "DECK_REDIS", default_value = "redis://127.0.0.1:16379/")]
    redis: String,
    /// Records through the whole pipeline (phase 1).
    #[arg(long, default_value_t = 200_000)]
    records: u64,
    /// Records written by each producer (phases 2 and 3).
    #[arg(long, default_value_t = 1_000_000)]
    producer_records: u64,
    /// Processors in the consumer group (tasks of this process).
    #[arg(long, default_value_t = 2)]
    processors: usize,
    /// Give up waiting for the processors after this long.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// The script that runs Kafka's tool classes.
    #[arg(long, default_value = "scripts/cluster")]
    cluster_script: PathBuf,
}

/// Writes `records` generated messages through `run_source` into the log,
/// as `deck ingest` does. Returns (records appended, elapsed).
async fn produce(
    log: Arc<KafkaLog>,
    store: Arc<dyn PostStore>,
    source: Box<dyn ingest::Source>,
    records: u64,
) -> anyhow::Result<(u64, Duration)> {
    let metrics = Metrics::new()?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(pipeline::run_source(
        source,
        log,
        store,
        metrics.clone(),
        crate::bench_stage("source"),
        shutdown.clone(),
    ));
    let records_in = metrics.records_in.with_label_values(&["bench"]);
    while records_in.get() < records && !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    task.await.context("producer task")?.context("producer")?;
    Ok((records_in.get(), started.elapsed()))
}

pub async fn run(args: KafkaArgs) -> anyhow::Result<()> {
    let namespace = format!("bench{}", chrono::Utc::now().timestamp());
    let mut kafka = KafkaConfig::single_node(&args.kafka);
    kafka.raw_topic = format!("{namespace}.raw");
    kafka.processed_topic = format!("{namespace}.processed");
    let mut cassandra = CassandraConfig::single_node(&args.cassandra);
    cassandra.keyspace = namespace.clone();
    let log = Arc::new(KafkaLog::connect(kafka.clone()).await.context("connect to Kafka")?);
    let cassandra_store = Arc::new(CassandraStore::connect_migrated(&cassandra).await.context("connect to Cassandra")?);
    let store: Arc<dyn PostStore> = cassandra_store.clone();
    let trends = Arc::new(trends::RedisTrends::connect(&args.redis, &namespace).await.context("connect to Redis")?);
    let publisher = Arc::new(KafkaPublisher::connect(&kafka).await.context("connect the processed producer")?);
    eprintln!(
        "namespace {namespace}: topic {} ({} partitions), keyspace {namespace}",
        kafka.raw_topic,
        log.partitions()
    );

    // Phase 1: end to end.
    let metrics = Metrics::new()?;
    let stop_processors = CancellationToken::new();
    let mut processors = Vec::new();
    for _ in 0..args.processors {
        let processor = Processor {
            log: log.clone(),
            store: store.clone(),
            trends: trends.clone(),
            publisher: publisher.clone(),
            metrics: metrics.clone(),
            config: ProcessorConfig { group: format!("{namespace}-processors"), ..ProcessorConfig::default() },
        };
        processors.push(tokio::spawn(processor.run(crate::bench_stage("processor"), stop_processors.clone())));
    }
    let started = Instant::now();
    let mut producer =
        tokio::spawn(produce(log.clone(), store.clone(), Box::new(generate::V2Source::new(1)), args.records));
    let mut last_report = Instant::now();
    let deadline = Duration::from_secs(args.max_seconds);
    // Until the producer is done and the processors have committed all it wrote.
    let mut appended = None;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if appended.is_none() && producer.is_finished() {
            appended = Some((&mut producer).await.context("producer")??);
        }
        let processed = metrics.records_processed.get();
        if appended.is_some_and(|(appended, _)| processed >= appended) || started.elapsed() >= deadline {
            break;
        }
        if let Some(failed) = processors.iter_mut().find(|processor| processor.is_finished()) {
            failed.await.context("processor task")?.context("processor")?;
            anyhow::bail!("a processor stopped");
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {:>5.0}s processed {processed} ({:.0}/s)",
                started.elapsed().as_secs_f64(),
                processed as f64 / started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    let elapsed = started.elapsed();
    let processed = metrics.records_processed.get();
    let (appended, produce_elapsed) = appended.context("the producer did not finish within --max-seconds")?;
    stop_processors.cancel();
    for processor in processors {
        processor.await.context("processor task")?.context("processor")?;
    }
    println!(
        "kafka end to end: {processed} of {appended} records through Kafka → {} processors → Cassandra + Redis in {:.1}s = {:.0} posts/s (the producer alone took {:.1}s of it: {:.0} records/s while sharing the cores){}",
        args.processors,
        elapsed.as_secs_f64(),
        processed as f64 / elapsed.as_secs_f64(),
        produce_elapsed.as_secs_f64(),
        appended as f64 / produce_elapsed.as_secs_f64(),
        if processed < appended { " — STOPPED EARLY at --max-seconds" } else { "" }
    );

    // Phase 2: Deck's producer path alone, from records made beforehand (as
    // Kafka's tool sends payloads read beforehand).
    let records = generate::v2_records(1_000_000_000, args.producer_records);
    let source = Box::new(generate::RecordsSource { records });
    let (appended, produce_elapsed) = produce(log.clone(), store.clone(), source, args.producer_records).await?;
    let deck_rate = appended as f64 / produce_elapsed.as_secs_f64();

    // Phase 3: Kafka's own tool, same broker, topic, settings and payloads.
    let payloads = tempfile::NamedTempFile::new()?;
    {
        use std::io::Write as _;
        let mut out = std::io::BufWriter::new(payloads.as_file());
        for record in generate::v2_records(2_000_000_000, 20_000) {
            out.write_all(&serde_json::to_vec(&record)?)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let output = std::process::Command::new(&args.cluster_script)
        .arg("kafka-tool")
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", &kafka.raw_topic, "--num-records", &args.producer_records.to_string(), "--throughput", "-1"])
        .arg("--payload-file")
        .arg(payloads.path())
        .arg("--producer-props")
        .arg(format!("bootstrap.servers={}", args.kafka))
        .args(["acks=all", "enable.idempotence=true", "compression.type=lz4"])
        .arg(format!("linger.ms={}", kafka.linger_ms))
        .output()
        .with_context(|| format!("run {} kafka-tool", args.cluster_script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(summary) = stdout.lines().rev().find(|line| line.contains("records sent")) else {
        anyhow::bail!("ProducerPerformance printed no summary:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    };
    let tool_rate: f64 = summary
        .split(',')
        .nth(1)
        .and_then(|part| part.split_whitespace().next())
        .and_then(|rate| rate.parse().ok())
        .with_context(|| format!("read the rate of: {summary}"))?;
    println!(
        "kafka producer: Deck's path {deck_rate:.0} records/s ({appended} records in {:.1}s)",
        produce_elapsed.as_secs_f64()
    );
    println!("kafka producer: Kafka's ProducerPerformance {tool_rate:.0} records/s ({summary})");
    println!("kafka producer: ratio Deck / Kafka's tool = {:.2}", deck_rate / tool_rate);

    // Leave the engines as they were: the posts and trends of this run take
    // Cassandra's disk and Redis's memory (its `maxmemory` is small in
    // `scripts/cluster`). The topic goes with Kafka's retention.
    cassandra_store
        .driver_session()
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {namespace}"), ())
        .await
        .map_err(|error| anyhow::anyhow!("drop keyspace {namespace}: {error}"))?;
    drop_redis_keys(&args.redis, &format!("{namespace}:*")).await?;
    Ok(())
}

/// Deletes the Redis keys matching `pattern`.
async fn drop_redis_keys(url: &str, pattern: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            let () = redis::cmd("UNLINK").arg(&keys).query_async(&mut connection).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
