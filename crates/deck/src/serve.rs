//! The topology, wired in one place. `deck serve` runs every role in one
//! process; `deck ingest`, `deck process` and `deck feed` run one role each
//! on the shared engines. Sources → log → processor → (store, trends,
//! publisher) → feed hub → gateway.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use feed::{FanOut, Hub, HubConfig};
use pipeline::{Health, LogError, Metrics, Processor, ProcessorConfig, Published, Publisher};
use tokio_util::sync::CancellationToken;
use trends::{TrendStore, Window};

use crate::accounts::{self, AccountArgs, AuthTickets, AuthTokens};
use crate::backends::{Backends, EngineArgs, KafkaConfig, KafkaPublisher, ProcessedConsumer, restore_trends};
use crate::supervisor::{StageError, Supervisor};
use crate::{AdminArgs, FeedArgs, IngestArgs, ServeArgs, SourceArgs};

/// How long stages get to end after shutdown before the process exits anyway.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Hands every processed batch to the live columns of this process.
/// The fan-out runs on the hub's own thread, never on the runtime's.
struct HubPublisher(FanOut);

#[async_trait::async_trait]
impl Publisher for HubPublisher {
    async fn publish(&self, published: &Published) -> Result<(), LogError> {
        // Fan-out runs on the hub's own thread; this returns once the
        // batch's frames are queued (never waiting on a reader).
        self.0.publish(published.clone()).await.map_err(|error| LogError::Stopped(error.to_string()))
    }
}

pub async fn rebuild_trends(engines: &EngineArgs, data_dir: &Path, span_ms: i64) -> anyhow::Result<()> {
    let backends = Backends::open(engines, data_dir).await?;
    let trends: Arc<dyn TrendStore> =
        if backends.trends_embedded { Arc::new(engines.embedded_trends()) } else { backends.trends.clone() };
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

/// Supervises one stage per source of `args`, reading into the log;
/// returns the tokens that say each has ended.
fn start_sources(
    supervisor: &mut Supervisor,
    args: &SourceArgs,
    backends: &Backends,
    metrics: &Metrics,
    health: &ingest::SourceHealth,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<CancellationToken>> {
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
    let mut ended = Vec::new();
    // `--source none` runs without a source (serve what is stored).
    for spec in args.sources.iter().filter(|spec| spec.as_str() != "none") {
        // Checked once here, so a bad spec stops the start, not a stage.
        ingest::from_spec(spec, &source_options).with_context(|| format!("source `{spec}`"))?;
        let (spec, options) = (spec.clone(), source_options.clone());
        let (log, store, metrics) = (backends.log.clone(), backends.store.clone(), metrics.clone());
        // A restarted source resumes from the checkpoint stored with its posts.
        ended.push(supervisor.spawn(&format!("source {spec}"), shutdown, move |stage, shutdown| {
            let source = ingest::from_spec(&spec, &options);
            let (log, store, metrics) = (log.clone(), store.clone(), metrics.clone());
            Box::pin(async move {
                let source = source.map_err(StageError::of_source)?;
                pipeline::run_source(source, log, store, metrics, stage, shutdown).await.map_err(StageError::of)
            })
        }));
    }
    Ok(ended)
}

/// Supervises the processor stage.
fn start_processor(
    supervisor: &mut Supervisor,
    backends: &Backends,
    publisher: Arc<dyn Publisher>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> CancellationToken {
    let (log, store, trends, group, metrics) = (
        backends.log.clone(),
        backends.store.clone(),
        backends.trends.clone(),
        backends.group.clone(),
        metrics.clone(),
    );
    supervisor.spawn("processor", shutdown, move |stage, shutdown| {
        let processor = Processor {
            log: log.clone(),
            store: store.clone(),
            trends: trends.clone(),
            publisher: publisher.clone(),
            metrics: metrics.clone(),
            config: ProcessorConfig { group: group.clone(), ..ProcessorConfig::default() },
        };
        Box::pin(async move { processor.run(stage, shutdown).await.map_err(StageError::of) })
    })
}

/// Supervises the stage that feeds a hub from the processed-posts topic (a
/// feed node's input), through the hub's fan-out thread. (Unreachable in a
/// build without Kafka, where no `KafkaConfig` can exist.)
#[cfg_attr(not(feature = "kafka"), allow(unreachable_code, unused_variables, unused_assignments))]
fn follow_processed(supervisor: &mut Supervisor, config: &KafkaConfig, hub: Arc<Hub>, shutdown: &CancellationToken) {
    let config = config.clone();
    supervisor.spawn("processed-topic follower", shutdown, move |stage, shutdown| {
        let (config, hub) = (config.clone(), hub.clone());
        Box::pin(async move {
            let mut consumer = ProcessedConsumer::start(&config).await.map_err(StageError::of)?;
            let fan_out = hub
                .start_fan_out()
                .map_err(|error| StageError::Permanent(format!("start the fan-out thread: {error}")))?;
            stage.running();
            while let Some(applied) = consumer.next(&shutdown).await.map_err(StageError::of)? {
                fan_out.publish(Arc::new(applied)).await.map_err(|error| StageError::Permanent(error.to_string()))?;
            }
            Ok(())
        })
    });
}

/// Binds the admin listener (`/metrics`, `/api/sources`, `/healthz`,
/// `/readyz`) and supervises it.
async fn start_admin(
    supervisor: &mut Supervisor,
    args: &AdminArgs,
    admin: gateway::AdminState,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let address = format!("{}:{}", args.admin_host, args.admin_port.unwrap_or(0));
    let listener =
        tokio::net::TcpListener::bind(&address).await.with_context(|| format!("bind the admin listener {address}"))?;
    let bound = listener.local_addr().context("admin listener address")?;
    tracing::info!("admin listener (metrics, health) on http://{bound}");
    serve_http(supervisor, "admin listener", listener, gateway::admin_router(admin), shutdown);
    Ok(())
}

/// Supervises an HTTP server on `listener`: its end before shutdown is a
/// permanent failure (the listener cannot be had again).
fn serve_http(
    supervisor: &mut Supervisor,
    name: &str,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: &CancellationToken,
) -> CancellationToken {
    let mut listener = Some((listener, app));
    supervisor.spawn(name, shutdown, move |stage, shutdown| {
        let taken = listener.take();
        Box::pin(async move {
            let Some((listener, app)) = taken else {
                return Err(StageError::Permanent("the listener is gone".into()));
            };
            stage.running();
            gateway::serve(listener, app, shutdown.clone())
                .await
                .map_err(|error| StageError::Permanent(error.to_string()))?;
            if shutdown.is_cancelled() { Ok(()) } else { Err(StageError::Permanent("stopped serving".into())) }
        })
    })
}

/// The gateway of one process: every HTTP and WebSocket route, the
/// accounts role's included; the trends ticker; the admin listener.
#[allow(clippy::too_many_arguments)]
async fn start_gateway(
    supervisor: &mut Supervisor,
    backends: &Backends,
    hub: Arc<Hub>,
    accounts_role: accounts::AccountsRole<'_>,
    metrics: &Metrics,
    health: &Health,
    args: &FeedArgs,
    admin_args: &AdminArgs,
    source_health: ingest::SourceHealth,
    data_dir: &Path,
    shutdown: &CancellationToken,
) -> anyhow::Result<CancellationToken> {
    let mut origins = vec![format!("http://127.0.0.1:{}", args.port), format!("http://localhost:{}", args.port)];
    origins.extend(args.allowed_origins.iter().cloned());
    // `--web-dir` (development) wins when it holds a built client; otherwise
    // the client compiled into this binary is served.
    let static_dir = args.web_dir.join("index.html").exists().then(|| args.web_dir.clone());
    let web_assets = crate::web::assets();
    if static_dir.is_none() && web_assets.is_none() {
        tracing::warn!(dir = %args.web_dir.display(), "no built web client found; serving the API only");
    }
    let mut config = gateway::GatewayConfig {
        allowed_origins: origins,
        static_dir,
        web_assets,
        max_connections_per_ip: args.max_connections_per_ip,
        live_needs_positive_term: !args.live_any_query,
        max_catch_up_reads: args.catch_up_reads.max(1),
        ..gateway::GatewayConfig::default()
    };
    let accounts = accounts_role.service;
    accounts::apply_edge_limits(accounts_role.args, &mut config);
    let mut state = gateway::AppState::new(
        backends.store.clone(),
        backends.trends.clone(),
        hub,
        Arc::new(AuthTickets(accounts.clone())),
        metrics.clone(),
        config,
    );
    state.source_health = source_health;
    state.health = health.clone();
    state.authenticator = Some(Arc::new(AuthTokens(accounts.clone())));
    let mut media = gateway::media::MediaConfig::new(data_dir.join("media-cache"));
    media.cache_max_bytes = args.media_cache_bytes;
    media.allowed_hosts.extend(args.media_hosts.iter().cloned());
    media.allow_private_addresses = args.media_allow_private;
    let proxy = gateway::media::MediaProxy::new(media, backends.store.clone(), &metrics.registry)
        .context("open the media cache")?;
    state.media = Some(Arc::new(proxy));
    let ticker_state = state.clone();
    supervisor.spawn("trends ticker", shutdown, move |stage, shutdown| {
        let state = ticker_state.clone();
        Box::pin(async move {
            stage.running();
            gateway::run_trends_ticker(state, shutdown).await;
            Ok(())
        })
    });
    start_admin(supervisor, admin_args, gateway::AdminState::of(&state), shutdown).await?;
    let app = gateway::router(state, auth::router(accounts));
    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("bind {address}"))?;
    tracing::info!("Deck serves on http://{address}");
    Ok(serve_http(supervisor, "http", listener, app, shutdown))
}

/// Waits for SIGINT/SIGTERM or a stage's permanent failure; says which.
async fn wait_for_stop(supervisor: &Supervisor) {
    let failed = supervisor.failed();
    tokio::select! {
        () = wait_for_signal() => tracing::info!("signal received"),
        () = failed.cancelled() => tracing::error!("a stage failed permanently"),
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("register metrics")?;
    let health = args.admin.health();
    let backends = Backends::open(&args.engines, &args.data_dir).await?;
    backends.add_probes(&health, &args.engines, true);
    if backends.trends_embedded {
        let restored = restore_trends(backends.store.as_ref(), backends.trends.as_ref(), trends::RETENTION_MS).await?;
        tracing::info!(restored, "trends restored from the store");
    }
    let hub = Arc::new(Hub::new(HubConfig {
        queue_bytes: args.feed.stream_queue_bytes,
        total_queue_bytes: args.feed.stream_total_queue_bytes,
        ..HubConfig::default()
    }));
    let mut supervisor = Supervisor::new(health.clone());
    let shutdown = CancellationToken::new();
    let sources_shutdown = CancellationToken::new();
    let source_health = ingest::SourceHealth::new();
    let sources_ended =
        start_sources(&mut supervisor, &args.sources, &backends, &metrics, &source_health, &sources_shutdown)?;

    // With Kafka, processed posts reach the live columns through their topic,
    // exactly as they reach separate feed nodes.
    let publisher: Arc<dyn Publisher> = match &backends.kafka {
        Some(config) => {
            follow_processed(&mut supervisor, config, hub.clone(), &shutdown);
            Arc::new(KafkaPublisher::connect(config).await.context("connect the processed-posts producer")?)
        }
        None => Arc::new(HubPublisher(hub.start_fan_out().context("start the fan-out thread")?)),
    };
    let processor_shutdown = CancellationToken::new();
    let processor_ended = start_processor(&mut supervisor, &backends, publisher, &metrics, &processor_shutdown);
    let accounts = accounts::service(&args.accounts, &args.engines, &args.data_dir, args.feed.port).await?;
    start_gateway(
        &mut supervisor,
        &backends,
        hub,
        accounts::AccountsRole { service: accounts.clone(), args: &args.accounts },
        &metrics,
        &health,
        &args.feed,
        &args.admin,
        source_health,
        &args.data_dir,
        &shutdown,
    )
    .await?;

    wait_for_stop(&supervisor).await;
    tracing::info!("shutting down: sources, then the processor, then HTTP");
    // Order: stop reading sources; let the processor store (or leave
    // unacknowledged) what is in flight; then close the HTTP side.
    sources_shutdown.cancel();
    for ended in sources_ended {
        ended.cancelled().await;
    }
    processor_shutdown.cancel();
    processor_ended.cancelled().await;
    shutdown.cancel();
    let result = supervisor.join(SHUTDOWN_GRACE).await;
    accounts.flush_mail().await;
    result
}

fn require_kafka(backends: &Backends, role: &str) -> anyhow::Result<KafkaConfig> {
    backends.kafka.clone().with_context(|| format!("`deck {role}` runs one role of a distributed deployment: set DECK_KAFKA (and DECK_CASSANDRA, DECK_REDIS); `deck serve` runs every role in one process"))
}

/// `deck ingest`: sources → Kafka.
pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("register metrics")?;
    let health = args.admin.health();
    let backends = Backends::open(&args.engines, &args.data_dir).await?;
    require_kafka(&backends, "ingest")?;
    backends.add_probes(&health, &args.engines, false);
    let mut supervisor = Supervisor::new(health.clone());
    let shutdown = CancellationToken::new();
    let admin_shutdown = CancellationToken::new();
    let source_health = ingest::SourceHealth::new();
    let ended = start_sources(&mut supervisor, &args.sources, &backends, &metrics, &source_health, &shutdown)?;
    let admin = gateway::AdminState { metrics: metrics.clone(), health, source_health, hub: None, trends: None };
    start_admin(&mut supervisor, &args.admin, admin, &admin_shutdown).await?;
    let all_done = async {
        for ended in ended {
            ended.cancelled().await;
        }
    };
    tokio::select! {
        () = all_done => tracing::info!("every source ended"),
        () = wait_for_stop(&supervisor) => shutdown.cancel(),
    }
    admin_shutdown.cancel();
    supervisor.join(SHUTDOWN_GRACE).await
}

/// `deck process`: Kafka → parse → Cassandra + Redis trends → processed topic.
pub async fn process(engines: EngineArgs, data_dir: &Path, admin_args: AdminArgs) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("register metrics")?;
    let health = admin_args.health();
    let backends = Backends::open(&engines, data_dir).await?;
    let config = require_kafka(&backends, "process")?;
    backends.add_probes(&health, &engines, false);
    let publisher = Arc::new(KafkaPublisher::connect(&config).await.context("connect the processed-posts producer")?);
    let mut supervisor = Supervisor::new(health.clone());
    let shutdown = CancellationToken::new();
    let admin_shutdown = CancellationToken::new();
    let processor_ended = start_processor(&mut supervisor, &backends, publisher, &metrics, &shutdown);
    let admin =
        gateway::AdminState { metrics, health, source_health: ingest::SourceHealth::new(), hub: None, trends: None };
    start_admin(&mut supervisor, &admin_args, admin, &admin_shutdown).await?;
    wait_for_stop(&supervisor).await;
    shutdown.cancel();
    processor_ended.cancelled().await;
    admin_shutdown.cancel();
    supervisor.join(SHUTDOWN_GRACE).await
}

/// `deck feed`: the processed topic → live columns, plus the HTTP API over
/// the shared store and trends.
pub async fn feed(
    args: FeedArgs,
    account_args: AccountArgs,
    engines: EngineArgs,
    data_dir: &Path,
    admin_args: AdminArgs,
) -> anyhow::Result<()> {
    let metrics = Metrics::new().context("register metrics")?;
    let health = admin_args.health();
    let backends = Backends::open(&engines, data_dir).await?;
    let config = require_kafka(&backends, "feed")?;
    backends.add_probes(&health, &engines, true);
    let hub = Arc::new(Hub::new(HubConfig {
        queue_bytes: args.stream_queue_bytes,
        total_queue_bytes: args.stream_total_queue_bytes,
        ..HubConfig::default()
    }));
    let mut supervisor = Supervisor::new(health.clone());
    let shutdown = CancellationToken::new();
    follow_processed(&mut supervisor, &config, hub.clone(), &shutdown);
    let accounts = accounts::service(&account_args, &engines, data_dir, args.port).await?;
    start_gateway(
        &mut supervisor,
        &backends,
        hub,
        accounts::AccountsRole { service: accounts.clone(), args: &account_args },
        &metrics,
        &health,
        &args,
        &admin_args,
        ingest::SourceHealth::new(),
        data_dir,
        &shutdown,
    )
    .await?;
    wait_for_stop(&supervisor).await;
    shutdown.cancel();
    let result = supervisor.join(SHUTDOWN_GRACE).await;
    accounts.flush_mail().await;
    result
}

/// Ready while at least one upstream answers (`deck gateway`).
struct UpstreamsProbe(Arc<gateway::proxy::Upstreams>);

#[async_trait::async_trait]
impl pipeline::Probe for UpstreamsProbe {
    async fn probe(&self) -> Result<(), String> {
        self.0.readiness()
    }
}

/// `deck gateway`: one front door over several `deck feed` nodes.
pub async fn gateway(
    host: &str,
    port: u16,
    upstreams: &[String],
    allowed_origins: Vec<String>,
    admin_args: AdminArgs,
) -> anyhow::Result<()> {
    let mut origins = vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")];
    origins.extend(allowed_origins);
    let upstreams = gateway::proxy::Upstreams::new(upstreams, origins);
    let health = admin_args.health();
    health.add_probe("upstreams", Arc::new(UpstreamsProbe(upstreams.clone())));
    let metrics = Metrics::new().context("register metrics")?;
    let mut supervisor = Supervisor::new(health.clone());
    let shutdown = CancellationToken::new();
    upstreams.spawn_health_checks(std::time::Duration::from_secs(2), shutdown.clone());
    let admin = gateway::AdminState {
        metrics,
        health: health.clone(),
        source_health: ingest::SourceHealth::new(),
        hub: None,
        trends: None,
    };
    start_admin(&mut supervisor, &admin_args, admin, &shutdown).await?;
    let address = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("bind {address}"))?;
    tracing::info!("Deck gateway on http://{address}");
    serve_http(&mut supervisor, "http", listener, gateway::proxy::proxy_router(upstreams, health), &shutdown);
    wait_for_stop(&supervisor).await;
    shutdown.cancel();
    supervisor.join(SHUTDOWN_GRACE).await
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
