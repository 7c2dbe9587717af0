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

use futures::{SinkExt, StreamExt};
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
    /// Measure the periodic re-query design instead of push.
    #[arg(long)]
    requery: bool,
}

fn column_query(connection_idx: usize, column_idx: usize) -> String {
    // A mix of hashtag, keyword and user columns, as on the first screen.
    match (connection_idx + column_idx) % 3 {
        0 => ["#BTS", "#ARMY", "#방탄소년단", "#JIMIN"][connection_idx % 4].to_owned(),
        1 => ["BTS", "concert", "콘서트", "love"][connection_idx % 4].to_owned(),
        _ => format!("from:{}", demo_handle(connection_idx)),
    }
}

fn demo_handle(idx: usize) -> String {
    // The demo's handles are not known here; a from: column of an unknown
    // handle still costs the server a registered query.
    format!("user{}", idx % 500)
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
    let ws_base = args.url.replacen("http", "ws", 1);
    let rss_before = args.server_pid.and_then(|pid| proc_field(pid, "VmRSS:"));
    let latencies = Arc::new(Mutex::new(Vec::<i64>::new()));
    let n_messages = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for connection_idx in 0..args.connections {
        let ticket: Value = client.post(format!("{}/api/stream/ticket", args.url)).send().await?.json().await?;
        let ticket = ticket["ticket"].as_str().unwrap_or_default().to_owned();
        let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws_base}/api/stream?ticket={ticket}")).await?;
        for column_idx in 0..args.columns {
            let subscribe = json!({"type": "subscribe", "column": column_idx.to_string(), "q": column_query(connection_idx, column_idx)});
            socket.send(Message::Text(subscribe.to_string().into())).await?;
        }
        let latencies = latencies.clone();
        let n_messages = n_messages.clone();
        let measuring = measuring.clone();
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else { continue };
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                n_messages.fetch_add(1, Ordering::Relaxed);
                if let Ok(frame) = serde_json::from_str::<Value>(text.as_str())
                    && frame["type"] == "post"
                    && let Some(created) = created_ms(&frame["post"])
                {
                    local.push(now_ms() - created);
                }
                if local.len() >= 1024 {
                    latencies.lock().await.append(&mut local);
                }
            }
            latencies.lock().await.append(&mut local);
        }));
        if connection_idx % 1000 == 999 {
            eprintln!("  {} connections open", connection_idx + 1);
        }
    }
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
    Ok(())
}

/// The periodic re-query design: every distinct query re-run once a second.
async fn requery(args: WsArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut queries: Vec<String> = (0..args.connections)
        .flat_map(|connection_idx| (0..args.columns).map(move |column_idx| column_query(connection_idx, column_idx)))
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
