//! What `envs` shows, built once from what was found: the table, the JSON and the page are
//! each rendered from it.

use serde::Serialize;

use super::fleet;
use super::grid;
use super::model::{rows, Discovered, EnvironmentRow};
use crate::migrations::source::MigrationSet;

/// The typed outcome of `envs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub environments: Vec<EnvironmentRow>,
    /// Each environment's fleet of targets, counted.
    pub fleet: Vec<fleet::FleetSummary>,
    /// Every target, failed first, then the furthest behind.
    pub targets: Vec<fleet::TargetRow>,
    /// Which migrations ran in which environment, when and how long.
    pub migrations: grid::Grid,
}

/// The view of what was found, against the local migration set.
pub fn view(found: &Discovered, local: &MigrationSet) -> View {
    let targets = fleet::target_rows(&found.targets, local);
    View {
        environments: rows(&found.environments, local),
        fleet: fleet::summaries(&targets, local),
        targets,
        migrations: grid::grid(&found.environments, local),
    }
}
