//! The query parser: text → [`Node`] tree, with errors that point at the
//! offending character.
//!
//! Grammar (OR binds tighter than AND, as on Twitter):
//!
//! ```text
//! query   := and EOF
//! and     := or ( "AND"? or )*
//! or      := unary ( "OR" unary )*
//! unary   := "-"? primary
//! primary := "(" and ")" | "\"" phrase "\"" | word | operator
//! ```
//!
//! Positions are counted in characters (Unicode scalar values) of the query.
//! Full-width punctuation (`（`, `＂`, `－`, `＃`, `：`) and typographic quotes
//! (`“…”`) work like their ASCII forms, since phone keyboards produce them.

use chrono::{NaiveDate, NaiveTime};

use crate::ParseError;
use crate::node::{Filter, Node};
use crate::tokenize::{self, Token, is_word_char};

/// Longer queries are refused: they cost matching time on every post.
pub const MAX_QUERY_CHARS: usize = 2_000;

/// Deeper nesting is refused so that recursion stays bounded.
pub const MAX_DEPTH: usize = 32;

/// More search terms (words, phrases, operators; negated ones too) are
/// refused: each costs matching time on every post, and planning grows with
/// their number.
pub const MAX_TERMS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LexKind {
    Open,
    Close,
    Word,
    Phrase,
    Or,
    And,
}

#[derive(Debug)]
struct Lexeme {
    kind: LexKind,
    /// Where the atom starts, after any `-`.
    position: usize,
    negated: bool,
    /// The original characters of a word, or the inside of a phrase.
    chars: Vec<char>,
}

/// Maps full-width ASCII forms to ASCII for the lexer's decisions only; the
/// text of words keeps its original characters until normalization.
fn lex_char(c: char) -> char {
    match u32::from(c) {
        0xFF01..=0xFF5E => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”' | '„')
}

fn error(message: impl Into<String>, position: usize) -> ParseError {
    ParseError { message: message.into(), position }
}

fn lex(chars: &[char]) -> Result<Vec<Lexeme>, ParseError> {
    let mut lexemes = Vec::new();
    let mut char_idx = 0;
    while char_idx < chars.len() {
        let c = lex_char(chars[char_idx]);
        if c.is_whitespace() {
            char_idx += 1;
            continue;
        }
        let mut negated = false;
        if c == '-' {
            let next = chars.get(char_idx + 1).copied().map(lex_char);
            if next.is_some_and(|next| !next.is_whitespace() && next != ')') {
                negated = true;
                char_idx += 1;
            }
        }
        let position = char_idx;
        let c = lex_char(chars[char_idx]);
        let lexeme = |kind, chars: &[char]| Lexeme { kind, position, negated, chars: chars.to_vec() };
        if c == '(' {
            lexemes.push(lexeme(LexKind::Open, &[]));
            char_idx += 1;
        } else if c == ')' {
            lexemes.push(lexeme(LexKind::Close, &[]));
            char_idx += 1;
        } else if is_quote(c) {
            let inside_start = char_idx + 1;
            let Some(length) = chars[inside_start..].iter().position(|&c| is_quote(lex_char(c))) else {
                return Err(error("this quote is never closed", position));
            };
            lexemes.push(lexeme(LexKind::Phrase, &chars[inside_start..inside_start + length]));
            char_idx = inside_start + length + 1;
        } else {
            let length = chars[char_idx..]
                .iter()
                .map(|&c| lex_char(c))
                .position(|c| c.is_whitespace() || c == ')' || is_quote(c))
                .unwrap_or(chars.len() - char_idx);
            let word = &chars[char_idx..char_idx + length];
            let kind = match word {
                ['O', 'R'] if !negated => LexKind::Or,
                ['A', 'N', 'D'] if !negated => LexKind::And,
                _ => LexKind::Word,
            };
            lexemes.push(lexeme(kind, word));
            char_idx += length;
        }
    }
    Ok(lexemes)
}

/// Parses query text. Returns the tree, or the first mistake.
pub(crate) fn parse(text: &str) -> Result<Node, ParseError> {
    let too_long = || error(format!("the query is too long (at most {MAX_QUERY_CHARS} characters)"), MAX_QUERY_CHARS);
    // A character is at most 4 bytes: a longer text is refused before any work.
    if text.len() > 4 * MAX_QUERY_CHARS {
        return Err(too_long());
    }
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return Err(too_long());
    }
    let lexemes = lex(&chars)?;
    if lexemes.is_empty() {
        return Err(error("the query is empty", 0));
    }
    if let Some(lexeme) =
        lexemes.iter().filter(|lexeme| matches!(lexeme.kind, LexKind::Word | LexKind::Phrase)).nth(MAX_TERMS)
    {
        return Err(error(format!("too many search terms (at most {MAX_TERMS})"), lexeme.position));
    }
    let mut parser = Parser { lexemes: &lexemes, next_idx: 0, first_ignored: None };
    let children = parser.parse_and(0)?;
    if let Some(unmatched) = parser.peek() {
        // parse_and only stops early at a ')'.
        return Err(error("this ')' has no matching '('", unmatched.position));
    }
    match combine_and(children) {
        Some(root) => Ok(root),
        None => Err(error(
            "nothing to search for: use words, #hashtags, @names or operators",
            parser.first_ignored.unwrap_or(0),
        )),
    }
}

struct Parser<'a> {
    lexemes: &'a [Lexeme],
    next_idx: usize,
    /// Where the first term with nothing searchable in it (such as `!!`) was.
    first_ignored: Option<usize>,
}

/// A parsed term; `None` is a term with nothing searchable in it, which is
/// left out.
type Parsed = Option<Node>;

impl Parser<'_> {
    fn peek(&self) -> Option<&Lexeme> {
        self.lexemes.get(self.next_idx)
    }

    fn peek_kind(&self) -> Option<LexKind> {
        self.peek().map(|lexeme| lexeme.kind)
    }

    fn advance(&mut self) -> Option<&Lexeme> {
        let lexeme = self.lexemes.get(self.next_idx);
        self.next_idx += 1;
        lexeme
    }

    fn starts_term(kind: Option<LexKind>) -> bool {
        matches!(kind, Some(LexKind::Open | LexKind::Word | LexKind::Phrase))
    }

    fn parse_and(&mut self, depth: usize) -> Result<Vec<Parsed>, ParseError> {
        let mut children = Vec::new();
        while let Some(lexeme) = self.peek() {
            match lexeme.kind {
                LexKind::Close => break,
                LexKind::Or => {
                    return Err(error("OR needs a search term before it", lexeme.position));
                }
                LexKind::And => {
                    let position = lexeme.position;
                    if children.is_empty() {
                        return Err(error("AND needs a search term before it", position));
                    }
                    self.advance();
                    if !Self::starts_term(self.peek_kind()) {
                        return Err(error("AND needs a search term after it", position));
                    }
                }
                LexKind::Open | LexKind::Word | LexKind::Phrase => {
                    children.push(self.parse_or(depth)?);
                }
            }
        }
        Ok(children)
    }

    fn parse_or(&mut self, depth: usize) -> Result<Parsed, ParseError> {
        let mut alternatives = vec![self.parse_unary(depth)?];
        while let Some(lexeme) = self.peek().filter(|lexeme| lexeme.kind == LexKind::Or) {
            let position = lexeme.position;
            self.advance();
            if !Self::starts_term(self.peek_kind()) {
                return Err(error("OR needs a search term after it", position));
            }
            alternatives.push(self.parse_unary(depth)?);
        }
        Ok(combine_or(alternatives))
    }

    fn parse_unary(&mut self, depth: usize) -> Result<Parsed, ParseError> {
        let lexemes = self.lexemes;
        let Some(lexeme) = lexemes.get(self.next_idx) else {
            return Err(error("a search term is missing at the end", 0));
        };
        self.next_idx += 1;
        let parsed = match lexeme.kind {
            LexKind::Open => {
                if depth >= MAX_DEPTH {
                    return Err(error("too many nested parentheses", lexeme.position));
                }
                let children = self.parse_and(depth + 1)?;
                if self.advance().map(|close| close.kind) != Some(LexKind::Close) {
                    return Err(error("this '(' is never closed", lexeme.position));
                }
                if children.is_empty() {
                    return Err(error("these parentheses are empty", lexeme.position));
                }
                combine_and(children)
            }
            LexKind::Phrase => {
                let text: String = lexeme.chars.iter().collect();
                tokens_node(&tokenize::normalize(&text))
            }
            LexKind::Word => word_node(lexeme)?,
            LexKind::Close | LexKind::Or | LexKind::And => {
                // parse_and and parse_or only call here in front of a term.
                return Err(error("a search term is missing here", lexeme.position));
            }
        };
        if parsed.is_none() && self.first_ignored.is_none() {
            self.first_ignored = Some(lexeme.position);
        }
        Ok(parsed.map(|node| if lexeme.negated { negate(node) } else { node }))
    }
}

fn negate(node: Node) -> Node {
    match node {
        Node::Not(inner) => *inner,
        other => Node::Not(Box::new(other)),
    }
}

fn combine_and(children: Vec<Parsed>) -> Parsed {
    let mut flat = Vec::with_capacity(children.len());
    for child in children.into_iter().flatten() {
        match child {
            Node::And(grandchildren) => flat.extend(grandchildren),
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => None,
        1 => flat.pop(),
        _ => Some(Node::And(flat)),
    }
}

fn combine_or(alternatives: Vec<Parsed>) -> Parsed {
    let mut flat = Vec::with_capacity(alternatives.len());
    for alternative in alternatives.into_iter().flatten() {
        match alternative {
            Node::Or(grandchildren) => flat.extend(grandchildren),
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => None,
        1 => flat.pop(),
        _ => Some(Node::Or(flat)),
    }
}

/// A word or phrase: one token is a word, several are a phrase, none (only
/// punctuation) is nothing to search for.
fn tokens_node(normalized: &str) -> Parsed {
    let mut tokens: Vec<Token> = Vec::new();
    tokenize::tokenize(normalized, &mut tokens);
    match tokens.len() {
        0 => None,
        1 => tokens.pop().map(Node::Word),
        _ => Some(Node::Phrase(tokens.into_boxed_slice())),
    }
}

/// A word: `#hashtag`, `@mention`, `$cashtag`, `operator:value` or a plain word.
fn word_node(lexeme: &Lexeme) -> Result<Parsed, ParseError> {
    let lexed: Vec<char> = lexeme.chars.iter().map(|&c| lex_char(c)).collect();
    let after_first: String = lexeme.chars.iter().skip(1).collect();
    match lexed.first() {
        Some('#') => {
            let normalized = tokenize::normalize(&after_first);
            let hashtag: String = normalized.chars().take_while(|&c| is_word_char(c)).collect();
            if !hashtag.is_empty() {
                return Ok(Some(Node::Hashtag(hashtag.into())));
            }
        }
        Some('@') => {
            let normalized = tokenize::normalize(&after_first);
            let handle = normalized.trim_end_matches(|c: char| !(is_word_char(c)));
            if !handle.is_empty() {
                return Ok(Some(Node::Mention(handle.into())));
            }
        }
        Some('$') if lexed.get(1).is_some_and(|c| c.is_alphabetic()) => {
            let normalized = tokenize::normalize(&after_first);
            let cashtag: String = normalized.chars().take_while(|&c| is_word_char(c)).collect();
            return Ok(Some(Node::Cashtag(cashtag.into())));
        }
        _ => {}
    }
    if let Some(colon_idx) = lexed.iter().position(|&c| c == ':') {
        let name: String = lexed[..colon_idx].iter().collect::<String>().to_ascii_lowercase();
        let value: String = lexeme.chars[colon_idx + 1..].iter().collect();
        let value_position = lexeme.position + colon_idx + 1;
        if let Some(node) = operator_node(&name, &value, lexeme.position, value_position)? {
            return Ok(Some(node));
        }
    }
    let text: String = lexeme.chars.iter().collect();
    let normalized = tokenize::normalize(&text);
    if tokenize::looks_like_link(&normalized) {
        return Ok(tokens_node(tokenize::strip_link_prefix(&normalized)));
    }
    Ok(tokens_node(&normalized))
}

/// An operator, or `None` when `name` is not one (the word is then searched
/// as text, as Twitter does with unknown operators).
fn operator_node(name: &str, value: &str, position: usize, value_position: usize) -> Result<Option<Node>, ParseError> {
    const KNOWN: &[&str] =
        &["from", "to", "lang", "filter", "min_retweets", "min_faves", "min_likes", "min_replies", "since", "until"];
    if !KNOWN.contains(&name) {
        return Ok(None);
    }
    let value = tokenize::normalize(value);
    if value.is_empty() {
        return Err(error(format!("{name}: needs a value"), position));
    }
    let node = match name {
        "from" | "to" => {
            let handle = value.strip_prefix('@').unwrap_or(&value);
            if handle.is_empty() {
                return Err(error(format!("{name}: needs an account name"), value_position));
            }
            if name == "from" { Node::From(handle.into()) } else { Node::To(handle.into()) }
        }
        "lang" => {
            let lang = value.replace('_', "-");
            let well_formed = lang.starts_with(|c: char| c.is_ascii_alphabetic())
                && lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !well_formed {
                return Err(error("lang: needs a language code such as ko or en", value_position));
            }
            Node::Lang(lang.into())
        }
        "filter" => Node::Filter(match value.as_str() {
            "media" | "images" | "videos" | "native_video" => Filter::Media,
            "links" => Filter::Links,
            "retweets" | "nativeretweets" => Filter::Retweets,
            "replies" => Filter::Replies,
            "quote" | "quotes" => Filter::Quote,
            _ => {
                return Err(error(
                    format!("unknown filter {value:?}: use media, links, retweets, replies or quote"),
                    value_position,
                ));
            }
        }),
        "min_retweets" | "min_faves" | "min_likes" | "min_replies" => {
            let Ok(min) = value.parse::<u64>() else {
                return Err(error(format!("{name}: needs a whole number"), value_position));
            };
            match name {
                "min_retweets" => Node::MinRetweets(min),
                "min_replies" => Node::MinReplies(min),
                _ => Node::MinFaves(min),
            }
        }
        _ => {
            // since, until
            let date = NaiveDate::parse_from_str(&value, "%Y-%m-%d").ok().filter(|_| value.len() == "yyyy-mm-dd".len());
            let Some(date) = date else {
                return Err(error(format!("{name}: needs a date written YYYY-MM-DD"), value_position));
            };
            let ms = date.and_time(NaiveTime::MIN).and_utc().timestamp_millis();
            if name == "since" { Node::Since(ms) } else { Node::Until(ms) }
        }
    };
    Ok(Some(node))
}
