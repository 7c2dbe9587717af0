//! The percolator: an inverted index over queries instead of posts.
//!
//! Each query is indexed under one term of each conjunction of its plan
//! (`search::Query::plan`): any post the query matches carries every term of
//! some conjunction, so it carries the indexed one. Queries whose plan is
//! `All` (only exclusions, say) are checked against every post. Candidates
//! are then verified with the same matcher as history queries.

use std::collections::{HashMap, HashSet};

use search::{Doc, Plan, Query, Term};

/// One indexed query.
pub type SubscriptionId = u64;

/// Queries indexed by anchor term.
#[derive(Default)]
pub struct Percolator {
    queries: HashMap<SubscriptionId, (Query, Vec<Term>)>,
    by_term: HashMap<Term, Vec<SubscriptionId>>,
    match_all: HashSet<SubscriptionId>,
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
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    pub fn insert(&mut self, id: SubscriptionId, query: Query) {
        self.remove(id);
        let anchors = match query.plan() {
            Plan::All => {
                self.match_all.insert(id);
                Vec::new()
            }
            Plan::AnyOf(conjunctions) => {
                let mut anchors: Vec<Term> =
                    conjunctions.into_iter().filter_map(|terms| terms.into_iter().max_by_key(selectivity)).collect();
                anchors.sort();
                anchors.dedup();
                for anchor in &anchors {
                    self.by_term.entry(anchor.clone()).or_default().push(id);
                }
                anchors
            }
        };
        self.queries.insert(id, (query, anchors));
    }

    pub fn remove(&mut self, id: SubscriptionId) {
        let Some((_, anchors)) = self.queries.remove(&id) else {
            return;
        };
        self.match_all.remove(&id);
        for anchor in anchors {
            if let Some(ids) = self.by_term.get_mut(&anchor) {
                ids.retain(|other| *other != id);
                if ids.is_empty() {
                    self.by_term.remove(&anchor);
                }
            }
        }
    }

    /// Every subscription whose query matches the post behind `doc`.
    pub fn matches(&self, doc: &Doc) -> Vec<SubscriptionId> {
        let mut candidates: Vec<SubscriptionId> = self.match_all.iter().copied().collect();
        for term in doc.terms() {
            if let Some(ids) = self.by_term.get(&term) {
                candidates.extend_from_slice(ids);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|id| self.queries.get(id).is_some_and(|(query, _)| query.matches_doc(doc)));
        candidates
    }
}
