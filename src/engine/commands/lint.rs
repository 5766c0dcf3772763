//! `lint`, and the gate `plan` and `migrate` run: the schema-evolution policy over the
//! migrations (`lint/`, docs/schema-evolution.md). Without a database every migration is linted;
//! with one, the pending ones, with the live size of each table a finding is about.

use std::collections::BTreeMap;

use crate::config::RunSettings;
use crate::db::table_size;
use crate::engine::error::Error;
use crate::engine::outcome::{Finished, LedgerView, Linted};
use crate::engine::session::Session;
use crate::lint::live::LiveTables;
use crate::lint::{self, Finding, LintError};
use crate::migrations::source::{Migration, MigrationSet};

/// Lints the folder alone: every migration, or those after `since`.
pub fn offline(set: &MigrationSet, settings: &RunSettings, since: Option<&str>) -> Finished<Linted> {
    let all: Vec<&Migration> = set.migrations.iter().collect();
    let after = match since {
        Some(tag) => match set.migrations.iter().position(|m| m.tag == tag) {
            Some(i) => i + 1,
            None => return Finished::failed(LintError::UnknownSince { tag: tag.to_string() }.into()),
        },
        None => 0,
    };
    let selected: Vec<String> = all[after..].iter().map(|m| m.tag.clone()).collect();
    let findings = allow(settings, lint::lint_selected(set.layout, &all, |m| m.idx >= after, None));
    finish(Linted {
        findings,
        linted: selected,
        live: false,
        ledger: None,
    })
}

/// Lints the migrations the database has not applied, against its live tables.
pub async fn live(session: &Session<'_>) -> Finished<Linted> {
    let assessment = match session.assess().await {
        Ok(a) => a,
        Err(e) => return Finished::failed(e),
    };
    let pending: Vec<&Migration> = assessment.pending.clone();
    match findings(session, &pending).await {
        Ok(findings) => {
            let plans: Vec<_> = pending.iter().map(|m| crate::online::plan(m, &findings)).collect();
            let hint = crate::online::hint(&plans, false);
            finish_with(
                Linted {
                    findings,
                    linted: pending.iter().map(|m| m.tag.clone()).collect(),
                    live: true,
                    ledger: Some(LedgerView::of(&assessment)),
                },
                &hint,
            )
        }
        Err(e) => Finished::failed(e),
    }
}

fn finish(linted: Linted) -> Finished<Linted> {
    finish_with(linted, "")
}

/// `online_hint`: what `migrate --online` could do about the refusal (live lint only).
fn finish_with(linted: Linted, online_hint: &str) -> Finished<Linted> {
    let error = LintError::refuse(&linted.findings).map(|e| Error::from(e.with_online(online_hint)));
    if let Some(e) = &error {
        tracing::info!(findings = linted.findings.len(), error = %e, "lint found blocking findings");
    }
    Finished::new(linted, Vec::new(), error)
}

/// The findings of `pending`, with the live sizes of the tables they touch when any finding
/// depends on them (one read of `pg_class`; none when nothing would change).
pub async fn findings(session: &Session<'_>, pending: &[&Migration]) -> Result<Vec<Finding>, Error> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let set = session.set;
    let all: Vec<&Migration> = set.migrations.iter().collect();
    let is_pending = |m: &Migration| pending.iter().any(|p| p.idx == m.idx);
    let settings = session.settings();
    let volatile = crate::db::volatility::volatile_functions(session.client()).await?;
    let analysis = lint::analyse_with(set.layout, &all, is_pending, Some(&volatile));
    // Graded against the database even when no size is worth reading: what an earlier pending
    // migration creates is new and empty there, whichever rule a finding about it broke.
    let sizes = if analysis.wants_live_sizes() {
        table_size::read(session.client()).await?
    } else {
        BTreeMap::new()
    };
    let live = LiveTables {
        sizes,
        large_table_rows: settings.large_table_rows,
    };
    Ok(allow(settings, analysis.grade(Some(&live))))
}

/// `LINT_ALLOW` / `--allow-finding`: findings allowed for this run without editing the file.
fn allow(settings: &RunSettings, mut findings: Vec<Finding>) -> Vec<Finding> {
    for f in &mut findings {
        let allowed = settings.lint_allow.iter().any(|a| a.tag == f.migration && a.rule == f.rule);
        if allowed && f.waived.is_none() {
            f.waived = Some("allowed for this run (LINT_ALLOW / --allow-finding)".into());
        }
    }
    findings
}
