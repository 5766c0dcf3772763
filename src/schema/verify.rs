//! `verify`: the parts of a migration's definition of done that need the live database beyond
//! drift: every enum holds its values in order, every index is valid, and the application's hot
//! queries (a catalogue kept beside the migrations, `verify/queries.sql`) are served by the
//! index each is meant to use, checked with EXPLAIN inside a transaction that is rolled back.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::db::catalog::Catalog;
use crate::error::{Classified, ErrorType};
use crate::schema::drift::Difference;
use crate::schema::snapshot::Snapshot;

/// The query catalogue, relative to the migrations folder.
pub const QUERY_CATALOGUE: &str = "verify/queries.sql";

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path} line {line}: {reason}")]
    Catalogue { path: String, line: usize, reason: String },
    #[error("{count} verification check(s) failed; first: {first}")]
    Failed { count: usize, first: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckKind {
    /// The live schema against the snapshot (the `drift` command's comparison).
    Schema,
    EnumValues,
    IndexValid,
    QueryPlan,
    /// `check-rollback`: apply, roll back, compare, re-apply.
    RollbackRoundTrip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckStatus {
    Passed,
    Failed,
    Skipped,
}

/// One verification and its outcome, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub kind: CheckKind,
    /// What was checked: an enum, an index, a query's name, a migration's tag.
    pub object: String,
    pub status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `EXPLAIN (ANALYZE, BUFFERS)` figures, with `--analyze`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
}

impl Check {
    pub fn new(kind: CheckKind, object: impl Into<String>) -> Self {
        Self {
            kind,
            object: object.into(),
            status: CheckStatus::Passed,
            detail: None,
            timing: None,
            differences: Vec::new(),
        }
    }

    pub fn fail(&mut self, detail: impl Into<String>) {
        self.status = CheckStatus::Failed;
        self.detail = Some(detail.into());
    }

    pub fn failed(&self) -> bool {
        self.status == CheckStatus::Failed
    }

    pub fn describe(&self) -> String {
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match &self.detail {
            Some(d) => format!("{kind} {}: {d}", self.object),
            None => format!("{kind} {}", self.object),
        }
    }
}

/// Times in microseconds, as precise as EXPLAIN reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    pub planning_us: u64,
    pub execution_us: u64,
    pub shared_hit_blocks: i64,
    pub shared_read_blocks: i64,
    /// The indexes the real planner (sequential scans allowed) chose.
    pub indexes: Vec<String>,
}

/// One entry of the query catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotQuery {
    pub name: String,
    /// The index that must serve it.
    pub index: String,
    /// The migration that introduces what the query needs; skipped on older databases.
    pub since: Option<String>,
    pub sql: String,
    pub line: usize,
}

/// Reads the catalogue: each query starts with `-- query: <name>`, names its index with
/// `-- index: <name>` (and optionally `-- since: <tag>`), then one SQL statement.
pub fn parse_catalogue(text: &str, path: &str) -> Result<Vec<HotQuery>, VerifyError> {
    let error = |line: usize, reason: String| VerifyError::Catalogue {
        path: path.to_string(),
        line,
        reason,
    };
    let mut queries: Vec<HotQuery> = Vec::new();
    let mut current: Option<HotQuery> = None;
    let finish = |q: HotQuery, queries: &mut Vec<HotQuery>| -> Result<(), VerifyError> {
        if q.index.is_empty() {
            return Err(error(q.line, format!("query {:?} names no `-- index:`", q.name)));
        }
        let sql = q.sql.trim().trim_end_matches(';').trim().to_string();
        if sql.is_empty() {
            return Err(error(q.line, format!("query {:?} has no SQL", q.name)));
        }
        if sql.contains(';') {
            return Err(error(q.line, format!("query {:?} holds more than one statement", q.name)));
        }
        if queries.iter().any(|other| other.name == q.name) {
            return Err(error(q.line, format!("query name {:?} is used twice", q.name)));
        }
        queries.push(HotQuery { sql, ..q });
        Ok(())
    };
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim();
        let directive = trimmed
            .strip_prefix("--")
            .map(str::trim)
            .and_then(|d| d.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()));
        match directive {
            Some((key, value)) if key == "query" => {
                if let Some(q) = current.take() {
                    finish(q, &mut queries)?;
                }
                if value.is_empty() {
                    return Err(error(line, "`-- query:` needs a name".into()));
                }
                current = Some(HotQuery {
                    name: value.to_string(),
                    index: String::new(),
                    since: None,
                    sql: String::new(),
                    line,
                });
            }
            Some((key, value)) if key == "index" || key == "since" => {
                let q = current
                    .as_mut()
                    .ok_or_else(|| error(line, format!("`-- {key}:` before any `-- query:`")))?;
                if key == "index" {
                    q.index = value.to_string();
                } else {
                    q.since = Some(value.to_string());
                }
            }
            _ if trimmed.starts_with("--") || trimmed.is_empty() => {}
            _ => match current.as_mut() {
                Some(q) => {
                    q.sql.push_str(raw);
                    q.sql.push('\n');
                }
                None => return Err(error(line, "SQL before any `-- query:` header".into())),
            },
        }
    }
    if let Some(q) = current.take() {
        finish(q, &mut queries)?;
    }
    Ok(queries)
}

/// Every expected enum holds exactly its values, in order.
pub fn enum_checks(expected: &Snapshot, actual: &Catalog) -> Vec<Check> {
    expected
        .enums
        .values()
        .map(|e| {
            let mut check = Check::new(CheckKind::EnumValues, format!("{}.{}", e.schema, e.name));
            match actual.enums.iter().find(|l| l.schema == e.schema && l.name == e.name) {
                None => check.fail("the enum does not exist"),
                // Values added with ALTER TYPE … ADD VALUE are appended by Postgres, where the
                // snapshot lists them in source order: the same values are the same enum.
                Some(live) if live.values != e.values && same_values(&live.values, &e.values) => {
                    check.detail = Some(format!("{} (in the order Postgres appended them)", live.values.join(", ")))
                }
                Some(live) if live.values != e.values => check.fail(format!(
                    "values are ({}), expected ({})",
                    live.values.join(", "),
                    e.values.join(", ")
                )),
                Some(live) => check.detail = Some(live.values.join(", ")),
            }
            check
        })
        .collect()
}

fn same_values(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<&String> = a.iter().collect();
    let mut b: Vec<&String> = b.iter().collect();
    a.sort();
    b.sort();
    a == b
}

/// Every index in the schemas the application uses is valid: a failed `CREATE INDEX
/// CONCURRENTLY` leaves an index Postgres maintains on writes but never reads.
pub fn index_checks(actual: &Catalog, include: impl Fn(&str, &str) -> bool) -> Vec<Check> {
    actual
        .indexes()
        .filter(|(t, _)| include(&t.schema, &t.name))
        .map(|(t, i)| {
            let mut check = Check::new(CheckKind::IndexValid, format!("{}.{}.{}", t.schema, t.name, i.name));
            if !i.valid {
                check.fail(format!(
                    "index {} is INVALID (a failed concurrent build?): DROP INDEX CONCURRENTLY it and create it again",
                    i.name
                ));
            }
            check
        })
        .collect()
}

/// The index names anywhere in an `EXPLAIN (FORMAT JSON)` plan.
pub fn indexes_in_plan(plan: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(name)) = map.get("Index Name") {
                    if !out.contains(name) {
                        out.push(name.clone());
                    }
                }
                map.values().for_each(|child| walk(child, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|child| walk(child, out)),
            _ => {}
        }
    }
    walk(plan, &mut out);
    out
}

fn timing_of(plan: &serde_json::Value) -> Timing {
    let top = plan.get(0).unwrap_or(plan);
    let node = top.get("Plan").unwrap_or(&serde_json::Value::Null);
    let number = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    Timing {
        planning_us: (number(top.get("Planning Time")) * 1000.0).round() as u64,
        execution_us: (number(top.get("Execution Time")) * 1000.0).round() as u64,
        shared_hit_blocks: number(node.get("Shared Hit Blocks")) as i64,
        shared_read_blocks: number(node.get("Shared Read Blocks")) as i64,
        indexes: indexes_in_plan(plan),
    }
}

/// Runs `EXPLAIN` in a transaction that is always rolled back, so even a data-changing query
/// changes nothing.
async fn explain(client: &mut Client, settings: &[String], options: &str, sql: &str) -> Result<serde_json::Value, String> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| crate::db::connection::PgError::from(e).to_string())?;
    for s in settings {
        tx.batch_execute(s)
            .await
            .map_err(|e| crate::db::connection::PgError::from(e).to_string())?;
    }
    let messages = tx
        .simple_query(&format!("EXPLAIN ({options}) {sql}"))
        .await
        .map_err(|e| crate::db::connection::PgError::from(e).to_string())?;
    let _ = tx.rollback().await;
    let text: String = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    serde_json::from_str(&text).map_err(|e| format!("unreadable EXPLAIN output: {e}"))
}

/// Whether `query` can be served by its index. Small tables make the planner prefer a sequential
/// scan whatever indexes exist, so sequential scans are switched off for the check: what is
/// tested is that the index is usable for the query, not the planner's cost choice. With
/// `analyze`, the query also runs under the normal planner and its timings are reported.
pub async fn plan_check(client: &mut Client, query: &HotQuery, catalog: &Catalog, analyze: bool, statement_timeout: Duration) -> Check {
    let mut check = Check::new(CheckKind::QueryPlan, query.name.clone());
    let timeout = format!("SET LOCAL statement_timeout = '{}ms'", statement_timeout.as_millis().max(1));
    let forced = [timeout.clone(), "SET LOCAL enable_seqscan = off".to_string()];
    match explain(client, &forced, "FORMAT JSON", &query.sql).await {
        Err(e) => check.fail(format!("EXPLAIN failed: {e}")),
        Ok(plan) => judge_plan(&mut check, &query.index, &indexes_in_plan(&plan), catalog),
    }
    if analyze && !check.failed() {
        match explain(client, &[timeout], "ANALYZE, BUFFERS, FORMAT JSON", &query.sql).await {
            Ok(plan) => check.timing = Some(timing_of(&plan)),
            Err(e) => check.fail(format!("EXPLAIN ANALYZE failed: {e}")),
        }
    }
    check
}

/// Passes when the plan uses `expected`, or an index of the same table whose key columns begin
/// with all of `expected`'s: without statistics both cost the same and the planner takes either.
/// The expected index must exist and be valid either way.
fn judge_plan(check: &mut Check, expected: &str, used: &[String], catalog: &Catalog) {
    let find = |name: &str| catalog.indexes().find(|(_, i)| i.name == name);
    let Some((table, index)) = find(expected) else {
        check.fail(format!("index {expected} does not exist; the plan uses {}", list_or_none(used)));
        return;
    };
    if !index.valid {
        check.fail(format!("index {expected} is INVALID and cannot serve the query"));
        return;
    }
    if used.iter().any(|u| u == expected) {
        check.detail = Some(format!("uses {expected}"));
        return;
    }
    let keys = |i: &crate::db::catalog::Index| i.columns.iter().map(|c| c.expression.clone()).collect::<Vec<_>>();
    let wanted = keys(index);
    let equivalent = used.iter().find(|u| {
        find(u).is_some_and(|(t, i)| {
            t.schema == table.schema && t.name == table.name && i.method == index.method && keys(i).starts_with(&wanted)
        })
    });
    match equivalent {
        Some(other) => {
            check.detail = Some(format!(
            "uses {other}, whose key columns begin with all of {expected}'s; the planner cannot tell them apart without table statistics"
        ))
        }
        None => check.fail(format!("is not served by index {expected}; the plan uses {}", list_or_none(used))),
    }
}

fn list_or_none(used: &[String]) -> String {
    if used.is_empty() {
        "no index (a sequential scan)".into()
    } else {
        used.join(", ")
    }
}

impl Classified for VerifyError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::Catalogue { .. } => ErrorType::InvalidMigrations,
            Self::Failed { .. } => ErrorType::VerificationFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projects_catalogue_parses() {
        let text = include_str!("../../migrations/verify/queries.sql");
        let queries = parse_catalogue(text, "queries.sql").unwrap();
        assert!(queries.len() >= 4);
        assert!(queries
            .iter()
            .all(|q| !q.sql.ends_with(';') && q.index.starts_with("idx_wishlist_")));
    }

    #[test]
    fn catalogue_entries_and_errors() {
        let text = "-- Hot queries\n\n-- query: by sort\n-- index: idx_sort\nSELECT *\n  FROM t WHERE a = 1\n  ORDER BY b;\n\n-- query: later\n-- index: idx_later\n-- since: 0001_x\nSELECT 1 FROM t WHERE c = 2;\n";
        let q = parse_catalogue(text, "q.sql").unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].name, "by sort");
        assert_eq!(q[0].index, "idx_sort");
        assert_eq!(q[0].sql, "SELECT *\n  FROM t WHERE a = 1\n  ORDER BY b");
        assert_eq!(q[0].line, 3);
        assert_eq!(q[1].since.as_deref(), Some("0001_x"));
        for (bad, needle) in [
            ("SELECT 1;", "before any"),
            ("-- query: a\nSELECT 1;", "names no"),
            ("-- query: a\n-- index: i\n", "no SQL"),
            ("-- query: a\n-- index: i\nSELECT 1; SELECT 2;", "more than one"),
            ("-- query: a\n-- index: i\nSELECT 1;\n-- query: a\n-- index: i\nSELECT 2;", "twice"),
            ("-- index: i\n", "before any"),
        ] {
            let err = parse_catalogue(bad, "q.sql").unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn finds_indexes_in_nested_plans() {
        let plan = serde_json::json!([{"Plan": {"Node Type": "Limit", "Plans": [
            {"Node Type": "Bitmap Heap Scan", "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "idx_a"}]},
            {"Node Type": "Index Scan", "Index Name": "idx_b"}
        ]}, "Planning Time": 0.1, "Execution Time": 0.2}]);
        assert_eq!(indexes_in_plan(&plan), ["idx_a", "idx_b"]);
        let t = timing_of(&plan);
        assert_eq!((t.planning_us, t.execution_us), (100, 200));
        assert!(indexes_in_plan(&serde_json::json!([{"Plan": {"Node Type": "Seq Scan"}}])).is_empty());
    }

    #[test]
    fn a_plan_passes_with_its_index_or_an_equivalent_longer_one() {
        let index = |name: &str, columns: &[&str], valid: bool| crate::db::catalog::Index {
            name: name.into(),
            method: "btree".into(),
            valid,
            columns: columns
                .iter()
                .map(|c| crate::db::catalog::IndexColumn {
                    expression: c.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let catalog = Catalog {
            tables: vec![crate::db::catalog::Table {
                schema: "public".into(),
                name: "t".into(),
                indexes: vec![
                    index("a_b", &["a", "b"], true),
                    index("a_b_c", &["a", "b", "c"], true),
                    index("a_c", &["a", "c"], true),
                    index("bad", &["a"], false),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let judge = |expected: &str, used: &[&str]| {
            let mut check = Check::new(CheckKind::QueryPlan, "q");
            judge_plan(
                &mut check,
                expected,
                &used.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
                &catalog,
            );
            check
        };
        assert!(!judge("a_b", &["a_b"]).failed());
        assert!(!judge("a_b", &["a_b_c"]).failed());
        let c = judge("a_b", &["a_c"]);
        assert!(c.failed() && c.detail.as_deref().unwrap().contains("a_b"));
        assert!(judge("a_b_c", &["a_b"]).failed(), "a shorter index is not equivalent");
        assert!(judge("a_b", &[]).failed());
        let gone = judge("dropped", &["a_b"]);
        assert!(gone.failed() && gone.detail.as_deref().unwrap().contains("dropped does not exist"));
        assert!(judge("bad", &["bad"]).failed(), "an invalid index serves nothing");
    }

    #[test]
    fn enum_and_index_checks() {
        let snapshot = Snapshot::parse(include_bytes!("../../migrations/meta/0001_snapshot.json"), "t", "p").unwrap();
        let mut catalog = Catalog::default();
        let checks = enum_checks(&snapshot, &catalog);
        assert!(checks.iter().all(Check::failed) && checks.len() == 2);
        catalog.enums = snapshot
            .enums
            .values()
            .map(|e| crate::db::catalog::Enum {
                schema: e.schema.clone(),
                name: e.name.clone(),
                values: e.values.clone(),
            })
            .collect();
        assert!(enum_checks(&snapshot, &catalog).iter().all(|c| !c.failed()));
        catalog.enums[0].values.reverse();
        assert!(
            enum_checks(&snapshot, &catalog).iter().all(|c| !c.failed()),
            "the same values in Postgres's appended order"
        );
        catalog.enums[0].values.pop();
        assert_eq!(enum_checks(&snapshot, &catalog).iter().filter(|c| c.failed()).count(), 1);

        catalog.tables = vec![crate::db::catalog::Table {
            schema: "public".into(),
            name: "t".into(),
            indexes: vec![
                crate::db::catalog::Index {
                    name: "ok".into(),
                    valid: true,
                    ..Default::default()
                },
                crate::db::catalog::Index {
                    name: "broken".into(),
                    valid: false,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }];
        let checks = index_checks(&catalog, |_, _| true);
        assert_eq!(
            checks.iter().filter(|c| c.failed()).map(|c| c.object.as_str()).collect::<Vec<_>>(),
            ["public.t.broken"]
        );
        assert!(index_checks(&catalog, |_, _| false).is_empty());
    }
}
