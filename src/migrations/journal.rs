//! Drizzle-kit's `meta/_journal.json`: which migrations a folder holds, in which order.
//!
//! drizzle-orm's `readMigrationFiles` reads only each entry's `tag` (the file is `<tag>.sql`),
//! `when` and `breakpoints`; it ignores the journal's `version` and `dialect` and every entry's
//! `version`. Journals drizzle-kit wrote for PostgreSQL:
//! - before 2024 (up to drizzle-kit 0.20): `"dialect": "pg"`, journal and entry version `"5"`
//!   (entries added after an upgrade may say `"6"`);
//! - since (0.21 on): `"dialect": "postgresql"`, version `"6"` or `"7"`.
//!
//! A tag is `<prefix>_<name>`, the prefix set by drizzle-kit's `migrations.prefix`: `index`
//! (`0003`), `timestamp` and `supabase` (`20240101120000`, UTC), `unix` (`1704110400`), or
//! `none` (empty, so the tag starts with `_`). Nothing here reads meaning into a tag: the
//! journal's order is the order.

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

/// The dialects drizzle-kit has written into a PostgreSQL journal.
pub const POSTGRES_DIALECTS: [&str; 2] = ["postgresql", "pg"];

impl Journal {
    /// Whether drizzle-kit wrote this journal for PostgreSQL (either spelling).
    pub fn is_postgres(&self) -> bool {
        POSTGRES_DIALECTS.contains(&self.dialect.as_str())
    }

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
    fn old_and_new_postgres_dialects_are_postgres_and_others_are_not() {
        for (dialect, postgres) in [
            ("postgresql", true),
            ("pg", true),
            ("mysql", false),
            ("sqlite", false),
            ("turso", false),
            ("singlestore", false),
            ("gel", false),
            ("PG", false),
            ("postgres", false),
            ("", false),
        ] {
            let journal = Journal::parse(format!(r#"{{"dialect":"{dialect}","entries":[]}}"#).as_bytes()).unwrap();
            assert_eq!(journal.is_postgres(), postgres, "{dialect:?}");
        }
    }

    #[test]
    fn parses_a_drizzle_kit_0_20_journal() {
        // As drizzle-kit 0.20 wrote it (drizzle-orm's own integration-tests/drizzle2/pg).
        let journal = Journal::parse(
            br#"{"version":"5","dialect":"pg","entries":[
                {"idx":0,"version":"5","when":1680271923328,"tag":"0000_puzzling_flatman","breakpoints":true},
                {"idx":1,"version":"6","when":1680271923329,"tag":"0001_test","breakpoints":false}
            ]}"#,
        )
        .unwrap();
        assert!(journal.is_postgres());
        assert_eq!(journal.entries.len(), 2);
        assert!(!journal.entries[1].breakpoints);
    }

    #[test]
    fn rejects_a_journal_without_entries() {
        assert!(Journal::parse(br#"{"dialect":"postgresql"}"#).is_err());
    }
}
