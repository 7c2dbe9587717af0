//! Test harness: runs the real `deck` binary on a free 127.0.0.1 port with
//! its own data dir, and stops it when dropped.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    pub data_dir: PathBuf,
}

impl Deck {
    /// Starts `deck serve` with `args` on `data_dir` and waits for `/healthz`.
    pub async fn start(data_dir: &Path, args: &[&str]) -> Deck {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_deck"))
            .arg("serve")
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--web-dir")
            .arg(data_dir.join("no-web"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start deck");
        let deck = Deck { child, port, data_dir: data_dir.to_owned() };
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(deck.url("/healthz")).await
                && response.status().is_success()
            {
                return deck;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "deck did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
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
        let text = reqwest::get(self.url("/metrics")).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|line| line.starts_with(name) && !line.starts_with('#'))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the processor has stored and committed `n_records` records.
    pub async fn wait_for_records(&self, n_records: f64) {
        let started = Instant::now();
        loop {
            let processed = self.metric("deck_records_processed_total").await;
            if processed >= n_records {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "only {processed} of {n_records} records processed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

impl Drop for Deck {
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
