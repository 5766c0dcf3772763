//! The expand / backfill / swap recipe for `ALTER COLUMN c SET DATA TYPE T USING e` (the way
//! pgroll changes a type): a new column `c__wm_new` of type `T` kept in step by a trigger, a
//! batched backfill, the column's NOT NULL, indexes and constraints rebuilt on it without
//! blocking writers, then a swap in one short transaction. Pure: the catalog's facts about
//! the column come in as [`Facts`], read by the engine right before the step that needs them.
//!
//! Consecutive type changes of one table (`online::merge` decides which) run as ONE recipe:
//! all the new columns added at once, one trigger computing them all, one backfill pass
//! writing them all, each index or constraint rebuilt once (with every changed column moved
//! in it), one swap. A single change is the same recipe with one column.
//!
//! The steps' texts depend on the statements alone, so a resumed run finds the same hashes.
//! The three steps that read the catalog (backfill, rebuild, swap) are the file's own
//! statements under a directive line saying which phase runs them.

use serde::Serialize;

use crate::migrations::statement::Statement;
use crate::sql::change_type::{change_types, constraint_on, index_on, ChangeType};
use crate::sql::online::quote;

pub const RECIPE: &str = "expandBackfillSwap";

/// The session setting the backfill sets: the trigger then leaves the new column to it.
pub const BACKFILL_SETTING: &str = "wishlist_migrator.backfill";

/// The steps that read the catalog when they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    Backfill,
    Rebuild,
    Swap,
}

impl Phase {
    fn directive(self) -> &'static str {
        match self {
            Phase::Backfill => "-- wishlist-migrator: online backfill",
            Phase::Rebuild => "-- wishlist-migrator: online rebuild",
            Phase::Swap => "-- wishlist-migrator: online swap",
        }
    }
}

/// How many steps come before the backfill (expand) of a recipe changing `columns` columns:
/// the new columns, the trigger's function, each column's check function, the trigger. The
/// undo of refused values forgets them.
pub fn expand_steps(columns: usize) -> usize {
    3 + columns
}

/// A name cut to Postgres's 63 bytes (on a character boundary) with `suffix` kept whole.
pub fn name(base: &str, suffix: &str) -> String {
    let mut base = base.to_string();
    while base.len() + suffix.len() > 63 {
        base.pop();
    }
    base + suffix
}

/// The recipe's own objects, named from the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Unquoted.
    pub new_column: String,
    /// Quoted, in the table's schema when the statement names one.
    pub sync_function: String,
    pub ok_function: String,
    /// Quoted, unqualified (a trigger lives on its table).
    pub trigger: String,
    /// Unquoted.
    pub not_null_check: String,
    /// Unquoted: a nullable column's check that every value converted (old and new NULL
    /// together), so a refused value written after the backfill fails its writer, as the
    /// statement as written would, instead of becoming NULL at the swap.
    pub converted_check: String,
}

pub fn names(ct: &ChangeType) -> Names {
    let base = format!("{}_{}", ct.table_name, ct.column);
    let in_schema = |n: String| match &ct.schema {
        Some(s) => format!("{}.{}", quote(s), quote(&n)),
        None => quote(&n),
    };
    Names {
        new_column: name(&ct.column, "__wm_new"),
        sync_function: in_schema(name(&base, "__wm_sync")),
        ok_function: in_schema(name(&base, "__wm_ok")),
        trigger: quote(&name(&base, "__wm_sync")),
        not_null_check: name(&base, "__wm_not_null"),
        converted_check: name(&base, "__wm_converted"),
    }
}

/// A temporary name for an index or constraint rebuilt on the new column.
pub fn temporary(original: &str) -> String {
    name(original, "__wm")
}

/// The steps of the recipe for `statement` (a type change).
pub fn steps(statement: &Statement) -> Option<Vec<String>> {
    steps_merged(&[statement])
}

/// The steps of one recipe for the type changes `statements` (of one table, no column twice).
pub fn steps_merged(statements: &[&Statement]) -> Option<Vec<String>> {
    let text = statements_text(statements);
    let cts = change_types(&text)?;
    let first = names(&cts[0]);
    let t = &cts[0].table;
    // The row as the statement's USING sees it: `(SELECT e FROM (SELECT row.*) AS t)` needs no
    // rewriting of `e`, whether it names the column alone or as `t.c`.
    let convert = |ct: &ChangeType, row: &str| format!("(SELECT {} FROM (SELECT {row}.*) AS {})", ct.using, quote(&ct.table_name));
    let body = |s: String| format!("$wm$ {s} $wm$");
    let phase = |p: Phase| format!("{}\n{text}", p.directive());
    let add = cts
        .iter()
        .map(|ct| format!("ADD COLUMN {} {}", quote(&names(ct).new_column), ct.new_type))
        .collect::<Vec<_>>()
        .join(", ");
    // Never raises: a value the new type refuses leaves its new column NULL, and the
    // backfill's check finds it. A writer gets no error the file as written would not give.
    let sync = cts
        .iter()
        .map(|ct| {
            let new = quote(&names(ct).new_column);
            format!(
                "BEGIN NEW.{new} := {}; EXCEPTION WHEN OTHERS THEN NEW.{new} := NULL; END;",
                convert(ct, "NEW")
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut out = vec![
        format!("ALTER TABLE {t} {add}"),
        format!(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}",
            first.sync_function,
            body(format!(
                "BEGIN IF current_setting('{BACKFILL_SETTING}', true) = 'on' THEN RETURN NEW; END IF; {sync} RETURN NEW; END"
            ))
        ),
    ];
    out.extend(cts.iter().map(|ct| {
        format!(
            "CREATE OR REPLACE FUNCTION {}(wm_row {t}) RETURNS boolean LANGUAGE plpgsql AS {}",
            names(ct).ok_function,
            body(format!(
                "BEGIN PERFORM {}; RETURN true; EXCEPTION WHEN OTHERS THEN RETURN false; END",
                convert(ct, "wm_row")
            ))
        )
    }));
    out.extend([
        // The WHEN spares the backfill's own UPDATE a PL/pgSQL call per row (it writes the new
        // columns itself): a plain expression, evaluated without entering the function.
        format!(
            "CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW \
             WHEN (current_setting('{BACKFILL_SETTING}', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION {}()",
            first.trigger, first.sync_function
        ),
        phase(Phase::Backfill),
        phase(Phase::Rebuild),
        phase(Phase::Swap),
    ]);
    Some(out)
}

/// The statements as a phase step carries them: one alone exactly as written (trimmed), several
/// one per line, each ending its statement.
fn statements_text(statements: &[&Statement]) -> String {
    match statements {
        [one] => one.sql.trim().to_string(),
        many => many
            .iter()
            .map(|s| format!("{};", s.sql.trim().trim_end_matches(';').trim_end()))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The phase a step runs in and the type changes it comes from, when it is one of the three
/// that read the catalog.
pub fn phase(statement: &Statement) -> Option<(Phase, Vec<ChangeType>)> {
    let (first, rest) = statement.sql.split_once('\n')?;
    let phase = [Phase::Backfill, Phase::Rebuild, Phase::Swap]
        .into_iter()
        .find(|p| p.directive() == first)?;
    Some((phase, change_types(rest)?))
}

/// A primary key column: its name and type as `format_type` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    pub type_sql: String,
}

/// An index that uses the column, as `pg_get_indexdef` prints it; `constraint` is the `UNIQUE`
/// constraint it carries, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFact {
    pub name: String,
    pub def: String,
    pub constraint: Option<String>,
}

/// A `CHECK` or `FOREIGN KEY` on the column, as `pg_get_constraintdef` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintFact {
    pub name: String,
    pub def: String,
}

/// What the catalog says of the column and its table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facts {
    pub key: Vec<KeyColumn>,
    pub not_null: bool,
    /// The column's default converted to the new type as Postgres converts it.
    pub default: Option<String>,
    pub indexes: Vec<IndexFact>,
    pub constraints: Vec<ConstraintFact>,
    /// What the recipe cannot rebuild: a view or rule reading the column, the column in the
    /// primary key, a foreign key of another table referencing it, an identity or generated
    /// column, another constraint kind (each named).
    pub blockers: Vec<String>,
}

/// Why the recipe cannot run on this table, naming what stands in the way.
pub fn refusal(ct: &ChangeType, facts: &Facts) -> Option<String> {
    let column = format!("{}.{}", ct.table_name, ct.column);
    if facts.key.is_empty() {
        return Some(format!(
            "{} has no primary key, which the backfill walks in order (add one, or run the change in a maintenance window)",
            ct.table_name
        ));
    }
    if !facts.blockers.is_empty() {
        return Some(format!(
            "the new column cannot replace {column} while {} depends on it (drop and re-create it around the change, or run it in a maintenance window)",
            facts.blockers.join(", ")
        ));
    }
    None
}

/// One statement of the rebuild, and how the catalog tells it already ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuild {
    /// `CREATE INDEX CONCURRENTLY` of this (unquoted) index.
    Index { name: String, sql: String },
    /// `ADD CONSTRAINT … NOT VALID` of this constraint.
    Constraint { name: String, sql: String },
    /// `VALIDATE CONSTRAINT` of this constraint.
    Validate { name: String, sql: String },
}

/// Each changed column with what the catalog says of it.
pub type Column = (ChangeType, Facts);

/// Every `(column, new column)` of the change: what an index or constraint on them moves.
fn moves(cols: &[Column]) -> Vec<(String, String)> {
    cols.iter().map(|(ct, _)| (ct.column.clone(), names(ct).new_column)).collect()
}

/// Each index (or constraint) of the changed columns once, by name, in the order first met.
fn once<'a, T>(all: impl Iterator<Item = &'a T>, name: impl Fn(&T) -> &str) -> Vec<&'a T> {
    let mut out: Vec<&T> = Vec::new();
    for x in all {
        if !out.iter().any(|y| name(y) == name(x)) {
            out.push(x);
        }
    }
    out
}

/// The NOT NULL, indexes and constraints of the columns built on the new columns, under
/// temporary names, without blocking writers; each index or constraint once, with every
/// changed column it uses moved; `None` when one cannot be rebuilt.
pub fn rebuild(cols: &[Column]) -> Option<Vec<Rebuild>> {
    let t = &cols.first()?.0.table;
    let moves = moves(cols);
    let moves: Vec<(&str, &str)> = moves.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut out = Vec::new();
    let mut constraint = |name: String, sql: String| {
        let validate = format!("ALTER TABLE {t} VALIDATE CONSTRAINT {}", quote(&name));
        out.push(Rebuild::Constraint { name: name.clone(), sql });
        out.push(Rebuild::Validate { name, sql: validate });
    };
    for (ct, facts) in cols {
        let n = names(ct);
        if facts.not_null {
            let nn = &n.not_null_check;
            let sql = format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID",
                quote(nn),
                quote(&n.new_column)
            );
            constraint(nn.clone(), sql);
        } else {
            let cc = &n.converted_check;
            let sql = format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} CHECK (({} IS NULL) = ({} IS NULL)) NOT VALID",
                quote(cc),
                quote(&ct.column),
                quote(&n.new_column)
            );
            constraint(cc.clone(), sql);
        }
    }
    for c in once(cols.iter().flat_map(|(_, f)| &f.constraints), |c| &c.name) {
        let tmp = temporary(&c.name);
        let sql = constraint_on(t, &tmp, &c.def, &moves)?;
        constraint(tmp, sql);
    }
    for i in once(cols.iter().flat_map(|(_, f)| &f.indexes), |i| &i.name) {
        let tmp = temporary(&i.name);
        let sql = index_on(&i.def, &moves, &tmp)?;
        out.push(Rebuild::Index { name: tmp, sql });
    }
    Some(out)
}

/// The swap, one transaction: the trigger and functions dropped, the old columns dropped (their
/// indexes and constraints with them), the new ones renamed, the rebuilt indexes and
/// constraints renamed to the original names, the defaults set, NOT NULL set (the validated
/// check spares the scan) and the check dropped.
pub fn swap(cols: &[Column]) -> Vec<String> {
    let Some((first, _)) = cols.first() else { return vec![] };
    let t = &first.table;
    let in_schema = |name: &str| match &first.schema {
        Some(s) => format!("{}.{}", quote(s), quote(name)),
        None => quote(name),
    };
    let n = names(first);
    let mut out = vec![
        format!("DROP TRIGGER {} ON {t}", n.trigger),
        format!("DROP FUNCTION {}()", n.sync_function),
    ];
    out.extend(cols.iter().map(|(ct, _)| format!("DROP FUNCTION {}({t})", names(ct).ok_function)));
    for (ct, facts) in cols {
        let n = names(ct);
        let c = quote(&ct.column);
        if !facts.not_null {
            out.push(format!("ALTER TABLE {t} DROP CONSTRAINT {}", quote(&n.converted_check)));
        }
        out.extend([
            format!("ALTER TABLE {t} DROP COLUMN {c}"),
            format!("ALTER TABLE {t} RENAME COLUMN {} TO {c}", quote(&n.new_column)),
        ]);
    }
    for i in once(cols.iter().flat_map(|(_, f)| &f.indexes), |i| &i.name) {
        let tmp = temporary(&i.name);
        out.push(match &i.constraint {
            Some(con) => format!("ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE USING INDEX {}", quote(con), quote(&tmp)),
            None => format!("ALTER INDEX {} RENAME TO {}", in_schema(&tmp), quote(&i.name)),
        });
    }
    for k in once(cols.iter().flat_map(|(_, f)| &f.constraints), |c| &c.name) {
        out.push(format!(
            "ALTER TABLE {t} RENAME CONSTRAINT {} TO {}",
            quote(&temporary(&k.name)),
            quote(&k.name)
        ));
    }
    for (ct, facts) in cols {
        let c = quote(&ct.column);
        if let Some(default) = &facts.default {
            out.push(format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {default}"));
        }
        if facts.not_null {
            out.push(format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL"));
            out.push(format!("ALTER TABLE {t} DROP CONSTRAINT {}", quote(&names(ct).not_null_check)));
        }
    }
    out
}

/// The expand taken back (values the new type refuses): nothing of the recipe stays, the
/// original columns untouched.
pub fn undo(cts: &[ChangeType]) -> Vec<String> {
    let Some(first) = cts.first() else { return vec![] };
    let n = names(first);
    let t = &first.table;
    let mut out = vec![
        format!("DROP TRIGGER IF EXISTS {} ON {t}", n.trigger),
        format!("DROP FUNCTION IF EXISTS {}()", n.sync_function),
    ];
    out.extend(
        cts.iter()
            .map(|ct| format!("DROP FUNCTION IF EXISTS {}({t})", names(ct).ok_function)),
    );
    out.extend(
        cts.iter()
            .map(|ct| format!("ALTER TABLE {t} DROP COLUMN IF EXISTS {}", quote(&names(ct).new_column))),
    );
    out
}

/// The backfill's statements over the primary key `key`: one pass writes every new column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    /// The first batch: `$1` is the batch size. Answers (rows walked, rows written, last key
    /// as text[]).
    pub first: String,
    /// A later batch: `$1` the batch size, `$2` the last key of the batch before (text[]).
    pub next: String,
    /// The same batch, each row converted by the trigger (which never raises): for a batch
    /// in which a new type refused a value. `$1`, `$2` as in `next`; `$2` may be null.
    pub fallback: String,
    /// For each column, in order, the rows whose value its new type refuses: (count, the
    /// first keys as text[] each).
    pub refused: Vec<String>,
}

pub fn backfill(cts: &[ChangeType], key: &[KeyColumn], shown: usize) -> Backfill {
    let t = &cts[0].table;
    let cols: Vec<String> = key.iter().map(|k| quote(&k.name)).collect();
    let list = cols.join(", ");
    let tuple = format!("({list})");
    let after = format!(
        "({}) > ({})",
        list,
        key.iter()
            .enumerate()
            .map(|(i, k)| format!("($2::text[])[{}]::{}", i + 1, k.type_sql))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let as_text = format!(
        "ARRAY[{}]",
        cols.iter().map(|c| format!("{c}::text")).collect::<Vec<_>>().join(", ")
    );
    let desc = cols.iter().map(|c| format!("{c} DESC")).collect::<Vec<_>>().join(", ");
    // The batch's last key, one scalar subquery per column: the UPDATE then reads the batch as
    // one range of the primary key's index (from the last batch's key to this one's), not as
    // one index lookup per key of a list; in one statement it sees the same rows as `b`.
    let upto = format!(
        "{tuple} <= ({})",
        cols.iter().map(|c| format!("(SELECT {c} FROM l)")).collect::<Vec<_>>().join(", ")
    );
    let batch = |from: &str, set: &str, changed: &str| {
        let filter = if from.is_empty() { String::new() } else { format!("WHERE {from}") };
        let range = if from.is_empty() {
            upto.clone()
        } else {
            format!("{from} AND {upto}")
        };
        format!(
            "WITH b AS (SELECT {list} FROM {t} {filter} ORDER BY {list} LIMIT $1::int), \
             l AS (SELECT {list} FROM b ORDER BY {desc} LIMIT 1), \
             u AS (UPDATE {t} SET {set} WHERE {range}{changed} RETURNING 1) \
             SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM u), (SELECT {as_text} FROM l)"
        )
    };
    let new = |ct: &ChangeType| quote(&names(ct).new_column);
    let set = cts
        .iter()
        .map(|ct| format!("{} = ({})", new(ct), ct.using))
        .collect::<Vec<_>>()
        .join(", ");
    let nulls = cts.iter().map(|ct| format!("{} = NULL", new(ct))).collect::<Vec<_>>().join(", ");
    // A row is written only when one of its new columns is not yet its converted value: a
    // resumed backfill writes no row twice.
    let changed = format!(
        " AND ({})",
        cts.iter()
            .map(|ct| format!("{} IS DISTINCT FROM ({})", new(ct), ct.using))
            .collect::<Vec<_>>()
            .join(" OR ")
    );
    Backfill {
        first: batch("", &set, &changed),
        next: batch(&after, &set, &changed),
        fallback: batch(&format!("($2::text[] IS NULL OR {after})"), &nulls, ""),
        refused: cts
            .iter()
            .map(|ct| {
                format!(
                    "WITH r AS (SELECT {list} FROM {t} AS wm_t WHERE {} IS NULL AND NOT {}(wm_t)) \
                     SELECT (SELECT count(*) FROM r), ARRAY(SELECT array_to_string({as_text}, ', ') FROM r ORDER BY {list} LIMIT {shown})",
                    new(ct),
                    names(ct).ok_function
                )
            })
            .collect(),
    }
}

/// The next batch's size: the last one scaled toward `target_ms`, at most doubling or halving
/// (one batch that ran fast on cached pages must not make the next overshoot the writers'
/// bound), between 100 and 50,000 rows.
pub fn next_batch(size: i64, took_ms: u64, target_ms: u64) -> i64 {
    let scaled = (size as f64 * target_ms as f64 / took_ms.max(1) as f64) as i64;
    scaled.clamp(size / 2, size * 2).clamp(100, 50_000)
}

#[cfg(test)]
mod tests;
