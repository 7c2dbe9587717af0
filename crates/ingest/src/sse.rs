//! Server-sent events (Mastodon's streaming API over HTTP), apart from the
//! network: bytes in, frames out. Deck decodes them itself rather than with
//! `eventsource-stream`, whose event data grows without a bound; here each
//! line is bounded by the line splitter and one event's data by
//! [`MAX_LINE_BYTES`] in all.

use futures::StreamExt;

use crate::MAX_LINE_BYTES;
use crate::mastodon_source::{Frames, Incoming};
use crate::x_source::{Line, LineSplitter};

/// Server-sent events as frames: `event:`/`data:` lines up to a blank
/// line make one frame; comment lines (`:thump`) are heartbeats.
pub(crate) fn sse_frames(response: reqwest::Response) -> Frames {
    let mut decoder = SseDecoder::default();
    let frames = response
        .bytes_stream()
        .map(move |chunk| match chunk {
            Ok(chunk) => decoder.push(&chunk).into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error.to_string())],
        })
        .flat_map(futures::stream::iter)
        .chain(futures::stream::once(async { Err("the server ended the event stream".to_owned()) }));
    Box::pin(frames)
}

/// The SSE framing, apart from the network: bytes in, frames out. Each line
/// is bounded by the line splitter, and one event's `data` by
/// [`MAX_LINE_BYTES`] in all (an event that grows past it is dropped and
/// reported), so a server that never sends a blank line cannot make it grow.
#[derive(Default)]
pub(crate) struct SseDecoder {
    splitter: LineSplitter,
    lines: Vec<Line>,
    event: Option<String>,
    data: Vec<String>,
    data_bytes: usize,
    oversized: bool,
}

impl SseDecoder {
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<Incoming> {
        self.splitter.push(chunk, &mut self.lines);
        let mut items = Vec::new();
        for line in std::mem::take(&mut self.lines) {
            match line {
                Line::KeepAlive => {
                    if self.oversized {
                        items.push(Incoming::Unreadable(format!(
                            "an event of more than {MAX_LINE_BYTES} bytes of data"
                        )));
                    } else if !self.data.is_empty() || self.event.is_some() {
                        let frame = serde_json::json!({
                            "event": self.event.take().unwrap_or_else(|| "message".to_owned()),
                            "payload": self.data.join("\n"),
                        });
                        items.push(Incoming::Frame(frame.to_string()));
                    }
                    self.event = None;
                    self.data.clear();
                    self.data_bytes = 0;
                    self.oversized = false;
                }
                Line::Unreadable(reason) => items.push(Incoming::Unreadable(reason)),
                Line::Message(line) => {
                    if line.starts_with(':') {
                        items.push(Incoming::Alive);
                    } else if let Some(name) = line.strip_prefix("event:") {
                        self.event = Some(model::truncate_at_char_boundary(name.trim(), 64).to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        let value = value.strip_prefix(' ').unwrap_or(value);
                        self.data_bytes += value.len() + 1;
                        if self.data_bytes > MAX_LINE_BYTES {
                            self.oversized = true;
                            self.data.clear();
                        } else {
                            self.data.push(value.to_owned());
                        }
                    }
                    // `id:` and `retry:` lines are not used by Mastodon.
                }
            }
        }
        items
    }
}

/// For the fuzz targets: what the SSE framing makes of `chunks`, as
/// `(frames, heartbeats, unreadable)` with the frames' JSON text.
#[doc(hidden)]
pub fn sse_decode(chunks: &[&[u8]]) -> (Vec<String>, usize, usize) {
    let mut decoder = SseDecoder::default();
    let (mut frames, mut alive, mut unreadable) = (Vec::new(), 0, 0);
    for chunk in chunks {
        for item in decoder.push(chunk) {
            match item {
                Incoming::Frame(frame) => frames.push(frame),
                Incoming::Alive => alive += 1,
                Incoming::Unreadable(_) | Incoming::ServerError(_) => unreadable += 1,
            }
        }
    }
    (frames, alive, unreadable)
}
