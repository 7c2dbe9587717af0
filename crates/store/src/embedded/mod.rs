//! The embedded post store: fjall (an LSM-tree) holding posts by id and an
//! inverted index of posting lists keyed by term and cursor, cut into time
//! segments so that retention drops whole partitions.
//!
//! Layout (one fjall keyspace; keys are built by [`crate::keys`], so that no
//! value from outside can reach into another key's range or past fjall's
//! 65,535-byte key limit):
//! - per time segment ([`segments`]), three partitions:
//!   - `posts_S_E`: post id → postcard-encoded [`Post`] (a retweet stores
//!     only a reference to its original). Ids longer than
//!     [`model::MAX_ID_BYTES`] are refused.
//!   - `postings_S_E`: `len(term) term cursor` → empty, the term
//!     length-prefixed (and hashed when over-long, see
//!     [`crate::keys::term_key`]). Every post has the term `*`, so the global
//!     time order is a posting list too. Timeline reads walk one posting list
//!     backwards, segment after segment, and check the other terms of the
//!     conjunction with point lookups (bloom-filtered) in the same segment,
//!     then verify each candidate with the one matcher
//!     (`search::Query::matches_doc`): the index only narrows, the matcher
//!     decides, so history and live matching cannot disagree. They compact
//!     size-tiered (the other partitions leveled): see [`segments`].
//!   - `retweets_S_E`: `len(original id) original id, retweet id` → empty,
//!     the retweets seen in the segment (for idempotent counting and for
//!     deleting a deleted original's retweets), and `len(original id)
//!     original id` → how many (`u64`); an original's count is the sum over
//!     the segments.
//! - `tombstones`: deleted id → when (event-time ms, `i64` big-endian), so a
//!   re-delivered deleted post stays deleted (deletes and creates may arrive
//!   in any order under at-least-once) for as long as the retention.
//! - `meta`: the data-dir format version and source checkpoints.
//!
//! A read that meets an unreadable entry (a post that does not decode, a
//! posting that is not a cursor) skips it, counts it
//! (`deck_store_unreadable_total`) and logs it: one bad entry never fails a
//! page.
//!
//! Each [`WriteBatch`] is one atomic fjall batch (over every partition it
//! touches) followed by an fsync of the journal (fjall does not fsync unless
//! asked): acknowledged means durable.

mod scan;
mod segments;

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use fjall::{AbstractTree as _, Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};
use model::{Cursor, Kind, Post, PostBundle, PostEvent, StoredPost};
use search::{Doc, Query, Term};

use crate::{Applied, Page, PostStore, Range, Reader, StoreError, WriteBatch, keys};
use segments::{Segment, Segments};

const CHECKPOINT_PREFIX: &[u8] = b"cp\0";
/// The `meta` key of the data-dir format version (`u32` big-endian).
const FORMAT_KEY: &[u8] = b"format";
/// The on-disk format this build writes and reads. 1: terms and retweet
/// pairs separated by 0x00 (no version key); 2: length-prefixed keys, one
/// set of partitions; 3: time segments. A format-2 data dir is migrated on
/// open.
pub const FORMAT_VERSION: u32 = 3;
/// Format 2's retweet counters in `meta`.
const LEGACY_RETWEET_COUNT_PREFIX: &[u8] = b"rc\0";
/// Rows removed or rewritten per batch by sweeps and the migration.
const MAINTENANCE_CHUNK: usize = 4_096;

/// Flush tasks fjall's flusher takes each time it wakes (its
/// `flush_workers`): enough for every memtable one partition can have
/// waiting after a crash (one per journal, and the journals stay under
/// fjall's 512 MiB), so the wake-ups that fjall 2.11 gives recovery (one per
/// partition) flush them all. See [`Inner::flush_recovered`].
const FLUSH_TASKS_PER_WAKE: usize = 32;

/// How long opening the store waits for the recovered memtables to be
/// flushed while no more of them are: past it, the open fails loudly.
const RECOVERY_FLUSH_STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// A key in `meta` written only to wake fjall's flusher (see
/// [`Inner::flush_recovered`]).
const FLUSH_NUDGE_KEY: &[u8] = b"flush-nudge";

/// The fjall-backed store; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    reads: crate::ReadGate,
}

struct Inner {
    keyspace: Keyspace,
    tombstones: PartitionHandle,
    meta: PartitionHandle,
    segments: RwLock<Segments>,
    /// One writer at a time: `apply` reads before it writes, and the sweep
    /// must not drop a segment that a batch is writing to.
    writer: Mutex<()>,
    /// Event time (ms) of the newest post stored, `i64::MIN` when empty:
    /// where the retention horizon counts from.
    newest_ms: AtomicI64,
    /// `--retention` in ms; 0 when nothing expires.
    retention_ms: AtomicI64,
    /// Expired segments, out of every read and write, waiting until fjall
    /// has flushed all they held before their partitions are deleted (see
    /// [`Inner::expire_before`]).
    retiring: Mutex<Vec<Retiring>>,
}

struct Retiring {
    segment: Arc<Segment>,
    /// Every memtable of the segment was seen flushed at an earlier sweep.
    flushed: bool,
}

/// A post and the segment it is stored in.
#[derive(Clone)]
struct Located {
    segment: Arc<Segment>,
    post: Post,
}

pub(crate) fn engine(error: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(error.to_string())
}

fn lock_error<T>(_: T) -> StoreError {
    StoreError::Task("a store lock is poisoned".into())
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, with nothing expiring.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        EmbeddedStore::open_with_retention(dir, None)
    }

    /// Opens (or creates) the store in `dir` with a retention (see
    /// [`EmbeddedStore::with_retention`]); a format-2 data dir is migrated
    /// into time segments of this retention's width first.
    pub fn open_with_retention(
        dir: &Path,
        retention: Option<std::time::Duration>,
    ) -> Result<EmbeddedStore, StoreError> {
        let keyspace = Config::new(dir)
            .cache_size(64 * 1024 * 1024)
            .max_write_buffer_size(128 * 1024 * 1024)
            .flush_workers(FLUSH_TASKS_PER_WAKE)
            .open()
            .map_err(engine)?;
        let open = |name: &str| keyspace.open_partition(name, PartitionCreateOptions::default()).map_err(engine);
        let inner = Inner {
            meta: open("meta")?,
            tombstones: open("tombstones")?,
            segments: RwLock::new(Segments::load(&keyspace)?),
            keyspace,
            writer: Mutex::new(()),
            newest_ms: AtomicI64::new(i64::MIN),
            retention_ms: AtomicI64::new(retention_ms(retention)),
            retiring: Mutex::new(Vec::new()),
        };
        inner.flush_recovered()?;
        inner.check_format(dir)?;
        if let Some(cursor) = inner.newest()? {
            inner.newest_ms.store(cursor.created_ms(), Ordering::Relaxed);
        }
        let store =
            EmbeddedStore { inner: Arc::new(inner), reads: crate::ReadGate::new(crate::ReadLimits::embedded()) };
        Ok(match retention {
            Some(retention) => store.with_retention(retention),
            None => store,
        })
    }

    /// The same store with a retention: reads stop at the horizon (the
    /// newest post's time, or now if earlier, minus `retention`), new
    /// segments span a quarter of it, and a background thread drops the
    /// segments wholly behind the horizon (and the tombstones older than
    /// it) every `retention / 10`, at most every minute. The thread ends
    /// when the store is dropped.
    pub fn with_retention(self, retention: std::time::Duration) -> EmbeddedStore {
        self.inner.retention_ms.store(retention_ms(Some(retention)), Ordering::Relaxed);
        let weak = Arc::downgrade(&self.inner);
        let period = (retention / 10).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(60));
        let sweeper = std::thread::Builder::new().name("deck-retention".into()).spawn(move || {
            loop {
                std::thread::sleep(period);
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                if let Some(horizon_ms) = inner.horizon_ms() {
                    sweep(&inner, horizon_ms);
                }
            }
        });
        if let Err(error) = sweeper {
            tracing::error!(%error, "could not start the retention thread; old posts stay");
        }
        self
    }

    /// Drops every segment wholly behind the retention horizon now (the
    /// background thread does this periodically); returns about how many
    /// posts left (fjall's row estimate of the dropped segments).
    pub async fn expire_now(&self) -> Result<usize, StoreError> {
        self.blocking(|inner| match inner.horizon_ms() {
            Some(horizon_ms) => inner.expire_before(horizon_ms),
            None => Ok(0),
        })
        .await
    }

    /// Removes the tombstones older than `horizon_ms` now, as each retention
    /// sweep does after its segments (`deck-bench sweep` measures the
    /// writer's stall during it); returns how many.
    pub async fn sweep_tombstones_before(&self, horizon_ms: i64) -> Result<usize, StoreError> {
        self.blocking(move |inner| {
            let removed = inner.sweep_tombstones(horizon_ms)?;
            inner.keyspace.persist(PersistMode::SyncData).map_err(engine)?;
            Ok(removed)
        })
        .await
    }

    /// Flushes every partition's memtable to disk and compacts it fully, so
    /// that overwritten and deleted rows give their disk space back at once
    /// (fjall also does both over time on its own).
    pub async fn compact(&self) -> Result<(), StoreError> {
        self.blocking(|inner| {
            // Not while a sweep retires segments (see `expire_before`).
            let _writer = inner.writer.lock().map_err(lock_error)?;
            let segments = inner.segments.read().map_err(lock_error)?.all().cloned().collect::<Vec<_>>();
            let partitions = segments.iter().flat_map(|segment| segment.partitions());
            for partition in partitions.chain([&inner.tombstones, &inner.meta]) {
                partition.rotate_memtable_and_wait().map_err(engine)?;
                partition.major_compact().map_err(engine)?;
            }
            Ok(())
        })
        .await
    }

    /// The same store with other read limits (work per read, deadline, reads at once).
    pub fn with_read_limits(mut self, limits: crate::ReadLimits) -> EmbeddedStore {
        self.reads = crate::ReadGate::new(limits);
        self
    }

    /// Bytes on disk (journal and segments).
    pub fn disk_space(&self) -> u64 {
        self.inner.keyspace.disk_space()
    }

    /// How many time segments the store holds (the limbo included).
    pub fn segment_count(&self) -> usize {
        self.inner.segments.read().map(|segments| segments.all().count()).unwrap_or(0)
    }

    /// Expired segments whose files are not deleted yet (they go at a later
    /// sweep, once fjall has flushed what they held).
    pub fn segments_awaiting_drop(&self) -> usize {
        self.inner.retiring.lock().map(|retiring| retiring.len()).unwrap_or(0)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store.inner))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?
    }
}

fn retention_ms(retention: Option<std::time::Duration>) -> i64 {
    retention.map_or(0, |retention| i64::try_from(retention.as_millis()).unwrap_or(i64::MAX).max(1))
}

#[async_trait::async_trait]
impl PostStore for EmbeddedStore {
    async fn apply(&self, batch: WriteBatch) -> Result<Applied, StoreError> {
        self.blocking(move |inner| inner.apply(batch)).await
    }

    async fn get(&self, ids: &[String]) -> Result<Vec<StoredPost>, StoreError> {
        let ids = ids.to_vec();
        self.blocking(move |inner| {
            let mut found = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(located) = inner.locate(id, None)? {
                    found.push(inner.resolve(located.post, |id| inner.load_post(id))?);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn timeline(&self, reader: &Reader, query: &Query, range: Range, limit: usize) -> Result<Page, StoreError> {
        let query = query.clone();
        let mut range = range;
        if let Some(horizon_ms) = self.horizon_ms() {
            // Nothing older than the horizon is read: a walk ends there.
            let horizon = Cursor::at_time(horizon_ms);
            if range.after.as_ref().is_none_or(|after| *after < horizon) {
                range.after = Some(horizon);
            }
        }
        let mut work = self.reads.enter(reader).await?;
        // The budget holds the read slot: it goes back when the read on the
        // blocking pool ends, even if this request goes away first.
        self.blocking(move |inner| {
            let page = inner.timeline(&query, &range, limit, &mut work)?;
            Ok(Page { work: work.spent(), ..page })
        })
        .await
    }

    async fn checkpoint(&self, source: &str) -> Result<Option<String>, StoreError> {
        let key = [CHECKPOINT_PREFIX, source.as_bytes()].concat();
        self.blocking(move |inner| {
            let value = inner.meta.get(&key).map_err(engine)?;
            Ok(value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
        })
        .await
    }

    async fn scan_since(
        &self,
        since_ms: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<StoredPost>, StoreError> {
        let after = after.cloned();
        self.blocking(move |inner| {
            let prefix = posting_prefix(&Term::all());
            let start = match &after {
                Some(after) => Bound::Excluded([prefix.as_slice(), after.as_bytes()].concat()),
                None => Bound::Included([prefix.as_slice(), Cursor::at_time(since_ms).as_bytes()].concat()),
            };
            let from_ms = after.as_ref().map_or(since_ms, Cursor::created_ms);
            let mut oldest_first = inner.segments.read().map_err(lock_error)?.newest_first();
            oldest_first.reverse();
            let mut posts = Vec::new();
            for segment in oldest_first.iter().filter(|segment| segment.end > from_ms) {
                for item in segment.postings.range((start.clone(), Bound::Excluded(posting_end(&prefix)))) {
                    if posts.len() >= limit {
                        return Ok(posts);
                    }
                    let (key, _) = item.map_err(engine)?;
                    let Ok(cursor) = Cursor::from_bytes(&key[prefix.len()..]) else {
                        crate::skip_unreadable("posting", &key, &"not a cursor");
                        continue;
                    };
                    if let Some(located) = inner.locate(cursor.id(), Some(cursor.created_ms()))? {
                        posts.push(inner.resolve(located.post, |id| inner.load_post(id))?);
                    }
                }
            }
            Ok(posts)
        })
        .await
    }

    async fn newest(&self) -> Result<Option<Cursor>, StoreError> {
        self.blocking(|inner| inner.newest()).await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let segments = self.inner.segments.read().map_err(lock_error)?;
        Ok(segments.all().map(|segment| segment.posts.approximate_len() as u64).sum())
    }

    fn horizon_ms(&self) -> Option<i64> {
        self.inner.horizon_ms()
    }
}

fn corrupt(key: &[u8], reason: &str) -> StoreError {
    StoreError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), reason: reason.to_owned() }
}

fn posting_prefix(term: &Term) -> Vec<u8> {
    keys::length_prefixed(&keys::term_key(term))
}

/// The first key after every key of a posting list.
fn posting_end(prefix: &[u8]) -> Vec<u8> {
    // A length-prefixed term starts with at most 0x02: never all 0xFF.
    keys::prefix_end(prefix).unwrap_or_else(|| vec![0xFF; prefix.len() + 1])
}

/// The `retweets` key of one retweet; its prefix, `len(original) original`
/// alone, is the key of the segment's count of the original's retweets.
fn retweet_key(original_id: &str, retweet_id: &str) -> Vec<u8> {
    [keys::length_prefixed(original_id).as_slice(), retweet_id.as_bytes()].concat()
}

fn encode_post(post: &Post) -> Result<Vec<u8>, StoreError> {
    crate::codec::encode(post).map_err(|error| StoreError::Engine(format!("encode post {}: {error}", post.id)))
}

/// Stale tombstone keys found by one step of the sweep, and the key to go on
/// after (`None` at the end).
type StaleTombstones = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// A tombstone older than the horizon, or without a readable time.
fn tombstone_is_stale(value: &[u8], horizon_ms: i64) -> bool {
    decode_i64(value).is_none_or(|stamp_ms| stamp_ms < horizon_ms)
}

fn decode_i64(bytes: &[u8]) -> Option<i64> {
    <[u8; 8]>::try_from(bytes).ok().map(i64::from_be_bytes)
}

/// What the batch being built has written so far, so later events in the
/// same batch see earlier ones.
#[derive(Default)]
struct Pending {
    /// `None`: deleted in this batch.
    posts: HashMap<String, Option<Located>>,
    /// Original → segment start → that segment's count of its retweets
    /// (nested, so that a lookup by `&str` allocates nothing).
    retweet_counts: HashMap<String, HashMap<i64, u64>>,
    retweets_seen: HashSet<(String, String)>,
    retweets_removed: HashSet<(String, String)>,
    /// The posts whose postings the batch adds or removes, indexed at
    /// commit (see [`Pending::commit_postings`]).
    indexing: Vec<Indexing>,
    /// The posts whose body the batch (re)writes, each written once at
    /// commit in its final state (see [`Pending::commit_bodies`]).
    bodies: HashSet<String>,
    /// New posts that went to the limbo segment ([`Applied::stored_behind_horizon`]).
    stored_behind_horizon: u64,
}

/// Times the phases of one batch write into `deck_store_write_seconds_total`.
struct Phases(std::time::Instant);

impl Phases {
    fn start() -> Phases {
        Phases(std::time::Instant::now())
    }

    /// Counts the time since the previous phase ended towards `phase`.
    fn done(&mut self, phase: &str) {
        let now = std::time::Instant::now();
        telemetry::STORE_WRITE_SECONDS_TOTAL.with_label_values(&[phase]).inc_by((now - self.0).as_secs_f64());
        self.0 = now;
    }
}

/// A post whose postings the batch adds (`insert`) or removes.
struct Indexing {
    segment: Arc<Segment>,
    stored: StoredPost,
    insert: bool,
}

/// One posting written (`insert`) or removed by the batch being built.
struct PostingWrite<'a> {
    segment: &'a Segment,
    key: Vec<u8>,
    insert: bool,
    /// The [`Indexing`] it came from, so that two writes of one key keep
    /// the batch's order (a post's own terms are distinct).
    order: usize,
}

/// Below this many posts, a batch is indexed on the writer's thread alone.
const PARALLEL_INDEXING_MIN: usize = 64;

impl Pending {
    fn is_deleted(&self, id: &str) -> bool {
        matches!(self.posts.get(id), Some(None))
    }

    /// Adds (`insert`) or removes the postings of `stored` (as resolved,
    /// so a retweet is indexed by its original's text) in `segment`.
    fn index(&mut self, segment: &Arc<Segment>, stored: StoredPost, insert: bool) {
        self.indexing.push(Indexing { segment: Arc::clone(segment), stored, insert });
    }

    /// Writes the body of each post the batch stored or changed, once, as
    /// it stands at the end of the batch (a popular original that 1,000
    /// retweets in the batch count up is encoded and written once, not
    /// 1,000 times), in id order. A post deleted in the batch has none:
    /// its removal, written when it was deleted, stands.
    fn commit_bodies(&mut self, fjall_batch: &mut fjall::Batch) -> Result<(), StoreError> {
        let mut ids: Vec<String> = self.bodies.drain().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(Some(Located { segment, post })) = self.posts.get(&id) {
                fjall_batch.insert(&segment.posts, id.as_bytes(), encode_post(post)?);
            }
        }
        Ok(())
    }

    /// Puts the batch's posting writes into `fjall_batch`, sorted by
    /// segment and key.
    /// - A batch holds ~40 postings per post spread over hundreds of posting
    ///   lists. Inserted in key order, consecutive memtable inserts walk the
    ///   same skip-list path (in cache) instead of a random one each: fjall's
    ///   commit fell from 30 % to 19 % of a replay's CPU samples.
    /// - The posts' terms (tokenizing, the largest CPU cost of a batch
    ///   outside fjall) are found on up to two threads, each sorting its
    ///   share; the sorted runs are then merged.
    /// - Two writes of one key keep the batch's order (the later wins).
    fn commit_postings(&mut self, fjall_batch: &mut fjall::Batch) {
        let indexing = std::mem::take(&mut self.indexing);
        let mut writes = if indexing.len() < PARALLEL_INDEXING_MIN {
            posting_writes(&indexing, 0)
        } else {
            let half = indexing.len().div_ceil(2);
            let (first, second) = indexing.split_at(half);
            std::thread::scope(|scope| {
                let other = scope.spawn(|| posting_writes(second, half));
                let mut writes = posting_writes(first, 0);
                match other.join() {
                    Ok(more) => writes.extend(more),
                    // A panic while tokenizing: the same panic as on one thread.
                    Err(panic) => std::panic::resume_unwind(panic),
                }
                writes
            })
        };
        // Two sorted runs: the stable sort merges them in linear time.
        writes.sort_by(posting_order);
        for PostingWrite { segment, key, insert, .. } in writes {
            if insert {
                fjall_batch.insert(&segment.postings, key, []);
            } else {
                fjall_batch.remove(&segment.postings, key);
            }
        }
    }
}

/// The posting writes of `indexing` (numbered from `first_order`), sorted.
fn posting_writes(indexing: &[Indexing], first_order: usize) -> Vec<PostingWrite<'_>> {
    let mut writes = Vec::with_capacity(indexing.len() * 48);
    for (order, Indexing { segment, stored, insert }) in (first_order..).zip(indexing) {
        let cursor = stored.post.cursor();
        for term in Doc::new(stored).terms() {
            let term = keys::term_key(&term);
            let mut key = Vec::with_capacity(2 + term.len() + cursor.as_bytes().len());
            keys::push_length_prefixed(&mut key, &term);
            key.extend_from_slice(cursor.as_bytes());
            writes.push(PostingWrite { segment, key, insert: *insert, order });
        }
    }
    writes.sort_unstable_by(posting_order);
    writes
}

fn posting_order(a: &PostingWrite, b: &PostingWrite) -> std::cmp::Ordering {
    (a.segment.start, &a.key, a.order).cmp(&(b.segment.start, &b.key, b.order))
}

impl Inner {
    /// Checks the data dir's format version: writes it into a new store,
    /// migrates format 2, refuses one written by a newer (or an older,
    /// incompatible) format.
    /// Flushes the memtables fjall recovered from its journal, before the
    /// first new write.
    ///
    /// fjall 2.11 queues one flush task per recovered memtable but wakes its
    /// flusher once per partition (fjall-rs/fjall#257, fixed only in fjall
    /// 3). After a crash with several journals, tasks stayed queued, the
    /// write buffer stayed full, and every write halted for good ("write
    /// halt because of write buffer saturation", ingest at 0 while reads
    /// went on). The flusher now takes [`FLUSH_TASKS_PER_WAKE`] tasks per
    /// wake-up; if some still wait, each rotation of `meta` (one more task,
    /// one more wake-up) lets it take that many more.
    fn flush_recovered(&self) -> Result<(), StoreError> {
        let mut partitions = vec![self.meta.clone(), self.tombstones.clone()];
        for segment in self.segments.read().map_err(lock_error)?.all() {
            partitions.extend(segment.partitions().into_iter().cloned());
        }
        let waiting = || partitions.iter().map(|partition| partition.tree.sealed_memtable_count()).sum::<usize>();
        let recovered = waiting();
        if recovered == 0 {
            return Ok(());
        }
        tracing::info!(memtables = recovered, "flushing the memtables recovered from the journal");
        let (mut fewest, mut since_progress, mut since_nudge) =
            (recovered, std::time::Instant::now(), std::time::Instant::now());
        loop {
            let now_waiting = waiting();
            if now_waiting == 0 {
                return Ok(());
            }
            if now_waiting < fewest {
                (fewest, since_progress) = (now_waiting, std::time::Instant::now());
            } else if since_progress.elapsed() >= RECOVERY_FLUSH_STALL {
                return Err(StoreError::Engine(format!(
                    "{now_waiting} memtables recovered from the journal were not flushed in {} s",
                    RECOVERY_FLUSH_STALL.as_secs()
                )));
            }
            if since_nudge.elapsed() >= std::time::Duration::from_millis(500) {
                self.meta.insert(FLUSH_NUDGE_KEY, []).map_err(engine)?;
                self.meta.rotate_memtable().map_err(engine)?;
                since_nudge = std::time::Instant::now();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn check_format(&self, dir: &Path) -> Result<(), StoreError> {
        let legacy_data = ["posts", "postings"].iter().any(|name| self.keyspace.partition_exists(name));
        match self.meta.get(FORMAT_KEY).map_err(engine)? {
            Some(bytes) => {
                let version = <[u8; 4]>::try_from(&bytes[..]).map(u32::from_be_bytes).map_err(|_| {
                    StoreError::Format(format!("{}: unreadable format version {bytes:?}", dir.display()))
                })?;
                if version > FORMAT_VERSION {
                    return Err(StoreError::Format(format!(
                        "{} was written by a newer Deck (data format {version}; this build reads format \
                         {FORMAT_VERSION}): upgrade Deck or use another --data-dir",
                        dir.display()
                    )));
                }
                if version == 2 {
                    return self.migrate_from_2(dir);
                }
                if version < FORMAT_VERSION {
                    return Err(StoreError::Format(format!(
                        "{} holds data format {version}, which this build (format {FORMAT_VERSION}) cannot read: \
                         move it aside and let the sources fill a new one",
                        dir.display()
                    )));
                }
                self.drop_legacy_partitions()
            }
            None if !legacy_data && self.segments.read().map_err(lock_error)?.all().next().is_none() => {
                self.meta.insert(FORMAT_KEY, FORMAT_VERSION.to_be_bytes()).map_err(engine)?;
                self.keyspace.persist(PersistMode::SyncData).map_err(engine)
            }
            None => Err(StoreError::Format(format!(
                "{} holds data format 1 (written before format versions), which this build (format \
                 {FORMAT_VERSION}) cannot read: move it aside and let the sources fill a new one",
                dir.display()
            ))),
        }
    }

    /// Format 2 → 3: every stored post, oldest first, is written again into
    /// its time segment (with its postings, and its retweet rows when it is
    /// a retweet), the tombstones get the time of the migration, and the
    /// old partitions are dropped. Interrupted, it starts again at the next
    /// open: writing a post again is idempotent.
    fn migrate_from_2(&self, dir: &Path) -> Result<(), StoreError> {
        let open = |name: &str| self.keyspace.open_partition(name, PartitionCreateOptions::default()).map_err(engine);
        let (old_posts, old_postings) = (open("posts")?, open("postings")?);
        tracing::info!(dir = %dir.display(), posts = old_posts.approximate_len(), "migrating the post store from format 2 to 3 (time segments)");
        let prefix = posting_prefix(&Term::all());
        if let Some(item) = old_postings.range(prefix.clone()..posting_end(&prefix)).next_back() {
            let (key, _) = item.map_err(engine)?;
            if let Ok(cursor) = Cursor::from_bytes(&key[prefix.len()..]) {
                self.newest_ms.store(cursor.created_ms(), Ordering::Relaxed);
            }
        }
        let mut lower = Bound::Included(prefix.clone());
        loop {
            let mut events = Vec::new();
            let mut last_key = None;
            for item in
                old_postings.range((lower.clone(), Bound::Excluded(posting_end(&prefix)))).take(MAINTENANCE_CHUNK)
            {
                let (key, _) = item.map_err(engine)?;
                if let Ok(cursor) = Cursor::from_bytes(&key[prefix.len()..])
                    && let Some(bytes) = old_posts.get(cursor.id()).map_err(engine)?
                {
                    match crate::codec::decode(&bytes) {
                        Ok(post) => events.push(PostEvent::Upsert(PostBundle::single(post))),
                        Err(error) => crate::skip_unreadable("post", cursor.id().as_bytes(), &error),
                    }
                }
                last_key = Some(key.to_vec());
            }
            let Some(last_key) = last_key else {
                break;
            };
            self.apply(WriteBatch { events, checkpoints: Vec::new() })?;
            lower = Bound::Excluded(last_key);
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut batch = self.keyspace.batch();
        for (n_rewritten, item) in self.tombstones.iter().enumerate() {
            let (key, _) = item.map_err(engine)?;
            batch.insert(&self.tombstones, key, now_ms.to_be_bytes());
            if n_rewritten % MAINTENANCE_CHUNK == MAINTENANCE_CHUNK - 1 {
                std::mem::replace(&mut batch, self.keyspace.batch()).commit().map_err(engine)?;
            }
        }
        for item in self.meta.prefix(LEGACY_RETWEET_COUNT_PREFIX) {
            batch.remove(&self.meta, item.map_err(engine)?.0.to_vec());
        }
        batch.insert(&self.meta, FORMAT_KEY, FORMAT_VERSION.to_be_bytes());
        batch.commit().map_err(engine)?;
        self.keyspace.persist(PersistMode::SyncData).map_err(engine)?;
        self.drop_legacy_partitions()?;
        tracing::info!(dir = %dir.display(), "post store migrated to format 3");
        Ok(())
    }

    /// Deletes format 2's partitions (after the migration, or at the next
    /// open if it stopped in between), once fjall has flushed what they held
    /// (see [`Inner::expire_before`] for why): at start-up, before anything
    /// else writes.
    fn drop_legacy_partitions(&self) -> Result<(), StoreError> {
        for name in ["posts", "postings", "retweets"] {
            if !self.keyspace.partition_exists(name) {
                continue;
            }
            let partition = self.keyspace.open_partition(name, PartitionCreateOptions::default()).map_err(engine)?;
            partition.rotate_memtable_and_wait().map_err(engine)?;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while partition.tree.sealed_memtable_count() > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            // The flusher's bookkeeping follows the flush within microseconds.
            std::thread::sleep(std::time::Duration::from_millis(100));
            self.keyspace.delete_partition(partition).map_err(engine)?;
        }
        Ok(())
    }

    fn horizon_ms(&self) -> Option<i64> {
        let retention_ms = u64::try_from(self.retention_ms.load(Ordering::Relaxed)).ok().filter(|ms| *ms > 0)?;
        Some(crate::horizon_of(std::time::Duration::from_millis(retention_ms), self.newest_ms.load(Ordering::Relaxed)))
    }

    fn segment_width_ms(&self) -> i64 {
        let retention_ms = u64::try_from(self.retention_ms.load(Ordering::Relaxed)).ok().filter(|ms| *ms > 0);
        segments::width_for(retention_ms.map(std::time::Duration::from_millis))
    }

    /// The newest cursor stored (at or above the horizon).
    fn newest(&self) -> Result<Option<Cursor>, StoreError> {
        let prefix = posting_prefix(&Term::all());
        let segments = self.segments.read().map_err(lock_error)?.newest_first();
        for segment in segments {
            if let Some(item) = segment.postings.range(prefix.clone()..posting_end(&prefix)).next_back() {
                let (key, _) = item.map_err(engine)?;
                return Cursor::from_bytes(&key[prefix.len()..]).map(Some).map_err(|_| corrupt(&key, "bad cursor"));
            }
        }
        Ok(None)
    }

    /// Retires the segments wholly behind `horizon_ms` (and the limbo),
    /// deletes the segments retired earlier that are ready, then removes
    /// the tombstones older than the horizon. Returns fjall's estimate of
    /// the rows of the `posts` partitions retired now.
    ///
    /// Deleting is two-phase because fjall 2.11's flusher panics when a
    /// partition is deleted while one of its memtables is being flushed
    /// (it dequeues the task from the removed partition's queue). A retired
    /// segment leaves every read and write at once and its memtables are
    /// sealed (queued for flushing); nothing writes to it again. A later
    /// sweep sees it fully flushed (no sealed memtables), and the sweep
    /// after that, when even the flusher's bookkeeping for it is long done,
    /// deletes its partitions: the disk comes back two sweeps after the
    /// horizon passes (two tenths of the retention, at most two minutes).
    fn expire_before(&self, horizon_ms: i64) -> Result<usize, StoreError> {
        let n_expired = self.retire_segments(horizon_ms)?;
        self.sweep_tombstones(horizon_ms)?;
        self.keyspace.persist(PersistMode::SyncData).map_err(engine)?;
        Ok(n_expired)
    }

    /// The segment half of [`Inner::expire_before`], under the writer lock:
    /// deletes the retired segments that are ready and retires the expired
    /// ones. Returns fjall's row estimate of the segments retired now.
    fn retire_segments(&self, horizon_ms: i64) -> Result<usize, StoreError> {
        let _writer = self.writer.lock().map_err(lock_error)?;
        let mut retiring = self.retiring.lock().map_err(lock_error)?;
        let mut kept = Vec::new();
        for Retiring { segment, flushed } in std::mem::take(&mut *retiring) {
            if flushed {
                tracing::debug!(start = segment.start, end = segment.end, "deleting an expired segment");
                let deleted = segment
                    .partitions()
                    .into_iter()
                    .try_for_each(|partition| self.keyspace.delete_partition(partition.clone()));
                if let Err(error) = deleted {
                    // Kept, and tried again at the next sweep (a restart
                    // also finds it and retires it again).
                    tracing::warn!(%error, start = segment.start, end = segment.end, "could not delete an expired segment");
                    kept.push(Retiring { segment, flushed });
                }
            } else {
                let flushed = segment.partitions().iter().all(|partition| partition.tree.sealed_memtable_count() == 0);
                kept.push(Retiring { segment, flushed });
            }
        }
        let mut n_expired = 0;
        for segment in self.segments.write().map_err(lock_error)?.take_expired(horizon_ms) {
            n_expired += segment.posts.approximate_len();
            for partition in segment.partitions() {
                partition.rotate_memtable().map_err(engine)?;
            }
            kept.push(Retiring { segment, flushed: false });
        }
        *retiring = kept;
        drop(retiring);
        Ok(n_expired)
    }

    /// Removes the tombstones older than the horizon, [`MAINTENANCE_CHUNK`]
    /// at a time. The stale keys are found without the writer lock, which
    /// each chunk then takes only to check its keys again and remove them:
    /// ingest waits for at most one chunk of point reads, never for a walk
    /// over every tombstone (one per delete within the retention), and a
    /// tombstone that a delete refreshed in between is kept. Returns how
    /// many were removed.
    fn sweep_tombstones(&self, horizon_ms: i64) -> Result<usize, StoreError> {
        let mut n_removed = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let (stale, last) = self.stale_tombstones(after.as_deref(), horizon_ms, MAINTENANCE_CHUNK)?;
            n_removed += self.remove_stale_tombstones(&stale, horizon_ms)?;
            match last {
                Some(last) => after = Some(last),
                None => return Ok(n_removed),
            }
        }
    }

    /// Up to `max` tombstone keys after `after` (from the first if `None`)
    /// older than the horizon, and the key to continue after (`None` when
    /// the walk reached the end).
    fn stale_tombstones(
        &self,
        after: Option<&[u8]>,
        horizon_ms: i64,
        max: usize,
    ) -> Result<StaleTombstones, StoreError> {
        let lower = after.map_or(Bound::Unbounded, |after| Bound::Excluded(after.to_vec()));
        let mut stale = Vec::new();
        for item in self.tombstones.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
            let (key, value) = item.map_err(engine)?;
            if tombstone_is_stale(&value, horizon_ms) {
                stale.push(key.to_vec());
                if stale.len() == max {
                    return Ok((stale, Some(key.to_vec())));
                }
            }
        }
        Ok((stale, None))
    }

    /// Removes those of `keys` whose tombstone is still older than the
    /// horizon, under the writer lock. Returns how many.
    fn remove_stale_tombstones(&self, keys: &[Vec<u8>], horizon_ms: i64) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let _writer = self.writer.lock().map_err(lock_error)?;
        let mut batch = self.keyspace.batch();
        let mut n_removed = 0;
        for key in keys {
            if self.tombstones.get(key).map_err(engine)?.is_some_and(|value| tombstone_is_stale(&value, horizon_ms)) {
                batch.remove(&self.tombstones, key.clone());
                n_removed += 1;
            }
        }
        batch.commit().map_err(engine)?;
        Ok(n_removed)
    }

    /// A stored post and its segment: first the segment of `hint_ms` (the
    /// post's time, when known), then the others. `None` if absent, if the
    /// id is too long to be stored, or if the stored bytes do not decode
    /// (counted and logged).
    fn locate(&self, id: &str, hint_ms: Option<i64>) -> Result<Option<Located>, StoreError> {
        if !keys::id_fits(id) {
            return Ok(None);
        }
        let order = self.segments.read().map_err(lock_error)?.probe_order(hint_ms);
        for segment in order {
            let Some(bytes) = segment.posts.get(id).map_err(engine)? else {
                continue;
            };
            return match crate::codec::decode(&bytes) {
                Ok(post) => Ok(Some(Located { segment, post })),
                Err(error) => {
                    crate::skip_unreadable("post", id.as_bytes(), &error);
                    Ok(None)
                }
            };
        }
        Ok(None)
    }

    fn load_post(&self, id: &str) -> Result<Option<Post>, StoreError> {
        Ok(self.locate(id, None)?.map(|located| located.post))
    }

    fn resolve(
        &self,
        post: Post,
        mut load: impl FnMut(&str) -> Result<Option<Post>, StoreError>,
    ) -> Result<StoredPost, StoreError> {
        let retweeted = match &post.retweeted_id {
            Some(id) => load(id)?.map(Box::new),
            None => None,
        };
        let quoted = match &post.quoted_id {
            Some(id) => load(id)?.map(Box::new),
            None => None,
        };
        Ok(StoredPost { post, retweeted, quoted })
    }

    fn pending_or_located(
        &self,
        pending: &Pending,
        id: &str,
        hint_ms: Option<i64>,
    ) -> Result<Option<Located>, StoreError> {
        match pending.posts.get(id) {
            Some(located) => Ok(located.clone()),
            None => self.locate(id, hint_ms),
        }
    }

    fn pending_or_stored(&self, pending: &Pending, id: &str) -> Result<Option<Post>, StoreError> {
        Ok(self.pending_or_located(pending, id, None)?.map(|located| located.post))
    }

    /// The segment a post of event time `ms` is written to (made if needed).
    fn segment_for_write(&self, ms: i64) -> Result<Arc<Segment>, StoreError> {
        // Nearly every post lands in an existing span: a read lock finds it.
        if let Some(segment) = self.segments.read().map_err(lock_error)?.holding(ms) {
            return Ok(segment);
        }
        let width_ms = self.segment_width_ms();
        let horizon_ms = self.horizon_ms();
        self.segments.write().map_err(lock_error)?.for_write(&self.keyspace, ms, width_ms, horizon_ms)
    }

    /// One segment's count of `original_id`'s retweets.
    fn segment_retweet_count(
        &self,
        pending: &Pending,
        segment: &Segment,
        original_id: &str,
    ) -> Result<u64, StoreError> {
        if let Some(count) = pending.retweet_counts.get(original_id).and_then(|counts| counts.get(&segment.start)) {
            return Ok(*count);
        }
        Ok(segment
            .retweets
            .get(keys::length_prefixed(original_id))
            .map_err(engine)?
            .and_then(|bytes| <[u8; 8]>::try_from(&bytes[..]).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// How many retweets of `original_id` the store has seen: the sum over
    /// the segments.
    fn retweet_count(&self, pending: &Pending, original_id: &str) -> Result<u64, StoreError> {
        let segments: Vec<Arc<Segment>> = self.segments.read().map_err(lock_error)?.all().cloned().collect();
        let mut total = 0u64;
        for segment in &segments {
            total = total.saturating_add(self.segment_retweet_count(pending, segment, original_id)?);
        }
        Ok(total)
    }

    fn apply(&self, batch: WriteBatch) -> Result<Applied, StoreError> {
        let _writer = self.writer.lock().map_err(lock_error)?;
        let mut phase = Phases::start();
        let mut fjall_batch = self.keyspace.batch();
        let mut pending = Pending::default();
        let mut inserted_ids: Vec<String> = Vec::new();
        let mut updated_ids: Vec<String> = Vec::new();
        let mut deleted: Vec<StoredPost> = Vec::new();

        for event in batch.events {
            match event {
                PostEvent::Upsert(PostBundle { post, .. }) if !keys::id_fits(&post.id) => {
                    crate::refuse_post(&post.id);
                }
                PostEvent::Delete { id } if !keys::id_fits(&id) => {
                    // Never stored, so nothing to delete or to keep deleted.
                }
                PostEvent::Upsert(PostBundle { post, retweeted, quoted }) => {
                    let embedded_posts = [retweeted, quoted].into_iter().flatten().filter(|embedded| {
                        let fits = keys::id_fits(&embedded.id);
                        if !fits {
                            crate::refuse_post(&embedded.id);
                        }
                        fits
                    });
                    for embedded in embedded_posts {
                        self.upsert_one(
                            *embedded,
                            &mut fjall_batch,
                            &mut pending,
                            &mut inserted_ids,
                            &mut updated_ids,
                        )?;
                    }
                    // An original whose id cannot be stored is never counted.
                    let retweet_of = (post.kind == Kind::Retweet)
                        .then(|| post.retweeted_id.clone())
                        .flatten()
                        .filter(|original_id| keys::id_fits(original_id));
                    let retweet_id = post.id.clone();
                    let is_new =
                        self.upsert_one(post, &mut fjall_batch, &mut pending, &mut inserted_ids, &mut updated_ids)?;
                    let retweet_segment = match pending.posts.get(&retweet_id) {
                        Some(Some(located)) => Some(Arc::clone(&located.segment)),
                        _ => None,
                    };
                    if let (true, Some(original_id), Some(segment)) = (is_new, retweet_of, retweet_segment) {
                        self.count_retweet(
                            &original_id,
                            &retweet_id,
                            &segment,
                            &mut fjall_batch,
                            &mut pending,
                            &mut updated_ids,
                        )?;
                    }
                }
                PostEvent::Delete { id } => {
                    self.delete_one(&id, &mut fjall_batch, &mut pending, &mut deleted)?;
                }
            }
        }
        phase.done("read");
        pending.commit_bodies(&mut fjall_batch)?;
        phase.done("bodies");
        pending.commit_postings(&mut fjall_batch);
        phase.done("postings");
        for (source, checkpoint) in &batch.checkpoints {
            fjall_batch.insert(&self.meta, [CHECKPOINT_PREFIX, source.as_bytes()].concat(), checkpoint.as_bytes());
        }
        fjall_batch.commit().map_err(engine)?;
        phase.done("commit");
        self.keyspace.persist(PersistMode::SyncData).map_err(engine)?;
        phase.done("fsync");

        // What changed, from the batch's own final state (no re-read).
        let deleted_ids: HashSet<&str> = deleted.iter().map(|post| post.post.id.as_str()).collect();
        let mut applied = Applied::default();
        let mut seen = HashSet::new();
        for (ids, changed) in [(&inserted_ids, &mut applied.inserted), (&updated_ids, &mut applied.updated)] {
            for id in ids {
                if deleted_ids.contains(id.as_str()) || !seen.insert(id.as_str()) {
                    continue;
                }
                if let Some(Some(located)) = pending.posts.get(id) {
                    changed.push(self.resolve(located.post.clone(), |id| self.pending_or_stored(&pending, id))?);
                }
            }
        }
        applied.deleted = deleted;
        applied.stored_behind_horizon = pending.stored_behind_horizon;
        Ok(applied)
    }

    /// Stores one post; returns whether it was new.
    fn upsert_one(
        &self,
        mut post: Post,
        fjall_batch: &mut fjall::Batch,
        pending: &mut Pending,
        inserted_ids: &mut Vec<String>,
        updated_ids: &mut Vec<String>,
    ) -> Result<bool, StoreError> {
        if self.tombstones.contains_key(&post.id).map_err(engine)? || pending.is_deleted(&post.id) {
            return Ok(false);
        }
        let seen_retweets = self.retweet_count(pending, &post.id)?;
        let created_ms = post.created_at.timestamp_millis();
        match self.pending_or_located(pending, &post.id, Some(created_ms))? {
            None => {
                post.counts.retweets = post.counts.retweets.max(seen_retweets);
                let stored = self.resolve(post.clone(), |id| self.pending_or_stored(pending, id))?;
                let segment = self.segment_for_write(created_ms)?;
                pending.index(&segment, stored, true);
                pending.bodies.insert(post.id.clone());
                self.newest_ms.fetch_max(created_ms, Ordering::Relaxed);
                // A post behind the horizon (in the limbo segment: an old
                // original a fresh retweet carries) is kept for what refers
                // to it until the next sweep, but no read will show it, so
                // it is no new post for the live columns either.
                if segment.is_limbo() {
                    pending.stored_behind_horizon += 1;
                } else {
                    inserted_ids.push(post.id.clone());
                }
                pending.posts.insert(post.id.clone(), Some(Located { segment, post }));
                Ok(true)
            }
            Some(Located { segment: old_segment, post: old }) => {
                let (merged, content_changed) = match crate::merge_redelivery(&old, post, seen_retweets) {
                    crate::Merge::Unchanged => return Ok(false),
                    crate::Merge::Counts(merged) => (merged, false),
                    crate::Merge::Content(merged) => (merged, true),
                };
                let segment = self.segment_for_write(merged.created_at.timestamp_millis())?;
                let moved = !Arc::ptr_eq(&segment, &old_segment);
                if content_changed || moved {
                    let old_stored = self.resolve(old.clone(), |id| self.pending_or_stored(pending, id))?;
                    pending.index(&old_segment, old_stored, false);
                    let new_stored = self.resolve(merged.clone(), |id| self.pending_or_stored(pending, id))?;
                    pending.index(&segment, new_stored, true);
                }
                if moved {
                    fjall_batch.remove(&old_segment.posts, merged.id.as_bytes());
                }
                pending.bodies.insert(merged.id.clone());
                updated_ids.push(merged.id.clone());
                pending.posts.insert(merged.id.clone(), Some(Located { segment, post: merged }));
                Ok(false)
            }
        }
    }

    /// Counts a new retweet, in the retweet's own segment, and raises the
    /// original's count where it is stored.
    fn count_retweet(
        &self,
        original_id: &str,
        retweet_id: &str,
        segment: &Arc<Segment>,
        fjall_batch: &mut fjall::Batch,
        pending: &mut Pending,
        updated_ids: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let pair = (original_id.to_owned(), retweet_id.to_owned());
        let key = retweet_key(original_id, retweet_id);
        // An empty retweet id would be the count's own key.
        if retweet_id.is_empty()
            || pending.retweets_seen.contains(&pair)
            || segment.retweets.contains_key(&key).map_err(engine)?
        {
            return Ok(());
        }
        let in_segment = self.segment_retweet_count(pending, segment, original_id)? + 1;
        fjall_batch.insert(&segment.retweets, key, []);
        fjall_batch.insert(&segment.retweets, keys::length_prefixed(original_id), in_segment.to_be_bytes());
        pending.retweets_seen.insert(pair);
        pending.retweet_counts.entry(original_id.to_owned()).or_default().insert(segment.start, in_segment);
        let count = self.retweet_count(pending, original_id)?;
        if let Some(Located { segment: original_segment, post: mut original }) =
            self.pending_or_located(pending, original_id, None)?
            && original.counts.retweets < count
        {
            original.counts.retweets = count;
            pending.bodies.insert(original.id.clone());
            updated_ids.push(original.id.clone());
            pending.posts.insert(original.id.clone(), Some(Located { segment: original_segment, post: original }));
        }
        Ok(())
    }

    fn delete_one(
        &self,
        id: &str,
        fjall_batch: &mut fjall::Batch,
        pending: &mut Pending,
        deleted: &mut Vec<StoredPost>,
    ) -> Result<(), StoreError> {
        let stamp_ms = match self.newest_ms.load(Ordering::Relaxed) {
            i64::MIN => chrono::Utc::now().timestamp_millis(),
            newest_ms => newest_ms,
        };
        fjall_batch.insert(&self.tombstones, id.as_bytes(), stamp_ms.to_be_bytes());
        let Some(Located { segment, post }) = self.pending_or_located(pending, id, None)? else {
            pending.posts.insert(id.to_owned(), None);
            return Ok(());
        };
        let stored = self.resolve(post.clone(), |id| self.pending_or_stored(pending, id))?;
        pending.index(&segment, stored.clone(), false);
        fjall_batch.remove(&segment.posts, id.as_bytes());
        pending.posts.insert(id.to_owned(), None);

        // A retweet that leaves takes its count off the original's tally.
        if let (Kind::Retweet, Some(original_id)) = (post.kind, &post.retweeted_id)
            && keys::id_fits(original_id)
            && !id.is_empty()
        {
            let pair = (original_id.clone(), id.to_owned());
            if !pending.retweets_removed.contains(&pair) {
                pending.retweets_removed.insert(pair);
                fjall_batch.remove(&segment.retweets, retweet_key(original_id, id));
                let count = self.segment_retweet_count(pending, &segment, original_id)?.saturating_sub(1);
                pending.retweet_counts.entry(original_id.clone()).or_default().insert(segment.start, count);
                fjall_batch.insert(&segment.retweets, keys::length_prefixed(original_id), count.to_be_bytes());
            }
        }
        deleted.push(stored);

        // Retweets of a deleted post go with it.
        let prefix = keys::length_prefixed(id);
        let segments: Vec<Arc<Segment>> = self.segments.read().map_err(lock_error)?.all().cloned().collect();
        let mut retweet_ids = Vec::new();
        for segment in &segments {
            for item in segment.retweets.prefix(&prefix) {
                let (key, _) = item.map_err(engine)?;
                // The key of the count itself names no retweet.
                if key.len() > prefix.len() {
                    retweet_ids.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
                }
            }
        }
        // And those counted earlier in this batch, not yet in the segments.
        retweet_ids.extend(
            pending.retweets_seen.iter().filter(|(original, _)| original == id).map(|(_, retweet)| retweet.clone()),
        );
        retweet_ids.sort_unstable();
        retweet_ids.dedup();
        for retweet_id in retweet_ids {
            if !pending.is_deleted(&retweet_id) {
                self.delete_one(&retweet_id, fjall_batch, pending, deleted)?;
            }
        }
        Ok(())
    }
}

/// One retention sweep of the background thread. It never ends the thread:
/// an error or a panic is logged, counted in
/// `deck_retention_sweeps_total{outcome="failed"}` (an alert in
/// `deploy/prometheus/alerts.yml`) and the sweep is tried again at the next
/// period. A panic under the writer lock poisons it, so the writes that
/// follow fail and the processor stops the process, loudly.
fn sweep(inner: &Inner, horizon_ms: i64) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.expire_before(horizon_ms)));
    let failed = match outcome {
        Ok(Ok(n_expired)) => {
            telemetry::RETENTION_EXPIRED_POSTS_TOTAL.inc_by(n_expired as u64);
            false
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "retention sweep failed; retrying at the next one");
            true
        }
        Err(panic) => {
            let message = telemetry::panic_message(panic.as_ref());
            tracing::error!(panic = %message, "retention sweep panicked; retrying at the next one");
            true
        }
    };
    telemetry::RETENTION_SWEEPS_TOTAL.with_label_values(&[if failed { "failed" } else { "ok" }]).inc();
}

#[cfg(test)]
mod tests;
