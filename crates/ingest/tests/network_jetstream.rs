//! The Jetstream source against a stand-in Jetstream of our own: a real
//! WebSocket server on 127.0.0.1 that replays the recorded production
//! window from the requested `cursor`, and cuts frames, stalls, refuses
//! handshakes and sends malformed and binary frames along the way.

// A panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod network_support;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::SinkExt;
use ingest::{JetstreamConfig, JetstreamSource, SourceHealth};
use network_support::{RecordingSleep, start, testdata, within_jitter};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// One recorded event: its line and `time_us`.
#[derive(Clone)]
struct Event {
    line: String,
    time_us: i64,
}

fn events(file: &str) -> Vec<Event> {
    testdata(file)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            Event { line: line.to_owned(), time_us: value["time_us"].as_i64().unwrap() }
        })
        .collect()
}

/// What the stand-in does with one connection.
#[derive(Clone, Copy)]
enum Plan {
    /// Answer the handshake with this HTTP status.
    Refuse(u16),
    /// Send up to `limit` events from the cursor on (plus a malformed text
    /// frame and a binary frame in the middle, if `inject`), then `then`.
    Serve { limit: usize, inject: bool, then: Then },
}

#[derive(Clone, Copy)]
enum Then {
    /// Start a frame and cut the connection in the middle of it.
    CutFrame,
    /// Go silent while keeping the connection open.
    Stall,
    /// Keep the connection open (the last connection of a test).
    Hold,
}

/// A stand-in Jetstream: the events, a plan per connection, and what it saw.
struct StandIn {
    url: String,
    /// The request URI of each connection.
    requests: Arc<Mutex<Vec<String>>>,
    /// The events sent on each connection, in order.
    sent: Arc<Mutex<Vec<Vec<String>>>>,
}

async fn stand_in(events: Vec<Event>, plans: Vec<Plan>) -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/subscribe", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let (requests_seen, sent_log) = (requests.clone(), sent.clone());
    tokio::spawn(async move {
        let mut connection_idx = 0;
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let plan = plans[connection_idx.min(plans.len() - 1)];
            connection_idx += 1;
            if let Plan::Refuse(status) = plan {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head).await.unwrap();
                let request = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_owned();
                requests_seen.lock().unwrap().push(request);
                sent_log.lock().unwrap().push(Vec::new());
                let answer = format!("HTTP/1.1 {status} Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                stream.write_all(answer.as_bytes()).await.unwrap();
                continue;
            }
            let Plan::Serve { limit, inject, then } = plan else { unreachable!() };
            let requests_seen = requests_seen.clone();
            let sent_log = sent_log.clone();
            let events = events.clone();
            tokio::spawn(async move {
                let mut uri = String::new();
                // tungstenite's callback signature fixes the error type.
                #[allow(clippy::result_large_err)]
                let callback = |request: &Request, response: Response| {
                    uri = request.uri().to_string();
                    Ok(response)
                };
                let mut socket = tokio_tungstenite::accept_hdr_async(stream, callback).await.unwrap();
                requests_seen.lock().unwrap().push(uri.clone());
                let cursor = query(&uri, "cursor").map(|cursor| cursor.parse::<i64>().unwrap());
                // Jetstream replays from the cursor by event time; the
                // recording is in relay order, which time_us does not follow.
                let replay: Vec<&Event> = events
                    .iter()
                    .filter(|event| cursor.is_none_or(|cursor| event.time_us >= cursor))
                    .take(limit)
                    .collect();
                let mut sent_here = Vec::new();
                for (event_idx, event) in replay.iter().enumerate() {
                    if inject && event_idx == replay.len() / 2 {
                        socket.send(Message::text("{\"did\":\"did:plc:broken\",\"time_us\":")).await.unwrap();
                        socket.send(Message::binary(vec![0x28, 0xb5, 0x2f, 0xfd])).await.unwrap();
                    }
                    socket.send(Message::text(event.line.clone())).await.unwrap();
                    sent_here.push(event.line.clone());
                }
                sent_log.lock().unwrap().push(sent_here);
                match then {
                    Then::CutFrame => {
                        socket.flush().await.unwrap();
                        // A text frame announcing 256 bytes, of which 2 arrive.
                        let raw = socket.get_mut();
                        raw.write_all(&[0x81, 0x7e, 0x01, 0x00, b'{', b'"']).await.unwrap();
                        raw.shutdown().await.unwrap();
                    }
                    Then::Stall | Then::Hold => {
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    StandIn { url, requests, sent }
}

fn query<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = uri.split_once('?')?;
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn config(url: &str, sleep: &RecordingSleep, health: &SourceHealth) -> JetstreamConfig {
    let mut config = JetstreamConfig::new(url);
    config.stall_timeout = Duration::from_millis(300);
    config.sleep = Arc::new(sleep.clone());
    config.health = health.clone();
    config
}

const REWIND_US: i64 = 5_000_000;

#[tokio::test]
async fn every_event_arrives_across_cut_frames_and_stalls_with_only_rewind_duplicates() {
    let recording = events("bluesky/jetstream-v1-production-window.jsonl");
    let plans = vec![
        Plan::Serve { limit: 60, inject: true, then: Then::CutFrame },
        Plan::Serve { limit: 110, inject: false, then: Then::Stall },
        Plan::Serve { limit: usize::MAX, inject: false, then: Then::Hold },
    ];
    let server = stand_in(recording.clone(), plans).await;
    let sleep = RecordingSleep::default();
    let health = SourceHealth::new();
    let source = JetstreamSource::new("jetstream", config(&server.url, &sleep, &health));
    let mut running = start(Box::new(source), None);
    let all: BTreeSet<i64> = recording.iter().map(|event| event.time_us).collect();
    let records = running
        .collect_until(|records| {
            let seen: BTreeSet<i64> = records
                .iter()
                .filter_map(|record| serde_json::from_str::<Value>(&record.payload).ok()?["time_us"].as_i64())
                .collect();
            seen == all
        })
        .await;
    let requests = server.requests.lock().unwrap().clone();
    let sent = server.sent.lock().unwrap().clone();
    let status = health.snapshot().remove(0);
    running.stop().await;

    // Three connections; each asks for posts and reposts.
    assert_eq!(requests.len(), 3, "{requests:?}");
    for uri in &requests {
        assert!(uri.contains("wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.feed.repost"), "{uri}");
    }
    assert_eq!(query(&requests[0], "cursor"), None);

    // What arrived is exactly what was sent, connection by connection, in
    // order: nothing lost, nothing invented; the two injected frames
    // travel on (the processor counts them as malformed), the cut frame
    // does not.
    let time_of = |line: &str| serde_json::from_str::<Value>(line).unwrap()["time_us"].as_i64().unwrap();
    let mut expected = Vec::new();
    let mut max_seen: Option<i64> = None;
    for (connection_idx, lines) in sent.iter().enumerate() {
        if connection_idx > 0 {
            // Each reconnect resumes 5 s before the newest event seen.
            let cursor: i64 = query(&requests[connection_idx], "cursor").unwrap().parse().unwrap();
            assert_eq!(cursor, max_seen.unwrap() - REWIND_US);
            // So a duplicate is only ever an event at or after that cursor.
            for line in lines {
                if expected.contains(line) {
                    assert!(time_of(line) >= cursor);
                }
            }
        }
        for line in lines {
            max_seen = Some(max_seen.map_or(time_of(line), |max| max.max(time_of(line))));
        }
        expected.extend(lines.iter().cloned());
    }
    let payloads: Vec<&str> = records.iter().map(|record| record.payload.as_str()).collect();
    let injected: Vec<&&str> =
        payloads.iter().filter(|payload| !expected.iter().any(|line| line == **payload)).collect();
    assert_eq!(injected.len(), 2, "{injected:?}");
    assert!(injected[0].starts_with("{\"did\":\"did:plc:broken\""));
    assert!(injected[1].contains("deck_unreadable") && injected[1].contains("binary"));
    let delivered: Vec<&str> = payloads
        .iter()
        .copied()
        .filter(|payload| !payload.contains("broken") && !payload.contains("deck_unreadable"))
        .collect();
    assert_eq!(delivered, expected.iter().map(String::as_str).collect::<Vec<_>>());

    // Unique events equal the recording; every duplicate is a rewind.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for payload in &delivered {
        *counts.entry(payload).or_default() += 1;
    }
    assert_eq!(counts.len(), recording.len());

    // Keys are DIDs; each checkpoint is the newest time_us so far.
    let mut newest = i64::MIN;
    for record in &records {
        if let Ok(value) = serde_json::from_str::<Value>(&record.payload)
            && let (Some(did), Some(time_us)) = (value["did"].as_str(), value["time_us"].as_i64())
        {
            assert_eq!(record.key, did);
            newest = newest.max(time_us);
        }
        assert_eq!(record.origin.checkpoint, Some(newest.to_string()).filter(|_| newest != i64::MIN));
    }

    // Both reconnects followed a connection that delivered, so each starts
    // the schedule afresh: 1 s, less up to half of jitter.
    assert!(within_jitter(&sleep.delays(), &[1000, 1000], 0.5), "{:?}", sleep.delays());
    assert_eq!((status.connects, status.reconnects), (3, 2));
    assert_eq!(status.records as usize, records.len());
    assert_eq!(status.malformed_frames, 1);
    assert!(status.connected && status.lag_seconds.is_some());
}

#[tokio::test]
async fn refused_handshakes_back_off_exponentially_then_identity_events_pass() {
    let golden = events("bluesky/jetstream-v1-golden.jsonl");
    let plans = vec![
        Plan::Refuse(503),
        Plan::Refuse(503),
        Plan::Refuse(429),
        Plan::Refuse(503),
        Plan::Serve { limit: usize::MAX, inject: false, then: Then::Hold },
    ];
    let server = stand_in(golden.clone(), plans).await;
    let sleep = RecordingSleep::default();
    let health = SourceHealth::new();
    let source = JetstreamSource::new("jetstream:test", config(&server.url, &sleep, &health));
    let mut running = start(Box::new(source), None);
    let records = running.collect_until(|records| records.len() == golden.len()).await;
    running.stop().await;

    assert!(within_jitter(&sleep.delays(), &[1000, 2000, 4000, 8000], 0.5), "{:?}", sleep.delays());
    let payloads: Vec<&str> = records.iter().map(|record| record.payload.as_str()).collect();
    assert_eq!(payloads, golden.iter().map(|event| event.line.as_str()).collect::<Vec<_>>());
    // The identity event travels like any other, so the parser can learn
    // the handle from it.
    let mut parser = ingest::Parser::new();
    for record in &records {
        parser.parse(record).unwrap();
    }
    assert!(records.iter().any(|record| record.payload.contains("\"kind\":\"identity\"")));
    let status = &health.snapshot()[0];
    assert_eq!(status.name, "jetstream:test");
    assert_eq!((status.connects, status.reconnects), (1, 4));
    assert!(status.last_error.as_deref().unwrap_or("").contains("503"), "{status:?}");
}

#[tokio::test]
async fn a_restart_resumes_from_the_saved_cursor_without_a_gap() {
    let recording = events("bluesky/jetstream-v1-production-window.jsonl");
    let saved = recording[100].time_us;
    let server =
        stand_in(recording.clone(), vec![Plan::Serve { limit: usize::MAX, inject: false, then: Then::Hold }]).await;
    let sleep = RecordingSleep::default();
    let health = SourceHealth::new();
    let source = JetstreamSource::new("jetstream", config(&server.url, &sleep, &health));
    let mut running = start(Box::new(source), Some(saved.to_string()));
    let expected: Vec<&Event> = recording.iter().filter(|event| event.time_us >= saved - REWIND_US).collect();
    let records = running.collect_until(|records| records.len() == expected.len()).await;
    let requests = server.requests.lock().unwrap().clone();
    running.stop().await;

    assert_eq!(query(&requests[0], "cursor"), Some((saved - REWIND_US).to_string().as_str()));
    // Every event at or after the saved cursor arrives: no gap.
    let times: BTreeSet<i64> = records
        .iter()
        .map(|record| serde_json::from_str::<Value>(&record.payload).unwrap()["time_us"].as_i64().unwrap())
        .collect();
    for event in recording.iter().filter(|event| event.time_us >= saved) {
        assert!(times.contains(&event.time_us));
    }
    // The checkpoint never goes back behind the saved one's events.
    assert!(records.iter().all(|record| record.origin.checkpoint.is_some()));
    assert!(sleep.delays().is_empty());
}

#[test]
fn specs_build_the_network_sources_named_as_given() {
    let mut options = ingest::SourceOptions::default();
    assert_eq!(ingest::from_spec("jetstream", &options).unwrap().name(), "jetstream");
    let spec = "jetstream:ws://127.0.0.1:6008/subscribe";
    assert_eq!(ingest::from_spec(spec, &options).unwrap().name(), spec);
    let spec = "mastodon:https://mastodon.example";
    assert_eq!(ingest::from_spec(spec, &options).unwrap().name(), spec);
    for bad in ["jetstream:https://example", "mastodon:", "mastodon:example.org", "x:extra"] {
        assert!(ingest::from_spec(bad, &options).is_err(), "{bad}");
    }
    if std::env::var("X_BEARER_TOKEN").is_err() {
        let error = ingest::from_spec("x", &options).err().unwrap();
        assert!(error.to_string().contains("X_BEARER_TOKEN"), "{error}");
    }
    options.x_bearer_token = Some("token".to_owned());
    assert_eq!(ingest::from_spec("x", &options).unwrap().name(), "x");
}

/// Throughput of one Jetstream source task: a local stand-in sends the
/// production window over and over; the test drains the channel, then
/// parses what arrived. Prints figures for BENCHMARKS.md; asserts nothing
/// about time. Run with
/// `cargo test --release -p ingest --test network_jetstream -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_events_per_second() {
    const N_EVENTS: usize = 300_000;
    let recording = events("bluesky/jetstream-v1-production-window.jsonl");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/subscribe", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        for event in recording.iter().cycle().take(N_EVENTS) {
            socket.feed(Message::text(event.line.clone())).await.unwrap();
        }
        socket.flush().await.unwrap();
        std::future::pending::<()>().await;
    });
    let health = SourceHealth::new();
    let source = JetstreamSource::new("jetstream", config(&url, &RecordingSleep::default(), &health));
    let (records_tx, mut records_rx) = tokio::sync::mpsc::channel(4096);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(ingest::Source::run(Box::new(source), None, records_tx, shutdown.clone()));
    let started = std::time::Instant::now();
    let mut records = Vec::with_capacity(N_EVENTS);
    while records.len() < N_EVENTS {
        records_rx.recv_many(&mut records, 1024).await;
    }
    let read_seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let started = std::time::Instant::now();
    let mut parser = ingest::Parser::new();
    let mut n_events = 0usize;
    for record in &records {
        n_events += parser.parse(record).map(|events| events.len()).unwrap_or(0);
    }
    let parse_seconds = started.elapsed().as_secs_f64();
    let n_bytes: usize = records.iter().map(|record| record.payload.len()).sum();
    println!(
        "jetstream source: {N_EVENTS} events ({:.1} MB) read and handed on in {read_seconds:.3} s = {:.0} events/s; \
         parsed in {parse_seconds:.3} s = {:.0} records/s ({n_events} post events)",
        n_bytes as f64 / 1e6,
        N_EVENTS as f64 / read_seconds,
        N_EVENTS as f64 / parse_seconds,
    );
}
