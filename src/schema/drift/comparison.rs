//! The comparison itself: both models side by side, object by object. Its tests go end to end
//! (snapshot and catalog in, differences out), so they sit here rather than by each normaliser.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::catalog::Catalog;
use crate::schema::snapshot::Snapshot;

use super::difference::{changed, diff_enum_values, extra, missing, Difference, DifferenceKind};
use super::ident::quote_ident;
use super::model::{qualified, Key, Model, PrimaryKeyModel, ProbeOf, TableModel};
use super::options::DriftOptions;
use super::shown::Shown;

/// Every difference between what `expected` describes and what `actual` holds.
pub fn compare(expected: &Snapshot, actual: &Catalog, options: &DriftOptions) -> Vec<Difference> {
    compare_with_questions(expected, actual, options).0
}

/// A difference that may be one of spelling only: everything but its SQL expressions agrees,
/// and the canonical forms of the expressions do not. Postgres can settle it (`settle`): the
/// engine has it print each pair of expressions, in the context of their table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Index into the differences `compare_with_questions` returned.
    pub difference: usize,
    pub schema: String,
    pub table: String,
    /// (snapshot's, database's) expression, as each side wrote it.
    pub pairs: Vec<(String, String)>,
}

/// The differences, and the questions that may settle some of them.
pub fn compare_with_questions(expected: &Snapshot, actual: &Catalog, options: &DriftOptions) -> (Vec<Difference>, Vec<Question>) {
    let mut questions = Vec::new();
    let want = Model::expected(expected, actual, options);
    let have = Model::actual(actual, &want, options);
    let mut out = Vec::new();
    diff_sets(
        &want.schemas,
        &have.schemas,
        DifferenceKind::MissingSchema,
        DifferenceKind::ExtraSchema,
        &mut out,
    );
    diff_enums(&want.enums, &have.enums, &mut out);
    for (key, table) in &want.tables {
        match have.tables.get(key) {
            None => out.push(missing(DifferenceKind::MissingTable, qualified(key), "table")),
            Some(live) => {
                let start = out.len();
                diff_table(&qualified(key), table, live, &mut out);
                ask(key, table, live, start, &out, &mut questions);
            }
        }
    }
    for key in have.tables.keys().filter(|k| !want.tables.contains_key(*k)) {
        out.push(extra(DifferenceKind::ExtraTable, qualified(key), "table"));
    }
    diff_shown(
        &keyed(&want.sequences),
        &keyed(&have.sequences),
        [
            DifferenceKind::MissingSequence,
            DifferenceKind::ExtraSequence,
            DifferenceKind::SequenceDefinition,
        ],
        &mut out,
    );
    diff_shown(
        &keyed(&want.views),
        &keyed(&have.views),
        [
            DifferenceKind::MissingView,
            DifferenceKind::ExtraView,
            DifferenceKind::ViewDefinition,
        ],
        &mut out,
    );
    (out, questions)
}

/// Drops the differences Postgres answered are the same: `same[i]` answers `questions[i]`.
pub fn settle(differences: Vec<Difference>, questions: &[Question], same: &[bool]) -> Vec<Difference> {
    let settled: BTreeSet<usize> = questions.iter().zip(same).filter(|(_, s)| **s).map(|(q, _)| q.difference).collect();
    differences
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !settled.contains(i))
        .map(|(_, d)| d)
        .collect()
}

/// The table's differences from `start` on whose sides differ in their expressions only.
fn ask(key: &Key, want: &TableModel, have: &TableModel, start: usize, out: &[Difference], questions: &mut Vec<Question>) {
    let prefix = format!("{}.", qualified(key));
    for (i, d) in out.iter().enumerate().skip(start) {
        let of = match d.kind {
            DifferenceKind::PolicyDefinition => ProbeOf::Policy,
            DifferenceKind::ConstraintDefinition => ProbeOf::Constraint,
            DifferenceKind::ColumnGenerated => ProbeOf::Generated,
            _ => continue,
        };
        let Some(name) = d.object.strip_prefix(&prefix) else { continue };
        let probe = (of, name.to_string());
        let (Some(w), Some(h)) = (want.probes.get(&probe), have.probes.get(&probe)) else {
            continue;
        };
        if w.frame != h.frame || w.expressions.len() != h.expressions.len() {
            continue;
        }
        questions.push(Question {
            difference: i,
            schema: key.0.clone(),
            table: key.1.clone(),
            pairs: w.expressions.iter().cloned().zip(h.expressions.iter().cloned()).collect(),
        });
    }
}

fn keyed(map: &BTreeMap<Key, Shown>) -> BTreeMap<String, Shown> {
    map.iter().map(|(k, v)| (qualified(k), v.clone())).collect()
}

fn diff_sets(
    want: &BTreeSet<String>,
    have: &BTreeSet<String>,
    missing_kind: DifferenceKind,
    extra_kind: DifferenceKind,
    out: &mut Vec<Difference>,
) {
    for s in want.difference(have) {
        out.push(missing(missing_kind, s.clone(), "schema"));
    }
    for s in have.difference(want) {
        out.push(extra(extra_kind, s.clone(), "schema"));
    }
}

fn diff_shown(want: &BTreeMap<String, Shown>, have: &BTreeMap<String, Shown>, kinds: [DifferenceKind; 3], out: &mut Vec<Difference>) {
    let [missing_kind, extra_kind, changed_kind] = kinds;
    for (name, w) in want {
        match have.get(name) {
            None => out.push(missing(missing_kind, name.clone(), &w.display)),
            Some(h) if h.key != w.key => out.push(changed(changed_kind, name.clone(), &w.display, &h.display)),
            Some(_) => {}
        }
    }
    for (name, h) in have {
        if !want.contains_key(name) {
            out.push(extra(extra_kind, name.clone(), &h.display));
        }
    }
}

fn diff_enums(want: &BTreeMap<Key, Vec<String>>, have: &BTreeMap<Key, Vec<String>>, out: &mut Vec<Difference>) {
    for (key, values) in want {
        let object = qualified(key);
        match have.get(key) {
            None => out.push(missing(DifferenceKind::MissingEnum, object, &values.join(", "))),
            Some(live) => diff_enum_values(&object, values, live, out),
        }
    }
    for (key, values) in have {
        if !want.contains_key(key) {
            out.push(extra(DifferenceKind::ExtraEnum, qualified(key), &values.join(", ")));
        }
    }
}

fn diff_table(object: &str, want: &TableModel, have: &TableModel, out: &mut Vec<Difference>) {
    use DifferenceKind as K;
    for (name, w) in &want.columns {
        let column = format!("{object}.{name}");
        let Some(h) = have.columns.get(name) else {
            out.push(missing(K::MissingColumn, column, &w.ty.display));
            continue;
        };
        if w.ty.key != h.ty.key {
            out.push(changed(K::ColumnType, column.clone(), &w.ty.display, &h.ty.display));
        }
        if w.not_null != h.not_null {
            let word = |n: bool| if n { "not null" } else { "nullable" };
            out.push(changed(K::ColumnNullability, column.clone(), word(w.not_null), word(h.not_null)));
        }
        diff_optional(K::ColumnDefault, &column, &w.default, &h.default, out);
        diff_optional(K::ColumnIdentity, &column, &w.identity, &h.identity, out);
        diff_optional(K::ColumnGenerated, &column, &w.generated, &h.generated, out);
    }
    for (name, h) in &have.columns {
        if !want.columns.contains_key(name) {
            out.push(extra(K::ExtraColumn, format!("{object}.{name}"), &h.ty.display));
        }
    }
    let prefixed =
        |m: &BTreeMap<String, Shown>| -> BTreeMap<String, Shown> { m.iter().map(|(k, v)| (format!("{object}.{k}"), v.clone())).collect() };
    diff_shown(
        &prefixed(&want.indexes),
        &prefixed(&have.indexes),
        [K::MissingIndex, K::ExtraIndex, K::IndexDefinition],
        out,
    );
    match (&want.primary_key, &have.primary_key) {
        (Some(w), None) => out.push(missing(K::MissingPrimaryKey, object.to_string(), &pk_display(w))),
        (None, Some(h)) => out.push(extra(
            K::ExtraPrimaryKey,
            format!("{object}.{}", h.name.as_deref().unwrap_or("")),
            &pk_display(h),
        )),
        (Some(w), Some(h)) => {
            let name_differs = w.name.is_some() && w.name != h.name;
            if w.columns != h.columns || name_differs {
                out.push(changed(K::PrimaryKeyDefinition, object.to_string(), &pk_display(w), &pk_display(h)));
            }
        }
        (None, None) => {}
    }
    diff_shown(
        &prefixed(&want.constraints),
        &prefixed(&have.constraints),
        [K::MissingConstraint, K::ExtraConstraint, K::ConstraintDefinition],
        out,
    );
    if want.rls != have.rls {
        let word = |on: bool| if on { "enabled" } else { "disabled" };
        out.push(changed(K::RowLevelSecurity, object.to_string(), word(want.rls), word(have.rls)));
    }
    diff_shown(
        &prefixed(&want.policies),
        &prefixed(&have.policies),
        [K::MissingPolicy, K::ExtraPolicy, K::PolicyDefinition],
        out,
    );
}

fn diff_optional(kind: DifferenceKind, object: &str, want: &Option<Shown>, have: &Option<Shown>, out: &mut Vec<Difference>) {
    match (want, have) {
        (Some(w), Some(h)) if w.key != h.key => out.push(changed(kind, object.to_string(), &w.display, &h.display)),
        (Some(w), None) => out.push(changed(kind, object.to_string(), &w.display, "none")),
        (None, Some(h)) => out.push(changed(kind, object.to_string(), "none", &h.display)),
        _ => {}
    }
}

fn pk_display(pk: &PrimaryKeyModel) -> String {
    let columns = pk.columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    match &pk.name {
        Some(name) => format!("{} PRIMARY KEY ({columns})", quote_ident(name)),
        None => format!("PRIMARY KEY ({columns})"),
    }
}

#[cfg(test)]
#[path = "comparison_tests.rs"]
mod tests;
