//! Deck's column query language: one parser and one matcher serve both
//! history queries (through the store's index) and live matching (through the
//! percolator), so a column shows the same posts either way.
//!
//! * [`Query::parse`] turns text such as `방탄소년단 OR #bts -filter:retweets`
//!   into a tree, or a [`ParseError`] that points at the mistake.
//! * [`Doc::new`] prepares a post once (normalized tokens, sorted sets);
//!   [`Query::matches_doc`] then checks it without allocating.
//! * [`Doc::terms`] lists the index terms of a post, and [`Query::plan`] says
//!   which terms a post must carry to possibly match.
//!
//! **Index invariant:** if `query.matches_doc(&doc)`, then `query.plan()` is
//! [`Plan::All`] or one of its conjunctions is contained in `doc.terms()`.
//! The store fetches candidates from posting lists by the plan and verifies
//! each with [`Query::matches_doc`]; the percolator files each query under one
//! term of each conjunction.
//!
//! The language itself is described for users in `docs/query-language.md`.

mod doc;
mod korean;
mod node;
mod parse;
mod plan;
mod tokenize;

pub use doc::{Doc, Term};
pub use plan::{Plan, TermConjunction};

use node::Node;

/// The limits on a query, each refused with a [`ParseError`] (HTTP 400, a
/// WebSocket error frame): characters, nesting depth, search terms, and the
/// planner's expansion (conjunctions once the `OR`s are multiplied out, and
/// terms over all of them). Parsing and planning a query stay well under a
/// millisecond within them.
pub mod limits {
    pub use crate::parse::{MAX_DEPTH, MAX_QUERY_CHARS, MAX_TERMS};
    /// Conjunctions in a query's plan: one posting-list scan each in the
    /// store, one anchor each in the percolator.
    pub const MAX_PLAN_CONJUNCTIONS: usize = 64;
    /// Terms over all conjunctions of a plan.
    pub const MAX_PLAN_TERMS: usize = 1_024;
}

use limits::{MAX_PLAN_CONJUNCTIONS, MAX_PLAN_TERMS};

/// A mistake in query text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position})")]
pub struct ParseError {
    /// What is wrong, in words meant for the person who typed the query.
    pub message: String,
    /// 0-based character (Unicode scalar value) offset of the offending token.
    pub position: usize,
}

/// A parsed column query.
#[derive(Clone, Debug)]
pub struct Query {
    text: String,
    root: Node,
}

impl Query {
    /// Parses query text (see `docs/query-language.md`).
    pub fn parse(text: &str) -> Result<Query, ParseError> {
        let root = parse::parse(text)?;
        if let Plan::AnyOf(conjunctions) = Plan::of(&root) {
            let n_terms: usize = conjunctions.iter().map(Vec::len).sum();
            if conjunctions.len() > MAX_PLAN_CONJUNCTIONS || n_terms > MAX_PLAN_TERMS {
                return Err(ParseError {
                    message: format!(
                        "this query has too many alternatives (at most {MAX_PLAN_CONJUNCTIONS} once its ORs are \
                         multiplied out): use fewer ORs inside parentheses"
                    ),
                    position: 0,
                });
            }
        }
        Ok(Query { text: text.to_string(), root })
    }

    /// Whether the post matches. Prepares a [`Doc`] first; to match one post
    /// against many queries, build the `Doc` once and use [`Query::matches_doc`].
    pub fn matches(&self, post: &model::StoredPost) -> bool {
        self.matches_doc(&Doc::new(post))
    }

    /// Whether the prepared post matches.
    pub fn matches_doc(&self, doc: &Doc) -> bool {
        self.root.matches(doc)
    }

    /// Which index terms a post must carry to possibly match.
    pub fn plan(&self) -> Plan {
        Plan::of(&self.root)
    }

    /// The query as terms a post must and must not carry, when it is that
    /// simple (`#bts`, `from:jimin`, `bts army`, `#bts lang:ko`,
    /// `army -filter:retweets`: most columns). Then a post matches exactly
    /// when its terms ([`Doc::for_each_term`]) include every required term
    /// and no forbidden one, so a percolator can skip the matcher.
    pub fn term_conjunction(&self) -> Option<TermConjunction> {
        Plan::term_conjunction(&self.root)
    }

    /// The query text as given to [`Query::parse`].
    pub fn text(&self) -> &str {
        &self.text
    }
}
