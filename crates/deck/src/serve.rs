//! `deck serve`: the topology of the one-process deployment, wired in one
//! place. Sources → log → processor → (store, trends, feed) → gateway.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use feed::{Hub, HubConfig};
use pipeline::{EmbeddedLog, Log, Metrics, Processor, ProcessorConfig, Published, Publisher};
use store::{EmbeddedStore, PostStore};
use tokio_util::sync::CancellationToken;
use trends::{EmbeddedTrends, TrendEvent, TrendStore, Window};

use crate::ServeArgs;

/// Hands every processed batch to the live columns of this process.
struct HubPublisher(Arc<Hub>);

#[async_trait::async_trait]
impl Publisher for HubPublisher {
    async fn publish(&self, published: Published) {
        let hub = self.0.clone();
        // Fan-out is CPU work over many connections; keep it off the processor's task.
        let _ = tokio::task::spawn_blocking(move || hub.publish(&published)).await;
    }
}

/// Feeds the trend store with the stored posts of the last `span_ms` before the newest post.
async fn restore_trends(store: &dyn PostStore, trends: &dyn TrendStore, span_ms: i64) -> anyhow::Result<usize> {
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

pub async fn rebuild_trends(data_dir: &Path, span_ms: i64) -> anyhow::Result<()> {
    let store = EmbeddedStore::open(&data_dir.join("posts")).context("open the post store")?;
    let trends = EmbeddedTrends::new();
    // The trending baselines reach back further than the longest window.
    let n_posts = restore_trends(&store, &trends, span_ms.max(trends::RETENTION_MS)).await?;
    tracing::info!(n_posts, "trends rebuilt from stored posts");
    let mut rankings = serde_json::Map::new();
    for window in Window::ALL {
        let ranking = trends.ranking(window, 20).await?;
        rankings.insert(
            window.as_str().to_owned(),
            serde_json::json!({
                "hashtags": ranking.hashtags.iter().map(|row| serde_json::json!({"tag": row.tag, "count": row.count})).collect::<Vec<_>>(),
                "top_retweeted": ranking.top_retweeted.iter().map(|row| serde_json::json!({"post_id": row.post_id, "count": row.count})).collect::<Vec<_>>(),
            }),
        );
    }
    println!("{}", serde_json::Value::Object(rankings));
    Ok(())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("create the data dir {}", args.data_dir.display()))?;
    let metrics = Metrics::new().context("register metrics")?;
    let store = Arc::new(EmbeddedStore::open(&args.data_dir.join("posts")).context("open the post store")?);
    let trends = Arc::new(EmbeddedTrends::new());
    let restored = restore_trends(store.as_ref(), trends.as_ref(), trends::RETENTION_MS).await?;
    tracing::info!(restored, "trends restored from the store");

    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::new(1, 65_536));
    let hub = Arc::new(Hub::new(HubConfig { queue_bytes: args.stream_queue_bytes, ..HubConfig::default() }));
    let shutdown = CancellationToken::new();
    let sources_shutdown = shutdown.child_token();

    let source_options =
        ingest::SourceOptions { replay_rate: args.replay_rate, demo_rate: args.demo_rate, demo_seed: args.demo_seed };
    let mut source_tasks = Vec::new();
    // `--source none` runs without a source (serve what is stored).
    for spec in args.sources.iter().filter(|spec| spec.as_str() != "none") {
        let source = ingest::from_spec(spec, &source_options).with_context(|| format!("source `{spec}`"))?;
        let task = pipeline::run_source(source, log.clone(), store.clone(), metrics.clone(), sources_shutdown.clone());
        source_tasks.push(tokio::spawn(task));
    }

    let processor_shutdown = CancellationToken::new();
    let processor = Processor {
        log: log.clone(),
        store: store.clone(),
        trends: trends.clone(),
        publisher: Arc::new(HubPublisher(hub.clone())),
        metrics: metrics.clone(),
        config: ProcessorConfig::default(),
    };
    let processor_task = tokio::spawn(processor.run(processor_shutdown.clone()));

    let port = args.port;
    let mut allowed_origins = vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")];
    allowed_origins.extend(args.allowed_origins.iter().cloned());
    let static_dir = args.web_dir.join("index.html").exists().then(|| args.web_dir.clone());
    if static_dir.is_none() {
        tracing::warn!(dir = %args.web_dir.display(), "no built web client found; serving the API only");
    }
    let config = gateway::GatewayConfig {
        allowed_origins,
        static_dir,
        max_connections_per_ip: args.max_connections_per_ip,
        ..gateway::GatewayConfig::default()
    };
    let state = gateway::AppState::new(
        store.clone(),
        trends.clone(),
        hub.clone(),
        Arc::new(gateway::MemoryTickets::default()),
        metrics.clone(),
        config,
    );
    gateway::spawn_trends_ticker(state.clone(), shutdown.clone());
    let app = gateway::router(state, axum::Router::new());
    let address = format!("{}:{}", args.host, port);
    let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("bind {address}"))?;
    tracing::info!("Deck serves on http://{address}");
    let server = tokio::spawn(gateway::serve(listener, app, shutdown.clone()));

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
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
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
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
