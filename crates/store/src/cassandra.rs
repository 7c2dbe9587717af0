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

use crate::{Applied, Page, PostStore, Range, StoreError, Work, WriteBatch};

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
    /// Connects a driver session: token-aware routing (the driver's default
    /// policy), the configured datacenter preferred, and the configured
    /// consistency (LOCAL_QUORUM) for every statement.
    pub async fn session(config: &CassandraConfig) -> Result<Session, StoreError> {
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(datacenter) = &config.datacenter {
            policy = policy.prefer_datacenter(datacenter.clone()).permit_dc_failover(false);
        }
        let profile = ExecutionProfile::builder()
            .consistency(config.consistency.into())
            .request_timeout(Some(Duration::from_millis(config.request_timeout_ms)))
            .load_balancing_policy(policy.build())
            .build();
        SessionBuilder::new()
            .known_nodes(&config.contact_points)
            .default_execution_profile_handle(profile.into_handle())
            .build()
            .await
            .map_err(|error| {
                StoreError::Engine(format!("connect to Cassandra at {:?}: {error}", config.contact_points))
            })
    }

    /// Creates the keyspace and tables if they do not exist (idempotent; run
    /// by `deck cassandra migrate` or at start-up). The bucket width is fixed
    /// by the first migration.
    pub async fn migrate(session: &Session, config: &CassandraConfig) -> Result<(), StoreError> {
        let keyspace = checked_name(&config.keyspace)?;
        let replication = match &config.datacenter {
            Some(datacenter) => format!(
                "{{'class': 'NetworkTopologyStrategy', '{}': {}}}",
                datacenter.replace('\'', "''"),
                config.replication_factor
            ),
            None => format!("{{'class': 'SimpleStrategy', 'replication_factor': {}}}", config.replication_factor),
        };
        let statements = [
            format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.posts (id text PRIMARY KEY, body blob, retweets_seen bigint)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.postings (term text, bucket bigint, cursor blob, \
                 PRIMARY KEY ((term, bucket), cursor)) WITH CLUSTERING ORDER BY (cursor DESC)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.term_buckets (term text, bucket bigint, \
                 PRIMARY KEY (term, bucket)) WITH CLUSTERING ORDER BY (bucket DESC)"
            ),
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.tombstones (id text PRIMARY KEY)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.retweets (original_id text, retweet_id text, \
                 PRIMARY KEY (original_id, retweet_id))"
            ),
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.checkpoints (source text PRIMARY KEY, checkpoint text)"),
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.settings (name text PRIMARY KEY, value text)"),
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.stats (name text PRIMARY KEY, value counter)"),
        ];
        let mut statements = Vec::from(statements);
        if let Some(retention_secs) = config.retention_secs {
            // Cassandra's TTL ceiling is 20 years.
            let ttl = retention_secs.clamp(1, 630_720_000);
            // About 24 windows over the retention, as TWCS advises (at least a minute).
            let window_minutes = (ttl / 60 / 24).max(1);
            let twcs = format!(
                "compaction = {{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', \
                 'compaction_window_size': {window_minutes}}}"
            );
            for table in ["postings", "term_buckets"] {
                statements.push(format!("ALTER TABLE {keyspace}.{table} WITH default_time_to_live = {ttl} AND {twcs}"));
            }
            for table in ["posts", "tombstones", "retweets"] {
                statements.push(format!("ALTER TABLE {keyspace}.{table} WITH default_time_to_live = {ttl}"));
            }
        }
        for statement in statements {
            session
                .query_unpaged(statement.as_str(), ())
                .await
                .map_err(|error| StoreError::Engine(format!("migrate `{statement}`: {error}")))?;
        }
        // Lightweight transaction: concurrent first migrations agree on one width.
        session
            .query_unpaged(
                format!("INSERT INTO {keyspace}.settings (name, value) VALUES ('bucket_ms', ?) IF NOT EXISTS"),
                (config.bucket_ms.max(1).to_string(),),
            )
            .await
            .map_err(engine)?;
        session.await_schema_agreement().await.map_err(engine)?;
        Ok(())
    }

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

/// Drops the posts whose id is too long to store (counted and logged), and
/// the deletes of such ids (never stored, so nothing to delete).
fn refuse_over_long_ids(events: &mut Vec<PostEvent>) {
    events.retain_mut(|event| match event {
        PostEvent::Upsert(bundle) => {
            if !crate::keys::id_fits(&bundle.post.id) {
                crate::refuse_post(&bundle.post.id);
                return false;
            }
            for embedded in [&mut bundle.retweeted, &mut bundle.quoted] {
                if embedded.as_ref().is_some_and(|post| !crate::keys::id_fits(&post.id))
                    && let Some(post) = embedded.take()
                {
                    crate::refuse_post(&post.id);
                }
            }
            true
        }
        PostEvent::Delete { id } => crate::keys::id_fits(id),
    });
}

/// Keyspace names go into CQL text: only `[A-Za-z0-9_]`, as Cassandra allows.
fn checked_name(name: &str) -> Result<String, StoreError> {
    let valid = !name.is_empty()
        && name.len() <= 48
        && name.chars().all(|character| character.is_ascii_alphanumeric() || character == '_');
    if valid { Ok(name.to_owned()) } else { Err(StoreError::Engine(format!("invalid keyspace name `{name}`"))) }
}

fn encode_post(post: &Post) -> Result<Vec<u8>, StoreError> {
    crate::codec::encode(post).map_err(|error| StoreError::Engine(format!("encode post {}: {error}", post.id)))
}

/// One write of a batch, run with others of its phase concurrently.
enum Write {
    /// Postings of one partition `(term, bucket)`, all added or all removed:
    /// one unlogged batch, which Cassandra applies as a single mutation.
    Postings {
        term: String,
        bucket: i64,
        cursors: Vec<Vec<u8>>,
        present: bool,
    },
    TermBucket {
        term: String,
        bucket: i64,
    },
    Tombstone {
        id: String,
    },
    Retweet {
        original_id: String,
        retweet_id: String,
        present: bool,
    },
    Post {
        id: String,
        body: Option<Vec<u8>>,
    },
    RetweetsSeen {
        id: String,
        count: i64,
    },
    Checkpoint {
        source: String,
        checkpoint: String,
    },
}

/// The batch being planned: the final state of every row it touches, so that
/// later events in the batch see earlier ones and a row written then removed
/// in the same batch is written once, as removed.
#[derive(Default)]
struct Pending {
    /// Every post read or written: `None` = absent (or deleted in this batch).
    posts: HashMap<String, Option<Post>>,
    /// `retweets_seen` as stored, per post read.
    retweets_seen: HashMap<String, i64>,
    /// Tombstoned ids, stored before or in this batch.
    tombstoned: HashSet<String>,
    /// Tombstones this batch writes.
    tombstone_writes: HashSet<String>,
    postings: HashMap<(String, Vec<u8>), bool>,
    posts_written: HashMap<String, bool>,
    retweets: HashMap<(String, String), bool>,
    /// Originals whose retweet set changed: recount after the writes.
    recount: HashSet<String>,
    inserted_ids: Vec<String>,
    updated_ids: Vec<String>,
    deleted: Vec<StoredPost>,
    n_new_rows: i64,
    n_removed_rows: i64,
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

    /// Makes sure `pending` knows the stored state of `ids` (one round of
    /// concurrent reads for those it does not know yet).
    async fn prefetch(&self, pending: &mut Pending, ids: impl IntoIterator<Item = String>) -> Result<(), StoreError> {
        let mut missing: Vec<String> = ids.into_iter().filter(|id| !pending.posts.contains_key(id)).collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let rows = self
            .run_all(missing.into_iter().map(|id| async move {
                let ((post, retweets_seen), tombstoned) =
                    futures::try_join!(self.read_post(&id), self.is_tombstoned(&id))?;
                Ok((id, post, retweets_seen, tombstoned))
            }))
            .await?;
        for (id, post, retweets_seen, tombstoned) in rows {
            if tombstoned {
                pending.tombstoned.insert(id.clone());
            }
            pending.retweets_seen.insert(id.clone(), retweets_seen);
            pending.posts.insert(id, post);
        }
        Ok(())
    }

    async fn known(&self, pending: &mut Pending, id: &str) -> Result<Option<Post>, StoreError> {
        self.prefetch(pending, [id.to_owned()]).await?;
        Ok(pending.posts.get(id).cloned().flatten())
    }

    async fn resolve(&self, pending: &mut Pending, post: Post) -> Result<StoredPost, StoreError> {
        let retweeted = match &post.retweeted_id {
            Some(id) => self.known(pending, id).await?.map(Box::new),
            None => None,
        };
        let quoted = match &post.quoted_id {
            Some(id) => self.known(pending, id).await?.map(Box::new),
            None => None,
        };
        Ok(StoredPost { post, retweeted, quoted })
    }

    /// The partition-key form of each index term (over-long terms hashed).
    fn index_terms(stored: &StoredPost) -> Vec<String> {
        Doc::new(stored).terms().iter().map(|term| crate::keys::term_key(term).into_owned()).collect()
    }

    async fn apply(&self, mut batch: WriteBatch) -> Result<Applied, StoreError> {
        let mut pending = Pending::default();
        refuse_over_long_ids(&mut batch.events);
        // Read everything the batch names in one concurrent round.
        let mut named = Vec::new();
        for event in &batch.events {
            match event {
                PostEvent::Upsert(PostBundle { post, retweeted, quoted }) => {
                    for post in [Some(post), retweeted.as_deref(), quoted.as_deref()].into_iter().flatten() {
                        named.push(post.id.clone());
                        named.extend(post.retweeted_id.iter().cloned());
                        named.extend(post.quoted_id.iter().cloned());
                    }
                }
                PostEvent::Delete { id } => named.push(id.clone()),
            }
        }
        self.prefetch(&mut pending, named).await?;

        for event in batch.events {
            match event {
                PostEvent::Upsert(PostBundle { post, retweeted, quoted }) => {
                    for embedded in [retweeted, quoted].into_iter().flatten() {
                        self.upsert_one(&mut pending, *embedded).await?;
                    }
                    // An original whose id cannot be stored is never counted.
                    let retweet_of = (post.kind == Kind::Retweet)
                        .then(|| post.retweeted_id.clone())
                        .flatten()
                        .filter(|original_id| crate::keys::id_fits(original_id));
                    let retweet_id = post.id.clone();
                    self.upsert_one(&mut pending, post).await?;
                    // Every stored retweet is in its original's set, re-delivered
                    // ones too: a crash may have come between the retweet's
                    // row and the original's count, and a recount heals it.
                    let stored = matches!(pending.posts.get(&retweet_id), Some(Some(_)));
                    if let (true, Some(original_id)) = (stored, retweet_of) {
                        pending.retweets.insert((original_id.clone(), retweet_id), true);
                        pending.recount.insert(original_id);
                    }
                }
                PostEvent::Delete { id } => self.delete_one(&mut pending, &id).await?,
            }
        }

        // Phase 1: tombstones, index rows and retweet rows. Phase 2: the post
        // rows, which mark posts as stored (or gone) only once their index
        // rows are. Phase 3: counts and checkpoints.
        let mut first = Vec::new();
        for id in &pending.tombstone_writes {
            first.push(Write::Tombstone { id: id.clone() });
        }
        let mut new_buckets = Vec::new();
        let mut partitions: HashMap<(&str, i64, bool), Vec<Vec<u8>>> = HashMap::new();
        for ((term, cursor), present) in &pending.postings {
            let bucket = Cursor::from_bytes(cursor)
                .map(|cursor| self.bucket_of(cursor.created_ms()))
                .map_err(|_| corrupt(term, "bad cursor"))?;
            if *present {
                new_buckets.push((term.clone(), bucket));
            }
            partitions.entry((term.as_str(), bucket, *present)).or_default().push(cursor.clone());
        }
        for ((term, bucket, present), cursors) in partitions {
            for chunk in cursors.chunks(POSTINGS_PER_BATCH) {
                first.push(Write::Postings { term: term.to_owned(), bucket, cursors: chunk.to_vec(), present });
            }
        }
        new_buckets.sort();
        new_buckets.dedup();
        {
            let known = self.known_buckets.lock().map_err(|_| StoreError::Task("bucket memory poisoned".into()))?;
            new_buckets.retain(|pair| !known.contains(pair));
        }
        for (term, bucket) in &new_buckets {
            first.push(Write::TermBucket { term: term.clone(), bucket: *bucket });
        }
        for ((original_id, retweet_id), present) in &pending.retweets {
            first.push(Write::Retweet {
                original_id: original_id.clone(),
                retweet_id: retweet_id.clone(),
                present: *present,
            });
        }
        self.run_all(first.into_iter().map(|write| self.write(write))).await?;
        {
            let mut known = self.known_buckets.lock().map_err(|_| StoreError::Task("bucket memory poisoned".into()))?;
            if known.len() + new_buckets.len() > KNOWN_BUCKETS_CAPACITY {
                known.clear();
            }
            known.extend(new_buckets);
        }

        let mut second = Vec::new();
        for (id, present) in &pending.posts_written {
            let body = match (present, pending.posts.get(id)) {
                (true, Some(Some(post))) => Some(encode_post(post)?),
                _ => None,
            };
            second.push(Write::Post { id: id.clone(), body });
        }
        self.run_all(second.into_iter().map(|write| self.write(write))).await?;

        // Retweet counts: the size of each original's retweet set, counted
        // after this batch's rows were written (idempotent under re-delivery).
        let recount: Vec<String> = pending.recount.iter().cloned().collect();
        let counts = self
            .run_all(recount.into_iter().map(|original_id| async move {
                let result = self
                    .session
                    .execute_unpaged(&self.statements.count_retweets, (&original_id,))
                    .await
                    .map_err(engine)?;
                let (count,) = result.into_rows_result().map_err(engine)?.single_row::<(i64,)>().map_err(engine)?;
                Ok((original_id, count))
            }))
            .await?;
        let mut third = Vec::new();
        for (original_id, count) in counts {
            if pending.retweets_seen.get(&original_id).copied().unwrap_or(0) == count {
                continue;
            }
            third.push(Write::RetweetsSeen { id: original_id.clone(), count });
            if let Some(Some(original)) = pending.posts.get_mut(&original_id) {
                let visible = original.counts.retweets.max(u64::try_from(count).unwrap_or(0));
                if visible != original.counts.retweets {
                    original.counts.retweets = visible;
                    pending.updated_ids.push(original_id.clone());
                }
            }
        }
        let mut last_checkpoint: HashMap<&str, &str> = HashMap::new();
        for (source, checkpoint) in &batch.checkpoints {
            last_checkpoint.insert(source, checkpoint);
        }
        for (source, checkpoint) in last_checkpoint {
            third.push(Write::Checkpoint { source: source.to_owned(), checkpoint: checkpoint.to_owned() });
        }
        self.run_all(third.into_iter().map(|write| self.write(write))).await?;
        let delta = pending.n_new_rows - pending.n_removed_rows;
        if delta != 0 {
            // Approximate by design: a crash between the post rows and this
            // increment loses it (a counter must not be retried).
            self.session.execute_unpaged(&self.statements.add_stat, (Counter(delta), "posts")).await.map_err(engine)?;
        }

        // What changed, resolved from the state just written.
        let deleted_ids: HashSet<String> = pending.deleted.iter().map(|post| post.post.id.clone()).collect();
        let mut applied = Applied::default();
        let mut seen = HashSet::new();
        let inserted_ids = std::mem::take(&mut pending.inserted_ids);
        let updated_ids = std::mem::take(&mut pending.updated_ids);
        for (ids, is_insert) in [(inserted_ids, true), (updated_ids, false)] {
            for id in ids {
                if deleted_ids.contains(&id) || !seen.insert(id.clone()) {
                    continue;
                }
                let Some(Some(post)) = pending.posts.get(&id).cloned() else {
                    continue;
                };
                let stored = self.resolve(&mut pending, post).await?;
                if is_insert {
                    applied.inserted.push(stored);
                } else {
                    applied.updated.push(stored);
                }
            }
        }
        applied.deleted = std::mem::take(&mut pending.deleted);
        Ok(applied)
    }

    /// Plans storing one post (nothing for a deleted id or an unchanged post).
    async fn upsert_one(&self, pending: &mut Pending, mut post: Post) -> Result<(), StoreError> {
        if pending.tombstoned.contains(&post.id) {
            return Ok(());
        }
        let existing = self.known(pending, &post.id).await?;
        let seen_retweets = u64::try_from(pending.retweets_seen.get(&post.id).copied().unwrap_or(0)).unwrap_or(0);
        match existing {
            None => {
                post.counts.retweets = post.counts.retweets.max(seen_retweets);
                let stored = self.resolve(pending, post.clone()).await?;
                let cursor = post.cursor().as_bytes().to_vec();
                for term in Inner::index_terms(&stored) {
                    pending.postings.insert((term, cursor.clone()), true);
                }
                pending.posts_written.insert(post.id.clone(), true);
                pending.inserted_ids.push(post.id.clone());
                pending.n_new_rows += 1;
                pending.posts.insert(post.id.clone(), Some(post));
                Ok(())
            }
            Some(old) => {
                let (merged, content_changed) = match crate::merge_redelivery(&old, post, seen_retweets) {
                    crate::Merge::Unchanged => return Ok(()),
                    crate::Merge::Counts(merged) => (merged, false),
                    crate::Merge::Content(merged) => (merged, true),
                };
                if content_changed {
                    let old_stored = self.resolve(pending, old.clone()).await?;
                    let new_stored = self.resolve(pending, merged.clone()).await?;
                    let old_cursor = old.cursor().as_bytes().to_vec();
                    let new_cursor = merged.cursor().as_bytes().to_vec();
                    let new_rows: HashSet<(String, Vec<u8>)> =
                        Inner::index_terms(&new_stored).into_iter().map(|term| (term, new_cursor.clone())).collect();
                    for term in Inner::index_terms(&old_stored) {
                        let row = (term, old_cursor.clone());
                        if !new_rows.contains(&row) {
                            pending.postings.insert(row, false);
                        }
                    }
                    for row in new_rows {
                        pending.postings.insert(row, true);
                    }
                }
                pending.posts_written.insert(merged.id.clone(), true);
                pending.updated_ids.push(merged.id.clone());
                pending.posts.insert(merged.id.clone(), Some(merged));
                Ok(())
            }
        }
    }

    /// Plans deleting one post, its index rows and its retweets.
    async fn delete_one(&self, pending: &mut Pending, id: &str) -> Result<(), StoreError> {
        // Boxed: deleting an original recurses into its retweets.
        Box::pin(async move {
            let post = self.known(pending, id).await?;
            pending.tombstoned.insert(id.to_owned());
            pending.tombstone_writes.insert(id.to_owned());
            let Some(post) = post else {
                pending.posts.insert(id.to_owned(), None);
                return Ok(());
            };
            let stored = self.resolve(pending, post.clone()).await?;
            let cursor = post.cursor().as_bytes().to_vec();
            for term in Inner::index_terms(&stored) {
                pending.postings.insert((term, cursor.clone()), false);
            }
            // A post stored before this batch leaves a row to remove; one
            // inserted in this batch was never written.
            if pending.posts_written.get(id) == Some(&true)
                && pending.inserted_ids.iter().any(|inserted| inserted == id)
            {
                pending.n_new_rows -= 1;
            } else {
                pending.n_removed_rows += 1;
            }
            pending.posts_written.insert(id.to_owned(), false);
            pending.posts.insert(id.to_owned(), None);

            // A retweet that leaves takes itself off the original's set.
            if let (Kind::Retweet, Some(original_id)) = (post.kind, &post.retweeted_id)
                && crate::keys::id_fits(original_id)
            {
                pending.retweets.insert((original_id.clone(), id.to_owned()), false);
                pending.recount.insert(original_id.clone());
            }
            pending.deleted.push(stored);

            // Retweets of a deleted post go with it: stored ones and this batch's.
            let result = self.session.execute_unpaged(&self.statements.select_retweets, (id,)).await.map_err(engine)?;
            let mut retweet_ids: Vec<String> = result
                .into_rows_result()
                .map_err(engine)?
                .rows::<(String,)>()
                .map_err(engine)?
                .map(|row| row.map(|(retweet_id,)| retweet_id))
                .collect::<Result<_, _>>()
                .map_err(engine)?;
            retweet_ids.extend(
                pending
                    .retweets
                    .iter()
                    .filter(|((original_id, _), present)| original_id == id && **present)
                    .map(|((_, retweet_id), _)| retweet_id.clone()),
            );
            retweet_ids.sort();
            retweet_ids.dedup();
            for retweet_id in retweet_ids {
                if pending.posts.get(&retweet_id) != Some(&None) {
                    self.delete_one(pending, &retweet_id).await?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn write(&self, write: Write) -> Result<(), StoreError> {
        let statements = &self.statements;
        let session = &self.session;
        let result = match write {
            Write::Postings { term, bucket, cursors, present } => {
                let statement = if present { &statements.insert_posting } else { &statements.delete_posting };
                if let [cursor] = cursors.as_slice() {
                    session.execute_unpaged(statement, (&term, bucket, cursor)).await
                } else {
                    let mut batch = Batch::new(BatchType::Unlogged);
                    for _ in &cursors {
                        batch.append_statement(statement.clone());
                    }
                    // Replaying the same rows is harmless: the batch may be retried.
                    batch.set_is_idempotent(true);
                    let rows: Vec<(&str, i64, &[u8])> =
                        cursors.iter().map(|cursor| (term.as_str(), bucket, cursor.as_slice())).collect();
                    session.batch(&batch, rows).await
                }
            }
            Write::TermBucket { term, bucket } => {
                session.execute_unpaged(&statements.insert_term_bucket, (term, bucket)).await
            }
            Write::Tombstone { id } => session.execute_unpaged(&statements.insert_tombstone, (id,)).await,
            Write::Retweet { original_id, retweet_id, present: true } => {
                session.execute_unpaged(&statements.insert_retweet, (original_id, retweet_id)).await
            }
            Write::Retweet { original_id, retweet_id, present: false } => {
                session.execute_unpaged(&statements.delete_retweet, (original_id, retweet_id)).await
            }
            Write::Post { id, body: Some(body) } => session.execute_unpaged(&statements.insert_post, (id, body)).await,
            Write::Post { id, body: None } => session.execute_unpaged(&statements.delete_post, (id,)).await,
            Write::RetweetsSeen { id, count } => {
                session.execute_unpaged(&statements.update_retweets_seen, (count, id)).await
            }
            Write::Checkpoint { source, checkpoint } => {
                session.execute_unpaged(&statements.insert_checkpoint, (source, checkpoint)).await
            }
        };
        result.map(|_| ()).map_err(engine)
    }

    /// A page of matches, newest first, within the read's work budget (one
    /// unit per posting read and per post loaded); out of budget, the page
    /// ends after the last candidate decided, with `next` there.
    async fn timeline(&self, query: &Query, range: &Range, limit: usize, work: &mut Work) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let mut primaries: Vec<Term> = match query.plan() {
            Plan::All => vec![Term::all()],
            // The plan puts the rarest kind of term first in each conjunction;
            // the other terms are left to the matcher.
            Plan::AnyOf(conjunctions) => {
                conjunctions.into_iter().filter_map(|terms| terms.into_iter().next()).collect()
            }
        };
        primaries.sort();
        primaries.dedup();
        if primaries.is_empty() {
            primaries.push(Term::all());
        }
        let mut streams: Vec<TermScan> =
            primaries.iter().map(|term| TermScan::new(self, &crate::keys::term_key(term), range)).collect();
        let mut heads: Vec<Option<Vec<u8>>> = Vec::with_capacity(streams.len());
        for stream in &mut streams {
            heads.push(stream.next(self).await?);
        }

        let mut page = Page::default();
        let mut examined = 0usize;
        let mut last_decided: Option<Cursor> = None;
        loop {
            // The next candidates, newest first, merged across the streams.
            let mut candidates: Vec<Cursor> = Vec::new();
            let chunk = (limit + 1).clamp(16, 256);
            // At least one candidate per read, so that walking `next` always progresses.
            while candidates.len() < chunk && (examined == 0 || !work.exhausted()) {
                let Some(newest) = heads.iter().flatten().max().cloned() else {
                    break;
                };
                for (stream_idx, head) in heads.iter_mut().enumerate() {
                    if head.as_ref() == Some(&newest) {
                        *head = streams[stream_idx].next(self).await?;
                    }
                }
                examined += 1;
                work.spend(1);
                match Cursor::from_bytes(&newest) {
                    Ok(cursor) => candidates.push(cursor),
                    Err(_) => crate::skip_unreadable("posting", &newest, &"not a cursor"),
                }
            }
            if candidates.is_empty() {
                // Either every stream ended, or the deadline passed since
                // the last chunk: then continue after the last one decided.
                if heads.iter().any(Option::is_some) {
                    page.next = last_decided.or(page.next);
                }
                return Ok(page);
            }
            last_decided = candidates.last().cloned();
            let ids: Vec<String> = candidates.iter().map(|cursor| cursor.id().to_owned()).collect();
            let loaded = self.load_resolved(&ids).await?;
            work.spend(ids.len());
            for (cursor, post) in candidates.iter().zip(loaded) {
                let Some(post) = post else {
                    continue;
                };
                if post.post.cursor() != *cursor || !query.matches_doc(&Doc::new(&post)) {
                    continue;
                }
                if page.posts.len() == limit {
                    // One more match exists: the page is full and continues.
                    page.next = page.posts.last().map(|post| post.post.cursor());
                    return Ok(page);
                }
                page.posts.push(post);
            }
            if work.exhausted() {
                page.next = candidates.last().cloned();
                return Ok(page);
            }
        }
    }

    /// Buckets of a term in `[lowest, highest]`, newest first, up to `max`.
    async fn buckets_desc(&self, term: &str, lowest: i64, highest: i64, max: i32) -> Result<Vec<i64>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.statements.select_buckets_desc, (term, lowest, highest, max))
            .await
            .map_err(engine)?;
        result
            .into_rows_result()
            .map_err(engine)?
            .rows::<(i64,)>()
            .map_err(engine)?
            .map(|row| row.map(|(bucket,)| bucket).map_err(engine))
            .collect()
    }

    async fn postings_desc(
        &self,
        term: &str,
        bucket: i64,
        lower: &[u8],
        upper: &[u8],
        max: i32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.statements.select_postings_desc, (term, bucket, lower, upper, max))
            .await
            .map_err(engine)?;
        result
            .into_rows_result()
            .map_err(engine)?
            .rows::<(Vec<u8>,)>()
            .map_err(engine)?
            .map(|row| row.map(|(cursor,)| cursor).map_err(engine))
            .collect()
    }
}

/// Walks one term's posting list newest to oldest within a range, bucket by
/// bucket, skipping buckets where the term has no posting.
struct TermScan {
    term: String,
    /// Exclusive cursor bounds.
    lower: Vec<u8>,
    upper: Vec<u8>,
    lowest_bucket: i64,
    /// The highest bucket not yet listed.
    next_listed: Option<i64>,
    buckets: VecDeque<i64>,
    /// The bucket being read and the upper bound of its next chunk.
    current: Option<(i64, Vec<u8>)>,
    buffer: VecDeque<Vec<u8>>,
}

impl TermScan {
    fn new(inner: &Inner, term: &str, range: &Range) -> TermScan {
        let lower = range.after.as_ref().map(|cursor| cursor.as_bytes().to_vec()).unwrap_or_default();
        let upper =
            range.before.as_ref().map(|cursor| cursor.as_bytes().to_vec()).unwrap_or_else(|| CURSOR_MAX.to_vec());
        let lowest_bucket = range.after.as_ref().map(|cursor| inner.bucket_of(cursor.created_ms())).unwrap_or(i64::MIN);
        let highest_bucket =
            range.before.as_ref().map(|cursor| inner.bucket_of(cursor.created_ms())).unwrap_or(i64::MAX);
        TermScan {
            term: term.to_owned(),
            lower,
            upper,
            lowest_bucket,
            next_listed: (highest_bucket >= lowest_bucket).then_some(highest_bucket),
            buckets: VecDeque::new(),
            current: None,
            buffer: VecDeque::new(),
        }
    }

    /// The next (older) posting's cursor bytes, or `None`.
    async fn next(&mut self, inner: &Inner) -> Result<Option<Vec<u8>>, StoreError> {
        loop {
            if let Some(cursor) = self.buffer.pop_front() {
                return Ok(Some(cursor));
            }
            if let Some((bucket, upper)) = self.current.take() {
                let chunk = inner.postings_desc(&self.term, bucket, &self.lower, &upper, POSTINGS_CHUNK).await?;
                let full = chunk.len() == POSTINGS_CHUNK as usize;
                if let (true, Some(last)) = (full, chunk.last()) {
                    self.current = Some((bucket, last.clone()));
                }
                self.buffer.extend(chunk);
                continue;
            }
            if self.buckets.is_empty() {
                let Some(highest) = self.next_listed else {
                    return Ok(None);
                };
                let listed = inner.buckets_desc(&self.term, self.lowest_bucket, highest, BUCKETS_CHUNK).await?;
                self.next_listed = match listed.last() {
                    Some(&oldest) if listed.len() == BUCKETS_CHUNK as usize && oldest > self.lowest_bucket => {
                        Some(oldest - 1)
                    }
                    _ => None,
                };
                self.buckets.extend(listed);
            }
            let Some(bucket) = self.buckets.pop_front() else {
                return Ok(None);
            };
            self.current = Some((bucket, self.upper.clone()));
        }
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

    async fn timeline(&self, query: &Query, range: Range, limit: usize) -> Result<Page, StoreError> {
        let (_permit, mut work) = self.reads.enter().await?;
        self.inner.timeline(query, &range, limit, &mut work).await
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
