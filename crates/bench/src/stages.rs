//! `deck-bench stages`: where an ingested post's time goes. The embedded
//! pipeline's stages run one after the other on batches of 2,048 records (as
//! the processor cuts them), each timed in wall time and in the process's
//! CPU time (every thread: the store's indexing threads and fjall's flusher
//! and compactor count towards the stage they run in):
//!
//! - `parse`: JSON, normalization and entity extraction (`ingest::Parser`);
//! - `store`: the embedded store's durable group commit (reads for
//!   idempotence, bodies, postings, fjall's batch and its fsync);
//! - `trends`: the embedded trends;
//! - `percolate`: each new post matched against `--queries` live column
//!   queries (`Doc::new` and the percolator), as the hub does before it
//!   fans out.
//!
//! Running the stages in sequence shows each one's cost per post; the real
//! processor overlaps parsing with the store, so `deck serve` is faster than
//! the sum (its rate is `scripts/bench-replay`'s figure).

use std::io::BufRead as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cpu_time::ProcessTime;
use model::{Origin, PostEvent, RawRecord};
use store::{EmbeddedStore, PostStore, WriteBatch};
use trends::TrendStore;

#[derive(clap::Args)]
pub struct StagesArgs {
    /// Raw records, one per line (e.g. full X v2 stream lines from
    /// `scripts/make-firehose`); without it, generated ~1 KB v2 lines.
    #[arg(long)]
    lines: Option<PathBuf>,
    /// Records to run (at most the lines in `--lines`).
    #[arg(long, default_value_t = 100_000)]
    posts: usize,
    /// Live column queries to percolate against.
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    /// The embedded store's folder (a temporary one by default).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Wall and CPU time spent in one stage.
#[derive(Default)]
struct Spent {
    wall: Duration,
    cpu: Duration,
}

impl Spent {
    fn add(&mut self, started: (Instant, ProcessTime)) {
        self.wall += started.0.elapsed();
        self.cpu += started.1.elapsed();
    }
}

fn now() -> (Instant, ProcessTime) {
    (Instant::now(), ProcessTime::now())
}

fn records(args: &StagesArgs) -> anyhow::Result<Vec<RawRecord>> {
    let Some(path) = &args.lines else {
        return Ok(crate::generate::v2_records(1, args.posts as u64));
    };
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let source = format!("replay:{}", path.display());
    let mut records = Vec::with_capacity(args.posts);
    for (position, line) in std::io::BufReader::new(file).lines().take(args.posts).enumerate() {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        records.push(RawRecord {
            key: position.to_string(),
            origin: Origin { source: source.clone(), position: position as u64, checkpoint: None },
            payload: line,
            received_ms: None,
        });
    }
    Ok(records)
}

pub async fn run(args: StagesArgs) -> anyhow::Result<()> {
    let records = records(&args)?;
    let n_records = records.len();
    let payload_bytes: usize = records.iter().map(|record| record.payload.len()).sum();
    let temp = tempfile::tempdir()?;
    let dir = args.data_dir.clone().unwrap_or_else(|| temp.path().to_owned());
    let store = Arc::new(EmbeddedStore::open(&dir).context("open store")?);
    let trends = trends::EmbeddedTrends::new();
    let mut percolator = feed::Percolator::default();
    for (query_idx, text) in crate::generate::column_queries(args.queries, 42).iter().enumerate() {
        let query = search::Query::parse(text).map_err(|error| anyhow::anyhow!("{text}: {}", error.message))?;
        percolator.insert(query_idx as u64, query);
    }

    // Records per batch: as the processor cuts them.
    let batch_size = pipeline::ProcessorConfig::default().max_batch;
    let mut parser = ingest::Parser::new();
    let (mut parse, mut write, mut count, mut percolate) =
        (Spent::default(), Spent::default(), Spent::default(), Spent::default());
    let (mut n_posts, mut n_inserted, mut n_malformed, mut n_matches) = (0usize, 0usize, 0usize, 0usize);
    for chunk in records.chunks(batch_size) {
        let started = now();
        let mut events = Vec::with_capacity(chunk.len());
        for record in chunk {
            match parser.parse(record) {
                Ok(parsed) => events.extend(parsed),
                Err(_) => n_malformed += 1,
            }
        }
        parse.add(started);
        n_posts += events.iter().filter(|event| matches!(event, PostEvent::Upsert(_))).count();
        let batch = WriteBatch { events, checkpoints: Vec::new() };
        // What the processor hands the trends: every upserted post and the posts it embeds.
        let recorded = pipeline::trend_events(&batch);

        let started = now();
        let applied = store.apply(batch).await?;
        write.add(started);
        n_inserted += applied.inserted.len();

        let started = now();
        trends.record(&recorded).await?;
        count.add(started);

        let started = now();
        for stored in &applied.inserted {
            let doc = search::Doc::new(stored);
            percolator.for_each_match(&doc, |found| n_matches += found.len());
        }
        percolate.add(started);
    }

    let store_phases: Vec<f64> = telemetry::STORE_WRITE_PHASES
        .iter()
        .map(|phase| telemetry::STORE_WRITE_SECONDS_TOTAL.with_label_values(&[phase]).get())
        .collect();
    let total_wall = parse.wall + write.wall + count.wall + percolate.wall;
    let total_cpu = parse.cpu + write.cpu + count.cpu + percolate.cpu;
    let per_post = |spent: Duration| spent.as_secs_f64() * 1e6 / n_records.max(1) as f64;
    println!(
        "stages: {n_records} records of {:.0} bytes on average ({n_posts} posts, {n_inserted} new, {n_malformed} malformed), \
         batches of {batch_size}, {} live queries ({:.1} matches per new post)",
        payload_bytes as f64 / n_records.max(1) as f64,
        args.queries,
        n_matches as f64 / n_inserted.max(1) as f64,
    );
    println!("{:<10} {:>14} {:>14} {:>8}", "stage", "wall µs/post", "CPU µs/post", "share");
    for (name, spent) in [("parse", &parse), ("store", &write), ("trends", &count), ("percolate", &percolate)] {
        println!(
            "{name:<10} {:>14.1} {:>14.1} {:>7.0}%",
            per_post(spent.wall),
            per_post(spent.cpu),
            100.0 * spent.cpu.as_secs_f64() / total_cpu.as_secs_f64().max(1e-9)
        );
    }
    println!("{:<10} {:>14.1} {:>14.1}", "total", per_post(total_wall), per_post(total_cpu));
    let phases: Vec<String> = telemetry::STORE_WRITE_PHASES
        .iter()
        .zip(&store_phases)
        .map(|(phase, seconds)| format!("{phase} {:.1}", seconds * 1e6 / n_records.max(1) as f64))
        .collect();
    println!("store, wall µs/post by phase: {}", phases.join(", "));
    println!(
        "in sequence: {:.0} posts/s, {:.1} MB/s of lines; {:.0} posts per CPU-second",
        n_records as f64 / total_wall.as_secs_f64().max(1e-9),
        payload_bytes as f64 / 1e6 / total_wall.as_secs_f64().max(1e-9),
        n_records as f64 / total_cpu.as_secs_f64().max(1e-9),
    );
    Ok(())
}
