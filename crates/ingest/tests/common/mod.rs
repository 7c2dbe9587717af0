//! Helpers shared by the ingest tests: the recorded test data and a parser
//! that feeds it line by line, as the replay source would.

#![allow(dead_code, clippy::unwrap_used)]

use ingest::{ParseError, Parser};
use model::{Origin, PostBundle, PostEvent, RawRecord};

/// A file under the shared test data.
pub fn testdata(path: &str) -> String {
    format!("{}/../../../shared/testdata/{path}", env!("CARGO_MANIFEST_DIR"))
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(testdata(path)).unwrap()
}

/// A record as the replay source makes it.
pub fn record(source: &str, position: u64, payload: &str) -> RawRecord {
    RawRecord {
        key: ingest::partition_key(payload).unwrap_or_default(),
        origin: Origin { source: source.to_owned(), position, checkpoint: None },
        payload: payload.to_owned(),
        received_ms: None,
    }
}

/// Every non-blank line of a file through one parser, with its line number.
pub fn parse_lines(path: &str) -> Vec<(u64, Result<Vec<PostEvent>, ParseError>)> {
    let mut parser = Parser::new();
    read(path)
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(line_idx, line)| {
            let position = line_idx as u64 + 1;
            (position, parser.parse(&record(&format!("replay:{path}"), position, line)))
        })
        .collect()
}

/// The upserts in a list of events.
pub fn bundles(events: &[PostEvent]) -> Vec<&PostBundle> {
    events
        .iter()
        .filter_map(|event| match event {
            PostEvent::Upsert(bundle) => Some(bundle),
            PostEvent::Delete { .. } => None,
        })
        .collect()
}
