//! Post storage behind one trait, [`PostStore`], shaped for Apache Cassandra's
//! semantics (idempotent upserts keyed by post id, column reads by term and
//! time) with an embedded implementation on fjall for the one-process default.

#[cfg(feature = "cassandra")]
pub mod cassandra;
pub mod codec;
pub mod embedded;
mod gate;
pub mod keys;

#[cfg(feature = "cassandra")]
pub use cassandra::{CassandraConfig, CassandraStore, ConsistencyLevel};
pub use embedded::EmbeddedStore;
pub(crate) use gate::{ReadGate, Work};
pub use gate::{ReadLimits, SLICE, USAGE_HALF_LIFE};
/// The contract lives in `store-api`; re-exported so `store::PostStore` and
/// friends keep working for the crates that also use an engine.
pub use model::Applied;
pub use store_api::{Page, PostStore, Range, Reader, StoreError, WriteBatch};

pub use telemetry::{STORE_REFUSED_TOTAL as REFUSED_TOTAL, STORE_UNREADABLE_TOTAL as UNREADABLE_TOTAL};

/// Counts and logs one unreadable stored entry that a read skips.
pub(crate) fn skip_unreadable(what: &str, key: &[u8], reason: &dyn std::fmt::Display) {
    UNREADABLE_TOTAL.inc();
    tracing::warn!(what, key = %String::from_utf8_lossy(&key[..key.len().min(256)]), %reason, "skipping an unreadable stored entry");
}

/// Counts and logs a post a store refuses to keep (its id is too long).
pub(crate) fn refuse_post(id: &str) {
    REFUSED_TOTAL.inc();
    tracing::warn!(id_bytes = id.len(), id_start = %model::truncate_at_char_boundary(id, 64), "refusing a post whose id is too long to store");
}

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

/// The oldest event time (ms) kept under a retention: `retention` before the
/// newest stored post, or before now if that is earlier. Counting from the
/// newest post keeps a replay of old posts whole (as the trends' windows end
/// at the newest post), and the wall clock caps it, so a post dated in the
/// future cannot expire the others.
pub(crate) fn horizon_of(retention: std::time::Duration, newest_ms: i64) -> i64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since_epoch| i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    now_ms.min(newest_ms).saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
}
