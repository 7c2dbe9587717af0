//! Korean particles (조사): a Korean noun is written with its particle attached
//! (`방탄소년단이`, `방탄소년단의`), so a query word must match the word with a
//! particle after it.
//!
//! The rule is purely a suffix list, with no dictionary: a Hangul token `t`
//! matches a query word `w` when `t == w` or `t == w + p` for a particle `p`.
//! The list also covers the plural `들` and the honorific `님` followed by a
//! particle (`아미들이`, `지민님께`), since fans write names that way, and the
//! common forms of `하다` that turn a noun into a verb (`컴백했다`, `축하해`).

use std::sync::LazyLock;

/// Case particles, auxiliary particles, the copula's common endings, and
/// their usual combinations.
#[rustfmt::skip]
const PARTICLES: &[&str] = &[
    "이", "가", "은", "는", "을", "를", "의", "에", "에서", "에게", "께", "께서", "한테", "와", "과", "도", "로", "으로",
    "만", "까지", "부터", "처럼", "보다", "랑", "이랑", "하고", "이나", "나", "야", "아", "요", "이요", "이야", "이에요", "예요",
    "입니다", "이다", "이지", "마저", "조차", "밖에", "만큼", "대로", "같이", "이든", "든", "이며", "이고", "에는", "에도", "에서는",
    "에서도", "에서의", "에게는", "에게도", "에게서", "한테는", "한테도", "한테서", "께서는", "께서도", "께는", "으로는", "로는", "으로도",
    "로도", "으로서", "로서", "으로써", "로써", "까지는", "까지도", "까지의", "부터는", "부터도", "부터의", "만은", "만이", "만을",
    "만의", "만큼은", "와는", "과는", "와도", "과도", "와의", "과의", "이랑은", "랑은", "처럼은", "보다는", "보다도", "이나마", "나마",
    "의는", "이라고", "라고", "이라는", "라는", "이란", "란", "이라서", "라서", "이라", "라",
];

/// Common endings of `하다` after a noun (`컴백했다`, `응원합니다`, `축하해`).
#[rustfmt::skip]
const HADA_ENDINGS: &[&str] = &[
    "하다", "한다", "했다", "해요", "했어요", "합니다", "했습니다", "하는", "했던", "하며", "해서", "했어", "하기", "하면", "했는데",
    "했고", "했네", "하네", "하자", "함", "해", "한", "할", "했음",
];

/// Suffixes that may come between the noun and its particle.
const NOUN_SUFFIXES: &[&str] = &["", "들", "님", "님들"];

/// Every particle ending, each once, sorted for binary search.
static ENDINGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut endings: Vec<String> = NOUN_SUFFIXES
        .iter()
        .flat_map(|suffix| {
            std::iter::once(suffix.to_string())
                .chain(PARTICLES.iter().map(move |particle| format!("{suffix}{particle}")))
        })
        .chain(HADA_ENDINGS.iter().map(|ending| ending.to_string()))
        .filter(|ending| !ending.is_empty())
        .collect();
    endings.sort();
    endings.dedup();
    endings
});

/// The longest ending, in chars, bounds how many suffixes of a token are tried.
static LONGEST_ENDING_CHARS: LazyLock<usize> =
    LazyLock::new(|| ENDINGS.iter().map(|ending| ending.chars().count()).max().unwrap_or(0));

/// Whether `rest` is a particle ending (what follows a noun in a token).
pub(crate) fn is_particle_ending(rest: &str) -> bool {
    ENDINGS.binary_search_by(|ending| ending.as_str().cmp(rest)).is_ok()
}

/// Calls `emit` with every stem of a Hangul token: each proper prefix that is
/// followed by a particle ending. The token itself is not emitted.
pub(crate) fn for_each_stem(token: &str, mut emit: impl FnMut(&str)) {
    for (n_chars, (byte_idx, _)) in token.char_indices().rev().enumerate() {
        if n_chars >= *LONGEST_ENDING_CHARS {
            break;
        }
        if byte_idx > 0 && is_particle_ending(&token[byte_idx..]) {
            emit(&token[..byte_idx]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stems(token: &str) -> Vec<String> {
        let mut stems = Vec::new();
        for_each_stem(token, |stem| stems.push(stem.to_string()));
        stems
    }

    #[test]
    fn stems_strip_particles() {
        assert_eq!(stems("방탄소년단이"), ["방탄소년단"]);
        assert_eq!(stems("방탄소년단에게"), ["방탄소년단"]);
        assert_eq!(stems("아미들이"), ["아미들", "아미"]);
        assert!(stems("방탄소년단").is_empty());
        assert!(stems("이").is_empty());
    }

    #[test]
    fn endings() {
        assert!(is_particle_ending("의"));
        assert!(is_particle_ending("에서는"));
        assert!(is_particle_ending("님께"));
        assert!(!is_particle_ending("소년단"));
        assert!(!is_particle_ending(""));
    }
}
