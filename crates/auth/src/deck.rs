//! The saved deck: a member's columns, validated and bounded before they are stored.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

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
}

impl Default for DeckLimits {
    fn default() -> Self {
        DeckLimits {
            max_bytes: 64 * 1024,
            max_columns: 50,
            max_query_chars: 512,
            max_title_chars: 200,
            max_id_chars: 64,
            max_filters_bytes: 4 * 1024,
        }
    }
}

/// A member's deck: columns in display order.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deck {
    /// Columns, left to right.
    pub columns: Vec<DeckColumn>,
}

/// One column as the web client keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeckColumn {
    /// Client-chosen id, unique within the deck.
    pub id: String,
    /// Title shown in the header.
    pub title: String,
    /// Column query (the search language of `crates/search`).
    pub query: String,
    /// Width in CSS pixels.
    pub width: f64,
    /// Client-side extras (kind, trends window, …), kept as given.
    #[serde(default)]
    pub filters: serde_json::Map<String, serde_json::Value>,
}

/// Narrowest and widest column accepted, CSS pixels.
const WIDTH_RANGE: std::ops::RangeInclusive<f64> = 100.0..=2000.0;

/// Checks a deck against the limits. Errors name the field (`columns[3].query`).
pub fn validate_deck(deck: &Deck, limits: &DeckLimits) -> Result<(), AuthError> {
    if deck.columns.len() > limits.max_columns {
        return Err(AuthError::invalid("columns", format!("at most {} columns", limits.max_columns)));
    }
    let mut seen_ids = HashSet::new();
    for column in &deck.columns {
        let n_id_chars = column.id.chars().count();
        if n_id_chars == 0 || n_id_chars > limits.max_id_chars || column.id.chars().any(char::is_control) {
            return Err(AuthError::invalid(
                "columns.id",
                format!("column ids have 1 to {} printable characters", limits.max_id_chars),
            ));
        }
        if !seen_ids.insert(column.id.as_str()) {
            return Err(AuthError::invalid("columns.id", format!("column id {:?} appears twice", column.id)));
        }
        if column.title.chars().count() > limits.max_title_chars {
            return Err(AuthError::invalid(
                "columns.title",
                format!("titles have at most {} characters", limits.max_title_chars),
            ));
        }
        if column.query.chars().count() > limits.max_query_chars {
            return Err(AuthError::invalid(
                "columns.query",
                format!("queries have at most {} characters", limits.max_query_chars),
            ));
        }
        if !column.width.is_finite() || !WIDTH_RANGE.contains(&column.width) {
            return Err(AuthError::invalid("columns.width", "width must be between 100 and 2000"));
        }
        let filters_bytes = serde_json::to_vec(&column.filters).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
        if filters_bytes > limits.max_filters_bytes {
            return Err(AuthError::invalid(
                "columns.filters",
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
        let ok = Deck { columns: vec![column("a"), column("b")] };
        assert!(validate_deck(&ok, &limits).is_ok());
        let mut cases: Vec<(Deck, &str)> = Vec::new();
        cases.push((Deck { columns: (0..51).map(|i| column(&i.to_string())).collect() }, "columns"));
        cases.push((Deck { columns: vec![column("a"), column("a")] }, "columns.id"));
        cases.push((Deck { columns: vec![column("")] }, "columns.id"));
        let mut long_query = column("q");
        long_query.query = "x".repeat(513);
        cases.push((Deck { columns: vec![long_query] }, "columns.query"));
        let mut narrow = column("w");
        narrow.width = f64::NAN;
        cases.push((Deck { columns: vec![narrow] }, "columns.width"));
        for (deck, field) in cases {
            match validate_deck(&deck, &limits) {
                Err(AuthError::InvalidInput { field: found, .. }) => assert_eq!(found, field),
                other => panic!("expected {field}, got {other:?}"),
            }
        }
    }
}
