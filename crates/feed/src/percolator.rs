//! The percolator: an inverted index over queries instead of posts.
//!
//! Each distinct query is indexed under one term of each conjunction of its
//! plan (`search::Query::plan`): any post the query matches carries every
//! term of some conjunction, so it carries the indexed one. Queries whose
//! plan is `All` (only exclusions, say) are checked against every post.
//! Candidates are verified once per distinct query text however many columns
//! share it (popular columns such as `#BTS` are open thousands of times).
//!
//! Most column queries are a few terms a post must or must not carry
//! (`#bts`, `from:jimin`, `bts army`, `army -filter:retweets`; see
//! `search::Query::term_conjunction`). Those are verified against the post's
//! term ids, a handful of integer comparisons; only the rest go through the
//! matcher that history queries use. Every term a query needs is interned
//! once, and distinct queries live in a slab, so that gathering and
//! deduplicating a post's candidates sorts integers, not strings.

use std::collections::HashMap;

use search::{Doc, Plan, Query, Term};

/// One column's subscription.
pub type SubscriptionId = u64;

type Slot = u32;
type TermId = u32;

/// How a candidate is verified.
enum Check {
    /// Sorted term ids the post must carry, and must not.
    Terms { required: Box<[TermId]>, forbidden: Box<[TermId]> },
    /// The query's own matcher.
    Matcher,
}

/// One distinct query and the subscriptions that share it.
struct Entry {
    text: Box<str>,
    query: Query,
    check: Check,
    anchors: Vec<TermId>,
    subscriptions: Vec<SubscriptionId>,
}

/// A term some query needs, with the queries filed under it.
struct TermEntry {
    text: Box<str>,
    /// How many entries refer to the term (as an anchor or in a check).
    references: usize,
    anchored: Vec<Slot>,
}

/// Distinct queries indexed by anchor term.
#[derive(Default)]
pub struct Percolator {
    slots: Vec<Option<Entry>>,
    free_slots: Vec<Slot>,
    by_text: HashMap<Box<str>, Slot>,
    /// Which slot each subscription's query is in.
    subscriptions: HashMap<SubscriptionId, Slot>,
    terms: Vec<Option<TermEntry>>,
    free_terms: Vec<TermId>,
    term_ids: HashMap<Box<str>, TermId>,
    match_all: Vec<Slot>,
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

/// A slab index as the slab's id type. Over four billion distinct live
/// queries or terms is not a deployment this serves; saturating keeps the
/// arithmetic total.
fn slab_id(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
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
        self.by_text.len()
    }

    pub fn insert(&mut self, id: SubscriptionId, query: Query) {
        self.remove(id);
        if let Some(&slot) = self.by_text.get(query.text())
            && let Some(Some(entry)) = self.slots.get_mut(slot as usize)
        {
            entry.subscriptions.push(id);
            self.subscriptions.insert(id, slot);
            return;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                slab_id(self.slots.len() - 1)
            }
        };
        let (check, anchor_terms) = match (query.term_conjunction(), query.plan()) {
            (Some(conjunction), _) => {
                let anchor = conjunction.required.iter().max_by_key(|term| selectivity(term)).cloned();
                let mut intern_all = |terms: &[Term]| {
                    let mut ids: Vec<TermId> = terms.iter().map(|term| self.intern(term.as_str())).collect();
                    ids.sort_unstable();
                    ids.into_boxed_slice()
                };
                let required = intern_all(&conjunction.required);
                let forbidden = intern_all(&conjunction.forbidden);
                (Check::Terms { required, forbidden }, anchor.into_iter().collect())
            }
            (None, Plan::All) => {
                self.match_all.push(slot);
                (Check::Matcher, Vec::new())
            }
            (None, Plan::AnyOf(conjunctions)) => {
                let mut anchors: Vec<Term> =
                    conjunctions.into_iter().filter_map(|terms| terms.into_iter().max_by_key(selectivity)).collect();
                anchors.sort();
                anchors.dedup();
                (Check::Matcher, anchors)
            }
        };
        let mut anchors = Vec::with_capacity(anchor_terms.len());
        for term in &anchor_terms {
            let term_id = self.intern(term.as_str());
            if let Some(Some(term)) = self.terms.get_mut(term_id as usize) {
                term.anchored.push(slot);
            }
            anchors.push(term_id);
        }
        let text: Box<str> = query.text().into();
        self.by_text.insert(text.clone(), slot);
        self.subscriptions.insert(id, slot);
        let entry = Entry { text, query, check, anchors, subscriptions: vec![id] };
        if let Some(place) = self.slots.get_mut(slot as usize) {
            *place = Some(entry);
        }
    }

    pub fn remove(&mut self, id: SubscriptionId) {
        let Some(slot) = self.subscriptions.remove(&id) else {
            return;
        };
        let Some(place) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let Some(entry) = place else {
            return;
        };
        entry.subscriptions.retain(|other| *other != id);
        if !entry.subscriptions.is_empty() {
            return;
        }
        let Some(entry) = place.take() else {
            return;
        };
        self.by_text.remove(&entry.text);
        self.match_all.retain(|other| *other != slot);
        for &anchor in &entry.anchors {
            if let Some(Some(term)) = self.terms.get_mut(anchor as usize) {
                term.anchored.retain(|other| *other != slot);
            }
            self.release(anchor);
        }
        if let Check::Terms { required, forbidden } = &entry.check {
            for &term_id in required.iter().chain(forbidden.iter()) {
                self.release(term_id);
            }
        }
        self.free_slots.push(slot);
    }

    /// The id of a term, interned on first use; each call is one reference.
    fn intern(&mut self, text: &str) -> TermId {
        if let Some(&term_id) = self.term_ids.get(text)
            && let Some(Some(term)) = self.terms.get_mut(term_id as usize)
        {
            term.references += 1;
            return term_id;
        }
        let term_id = match self.free_terms.pop() {
            Some(term_id) => term_id,
            None => {
                self.terms.push(None);
                slab_id(self.terms.len() - 1)
            }
        };
        let text: Box<str> = text.into();
        self.term_ids.insert(text.clone(), term_id);
        if let Some(place) = self.terms.get_mut(term_id as usize) {
            *place = Some(TermEntry { text, references: 1, anchored: Vec::new() });
        }
        term_id
    }

    /// Drops one reference to a term, and the term with the last one.
    fn release(&mut self, term_id: TermId) {
        let Some(place) = self.terms.get_mut(term_id as usize) else {
            return;
        };
        let Some(term) = place else {
            return;
        };
        term.references = term.references.saturating_sub(1);
        if term.references > 0 {
            return;
        }
        if let Some(term) = place.take() {
            self.term_ids.remove(&term.text);
            self.free_terms.push(term_id);
        }
    }

    /// Calls `f` with the subscriptions of each distinct query that matches
    /// the post behind `doc`. Every matching subscription comes exactly once,
    /// in no particular order.
    pub fn for_each_match(&self, doc: &Doc, mut f: impl FnMut(&[SubscriptionId])) {
        let mut candidates: Vec<Slot> = self.match_all.clone();
        // The post's terms that some query needs.
        let mut present: Vec<TermId> = Vec::with_capacity(32);
        doc.for_each_term(|text| {
            if let Some(&term_id) = self.term_ids.get(text) {
                present.push(term_id);
                if let Some(Some(term)) = self.terms.get(term_id as usize) {
                    candidates.extend_from_slice(&term.anchored);
                }
            }
        });
        present.sort_unstable();
        candidates.sort_unstable();
        candidates.dedup();
        let carries = |term_id: &TermId| present.binary_search(term_id).is_ok();
        for slot in candidates {
            let Some(Some(entry)) = self.slots.get(slot as usize) else {
                continue;
            };
            let matched = match &entry.check {
                Check::Terms { required, forbidden } => required.iter().all(carries) && !forbidden.iter().any(carries),
                Check::Matcher => entry.query.matches_doc(doc),
            };
            if matched {
                f(&entry.subscriptions);
            }
        }
    }

    /// Every subscription whose query matches the post behind `doc`, sorted.
    pub fn matches(&self, doc: &Doc) -> Vec<SubscriptionId> {
        let mut matched = Vec::new();
        self.for_each_match(doc, |subscriptions| matched.extend_from_slice(subscriptions));
        matched.sort_unstable();
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_every_subscription_releases_every_term_and_slot() {
        let mut percolator = Percolator::default();
        let texts = ["#bts", "bts army", "army -filter:retweets", "\"hello world\"", "-#spam", "#bts"];
        for (id, text) in texts.iter().enumerate() {
            let query = Query::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            percolator.insert(id as u64, query);
        }
        assert_eq!(percolator.len(), texts.len());
        assert_eq!(percolator.n_queries(), texts.len() - 1);
        for id in 0..texts.len() as u64 {
            percolator.remove(id);
        }
        assert!(percolator.is_empty());
        assert!(percolator.term_ids.is_empty());
        assert!(percolator.terms.iter().all(Option::is_none));
        assert!(percolator.slots.iter().all(Option::is_none));
        assert!(percolator.match_all.is_empty());
    }
}
