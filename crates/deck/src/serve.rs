//! The topology, wired in one place. `deck serve` runs every role in one
//! process; `deck ingest`, `deck process` and `deck feed` run one role each
//! on the shared engines. Sources → log → processor → (store, trends,
//! publisher) → feed hub → gateway.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use feed::{FanOut, Hub, HubConfig};
use pipeline::{
    KafkaConfig, KafkaPublisher, Metrics, ProcessedConsumer, Processor, ProcessorConfig, Published, Publisher,
};
use tokio_util::sync::CancellationToken;
use trends::{EmbeddedTrends, TrendStore, Window};

use crate::accounts::{self, AccountArgs, AuthTickets, AuthTokens};
use crate::backends::{Backends, EngineArgs, restore_trends};
use crate::{FeedArgs, IngestArgs, ServeArgs, SourceArgs};

/// Hands every processed batch to the live columns of this process.
/// The fan-out runs on the hub's own thread, never on the runtime's.
struct HubPublisher(FanOut);

#[async_trait::async_trait]
impl Publisher for HubPublisher {
    async fn publish(&self, published: Published) {
        self.0.publish(published).await;
    }
}

pub async fn rebuild_trends(engines: &EngineArgs, data_dir: &Path, span_ms: i64) -> anyhow::Result<()> {
    let backends = Backends::open(engines, data_dir).await?;
    let trends: Arc<dyn TrendStore> =
        if backends.trends_embedded { Arc::new(EmbeddedTrends::new()) } else { backends.trends.clone() };
    // The trending baselines reach back further than the longest window.
    let n_posts = restore_trends(backends.store.as_ref(), trends.as_ref(), span_ms.max(trends::RETENTION_MS)).await?;
    tracing::info!(n_posts, "trends rebuilt from stored posts");
    let mut rankings = serde_json::Map::new();
    // The same rows as `GET /api/trends`, one object per window.
    for window in Window::ALL {
        let ranking = gateway::ranking_of(backends.store.as_ref(), trends.as_ref(), window)
            .await
            .map_err(|error| anyhow::anyhow!("ranking {}: {error:?}", window.as_str()))?;
        rankings.insert(window.as_str().to_owned(), serde_json::to_value(ranking)?);
    }
    println!("{}", serde_json::Value::Object(rankings));
    Ok(())
}

/// Starts the sources of `args` into the log; returns their tasks.
fn start_sources(
    args: &SourceArgs,
    backends: &Backends,
    metrics: &Metrics,
    health: &ingest::SourceHealth,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<Result<(), pipeline::ProcessorError>>>> {
    let source_options = ingest::SourceOptions {
        replay_rate: args.replay_rate,
        demo_rate: args.demo_rate,
        demo_seed: args.demo_seed,
        x_base_url: args.x_base_url.clone(),
        x_rules: (!args.x_rules.is_empty()).then(|| args.x_rules.clone()),
        mastodon_hashtags: args.mastodon_hashtags.clone(),
        health: health.clone(),
        ..ingest::SourceOptions::default()
    };
    let mut tasks = Vec::new();
    // `--source none` runs without a source (serve what is stored).
    for spec in args.sources.iter().filter(|spec| spec.as_str() != "none") {
        let source = ingest::from_spec(spec, &source_options).with_context(|| format!("source `{spec}`"))?;
        let task = pipeline::run_source(
            source,
            backends.log.clone(),
            backends.store.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        tasks.push(tokio::spawn(task));
    }
    Ok(tasks)
}

fn processor(backends: &Backends, publisher: Arc<dyn Publisher>, metrics: &Metrics) -> Processor {
    Processor {
        log: backends.log.clone(),
        store: backends.store.clone(),
        trends: backends.trends.clone(),
        publisher,
        metrics: metrics.clone(),
        config: ProcessorConfig { group: backends.group.clone(), ..ProcessorConfig::default() },
    }
}

/// Feeds a hub from the processed-posts topic (a feed node's input).
async fn follow_processed(config: &KafkaConfig, hub: Arc<Hub>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut consumer = ProcessedConsumer::start(config).await.context("follow the processed-posts topic")?;
    let fan_out = hub.start_fan_out().context("start the fan-out thread")?;
    tokio::spawn(async move {
        loop {
            match consumer.next(&shutdown).await {
                Ok(Some(applied)) => fan_out.publish(Arc::new(applied)).await,
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "processed-posts consumer stopped");
                    break;
                }
            }
        }
    });
    Ok(())
}

/// The gateway of one process: every HTTP and WebSocket route, the
/// accounts role's included.
async fn start_gateway(
    backends: &Backends,
    hub: Arc<Hub>,
    accounts: Arc<auth::AuthService>,
    metrics: &Metrics,
    args: &FeedArgs,
    source_health: ingest::SourceHealth,
    shutdown: &CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let mut origins = vec![format!("http://127.0.0.1:{}", args.port), format!("http://localhost:{}", args.port)];
    origins.extend(args.allowed_origins.iter().cloned());
    let static_dir = args.web_dir.join("index.html").exists().then(|| args.web_dir.clone());
    if static_dir.is_none() {
        tracing::warn!(dir = %args.web_dir.display(), "no built web client found; serving the API only");
    }
    let config = gateway::GatewayConfig {
        allowed_origins: origins,
        static_dir,
        max_connections_per_ip: args.max_connections_per_ip,
        ..gateway::GatewayConfig::default()
    };
    let mut state = gateway::AppState::new(
        backends.store.clone(),
        backends.trends.clone(),
        hub,
        Arc::new(AuthTickets(accounts.clone())),
        metrics.clone(),
        config,
    );
    state.source_health = source_health;
    state.authenticator = Some(Arc::new(AuthTokens(accounts.clone())));
    gateway::spawn_trends_ticker(state.clone(), shutdown.clone());
    let app = gateway::router(state, auth::router(accounts));
    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("bind {address}"))?;
    tracing::info!("Deck serves on http://{address}");
    Ok(tokio::spawn(gateway::serve(listener, app, shutdown.clone())))
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("register metrics")?;
    let backends = Backends::open(&args.engines, &args.data_dir).await?;
    if backends.trends_embedded {
        let restored = restore_trends(backends.store.as_ref(), backends.trends.as_ref(), trends::RETENTION_MS).await?;
        tracing::info!(restored, "trends restored from the store");
    }
    let hub = Arc::new(Hub::new(HubConfig {
        queue_bytes: args.feed.stream_queue_bytes,
        total_queue_bytes: args.feed.stream_total_queue_bytes,
        ..HubConfig::default()
    }));
    let shutdown = CancellationToken::new();
    let sources_shutdown = CancellationToken::new();
    let health = ingest::SourceHealth::new();
    let source_tasks = start_sources(&args.sources, &backends, &metrics, &health, &sources_shutdown)?;

    // With Kafka, processed posts reach the live columns through their topic,
    // exactly as they reach separate feed nodes.
    let publisher: Arc<dyn Publisher> = match &backends.kafka {
        Some(config) => {
            follow_processed(config, hub.clone(), shutdown.clone()).await?;
            Arc::new(KafkaPublisher::connect(config).await.context("connect the processed-posts producer")?)
        }
        None => Arc::new(HubPublisher(hub.start_fan_out().context("start the fan-out thread")?)),
    };
    let processor_shutdown = CancellationToken::new();
    let processor_task = tokio::spawn(processor(&backends, publisher, &metrics).run(processor_shutdown.clone()));
    let accounts = accounts::service(&args.accounts, &args.engines, &args.data_dir, args.feed.port).await?;
    let server = start_gateway(&backends, hub, accounts.clone(), &metrics, &args.feed, health, &shutdown).await?;

    wait_for_signal().await;
    tracing::info!("shutting down: sources, then the processor, then HTTP");
    // Order: stop reading sources; let the processor store (or leave
    // unacknowledged) what is in flight; then close the HTTP side.
    sources_shutdown.cancel();
    for task in source_tasks {
        let _ = task.await;
    }
    processor_shutdown.cancel();
    match processor_task.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "processor stopped with an error"),
        Err(error) => tracing::error!(%error, "processor task failed"),
    }
    shutdown.cancel();
    let _ = server.await;
    accounts.flush_mail().await;
    Ok(())
}

fn require_kafka(backends: &Backends, role: &str) -> anyhow::Result<KafkaConfig> {
    backends.kafka.clone().with_context(|| format!("`deck {role}` runs one role of a distributed deployment: set DECK_KAFKA (and DECK_CASSANDRA, DECK_REDIS); `deck serve` runs every role in one process"))
}

/// `deck ingest`: sources → Kafka.
pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("register metrics")?;
    let backends = Backends::open(&args.engines, &args.data_dir).await?;
    require_kafka(&backends, "ingest")?;
    let shutdown = CancellationToken::new();
    let tasks = start_sources(&args.sources, &backends, &metrics, &ingest::SourceHealth::new(), &shutdown)?;
    let all_done = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    tokio::select! {
        () = all_done => tracing::info!("every source ended"),
        () = wait_for_signal() => shutdown.cancel(),
    }
    Ok(())
}

/// `deck process`: Kafka → parse → Cassandra + Redis trends → processed topic.
pub async fn process(engines: EngineArgs, data_dir: &Path) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("register metrics")?;
    let backends = Backends::open(&engines, data_dir).await?;
    let config = require_kafka(&backends, "process")?;
    let publisher = Arc::new(KafkaPublisher::connect(&config).await.context("connect the processed-posts producer")?);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(processor(&backends, publisher, &metrics).run(shutdown.clone()));
    wait_for_signal().await;
    shutdown.cancel();
    task.await.context("processor task")??;
    Ok(())
}

/// `deck feed`: the processed topic → live columns, plus the HTTP API over
/// the shared store and trends.
pub async fn feed(
    args: FeedArgs,
    account_args: AccountArgs,
    engines: EngineArgs,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("register metrics")?;
    let backends = Backends::open(&engines, data_dir).await?;
    let config = require_kafka(&backends, "feed")?;
    let hub = Arc::new(Hub::new(HubConfig {
        queue_bytes: args.stream_queue_bytes,
        total_queue_bytes: args.stream_total_queue_bytes,
        ..HubConfig::default()
    }));
    let shutdown = CancellationToken::new();
    follow_processed(&config, hub.clone(), shutdown.clone()).await?;
    let accounts = accounts::service(&account_args, &engines, data_dir, args.port).await?;
    let server =
        start_gateway(&backends, hub, accounts.clone(), &metrics, &args, ingest::SourceHealth::new(), &shutdown)
            .await?;
    wait_for_signal().await;
    shutdown.cancel();
    let _ = server.await;
    accounts.flush_mail().await;
    Ok(())
}

/// `deck gateway`: one front door over several `deck feed` nodes.
pub async fn gateway(host: &str, port: u16, upstreams: &[String], allowed_origins: Vec<String>) -> anyhow::Result<()> {
    let mut origins = vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")];
    origins.extend(allowed_origins);
    let upstreams = gateway::proxy::Upstreams::new(upstreams, origins);
    let shutdown = CancellationToken::new();
    upstreams.spawn_health_checks(std::time::Duration::from_secs(2), shutdown.clone());
    let address = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("bind {address}"))?;
    tracing::info!("Deck gateway on http://{address}");
    let server = tokio::spawn(gateway::serve(listener, gateway::proxy::proxy_router(upstreams), shutdown.clone()));
    wait_for_signal().await;
    shutdown.cancel();
    let _ = server.await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
