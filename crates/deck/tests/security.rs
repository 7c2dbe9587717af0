//! Issue 13 against the real `deck serve`, as an attacker would try it: pre-account
//! takeover through the outbox, enumeration, secrets in the log and in file modes, a
//! `text/plain` login, and a timeline flood from one client (behind a trusted proxy).

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::free_port;
use serde_json::{Value, json};

struct LoggedDeck {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl LoggedDeck {
    /// `deck serve` at INFO, its log in `log`, waiting for `/healthz`.
    async fn start(data_dir: &Path, log: &Path, args: &[&str]) -> LoggedDeck {
        for _attempt in 0..5 {
            let port = free_port();
            let log_file = std::fs::File::create(log).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_deck"))
                .arg("serve")
                .arg("--port")
                .arg(port.to_string())
                .arg("--data-dir")
                .arg(data_dir)
                .arg("--web-dir")
                .arg(data_dir.join("no-web"))
                .args(args)
                .env("RUST_LOG", "info")
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .expect("start deck");
            let mut deck = LoggedDeck { child, port, log: log.to_owned() };
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

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new().post(self.url(path)).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn stop(&mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedDeck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `.eml` files of the outbox, oldest first, once there are at least `n` (bounded wait).
async fn mails(outbox: &Path, n: usize) -> Vec<(PathBuf, String)> {
    for _ in 0..400 {
        let mut files: Vec<PathBuf> = std::fs::read_dir(outbox)
            .map(|entries| entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect())
            .unwrap_or_default();
        files.retain(|path| path.extension().is_some_and(|ext| ext == "eml"));
        files.sort();
        if files.len() >= n {
            return files.into_iter().map(|path| (path.clone(), std::fs::read_to_string(&path).unwrap())).collect();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} mails in {}", outbox.display());
}

fn verify_token(mail: &str) -> String {
    let mail = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let marker = "/#/verify?token=";
    let start = mail.find(marker).expect("a verify link") + marker.len();
    mail[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn secrets_stay_private_and_out_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let log = dir.path().join("deck.log");
    let mut deck = LoggedDeck::start(&data_dir, &log, &[]).await;
    let outbox = data_dir.join("outbox");
    let victim = "victim@example.org";
    let attacker_password = "attacker chose this";
    let owner_password = "the owner's own passphrase";

    // The attacker pre-registers the victim's address; a mail scanner follows the link.
    let (status, _) = deck.post("/api/auth/signup", json!({"email": victim, "password": attacker_password})).await;
    assert_eq!(status, 202);
    let attacker_token = verify_token(&mails(&outbox, 1).await[0].1);
    assert_eq!(deck.post("/api/auth/verify", json!({"token": attacker_token})).await.0, 400);
    let (status, body) =
        deck.post("/api/auth/verify", json!({"token": attacker_token, "password": "scanner guess 1"})).await;
    assert_eq!(status, 403, "{body}");

    // Enumeration: sign-up then login with the chosen password, for a taken and a free
    // address, answer alike (the taken one is the victim's pending account).
    let mut pair = Vec::new();
    for email in [victim, "nobody@example.org"] {
        let signup = deck.post("/api/auth/signup", json!({"email": email, "password": "probe password 9"})).await;
        let login = deck.post("/api/auth/login", json!({"email": email, "password": "probe password 9"})).await;
        pair.push((signup, login));
    }
    assert_eq!(pair[0], pair[1]);
    assert_eq!(pair[0].1.0, 401);

    // The owner signs up with their own password and follows the link from their own mail.
    let n_before = mails(&outbox, 3).await.len();
    let (status, _) = deck.post("/api/auth/signup", json!({"email": victim, "password": owner_password})).await;
    assert_eq!(status, 202);
    let all = mails(&outbox, n_before + 1).await;
    let owner_token = verify_token(&all.last().unwrap().1);
    let (status, body) = deck.post("/api/auth/verify", json!({"token": owner_token, "password": owner_password})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = deck.post("/api/auth/login", json!({"email": victim, "password": owner_password})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(deck.post("/api/auth/login", json!({"email": victim, "password": attacker_password})).await.0, 401);

    // A cross-site "simple" POST (text/plain) is refused before it is read.
    let response = reqwest::Client::new()
        .post(deck.url("/api/auth/login"))
        .header("content-type", "text/plain")
        .body(json!({"email": victim, "password": owner_password}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    // File modes: owner-only from creation.
    #[cfg(unix)]
    {
        assert_eq!(mode(&data_dir), 0o700, "data dir");
        assert_eq!(mode(&outbox), 0o700, "outbox");
        for name in ["jwt-secret", "auth.sqlite", "auth.sqlite-wal", "auth.sqlite-shm"] {
            let path = data_dir.join(name);
            if name == "jwt-secret" || name == "auth.sqlite" || path.exists() {
                assert_eq!(mode(&path), 0o600, "{name}");
            }
        }
        for (path, _) in mails(&outbox, 1).await {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }

    // No token in any log line.
    let log_text = deck.stop();
    assert!(log_text.contains("mail filed in outbox"), "the log is at INFO:\n{log_text}");
    for token in [&attacker_token, &owner_token] {
        assert!(!log_text.contains(token.as_str()), "a verify token is in the log");
    }
    assert!(!log_text.contains(owner_password) && !log_text.contains(attacker_password));
}

#[tokio::test]
async fn a_timeline_flood_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut deck = LoggedDeck::start(&data_dir, &dir.path().join("deck.log"), &["--trusted-proxy", "127.0.0.1"]).await;
    let client = reqwest::Client::new();
    let timeline = deck.url("/api/timeline?q=%23BTS&limit=1");
    // 1,500 rapid reads from one client (named by the trusted proxy's header).
    let mut n_limited = 0;
    let mut retry_after = None;
    for _ in 0..1_500 {
        let response = client.get(&timeline).header("x-forwarded-for", "203.0.113.7").send().await.unwrap();
        if response.status().as_u16() == 429 {
            n_limited += 1;
            retry_after =
                response.headers().get("retry-after").and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        } else {
            assert_eq!(response.status().as_u16(), 200);
        }
    }
    assert!(n_limited > 0, "no 429 in 1,500 rapid reads");
    assert!(retry_after.is_some_and(|seconds| seconds >= 1), "429 without Retry-After");
    // Another client behind the same proxy is not affected, nor is an IPv6 neighbour
    // outside the flooding /64 ... while an address inside it shares the bucket.
    let other = client.get(&timeline).header("x-forwarded-for", "198.51.100.9").send().await.unwrap();
    assert_eq!(other.status().as_u16(), 200);
    for _ in 0..300 {
        let _ = client.get(&timeline).header("x-forwarded-for", "2001:db8:1:2::1").send().await.unwrap();
    }
    let same_64 = client.get(&timeline).header("x-forwarded-for", "2001:db8:1:2:ffff::9").send().await.unwrap();
    assert_eq!(same_64.status().as_u16(), 429, "an IPv6 /64 is one client");
    let other_64 = client.get(&timeline).header("x-forwarded-for", "2001:db8:1:3::1").send().await.unwrap();
    assert_eq!(other_64.status().as_u16(), 200);
    // Security headers of the edge.
    let csp = other_64.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
    for directive in ["connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("ws:") && !csp.contains("wss:"), "{csp}");
    deck.stop();
}
