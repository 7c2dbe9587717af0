//! The distributed post store: Apache Cassandra through the `scylla` driver
//! (CQL over the native protocol, token-aware routing, prepared statements,
//! LOCAL_QUORUM by default).
//!
//! Data model (keyspace `deck` by default; see `docs/deploy.md`):
//! - `posts (id) → body blob, retweets_seen bigint`: the postcard-encoded
//!   [`Post`] (a retweet stores only a reference to its original) and the
//!   number of distinct retweets stored, kept apart from the body so that a
//!   count update never rewrites (and never races with) the body.
//! - `postings ((term, bucket), cursor DESC)`: the inverted index, one row per
//!   index term of a post, partitioned by term *and* time bucket so that no
//!   partition grows without bound (the `*` term lists every post).
//! - `term_buckets (term, bucket DESC)`: which buckets of a term hold
//!   postings, so a rare term's reads skip the empty buckets between its posts.
//! - `tombstones (id)`: deleted ids, so a re-delivered deleted post stays deleted.
//! - `retweets (original_id, retweet_id)`: the retweets seen, for counting
//!   idempotently (the count is the size of the set) and for deleting a
//!   deleted original's retweets.
//! - `checkpoints (source)`, `settings (name)` (the bucket width chosen at
//!   migration), `stats (name) counter` (the approximate post count).
//!
//! Timeline reads follow the embedded store: per conjunction of the query's
//! plan, walk the posting list of its rarest kind of term (the plan puts it
//! first) newest to oldest, bucket by bucket, load the candidates, and let the
//! one matcher (`search::Query::matches_doc`) decide.
//!
//! A batch is not atomic across partitions (Cassandra has no cheap
//! cross-partition transaction), so writes are ordered so that re-applying a
//! batch after a crash finishes it: index rows first, the `posts` row (the
//! marker that a post is stored) after them, checkpoints last. `apply` reads
//! the posts of the batch before writing to tell new posts from re-deliveries.

mod read;
mod schema;
mod write;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use model::{Cursor, Kind, Post, PostBundle, PostEvent, StoredPost};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::Counter;
use search::{Doc, Plan, Query, Term};
use serde::Deserialize;

use crate::{Applied, Page, PostStore, Range, Reader, StoreError, Work, WriteBatch};

/// Requests in flight at once for one batch or one read.
const DEFAULT_CONCURRENCY: usize = 256;
/// Postings read from one bucket per round trip.
const POSTINGS_CHUNK: i32 = 256;
/// Buckets listed per round trip.
const BUCKETS_CHUNK: i32 = 64;
/// Upper bound for cursors: above every cursor (ids are UTF-8, never 0xFF).
const CURSOR_MAX: [u8; 16] = [0xFF; 16];
/// Postings of one partition written by one unlogged batch: well under
/// Cassandra's default batch size warning (5 KiB) for typical terms.
const POSTINGS_PER_BATCH: usize = 64;
/// Remembered `(term, bucket)` rows already written, before the memory is reset.
const KNOWN_BUCKETS_CAPACITY: usize = 1_000_000;

/// Settings of the Cassandra store (`deck` reads them from its flags and
/// `DECK_CASSANDRA`). The defaults are for production: replication factor 3.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CassandraConfig {
    /// Contact points, `host:port`; the driver discovers the other nodes.
    pub contact_points: Vec<String>,
    /// Keyspace holding Deck's tables.
    pub keyspace: String,
    /// Replicas of every row. 3 in production (LOCAL_QUORUM then survives
    /// one replica down); 1 on a single-node development cluster.
    pub replication_factor: u32,
    /// With a datacenter name, the keyspace uses `NetworkTopologyStrategy`
    /// with `replication_factor` replicas in that datacenter, and the driver
    /// prefers its nodes (what LOCAL_QUORUM is local to). Without one,
    /// `SimpleStrategy` (development only).
    pub datacenter: Option<String>,
    /// Width of a posting-list time bucket in milliseconds. Fixed at
    /// migration (stored in the `settings` table); later values are ignored.
    /// Choose it so that the busiest term's bucket (`*`, every post) stays
    /// under ~100 MB: a posting row is ~50 bytes, so one hour holds ~2 M
    /// posts, ~550 posts/s sustained.
    pub bucket_ms: i64,
    /// Consistency of every read and write. LOCAL_QUORUM by default.
    pub consistency: ConsistencyLevel,
    /// Requests one call keeps in flight at once.
    pub concurrency: usize,
    /// Timeout of one request, in milliseconds.
    pub request_timeout_ms: u64,
    /// How long rows live (`--retention`), in seconds: the migration sets it
    /// as `default_time_to_live` of every post, index, tombstone and retweet
    /// table and gives the time-bucketed index tables
    /// `TimeWindowCompactionStrategy`, so expired rows leave in whole
    /// SSTables. The TTL counts from the write (arrival), so reads need no
    /// horizon: expired rows are simply gone. `None` keeps everything.
    pub retention_secs: Option<u64>,
}

/// The consistency levels Deck may be configured with.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsistencyLevel {
    One,
    LocalOne,
    LocalQuorum,
    Quorum,
    EachQuorum,
    All,
}

impl From<ConsistencyLevel> for Consistency {
    fn from(level: ConsistencyLevel) -> Consistency {
        match level {
            ConsistencyLevel::One => Consistency::One,
            ConsistencyLevel::LocalOne => Consistency::LocalOne,
            ConsistencyLevel::LocalQuorum => Consistency::LocalQuorum,
            ConsistencyLevel::Quorum => Consistency::Quorum,
            ConsistencyLevel::EachQuorum => Consistency::EachQuorum,
            ConsistencyLevel::All => Consistency::All,
        }
    }
}

impl Default for CassandraConfig {
    fn default() -> Self {
        CassandraConfig {
            contact_points: vec!["127.0.0.1:9042".into()],
            keyspace: "deck".into(),
            replication_factor: 3,
            datacenter: None,
            bucket_ms: 3_600_000,
            consistency: ConsistencyLevel::LocalQuorum,
            concurrency: DEFAULT_CONCURRENCY,
            request_timeout_ms: 12_000,
            retention_secs: None,
        }
    }
}

impl CassandraConfig {
    /// Production defaults for the given contact points (comma-separated
    /// `host:port` list, as in `DECK_CASSANDRA`).
    pub fn new(contact_points: &str) -> CassandraConfig {
        CassandraConfig { contact_points: split_list(contact_points), ..CassandraConfig::default() }
    }

    /// A single-node development cluster (replication factor 1), as
    /// `scripts/cluster up cassandra` starts.
    pub fn single_node(contact_points: &str) -> CassandraConfig {
        CassandraConfig { replication_factor: 1, ..CassandraConfig::new(contact_points) }
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

fn engine(error: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(error.to_string())
}

fn corrupt(key: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { key: key.to_owned(), reason: reason.to_string() }
}

/// The Cassandra-backed store; cheap to clone.
#[derive(Clone)]
pub struct CassandraStore {
    inner: Arc<Inner>,
    reads: crate::ReadGate,
}

struct Inner {
    session: Arc<Session>,
    bucket_ms: i64,
    concurrency: usize,
    statements: Statements,
    /// `(term, bucket)` rows this process has written: re-writing one is
    /// harmless, so this only saves writes and may be forgotten at any time.
    known_buckets: Mutex<HashSet<(String, i64)>>,
}

struct Statements {
    insert_post: PreparedStatement,
    select_post: PreparedStatement,
    delete_post: PreparedStatement,
    update_retweets_seen: PreparedStatement,
    insert_posting: PreparedStatement,
    delete_posting: PreparedStatement,
    select_postings_desc: PreparedStatement,
    select_postings_asc: PreparedStatement,
    insert_term_bucket: PreparedStatement,
    select_buckets_desc: PreparedStatement,
    select_buckets_asc: PreparedStatement,
    insert_tombstone: PreparedStatement,
    select_tombstone: PreparedStatement,
    insert_retweet: PreparedStatement,
    delete_retweet: PreparedStatement,
    select_retweets: PreparedStatement,
    count_retweets: PreparedStatement,
    insert_checkpoint: PreparedStatement,
    select_checkpoint: PreparedStatement,
    add_stat: PreparedStatement,
    select_stat: PreparedStatement,
}

impl CassandraStore {
    /// Connects, migrates (idempotent) and opens: for a role that may be the
    /// first to start against an empty cluster (`deck serve`).
    pub async fn connect_migrated(config: &CassandraConfig) -> Result<CassandraStore, StoreError> {
        let session = CassandraStore::session(config).await?;
        CassandraStore::migrate(&session, config).await?;
        CassandraStore::open(Arc::new(session), config).await
    }

    /// Connects and opens the store (the schema must have been migrated).
    pub async fn connect(config: &CassandraConfig) -> Result<CassandraStore, StoreError> {
        let session = CassandraStore::session(config).await?;
        CassandraStore::open(Arc::new(session), config).await
    }

    /// Opens the store on a connected session: reads the bucket width and
    /// prepares every statement.
    pub async fn open(session: Arc<Session>, config: &CassandraConfig) -> Result<CassandraStore, StoreError> {
        let keyspace = checked_name(&config.keyspace)?;
        let settings = session
            .query_unpaged(format!("SELECT value FROM {keyspace}.settings WHERE name = 'bucket_ms'"), ())
            .await
            .map_err(|error| {
                StoreError::Engine(format!(
                    "keyspace `{keyspace}` not migrated (run `deck cassandra migrate`): {error}"
                ))
            })?;
        let bucket_ms = settings
            .into_rows_result()
            .map_err(engine)?
            .maybe_first_row::<(String,)>()
            .map_err(engine)?
            .ok_or_else(|| {
                StoreError::Engine(format!("keyspace `{keyspace}` has no bucket_ms setting; run the migration"))
            })?
            .0
            .parse::<i64>()
            .map_err(|error| corrupt("settings/bucket_ms", error))?
            .max(1);

        let prepare = |cql: String, idempotent: bool| {
            let session = session.clone();
            async move {
                let mut statement = session
                    .prepare(cql.as_str())
                    .await
                    .map_err(|error| StoreError::Engine(format!("prepare `{cql}`: {error}")))?;
                // Idempotent statements may be retried and speculatively executed safely.
                statement.set_is_idempotent(idempotent);
                Ok::<_, StoreError>(statement)
            }
        };
        let k = &keyspace;
        let statements = Statements {
            insert_post: prepare(format!("INSERT INTO {k}.posts (id, body) VALUES (?, ?)"), true).await?,
            select_post: prepare(format!("SELECT body, retweets_seen FROM {k}.posts WHERE id = ?"), true).await?,
            delete_post: prepare(format!("DELETE FROM {k}.posts WHERE id = ?"), true).await?,
            update_retweets_seen: prepare(format!("UPDATE {k}.posts SET retweets_seen = ? WHERE id = ?"), true).await?,
            insert_posting: prepare(format!("INSERT INTO {k}.postings (term, bucket, cursor) VALUES (?, ?, ?)"), true)
                .await?,
            delete_posting: prepare(
                format!("DELETE FROM {k}.postings WHERE term = ? AND bucket = ? AND cursor = ?"),
                true,
            )
            .await?,
            select_postings_desc: prepare(
                format!(
                    "SELECT cursor FROM {k}.postings WHERE term = ? AND bucket = ? AND cursor > ? AND cursor < ? \
                     ORDER BY cursor DESC LIMIT ?"
                ),
                true,
            )
            .await?,
            select_postings_asc: prepare(
                format!(
                    "SELECT cursor FROM {k}.postings WHERE term = ? AND bucket = ? AND cursor >= ? ORDER BY cursor ASC"
                ),
                true,
            )
            .await?,
            insert_term_bucket: prepare(format!("INSERT INTO {k}.term_buckets (term, bucket) VALUES (?, ?)"), true)
                .await?,
            select_buckets_desc: prepare(
                format!(
                    "SELECT bucket FROM {k}.term_buckets WHERE term = ? AND bucket >= ? AND bucket <= ? \
                     ORDER BY bucket DESC LIMIT ?"
                ),
                true,
            )
            .await?,
            select_buckets_asc: prepare(
                format!("SELECT bucket FROM {k}.term_buckets WHERE term = ? AND bucket >= ? ORDER BY bucket ASC"),
                true,
            )
            .await?,
            insert_tombstone: prepare(format!("INSERT INTO {k}.tombstones (id) VALUES (?)"), true).await?,
            select_tombstone: prepare(format!("SELECT id FROM {k}.tombstones WHERE id = ?"), true).await?,
            insert_retweet: prepare(format!("INSERT INTO {k}.retweets (original_id, retweet_id) VALUES (?, ?)"), true)
                .await?,
            delete_retweet: prepare(format!("DELETE FROM {k}.retweets WHERE original_id = ? AND retweet_id = ?"), true)
                .await?,
            select_retweets: prepare(format!("SELECT retweet_id FROM {k}.retweets WHERE original_id = ?"), true)
                .await?,
            count_retweets: prepare(format!("SELECT COUNT(*) FROM {k}.retweets WHERE original_id = ?"), true).await?,
            insert_checkpoint: prepare(format!("INSERT INTO {k}.checkpoints (source, checkpoint) VALUES (?, ?)"), true)
                .await?,
            select_checkpoint: prepare(format!("SELECT checkpoint FROM {k}.checkpoints WHERE source = ?"), true)
                .await?,
            // A counter increment applied twice counts twice: never retried.
            add_stat: prepare(format!("UPDATE {k}.stats SET value = value + ? WHERE name = ?"), false).await?,
            select_stat: prepare(format!("SELECT value FROM {k}.stats WHERE name = ?"), true).await?,
        };
        Ok(CassandraStore {
            reads: crate::ReadGate::new(crate::ReadLimits::default()),
            inner: Arc::new(Inner {
                session,
                bucket_ms,
                concurrency: config.concurrency.max(1),
                statements,
                known_buckets: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The same store with other read limits (work per read, deadline, reads at once).
    pub fn with_read_limits(mut self, limits: crate::ReadLimits) -> CassandraStore {
        self.reads = crate::ReadGate::new(limits);
        self
    }

    /// The driver session (for health checks and tools).
    pub fn driver_session(&self) -> &Arc<Session> {
        &self.inner.session
    }

    /// The posting-list bucket width in force (fixed at migration).
    pub fn bucket_ms(&self) -> i64 {
        self.inner.bucket_ms
    }
}

/// Keyspace names go into CQL text: only `[A-Za-z0-9_]`, as Cassandra allows.
fn checked_name(name: &str) -> Result<String, StoreError> {
    let valid = !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|character| character.is_ascii_alphanumeric() || character == '_');
    if valid { Ok(name.to_owned()) } else { Err(StoreError::Engine(format!("invalid keyspace name `{name}`"))) }
}

impl Inner {
    fn bucket_of(&self, created_ms: i64) -> i64 {
        created_ms.div_euclid(self.bucket_ms)
    }

    /// Runs futures with at most `concurrency` in flight; results in the
    /// order of the futures; the first error wins.
    async fn run_all<T, F>(&self, futures: impl IntoIterator<Item = F>) -> Result<Vec<T>, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        futures::stream::iter(futures).buffered(self.concurrency).try_collect().await
    }

    /// Reads one post row: the post (with `retweets_seen` folded into its
    /// count) and `retweets_seen` itself.
    async fn read_post(&self, id: &str) -> Result<(Option<Post>, i64), StoreError> {
        if !crate::keys::id_fits(id) {
            return Ok((None, 0));
        }
        let result = self.session.execute_unpaged(&self.statements.select_post, (id,)).await.map_err(engine)?;
        let row = result
            .into_rows_result()
            .map_err(engine)?
            .maybe_first_row::<(Option<Vec<u8>>, Option<i64>)>()
            .map_err(engine)?;
        let Some((body, retweets_seen)) = row else {
            return Ok((None, 0));
        };
        let retweets_seen = retweets_seen.unwrap_or(0);
        let Some(body) = body else {
            // A row holding only a count: the original is not stored yet.
            return Ok((None, retweets_seen));
        };
        let mut post: Post = match crate::codec::decode(&body) {
            Ok(post) => post,
            Err(error) => {
                crate::skip_unreadable("post", id.as_bytes(), &error);
                return Ok((None, retweets_seen));
            }
        };
        post.counts.retweets = post.counts.retweets.max(u64::try_from(retweets_seen).unwrap_or(0));
        Ok((Some(post), retweets_seen))
    }

    async fn is_tombstoned(&self, id: &str) -> Result<bool, StoreError> {
        if !crate::keys::id_fits(id) {
            return Ok(false);
        }
        let result = self.session.execute_unpaged(&self.statements.select_tombstone, (id,)).await.map_err(engine)?;
        Ok(result.into_rows_result().map_err(engine)?.rows_num() > 0)
    }

    /// Posts by id with their references resolved; absent ids are `None`.
    async fn load_resolved(&self, ids: &[String]) -> Result<Vec<Option<StoredPost>>, StoreError> {
        let posts = self.run_all(ids.iter().cloned().map(|id| async move { Ok(self.read_post(&id).await?.0) })).await?;
        let mut referenced: Vec<String> = posts
            .iter()
            .flatten()
            .flat_map(|post| [post.retweeted_id.clone(), post.quoted_id.clone()])
            .flatten()
            .collect();
        referenced.sort();
        referenced.dedup();
        let loaded = self
            .run_all(referenced.into_iter().map(|id| async move {
                let post = self.read_post(&id).await?.0;
                Ok((id, post))
            }))
            .await?;
        let by_id: HashMap<String, Option<Post>> = loaded.into_iter().collect();
        let lookup = |id: &Option<String>| id.as_ref().and_then(|id| by_id.get(id).cloned().flatten()).map(Box::new);
        Ok(ids
            .iter()
            .zip(posts)
            .map(|(_, post)| {
                post.map(|post| StoredPost {
                    retweeted: lookup(&post.retweeted_id),
                    quoted: lookup(&post.quoted_id),
                    post,
                })
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl PostStore for CassandraStore {
    async fn apply(&self, batch: WriteBatch) -> Result<Applied, StoreError> {
        self.inner.apply(batch).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner
            .session
            .query_unpaged("SELECT now() FROM system.local", ())
            .await
            .map(|_| ())
            .map_err(|error| StoreError::Engine(error.to_string()))
    }

    async fn get(&self, ids: &[String]) -> Result<Vec<StoredPost>, StoreError> {
        Ok(self.inner.load_resolved(ids).await?.into_iter().flatten().collect())
    }

    async fn timeline(&self, reader: &Reader, query: &Query, range: Range, limit: usize) -> Result<Page, StoreError> {
        let mut work = self.reads.enter(reader).await?;
        let page = self.inner.timeline(query, &range, limit, &mut work).await?;
        Ok(Page { work: work.spent(), ..page })
    }

    async fn checkpoint(&self, source: &str) -> Result<Option<String>, StoreError> {
        let inner = &self.inner;
        let result =
            inner.session.execute_unpaged(&inner.statements.select_checkpoint, (source,)).await.map_err(engine)?;
        let row = result.into_rows_result().map_err(engine)?.maybe_first_row::<(Option<String>,)>().map_err(engine)?;
        Ok(row.and_then(|(checkpoint,)| checkpoint))
    }

    async fn scan_since(
        &self,
        since_ms: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<StoredPost>, StoreError> {
        let inner = &self.inner;
        let term = Term::all();
        let from_ms = after.map_or(since_ms, Cursor::created_ms);
        let start =
            after.map_or_else(|| Cursor::at_time(since_ms).as_bytes().to_vec(), |after| after.as_bytes().to_vec());
        let buckets: Vec<i64> = inner
            .session
            .execute_iter(inner.statements.select_buckets_asc.clone(), (term.as_str(), inner.bucket_of(from_ms)))
            .await
            .map_err(engine)?
            .rows_stream::<(i64,)>()
            .map_err(engine)?
            .map_ok(|(bucket,)| bucket)
            .try_collect()
            .await
            .map_err(engine)?;
        let mut posts = Vec::new();
        let mut cursors: Vec<Vec<u8>> = Vec::new();
        for bucket in buckets {
            // `>= start`; `after` itself was returned by the previous page.
            let mut rows = inner
                .session
                .execute_iter(inner.statements.select_postings_asc.clone(), (term.as_str(), bucket, start.as_slice()))
                .await
                .map_err(engine)?
                .rows_stream::<(Vec<u8>,)>()
                .map_err(engine)?;
            while cursors.len() < limit {
                let Some((cursor,)) = rows.try_next().await.map_err(engine)? else {
                    break;
                };
                if after.is_none_or(|after| after.as_bytes() != cursor.as_slice()) {
                    cursors.push(cursor);
                }
            }
            if cursors.len() >= limit {
                break;
            }
        }
        for chunk in cursors.chunks(1024) {
            let mut ids: Vec<String> = Vec::with_capacity(chunk.len());
            for bytes in chunk {
                match Cursor::from_bytes(bytes) {
                    Ok(cursor) => ids.push(cursor.id().to_owned()),
                    Err(_) => crate::skip_unreadable("posting", bytes, &"not a cursor"),
                }
            }
            posts.extend(inner.load_resolved(&ids).await?.into_iter().flatten());
        }
        Ok(posts)
    }

    async fn newest(&self) -> Result<Option<Cursor>, StoreError> {
        let inner = &self.inner;
        let term = Term::all();
        let mut highest = i64::MAX;
        loop {
            let buckets = inner.buckets_desc(term.as_str(), i64::MIN, highest, 16).await?;
            for &bucket in &buckets {
                let newest = inner.postings_desc(term.as_str(), bucket, &[], &CURSOR_MAX, 1).await?;
                if let Some(bytes) = newest.first() {
                    return Cursor::from_bytes(bytes).map(Some).map_err(|_| corrupt("postings", "bad cursor"));
                }
            }
            match buckets.last() {
                Some(&oldest) if buckets.len() == 16 && oldest > i64::MIN => highest = oldest - 1,
                _ => return Ok(None),
            }
        }
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let inner = &self.inner;
        let result = inner.session.execute_unpaged(&inner.statements.select_stat, ("posts",)).await.map_err(engine)?;
        let row = result.into_rows_result().map_err(engine)?.maybe_first_row::<(Option<Counter>,)>().map_err(engine)?;
        Ok(row.and_then(|(value,)| value).map(|Counter(value)| u64::try_from(value).unwrap_or(0)).unwrap_or(0))
    }
}
