//! `deck serve --source jetstream:URL` against a Jetstream-compatible server
//! of the test's own: posts reach a subscribed column (with the handle from
//! the identity event), a delete withdraws a post, and after a restart Deck
//! resumes from its saved cursor with nothing missed and nothing doubled.
//! Prints the latency from the server's send to the column's frame.

// A test fails by panicking: unwrapping is how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// tungstenite's handshake callback returns its own (large) error type.
#![allow(clippy::result_large_err)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Deck;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

const DID: &str = "did:plc:testalice123";

fn post_event(post_idx: u64, time_us: u64) -> String {
    json!({"did": DID, "time_us": time_us, "kind": "commit", "commit": {
        "rev": format!("rev{post_idx}"), "operation": "create", "collection": "app.bsky.feed.post",
        "rkey": format!("post{post_idx:05}"), "cid": format!("cid{post_idx}"),
        "record": {"$type": "app.bsky.feed.post", "createdAt": chrono::Utc::now().to_rfc3339(),
                   "langs": ["en"], "text": format!("BTS live number {post_idx}")}}})
    .to_string()
}

fn post_uri(post_idx: u64) -> String {
    format!("at://{DID}/app.bsky.feed.post/post{post_idx:05}")
}

/// A Jetstream stand-in: each connection records its `cursor` and then
/// sends whatever the test queues.
struct Server {
    port: u16,
    cursors: Arc<Mutex<Vec<Option<u64>>>>,
    frames_tx: Arc<Mutex<Option<mpsc::UnboundedSender<String>>>>,
}

async fn start_server() -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cursors = Arc::new(Mutex::new(Vec::new()));
    let frames_tx: Arc<Mutex<Option<mpsc::UnboundedSender<String>>>> = Arc::new(Mutex::new(None));
    let (server_cursors, server_frames) = (cursors.clone(), frames_tx.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let cursors = server_cursors.clone();
            let callback = move |request: &Request, response: Response| {
                let cursor = request.uri().query().and_then(|query| {
                    query.split('&').find_map(|pair| pair.strip_prefix("cursor=")).and_then(|value| value.parse().ok())
                });
                cursors.lock().unwrap().push(cursor);
                Ok(response)
            };
            let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else { continue };
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            *server_frames.lock().unwrap() = Some(tx);
            tokio::spawn(async move {
                while let Some(frame) = rx.recv().await {
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Server { port, cursors, frames_tx }
}

impl Server {
    async fn wait_for_connection(&self, n: usize) {
        let started = Instant::now();
        while self.cursors.lock().unwrap().len() < n || self.frames_tx.lock().unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(30), "Deck did not connect");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn send(&self, frame: String) {
        if let Some(tx) = self.frames_tx.lock().unwrap().as_ref() {
            let _ = tx.send(frame);
        }
    }
}

#[tokio::test]
async fn jetstream_posts_reach_columns_live_and_resume_after_a_restart() {
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let source = format!("jetstream:ws://127.0.0.1:{}/subscribe", server.port);
    let mut deck = Deck::start(&data_dir, &["--source", &source]).await;
    server.wait_for_connection(1).await;
    assert_eq!(server.cursors.lock().unwrap()[0], None, "a first start has no cursor");

    let ticket: Value =
        reqwest::Client::new().post(deck.url("/api/stream/ticket")).send().await.unwrap().json().await.unwrap();
    let url = format!("ws://127.0.0.1:{}/api/stream?ticket={}", deck.port, ticket["ticket"].as_str().unwrap());
    let (mut client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    client
        .send(Message::Text(json!({"type": "subscribe", "column": "bts", "q": "BTS"}).to_string().into()))
        .await
        .unwrap();
    let subscribed = client.next().await.unwrap().unwrap();
    assert!(subscribed.to_text().unwrap().contains("subscribed"));

    // The identity event names the account; then 80 posts at 40 a second.
    let base_us = 1_780_000_000_000_000u64;
    server.send(
        json!({"did": DID, "time_us": base_us, "kind": "identity",
                       "identity": {"did": DID, "handle": "alice.test", "seq": 1, "time": "2026-11-24T00:00:00Z"}})
        .to_string(),
    );
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sender = {
        let sent_at = sent_at.clone();
        let frames_tx = server.frames_tx.lock().unwrap().clone().unwrap();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(25));
            for post_idx in 1..=80u64 {
                ticker.tick().await;
                sent_at.lock().unwrap().insert(post_uri(post_idx), Instant::now());
                let _ = frames_tx.send(post_event(post_idx, base_us + post_idx * 1000));
            }
        })
    };
    let mut latencies = Vec::new();
    let mut received = Vec::new();
    while received.len() < 80 {
        let message = tokio::time::timeout(Duration::from_secs(20), client.next()).await.unwrap().unwrap().unwrap();
        let frame: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        if frame["type"] != "post" {
            continue;
        }
        let id = frame["post"]["id"].as_str().unwrap().to_owned();
        if let Some(sent) = sent_at.lock().unwrap().get(&id) {
            latencies.push(sent.elapsed());
        }
        assert_eq!(frame["post"]["author"]["handle"], "alice.test", "the handle comes from the identity event");
        received.push(id);
    }
    sender.await.unwrap();
    let expected: Vec<String> = (1..=80).map(post_uri).collect();
    assert_eq!(received, expected, "every post once, in order");
    latencies.sort();
    let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction) as usize];
    println!(
        "jetstream → column latency at 40 posts/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );

    // A delete withdraws the post from the column and from history.
    server.send(
        json!({"did": DID, "time_us": base_us + 81_000, "kind": "commit",
               "commit": {"rev": "rev81", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": "post00007"}})
        .to_string(),
    );
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), client.next()).await.unwrap().unwrap().unwrap();
        let frame: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        if frame["type"] == "delete" {
            assert_eq!(frame["id"], post_uri(7));
            break;
        }
    }
    let history: BTreeSet<String> =
        deck.whole_timeline("BTS", 100).await.iter().map(|post| post["id"].as_str().unwrap().to_owned()).collect();
    assert!(!history.contains(&post_uri(7)));
    assert_eq!(history.len(), 79);

    // Restart: Deck asks for the saved cursor minus a few seconds.
    deck.terminate();
    drop(deck);
    let deck = Deck::start(&data_dir, &["--source", &source]).await;
    server.wait_for_connection(2).await;
    let cursor = server.cursors.lock().unwrap()[1].expect("a restart sends a cursor");
    let last_us = base_us + 81_000;
    assert!(cursor <= last_us && cursor >= last_us - 10_000_000, "cursor {cursor} resumes near {last_us}");
    // The server replays from the cursor (as Jetstream does): duplicates
    // change nothing, and the posts after the restart arrive.
    for post_idx in 75..=90u64 {
        server.send(post_event(post_idx, base_us + post_idx * 1000 + 1000));
    }
    let started = Instant::now();
    loop {
        let posts = deck.whole_timeline("BTS", 100).await;
        let ids: Vec<&str> = posts.iter().map(|post| post["id"].as_str().unwrap()).collect();
        if ids.len() >= 89 {
            let unique: BTreeSet<&str> = ids.iter().copied().collect();
            assert_eq!(unique.len(), ids.len(), "nothing doubled");
            assert_eq!(ids.len(), 89, "80 − 1 deleted + 10 new");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "only {} posts after the restart", ids.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
