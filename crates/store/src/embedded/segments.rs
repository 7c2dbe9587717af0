//! Time segments: the embedded store's posts, postings and retweet rows live
//! in one set of fjall partitions per span of event time, so that retention
//! drops whole partitions (`Keyspace::delete_partition`: the files go when
//! the last reader lets go of them) instead of deleting keys one by one,
//! which would leave tombstones for compaction to chase.
//!
//! A segment covers `[start, end)` of event time (ms). Segments never
//! overlap; a new one takes the aligned span of the store's width (a quarter
//! of the retention, see [`width_for`]) clipped to its neighbours, so a
//! change of `--retention` between runs only changes the width of segments
//! made from then on. Its partitions are named `posts_START_END`,
//! `postings_START_END` and `retweets_START_END`, which is where the span
//! is kept (no other record of it exists to get out of step).
//!
//! A post whose span is entirely behind the retention horizon when it
//! arrives (an old original carried by a fresh retweet, a replayed file)
//! goes to the *limbo* segment, `start = i64::MIN`, which every sweep
//! drops: one extra segment rather than a new partition set per old span.
//! No read shows what is in it, so a batch does not list such a post as
//! inserted either: live columns never get a post their history cannot
//! show (`tests/retention.rs`,
//! `an_original_from_behind_the_horizon_is_not_a_new_post`).
//!
//! Invariant: every post at or above the horizon sits in the segment whose
//! span holds its event time, so a walk of the segments newest first is a
//! walk in cursor order (`tests/retention.rs` checks reads across segment
//! boundaries and drops).

use std::collections::BTreeMap;
use std::sync::Arc;

use fjall::{Keyspace, PartitionCreateOptions, PartitionHandle};

use super::engine;
use crate::StoreError;

/// The three partitions of one span of event time.
pub(crate) struct Segment {
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Post id → postcard-encoded post.
    pub(crate) posts: PartitionHandle,
    /// `len(term) term cursor` → empty.
    pub(crate) postings: PartitionHandle,
    /// `len(original) original retweet` → empty (a retweet seen in this
    /// segment), and `len(original) original` → `u64` (how many).
    pub(crate) retweets: PartitionHandle,
}

impl Segment {
    pub(crate) fn is_limbo(&self) -> bool {
        self.start == i64::MIN
    }

    pub(crate) fn partitions(&self) -> [&PartitionHandle; 3] {
        [&self.posts, &self.postings, &self.retweets]
    }

    fn open(keyspace: &Keyspace, start: i64, end: i64) -> Result<Segment, StoreError> {
        let open = |kind: &str| {
            // The postings take ~40 keys per post, term first, so every
            // batch writes all over their key range. Size-tiered compaction
            // (fewer rewrites per key than leveled, more runs to read) gave
            // 1.22-1.33x the replay's posts/s with history pages as fast
            // (BENCHMARKS.md, "Size-tiered compaction of the postings").
            let options = if kind == POSTINGS {
                PartitionCreateOptions::default().compaction_strategy(fjall::compaction::Strategy::SizeTiered(
                    fjall::compaction::SizeTiered::default(),
                ))
            } else {
                PartitionCreateOptions::default()
            };
            keyspace.open_partition(&partition_name(kind, start, end), options).map_err(engine)
        };
        Ok(Segment { start, end, posts: open(POSTS)?, postings: open(POSTINGS)?, retweets: open(RETWEETS)? })
    }
}

const POSTS: &str = "posts";
const POSTINGS: &str = "postings";
const RETWEETS: &str = "retweets";

fn partition_name(kind: &str, start: i64, end: i64) -> String {
    format!("{kind}_{start}_{end}")
}

/// `(start, end)` of a segment partition's name, `None` for any other name.
fn parse_name(name: &str) -> Option<(i64, i64)> {
    let rest = [POSTS, POSTINGS, RETWEETS].iter().find_map(|kind| name.strip_prefix(kind)?.strip_prefix('_'))?;
    let (start, end) = rest.split_once('_')?;
    Some((start.parse().ok()?, end.parse().ok()?))
}

/// The width of new segments for a retention: a quarter of it (so the disk
/// holds at most 1¼ × the retention), between 1 s and 7 days; 7 days when
/// nothing expires.
pub(crate) fn width_for(retention: Option<std::time::Duration>) -> i64 {
    const SECOND_MS: i64 = 1_000;
    const WEEK_MS: i64 = 7 * 24 * 3_600 * SECOND_MS;
    match retention {
        None => WEEK_MS,
        Some(retention) => i64::try_from(retention.as_millis() / 4).unwrap_or(WEEK_MS).clamp(SECOND_MS, WEEK_MS),
    }
}

/// Every segment of the store.
pub(crate) struct Segments {
    /// By start; disjoint spans.
    spans: BTreeMap<i64, Arc<Segment>>,
    limbo: Option<Arc<Segment>>,
    /// The end of the last limbo made: a new one ends later, so it never
    /// reopens the partitions of one being retired.
    last_limbo_end: i64,
    /// Limbo segments found at start-up, to be retired.
    stale: Vec<Arc<Segment>>,
}

impl Default for Segments {
    fn default() -> Segments {
        Segments { spans: BTreeMap::new(), limbo: None, last_limbo_end: i64::MIN, stale: Vec::new() }
    }
}

impl Segments {
    /// The segments found in a keyspace (a segment missing one of its
    /// partitions, after a crash while it was made, gets it back empty).
    pub(crate) fn load(keyspace: &Keyspace) -> Result<Segments, StoreError> {
        let mut spans: Vec<(i64, i64)> = keyspace
            .list_partitions()
            .iter()
            .filter_map(|name| parse_name(name))
            .filter(|(start, end)| start < end)
            .collect();
        spans.sort_unstable();
        spans.dedup();
        let mut segments = Segments::default();
        for (start, end) in spans {
            let segment = Arc::new(Segment::open(keyspace, start, end)?);
            if segment.is_limbo() {
                // Everything in a limbo is behind the horizon: it is
                // retired at once, and a new one made when needed.
                segments.last_limbo_end = segments.last_limbo_end.max(segment.end);
                segments.stale.push(segment);
            } else {
                segments.spans.insert(start, segment);
            }
        }
        Ok(segments)
    }

    /// The spans, newest first (not the limbo: everything in it is behind
    /// the horizon, where reads stop).
    pub(crate) fn newest_first(&self) -> Vec<Arc<Segment>> {
        self.spans.values().rev().cloned().collect()
    }

    /// Every segment, the one holding `hint_ms` first, then newest first,
    /// the limbo last: where a post by id may be.
    pub(crate) fn probe_order(&self, hint_ms: Option<i64>) -> Vec<Arc<Segment>> {
        let hinted = hint_ms.and_then(|ms| self.holding(ms));
        let mut order: Vec<Arc<Segment>> = hinted.iter().cloned().collect();
        for segment in self.spans.values().rev().chain(self.limbo.iter()) {
            if hinted.as_ref().is_none_or(|hinted| !Arc::ptr_eq(hinted, segment)) {
                order.push(Arc::clone(segment));
            }
        }
        order
    }

    /// The span holding `ms`, if there is one.
    pub(crate) fn holding(&self, ms: i64) -> Option<Arc<Segment>> {
        let (_, segment) = self.spans.range(..=ms).next_back()?;
        (ms < segment.end).then(|| Arc::clone(segment))
    }

    /// The segment a post of event time `ms` is written to, made if needed:
    /// the span holding `ms`; the limbo if a new span would already be
    /// behind `horizon_ms`; otherwise a new span of `width_ms`, aligned and
    /// clipped to its neighbours.
    pub(crate) fn for_write(
        &mut self,
        keyspace: &Keyspace,
        ms: i64,
        width_ms: i64,
        horizon_ms: Option<i64>,
    ) -> Result<Arc<Segment>, StoreError> {
        if let Some(segment) = self.holding(ms) {
            return Ok(segment);
        }
        let width_ms = width_ms.max(1);
        let aligned = ms.div_euclid(width_ms).saturating_mul(width_ms);
        let mut start = aligned.max(i64::MIN + 1);
        let mut end = aligned.saturating_add(width_ms);
        if let Some(horizon_ms) = horizon_ms
            && end <= horizon_ms
        {
            if let Some(limbo) = &self.limbo {
                return Ok(Arc::clone(limbo));
            }
            let end = horizon_ms.max(self.last_limbo_end.saturating_add(1)).max(i64::MIN + 1);
            let limbo = Arc::new(Segment::open(keyspace, i64::MIN, end)?);
            self.last_limbo_end = end;
            self.limbo = Some(Arc::clone(&limbo));
            return Ok(limbo);
        }
        if let Some((_, before)) = self.spans.range(..=ms).next_back() {
            start = start.max(before.end);
        }
        if let Some((_, after)) = self.spans.range(ms.saturating_add(1)..).next() {
            end = end.min(after.start);
        }
        if end <= ms {
            // Only at i64::MAX: the span cannot end after the post.
            end = ms.saturating_add(1);
        }
        let segment = Arc::new(Segment::open(keyspace, start, end)?);
        self.spans.insert(start, Arc::clone(&segment));
        Ok(segment)
    }

    /// Takes out the segments wholly behind `horizon_ms`, the limbo, and
    /// the limbos found at start-up.
    pub(crate) fn take_expired(&mut self, horizon_ms: i64) -> Vec<Arc<Segment>> {
        let mut expired: Vec<Arc<Segment>> = std::mem::take(&mut self.stale);
        expired.extend(self.limbo.take());
        let kept = self.spans.split_off(&horizon_ms);
        let behind = std::mem::replace(&mut self.spans, kept);
        for (start, segment) in behind {
            if segment.end <= horizon_ms {
                expired.push(segment);
            } else {
                self.spans.insert(start, segment);
            }
        }
        expired
    }

    /// Every segment (spans and limbo).
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Segment>> {
        self.spans.values().chain(self.limbo.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_foreign_names_are_not_segments() {
        assert_eq!(parse_name(&partition_name(POSTINGS, -5, 1_000)), Some((-5, 1_000)));
        assert_eq!(parse_name(&partition_name(RETWEETS, i64::MIN, 7)), Some((i64::MIN, 7)));
        for foreign in ["posts", "postings", "meta", "tombstones", "posts_1", "posts_a_b", "postsx_1_2"] {
            assert_eq!(parse_name(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn new_spans_are_aligned_clipped_to_neighbours_and_old_ones_go_to_limbo() {
        let dir = tempfile::tempdir().unwrap();
        let keyspace = fjall::Config::new(dir.path()).open().unwrap();
        let mut segments = Segments::default();
        let first = segments.for_write(&keyspace, 1_250, 1_000, None).unwrap();
        assert_eq!((first.start, first.end), (1_000, 2_000));
        assert!(Arc::ptr_eq(&first, &segments.for_write(&keyspace, 1_999, 1_000, None).unwrap()));
        // A wider span made later is clipped so that spans never overlap.
        let wide = segments.for_write(&keyspace, 2_500, 4_000, None).unwrap();
        assert_eq!((wide.start, wide.end), (2_000, 4_000));
        let before = segments.for_write(&keyspace, 500, 4_000, None).unwrap();
        assert_eq!((before.start, before.end), (0, 1_000));
        // Behind the horizon: the limbo, one for all.
        let old = segments.for_write(&keyspace, -9_000, 1_000, Some(0)).unwrap();
        assert!(old.is_limbo());
        assert!(Arc::ptr_eq(&old, &segments.for_write(&keyspace, -3_000, 1_000, Some(0)).unwrap()));

        let expired = segments.take_expired(2_000);
        let mut spans: Vec<(i64, i64)> = expired.iter().map(|segment| (segment.start, segment.end)).collect();
        spans.sort_unstable();
        assert_eq!(spans, [(i64::MIN, 0), (0, 1_000), (1_000, 2_000)]);
        assert_eq!(segments.newest_first().iter().map(|segment| segment.start).collect::<Vec<_>>(), [2_000]);

        // The spans come back from the partition names.
        let reloaded = Segments::load(&keyspace).unwrap();
        assert!(reloaded.limbo.is_none(), "a limbo found at start-up is retired");
        assert_eq!(reloaded.stale.len(), 1);
        assert_eq!(reloaded.spans.len(), 3);
    }
}
