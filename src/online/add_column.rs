//! The recipe for `ADD COLUMN c T DEFAULT e [NOT NULL]` with a volatile `e` (drizzle-kit's
//! `.defaultRandom()`, `random()`, `clock_timestamp()`), which Postgres runs by writing every row
//! of the table under ACCESS EXCLUSIVE: the column added bare (nullable, no default: instant),
//! then its default set (new rows get it from then on), then the rows already there filled in
//! batches in primary-key order with `SET c = DEFAULT` (each row its own value, as the file
//! gives it), and a NOT NULL through a validated check. Pure: the engine reads the key and runs
//! the batches (`engine::online_add`).
//!
//! The steps' texts depend on the statement alone, so a resumed run finds the same hashes. The
//! backfill step is the file's own statement under a directive line.

use crate::migrations::statement::Statement;
use crate::online::change_type::KeyColumn;
use crate::sql::add_column::{add_column, AddColumn};
use crate::sql::online::quote;

pub const RECIPE: &str = "addThenBackfillDefault";

const DIRECTIVE: &str = "-- wishlist-migrator: online default backfill";

/// The steps of the recipe for `statement`.
pub fn steps(statement: &Statement) -> Option<Vec<String>> {
    let a = add_column(&statement.sql)?;
    let mut steps = vec![
        a.add.clone(),
        a.set_default.clone(),
        format!("{DIRECTIVE}\n{}", statement.sql.trim()),
    ];
    if a.not_null {
        steps.extend(crate::online::not_null::steps(&a.table, &a.table_name, &a.column));
    }
    Some(steps)
}

/// The column whose existing rows the step `statement` backfills, when it is this recipe's
/// backfill step.
pub fn backfill_step(statement: &Statement) -> Option<AddColumn> {
    let rest = statement.sql.strip_prefix(DIRECTIVE)?.strip_prefix('\n')?;
    add_column(rest)
}

/// Why the backfill cannot run on this table.
pub fn refusal(a: &AddColumn, key: &[KeyColumn]) -> Option<String> {
    key.is_empty().then(|| {
        format!(
            "{} has no primary key, which the backfill of {} walks in order (add one, or run the change in a maintenance window)",
            a.table_name, a.column
        )
    })
}

/// The batches of the backfill over the primary key `key`. Each answers (rows walked, rows
/// written, the batch's last key as text[]); `$1` is the batch size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batches {
    /// From the first key.
    pub first: String,
    /// After the key `$2` (text[]) that the batch before ended on.
    pub after: String,
}

/// Only the rows still NULL are written, each given its own value of the default: a row a
/// writer inserted since the default was set, or one an earlier run filled, is walked but kept.
pub fn batches(a: &AddColumn, key: &[KeyColumn]) -> Batches {
    let t = &a.table;
    let c = quote(&a.column);
    let columns: Vec<String> = key.iter().map(|k| quote(&k.name)).collect();
    let tuple = format!("({})", columns.join(", "));
    let last_key = format!(
        "ARRAY[{}]",
        columns.iter().map(|k| format!("{k}::text")).collect::<Vec<_>>().join(", ")
    );
    let bound = format!(
        "({})",
        key.iter()
            .enumerate()
            .map(|(n, k)| format!("($2::text[])[{}]::{}", n + 1, k.type_sql))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let order = columns.join(", ");
    let batch = |range: String| {
        format!(
            "WITH walked AS (SELECT {order} FROM {t}{range} ORDER BY {order} LIMIT $1::int), \
             filled AS (UPDATE {t} SET {c} = DEFAULT WHERE {tuple} IN (SELECT {order} FROM walked) AND {c} IS NULL RETURNING 1) \
             SELECT (SELECT count(*) FROM walked), (SELECT count(*) FROM filled), \
             (SELECT {last_key} FROM walked ORDER BY {} LIMIT 1)",
            columns.iter().map(|k| format!("{k} DESC")).collect::<Vec<_>>().join(", ")
        )
    };
    Batches {
        first: batch(String::new()),
        after: batch(format!(" WHERE {tuple} > {bound}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_RANDOM: &str = r#"ALTER TABLE "items" ADD COLUMN "token" uuid DEFAULT gen_random_uuid() NOT NULL;"#;

    #[test]
    fn a_not_null_volatile_default_is_added_bare_defaulted_backfilled_then_checked() {
        let steps = steps(&Statement::new(DEFAULT_RANDOM, 1)).unwrap();
        assert_eq!(
            steps,
            vec![
                "ALTER TABLE items ADD COLUMN token uuid".to_string(),
                "ALTER TABLE items ALTER COLUMN token SET DEFAULT gen_random_uuid()".into(),
                format!("{DIRECTIVE}\n{DEFAULT_RANDOM}"),
                r#"ALTER TABLE "items" ADD CONSTRAINT "items_token_online_not_null" CHECK ("token" IS NOT NULL) NOT VALID"#.into(),
                r#"ALTER TABLE "items" VALIDATE CONSTRAINT "items_token_online_not_null""#.into(),
                r#"ALTER TABLE "items" ALTER COLUMN "token" SET NOT NULL"#.into(),
                r#"ALTER TABLE "items" DROP CONSTRAINT "items_token_online_not_null""#.into(),
            ]
        );
        let backfill = backfill_step(&Statement::new(steps[2].clone(), 1)).unwrap();
        assert_eq!(backfill.column, "token");
        for step in steps.iter().filter(|s| **s != steps[2]) {
            assert_eq!(backfill_step(&Statement::new(step.clone(), 1)), None, "{step}");
        }
        assert_eq!(
            backfill_step(&Statement::new(DEFAULT_RANDOM, 1)),
            None,
            "the file's own statement runs as written"
        );
    }

    #[test]
    fn a_nullable_column_ends_with_its_backfill() {
        let steps = steps(&Statement::new(
            r#"ALTER TABLE "items" ADD COLUMN "score" double precision DEFAULT random();"#,
            1,
        ))
        .unwrap();
        assert_eq!(steps.len(), 3);
        assert!(steps[2].starts_with(DIRECTIVE), "{steps:?}");
    }

    #[test]
    fn the_batches_walk_the_key_in_order_and_write_only_what_is_still_null() {
        let a = add_column(DEFAULT_RANDOM).unwrap();
        let key = [
            KeyColumn {
                name: "tenant".into(),
                type_sql: "integer".into(),
            },
            KeyColumn {
                name: "Id".into(),
                type_sql: "uuid".into(),
            },
        ];
        let b = batches(&a, &key);
        assert_eq!(
            b.after,
            r#"WITH walked AS (SELECT "tenant", "Id" FROM "items" WHERE ("tenant", "Id") > (($2::text[])[1]::integer, ($2::text[])[2]::uuid) ORDER BY "tenant", "Id" LIMIT $1::int), filled AS (UPDATE "items" SET "token" = DEFAULT WHERE ("tenant", "Id") IN (SELECT "tenant", "Id" FROM walked) AND "token" IS NULL RETURNING 1) SELECT (SELECT count(*) FROM walked), (SELECT count(*) FROM filled), (SELECT ARRAY["tenant"::text, "Id"::text] FROM walked ORDER BY "tenant" DESC, "Id" DESC LIMIT 1)"#
        );
        assert!(b.first.contains(r#"FROM "items" ORDER BY"#), "{}", b.first);
        assert_eq!(refusal(&a, &key), None);
        assert!(refusal(&a, &[]).unwrap().contains("items has no primary key"));
    }
}
