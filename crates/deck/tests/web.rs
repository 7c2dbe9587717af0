//! The binary is self-contained: started from an empty directory (no
//! `web/dist` next to it, no `--web-dir`), `deck serve` serves the web page
//! at `/` and its script.
//!
//! What this covers depends on the build: a release binary embeds the client
//! at compile time; a debug binary (what `cargo test` builds) reads the
//! checkout's `web/dist` at run time through the same rust-embed folder, so
//! here it proves the serving path and the independence from the working
//! directory, and needs `cd web && npm run build` first (`scripts/test` runs
//! it before the Rust tests).

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn serves_the_page_from_an_empty_directory() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist/index.html");
    assert!(
        !cfg!(debug_assertions) || dist.exists(),
        "this debug test binary reads the client from {}: build it first (cd web && npm ci && npm run build)",
        dist.display()
    );
    let empty = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deck"))
        .args(["serve", "--source", "none", "--port", &port.to_string()])
        .current_dir(empty.path())
        .env("RUST_LOG", "warn")
        .env_remove("DECK_WEB_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start deck");
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let page = loop {
        if let Ok(response) = reqwest::get(format!("{base}/")).await {
            break response;
        }
        assert!(child.try_wait().unwrap().is_none(), "deck exited at start");
        assert!(started.elapsed() < Duration::from_secs(90), "deck did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<div id="app">"#), "{html}");
    // The built page points at a hashed script under /assets/, served too.
    let script = html
        .split(r#"src=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|src| src.starts_with("/assets/"))
        .unwrap_or_else(|| panic!("no built script in the page: {html}"));
    let response = reqwest::get(format!("{base}{script}")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().contains("javascript"));
    // The client routes by hash; a stray path gets the page, not an error.
    let stray = reqwest::get(format!("{base}/some/where")).await.unwrap();
    assert_eq!(stray.status(), 200);
    // Nothing was written to where it started (the data dir defaults to
    // ./deck-data, the one thing allowed there).
    let left: Vec<_> = std::fs::read_dir(empty.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert!(left.iter().all(|name| name == "deck-data"), "{left:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}
