//! The upgrade of a drizzle-orm 0.x ledger to 1.0's, as drizzle-orm 1.0 does it on its first
//! `migrate()` (`up-migrations/pg.js`, `upToV1`, 1.0.0-rc.5), for a drizzle-kit 1.0 folder on a
//! database whose ledger has no `name` column yet (typically after `drizzle-kit up`). Pure: the
//! matching; `db::ledger` writes it.
//!
//! drizzle-orm 1.0 sorts the folders by (`created_at`, then name by localeCompare) and matches
//! each row, in id order, to a folder: the one folder of the row's second (`created_at` cut to
//! whole seconds) whatever its hash; among several folders of that second, the first with the
//! row's hash; with no folder of that second, the last folder with the row's hash. Any row left
//! unmatched aborts the upgrade. This tool matches exactly so, and refuses where drizzle-orm
//! 1.0 aborts, naming the rows.

use std::collections::HashMap;

use crate::db::ledger::LedgerRow;
use crate::engine::plan::PlanError;
use crate::migrations::folders::locale_cmp;
use crate::migrations::source::Migration;

/// `created_at` cut to whole seconds as drizzle-orm 1.0 cuts it: the decimal string without its
/// last three digits, then `000` (so below 1000 it is 0). A null `created_at` matches no second.
fn second_of(created_at: Option<i64>) -> Option<i64> {
    created_at.map(|c| c / 1000 * 1000)
}

/// The name each ledger row gets, as `(row id, folder name)` in id order; the ids of the rows
/// that match no folder when there are any (drizzle-orm 1.0 then aborts its upgrade too).
pub fn names_for(rows: &[LedgerRow], migrations: &[Migration]) -> Result<Vec<(i32, String)>, PlanError> {
    let mut local: Vec<&Migration> = migrations.iter().filter(|m| m.name.is_some()).collect();
    local.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| locale_cmp(&a.tag, &b.tag)));
    let mut by_second: HashMap<i64, Vec<&Migration>> = HashMap::new();
    let mut by_hash: HashMap<&str, &Migration> = HashMap::new();
    for m in &local {
        by_second.entry(m.created_at).or_default().push(m);
        // A Map's set: the last folder with a hash wins.
        by_hash.insert(&m.hash, m);
    }
    let mut rows: Vec<&LedgerRow> = rows.iter().collect();
    rows.sort_by_key(|r| r.id);
    let mut names = Vec::new();
    let mut unmatched = Vec::new();
    for row in rows {
        let candidates = second_of(row.created_at).and_then(|s| by_second.get(&s));
        let matched = match candidates {
            Some(c) if c.len() == 1 => Some(c[0]),
            Some(c) => c.iter().copied().find(|m| m.hash == row.hash),
            None => by_hash.get(row.hash.as_str()).copied(),
        };
        match matched.and_then(|m| m.name.clone()) {
            Some(name) => names.push((row.id, name)),
            None => unmatched.push(row.id),
        }
    }
    if unmatched.is_empty() {
        Ok(names)
    } else {
        Err(PlanError::UpgradeUnmatched { ids: unmatched })
    }
}

/// The rows with the names the upgrade gives them: how drizzle-orm 1.0 will read the ledger.
pub fn named(rows: &[LedgerRow], names: &[(i32, String)]) -> Vec<LedgerRow> {
    let by_id: HashMap<i32, &String> = names.iter().map(|(id, name)| (*id, name)).collect();
    rows.iter()
        .map(|r| LedgerRow {
            name: by_id.get(&r.id).map(|n| n.to_string()),
            ..r.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::source::TransactionMode;

    fn folders(names: &[(&str, &str)]) -> Vec<Migration> {
        names
            .iter()
            .enumerate()
            .map(|(idx, (name, hash))| Migration {
                idx,
                tag: name.to_string(),
                created_at: crate::migrations::folders::folder_millis(name).unwrap(),
                name: Some(name.to_string()),
                hash: hash.to_string(),
                statements: Vec::new(),
                marked_no_transaction: false,
                commit_after: false,
                down: None,
                needs: crate::migrations::source::Needs {
                    mode: TransactionMode::Transaction,
                    adds_enum_value: false,
                    ends_transaction: false,
                }
                .into(),
            })
            .collect()
    }

    fn row(id: i32, hash: &str, created_at: Option<i64>) -> LedgerRow {
        LedgerRow {
            id,
            hash: hash.into(),
            created_at,
            name: None,
        }
    }

    #[test]
    fn rows_match_their_folder_by_second_then_by_hash() {
        let ms = folders(&[
            ("20251124113500_create", "h0"),
            ("20251124113511_audit", "h1"),
            ("20251124113511_enums", "h2"),
        ]);
        // 0.x wrote the journal `when` in ms; `drizzle-kit up` cut it to the second.
        let rows = [
            row(1, "changed", Some(1_763_984_100_854)),
            row(2, "h2", Some(1_763_984_111_069)),
            row(3, "h1", Some(1_763_984_111_500)),
        ];
        assert_eq!(
            names_for(&rows, &ms).unwrap(),
            [
                (1, "20251124113500_create".to_string()),
                (2, "20251124113511_enums".to_string()),
                (3, "20251124113511_audit".to_string()),
            ]
        );
        // The only folder of its second matches whatever its hash (drizzle does not check it
        // here; the hash check afterwards reports the changed file).
        assert_eq!(
            named(&rows, &names_for(&rows, &ms).unwrap())[0].name.as_deref(),
            Some("20251124113500_create")
        );
    }

    #[test]
    fn without_a_folder_of_its_second_a_row_matches_by_hash_alone() {
        let ms = folders(&[("20251124113500_create", "h0")]);
        let rows = [row(7, "h0", Some(5)), row(8, "h0", None)];
        assert_eq!(
            names_for(&rows, &ms).unwrap(),
            [(7, "20251124113500_create".to_string()), (8, "20251124113500_create".to_string())]
        );
    }

    #[test]
    fn unmatched_rows_refuse_the_upgrade_naming_their_ids() {
        let ms = folders(&[("20251124113500_a", "h0"), ("20251124113500_b", "h1")]);
        let rows = [
            row(1, "h0", Some(1_763_984_100_000)),
            row(2, "zz", Some(1_763_984_100_000)),
            row(3, "yy", Some(1)),
        ];
        let err = names_for(&rows, &ms).unwrap_err();
        assert_eq!(err, PlanError::UpgradeUnmatched { ids: vec![2, 3] });
        assert!(err.to_string().contains("ids: 2, 3"), "{err}");
    }
}
