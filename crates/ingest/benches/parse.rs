//! Parse throughput on real X API v2 data: the kpop search page split into
//! one filtered-stream message per post (each with the `includes` it
//! needs, as the stream sends them), and the whole page as one record.
//!
//! Run with `cargo bench -p ingest --bench parse`; figures go to BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ingest::Parser;
use model::{Origin, RawRecord};
use serde_json::{Value, json};

fn kpop_page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/tweets/v2/twarc-csv-kpop.jsonl");
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// One stream message per post of the page.
fn stream_lines(page: &str) -> Vec<String> {
    let page: Value = serde_json::from_str(page).unwrap_or_default();
    let empty = Vec::new();
    let users = page["includes"]["users"].as_array().unwrap_or(&empty);
    let tweets = page["includes"]["tweets"].as_array().unwrap_or(&empty);
    let user = |id: &Value| users.iter().find(|user| user["id"] == *id).cloned();
    page["data"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|tweet| {
            let referenced: Vec<Value> = tweet["referenced_tweets"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .filter_map(|reference| tweets.iter().find(|included| included["id"] == reference["id"]).cloned())
                .collect();
            let mut authors: Vec<Value> = user(&tweet["author_id"]).into_iter().collect();
            authors.extend(referenced.iter().filter_map(|included| user(&included["author_id"])));
            json!({
                "data": tweet,
                "includes": {"users": authors, "tweets": referenced},
                "matching_rules": [{"id": "1", "tag": "kpop"}],
            })
            .to_string()
        })
        .collect()
}

fn record(payload: String) -> RawRecord {
    RawRecord {
        key: String::new(),
        origin: Origin { source: "bench".to_owned(), position: 0, checkpoint: None },
        payload,
        received_ms: None,
    }
}

fn parse(c: &mut Criterion) {
    let page = kpop_page();
    let lines: Vec<RawRecord> = stream_lines(&page).into_iter().map(record).collect();
    let mean_bytes = lines.iter().map(|line| line.payload.len()).sum::<usize>() / lines.len().max(1);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function(format!("v2 stream lines (kpop, mean {mean_bytes} B)"), |bench| {
        let mut parser = Parser::new();
        bench.iter(|| {
            let mut n_events = 0;
            for line in &lines {
                n_events += parser.parse(line).map_or(0, |events| events.len());
            }
            n_events
        });
    });
    let page = record(page);
    group.throughput(Throughput::Elements(100));
    group.bench_function("v2 search page (kpop, 100 posts)", |bench| {
        let mut parser = Parser::new();
        bench.iter(|| parser.parse(&page).map_or(0, |events| events.len()));
    });
    group.throughput(Throughput::Bytes(page.payload.len() as u64));
    group.bench_function("partition_key (kpop page)", |bench| {
        bench.iter(|| ingest::partition_key(&page.payload));
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
