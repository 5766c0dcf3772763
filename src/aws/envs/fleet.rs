//! A fleet's targets summarised per environment: how many stand at each version, which are
//! behind or failed, the failed ones first. Hundreds of targets fold into a few counts and a
//! short list of the ones to look at.

use serde::Serialize;

use super::model::{position, status_name, PublishedTarget};
use crate::migrations::source::MigrationSet;
use crate::report::Status;

/// Where one target stands, in the order they are listed: the ones to act on first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Standing {
    /// Its last run failed (whatever version it reached).
    Failed,
    /// It lacks local migrations.
    Behind,
    /// Its version is not in the local set: a newer build than this checkout ran there.
    Ahead,
    UpToDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRow {
    pub environment: String,
    pub name: String,
    pub standing: Standing,
    pub current: Option<String>,
    /// Local migrations it lacks; absent when its version is not in the local set.
    pub behind: Option<usize>,
    pub status: String,
    pub applied_at: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
}

/// How many targets stand at one version (`None`: no migration applied yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionCount {
    pub version: Option<String>,
    pub targets: usize,
}

/// One environment's fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSummary {
    pub environment: String,
    pub targets: usize,
    pub up_to_date: usize,
    pub behind: usize,
    pub ahead: usize,
    pub failed: usize,
    /// Newest version first; versions this checkout does not know before all of them.
    pub versions: Vec<VersionCount>,
}

/// Every target's row, failed first, then the furthest behind, then by environment and name.
pub fn target_rows(targets: &[PublishedTarget], local: &MigrationSet) -> Vec<TargetRow> {
    let mut rows: Vec<TargetRow> = targets
        .iter()
        .map(|t| {
            let s = &t.state;
            let behind = position(s, local).map(|applied| local.migrations.len() - applied);
            let standing = match behind {
                _ if s.status == Status::Failed => Standing::Failed,
                None => Standing::Ahead,
                Some(0) => Standing::UpToDate,
                Some(_) => Standing::Behind,
            };
            TargetRow {
                environment: t.environment.clone(),
                name: t.name.clone(),
                standing,
                current: s.current.clone(),
                behind,
                status: status_name(s),
                applied_at: s.applied_at.clone(),
                duration_ms: s.duration_ms,
                error_type: s.error.as_ref().map(|e| e.error_type.clone()),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.standing, std::cmp::Reverse(a.behind), &a.environment, &a.name).cmp(&(
            b.standing,
            std::cmp::Reverse(b.behind),
            &b.environment,
            &b.name,
        ))
    });
    rows
}

/// The per-environment counts of `rows` (as `target_rows` returns them), by environment.
pub fn summaries(rows: &[TargetRow], local: &MigrationSet) -> Vec<FleetSummary> {
    let mut environments: Vec<&str> = rows.iter().map(|r| r.environment.as_str()).collect();
    environments.sort_unstable();
    environments.dedup();
    environments
        .into_iter()
        .map(|environment| {
            let mine: Vec<&TargetRow> = rows.iter().filter(|r| r.environment == environment).collect();
            let count = |standing: Standing| mine.iter().filter(|r| r.standing == standing).count();
            let mut versions: Vec<VersionCount> = Vec::new();
            for r in &mine {
                match versions.iter_mut().find(|v| v.version == r.current) {
                    Some(v) => v.targets += 1,
                    None => versions.push(VersionCount {
                        version: r.current.clone(),
                        targets: 1,
                    }),
                }
            }
            // Unknown to this checkout (newer) first, then newest local first, none last.
            let rank = |v: &VersionCount| match &v.version {
                None => (2, 0, String::new()),
                Some(tag) => match local.migrations.iter().position(|m| &m.tag == tag) {
                    Some(i) => (1, usize::MAX - i, String::new()),
                    None => (0, 0, tag.clone()),
                },
            };
            versions.sort_by_key(rank);
            FleetSummary {
                environment: environment.to_string(),
                targets: mine.len(),
                up_to_date: count(Standing::UpToDate),
                behind: count(Standing::Behind),
                ahead: count(Standing::Ahead),
                failed: count(Standing::Failed),
                versions,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::envs::model::fixtures::{set, state};

    fn target(environment: &str, name: &str, current: Option<&str>, status: Status) -> PublishedTarget {
        PublishedTarget {
            environment: environment.into(),
            name: name.into(),
            state: state(name, current, status, "2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn hundreds_of_targets_fold_into_counts_with_the_failed_first() {
        let local = set(&[("0000_a", 1), ("0001_b", 2), ("0002_c", 3)]);
        let mut targets: Vec<PublishedTarget> = (0..300)
            .map(|i| target("prod", &format!("t{i:03}"), Some("0002_c"), Status::UpToDate))
            .collect();
        targets[7] = target("prod", "t007", Some("0000_a"), Status::Applied);
        targets[9] = target("prod", "t009", Some("0001_b"), Status::Applied);
        targets[250] = target("prod", "t250", Some("0001_b"), Status::Failed);
        targets[3] = target("prod", "t003", None, Status::Failed);
        targets[5] = target("prod", "t005", Some("0009_newer"), Status::Applied);
        targets.push(target("dev", "d1", Some("0002_c"), Status::Applied));
        let rows = target_rows(&targets, &local);
        let first: Vec<(&str, Standing)> = rows.iter().take(6).map(|r| (r.name.as_str(), r.standing)).collect();
        assert_eq!(
            first,
            [
                ("t003", Standing::Failed),
                ("t250", Standing::Failed),
                ("t007", Standing::Behind),
                ("t009", Standing::Behind),
                ("t005", Standing::Ahead),
                ("d1", Standing::UpToDate),
            ],
            "failed first, then the furthest behind"
        );
        let summary = summaries(&rows, &local);
        assert_eq!(summary.len(), 2);
        let prod = &summary[1];
        assert_eq!(
            (prod.targets, prod.up_to_date, prod.behind, prod.ahead, prod.failed),
            (300, 295, 2, 1, 2)
        );
        let versions: Vec<(Option<&str>, usize)> = prod.versions.iter().map(|v| (v.version.as_deref(), v.targets)).collect();
        assert_eq!(
            versions,
            [
                (Some("0009_newer"), 1),
                (Some("0002_c"), 295),
                (Some("0001_b"), 2),
                (Some("0000_a"), 1),
                (None, 1)
            ]
        );
    }
}
