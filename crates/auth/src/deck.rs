//! The saved deck: a member's open columns and deck-wide mutes, and the
//! library of their named decks, validated and bounded before they are stored.

use std::collections::HashSet;

use crate::error::AuthError;

/// Bounds on a saved deck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeckLimits {
    /// Largest request body, bytes.
    pub max_bytes: usize,
    /// Most columns.
    pub max_columns: usize,
    /// Longest column query, characters.
    pub max_query_chars: usize,
    /// Longest title, characters.
    pub max_title_chars: usize,
    /// Longest column id, characters.
    pub max_id_chars: usize,
    /// Largest `filters` object, bytes of JSON.
    pub max_filters_bytes: usize,
    /// Most named decks in the library.
    pub max_decks: usize,
    /// Longest deck name, characters.
    pub max_name_chars: usize,
    /// Most deck-wide mutes of one deck.
    pub max_mutes: usize,
    /// Longest mute (a word, `/regex/` or `@account`), characters.
    pub max_mute_chars: usize,
}

impl Default for DeckLimits {
    fn default() -> Self {
        DeckLimits {
            max_bytes: 256 * 1024,
            max_columns: 50,
            max_query_chars: 512,
            max_title_chars: 200,
            max_id_chars: 64,
            max_filters_bytes: 4 * 1024,
            max_decks: 20,
            max_name_chars: 60,
            max_mutes: 200,
            max_mute_chars: 200,
        }
    }
}

pub use api::account::{Deck, DeckColumn, DeckLibrary, NamedDeck};

/// Narrowest and widest column accepted, CSS pixels.
const WIDTH_RANGE: std::ops::RangeInclusive<f64> = 100.0..=2000.0;

/// Checks a deck against the limits. Errors name the field (`columns.query`,
/// `library.decks.name`).
pub fn validate_deck(deck: &Deck, limits: &DeckLimits) -> Result<(), AuthError> {
    validate_columns(&deck.columns, limits, &OPEN_COLUMNS)?;
    validate_mutes(&deck.mutes, limits, "mutes")?;
    let Some(library) = &deck.library else {
        return Ok(());
    };
    if library.decks.is_empty() || library.decks.len() > limits.max_decks {
        return Err(AuthError::invalid("library.decks", format!("1 to {} decks", limits.max_decks)));
    }
    let mut seen_ids = HashSet::new();
    for named in &library.decks {
        validate_id(&named.id, limits, "library.decks.id", "deck ids")?;
        if !seen_ids.insert(named.id.as_str()) {
            return Err(AuthError::invalid("library.decks.id", format!("deck id {:?} appears twice", named.id)));
        }
        if named.name.chars().count() > limits.max_name_chars || named.name.chars().any(char::is_control) {
            return Err(AuthError::invalid(
                "library.decks.name",
                format!("deck names have at most {} printable characters", limits.max_name_chars),
            ));
        }
        validate_columns(&named.columns, limits, &LIBRARY_COLUMNS)?;
        validate_mutes(&named.mutes, limits, "library.decks.mutes")?;
    }
    if !seen_ids.contains(library.current.as_str()) {
        return Err(AuthError::invalid("library.current", "the open deck is not in the library"));
    }
    Ok(())
}

/// An id of 1 to `max_id_chars` printable characters; `what` names it in the message.
fn validate_id(id: &str, limits: &DeckLimits, field: &'static str, what: &str) -> Result<(), AuthError> {
    let n_chars = id.chars().count();
    if n_chars == 0 || n_chars > limits.max_id_chars || id.chars().any(char::is_control) {
        return Err(AuthError::invalid(
            field,
            format!("{what} have 1 to {} printable characters", limits.max_id_chars),
        ));
    }
    Ok(())
}

fn validate_mutes(mutes: &[String], limits: &DeckLimits, field: &'static str) -> Result<(), AuthError> {
    if mutes.len() > limits.max_mutes {
        return Err(AuthError::invalid(field, format!("at most {} mutes", limits.max_mutes)));
    }
    if mutes.iter().any(|mute| mute.is_empty() || mute.chars().count() > limits.max_mute_chars) {
        return Err(AuthError::invalid(field, format!("mutes have 1 to {} characters", limits.max_mute_chars)));
    }
    Ok(())
}

/// The field names a list of columns is reported under.
struct ColumnFields {
    list: &'static str,
    id: &'static str,
    title: &'static str,
    query: &'static str,
    width: &'static str,
    filters: &'static str,
}

/// The open deck's columns (`columns`).
const OPEN_COLUMNS: ColumnFields = ColumnFields {
    list: "columns",
    id: "columns.id",
    title: "columns.title",
    query: "columns.query",
    width: "columns.width",
    filters: "columns.filters",
};

/// A named deck's columns (`library.decks[].columns`).
const LIBRARY_COLUMNS: ColumnFields = ColumnFields {
    list: "library.decks.columns",
    id: "library.decks.columns.id",
    title: "library.decks.columns.title",
    query: "library.decks.columns.query",
    width: "library.decks.columns.width",
    filters: "library.decks.columns.filters",
};

fn validate_columns(columns: &[DeckColumn], limits: &DeckLimits, fields: &ColumnFields) -> Result<(), AuthError> {
    if columns.len() > limits.max_columns {
        return Err(AuthError::invalid(fields.list, format!("at most {} columns", limits.max_columns)));
    }
    let mut seen_ids = HashSet::new();
    for column in columns {
        validate_id(&column.id, limits, fields.id, "column ids")?;
        if !seen_ids.insert(column.id.as_str()) {
            return Err(AuthError::invalid(fields.id, format!("column id {:?} appears twice", column.id)));
        }
        if column.title.chars().count() > limits.max_title_chars {
            return Err(AuthError::invalid(
                fields.title,
                format!("titles have at most {} characters", limits.max_title_chars),
            ));
        }
        if column.query.chars().count() > limits.max_query_chars {
            return Err(AuthError::invalid(
                fields.query,
                format!("queries have at most {} characters", limits.max_query_chars),
            ));
        }
        if !column.width.is_finite() || !WIDTH_RANGE.contains(&column.width) {
            return Err(AuthError::invalid(fields.width, "width must be between 100 and 2000"));
        }
        let filters_bytes = serde_json::to_vec(&column.filters).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
        if filters_bytes > limits.max_filters_bytes {
            return Err(AuthError::invalid(
                fields.filters,
                format!("filters take at most {} bytes", limits.max_filters_bytes),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(id: &str) -> DeckColumn {
        DeckColumn {
            id: id.into(),
            title: "BTS".into(),
            query: "BTS".into(),
            width: 340.0,
            filters: Default::default(),
        }
    }

    #[test]
    fn limits_table() {
        let limits = DeckLimits::default();
        let ok = Deck { columns: vec![column("a"), column("b")], ..Deck::default() };
        assert!(validate_deck(&ok, &limits).is_ok());
        let mut cases: Vec<(Deck, &str)> = Vec::new();
        cases.push((Deck { columns: (0..51).map(|i| column(&i.to_string())).collect(), ..Deck::default() }, "columns"));
        cases.push((Deck { columns: vec![column("a"), column("a")], ..Deck::default() }, "columns.id"));
        cases.push((Deck { columns: vec![column("")], ..Deck::default() }, "columns.id"));
        let mut long_query = column("q");
        long_query.query = "x".repeat(513);
        cases.push((Deck { columns: vec![long_query], ..Deck::default() }, "columns.query"));
        let mut narrow = column("w");
        narrow.width = f64::NAN;
        cases.push((Deck { columns: vec![narrow], ..Deck::default() }, "columns.width"));
        for (deck, field) in cases {
            match validate_deck(&deck, &limits) {
                Err(AuthError::InvalidInput { field: found, .. }) => assert_eq!(found, field),
                other => panic!("expected {field}, got {other:?}"),
            }
        }
    }

    fn named(id: &str, name: &str) -> NamedDeck {
        NamedDeck { id: id.into(), name: name.into(), columns: vec![column("a")], mutes: vec!["spoiler".into()] }
    }

    fn with_library(decks: Vec<NamedDeck>, current: &str) -> Deck {
        Deck {
            columns: vec![column("a")],
            mutes: vec!["spoiler".into()],
            library: Some(DeckLibrary { current: current.into(), decks }),
        }
    }

    #[test]
    fn a_library_of_named_decks_with_mutes_is_bounded() {
        let limits = DeckLimits::default();
        let ok = with_library(vec![named("d1", "Comeback"), named("d2", "방탄 덱")], "d2");
        assert!(validate_deck(&ok, &limits).is_ok());
        // It round-trips through the stored JSON, and an old deck (columns only) still reads.
        let bytes = serde_json::to_vec(&ok).unwrap_or_default();
        assert_eq!(serde_json::from_slice::<Deck>(&bytes).ok(), Some(ok));
        let old: Deck = serde_json::from_str(r#"{"columns":[]}"#).unwrap_or_default();
        assert!(old.library.is_none() && old.mutes.is_empty());

        let mut cases: Vec<(Deck, &str)> = Vec::new();
        cases.push((with_library((0..21).map(|n| named(&format!("d{n}"), "x")).collect(), "d0"), "library.decks"));
        cases.push((with_library(Vec::new(), "d1"), "library.decks"));
        cases.push((with_library(vec![named("d1", "x"), named("d1", "y")], "d1"), "library.decks.id"));
        cases.push((with_library(vec![named("d1", &"n".repeat(61))], "d1"), "library.decks.name"));
        cases.push((with_library(vec![named("d1", "a\u{0}b")], "d1"), "library.decks.name"));
        cases.push((with_library(vec![named("d1", "x")], "d9"), "library.current"));
        let mut wide = named("d1", "x");
        wide.columns = (0..51).map(|i| column(&i.to_string())).collect();
        cases.push((with_library(vec![wide], "d1"), "library.decks.columns"));
        let mut bad_column = named("d1", "x");
        bad_column.columns[0].query = "q".repeat(513);
        cases.push((with_library(vec![bad_column], "d1"), "library.decks.columns.query"));
        let mut muted = named("d1", "x");
        muted.mutes = (0..201).map(|n| n.to_string()).collect();
        cases.push((with_library(vec![muted], "d1"), "library.decks.mutes"));
        let mut too_many = with_library(vec![named("d1", "x")], "d1");
        too_many.mutes = vec![String::new()];
        cases.push((too_many, "mutes"));
        for (deck, field) in cases {
            match validate_deck(&deck, &limits) {
                Err(AuthError::InvalidInput { field: found, .. }) => assert_eq!(found, field),
                other => panic!("expected {field}, got {other:?}"),
            }
        }
    }
}
