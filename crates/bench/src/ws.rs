//! WebSocket fan-out load against a running `deck serve`, and, side by side,
//! the design Deck replaces: every distinct column query re-run once a
//! second against the store and its results published.
//!
//! Latency is the time from a post's creation (the demo source stamps posts
//! with the wall clock as it makes them) to the frame reaching the client.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct WsArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent WebSocket connections (push mode) or columns (re-query mode).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Columns per connection.
    #[arg(long, default_value_t = 3)]
    columns: usize,
    /// How long to measure after everything is connected.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// The server's pid, to report its memory and CPU.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Measure the periodic re-query design instead of push.
    #[arg(long)]
    requery: bool,
    /// One query for every column (e.g. one that matches every post, for a
    /// plain fan-out), instead of the mix of hashtag, word and user columns.
    #[arg(long)]
    query: Option<String>,
    /// Drive a Centrifugo server at `--url` instead: one channel, every
    /// connection subscribed, `--rate` publications a second of
    /// `--payload-bytes` each through its HTTP API.
    #[arg(long)]
    centrifugo: bool,
    /// Publications per second (Centrifugo; Deck's rate is its `--demo-rate`).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Bytes of each Centrifugo publication (Deck's demo frames are ~1 KB).
    #[arg(long, default_value_t = 1000)]
    payload_bytes: usize,
    /// How long frames of the measured period may still arrive after it.
    #[arg(long, default_value_t = 5)]
    grace_seconds: u64,
    /// Every this many seconds, print a `sample` line (TSV): seconds since the
    /// start, the server's RSS (MiB), its open files, the size of
    /// `--data-dir` (MiB), and the p99 latency (ms) and messages of the
    /// frames that arrived in the interval. 0: no samples (the soak uses 10).
    #[arg(long, default_value_t = 0)]
    sample_seconds: u64,
    /// The server's data dir, for the disk column of the samples.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// The columns' queries when `--query` is not given: `mixed` (hashtag,
    /// word and user columns in turn, each matching ~5 % of the demo) or
    /// `users` (one author's posts per column, as a reader who follows
    /// people; the soak uses it).
    #[arg(long, value_enum, default_value_t = ColumnMix::Mixed)]
    column_mix: ColumnMix,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ColumnMix {
    Mixed,
    Users,
}

/// Bytes of the files under `dir`, recursively.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |metadata| metadata.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Prints a `sample` line every `every` until the task is aborted (see
/// `WsArgs::sample_seconds`).
async fn sample_forever(tally: Arc<Tally>, every: Duration, pid: Option<u32>, data_dir: Option<std::path::PathBuf>) {
    let started = Instant::now();
    let mut seen = 0;
    let mut seen_messages = 0;
    println!("sample\tseconds\trss_mib\topen_files\tdisk_mib\tp99_ms\tmessages");
    loop {
        tokio::time::sleep(every).await;
        let mut interval: Vec<i64> = {
            let latencies = tally.latencies.lock().await;
            let new = latencies.get(seen..).map(<[i64]>::to_vec).unwrap_or_default();
            seen = latencies.len();
            new
        };
        interval.sort_unstable();
        let messages = tally.n_messages.load(Ordering::Relaxed);
        let rss_mib = pid.and_then(|pid| proc_field(pid, "VmRSS:")).map_or(0, |kib| kib / 1024);
        let open_files =
            pid.and_then(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok()).map_or(0, |fds| fds.count());
        let disk_mib = data_dir.as_deref().map_or(0, dir_bytes) / (1024 * 1024);
        println!(
            "sample\t{}\t{rss_mib}\t{open_files}\t{disk_mib}\t{}\t{}",
            started.elapsed().as_secs(),
            percentile_ms(&interval, 0.99),
            messages - seen_messages
        );
        seen_messages = messages;
    }
}

fn column_query(handles: &[String], mix: ColumnMix, connection_idx: usize, column_idx: usize) -> String {
    let kind = match mix {
        // A mix of hashtag, keyword and user columns, as on the first screen.
        ColumnMix::Mixed => (connection_idx + column_idx) % 3,
        ColumnMix::Users => 2,
    };
    match kind {
        0 => ["#BTS", "#ARMY", "#방탄소년단", "#JIMIN"][connection_idx % 4].to_owned(),
        1 => ["BTS", "concert", "콘서트", "love"][connection_idx % 4].to_owned(),
        _ => match handles.get((connection_idx + column_idx) % handles.len().max(1)) {
            Some(handle) => format!("from:{handle}"),
            None => format!("from:user{}", connection_idx % 500),
        },
    }
}

/// Accounts that post on the server, for the user columns: the authors of
/// its recent `#BTS` posts.
async fn recent_authors(client: &reqwest::Client, url: &str) -> Vec<String> {
    let Ok(response) = client.get(format!("{url}/api/timeline?q=%23BTS&limit=100")).send().await else {
        return Vec::new();
    };
    let Ok(page) = response.json::<Value>().await else {
        return Vec::new();
    };
    let mut handles: Vec<String> = page["posts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|post| post["author"]["handle"].as_str().map(str::to_owned))
        .collect();
    handles.sort();
    handles.dedup();
    handles
}

fn proc_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|line| line.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// user+system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit(')').next()?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn created_ms(post: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(post["created_at"].as_str()?).ok().map(|time| time.timestamp_millis())
}

/// The `created_at` of the post in a `post` frame, found without parsing the
/// frame (the post's own field comes before any embedded original's).
fn frame_created_ms(frame: &str) -> Option<i64> {
    if !frame.starts_with(r#"{"type":"post""#) {
        return None;
    }
    let marker = r#""created_at":""#;
    let start = frame.find(marker)? + marker.len();
    let end = start + frame[start..].find('"')?;
    chrono::DateTime::parse_from_rfc3339(&frame[start..end]).ok().map(|time| time.timestamp_millis())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn percentile_ms(sorted: &[i64], fraction: f64) -> i64 {
    sorted.get(((sorted.len() as f64 - 1.0) * fraction).round().max(0.0) as usize).copied().unwrap_or(0)
}

fn report(latencies: &mut [i64], n_messages: u64, seconds: f64, label: &str) {
    latencies.sort_unstable();
    println!(
        "{label}: {} posts measured; latency p50 {} ms, p99 {} ms, max {} ms; {:.0} messages/s",
        latencies.len(),
        percentile_ms(latencies, 0.5),
        percentile_ms(latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        n_messages as f64 / seconds
    );
}

/// What every connection adds up, for Deck and for the peer alike: only
/// frames stamped (post creation, or publication) within the measured
/// period count, whenever they arrive.
struct Tally {
    latencies: Mutex<Vec<i64>>,
    n_messages: AtomicU64,
    n_bytes: AtomicU64,
    n_resyncs: AtomicU64,
    /// `error` frames (a refused or rate-limited subscription): the run
    /// then measures fewer columns than it asked for.
    n_errors: AtomicU64,
    start_ms: AtomicI64,
    end_ms: AtomicI64,
}

impl Tally {
    fn in_window(&self, stamp_ms: i64) -> bool {
        stamp_ms >= self.start_ms.load(Ordering::Relaxed) && stamp_ms < self.end_ms.load(Ordering::Relaxed)
    }
}

/// A number that follows `key` in a JSON text, found without parsing it.
fn number_after(text: &str, key: &str) -> Option<i64> {
    let start = text.find(key)? + key.len();
    let digits =
        text[start..].find(|c: char| !c.is_ascii_digit()).map_or(&text[start..], |end| &text[start..start + end]);
    digits.parse().ok()
}

/// The peer's WebSocket: connect, subscribe to the channel, then answer its
/// pings (`{}`) while reading publications.
async fn centrifugo_connection(ws_base: &str) -> anyhow::Result<WsStream> {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws_base}/connection/websocket")).await?;
    socket.send(Message::Text(r#"{"id":1,"connect":{}}"#.into())).await?;
    match socket.next().await {
        Some(Ok(Message::Text(reply))) if reply.contains(r#""connect""#) => {}
        other => anyhow::bail!("no connect reply from the peer: {other:?}"),
    }
    socket.send(Message::Text(r#"{"id":2,"subscribe":{"channel":"bench"}}"#.into())).await?;
    Ok(socket)
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn deck_connection(
    client: &reqwest::Client,
    url: &str,
    ws_base: &str,
    queries: Vec<String>,
) -> anyhow::Result<WsStream> {
    let ticket: Value = client.post(format!("{url}/api/stream/ticket")).send().await?.json().await?;
    let ticket = ticket["ticket"].as_str().unwrap_or_default().to_owned();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws_base}/api/stream?ticket={ticket}")).await?;
    for (column_idx, query) in queries.into_iter().enumerate() {
        let subscribe = json!({"type": "subscribe", "column": column_idx.to_string(), "q": query});
        socket.send(Message::Text(subscribe.to_string().into())).await?;
    }
    Ok(socket)
}

/// Reads one connection's frames until the run ends. Frames are not parsed
/// as a whole: the driver only needs each post's stamp, and parsing every
/// frame would make the clients, not the server, the bottleneck. A column
/// the server drops (`resync`) is subscribed again, as the web client does,
/// so an overload shows as resyncs and latency, not as silence. Ends at
/// `stop` (or when the server closes), adding its latencies to the tally.
async fn read_frames(
    mut socket: WsStream,
    tally: Arc<Tally>,
    centrifugo: bool,
    queries: Vec<String>,
    stop: CancellationToken,
) {
    let mut local = Vec::new();
    let count = |text: &str, stamp: Option<i64>, local: &mut Vec<i64>| {
        if let Some(stamp) = stamp
            && tally.in_window(stamp)
        {
            tally.n_messages.fetch_add(1, Ordering::Relaxed);
            tally.n_bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
            local.push(now_ms() - stamp);
        }
    };
    loop {
        let message = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            message = socket.next() => match message {
                Some(Ok(message)) => message,
                _ => break,
            },
        };
        let Message::Text(text) = message else { continue };
        let text = text.as_str();
        if centrifugo {
            // Several replies may share a frame, one per line.
            let mut ping = false;
            for line in text.lines() {
                if line == "{}" {
                    ping = true;
                } else {
                    count(line, number_after(line, r#""t":"#), &mut local);
                }
            }
            if ping && socket.send(Message::Text("{}".into())).await.is_err() {
                break;
            }
        } else if text.starts_with(r#"{"type":"resync""#) {
            tally.n_resyncs.fetch_add(1, Ordering::Relaxed);
            let column =
                serde_json::from_str::<Value>(text).ok().and_then(|frame| frame["column"].as_str().map(str::to_owned));
            let query =
                column.as_deref().and_then(|column| column.parse::<usize>().ok()).and_then(|idx| queries.get(idx));
            if let (Some(column), Some(query)) = (column.as_deref(), query) {
                let subscribe = json!({"type": "subscribe", "column": column, "q": query});
                if socket.send(Message::Text(subscribe.to_string().into())).await.is_err() {
                    break;
                }
            }
        } else if text.starts_with(r#"{"type":"error""#) {
            if tally.n_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("  error frame: {text}");
            }
        } else {
            count(text, frame_created_ms(text), &mut local);
        }
        if local.len() >= 1024 {
            tally.latencies.lock().await.append(&mut local);
        }
    }
    tally.latencies.lock().await.append(&mut local);
}

/// Publishes `rate` stamped publications a second to the peer's channel
/// until `stop`; returns how many were stamped within the tally's window.
/// Each publication is its own request, up to 256 in flight, so the rate
/// holds while the server is slow to answer (one request at a time, a
/// loaded peer got under half the asked rate).
async fn publish_to_centrifugo(
    url: String,
    rate: f64,
    payload_bytes: usize,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) -> u64 {
    const IN_FLIGHT: u32 = 256;
    // A publish that never answers would hold its permit, and the wait
    // for the last ones, for ever.
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("  no HTTP client for publishing: {error}");
            return 0;
        }
    };
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let pad: Arc<str> = "x".repeat(payload_bytes.saturating_sub(40)).into();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT as usize));
    let n_in_window = Arc::new(AtomicU64::new(0));
    let publish_url = format!("{url}/api/publish");
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
        seq += 1;
        let stamp = now_ms();
        let body = json!({"channel": "bench", "data": {"t": stamp, "s": seq, "pad": &*pad}});
        let (client, publish_url, tally, n_in_window) =
            (client.clone(), publish_url.clone(), tally.clone(), n_in_window.clone());
        tokio::spawn(async move {
            match client.post(publish_url).json(&body).send().await {
                Ok(response) if response.status().is_success() => {
                    n_in_window.fetch_add(u64::from(tally.in_window(stamp)), Ordering::Relaxed);
                }
                Ok(response) => eprintln!("  publish answered {}", response.status()),
                Err(error) => eprintln!("  publish failed: {error}"),
            }
            drop(permit);
        });
    }
    // Every publication still in flight is answered first.
    let _all = in_flight.acquire_many(IN_FLIGHT).await;
    n_in_window.load(Ordering::Relaxed)
}

/// Posts stored with a creation time in [start, end), read back through the
/// timeline: what every subscribed connection should have received.
async fn deck_posts_between(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    start_ms: i64,
    end_ms: i64,
) -> anyhow::Result<u64> {
    let mut n_posts = 0;
    let mut before: Option<String> = None;
    loop {
        let mut request = client.get(format!("{url}/api/timeline")).query(&[("q", query), ("limit", "100")]);
        if let Some(before) = &before {
            request = request.query(&[("before", before.as_str())]);
        }
        let page: Value = request.send().await?.json().await?;
        let posts = page["posts"].as_array().cloned().unwrap_or_default();
        let mut older = false;
        for post in &posts {
            match created_ms(post) {
                Some(created) if created < start_ms => older = true,
                Some(created) if created < end_ms => n_posts += 1,
                _ => {}
            }
        }
        match page["next"].as_str() {
            Some(next) if !older && !posts.is_empty() => before = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(n_posts)
}

pub async fn run(args: WsArgs) -> anyhow::Result<()> {
    if args.requery {
        return requery(args).await;
    }
    let client = reqwest::Client::new();
    let handles = if args.centrifugo { Vec::new() } else { recent_authors(&client, &args.url).await };
    let ws_base = args.url.replacen("http", "ws", 1);
    let rss_before = args.server_pid.and_then(|pid| proc_field(pid, "VmRSS:"));
    let tally = Arc::new(Tally {
        latencies: Mutex::new(Vec::new()),
        n_messages: AtomicU64::new(0),
        n_bytes: AtomicU64::new(0),
        n_resyncs: AtomicU64::new(0),
        n_errors: AtomicU64::new(0),
        start_ms: AtomicI64::new(i64::MAX),
        end_ms: AtomicI64::new(i64::MAX),
    });
    let opened = Arc::new(AtomicU64::new(0));
    let stop_readers = CancellationToken::new();
    // Connections are opened `--connect-concurrency` at a time; each reads
    // its frames in its own task.
    let connect = |connection_idx: usize| {
        let (client, url, ws_base, tally, opened, stop) =
            (client.clone(), args.url.clone(), ws_base.clone(), tally.clone(), opened.clone(), stop_readers.clone());
        let queries: Vec<String> = (0..args.columns)
            .map(|column_idx| {
                args.query
                    .clone()
                    .unwrap_or_else(|| column_query(&handles, args.column_mix, connection_idx, column_idx))
            })
            .collect();
        let centrifugo = args.centrifugo;
        async move {
            let socket = if centrifugo {
                centrifugo_connection(&ws_base).await?
            } else {
                deck_connection(&client, &url, &ws_base, queries.clone()).await?
            };
            let n_open = opened.fetch_add(1, Ordering::Relaxed) + 1;
            if n_open % 1000 == 0 {
                eprintln!("  {n_open} connections open");
            }
            Ok::<_, anyhow::Error>(tokio::spawn(read_frames(socket, tally, centrifugo, queries, stop)))
        }
    };
    let tasks: Vec<tokio::task::JoinHandle<()>> = futures::stream::iter(0..args.connections)
        .map(connect)
        .buffer_unordered(args.connect_concurrency)
        .try_collect()
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let (Some(pid), Some(before)) = (args.server_pid, rss_before)
        && let Some(after) = proc_field(pid, "VmRSS:")
    {
        println!(
            "server RSS {} MiB → {} MiB with {} connections: {:.1} KiB per connection (incl. {} columns each)",
            before / 1024,
            after / 1024,
            args.connections,
            (after.saturating_sub(before)) as f64 / args.connections as f64,
            args.columns
        );
    }
    let stop_publishing = Arc::new(AtomicBool::new(false));
    let publisher = args.centrifugo.then(|| {
        tokio::spawn(publish_to_centrifugo(
            args.url.clone(),
            args.rate,
            args.payload_bytes,
            tally.clone(),
            stop_publishing.clone(),
        ))
    });
    // One second for the publisher (or a subscription's first frames) to settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    let start_ms = now_ms();
    tally.start_ms.store(start_ms, Ordering::Relaxed);
    let sampler = (args.sample_seconds > 0).then(|| {
        tokio::spawn(sample_forever(
            tally.clone(),
            Duration::from_secs(args.sample_seconds),
            args.server_pid,
            args.data_dir.clone(),
        ))
    });
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let end_ms = now_ms();
    tally.end_ms.store(end_ms, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let cpu = args.server_pid.and_then(cpu_seconds).zip(cpu_before).map(|(after, before)| after - before);
    // Frames stamped within the period may still be on their way.
    tokio::time::sleep(Duration::from_secs(args.grace_seconds)).await;
    stop_publishing.store(true, Ordering::Relaxed);
    let n_published = match publisher {
        Some(publisher) => Some(publisher.await?),
        None => match &args.query {
            Some(query) => Some(deck_posts_between(&client, &args.url, query, start_ms, end_ms).await?),
            None => None,
        },
    };
    // Every reader hands in its latencies as it stops; one that does not
    // within 10 s is dropped.
    stop_readers.cancel();
    let aborts: Vec<_> = tasks.iter().map(tokio::task::JoinHandle::abort_handle).collect();
    if tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(tasks)).await.is_err() {
        eprintln!("  some readers did not stop within 10 s; their latencies are left out");
        for abort in aborts {
            abort.abort();
        }
    }
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    let n_messages = tally.n_messages.load(Ordering::Relaxed);
    if let Some(cpu) = cpu {
        println!(
            "server CPU {:.0}% of one core; {:.0} messages per server CPU-second",
            cpu / seconds * 100.0,
            n_messages as f64 / cpu.max(0.001)
        );
    }
    let mut latencies = tally.latencies.lock().await.clone();
    let label = if args.centrifugo { "centrifugo" } else { "deck" };
    report(&mut latencies, n_messages, seconds, label);
    println!(
        "{label}: {:.0} bytes per message on average",
        tally.n_bytes.load(Ordering::Relaxed) as f64 / n_messages.max(1) as f64
    );
    if let Some(n_published) = n_published {
        let expected = n_published * (args.connections * args.columns) as u64;
        println!(
            "{label}: {n_published} posts in the period, {expected} deliveries expected, {} lost",
            expected.saturating_sub(n_messages)
        );
    }
    println!(
        "{} resync frames (columns dropped because their reader fell behind)",
        tally.n_resyncs.load(Ordering::Relaxed)
    );
    let n_errors = tally.n_errors.load(Ordering::Relaxed);
    if n_errors > 0 {
        println!("{n_errors} error frames (subscriptions refused or rate-limited: fewer columns were measured)");
    }
    Ok(())
}

/// The periodic re-query design: every distinct query re-run once a second.
async fn requery(args: WsArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let handles = recent_authors(&client, &args.url).await;
    let mut queries: Vec<String> = (0..args.connections)
        .flat_map(|connection_idx| {
            let handles = &handles;
            (0..args.columns).map(move |column_idx| column_query(handles, args.column_mix, connection_idx, column_idx))
        })
        .collect();
    queries.sort();
    queries.dedup();
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    let started = Instant::now();
    let mut seen: HashSet<String> = HashSet::new();
    let mut latencies = Vec::new();
    let mut n_messages = 0u64;
    let mut first_round = true;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        let round = Instant::now();
        for query in &queries {
            let page: Value = client
                .get(format!("{}/api/timeline", args.url))
                .query(&[("q", query.as_str()), ("limit", "50")])
                .send()
                .await?
                .json()
                .await?;
            n_messages += 1;
            for post in page["posts"].as_array().into_iter().flatten() {
                let Some(id) = post["id"].as_str() else { continue };
                if seen.insert(format!("{query}\u{0}{id}"))
                    && !first_round
                    && let Some(created) = created_ms(post)
                {
                    latencies.push(now_ms() - created);
                }
            }
        }
        first_round = false;
        if let Some(rest) = Duration::from_secs(1).checked_sub(round.elapsed()) {
            tokio::time::sleep(rest).await;
        } else {
            eprintln!("  a re-query round took {:.1}s (> 1 s)", round.elapsed().as_secs_f64());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let (Some(pid), Some(before)) = (args.server_pid, cpu_before)
        && let Some(after) = cpu_seconds(pid)
    {
        println!("server CPU {:.0}% of one core", (after - before) / seconds * 100.0);
    }
    println!("{} distinct queries re-run each second", queries.len());
    report(&mut latencies, n_messages, seconds, "periodic re-query (1 s)");
    Ok(())
}
