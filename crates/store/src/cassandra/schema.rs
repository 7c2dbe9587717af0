//! Connecting a driver session and migrating the schema (idempotent).

use super::*;

impl CassandraStore {
    /// Connects a driver session: token-aware routing (the driver's default
    /// policy), the configured datacenter preferred, and the configured
    /// consistency (LOCAL_QUORUM) for every statement.
    pub async fn session(config: &CassandraConfig) -> Result<Session, StoreError> {
        let mut policy = DefaultPolicy::builder().token_aware(true);
        if let Some(datacenter) = &config.datacenter {
            policy = policy.prefer_datacenter(datacenter.clone()).permit_dc_failover(false);
        }
        let profile = ExecutionProfile::builder()
            .consistency(config.consistency.into())
            .request_timeout(Some(Duration::from_millis(config.request_timeout_ms)))
            .load_balancing_policy(policy.build())
            .build();
        SessionBuilder::new()
            .known_nodes(&config.contact_points)
            .default_execution_profile_handle(profile.into_handle())
            .build()
            .await
            .map_err(|error| {
                StoreError::Engine(format!("connect to Cassandra at {:?}: {error}", config.contact_points))
            })
    }

    /// Creates the keyspace and tables if they do not exist (idempotent; run
    /// by `deck cassandra migrate` or at start-up). The bucket width is fixed
    /// by the first migration.
    pub async fn migrate(session: &Session, config: &CassandraConfig) -> Result<(), StoreError> {
        let keyspace = checked_name(&config.keyspace)?;
        let replication = match &config.datacenter {
            Some(datacenter) => format!(
                "{{'class': 'NetworkTopologyStrategy', '{}': {}}}",
                datacenter.replace('\'', "''"),
                config.replication_factor
            ),
            None => format!("{{'class': 'SimpleStrategy', 'replication_factor': {}}}", config.replication_factor),
        };
        let statements = [
            format!("CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}"),
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.posts (id text PRIMARY KEY, body blob, retweets_seen bigint)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.postings (term text, bucket bigint, cursor blob, \
                 PRIMARY KEY ((term, bucket), cursor)) WITH CLUSTERING ORDER BY (cursor DESC)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.term_buckets (term text, bucket bigint, \
                 PRIMARY KEY (term, bucket)) WITH CLUSTERING ORDER BY (bucket DESC)"
            ),
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.tombstones (id text PRIMARY KEY)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {keyspace}.retweets (original_id text, retweet_id text, \
                 PRIMARY KEY (original_id, retweet_id))"
            ),
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.checkpoints (source text PRIMARY KEY, checkpoint text)"),
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.settings (name text PRIMARY KEY, value text)"),
            format!("CREATE TABLE IF NOT EXISTS {keyspace}.stats (name text PRIMARY KEY, value counter)"),
        ];
        let mut statements = Vec::from(statements);
        if let Some(retention_secs) = config.retention_secs {
            // Cassandra's TTL ceiling is 20 years.
            let ttl = retention_secs.clamp(1, 630_720_000);
            // About 24 windows over the retention, as TWCS advises (at least a minute).
            let window_minutes = (ttl / 60 / 24).max(1);
            let twcs = format!(
                "compaction = {{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', \
                 'compaction_window_size': {window_minutes}}}"
            );
            for table in ["postings", "term_buckets"] {
                statements.push(format!("ALTER TABLE {keyspace}.{table} WITH default_time_to_live = {ttl} AND {twcs}"));
            }
            for table in ["posts", "tombstones", "retweets"] {
                statements.push(format!("ALTER TABLE {keyspace}.{table} WITH default_time_to_live = {ttl}"));
            }
        }
        for statement in statements {
            session
                .query_unpaged(statement.as_str(), ())
                .await
                .map_err(|error| StoreError::Engine(format!("migrate `{statement}`: {error}")))?;
        }
        // Lightweight transaction: concurrent first migrations agree on one width.
        session
            .query_unpaged(
                format!("INSERT INTO {keyspace}.settings (name, value) VALUES ('bucket_ms', ?) IF NOT EXISTS"),
                (config.bucket_ms.max(1).to_string(),),
            )
            .await
            .map_err(engine)?;
        session.await_schema_agreement().await.map_err(engine)?;
        Ok(())
    }
}
