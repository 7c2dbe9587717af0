//! Criterion benchmarks of the embedded trend store: hashtag occurrences
//! recorded per second, and the cost of reading a ranking (cached, and right
//! after a write when it must be recomputed), plus a printed p99 of reads
//! interleaved with writes.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use trends::{EmbeddedTrends, TrendEvent, Window};

/// A deterministic stream: `per_minute` posts a minute, two or three tags
/// each from a skewed vocabulary of 5,000, 50,000 accounts, a quarter retweets.
fn stream(n_events: usize, per_minute: usize, start_ms: i64) -> Vec<TrendEvent> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let skewed = |roll: u64, n: u64| -> u64 {
        // Squaring a uniform draw favours small ranks (a cheap Zipf stand-in).
        let uniform = (roll % 1_000_000) as f64 / 1_000_000.0;
        (uniform * uniform * n as f64) as u64
    };
    (0..n_events)
        .map(|event_idx| {
            let n_tags = 2 + (next() % 2) as usize;
            let hashtags = (0..n_tags)
                .map(|_| {
                    let tag = skewed(next(), 5_000);
                    if tag % 3 == 0 { format!("Tag{tag}") } else { format!("tag{tag}") }
                })
                .collect();
            let retweeted_id = (next() % 4 == 0).then(|| format!("{}", skewed(next(), 10_000)));
            TrendEvent {
                post_id: format!("p{event_idx}"),
                author_id: format!("a{}", skewed(next(), 50_000)),
                created_ms: start_ms + (event_idx / per_minute) as i64 * 60_000 + (next() % 60_000) as i64,
                hashtags,
                retweeted_id,
            }
        })
        .collect()
}

fn occurrences(events: &[TrendEvent]) -> u64 {
    events.iter().map(|event| event.hashtags.len() as u64).sum()
}

fn record(c: &mut Criterion) {
    let events = stream(200_000, 2_000, 1_700_000_000_000);
    let mut group = c.benchmark_group("record");
    group.sample_size(10);
    group.throughput(Throughput::Elements(occurrences(&events)));
    group.bench_function("embedded_200k_posts_100_minutes", |b| {
        b.iter_batched(
            EmbeddedTrends::new,
            |trends| {
                for batch in events.chunks(1_000) {
                    trends.record_events(batch);
                }
                trends
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn ranking(c: &mut Criterion) {
    // Two days at 200 posts a minute: every window and baseline is full.
    let events = stream(576_000, 200, 1_700_000_000_000);
    let trends = EmbeddedTrends::rebuild(events.iter().cloned());
    let newest = events.iter().map(|event| event.created_ms).max().unwrap_or(0);
    let mut group = c.benchmark_group("ranking");
    for window in Window::ALL {
        group.bench_function(format!("cached_{window}"), |b| b.iter(|| black_box(trends.current_ranking(window, 10))));
        let mut post_idx = 0u64;
        group.bench_function(format!("after_write_{window}"), |b| {
            b.iter(|| {
                post_idx += 1;
                trends.record_events(&[TrendEvent {
                    post_id: format!("bench{post_idx}"),
                    author_id: "bench".into(),
                    created_ms: newest,
                    hashtags: vec!["tag1".into()],
                    retweeted_id: None,
                }]);
                black_box(trends.current_ranking(window, 10))
            })
        });
    }
    group.finish();

    // Percentiles of reads that each follow a write (the worst case: every
    // read recomputes), printed for BENCHMARKS.md.
    for window in Window::ALL {
        let mut latencies_ns: Vec<u128> = (0..2_000u64)
            .map(|read_idx| {
                trends.record_events(&[TrendEvent {
                    post_id: format!("p99-{window}-{read_idx}"),
                    author_id: "bench".into(),
                    created_ms: newest,
                    hashtags: vec!["tag2".into()],
                    retweeted_id: None,
                }]);
                let started = Instant::now();
                black_box(trends.current_ranking(window, 10));
                started.elapsed().as_nanos()
            })
            .collect();
        latencies_ns.sort_unstable();
        let at = |q: f64| latencies_ns[((latencies_ns.len() - 1) as f64 * q) as usize] as f64 / 1e3;
        println!(
            "ranking read after write, window {window}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

criterion_group!(benches, record, ranking);
criterion_main!(benches);
