//! The rankings of both backends equal a brute-force recount on generated
//! streams (late posts, expiring windows, deletes, retweets of deleted posts,
//! duplicate deliveries), and hand-built scenarios behave as documented. Each
//! test body runs against the embedded store and a real Redis.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Op, StreamGenerator, brute_force, start_redis, unique_prefix};
use trends::{BUCKET_MS, EmbeddedTrends, HashtagCount, RedisTrends, RetweetCount, TrendEvent, TrendStore, Window};

async fn redis_store(test: &str) -> Option<(common::TestRedis, RedisTrends)> {
    let redis = start_redis(test)?;
    let store = RedisTrends::connect(&redis.url, &unique_prefix(test)).await.unwrap();
    Some((redis, store))
}

/// Feeds `n_ops` generated operations in batches of varying size, comparing
/// every window with the recount after each batch.
async fn matches_brute_force(store: &dyn TrendStore, seed: u64, n_ops: usize, check_every: usize) {
    let mut generator = StreamGenerator::new(seed, 300, 500);
    let mut history: Vec<Op> = Vec::new();
    let mut pending: Vec<Op> = Vec::new();
    let mut n_checks = 0;
    let mut max_seen_counts = [0u64; 3];
    let (mut n_trending, mut n_retweeted) = (0, 0);
    for op_idx in 0..n_ops {
        pending.push(generator.next_op());
        // Batches of consecutive records go in one call, as the pipeline does.
        let flush = op_idx + 1 == n_ops || (op_idx * 7919 + seed as usize).is_multiple_of(13);
        if !flush {
            continue;
        }
        let mut records = Vec::new();
        for op in pending.drain(..) {
            match &op {
                Op::Record(event) => records.push(event.clone()),
                Op::Remove(event) => {
                    store.record(&records).await.unwrap();
                    records.clear();
                    store.remove(std::slice::from_ref(event)).await.unwrap();
                }
            }
            history.push(op);
        }
        store.record(&records).await.unwrap();
        if history.len() / check_every > n_checks || op_idx + 1 == n_ops {
            n_checks += 1;
            for window in Window::ALL {
                for limit in [10, 300] {
                    let expected = brute_force(&history, window, limit);
                    let actual = store.ranking(window, limit).await.unwrap();
                    assert_eq!(
                        actual,
                        expected,
                        "seed {seed}, after {} ops, window {window}, limit {limit}",
                        history.len()
                    );
                    let top = expected.hashtags.first().map_or(0, |tag| tag.count);
                    n_trending += expected.trending.len();
                    n_retweeted += expected.top_retweeted.len();
                    max_seen_counts[window.index_for_tests()] = max_seen_counts[window.index_for_tests()].max(top);
                }
            }
        }
    }
    // The stream must have exercised the rankings, not compared empty lists.
    assert!(max_seen_counts.iter().all(|&count| count >= 3), "{max_seen_counts:?}");
    assert!(n_trending > 0 && n_retweeted > 0, "{n_trending} {n_retweeted}");
    eprintln!(
        "seed {seed}: {n_checks} checks, top counts {max_seen_counts:?}, \
         {n_trending} trending and {n_retweeted} retweeted entries compared"
    );
}

trait WindowIndex {
    fn index_for_tests(&self) -> usize;
}

impl WindowIndex for Window {
    fn index_for_tests(&self) -> usize {
        Window::ALL.iter().position(|window| window == self).unwrap()
    }
}

#[tokio::test]
async fn embedded_matches_brute_force() {
    for seed in [1, 2, 3] {
        let store = EmbeddedTrends::new();
        matches_brute_force(&store, seed, 6_000, 400).await;
    }
}

#[tokio::test]
async fn redis_matches_brute_force() {
    let Some((_redis, store)) = redis_store("redis_matches_brute_force").await else {
        return;
    };
    matches_brute_force(&store, 11, 4_000, 800).await;
}

/// Every key the Redis store writes expires on its own (docs/trends.md):
/// after records, removes, retweets of removed posts and rankings of every
/// window, no key under the store's prefix is left without a TTL.
#[tokio::test]
async fn every_redis_key_expires() {
    let Some(redis) = start_redis("every_redis_key_expires") else {
        return;
    };
    let prefix = unique_prefix("every_redis_key_expires");
    let store = RedisTrends::connect(&redis.url, &prefix).await.unwrap();
    let mut generator = StreamGenerator::new(5, 200, 300);
    for _ in 0..20 {
        let mut records = Vec::new();
        for _ in 0..50 {
            match generator.next_op() {
                Op::Record(event) => records.push(event),
                Op::Remove(event) => store.remove(std::slice::from_ref(&event)).await.unwrap(),
            }
        }
        store.record(&records).await.unwrap();
        for window in Window::ALL {
            store.ranking(window, 20).await.unwrap();
        }
    }
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{prefix}:*");
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut connection).await.unwrap();
    assert!(keys.len() > 100, "{} keys under {pattern}", keys.len());
    let mut without_ttl = Vec::new();
    for key in &keys {
        let ttl: i64 = redis::cmd("TTL").arg(key).query_async(&mut connection).await.unwrap();
        // -1: no expiry; -2: gone since KEYS (fine).
        if ttl == -1 {
            without_ttl.push(key.clone());
        }
    }
    assert!(without_ttl.is_empty(), "keys without a TTL: {without_ttl:?}");
}

#[tokio::test]
async fn rebuild_gives_the_live_ranking() {
    let mut generator = StreamGenerator::new(7, 200, 300);
    let live = EmbeddedTrends::new();
    let mut recorded = Vec::new();
    for _ in 0..5_000 {
        if let Op::Record(event) = generator.next_op() {
            live.record(std::slice::from_ref(&event)).await.unwrap();
            recorded.push(event);
        }
    }
    // A restart re-feeds the stored posts in time order, not arrival order.
    recorded.sort_by_key(|event| event.created_ms);
    let rebuilt = EmbeddedTrends::rebuild(recorded);
    for window in Window::ALL {
        assert_eq!(rebuilt.ranking(window, 20).await.unwrap(), live.ranking(window, 20).await.unwrap());
    }
}

fn post(id: &str, author: &str, ms: i64, tags: &[&str]) -> TrendEvent {
    TrendEvent {
        post_id: id.into(),
        author_id: author.into(),
        created_ms: ms,
        hashtags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        retweeted_id: None,
    }
}

fn retweet(id: &str, author: &str, ms: i64, original: &TrendEvent) -> TrendEvent {
    TrendEvent {
        post_id: id.into(),
        author_id: author.into(),
        created_ms: ms,
        hashtags: original.hashtags.clone(),
        retweeted_id: Some(original.post_id.clone()),
    }
}

const T0: i64 = 1_700_000_040_000 / BUCKET_MS * BUCKET_MS;

/// A tag that 50 accounts start using in the last five minutes outranks a
/// steady tag that has more posts, and one account spamming cannot trend.
async fn burst_outranks_steady(store: &dyn TrendStore) {
    let mut events = Vec::new();
    // Two hours of a steady tag: 20 accounts, 4 posts a minute.
    for minute in 0..120 {
        for post_idx in 0..4 {
            let author = format!("steady{}", (minute * 4 + post_idx) % 20);
            events.push(post(&format!("s{minute}-{post_idx}"), &author, T0 + minute * BUCKET_MS, &["Steady"]));
        }
    }
    // One account spamming its own tag in the last five minutes.
    for spam_idx in 0..200 {
        events.push(post(&format!("spam{spam_idx}"), "spammer", T0 + (115 + spam_idx % 5) * BUCKET_MS, &["Spam"]));
    }
    // The comeback: 50 accounts in the last five minutes.
    for fan_idx in 0..50 {
        events.push(post(
            &format!("c{fan_idx}"),
            &format!("fan{fan_idx}"),
            T0 + (115 + fan_idx % 5) * BUCKET_MS + 1_000,
            &["Comeback"],
        ));
    }
    store.record(&events).await.unwrap();
    let ranking = store.ranking(Window::FiveMinutes, 10).await.unwrap();
    // By posts the spam and the steady tag lead; by velocity the comeback does.
    assert_eq!(
        ranking.hashtags,
        vec![
            HashtagCount { tag: "Spam".into(), count: 200 },
            HashtagCount { tag: "Comeback".into(), count: 50 },
            HashtagCount { tag: "Steady".into(), count: 20 },
        ]
    );
    let one_hour = store.ranking(Window::OneHour, 10).await.unwrap();
    assert_eq!(one_hour.hashtags[0], HashtagCount { tag: "Steady".into(), count: 240 });
    let trending: Vec<&str> = ranking.trending.iter().map(|tag| tag.tag.as_str()).collect();
    assert_eq!(trending, vec!["Comeback"]);
    assert_eq!(ranking.trending[0].accounts, 50);
    assert_eq!(ranking.trending[0].score, 49.0);
    // Over the hour the comeback still leads; the steady tag, two hours old,
    // is itself new against the six-hour baseline.
    assert_eq!(one_hour.trending[0].tag, "Comeback");
}

/// Deletes leave the counts: a deleted retweet lowers its original's count,
/// a deleted original leaves the list with all its retweets, a post deleted
/// then delivered again stays deleted, and duplicates count once.
async fn deletes_and_duplicates(store: &dyn TrendStore) {
    let popular = post("100", "author", T0, &["Kpop"]);
    let other = post("200", "author2", T0, &["Kpop"]);
    let mut events = vec![popular.clone(), other.clone()];
    for fan_idx in 0..5 {
        events.push(retweet(&format!("r{fan_idx}"), &format!("fan{fan_idx}"), T0 + 1_000, &popular));
    }
    for fan_idx in 0..3 {
        events.push(retweet(&format!("q{fan_idx}"), &format!("fan{fan_idx}"), T0 + 2_000, &other));
    }
    store.record(&events).await.unwrap();
    store.record(&events).await.unwrap();
    let ranking = store.ranking(Window::FiveMinutes, 10).await.unwrap();
    assert_eq!(
        ranking.top_retweeted,
        vec![RetweetCount { post_id: "100".into(), count: 5 }, RetweetCount { post_id: "200".into(), count: 3 },]
    );
    assert_eq!(ranking.hashtags, vec![HashtagCount { tag: "Kpop".into(), count: 10 }]);

    store.remove(&[events[2].clone()]).await.unwrap();
    store.record(&[events[2].clone()]).await.unwrap();
    let ranking = store.ranking(Window::FiveMinutes, 10).await.unwrap();
    assert_eq!(ranking.top_retweeted[0], RetweetCount { post_id: "100".into(), count: 4 });
    assert_eq!(ranking.hashtags[0].count, 9);

    store.remove(std::slice::from_ref(&popular)).await.unwrap();
    let ranking = store.ranking(Window::FiveMinutes, 10).await.unwrap();
    assert_eq!(ranking.top_retweeted, vec![RetweetCount { post_id: "200".into(), count: 3 }]);
    // The retweets still used the tag; the deleted original did not.
    assert_eq!(ranking.hashtags[0].count, 8);
    // A later retweet of the deleted original does not bring it back.
    store.record(&[retweet("late", "fan9", T0 + 3_000, &popular)]).await.unwrap();
    let ranking = store.ranking(Window::FiveMinutes, 10).await.unwrap();
    assert_eq!(ranking.top_retweeted.len(), 1);
}

/// Late posts count in their own minute; posts older than the horizon do not.
async fn late_posts(store: &dyn TrendStore) {
    store.record(&[post("1", "a", T0 + 3 * 3_600_000, &["now"])]).await.unwrap();
    store
        .record(&[
            post("2", "b", T0 + 3 * 3_600_000 - 10 * BUCKET_MS, &["late"]),
            post("3", "c", T0 - 60 * 3_600_000, &["ancient"]),
        ])
        .await
        .unwrap();
    let five = store.ranking(Window::FiveMinutes, 10).await.unwrap();
    assert_eq!(five.hashtags, vec![HashtagCount { tag: "now".into(), count: 1 }]);
    assert_eq!(five.ends_at_ms, T0 + 3 * 3_600_000);
    let hour = store.ranking(Window::OneHour, 10).await.unwrap();
    assert_eq!(hour.hashtags.len(), 2);
    let day = store.ranking(Window::OneDay, 10).await.unwrap();
    assert!(day.hashtags.iter().all(|tag| tag.tag != "ancient"));
}

#[tokio::test]
async fn embedded_burst_outranks_steady() {
    burst_outranks_steady(&EmbeddedTrends::new()).await;
}

#[tokio::test]
async fn redis_burst_outranks_steady() {
    if let Some((_redis, store)) = redis_store("redis_burst_outranks_steady").await {
        burst_outranks_steady(&store).await;
    }
}

#[tokio::test]
async fn embedded_deletes_and_duplicates() {
    deletes_and_duplicates(&EmbeddedTrends::new()).await;
}

#[tokio::test]
async fn redis_deletes_and_duplicates() {
    if let Some((_redis, store)) = redis_store("redis_deletes_and_duplicates").await {
        deletes_and_duplicates(&store).await;
    }
}

#[tokio::test]
async fn embedded_late_posts() {
    late_posts(&EmbeddedTrends::new()).await;
}

#[tokio::test]
async fn redis_late_posts() {
    if let Some((_redis, store)) = redis_store("redis_late_posts").await {
        late_posts(&store).await;
    }
}

#[tokio::test]
async fn empty_stores_rank_nothing() {
    let store = EmbeddedTrends::new();
    assert_eq!(store.ranking(Window::OneHour, 10).await.unwrap(), trends::Ranking::empty(Window::OneHour));
    if let Some((_redis, store)) = redis_store("empty_stores_rank_nothing").await {
        assert_eq!(store.ranking(Window::OneHour, 10).await.unwrap(), trends::Ranking::empty(Window::OneHour));
    }
}
