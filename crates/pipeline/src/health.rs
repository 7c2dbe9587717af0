//! In-place retries of transient failures, reported on a [`Stage`] of the
//! process's [`Health`] (which lives in `telemetry`, so the edge can answer
//! `/readyz` without depending on the pipeline).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use telemetry::health::{EngineReport, Health, PROBE_TIMEOUT, Probe, Readiness, Stage, StageReport, StageState};

/// Whether an error is worth retrying (an engine unreachable, a timeout) or
/// permanent (a bug, corrupt data).
pub trait Transient {
    fn is_transient(&self) -> bool;
}

/// The delays between in-place retries: doubling from 100 ms up to 5 s,
/// with up to half of each taken off at random.
pub fn retry_backoff() -> ingest::backoff::Backoff {
    ingest::backoff::Backoff::exponential(Duration::from_millis(100), Duration::from_secs(5)).with_jitter(0.5)
}

/// Runs `operation` until it succeeds, retrying transient failures in place
/// (the same work again, never skipped) with [`retry_backoff`] and reporting
/// them on `stage`. A permanent failure is returned; `Ok(None)` means
/// `shutdown` came first.
pub async fn retry<T, E, F, Fut>(
    stage: &Stage,
    what: &str,
    shutdown: &CancellationToken,
    mut operation: F,
) -> Result<Option<T>, E>
where
    E: Transient + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = retry_backoff();
    let mut failed_before = false;
    loop {
        let result = tokio::select! {
            result = operation() => result,
            () = shutdown.cancelled() => return Ok(None),
        };
        match result {
            Ok(value) => {
                if failed_before {
                    tracing::info!(stage = stage.name(), what, "recovered");
                    stage.running();
                }
                return Ok(Some(value));
            }
            Err(error) if error.is_transient() => {
                let reason = format!("{what}: {error}");
                if !failed_before {
                    tracing::warn!(stage = stage.name(), %reason, "transient failure; retrying the same work");
                }
                failed_before = true;
                stage.retrying(&reason);
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                    () = shutdown.cancelled() => return Ok(None),
                }
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Failure(&'static str, bool);

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            self.1
        }
    }

    struct Down;

    #[async_trait::async_trait]
    impl Probe for Down {
        async fn probe(&self) -> Result<(), String> {
            Err("connection refused".into())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_retry_the_same_work_and_show_in_readiness() {
        let health = Health::new(Duration::from_secs(30));
        let stage = health.stage("processor");
        stage.running();
        let mut attempts = 0;
        let shutdown = CancellationToken::new();
        let value = retry(&stage, "store", &shutdown, || {
            attempts += 1;
            let attempt = attempts;
            async move { if attempt < 4 { Err(Failure("unreachable", true)) } else { Ok(attempt) } }
        })
        .await
        .unwrap();
        assert_eq!(value, Some(4));
        let report = health.readiness().await;
        assert!(report.ready, "{report:?}");
        assert_eq!(report.stages[0].retries, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_returned_at_once() {
        let health = Health::new(Duration::from_secs(30));
        let stage = health.stage("processor");
        let shutdown = CancellationToken::new();
        let result: Result<Option<()>, Failure> =
            retry(&stage, "store", &shutdown, || async { Err(Failure("corrupt", false)) }).await;
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn readiness_names_the_failing_stage_and_engine() {
        let health = Health::new(Duration::from_secs(30));
        health.stage("processor").retrying("trends: redis: connection refused");
        health.stage("source replay").finished();
        health.add_probe("redis", Arc::new(Down));
        let report = health.readiness().await;
        assert!(!report.ready);
        assert_eq!(report.failing.len(), 2, "{:?}", report.failing);
        assert!(report.failing[0].contains("processor") && report.failing[0].contains("redis"));
        assert!(report.failing[1].starts_with("engine redis"));
        assert!(health.prometheus_text().contains("deck_stage_up{stage=\"processor\"} 0"));
    }

    #[tokio::test(start_paused = true)]
    async fn work_held_past_the_bound_is_lag() {
        let health = Health::new(Duration::from_secs(5));
        let stage = health.stage("processor");
        stage.running();
        stage.work_started();
        tokio::time::advance(Duration::from_secs(6)).await;
        let report = health.readiness().await;
        assert!(!report.ready);
        assert!(report.failing[0].contains("lags"), "{:?}", report.failing);
        stage.work_done();
        assert!(health.readiness().await.ready);
    }
}
