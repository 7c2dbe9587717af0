//! Post storage behind one trait, [`PostStore`], shaped for Apache Cassandra's
//! semantics (idempotent upserts keyed by post id, column reads by term and
//! time) with an embedded implementation on fjall for the one-process default.

pub mod cassandra;
pub mod embedded;

use model::{Cursor, PostEvent, StoredPost};
use search::Query;

pub use cassandra::{CassandraConfig, CassandraStore, ConsistencyLevel};
pub use embedded::EmbeddedStore;

/// What a re-delivered post changes in the stored one.
pub(crate) enum Merge {
    /// Nothing: a plain re-delivery.
    Unchanged,
    /// Only the counts (no posting changes).
    Counts(model::Post),
    /// The content (the index terms may have changed).
    Content(model::Post),
}

/// The one rule both stores apply when a post arrives again: counts only
/// grow (a source's snapshot may be older than ours), and a bundled copy
/// that lacks the author's name keeps the stored one.
pub(crate) fn merge_redelivery(old: &model::Post, new: model::Post, seen_retweets: u64) -> Merge {
    let mut merged = new;
    merged.counts.retweets = merged.counts.retweets.max(old.counts.retweets).max(seen_retweets);
    merged.counts.likes = merged.counts.likes.max(old.counts.likes);
    merged.counts.replies = merged.counts.replies.max(old.counts.replies);
    merged.counts.quotes = merged.counts.quotes.max(old.counts.quotes);
    if merged.author.name.is_empty() {
        merged.author.name = old.author.name.clone();
    }
    if merged == *old {
        return Merge::Unchanged;
    }
    let mut old_content = old.clone();
    old_content.counts = merged.counts;
    if old_content == merged { Merge::Counts(merged) } else { Merge::Content(merged) }
}

/// Everything that can go wrong below the store's API.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("corrupt record for key {key}: {reason}")]
    Corrupt { key: String, reason: String },
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

/// What a write changed, for the roles downstream (live columns, trends).
#[derive(Debug, Default)]
pub struct Applied {
    /// Posts stored for the first time (re-deliveries are not here).
    pub inserted: Vec<StoredPost>,
    /// Posts already stored whose counts or content changed.
    pub updated: Vec<StoredPost>,
    /// Posts removed by a delete (including retweets of a deleted original).
    pub deleted: Vec<StoredPost>,
}

/// Bounds of a timeline read. Both are exclusive.
#[derive(Clone, Debug, Default)]
pub struct Range {
    /// Only posts older than this cursor.
    pub before: Option<Cursor>,
    /// Only posts newer than this cursor.
    pub after: Option<Cursor>,
}

/// One page of a timeline, newest first.
#[derive(Debug, Default)]
pub struct Page {
    pub posts: Vec<StoredPost>,
    /// Where the next (older) page starts; `None` when nothing older matches.
    pub next: Option<Cursor>,
}

/// The post store of one role. Implementations must make [`PostStore::apply`]
/// idempotent: re-applying an event never duplicates a post or a count.
#[async_trait::async_trait]
pub trait PostStore: Send + Sync {
    /// Applies a batch durably: when this returns `Ok`, the posts survive a crash.
    async fn apply(&self, batch: WriteBatch) -> Result<Applied, StoreError>;

    /// Reads posts by id, with their retweeted and quoted posts resolved.
    async fn get(&self, ids: &[String]) -> Result<Vec<StoredPost>, StoreError>;

    /// A page of the posts matching `query` within `range`, newest first.
    async fn timeline(&self, query: &Query, range: Range, limit: usize) -> Result<Page, StoreError>;

    /// The last checkpoint saved for a source.
    async fn checkpoint(&self, source: &str) -> Result<Option<String>, StoreError>;

    /// Every stored post created at or after `since_ms`, oldest first, for
    /// rebuilding derived state (trends) in batch.
    async fn scan_since(&self, since_ms: i64) -> Result<Vec<StoredPost>, StoreError>;

    /// The cursor of the newest stored post (event time), if any.
    async fn newest(&self) -> Result<Option<Cursor>, StoreError>;

    /// Number of posts stored (may be approximate on distributed engines).
    async fn count(&self) -> Result<u64, StoreError>;

    /// A cheap check that the engine answers (for `/readyz`); the embedded
    /// store always does.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
