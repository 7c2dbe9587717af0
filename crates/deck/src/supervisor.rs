//! The one supervisor of a process's long-running stages (each source, the
//! processor, the processed-topic follower, the trends ticker, the admin and
//! public listeners).
//!
//! A stage is a closure that starts one run of it. When a run ends:
//! - without error: the stage is finished (a finite replay);
//! - with a transient error (an engine unreachable, a timeout): the run is
//!   started again after a capped, jittered exponential backoff, and the
//!   restart is counted (`deck_stage_restarts_total{stage}`);
//! - with a permanent error or a panic: the stage is marked failed, a log
//!   line names it, and [`Supervisor::failed`] resolves, so that the process
//!   shuts down and exits non-zero (an orchestrator then restarts it).
//!
//! Stages retry single records and batches in place themselves
//! (`pipeline::retry`); a restart here is the outer line of defence.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipeline::{Health, Stage, Transient};
use tokio_util::sync::CancellationToken;

/// Why a stage's run ended.
#[derive(Debug)]
pub enum StageError {
    /// Worth another run after a pause.
    Transient(String),
    /// A bug or corrupt data: the process stops.
    Permanent(String),
}

impl StageError {
    /// A source that cannot be built (its spec was checked at start, so
    /// this is a file gone missing or the like): permanent.
    pub fn of_source(error: ingest::SourceError) -> StageError {
        StageError::Permanent(error.to_string())
    }

    /// Classifies an error by [`Transient`].
    pub fn of<E: Transient + std::fmt::Display>(error: E) -> StageError {
        if error.is_transient() {
            StageError::Transient(error.to_string())
        } else {
            StageError::Permanent(error.to_string())
        }
    }
}

/// Runs stages and watches them.
pub struct Supervisor {
    health: Health,
    /// Cancelled when a stage fails for good.
    failed: CancellationToken,
    failure: Arc<Mutex<Option<String>>>,
    tasks: tokio::task::JoinSet<()>,
}

/// A stage run's future.
pub type StageRun = std::pin::Pin<Box<dyn Future<Output = Result<(), StageError>> + Send>>;

impl Supervisor {
    /// A supervisor whose stages report to `health`.
    pub fn new(health: Health) -> Supervisor {
        Supervisor {
            health,
            failed: CancellationToken::new(),
            failure: Arc::default(),
            tasks: tokio::task::JoinSet::new(),
        }
    }

    /// Starts stage `name`, which stops at `shutdown`: `start` makes one
    /// run of it (called again for each restart) from the stage's health
    /// handle and the shutdown token. The returned token is cancelled once
    /// the stage has ended for good (finished, failed or shut down).
    pub fn spawn<F>(&mut self, name: &str, shutdown: &CancellationToken, mut start: F) -> CancellationToken
    where
        F: FnMut(Stage, CancellationToken) -> StageRun + Send + 'static,
    {
        let stage = self.health.stage(name);
        let shutdown = shutdown.clone();
        let failed = self.failed.clone();
        let failure = self.failure.clone();
        let ended = CancellationToken::new();
        let ended_guard = ended.clone().drop_guard();
        self.tasks.spawn(async move {
            let _ended = ended_guard;
            let mut backoff = pipeline::health::retry_backoff();
            loop {
                // Each run is a task of its own, so a panic in it is caught here.
                let run = tokio::spawn(start(stage.clone(), shutdown.clone()));
                let outcome = match run.await {
                    Ok(result) => result,
                    Err(error) if error.is_panic() => Err(StageError::Permanent(format!("panicked: {error}"))),
                    Err(error) => Err(StageError::Permanent(format!("task ended: {error}"))),
                };
                match outcome {
                    Ok(()) => {
                        if !shutdown.is_cancelled() {
                            tracing::info!(stage = stage.name(), "stage finished");
                        }
                        stage.finished();
                        return;
                    }
                    Err(StageError::Transient(reason)) if !shutdown.is_cancelled() => {
                        let delay = backoff.next_delay();
                        tracing::warn!(stage = stage.name(), %reason, ?delay, "stage failed; restarting it");
                        stage.restarted(&reason);
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = shutdown.cancelled() => return,
                        }
                    }
                    Err(StageError::Transient(reason)) => {
                        tracing::warn!(stage = stage.name(), %reason, "stage ended with an error while shutting down");
                        return;
                    }
                    Err(StageError::Permanent(reason)) => {
                        tracing::error!(stage = stage.name(), %reason, "stage failed permanently; stopping the process");
                        stage.failed(&reason);
                        let mut first = failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        first.get_or_insert_with(|| format!("stage {} failed: {reason}", stage.name()));
                        failed.cancel();
                        return;
                    }
                }
            }
        });
        ended
    }

    /// Resolves when a stage has failed for good.
    pub fn failed(&self) -> CancellationToken {
        self.failed.clone()
    }

    /// Waits (at most `grace`) for every stage to end after shutdown; then
    /// returns the first permanent failure, if any.
    pub async fn join(mut self, grace: Duration) -> anyhow::Result<()> {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(?grace, "stages still running after shutdown; leaving them");
        }
        match self.failure.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            Some(failure) => Err(anyhow::anyhow!(failure)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_transient_failure_restarts_and_a_panic_stops_the_process() {
        let health = Health::new(Duration::from_secs(30));
        let shutdown = CancellationToken::new();
        let mut supervisor = Supervisor::new(health.clone());
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let flaky_ended = supervisor.spawn("flaky", &shutdown, move |stage, _shutdown| {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                stage.running();
                if run < 2 { Err(StageError::Transient("engine unreachable".into())) } else { Ok(()) }
            })
        });
        flaky_ended.cancelled().await;
        let reports = health.stage_reports();
        let flaky = reports.iter().find(|stage| stage.name == "flaky").unwrap();
        assert_eq!((flaky.state, flaky.restarts), (pipeline::StageState::Finished, 2));
        assert_eq!(runs.load(Ordering::SeqCst), 3);

        supervisor.spawn("panics", &shutdown, |_stage, _shutdown| Box::pin(async { panic!("a bug") }));
        supervisor.failed().cancelled().await;
        let reports = health.stage_reports();
        let panicked = reports.iter().find(|stage| stage.name == "panics").unwrap();
        assert_eq!(panicked.state, pipeline::StageState::Failed);
        shutdown.cancel();
        let result = supervisor.join(Duration::from_secs(30)).await;
        assert!(result.unwrap_err().to_string().contains("stage panics failed"));
    }
}
