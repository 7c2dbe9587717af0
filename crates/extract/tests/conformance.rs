//! Runs twitter-text's conformance suite (`extract.yml`, and `tlds.yml` for
//! URLs on every known TLD) against this crate, reading the files at test time.
//!
//! Every case of every section runs and the pass count per section is
//! printed. Hashtag, mention and cashtag cases must all pass. A URL case may
//! fail only if it is in [`URL_ALLOWLIST`], with its reason; a listed case that
//! passes fails the test too, so that the list stays honest.

// A suite file that does not have the expected shape should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::io::Write;

use serde_yaml::Value;

/// Prints to stderr past the test harness's capture, so that the counts show
/// with or without `--nocapture`.
macro_rules! report {
    ($($argument:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($argument)*);
    }};
}

const SUITE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/testdata/twitter-text");

/// URL cases known to fail: (section, description, reason). Empty: every URL case passes.
const URL_ALLOWLIST: &[(&str, &str, &str)] = &[];

fn load(file: &str) -> serde_yaml::Mapping {
    let path = format!("{SUITE_DIR}/{file}");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let document: Value = serde_yaml::from_str(&source).unwrap();
    document["tests"].as_mapping().unwrap().clone()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().unwrap().iter().map(|item| item.as_str().unwrap().to_owned()).collect()
}

fn index_pair(value: &Value) -> (usize, usize) {
    let indices = value["indices"].as_sequence().unwrap();
    (indices[0].as_u64().unwrap() as usize, indices[1].as_u64().unwrap() as usize)
}

/// Expected `(value, start, end)` triples from `[{<key>: ..., indices: [s, e]}]`.
fn triples(value: &Value, key: &str) -> Vec<(String, usize, usize)> {
    value
        .as_sequence()
        .unwrap()
        .iter()
        .map(|item| {
            let (start, end) = index_pair(item);
            (item[key].as_str().unwrap().to_owned(), start, end)
        })
        .collect()
}

/// Runs one case; `Ok(())` if the result matches, `Err(description of the mismatch)` otherwise.
fn run_case(section: &str, text: &str, expected: &Value) -> Result<(), String> {
    fn compare<T: PartialEq + std::fmt::Debug>(actual: T, expected: T) -> Result<(), String> {
        if actual == expected { Ok(()) } else { Err(format!("expected {expected:?}, got {actual:?}")) }
    }
    match section {
        "mentions" => compare(extract::extract_mentions(text), strings(expected)),
        "mentions_with_indices" => {
            compare(extract::extract_mentions_with_indices(text), triples(expected, "screen_name"))
        }
        "mentions_or_lists_with_indices" => {
            let actual: Vec<(String, String, usize, usize)> = extract::extract_mentions_or_lists_with_indices(text)
                .into_iter()
                .map(|found| (found.screen_name, found.list_slug, found.start, found.end))
                .collect();
            let wanted = expected
                .as_sequence()
                .unwrap()
                .iter()
                .map(|item| {
                    let (start, end) = index_pair(item);
                    (
                        item["screen_name"].as_str().unwrap().to_owned(),
                        item["list_slug"].as_str().unwrap().to_owned(),
                        start,
                        end,
                    )
                })
                .collect();
            compare(actual, wanted)
        }
        "replies" => compare(extract::extract_reply_username(text), expected.as_str().map(str::to_owned)),
        "urls" | "tco_urls_with_params" | "country" | "generic" => {
            compare(extract::extract_urls(text), strings(expected))
        }
        "urls_with_indices" | "urls_with_directional_markers" => {
            compare(extract::extract_urls_with_indices(text), triples(expected, "url"))
        }
        "hashtags" | "hashtags_from_astral" => compare(extract::extract_hashtags(text), strings(expected)),
        "hashtags_with_indices" => compare(extract::extract_hashtags_with_indices(text), triples(expected, "hashtag")),
        "cashtags" => compare(extract::extract_cashtags(text), strings(expected)),
        "cashtags_with_indices" => compare(extract::extract_cashtags_with_indices(text), triples(expected, "cashtag")),
        unknown => Err(format!("no runner for section {unknown}")),
    }
}

fn is_url_section(section: &str) -> bool {
    section.contains("url") || section == "country" || section == "generic"
}

/// Runs every section of one suite file; returns the problems found.
fn run_suite(file: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let (mut n_passed_total, mut n_cases_total) = (0, 0);
    for (section, cases) in load(file) {
        let section = section.as_str().unwrap();
        let cases = cases.as_sequence().unwrap();
        let mut n_passed = 0;
        for case in cases {
            let description = case["description"].as_str().unwrap();
            let text = case["text"].as_str().unwrap();
            let allowed = URL_ALLOWLIST
                .iter()
                .any(|(listed_section, listed, _)| *listed_section == section && *listed == description);
            match run_case(section, text, &case["expected"]) {
                Ok(()) => {
                    n_passed += 1;
                    if allowed {
                        problems.push(format!(
                            "{file} {section}: '{description}' passes but is on the allowlist; remove it"
                        ));
                    }
                }
                Err(mismatch) => {
                    if allowed && is_url_section(section) {
                        report!("  allowed failure {section}: '{description}': {mismatch}");
                    } else {
                        problems.push(format!("{file} {section}: '{description}' on {text:?}: {mismatch}"));
                    }
                }
            }
        }
        report!("{section}: {n_passed}/{}", cases.len());
        n_passed_total += n_passed;
        n_cases_total += cases.len();
    }
    report!("{file} total: {n_passed_total}/{n_cases_total}");
    problems
}

#[test]
fn extract_yml_conformance() {
    let problems = run_suite("extract.yml");
    for problem in &problems {
        report!("FAIL {problem}");
    }
    assert!(problems.is_empty(), "{} conformance problems", problems.len());
}

#[test]
fn tlds_yml_conformance() {
    let problems = run_suite("tlds.yml");
    for problem in &problems {
        report!("FAIL {problem}");
    }
    assert!(problems.is_empty(), "{} conformance problems", problems.len());
}

#[test]
fn allowlist_entries_have_reasons() {
    for (section, description, reason) in URL_ALLOWLIST {
        assert!(is_url_section(section), "{section} is not a URL section");
        assert!(!description.is_empty() && !reason.is_empty());
    }
}

/// Every prefix (cut at each char boundary) of every suite text must be
/// extracted without panicking: the scanners slice the text by byte offsets.
#[test]
fn never_panics_on_prefixes_of_suite_texts() {
    for (_, cases) in load("extract.yml") {
        for case in cases.as_sequence().unwrap() {
            let text = case["text"].as_str().unwrap();
            for (cut, _) in text.char_indices().chain([(text.len(), ' ')]) {
                let prefix = &text[..cut];
                let _ = extract::extract(prefix);
                let _ = extract::extract_mentions_or_lists_with_indices(prefix);
                let _ = extract::extract_reply_username(prefix);
                let _ = extract::extract_urls_with_indices(&prefix.to_uppercase());
            }
        }
    }
}
