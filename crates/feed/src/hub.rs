//! The hub: connections, their columns, and the fan-out of stored posts.
//!
//! Each connection has one bounded outbound queue. Publishing never waits on
//! a reader: a frame that does not fit drops that column (it leaves the
//! percolator) and queues a `resync` for it, which the connection's writer
//! sends as soon as it can. So a slow reader never slows ingest or other
//! readers, and its memory is bounded by the queue.
//!
//! Each post is serialized once per batch ([`PostBody`]) and shared by every
//! column it goes to; the writer adds the column id when it writes the frame
//! (`api::PostFrame`). The hub's lock is held only to match a batch against
//! the percolator; queueing the frames happens after it is released, so
//! subscribing never waits for a fan-out to finish. [`FanOut`] runs the
//! fan-out on a dedicated thread, never on an async runtime thread.
//!
//! A column subscribed with `since` starts in [`ColumnMode::Buffering`]: live
//! matches wait in the column while the connection sends the stored posts
//! after the cursor; [`Hub::finish_catch_up`] then sends the buffered frames
//! that the catch-up did not already carry and turns the column live, under
//! the column's lock, so nothing is lost or repeated at the seam.
//!
//! Every byte a connection has waiting counts against its budget and the
//! hub's: live frames in its queue, live frames buffered during a catch-up,
//! and the frames its own task queues ([`DirectSender`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use model::Applied;
use model::StoredPost;
use search::{Doc, Query};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::percolator::{Percolator, SubscriptionId};

pub type ConnectionId = u64;

/// Limits of the fan-out.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Frames a connection's queue can hold at all.
    pub queue_capacity: usize,
    /// Bytes of frames waiting per connection (queued or buffered during a
    /// catch-up) before a column that needs more is dropped: the memory a
    /// slow reader can cost.
    pub queue_bytes: usize,
    /// Bytes of frames waiting over all connections before a column that
    /// needs more is dropped: what many slow readers can cost together,
    /// whatever their number.
    pub total_queue_bytes: usize,
    /// Live frames a column may hold while it catches up.
    pub catch_up_buffer: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            queue_capacity: 8192,
            queue_bytes: 2 * 1024 * 1024,
            total_queue_bytes: 256 * 1024 * 1024,
            catch_up_buffer: 4096,
        }
    }
}

/// One post, serialized once and shared by every column it goes to.
#[derive(Debug)]
pub struct PostBody {
    pub post_id: String,
    pub cursor: String,
    pub json: String,
}

impl PostBody {
    pub fn new(post: &StoredPost) -> Option<PostBody> {
        let wire = api::Post::from(post);
        let json = api::PostFrame::post_json(&wire).ok()?;
        Some(PostBody { post_id: wire.id, cursor: wire.cursor, json })
    }

    /// The `post` frame for one column.
    pub fn frame(&self, column: &str) -> String {
        api::PostFrame { column, post_json: &self.json, cursor: &self.cursor }.to_text()
    }

    /// Bytes of the frame for `column` (within a few bytes of escaping).
    fn frame_len(&self, column: &str) -> usize {
        self.json.len() + self.cursor.len() + column.len() + POST_ENVELOPE_LEN
    }
}

/// `{"type":"post","column":"","post":,"cursor":""}`.
const POST_ENVELOPE_LEN: usize = 48;

/// What a connection's writer sends.
#[derive(Debug)]
pub enum Outbound {
    /// A live post for one column: the body is shared with every other
    /// column that receives it; the writer writes it with the column id.
    Post { column: Arc<str>, body: Arc<PostBody> },
    /// A live frame shared by every connection it goes to (deletes, counts).
    Shared(Bytes),
    /// A frame the connection's own task sends (acknowledgements, errors,
    /// catch-up), through its [`DirectSender`].
    Direct(String),
}

impl Outbound {
    /// Bytes this frame counts against the budgets until the writer calls
    /// [`Signals::sent`] with it.
    pub fn budget_len(&self) -> usize {
        match self {
            Outbound::Post { column, body } => body.frame_len(column),
            Outbound::Shared(frame) => frame.len(),
            Outbound::Direct(frame) => frame.len(),
        }
    }

    /// The frame's text, as it goes on the wire.
    pub fn into_text(self) -> Bytes {
        match self {
            Outbound::Post { column, body } => Bytes::from(body.frame(&column)),
            Outbound::Shared(frame) => frame,
            Outbound::Direct(frame) => Bytes::from(frame),
        }
    }
}

/// Where a column's live matches go.
pub enum ColumnMode {
    /// Catching up: live posts wait here.
    Buffering(Vec<Arc<PostBody>>),
    Live,
    /// Dropped (overflow) or removed; frames for it are no longer queued.
    Dropped,
}

/// What the fan-out needs of a connection, shared with its columns so that
/// frames are queued without the hub's lock.
struct Link {
    id: ConnectionId,
    outbound: mpsc::Sender<Outbound>,
    signals: Arc<Signals>,
}

struct Column {
    subscription: SubscriptionId,
    link: Arc<Link>,
    name: Arc<str>,
    mode: Mutex<ColumnMode>,
    /// For a resumed column: the ids of the posts its client already has
    /// (the catch-up's, and those stored up to `since` when it resumed). A
    /// feed node that lags behind the one the client came from delivers
    /// them live later; they are not sent again.
    resumed: Option<Mutex<HashSet<String>>>,
}

impl Column {
    /// Whether the client of this column already has this post.
    fn already_has(&self, body: &PostBody) -> bool {
        self.resumed
            .as_ref()
            .is_some_and(|known| known.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(&body.post_id))
    }

    fn mode(&self) -> std::sync::MutexGuard<'_, ColumnMode> {
        self.mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops queueing for this column and gives back the bytes of what it
    /// buffered; returns whether it was still active.
    fn retire(&self) -> bool {
        self.retire_locked(&mut self.mode())
    }

    fn retire_locked(&self, mode: &mut ColumnMode) -> bool {
        let was_active = !matches!(*mode, ColumnMode::Dropped);
        if let ColumnMode::Buffering(buffered) = &*mode {
            for body in buffered {
                self.link.signals.sent(body.frame_len(&self.name));
            }
        }
        *mode = ColumnMode::Dropped;
        was_active
    }
}

struct Connection {
    link: Arc<Link>,
    columns: HashMap<String, SubscriptionId>,
}

/// What a connection's writer shares with the fan-out: signals that cannot
/// be lost to a full queue, and the bytes waiting.
pub struct Signals {
    pub resyncs: Mutex<Vec<String>>,
    pub wake: Notify,
    /// Bytes of frames queued or buffered for this connection, not yet sent.
    queued_bytes: AtomicUsize,
    /// The same over every connection of the hub.
    total_bytes: Arc<AtomicUsize>,
}

impl Signals {
    /// The writer calls this once it has sent a frame, with its
    /// [`Outbound::budget_len`]; the hub, for frames it discards.
    pub fn sent(&self, frame_len: usize) {
        self.queued_bytes.fetch_sub(frame_len, Ordering::Relaxed);
        self.total_bytes.fetch_sub(frame_len, Ordering::Relaxed);
    }

    /// Bytes of frames waiting and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Counts `frame_len` more bytes if they fit this connection's budget
    /// and the hub's.
    fn charge(&self, frame_len: usize, config: &HubConfig) -> bool {
        if self.queued_bytes.load(Ordering::Relaxed) + frame_len > config.queue_bytes
            || self.total_bytes.load(Ordering::Relaxed) + frame_len > config.total_queue_bytes
        {
            return false;
        }
        self.charge_always(frame_len);
        true
    }

    fn charge_always(&self, frame_len: usize) {
        self.queued_bytes.fetch_add(frame_len, Ordering::Relaxed);
        self.total_bytes.fetch_add(frame_len, Ordering::Relaxed);
    }
}

impl Drop for Signals {
    /// Frames never sent (the connection closed) leave the hub's total with
    /// the last holder of the signals: by then nobody can call `sent`.
    fn drop(&mut self) {
        self.total_bytes.fetch_sub(*self.queued_bytes.get_mut(), Ordering::Relaxed);
    }
}

impl Link {
    /// Queues a live frame if it fits the connection's byte budget and the hub's.
    fn try_queue(&self, outbound: Outbound, config: &HubConfig) -> bool {
        let frame_len = outbound.budget_len();
        if !self.signals.charge(frame_len, config) {
            return false;
        }
        self.queue_charged(outbound)
    }

    /// Queues a frame whose bytes are already counted; gives them back if
    /// the queue is full.
    fn queue_charged(&self, outbound: Outbound) -> bool {
        let frame_len = outbound.budget_len();
        if self.outbound.try_send(outbound).is_err() {
            self.signals.sent(frame_len);
            return false;
        }
        true
    }
}

/// The sending end a connection's own task uses (acknowledgements, errors,
/// catch-up). It awaits room in the queue rather than dropping anything, and
/// what it queues counts in the connection's and the hub's byte budgets, so
/// a large catch-up leaves less room for live frames, not more memory.
#[derive(Clone)]
pub struct DirectSender {
    link: Arc<Link>,
}

impl DirectSender {
    /// Queues a frame; `false` if the connection's writer has gone.
    pub async fn send(&self, frame: String) -> bool {
        let frame_len = frame.len();
        self.link.signals.charge_always(frame_len);
        if self.link.outbound.send(Outbound::Direct(frame)).await.is_err() {
            self.link.signals.sent(frame_len);
            return false;
        }
        true
    }
}

#[derive(Default)]
struct State {
    percolator: Percolator,
    columns: HashMap<SubscriptionId, Arc<Column>>,
    connections: HashMap<ConnectionId, Connection>,
}

/// Connections, columns and the fan-out; shared by every connection task.
pub struct Hub {
    state: RwLock<State>,
    config: HubConfig,
    next_id: AtomicU64,
    /// Bytes of frames waiting over all connections.
    total_bytes: Arc<AtomicUsize>,
}

/// Why a subscription was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SubscribeError {
    UnknownConnection,
}

/// The `post` frame for one column, as the catch-up path sends it.
pub fn post_frame(column: &str, post: &StoredPost) -> String {
    PostBody::new(post).map(|body| body.frame(column)).unwrap_or_default()
}

/// A batch matched against the percolator: each post to publish with the
/// columns it goes to, and the connections to tell of deletes and counts.
#[derive(Default)]
struct Matched<'a> {
    posts: Vec<(&'a StoredPost, Vec<Arc<Column>>)>,
    deleted: Vec<(&'a StoredPost, Vec<Arc<Link>>)>,
    updated: Vec<(&'a StoredPost, Vec<Arc<Link>>)>,
}

impl Hub {
    pub fn new(config: HubConfig) -> Hub {
        Hub {
            state: RwLock::new(State::default()),
            config,
            next_id: AtomicU64::new(1),
            total_bytes: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes of frames waiting over all connections and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.total_bytes.load(Ordering::Relaxed)
    }

    /// Number of active column subscriptions.
    pub fn n_columns(&self) -> usize {
        self.read().columns.len()
    }

    /// Registers a connection; returns its id, the queue its writer drains
    /// and the signals its writer watches.
    pub fn connect(&self) -> (ConnectionId, mpsc::Receiver<Outbound>, Arc<Signals>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (outbound, outbound_rx) = mpsc::channel(self.config.queue_capacity);
        let signals = Arc::new(Signals {
            resyncs: Mutex::new(Vec::new()),
            wake: Notify::new(),
            queued_bytes: AtomicUsize::new(0),
            total_bytes: self.total_bytes.clone(),
        });
        let link = Arc::new(Link { id, outbound, signals: signals.clone() });
        self.write().connections.insert(id, Connection { link, columns: HashMap::new() });
        (id, outbound_rx, signals)
    }

    pub fn disconnect(&self, connection: ConnectionId) {
        let mut state = self.write();
        if let Some(entry) = state.connections.remove(&connection) {
            for subscription in entry.columns.into_values() {
                state.percolator.remove(subscription);
                if let Some(column) = state.columns.remove(&subscription) {
                    column.retire();
                }
            }
        }
    }

    /// The queue of a connection, for frames its own task sends (catch-up, errors).
    pub fn sender(&self, connection: ConnectionId) -> Option<DirectSender> {
        self.read().connections.get(&connection).map(|entry| DirectSender { link: entry.link.clone() })
    }

    /// Whether a connection has a column of this id.
    pub fn has_column(&self, connection: ConnectionId, column: &str) -> bool {
        self.read().connections.get(&connection).is_some_and(|entry| entry.columns.contains_key(column))
    }

    /// Number of columns a connection has.
    pub fn n_columns_of(&self, connection: ConnectionId) -> usize {
        self.read().connections.get(&connection).map_or(0, |entry| entry.columns.len())
    }

    /// Starts (or replaces) a column. With `since` (a resume), live matches
    /// are buffered until [`Hub::finish_catch_up`], and the posts it names
    /// as the client's are never sent live.
    pub fn subscribe(
        &self,
        connection: ConnectionId,
        column: &str,
        query: Query,
        since: Option<model::Cursor>,
    ) -> Result<(), SubscribeError> {
        let catching_up = since.is_some();
        let subscription = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.write();
        let State { percolator, columns, connections } = &mut *state;
        let entry = connections.get_mut(&connection).ok_or(SubscribeError::UnknownConnection)?;
        if let Some(previous) = entry.columns.insert(column.to_owned(), subscription) {
            percolator.remove(previous);
            // Retired under its own lock: a fan-out that matched it before
            // queues nothing for it after this returns.
            if let Some(previous) = columns.remove(&previous) {
                previous.retire();
            }
        }
        let mode = if catching_up { ColumnMode::Buffering(Vec::new()) } else { ColumnMode::Live };
        let resumed = since.map(|_| Mutex::default());
        let handle =
            Column { subscription, link: entry.link.clone(), name: column.into(), mode: Mutex::new(mode), resumed };
        columns.insert(subscription, Arc::new(handle));
        percolator.insert(subscription, query);
        Ok(())
    }

    pub fn unsubscribe(&self, connection: ConnectionId, column: &str) {
        let mut state = self.write();
        let State { percolator, columns, connections } = &mut *state;
        if let Some(subscription) = connections.get_mut(&connection).and_then(|entry| entry.columns.remove(column)) {
            percolator.remove(subscription);
            if let Some(column) = columns.remove(&subscription) {
                column.retire();
            }
        }
    }

    fn column(&self, connection: ConnectionId, column: &str) -> Option<Arc<Column>> {
        let state = self.read();
        let subscription = state.connections.get(&connection)?.columns.get(column)?;
        state.columns.get(subscription).cloned()
    }

    /// Ends a column's catch-up: sends the live frames buffered meanwhile,
    /// except posts the client already has (`already_sent`: what the
    /// catch-up sent, and what was stored up to `since`), turns the column
    /// live, and keeps never sending those.
    pub fn finish_catch_up(&self, connection: ConnectionId, column: &str, already_sent: &HashSet<String>) {
        let Some(handle) = self.column(connection, column) else {
            return;
        };
        let overflowed = {
            let mut mode = handle.mode();
            let ColumnMode::Buffering(buffered) = &mut *mode else {
                return;
            };
            let buffered = std::mem::take(buffered);
            *mode = ColumnMode::Live;
            if let Some(known) = &handle.resumed {
                known.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(already_sent.iter().cloned());
            }
            let mut overflowed = false;
            // The buffered frames were counted when they were buffered.
            for body in buffered {
                let frame_len = body.frame_len(&handle.name);
                if overflowed || already_sent.contains(&body.post_id) || handle.already_has(&body) {
                    handle.link.signals.sent(frame_len);
                    continue;
                }
                let outbound = Outbound::Post { column: handle.name.clone(), body };
                if !handle.link.queue_charged(outbound) {
                    overflowed = true;
                }
            }
            if overflowed {
                *mode = ColumnMode::Dropped;
            }
            overflowed
        };
        if overflowed {
            self.drop_columns(&[handle.subscription]);
        }
    }

    /// Drops a column whose backlog overflowed and tells its connection to resync it.
    pub fn resync(&self, connection: ConnectionId, column: &str) {
        if let Some(handle) = self.column(connection, column) {
            handle.retire();
            self.drop_columns(&[handle.subscription]);
        }
    }

    /// Drops every column and tells each connection to resync it.
    fn resync_all(&self) {
        let subscriptions: Vec<SubscriptionId> = self.read().columns.keys().copied().collect();
        tracing::warn!(
            n_columns = subscriptions.len(),
            "changes were lost on the way to the live feed: every column resyncs"
        );
        self.drop_columns(&subscriptions);
    }

    /// Removes dropped columns and queues a `resync` signal for each.
    fn drop_columns(&self, subscriptions: &[SubscriptionId]) {
        if subscriptions.is_empty() {
            return;
        }
        let mut state = self.write();
        for subscription in subscriptions {
            let Some(column) = state.columns.remove(subscription) else {
                // Already replaced or unsubscribed: nothing to resync.
                continue;
            };
            state.percolator.remove(*subscription);
            column.retire();
            if let Some(entry) = state.connections.get_mut(&column.link.id) {
                entry.columns.remove(&*column.name);
            }
            let signals = &column.link.signals;
            signals.resyncs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(column.name.to_string());
            signals.wake.notify_one();
        }
    }

    /// Matches a batch under the read lock: only the percolator's work.
    fn match_batch<'a>(&self, applied: &'a Applied) -> Matched<'a> {
        let state = self.read();
        let mut matched = Matched::default();
        if state.columns.is_empty() {
            return matched;
        }
        let mut subscriptions: Vec<SubscriptionId> = Vec::new();
        for post in &applied.inserted {
            subscriptions.clear();
            state.percolator.for_each_match(&Doc::new(post), |found| subscriptions.extend_from_slice(found));
            if subscriptions.is_empty() {
                continue;
            }
            let columns = subscriptions.iter().filter_map(|subscription| state.columns.get(subscription).cloned());
            matched.posts.push((post, columns.collect()));
        }
        let links_of =
            |posts: &'a [StoredPost], into: &mut Vec<(&'a StoredPost, Vec<Arc<Link>>)>| {
                for post in posts {
                    let mut links: Vec<Arc<Link>> = Vec::new();
                    state.percolator.for_each_match(&Doc::new(post), |found| {
                        links.extend(found.iter().filter_map(|subscription| {
                            state.columns.get(subscription).map(|column| column.link.clone())
                        }));
                    });
                    links.sort_unstable_by_key(|link| link.id);
                    links.dedup_by_key(|link| link.id);
                    if !links.is_empty() {
                        into.push((post, links));
                    }
                }
            };
        links_of(&applied.deleted, &mut matched.deleted);
        links_of(&applied.updated, &mut matched.updated);
        matched
    }

    /// Fans out what a processor batch changed. Never waits on a reader,
    /// and holds the hub's lock only while matching. Returns the number of
    /// frames queued.
    /// A batch with [`Applied::gap`] first drops every column and queues a
    /// `resync` for each: changes were lost on the way to this hub, and only
    /// the store has them.
    pub fn publish(&self, applied: &Applied) -> usize {
        if applied.gap {
            self.resync_all();
        }
        let matched = self.match_batch(applied);
        let mut overflowed: Vec<SubscriptionId> = Vec::new();
        let mut n_frames = 0;
        for (post, columns) in matched.posts {
            let Some(body) = PostBody::new(post) else {
                continue;
            };
            let body = Arc::new(body);
            for column in columns {
                let mut mode = column.mode();
                match &mut *mode {
                    ColumnMode::Buffering(buffered) => {
                        if buffered.len() < self.config.catch_up_buffer
                            && column.link.signals.charge(body.frame_len(&column.name), &self.config)
                        {
                            buffered.push(body.clone());
                        } else {
                            column.retire_locked(&mut mode);
                            overflowed.push(column.subscription);
                        }
                    }
                    ColumnMode::Live if column.already_has(&body) => {}
                    ColumnMode::Live => {
                        let outbound = Outbound::Post { column: column.name.clone(), body: body.clone() };
                        if column.link.try_queue(outbound, &self.config) {
                            n_frames += 1;
                        } else {
                            *mode = ColumnMode::Dropped;
                            overflowed.push(column.subscription);
                        }
                    }
                    ColumnMode::Dropped => {}
                }
            }
        }
        // Deletes and count changes are best effort on a full queue: a
        // reader that far behind is resynced by the post path anyway.
        let shared_frames = matched
            .deleted
            .into_iter()
            .map(|(post, links)| (api::ServerMessage::Delete { id: post.post.id.clone() }, links))
            .chain(matched.updated.into_iter().map(|(post, links)| {
                let counts = api::ServerMessage::Counts {
                    id: post.post.id.clone(),
                    retweet_count: post.post.counts.retweets,
                    like_count: post.post.counts.likes,
                };
                (counts, links)
            }));
        for (message, links) in shared_frames {
            let Ok(frame) = serde_json::to_string(&message) else {
                continue;
            };
            let frame = Bytes::from(frame);
            for link in links {
                if link.try_queue(Outbound::Shared(frame.clone()), &self.config) {
                    n_frames += 1;
                }
            }
        }
        self.drop_columns(&overflowed);
        n_frames
    }

    /// Starts the fan-out's dedicated thread.
    pub fn start_fan_out(self: &Arc<Self>) -> std::io::Result<FanOut> {
        let hub = self.clone();
        FanOut::spawn(move |applied| {
            hub.publish(applied);
        })
    }
}

/// Batches that may wait for the fan-out thread at once (one per publisher).
const FAN_OUT_BACKLOG: usize = 64;

/// Hands batches to the hub's fan-out thread, in order. The thread ends when
/// every `FanOut` is dropped.
#[derive(Clone)]
pub struct FanOut {
    batches_tx: mpsc::Sender<(Arc<Applied>, oneshot::Sender<()>)>,
}

/// The fan-out thread is gone: a batch panicked in it (logged with the
/// panic's message). Live columns would get nothing more, so the stage that
/// publishes stops the process instead of going on without them.
#[derive(Debug, thiserror::Error)]
#[error("the fan-out thread stopped (a batch panicked in it; see the log)")]
pub struct FanOutStopped;

impl FanOut {
    /// Runs `publish` on a thread of its own for every batch handed over.
    /// A panic in it is logged with its message and ends the thread; every
    /// [`FanOut::publish`] from then on says so.
    fn spawn(mut publish: impl FnMut(&Applied) + Send + 'static) -> std::io::Result<FanOut> {
        let (batches_tx, mut batches_rx) = mpsc::channel::<(Arc<Applied>, oneshot::Sender<()>)>(FAN_OUT_BACKLOG);
        std::thread::Builder::new().name("deck-fan-out".into()).spawn(move || {
            while let Some((applied, done)) = batches_rx.blocking_recv() {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| publish(&applied)));
                if let Err(panic) = outcome {
                    let message = telemetry::panic_message(panic.as_ref());
                    tracing::error!(panic = %message, "the fan-out thread panicked; live columns stop, and so does the process");
                    // Dropping `done` and the receiver tells every publisher.
                    return;
                }
                let _ = done.send(());
            }
        })?;
        Ok(FanOut { batches_tx })
    }

    /// Fans a batch out on the fan-out thread and returns once its frames
    /// are queued (never waiting on a reader): as before the fan-out had its
    /// own thread, a processor moves on only once its batch is fanned out,
    /// so live frames never lag further behind the store than one batch.
    pub async fn publish(&self, applied: Arc<Applied>) -> Result<(), FanOutStopped> {
        let (done_tx, done_rx) = oneshot::channel();
        self.batches_tx.send((applied, done_tx)).await.map_err(|_| FanOutStopped)?;
        done_rx.await.map_err(|_| FanOutStopped)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use model::{Author, Post, Source};

    use super::*;

    fn post(id: usize) -> StoredPost {
        let post = Post {
            lang: Some("ko".into()),
            hashtags: vec!["BTS".into()],
            ..Post::new(
                id.to_string(),
                Source::Demo,
                Author { id: "1".into(), handle: "army".into(), name: "Army".into(), avatar_url: None },
                format!("post {id} #BTS {}", "💜".repeat(50)),
                Utc.timestamp_opt(1_700_000_000 + id as i64, 0).single().unwrap_or_default(),
            )
        };
        StoredPost { post, retweeted: None, quoted: None }
    }

    fn bts() -> Query {
        Query::parse("#bts").unwrap_or_else(|error| panic!("{error}"))
    }

    fn batch(ids: std::ops::Range<usize>) -> Applied {
        Applied { inserted: ids.map(post).collect(), ..Applied::default() }
    }

    /// Drains a connection's queue as its writer would: (column, post id)
    /// of each post frame, other frames as they are.
    fn drain(receiver: &mut mpsc::Receiver<Outbound>, signals: &Signals) -> Vec<String> {
        let mut frames = Vec::new();
        while let Ok(outbound) = receiver.try_recv() {
            signals.sent(outbound.budget_len());
            let text = outbound.into_text();
            let frame: serde_json::Value = serde_json::from_slice(&text).unwrap_or_else(|error| panic!("{error}"));
            match frame["type"].as_str() {
                Some("post") => frames.push(format!("{} {}", frame["column"], frame["post"]["id"])),
                _ => frames.push(frame.to_string()),
            }
        }
        frames
    }

    fn resyncs(signals: &Signals) -> Vec<String> {
        signals.resyncs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    #[test]
    fn one_post_is_serialized_once_and_shared_by_every_column() {
        let hub = Hub::new(HubConfig::default());
        let (id, mut receiver, signals) = hub.connect();
        hub.subscribe(id, "a", bts(), None).unwrap_or_else(|error| panic!("{error:?}"));
        hub.subscribe(id, "b", Query::parse("post").unwrap_or_else(|error| panic!("{error}")), None)
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(hub.publish(&batch(1..2)), 2);
        let mut bodies = Vec::new();
        while let Ok(outbound) = receiver.try_recv() {
            signals.sent(outbound.budget_len());
            let Outbound::Post { column, body } = &outbound else { panic!("{outbound:?}") };
            let column = column.to_string();
            bodies.push(body.clone());
            let frame = outbound.into_text();
            // Byte for byte the whole message serialized at once.
            let expected = serde_json::to_string(&api::ServerMessage::Post {
                column,
                post: api::Post::from(&post(1)),
                cursor: api::Post::from(&post(1)).cursor,
            })
            .unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(&frame), expected);
        }
        assert_eq!(bodies.len(), 2);
        assert!(Arc::ptr_eq(&bodies[0], &bodies[1]), "one body shared by both columns");
        assert_eq!(hub.queued_bytes(), 0);
    }

    #[test]
    fn a_gap_resyncs_every_column_of_every_connection() {
        let hub = Hub::new(HubConfig::default());
        let (first, mut first_rx, first_signals) = hub.connect();
        let (second, mut second_rx, second_signals) = hub.connect();
        hub.subscribe(first, "a", bts(), None).unwrap_or_else(|error| panic!("{error:?}"));
        hub.subscribe(first, "b", Query::parse("post").unwrap_or_else(|error| panic!("{error}")), None)
            .unwrap_or_else(|error| panic!("{error:?}"));
        // A column still catching up is resynced too.
        hub.subscribe(second, "c", bts(), Some(model::Cursor::new(0, ""))).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(hub.publish(&batch(1..2)), 2);
        assert_eq!(drain(&mut first_rx, &first_signals).len(), 2);

        // Posts lost on the way: nothing says which columns they matched.
        assert_eq!(hub.publish(&Applied { gap: true, ..Applied::default() }), 0);
        let mut first_resyncs = resyncs(&first_signals);
        first_resyncs.sort();
        assert_eq!(first_resyncs, ["a", "b"]);
        assert_eq!(resyncs(&second_signals), ["c"]);
        // The columns left the hub: later posts go nowhere until each
        // column subscribes again (with `since`, from its resync).
        assert_eq!(hub.publish(&batch(2..3)), 0);
        assert!(drain(&mut first_rx, &first_signals).is_empty());
        assert!(drain(&mut second_rx, &second_signals).is_empty());
        assert_eq!(hub.queued_bytes(), 0, "the buffered catch-up frames were freed");
        hub.subscribe(first, "a", bts(), None).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(hub.publish(&batch(3..4)), 1);
    }

    #[test]
    fn live_posts_during_a_catch_up_follow_it_without_gap_or_repeat() {
        let hub = Hub::new(HubConfig::default());
        let (id, mut receiver, signals) = hub.connect();
        hub.subscribe(id, "c", bts(), Some(model::Cursor::new(0, ""))).unwrap_or_else(|error| panic!("{error:?}"));
        // Live posts while the column catches up wait in the column, and
        // their bytes count against the budgets already.
        assert_eq!(hub.publish(&batch(0..5)), 0);
        assert!(drain(&mut receiver, &signals).is_empty());
        assert!(signals.queued_bytes() > 0);
        assert_eq!(signals.queued_bytes(), hub.queued_bytes());
        // The catch-up carried posts 0 and 1; the buffer sends the rest, in order.
        let already_sent: HashSet<String> = ["0".to_owned(), "1".to_owned()].into();
        hub.finish_catch_up(id, "c", &already_sent);
        assert_eq!(drain(&mut receiver, &signals), ["\"c\" \"2\"", "\"c\" \"3\"", "\"c\" \"4\""]);
        // Then the column is live.
        assert_eq!(hub.publish(&batch(5..6)), 1);
        assert_eq!(drain(&mut receiver, &signals), ["\"c\" \"5\""]);
        assert_eq!(hub.queued_bytes(), 0);
        assert!(resyncs(&signals).is_empty());
    }

    #[test]
    fn a_resumed_column_never_gets_again_what_its_client_has() {
        // The client resumes since post 3 (it came from another feed node,
        // which was ahead of this one): posts 2 and 3 were stored up to
        // `since`, and the catch-up sent 4 and 5.
        let hub = Hub::new(HubConfig::default());
        let (id, mut receiver, signals) = hub.connect();
        let since = post(3).post.cursor();
        hub.subscribe(id, "c", bts(), Some(since)).unwrap_or_else(|error| panic!("{error:?}"));
        let known: HashSet<String> = ["2", "3", "4", "5"].map(str::to_owned).into();
        hub.finish_catch_up(id, "c", &known);
        // This node now delivers what the other one had already sent, then new posts.
        assert_eq!(hub.publish(&batch(2..8)), 2);
        assert_eq!(drain(&mut receiver, &signals), ["\"c\" \"6\"", "\"c\" \"7\""]);
        // A post stored after the resume with an older time (backdated) still goes live.
        assert_eq!(hub.publish(&batch(1..2)), 1);
        assert_eq!(drain(&mut receiver, &signals), ["\"c\" \"1\""]);
        assert_eq!(hub.queued_bytes(), 0);
    }

    #[test]
    fn a_catch_up_that_buffers_too_much_is_resynced_and_frees_its_bytes() {
        let hub = Hub::new(HubConfig { catch_up_buffer: 3, ..HubConfig::default() });
        let (id, mut receiver, signals) = hub.connect();
        hub.subscribe(id, "c", bts(), Some(model::Cursor::new(0, ""))).unwrap_or_else(|error| panic!("{error:?}"));
        hub.publish(&batch(0..5));
        assert_eq!(resyncs(&signals), ["c"]);
        assert!(!hub.has_column(id, "c"));
        assert_eq!(hub.n_columns(), 0);
        assert_eq!(hub.queued_bytes(), 0, "the dropped buffer's bytes are given back");
        hub.finish_catch_up(id, "c", &HashSet::new());
        assert!(drain(&mut receiver, &signals).is_empty());
    }

    #[test]
    fn catch_up_buffers_count_in_the_byte_budget() {
        let frame_len = PostBody::new(&post(0)).map(|body| body.frame_len("c")).unwrap_or_default();
        let hub = Hub::new(HubConfig { queue_bytes: frame_len * 2 + frame_len / 2, ..HubConfig::default() });
        let (id, _receiver, signals) = hub.connect();
        hub.subscribe(id, "c", bts(), Some(model::Cursor::new(0, ""))).unwrap_or_else(|error| panic!("{error:?}"));
        hub.publish(&batch(0..2));
        assert!(resyncs(&signals).is_empty(), "two frames fit");
        hub.publish(&batch(2..3));
        assert_eq!(resyncs(&signals), ["c"], "the third does not");
        assert_eq!(hub.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn direct_frames_count_in_the_budget_so_live_frames_overflow_sooner() {
        let frame_len = PostBody::new(&post(0)).map(|body| body.frame_len("c")).unwrap_or_default();
        let hub = Hub::new(HubConfig { queue_bytes: frame_len * 3, ..HubConfig::default() });
        let (id, mut receiver, signals) = hub.connect();
        hub.subscribe(id, "c", bts(), None).unwrap_or_else(|error| panic!("{error:?}"));
        let direct = hub.sender(id).unwrap_or_else(|| panic!("connected"));
        assert!(direct.send("x".repeat(frame_len * 2)).await);
        assert_eq!(signals.queued_bytes(), frame_len * 2);
        assert_eq!(hub.queued_bytes(), frame_len * 2);
        // One live frame fits beside it, the second does not: resync.
        assert_eq!(hub.publish(&batch(0..2)), 1);
        assert_eq!(resyncs(&signals), ["c"]);
        let Some(Outbound::Direct(frame)) = receiver.recv().await else { panic!("the direct frame first") };
        signals.sent(frame.len());
        assert_eq!(drain(&mut receiver, &signals), ["\"c\" \"0\""]);
        assert_eq!(hub.queued_bytes(), 0);
    }

    #[test]
    fn a_replaced_column_gets_nothing_of_its_old_query() {
        let hub = Hub::new(HubConfig::default());
        let (id, mut receiver, signals) = hub.connect();
        hub.subscribe(id, "c", bts(), Some(model::Cursor::new(0, ""))).unwrap_or_else(|error| panic!("{error:?}"));
        hub.publish(&batch(0..2));
        let nothing = Query::parse("nothingmatchesthis").unwrap_or_else(|error| panic!("{error}"));
        hub.subscribe(id, "c", nothing, None).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(hub.queued_bytes(), 0, "the old column's buffer is given back");
        hub.publish(&batch(2..3));
        hub.finish_catch_up(id, "c", &HashSet::new());
        assert!(drain(&mut receiver, &signals).is_empty());
        assert!(resyncs(&signals).is_empty());
        assert!(hub.has_column(id, "c"));
    }

    #[tokio::test]
    async fn the_fan_out_thread_publishes_batches_in_order() {
        let hub = Arc::new(Hub::new(HubConfig::default()));
        let (id, mut receiver, signals) = hub.connect();
        hub.subscribe(id, "c", bts(), None).unwrap_or_else(|error| panic!("{error:?}"));
        let fan_out = hub.start_fan_out().unwrap_or_else(|error| panic!("{error}"));
        for start in [0, 3, 6] {
            fan_out.publish(Arc::new(batch(start..start + 3))).await.unwrap_or_else(|error| panic!("{error}"));
        }
        let mut ids = Vec::new();
        while ids.len() < 9 {
            let Some(outbound) = receiver.recv().await else { panic!("queue closed") };
            signals.sent(outbound.budget_len());
            let Outbound::Post { body, .. } = outbound else { panic!("a post frame") };
            ids.push(body.post_id.clone());
        }
        assert_eq!(ids, (0..9).map(|id| id.to_string()).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panic_in_the_fan_out_thread_is_reported_to_every_publisher_after_it() {
        let published = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = published.clone();
        let fan_out = FanOut::spawn(move |applied| {
            let first = applied.inserted.first().map(|post| post.post.id.clone()).unwrap_or_default();
            assert_ne!(first, "3", "a batch the fan-out cannot take");
            seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(first);
        })
        .unwrap_or_else(|error| panic!("{error}"));
        assert!(fan_out.publish(Arc::new(batch(0..3))).await.is_ok());
        assert!(fan_out.publish(Arc::new(batch(3..6))).await.is_err(), "the batch that panicked");
        assert!(fan_out.clone().publish(Arc::new(batch(6..9))).await.is_err(), "every batch after it");
        assert_eq!(*published.lock().unwrap_or_else(std::sync::PoisonError::into_inner), ["0"]);
    }

    #[test]
    fn readers_that_do_not_read_cost_at_most_the_hub_budget_together() {
        let config = HubConfig { queue_bytes: 64 * 1024, total_queue_bytes: 100 * 1024, ..HubConfig::default() };
        let hub = Hub::new(config.clone());
        let mut connections = Vec::new();
        for _ in 0..10 {
            let (id, receiver, signals) = hub.connect();
            hub.subscribe(id, "bts", Query::parse("#bts").unwrap_or_else(|error| panic!("{error}")), None)
                .unwrap_or_else(|error| panic!("{error:?}"));
            connections.push((id, receiver, signals));
        }
        // Each reader alone is within its own budget; together they are not.
        let applied = Applied { inserted: (0..100).map(post).collect(), ..Applied::default() };
        let queued = hub.publish(&applied);
        assert!(queued > 0);
        let total: usize = connections.iter().map(|(_, _, signals)| signals.queued_bytes()).sum();
        assert_eq!(total, hub.queued_bytes());
        assert!(total <= config.total_queue_bytes, "{total} bytes queued");
        assert!(connections.iter().all(|(_, _, signals)| signals.queued_bytes() <= config.queue_bytes));
        // The columns that did not fit are dropped and told to resync.
        let resynced = connections.iter().filter(|(_, _, signals)| !signals.resyncs.lock().unwrap().is_empty()).count();
        assert!(resynced > 0);

        // A reader that drains its queue frees its share of the total.
        let (_, receiver, signals) = &mut connections[0];
        while let Ok(outbound) = receiver.try_recv() {
            signals.sent(outbound.budget_len());
        }
        assert_eq!(signals.queued_bytes(), 0);
        // A closed connection's unsent frames leave the total with it.
        for (id, receiver, signals) in connections.drain(..) {
            hub.disconnect(id);
            drop(receiver);
            drop(signals);
        }
        assert_eq!(hub.queued_bytes(), 0);
    }
}
