//! The normal form every compared value is reduced to: two spellings of one thing share a `key`,
//! and `display` keeps the spelling a reader recognises for the report.

/// A normalised value: compared by `key`, reported by `display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Shown {
    pub(super) key: String,
    pub(super) display: String,
}

/// The SQL expressions inside a compared value, kept as written, for the engine to ask Postgres
/// about when the canonical forms disagree: two values whose `frame` (everything but the
/// expressions) is the same are the same when Postgres prints each pair of expressions alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Probe {
    pub(super) frame: String,
    pub(super) expressions: Vec<String>,
}

impl Shown {
    pub(super) fn same(text: String) -> Self {
        Self {
            key: text.clone(),
            display: text,
        }
    }
}
