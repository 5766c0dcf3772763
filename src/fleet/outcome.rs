//! What a fleet run says: one line per target made from that target's own report, the summary,
//! the exit code, the `--json` object and the text table. Pure.

use serde::Serialize;

use crate::error::{public_message, Classified, ErrorType};
use crate::fleet::schedule::{exit_code, Stop};
use crate::report::{Report, Status};

/// Where a target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetStatus {
    /// `migrate` applied migrations.
    Applied,
    /// Nothing pending.
    UpToDate,
    /// `status`: migrations wait.
    Pending,
    /// `plan`: what `migrate` would apply.
    Planned,
    /// The target's run failed or refused (see `error`), or `status` found the ledger and the
    /// files at odds.
    Failed,
    /// Not started: the canary failed or the tolerance was exceeded first.
    NotRun,
}

/// The typed error of a failed target: its stable name and a message without secrets, row
/// values or its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetError {
    pub error_type: ErrorType,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResult {
    pub name: String,
    pub status: TargetStatus,
    /// The target's schema version: its newest applied migration, when its ledger was read.
    pub current: Option<String>,
    /// The migrations this run applied to it.
    pub applied: Vec<String>,
    pub error: Option<TargetError>,
    #[serde(skip)]
    pub duration_ms: u64,
}

impl TargetResult {
    /// A target that never started.
    pub fn not_run(name: &str) -> Self {
        Self {
            name: name.to_string(),
            status: TargetStatus::NotRun,
            current: None,
            applied: Vec::new(),
            error: None,
            duration_ms: 0,
        }
    }

    /// From the target's own report, and the error that stopped its run if one did.
    pub fn from_report(name: &str, report: &Report, error: Option<&dyn Classified>) -> Self {
        let problem = report.problems.first();
        let error = match (error, problem) {
            (Some(e), _) => Some(TargetError {
                error_type: e.error_type(),
                message: public_message(e),
            }),
            (None, _) if report.error.is_some() => report.error.as_ref().map(|e| TargetError {
                error_type: e.error_type,
                message: crate::error::without_detail(&e.message, e.detail.as_deref()),
            }),
            // `status` does not fail on a ledger at odds with the files; `migrate` would.
            (None, Some(p)) if report.status == Status::Invalid => Some(TargetError {
                error_type: problem_type(&p.kind),
                message: p.message.clone(),
            }),
            _ => None,
        };
        let status = match (report.status, &error) {
            (_, Some(_)) => TargetStatus::Failed,
            (Status::Applied, None) => TargetStatus::Applied,
            (Status::UpToDate, None) => TargetStatus::UpToDate,
            (Status::Pending, None) => TargetStatus::Pending,
            (Status::Planned, None) => TargetStatus::Planned,
            _ => TargetStatus::Failed,
        };
        Self {
            name: name.to_string(),
            status,
            current: report.current.clone(),
            applied: report.applied.iter().map(|a| a.tag.clone()).collect(),
            error,
            duration_ms: report.duration_ms,
        }
    }

    pub fn failed(&self) -> bool {
        self.status == TargetStatus::Failed
    }
}

/// The error `migrate` would stop with on the problem `status` lists.
fn problem_type(kind: &str) -> ErrorType {
    match kind {
        "checksumMismatch" => ErrorType::ChecksumMismatch,
        "outOfOrder" => ErrorType::OutOfOrderMigration,
        _ => ErrorType::UnknownMigrations,
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub targets: usize,
    pub applied: usize,
    pub up_to_date: usize,
    pub failed: usize,
    pub not_run: usize,
}

/// A whole fleet run: every target in manifest order, and why it stopped early if it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetReport {
    pub targets: Vec<TargetResult>,
    pub summary: Summary,
    #[serde(skip)]
    pub stop: Option<Stop>,
}

impl FleetReport {
    pub fn new(targets: Vec<TargetResult>, stop: Option<Stop>) -> Self {
        let count = |status| targets.iter().filter(|t| t.status == status).count();
        let summary = Summary {
            targets: targets.len(),
            applied: count(TargetStatus::Applied),
            up_to_date: count(TargetStatus::UpToDate),
            failed: count(TargetStatus::Failed),
            not_run: count(TargetStatus::NotRun),
        };
        Self { targets, summary, stop }
    }

    pub fn exit_code(&self) -> u8 {
        exit_code(self.summary.failed, self.stop)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a fleet report always serializes")
    }

    /// A compact table, the failed targets first (then the rest in manifest order), the
    /// summary, and why the fleet stopped.
    pub fn render_text(&self) -> String {
        let mut rows: Vec<&TargetResult> = self.targets.iter().collect();
        rows.sort_by_key(|t| match t.status {
            TargetStatus::Failed => 0,
            TargetStatus::NotRun => 1,
            _ => 2,
        });
        let name_width = rows.iter().map(|t| t.name.len()).max().unwrap_or(0).max("TARGET".len());
        let current_width = rows
            .iter()
            .map(|t| t.current.as_deref().map_or(1, str::len))
            .max()
            .unwrap_or(0)
            .max("CURRENT".len());
        let mut out = format!(
            "{:name_width$}  {:9}  {:current_width$}  {:>7}  ERROR\n",
            "TARGET", "STATUS", "CURRENT", "APPLIED"
        );
        for t in rows {
            let error = t
                .error
                .as_ref()
                .map(|e| format!("{}: {}", e.error_type.as_str(), one_line(&e.message, 160)))
                .unwrap_or_default();
            let line = format!(
                "{:name_width$}  {:9}  {:current_width$}  {:>7}  {error}",
                t.name,
                t.status.as_str(),
                t.current.as_deref().unwrap_or("-"),
                t.applied.len(),
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let s = &self.summary;
        let pending = self.targets.iter().filter(|t| t.status == TargetStatus::Pending).count();
        let planned = self.targets.iter().filter(|t| t.status == TargetStatus::Planned).count();
        out.push_str(&format!(
            "{} targets: {} applied, {} up to date, {} failed, {} not run",
            s.targets, s.applied, s.up_to_date, s.failed, s.not_run
        ));
        if pending > 0 {
            out.push_str(&format!(", {pending} pending"));
        }
        if planned > 0 {
            out.push_str(&format!(", {planned} with a plan"));
        }
        out.push('\n');
        match self.stop {
            Some(Stop::CanaryFailed { target }) => out.push_str(&format!(
                "stopped: the canary {} failed, so no other target started; fix it and run again\n",
                self.targets.get(target).map_or("?", |t| t.name.as_str())
            )),
            Some(Stop::ToleranceExceeded { failed, allowed }) if s.not_run > 0 => out.push_str(&format!(
                "stopped: {failed} failed, more than --max-failures allows ({allowed}); the targets not run start on the next run\n"
            )),
            Some(Stop::ToleranceExceeded { failed, allowed }) => {
                out.push_str(&format!("{failed} failed, more than --max-failures allows ({allowed})\n"))
            }
            None => {}
        }
        out
    }
}

impl TargetStatus {
    /// The word the JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::UpToDate => "upToDate",
            Self::Pending => "pending",
            Self::Planned => "planned",
            Self::Failed => "failed",
            Self::NotRun => "notRun",
        }
    }
}

/// The first line of a message, cut at `max` characters.
fn one_line(message: &str, max: usize) -> String {
    let line = message.lines().next().unwrap_or_default();
    match line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
