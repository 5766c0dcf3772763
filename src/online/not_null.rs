//! `SET NOT NULL` without the scan under ACCESS EXCLUSIVE, as a recipe ends with it: the
//! `setNotNullThroughCheck` recipe, and the last steps of a recipe that adds a NOT NULL column.

use crate::sql::online::quote;

/// `SET NOT NULL` on `column` of `table` (quoted) without the scan under ACCESS EXCLUSIVE: a
/// check added `NOT VALID`, validated under a lock writers pass, then the NOT NULL it proves.
pub fn steps(table: &str, table_name: &str, column: &str) -> Vec<String> {
    let check = quote(&check_name(table_name, column));
    let col = quote(column);
    vec![
        format!("ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID"),
        format!("ALTER TABLE {table} VALIDATE CONSTRAINT {check}"),
        // Postgres 12+ finds the validated check and skips the scan.
        format!("ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL"),
        format!("ALTER TABLE {table} DROP CONSTRAINT {check}"),
    ]
}

/// The temporary check's name: one no drizzle-kit file writes (Postgres 18 names the NOT NULL
/// constraint itself `<table>_<column>_not_null`), cut to Postgres's 63 bytes.
pub(super) fn check_name(table: &str, column: &str) -> String {
    let mut name = format!("{table}_{column}_online_not_null");
    while name.len() > 63 {
        name.pop();
    }
    name
}
