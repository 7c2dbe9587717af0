//! Operations: the admin listener and readiness of `deck serve`, the alert
//! rules and dashboard in `deploy/` checked against a real scrape (and by
//! `promtool`), and a Redis outage under a paced replay, on a Redis server
//! of the test's own (so the shared cluster is never stopped).

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Deck, free_port, ids, write_replay, x_posts_with_hashtag};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");

#[tokio::test]
async fn readiness_and_metrics_on_the_admin_listener_and_rules_name_real_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (replay, n_records) = write_replay(dir.path());
    // A built web client, so that its fallback could answer unknown paths.
    let web_dir = dir.path().join("web");
    std::fs::create_dir_all(&web_dir).unwrap();
    std::fs::write(web_dir.join("index.html"), "<!doctype html><title>Deck</title>").unwrap();
    let source = format!("replay:{}", replay.display());
    let web_arg = web_dir.display().to_string();
    let deck = Deck::start(&dir.path().join("data"), &["--source", &source, "--web-dir", &web_arg]).await;
    deck.wait_for_records(n_records as f64).await;

    for url in [deck.url("/readyz"), deck.admin_url("/readyz")] {
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["ready"], true, "{body}");
        let stages: Vec<&str> =
            body["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert!(stages.contains(&"processor") && stages.iter().any(|s| s.starts_with("source replay:")), "{body}");
    }
    assert_eq!(reqwest::get(deck.admin_url("/healthz")).await.unwrap().status(), 200);
    // The public port no longer serves metrics or source health.
    for path in ["/metrics", "/api/sources"] {
        let body = reqwest::get(deck.url(path)).await.unwrap().text().await.unwrap();
        assert!(!body.contains("deck_records_processed_total") && !body.contains("\"sources\""), "{path}: {body}");
    }
    let sources = reqwest::get(deck.admin_url("/api/sources")).await.unwrap();
    assert_eq!(sources.status(), 200);

    // Every metric the alert rules and the dashboard name is one a real
    // `deck serve` exports (source health families appear only with network
    // sources, which a test cannot reach).
    let scrape = reqwest::get(deck.admin_url("/metrics")).await.unwrap().text().await.unwrap();
    let exported: BTreeSet<&str> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    let rules = std::fs::read_to_string(Path::new(DEPLOY).join("prometheus/alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(Path::new(DEPLOY).join("grafana/deck-dashboard.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    let mut named = BTreeSet::new();
    for text in [&rules, &dashboard] {
        for (start, _) in text.match_indices("deck_") {
            let name: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            named.insert(name);
        }
    }
    named.remove("deck_");
    assert!(named.len() >= 10, "{named:?}");
    for name in &named {
        let family = name.trim_end_matches("_bucket");
        if family.starts_with("deck_source_") {
            continue;
        }
        assert!(exported.contains(family), "{name} is named in deploy/ but not exported:\n{scrape}");
    }

    match which("promtool") {
        Some(promtool) => {
            let output = Command::new(promtool)
                .arg("check")
                .arg("rules")
                .arg(Path::new(DEPLOY).join("prometheus/alerts.yml"))
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        None if std::env::var_os("DECK_SKIP_PROMTOOL").is_some() => {
            eprintln!("SKIPPED promtool check rules: DECK_SKIP_PROMTOOL is set");
        }
        None => {
            panic!("promtool not found: run scripts/install-deps (Debian's prometheus), or set DECK_SKIP_PROMTOOL=1")
        }
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|path| path.is_file())
}

/// A Redis server of the test's own, with an append-only file, as
/// `scripts/cluster` runs it.
struct OwnRedis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnRedis {
    async fn start(dir: &Path, port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .arg(Path::new(DEPLOY).join("redis/redis.conf"))
            .args(["--port", &port.to_string(), "--dir", &dir.display().to_string(), "--logfile", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (run scripts/install-deps)");
        let redis = OwnRedis { child, port, dir: dir.to_owned() };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "redis did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        redis
    }

    /// SIGTERM and wait, as `scripts/cluster down redis` does.
    fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/readyz` of `deck`, as (status, body).
async fn readyz(deck: &Deck) -> (u16, serde_json::Value) {
    let response = reqwest::get(deck.admin_url("/readyz")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_redis_outage_mid_stream_loses_no_post_and_readyz_says_so() {
    if which("redis-server").is_none() {
        assert!(std::env::var_os("DECK_SKIP_ENGINES").is_some(), "redis-server not found: run scripts/install-deps");
        eprintln!("SKIPPED: no redis-server and DECK_SKIP_ENGINES is set");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (replay, n_records) = write_replay(dir.path());
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir_all(&redis_dir).unwrap();
    let redis_port = free_port();
    let mut redis = OwnRedis::start(&redis_dir, redis_port).await;
    let envs = [("DECK_REDIS".to_owned(), format!("redis://127.0.0.1:{redis_port}/"))];
    let source = format!("replay:{}", replay.display());
    // Paced, so the outage falls mid-stream.
    let rate = (n_records as f64 / 8.0).max(20.0).to_string();
    let mut deck = Deck::start_role(
        "serve",
        &dir.path().join("data"),
        &["--source", &source, "--replay-rate", &rate],
        &[envs[0].clone()],
    )
    .await;
    let metrics_url = deck.admin_url("/metrics");
    common::wait_for_records(&metrics_url, 1.0).await;
    // A reader of #brexit (the end of the replay) as the web client reads it:
    // the column's history over HTTP, then its socket since the newest post,
    // connected through the whole outage.
    let history = ids(&deck.whole_timeline("#brexit", 100).await);
    let newest = deck.whole_timeline("#brexit", 1).await.first().map(|post| post["cursor"].clone());
    let reader = LiveReader::start(&deck, "#brexit", newest).await;

    redis.stop();
    // Readiness names Redis while it is down; the process stays up.
    let started = Instant::now();
    loop {
        let (status, body) = readyz(&deck).await;
        if status == 503 && body["failing"].to_string().contains("redis") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "readyz never named redis: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wait until the processor holds a batch it cannot finish (or the
    // stream is over), so the outage really cuts through the stream.
    let started = Instant::now();
    while common::metric_in(&metrics_url, "deck_stage_retries_total").await < 1.0
        && common::metric_in(&metrics_url, "deck_records_processed_total").await < n_records as f64
    {
        assert!(started.elapsed() < Duration::from_secs(60), "no retry during the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(deck.child.try_wait().unwrap().is_none(), "deck exited during the outage");
    let mut redis = OwnRedis::start(&redis.dir.clone(), redis.port).await;

    common::wait_for_records(&metrics_url, n_records as f64).await;
    let started = Instant::now();
    loop {
        let (status, body) = readyz(&deck).await;
        if status == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not ready after the outage: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The socket stayed open and got the rest of the column live, each post
    // once: nothing to resync.
    let expected_brexit = x_posts_with_hashtag(&replay, "brexit");
    let (live, other_frames) = reader.until(expected_brexit.len() - history.len()).await;
    let mut column: Vec<String> = history.clone();
    column.extend(live.iter().cloned());
    let unique: BTreeSet<String> = column.iter().cloned().collect();
    assert_eq!(unique.len(), column.len(), "a post reached the column twice");
    assert_eq!(unique, expected_brexit, "history + live is the column");
    assert!(!other_frames.iter().any(|frame| frame.contains("resync")), "{other_frames:?}");
    for tag in ["kpop", "brexit"] {
        let expected = x_posts_with_hashtag(&replay, tag);
        let posts = deck.whole_timeline(&format!("#{tag}"), 100).await;
        let got: Vec<String> = ids(&posts);
        let unique: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(unique.len(), got.len(), "#{tag}: a post repeats");
        assert_eq!(unique, expected, "#{tag}");
    }
    // Each post counted once by the trends: the 24 h counts (the window
    // ends at the newest post, here in the Bluesky part) are the same as a
    // fresh process's over the same store (embedded trends, restored from
    // the store at start).
    let (_, trends) = deck.get_json("/api/trends?window=24h").await;
    let counts = |trends: &serde_json::Value| -> BTreeSet<(String, u64)> {
        trends["hashtags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| Some((row["tag"].as_str()?.to_lowercase(), row["count"].as_u64()?)))
            .collect()
    };
    let during = counts(&trends);
    assert!(!during.is_empty(), "no hashtags in the 24 h trends: {trends}");
    assert!(deck.child.try_wait().unwrap().is_none(), "deck exited");
    deck.terminate();
    redis.stop();
    let data_dir = dir.path().join("data");
    let recount = Deck::start(&data_dir, &["--source", "none"]).await;
    let (_, trends) = recount.get_json("/api/trends?window=24h").await;
    assert_eq!(during, counts(&trends), "Redis counts equal a recount from the store");
}

/// A WebSocket reader of one column, collecting its live post ids (and any
/// other frame) on a task of its own.
struct LiveReader {
    frames: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
}

impl LiveReader {
    async fn start(deck: &Deck, query: &str, since: Option<serde_json::Value>) -> LiveReader {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let ticket: serde_json::Value =
            reqwest::Client::new().post(deck.url("/api/stream/ticket")).send().await.unwrap().json().await.unwrap();
        let url = format!("ws://127.0.0.1:{}/api/stream?ticket={}", deck.port, ticket["ticket"].as_str().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut subscribe = serde_json::json!({"type": "subscribe", "column": "live", "q": query});
        if let Some(since) = since {
            subscribe["since"] = since;
        }
        socket.send(Message::Text(subscribe.to_string().into())).await.unwrap();
        let (frames_tx, frames) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let Ok(text) = message.to_text() else { continue };
                let Ok(frame) = serde_json::from_str::<serde_json::Value>(text) else { continue };
                if frames_tx.send(frame).is_err() {
                    return;
                }
            }
        });
        LiveReader { frames }
    }

    /// The ids of the first `n` live posts (within 60 s), and every frame
    /// that was not a post, `subscribed` or `caught_up`, as text.
    async fn until(mut self, n: usize) -> (Vec<String>, Vec<String>) {
        let (mut posts, mut others) = (Vec::new(), Vec::new());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while posts.len() < n {
            let Ok(Some(frame)) = tokio::time::timeout_at(deadline, self.frames.recv()).await else {
                panic!("{} of {n} live posts, then nothing: {others:?}", posts.len());
            };
            match frame["type"].as_str() {
                Some("post") => posts.push(frame["post"]["id"].as_str().unwrap().to_owned()),
                Some("subscribed" | "caught_up" | "counts" | "delete") => {}
                _ => others.push(frame.to_string()),
            }
        }
        (posts, others)
    }
}
