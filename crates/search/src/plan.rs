//! [`Plan`]: which index terms a post must carry to possibly match a query.
//!
//! A plan is a sound over-approximation of the query: every post the query
//! matches carries every term of at least one conjunction (or the plan is
//! [`Plan::All`]). Negations, counts and dates restrict nothing in the index,
//! so they drop out; everything else keeps its terms.

use crate::doc::{Term, gram_terms_of};
use crate::node::{Filter, Node};
use crate::tokenize::{Token, TokenKind};

/// How to find candidate posts for a query in the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Any post may match: scan everything (the `*` posting list).
    All,
    /// A disjunction of conjunctions: a post may match only if it carries all
    /// the terms of at least one inner list. No inner list is empty; each is
    /// sorted with the rarest kind of term first, so that a caller who picks
    /// one term per conjunction can take the first.
    AnyOf(Vec<Vec<Term>>),
}

/// A query that needs no matcher: a post matches it exactly when the post's
/// terms ([`crate::Doc::for_each_term`]) include every `required` term and no
/// `forbidden` one. See [`crate::Query::term_conjunction`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermConjunction {
    /// Never empty.
    pub required: Vec<Term>,
    pub forbidden: Vec<Term>,
}

/// The one term a post carries exactly when the leaf matches it: a hashtag,
/// cashtag, mention, `from:`, `to:`, `lang:`, `filter:` or one word (not a
/// substring of a spaceless script, which may match inside a longer run).
fn exact_term(node: &Node) -> Option<Term> {
    match node {
        Node::Word(token) if token.kind != TokenKind::Spaceless && !token.text.is_empty() => {
            Some(Term::with_prefix("w", &token.text))
        }
        Node::Hashtag(value)
        | Node::Cashtag(value)
        | Node::Mention(value)
        | Node::From(value)
        | Node::To(value)
        | Node::Lang(value)
            if value.is_empty() =>
        {
            None
        }
        Node::Hashtag(_)
        | Node::Cashtag(_)
        | Node::Mention(_)
        | Node::From(_)
        | Node::To(_)
        | Node::Lang(_)
        | Node::Filter(_) => {
            let mut conjunctions = dnf(node)?;
            let mut terms = conjunctions.pop()?;
            let term = terms.pop()?;
            (conjunctions.is_empty() && terms.is_empty()).then_some(term)
        }
        _ => None,
    }
}

/// Beyond this many conjunctions, an `AND` stops multiplying its children in
/// (dropping a child of an `AND` keeps the plan sound, only less selective).
const MAX_CONJUNCTIONS: usize = 64;

impl Plan {
    /// Whether a post with these terms is a candidate. `terms` must be sorted,
    /// as [`crate::Doc::terms`] returns them.
    pub fn admits(&self, sorted_terms: &[Term]) -> bool {
        match self {
            Plan::All => true,
            Plan::AnyOf(conjunctions) => conjunctions
                .iter()
                .any(|conjunction| conjunction.iter().all(|term| sorted_terms.binary_search(term).is_ok())),
        }
    }

    /// The query as required and forbidden terms, when it is a conjunction
    /// of exact leaves (see [`exact_term`]) and negated exact leaves with at
    /// least one required term: `#bts`, `bts army`, `#bts lang:ko`,
    /// `army -filter:retweets`.
    pub(crate) fn term_conjunction(node: &Node) -> Option<TermConjunction> {
        let children = match node {
            Node::And(children) => children.as_slice(),
            other => std::slice::from_ref(other),
        };
        let mut conjunction = TermConjunction { required: Vec::new(), forbidden: Vec::new() };
        for child in children {
            match child {
                Node::Not(inner) => conjunction.forbidden.push(exact_term(inner)?),
                other => conjunction.required.push(exact_term(other)?),
            }
        }
        (!conjunction.required.is_empty()).then_some(conjunction)
    }

    pub(crate) fn of(node: &Node) -> Plan {
        match dnf(node) {
            None => Plan::All,
            Some(mut conjunctions) => {
                for conjunction in &mut conjunctions {
                    conjunction.sort_by(|left, right| {
                        left.rarity_rank().cmp(&right.rarity_rank()).then_with(|| left.cmp(right))
                    });
                }
                Plan::AnyOf(conjunctions)
            }
        }
    }
}

/// A node as a disjunction of conjunctions of terms; `None` means "no
/// restriction". Conjunctions are kept sorted by term and deduplicated while
/// they are built.
fn dnf(node: &Node) -> Option<Vec<Vec<Term>>> {
    let single = |term: Term| Some(vec![vec![term]]);
    match node {
        Node::And(children) => {
            let mut parts: Vec<Vec<Vec<Term>>> = children.iter().filter_map(dnf).collect();
            // Children with fewer alternatives go first: they narrow the most
            // without multiplying the number of conjunctions.
            parts.sort_by_key(Vec::len);
            let mut parts = parts.into_iter();
            let mut conjunctions = parts.next()?;
            for part in parts {
                if conjunctions.len() * part.len() > MAX_CONJUNCTIONS {
                    continue;
                }
                conjunctions =
                    conjunctions.iter().flat_map(|left| part.iter().map(move |right| union(left, right))).collect();
            }
            Some(absorb(conjunctions))
        }
        Node::Or(children) => {
            let mut conjunctions = Vec::new();
            for child in children {
                conjunctions.extend(dnf(child)?);
            }
            Some(absorb(conjunctions))
        }
        Node::Not(_) => None,
        Node::Word(token) => Some(vec![token_terms(token)]),
        Node::Phrase(tokens) => {
            let mut terms: Vec<Term> = tokens.iter().flat_map(token_terms).collect();
            terms.sort_unstable();
            terms.dedup();
            Some(vec![terms])
        }
        Node::Hashtag(hashtag) => single(Term::with_prefix("h", hashtag)),
        Node::Cashtag(cashtag) => single(Term::with_prefix("c", cashtag)),
        Node::Mention(handle) => single(Term::with_prefix("m", handle)),
        Node::From(handle) => single(Term::with_prefix("a", handle)),
        Node::To(handle) => single(Term::with_prefix("r", handle)),
        Node::Lang(lang) => single(Term::with_prefix("l", lang)),
        Node::Filter(filter) => single(Term::from_raw(match filter {
            Filter::Media => "f:media",
            Filter::Links => "f:links",
            Filter::Retweets => "k:retweet",
            Filter::Replies => "k:reply",
            Filter::Quote => "k:quote",
        })),
        Node::MinRetweets(_) | Node::MinFaves(_) | Node::MinReplies(_) | Node::Since(_) | Node::Until(_) => None,
    }
}

/// The terms a post needs for one query token to match it.
fn token_terms(token: &Token) -> Vec<Term> {
    match token.kind {
        TokenKind::Spaceless => gram_terms_of(&token.text),
        TokenKind::Word | TokenKind::Hangul | TokenKind::Emoji => {
            vec![Term::with_prefix("w", &token.text)]
        }
    }
}

/// The union of two sorted, deduplicated conjunctions.
fn union(left: &[Term], right: &[Term]) -> Vec<Term> {
    let mut merged: Vec<Term> = left.iter().chain(right).cloned().collect();
    merged.sort_unstable();
    merged.dedup();
    merged
}

/// Drops duplicate conjunctions and those that contain another one: a post
/// that satisfies the larger satisfies the smaller, so the smaller suffices.
fn absorb(mut conjunctions: Vec<Vec<Term>>) -> Vec<Vec<Term>> {
    conjunctions.sort_by(|left, right| left.len().cmp(&right.len()).then_with(|| left.cmp(right)));
    conjunctions.dedup();
    let mut kept: Vec<Vec<Term>> = Vec::with_capacity(conjunctions.len());
    for conjunction in conjunctions {
        let subsumed = kept.iter().any(|smaller| smaller.iter().all(|term| conjunction.binary_search(term).is_ok()));
        if !subsumed {
            kept.push(conjunction);
        }
    }
    kept
}
