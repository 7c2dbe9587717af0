//! [`Doc`]: everything the matcher needs from one post, prepared once, and the
//! index [`Term`]s the store and the percolator file the post under.

use std::fmt;

use model::{Kind, StoredPost};

use crate::korean;
use crate::tokenize::{self, Token, TokenKind};

/// One index term: a short prefix saying what it is about, a colon, and the
/// normalized value. Every post has the term `*` ([`Term::all`]).
///
/// | term | the post… |
/// |---|---|
/// | `w:bts` | has the word (or Korean stem, or emoji) in its text, links or hashtags |
/// | `g:방탄`, `g:新` | has the character bigram (or single character) in a run of Japanese, Chinese, Thai… |
/// | `h:bts` | has the hashtag |
/// | `c:tsla` | has the cashtag |
/// | `m:bts_twt` | mentions the account |
/// | `a:jimin` | was posted by the account (for a retweet: the retweeter) |
/// | `r:jimin` | replies to the account |
/// | `l:ko`, `l:ko-kr` | is in the language (full tag and primary subtag) |
/// | `k:retweet`, `k:reply`, `k:quote` | is a retweet; its content is a reply; its content quotes a post |
/// | `f:media`, `f:links` | its content has media; has links |
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Term(Box<str>);

impl Term {
    /// The term every post has.
    pub fn all() -> Term {
        Term("*".into())
    }

    /// A term read back from storage, as [`Term::as_str`] wrote it.
    pub fn from_raw(raw: impl Into<Box<str>>) -> Term {
        Term(raw.into())
    }

    pub(crate) fn with_prefix(prefix: &str, value: &str) -> Term {
        let mut raw = String::with_capacity(prefix.len() + 1 + value.len());
        raw.push_str(prefix);
        raw.push(':');
        raw.push_str(value);
        Term(raw.into_boxed_str())
    }

    /// The compact text form, e.g. `w:bts`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A rough rank of how few posts carry a term of this kind (lower: rarer),
    /// used to put the most selective term of a conjunction first.
    pub(crate) fn rarity_rank(&self) -> u8 {
        match self.0.split(':').next().unwrap_or("") {
            "a" | "r" | "m" | "c" => 0,
            "h" => 1,
            "w" | "g" => 2,
            "l" => 3,
            "k" | "f" => 4,
            _ => 5,
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One post, prepared for matching: normalized tokens and sorted sets, so that
/// matching a query allocates nothing.
///
/// Content (text, links, hashtags, mentions, language, media, counts, reply
/// and quote) comes from [`StoredPost::content`], the original for a retweet.
/// The author, whether the post is a retweet, and the time are the post's own.
#[derive(Clone, Debug)]
pub struct Doc {
    /// Token sequences for phrases: the text (links removed), then each
    /// link, then each hashtag.
    pub(crate) sequences: Vec<Vec<Token>>,
    /// Sorted, deduplicated: every word, Hangul and emoji token of every
    /// sequence, plus the stem of every Hangul token that ends in a particle.
    pub(crate) words: Vec<Box<str>>,
    /// Sorted, deduplicated runs of spaceless scripts.
    pub(crate) runs: Vec<Box<str>>,
    pub(crate) hashtags: Vec<Box<str>>,
    pub(crate) cashtags: Vec<Box<str>>,
    pub(crate) mentions: Vec<Box<str>>,
    pub(crate) author: Box<str>,
    pub(crate) reply_to: Option<Box<str>>,
    pub(crate) lang: Option<Box<str>>,
    pub(crate) lang_primary: Option<Box<str>>,
    pub(crate) is_retweet: bool,
    pub(crate) is_reply: bool,
    pub(crate) is_quote: bool,
    pub(crate) has_media: bool,
    pub(crate) has_links: bool,
    pub(crate) retweets: u64,
    pub(crate) likes: u64,
    pub(crate) replies: u64,
    pub(crate) created_ms: i64,
}

impl Doc {
    /// Prepares a post for matching.
    pub fn new(stored: &StoredPost) -> Doc {
        let post = &stored.post;
        let content = stored.content();
        // A retweet whose original is not stored only has its own `RT @x: …`
        // text; the prefix is not content.
        let orphan_retweet = content.kind == Kind::Retweet;
        let (text, retweeted_handle) =
            if orphan_retweet { strip_retweet_prefix(&content.text) } else { (content.text.as_str(), None) };

        let mut sequences = Vec::with_capacity(1 + content.urls.len() + content.hashtags.len());
        let normalized_text = normalize_text(text);
        let mut text_tokens = Vec::new();
        tokenize::tokenize(&tokenize::remove_links(&normalized_text), &mut text_tokens);
        sequences.push(text_tokens);
        for url in &content.urls {
            let mut url_tokens = Vec::new();
            tokenize::tokenize(tokenize::strip_link_prefix(&tokenize::normalize(url)), &mut url_tokens);
            sequences.push(url_tokens);
        }
        let hashtags = normalized_set(&content.hashtags, '#');
        for hashtag in &hashtags {
            let mut hashtag_tokens = Vec::new();
            tokenize::tokenize(hashtag, &mut hashtag_tokens);
            sequences.push(hashtag_tokens);
        }

        let mut words = Vec::new();
        let mut runs = Vec::new();
        for token in sequences.iter().flatten() {
            match token.kind {
                TokenKind::Spaceless => runs.push(token.text.clone()),
                TokenKind::Hangul => {
                    korean::for_each_stem(&token.text, |stem| words.push(stem.into()));
                    words.push(token.text.clone());
                }
                TokenKind::Word | TokenKind::Emoji => words.push(token.text.clone()),
            }
        }
        words.sort_unstable();
        words.dedup();
        runs.sort_unstable();
        runs.dedup();

        let mut mentions: Vec<Box<str>> = content.mentions.iter().map(|mention| normalize_name(mention, '@')).collect();
        if let Some(handle) = retweeted_handle {
            // The prefix's mention is not content either; the same account
            // mentioned again in the text stays.
            let handle = normalize_name(handle, '@');
            if let Some(prefix_idx) = mentions.iter().position(|mention| *mention == handle) {
                mentions.remove(prefix_idx);
            }
        }
        mentions.sort_unstable();
        mentions.dedup();

        let lang = content
            .lang
            .as_deref()
            .map(|lang| tokenize::normalize(lang.trim()).replace('_', "-"))
            .filter(|lang| !lang.is_empty());
        let lang_primary = lang.as_deref().and_then(|lang| lang.split_once('-')).map(|(primary, _)| primary.into());

        Doc {
            sequences,
            words,
            runs,
            cashtags: normalized_set(&content.cashtags, '$'),
            hashtags,
            mentions,
            author: normalize_name(&post.author.handle, '@'),
            reply_to: content
                .reply_to
                .as_ref()
                .and_then(|reply_to| reply_to.handle.as_deref())
                .map(|handle| normalize_name(handle, '@'))
                .filter(|handle| !handle.is_empty()),
            lang: lang.map(String::into_boxed_str),
            lang_primary,
            is_retweet: post.kind == Kind::Retweet,
            is_reply: content.kind == Kind::Reply || content.reply_to.is_some(),
            is_quote: content.kind == Kind::Quote || content.quoted_id.is_some(),
            has_media: content.has_media,
            has_links: !content.urls.is_empty(),
            retweets: content.counts.retweets,
            likes: content.counts.likes,
            replies: content.counts.replies,
            created_ms: post.created_at.timestamp_millis(),
        }
    }

    /// The deduplicated index terms of this post, sorted. Whenever a query
    /// matches this post, one conjunction of the query's [`crate::Plan`] is
    /// contained in these terms (or the plan is [`crate::Plan::All`]).
    pub fn terms(&self) -> Vec<Term> {
        let mut terms = Vec::new();
        self.for_each_term(|term| terms.push(Term::from_raw(term)));
        terms.sort_unstable();
        terms.dedup();
        terms
    }

    /// Calls `f` with the text of each index term of this post (as
    /// [`Term::as_str`] gives it), without allocating a `Term` for each.
    /// Unsorted; a term may come more than once (character grams).
    pub fn for_each_term(&self, mut f: impl FnMut(&str)) {
        f("*");
        let mut scratch = String::with_capacity(64);
        let mut with_prefix = |prefix: &str, value: &str| {
            scratch.clear();
            scratch.push_str(prefix);
            scratch.push(':');
            scratch.push_str(value);
            f(&scratch);
        };
        for word in &self.words {
            with_prefix("w", word);
        }
        for run in &self.runs {
            for_each_gram(run, |gram| with_prefix("g", gram));
        }
        for hashtag in &self.hashtags {
            with_prefix("h", hashtag);
        }
        for cashtag in &self.cashtags {
            with_prefix("c", cashtag);
        }
        for mention in &self.mentions {
            with_prefix("m", mention);
        }
        if !self.author.is_empty() {
            with_prefix("a", &self.author);
        }
        if let Some(reply_to) = &self.reply_to {
            with_prefix("r", reply_to);
        }
        if let Some(lang) = &self.lang {
            with_prefix("l", lang);
        }
        if let Some(primary) = &self.lang_primary {
            with_prefix("l", primary);
        }
        let flags = [
            (self.is_retweet, "k", "retweet"),
            (self.is_reply, "k", "reply"),
            (self.is_quote, "k", "quote"),
            (self.has_media, "f", "media"),
            (self.has_links, "f", "links"),
        ];
        for (_, prefix, value) in flags.into_iter().filter(|(set, _, _)| *set) {
            with_prefix(prefix, value);
        }
    }

    pub(crate) fn has_word(&self, word: &str) -> bool {
        contains_sorted(&self.words, word)
    }

    pub(crate) fn has_in_run(&self, needle: &str) -> bool {
        self.runs.iter().any(|run| run.contains(needle))
    }
}

/// The grams of a run of a spaceless script: every single character and every
/// pair of neighbouring characters. A query substring of one character needs
/// the unigram; a longer one needs all of its bigrams.
fn for_each_gram(run: &str, mut f: impl FnMut(&str)) {
    let mut previous_start: Option<usize> = None;
    for (byte_idx, c) in run.char_indices() {
        let end = byte_idx + c.len_utf8();
        f(&run[byte_idx..end]);
        if let Some(previous_start) = previous_start {
            f(&run[previous_start..end]);
        }
        previous_start = Some(byte_idx);
    }
}

/// The terms a query substring of a spaceless script needs (see `for_each_gram`).
pub(crate) fn gram_terms_of(needle: &str) -> Vec<Term> {
    let chars: Vec<(usize, char)> = needle.char_indices().collect();
    if chars.len() == 1 {
        return vec![Term::with_prefix("g", needle)];
    }
    let mut terms: Vec<Term> = chars
        .windows(2)
        .map(|pair| {
            let (start, _) = pair[0];
            let (second_start, second) = pair[1];
            Term::with_prefix("g", &needle[start..second_start + second.len_utf8()])
        })
        .collect();
    terms.sort_unstable();
    terms.dedup();
    terms
}

pub(crate) fn contains_sorted(sorted: &[Box<str>], needle: &str) -> bool {
    sorted.binary_search_by(|item| (**item).cmp(needle)).is_ok()
}

/// Decodes the HTML entities X leaves in tweet text, then normalizes.
fn normalize_text(text: &str) -> String {
    if text.contains('&') {
        let decoded = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&");
        tokenize::normalize(&decoded)
    } else {
        tokenize::normalize(text)
    }
}

/// A handle, hashtag or cashtag, normalized, without its sigil.
pub(crate) fn normalize_name(name: &str, sigil: char) -> Box<str> {
    let normalized = tokenize::normalize(name.trim());
    normalized.strip_prefix(sigil).unwrap_or(&normalized).into()
}

fn normalized_set(names: &[String], sigil: char) -> Vec<Box<str>> {
    let mut set: Vec<Box<str>> =
        names.iter().map(|name| normalize_name(name, sigil)).filter(|name| !name.is_empty()).collect();
    set.sort_unstable();
    set.dedup();
    set
}

/// Splits `RT @name: ` off a retweet's text, returning the rest and the name.
fn strip_retweet_prefix(text: &str) -> (&str, Option<&str>) {
    let Some(after_at) = text.strip_prefix("RT @") else {
        return (text, None);
    };
    let Some(colon_idx) = after_at.find(':') else {
        return (text, None);
    };
    let handle = &after_at[..colon_idx];
    let is_handle =
        !handle.is_empty() && handle.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'));
    if !is_handle {
        return (text, None);
    }
    (after_at[colon_idx + 1..].trim_start(), Some(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retweet_prefix() {
        assert_eq!(strip_retweet_prefix("RT @bts_twt: 안녕"), ("안녕", Some("bts_twt")));
        assert_eq!(strip_retweet_prefix("RT @a.bsky.social:hi"), ("hi", Some("a.bsky.social")));
        assert_eq!(strip_retweet_prefix("RT this: now"), ("RT this: now", None));
        assert_eq!(strip_retweet_prefix("hello"), ("hello", None));
    }

    #[test]
    fn gram_terms() {
        let raw = |terms: Vec<Term>| terms.iter().map(|t| t.as_str().to_string()).collect::<Vec<_>>();
        assert_eq!(raw(gram_terms_of("新")), ["g:新"]);
        assert_eq!(raw(gram_terms_of("新曲")), ["g:新曲"]);
        assert_eq!(raw(gram_terms_of("ああああ")), ["g:ああ"]);
        let mut terms = Vec::new();
        for_each_gram("新曲だ", |gram| terms.push(Term::with_prefix("g", gram)));
        assert_eq!(raw(terms), ["g:新", "g:曲", "g:新曲", "g:だ", "g:曲だ"]);
    }
}
