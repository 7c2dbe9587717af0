//! The percolator: an inverted index over queries instead of posts.
//!
//! Each distinct query is indexed under one term of each conjunction of its
//! plan (`search::Query::plan`): any post the query matches carries every
//! term of some conjunction, so it carries the indexed one. Queries whose
//! plan is `All` (only exclusions, say) are checked against every post.
//! Candidates are verified with the same matcher as history queries, once
//! per distinct query text however many columns share it (popular columns
//! such as `#BTS` are open thousands of times).

use std::collections::{HashMap, HashSet};

use search::{Doc, Plan, Query, Term};

/// One column's subscription.
pub type SubscriptionId = u64;

/// One distinct query and the subscriptions that share it.
struct Entry {
    query: Query,
    anchors: Vec<Term>,
    subscriptions: Vec<SubscriptionId>,
}

/// Distinct queries indexed by anchor term.
#[derive(Default)]
pub struct Percolator {
    entries: HashMap<Box<str>, Entry>,
    /// Which query text each subscription uses.
    subscriptions: HashMap<SubscriptionId, Box<str>>,
    by_term: HashMap<Term, Vec<Box<str>>>,
    match_all: HashSet<Box<str>>,
}

/// How likely a term is to be rare, for choosing a conjunction's anchor:
/// hashtags, authors and mentions are selective; languages and kinds are not.
fn selectivity(term: &Term) -> (u8, usize) {
    let text = term.as_str();
    let class = match text.split_once(':').map(|(kind, _)| kind) {
        Some("h" | "a" | "m" | "r") => 4,
        Some("w") => 3,
        Some("g") => 2,
        Some(_) => 1,
        None => 0,
    };
    (class, text.len())
}

impl Percolator {
    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.subscriptions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }

    /// Number of distinct queries indexed.
    pub fn n_queries(&self) -> usize {
        self.entries.len()
    }

    pub fn insert(&mut self, id: SubscriptionId, query: Query) {
        self.remove(id);
        let key: Box<str> = query.text().into();
        self.subscriptions.insert(id, key.clone());
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.subscriptions.push(id);
            return;
        }
        let anchors = match query.plan() {
            Plan::All => {
                self.match_all.insert(key.clone());
                Vec::new()
            }
            Plan::AnyOf(conjunctions) => {
                let mut anchors: Vec<Term> =
                    conjunctions.into_iter().filter_map(|terms| terms.into_iter().max_by_key(selectivity)).collect();
                anchors.sort();
                anchors.dedup();
                for anchor in &anchors {
                    self.by_term.entry(anchor.clone()).or_default().push(key.clone());
                }
                anchors
            }
        };
        self.entries.insert(key, Entry { query, anchors, subscriptions: vec![id] });
    }

    pub fn remove(&mut self, id: SubscriptionId) {
        let Some(key) = self.subscriptions.remove(&id) else {
            return;
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        entry.subscriptions.retain(|other| *other != id);
        if !entry.subscriptions.is_empty() {
            return;
        }
        let Some(entry) = self.entries.remove(&key) else {
            return;
        };
        self.match_all.remove(&key);
        for anchor in entry.anchors {
            if let Some(keys) = self.by_term.get_mut(&anchor) {
                keys.retain(|other| *other != key);
                if keys.is_empty() {
                    self.by_term.remove(&anchor);
                }
            }
        }
    }

    /// Every subscription whose query matches the post behind `doc`, sorted.
    pub fn matches(&self, doc: &Doc) -> Vec<SubscriptionId> {
        let mut candidates: Vec<&str> = self.match_all.iter().map(|key| &**key).collect();
        for term in doc.terms() {
            if let Some(keys) = self.by_term.get(&term) {
                candidates.extend(keys.iter().map(|key| &**key));
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut matched = Vec::new();
        for key in candidates {
            if let Some(entry) = self.entries.get(key)
                && entry.query.matches_doc(doc)
            {
                matched.extend_from_slice(&entry.subscriptions);
            }
        }
        matched.sort_unstable();
        matched
    }
}
