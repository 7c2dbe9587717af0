//! Load driver for the Redis trend store: records a synthetic stream in
//! pipelined batches for a while and prints the sustained rate, then times
//! ranking reads per window.
//!
//! `DECK_REDIS=redis://127.0.0.1:6379/ cargo run --release -p trends --example redis_load -- [SECONDS] [BATCH]`

use std::time::{Duration, Instant};

use trends::{RedisTrends, TrendEvent, TrendStore, Window};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DECK_REDIS").map_err(|_| "set DECK_REDIS=redis://host:port/")?;
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(Ok(10), |arg| arg.parse())?;
    let batch: usize = args.next().map_or(Ok(500), |arg| arg.parse())?;
    let prefix = format!("load:{}", std::process::id());
    let trends = RedisTrends::connect(&url, &prefix).await?;

    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let start_ms: i64 = 1_700_000_000_000;
    let (mut n_posts, mut n_occurrences, mut n_retweets) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        let events: Vec<TrendEvent> = (0..batch)
            .map(|_| {
                n_posts += 1;
                let roll = next();
                let hashtags: Vec<String> = (0..2 + roll % 2)
                    .map(|_| {
                        let uniform = (next() % 1_000_000) as f64 / 1e6;
                        format!("tag{}", (uniform * uniform * 5_000.0) as u64)
                    })
                    .collect();
                n_occurrences += hashtags.len() as u64;
                let retweeted_id = (roll % 4 == 0).then(|| format!("{}", next() % 10_000));
                n_retweets += u64::from(retweeted_id.is_some());
                TrendEvent {
                    post_id: format!("p{n_posts}"),
                    author_id: format!("a{}", next() % 50_000),
                    // 2,000 posts a minute of event time.
                    created_ms: start_ms + (n_posts / 2_000) as i64 * 60_000,
                    hashtags,
                    retweeted_id,
                }
            })
            .collect();
        trends.record(&events).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Each occurrence is three sorted-set increments (tag, form, account), each
    // retweet one, each post one SET NX.
    let updates = 3 * n_occurrences + n_retweets + n_posts;
    println!(
        "redis record: {n_posts} posts in {elapsed:.1} s, batch {batch}: {:.0} posts/s, \
         {:.0} hashtag occurrences/s, {:.0} redis updates/s",
        n_posts as f64 / elapsed,
        n_occurrences as f64 / elapsed,
        updates as f64 / elapsed
    );
    for window in Window::ALL {
        let mut latencies: Vec<f64> = Vec::new();
        for _ in 0..10 {
            let read_started = Instant::now();
            let ranking = trends.ranking(window, 10).await?;
            latencies.push(read_started.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(ranking);
        }
        latencies.sort_by(f64::total_cmp);
        println!(
            "redis ranking {window}: median {:.1} ms, max {:.1} ms",
            latencies[latencies.len() / 2],
            latencies[latencies.len() - 1]
        );
    }
    Ok(())
}
