//! The live stream: `POST /api/stream/ticket` and `GET /api/stream?ticket=T`.
//!
//! A browser cannot send an `Authorization` header on a WebSocket, so a
//! socket is opened with a single-use ticket that expires within seconds.
//! One task reads client messages; one writer task drains the connection's
//! bounded queue (see `feed::hub`), sends pings and resync signals.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};

use crate::errors::QueryParams;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use feed::{ConnectionId, DirectSender, Outbound};
use futures::{SinkExt, StreamExt};
use model::Cursor;
use serde::Deserialize;
use store_api::{Range, Reader};
use trends::Window;

use crate::{ApiError, AppState};

/// Who a redeemed ticket belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketGrant {
    /// The signed-in user, or `None` for an anonymous visitor.
    pub user_id: Option<String>,
}

/// Redeems single-use stream tickets. The accounts role issues them
/// (`POST /api/stream/ticket`) and keeps them in memory or Redis, so any
/// feed node can redeem a ticket any gateway issued.
#[async_trait::async_trait]
pub trait Tickets: Send + Sync {
    /// Uses a ticket up; `None` if unknown, used or expired.
    async fn redeem(&self, ticket: &str) -> Option<TicketGrant>;
}

#[derive(Deserialize)]
pub struct StreamParams {
    ticket: Option<String>,
}

/// Whether a browser `Origin` may open a socket. Non-browser clients send none.
pub(crate) fn origin_allowed(allowed_origins: &[String], headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let origin = origin.to_str().unwrap_or("");
            allowed_origins.iter().any(|allowed| allowed == origin || allowed == "*")
        }
    }
}

/// Counts a client's open sockets; the slot is freed when dropped.
struct IpSlot {
    state: AppState,
    ip: String,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.state.connections_per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    QueryParams(params): QueryParams<StreamParams>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The real client (behind `deck gateway` or another trusted proxy), IPv6 by /64.
    let client = api::client::client_ip(peer.ip(), &headers, &state.config.trusted_proxies);
    let client_key = api::client::rate_key_for_ip(client);
    if !origin_allowed(&state.config.allowed_origins, &headers) {
        return ApiError::Forbidden("origin not allowed").into_response();
    }
    let Some(ticket) = params.ticket else {
        return ApiError::Unauthorized("a stream ticket is required").into_response();
    };
    let Some(grant) = state.tickets.redeem(&ticket).await else {
        return ApiError::Unauthorized("unknown, used or expired ticket").into_response();
    };
    let slot = {
        let mut counts = state.connections_per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(client_key.clone()).or_insert(0);
        if *count >= state.config.max_connections_per_ip {
            return ApiError::TooManyRequests { retry_after_secs: 5 }.into_response();
        }
        *count += 1;
        IpSlot { state: state.clone(), ip: client_key.clone() }
    };
    let max_message = state.config.max_message_bytes;
    upgrade
        // Small buffers: an idle socket should cost a few KiB, not tungstenite's 128 KiB default.
        // Writes gather up to WRITE_BUFFER_BYTES before they go out, and the
        // writer flushes after each batch it drains from the queue.
        // Client messages are small (subscribe, ping); the read buffer grows
        // for a larger one, up to `max_message`, and 1 KiB saves 3 KiB per idle socket.
        .read_buffer_size(1024)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| {
            // The connection runs in a task of its own, from the socket's two halves,
            // and the task axum runs this callback in ends at once: a task's memory is
            // its largest state for as long as it lives, and axum's holds the upgrade's.
            // With the rare paths below boxed too, an idle socket's reader task is
            // 936 bytes instead of 4,104 (`BENCHMARKS.md`, idle memory).
            let (sink, incoming) = socket.split();
            tokio::spawn(async move {
                run_connection(state, sink, incoming, grant, client_key).await;
                drop(slot);
            });
            std::future::ready(())
        })
}

fn error_frame(code: &str, message: String, column: Option<String>, position: Option<usize>) -> String {
    serde_json::to_string(&api::ServerMessage::Error { code: code.into(), message, column, position })
        .unwrap_or_default()
}

async fn run_connection(
    state: AppState,
    sink: futures::stream::SplitSink<WebSocket, Message>,
    mut incoming: futures::stream::SplitStream<WebSocket>,
    grant: TicketGrant,
    client_key: String,
) {
    // Messages are counted per user when the ticket names one, else per address.
    let bucket_key = match &grant.user_id {
        Some(user) => format!("user:{user}"),
        None => format!("ip:{client_key}"),
    };
    // Catch-up reads share the store's read slots as this client.
    let reader = Reader::new(bucket_key.clone());
    let (connection, outbound_rx, signals) = state.hub.connect();
    let Some(outbound) = state.hub.sender(connection) else {
        return;
    };
    state.metrics.sockets_open.inc();
    tracing::debug!(connection, user = ?grant.user_id, "stream opened");
    let (trends_tx, trends_rx) = tokio::sync::watch::channel::<Option<Window>>(None);
    let writer = tokio::spawn(write_loop(state.clone(), sink, outbound_rx, signals, trends_rx));

    let mut last_seen = Instant::now();
    let idle_timeout = state.config.idle_timeout;
    loop {
        let message = match tokio::time::timeout(idle_timeout, incoming.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(_)) | None) => break,
            Err(_) if last_seen.elapsed() >= idle_timeout => break,
            Err(_) => continue,
        };
        last_seen = Instant::now();
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let frame = error_frame("bad_message", "binary frames are not supported".into(), None, None);
                Box::pin(outbound.send(frame)).await;
                continue;
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if let Err(wait) = state.stream_message_buckets.take(&bucket_key, Instant::now()) {
            let seconds = crate::ratelimit::retry_after_secs(wait);
            let message = format!("too many messages; the message was dropped; retry in {seconds} s");
            let frame = error_frame("rate_limited", message, None, None);
            Box::pin(outbound.send(frame)).await;
            continue;
        }
        // Boxed, as the error sends above: handling a message (a subscribe's
        // catch-up reads) needs a large future, which inline would be part of
        // every idle socket's task for its whole life.
        Box::pin(handle_message(&state, &reader, connection, &outbound, &trends_tx, text.as_str())).await;
    }
    state.hub.disconnect(connection);
    writer.abort();
    state.metrics.sockets_open.dec();
}

async fn handle_message(
    state: &AppState,
    reader: &Reader,
    connection: ConnectionId,
    outbound: &DirectSender,
    trends_tx: &tokio::sync::watch::Sender<Option<Window>>,
    text: &str,
) {
    let send = |frame: String| async move {
        outbound.send(frame).await;
    };
    let message: api::ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(error) => {
            let code = if serde_json::from_str::<serde_json::Value>(text).is_ok() { "bad_message" } else { "bad_json" };
            send(error_frame(code, error.to_string(), None, None)).await;
            return;
        }
    };
    match message {
        api::ClientMessage::Subscribe { column, q, since } => {
            subscribe(state, reader, connection, outbound, column, q, since).await;
        }
        api::ClientMessage::Unsubscribe { column } => state.hub.unsubscribe(connection, &column),
        api::ClientMessage::SubscribeTrends { window } => {
            let window_text = window.unwrap_or_else(|| "1h".into());
            match Window::parse(&window_text) {
                Some(window) => {
                    let _ = trends_tx.send(Some(window));
                    if let Ok(trends) = crate::trends_routes::ranking(state, window).await
                        && let Ok(frame) = serde_json::to_string(&api::ServerMessage::Trends { trends })
                    {
                        send(frame).await;
                    }
                }
                None => {
                    send(error_frame("bad_window", format!("unknown window `{window_text}`"), None, None)).await;
                }
            }
        }
        api::ClientMessage::UnsubscribeTrends => {
            let _ = trends_tx.send(None);
        }
        api::ClientMessage::Ping => {
            send(serde_json::to_string(&api::ServerMessage::Pong).unwrap_or_default()).await;
        }
    }
}

async fn subscribe(
    state: &AppState,
    reader: &Reader,
    connection: ConnectionId,
    outbound: &DirectSender,
    column: String,
    q: String,
    since: Option<String>,
) {
    let send = |frame: String| async move {
        outbound.send(frame).await;
    };
    if column.is_empty() || column.len() > 128 {
        send(error_frame("bad_column", "column ids are 1 to 128 bytes".into(), None, None)).await;
        return;
    }
    let query = match search::Query::parse(&q) {
        Ok(query) => query,
        Err(error) => {
            send(error_frame("bad_query", error.message.clone(), Some(column), Some(error.position))).await;
            return;
        }
    };
    if state.config.live_needs_positive_term && matches!(query.plan(), search::Plan::All) {
        let message = "a live column needs at least one search term that is not negated in every alternative \
                       (a word, #tag, @user, from:, lang:, …)"
            .to_owned();
        send(error_frame("needs_positive_term", message, Some(column), Some(0))).await;
        return;
    }
    let since = match since.as_deref().filter(|since| !since.is_empty()).map(Cursor::decode) {
        None => None,
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(_)) => {
            send(error_frame("bad_cursor", "`since` is not a cursor this server made".into(), Some(column), None))
                .await;
            return;
        }
    };
    let replacing = state.hub.has_column(connection, &column);
    if !replacing && state.hub.n_columns_of(connection) >= state.config.max_columns_per_connection {
        let message = format!("at most {} columns per connection", state.config.max_columns_per_connection);
        send(error_frame("too_many_columns", message, Some(column), None)).await;
        return;
    }
    if state.hub.subscribe(connection, &column, query.clone(), since.clone()).is_err() {
        return;
    }
    send(serde_json::to_string(&api::ServerMessage::Subscribed { column: column.clone() }).unwrap_or_default()).await;
    let Some(since) = since else {
        return;
    };

    // A `since` older than what the store keeps cannot be caught up from.
    if state.store.horizon_ms().is_some_and(|horizon_ms| since.created_ms() < horizon_ms) {
        state.hub.resync(connection, &column);
        return;
    }

    // Catch-up: every stored post after `since`, oldest first, then the live
    // ones buffered meanwhile (the hub skips those already sent). Bounded in
    // posts and in store reads (each read within the store's work budget):
    // past either, the column resyncs. The store work it took is charged to
    // the client's message bucket, as a timeline read's is to its bucket.
    let mut charge = WorkCharge { state, key: reader.key(), units: 0 };
    let mut caught_up = Vec::new();
    let mut range = Range { before: None, after: Some(since.clone()) };
    let mut n_reads = 0usize;
    loop {
        n_reads += 1;
        if n_reads > state.config.max_catch_up_reads {
            state.hub.resync(connection, &column);
            return;
        }
        let page = match state.store.timeline(reader, &query, range.clone(), 200).await {
            Ok(page) => {
                charge.units += page.work;
                page
            }
            Err(error) => {
                tracing::warn!(%error, "catch-up read failed");
                state.hub.resync(connection, &column);
                return;
            }
        };
        caught_up.extend(page.posts);
        if caught_up.len() > state.config.max_catch_up_posts {
            state.hub.resync(connection, &column);
            return;
        }
        match page.next {
            Some(next) => range.before = Some(next),
            None => break,
        }
    }
    let mut already_sent = HashSet::with_capacity(caught_up.len() + RESUME_KNOWN_POSTS + 1);
    for post in caught_up.iter().rev() {
        already_sent.insert(post.post.id.clone());
        send(feed::hub::post_frame(&column, post)).await;
    }
    // The posts up to `since` that were stored before this resume: the
    // client has them (it came from a node that sent them). A feed node
    // lagging behind that one would deliver them live again. A post stored
    // later with an earlier time (a backdated one) is not among them, and
    // still goes live.
    already_sent.insert(since.id().to_owned());
    let before_since = Range { before: Some(since), after: None };
    if let Ok(page) = state.store.timeline(reader, &query, before_since, RESUME_KNOWN_POSTS).await {
        charge.units += page.work;
        already_sent.extend(page.posts.into_iter().map(|post| post.post.id));
    }
    state.hub.finish_catch_up(connection, &column, &already_sent);
    send(serde_json::to_string(&api::ServerMessage::CaughtUp { column }).unwrap_or_default()).await;
}

/// Charges the store work of a catch-up to the client's message bucket
/// when the catch-up ends, however it ends: one token per
/// `timeline_work_per_token` units past the first such share.
struct WorkCharge<'a> {
    state: &'a AppState,
    key: &'a str,
    units: usize,
}

impl Drop for WorkCharge<'_> {
    fn drop(&mut self) {
        let tokens = crate::ratelimit::work_tokens(self.units, self.state.config.timeline_work_per_token);
        self.state.stream_message_buckets.charge(self.key, tokens, Instant::now());
    }
}

/// Posts at or before a resume's `since` that a column will not send live
/// again (the newest of them).
const RESUME_KNOWN_POSTS: usize = 200;

/// Bytes of frames gathered before a write goes out (also the most a busy
/// socket's write buffer keeps allocated).
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// Most queued frames written before one flush.
const WRITE_BATCH_FRAMES: u64 = 256;

async fn write_loop(
    state: AppState,
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut outbound_rx: tokio::sync::mpsc::Receiver<Outbound>,
    signals: Arc<feed::hub::Signals>,
    mut trends_rx: tokio::sync::watch::Receiver<Option<Window>>,
) {
    let mut ping = tokio::time::interval(state.config.ping_interval);
    ping.tick().await;
    let mut trend_frames: Option<tokio::sync::watch::Receiver<_>> = None;
    loop {
        let frame: Utf8Bytes = tokio::select! {
            outbound = outbound_rx.recv() => match outbound {
                Some(first) => {
                    // A socket that is behind has several frames waiting:
                    // they go out together, flushed once.
                    let mut next = Some(first);
                    let mut n_frames = 0;
                    let mut failed = false;
                    while let Some(outbound) = next.take() {
                        signals.sent(outbound.budget_len());
                        if let Ok(text) = Utf8Bytes::try_from(outbound.into_text()) {
                            failed = sink.feed(Message::Text(text)).await.is_err();
                            n_frames += 1;
                        }
                        if !failed && n_frames < WRITE_BATCH_FRAMES {
                            next = outbound_rx.try_recv().ok();
                        }
                    }
                    if failed || sink.flush().await.is_err() {
                        break;
                    }
                    state.metrics.frames_sent.inc_by(n_frames);
                    continue;
                }
                None => break,
            },
            () = signals.wake.notified() => {
                let columns: Vec<String> = std::mem::take(
                    &mut *signals.resyncs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
                );
                let mut failed = false;
                for column in columns {
                    state.metrics.resyncs.inc();
                    let frame = serde_json::to_string(&api::ServerMessage::Resync { column }).unwrap_or_default();
                    failed |= sink.feed(Message::Text(frame.into())).await.is_err();
                }
                if failed || sink.flush().await.is_err() {
                    break;
                }
                continue;
            }
            changed = trends_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let window = *trends_rx.borrow_and_update();
                trend_frames = window.map(|window| {
                    let mut frames = state.trend_frames.watch(window);
                    frames.mark_unchanged();
                    frames
                });
                continue;
            }
            Some(frame) = next_trend_frame(&mut trend_frames) => frame.into(),
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
                continue;
            }
        };
        if sink.send(Message::Text(frame)).await.is_err() {
            break;
        }
        state.metrics.frames_sent.inc();
    }
    let _ = sink.close().await;
}

async fn next_trend_frame(
    frames: &mut Option<tokio::sync::watch::Receiver<Option<Arc<crate::trends_routes::TrendFrame>>>>,
) -> Option<String> {
    let frames = frames.as_mut()?;
    frames.changed().await.ok()?;
    frames.borrow_and_update().as_ref().map(|frame| frame.frame.to_string())
}
