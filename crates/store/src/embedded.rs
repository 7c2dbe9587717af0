//! The embedded post store: fjall (an LSM-tree) holding posts by id and an
//! inverted index of posting lists keyed by term and cursor.
//!
//! Layout (one fjall keyspace, five partitions; keys are built by
//! [`crate::keys`], so that no value from outside can reach into another
//! key's range or past fjall's 65,535-byte key limit):
//! - `posts`: post id → postcard-encoded [`Post`] (a retweet stores only a
//!   reference to its original). Ids longer than [`model::MAX_ID_BYTES`] are
//!   refused.
//! - `postings`: `len(term) term cursor` → empty, the term length-prefixed
//!   (and hashed when over-long, see [`crate::keys::term_key`]). Every post has the term `*`, so
//!   the global time order is a posting list too. Timeline reads walk one
//!   posting list backwards and check the other terms of the conjunction with
//!   point lookups (bloom-filtered), then verify each candidate with the one
//!   matcher (`search::Query::matches_doc`): the index only narrows, the
//!   matcher decides, so history and live matching cannot disagree.
//! - `retweets`: `len(original id) original id, retweet id` → empty, the retweets seen,
//!   for idempotent counting and for deleting a deleted original's retweets.
//! - `tombstones`: deleted id → empty, so a re-delivered deleted post stays
//!   deleted (deletes and creates may arrive in any order under at-least-once).
//! - `meta`: the data-dir format version, source checkpoints and retweet
//!   counters.
//!
//! A read that meets an unreadable entry (a post that does not decode, a
//! posting that is not a cursor) skips it, counts it
//! (`deck_store_unreadable_total`) and logs it: one bad entry never fails a
//! page.
//!
//! Each [`WriteBatch`] is one atomic fjall batch followed by an fsync of the
//! journal (fjall does not fsync unless asked): acknowledged means durable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};
use model::{Cursor, Kind, Post, PostBundle, PostEvent, StoredPost};
use search::{Doc, Plan, Query, Term};

use crate::{Applied, Page, PostStore, Range, StoreError, Work, WriteBatch, keys};

/// Postings read from fjall per round trip of a scan.
const SCAN_CHUNK: usize = 256;
/// Postings sampled per term to guess which term of a conjunction is rarest.
const DENSITY_SAMPLE: usize = 32;

const CHECKPOINT_PREFIX: &[u8] = b"cp\0";
/// The `meta` key of the data-dir format version (`u32` big-endian).
const FORMAT_KEY: &[u8] = b"format";
/// The on-disk format this build writes and reads. 1: terms and retweet
/// pairs separated by 0x00 (no version key); 2: length-prefixed keys.
pub const FORMAT_VERSION: u32 = 2;
const RETWEET_COUNT_PREFIX: &[u8] = b"rc\0";

/// The fjall-backed store; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    reads: crate::ReadGate,
    /// Posts older than this (event time) leave the store (`--retention`).
    retention: Option<std::time::Duration>,
}

struct Inner {
    keyspace: Keyspace,
    posts: PartitionHandle,
    postings: PartitionHandle,
    retweets: PartitionHandle,
    tombstones: PartitionHandle,
    meta: PartitionHandle,
    /// One writer at a time: `apply` reads before it writes.
    writer: Mutex<()>,
    /// Event time (ms) of the newest post stored, `i64::MIN` when empty:
    /// where the retention horizon counts from.
    newest_ms: std::sync::atomic::AtomicI64,
}

fn engine(error: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(error.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        let keyspace = Config::new(dir)
            .cache_size(64 * 1024 * 1024)
            .max_write_buffer_size(128 * 1024 * 1024)
            .open()
            .map_err(engine)?;
        let open = |name: &str| keyspace.open_partition(name, PartitionCreateOptions::default()).map_err(engine);
        let inner = Inner {
            meta: open("meta")?,
            posts: open("posts")?,
            postings: open("postings")?,
            retweets: open("retweets")?,
            tombstones: open("tombstones")?,
            keyspace,
            writer: Mutex::new(()),
            newest_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
        };
        inner.check_format(dir)?;
        let all_prefix = posting_prefix(&Term::all());
        if let Some(item) = inner.postings.range(all_prefix.clone()..posting_end(&all_prefix)).next_back() {
            let (key, _) = item.map_err(engine)?;
            if let Ok(cursor) = Cursor::from_bytes(&key[all_prefix.len()..]) {
                inner.newest_ms.store(cursor.created_ms(), std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(EmbeddedStore {
            inner: Arc::new(inner),
            reads: crate::ReadGate::new(crate::ReadLimits::default()),
            retention: None,
        })
    }

    /// The same store with a retention: reads stop at the horizon (`now -
    /// retention`), and a background thread removes the posts behind it
    /// (their postings, retweet rows and counters) every `retention / 10`
    /// (at most every minute). The thread ends when the store is dropped.
    pub fn with_retention(mut self, retention: std::time::Duration) -> EmbeddedStore {
        self.retention = Some(retention);
        let weak = Arc::downgrade(&self.inner);
        let period = (retention / 10).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(60));
        let sweeper = std::thread::Builder::new().name("deck-retention".into()).spawn(move || {
            loop {
                std::thread::sleep(period);
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                if let Err(error) = inner.expire_before(inner.horizon_ms(retention)) {
                    tracing::warn!(%error, "retention sweep failed; retrying at the next one");
                }
            }
        });
        if let Err(error) = sweeper {
            tracing::warn!(%error, "could not start the retention thread; old posts stay");
        }
        self
    }

    /// Removes every post older than the retention horizon now (the
    /// background thread does this periodically); returns how many left.
    pub async fn expire_now(&self) -> Result<usize, StoreError> {
        let Some(retention) = self.retention else {
            return Ok(0);
        };
        self.blocking(move |inner| inner.expire_before(inner.horizon_ms(retention))).await
    }

    /// Compacts every partition fully, so that removed posts give their disk
    /// space back at once (fjall also does it over time on its own).
    pub async fn compact(&self) -> Result<(), StoreError> {
        self.blocking(|inner| {
            for partition in [&inner.posts, &inner.postings, &inner.retweets, &inner.tombstones, &inner.meta] {
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
                if let Some(post) = inner.load_resolved(id)? {
                    found.push(post);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn timeline(&self, query: &Query, range: Range, limit: usize) -> Result<Page, StoreError> {
        let query = query.clone();
        let mut range = range;
        if let Some(horizon_ms) = self.horizon_ms() {
            // Nothing older than the horizon is read: a walk ends there.
            let horizon = Cursor::at_time(horizon_ms);
            if range.after.as_ref().is_none_or(|after| *after < horizon) {
                range.after = Some(horizon);
            }
        }
        let (permit, mut work) = self.reads.enter().await?;
        let page = self.blocking(move |inner| inner.timeline(&query, &range, limit, &mut work)).await;
        drop(permit);
        page
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
            let end = posting_end(&prefix);
            let mut posts = Vec::new();
            for item in inner.postings.range((start, Bound::Excluded(end))) {
                if posts.len() >= limit {
                    break;
                }
                let (key, _) = item.map_err(engine)?;
                let Ok(cursor) = Cursor::from_bytes(&key[prefix.len()..]) else {
                    crate::skip_unreadable("posting", &key, &"not a cursor");
                    continue;
                };
                if let Some(post) = inner.load_resolved(cursor.id())? {
                    posts.push(post);
                }
            }
            Ok(posts)
        })
        .await
    }

    async fn newest(&self) -> Result<Option<Cursor>, StoreError> {
        self.blocking(|inner| {
            let prefix = posting_prefix(&Term::all());
            let newest = inner.postings.range(prefix.clone()..posting_end(&prefix)).next_back();
            match newest {
                None => Ok(None),
                Some(item) => {
                    let (key, _) = item.map_err(engine)?;
                    Cursor::from_bytes(&key[prefix.len()..]).map(Some).map_err(|_| corrupt(&key, "bad cursor"))
                }
            }
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.inner.posts.approximate_len() as u64)
    }

    fn horizon_ms(&self) -> Option<i64> {
        self.retention.map(|retention| self.inner.horizon_ms(retention))
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

/// The `retweets` key of one retweet, and the prefix of an original's retweets.
fn retweet_key(original_id: &str, retweet_id: &str) -> Vec<u8> {
    [keys::length_prefixed(original_id).as_slice(), retweet_id.as_bytes()].concat()
}

fn encode_post(post: &Post) -> Result<Vec<u8>, StoreError> {
    crate::codec::encode(post).map_err(|error| StoreError::Engine(format!("encode post {}: {error}", post.id)))
}

/// What the batch being built has written so far, so later events in the
/// same batch see earlier ones.
#[derive(Default)]
struct Pending {
    posts: HashMap<String, Option<Post>>,
    retweet_counts: HashMap<String, u64>,
    retweets_seen: HashSet<(String, String)>,
    retweets_removed: HashSet<(String, String)>,
}

impl Inner {
    /// Checks the data dir's format version: writes it into a new store,
    /// refuses one written by a newer (or an older, incompatible) format.
    fn check_format(&self, dir: &Path) -> Result<(), StoreError> {
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
                if version < FORMAT_VERSION {
                    return Err(StoreError::Format(format!(
                        "{} holds data format {version}, which this build (format {FORMAT_VERSION}) cannot read: \
                         move it aside and let the sources fill a new one",
                        dir.display()
                    )));
                }
                Ok(())
            }
            None if self.posts.is_empty().map_err(engine)? && self.postings.is_empty().map_err(engine)? => {
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

    fn horizon_ms(&self, retention: std::time::Duration) -> i64 {
        crate::horizon_of(retention, self.newest_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Removes the posts older than `horizon_ms`, oldest first, in batches:
    /// each post's postings (the terms of the post as stored now), its row,
    /// its retweet rows and counter. Returns how many posts left.
    fn expire_before(&self, horizon_ms: i64) -> Result<usize, StoreError> {
        const EXPIRE_CHUNK: usize = 4_096;
        let all_prefix = posting_prefix(&Term::all());
        let end = [all_prefix.as_slice(), Cursor::at_time(horizon_ms).as_bytes()].concat();
        let mut n_expired = 0;
        loop {
            let _writer = self.writer.lock().map_err(|_| StoreError::Task("writer lock poisoned".into()))?;
            let mut keys_of_chunk = Vec::new();
            for item in self.postings.range(all_prefix.clone()..end.clone()).take(EXPIRE_CHUNK) {
                keys_of_chunk.push(item.map_err(engine)?.0.to_vec());
            }
            if keys_of_chunk.is_empty() {
                return Ok(n_expired);
            }
            let mut fjall_batch = self.keyspace.batch();
            for key in keys_of_chunk {
                fjall_batch.remove(&self.postings, key.clone());
                let Ok(cursor) = Cursor::from_bytes(&key[all_prefix.len()..]) else {
                    continue;
                };
                let Some(post) = self.load_post(cursor.id())? else {
                    continue;
                };
                if post.cursor() != cursor {
                    continue;
                }
                let stored = self.resolve(post, |id| self.load_post(id))?;
                for term in Doc::new(&stored).terms() {
                    fjall_batch.remove(&self.postings, [posting_prefix(&term).as_slice(), cursor.as_bytes()].concat());
                }
                let id = stored.post.id.as_str();
                fjall_batch.remove(&self.posts, id.as_bytes());
                fjall_batch.remove(&self.meta, [RETWEET_COUNT_PREFIX, id.as_bytes()].concat());
                for item in self.retweets.prefix(keys::length_prefixed(id)) {
                    fjall_batch.remove(&self.retweets, item.map_err(engine)?.0.to_vec());
                }
                if let (Kind::Retweet, Some(original_id)) = (stored.post.kind, &stored.post.retweeted_id)
                    && keys::id_fits(original_id)
                {
                    fjall_batch.remove(&self.retweets, retweet_key(original_id, id));
                }
                n_expired += 1;
            }
            fjall_batch.commit().map_err(engine)?;
            self.keyspace.persist(PersistMode::SyncData).map_err(engine)?;
        }
    }

    /// A stored post; `None` if absent, if the id is too long to be stored,
    /// or if the stored bytes do not decode (counted and logged).
    fn load_post(&self, id: &str) -> Result<Option<Post>, StoreError> {
        if !keys::id_fits(id) {
            return Ok(None);
        }
        let Some(bytes) = self.posts.get(id).map_err(engine)? else {
            return Ok(None);
        };
        match crate::codec::decode(&bytes) {
            Ok(post) => Ok(Some(post)),
            Err(error) => {
                crate::skip_unreadable("post", id.as_bytes(), &error);
                Ok(None)
            }
        }
    }

    fn load_resolved(&self, id: &str) -> Result<Option<StoredPost>, StoreError> {
        let Some(post) = self.load_post(id)? else {
            return Ok(None);
        };
        self.resolve(post, |id| self.load_post(id)).map(Some)
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

    fn pending_or_stored(&self, pending: &Pending, id: &str) -> Result<Option<Post>, StoreError> {
        match pending.posts.get(id) {
            Some(post) => Ok(post.clone()),
            None => self.load_post(id),
        }
    }

    fn retweet_count(&self, pending: &Pending, original_id: &str) -> Result<u64, StoreError> {
        if let Some(count) = pending.retweet_counts.get(original_id) {
            return Ok(*count);
        }
        let key = [RETWEET_COUNT_PREFIX, original_id.as_bytes()].concat();
        Ok(self
            .meta
            .get(&key)
            .map_err(engine)?
            .and_then(|bytes| <[u8; 8]>::try_from(&bytes[..]).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    fn apply(&self, batch: WriteBatch) -> Result<Applied, StoreError> {
        let _writer = self.writer.lock().map_err(|_| StoreError::Task("writer lock poisoned".into()))?;
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
                    if let (true, Some(original_id)) = (is_new, retweet_of) {
                        self.count_retweet(
                            &original_id,
                            &retweet_id,
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
        for (source, checkpoint) in &batch.checkpoints {
            fjall_batch.insert(&self.meta, [CHECKPOINT_PREFIX, source.as_bytes()].concat(), checkpoint.as_bytes());
        }
        fjall_batch.commit().map_err(engine)?;
        self.keyspace.persist(PersistMode::SyncData).map_err(engine)?;

        // What changed, from the batch's own final state (no re-read).
        let deleted_ids: HashSet<&str> = deleted.iter().map(|post| post.post.id.as_str()).collect();
        let mut applied = Applied::default();
        let mut seen = HashSet::new();
        for (ids, changed) in [(&inserted_ids, &mut applied.inserted), (&updated_ids, &mut applied.updated)] {
            for id in ids {
                if deleted_ids.contains(id.as_str()) || !seen.insert(id.as_str()) {
                    continue;
                }
                if let Some(Some(post)) = pending.posts.get(id) {
                    changed.push(self.resolve(post.clone(), |id| self.pending_or_stored(&pending, id))?);
                }
            }
        }
        applied.deleted = deleted;
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
        if self.tombstones.contains_key(&post.id).map_err(engine)? || pending.posts.get(&post.id) == Some(&None) {
            return Ok(false);
        }
        let seen_retweets = self.retweet_count(pending, &post.id)?;
        let existing = self.pending_or_stored(pending, &post.id)?;
        match existing {
            None => {
                post.counts.retweets = post.counts.retweets.max(seen_retweets);
                let stored = self.resolve(post.clone(), |id| self.pending_or_stored(pending, id))?;
                for term in Doc::new(&stored).terms() {
                    let key = [posting_prefix(&term).as_slice(), post.cursor().as_bytes()].concat();
                    fjall_batch.insert(&self.postings, key, []);
                }
                fjall_batch.insert(&self.posts, post.id.as_bytes(), encode_post(&post)?);
                self.newest_ms.fetch_max(post.created_at.timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
                inserted_ids.push(post.id.clone());
                pending.posts.insert(post.id.clone(), Some(post));
                Ok(true)
            }
            Some(old) => {
                let (merged, content_changed) = match crate::merge_redelivery(&old, post, seen_retweets) {
                    crate::Merge::Unchanged => return Ok(false),
                    crate::Merge::Counts(merged) => (merged, false),
                    crate::Merge::Content(merged) => (merged, true),
                };
                if content_changed {
                    let old_stored = self.resolve(old.clone(), |id| self.pending_or_stored(pending, id))?;
                    for term in Doc::new(&old_stored).terms() {
                        fjall_batch.remove(
                            &self.postings,
                            [posting_prefix(&term).as_slice(), old.cursor().as_bytes()].concat(),
                        );
                    }
                    let new_stored = self.resolve(merged.clone(), |id| self.pending_or_stored(pending, id))?;
                    for term in Doc::new(&new_stored).terms() {
                        fjall_batch.insert(
                            &self.postings,
                            [posting_prefix(&term).as_slice(), merged.cursor().as_bytes()].concat(),
                            [],
                        );
                    }
                }
                fjall_batch.insert(&self.posts, merged.id.as_bytes(), encode_post(&merged)?);
                updated_ids.push(merged.id.clone());
                pending.posts.insert(merged.id.clone(), Some(merged));
                Ok(false)
            }
        }
    }

    fn count_retweet(
        &self,
        original_id: &str,
        retweet_id: &str,
        fjall_batch: &mut fjall::Batch,
        pending: &mut Pending,
        updated_ids: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let pair = (original_id.to_owned(), retweet_id.to_owned());
        let key = retweet_key(original_id, retweet_id);
        if pending.retweets_seen.contains(&pair) || self.retweets.contains_key(&key).map_err(engine)? {
            return Ok(());
        }
        let count = self.retweet_count(pending, original_id)? + 1;
        fjall_batch.insert(&self.retweets, key, []);
        fjall_batch.insert(&self.meta, [RETWEET_COUNT_PREFIX, original_id.as_bytes()].concat(), count.to_be_bytes());
        pending.retweets_seen.insert(pair);
        pending.retweet_counts.insert(original_id.to_owned(), count);
        if let Some(mut original) = self.pending_or_stored(pending, original_id)?
            && original.counts.retweets < count
        {
            original.counts.retweets = count;
            fjall_batch.insert(&self.posts, original.id.as_bytes(), encode_post(&original)?);
            updated_ids.push(original.id.clone());
            pending.posts.insert(original.id.clone(), Some(original));
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
        fjall_batch.insert(&self.tombstones, id.as_bytes(), []);
        let Some(post) = self.pending_or_stored(pending, id)? else {
            pending.posts.insert(id.to_owned(), None);
            return Ok(());
        };
        let stored = self.resolve(post.clone(), |id| self.pending_or_stored(pending, id))?;
        for term in Doc::new(&stored).terms() {
            fjall_batch.remove(&self.postings, [posting_prefix(&term).as_slice(), post.cursor().as_bytes()].concat());
        }
        fjall_batch.remove(&self.posts, id.as_bytes());
        pending.posts.insert(id.to_owned(), None);

        // A retweet that leaves takes its count off the original's tally.
        if let (Kind::Retweet, Some(original_id)) = (post.kind, &post.retweeted_id)
            && keys::id_fits(original_id)
        {
            let pair = (original_id.clone(), id.to_owned());
            let key = retweet_key(original_id, id);
            if !pending.retweets_removed.contains(&pair) {
                pending.retweets_removed.insert(pair);
                fjall_batch.remove(&self.retweets, key);
                let count = self.retweet_count(pending, original_id)?.saturating_sub(1);
                pending.retweet_counts.insert(original_id.clone(), count);
                fjall_batch.insert(
                    &self.meta,
                    [RETWEET_COUNT_PREFIX, original_id.as_bytes()].concat(),
                    count.to_be_bytes(),
                );
            }
        }
        deleted.push(stored);

        // Retweets of a deleted post go with it.
        let prefix = keys::length_prefixed(id);
        let retweet_ids: Vec<String> = self
            .retweets
            .prefix(&prefix)
            .map(|item| item.map(|(key, _)| String::from_utf8_lossy(&key[prefix.len()..]).into_owned()))
            .collect::<Result<_, _>>()
            .map_err(engine)?;
        for retweet_id in retweet_ids {
            if pending.posts.get(&retweet_id) != Some(&None) {
                self.delete_one(&retweet_id, fjall_batch, pending, deleted)?;
            }
        }
        Ok(())
    }

    /// A page of matches, newest first, within the read's work budget.
    ///
    /// The streams (one per conjunction) are merged newest first. A stream
    /// whose scan runs out of budget offers its *frontier* instead of a
    /// candidate: the last posting it has decided on. When the newest head
    /// of all is a frontier, every cursor above it has been decided in every
    /// stream, so the page ends there, with `next` = that frontier.
    fn timeline(&self, query: &Query, range: &Range, limit: usize, work: &mut Work) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let conjunctions = match query.plan() {
            Plan::All => vec![vec![Term::all()]],
            Plan::AnyOf(conjunctions) => conjunctions,
        };
        let mut streams = Vec::with_capacity(conjunctions.len());
        for terms in conjunctions {
            streams.push(ConjunctionScan::new(self, terms, range, work)?);
        }
        let mut heads: Vec<Option<Head>> = Vec::with_capacity(streams.len());
        for stream in &mut streams {
            heads.push(stream.next(self, work)?);
        }

        let mut page = Page::default();
        loop {
            // The newest head among the streams (a candidate before a
            // frontier at the same cursor); equal candidates are one post.
            let Some(newest) = heads.iter().flatten().max().cloned() else {
                return Ok(page);
            };
            let candidate = match newest {
                Head::Frontier(frontier) => {
                    page.next = Cursor::from_bytes(&frontier).ok().or(page.next);
                    return Ok(page);
                }
                Head::Candidate(candidate) => candidate,
            };
            for (stream_idx, head) in heads.iter_mut().enumerate() {
                if matches!(head, Some(Head::Candidate(cursor)) if *cursor == candidate) {
                    *head = streams[stream_idx].next(self, work)?;
                }
            }
            let Ok(cursor) = Cursor::from_bytes(&candidate) else {
                crate::skip_unreadable("posting", &candidate, &"not a cursor");
                continue;
            };
            work.spend(1);
            let Some(post) = self.load_resolved(cursor.id())? else {
                continue;
            };
            if post.post.cursor() != cursor || !query.matches_doc(&Doc::new(&post)) {
                continue;
            }
            if page.posts.len() == limit {
                // One more match exists: the page is full and continues.
                page.next = page.posts.last().map(|post| post.post.cursor());
                return Ok(page);
            }
            page.posts.push(post);
        }
    }
}

/// What a stream offers the merge: its next candidate, or (out of budget)
/// its frontier. Ordered by cursor bytes; at equal bytes a candidate is
/// greater, so it is merged before the frontier.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Head {
    Frontier(Vec<u8>),
    Candidate(Vec<u8>),
}

impl Head {
    fn key(&self) -> (&[u8], bool) {
        match self {
            Head::Frontier(cursor) => (cursor, false),
            Head::Candidate(cursor) => (cursor, true),
        }
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Head) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Head) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Walks the posting list of one term backwards in chunks, checking the other
/// terms of the conjunction with point lookups.
struct ConjunctionScan {
    primary_prefix: Vec<u8>,
    other_prefixes: Vec<Vec<u8>>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    buffer: VecDeque<Vec<u8>>,
    exhausted: bool,
    /// The last posting decided on (a candidate given out or a posting that
    /// lacks a term): every posting above it is decided.
    decided: Option<Vec<u8>>,
}

impl ConjunctionScan {
    fn new(inner: &Inner, terms: Vec<Term>, range: &Range, work: &mut Work) -> Result<ConjunctionScan, StoreError> {
        let mut prefixes: Vec<Vec<u8>> = terms.iter().map(posting_prefix).collect();
        prefixes.sort();
        prefixes.dedup();
        // Walk the rarest term: the one whose newest postings reach furthest back.
        let mut best_idx = 0;
        let mut best_rarity = (0usize, i64::MIN);
        if prefixes.len() > 1 {
            for (prefix_idx, prefix) in prefixes.iter().enumerate() {
                let (lower, upper) = bounds(prefix, range);
                let mut n_sampled = 0usize;
                let mut oldest_ms = i64::MAX;
                for item in inner.postings.range((lower, upper)).rev().take(DENSITY_SAMPLE) {
                    let (key, _) = item.map_err(engine)?;
                    n_sampled += 1;
                    if let Ok(cursor) = Cursor::from_bytes(&key[prefix.len()..]) {
                        oldest_ms = cursor.created_ms();
                    }
                }
                work.spend(n_sampled.max(1));
                // Fewer postings is rarer; at equal counts, reaching further back is rarer.
                let rarity = (DENSITY_SAMPLE - n_sampled, -oldest_ms);
                if prefix_idx == 0 || rarity > best_rarity {
                    best_rarity = rarity;
                    best_idx = prefix_idx;
                }
            }
        }
        let primary_prefix = prefixes.swap_remove(best_idx);
        let (lower, upper) = bounds(&primary_prefix, range);
        Ok(ConjunctionScan {
            primary_prefix,
            other_prefixes: prefixes,
            lower,
            upper,
            buffer: VecDeque::new(),
            exhausted: false,
            decided: None,
        })
    }

    /// The next (older) cursor bytes that carry every term, the frontier
    /// when the budget is spent (after at least one posting decided, so
    /// that every read makes progress), or `None` at the end of the list.
    fn next(&mut self, inner: &Inner, work: &mut Work) -> Result<Option<Head>, StoreError> {
        loop {
            if let (true, Some(decided)) = (work.exhausted(), &self.decided) {
                return Ok(Some(Head::Frontier(decided.clone())));
            }
            if self.buffer.is_empty() && !self.exhausted {
                let mut n_read = 0;
                let mut last_key = None;
                for item in inner.postings.range((self.lower.clone(), self.upper.clone())).rev().take(SCAN_CHUNK) {
                    let (key, _) = item.map_err(engine)?;
                    n_read += 1;
                    self.buffer.push_back(key[self.primary_prefix.len()..].to_vec());
                    last_key = Some(key.to_vec());
                }
                if let Some(key) = last_key {
                    self.upper = Bound::Excluded(key);
                }
                self.exhausted = n_read < SCAN_CHUNK;
            }
            let Some(cursor) = self.buffer.pop_front() else {
                return Ok(None);
            };
            work.spend(1);
            let mut carries_all = true;
            for prefix in &self.other_prefixes {
                work.spend(1);
                let key = [prefix.as_slice(), &cursor].concat();
                if !inner.postings.contains_key(&key).map_err(engine)? {
                    carries_all = false;
                    break;
                }
            }
            self.decided = Some(cursor.clone());
            if carries_all {
                return Ok(Some(Head::Candidate(cursor)));
            }
        }
    }
}

fn bounds(prefix: &[u8], range: &Range) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lower = match &range.after {
        Some(after) => Bound::Excluded([prefix, after.as_bytes()].concat()),
        None => Bound::Included(prefix.to_vec()),
    };
    let upper = match &range.before {
        Some(before) => Bound::Excluded([prefix, before.as_bytes()].concat()),
        None => Bound::Excluded(posting_end(prefix)),
    };
    (lower, upper)
}
