//! The read gate, the same for both stores: how many timeline reads run at
//! once, which waiting read starts next, and how much work each may do.
//!
//! **Fair shares.** Each [`Reader`] (a signed-in user or a client address)
//! has a *usage*: the work units its reads spent, halving every
//! [`USAGE_HALF_LIFE`]. A free slot goes to the waiting read whose reader
//! has used least, and a running read that has done at least [`SLICE`] units
//! yields (it answers with what it found and a `next` cursor, as when its
//! budget runs out) as soon as another reader who has used less is waiting
//! (never to a read of its own reader: the columns of one deck loading at
//! once each get a whole page). So a
//! client sending the costliest queries gets only the capacity that nobody
//! lighter wants, and a light reader waits at most one slice of someone
//! else's read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use store_api::{Reader, StoreError};
use tokio::sync::oneshot;

/// Work units a read does before it may yield to a lighter reader: at most
/// about 1 ms of a core on the embedded store, where a unit is a posting
/// read (under 1 µs) or a post loaded to test a negation (up to ~10 µs).
/// It only guarantees that each read makes some progress.
pub const SLICE: usize = 100;

/// How fast a reader's usage is forgotten: it halves in this time.
pub const USAGE_HALF_LIFE: Duration = Duration::from_secs(10);

/// Readers whose usage is remembered; past it, those whose usage has
/// decayed below one slice are forgotten (and if that is not enough, all).
const READERS_KEPT: usize = 10_000;

/// Bounds on the work of one timeline read, and on reads at once (`deck`
/// sets them from `--read-budget`, `--read-deadline-ms` and
/// `--max-concurrent-reads`).
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    /// Postings and posts one read may examine (a posting read from a list,
    /// a point lookup of another term, a post loaded). Past it, the read
    /// returns what it found, with a `next` cursor to continue.
    pub max_work: usize,
    /// How long one read may take, waiting for its turn included; checked
    /// inside the scan loops. Past it, the read returns what it found, with
    /// a `next` cursor to continue (or [`StoreError::Busy`] if it never
    /// started).
    pub deadline: Duration,
    /// Store reads running at once over the whole process.
    pub max_concurrent: usize,
}

impl Default for ReadLimits {
    /// The limits for a store over the network (Cassandra), whose reads
    /// mostly wait: 16 at once.
    fn default() -> Self {
        ReadLimits { max_work: 20_000, deadline: Duration::from_secs(1), max_concurrent: 16 }
    }
}

impl ReadLimits {
    /// The limits for the embedded store, whose reads use a core each: one
    /// fewer at once than the machine has cores (at least one), so reads
    /// never take the core that ingestion needs.
    pub fn embedded() -> ReadLimits {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        ReadLimits { max_concurrent: cores.saturating_sub(1).max(1), ..ReadLimits::default() }
    }
}

/// The read slots and the limits of one store.
#[derive(Clone)]
pub(crate) struct ReadGate {
    pub(crate) limits: ReadLimits,
    shared: Arc<Shared>,
}

struct Shared {
    slots: usize,
    state: Mutex<State>,
    /// The usage of the lightest waiting reader, `u64::MAX` when nobody
    /// waits, and a hash of that reader: what a running read compares
    /// itself with, without the lock.
    lightest_waiting: AtomicU64,
    lightest_reader: AtomicU64,
}

#[derive(Default)]
struct State {
    running: usize,
    /// Waiting reads by (usage, arrival), each with the sender that hands
    /// it a slot and its reader's hash.
    waiting: BTreeMap<(u64, u64), (oneshot::Sender<()>, u64)>,
    arrivals: u64,
    usage: HashMap<Reader, Usage>,
}

#[derive(Clone, Copy)]
struct Usage {
    units: f64,
    at: Instant,
}

impl Usage {
    fn at(self, now: Instant) -> f64 {
        let half_lives = now.saturating_duration_since(self.at).as_secs_f64() / USAGE_HALF_LIFE.as_secs_f64();
        self.units * 0.5f64.powf(half_lives)
    }
}

impl State {
    fn usage_of(&self, reader: &Reader, now: Instant) -> f64 {
        self.usage.get(reader).map_or(0.0, |usage| usage.at(now))
    }

    fn charge(&mut self, reader: &Reader, units: usize, now: Instant) {
        if self.usage.len() >= READERS_KEPT && !self.usage.contains_key(reader) {
            self.usage.retain(|_, usage| usage.at(now) >= SLICE as f64);
            if self.usage.len() >= READERS_KEPT {
                self.usage.clear();
            }
        }
        let usage = self.usage.entry(reader.clone()).or_insert(Usage { units: 0.0, at: now });
        *usage = Usage { units: usage.at(now) + units as f64, at: now };
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish_lightest(&self, state: &State) {
        let (lightest, reader) =
            state.waiting.iter().next().map_or((u64::MAX, 0), |((usage, _), (_, reader))| (*usage, *reader));
        self.lightest_reader.store(reader, Ordering::Relaxed);
        self.lightest_waiting.store(lightest, Ordering::Relaxed);
    }

    /// A slot is free: it goes to the lightest waiting read, else back to
    /// the pool.
    fn hand_on(&self, state: &mut State) {
        while let Some((_, (grant, _))) = state.waiting.pop_first() {
            if grant.send(()).is_ok() {
                self.publish_lightest(state);
                return;
            }
        }
        state.running = state.running.saturating_sub(1);
        self.publish_lightest(state);
    }
}

impl ReadGate {
    pub(crate) fn new(limits: ReadLimits) -> ReadGate {
        let shared = Shared {
            slots: limits.max_concurrent.max(1),
            state: Mutex::new(State::default()),
            lightest_waiting: AtomicU64::new(u64::MAX),
            lightest_reader: AtomicU64::new(0),
        };
        ReadGate { limits, shared: Arc::new(shared) }
    }

    /// Waits for a read slot for `reader`, until the read's deadline;
    /// returns the read's work budget, which holds the slot until dropped.
    pub(crate) async fn enter(&self, reader: &Reader) -> Result<Work, StoreError> {
        let now = Instant::now();
        let deadline = now + self.limits.deadline;
        let (usage, queued) = {
            let mut state = self.shared.lock();
            let usage = state.usage_of(reader, now);
            if state.running < self.shared.slots && state.waiting.is_empty() {
                state.running += 1;
                (usage, None)
            } else {
                let key = (usage as u64, state.arrivals);
                state.arrivals += 1;
                let (grant, granted) = oneshot::channel();
                state.waiting.insert(key, (grant, reader_hash(reader)));
                self.shared.publish_lightest(&state);
                (usage, Some(Queued { shared: &self.shared, key, granted, holds_slot: false }))
            }
        };
        if let Some(mut queued) = queued {
            match tokio::time::timeout_at(deadline.into(), &mut queued.granted).await {
                Ok(Ok(())) => queued.holds_slot = true,
                Ok(Err(_)) | Err(_) => return Err(StoreError::Busy),
            }
        }
        let slot = Slot { shared: self.shared.clone(), reader: reader.clone(), hash: reader_hash(reader) };
        Ok(Work { spent: 0, max_work: self.limits.max_work, deadline, usage, slot })
    }
}

/// A read waiting for a slot. Dropped without one (deadline passed, or the
/// request went away), it leaves the queue, and hands on a slot that
/// reached it in the meantime.
struct Queued<'gate> {
    shared: &'gate Shared,
    key: (u64, u64),
    granted: oneshot::Receiver<()>,
    holds_slot: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.holds_slot {
            return;
        }
        let mut state = self.shared.lock();
        if state.waiting.remove(&self.key).is_some() {
            self.shared.publish_lightest(&state);
        } else {
            // Slots are handed over under the lock, and this receiver was
            // alive then: the slot is ours, unused.
            self.shared.hand_on(&mut state);
        }
    }
}

/// A running read's slot; freed, with the read's work charged to its
/// reader, when the read's [`Work`] is dropped.
struct Slot {
    shared: Arc<Shared>,
    reader: Reader,
    hash: u64,
}

fn reader_hash(reader: &Reader) -> u64 {
    use std::hash::{BuildHasher as _, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(reader)
}

/// The work budget of one read: units spent (postings and posts examined),
/// the deadline, and the read slot it holds.
pub(crate) struct Work {
    spent: usize,
    max_work: usize,
    deadline: Instant,
    /// The reader's usage when the read started.
    usage: f64,
    slot: Slot,
}

impl Work {
    /// Units spent so far.
    pub(crate) fn spent(&self) -> usize {
        self.spent
    }

    pub(crate) fn spend(&mut self, units: usize) {
        self.spent = self.spent.saturating_add(units);
    }

    /// Whether the read must stop: budget spent, deadline passed, or
    /// another, lighter reader waits for this read's slot after its first
    /// slice.
    pub(crate) fn exhausted(&self) -> bool {
        self.spent >= self.max_work || Instant::now() >= self.deadline || self.yields()
    }

    fn yields(&self) -> bool {
        if self.spent < SLICE {
            return false;
        }
        let shared = &self.slot.shared;
        let lightest = shared.lightest_waiting.load(Ordering::Relaxed);
        lightest != u64::MAX
            && (lightest as f64) < self.usage + self.spent as f64
            && shared.lightest_reader.load(Ordering::Relaxed) != self.slot.hash
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let mut state = self.slot.shared.lock();
        state.charge(&self.slot.reader, self.spent, Instant::now());
        self.slot.shared.hand_on(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(slots: usize) -> ReadGate {
        ReadGate::new(ReadLimits { max_work: 20_000, deadline: Duration::from_secs(5), max_concurrent: slots })
    }

    #[tokio::test]
    async fn a_free_slot_goes_to_the_reader_who_has_used_least() {
        let gate = gate(1);
        let (heavy, light) = (Reader::new("ip:heavy"), Reader::new("ip:light"));
        // The heavy reader has spent a whole budget.
        let mut work = gate.enter(&heavy).await.expect("a free slot");
        work.spend(20_000);
        drop(work);

        let running = gate.enter(&Reader::new("ip:other")).await.expect("a free slot");
        // The heavy reader queues first, the light one second.
        let heavy_waits = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(&heavy).await.map(|_work| Instant::now()) }
        });
        wait_until_waiting(&gate, 1).await;
        let light_waits = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(&light).await.map(|_work| Instant::now()) }
        });
        wait_until_waiting(&gate, 2).await;
        drop(running);
        let light_started = light_waits.await.expect("joins").expect("gets the slot");
        let heavy_started = heavy_waits.await.expect("joins").expect("gets the slot");
        assert!(light_started <= heavy_started, "the light reader started first");
    }

    #[tokio::test]
    async fn a_long_read_yields_after_a_slice_when_a_lighter_reader_waits() {
        let gate = gate(1);
        let heavy = Reader::new("ip:heavy");
        let mut work = gate.enter(&heavy).await.expect("a free slot");
        work.spend(SLICE);
        assert!(!work.exhausted(), "nobody waits: the read goes on");

        let light = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(&Reader::new("ip:light")).await.map(|_work| ()) }
        });
        wait_until_waiting(&gate, 1).await;
        assert!(work.exhausted(), "a lighter reader waits: the read yields");
        drop(work);
        light.await.expect("joins").expect("the light reader gets the slot");
    }

    #[tokio::test]
    async fn a_read_does_not_yield_to_a_heavier_reader_nor_before_its_first_slice() {
        let gate = gate(1);
        let heavy = Reader::new("ip:heavy");
        let mut earlier = gate.enter(&heavy).await.expect("a free slot");
        earlier.spend(20_000);
        drop(earlier);

        let mut work = gate.enter(&Reader::new("ip:light")).await.expect("a free slot");
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(&heavy).await.map(|_work| ()) }
        });
        wait_until_waiting(&gate, 1).await;
        work.spend(SLICE - 1);
        assert!(!work.exhausted(), "before its first slice a read never yields");
        work.spend(1);
        assert!(!work.exhausted(), "the waiting reader has used more");
        drop(work);
        waiting.await.expect("joins").expect("the heavy reader gets the slot next");
    }

    #[tokio::test]
    async fn a_read_does_not_yield_to_another_read_of_its_own_reader() {
        let gate = gate(1);
        let deck = Reader::new("user:1");
        let mut work = gate.enter(&deck).await.expect("a free slot");
        let next_column = tokio::spawn({
            let gate = gate.clone();
            let deck = deck.clone();
            async move { gate.enter(&deck).await.map(|_work| ()) }
        });
        wait_until_waiting(&gate, 1).await;
        work.spend(SLICE * 5);
        assert!(!work.exhausted(), "the waiting read is the same reader's: the page is finished");
        drop(work);
        next_column.await.expect("joins").expect("the next column gets the slot");
    }

    #[tokio::test]
    async fn a_read_that_waits_past_its_deadline_is_busy_and_leaves_the_queue() {
        let gate =
            ReadGate::new(ReadLimits { max_work: 20_000, deadline: Duration::from_millis(50), max_concurrent: 1 });
        let running = gate.enter(&Reader::new("ip:a")).await.expect("a free slot");
        let outcome = gate.enter(&Reader::new("ip:b")).await;
        assert!(matches!(outcome, Err(StoreError::Busy)), "no slot before the deadline");
        assert_eq!(gate.shared.lock().waiting.len(), 0, "the timed-out read left the queue");
        drop(running);
        let next = gate.enter(&Reader::new("ip:c")).await;
        assert!(next.is_ok(), "the slot came back to the pool");
    }

    #[tokio::test]
    async fn a_cancelled_waiter_hands_on_a_slot_it_was_given() {
        let gate = gate(1);
        let running = gate.enter(&Reader::new("ip:a")).await.expect("a free slot");
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(&Reader::new("ip:b")).await.map(|_work| ()) }
        });
        wait_until_waiting(&gate, 1).await;
        // The slot is handed to the waiter, which goes away before it runs.
        drop(running);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gate.shared.lock().running, 0, "every slot is back");
        assert!(gate.enter(&Reader::new("ip:c")).await.is_ok());
    }

    #[test]
    fn usage_halves_every_half_life_and_forgotten_readers_stay_bounded() {
        let start = Instant::now();
        let usage = Usage { units: 8_000.0, at: start };
        let later = usage.at(start + USAGE_HALF_LIFE * 2);
        assert!((later - 2_000.0).abs() < 1.0, "two half-lives leave a quarter: {later}");

        let mut state = State::default();
        for idx in 0..READERS_KEPT + 5 {
            state.charge(&Reader::new(format!("ip:{idx}")), 1, start);
        }
        assert!(state.usage.len() <= READERS_KEPT, "{} readers remembered", state.usage.len());
    }

    async fn wait_until_waiting(gate: &ReadGate, n_waiting: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while gate.shared.lock().waiting.len() < n_waiting {
            assert!(Instant::now() < deadline, "{n_waiting} reads never queued");
            tokio::task::yield_now().await;
        }
    }
}
