//! `verify`: drift, plus enum values, index validity and the plans of the hot queries listed
//! in the migrations' query catalogue. Reads only (EXPLAIN runs in a transaction rolled back).

use std::time::Duration;

use crate::engine::error::Error;
use crate::engine::examine::examine;
use crate::engine::outcome::{Finished, LedgerView, Verified};
use crate::engine::session::{version_label, Session};
use crate::schema::verify::{self, Check, CheckKind, CheckStatus, VerifyError};

pub async fn verify(session: &mut Session<'_>, analyze: bool) -> Finished<Verified> {
    let mut verified = Verified::default();
    let mut warnings = Vec::new();
    let error = match check(session, analyze, &mut verified, &mut warnings).await {
        Ok(checks) => {
            let error = conclude(&checks).err();
            verified.checks = Some(checks);
            error
        }
        Err(e) => Some(e),
    };
    Finished::new(verified, warnings, error)
}

async fn check(session: &mut Session<'_>, analyze: bool, verified: &mut Verified, warnings: &mut Vec<String>) -> Result<Vec<Check>, Error> {
    let assessment = session.assess().await?;
    verified.ledger = Some(LedgerView::of(&assessment));
    let version = assessment.current();
    let examination = examine(session, &assessment, false, warnings).await?;
    let mut checks = Vec::new();
    let mut schema = Check::new(CheckKind::Schema, version_label(version));
    match (examination.manual_changes.len(), examination.model_mismatches.len()) {
        (0, 0) => schema.detail = Some("nobody changed the schema, and it matches the snapshot".into()),
        (0, n) => {
            schema.detail = Some(format!(
                "nobody changed the schema; the snapshot and the migrations disagree in {n} place(s) (see modelMismatches)"
            ))
        }
        (n, _) => schema.fail(format!("changed outside its migrations in {n} place(s) (see differences)")),
    }
    checks.push(schema);
    verified.differences = Some(examination.manual_changes);
    verified.baseline = Some(examination.baseline);
    verified.model_mismatches = Some(examination.model_mismatches);
    verified.notes = examination.notes;
    if let Some(expected) = &examination.expected {
        checks.extend(verify::enum_checks(expected, &examination.actual));
    }
    let options = session.drift_options();
    checks.extend(verify::index_checks(&examination.actual, |schema, table| {
        schema != options.ledger.schema && !options.ignored(schema, table)
    }));
    let set = session.set;
    let Some(bytes) = set.source.read(verify::QUERY_CATALOGUE)? else {
        warnings.push(format!(
            "no query catalogue ({}) among the migrations: no query plans were checked",
            verify::QUERY_CATALOGUE
        ));
        return Ok(checks);
    };
    let path = set.source.display_path(verify::QUERY_CATALOGUE);
    let text = String::from_utf8(bytes).map_err(|_| VerifyError::Catalogue {
        path: path.clone(),
        line: 0,
        reason: "not valid UTF-8".into(),
    })?;
    let timeout = session.settings().statement_timeout.unwrap_or(Duration::from_secs(30));
    for query in verify::parse_catalogue(&text, &path)? {
        if let Some(since) = &query.since {
            if set.find(since).is_none() {
                return Err(VerifyError::Catalogue {
                    path,
                    line: query.line,
                    reason: format!("`-- since: {since}` names no migration of the journal"),
                }
                .into());
            }
            if !assessment.applied.iter().any(|a| &a.migration.tag == since) {
                let mut skipped = Check::new(CheckKind::QueryPlan, query.name.clone());
                skipped.status = CheckStatus::Skipped;
                skipped.detail = Some(format!("needs {since}, which is not applied"));
                checks.push(skipped);
                continue;
            }
        }
        let timeout = session.inv.time_left().map_or(timeout, |left| timeout.min(left));
        checks.push(verify::plan_check(session.client_mut(), &query, &examination.actual, analyze, timeout).await);
    }
    Ok(checks)
}

/// Passes when every check passed; otherwise the first failure names the rest's count.
pub fn conclude(checks: &[Check]) -> Result<(), Error> {
    let failed: Vec<&Check> = checks.iter().filter(|c| c.failed()).collect();
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(VerifyError::Failed {
            count: failed.len(),
            first: first.describe(),
        }
        .into()),
    }
}
