//! Test harness: runs the real `deck` binary on a free 127.0.0.1 port with
//! its own data dir, and stops it when dropped.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::collections::{BTreeSet, HashSet};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata");

pub fn testdata(path: &str) -> PathBuf {
    Path::new(TESTDATA).join(path)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).map(|address| address.port()).unwrap()
}

pub struct Deck {
    pub child: Child,
    pub port: u16,
    /// The admin listener (`/metrics`, `/api/sources`, `/healthz`, `/readyz`).
    pub admin_port: u16,
    pub data_dir: PathBuf,
}

impl Deck {
    /// Starts `deck serve` with `args` on `data_dir` and waits for `/healthz`.
    pub async fn start(data_dir: &Path, args: &[&str]) -> Deck {
        Deck::start_role("serve", data_dir, args, &[]).await
    }

    /// Starts a `deck` command that serves HTTP (`serve`, `feed`) with extra
    /// environment, and waits for `/healthz`.
    pub async fn start_role(command: &str, data_dir: &Path, args: &[&str], envs: &[(String, String)]) -> Deck {
        // A free port can be taken by another process between our probe and
        // the server's bind: a server that exits at once is started again.
        for _attempt in 0..5 {
            let (port, admin_port) = (free_port(), free_port());
            let mut command_line = Command::new(env!("CARGO_BIN_EXE_deck"));
            command_line.arg(command).arg("--port").arg(port.to_string());
            command_line.arg("--admin-port").arg(admin_port.to_string());
            if command != "gateway" {
                command_line.arg("--data-dir").arg(data_dir);
                if !args.contains(&"--web-dir") {
                    command_line.arg("--web-dir").arg(data_dir.join("no-web"));
                }
            }
            let child = command_line
                .args(args)
                .env("RUST_LOG", "warn")
                // These tests page whole columns quickly; the per-client read limit has
                // its own test (`tests/security.rs`).
                .env("DECK_TIMELINE_PER_SECOND", "0")
                // The replays hold real posts from years apart; retention has
                // its own tests (`store/tests/retention.rs`).
                .env("DECK_RETENTION", "36500d")
                .envs(envs.iter().map(|(key, value)| (key.as_str(), value.as_str())))
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start deck");
            let mut deck = Deck { child, port, admin_port, data_dir: data_dir.to_owned() };
            let started = Instant::now();
            loop {
                if let Ok(response) = reqwest::get(deck.url("/healthz")).await
                    && response.status().is_success()
                {
                    return deck;
                }
                if deck.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(90), "deck did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("deck exited at start five times");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.admin_port, path)
    }

    pub async fn get_json(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(self.url(path_and_query)).await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Every post of a column, walking `next` to the end.
    pub async fn whole_timeline(&self, query: &str, page_size: usize) -> Vec<serde_json::Value> {
        let mut posts = Vec::new();
        let mut before = String::new();
        loop {
            let path = format!("/api/timeline?q={}&limit={page_size}&before={}", urlencode(query), urlencode(&before));
            let (status, page) = self.get_json(&path).await;
            assert_eq!(status, 200, "{page}");
            posts.extend(page["posts"].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(next) => before = next.to_owned(),
                None => return posts,
            }
        }
    }

    /// A Prometheus counter's value summed over its labels.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_in(&self.admin_url("/metrics"), name).await
    }

    /// Waits until the processor has stored and committed `n_records` records.
    pub async fn wait_for_records(&self, n_records: f64) {
        wait_for_records(&self.admin_url("/metrics"), n_records).await;
    }

    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the clean shutdown path.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// A Prometheus counter's value at `metrics_url`, summed over its labels.
pub async fn metric_in(metrics_url: &str, name: &str) -> f64 {
    let text = reqwest::get(metrics_url).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the processor behind `metrics_url` has stored and committed `n_records` records.
pub async fn wait_for_records(metrics_url: &str, n_records: f64) {
    let started = Instant::now();
    loop {
        let processed = metric_in(metrics_url, "deck_records_processed_total").await;
        if processed >= n_records {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "only {processed} of {n_records} records processed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Deck {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// A `deck` process without HTTP (`ingest`, `process`); killed when dropped.
pub struct Role {
    pub child: Child,
}

impl Role {
    pub fn start(command: &str, data_dir: &Path, args: &[&str], envs: &[(String, String)]) -> Role {
        let child = Command::new(env!("CARGO_BIN_EXE_deck"))
            .arg(command)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "warn")
            // These tests page whole columns quickly; the per-client read limit has
            // its own test (`tests/security.rs`).
            .env("DECK_TIMELINE_PER_SECOND", "0")
            // The replays hold real posts from years apart; retention has its
            // own tests (`store/tests/retention.rs`).
            .env("DECK_RETENTION", "36500d")
            .envs(envs.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start deck");
        Role { child }
    }

    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

pub fn urlencode(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => encoded.push(byte as char),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The replay file: real X v2 pages and stream lines, real Jetstream events,
/// a truncated line (from the recording itself), a line of junk and blank keep-alives.
pub fn write_replay(dir: &Path) -> (std::path::PathBuf, usize) {
    let mut lines: Vec<String> = Vec::new();
    for file in ["tweets/v2/twarc-csv-kpop.jsonl", "tweets/v2/twarc-csv-streaming_output_with_error.jsonl"] {
        lines.extend(std::fs::read_to_string(testdata(file)).unwrap().lines().map(str::to_owned));
    }
    lines.push("this is not JSON {".into());
    lines.push(String::new());
    lines.extend(
        std::fs::read_to_string(testdata("bluesky/jetstream-v1-production-window.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_owned),
    );
    lines.push(String::new());
    lines.extend(
        std::fs::read_to_string(testdata("tweets/v2/twarc-csv-brexit.jsonl")).unwrap().lines().map(str::to_owned),
    );
    let n_records = lines.iter().filter(|line| !line.trim().is_empty()).count();
    let path = dir.join("replay.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for line in &lines {
        writeln!(file, "{line}").unwrap();
    }
    (path, n_records)
}

/// An oracle written from the X API's documented shape, independent of
/// Deck's parser: the ids of the posts of the v2 lines that carry `tag`
/// (a retweet carries its original's hashtags; originals and quoted posts
/// delivered in `includes` are posts too).
pub fn x_posts_with_hashtag(path: &Path, tag: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let has_tag = |tweet: &Value| {
        tweet["entities"]["hashtags"].as_array().is_some_and(|tags| {
            tags.iter().any(|entry| entry["tag"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(tag)))
        })
    };
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else { continue };
        if message.get("did").is_some() {
            continue;
        }
        let includes: Vec<Value> = message["includes"]["tweets"].as_array().cloned().unwrap_or_default();
        let find = |id: &str| includes.iter().find(|tweet| tweet["id"] == id).cloned();
        let tweets = match &message["data"] {
            Value::Array(tweets) => tweets.clone(),
            Value::Object(_) => vec![message["data"].clone()],
            _ => continue,
        };
        for tweet in tweets {
            let mut content = tweet.clone();
            for reference in tweet["referenced_tweets"].as_array().cloned().unwrap_or_default() {
                let Some(id) = reference["id"].as_str() else { continue };
                let Some(referenced) = find(id) else { continue };
                match reference["type"].as_str() {
                    Some("retweeted") => {
                        if has_tag(&referenced) {
                            ids.insert(id.to_owned());
                        }
                        content = referenced;
                    }
                    Some("quoted") if has_tag(&referenced) => {
                        ids.insert(id.to_owned());
                    }
                    _ => {}
                }
            }
            if has_tag(&content) {
                ids.insert(tweet["id"].as_str().unwrap().to_owned());
            }
        }
    }
    ids
}

pub fn ids(posts: &[Value]) -> Vec<String> {
    posts.iter().map(|post| post["id"].as_str().unwrap().to_owned()).collect()
}

pub fn assert_newest_first_without_repeats(posts: &[Value]) {
    let unique: HashSet<&str> = posts.iter().map(|post| post["id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), posts.len(), "a post repeats");
    for pair in posts.windows(2) {
        let (newer, older) = (&pair[0]["created_at"], &pair[1]["created_at"]);
        let newer = chrono::DateTime::parse_from_rfc3339(newer.as_str().unwrap()).unwrap();
        let older = chrono::DateTime::parse_from_rfc3339(older.as_str().unwrap()).unwrap();
        assert!(newer >= older, "not newest first: {newer} before {older}");
    }
}
