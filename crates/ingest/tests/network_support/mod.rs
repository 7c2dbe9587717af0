//! Shared by the network sources' tests: the recordings, a [`Sleep`] that
//! records the delays a source asks for, and a collector for its records.

// A panic is how a test fails.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingest::Source;
use ingest::backoff::Sleep;
use model::RawRecord;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A file of `../shared/testdata`.
pub fn testdata(path: &str) -> String {
    let full = format!("{}/../../../shared/testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{full}: {error}"))
}

/// Records each requested delay and returns at once, so reconnect
/// schedules are checked as data, not timed.
#[derive(Clone, Default)]
pub struct RecordingSleep {
    pub delays: Arc<Mutex<Vec<Duration>>>,
}

impl RecordingSleep {
    pub fn delays(&self) -> Vec<Duration> {
        self.delays.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Sleep for RecordingSleep {
    async fn sleep(&self, delay: Duration) {
        self.delays.lock().unwrap().push(delay);
        tokio::task::yield_now().await;
    }
}

/// A running source and the records it hands on.
pub struct Running {
    pub records_rx: mpsc::Receiver<RawRecord>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), ingest::SourceError>>,
}

pub fn start(source: Box<dyn Source>, checkpoint: Option<String>) -> Running {
    let (records_tx, records_rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(source.run(checkpoint, records_tx, shutdown.clone()));
    Running { records_rx, shutdown, task }
}

impl Running {
    /// Receives records until `done` says so (with a generous guard so a
    /// broken source fails the test instead of hanging it).
    pub async fn collect_until(&mut self, mut done: impl FnMut(&[RawRecord]) -> bool) -> Vec<RawRecord> {
        let mut records = Vec::new();
        let guard = tokio::time::timeout(Duration::from_secs(20), async {
            while !done(&records) {
                match self.records_rx.recv().await {
                    Some(record) => records.push(record),
                    None => break,
                }
            }
        });
        guard.await.expect("the source stalled");
        records
    }

    /// Stops the source and checks it ended cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("the source did not stop");
        result.unwrap().unwrap();
    }
}

/// Waits (polling) until `condition` holds.
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("condition never held");
}

/// Whether each delay lies in `[base · (1 − jitter), base]`.
pub fn within_jitter(delays: &[Duration], bases_ms: &[u64], jitter: f64) -> bool {
    delays.len() == bases_ms.len()
        && delays.iter().zip(bases_ms).all(|(delay, base_ms)| {
            let base = Duration::from_millis(*base_ms);
            *delay <= base && *delay >= base.mul_f64(1.0 - jitter)
        })
}
