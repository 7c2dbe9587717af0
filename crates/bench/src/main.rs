//! `deck-bench`: the load drivers behind the figures in BENCHMARKS.md.
//!
//! - `ingest`: realistic ~1 KB X API v2 messages through the real pipeline
//!   (log → parse → extract → durable store → trends), posts/s over a period.
//! - `stages`: wall and CPU µs per post of each ingest stage (parse, store,
//!   trends, percolate), on ~1 KB generated lines or a file of full ones.
//! - `history`: timeline page latency over a store of N posts.
//! - `percolate`: posts/s matched against many active column queries, one core.
//! - `ws`: many WebSocket connections with columns against a running server.
//! - `http`: requests/s with and without a token, optionally in a login storm.
//! - `kafka`: the distributed pipeline on the real engines, and Deck's
//!   producer against Kafka's own producer tool.

mod engines;
mod generate;
mod stages;
mod ws;

/// The allocator `deck` itself uses, so that what runs in process here
/// (`ingest`, `history`, `percolate`) is measured as it runs in `deck`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use feed::Percolator;
use pipeline::{EmbeddedLog, Log, Metrics, Processor, ProcessorConfig, Published, Publisher};
use store::{EmbeddedStore, PostStore, Range};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "deck-bench", about = "Deck's load drivers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sustained ingest through the real embedded pipeline.
    Ingest {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Wall and CPU time per post of each ingest stage, in sequence.
    Stages(stages::StagesArgs),
    /// History page latency (50 posts) over a store of `--posts` posts.
    History {
        #[arg(long, default_value_t = 1_000_000)]
        posts: u64,
        /// The embedded store's folder (kept between runs).
        #[arg(long, required_unless_present = "cassandra")]
        data_dir: Option<PathBuf>,
        /// Use Apache Cassandra at these contact points instead (keyspace
        /// `bench_history`, kept between runs).
        #[arg(long)]
        cassandra: Option<String>,
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// The writer's stall while the retention sweep removes stale
    /// tombstones: write latency before and during the sweep, in one run.
    Sweep {
        /// Tombstones to sweep (deletes of ids never stored, as a
        /// compliance stream sends them).
        #[arg(long, default_value_t = 1_000_000)]
        tombstones: usize,
        /// A fresh folder for the embedded store.
        #[arg(long)]
        data_dir: PathBuf,
        /// Posts per write batch of the writer that runs beside the sweep.
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Posts/s matched against `--queries` active column queries, on one core.
    Percolate {
        #[arg(long, default_value_t = 100_000)]
        queries: usize,
        #[arg(long, default_value_t = 200_000)]
        posts: usize,
    },
    /// Memory of the embedded trends: `--posts` synthetic posts spread over
    /// `--minutes` of event time (each with 2 of `--tags` tags and one of
    /// `--accounts` authors), with a bound on remembered post ids.
    Trends {
        #[arg(long, default_value_t = 4_000_000)]
        posts: u64,
        #[arg(long, default_value_t = 2_880)]
        minutes: u64,
        #[arg(long, default_value_t = 300_000)]
        accounts: u64,
        #[arg(long, default_value_t = 50_000)]
        tags: u64,
        #[arg(long, default_value_t = trends::DEFAULT_MAX_TRACKED_IDS)]
        max_tracked_ids: usize,
    },
    /// WebSocket fan-out against a running `deck serve`.
    Ws(ws::WsArgs),
    /// Kafka → processors → Cassandra, and Deck's producer vs Kafka's tool.
    Kafka(engines::KafkaArgs),
    /// HTTP requests/s and latency against a running server, with or without
    /// a bearer token, optionally during a storm of logins.
    Http {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value = "/api/timeline?q=%23BTS&limit=20")]
        path: String,
        /// Sent as `Authorization: Bearer` when given.
        #[arg(long)]
        token: Option<String>,
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Concurrent login attempts kept running meanwhile (wrong passwords
        /// cost the same Argon2 work), spread over this many accounts.
        #[arg(long, default_value_t = 0)]
        login_storm: usize,
        /// Abusive clients kept running meanwhile, each from its own address
        /// (`X-Forwarded-For`; start the server with `--trusted-proxy
        /// 127.0.0.1`), sending the costliest timeline queries in a loop:
        /// conjunctions of common terms that never meet, long ORs,
        /// negations, deep pages.
        #[arg(long, default_value_t = 0)]
        abuse: usize,
        /// The server's admin listener, to report its ingest rate
        /// (`deck_records_processed_total`) in the quiet and the abused phase.
        #[arg(long)]
        admin_url: Option<String>,
        /// With `--abuse`: the normal client's requests per second, one at
        /// a time (a reader scrolling, not a flood; 0 sends them back to
        /// back). Only its 200 answers count towards its latency; the
        /// others are reported.
        #[arg(long, default_value_t = 10.0)]
        pace: f64,
    },
}

struct NullPublisher;

#[async_trait::async_trait]
impl Publisher for NullPublisher {
    async fn publish(&self, _published: &Published) -> Result<(), pipeline::LogError> {
        Ok(())
    }
}

/// A stage handle for a pipeline stage the bench runs outside a supervisor.
pub fn bench_stage(name: &str) -> pipeline::Stage {
    pipeline::Health::new(Duration::from_secs(3600)).stage(name)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// Records synthetic posts into the embedded trends, oldest first, and
/// prints the resident memory it took, every tenth of the way.
fn trends_memory(posts: u64, minutes: u64, accounts: u64, tags: u64, max_tracked_ids: usize) {
    let start_kib = rss_kib();
    let store = trends::EmbeddedTrends::with_max_tracked_ids(max_tracked_ids);
    let start_ms: i64 = 1_700_000_000_000;
    let span_ms = (minutes.max(1) * 60_000) as i64;
    let mut random: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let mut batch = Vec::with_capacity(1_000);
    println!("posts\tminutes\trss_mib\tbytes_per_post\ttracked_ids\tinterned\tevicted_minutes");
    for index in 0..posts {
        let created_ms = start_ms + (index as i64 * span_ms) / posts.max(1) as i64;
        // Zipf-ish: most posts use a few tags and come from a few accounts.
        let tag_a = (next() % tags.max(1)).min(next() % tags.max(1));
        let tag_b = next() % tags.max(1);
        let author = (next() % accounts.max(1)).min(next() % accounts.max(1));
        batch.push(trends::TrendEvent {
            post_id: format!("{}", 1_600_000_000_000_000_000u64 + index),
            author_id: format!("{}", 100_000_000 + author),
            created_ms,
            hashtags: vec![format!("tag{tag_a}"), format!("Tag{tag_b}")],
            retweeted_id: None,
        });
        if batch.len() == 1_000 {
            store.record_events(&batch);
            batch.clear();
        }
        if (index + 1) % (posts / 10).max(1) == 0 {
            store.record_events(&batch);
            batch.clear();
            let stats = store.stats();
            let used_kib = rss_kib().saturating_sub(start_kib);
            println!(
                "{}\t{}\t{:.0}\t{:.0}\t{}\t{}\t{}",
                index + 1,
                (created_ms - start_ms) / 60_000,
                used_kib as f64 / 1024.0,
                used_kib as f64 * 1024.0 / (index + 1) as f64,
                stats.tracked_ids,
                stats.interned,
                stats.evicted_id_sets
            );
        }
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `deck-bench sweep`: fills the store with `tombstones` stale tombstones,
/// then runs a writer (batches of `batch` posts, back to back) for 3 s
/// alone, during the tombstone sweep, and for 3 s after it, and prints the
/// write latency of each phase.
async fn sweep(tombstones: usize, data_dir: PathBuf, batch: usize) -> anyhow::Result<()> {
    use model::{PostBundle, PostEvent};
    use store::WriteBatch;

    anyhow::ensure!(
        !data_dir.exists() || std::fs::read_dir(&data_dir)?.next().is_none(),
        "--data-dir must be a new or empty folder"
    );
    let store = Arc::new(EmbeddedStore::open(&data_dir).context("open store")?);
    let filling = Instant::now();
    for first in (0..tombstones).step_by(10_000) {
        let events = (first..(first + 10_000).min(tombstones))
            .map(|idx| PostEvent::Delete { id: format!("9{idx:018}") })
            .collect();
        store.apply(WriteBatch { events, checkpoints: Vec::new() }).await?;
    }
    eprintln!("{tombstones} tombstones written in {:.1} s", filling.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let horizon_ms = chrono::Utc::now().timestamp_millis();

    let stop = CancellationToken::new();
    let writer = {
        let store = store.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut writes: Vec<(Instant, Duration)> = Vec::new();
            let mut next_id: u64 = 1;
            while !stop.is_cancelled() {
                let events = generate::stored_posts(batch, next_id)
                    .into_iter()
                    .map(|stored| {
                        let mut post = stored.post;
                        post.id = next_id.to_string();
                        next_id += 1;
                        PostEvent::Upsert(PostBundle::single(post))
                    })
                    .collect();
                let started = Instant::now();
                store.apply(WriteBatch { events, checkpoints: Vec::new() }).await?;
                writes.push((started, started.elapsed()));
            }
            anyhow::Ok(writes)
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sweep_started = Instant::now();
    let removed = store.sweep_tombstones_before(horizon_ms).await?;
    let sweep_ended = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let writes = writer.await??;
    anyhow::ensure!(removed == tombstones, "the sweep removed {removed} of {tombstones} tombstones");
    println!(
        "sweep of {removed} stale tombstones: {:.2} s, with a writer of {batch}-post batches beside it",
        (sweep_ended - sweep_started).as_secs_f64()
    );
    // Each phase by when its batches started: [from, until).
    let phases = [
        ("before", None, Some(sweep_started)),
        ("during", Some(sweep_started), Some(sweep_ended)),
        ("after", Some(sweep_ended), None),
    ];
    for (name, from, until) in phases {
        let within = |at: Instant| from.is_none_or(|from| at >= from) && until.is_none_or(|until| at < until);
        let mut latencies: Vec<Duration> = writes.iter().filter(|(at, _)| within(*at)).map(|(_, took)| *took).collect();
        latencies.sort();
        println!(
            "  {name:<6} {:>5} batches: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// Runs the generator through the real pipeline until `stop` says so.
/// Returns (posts processed, elapsed).
async fn run_ingest(
    store: Arc<dyn PostStore>,
    stop: impl Fn(u64, Duration) -> bool,
    first_id: u64,
) -> anyhow::Result<(u64, Duration)> {
    let metrics = Metrics::new()?;
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::new(1, 65_536));
    let shutdown = CancellationToken::new();
    let source = Box::new(generate::V2Source::new(first_id));
    let source_task = tokio::spawn(pipeline::run_source(
        source,
        log.clone(),
        store.clone(),
        metrics.clone(),
        bench_stage("source"),
        shutdown.clone(),
    ));
    let processor_shutdown = CancellationToken::new();
    let processor = Processor {
        log,
        store: store.clone(),
        trends: Arc::new(trends::EmbeddedTrends::new()),
        publisher: Arc::new(NullPublisher),
        metrics: metrics.clone(),
        config: ProcessorConfig::default(),
    };
    let processor_task = tokio::spawn(processor.run(bench_stage("processor"), processor_shutdown.clone()));
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let processed = metrics.records_processed.get();
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {:>6.1}s {processed} posts ({:.0}/s) rss {} MiB",
                started.elapsed().as_secs_f64(),
                processed as f64 / started.elapsed().as_secs_f64(),
                rss_kib() / 1024
            );
            last_report = Instant::now();
        }
        if stop(processed, started.elapsed()) {
            break;
        }
    }
    let processed = metrics.records_processed.get();
    let elapsed = started.elapsed();
    shutdown.cancel();
    let _ = source_task.await;
    processor_shutdown.cancel();
    let _ = processor_task.await;
    Ok((processed, elapsed))
}

async fn ingest(seconds: u64, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = data_dir.unwrap_or_else(|| temp.path().to_owned());
    let store = Arc::new(EmbeddedStore::open(&dir).context("open store")?);
    let period = Duration::from_secs(seconds);
    let (processed, elapsed) = run_ingest(store.clone(), |_, elapsed| elapsed >= period, 1).await?;
    let disk = store.disk_space();
    println!(
        "ingest: {processed} posts in {:.1}s = {:.0} posts/s; rss {} MiB; disk {:.0} MiB ({:.0} MiB per million posts)",
        elapsed.as_secs_f64(),
        processed as f64 / elapsed.as_secs_f64(),
        rss_kib() / 1024,
        disk as f64 / 1048576.0,
        disk as f64 / 1048576.0 / (processed as f64 / 1e6)
    );
    Ok(())
}

async fn history(
    posts: u64,
    data_dir: Option<PathBuf>,
    cassandra: Option<String>,
    n_queries: usize,
) -> anyhow::Result<()> {
    let (store, embedded): (Arc<dyn PostStore>, Option<Arc<EmbeddedStore>>) = match (cassandra, data_dir) {
        (Some(contact_points), _) => {
            let mut config = store::CassandraConfig::single_node(&contact_points);
            config.keyspace = "bench_history".into();
            (Arc::new(store::CassandraStore::connect_migrated(&config).await.context("connect to Cassandra")?), None)
        }
        (None, Some(data_dir)) => {
            let embedded = Arc::new(EmbeddedStore::open(&data_dir).context("open store")?);
            (embedded.clone(), Some(embedded))
        }
        (None, None) => anyhow::bail!("give --data-dir or --cassandra"),
    };
    let stored = store.count().await?;
    if stored < posts {
        eprintln!("filling the store: {stored} → {posts} posts");
        let missing = posts - stored;
        let (processed, elapsed) =
            run_ingest(store.clone(), |processed, _| processed >= missing, 10_000_000_000 + stored).await?;
        eprintln!("  filled {processed} posts in {:.0}s", elapsed.as_secs_f64());
    }
    let columns = [("hashtag column", "#BTS"), ("two-word query", "stage army")];
    for (name, text) in columns {
        let query = search::Query::parse(text).map_err(|error| anyhow::anyhow!(error.message.clone()))?;
        let mut latencies = Vec::with_capacity(n_queries);
        let mut before = None;
        for query_idx in 0..n_queries {
            // Half first pages, half deeper pages (walking `next`).
            let range = Range { before: if query_idx % 2 == 0 { None } else { before.clone() }, after: None };
            let started = Instant::now();
            let page = store.timeline(&store::Reader::internal(), &query, range, 50).await?;
            latencies.push(started.elapsed());
            before = page.next.or(before);
        }
        latencies.sort();
        println!(
            "history {name} `{text}` over {} posts: p50 {:.2} ms, p99 {:.2} ms ({n_queries} pages of 50)",
            store.count().await?,
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3
        );
    }
    match embedded {
        Some(embedded) => {
            println!("rss {} MiB, disk {:.0} MiB", rss_kib() / 1024, embedded.disk_space() as f64 / 1048576.0)
        }
        None => println!("store: Apache Cassandra (keyspace bench_history)"),
    }
    Ok(())
}

fn percolate(n_queries: usize, n_posts: usize) -> anyhow::Result<()> {
    let mut percolator = Percolator::default();
    let texts = generate::column_queries(n_queries, 42);
    for (query_idx, text) in texts.iter().enumerate() {
        let query = search::Query::parse(text).map_err(|error| anyhow::anyhow!("{text}: {}", error.message))?;
        percolator.insert(query_idx as u64, query);
    }
    let posts = generate::stored_posts(n_posts, 7);
    let started = Instant::now();
    let mut n_matches = 0usize;
    for post in &posts {
        let doc = search::Doc::new(post);
        percolator.for_each_match(&doc, |subscriptions| n_matches += subscriptions.len());
    }
    let elapsed = started.elapsed();
    println!(
        "percolate: {n_posts} posts against {n_queries} column queries ({} distinct) in {:.2}s = {:.0} posts/s on one core; {:.1} matching columns per post",
        percolator.n_queries(),
        elapsed.as_secs_f64(),
        n_posts as f64 / elapsed.as_secs_f64(),
        n_matches as f64 / n_posts as f64
    );
    Ok(())
}

/// Latencies of `n_requests` GETs of `target` by `concurrency` workers, and
/// the time they took.
async fn measure_requests(
    client: &reqwest::Client,
    target: &str,
    token: Option<&str>,
    n_requests: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, target, token, next) = (client.clone(), target.to_owned(), token.map(str::to_owned), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n_requests {
                let mut request = client.get(&target);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let sent = Instant::now();
                if let Ok(response) = request.send().await {
                    let _ = response.bytes().await;
                }
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(n_requests);
    for worker in workers {
        latencies.extend(worker.await?);
    }
    latencies.sort();
    Ok((latencies, started.elapsed()))
}

/// `n_requests` one at a time, started `pace` per second (back to back
/// when 0, or when one takes longer than the interval): the latencies of the
/// 200 answers, sorted, and how many answers were not 200.
async fn measure_paced(
    client: &reqwest::Client,
    target: &str,
    token: Option<&str>,
    n_requests: usize,
    pace: f64,
) -> (Vec<Duration>, usize) {
    let interval = (pace > 0.0).then(|| Duration::from_secs_f64(1.0 / pace));
    let mut ticks = interval.map(|interval| {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let (mut latencies, mut not_ok) = (Vec::with_capacity(n_requests), 0);
    for _ in 0..n_requests {
        if let Some(ticks) = &mut ticks {
            ticks.tick().await;
        }
        let mut request = client.get(target);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let sent = Instant::now();
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                let _ = response.bytes().await;
                latencies.push(sent.elapsed());
            }
            _ => not_ok += 1,
        }
    }
    latencies.sort();
    (latencies, not_ok)
}

#[allow(clippy::too_many_arguments)]
async fn http(
    url: String,
    path: String,
    token: Option<String>,
    n_requests: usize,
    concurrency: usize,
    login_storm: usize,
    abuse: usize,
    admin_url: Option<String>,
    pace: f64,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let target = format!("{url}{path}");
    if abuse > 0 {
        // No unpaced warm-up: it would spend the normal client's rate-limit burst.
        return http_under_abuse(&client, &url, &target, token.as_deref(), n_requests, pace, abuse, admin_url).await;
    }
    let describe = if token.is_some() { "with a bearer token" } else { "anonymous" };
    let (latencies, elapsed) = measure_requests(&client, &target, token.as_deref(), n_requests, concurrency).await?;
    let quiet_p99 = percentile(&latencies, 0.99);
    println!(
        "http {path} ({describe}): {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        quiet_p99.as_secs_f64() * 1e3
    );
    if login_storm == 0 {
        return Ok(());
    }

    // The storm: wrong passwords for ever-new addresses (an unknown address
    // costs the same Argon2 work as a known one), each attempt from its own
    // client address through `X-Forwarded-For` (start the server with
    // `--trusted-proxy 127.0.0.1`), so that no per-account or per-IP limit
    // cuts it short: every attempt is a full password check.
    let storm_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let limited = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut storm = Vec::new();
    for storm_idx in 0..login_storm {
        let (client, url, stop) = (client.clone(), url.clone(), storm_stop.clone());
        let (checked, limited) = (checked.clone(), limited.clone());
        storm.push(tokio::spawn(async move {
            let mut attempt = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                attempt += 1;
                let body = serde_json::json!({
                    "email": format!("storm{storm_idx}-{attempt}@example.com"),
                    "password": "not the right one",
                });
                let address = format!("10.{}.{}.{}", storm_idx % 256, (attempt >> 8) % 256, attempt % 256);
                let response = client
                    .post(format!("{url}/api/auth/login"))
                    .header("x-forwarded-for", address)
                    .json(&body)
                    .send()
                    .await;
                match response.map(|response| response.status().as_u16()) {
                    Ok(429) => limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    _ => checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                };
            }
        }));
    }
    // Let the storm build up before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let checked_before = checked.load(std::sync::atomic::Ordering::Relaxed);
    let (latencies, elapsed) = measure_requests(&client, &target, token.as_deref(), n_requests, concurrency).await?;
    let checked_during = checked.load(std::sync::atomic::Ordering::Relaxed) - checked_before;
    storm_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in storm {
        let _ = task.await;
    }
    let storm_p99 = percentile(&latencies, 0.99);
    println!(
        "http {path} ({describe}) during a storm of {login_storm} concurrent logins: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms ({:.2}× the quiet p99); {:.0} password checks/s meanwhile, {} attempts refused by a rate limit",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        storm_p99.as_secs_f64() * 1e3,
        storm_p99.as_secs_f64() / quiet_p99.as_secs_f64().max(1e-9),
        checked_during as f64 / elapsed.as_secs_f64(),
        limited.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}

/// The costliest timeline queries a client can send (see issue 13): they
/// must each stop at the store's work budget.
const ABUSIVE_QUERIES: &[&str] = &[
    "lang:en lang:ko",
    "bts -bts",
    "#BTS #ARMY #JIMIN #방탄소년단 love concert",
    "a OR b OR c OR d OR e OR f OR g OR h OR i OR j OR k OR l OR m OR n OR o OR p",
    "-x1 -x2 -x3 -x4 -x5 -x6 -x7 -x8",
    "from:nobody_at_all",
];

/// The ingest rate (records/s) over `period`, from the admin listener.
async fn ingest_rate(client: &reqwest::Client, admin_url: &str, period: Duration) -> Option<f64> {
    async fn processed(client: &reqwest::Client, admin_url: &str) -> Option<f64> {
        let text = client.get(format!("{admin_url}/metrics")).send().await.ok()?.text().await.ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("deck_records_processed_total "))
            .and_then(|value| value.trim().parse().ok())
    }
    let before = processed(client, admin_url).await?;
    tokio::time::sleep(period).await;
    let after = processed(client, admin_url).await?;
    Some((after - before) / period.as_secs_f64())
}

/// A normal client's latency and the ingest rate, quiet and then while
/// `n_abusers` clients send [`ABUSIVE_QUERIES`] from addresses of their own.
#[allow(clippy::too_many_arguments)]
async fn http_under_abuse(
    client: &reqwest::Client,
    url: &str,
    target: &str,
    token: Option<&str>,
    n_requests: usize,
    pace: f64,
    n_abusers: usize,
    admin_url: Option<String>,
) -> anyhow::Result<()> {
    let rate_period = Duration::from_secs(10);
    let quiet_ingest = match &admin_url {
        Some(admin_url) => ingest_rate(client, admin_url, rate_period).await,
        None => None,
    };
    let (quiet, quiet_not_ok) = measure_paced(client, target, token, n_requests, pace).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let limited = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut abusers = Vec::new();
    for abuser_idx in 0..n_abusers {
        let (client, url, stop, sent, limited) =
            (client.clone(), url.to_owned(), stop.clone(), sent.clone(), limited.clone());
        abusers.push(tokio::spawn(async move {
            let address = format!("10.77.{}.{}", abuser_idx / 256, abuser_idx % 256);
            let mut query_idx = abuser_idx;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                query_idx += 1;
                let query = ABUSIVE_QUERIES[query_idx % ABUSIVE_QUERIES.len()];
                let response = client
                    .get(format!("{url}/api/timeline"))
                    .query(&[("q", query), ("limit", "100")])
                    .header("x-forwarded-for", &address)
                    .send()
                    .await;
                match response.map(|response| response.status().as_u16()) {
                    Ok(429) => limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    _ => sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let abused_ingest = match &admin_url {
        Some(admin_url) => ingest_rate(client, admin_url, rate_period).await,
        None => None,
    };
    let sent_before = sent.load(std::sync::atomic::Ordering::Relaxed);
    let measuring = Instant::now();
    let (abused, abused_not_ok) = measure_paced(client, target, token, n_requests, pace).await;
    let elapsed = measuring.elapsed();
    let sent_during = sent.load(std::sync::atomic::Ordering::Relaxed) - sent_before;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in abusers {
        let _ = task.await;
    }
    let (quiet_p99, abused_p99) = (percentile(&quiet, 0.99), percentile(&abused, 0.99));
    println!(
        "normal client, {pace} requests/s: quiet p50 {:.2} ms, {} answered, {quiet_not_ok} not 200; \
         abused p50 {:.2} ms, {} answered, {abused_not_ok} not 200",
        percentile(&quiet, 0.5).as_secs_f64() * 1e3,
        quiet.len(),
        percentile(&abused, 0.5).as_secs_f64() * 1e3,
        abused.len(),
    );
    println!(
        "{target}: quiet p99 {:.2} ms; with {n_abusers} abusive clients p99 {:.2} ms ({:.2}× quiet); abusive reads served {:.0}/s, refused by the rate limit {}",
        quiet_p99.as_secs_f64() * 1e3,
        abused_p99.as_secs_f64() * 1e3,
        abused_p99.as_secs_f64() / quiet_p99.as_secs_f64().max(1e-9),
        sent_during as f64 / elapsed.as_secs_f64(),
        limited.load(std::sync::atomic::Ordering::Relaxed)
    );
    if let (Some(quiet), Some(abused)) = (quiet_ingest, abused_ingest) {
        println!(
            "ingest: quiet {quiet:.0} records/s, abused {abused:.0} records/s ({:.2}× quiet)",
            abused / quiet.max(1e-9)
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Ingest { seconds, data_dir } => runtime.block_on(ingest(seconds, data_dir)),
        Command::Stages(args) => runtime.block_on(stages::run(args)),
        Command::History { posts, data_dir, cassandra, queries } => {
            runtime.block_on(history(posts, data_dir, cassandra, queries))
        }
        Command::Kafka(args) => runtime.block_on(engines::run(args)),
        Command::Sweep { tombstones, data_dir, batch } => runtime.block_on(sweep(tombstones, data_dir, batch)),
        Command::Percolate { queries, posts } => percolate(queries, posts),
        Command::Trends { posts, minutes, accounts, tags, max_tracked_ids } => {
            trends_memory(posts, minutes, accounts, tags, max_tracked_ids);
            Ok(())
        }
        Command::Ws(args) => runtime.block_on(ws::run(args)),
        Command::Http { url, path, token, requests, concurrency, login_storm, abuse, admin_url, pace } => {
            runtime.block_on(http(url, path, token, requests, concurrency, login_storm, abuse, admin_url, pace))
        }
    }
}
