//! `--online`: which statement of a pending migration runs as written and which by a lock-safe
//! recipe, decided from the lint gate's findings (graded with the live table sizes) and
//! Postgres's own reading of the statement (`sql::online`). Pure: the engine runs the result.
//!
//! A migration with a recipe is rewritten into one that runs statement by statement (each step
//! commits on its own, with its history row, so a run killed between steps resumes after the
//! last one that committed), and keeps the file's hash: its ledger row is drizzle-orm's.

pub mod add_column;
pub mod change_type;
pub mod not_null;

use serde::{Deserialize, Serialize};

use crate::lint::rule::Rule;
use crate::lint::Finding;
use crate::migrations::source::{Migration, Needs, TransactionMode};
use crate::migrations::statement::Statement;
use crate::sql::online::{shape, Shape};

/// How long each step waits for its lock before it gives way to the table's traffic and is
/// tried again (pgroll's figure): a writer queued behind the step waits no longer than this.
pub const STEP_LOCK_TIMEOUT_MS: u64 = 500;

/// What `--online` does with one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "decision")]
pub enum Decision {
    /// No blocking finding: it runs as written.
    AsWritten,
    /// Runs as these steps, each committed on its own.
    Recipe { recipe: String, steps: Vec<String> },
    /// A blocking finding no recipe answers: the run is refused before anything changes.
    Refused { rule: String, reason: String },
    /// A type change that runs in the recipe of a later statement of the same table
    /// (`into`, 1-based): one expand, one backfill pass, one swap for both.
    Merged { into: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementPlan {
    /// 1-based, in the file.
    pub statement: usize,
    pub line: usize,
    pub summary: String,
    #[serde(flatten)]
    pub decision: Decision,
    /// The lint's estimate of the scan or rewrite the statement makes (from the table's size):
    /// as written, writers wait that long; by the recipe, the scan still takes about that long
    /// but under a lock writers pass. `None` without a live size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnlinePlan {
    pub migration: String,
    pub statements: Vec<StatementPlan>,
}

impl OnlinePlan {
    /// The first statement no recipe answers.
    pub fn refused(&self) -> Option<&StatementPlan> {
        self.statements.iter().find(|s| matches!(s.decision, Decision::Refused { .. }))
    }

    pub fn has_recipe(&self) -> bool {
        self.statements.iter().any(|s| matches!(s.decision, Decision::Recipe { .. }))
    }
}

/// The recipe a blocking finding of `rule` on `statement` has, if any: the finding must be one
/// the recipe removes, and the statement a shape it knows.
pub fn recipe(rule: Rule, statement: &Statement) -> Option<(&'static str, Vec<String>)> {
    if !statement.is_single() {
        return None;
    }
    if rule == Rule::ColumnTypeRewrite {
        return Some((change_type::RECIPE, change_type::steps(statement)?));
    }
    if rule == Rule::VolatileDefault {
        return Some((add_column::RECIPE, add_column::steps(statement)?));
    }
    match (rule, shape(&statement.sql)?) {
        (Rule::IndexWithoutConcurrently, Shape::CreateIndex { concurrently, .. }) => Some(("createIndexConcurrently", vec![concurrently])),
        (Rule::ConstraintWithoutNotValid, Shape::AddConstraint { not_valid, validate }) => {
            Some(("addNotValidThenValidate", vec![not_valid, validate]))
        }
        (Rule::ConstraintBuildsIndex, Shape::AddUnique { concurrently, attach }) => {
            Some(("buildUniqueIndexThenAttach", vec![concurrently, attach]))
        }
        (Rule::SetNotNull, Shape::SetNotNull { table, table_name, column }) => {
            Some(("setNotNullThroughCheck", not_null::steps(&table, &table_name, &column)))
        }
        _ => None,
    }
}

/// The decision for each statement of `m`, from its blocking findings.
pub fn plan(m: &Migration, findings: &[Finding]) -> OnlinePlan {
    let blocking: Vec<&Finding> = findings.iter().filter(|f| f.migration == m.tag && f.blocks()).collect();
    plan_of(m, &blocking)
}

/// Like [`plan`], with a recipe also for each finding below the error level that one answers:
/// how an online run that stopped part-way continues when the live sizes changed since (a
/// statement no longer blocking still runs by the recipe whose steps already committed).
pub fn plan_continued(m: &Migration, findings: &[Finding]) -> OnlinePlan {
    let answered = |f: &Finding| f.waived.is_none() && m.statements.get(f.statement).is_some_and(|s| recipe(f.rule, s).is_some());
    let chosen: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.migration == m.tag && (f.blocks() || answered(f)))
        .collect();
    plan_of(m, &chosen)
}

fn plan_of(m: &Migration, blocking: &[&Finding]) -> OnlinePlan {
    let statements = m
        .statements
        .iter()
        .enumerate()
        .map(|(i, statement)| {
            let mine: Vec<&&Finding> = blocking.iter().filter(|f| f.statement == i).collect();
            StatementPlan {
                statement: i + 1,
                line: statement.line,
                summary: statement.summary(),
                decision: decide(statement, &mine, m),
                estimated_ms: mine
                    .iter()
                    .filter_map(|f| f.live.as_ref())
                    .map(|l| l.blocks_writes_for.as_millis() as u64)
                    .max(),
            }
        })
        .collect();
    let mut plan = OnlinePlan {
        migration: m.tag.clone(),
        statements,
    };
    merge(m, &mut plan);
    plan
}

/// Consecutive type changes of one table, each with its own expand/backfill/swap, become one
/// recipe carried by the last of them: each backfill is a full pass over the table and each
/// swap rebuilds the table's indexes on the columns, so one of each instead of one per column.
///
/// Between them only a statement that sets or drops the default of a column of that table not
/// changed before it in the run may stand: it runs as written before the merged recipe, where
/// it ran before the type change of its column (or touches a column the recipe leaves alone),
/// and the swap converts the default as the type change would. Anything else, another table,
/// or a column changed twice ends the run.
fn merge(m: &Migration, plan: &mut OnlinePlan) {
    use crate::sql::change_type::{change_type, column_default};
    let is_recipe = |d: &Decision| matches!(d, Decision::Recipe { recipe, .. } if recipe == change_type::RECIPE);
    let n = plan.statements.len().min(m.statements.len());
    let mut i = 0;
    while i < n {
        let Some(first) = is_recipe(&plan.statements[i].decision)
            .then(|| change_type(&m.statements[i].sql))
            .flatten()
        else {
            i += 1;
            continue;
        };
        let mut run = vec![i];
        let mut columns = vec![first.column.clone()];
        for j in i + 1..n {
            let decision = &plan.statements[j].decision;
            let sql = &m.statements[j].sql;
            if let Some(ct) = is_recipe(decision).then(|| change_type(sql)).flatten() {
                if ct.table != first.table || columns.contains(&ct.column) {
                    break;
                }
                columns.push(ct.column);
                run.push(j);
                continue;
            }
            let foldable = *decision == Decision::AsWritten
                && column_default(sql).is_some_and(|(table, column)| table == first.table && !columns.contains(&column));
            if !foldable {
                break;
            }
        }
        let last = *run.last().expect("one at least");
        if run.len() > 1 {
            let statements: Vec<&Statement> = run.iter().map(|&k| &m.statements[k]).collect();
            if let Some(steps) = change_type::steps_merged(&statements) {
                for &k in &run[..run.len() - 1] {
                    plan.statements[k].decision = Decision::Merged { into: last + 1 };
                }
                plan.statements[last].decision = Decision::Recipe {
                    recipe: change_type::RECIPE.into(),
                    steps,
                };
            }
        }
        i = last + 1;
    }
}

fn decide(statement: &Statement, findings: &[&&Finding], m: &Migration) -> Decision {
    let Some(first) = findings.first() else {
        return Decision::AsWritten;
    };
    if m.ends_transaction() {
        return Decision::Refused {
            rule: first.rule.id().into(),
            reason: "the file ends its own transaction (COMMIT), which a recipe cannot run around".into(),
        };
    }
    let mut answered = None;
    for f in findings {
        match recipe(f.rule, statement) {
            Some(r) if answered.as_ref().is_none_or(|a: &(&str, Vec<String>)| a.0 == r.0) => answered = Some(r),
            _ => {
                return Decision::Refused {
                    rule: f.rule.id().into(),
                    reason: format!("no online recipe for {}: {}", f.rule.id(), f.alternative),
                }
            }
        }
    }
    let (recipe, steps) = answered.expect("at least one finding");
    Decision::Recipe {
        recipe: recipe.into(),
        steps,
    }
}

/// `m` as `--online` runs it: statement by statement, each recipe's steps in place of its
/// statement, under the file's own hash (its ledger row is the one drizzle-orm writes).
pub fn rewrite(m: &Migration, plan: &OnlinePlan) -> Migration {
    let mut statements = Vec::with_capacity(m.statements.len());
    for (statement, decided) in m.statements.iter().zip(&plan.statements) {
        match &decided.decision {
            Decision::Recipe { steps, .. } => statements.extend(steps.iter().map(|s| Statement::new(s.clone(), statement.line))),
            Decision::AsWritten | Decision::Refused { .. } => statements.push(statement.clone()),
            Decision::Merged { .. } => {}
        }
    }
    let needs = Needs {
        mode: TransactionMode::Autocommit {
            reason: "--online: its recipes' steps commit one by one".into(),
        },
        ..m.needs().clone()
    };
    Migration {
        statements,
        needs: needs.into(),
        ..m.clone()
    }
}

/// Under `--online`, a blocking finding a recipe answers no longer blocks: it is marked, as a
/// waiver would be, with the recipe that runs instead.
pub fn answer(plans: &[OnlinePlan], findings: &mut [Finding]) {
    for plan in plans {
        if plan.refused().is_some() {
            // Refused as a whole, before anything runs: no finding of it is answered.
            continue;
        }
        for f in findings.iter_mut().filter(|f| f.migration == plan.migration && f.blocks()) {
            f.waived = Some("runs online by a lock-safe recipe (--online; see the plan's steps)".into());
        }
    }
}

/// What the refusal adds about `--online`: that it exists when recipes answer every blocking
/// statement, or which statement has none.
pub fn hint(plans: &[OnlinePlan], online: bool) -> String {
    let Some((p, s)) = plans.iter().find_map(|p| p.refused().map(|s| (p, s))) else {
        return match plans.iter().any(OnlinePlan::has_recipe) {
            true => " `--online` (ONLINE_MIGRATIONS=true, the Lambda's \"online\": true) has a lock-safe recipe for each blocking statement: `plan --online` prints its steps".into(),
            false => String::new(),
        };
    };
    let Decision::Refused { rule, reason } = &s.decision else {
        return String::new();
    };
    let none = format!(
        "no recipe for {} statement {} (line {}, {rule}): {reason}",
        p.migration, s.statement, s.line
    );
    let with_recipe = plans
        .iter()
        .flat_map(|p| &p.statements)
        .filter(|s| matches!(s.decision, Decision::Recipe { .. }))
        .count();
    match (online, with_recipe) {
        (true, _) => format!(" --online has {none}"),
        (false, 0) => String::new(),
        (false, n) => format!(" `--online` has lock-safe recipes for {n} of the blocking statements, but {none}"),
    }
}

#[cfg(test)]
mod tests;
