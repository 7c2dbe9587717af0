//! The query tree and how each node matches a [`Doc`].

use crate::doc::{Doc, contains_sorted};
use crate::korean;
use crate::tokenize::{Token, TokenKind};

/// A `filter:` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    Media,
    Links,
    Retweets,
    Replies,
    Quote,
}

/// One node of a parsed query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    /// All children match (never empty).
    And(Vec<Node>),
    /// Some child matches (never empty).
    Or(Vec<Node>),
    Not(Box<Node>),
    /// A query word that is one token: a word, Hangul word or emoji (matched
    /// against the post's word set), or a run of a spaceless script (matched as
    /// a substring).
    Word(Token),
    /// Two or more tokens that must follow each other.
    Phrase(Box<[Token]>),
    Hashtag(Box<str>),
    Cashtag(Box<str>),
    Mention(Box<str>),
    From(Box<str>),
    To(Box<str>),
    Lang(Box<str>),
    Filter(Filter),
    MinRetweets(u64),
    MinFaves(u64),
    MinReplies(u64),
    /// Posted at or after this time (ms since the epoch).
    Since(i64),
    /// Posted before this time (ms since the epoch).
    Until(i64),
}

impl Node {
    pub(crate) fn matches(&self, doc: &Doc) -> bool {
        match self {
            Node::And(children) => children.iter().all(|child| child.matches(doc)),
            Node::Or(children) => children.iter().any(|child| child.matches(doc)),
            Node::Not(child) => !child.matches(doc),
            Node::Word(token) => match token.kind {
                TokenKind::Spaceless => doc.has_in_run(&token.text),
                TokenKind::Word | TokenKind::Hangul | TokenKind::Emoji => doc.has_word(&token.text),
            },
            Node::Phrase(tokens) => phrase_matches(tokens, doc),
            Node::Hashtag(hashtag) => contains_sorted(&doc.hashtags, hashtag),
            Node::Cashtag(cashtag) => contains_sorted(&doc.cashtags, cashtag),
            Node::Mention(handle) => contains_sorted(&doc.mentions, handle),
            Node::From(handle) => doc.author == *handle,
            Node::To(handle) => doc.reply_to.as_ref() == Some(handle),
            Node::Lang(lang) => doc.lang.as_ref() == Some(lang) || doc.lang_primary.as_ref() == Some(lang),
            Node::Filter(filter) => match filter {
                Filter::Media => doc.has_media,
                Filter::Links => doc.has_links,
                Filter::Retweets => doc.is_retweet,
                Filter::Replies => doc.is_reply,
                Filter::Quote => doc.is_quote,
            },
            Node::MinRetweets(min) => doc.retweets >= *min,
            Node::MinFaves(min) => doc.likes >= *min,
            Node::MinReplies(min) => doc.replies >= *min,
            Node::Since(ms) => doc.created_ms >= *ms,
            Node::Until(ms) => doc.created_ms < *ms,
        }
    }
}

/// A phrase matches where its tokens follow each other in one sequence (the
/// text, a link or a hashtag). Inside the phrase tokens must be equal; at its
/// edges the text may go on: a spaceless run may start before the first token
/// and go on after the last, and the last Hangul token may carry a particle.
fn phrase_matches(tokens: &[Token], doc: &Doc) -> bool {
    // Cheap rejection before the scan: every inner word must be a word of the post.
    let all_words_present = tokens.iter().all(|token| match token.kind {
        TokenKind::Spaceless => true,
        _ => doc.has_word(&token.text),
    });
    if !all_words_present {
        return false;
    }
    let n_tokens = tokens.len();
    doc.sequences.iter().any(|sequence| {
        sequence.len() >= n_tokens
            && sequence.windows(n_tokens).any(|window| {
                window.iter().zip(tokens).enumerate().all(|(token_idx, (post_token, query_token))| {
                    token_matches(post_token, query_token, token_idx == 0, token_idx + 1 == n_tokens)
                })
            })
    })
}

fn token_matches(post_token: &Token, query_token: &Token, is_first: bool, is_last: bool) -> bool {
    if post_token.kind != query_token.kind {
        return false;
    }
    let post_text = &*post_token.text;
    let query_text = &*query_token.text;
    match query_token.kind {
        TokenKind::Spaceless => match (is_first, is_last) {
            (true, true) => post_text.contains(query_text),
            (true, false) => post_text.ends_with(query_text),
            (false, true) => post_text.starts_with(query_text),
            (false, false) => post_text == query_text,
        },
        TokenKind::Hangul if is_last => {
            post_text == query_text || post_text.strip_prefix(query_text).is_some_and(korean::is_particle_ending)
        }
        TokenKind::Hangul | TokenKind::Word | TokenKind::Emoji => post_text == query_text,
    }
}
