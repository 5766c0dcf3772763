//! Drizzle-kit's `meta/_journal.json`: which migrations a folder holds, in which order.

use serde::Deserialize;

/// The journal as drizzle-kit writes it. Only the fields drizzle-orm's migrator reads matter;
/// unknown fields are ignored so newer drizzle-kit versions still load.
#[derive(Debug, Clone, Deserialize)]
pub struct Journal {
    pub dialect: String,
    pub entries: Vec<JournalEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JournalEntry {
    pub idx: u32,
    /// Epoch milliseconds; drizzle-orm stores it as the ledger row's `created_at` and decides
    /// what is pending by comparing it with the newest applied row, so it must only grow.
    pub when: i64,
    pub tag: String,
    #[serde(default)]
    pub breakpoints: bool,
}

impl Journal {
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_drizzle_kit_output_and_ignores_unknown_fields() {
        let journal = Journal::parse(
            br#"{"version":"7","dialect":"postgresql","entries":[
                {"idx":0,"version":"7","when":1732000000000,"tag":"0000_init","breakpoints":true,"extra":1}
            ]}"#,
        )
        .unwrap();
        assert_eq!(journal.dialect, "postgresql");
        assert_eq!(journal.entries.len(), 1);
        assert_eq!(journal.entries[0].tag, "0000_init");
        assert_eq!(journal.entries[0].when, 1_732_000_000_000);
        assert!(journal.entries[0].breakpoints);
    }

    #[test]
    fn rejects_a_journal_without_entries() {
        assert!(Journal::parse(br#"{"dialect":"postgresql"}"#).is_err());
    }
}
