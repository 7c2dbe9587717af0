//! `replay:PATH`: a JSON-lines file, one message a line, at a set pace or as
//! fast as the pipeline takes it. Blank lines are keep-alives and skipped.
//!
//! The replay never stops for a bad line. A line that is not UTF-8, or is
//! longer than [`MAX_LINE_BYTES`], cannot travel as a record's text; the
//! replay hands on a small `{"deck_unreadable": "<why>"}` record in its
//! place (same origin, file and line), which the parser refuses with
//! [`crate::ParseError::Unreadable`], so it is counted and logged with the
//! other malformed records. An oversized line is skipped as it is read,
//! never held in memory whole.

use std::time::Duration;

use model::{Origin, RawRecord};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::{SourceError, partition_key};

/// The longest line handed on (1 MiB; X's largest messages are far smaller).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Replays a JSON-lines file.
pub struct ReplaySource {
    name: String,
    path: String,
    rate: Option<f64>,
}

impl ReplaySource {
    /// Replays `path` at `rate` lines per second (`None`, zero or negative:
    /// as fast as the pipeline takes them).
    pub fn new(path: &str, rate: Option<f64>) -> ReplaySource {
        ReplaySource {
            name: format!("replay:{path}"),
            path: path.to_owned(),
            rate: rate.filter(|rate| rate.is_finite() && *rate > 0.0),
        }
    }
}

/// One line as read: its first bytes (up to the limit) and its whole length.
struct Line {
    n_bytes: usize,
}

/// Reads one line (without its `\n`) into `buffer`, keeping at most
/// [`MAX_LINE_BYTES`]; `None` at the end of the file.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, buffer: &mut Vec<u8>) -> std::io::Result<Option<Line>> {
    buffer.clear();
    let mut n_bytes = 0usize;
    let mut read_any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(read_any.then_some(Line { n_bytes }));
        }
        read_any = true;
        let (chunk, found_end) = match available.iter().position(|byte| *byte == b'\n') {
            Some(end) => (&available[..end], true),
            None => (available, false),
        };
        let room = (MAX_LINE_BYTES + 1).saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        n_bytes += chunk.len();
        let consumed = chunk.len() + usize::from(found_end);
        reader.consume(consumed);
        if found_end {
            return Ok(Some(Line { n_bytes }));
        }
    }
}

/// The payload for a line, or the marker that stands for it.
fn payload_of(line: &[u8], n_bytes: usize) -> Option<String> {
    if n_bytes > MAX_LINE_BYTES {
        let reason = format!("line is {n_bytes} bytes, over the {MAX_LINE_BYTES}-byte limit");
        return Some(unreadable(&reason));
    }
    match std::str::from_utf8(line) {
        Ok(text) => {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        }
        Err(error) => Some(unreadable(&format!("line is not UTF-8 (invalid byte at offset {})", error.valid_up_to()))),
    }
}

fn unreadable(reason: &str) -> String {
    serde_json::json!({ "deck_unreadable": reason }).to_string()
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
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        // One tick per record. `Burst` catches up after a stall (a slow
        // consumer), so the average rate holds and does not drift as
        // sleeping per line would.
        let mut pace = self.rate.map(|rate| {
            let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1));
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
            interval
        });
        let mut buffer = Vec::with_capacity(4096);
        let mut line_number = 0u64;
        loop {
            let line = tokio::select! {
                line = read_line(&mut reader, &mut buffer) => line.map_err(io_error)?,
                () = shutdown.cancelled() => return Ok(()),
            };
            let Some(line) = line else {
                return Ok(());
            };
            line_number += 1;
            let Some(payload) = payload_of(&buffer, line.n_bytes) else {
                continue;
            };
            if let Some(pace) = pace.as_mut() {
                tokio::select! {
                    _ = pace.tick() => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
            let key = partition_key(&payload).unwrap_or_else(|| format!("{}:{line_number}", self.path));
            let record = RawRecord {
                key,
                origin: Origin { source: self.name.clone(), position: line_number, checkpoint: None },
                payload,
                received_ms: Some(chrono::Utc::now().timestamp_millis()),
            };
            tokio::select! {
                sent = out.send(record) => if sent.is_err() { return Ok(()) },
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}
