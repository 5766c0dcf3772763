//! Which migrations ran where, when and how long: a migrations × environments grid read from
//! the states each environment published (a run's `applied` tags, its `durations` and its
//! `appliedAt`, over the parameter's history). Every duration is drawn on one scale, the
//! slowest cell of the whole grid, so a migration that took 10× longer somewhere stands out.

use serde::Serialize;

use super::model::{position, Published};
use super::warnings::{SLOWER_BY, SLOW_MS};
use crate::migrations::source::MigrationSet;
use crate::report::Status;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Grid {
    /// The columns, in the order of the cells.
    pub environments: Vec<String>,
    /// The longest duration in the grid: every bar's 100 %.
    pub scale_ms: u64,
    pub migrations: Vec<GridRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GridRow {
    pub tag: String,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Cell {
    /// A published run applied it: when that run finished, and how long the migration took
    /// (absent when the state was cut to fit SSM's 4 KB).
    #[serde(rename_all = "camelCase")]
    Ran {
        at: String,
        duration_ms: Option<u64>,
        /// At least `SLOWER_BY` times the fastest environment's, and at least `SLOW_MS`: what
        /// `plan` warns about before the next environment runs it.
        slow: bool,
    },
    /// Applied (the environment's version is past it), but no state that is still kept says when.
    Applied,
    /// The environment's last run failed here: the first migration after its version.
    #[serde(rename_all = "camelCase")]
    Failed {
        at: String,
        error_type: Option<String>,
    },
    NotApplied,
}

/// The grid of the environments' published states against the local migrations (followed by
/// the tags some environment ran that this checkout does not have).
pub fn grid(published: &[Published], local: &MigrationSet) -> Grid {
    let mut tags: Vec<String> = local.migrations.iter().map(|m| m.tag.clone()).collect();
    let mut unknown: Vec<String> = published
        .iter()
        .flat_map(|p| runs(p).flat_map(|s| s.applied.iter().chain(s.durations.keys())))
        .filter(|t| !tags.contains(*t))
        .cloned()
        .collect();
    unknown.sort();
    unknown.dedup();
    tags.extend(unknown);

    let mut migrations: Vec<GridRow> = tags
        .iter()
        .enumerate()
        .map(|(index, tag)| GridRow {
            tag: tag.clone(),
            cells: published.iter().map(|p| cell(p, tag, index, local)).collect(),
        })
        .collect();
    for row in &mut migrations {
        let fastest = row.cells.iter().filter_map(duration).min();
        let ran = row.cells.iter().filter(|c| duration(c).is_some()).count();
        for c in &mut row.cells {
            if let (
                Cell::Ran {
                    duration_ms: Some(ms),
                    slow,
                    ..
                },
                Some(fastest),
            ) = (c, fastest)
            {
                *slow = ran > 1 && *ms >= SLOW_MS && *ms >= SLOWER_BY * fastest.max(1);
            }
        }
    }
    let scale_ms = migrations
        .iter()
        .flat_map(|r| r.cells.iter().filter_map(duration))
        .max()
        .unwrap_or(1)
        .max(1);
    Grid {
        environments: published.iter().map(|p| p.environment.clone()).collect(),
        scale_ms,
        migrations,
    }
}

fn duration(cell: &Cell) -> Option<u64> {
    match cell {
        Cell::Ran { duration_ms, .. } => *duration_ms,
        _ => None,
    }
}

/// The environment's states, newest first (its current one, then its history backwards).
fn runs(p: &Published) -> impl Iterator<Item = &crate::aws::state::EnvironmentState> {
    std::iter::once(&p.current).chain(p.history.iter().rev())
}

fn cell(p: &Published, tag: &str, index: usize, local: &MigrationSet) -> Cell {
    let with_duration = runs(p).find_map(|s| s.durations.get(tag).map(|ms| (s, Some(*ms))));
    let listed = || runs(p).find(|s| s.applied.iter().any(|t| t == tag)).map(|s| (s, None));
    if let Some((s, duration_ms)) = with_duration.or_else(listed) {
        return Cell::Ran {
            at: s.applied_at.clone(),
            duration_ms,
            slow: false,
        };
    }
    let is_local = index < local.migrations.len();
    match position(&p.current, local) {
        // Ahead of this checkout: every local migration is behind its version.
        None if is_local => Cell::Applied,
        Some(applied) if is_local && index < applied => Cell::Applied,
        Some(applied) if index == applied && p.current.status == Status::Failed => Cell::Failed {
            at: p.current.applied_at.clone(),
            error_type: p.current.error.as_ref().map(|e| e.error_type.clone()),
        },
        _ => Cell::NotApplied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::envs::model::fixtures::{set, state};

    fn run(environment: &str, current: &str, at: &str, durations: &[(&str, u64)]) -> crate::aws::state::EnvironmentState {
        let mut s = state(environment, Some(current), Status::Applied, at);
        s.applied = durations.iter().map(|(t, _)| t.to_string()).collect();
        s.durations = durations.iter().map(|(t, ms)| (t.to_string(), *ms)).collect();
        s
    }

    #[test]
    fn every_duration_is_on_one_scale_and_the_far_slower_one_is_marked() {
        let local = set(&[("0000_a", 1), ("0001_b", 2), ("0002_c", 3)]);
        let dev_first = run("dev", "0000_a", "2026-01-01T00:00:00Z", &[("0000_a", 20)]);
        let dev = Published {
            environment: "dev".into(),
            current: run("dev", "0001_b", "2026-01-02T00:00:00Z", &[("0001_b", 151)]),
            history: vec![dev_first.clone()],
        };
        let staging = Published {
            environment: "staging".into(),
            current: run("staging", "0001_b", "2026-01-03T00:00:00Z", &[("0000_a", 25), ("0001_b", 1_015)]),
            history: vec![],
        };
        let mut failed = state("prod", Some("0000_a"), Status::Failed, "2026-01-04T00:00:00Z");
        failed.error = Some(crate::aws::state::StateError {
            error_type: "MigrationFailed".into(),
            message: "m".into(),
        });
        let prod = Published {
            environment: "prod".into(),
            current: failed,
            history: vec![],
        };
        let g = grid(&[dev, staging, prod], &local);
        assert_eq!(g.environments, ["dev", "staging", "prod"]);
        assert_eq!(g.scale_ms, 1_015, "one scale: the slowest cell anywhere");
        let b = &g.migrations[1];
        assert_eq!(
            b.cells[0],
            Cell::Ran {
                at: "2026-01-02T00:00:00Z".into(),
                duration_ms: Some(151),
                slow: false
            }
        );
        assert!(matches!(
            b.cells[1],
            Cell::Ran {
                duration_ms: Some(1_015),
                ..
            }
        ));
        assert_eq!(
            b.cells[2],
            Cell::Failed {
                at: "2026-01-04T00:00:00Z".into(),
                error_type: Some("MigrationFailed".into())
            }
        );
        // dev's 0000 comes from its history; prod's was applied by a run no longer published.
        assert!(matches!(&g.migrations[0].cells[0], Cell::Ran { at, duration_ms: Some(20), .. } if at == "2026-01-01T00:00:00Z"));
        assert_eq!(g.migrations[0].cells[2], Cell::Applied);
        assert_eq!(g.migrations[2].cells, [Cell::NotApplied, Cell::NotApplied, Cell::NotApplied]);

        // Ten times the fastest, and over a second: marked, as plan would warn.
        let slow = Published {
            environment: "qa".into(),
            current: run("qa", "0001_b", "2026-01-05T00:00:00Z", &[("0001_b", 1_600)]),
            history: vec![],
        };
        let fast = Published {
            environment: "dev".into(),
            current: run("dev", "0001_b", "2026-01-05T00:00:00Z", &[("0001_b", 151)]),
            history: vec![dev_first],
        };
        let g = grid(&[fast, slow], &local);
        assert!(matches!(g.migrations[1].cells[1], Cell::Ran { slow: true, .. }), "{g:?}");
        assert!(matches!(g.migrations[1].cells[0], Cell::Ran { slow: false, .. }));
    }

    #[test]
    fn a_tag_this_checkout_lacks_gets_a_row_of_its_own() {
        let local = set(&[("0000_a", 1)]);
        let ahead = Published {
            environment: "prod".into(),
            current: run("prod", "0001_new", "2026-01-05T00:00:00Z", &[("0001_new", 9)]),
            history: vec![],
        };
        let g = grid(&[ahead], &local);
        let tags: Vec<&str> = g.migrations.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(tags, ["0000_a", "0001_new"]);
        assert_eq!(g.migrations[0].cells[0], Cell::Applied);
    }
}
