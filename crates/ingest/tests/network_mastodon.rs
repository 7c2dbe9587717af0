//! The Mastodon source against a stand-in Mastodon of our own (axum on
//! 127.0.0.1): the streaming WebSocket and SSE endpoints replay the recorded
//! and documented streams, the REST timeline serves the statuses "posted"
//! while the source was away, and the stand-in refuses handshakes, drops
//! connections and sends in-band errors and malformed frames.

// A panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod network_support;

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use ingest::{MastodonConfig, MastodonSource, MastodonTransport, SourceHealth, compare_status_ids};
use model::{PostEvent, RawRecord};
use network_support::{RecordingSleep, start, testdata, within_jitter};
use serde_json::{Value, json};

/// `(event, data)` pairs of an SSE recording.
fn sse_events(file: &str) -> Vec<(String, String)> {
    let mut events = Vec::new();
    let mut event = None;
    for line in testdata(file).lines() {
        if let Some(name) = line.strip_prefix("event:") {
            event = Some(name.trim().to_owned());
        } else if let Some(data) = line.strip_prefix("data:") {
            events.push((event.take().unwrap(), data.trim_start().to_owned()));
        }
    }
    events
}

/// Every distinct status in the recordings, oldest first: `(id, json)`.
fn status_pool() -> Vec<(String, String)> {
    let mut statuses: Vec<String> = Vec::new();
    for file in [
        "mastodon/mastodon-py/stream-user.sse",
        "mastodon/docs-examples/sse-public.sse",
        "mastodon/docs-examples/sse-hashtag.sse",
        "mastodon/docs-examples/sse-public-local.sse",
    ] {
        for (event, data) in sse_events(file) {
            if event == "update" || event == "status.update" {
                statuses.push(data);
            }
        }
    }
    statuses.push(testdata("mastodon/docs-examples/status-entity-example.json"));
    statuses.push(testdata("mastodon/mastodon-py/rest-reblog-status.json"));
    let hoot: Vec<Value> = serde_json::from_str(&testdata("mastodon/mastodon-py/rest-timeline-tag-hoot.json")).unwrap();
    statuses.push(hoot[0].to_string());
    let mut by_id: Vec<(String, String)> = Vec::new();
    for status in statuses {
        let id = serde_json::from_str::<Value>(&status).unwrap()["id"].as_str().unwrap().to_owned();
        if !by_id.iter().any(|(seen, _)| *seen == id) {
            by_id.push((id, status.trim().to_owned()));
        }
    }
    by_id.sort_by(|left, right| compare_status_ids(&left.0, &right.0));
    by_id
}

#[derive(Clone)]
struct StandIn {
    base_url: String,
    /// Statuses streamed on the first good connection, posted during the
    /// gap (REST only), and streamed after the reconnect.
    streamed_first: Arc<Vec<(String, String)>>,
    gap: Arc<Vec<(String, String)>>,
    streamed_after: Arc<Vec<(String, String)>>,
    n_connections: Arc<AtomicUsize>,
    /// The WebSocket attempts refused with 503 before the first success.
    n_refusals: usize,
    subscriptions: Arc<Mutex<Vec<String>>>,
    timeline_queries: Arc<Mutex<Vec<HashMap<String, String>>>>,
    sse_files: Arc<Vec<&'static str>>,
}

fn frame(event: &str, payload: &str) -> String {
    json!({ "stream": ["public"], "event": event, "payload": payload }).to_string()
}

async fn websocket(
    State(stand_in): State<StandIn>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let connection_idx = stand_in.n_connections.fetch_add(1, Ordering::SeqCst);
    let Some(upgrade) = upgrade.ok().filter(|_| connection_idx >= stand_in.n_refusals) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    };
    upgrade.on_upgrade(move |socket| serve_socket(stand_in, socket, connection_idx))
}

async fn serve_socket(stand_in: StandIn, mut socket: WebSocket, connection_idx: usize) {
    let Some(Ok(Message::Text(subscribe))) = socket.recv().await else { return };
    stand_in.subscriptions.lock().unwrap().push(subscribe.to_string());
    if connection_idx == stand_in.n_refusals {
        for (_, status) in stand_in.streamed_first.iter() {
            socket.send(Message::text(frame("update", status))).await.unwrap();
        }
        // Mastodon's documented in-band error, and a frame cut short.
        let error = testdata("mastodon/docs-examples/websocket-error-unknown-stream.json");
        socket.send(Message::text(error.trim().to_owned())).await.unwrap();
        socket.send(Message::text(r#"{"stream":["public"],"event":"update","payload":"{\"id\":"#)).await.unwrap();
        // Dropped without a close frame: the connection just ends.
        return;
    }
    for (_, status) in stand_in.streamed_after.iter() {
        socket.send(Message::text(frame("update", status))).await.unwrap();
    }
    let delete = testdata("mastodon/docs-examples/websocket-delete-public.json");
    socket.send(Message::text(delete.trim().to_owned())).await.unwrap();
    socket.send(Message::text(frame("delete", "117024236332527350"))).await.unwrap();
    std::future::pending::<()>().await;
}

/// `GET /api/v1/timelines/public`: what exists now (the first and gap
/// statuses) newer than `min_id`, oldest `limit` of them, newest first,
/// with Mastodon's `Link` header.
async fn timeline(State(stand_in): State<StandIn>, Query(query): Query<HashMap<String, String>>) -> Response {
    stand_in.timeline_queries.lock().unwrap().push(query.clone());
    let min_id = query.get("min_id").cloned().unwrap_or_default();
    let limit: usize = query.get("limit").and_then(|limit| limit.parse().ok()).unwrap_or(20);
    let mut page: Vec<&(String, String)> = stand_in
        .streamed_first
        .iter()
        .chain(stand_in.gap.iter())
        .filter(|(id, _)| compare_status_ids(id, &min_id).is_gt())
        .take(limit)
        .collect();
    page.reverse();
    let mut response = Response::new(Body::from(format!(
        "[{}]",
        page.iter().map(|(_, status)| status.as_str()).collect::<Vec<_>>().join(",")
    )));
    if let (Some(newest), Some(oldest)) = (page.first(), page.last()) {
        let base = &stand_in.base_url;
        let link = format!(
            "<{base}/api/v1/timelines/public?limit={limit}&max_id={}>; rel=\"next\", <{base}/api/v1/timelines/public?limit={limit}&min_id={}>; rel=\"prev\"",
            oldest.0, newest.0
        );
        response.headers_mut().insert(header::LINK, link.parse().unwrap());
    }
    response.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    response
}

async fn instance(State(stand_in): State<StandIn>) -> Response {
    let streaming = stand_in.base_url.replace("http://", "ws://");
    axum::Json(json!({ "uri": "stand-in", "urls": { "streaming_api": streaming } })).into_response()
}

/// `GET /api/v1/streaming/public` as server-sent events: the recording
/// of this connection, in 100-byte chunks, then the end of the stream
/// (the last recording is held open).
async fn sse(State(stand_in): State<StandIn>, headers: HeaderMap) -> Response {
    assert_eq!(headers.get("accept").unwrap(), "text/event-stream");
    let connection_idx = stand_in.n_connections.fetch_add(1, Ordering::SeqCst);
    let files = &stand_in.sse_files;
    let text = testdata(files[connection_idx.min(files.len() - 1)]);
    let chunks: Vec<Result<Bytes, Infallible>> =
        text.as_bytes().chunks(100).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
    let chunks = futures::stream::iter(chunks);
    let body = if connection_idx + 1 >= files.len() {
        Body::from_stream(chunks.chain(futures::stream::pending()))
    } else {
        Body::from_stream(chunks)
    };
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

async fn serve(mut stand_in: StandIn, sse_only: bool) -> StandIn {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    stand_in.base_url = format!("http://{}", listener.local_addr().unwrap());
    let streaming = if sse_only {
        get(|| async { (StatusCode::BAD_REQUEST, testdata("mastodon/docs-examples/http-error-unknown-channel.json")) })
    } else {
        get(websocket)
    };
    let app = Router::new()
        .route("/api/v1/streaming", streaming)
        .route("/api/v1/streaming/public", get(sse))
        .route("/api/v1/timelines/public", get(timeline))
        .route("/api/v1/instance", get(instance))
        .with_state(stand_in.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    stand_in
}

fn stand_in(pool: &[(String, String)], n_refusals: usize, sse_files: Vec<&'static str>) -> StandIn {
    StandIn {
        base_url: String::new(),
        streamed_first: Arc::new(pool[..3].to_vec()),
        gap: Arc::new(pool[3..7].to_vec()),
        streamed_after: Arc::new(pool[7..].to_vec()),
        n_connections: Arc::default(),
        n_refusals,
        subscriptions: Arc::default(),
        timeline_queries: Arc::default(),
        sse_files: Arc::new(sse_files),
    }
}

/// The status ids in a record: a streamed `update`, or a backfilled status.
fn status_id(record: &RawRecord) -> Option<String> {
    let value: Value = serde_json::from_str(&record.payload).ok()?;
    if value.get("event").is_some() {
        if value["event"] != "update" {
            return None;
        }
        let status: Value = serde_json::from_str(value["payload"].as_str()?).ok()?;
        return Some(status["id"].as_str()?.to_owned());
    }
    Some(value["id"].as_str()?.to_owned())
}

#[tokio::test]
async fn websocket_reconnects_backfill_the_gap_and_every_status_arrives_once() {
    let pool = status_pool();
    assert_eq!(pool.len(), 10);
    let stand_in = serve(stand_in(&pool, 3, Vec::new()), false).await;
    let sleep = RecordingSleep::default();
    let health = SourceHealth::new();
    let mut config = MastodonConfig::new(&stand_in.base_url);
    config.token = Some("mastodon-token".to_owned());
    config.transport = MastodonTransport::WebSocket;
    config.backfill_page_size = 2;
    config.sleep = Arc::new(sleep.clone());
    config.health = health.clone();
    let name = format!("mastodon:{}", stand_in.base_url);
    let mut running = start(Box::new(MastodonSource::new(&name, config)), None);
    let records = running
        .collect_until(|records| records.iter().filter(|record| record.payload.contains("\"delete\"")).count() == 2)
        .await;
    let status = health.snapshot().remove(0);
    running.stop().await;

    // Every status exactly once: streamed, backfilled, streamed.
    let ids: Vec<String> = records.iter().filter_map(status_id).collect();
    let expected: Vec<String> = pool.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, expected);

    // The backfill started at the last id streamed before the drop and
    // followed the Link header's newer pages until a short page.
    let queries = stand_in.timeline_queries.lock().unwrap().clone();
    let min_ids: Vec<&str> = queries.iter().map(|query| query["min_id"].as_str()).collect();
    assert_eq!(min_ids, [pool[2].0.as_str(), pool[4].0.as_str(), pool[6].0.as_str()]);
    assert!(queries.iter().all(|query| query["limit"] == "2"));

    // Each record's checkpoint is the newest status id so far.
    let last = records.last().unwrap();
    assert_eq!(last.origin.checkpoint.as_deref(), Some(pool[9].0.as_str()));
    assert!(records.iter().all(|record| record.key == name));

    // The malformed frame travels on for the processor to count; the
    // in-band error does not.
    assert!(records.iter().any(|record| record.payload.ends_with(r#""payload":"{\"id\":"#)));
    assert!(!records.iter().any(|record| record.payload.contains("Unknown stream type")));
    assert!(status.last_error.is_some());

    // Deletes pass through, and the parser turns the one for a status it
    // saw into a delete of that status' uri.
    let mut parser = ingest::Parser::new();
    let mut deleted = Vec::new();
    for record in &records {
        if let Ok(events) = parser.parse(record) {
            for event in events {
                if let PostEvent::Delete { id } = event {
                    deleted.push(id);
                }
            }
        }
    }
    assert_eq!(deleted, ["http://localhost:3000/ap/users/117020617404561855/statuses/117024236332527350"]);

    // Three refused handshakes: 1 s, 2 s, 4 s less jitter; then the drop
    // after a connection that delivered starts over at 1 s.
    assert!(within_jitter(&sleep.delays(), &[1000, 2000, 4000, 1000], 0.5), "{:?}", sleep.delays());
    assert_eq!(stand_in.subscriptions.lock().unwrap().clone(), [r#"{"stream":"public","type":"subscribe"}"#; 2]);
    assert_eq!((status.connects, status.reconnects), (2, 4));
    assert!(status.connected);
}

#[tokio::test]
async fn sse_fallback_replays_the_recorded_streams_and_a_restart_backfills_from_the_checkpoint() {
    let pool = status_pool();
    let stand_in = serve(
        stand_in(&pool, 0, vec!["mastodon/mastodon-py/stream-user.sse", "mastodon/docs-examples/sse-public.sse"]),
        true,
    )
    .await;
    let sleep = RecordingSleep::default();
    let health = SourceHealth::new();
    let mut config = MastodonConfig::new(&stand_in.base_url);
    config.sleep = Arc::new(sleep.clone());
    config.health = health.clone();
    config.stall_timeout = Duration::from_secs(5);
    let saved = pool[1].0.clone();
    let mut running = start(Box::new(MastodonSource::new("mastodon:stand-in", config)), Some(saved.clone()));
    let recorded: Vec<(String, String)> = sse_events("mastodon/mastodon-py/stream-user.sse")
        .into_iter()
        .chain(sse_events("mastodon/docs-examples/sse-public.sse"))
        .collect();
    let n_backfilled_first = 5; // pool[2..7], newer than the saved id
    let records = running
        .collect_until(|records| {
            records.iter().filter(|record| record.payload.starts_with("{\"event\"")).count() == recorded.len()
        })
        .await;
    let queries = stand_in.timeline_queries.lock().unwrap().clone();
    running.stop().await;

    // The restart backfilled from the saved id; the reconnect after the
    // first event stream ended backfilled from the newest id it streamed.
    let newest_streamed = sse_events("mastodon/mastodon-py/stream-user.sse")
        .iter()
        .filter(|(event, _)| event == "update")
        .map(|(_, data)| serde_json::from_str::<Value>(data).unwrap()["id"].as_str().unwrap().to_owned())
        .max_by(|left, right| compare_status_ids(left, right))
        .unwrap();
    assert_eq!(queries[0]["min_id"], saved);
    assert_eq!(queries.last().unwrap()["min_id"], newest_streamed);
    let backfilled: BTreeSet<String> =
        records.iter().filter(|record| !record.payload.starts_with("{\"event\"")).filter_map(status_id).collect();
    assert_eq!(backfilled.len(), n_backfilled_first);

    // Each recorded event arrives once, in order, as a frame the parser reads.
    let frames: Vec<(String, String)> = records
        .iter()
        .filter(|record| record.payload.starts_with("{\"event\""))
        .map(|record| {
            let value: Value = serde_json::from_str(&record.payload).unwrap();
            (value["event"].as_str().unwrap().to_owned(), value["payload"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(frames, recorded);
    let mut parser = ingest::Parser::new();
    let mut n_upserts = 0;
    for record in &records {
        n_upserts += parser.parse(record).unwrap().iter().filter(|event| matches!(event, PostEvent::Upsert(_))).count();
    }
    assert_eq!(n_upserts, n_backfilled_first + 2 + 1 + 1 + 1);
    assert_eq!(sleep.delays().len(), 1);
}
