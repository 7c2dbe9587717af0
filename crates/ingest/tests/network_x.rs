//! The X filtered-stream source and rules manager against a stand-in X API
//! of our own (axum on 127.0.0.1) that streams the recorded twarc capture
//! as newline-delimited JSON, with keep-alives, 503s, 429s, an operational
//! disconnect, a message cut off by the disconnect, a malformed line and
//! stalls.

// A panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod network_support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use ingest::{SourceHealth, X_RULE_TAG, XConfig, XRules, XRulesLimits, XSource};
use network_support::{RecordingSleep, eventually, start, testdata};
use serde_json::{Value, json};

const OPERATIONAL_DISCONNECT: &str = r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}"#;

/// A stream request's query and `Authorization` header.
type StreamRequest = (HashMap<String, String>, Option<String>);

#[derive(Clone)]
struct StreamState {
    lines: Arc<Vec<String>>,
    n_connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<StreamRequest>>>,
}

/// A streaming body of these chunks; open forever afterwards if `hold`.
fn body(chunks: Vec<String>, hold: bool) -> Body {
    let chunks = futures::stream::iter(chunks.into_iter().map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk))));
    if hold { Body::from_stream(chunks.chain(futures::stream::pending())) } else { Body::from_stream(chunks) }
}

async fn stream(
    State(state): State<StreamState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers.get("authorization").map(|value| value.to_str().unwrap().to_owned());
    state.requests.lock().unwrap().push((query, authorization));
    let lines = &state.lines;
    match state.n_connections.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => (StatusCode::SERVICE_UNAVAILABLE, r#"{"title":"Service Unavailable"}"#).into_response(),
        2 | 3 => (StatusCode::TOO_MANY_REQUESTS, r#"{"title":"Too Many Requests"}"#).into_response(),
        4 => {
            // A keep-alive, three messages (one split across chunks), then
            // an operational disconnect; X closes after it, but the stand-in
            // holds the connection to show that the source leaves itself.
            let (head, tail) = lines[1].split_at(40);
            let chunks = vec![
                "\r\n".to_owned(),
                format!("{}\r\n", lines[0]),
                head.to_owned(),
                format!("{tail}\r\n\r\n"),
                format!("{}\r\n", lines[2]),
                format!("{OPERATIONAL_DISCONNECT}\r\n"),
            ];
            Response::new(body(chunks, true))
        }
        5 => {
            // Four messages, a malformed line, then the recording's last,
            // truncated line as the stream breaks off.
            let mut chunks: Vec<String> = lines[3..7].iter().map(|line| format!("{line}\r\n")).collect();
            chunks.insert(2, "this is not json\r\n".to_owned());
            chunks.push(lines[7].clone());
            Response::new(body(chunks, false))
        }
        // Stalls: a 200 and then nothing at all.
        6 | 7 => Response::new(body(Vec::new(), true)),
        _ => Response::new(body(vec!["\r\n".to_owned()], true)),
    }
}

#[tokio::test]
async fn stream_delivers_every_message_once_and_backs_off_as_x_documents() {
    let recording = testdata("tweets/v2/twarc-csv-streaming_output_with_error.jsonl");
    let lines: Vec<String> = recording.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 8, "seven messages and a truncated one");
    let state = StreamState {
        lines: Arc::new(lines.clone()),
        n_connections: Arc::new(AtomicUsize::new(0)),
        requests: Arc::default(),
    };
    let app = Router::new().route("/2/tweets/search/stream", get(stream)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sleep = RecordingSleep::default();
    let health = SourceHealth::new();
    let mut config = XConfig::new(&base_url, "test-token");
    config.stall_timeout = Duration::from_millis(300);
    config.sleep = Arc::new(sleep.clone());
    config.health = health.clone();
    let mut running = start(Box::new(XSource::new("x", config)), None);
    let records = running.collect_until(|records| records.len() == 8).await;
    eventually(|| state.n_connections.load(Ordering::SeqCst) >= 9).await;
    // The server counts a connection when it answers; the source counts it
    // once it has read the answer's head, a moment later: wait for both.
    eventually(|| health.snapshot().first().is_some_and(|status| status.connects >= 5)).await;
    let status = health.snapshot().remove(0);
    running.stop().await;

    // Every complete message exactly once, in order, the malformed line
    // handed on for the processor to count; the operational disconnect and
    // the cut-off message are not records.
    let payloads: Vec<&str> = records.iter().map(|record| record.payload.as_str()).collect();
    let mut expected: Vec<&str> = lines[..7].iter().map(String::as_str).collect();
    expected.insert(5, "this is not json");
    assert_eq!(payloads, expected);
    for (record, line) in records.iter().zip(&expected) {
        if let Ok(message) = serde_json::from_str::<Value>(line) {
            assert_eq!(record.key, message["data"]["id"].as_str().unwrap());
        }
        assert_eq!(record.origin.checkpoint, None);
    }

    // 503, 503: HTTP errors, doubling from 5 s. 429, 429: from a minute.
    // Then network errors (the disconnect notice, the broken stream, two
    // stalls): linear from 250 ms, starting over whenever bytes arrived.
    let ms = |values: &[u64]| values.iter().map(|value| Duration::from_millis(*value)).collect::<Vec<_>>();
    assert_eq!(sleep.delays()[..8], ms(&[5_000, 10_000, 60_000, 120_000, 250, 250, 500, 750])[..]);

    // Every request asked for what Deck needs, with the bearer token.
    let requests = state.requests.lock().unwrap().clone();
    for (query, authorization) in &requests {
        assert_eq!(authorization.as_deref(), Some("Bearer test-token"));
        assert!(query["expansions"].contains("referenced_tweets.id.author_id"));
        assert!(query["expansions"].contains("attachments.media_keys"));
        assert!(query["tweet.fields"].contains("public_metrics"));
        assert!(query["tweet.fields"].contains("note_tweet"));
        assert_eq!(query["user.fields"], "username,name");
    }
    assert_eq!(status.records, 8);
    assert_eq!(status.malformed_frames, 1, "the cut-off message");
    assert_eq!(status.connects, 5);
    assert!(status.reconnects >= 8);
}

#[derive(Clone, Default)]
struct RulesState {
    rules: Arc<Mutex<Vec<Value>>>,
    next_id: Arc<AtomicUsize>,
    posts: Arc<Mutex<Vec<Value>>>,
}

async fn list_rules(State(state): State<RulesState>) -> Response {
    let rules = state.rules.lock().unwrap().clone();
    let body = if rules.is_empty() {
        json!({ "meta": { "result_count": 0 } })
    } else {
        json!({ "data": rules, "meta": { "result_count": rules.len() } })
    };
    axum::Json(body).into_response()
}

async fn change_rules(State(state): State<RulesState>, axum::Json(change): axum::Json<Value>) -> Response {
    state.posts.lock().unwrap().push(change.clone());
    let mut rules = state.rules.lock().unwrap();
    if let Some(ids) = change["delete"]["ids"].as_array() {
        let before = rules.len();
        rules.retain(|rule| !ids.contains(&rule["id"]));
        let deleted = before - rules.len();
        return axum::Json(
            json!({ "meta": { "summary": { "deleted": deleted, "not_deleted": ids.len() - deleted } } }),
        )
        .into_response();
    }
    let adds = change["add"].as_array().cloned().unwrap_or_default();
    if adds.len() > 100 {
        return (StatusCode::BAD_REQUEST, "too many rules in one request").into_response();
    }
    let (mut created, mut errors) = (Vec::new(), Vec::new());
    for add in adds {
        if rules.iter().any(|rule| rule["value"] == add["value"]) || add["value"] == "from:" {
            errors.push(json!({ "value": add["value"], "title": "DuplicateRule", "type": "https://api.twitter.com/2/problems/duplicate-rules" }));
            continue;
        }
        let id = state.next_id.fetch_add(1, Ordering::SeqCst).to_string();
        let rule = json!({ "id": id, "value": add["value"], "tag": add["tag"] });
        rules.push(rule.clone());
        created.push(rule);
    }
    let n_created = created.len();
    (StatusCode::CREATED, axum::Json(json!({ "data": created, "errors": errors, "meta": { "summary": { "created": n_created, "not_created": errors.len() } } }))).into_response()
}

#[tokio::test]
async fn rules_sync_adds_and_deletes_in_batches_within_limits() {
    let state = RulesState {
        rules: Arc::new(Mutex::new(vec![
            json!({ "id": "1", "value": "someone else's rule", "tag": "other-app" }),
            json!({ "id": "2", "value": "#BTS", "tag": X_RULE_TAG }),
            json!({ "id": "3", "value": "closed column", "tag": X_RULE_TAG }),
        ])),
        next_id: Arc::new(AtomicUsize::new(100)),
        posts: Arc::default(),
    };
    let app = Router::new()
        .route("/2/tweets/search/stream/rules", get(list_rules).post(change_rules))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let rules = XRules::new(&base_url, "test-token").unwrap().with_limits(XRulesLimits {
        max_rules: 250,
        max_rule_chars: 512,
        batch: 100,
    });
    let mut desired: Vec<String> = (0..250).map(|n| format!("keyword{n} lang:ko")).collect();
    desired.push("#BTS".to_owned());
    desired.push("#BTS".to_owned());
    desired.push("x".repeat(513));
    let outcome = rules.sync(&desired).await.unwrap();

    assert_eq!(outcome.deleted, 1, "the closed column's rule");
    // 250 rules fit beside the other app's rule and #BTS only up to 248.
    assert_eq!(outcome.added, 248);
    assert_eq!(outcome.rejected.len(), 3, "{:?}", outcome.rejected);
    assert!(outcome.rejected.iter().any(|(rule, reason)| rule.len() == 513 && reason.contains("512")));
    assert_eq!(outcome.rejected.iter().filter(|(_, reason)| reason.contains("250 rules")).count(), 2);
    let posts = state.posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1 + 3, "one delete, three add batches");
    assert!(posts.iter().all(|post| post["add"].as_array().is_none_or(|adds| adds.len() <= 100)));
    let now = rules.list().await.unwrap();
    assert_eq!(now.len(), 250);
    assert!(now.iter().any(|rule| rule.tag.as_deref() == Some("other-app")));
    assert!(!now.iter().any(|rule| rule.value == "closed column"));
    // Syncing again changes nothing.
    let again = rules.sync(&desired).await.unwrap();
    assert_eq!((again.added, again.deleted), (0, 0));
}
