//! The Kafka log on a real Apache Kafka broker (`scripts/cluster up kafka`):
//! at-least-once delivery across a consumer that stops before committing,
//! two members of one group sharing the partitions and taking over from each
//! other, per-key order, and the processed-posts topic round trip.
//!
//! Needs `DECK_TEST_KAFKA` (or `DECK_KAFKA`) = bootstrap servers; fails
//! without it unless `DECK_SKIP_ENGINES=1`, which skips loudly. Every test
//! uses topics and groups of its own.

// Tests may unwrap: a failure is the report.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{TimeZone, Utc};
use model::{Author, Origin, Post, RawRecord, Source, StoredPost};
use pipeline::{Delivery, KafkaConfig, KafkaLog, KafkaPublisher, Log, LogConsumer, ProcessedConsumer, Publisher};
use store::Applied;
use tokio_util::sync::CancellationToken;

/// Upper bound on any wait for the broker (group joins, rebalances); the
/// tests wait for conditions, never for fixed times.
const PATIENCE: Duration = Duration::from_secs(120);

fn config_or_skip(test_name: &str, partitions: i32) -> Option<KafkaConfig> {
    let brokers = std::env::var("DECK_TEST_KAFKA").or_else(|_| std::env::var("DECK_KAFKA"));
    let Ok(brokers) = brokers else {
        if std::env::var("DECK_SKIP_ENGINES").as_deref() == Ok("1") {
            // Straight to stderr, past the test harness's capture: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "!!!!! {test_name}: SKIPPED (DECK_SKIP_ENGINES=1): no Kafka to test against !!!!!"
            );
            return None;
        }
        panic!(
            "{test_name} needs a real Apache Kafka: run `eval \"$(scripts/cluster up kafka)\"` \
             (sets DECK_KAFKA) or set DECK_TEST_KAFKA; DECK_SKIP_ENGINES=1 skips (loudly)"
        );
    };
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000_000;
    Some(KafkaConfig {
        raw_topic: format!("test.{test_name}.{nanos}.raw"),
        processed_topic: format!("test.{test_name}.{nanos}.processed"),
        partitions,
        processed_partitions: 2,
        // The broker's minimum: a member that vanishes is noticed soon.
        session_timeout_ms: 6_000,
        ..KafkaConfig::single_node(&brokers)
    })
}

fn record(key: &str, position: u64) -> RawRecord {
    RawRecord {
        key: key.to_owned(),
        origin: Origin { source: "test".into(), position, checkpoint: None },
        payload: format!("{{\"n\":{position}}}"),
        received_ms: None,
    }
}

/// Polls until `wanted` records (by origin position) were delivered or the
/// patience runs out; commits each batch after "processing" when asked.
async fn poll_until(consumer: &mut dyn LogConsumer, wanted: &HashSet<u64>, commit: bool) -> Vec<Delivery> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut got = Vec::new();
    let mut seen = HashSet::new();
    while !wanted.is_subset(&seen) {
        assert!(tokio::time::Instant::now() < deadline, "records not delivered: {} of {}", seen.len(), wanted.len());
        let batch = consumer.poll(500, Duration::from_millis(500)).await.unwrap();
        if commit {
            consumer.commit(&batch).await.unwrap();
        }
        seen.extend(batch.iter().map(|delivery| delivery.record.origin.position));
        got.extend(batch);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_not_committed_are_delivered_again() {
    let Some(config) = config_or_skip("redeliver", 2) else {
        return;
    };
    let log = KafkaLog::connect(config).await.unwrap();
    assert_eq!(log.partitions(), 2);
    log.append((0..40).map(|n| record(&format!("k{n}"), n)).collect()).await.unwrap();

    // The first member reads everything but processes (commits) only the
    // first half of each partition, then stops before committing the rest.
    let all: HashSet<u64> = (0..40).collect();
    let mut first = log.consumer("processors").await.unwrap();
    let delivered = poll_until(first.as_mut(), &all, false).await;
    let mut by_partition: HashMap<u32, Vec<&Delivery>> = HashMap::new();
    for delivery in &delivered {
        by_partition.entry(delivery.partition).or_default().push(delivery);
    }
    let mut processed = Vec::new();
    let mut unprocessed = BTreeSet::new();
    for deliveries in by_partition.values_mut() {
        deliveries.sort_by_key(|delivery| delivery.offset);
        let half = deliveries.len() / 2;
        processed.extend(deliveries[..half].iter().map(|delivery| (*delivery).clone()));
        unprocessed.extend(deliveries[half..].iter().map(|delivery| delivery.record.origin.position));
    }
    first.commit(&processed).await.unwrap();
    drop(first);

    // The next member of the group starts at the committed positions: every
    // record not processed comes again, and nothing processed does.
    let mut second = log.consumer("processors").await.unwrap();
    let again = poll_until(second.as_mut(), &unprocessed.iter().copied().collect(), true).await;
    let again_positions: BTreeSet<u64> = again.iter().map(|delivery| delivery.record.origin.position).collect();
    assert_eq!(again_positions, unprocessed);

    // A new group starts from the earliest offset.
    let mut fresh = log.consumer("another-group").await.unwrap();
    poll_until(fresh.as_mut(), &all, true).await;
}

/// Set in the child process of the crash test: the topic to read.
const CRASH_CHILD_TOPIC: &str = "DECK_TEST_KAFKA_CRASH_CHILD_TOPIC";

/// Run only as a child of the crash test (a no-op otherwise): joins the
/// group, reads everything, processes half of it, and dies on the spot —
/// no clean leave, no commit on the way out, as with `kill -9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_reads_then_dies() {
    let Ok(topic) = std::env::var(CRASH_CHILD_TOPIC) else {
        return;
    };
    let mut config = config_or_skip("crash", 2).unwrap();
    config.raw_topic = topic;
    let log = KafkaLog::connect(config).await.unwrap();
    let mut consumer = log.consumer("processors").await.unwrap();
    let delivered = poll_until(consumer.as_mut(), &(0..40).collect(), false).await;
    let half: Vec<Delivery> = delivered.iter().filter(|delivery| delivery.offset < 5).cloned().collect();
    consumer.commit(&half).await.unwrap();
    // Let auto-commit (every second) send the stored offsets, so the group
    // has a position to resume from; then die without leaving.
    tokio::time::sleep(Duration::from_secs(3)).await;
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_mid_batch_leaves_its_records_to_the_group() {
    let Some(config) = config_or_skip("crash", 2) else {
        return;
    };
    let topic = config.raw_topic.clone();
    let log = KafkaLog::connect(config).await.unwrap();
    log.append((0..40).map(|n| record(&format!("k{n}"), n)).collect()).await.unwrap();

    // The child's output is kept apart: its test summary is not this one's.
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_reads_then_dies", "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_TOPIC, &topic)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        !child.status.success(),
        "the child process died (aborted) as planned: {}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stderr)
    );

    // Where every record is (another group reads them all).
    let mut census = log.consumer("census").await.unwrap();
    let everything = poll_until(census.as_mut(), &(0..40).collect(), true).await;
    let unprocessed: HashSet<(u32, u64)> = everything
        .iter()
        .filter(|delivery| delivery.offset >= 5)
        .map(|delivery| (delivery.partition, delivery.offset))
        .collect();

    // The group notices the dead member (session timeout), and the next
    // member receives every record the dead one had not processed, starting
    // no later than the positions it had stored.
    let mut next = log.consumer("processors").await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = HashSet::new();
    let mut first_offsets: HashMap<u32, u64> = HashMap::new();
    while !unprocessed.is_subset(&seen) {
        assert!(tokio::time::Instant::now() < deadline, "records of the dead member not delivered again");
        let batch = next.poll(500, Duration::from_millis(500)).await.unwrap();
        next.commit(&batch).await.unwrap();
        for delivery in &batch {
            first_offsets.entry(delivery.partition).or_insert(delivery.offset);
            seen.insert((delivery.partition, delivery.offset));
        }
    }
    assert!(
        first_offsets.values().all(|offset| *offset <= 5),
        "each partition restarts at or before the stored offset: {first_offsets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_keeps_its_order() {
    let Some(config) = config_or_skip("order", 4) else {
        return;
    };
    let log = KafkaLog::connect(config).await.unwrap();
    let mut records: Vec<RawRecord> = (0..100).map(|n| record("same-key", n)).collect();
    records.extend((100..200).map(|n| record(&format!("other-{n}"), n)));
    log.append(records).await.unwrap();
    let mut consumer = log.consumer("g").await.unwrap();
    let delivered = poll_until(consumer.as_mut(), &(0..200).collect(), true).await;
    let same_key: Vec<&Delivery> = delivered.iter().filter(|delivery| delivery.record.key == "same-key").collect();
    let positions: Vec<u64> = same_key.iter().map(|delivery| delivery.record.origin.position).collect();
    assert_eq!(positions, (0..100).collect::<Vec<_>>(), "one key, one partition, in order");
    assert!(same_key.iter().all(|delivery| delivery.partition == same_key[0].partition));
    let partitions: HashSet<u32> = delivered.iter().map(|delivery| delivery.partition).collect();
    assert!(partitions.len() > 1, "other keys spread over the partitions");
    assert_eq!(same_key[0].record, record("same-key", 0), "records travel intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_share_the_partitions_and_take_over() {
    let Some(config) = config_or_skip("rebalance", 4) else {
        return;
    };
    let log = KafkaLog::connect(config).await.unwrap();
    let mut first = log.kafka_consumer("processors").unwrap();
    let mut second = log.kafka_consumer("processors").unwrap();

    // Poll both (processing and committing) until the group has settled on
    // a split: each holds some partitions, none twice, all covered.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut first_seen = Vec::new();
    let mut second_seen = Vec::new();
    loop {
        assert!(tokio::time::Instant::now() < deadline, "the group never shared the partitions");
        for (consumer, seen) in [(&mut first, &mut first_seen), (&mut second, &mut second_seen)] {
            let batch = consumer.poll(500, Duration::from_millis(200)).await.unwrap();
            consumer.commit(&batch).await.unwrap();
            seen.extend(batch);
        }
        let first_partitions = first.assigned_partitions().unwrap();
        let second_partitions = second.assigned_partitions().unwrap();
        let union: BTreeSet<u32> = first_partitions.iter().chain(&second_partitions).copied().collect();
        if !first_partitions.is_empty()
            && !second_partitions.is_empty()
            && union.len() == 4
            && first_partitions.len() + second_partitions.len() == 4
        {
            break;
        }
    }

    // Records spread over every partition: each member receives those of its own.
    log.append((0..200).map(|n| record(&format!("k{n}"), n)).collect()).await.unwrap();
    let wanted: HashSet<u64> = (0..200).collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = HashSet::new();
    while !wanted.is_subset(&seen) {
        assert!(tokio::time::Instant::now() < deadline, "records not delivered to the group");
        for (consumer, got) in [(&mut first, &mut first_seen), (&mut second, &mut second_seen)] {
            let batch = consumer.poll(500, Duration::from_millis(200)).await.unwrap();
            consumer.commit(&batch).await.unwrap();
            seen.extend(batch.iter().map(|delivery| delivery.record.origin.position));
            got.extend(batch);
        }
    }
    let first_partitions: HashSet<u32> = first_seen.iter().map(|delivery| delivery.partition).collect();
    let second_partitions: HashSet<u32> = second_seen.iter().map(|delivery| delivery.partition).collect();
    assert!(!first_seen.is_empty() && !second_seen.is_empty(), "both members did work");
    assert!(first_partitions.is_disjoint(&second_partitions), "no partition read by both");

    // One member leaves: the other takes over its partitions and receives everything.
    drop(second);
    log.append((200..300).map(|n| record(&format!("k{n}"), n)).collect()).await.unwrap();
    let rest = poll_until(&mut first, &(200..300).collect(), true).await;
    let rest_partitions: HashSet<u32> = rest.iter().map(|delivery| delivery.partition).collect();
    assert_eq!(rest_partitions.len(), 4, "the remaining member reads every partition");
    assert_eq!(first.assigned_partitions().unwrap(), vec![0, 1, 2, 3]);
}

fn stored_post(id: &str) -> StoredPost {
    StoredPost {
        post: Post {
            lang: Some("en".into()),
            hashtags: vec!["bts".into()],
            ..Post::new(
                id.to_owned(),
                Source::Demo,
                Author { id: "1".into(), handle: "alice".into(), name: "Alice".into(), avatar_url: None },
                format!("post {id} #bts"),
                Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            )
        },
        retweeted: None,
        quoted: None,
    }
}

/// Normalized posts can be large (a 25,000-character X post, its quoted
/// post, alt texts): a batch of them crosses the processed topic whole, in
/// messages that each stay under Kafka's default 1 MB, and one post whose
/// JSON alone is over 1 MB crosses too (the topic Deck creates, and its
/// producer, take up to 8 MiB). Before, 200 posts went in one message
/// whatever their size, and Kafka refused it: the batch could never be
/// published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_posts_cross_the_processed_topic_whole() {
    let Some(config) = config_or_skip("large", 1) else {
        return;
    };
    let config = KafkaConfig { processed_partitions: 1, ..config };
    let publisher = KafkaPublisher::connect(&config).await.unwrap();
    let consumer = ProcessedConsumer::start(&config).await.unwrap();
    let received: Arc<Mutex<Vec<StoredPost>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let sink = received.clone();
    let task = tokio::spawn(
        consumer.run(move |applied| sink.lock().unwrap().extend(applied.inserted.iter().cloned()), shutdown.clone()),
    );

    // 120 long posts of ~104 KB of text each (12.5 MB in one batch, one
    // partition), and one of 2.4 MB.
    let long_text = "방탄소년단 long post ".repeat(4_000);
    let mut inserted: Vec<StoredPost> = (1..=120)
        .map(|n| {
            let mut stored = stored_post(&n.to_string());
            stored.post.text = long_text.clone();
            stored
        })
        .collect();
    let mut huge = stored_post("121");
    huge.post.text = "x".repeat(2_400_000);
    inserted.push(huge);
    publisher.publish(&Arc::new(Applied { inserted: inserted.clone(), ..Applied::default() })).await.unwrap();

    let deadline = tokio::time::Instant::now() + PATIENCE;
    while received.lock().unwrap().len() < inserted.len() {
        assert!(tokio::time::Instant::now() < deadline, "the large posts did not all arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = received.lock().unwrap().clone();
    assert_eq!(received, inserted, "every post, whole and in order");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// An operator's processed topic that takes smaller messages than Deck
/// sends (here 100 KB; Kafka's default is 1 MB): the broker refuses a
/// batch's message for good. The publisher says so (`Rejected`, never
/// retried: it cannot succeed), and the gap the processor sends instead
/// reaches the feed nodes, as does a message they cannot decode: both tell
/// every live column to resync from the store rather than leave it a silent
/// hole. Before, the refusal was a transient error retried for ever, and an
/// undecodable message was skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_broker_refuses_for_good_becomes_a_gap() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let Some(config) = config_or_skip("refused", 1) else {
        return;
    };
    let config = KafkaConfig { processed_partitions: 1, ..config };
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &config.brokers).create().unwrap();
    let small =
        NewTopic::new(&config.processed_topic, 1, TopicReplication::Fixed(1)).set("max.message.bytes", "100000");
    for result in admin.create_topics([&small], &AdminOptions::new()).await.unwrap() {
        result.unwrap();
    }
    let publisher = KafkaPublisher::connect(&config).await.unwrap();
    let consumer = ProcessedConsumer::start(&config).await.unwrap();
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let shutdown = CancellationToken::new();
    let sink = received.clone();
    let task = tokio::spawn(consumer.run(
        move |applied| {
            let mut received = sink.lock().unwrap();
            if applied.gap {
                received.push("gap".into());
            }
            received.extend(applied.inserted.iter().map(|stored| stored.post.id.clone()));
        },
        shutdown.clone(),
    ));

    // ~300 KB that the producer's compression cannot shrink below the
    // limit: Hangul syllables from a linear congruential sequence.
    let mut seed: u32 = 7;
    let noise: String = (0..100_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from_u32(0xAC00 + (seed >> 16) % 11_172).unwrap()
        })
        .collect();
    let mut large = stored_post("1");
    large.post.text = noise;
    let refused = publisher.publish(&Arc::new(Applied { inserted: vec![large], ..Applied::default() })).await;
    assert!(matches!(refused, Err(pipeline::LogError::Rejected(_))), "{refused:?}");
    publisher.publish_gap().await.unwrap();
    publisher.publish(&Arc::new(Applied { inserted: vec![stored_post("2")], ..Applied::default() })).await.unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &config.brokers).create().unwrap();
    producer
        .send(FutureRecord::<[u8], [u8]>::to(&config.processed_topic).payload(b"{not a batch"), Duration::from_secs(30))
        .await
        .map_err(|(error, _)| error)
        .unwrap();

    let deadline = tokio::time::Instant::now() + PATIENCE;
    while received.lock().unwrap().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "got only {:?}", received.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*received.lock().unwrap(), ["gap", "2", "gap"]);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_batches_reach_every_feed_node() {
    let Some(config) = config_or_skip("processed", 1) else {
        return;
    };
    let publisher = KafkaPublisher::connect(&config).await.unwrap();
    // A batch published before the feed nodes start is not theirs to see.
    publisher.send(&Applied { inserted: vec![stored_post("0")], ..Applied::default() }).await.unwrap();

    let shutdown = CancellationToken::new();
    let mut received = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let consumer = ProcessedConsumer::start(&config).await.unwrap();
        let posts: Arc<Mutex<Vec<(String, &'static str)>>> = Arc::default();
        let pictured: Arc<Mutex<Vec<StoredPost>>> = Arc::default();
        received.push((posts.clone(), pictured.clone()));
        tasks.push(tokio::spawn(consumer.run(
            move |applied| {
                pictured
                    .lock()
                    .unwrap()
                    .extend(applied.inserted.iter().filter(|stored| stored.post.id == "1").cloned());
                let mut posts = posts.lock().unwrap();
                posts.extend(applied.inserted.iter().map(|stored| (stored.post.id.clone(), "inserted")));
                posts.extend(applied.deleted.iter().map(|stored| (stored.post.id.clone(), "deleted")));
            },
            shutdown.clone(),
        )));
    }
    let mut inserted: Vec<StoredPost> = (1..=450).map(|n| stored_post(&n.to_string())).collect();
    inserted[0].post = model::fixtures::with_every_picture_field(inserted[0].post.clone());
    publisher.publish(&Arc::new(Applied { inserted: inserted.clone(), ..Applied::default() })).await.unwrap();
    publisher.publish(&Arc::new(Applied { deleted: vec![stored_post("7")], ..Applied::default() })).await.unwrap();

    let deadline = tokio::time::Instant::now() + PATIENCE;
    for (posts, pictured) in &received {
        loop {
            assert!(tokio::time::Instant::now() < deadline, "processed batches not received");
            let done = posts.lock().unwrap().len() == 451;
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let posts = posts.lock().unwrap();
        let ids: HashSet<&str> =
            posts.iter().filter(|(_, what)| *what == "inserted").map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids.len(), 450);
        assert!(!ids.contains("0"));
        // One post's changes keep their order: inserted, then deleted.
        let of_seven: Vec<&str> = posts.iter().filter(|(id, _)| id == "7").map(|(_, what)| *what).collect();
        assert_eq!(of_seven, vec!["inserted", "deleted"]);
        // Every picture field crosses the topic as it was sent.
        assert_eq!(*pictured.lock().unwrap(), [inserted[0].clone()]);
    }
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}
