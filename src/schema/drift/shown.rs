//! The normal form every compared value is reduced to: two spellings of one thing share a `key`,
//! and `display` keeps the spelling a reader recognises for the report.

/// A normalised value: compared by `key`, reported by `display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Shown {
    pub(super) key: String,
    pub(super) display: String,
}

impl Shown {
    pub(super) fn same(text: String) -> Self {
        Self {
            key: text.clone(),
            display: text,
        }
    }
}
