//! The SMTP mailer against a real SMTP server: aiosmtpd, started by the test from a venv
//! under ~/.cache/deck/venv (made with `python3 -m venv` and pip when missing).
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure with its reason.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use auth::{
    AuthService, Mail, Mailer, MemoryRateLimiter, MemoryTicketStore, SmtpConfig, SmtpMailer, SmtpTls, SqlMemberStore,
};
use common::*;
use http::StatusCode;
use serde_json::json;

/// The venv's python with aiosmtpd (`scripts/install-deps` makes it; a test
/// run without it makes it here). Made once per test binary: the tests run in
/// parallel, and two `python3 -m venv` into one folder at once fail.
fn venv_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let home = std::env::var("HOME").expect("HOME");
            let venv = PathBuf::from(home).join(".cache/deck/venv");
            let python = venv.join("bin/python");
            let has_aiosmtpd = python.exists()
                && Command::new(&python).args(["-c", "import aiosmtpd"]).status().is_ok_and(|status| status.success());
            if !has_aiosmtpd {
                let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3");
                assert!(made.success(), "python3 -m venv failed");
                let installed =
                    Command::new(venv.join("bin/pip")).args(["install", "-q", "aiosmtpd"]).status().expect("pip");
                assert!(installed.success(), "pip install aiosmtpd failed");
            }
            python
        })
        .clone()
}

/// A running aiosmtpd that files each received message in `folder`.
struct SmtpSink {
    child: Child,
    port: u16,
    folder: tempfile::TempDir,
}

impl SmtpSink {
    fn start() -> Self {
        let folder = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut child = Command::new(venv_python())
            .arg(script)
            .arg(folder.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("PORT ").unwrap_or_else(|| panic!("sink said {line:?}")).parse().unwrap();
        SmtpSink { child, port, folder }
    }

    async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let files = outbox_files(self.folder.path());
            if files.len() >= n {
                return files.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the SMTP server received fewer than {n} messages");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig { host: "127.0.0.1".into(), port, tls: SmtpTls::None }
}

#[tokio::test]
async fn smtp_mailer_delivers_to_a_real_server() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::with_credentials(&smtp_config(sink.port), "Deck <no-reply@deck.invalid>", None).unwrap();
    let mail = Mail {
        to: "reader@example.org".into(),
        subject: "Hello over SMTP".into(),
        text: "Open https://deck.example/#/verify?token=abc\n".into(),
        link: None,
    };
    mailer.send(&mail).await.unwrap();
    let received = sink.wait_for(1).await;
    let message = unfold_quoted_printable(&received[0]);
    assert!(message.contains("To: reader@example.org"));
    assert!(message.contains("From: Deck <no-reply@deck.invalid>"));
    assert!(message.contains("Subject: Hello over SMTP"));
    assert!(message.contains("https://deck.example/#/verify?token=abc"));
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    // aiosmtpd here offers no STARTTLS: a mailer configured for it must refuse to send in
    // clear text rather than fall back.
    let sink = SmtpSink::start();
    let config = SmtpConfig { tls: SmtpTls::Starttls, ..smtp_config(sink.port) };
    let mailer = SmtpMailer::with_credentials(&config, "Deck <no-reply@deck.invalid>", None).unwrap();
    let mail = Mail { to: "reader@example.org".into(), subject: "s".into(), text: "t".into(), link: None };
    assert!(mailer.send(&mail).await.is_err());
    assert!(outbox_files(sink.folder.path()).is_empty());
}

#[tokio::test]
async fn signup_mail_goes_out_over_smtp() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let members = SqlMemberStore::open_sqlite(&dir.path().join("auth.sqlite")).await.unwrap();
    let config = config();
    let mailer = SmtpMailer::with_credentials(&smtp_config(sink.port), &config.mail_from, None).unwrap();
    let service = Arc::new(
        AuthService::new(
            config,
            Arc::new(members),
            Arc::new(MemoryTicketStore::new()),
            Arc::new(MemoryRateLimiter::new()),
            Arc::new(mailer),
        )
        .await
        .unwrap(),
    );
    let router = auth::router(Arc::clone(&service));
    let answer =
        post(&router, "/api/auth/signup", json!({"email": "smtp@example.org", "password": PASSWORD}), "192.0.2.1")
            .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    service.flush_mail().await;
    let received = sink.wait_for(1).await;
    let token = link_token(&received[0], "verify");
    assert_eq!(
        post(&router, "/api/auth/verify", json!({"token": token, "password": PASSWORD}), "192.0.2.1").await.status,
        StatusCode::OK
    );
}
