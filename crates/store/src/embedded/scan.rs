//! Timeline reads: a page of a query's matches, newest first, within the
//! read's work budget, walking the segments newest first.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use model::Cursor;
use search::{Doc, Plan, Query, Term};

use super::segments::Segment;
use super::{Inner, engine, lock_error, posting_end, posting_prefix};
use crate::{Page, Range, StoreError, Work};

/// Postings read from fjall per round trip of a scan.
const SCAN_CHUNK: usize = 256;
/// Postings sampled per term to guess which term of a conjunction is rarest.
const DENSITY_SAMPLE: usize = 32;

impl Inner {
    /// A page of matches, newest first, within the read's work budget.
    ///
    /// The streams (one per conjunction) are merged newest first. A stream
    /// whose scan runs out of budget offers its *frontier* instead of a
    /// candidate: the last posting it has decided on. When the newest head
    /// of all is a frontier, every cursor above it has been decided in every
    /// stream, so the page ends there, with `next` = that frontier.
    pub(super) fn timeline(
        &self,
        query: &Query,
        range: &Range,
        limit: usize,
        work: &mut Work,
    ) -> Result<Page, StoreError> {
        let limit = limit.max(1);
        let conjunctions = match query.plan() {
            Plan::All => vec![vec![Term::all()]],
            Plan::AnyOf(conjunctions) => conjunctions,
        };
        // Only the segments whose span meets the range (and never the
        // limbo, which lies behind the horizon).
        let segments: Vec<Arc<Segment>> = self
            .segments
            .read()
            .map_err(lock_error)?
            .newest_first()
            .into_iter()
            .filter(|segment| range.after.as_ref().is_none_or(|after| segment.end > after.created_ms()))
            .filter(|segment| range.before.as_ref().is_none_or(|before| segment.start <= before.created_ms()))
            .collect();
        let mut streams = Vec::with_capacity(conjunctions.len());
        for terms in conjunctions {
            streams.push(ConjunctionScan::new(&segments, terms, range, work)?);
        }
        let mut heads: Vec<Option<Head>> = Vec::with_capacity(streams.len());
        for stream in &mut streams {
            heads.push(stream.next(work)?);
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
                    *head = streams[stream_idx].next(work)?;
                }
            }
            let Ok(cursor) = Cursor::from_bytes(&candidate) else {
                crate::skip_unreadable("posting", &candidate, &"not a cursor");
                continue;
            };
            work.spend(1);
            let Some(located) = self.locate(cursor.id(), Some(cursor.created_ms()))? else {
                continue;
            };
            let post = self.resolve(located.post, |id| self.load_post(id))?;
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

/// Walks the posting list of one term backwards in chunks, segment after
/// segment (newest first), checking the other terms of the conjunction with
/// point lookups in the segment of the posting.
struct ConjunctionScan {
    segments: Vec<Arc<Segment>>,
    /// The segment being walked.
    segment_idx: usize,
    primary_prefix: Vec<u8>,
    other_prefixes: Vec<Vec<u8>>,
    lower: Bound<Vec<u8>>,
    /// The range's upper bound, where the walk of each segment starts.
    range_upper: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    /// (segment index, cursor bytes), newest first.
    buffer: VecDeque<(usize, Vec<u8>)>,
    /// The last posting decided on (a candidate given out or a posting that
    /// lacks a term): every posting above it is decided.
    decided: Option<Vec<u8>>,
}

impl ConjunctionScan {
    fn new(
        segments: &[Arc<Segment>],
        terms: Vec<Term>,
        range: &Range,
        work: &mut Work,
    ) -> Result<ConjunctionScan, StoreError> {
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
                for segment in segments {
                    let remaining = DENSITY_SAMPLE - n_sampled;
                    if remaining == 0 {
                        break;
                    }
                    for item in segment.postings.range((lower.clone(), upper.clone())).rev().take(remaining) {
                        let (key, _) = item.map_err(engine)?;
                        n_sampled += 1;
                        if let Ok(cursor) = Cursor::from_bytes(&key[prefix.len()..]) {
                            oldest_ms = cursor.created_ms();
                        }
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
            segments: segments.to_vec(),
            segment_idx: 0,
            primary_prefix,
            other_prefixes: prefixes,
            lower,
            range_upper: upper.clone(),
            upper,
            buffer: VecDeque::new(),
            decided: None,
        })
    }

    /// The next (older) cursor bytes that carry every term, the frontier
    /// when the budget is spent (after at least one posting decided, so
    /// that every read makes progress), or `None` at the end of the list.
    fn next(&mut self, work: &mut Work) -> Result<Option<Head>, StoreError> {
        loop {
            if let (true, Some(decided)) = (work.exhausted(), &self.decided) {
                return Ok(Some(Head::Frontier(decided.clone())));
            }
            while self.buffer.is_empty() && self.segment_idx < self.segments.len() {
                let segment = &self.segments[self.segment_idx];
                let mut n_read = 0;
                let mut last_key = None;
                for item in segment.postings.range((self.lower.clone(), self.upper.clone())).rev().take(SCAN_CHUNK) {
                    let (key, _) = item.map_err(engine)?;
                    n_read += 1;
                    self.buffer.push_back((self.segment_idx, key[self.primary_prefix.len()..].to_vec()));
                    last_key = Some(key.to_vec());
                }
                match last_key {
                    Some(key) if n_read == SCAN_CHUNK => self.upper = Bound::Excluded(key),
                    _ => {
                        // This segment is done: the next one is walked from the top of the range.
                        self.segment_idx += 1;
                        self.upper = self.range_upper.clone();
                    }
                }
            }
            let Some((segment_idx, cursor)) = self.buffer.pop_front() else {
                return Ok(None);
            };
            work.spend(1);
            let mut carries_all = true;
            for prefix in &self.other_prefixes {
                work.spend(1);
                let key = [prefix.as_slice(), &cursor].concat();
                if !self.segments[segment_idx].postings.contains_key(&key).map_err(engine)? {
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
