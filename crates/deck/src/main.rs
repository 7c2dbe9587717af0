//! The `deck` binary: `deck serve` runs every role in one process on
//! embedded storage; the other subcommands run one role each.

mod accounts;
mod backends;
mod serve;
mod supervisor;
mod web;
mod without_engines;

#[cfg(test)]
mod route_tests;

/// mimalloc instead of the system allocator: ingest allocates per post and
/// per index term (measured in BENCHMARKS.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context as _;
use backends::EngineArgs;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "deck", version, about = "Deck: a real-time multi-column social feed and its pipeline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process (embedded storage unless DECK_KAFKA/DECK_CASSANDRA/DECK_REDIS are set).
    Serve(ServeArgs),
    /// Distributed role: read sources into Kafka.
    Ingest(IngestArgs),
    /// Distributed role: consume Kafka, parse, store in Cassandra, count trends in Redis (any number of them).
    Process {
        #[command(flatten)]
        engines: EngineArgs,
        #[arg(long, env = "DECK_DATA_DIR", default_value = "deck-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Distributed role: live columns (WebSocket) and the HTTP API over the shared engines.
    Feed {
        #[command(flatten)]
        feed: FeedArgs,
        #[command(flatten)]
        accounts: accounts::AccountArgs,
        #[command(flatten)]
        engines: EngineArgs,
        #[arg(long, env = "DECK_DATA_DIR", default_value = "deck-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Distributed role: the front door, forwarding to `deck feed` nodes with health checks.
    Gateway {
        /// Port to serve on.
        #[arg(long, env = "DECK_PORT", default_value_t = 8080)]
        port: u16,
        #[arg(long, env = "DECK_HOST", default_value = "127.0.0.1")]
        host: String,
        /// An upstream node's base URL, e.g. http://127.0.0.1:8081. Repeatable.
        #[arg(long = "upstream", required = true)]
        upstreams: Vec<String>,
        /// Extra origins allowed to open WebSockets (the served origin always is).
        #[arg(long = "allowed-origin", env = "DECK_ALLOWED_ORIGINS", value_delimiter = ',')]
        allowed_origins: Vec<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Trend jobs.
    Trends {
        #[command(subcommand)]
        command: TrendsCommand,
    },
    /// Cassandra schema.
    Cassandra {
        #[command(subcommand)]
        command: CassandraCommand,
    },
}

#[derive(Subcommand)]
enum TrendsCommand {
    /// Recompute the trends from stored posts (the batch job) and print the rankings.
    Rebuild {
        /// How far back from the newest stored post, e.g. `24h`, `90m` (at least the 48 h the baselines need is read).
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(long, env = "DECK_DATA_DIR", default_value = "deck-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        engines: EngineArgs,
    },
}

#[derive(Subcommand)]
enum CassandraCommand {
    /// Create or update the keyspace and tables (safe to run again).
    Migrate {
        #[command(flatten)]
        engines: EngineArgs,
    },
}

/// Where posts come from.
#[derive(Args, Clone, Debug)]
pub struct SourceArgs {
    /// Post sources: `demo`, `replay:PATH`, `jetstream[:URL]`, `x`, `mastodon:URL`, or `none`. Repeatable.
    #[arg(long = "source", default_value = "demo")]
    pub sources: Vec<String>,
    /// Pace replays at N lines per second (default: as fast as possible).
    #[arg(long)]
    pub replay_rate: Option<f64>,
    /// Demo stream posts per second.
    #[arg(long, env = "DECK_DEMO_RATE", default_value_t = 20.0)]
    pub demo_rate: f64,
    /// Demo stream seed (same seed, same stream).
    #[arg(long, default_value_t = 7)]
    pub demo_seed: u64,
    /// Where the X API is (`--source x`); the token comes from X_BEARER_TOKEN.
    #[arg(long, env = "DECK_X_BASE_URL", default_value = "https://api.x.com")]
    pub x_base_url: String,
    /// A filtered-stream rule to keep in place (`--source x`). Repeatable;
    /// without any, the account's existing rules are used as they are.
    #[arg(long = "x-rule")]
    pub x_rules: Vec<String>,
    /// A Mastodon hashtag stream to follow besides the public one. Repeatable.
    #[arg(long = "mastodon-hashtag")]
    pub mastodon_hashtags: Vec<String>,
}

/// The HTTP and WebSocket side.
#[derive(Args, Clone, Debug)]
pub struct FeedArgs {
    /// Port to serve HTTP and WebSocket on.
    #[arg(long, env = "DECK_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, env = "DECK_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// The built web client.
    #[arg(long, env = "DECK_WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,
    /// Extra origins allowed to open WebSockets (the served origin always is).
    #[arg(long = "allowed-origin", env = "DECK_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Bytes of live frames queued per WebSocket before a slow column is dropped (resync).
    #[arg(long, env = "DECK_STREAM_QUEUE_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub stream_queue_bytes: usize,
    /// Bytes of live frames queued over all WebSockets together before slow
    /// columns are dropped (resync): bounds memory however many connect.
    #[arg(long, env = "DECK_STREAM_TOTAL_QUEUE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub stream_total_queue_bytes: usize,
    /// WebSockets one client address may hold open.
    #[arg(long, default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// Let any query go live, also one with no positive search term (`-a
    /// -b`), which runs the matcher on every post. Off by default.
    #[arg(long, env = "DECK_LIVE_ANY_QUERY")]
    pub live_any_query: bool,
    /// Store reads (each within `--read-budget`) a `since` catch-up may make
    /// before the column is told to resync instead.
    #[arg(long, env = "DECK_CATCH_UP_READS", default_value_t = 8)]
    pub catch_up_reads: usize,
    /// A host the media proxy may fetch images from, besides X's and
    /// Bluesky's CDNs (`.example.org` allows its subdomains). Repeatable;
    /// add the media hosts of the Mastodon servers you follow.
    #[arg(long = "media-host", env = "DECK_MEDIA_HOSTS", value_delimiter = ',')]
    pub media_hosts: Vec<String>,
    /// Bytes of images the media cache keeps on disk (`<data-dir>/media-cache`).
    #[arg(long, env = "DECK_MEDIA_CACHE_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub media_cache_bytes: u64,
    /// Let the media proxy fetch from loopback and private addresses. For
    /// tests with a stand-in CDN only: never on a server others can reach.
    #[arg(long, env = "DECK_MEDIA_ALLOW_PRIVATE", hide = true)]
    pub media_allow_private: bool,
}

/// The admin listener and the readiness bound (every role).
#[derive(Args, Clone, Debug)]
pub struct AdminArgs {
    /// Port of the admin listener: `/metrics`, `/api/sources`, `/healthz`
    /// and `/readyz`. Without it, a free port is chosen (and logged).
    #[arg(long, env = "DECK_ADMIN_PORT")]
    pub admin_port: Option<u16>,
    /// Address the admin listener binds.
    #[arg(long, env = "DECK_ADMIN_HOST", default_value = "127.0.0.1")]
    pub admin_host: String,
    /// `/readyz` fails while a stage holds work (a batch) longer than this many seconds.
    #[arg(long, env = "DECK_READY_MAX_LAG", default_value_t = 30)]
    pub ready_max_lag: u64,
}

impl AdminArgs {
    pub fn health(&self) -> pipeline::Health {
        pipeline::Health::new(std::time::Duration::from_secs(self.ready_max_lag))
    }
}

/// Options of `deck serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Where embedded data lives.
    #[arg(long, env = "DECK_DATA_DIR", default_value = "deck-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub feed: FeedArgs,
    #[command(flatten)]
    pub accounts: accounts::AccountArgs,
    #[command(flatten)]
    pub engines: EngineArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Options of `deck ingest`.
#[derive(Args, Clone, Debug)]
pub struct IngestArgs {
    #[arg(long, env = "DECK_DATA_DIR", default_value = "deck-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub engines: EngineArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Parses `24h`, `90m`, `30s`, `2d` into milliseconds.
fn parse_span_ms(text: &str) -> anyhow::Result<i64> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: i64 = number.parse().with_context(|| format!("`{text}` is not a span like 24h"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("`{text}`: the unit must be s, m, h or d"),
    };
    Ok(number * unit_ms)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::serve(args).await,
            Command::Ingest(args) => serve::ingest(args).await,
            Command::Process { engines, data_dir, admin } => serve::process(engines, &data_dir, admin).await,
            Command::Feed { feed, accounts, engines, data_dir, admin } => {
                serve::feed(feed, accounts, engines, &data_dir, admin).await
            }
            Command::Gateway { port, host, upstreams, allowed_origins, admin } => {
                serve::gateway(&host, port, &upstreams, allowed_origins, admin).await
            }
            Command::Trends { command: TrendsCommand::Rebuild { since, data_dir, engines } } => {
                serve::rebuild_trends(&engines, &data_dir, parse_span_ms(&since)?).await
            }
            #[cfg(not(feature = "cassandra"))]
            Command::Cassandra { command: CassandraCommand::Migrate { engines } } => {
                engines.refuse_missing_engines()?;
                anyhow::bail!(
                    "this deck was built without the `cassandra` feature (build it with `--features cassandra`)"
                )
            }
            #[cfg(feature = "cassandra")]
            Command::Cassandra { command: CassandraCommand::Migrate { engines } } => {
                let config = engines.cassandra_config().context("set DECK_CASSANDRA (or --cassandra)")?;
                let session = store::CassandraStore::session(&config).await?;
                store::CassandraStore::migrate(&session, &config).await?;
                println!("keyspace {} is up to date", config.keyspace);
                Ok(())
            }
        }
    })
}
