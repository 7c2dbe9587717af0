//! What the network sources share: waiting for a connection's next item
//! with a stall timeout, handing a record on without outliving shutdown,
//! waiting out a reconnect delay, and the TLS provider.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use model::RawRecord;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::Sleep;

/// Why a read loop gave up on a connection; says which backoff applies.
#[derive(Debug)]
pub(crate) enum Disconnect {
    /// The source is shutting down, or the pipeline dropped its end.
    Stop,
    /// The connection failed, closed, stalled or was cut.
    Network(String),
}

/// The next item of a connection's stream (`None` when it ended), or why
/// to stop waiting: shutdown, or nothing for `stall` (a stalled connection).
pub(crate) async fn next_or_stall<S: Stream + Unpin>(
    stream: &mut S,
    stall: Duration,
    shutdown: &CancellationToken,
) -> Result<Option<S::Item>, Disconnect> {
    tokio::select! {
        next = tokio::time::timeout(stall, stream.next()) => {
            next.map_err(|_elapsed| Disconnect::Network(format!("nothing for {stall:?}")))
        }
        () = shutdown.cancelled() => Err(Disconnect::Stop),
    }
}

/// Sends `record`; `false` when the pipeline is gone or shutdown came first.
pub(crate) async fn send(out: &mpsc::Sender<RawRecord>, record: RawRecord, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        sent = out.send(record) => sent.is_ok(),
        () = shutdown.cancelled() => false,
    }
}

/// Waits `delay` through `sleep`; `false` when shutdown came first.
pub(crate) async fn pause(sleep: &Arc<dyn Sleep>, delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = sleep.sleep(delay) => !shutdown.is_cancelled(),
        () = shutdown.cancelled() => false,
    }
}

/// The record that stands for a message that cannot travel as text (the
/// replay's marker): the parser refuses it, so it is counted and logged
/// with the other malformed records.
pub(crate) fn unreadable(reason: &str) -> String {
    serde_json::json!({ "deck_unreadable": reason }).to_string()
}

/// Makes ring (the provider reqwest is built with) the process's rustls
/// provider, so `wss://` works whatever other crates enable. Installing
/// twice is refused harmlessly.
pub(crate) fn install_tls_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
