//! The hub: connections, their columns, and the fan-out of stored posts.
//!
//! Each connection has one bounded outbound queue. Publishing never waits on
//! a reader: a frame that does not fit drops that column (it leaves the
//! percolator) and queues a `resync` for it, which the connection's writer
//! sends as soon as it can. So a slow reader never slows ingest or other
//! readers, and its memory is bounded by the queue.
//!
//! A column subscribed with `since` starts in [`ColumnMode::Buffering`]: live
//! matches wait in the column while the connection sends the stored posts
//! after the cursor; [`Hub::finish_catch_up`] then sends the buffered frames
//! that the catch-up did not already carry and turns the column live, under
//! the column's lock, so nothing is lost or repeated at the seam.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use model::Applied;
use model::StoredPost;
use search::{Doc, Query};
use tokio::sync::{Notify, mpsc};

use crate::percolator::{Percolator, SubscriptionId};

pub type ConnectionId = u64;

/// Limits of the fan-out.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Frames a connection's queue can hold at all.
    pub queue_capacity: usize,
    /// Bytes of live frames queued per connection before a column that
    /// needs more is dropped: the memory a slow reader can cost.
    pub queue_bytes: usize,
    /// Bytes of live frames queued over all connections before a column
    /// that needs more is dropped: what many slow readers can cost together,
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

/// What a connection's writer sends.
#[derive(Debug)]
pub enum Outbound {
    /// A live frame from the fan-out; its bytes count against the
    /// connection's budget until the writer has sent it.
    Frame(String),
    /// A frame the connection's own task sends (acknowledgements, errors,
    /// catch-up); that task awaits room in the queue, so it needs no budget.
    Direct(String),
}

/// Where a column's live matches go.
pub enum ColumnMode {
    /// Catching up: live frames wait here as `(post id, frame)`.
    Buffering(Vec<(String, String)>),
    Live,
    /// Dropped for overflow; waiting for the client to resubscribe.
    Dropped,
}

struct Column {
    connection: ConnectionId,
    name: String,
    mode: Mutex<ColumnMode>,
}

struct Connection {
    outbound: mpsc::Sender<Outbound>,
    columns: HashMap<String, SubscriptionId>,
    signals: Arc<Signals>,
}

/// What a connection's writer shares with the fan-out: signals that cannot
/// be lost to a full queue, and the bytes queued.
pub struct Signals {
    pub resyncs: Mutex<Vec<String>>,
    pub wake: Notify,
    /// Bytes of [`Outbound::Frame`]s queued and not yet sent.
    queued_bytes: AtomicUsize,
    /// The same over every connection of the hub.
    total_bytes: Arc<AtomicUsize>,
}

impl Signals {
    /// The writer calls this once it has sent a [`Outbound::Frame`].
    pub fn sent(&self, frame_len: usize) {
        self.queued_bytes.fetch_sub(frame_len, Ordering::Relaxed);
        self.total_bytes.fetch_sub(frame_len, Ordering::Relaxed);
    }

    /// Bytes of frames queued and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Signals {
    /// Frames never sent (the connection closed) leave the hub's total with
    /// the last holder of the signals: by then nobody can call `sent`.
    fn drop(&mut self) {
        self.total_bytes.fetch_sub(*self.queued_bytes.get_mut(), Ordering::Relaxed);
    }
}

impl Connection {
    /// Queues a live frame if it fits the connection's byte budget and the
    /// hub's.
    fn try_queue(&self, frame: String, config: &HubConfig) -> bool {
        let frame_len = frame.len();
        let signals = &self.signals;
        if signals.queued_bytes.load(Ordering::Relaxed) + frame_len > config.queue_bytes
            || signals.total_bytes.load(Ordering::Relaxed) + frame_len > config.total_queue_bytes
        {
            return false;
        }
        signals.queued_bytes.fetch_add(frame_len, Ordering::Relaxed);
        signals.total_bytes.fetch_add(frame_len, Ordering::Relaxed);
        if self.outbound.try_send(Outbound::Frame(frame)).is_err() {
            signals.sent(frame_len);
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
    /// Bytes of live frames queued over all connections.
    total_bytes: Arc<AtomicUsize>,
}

/// Why a subscription was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SubscribeError {
    UnknownConnection,
}

fn frame_for(column: &str, post_json: &str, cursor: &str) -> String {
    let column_json = serde_json::Value::String(column.to_owned()).to_string();
    format!(r#"{{"type":"post","column":{column_json},"post":{post_json},"cursor":"{cursor}"}}"#)
}

/// The `post` frame for one column, as the catch-up path sends it.
pub fn post_frame(column: &str, post: &StoredPost) -> String {
    let wire = api::Post::from(post);
    let post_json = serde_json::to_string(&wire).unwrap_or_else(|_| "null".into());
    frame_for(column, &post_json, &wire.cursor)
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

    /// Number of active column subscriptions.
    /// Bytes of live frames queued over all connections and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.total_bytes.load(Ordering::Relaxed)
    }

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
        self.write().connections.insert(id, Connection { outbound, columns: HashMap::new(), signals: signals.clone() });
        (id, outbound_rx, signals)
    }

    pub fn disconnect(&self, connection: ConnectionId) {
        let mut state = self.write();
        if let Some(entry) = state.connections.remove(&connection) {
            for subscription in entry.columns.into_values() {
                state.percolator.remove(subscription);
                state.columns.remove(&subscription);
            }
        }
    }

    /// The queue of a connection, for frames its own task sends (catch-up, errors).
    pub fn sender(&self, connection: ConnectionId) -> Option<mpsc::Sender<Outbound>> {
        self.read().connections.get(&connection).map(|entry| entry.outbound.clone())
    }

    /// Whether a connection has a column of this id.
    pub fn has_column(&self, connection: ConnectionId, column: &str) -> bool {
        self.read().connections.get(&connection).is_some_and(|entry| entry.columns.contains_key(column))
    }

    /// Number of columns a connection has.
    pub fn n_columns_of(&self, connection: ConnectionId) -> usize {
        self.read().connections.get(&connection).map_or(0, |entry| entry.columns.len())
    }

    /// Starts (or replaces) a column. With `catching_up`, live matches are
    /// buffered until [`Hub::finish_catch_up`].
    pub fn subscribe(
        &self,
        connection: ConnectionId,
        column: &str,
        query: Query,
        catching_up: bool,
    ) -> Result<(), SubscribeError> {
        let subscription = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.write();
        let State { percolator, columns, connections } = &mut *state;
        let entry = connections.get_mut(&connection).ok_or(SubscribeError::UnknownConnection)?;
        if let Some(previous) = entry.columns.insert(column.to_owned(), subscription) {
            percolator.remove(previous);
            columns.remove(&previous);
        }
        let mode = if catching_up { ColumnMode::Buffering(Vec::new()) } else { ColumnMode::Live };
        columns.insert(subscription, Arc::new(Column { connection, name: column.to_owned(), mode: Mutex::new(mode) }));
        percolator.insert(subscription, query);
        Ok(())
    }

    pub fn unsubscribe(&self, connection: ConnectionId, column: &str) {
        let mut state = self.write();
        let State { percolator, columns, connections } = &mut *state;
        if let Some(subscription) = connections.get_mut(&connection).and_then(|entry| entry.columns.remove(column)) {
            percolator.remove(subscription);
            columns.remove(&subscription);
        }
    }

    /// Ends a column's catch-up: sends the live frames buffered meanwhile,
    /// except posts the catch-up already sent, and turns the column live.
    pub fn finish_catch_up(&self, connection: ConnectionId, column: &str, already_sent: &HashSet<String>) {
        let mut overflowed = Vec::new();
        {
            let state = self.read();
            let Some(entry) = state.connections.get(&connection) else {
                return;
            };
            let Some(handle) = entry.columns.get(column).and_then(|id| state.columns.get(id)) else {
                return;
            };
            let mut mode = handle.mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let ColumnMode::Buffering(buffered) = &mut *mode {
                let buffered = std::mem::take(buffered);
                *mode = ColumnMode::Live;
                for (post_id, frame) in buffered {
                    if already_sent.contains(&post_id) {
                        continue;
                    }
                    if !entry.try_queue(frame, &self.config) {
                        *mode = ColumnMode::Dropped;
                        overflowed.push(entry.columns[column]);
                        break;
                    }
                }
            }
        }
        self.drop_columns(&overflowed);
    }

    /// Drops a column whose backlog overflowed and tells its connection to resync it.
    pub fn resync(&self, connection: ConnectionId, column: &str) {
        let subscription =
            self.read().connections.get(&connection).and_then(|entry| entry.columns.get(column).copied());
        if let Some(subscription) = subscription {
            self.drop_columns(&[subscription]);
        }
    }

    fn drop_columns(&self, subscriptions: &[SubscriptionId]) {
        if subscriptions.is_empty() {
            return;
        }
        let mut state = self.write();
        for subscription in subscriptions {
            state.percolator.remove(*subscription);
            let Some(column) = state.columns.remove(subscription) else {
                continue;
            };
            if let Some(entry) = state.connections.get_mut(&column.connection) {
                entry.columns.remove(&column.name);
                entry.signals.resyncs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(column.name.clone());
                entry.signals.wake.notify_one();
            }
        }
    }

    /// Fans out what a processor batch changed. Never waits on a reader.
    /// Returns the number of frames queued.
    pub fn publish(&self, applied: &Applied) -> usize {
        let mut overflowed: Vec<SubscriptionId> = Vec::new();
        let mut n_frames = 0;
        {
            let state = self.read();
            if state.columns.is_empty() {
                return 0;
            }
            let mut matched: Vec<SubscriptionId> = Vec::new();
            for post in &applied.inserted {
                let doc = Doc::new(post);
                matched.clear();
                state.percolator.for_each_match(&doc, |subscriptions| matched.extend_from_slice(subscriptions));
                if matched.is_empty() {
                    continue;
                }
                let wire = api::Post::from(post);
                let Ok(post_json) = serde_json::to_string(&wire) else {
                    continue;
                };
                for &subscription in &matched {
                    let Some(column) = state.columns.get(&subscription) else {
                        continue;
                    };
                    let Some(connection) = state.connections.get(&column.connection) else {
                        continue;
                    };
                    let frame = frame_for(&column.name, &post_json, &wire.cursor);
                    let mut mode = column.mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    match &mut *mode {
                        ColumnMode::Buffering(buffered) if buffered.len() < self.config.catch_up_buffer => {
                            buffered.push((post.post.id.clone(), frame));
                        }
                        ColumnMode::Buffering(_) => {
                            *mode = ColumnMode::Dropped;
                            overflowed.push(subscription);
                        }
                        ColumnMode::Live => {
                            if connection.try_queue(frame, &self.config) {
                                n_frames += 1;
                            } else {
                                *mode = ColumnMode::Dropped;
                                overflowed.push(subscription);
                            }
                        }
                        ColumnMode::Dropped => {}
                    }
                }
            }
            n_frames += self.notify_connections(&state, &applied.deleted, |post| {
                serde_json::to_string(&api::ServerMessage::Delete { id: post.post.id.clone() }).ok()
            });
            n_frames += self.notify_connections(&state, &applied.updated, |post| {
                serde_json::to_string(&api::ServerMessage::Counts {
                    id: post.post.id.clone(),
                    retweet_count: post.post.counts.retweets,
                    like_count: post.post.counts.likes,
                })
                .ok()
            });
        }
        self.drop_columns(&overflowed);
        n_frames
    }

    /// Sends one frame per connection that has a column matching each post
    /// (deletes and count changes). These are best effort on a full queue:
    /// a reader that far behind is resynced by the post path anyway.
    fn notify_connections(
        &self,
        state: &State,
        posts: &[StoredPost],
        frame: impl Fn(&StoredPost) -> Option<String>,
    ) -> usize {
        let mut n_frames = 0;
        for post in posts {
            let doc = Doc::new(post);
            let mut connections: Vec<ConnectionId> = Vec::new();
            state.percolator.for_each_match(&doc, |subscriptions| {
                connections.extend(
                    subscriptions
                        .iter()
                        .filter_map(|subscription| state.columns.get(subscription).map(|column| column.connection)),
                );
            });
            connections.sort_unstable();
            connections.dedup();
            if connections.is_empty() {
                continue;
            }
            let Some(frame) = frame(post) else {
                continue;
            };
            for connection in connections {
                if let Some(entry) = state.connections.get(&connection)
                    && entry.try_queue(frame.clone(), &self.config)
                {
                    n_frames += 1;
                }
            }
        }
        n_frames
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use model::{Author, Counts, Kind, Post, Source};

    use super::*;

    fn post(id: usize) -> StoredPost {
        let post = Post {
            id: id.to_string(),
            source: Source::Demo,
            kind: Kind::Post,
            author: Author { id: "1".into(), handle: "army".into(), name: "Army".into(), avatar_url: None },
            text: format!("post {id} #BTS {}", "💜".repeat(50)),
            lang: Some("ko".into()),
            created_at: Utc.timestamp_opt(1_700_000_000 + id as i64, 0).single().unwrap_or_default(),
            claimed_at: None,
            retweeted_id: None,
            quoted_id: None,
            reply_to: None,
            hashtags: vec!["BTS".into()],
            mentions: Vec::new(),
            urls: Vec::new(),
            cashtags: Vec::new(),
            has_media: false,
            media: Vec::new(),
            card: None,
            sensitive: false,
            permalink: None,
            counts: Counts::default(),
        };
        StoredPost { post, retweeted: None, quoted: None }
    }

    #[test]
    fn readers_that_do_not_read_cost_at_most_the_hub_budget_together() {
        let config = HubConfig { queue_bytes: 64 * 1024, total_queue_bytes: 100 * 1024, ..HubConfig::default() };
        let hub = Hub::new(config.clone());
        let mut connections = Vec::new();
        for _ in 0..10 {
            let (id, receiver, signals) = hub.connect();
            hub.subscribe(id, "bts", Query::parse("#bts").unwrap_or_else(|error| panic!("{error}")), false)
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
            if let Outbound::Frame(frame) = outbound {
                signals.sent(frame.len());
            }
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
