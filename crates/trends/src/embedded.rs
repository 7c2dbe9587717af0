//! The in-process trend store: per-minute bucket counts plus running totals
//! for every window and baseline, updated incrementally as events arrive and
//! as buckets slide in and out, with the top lists computed lazily on read.

use std::collections::BTreeMap;

use std::collections::hash_map::Entry;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::{
    HashtagCount, RETENTION_BUCKETS, Ranking, RetweetCount, TRENDING_CANDIDATES, TrendEvent, TrendStore, TrendingTag,
    TrendsError, Window, bucket_of, fold_tag, hashtag_order, trending_order, velocity_score,
};

type TagId = u32;
type FormId = u32;
type AccountId = u32;
type OriginalId = u32;

/// How often (in buckets of event time) forgotten post ids are swept.
const SWEEP_EVERY_BUCKETS: i64 = 60;

/// The in-process [`TrendStore`]. Cheap to share behind an `Arc`; all methods
/// take `&self`.
///
/// Restored after a restart by recording the stored posts of the last
/// [`crate::RETENTION_MS`] again (see [`EmbeddedTrends::rebuild`]).
pub struct EmbeddedTrends {
    state: Mutex<State>,
}

impl Default for EmbeddedTrends {
    fn default() -> Self {
        EmbeddedTrends::new()
    }
}

impl EmbeddedTrends {
    /// An empty store.
    pub fn new() -> EmbeddedTrends {
        EmbeddedTrends { state: Mutex::new(State::new()) }
    }

    /// A store that has recorded `events` in order (the restart path: feed it
    /// the stored posts of the last [`crate::RETENTION_MS`], oldest first for
    /// speed, though any order gives the same counts).
    pub fn rebuild(events: impl IntoIterator<Item = TrendEvent>) -> EmbeddedTrends {
        let trends = EmbeddedTrends::new();
        {
            let mut state = trends.state.lock();
            for event in events {
                state.record(&event);
            }
        }
        trends
    }

    /// [`TrendStore::record`] without the `async` (it never waits).
    pub fn record_events(&self, events: &[TrendEvent]) {
        let mut state = self.state.lock();
        for event in events {
            state.record(event);
        }
    }

    /// [`TrendStore::remove`] without the `async`.
    pub fn remove_events(&self, events: &[TrendEvent]) {
        let mut state = self.state.lock();
        for event in events {
            state.remove(event);
        }
    }

    /// [`TrendStore::ranking`] without the `async`.
    pub fn current_ranking(&self, window: Window, limit: usize) -> Ranking {
        self.state.lock().ranking(window, limit)
    }
}

#[async_trait::async_trait]
impl TrendStore for EmbeddedTrends {
    async fn record(&self, events: &[TrendEvent]) -> Result<(), TrendsError> {
        self.record_events(events);
        Ok(())
    }

    async fn remove(&self, events: &[TrendEvent]) -> Result<(), TrendsError> {
        self.remove_events(events);
        Ok(())
    }

    async fn ranking(&self, window: Window, limit: usize) -> Result<Ranking, TrendsError> {
        Ok(self.current_ranking(window, limit))
    }
}

/// Strings to dense ids, so that the counting maps hash small integers.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// Adds `delta` to a count, dropping the entry when it reaches zero (a count
/// never goes below zero). Returns the count before.
fn bump<K: std::hash::Hash + Eq>(map: &mut FxHashMap<K, u64>, key: K, delta: i64) -> u64 {
    match map.entry(key) {
        Entry::Occupied(mut occupied) => {
            let before = *occupied.get();
            let after = before as i64 + delta;
            if after <= 0 {
                occupied.remove();
            } else {
                *occupied.get_mut() = after as u64;
            }
            before
        }
        Entry::Vacant(vacant) => {
            if delta > 0 {
                vacant.insert(delta as u64);
            }
            0
        }
    }
}

/// The counts of one minute of event time.
#[derive(Default)]
struct Bucket {
    /// Posts per tag.
    uses: FxHashMap<TagId, u64>,
    /// Posts per display form.
    forms: FxHashMap<FormId, u64>,
    /// Posts per (tag, account): distinct accounts are the keys.
    pairs: FxHashMap<(TagId, AccountId), u64>,
    /// Retweets per original.
    retweets: FxHashMap<OriginalId, u64>,
}

/// Running totals over a range of buckets relative to the newest one: the
/// buckets `b` with `newest - far < b <= newest - near`.
struct Span {
    near: i64,
    far: i64,
    /// A window (uses, forms, pairs, retweets) rather than a baseline (pairs
    /// only: a baseline only needs distinct accounts).
    full: bool,
    uses: FxHashMap<TagId, u64>,
    forms: FxHashMap<FormId, u64>,
    pairs: FxHashMap<(TagId, AccountId), u64>,
    /// Distinct accounts per tag: the number of `pairs` keys with that tag.
    accounts: FxHashMap<TagId, u64>,
    retweets: FxHashMap<OriginalId, u64>,
}

impl Span {
    fn new(near: i64, far: i64, full: bool) -> Span {
        Span {
            near,
            far,
            full,
            uses: FxHashMap::default(),
            forms: FxHashMap::default(),
            pairs: FxHashMap::default(),
            accounts: FxHashMap::default(),
            retweets: FxHashMap::default(),
        }
    }

    fn contains(&self, bucket: i64, newest_bucket: i64) -> bool {
        newest_bucket - self.far < bucket && bucket <= newest_bucket - self.near
    }

    fn bump_pair(&mut self, tag: TagId, account: AccountId, delta: i64) {
        let before = bump(&mut self.pairs, (tag, account), delta);
        let after = self.pairs.get(&(tag, account)).copied().unwrap_or(0);
        if before == 0 && after > 0 {
            bump(&mut self.accounts, tag, 1);
        } else if before > 0 && after == 0 {
            bump(&mut self.accounts, tag, -1);
        }
    }

    /// Adds (`sign` = 1) or subtracts (`sign` = -1) a whole bucket.
    fn apply_bucket(&mut self, bucket: &Bucket, sign: i64) {
        for (&(tag, account), &count) in &bucket.pairs {
            self.bump_pair(tag, account, sign * count as i64);
        }
        if !self.full {
            return;
        }
        for (&tag, &count) in &bucket.uses {
            bump(&mut self.uses, tag, sign * count as i64);
        }
        for (&form, &count) in &bucket.forms {
            bump(&mut self.forms, form, sign * count as i64);
        }
        for (&original, &count) in &bucket.retweets {
            bump(&mut self.retweets, original, sign * count as i64);
        }
    }

    /// Adds or subtracts one post's contribution.
    fn apply_post(&mut self, post: &Contribution, sign: i64) {
        for &(tag, form) in &post.tags {
            self.bump_pair(tag, post.author, sign);
            if self.full {
                bump(&mut self.uses, tag, sign);
                bump(&mut self.forms, form, sign);
            }
        }
        if let (Some(original), true) = (post.original, self.full) {
            bump(&mut self.retweets, original, sign);
        }
    }
}

/// One post's counts, as ids.
#[derive(Default)]
struct Contribution {
    author: AccountId,
    tags: Vec<(TagId, FormId)>,
    original: Option<OriginalId>,
}

/// Whether a post id is counted now or was deleted.
#[derive(Clone, Copy)]
struct Seen {
    bucket: i64,
    live: bool,
}

/// A computed ranking, kept until the counts change.
struct Cached {
    /// How long the lists were allowed to be.
    limit: usize,
    ranking: Ranking,
}

struct State {
    newest_ms: Option<i64>,
    buckets: BTreeMap<i64, Bucket>,
    /// Every window's span followed by its baseline's sub-windows; see
    /// [`State::spans_of`].
    spans: Vec<Span>,
    tags: Interner,
    forms: Interner,
    /// The tag of each display form.
    form_tag: Vec<TagId>,
    accounts: Interner,
    originals: Interner,
    seen: FxHashMap<Box<str>, Seen>,
    /// Deleted originals, with the newest bucket at the time of deletion.
    deleted: FxHashMap<Box<str>, i64>,
    cache: [Option<Cached>; 3],
    last_sweep_bucket: i64,
    /// Reused for each post so that recording does not allocate.
    scratch: Contribution,
}

impl State {
    fn new() -> State {
        let mut spans = Vec::new();
        for window in Window::ALL {
            let length = window.buckets();
            spans.push(Span::new(0, length, true));
            for sub_window in 1..=window.baseline_windows() {
                spans.push(Span::new(sub_window * length, (sub_window + 1) * length, false));
            }
        }
        State {
            newest_ms: None,
            buckets: BTreeMap::new(),
            spans,
            tags: Interner::default(),
            forms: Interner::default(),
            form_tag: Vec::new(),
            accounts: Interner::default(),
            originals: Interner::default(),
            seen: FxHashMap::default(),
            deleted: FxHashMap::default(),
            cache: [None, None, None],
            last_sweep_bucket: i64::MIN,
            scratch: Contribution::default(),
        }
    }

    /// The span of a window and the spans of its baseline's sub-windows.
    fn spans_of(&self, window: Window) -> (&Span, &[Span]) {
        let mut start = 0;
        for earlier in Window::ALL.iter().take(window.index()) {
            start += 1 + earlier.baseline_windows() as usize;
        }
        let end = start + 1 + window.baseline_windows() as usize;
        (&self.spans[start], &self.spans[start + 1..end])
    }

    fn newest_bucket(&self) -> Option<i64> {
        self.newest_ms.map(bucket_of)
    }

    fn invalidate(&mut self) {
        self.cache = [None, None, None];
    }

    /// Moves the end of every window to `created_ms`, sliding buckets into
    /// and out of the running totals.
    fn advance(&mut self, created_ms: i64) {
        let new_bucket = bucket_of(created_ms);
        let old_bucket = self.newest_bucket();
        self.newest_ms = Some(created_ms);
        self.invalidate();
        let Some(old_bucket) = old_bucket else {
            return;
        };
        if new_bucket == old_bucket {
            return;
        }
        for span in &mut self.spans {
            // Old range (old - far, old - near], new range (new - far, new - near].
            let leave_from = old_bucket - span.far + 1;
            let leave_to = (old_bucket - span.near).min(new_bucket - span.far);
            if leave_from <= leave_to {
                for (_, bucket) in self.buckets.range(leave_from..=leave_to) {
                    span.apply_bucket(bucket, -1);
                }
            }
            let enter_from = (old_bucket - span.near).max(new_bucket - span.far) + 1;
            let enter_to = new_bucket - span.near;
            if enter_from <= enter_to {
                for (_, bucket) in self.buckets.range(enter_from..=enter_to) {
                    span.apply_bucket(bucket, 1);
                }
            }
        }
        let keep_from = new_bucket - RETENTION_BUCKETS + 1;
        self.buckets = self.buckets.split_off(&keep_from);
        if new_bucket.saturating_sub(self.last_sweep_bucket) >= SWEEP_EVERY_BUCKETS {
            // Ids of posts older than the horizon can go: a post that old is
            // ignored whether it was seen before or not.
            self.seen.retain(|_, seen| seen.bucket >= keep_from);
            self.deleted.retain(|_, deleted_at| *deleted_at >= keep_from);
            self.last_sweep_bucket = new_bucket;
        }
    }

    /// Whether an event in `bucket` is too old to count.
    fn beyond_horizon(&self, bucket: i64) -> bool {
        self.newest_bucket().is_some_and(|newest| bucket <= newest - RETENTION_BUCKETS)
    }

    fn record(&mut self, event: &TrendEvent) {
        if self.newest_ms.is_none_or(|newest| event.created_ms > newest) {
            self.advance(event.created_ms);
        }
        let bucket = bucket_of(event.created_ms);
        if self.beyond_horizon(bucket) {
            return;
        }
        match self.seen.entry(event.post_id.as_str().into()) {
            Entry::Occupied(_) => return,
            Entry::Vacant(vacant) => {
                vacant.insert(Seen { bucket, live: true });
            }
        }
        let mut post = std::mem::take(&mut self.scratch);
        post.tags.clear();
        post.author = self.accounts.intern(&event.author_id);
        post.original = event.retweeted_id.as_deref().map(|original| self.originals.intern(original));
        for display in &event.hashtags {
            let display = display.strip_prefix('#').unwrap_or(display);
            if display.is_empty() {
                continue;
            }
            let (tag, form) = self.intern_form(display);
            // A tag repeated in one post counts once, in its first form.
            if !post.tags.iter().any(|&(seen_tag, _)| seen_tag == tag) {
                post.tags.push((tag, form));
            }
        }
        let counts = self.buckets.entry(bucket).or_default();
        for &(tag, form) in &post.tags {
            bump(&mut counts.uses, tag, 1);
            bump(&mut counts.forms, form, 1);
            bump(&mut counts.pairs, (tag, post.author), 1);
        }
        if let Some(original) = post.original {
            bump(&mut counts.retweets, original, 1);
        }
        self.apply_to_spans(bucket, &post, 1);
        self.scratch = post;
        self.invalidate();
    }

    fn remove(&mut self, event: &TrendEvent) {
        let bucket = bucket_of(event.created_ms);
        if event.retweeted_id.is_none() {
            let at = self.newest_bucket().unwrap_or(bucket).max(bucket);
            self.deleted.insert(event.post_id.as_str().into(), at);
            self.invalidate();
        }
        if self.beyond_horizon(bucket) {
            return;
        }
        let was_live = match self.seen.entry(event.post_id.as_str().into()) {
            Entry::Occupied(mut occupied) => std::mem::replace(&mut occupied.get_mut().live, false),
            Entry::Vacant(vacant) => {
                // A tombstone, so that a late duplicate of the post cannot
                // bring it back.
                vacant.insert(Seen { bucket, live: false });
                false
            }
        };
        if !was_live {
            return;
        }
        // Subtract only what the bucket holds, so that an event that differs
        // from the one recorded cannot drive a count below zero.
        let Some(counts) = self.buckets.get_mut(&bucket) else {
            return;
        };
        let mut post = Contribution {
            author: match self.accounts.get(&event.author_id) {
                Some(author) => author,
                None => return,
            },
            tags: Vec::new(),
            original: None,
        };
        for (key, display) in event.tag_uses() {
            let (Some(tag), Some(form)) = (self.tags.get(&key), self.forms.get(display)) else {
                continue;
            };
            if counts.uses.contains_key(&tag)
                && counts.forms.contains_key(&form)
                && counts.pairs.contains_key(&(tag, post.author))
            {
                bump(&mut counts.uses, tag, -1);
                bump(&mut counts.forms, form, -1);
                bump(&mut counts.pairs, (tag, post.author), -1);
                post.tags.push((tag, form));
            }
        }
        if let Some(original) = event.retweeted_id.as_deref().and_then(|original| self.originals.get(original))
            && counts.retweets.contains_key(&original)
        {
            bump(&mut counts.retweets, original, -1);
            post.original = Some(original);
        }
        self.apply_to_spans(bucket, &post, -1);
        self.invalidate();
    }

    fn apply_to_spans(&mut self, bucket: i64, post: &Contribution, sign: i64) {
        let Some(newest_bucket) = self.newest_bucket() else {
            return;
        };
        for span in &mut self.spans {
            if span.contains(bucket, newest_bucket) {
                span.apply_post(post, sign);
            }
        }
    }

    fn intern_form(&mut self, display: &str) -> (TagId, FormId) {
        if let Some(form) = self.forms.get(display) {
            return (self.form_tag[form as usize], form);
        }
        let tag = self.tags.intern(&fold_tag(display));
        let form = self.forms.intern(display);
        self.form_tag.push(tag);
        (tag, form)
    }

    fn ranking(&mut self, window: Window, limit: usize) -> Ranking {
        let slot = window.index();
        let fresh = self.cache[slot].as_ref().is_some_and(|cached| cached.limit >= limit);
        if !fresh {
            let ranking = self.compute(window, limit.max(TRENDING_CANDIDATES));
            self.cache[slot] = Some(Cached { limit: limit.max(TRENDING_CANDIDATES), ranking });
        }
        let Some(cached) = self.cache[slot].as_ref() else {
            return Ranking::empty(window);
        };
        let ranking = &cached.ranking;
        Ranking {
            window,
            ends_at_ms: ranking.ends_at_ms,
            hashtags: ranking.hashtags.iter().take(limit).cloned().collect(),
            trending: ranking.trending.iter().take(limit).cloned().collect(),
            top_retweeted: ranking.top_retweeted.iter().take(limit).cloned().collect(),
        }
    }

    /// Computes the lists of a window, each at most `limit` long (`limit` is
    /// at least [`TRENDING_CANDIDATES`]).
    fn compute(&self, window: Window, limit: usize) -> Ranking {
        let Some(newest_ms) = self.newest_ms else {
            return Ranking::empty(window);
        };
        let (recent, baseline) = self.spans_of(window);
        let tag_names = &self.tags;

        let mut top_tags: Vec<(u64, TagId)> = recent.uses.iter().map(|(&tag, &count)| (count, tag)).collect();
        top_k(&mut top_tags, limit, |a, b| hashtag_order((a.0, tag_names.name(a.1)), (b.0, tag_names.name(b.1))));

        // The most used display form of each listed tag (ties: smallest).
        let mut best_form: FxHashMap<TagId, (FormId, u64)> =
            top_tags.iter().map(|&(_, tag)| (tag, (FormId::MAX, 0))).collect();
        for (&form, &count) in &recent.forms {
            if let Some(best) = best_form.get_mut(&self.form_tag[form as usize]) {
                let better = count > best.1 || (count == best.1 && self.forms.name(form) < self.forms.name(best.0));
                if better {
                    *best = (form, count);
                }
            }
        }
        let display = |tag: TagId| -> String {
            match best_form.get(&tag) {
                Some(&(form, count)) if count > 0 => self.forms.name(form).to_owned(),
                _ => tag_names.name(tag).to_owned(),
            }
        };

        let mut trending: Vec<(f64, u64, f64, TagId)> = Vec::new();
        for &(_, tag) in top_tags.iter().take(TRENDING_CANDIDATES) {
            let observed = recent.accounts.get(&tag).copied().unwrap_or(0);
            let baseline_accounts =
                baseline.iter().map(|sub_window| sub_window.accounts.get(&tag).copied().unwrap_or(0)).sum();
            let (score, expected) = velocity_score(window, observed, baseline_accounts);
            if score > 0.0 {
                trending.push((score, observed, expected, tag));
            }
        }
        trending.sort_by(|a, b| trending_order((a.0, a.1, tag_names.name(a.3)), (b.0, b.1, tag_names.name(b.3))));

        let originals = &self.originals;
        let mut retweeted: Vec<(u64, OriginalId)> = recent
            .retweets
            .iter()
            .filter(|&(&original, _)| !self.deleted.contains_key(originals.name(original)))
            .map(|(&original, &count)| (count, original))
            .collect();
        top_k(&mut retweeted, limit, |a, b| b.0.cmp(&a.0).then_with(|| originals.name(a.1).cmp(originals.name(b.1))));

        Ranking {
            window,
            ends_at_ms: newest_ms,
            hashtags: top_tags.iter().map(|&(count, tag)| HashtagCount { tag: display(tag), count }).collect(),
            trending: trending
                .iter()
                .map(|&(score, accounts, expected, tag)| TrendingTag { tag: display(tag), score, accounts, expected })
                .collect(),
            top_retweeted: retweeted
                .iter()
                .map(|&(count, original)| RetweetCount { post_id: originals.name(original).to_owned(), count })
                .collect(),
        }
    }
}

/// Keeps the `k` first items of `items` in `order`, sorted: a selection then
/// a sort of `k` items, rather than a sort of all.
fn top_k<T>(items: &mut Vec<T>, k: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if items.len() > k {
        if k == 0 {
            items.clear();
            return;
        }
        items.select_nth_unstable_by(k - 1, &order);
        items.truncate(k);
    }
    items.sort_unstable_by(&order);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::BUCKET_MS;

    fn event(id: &str, author: &str, minute: i64, tags: &[&str]) -> TrendEvent {
        TrendEvent {
            post_id: id.into(),
            author_id: author.into(),
            created_ms: minute * BUCKET_MS,
            hashtags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            retweeted_id: None,
        }
    }

    #[test]
    fn a_tag_leaves_the_window_when_time_moves_on() {
        let trends = EmbeddedTrends::new();
        trends.record_events(&[event("1", "a", 100, &["Old"])]);
        assert_eq!(trends.current_ranking(Window::FiveMinutes, 10).hashtags.len(), 1);
        trends.record_events(&[event("2", "a", 105, &["new"])]);
        let ranking = trends.current_ranking(Window::FiveMinutes, 10);
        assert_eq!(ranking.hashtags, vec![HashtagCount { tag: "new".into(), count: 1 }]);
        assert_eq!(trends.current_ranking(Window::OneHour, 10).hashtags.len(), 2);
    }

    #[test]
    fn the_most_used_display_form_names_the_tag() {
        let trends = EmbeddedTrends::new();
        trends.record_events(&[
            event("1", "a", 1, &["bts"]),
            event("2", "b", 1, &["BTS"]),
            event("3", "c", 1, &["#BTS"]),
        ]);
        let ranking = trends.current_ranking(Window::FiveMinutes, 10);
        assert_eq!(ranking.hashtags, vec![HashtagCount { tag: "BTS".into(), count: 3 }]);
    }
}
