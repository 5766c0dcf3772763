//! What `envs` reads and how it places one state against the local migrations: the published
//! states (an environment's with its history, a target's current one) and each environment's row.

use serde::Serialize;

use crate::aws::state::EnvironmentState;
use crate::migrations::source::MigrationSet;

/// One environment's published states: the current one and, oldest first, the earlier ones.
pub struct Published {
    pub environment: String,
    pub current: EnvironmentState,
    pub history: Vec<EnvironmentState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentRow {
    pub environment: String,
    pub current: Option<String>,
    /// Local migrations it lacks; absent when its current version is not in the local set.
    pub behind: Option<usize>,
    /// Its current version is not in the local set: it runs a newer build than this checkout.
    pub ahead: bool,
    /// Its state was written before the newest local migration was generated.
    pub stale: bool,
    pub status: String,
    pub applied_at: String,
    pub duration_ms: u64,
    /// `functionVersion` of the Lambda that ran it, or `cli`.
    pub ran_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Earlier runs, oldest first (from the parameter's history).
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub applied_at: String,
    pub current: Option<String>,
    pub status: String,
    pub duration_ms: u64,
}

/// One fleet target's published state (its current one only: a fleet has hundreds).
pub struct PublishedTarget {
    pub environment: String,
    pub name: String,
    pub state: EnvironmentState,
}

/// Everything found under a prefix, sorted by environment (and target name).
#[derive(Default)]
pub struct Discovered {
    pub environments: Vec<Published>,
    pub targets: Vec<PublishedTarget>,
}

impl Discovered {
    pub fn sort(&mut self) {
        self.environments.sort_by(|a, b| a.environment.cmp(&b.environment));
        self.targets
            .sort_by(|a, b| (&a.environment, &a.name).cmp(&(&b.environment, &b.name)));
    }
}

/// How many local migrations a state's version includes; `None` when its version is not in the
/// local set (a newer build ran there).
pub fn position(s: &EnvironmentState, local: &MigrationSet) -> Option<usize> {
    match &s.current {
        None => Some(0),
        Some(tag) => local.migrations.iter().position(|m| &m.tag == tag).map(|i| i + 1),
    }
}

/// The rows, against the local migration set.
pub fn rows(published: &[Published], local: &MigrationSet) -> Vec<EnvironmentRow> {
    let newest_local_ms = local.migrations.last().map(|m| m.created_at);
    published
        .iter()
        .map(|p| {
            let s = &p.current;
            let position = position(s, local);
            let applied_ms = time::OffsetDateTime::parse(&s.applied_at, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .ok();
            EnvironmentRow {
                environment: p.environment.clone(),
                current: s.current.clone(),
                behind: position.map(|applied| local.migrations.len() - applied),
                ahead: position.is_none(),
                stale: matches!((applied_ms, newest_local_ms), (Some(at), Some(newest)) if at < newest),
                status: status_name(s),
                applied_at: s.applied_at.clone(),
                duration_ms: s.duration_ms,
                ran_by: s.function_version.clone(),
                error_type: s.error.as_ref().map(|e| e.error_type.clone()),
                runs: p
                    .history
                    .iter()
                    .map(|h| Run {
                        applied_at: h.applied_at.clone(),
                        current: h.current.clone(),
                        status: status_name(h),
                        duration_ms: h.duration_ms,
                    })
                    .collect(),
            }
        })
        .collect()
}

pub fn status_name(s: &EnvironmentState) -> String {
    serde_json::to_value(s.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn behind_text(r: &EnvironmentRow) -> String {
    match r.behind {
        _ if r.ahead => "ahead".to_string(),
        Some(n) => n.to_string(),
        None => "?".to_string(),
    }
}

#[cfg(test)]
pub mod fixtures {
    use super::*;
    use crate::report::Status;

    pub fn state(environment: &str, current: Option<&str>, status: Status, applied_at: &str) -> EnvironmentState {
        EnvironmentState {
            environment: environment.into(),
            current: current.map(str::to_string),
            status,
            last_action: "migrate".into(),
            applied_at: applied_at.into(),
            duration_ms: 42,
            applied: vec![],
            applied_count: 0,
            run_id: "r".into(),
            pending: 0,
            function_version: "7".into(),
            durations: Default::default(),
            error: None,
            recovery_point: None,
            cfn_request_id: None,
        }
    }

    pub fn set(tags: &[(&str, i64)]) -> MigrationSet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        let entries: Vec<String> = tags
            .iter()
            .enumerate()
            .map(|(i, (t, w))| format!(r#"{{"idx":{i},"version":"7","when":{w},"tag":"{t}","breakpoints":true}}"#))
            .collect();
        std::fs::write(
            dir.path().join("meta/_journal.json"),
            format!(r#"{{"version":"7","dialect":"postgresql","entries":[{}]}}"#, entries.join(",")),
        )
        .unwrap();
        for (t, _) in tags {
            std::fs::write(dir.path().join(format!("{t}.sql")), "SELECT 1;").unwrap();
        }
        crate::migrations::source::MigrationSource::Dir(dir.path().to_path_buf())
            .load()
            .unwrap()
    }
}
