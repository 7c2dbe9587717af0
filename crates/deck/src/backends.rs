//! Chooses each role's engine from configuration: embedded by default, or
//! Apache Kafka, Apache Cassandra and Redis when their variables are set.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use pipeline::{EmbeddedLog, Health, KafkaConfig, KafkaLog, Log, Probe};
use store::{CassandraConfig, CassandraStore, EmbeddedStore, PostStore};
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
}

impl EngineArgs {
    fn replication(&self, addresses: &str) -> u16 {
        self.replication_factor.unwrap_or(if addresses.split(',').count() > 1 { 3 } else { 1 })
    }

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
        Some(config)
    }
}

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
        let kafka = engines.kafka_config();
        let log: Arc<dyn Log> = match &kafka {
            Some(config) => {
                tracing::info!(brokers = %config.brokers, "log: Apache Kafka");
                Arc::new(KafkaLog::connect(config.clone()).await.context("connect to Kafka")?)
            }
            None => Arc::new(EmbeddedLog::new(1, 65_536)),
        };
        let store: Arc<dyn PostStore> = match engines.cassandra_config() {
            Some(config) => {
                tracing::info!(contact_points = ?config.contact_points, "post store: Apache Cassandra");
                Arc::new(CassandraStore::connect_migrated(&config).await.context("connect to Cassandra")?)
            }
            None => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("create the data dir {}", data_dir.display()))?;
                Arc::new(EmbeddedStore::open(&data_dir.join("posts")).context("open the post store")?)
            }
        };
        let (trends, trends_embedded): (Arc<dyn TrendStore>, bool) = match &engines.redis {
            Some(url) if !url.is_empty() => {
                tracing::info!("trends: Redis");
                (Arc::new(RedisTrends::connect(url, &engines.namespace).await.context("connect to Redis")?), false)
            }
            _ => (Arc::new(EmbeddedTrends::new()), true),
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
        if engines.cassandra_config().is_some() {
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
/// restart). Returns the number of posts read.
pub async fn restore_trends(store: &dyn PostStore, trends: &dyn TrendStore, span_ms: i64) -> anyhow::Result<usize> {
    let Some(newest) = store.newest().await? else {
        return Ok(0);
    };
    let since_ms = newest.created_ms() - span_ms;
    let posts = store.scan_since(since_ms).await?;
    let events: Vec<TrendEvent> =
        posts.iter().map(|stored| TrendEvent::from_post(&stored.post, stored.retweeted.as_deref())).collect();
    for chunk in events.chunks(10_000) {
        trends.record(chunk).await?;
    }
    Ok(events.len())
}
