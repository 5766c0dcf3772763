//! The report for a person at a terminal: one line per migration, check or difference, then a
//! summary; the error goes to stderr.

use crate::engine::outcome::BaselineSource;
use std::fmt::Write as _;

use crate::engine::check::Severity;
use crate::engine::command::Action;
use crate::engine::outcome::SegmentStatus;
use crate::report::{FindingReport, Report, Status};
use crate::schema::verify::CheckStatus;

impl Report {
    /// Lines for a person at a terminal: one per migration, then a summary.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        let db = self.database.as_ref().map(|d| format!(" · {d}")).unwrap_or_default();
        let _ = writeln!(out, "wishlist-migrator {} · env {}{db}", self.action.name(), self.environment);
        for p in &self.problems {
            let _ = writeln!(out, "  ! {}", p.message);
        }
        for a in &self.applied {
            let _ = writeln!(out, "  ✓ {:<48} {:>7} ms", a.tag, a.duration_ms);
        }
        let show_pending =
            matches!(self.status, Status::Planned | Status::Pending | Status::Invalid | Status::UpToDate) || self.action == Action::Status;
        if show_pending {
            for s in self.segments.iter().filter(|s| s.status == SegmentStatus::Planned) {
                let why = s.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                let _ = writeln!(out, "  segment {} · {}{why}", s.index + 1, s.mode);
                for tag in &s.migrations {
                    let statements = self.pending.iter().find(|p| &p.tag == tag).map_or(0, |p| p.statements);
                    let _ = writeln!(out, "    → {tag:<46} {statements} statement(s)");
                }
            }
            if self.segments.is_empty() {
                for p in &self.pending {
                    let _ = writeln!(out, "  · {:<48} pending", p.tag);
                }
            }
        }
        if let Some(rollback) = &self.rollback {
            for m in &rollback.migrations {
                let took = m.duration_ms.map(|d| format!(" {d:>7} ms")).unwrap_or_default();
                let _ = writeln!(out, "  ↩ {:<48}{took}", m.tag);
                if self.dry_run || m.duration_ms.is_none() {
                    for statement in &m.statements {
                        let _ = writeln!(out, "      {}", statement.replace('\n', "\n      "));
                    }
                }
            }
            for d in &rollback.data_at_risk {
                let _ = writeln!(out, "  ! data loss: {} ({})", d.object, d.migration);
            }
        }
        for c in self.checks.iter().flatten() {
            let mark = match c.status {
                CheckStatus::Passed => "✓",
                CheckStatus::Failed => "✗",
                CheckStatus::Skipped => "-",
            };
            let detail = c.detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
            let timing = c
                .timing
                .as_ref()
                .map(|t| {
                    format!(
                        " (planning {:.3} ms, execution {:.3} ms, buffers hit {} read {})",
                        t.planning_us as f64 / 1000.0,
                        t.execution_us as f64 / 1000.0,
                        t.shared_hit_blocks,
                        t.shared_read_blocks
                    )
                })
                .unwrap_or_default();
            let kind = serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(out, "  {mark} {kind} {}{detail}{timing}", c.object);
            for d in &c.differences {
                let _ = writeln!(out, "      ≠ {d}");
            }
        }
        for d in self.differences.iter().flatten() {
            let _ = writeln!(out, "  ≠ {d}");
        }
        for m in self.model_mismatches.iter().flatten() {
            let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "absent".into());
            let _ = writeln!(
                out,
                "  model {} {}: snapshot {}, migrations build {}\n      {}",
                m.kind.as_str(),
                m.object,
                side(&m.snapshot),
                side(&m.database),
                m.cause
            );
        }
        for h in self.history.iter().flatten() {
            let outcome = if h.succeeded { "ok" } else { "FAILED" };
            let step = h.statement_index.map(|i| format!(" statement {i}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} {:<9} {}{step} {} ms {outcome} by {} ({}) run {} v{}",
                h.finished_at, h.action, h.migration, h.duration_ms, h.invoker, h.db_user, h.run_id, h.tool_version
            );
            if let (Some(at), Some(lsn)) = (&h.started_at, &h.start_lsn) {
                let _ = writeln!(out, "      began {at} at WAL {lsn} (server clock)");
            }
            if let Some(message) = &h.error_message {
                let _ = writeln!(out, "      {}: {message}", h.error_sqlstate.as_deref().unwrap_or("error"));
            }
        }
        for t in self.traps.iter().flatten() {
            let level = match t.level {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let line = t.line.map(|l| format!(":{l}")).unwrap_or_default();
            let _ = writeln!(out, "  {level}[{}] {}{line}: {}", t.trap.name(), t.file, t.message);
            let _ = writeln!(out, "      fix: {}", t.fix);
        }
        if let Some(point) = &self.recovery_point {
            let _ = writeln!(
                out,
                "  this run began at {} (WAL {}) on the server's clock: the recovery target that undoes it",
                point.started_at, point.start_lsn
            );
        }
        for f in &self.findings {
            render_finding(&mut out, f);
        }
        for plan in &self.online {
            render_online(&mut out, plan);
        }
        for b in &self.backfills {
            let _ = writeln!(
                out,
                "  backfilled {}.{} ({}): {} row(s) walked of about {}, {} written (the others were converted already), {} batch(es), {} ms",
                b.table, b.column, b.migration, b.rows, b.estimated_rows, b.written, b.batches, b.duration_ms
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        let current = self.current.as_deref().unwrap_or("none");
        let summary = match self.status {
            Status::Applied => {
                let committed = self.segments.iter().filter(|s| s.status == SegmentStatus::Committed).count();
                format!(
                    "applied {} migration(s) in {committed} commit(s) in {} ms; current: {current}",
                    self.applied.len(),
                    self.duration_ms
                )
            }
            Status::UpToDate if self.action == Action::Rollback => format!("nothing to roll back; current: {current}"),
            Status::UpToDate => format!("up to date; current: {current}"),
            Status::Pending => format!("{} pending; current: {current}", self.pending.len()),
            Status::Planned if self.action == Action::Rollback => format!(
                "would roll back {} migration(s) to {}; nothing changed; current: {current}",
                self.rollback.as_ref().map_or(0, |r| r.migrations.len()),
                self.rollback.as_ref().map_or("?", |r| r.to.as_str())
            ),
            Status::Planned => format!(
                "would apply {} migration(s) in {} segment(s); nothing changed; current: {current}",
                self.segments.iter().map(|s| s.migrations.len()).sum::<usize>(),
                self.segments.len()
            ),
            Status::Invalid => format!("{} problem(s) found; migrate would refuse; current: {current}", self.problems.len()),
            Status::Failed => format!("failed after {} ms; current: {current}", self.duration_ms),
            Status::InProgress => format!(
                "in progress after {} ms: {}; what committed stays: run it again to continue; current: {current}",
                self.duration_ms,
                self.in_progress.as_ref().map_or_else(String::new, |p| p.summary())
            ),
            Status::NoDrift => format!("no drift: nobody changed the schema, and it matches the snapshot of {current}"),
            Status::DriftDetected => format!(
                "drift: the database was changed outside its migrations in {} place(s) (compared with the {} baseline); current: {current}",
                self.differences.as_ref().map_or(0, Vec::len),
                self.baseline_name()
            ),
            Status::ModelMismatch => format!(
                "no manual change; but the snapshot of {current} and what the migrations build disagree in {} place(s)",
                self.model_mismatches.as_ref().map_or(0, Vec::len)
            ),
            Status::Clean | Status::CheckFailed if self.action == Action::Check => {
                let traps = self.traps.iter().flatten();
                let errors = traps.clone().filter(|t| t.level == Severity::Error).count();
                let warnings = traps.filter(|t| t.level == Severity::Warning).count();
                let blocking = self.findings.iter().filter(|f| f.level == "error" && f.waived.is_none()).count();
                let verdict = if errors + blocking == 0 { "clean" } else { "refused" };
                let lint = match &self.new_migrations {
                    Some(new) => format!("{} new migration(s) linted: {blocking} blocking finding(s)", new.len()),
                    None => "no --base: nothing known to be new, lint skipped".into(),
                };
                format!("check {verdict}: {errors} error(s), {warnings} warning(s); {lint}")
            }
            Status::Clean | Status::LintFailed | Status::CheckFailed => {
                let blocking = self.findings.iter().filter(|f| f.level == "error" && f.waived.is_none()).count();
                let waived = self.findings.iter().filter(|f| f.waived.is_some()).count();
                let warnings = self.findings.iter().filter(|f| f.level == "warning" && f.waived.is_none()).count();
                let read = self.linted.as_ref().map_or(0, Vec::len);
                let verdict = if blocking == 0 { "clean" } else { "refused" };
                format!("lint {verdict}: {read} migration(s) read; {blocking} blocking, {warnings} warning(s), {waived} waived")
            }
            Status::Listed => format!("{} history row(s), newest first", self.history.as_ref().map_or(0, Vec::len)),
            Status::Satisfied => format!(
                "{} and everything before it are applied; current: {current}",
                self.target.as_deref().unwrap_or("?")
            ),
            Status::SchemaBehind => format!(
                "schema behind {}: {} missing ({}); current: {current}",
                self.target.as_deref().unwrap_or("?"),
                self.missing.len(),
                self.missing.join(", ")
            ),
            Status::Verified => format!(
                "verified: {} check(s) passed; current: {current}",
                self.checks.as_ref().map_or(0, Vec::len)
            ),
            Status::VerificationFailed => format!(
                "verification failed: {} of {} check(s) failed; current: {current}",
                self.checks.iter().flatten().filter(|c| c.failed()).count(),
                self.checks.as_ref().map_or(0, Vec::len)
            ),
            Status::RolledBack => {
                let n = self.rollback.as_ref().map_or(0, |r| r.migrations.len());
                let drift = self.differences.as_ref().map_or(0, Vec::len);
                if drift == 0 {
                    format!(
                        "rolled back {n} migration(s) in {} ms; current: {current}; schema matches its snapshot",
                        self.duration_ms
                    )
                } else {
                    format!("rolled back {n} migration(s); current: {current}; but {drift} difference(s) from its snapshot")
                }
            }
        };
        let _ = writeln!(out, "{summary}");
        out
    }

    fn baseline_name(&self) -> &'static str {
        match self.baseline {
            Some(BaselineSource::Recorded) => "recorded",
            Some(BaselineSource::Replayed) => "replayed",
            Some(BaselineSource::Snapshot) | None => "snapshot",
        }
    }

    /// The error part for stderr.
    pub fn render_error(&self) -> Option<String> {
        let e = self.error.as_ref()?;
        let mut out = format!("error[{}]: {}", e.error_type, e.message);
        if let Some(statement) = &e.statement {
            let _ = write!(out, "\n  statement: {statement}");
        }
        Some(out)
    }
}

/// A finding as a compiler prints a diagnostic: level, rule and place, then the statement, the
/// safe alternative, the live table and the waiver.
fn render_finding(out: &mut String, f: &FindingReport) {
    let mark = if f.waived.is_some() { "waived" } else { f.level.as_str() };
    let _ = writeln!(out, "  {mark}[{}] {}:{}:{}: {}", f.rule, f.file, f.line, f.column, f.message);
    let _ = writeln!(out, "      {}", f.excerpt);
    if let (Some(rows), Some(bytes), Some(ms)) = (f.estimated_rows, f.table_bytes, f.blocks_writes_ms) {
        let size = crate::lint::live::human_bytes(bytes);
        let _ = writeln!(
            out,
            "      live table: ~{rows} rows, {size}: writes blocked for ~{:.1} s (estimate)",
            ms as f64 / 1000.0
        );
    }
    match &f.waived {
        Some(reason) => {
            let _ = writeln!(out, "      waived: {reason}");
        }
        None => {
            let _ = writeln!(out, "      instead: {}", f.alternative);
        }
    }
}

/// `--online`: each statement of a migration with recipes, and the steps that run instead.
fn render_online(out: &mut String, plan: &crate::online::OnlinePlan) {
    use crate::online::Decision;
    let _ = writeln!(
        out,
        "  online: {} runs statement by statement, each step waiting at most {} ms for its lock:",
        plan.migration,
        crate::online::STEP_LOCK_TIMEOUT_MS
    );
    for s in &plan.statements {
        match &s.decision {
            Decision::AsWritten => {
                let _ = writeln!(out, "    statement {} (line {}) as written: {}", s.statement, s.line, s.summary);
            }
            Decision::Recipe { recipe, steps } => {
                let estimate = s
                    .estimated_ms
                    .map(|ms| format!(" (scans for about {ms} ms, under a lock writers pass)"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    statement {} (line {}) by {recipe}{estimate}: {}",
                    s.statement, s.line, s.summary
                );
                for (i, step) in steps.iter().enumerate() {
                    let _ = writeln!(out, "      {}. {step}", i + 1);
                }
            }
            Decision::Refused { rule, reason } => {
                let _ = writeln!(out, "    statement {} (line {}) refused ({rule}): {reason}", s.statement, s.line);
            }
            Decision::Merged { into } => {
                let _ = writeln!(
                    out,
                    "    statement {} (line {}) in statement {into}'s recipe (one backfill pass, one swap): {}",
                    s.statement, s.line, s.summary
                );
            }
        }
    }
}
