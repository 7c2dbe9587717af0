//! The in-process trend store: per-minute bucket counts plus running totals
//! for every window and baseline, updated incrementally as events arrive and
//! as buckets slide in and out, with the top lists computed lazily on read.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

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

/// How often (in buckets of event time) unused interned names are released.
const SWEEP_EVERY_BUCKETS: i64 = 60;

/// Default for [`EmbeddedTrends::with_max_tracked_ids`]: post ids remembered
/// for duplicate detection, about 16 bytes each (≈ 0.55 GiB at this bound).
/// Enough for the whole 48 h horizon up to ~190 posts/s; above that rate the
/// oldest minutes forget their ids first (see [`State::evict_id_sets`]).
pub const DEFAULT_MAX_TRACKED_IDS: usize = 32 * 1024 * 1024;

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

/// What the store holds, for `/metrics` and the sizing table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrendStats {
    /// Minutes of event time with counts.
    pub buckets: usize,
    /// Post ids remembered for duplicate detection.
    pub tracked_ids: usize,
    /// Minutes whose post ids were forgotten early to stay within the bound.
    pub evicted_id_sets: u64,
    /// Tags, display forms, accounts and retweeted originals interned now.
    pub interned: usize,
}

impl EmbeddedTrends {
    /// An empty store remembering at most [`DEFAULT_MAX_TRACKED_IDS`] post ids.
    pub fn new() -> EmbeddedTrends {
        EmbeddedTrends::with_max_tracked_ids(DEFAULT_MAX_TRACKED_IDS)
    }

    /// An empty store remembering at most `max` post ids for duplicate
    /// detection. Over the bound, the oldest minutes forget their ids, and a
    /// post (or a delete) dated in a forgotten minute is no longer counted:
    /// never counting a post twice matters more than counting a very late one.
    pub fn with_max_tracked_ids(max: usize) -> EmbeddedTrends {
        EmbeddedTrends { state: Mutex::new(State::new(max.max(1))) }
    }

    /// The same store keeping at most `horizon_ms` of event time (rounded up
    /// to whole minutes, plus the minute being written), never more than
    /// [`crate::RETENTION_MS`]: `deck` passes `--retention`, so that the
    /// trends keep no post ids or accounts longer than the posts are kept.
    /// A window longer than the horizon counts what the horizon holds.
    pub fn with_horizon_ms(self, horizon_ms: i64) -> EmbeddedTrends {
        let buckets = (horizon_ms.max(0).saturating_add(crate::BUCKET_MS - 1) / crate::BUCKET_MS).saturating_add(1);
        self.state.lock().horizon_buckets = buckets.clamp(1, RETENTION_BUCKETS);
        self
    }

    /// What the store holds now.
    pub fn stats(&self) -> TrendStats {
        let state = self.state.lock();
        TrendStats {
            buckets: state.buckets.len(),
            tracked_ids: state.tracked_ids,
            evicted_id_sets: state.evicted_id_sets,
            interned: state.tags.len() + state.forms.len() + state.accounts.len() + state.originals.len(),
        }
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

    fn memory_stats(&self) -> Option<TrendStats> {
        Some(self.stats())
    }
}

/// Strings to dense ids, so that the counting maps hash small integers.
/// Each id remembers the newest bucket that used it; once every bucket that
/// could hold it has left the horizon, [`Interner::release_before`] frees
/// the name and the id is reused.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    last_used: Vec<i64>,
    free: Vec<u32>,
}

impl Interner {
    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The id of `name`, marked as used by `bucket`.
    fn intern(&mut self, name: &str, bucket: i64) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            self.touch(id, bucket);
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = name.into();
                self.last_used[id as usize] = bucket;
                id
            }
            None => {
                let id = self.names.len() as u32;
                self.names.push(name.into());
                self.last_used.push(bucket);
                id
            }
        };
        self.ids.insert(name.into(), id);
        id
    }

    fn touch(&mut self, id: u32, bucket: i64) {
        let last_used = &mut self.last_used[id as usize];
        *last_used = (*last_used).max(bucket);
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Names interned now.
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Frees every name whose newest use is older than `bucket`: no bucket
    /// from `bucket` on, and so no window, can refer to it.
    fn release_before(&mut self, bucket: i64) {
        for (id, last_used) in self.last_used.iter().enumerate() {
            if *last_used < bucket && !self.names[id].is_empty() {
                let name = std::mem::take(&mut self.names[id]);
                self.ids.remove(&name);
                self.free.push(id as u32);
            }
        }
        self.ids.shrink_to(self.ids.len() * 2);
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
    /// The ids (keyed hashes) of the posts dated in this minute, each with
    /// whether it is counted (`false`: deleted), so that a post delivered
    /// again is not counted twice. They leave with the bucket.
    ids: FxHashMap<u64, bool>,
    /// Whether `ids` was dropped early to bound memory.
    ids_evicted: bool,
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
    /// Keys the hashes of post ids (randomly, so that nobody can pick an id
    /// that collides with another's).
    id_hasher: std::hash::RandomState,
    /// Ids in every bucket's `ids`, and the bound on them.
    tracked_ids: usize,
    max_tracked_ids: usize,
    evicted_id_sets: u64,
    /// Deleted originals (hashed ids), with the newest bucket at the time of
    /// deletion.
    deleted: FxHashMap<u64, i64>,
    cache: [Option<Cached>; 3],
    last_sweep_bucket: i64,
    /// Buckets kept back from the newest: [`RETENTION_BUCKETS`], or fewer
    /// with a shorter `--retention` ([`EmbeddedTrends::with_horizon_ms`]).
    horizon_buckets: i64,
    /// Reused for each post so that recording does not allocate.
    scratch: Contribution,
}

impl State {
    fn new(max_tracked_ids: usize) -> State {
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
            id_hasher: std::hash::RandomState::new(),
            tracked_ids: 0,
            max_tracked_ids,
            evicted_id_sets: 0,
            deleted: FxHashMap::default(),
            cache: [None, None, None],
            last_sweep_bucket: i64::MIN,
            horizon_buckets: RETENTION_BUCKETS,
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
        let keep_from = new_bucket - self.horizon_buckets + 1;
        let kept = self.buckets.split_off(&keep_from);
        // Ids of posts older than the horizon go with their bucket: a post
        // that old is ignored whether it was seen before or not. With a
        // horizon shorter than a span, the bucket leaves the span's totals
        // here rather than when the span slides past it.
        for (&minute, bucket) in &std::mem::replace(&mut self.buckets, kept) {
            self.tracked_ids -= bucket.ids.len();
            for span in &mut self.spans {
                if minute > new_bucket - span.far && minute <= new_bucket - span.near {
                    span.apply_bucket(bucket, -1);
                }
            }
        }
        if new_bucket.saturating_sub(self.last_sweep_bucket) >= SWEEP_EVERY_BUCKETS {
            self.deleted.retain(|_, deleted_at| *deleted_at >= keep_from);
            self.deleted.shrink_to(self.deleted.len() * 2);
            for interner in [&mut self.tags, &mut self.forms, &mut self.accounts, &mut self.originals] {
                interner.release_before(keep_from);
            }
            self.last_sweep_bucket = new_bucket;
        }
    }

    fn hash_id(&self, id: &str) -> u64 {
        self.id_hasher.hash_one(id)
    }

    /// Forgets the ids of the oldest minutes until the bound holds again,
    /// never those of `current`, the minute being written.
    fn evict_id_sets(&mut self, current: i64) {
        if self.tracked_ids <= self.max_tracked_ids {
            return;
        }
        // Evict down to 7/8 of the bound, so that this runs once per many posts.
        let target = self.max_tracked_ids - self.max_tracked_ids / 8;
        for (&minute, bucket) in &mut self.buckets {
            if self.tracked_ids <= target || minute == current {
                break;
            }
            if bucket.ids_evicted {
                continue;
            }
            self.tracked_ids -= bucket.ids.len();
            bucket.ids = FxHashMap::default();
            bucket.ids_evicted = true;
            self.evicted_id_sets += 1;
            tracing::warn!(
                minute_ms = minute * crate::BUCKET_MS,
                max_tracked_ids = self.max_tracked_ids,
                "trends: the post ids of an old minute were forgotten to bound memory; \
                 posts dated in it are no longer counted"
            );
        }
    }

    /// Whether an event in `bucket` is too old to count.
    fn beyond_horizon(&self, bucket: i64) -> bool {
        self.newest_bucket().is_some_and(|newest| bucket <= newest - self.horizon_buckets)
    }

    fn record(&mut self, event: &TrendEvent) {
        if self.newest_ms.is_none_or(|newest| event.created_ms > newest) {
            self.advance(event.created_ms);
        }
        let bucket = bucket_of(event.created_ms);
        if self.beyond_horizon(bucket) {
            return;
        }
        let id = self.hash_id(&event.post_id);
        let counts = self.buckets.entry(bucket).or_default();
        if counts.ids_evicted {
            return;
        }
        match counts.ids.entry(id) {
            Entry::Occupied(_) => return,
            Entry::Vacant(vacant) => {
                vacant.insert(true);
            }
        }
        self.tracked_ids += 1;
        let mut post = std::mem::take(&mut self.scratch);
        post.tags.clear();
        post.author = self.accounts.intern(&event.author_id, bucket);
        post.original = event.retweeted_id.as_deref().map(|original| self.originals.intern(original, bucket));
        for display in &event.hashtags {
            let display = display.strip_prefix('#').unwrap_or(display);
            if display.is_empty() {
                continue;
            }
            let (tag, form) = self.intern_form(display, bucket);
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
        self.evict_id_sets(bucket);
    }

    fn remove(&mut self, event: &TrendEvent) {
        let bucket = bucket_of(event.created_ms);
        let id = self.hash_id(&event.post_id);
        if event.retweeted_id.is_none() {
            let at = self.newest_bucket().unwrap_or(bucket).max(bucket);
            self.deleted.insert(id, at);
            self.invalidate();
        }
        if self.beyond_horizon(bucket) {
            return;
        }
        let counts = self.buckets.entry(bucket).or_default();
        if counts.ids_evicted {
            return;
        }
        let was_live = match counts.ids.entry(id) {
            Entry::Occupied(mut occupied) => std::mem::replace(occupied.get_mut(), false),
            Entry::Vacant(vacant) => {
                // A tombstone, so that a late duplicate of the post cannot
                // bring it back.
                vacant.insert(false);
                self.tracked_ids += 1;
                false
            }
        };
        if !was_live {
            self.evict_id_sets(bucket);
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

    fn intern_form(&mut self, display: &str, bucket: i64) -> (TagId, FormId) {
        if let Some(form) = self.forms.get(display) {
            let tag = self.form_tag[form as usize];
            self.forms.touch(form, bucket);
            self.tags.touch(tag, bucket);
            return (tag, form);
        }
        let tag = self.tags.intern(&fold_tag(display), bucket);
        let form = self.forms.intern(display, bucket);
        match self.form_tag.get_mut(form as usize) {
            Some(reused) => *reused = tag,
            None => self.form_tag.push(tag),
        }
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
            .filter(|&(&original, _)| !self.deleted.contains_key(&self.hash_id(originals.name(original))))
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

    #[test]
    fn names_and_ids_leave_with_their_buckets() {
        let trends = EmbeddedTrends::new();
        let early: Vec<TrendEvent> =
            (0..500).map(|i| event(&format!("p{i}"), &format!("early{i}"), 10, &[&format!("gone{i}")])).collect();
        trends.record_events(&early);
        let full = trends.stats();
        assert_eq!(full.tracked_ids, 500);
        assert_eq!(full.interned, 500 + 500 + 500, "tags, forms and accounts");

        // Two days and more later, one post: everything of minute 10 is beyond the horizon.
        let later = 10 + RETENTION_BUCKETS + SWEEP_EVERY_BUCKETS;
        trends.record_events(&[event("q", "late", later, &["Now"])]);
        let stats = trends.stats();
        assert_eq!(stats.tracked_ids, 1);
        assert_eq!(stats.buckets, 1);
        assert_eq!(stats.interned, 3, "only the new post's tag, form and account are left");
        let ranking = trends.current_ranking(Window::OneDay, 10);
        assert_eq!(ranking.hashtags, vec![HashtagCount { tag: "Now".into(), count: 1 }]);

        // Freed ids are reused without mixing names up.
        trends.record_events(&[event("r", "other", later, &["Again", "now"])]);
        let ranking = trends.current_ranking(Window::FiveMinutes, 10);
        assert_eq!(
            ranking.hashtags,
            vec![HashtagCount { tag: "Now".into(), count: 2 }, HashtagCount { tag: "Again".into(), count: 1 }]
        );
    }

    #[test]
    fn a_short_horizon_keeps_only_its_minutes_in_every_window() {
        // `--retention 10m`: 10 minutes and the one being written.
        let trends = EmbeddedTrends::new().with_horizon_ms(10 * crate::BUCKET_MS);
        for minute in 0..30 {
            trends.record_events(&[event(&format!("p{minute}"), &format!("a{minute}"), minute, &["Tag"])]);
        }
        let stats = trends.stats();
        assert_eq!(stats.buckets, 11, "{stats:?}");
        assert_eq!(stats.tracked_ids, 11);
        // Minutes 19..=29 are left, in the hour and the day alike; the five
        // minutes see their own.
        for (window, count) in [(Window::FiveMinutes, 5), (Window::OneHour, 11), (Window::OneDay, 11)] {
            let ranking = trends.current_ranking(window, 10);
            assert_eq!(ranking.hashtags, vec![HashtagCount { tag: "Tag".into(), count }], "{window:?}");
        }
        // A post dated before the horizon is not counted.
        trends.record_events(&[event("old", "z", 5, &["Tag"])]);
        let ranking = trends.current_ranking(Window::OneDay, 10);
        assert_eq!(ranking.hashtags, vec![HashtagCount { tag: "Tag".into(), count: 11 }]);
        // An hour later, one post: the others have left every window.
        trends.record_events(&[event("q", "late", 90, &["Now"])]);
        let ranking = trends.current_ranking(Window::OneDay, 10);
        assert_eq!(ranking.hashtags, vec![HashtagCount { tag: "Now".into(), count: 1 }]);
    }

    #[test]
    fn duplicate_detection_stays_within_its_bound_and_never_counts_twice() {
        let trends = EmbeddedTrends::with_max_tracked_ids(1_000);
        let posts: Vec<TrendEvent> =
            (0..5_000).map(|i| event(&format!("p{i}"), &format!("a{i}"), i / 100, &["Tag"])).collect();
        trends.record_events(&posts);
        let stats = trends.stats();
        assert!(stats.tracked_ids <= 1_000, "{stats:?}");
        assert!(stats.evicted_id_sets >= 40, "{stats:?}");
        let before = trends.current_ranking(Window::OneHour, 10);
        assert_eq!(before.hashtags, vec![HashtagCount { tag: "Tag".into(), count: 5_000 }]);

        // Every post delivered again: the recent ones are recognised, the
        // forgotten minutes count nothing new.
        trends.record_events(&posts);
        assert_eq!(trends.current_ranking(Window::OneHour, 10).hashtags, before.hashtags);
        // A new post in a forgotten minute is not counted; one in a kept minute is.
        trends.record_events(&[event("new-old", "x", 0, &["Tag"]), event("new", "y", 49, &["Tag"])]);
        assert_eq!(
            trends.current_ranking(Window::OneHour, 10).hashtags,
            vec![HashtagCount { tag: "Tag".into(), count: 5_001 }]
        );
    }
}
