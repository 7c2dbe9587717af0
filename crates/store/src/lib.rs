//! Post storage behind one trait, [`PostStore`], shaped for Apache Cassandra's
//! semantics (idempotent upserts keyed by post id, column reads by term and
//! time) with an embedded implementation on fjall for the one-process default.

#[cfg(feature = "cassandra")]
pub mod cassandra;
pub mod codec;
pub mod embedded;

#[cfg(feature = "cassandra")]
pub use cassandra::{CassandraConfig, CassandraStore, ConsistencyLevel};
pub use embedded::EmbeddedStore;
/// The contract lives in `store-api`; re-exported so `store::PostStore` and
/// friends keep working for the crates that also use an engine.
pub use model::Applied;
pub use store_api::{Page, PostStore, Range, StoreError, WriteBatch};

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
