//! The post store's contract, with no engine behind it: [`PostStore`] and
//! the batches, ranges, pages and errors it speaks in. `store` implements it
//! (embedded on fjall, distributed on Cassandra); the roles that only read or
//! write through it (`gateway`, `pipeline`) depend on this crate, so the edge
//! never links a storage engine.

use model::{Applied, Cursor, PostEvent, StoredPost};
use search::Query;

/// Everything that can go wrong below the store's API.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("corrupt record for key {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The data dir was written in a format this build cannot read.
    #[error("{0}")]
    Format(String),
    /// Too many reads at once: none could start before its deadline.
    #[error("too many reads at once")]
    Busy,
    #[error("storage task failed: {0}")]
    Task(String),
}

/// One unit of work for the store: events applied together, and the source
/// checkpoints that become durable in the same commit (so a source resumes
/// exactly after what was stored).
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    pub events: Vec<PostEvent>,
    /// `(source name, checkpoint)`; the last one per source wins.
    pub checkpoints: Vec<(String, String)>,
}

/// Bounds of a timeline read. Both are exclusive.
#[derive(Clone, Debug, Default)]
pub struct Range {
    /// Only posts older than this cursor.
    pub before: Option<Cursor>,
    /// Only posts newer than this cursor.
    pub after: Option<Cursor>,
}

/// Who a read is for: a signed-in user or a client address (the gateway's
/// rate-limit key, `user:…` or `ip:…`). The store shares its read slots
/// between readers by the work each has spent lately, so one reader sending
/// the costliest queries cannot crowd out the others.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reader(String);

impl Reader {
    /// The reader with this key.
    pub fn new(key: impl Into<String>) -> Reader {
        Reader(key.into())
    }

    /// Deck's own reads (tools, benchmarks, tests): one reader for all of them.
    pub fn internal() -> Reader {
        Reader("internal".into())
    }

    /// The key, as given.
    pub fn key(&self) -> &str {
        &self.0
    }
}

/// One page of a timeline, newest first.
#[derive(Debug, Default)]
pub struct Page {
    pub posts: Vec<StoredPost>,
    /// Where the next (older) page starts; `None` when nothing older matches.
    pub next: Option<Cursor>,
    /// Work units the read spent (postings and posts examined): what the
    /// gateway charges the reader's rate limit with.
    pub work: usize,
}

/// The post store of one role. Implementations must make [`PostStore::apply`]
/// idempotent: re-applying an event never duplicates a post or a count.
#[async_trait::async_trait]
pub trait PostStore: Send + Sync {
    /// Applies a batch durably: when this returns `Ok`, the posts survive a crash.
    async fn apply(&self, batch: WriteBatch) -> Result<Applied, StoreError>;

    /// Reads posts by id, with their retweeted and quoted posts resolved.
    async fn get(&self, ids: &[String]) -> Result<Vec<StoredPost>, StoreError>;

    /// A page of the posts matching `query` within `range`, newest first,
    /// read for `reader` (who waits for a read slot, and how long the read
    /// may run before it yields to a lighter reader, depend on it).
    async fn timeline(&self, reader: &Reader, query: &Query, range: Range, limit: usize) -> Result<Page, StoreError>;

    /// The last checkpoint saved for a source.
    async fn checkpoint(&self, source: &str) -> Result<Option<String>, StoreError>;

    /// Up to `limit` stored posts created at or after `since_ms`, oldest
    /// first, for rebuilding derived state (trends) in chunks: pass the
    /// cursor of the last post returned as `after` to read on; an empty page
    /// is the last (a page may be short when a posting's post is unreadable).
    async fn scan_since(
        &self,
        since_ms: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<StoredPost>, StoreError>;

    /// The cursor of the newest stored post (event time), if any.
    async fn newest(&self) -> Result<Option<Cursor>, StoreError>;

    /// Number of posts stored (may be approximate on distributed engines).
    async fn count(&self) -> Result<u64, StoreError>;

    /// The oldest event time (ms) a read can still find, when the store
    /// expires old posts (`--retention`); `None` when it keeps everything.
    fn horizon_ms(&self) -> Option<i64> {
        None
    }

    /// A cheap check that the engine answers (for `/readyz`); the embedded
    /// store always does.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
