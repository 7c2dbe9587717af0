//! `replay:PATH`: a JSON-lines file, one message a line, at a set pace or as
//! fast as the pipeline takes it. Blank lines are keep-alives. A line that
//! is not UTF-8 is handed on as it reads (lossily) so the parser counts it
//! as malformed with its line number; the replay never stops for a bad line.

use std::time::Duration;

use model::{Origin, RawRecord};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{SourceError, partition_key};

/// Lines longer than this are cut (and then fail to parse as JSON).
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

pub struct ReplaySource {
    name: String,
    path: String,
    rate: Option<f64>,
}

impl ReplaySource {
    pub fn new(path: &str, rate: Option<f64>) -> ReplaySource {
        ReplaySource { name: format!("replay:{path}"), path: path.to_owned(), rate: rate.filter(|rate| *rate > 0.0) }
    }
}

#[async_trait::async_trait]
impl crate::Source for ReplaySource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(
        self: Box<Self>,
        _checkpoint: Option<String>,
        out: mpsc::Sender<RawRecord>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError> {
        let io_error = |source| SourceError::Io { path: self.path.clone(), source };
        let file = tokio::fs::File::open(&self.path).await.map_err(io_error)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let started = tokio::time::Instant::now();
        let mut line = Vec::new();
        let mut line_number = 0u64;
        let mut n_sent = 0u64;
        loop {
            line.clear();
            let n_read = tokio::select! {
                read = reader.read_until(b'\n', &mut line) => read.map_err(io_error)?,
                () = shutdown.cancelled() => return Ok(()),
            };
            if n_read == 0 {
                return Ok(());
            }
            line_number += 1;
            line.truncate(MAX_LINE_BYTES);
            let text = String::from_utf8_lossy(&line);
            let payload = text.trim();
            if payload.is_empty() {
                continue;
            }
            if let Some(rate) = self.rate {
                // Pace by the schedule, not by sleeping per line, so the rate does not drift.
                let due = started + Duration::from_secs_f64(n_sent as f64 / rate);
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
            let key = partition_key(payload).unwrap_or_else(|| format!("{}:{line_number}", self.path));
            let record = RawRecord {
                key,
                origin: Origin { source: self.name.clone(), position: line_number, checkpoint: None },
                payload: payload.to_owned(),
            };
            if out.send(record).await.is_err() {
                return Ok(());
            }
            n_sent += 1;
        }
    }
}
