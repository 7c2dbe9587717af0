//! WebSocket fan-out load against a running `deck serve`, and, side by side,
//! the design Deck replaces: every distinct column query re-run once a
//! second against the store and its results published.
//!
//! Latency is the time from a post's creation (the demo source stamps posts
//! with the wall clock as it makes them) to the frame reaching the client.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

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
}

fn column_query(handles: &[String], connection_idx: usize, column_idx: usize) -> String {
    // A mix of hashtag, keyword and user columns, as on the first screen.
    match (connection_idx + column_idx) % 3 {
        0 => ["#BTS", "#ARMY", "#방탄소년단", "#JIMIN"][connection_idx % 4].to_owned(),
        1 => ["BTS", "concert", "콘서트", "love"][connection_idx % 4].to_owned(),
        _ => match handles.get(connection_idx % handles.len().max(1)) {
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

fn report(latencies: &mut [i64], n_messages: u64, seconds: f64, label: &str) {
    latencies.sort_unstable();
    let at = |fraction: f64| {
        latencies.get(((latencies.len() as f64 - 1.0) * fraction).round().max(0.0) as usize).copied().unwrap_or(0)
    };
    println!(
        "{label}: {} posts measured; latency p50 {} ms, p99 {} ms, max {} ms; {:.0} messages/s",
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or(0),
        n_messages as f64 / seconds
    );
}

pub async fn run(args: WsArgs) -> anyhow::Result<()> {
    if args.requery {
        return requery(args).await;
    }
    let client = reqwest::Client::new();
    let handles = Arc::new(recent_authors(&client, &args.url).await);
    let ws_base = args.url.replacen("http", "ws", 1);
    let rss_before = args.server_pid.and_then(|pid| proc_field(pid, "VmRSS:"));
    let latencies = Arc::new(Mutex::new(Vec::<i64>::new()));
    let n_messages = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let n_resyncs = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    // Connections are opened `--connect-concurrency` at a time; each reads
    // its frames in its own task. Frames are not parsed as a whole: the
    // driver only needs each post's `created_at`, and parsing every frame
    // would make the clients, not the server, the bottleneck.
    let connect = |connection_idx: usize| {
        let (client, url, ws_base) = (client.clone(), args.url.clone(), ws_base.clone());
        let (latencies, n_messages, n_resyncs) = (latencies.clone(), n_messages.clone(), n_resyncs.clone());
        let (measuring, opened, columns, handles) = (measuring.clone(), opened.clone(), args.columns, handles.clone());
        async move {
            let ticket: Value = client.post(format!("{url}/api/stream/ticket")).send().await?.json().await?;
            let ticket = ticket["ticket"].as_str().unwrap_or_default().to_owned();
            let (mut socket, _) =
                tokio_tungstenite::connect_async(format!("{ws_base}/api/stream?ticket={ticket}")).await?;
            for column_idx in 0..columns {
                let subscribe = json!({"type": "subscribe", "column": column_idx.to_string(), "q": column_query(&handles, connection_idx, column_idx)});
                socket.send(Message::Text(subscribe.to_string().into())).await?;
            }
            let n_open = opened.fetch_add(1, Ordering::Relaxed) + 1;
            if n_open % 1000 == 0 {
                eprintln!("  {n_open} connections open");
            }
            Ok::<_, anyhow::Error>(tokio::spawn(async move {
                let mut local = Vec::new();
                while let Some(Ok(message)) = socket.next().await {
                    let Message::Text(text) = message else { continue };
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    n_messages.fetch_add(1, Ordering::Relaxed);
                    let text = text.as_str();
                    if text.starts_with(r#"{"type":"resync""#) {
                        n_resyncs.fetch_add(1, Ordering::Relaxed);
                    } else if let Some(created) = frame_created_ms(text) {
                        local.push(now_ms() - created);
                    }
                    if local.len() >= 1024 {
                        latencies.lock().await.append(&mut local);
                    }
                }
                latencies.lock().await.append(&mut local);
            }))
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
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    if let (Some(pid), Some(before)) = (args.server_pid, cpu_before)
        && let Some(after) = cpu_seconds(pid)
    {
        println!("server CPU {:.0}% of one core", (after - before) / seconds * 100.0);
    }
    for task in &tasks {
        task.abort();
    }
    let mut latencies = latencies.lock().await.clone();
    report(&mut latencies, n_messages.load(Ordering::Relaxed), seconds, "push over WebSocket");
    println!("{} resync frames (columns dropped because their reader fell behind)", n_resyncs.load(Ordering::Relaxed));
    Ok(())
}

/// The periodic re-query design: every distinct query re-run once a second.
async fn requery(args: WsArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let handles = recent_authors(&client, &args.url).await;
    let mut queries: Vec<String> = (0..args.connections)
        .flat_map(|connection_idx| {
            let handles = &handles;
            (0..args.columns).map(move |column_idx| column_query(handles, connection_idx, column_idx))
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
