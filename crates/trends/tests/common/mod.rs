//! Test support shared by the trends tests: a real `redis-server` started on a
//! free port for the test and stopped when dropped, a brute-force recount of
//! the documented semantics, and a seeded stream generator.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use trends::{
    HashtagCount, RETENTION_BUCKETS, Ranking, RetweetCount, TRENDING_CANDIDATES, TrendEvent, TrendingTag, Window,
    bucket_of, trending_order, velocity_score,
};

/// A Redis for one test: `DECK_REDIS` when set, else a `redis-server` of our
/// own on a free 127.0.0.1 port in a temporary directory.
pub struct TestRedis {
    pub url: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts Redis, or returns `None` (after a loud SKIPPED line) when it is not
/// installed and `DECK_SKIP_ENGINES=1`. Panics when it is not installed and
/// skipping was not asked for.
pub fn start_redis(test: &str) -> Option<TestRedis> {
    if let Ok(url) = std::env::var("DECK_REDIS") {
        return Some(TestRedis { url, child: None, _dir: None });
    }
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        if std::env::var("DECK_SKIP_ENGINES").as_deref() == Ok("1") {
            eprintln!("!!!!! SKIPPED {test}: redis-server is not installed (DECK_SKIP_ENGINES=1) !!!!!");
            return None;
        }
        panic!(
            "{test} needs redis-server (apt-get install -y redis-server), or DECK_REDIS=redis://…; \
             set DECK_SKIP_ENGINES=1 to skip"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(TestRedis { url: format!("redis://127.0.0.1:{port}/"), child: Some(child), _dir: Some(dir) })
}

/// A key prefix no other test (or test run) shares.
pub fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("test:{test}:{}:{nanos}:{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One call on a trend store.
#[derive(Clone, Debug)]
pub enum Op {
    Record(TrendEvent),
    Remove(TrendEvent),
}

/// Recounts a window from the whole history of operations, straight from
/// the definitions in docs/trends.md.
pub fn brute_force(history: &[Op], window: Window, limit: usize) -> Ranking {
    let mut newest: Option<i64> = None;
    let mut seen: HashMap<String, bool> = HashMap::new();
    let mut live: HashMap<String, TrendEvent> = HashMap::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let too_old = |newest: Option<i64>, created_ms: i64| {
        newest.is_some_and(|newest| bucket_of(created_ms) <= bucket_of(newest) - RETENTION_BUCKETS)
    };
    for op in history {
        match op {
            Op::Record(event) => {
                if newest.is_none_or(|newest| event.created_ms > newest) {
                    newest = Some(event.created_ms);
                }
                if too_old(newest, event.created_ms) || seen.contains_key(&event.post_id) {
                    continue;
                }
                seen.insert(event.post_id.clone(), true);
                live.insert(event.post_id.clone(), event.clone());
            }
            Op::Remove(event) => {
                if event.retweeted_id.is_none() {
                    deleted.insert(event.post_id.clone());
                }
                if too_old(newest, event.created_ms) {
                    continue;
                }
                seen.insert(event.post_id.clone(), false);
                live.remove(&event.post_id);
            }
        }
    }
    let Some(newest) = newest else {
        return Ranking::empty(window);
    };
    let newest_bucket = bucket_of(newest);
    let first = newest_bucket - window.buckets() + 1;
    let baseline_first = first - window.baseline_buckets();

    let mut uses: HashMap<String, u64> = HashMap::new();
    let mut forms: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut accounts: HashMap<String, HashSet<String>> = HashMap::new();
    // Per (tag, baseline sub-window): the distinct accounts.
    let mut baseline_accounts: HashMap<(String, i64), HashSet<String>> = HashMap::new();
    let mut retweets: HashMap<String, u64> = HashMap::new();
    for event in live.values() {
        let bucket = bucket_of(event.created_ms);
        if (first..=newest_bucket).contains(&bucket) {
            for (key, display) in event.tag_uses() {
                *uses.entry(key.clone()).or_default() += 1;
                *forms.entry(key.clone()).or_default().entry(display.to_owned()).or_default() += 1;
                accounts.entry(key).or_default().insert(event.author_id.clone());
            }
            if let Some(original) = &event.retweeted_id {
                *retweets.entry(original.clone()).or_default() += 1;
            }
        } else if (baseline_first..first).contains(&bucket) {
            let sub_window = (first - bucket - 1) / window.buckets();
            for (key, _) in event.tag_uses() {
                baseline_accounts.entry((key, sub_window)).or_default().insert(event.author_id.clone());
            }
        }
    }
    let display = |key: &str| -> String {
        let mut best: Vec<(&String, &u64)> = forms[key].iter().collect();
        best.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        best[0].0.clone()
    };

    let mut ranked: Vec<(String, u64)> = uses.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let mut trending: Vec<(String, f64, u64, f64)> = Vec::new();
    for (key, _) in ranked.iter().take(TRENDING_CANDIDATES) {
        let observed = accounts[key].len() as u64;
        let baseline = (0..window.baseline_windows())
            .map(|sub_window| baseline_accounts.get(&(key.clone(), sub_window)).map_or(0, |set| set.len() as u64))
            .sum();
        let (score, expected) = velocity_score(window, observed, baseline);
        if score > 0.0 {
            trending.push((key.clone(), score, observed, expected));
        }
    }
    trending.sort_by(|a, b| trending_order((a.1, a.2, &a.0), (b.1, b.2, &b.0)));

    let mut retweeted: Vec<(String, u64)> =
        retweets.into_iter().filter(|(original, _)| !deleted.contains(original)).collect();
    retweeted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    Ranking {
        window,
        ends_at_ms: newest,
        hashtags: ranked
            .iter()
            .take(limit)
            .map(|(key, count)| HashtagCount { tag: display(key), count: *count })
            .collect(),
        trending: trending
            .iter()
            .take(limit)
            .map(|(key, score, accounts, expected)| TrendingTag {
                tag: display(key),
                score: *score,
                accounts: *accounts,
                expected: *expected,
            })
            .collect(),
        top_retweeted: retweeted
            .into_iter()
            .take(limit)
            .map(|(post_id, count)| RetweetCount { post_id, count })
            .collect(),
    }
}

/// Seeded generator of realistic-looking streams: Zipf-popular tags in
/// several display forms, Zipf-active accounts, retweets, late and very late
/// posts, time jumps that expire windows, duplicates and deletes.
pub struct StreamGenerator {
    rng: StdRng,
    tag_weights: Vec<f64>,
    account_weights: Vec<f64>,
    now_ms: i64,
    start_ms: i64,
    next_id: u64,
    originals: Vec<TrendEvent>,
    pub emitted: Vec<TrendEvent>,
}

fn zipf_weights(n: usize, exponent: f64) -> Vec<f64> {
    let mut total = 0.0;
    (0..n)
        .map(|rank| {
            total += 1.0 / ((rank + 1) as f64).powf(exponent);
            total
        })
        .collect()
}

impl StreamGenerator {
    pub fn new(seed: u64, n_tags: usize, n_accounts: usize) -> StreamGenerator {
        let start_ms = 1_700_000_000_000 + (seed as i64 % 60_000);
        StreamGenerator {
            rng: StdRng::seed_from_u64(seed),
            tag_weights: zipf_weights(n_tags, 1.1),
            account_weights: zipf_weights(n_accounts, 0.9),
            now_ms: start_ms,
            start_ms,
            next_id: 1,
            originals: Vec::new(),
            emitted: Vec::new(),
        }
    }

    fn pick(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative[cumulative.len() - 1];
        let target = self.rng.random::<f64>() * total;
        cumulative.partition_point(|&sum| sum < target).min(cumulative.len() - 1)
    }

    fn tag_form(&mut self) -> String {
        let tag = self.pick(&self.tag_weights.clone());
        let base = match tag % 4 {
            0 => format!("tag{tag}"),
            1 => format!("äpfel{tag}"),
            2 => format!("방탄{tag}"),
            _ => format!("bts_{tag}"),
        };
        match self.rng.random_range(0..10) {
            0..=5 => base,
            6 | 7 => base.to_uppercase(),
            8 => format!("#{base}"),
            _ => {
                let mut chars = base.chars();
                let first: String = chars.next().into_iter().flat_map(char::to_uppercase).collect();
                format!("{first}{}", chars.as_str())
            }
        }
    }

    /// The next operation, or several (a duplicate follows its original).
    pub fn next_op(&mut self) -> Op {
        let roll = self.rng.random_range(0..1000);
        // Deletes of something emitted earlier (or of an id never seen).
        if roll < 40 && !self.emitted.is_empty() {
            if roll < 3 {
                let mut ghost = self.emitted[0].clone();
                ghost.post_id = format!("ghost{}", self.next_id);
                self.next_id += 1;
                return Op::Remove(ghost);
            }
            let index = self.rng.random_range(0..self.emitted.len());
            return Op::Remove(self.emitted[index].clone());
        }
        // Duplicate deliveries.
        if roll < 90 && !self.emitted.is_empty() {
            let from = self.emitted.len().saturating_sub(200);
            let index = self.rng.random_range(from..self.emitted.len());
            return Op::Record(self.emitted[index].clone());
        }
        // Time moves on; now and then it jumps, expiring windows.
        let jump = self.rng.random_range(0..10_000);
        self.now_ms += self.rng.random_range(0..3_000);
        if self.now_ms - self.start_ms < 40 * 3_600_000 {
            if jump < 5 {
                self.now_ms += self.rng.random_range(3 * 3_600_000..9 * 3_600_000);
            } else if jump < 60 {
                self.now_ms += self.rng.random_range(60_000..90 * 60_000);
            }
        }
        let lateness = match self.rng.random_range(0..100) {
            0..=79 => 0,
            80..=94 => self.rng.random_range(0..120 * 60_000),
            _ => self.rng.random_range(0..50 * 3_600_000),
        };
        let created_ms = self.now_ms - lateness;
        let author = self.pick(&self.account_weights.clone());
        let post_id = format!("{}", self.next_id);
        self.next_id += 1;
        let event = if self.rng.random_range(0..100) < 35 && !self.originals.is_empty() {
            let from = self.originals.len().saturating_sub(300);
            // Skewed toward a few popular originals.
            let span = self.originals.len() - from;
            let offset = (self.rng.random::<f64>().powi(3) * span as f64) as usize;
            let original = self.originals[self.originals.len() - 1 - offset.min(span - 1)].clone();
            TrendEvent {
                post_id,
                author_id: format!("acct{author}"),
                created_ms,
                hashtags: original.hashtags.clone(),
                retweeted_id: Some(original.post_id),
            }
        } else {
            let n_tags = self.rng.random_range(0..4);
            let mut hashtags: Vec<String> = (0..n_tags).map(|_| self.tag_form()).collect();
            if self.rng.random_range(0..50) == 0 {
                hashtags.push(String::new());
            }
            if self.rng.random_range(0..20) == 0
                && let Some(first) = hashtags.first().cloned()
            {
                hashtags.push(first.to_uppercase());
            }
            let event =
                TrendEvent { post_id, author_id: format!("acct{author}"), created_ms, hashtags, retweeted_id: None };
            self.originals.push(event.clone());
            event
        };
        self.emitted.push(event.clone());
        Op::Record(event)
    }
}
