//! Readiness: the state of every long-running stage of a process and a
//! cheap, time-bounded probe of every engine it needs. `GET /readyz` answers
//! from [`Health::readiness`]; `/metrics` adds [`Health::prometheus_text`].
//!
//! A stage reports through its [`Stage`] handle: running, retrying a
//! transient failure (with the reason), finished (a finite source) or failed.
//! It also says when the work it holds began ([`Stage::work_started`]), so a
//! batch stuck behind an outage shows as lag even between retries.
//!
//! It lives here, with no engine behind it, so the edge (`gateway`) answers
//! `/readyz` for stages that other crates run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;

/// A stage metric: name, type, help, and its value for one stage.
type StageFamily = (&'static str, &'static str, &'static str, fn(&StageReport) -> f64);

/// How long one engine probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where a stage is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Registered, not yet running (connecting, restoring).
    Starting,
    /// Doing its work.
    Running,
    /// A transient failure: waiting to try the same work again.
    Retrying,
    /// Ended by itself without error (a finite replay).
    Finished,
    /// Ended by a permanent failure; the process is stopping.
    Failed,
}

impl StageState {
    fn as_str(self) -> &'static str {
        match self {
            StageState::Starting => "starting",
            StageState::Running => "running",
            StageState::Retrying => "retrying",
            StageState::Finished => "finished",
            StageState::Failed => "failed",
        }
    }

    /// Whether a process with a stage in this state is ready.
    fn is_ready(self) -> bool {
        matches!(self, StageState::Running | StageState::Finished)
    }
}

#[derive(Debug)]
struct StageEntry {
    state: StageState,
    reason: Option<String>,
    /// When the oldest work the stage holds (a polled batch) began.
    pending_since: Option<Instant>,
    restarts: u64,
    retries: u64,
}

/// An engine check: cheap (a ping), and bounded by [`PROBE_TIMEOUT`] by the caller.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    async fn probe(&self) -> Result<(), String>;
}

/// The registry of one process's stages and engine probes. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    stages: Mutex<BTreeMap<String, StageEntry>>,
    probes: Mutex<Vec<(String, Arc<dyn Probe>)>>,
    max_lag: Duration,
}

/// One stage's report in `/readyz`.
#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    pub name: String,
    pub state: StageState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the oldest work the stage holds has waited.
    pub lag_seconds: f64,
    pub restarts: u64,
    pub retries: u64,
}

/// One engine's report in `/readyz`.
#[derive(Clone, Debug, Serialize)]
pub struct EngineReport {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
}

/// The body of `/readyz`.
#[derive(Clone, Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// One line per failing stage or engine, saying why.
    pub failing: Vec<String>,
    pub stages: Vec<StageReport>,
    pub engines: Vec<EngineReport>,
    pub max_lag_seconds: f64,
}

impl Health {
    /// A registry whose readiness fails when a stage's work waits longer than `max_lag`.
    pub fn new(max_lag: Duration) -> Health {
        Health { inner: Arc::new(Inner { stages: Mutex::default(), probes: Mutex::default(), max_lag }) }
    }

    fn stages(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StageEntry>> {
        self.inner.stages.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers stage `name` (state `starting`) and returns its handle.
    /// Registering a name again returns a handle to the same entry.
    pub fn stage(&self, name: &str) -> Stage {
        self.stages().entry(name.to_owned()).or_insert(StageEntry {
            state: StageState::Starting,
            reason: None,
            pending_since: None,
            restarts: 0,
            retries: 0,
        });
        Stage { health: self.clone(), name: Arc::from(name) }
    }

    /// Adds an engine probe, run on every readiness check.
    pub fn add_probe(&self, name: &str, probe: Arc<dyn Probe>) {
        self.inner.probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((name.to_owned(), probe));
    }

    /// The stages as they are now (no probes run).
    pub fn stage_reports(&self) -> Vec<StageReport> {
        let now = Instant::now();
        self.stages()
            .iter()
            .map(|(name, entry)| StageReport {
                name: name.clone(),
                state: entry.state,
                reason: entry.reason.clone(),
                lag_seconds: entry.pending_since.map_or(0.0, |since| now.duration_since(since).as_secs_f64()),
                restarts: entry.restarts,
                retries: entry.retries,
            })
            .collect()
    }

    /// Runs every probe (concurrently, each bounded by [`PROBE_TIMEOUT`])
    /// and reports stages and engines.
    pub async fn readiness(&self) -> Readiness {
        let probes: Vec<(String, Arc<dyn Probe>)> =
            self.inner.probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let checks = probes.into_iter().map(|(name, probe)| async move {
            let started = Instant::now();
            let result = match tokio::time::timeout(PROBE_TIMEOUT, probe.probe()).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
            };
            EngineReport { name, ok: result.is_ok(), error: result.err(), seconds: started.elapsed().as_secs_f64() }
        });
        let engines = futures::future::join_all(checks).await;
        let stages = self.stage_reports();
        let max_lag = self.inner.max_lag.as_secs_f64();
        let mut failing = Vec::new();
        for stage in &stages {
            if !stage.state.is_ready() {
                let reason = stage.reason.as_deref().map(|reason| format!(": {reason}")).unwrap_or_default();
                failing.push(format!("stage {} is {}{reason}", stage.name, stage.state.as_str()));
            } else if stage.lag_seconds > max_lag {
                failing.push(format!("stage {} lags {:.1} s (bound {max_lag} s)", stage.name, stage.lag_seconds));
            }
        }
        for engine in &engines {
            if let Some(error) = &engine.error {
                failing.push(format!("engine {} does not answer: {error}", engine.name));
            }
        }
        Readiness { ready: failing.is_empty(), failing, stages, engines, max_lag_seconds: max_lag }
    }

    /// Stage gauges and counters in the Prometheus text format.
    pub fn prometheus_text(&self) -> String {
        let stages = self.stage_reports();
        let mut text = String::new();
        let families: [StageFamily; 4] = [
            ("deck_stage_up", "gauge", "Whether the stage is running (or finished without error)", |stage| {
                f64::from(u8::from(stage.state.is_ready()))
            }),
            ("deck_stage_lag_seconds", "gauge", "How long the oldest work the stage holds has waited", |stage| {
                stage.lag_seconds
            }),
            (
                "deck_stage_restarts_total",
                "counter",
                "Times the supervisor restarted the stage after a transient failure",
                |stage| stage.restarts as f64,
            ),
            (
                "deck_stage_retries_total",
                "counter",
                "Transient failures the stage retried in place (the same batch again)",
                |stage| stage.retries as f64,
            ),
        ];
        for (name, kind, help, value) in families {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for stage in &stages {
                let _ = writeln!(text, "{name}{{stage=\"{}\"}} {}", stage.name, value(stage));
            }
        }
        text
    }
}

/// One stage's handle on the registry. Cheap to clone.
#[derive(Clone)]
pub struct Stage {
    health: Health,
    name: Arc<str>,
}

impl Stage {
    /// The stage's name, as in `/readyz` and the logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn update(&self, change: impl FnOnce(&mut StageEntry)) {
        if let Some(entry) = self.health.stages().get_mut(&*self.name) {
            change(entry);
        }
    }

    pub fn running(&self) {
        self.update(|entry| {
            entry.state = StageState::Running;
            entry.reason = None;
        });
    }

    /// A transient failure that will be retried.
    pub fn retrying(&self, reason: &str) {
        self.update(|entry| {
            entry.state = StageState::Retrying;
            entry.reason = Some(reason.to_owned());
            entry.retries += 1;
        });
    }

    /// The supervisor started the stage again.
    pub fn restarted(&self, reason: &str) {
        self.update(|entry| {
            entry.state = StageState::Retrying;
            entry.reason = Some(reason.to_owned());
            entry.restarts += 1;
        });
    }

    pub fn finished(&self) {
        self.update(|entry| {
            entry.state = StageState::Finished;
            entry.reason = None;
            entry.pending_since = None;
        });
    }

    pub fn failed(&self, reason: &str) {
        self.update(|entry| {
            entry.state = StageState::Failed;
            entry.reason = Some(reason.to_owned());
        });
    }

    /// The stage took work (a batch) it has not finished yet.
    pub fn work_started(&self) {
        self.update(|entry| {
            entry.pending_since.get_or_insert_with(Instant::now);
        });
    }

    /// The work taken is done (committed).
    pub fn work_done(&self) {
        self.update(|entry| entry.pending_since = None);
    }
}
