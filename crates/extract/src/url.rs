//! URL scanner: twitter-text's `extractUrl` regex and `extractUrlsWithIndices`
//! post-processing, hand-written so that no regex with ~1,600 TLD
//! alternatives runs per post.
//!
//! A URL is: a preceding character (or the start of the text), an optional
//! `http://`/`https://`, a domain (subdomains, a domain name and a known TLD
//! that is not followed by a letter or digit), an optional port, path and
//! query. The regex's backtracking is reproduced where it decides the result:
//! the most subdomains first, the path up to its last allowed ending
//! character, the query likewise. All positions are byte offsets.

use crate::Span;
use crate::chars::{
    continues_tld, is_domain_char, is_invalid, is_latin_accent, is_url_path_char, is_url_path_ending_char,
    is_url_query_char, is_url_query_ending_char,
};
use crate::punycode;
use crate::tlds::{MAX_TLD_CHARS, TLDS};

const MAX_URL_LENGTH: usize = 4096;
const MAX_TCO_SLUG_LENGTH: usize = 40;
const MAX_DOMAIN_LABEL_LENGTH: usize = 63;
const DEFAULT_PROTOCOL_LENGTH: usize = "https://".len();

/// One match of the URL pattern, before validation.
struct UrlMatch {
    start: usize,
    protocol_len: usize,
    domain_start: usize,
    domain_end: usize,
    has_path: bool,
    end: usize,
}

/// Finds every URL in order of appearance.
pub(crate) fn scan(text: &str, spans: &mut Vec<Span>) {
    let mut scanner = Scanner {
        text,
        labels: Vec::new(),
        run_cache: [LabelRun::default(); 2],
        tld_memo: Vec::new(),
        dead_domain_starts: Vec::new(),
    };
    // Where the regex resumes searching: the end of its previous match.
    let mut search_from = 0;
    while let Some((before, found)) = scanner.next_match(search_from) {
        search_from = found.end;
        let url = &text[found.start..found.end];
        let domain = &text[found.domain_start..found.domain_end];
        let protocol_len = if found.protocol_len == 0 { DEFAULT_PROTOCOL_LENGTH } else { found.protocol_len };
        if !is_valid_domain(domain) || protocol_len + utf16_len(url) > MAX_URL_LENGTH {
            continue;
        }
        if found.protocol_len == 0 {
            // Without a protocol only ASCII domains count (in the middle of
            // CJK text the domain match swallows the preceding words), and
            // not when glued to a word, path or e-mail user by `-_./`.
            if matches!(before, Some('-' | '_' | '.' | '/')) {
                continue;
            }
            let n_before = spans.len();
            let mut position = found.domain_start;
            while position < found.domain_end {
                match match_ascii_domain(&text[..found.domain_end], position) {
                    Some(end) => {
                        spans.push(Span::whole(position, end));
                        position = end;
                    }
                    None => position += char_len_at(text, position),
                }
            }
            if spans.len() > n_before && found.has_path {
                // The path and query follow the last ASCII domain.
                if let Some(last) = spans.last_mut() {
                    last.end = found.end;
                    last.value_end = found.end;
                }
            }
        } else {
            let end = match tco_end(url) {
                Some(Ok(tco_len)) => found.start + tco_len,
                Some(Err(SlugTooLong)) => continue,
                None => found.end,
            };
            spans.push(Span::whole(found.start, end));
        }
    }
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

fn char_len_at(text: &str, position: usize) -> usize {
    text[position..].chars().next().map_or(1, char::len_utf8)
}

/// twitter-text's `idna.toAscii` check: a Punycode domain must be ASCII,
/// and every label must be 1 to 63 characters once encoded.
fn is_valid_domain(domain: &str) -> bool {
    if domain.starts_with("xn--") {
        let mut position = 0;
        let mut any_ascii_domain = false;
        while position < domain.len() {
            if match_ascii_domain(domain, position).is_some() {
                any_ascii_domain = true;
                break;
            }
            position += char_len_at(domain, position);
        }
        if !any_ascii_domain {
            return false;
        }
    }
    domain
        .split('.')
        .all(|label| punycode::ascii_label_len(label).is_some_and(|len| (1..=MAX_DOMAIN_LABEL_LENGTH).contains(&len)))
}

struct SlugTooLong;

/// For a `t.co` link, the length of the URL without anything after the slug
/// but a query; `None` for other hosts.
fn tco_end(url: &str) -> Option<Result<usize, SlugTooLong>> {
    let bytes = url.as_bytes();
    let scheme_len = if starts_with_ignore_case(bytes, b"https://") {
        8
    } else if starts_with_ignore_case(bytes, b"http://") {
        7
    } else {
        return None;
    };
    if !starts_with_ignore_case(&bytes[scheme_len..], b"t.co/") {
        return None;
    }
    let slug_start = scheme_len + 5;
    let slug_len = bytes[slug_start..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
    if slug_len == 0 {
        return None;
    }
    if slug_len > MAX_TCO_SLUG_LENGTH {
        return Some(Err(SlugTooLong));
    }
    let slug_end = slug_start + slug_len;
    if bytes.get(slug_end) == Some(&b'?') {
        if let Some(query_end) = query_end(url, slug_end + 1) {
            return Some(Ok(query_end));
        }
    }
    Some(Ok(slug_end))
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// twitter-text's `validUrlPrecedingChars`.
fn may_precede_url(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || matches!(c, '@' | '\u{ff20}' | '$' | '#' | '\u{ff03}') || is_invalid(c))
}

/// Whether a char may be part of a domain label run (label chars, `-`, `_`).
fn is_label_char(c: char) -> bool {
    c == '-' || c == '_' || is_domain_char(c)
}

struct Scanner<'text> {
    text: &'text str,
    /// Labels of the domain being matched, reused between matches.
    labels: Vec<LabelRun>,
    /// Cache of label runs: every position in `from..end` of an entry has
    /// its run end at `end`. Slot 0 holds the run of a domain's first label,
    /// slot 1 the last of the others, so that trying every start position in
    /// a long run without spaces (CJK text) stays linear.
    run_cache: [LabelRun; 2],
    /// TLD matches by byte position, filled in as the regex would retry them
    /// from each start position: 0 not tried yet, 1 no TLD, `end + 2` a TLD
    /// ending at `end`. Empty until the first TLD is tried.
    tld_memo: Vec<usize>,
    /// Positions where no domain can start: label starts (other than the
    /// first) of a chain of labels that had no TLD after any of them. A
    /// later start in the same chain tries a subset of those TLD positions,
    /// so without this `a.a.a.a…` would be quadratic. Empty until needed.
    dead_domain_starts: Vec<bool>,
}

/// A run of label characters, `from..end`, and the last `_` in it (a domain
/// name, unlike a subdomain, may not contain one).
#[derive(Clone, Copy, Default)]
struct LabelRun {
    from: usize,
    end: usize,
    last_underscore: Option<usize>,
}

impl Scanner<'_> {
    /// The next match of the URL pattern at or after `search_from`, with the
    /// character consumed before it (`None` at the start of the text).
    fn next_match(&mut self, search_from: usize) -> Option<(Option<char>, UrlMatch)> {
        let text = self.text;
        for (offset, c) in text[search_from..].char_indices() {
            let position = search_from + offset;
            if may_precede_url(c) {
                if let Some(found) = self.match_url_at(position + c.len_utf8()) {
                    return Some((Some(c), found));
                }
            }
            if position == 0 {
                if let Some(found) = self.match_url_at(0) {
                    return Some((None, found));
                }
            }
        }
        None
    }

    /// The run of label characters that `from` is in, from `from` on.
    fn label_run(&mut self, from: usize, slot: usize) -> LabelRun {
        for cached in &self.run_cache {
            if (cached.from..cached.end).contains(&from) {
                return LabelRun {
                    from,
                    end: cached.end,
                    last_underscore: cached.last_underscore.filter(|&at| at >= from),
                };
            }
        }
        let mut run = LabelRun { from, end: self.text.len(), last_underscore: None };
        for (offset, c) in self.text[from..].char_indices() {
            if c == '_' {
                run.last_underscore = Some(from + offset);
            } else if !is_label_char(c) {
                run.end = from + offset;
                break;
            }
        }
        self.run_cache[slot] = run;
        run
    }

    /// [`match_tld`] at `start`, remembered, because the regex retries the
    /// same positions from every start position before them.
    fn memo_match_tld(&mut self, start: usize) -> Option<usize> {
        if self.tld_memo.is_empty() {
            self.tld_memo = vec![0; self.text.len() + 1];
        }
        match self.tld_memo.get(start).copied() {
            Some(0) | None => {
                let found = match_tld(self.text, start);
                if let Some(slot) = self.tld_memo.get_mut(start) {
                    *slot = found.map_or(1, |end| end + 2);
                }
                found
            }
            Some(1) => None,
            Some(end_plus_two) => Some(end_plus_two - 2),
        }
    }

    fn match_url_at(&mut self, start: usize) -> Option<UrlMatch> {
        let bytes = self.text.as_bytes();
        let rest = &bytes[start..];
        let protocol_len = if starts_with_ignore_case(rest, b"https://") {
            8
        } else if starts_with_ignore_case(rest, b"http://") {
            7
        } else {
            0
        };
        if protocol_len > 0 {
            if let Some(found) = self.match_domain_onwards(start, protocol_len) {
                return Some(found);
            }
        }
        // Without the protocol the domain would start with `http`, followed
        // by `:`, which is never a domain; the regex still tries it, and so do we.
        self.match_domain_onwards(start, 0)
    }

    fn match_domain_onwards(&mut self, start: usize, protocol_len: usize) -> Option<UrlMatch> {
        let text = self.text;
        let bytes = text.as_bytes();
        let domain_start = start + protocol_len;
        if self.dead_domain_starts.get(domain_start) == Some(&true) {
            return None;
        }
        self.labels.clear();
        let mut position = domain_start;
        loop {
            let slot = usize::from(position != domain_start);
            let run = self.label_run(position, slot);
            if run.end == position || bytes.get(run.end) != Some(&b'.') {
                break;
            }
            let label = &text[position..run.end];
            if label.starts_with(['-', '_']) || label.ends_with(['-', '_']) {
                break;
            }
            self.labels.push(run);
            position = run.end + 1;
        }
        // The regex tries the most subdomains first; the domain name (the
        // label before the TLD) may not contain `_`.
        let mut domain_end = None;
        for label_idx in (0..self.labels.len()).rev() {
            let label = self.labels[label_idx];
            if label.last_underscore.is_some() {
                continue;
            }
            domain_end = self.memo_match_tld(label.end + 1);
            if domain_end.is_some() {
                break;
            }
        }
        let Some(domain_end) = domain_end else {
            if self.labels.len() > 1 {
                if self.dead_domain_starts.is_empty() {
                    self.dead_domain_starts = vec![false; text.len() + 1];
                }
                for label in &self.labels[1..] {
                    self.dead_domain_starts[label.from] = true;
                }
            }
            return None;
        };
        let mut end = domain_end;
        if bytes.get(end) == Some(&b':') {
            let digits = bytes[end + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 {
                end += 1 + digits;
            }
        }
        let has_path = bytes.get(end) == Some(&b'/');
        if has_path {
            end = path_end(text, end + 1);
        }
        if bytes.get(end) == Some(&b'?') {
            if let Some(query_end) = query_end(text, end + 1) {
                end = query_end;
            }
        }
        Some(UrlMatch { start, protocol_len, domain_start, domain_end, has_path, end })
    }
}

/// A known TLD (or a Punycode one) at `start`, and where it ends.
fn match_tld(text: &str, start: usize) -> Option<usize> {
    let rest = text.get(start..)?;
    // Lower-case the candidate characters into a buffer, remembering where
    // each prefix ends, then try the longest prefix first.
    let mut lowered = [0u8; 4 * 2 * MAX_TLD_CHARS];
    let mut lowered_len = 0;
    let mut prefixes: [(usize, usize); MAX_TLD_CHARS] = [(0, 0); MAX_TLD_CHARS];
    let mut n_prefixes = 0;
    for (offset, c) in rest.char_indices() {
        if n_prefixes == MAX_TLD_CHARS || !is_domain_char(c) {
            break;
        }
        for lower in c.to_lowercase() {
            if lowered_len + lower.len_utf8() > lowered.len() {
                break;
            }
            lowered_len += lower.encode_utf8(&mut lowered[lowered_len..]).len();
        }
        prefixes[n_prefixes] = (lowered_len, offset + c.len_utf8());
        n_prefixes += 1;
    }
    for &(candidate_len, candidate_end) in prefixes[..n_prefixes].iter().rev() {
        if rest[candidate_end..].chars().next().is_some_and(continues_tld) {
            continue;
        }
        let Ok(candidate) = std::str::from_utf8(&lowered[..candidate_len]) else {
            continue;
        };
        if TLDS.binary_search(&candidate).is_ok() {
            return Some(start + candidate_end);
        }
    }
    // twitter-text's `validPunycode`: `xn--` and at least one of `[-0-9a-z]`.
    let bytes = rest.as_bytes();
    if starts_with_ignore_case(bytes, b"xn--") {
        let tail = bytes[4..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count();
        if tail > 0 {
            return Some(start + 4 + tail);
        }
    }
    None
}

/// twitter-text's `validAsciiDomain` at `start` of `haystack` (whose end
/// counts as the end of text): ASCII-ish labels, each ending in `.`, then a TLD.
fn match_ascii_domain(haystack: &str, start: usize) -> Option<usize> {
    let is_ascii_label_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || is_latin_accent(c);
    let mut label_ends: [usize; 16] = [0; 16];
    let mut n_labels = 0;
    let mut position = start;
    loop {
        let run = haystack[position..]
            .char_indices()
            .find(|&(_, c)| !is_ascii_label_char(c))
            .map_or(haystack.len(), |(offset, _)| position + offset);
        if run == position || haystack.as_bytes().get(run) != Some(&b'.') {
            break;
        }
        if n_labels == label_ends.len() {
            // Deeper than any real domain: keep the last labels only.
            label_ends.copy_within(1.., 0);
            n_labels -= 1;
        }
        label_ends[n_labels] = run;
        n_labels += 1;
        position = run + 1;
    }
    label_ends[..n_labels].iter().rev().find_map(|&label_end| match_tld(haystack, label_end + 1))
}

/// Where a URL path that starts at `start` (just after its `/`) ends:
/// the longest run of path characters and balanced parentheses, cut back to
/// its last allowed ending character or parenthesised group.
fn path_end(text: &str, start: usize) -> usize {
    let mut position = start;
    let mut end = start;
    while let Some(c) = text[position..].chars().next() {
        if c == '(' {
            match balanced_parens_end(text, position) {
                Some(group_end) => {
                    position = group_end;
                    end = group_end;
                }
                None => break,
            }
        } else if is_url_path_char(c) {
            position += c.len_utf8();
            if is_url_path_ending_char(c) {
                end = position;
            }
        } else {
            break;
        }
    }
    end
}

/// twitter-text's `validUrlBalancedParens` at `open` (a `(`): a group of path
/// characters, possibly with one nested group.
fn balanced_parens_end(text: &str, open: usize) -> Option<usize> {
    let path_run = |from: usize| {
        text[from..].char_indices().find(|&(_, c)| !is_url_path_char(c)).map_or(text.len(), |(offset, _)| from + offset)
    };
    let bytes = text.as_bytes();
    let inner_start = open + 1;
    let inner_end = path_run(inner_start);
    match bytes.get(inner_end) {
        Some(b')') if inner_end > inner_start => Some(inner_end + 1),
        Some(b'(') => {
            let nested_end = path_run(inner_end + 1);
            if nested_end == inner_end + 1 || bytes.get(nested_end) != Some(&b')') {
                return None;
            }
            let outer_end = path_run(nested_end + 1);
            (bytes.get(outer_end) == Some(&b')')).then_some(outer_end + 1)
        }
        _ => None,
    }
}

/// Where a query that starts at `start` (just after its `?`) ends, if it has
/// at least one allowed ending character.
fn query_end(text: &str, start: usize) -> Option<usize> {
    let mut end = None;
    for (offset, c) in text[start..].char_indices() {
        if !is_url_query_char(c) {
            break;
        }
        if is_url_query_ending_char(c) {
            end = Some(start + offset + 1);
        }
    }
    end
}
