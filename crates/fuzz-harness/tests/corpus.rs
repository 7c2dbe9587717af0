//! Replays every committed fuzz input (the corpora in `fuzz/corpus/TARGET/`
//! and the crash reproducers in `fuzz/regressions/TARGET/`) through the
//! same checks the fuzz targets run, on stable Rust, in seconds. A target
//! with no corpus fails the test, so a corpus cannot go missing silently.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut inputs = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let data = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                inputs.push((path, data));
            }
        }
    }
    inputs.sort();
    inputs
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no committed corpus for fuzz target {target}");
    for (path, data) in &inputs {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(data)));
        assert!(outcome.is_ok(), "fuzz input {} fails its target {target}", path.display());
    }
    eprintln!("{target}: {} inputs replayed", inputs.len());
}

#[test]
fn query_corpus() {
    replay("query", fuzz_harness::query);
}

#[test]
fn ingest_corpora() {
    for target in ["x_v2", "x_v1", "jetstream", "mastodon"] {
        replay(target, fuzz_harness::ingest);
    }
}

#[test]
fn mastodon_html_corpus() {
    replay("mastodon_html", fuzz_harness::mastodon_html);
}

#[test]
fn sse_corpus() {
    replay("sse", fuzz_harness::sse);
}

#[test]
fn cursor_corpus() {
    replay("cursor", fuzz_harness::cursor);
}

#[test]
fn extract_corpus() {
    replay("extract", fuzz_harness::extract);
}

#[test]
fn post_roundtrip_corpus() {
    replay("post_roundtrip", |data| {
        let mut unstructured = arbitrary::Unstructured::new(data);
        if let Ok(input) = <fuzz_harness::PostInput as arbitrary::Arbitrary>::arbitrary(&mut unstructured) {
            fuzz_harness::post_roundtrip(&input);
        }
    });
}
