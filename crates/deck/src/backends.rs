//! Chooses each role's engine from configuration: embedded by default, or
//! Apache Kafka, Apache Cassandra and Redis when their variables are set.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use pipeline::{EmbeddedLog, Health, Log, Probe};
#[cfg(feature = "kafka")]
pub use pipeline::{KafkaConfig, KafkaPublisher, ProcessedConsumer};
#[cfg(feature = "cassandra")]
use store::{CassandraConfig, CassandraStore};
use store::{EmbeddedStore, PostStore, ReadLimits};
use trends::{EmbeddedTrends, RedisTrends, TrendEvent, TrendStore};

/// Where the distributed engines are. Each one that is set switches its role.
#[derive(Args, Clone, Debug, Default)]
pub struct EngineArgs {
    /// Apache Kafka bootstrap servers (the log).
    #[arg(long, env = "DECK_KAFKA")]
    pub kafka: Option<String>,
    /// Apache Cassandra contact points (the post store).
    #[arg(long, env = "DECK_CASSANDRA")]
    pub cassandra: Option<String>,
    /// Redis URL (trends, stream tickets, rate limits).
    #[arg(long, env = "DECK_REDIS")]
    pub redis: Option<String>,
    /// MySQL/MariaDB URL (members).
    #[arg(long, env = "DECK_MYSQL")]
    pub mysql: Option<String>,
    /// Name of this deployment on shared engines: Kafka topics, the consumer
    /// group, the Cassandra keyspace and Redis keys are named after it.
    #[arg(long, env = "DECK_NAMESPACE", default_value = "deck")]
    pub namespace: String,
    /// Replication factor of Kafka topics and the Cassandra keyspace. Default:
    /// 1 when one address is given (a local cluster), 3 otherwise.
    #[arg(long, env = "DECK_REPLICATION_FACTOR")]
    pub replication_factor: Option<u16>,
    /// Postings and posts one history read may examine before it answers
    /// with what it found and a `next` cursor (default 20000).
    #[arg(long, env = "DECK_READ_BUDGET")]
    pub read_budget: Option<usize>,
    /// Milliseconds one history read may take, waiting for a slot included
    /// (default 1000).
    #[arg(long, env = "DECK_READ_DEADLINE_MS")]
    pub read_deadline_ms: Option<u64>,
    /// History reads running at once in this process (default: one fewer
    /// than the cores, at least one, on the embedded store; 16 on Cassandra).
    #[arg(long, env = "DECK_MAX_CONCURRENT_READS")]
    pub max_concurrent_reads: Option<usize>,
    /// How long posts stay (event time), e.g. `30d`, `12h`, `10m`, `90s`:
    /// older ones leave the store and reads end there.
    #[arg(long, env = "DECK_RETENTION", default_value = "30d", value_parser = parse_retention)]
    pub retention: Option<std::time::Duration>,
}

/// A retention such as `30d`, `12h`, `10m` or `90s` (a number and one unit).
pub fn parse_retention(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let unit_idx = text.find(|character: char| !character.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_idx);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as 30d, 12h or 10m"))?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit is one of s, m, h, d (e.g. 30d)")),
    };
    let seconds = number.checked_mul(seconds_per_unit).filter(|seconds| *seconds > 0);
    seconds.map(std::time::Duration::from_secs).ok_or_else(|| format!("`{text}` is not a positive duration"))
}

impl EngineArgs {
    /// The in-process trends, keeping no more event time than `--retention`
    /// (at most their own 48 h).
    pub fn embedded_trends(&self) -> EmbeddedTrends {
        match self.retention {
            Some(retention) => EmbeddedTrends::new()
                .with_horizon_ms(i64::try_from(retention.as_millis()).unwrap_or(trends::RETENTION_MS)),
            None => EmbeddedTrends::new(),
        }
    }

    /// The store's read limits: the flags, else `defaults` (the embedded
    /// store's or Cassandra's).
    pub fn read_limits(&self, defaults: ReadLimits) -> ReadLimits {
        ReadLimits {
            max_work: self.read_budget.unwrap_or(defaults.max_work).max(1),
            deadline: self.read_deadline_ms.map(std::time::Duration::from_millis).unwrap_or(defaults.deadline),
            max_concurrent: self.max_concurrent_reads.unwrap_or(defaults.max_concurrent).max(1),
        }
    }

    #[cfg(any(feature = "kafka", feature = "cassandra"))]
    fn replication(&self, addresses: &str) -> u16 {
        self.replication_factor.unwrap_or(if addresses.split(',').count() > 1 { 3 } else { 1 })
    }

    /// Refuses an engine this deck was built without (rather than silently
    /// running that role embedded).
    pub fn refuse_missing_engines(&self) -> anyhow::Result<()> {
        let set = |value: &Option<String>| value.as_deref().is_some_and(|value| !value.is_empty());
        if !cfg!(feature = "kafka") && set(&self.kafka) {
            anyhow::bail!(
                "DECK_KAFKA is set, but this deck was built without the `kafka` feature (build it with `--features kafka`)"
            );
        }
        if !cfg!(feature = "cassandra") && set(&self.cassandra) {
            anyhow::bail!(
                "DECK_CASSANDRA is set, but this deck was built without the `cassandra` feature (build it with `--features cassandra`)"
            );
        }
        Ok(())
    }

    /// The Kafka configuration, if `--kafka` is set.
    #[cfg(not(feature = "kafka"))]
    pub fn kafka_config(&self) -> Option<KafkaConfig> {
        None
    }

    /// The Kafka configuration, if `--kafka` is set.
    #[cfg(feature = "kafka")]
    pub fn kafka_config(&self) -> Option<KafkaConfig> {
        let brokers = self.kafka.as_deref().filter(|brokers| !brokers.is_empty())?;
        let replication = self.replication(brokers);
        let mut config = if replication == 1 { KafkaConfig::single_node(brokers) } else { KafkaConfig::new(brokers) };
        config.replication_factor = i32::from(replication);
        config.min_insync_replicas = config.min_insync_replicas.min(i32::from(replication));
        config.raw_topic = format!("{}.raw", self.namespace);
        config.processed_topic = format!("{}.processed", self.namespace);
        Some(config)
    }

    /// The Cassandra configuration, if `--cassandra` is set.
    #[cfg(feature = "cassandra")]
    pub fn cassandra_config(&self) -> Option<CassandraConfig> {
        let contact_points = self.cassandra.as_deref().filter(|points| !points.is_empty())?;
        let replication = self.replication(contact_points);
        let mut config = if replication == 1 {
            CassandraConfig::single_node(contact_points)
        } else {
            CassandraConfig::new(contact_points)
        };
        config.replication_factor = u32::from(replication);
        config.keyspace = self.namespace.replace(['-', '.'], "_");
        config.retention_secs = self.retention.map(|retention| retention.as_secs().max(1));
        Some(config)
    }
}

#[cfg(not(feature = "kafka"))]
pub use crate::without_engines::{KafkaConfig, KafkaPublisher, ProcessedConsumer};

/// The engines of one process's roles.
pub struct Backends {
    pub log: Arc<dyn Log>,
    pub store: Arc<dyn PostStore>,
    pub trends: Arc<dyn TrendStore>,
    /// Set when the log is Kafka: processed posts then travel through its topic.
    pub kafka: Option<KafkaConfig>,
    /// Whether trends live in this process (and must be restored at start).
    pub trends_embedded: bool,
    /// The processors' consumer group.
    pub group: String,
}

impl Backends {
    pub async fn open(engines: &EngineArgs, data_dir: &Path) -> anyhow::Result<Backends> {
        engines.refuse_missing_engines()?;
        let kafka = engines.kafka_config();
        let log: Arc<dyn Log> = match &kafka {
            #[cfg(feature = "kafka")]
            Some(config) => {
                tracing::info!(brokers = %config.brokers, "log: Apache Kafka");
                Arc::new(pipeline::KafkaLog::connect(config.clone()).await.context("connect to Kafka")?)
            }
            #[cfg(not(feature = "kafka"))]
            Some(config) => match *config {},
            None => Arc::new(EmbeddedLog::new(1, 65_536)),
        };
        #[cfg(feature = "cassandra")]
        let cassandra = engines.cassandra_config();
        #[cfg(not(feature = "cassandra"))]
        let cassandra: Option<std::convert::Infallible> = None;
        let store: Arc<dyn PostStore> = match cassandra {
            #[cfg(feature = "cassandra")]
            Some(config) => {
                tracing::info!(contact_points = ?config.contact_points, "post store: Apache Cassandra");
                Arc::new(
                    CassandraStore::connect_migrated(&config)
                        .await
                        .context("connect to Cassandra")?
                        .with_read_limits(engines.read_limits(ReadLimits::default())),
                )
            }
            #[cfg(not(feature = "cassandra"))]
            Some(never) => match never {},
            None => {
                // Owner-only: the data dir holds the auth database, the JWT secret and the
                // outbox with its verification links.
                auth::create_private_dir(data_dir)
                    .with_context(|| format!("create the data dir {}", data_dir.display()))?;
                Arc::new(
                    EmbeddedStore::open_with_retention(&data_dir.join("posts"), engines.retention)
                        .context("open the post store")?
                        .with_read_limits(engines.read_limits(ReadLimits::embedded())),
                )
            }
        };
        let (trends, trends_embedded): (Arc<dyn TrendStore>, bool) = match &engines.redis {
            Some(url) if !url.is_empty() => {
                tracing::info!("trends: Redis");
                (Arc::new(RedisTrends::connect(url, &engines.namespace).await.context("connect to Redis")?), false)
            }
            _ => (Arc::new(engines.embedded_trends()), true),
        };
        Ok(Backends { log, store, trends, kafka, trends_embedded, group: format!("{}-processors", engines.namespace) })
    }
}

impl Backends {
    /// Registers a `/readyz` probe for each engine this process uses: Kafka
    /// (a metadata request), Cassandra (`SELECT now() FROM system.local`),
    /// Redis (`PING`) and, with `members`, MariaDB (`SELECT 1`).
    pub fn add_probes(&self, health: &Health, engines: &EngineArgs, members: bool) {
        if self.kafka.is_some() {
            health.add_probe("kafka", Arc::new(LogProbe(self.log.clone())));
        }
        if engines.cassandra.as_deref().is_some_and(|points| !points.is_empty()) {
            health.add_probe("cassandra", Arc::new(StoreProbe(self.store.clone())));
        }
        if !self.trends_embedded {
            health.add_probe("redis", Arc::new(TrendsProbe(self.trends.clone())));
        }
        if members
            && let Some(url) = engines.mysql.as_deref().filter(|url| !url.is_empty())
            && let Some(probe) = MysqlProbe::new(url)
        {
            health.add_probe("mariadb", Arc::new(probe));
        }
    }
}

struct LogProbe(Arc<dyn Log>);

#[async_trait::async_trait]
impl Probe for LogProbe {
    async fn probe(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| error.to_string())
    }
}

struct StoreProbe(Arc<dyn PostStore>);

#[async_trait::async_trait]
impl Probe for StoreProbe {
    async fn probe(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| error.to_string())
    }
}

struct TrendsProbe(Arc<dyn TrendStore>);

#[async_trait::async_trait]
impl Probe for TrendsProbe {
    async fn probe(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|error| error.to_string())
    }
}

/// `SELECT 1` on a one-connection pool of its own, so the probe neither
/// waits behind nor takes a connection from the accounts role.
struct MysqlProbe(sqlx::MySqlPool);

impl MysqlProbe {
    fn new(url: &str) -> Option<MysqlProbe> {
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(pipeline::health::PROBE_TIMEOUT)
            .connect_lazy(url)
            .inspect_err(|error| tracing::warn!(%error, "no MariaDB probe: bad DECK_MYSQL"))
            .ok()?;
        Some(MysqlProbe(pool))
    }
}

#[async_trait::async_trait]
impl Probe for MysqlProbe {
    async fn probe(&self) -> Result<(), String> {
        sqlx::query("SELECT 1").execute(&self.0).await.map(|_| ()).map_err(|error| error.to_string())
    }
}

/// Feeds the trend store with the stored posts of the last `span_ms` before
/// the newest post (the batch job's role; also how embedded trends survive a
/// restart), [`RESTORE_CHUNK`] posts at a time, so that memory holds one chunk
/// and never the whole horizon. Returns the number of posts recorded.
pub async fn restore_trends(store: &dyn PostStore, trends: &dyn TrendStore, span_ms: i64) -> anyhow::Result<usize> {
    let Some(newest) = store.newest().await? else {
        return Ok(0);
    };
    // Never past the wall clock: a store written before the normalization
    // boundary may hold a post dated in the future (2099), which must not
    // move every window's end (issue 12).
    let now_ms = chrono::Utc::now().timestamp_millis();
    let since_ms = newest.created_ms().min(now_ms) - span_ms;
    let mut after: Option<model::Cursor> = None;
    let mut recorded = 0;
    loop {
        let page = store.scan_since(since_ms, after.as_ref(), RESTORE_CHUNK).await?;
        let Some(last) = page.last() else {
            return Ok(recorded);
        };
        after = Some(last.post.cursor());
        let events: Vec<TrendEvent> = page
            .iter()
            .filter(|stored| stored.post.created_at.timestamp_millis() <= now_ms)
            .map(|stored| TrendEvent::from_post(&stored.post, stored.retweeted.as_deref()))
            .collect();
        trends.record(&events).await?;
        recorded += events.len();
    }
}

/// Posts read and recorded at a time by [`restore_trends`].
pub const RESTORE_CHUNK: usize = 10_000;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use model::{Author, Post, PostBundle, PostEvent, Source};
    use store::WriteBatch;
    use trends::Window;

    fn post(index: usize, created_at: chrono::DateTime<chrono::Utc>) -> Post {
        let author = Author {
            id: format!("{}", index % 700),
            handle: format!("user{}", index % 700),
            name: "U".into(),
            avatar_url: None,
        };
        Post {
            hashtags: vec![format!("tag{}", index % 37), "all".into()],
            ..Post::new(format!("{}", 1_000_000 + index), Source::Demo, author, "", created_at)
        }
    }

    /// The restore reads the store in chunks, and the chunks together give
    /// exactly what recording every post live gives.
    #[tokio::test]
    async fn the_trends_restore_reads_in_chunks_and_gives_the_live_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let n_posts = 2 * RESTORE_CHUNK + 1;
        let now = chrono::Utc::now();
        let posts: Vec<Post> =
            (0..n_posts).map(|index| post(index, now - chrono::Duration::milliseconds(index as i64 * 100))).collect();
        let events = posts.iter().cloned().map(|post| PostEvent::Upsert(PostBundle::single(post))).collect();
        store.apply(WriteBatch { events, checkpoints: Vec::new() }).await.unwrap();

        let live = EmbeddedTrends::new();
        let mut oldest_first: Vec<TrendEvent> = posts.iter().map(|post| TrendEvent::from_post(post, None)).collect();
        oldest_first.reverse();
        live.record_events(&oldest_first);

        let restored = EmbeddedTrends::new();
        assert_eq!(restore_trends(&store, &restored, trends::RETENTION_MS).await.unwrap(), n_posts);
        assert_eq!(restored.stats().tracked_ids, n_posts);
        for window in Window::ALL {
            assert_eq!(restored.current_ranking(window, 50), live.current_ranking(window, 50), "window {window}");
        }
        assert_eq!(restored.current_ranking(Window::OneHour, 1).hashtags[0].count, n_posts as u64);
    }
}
