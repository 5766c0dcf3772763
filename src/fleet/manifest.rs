//! The targets manifest read from its file, and what a fleet run can be refused for before any
//! target starts.

use crate::config::target::{parse_manifest, Target, TargetError};
use crate::error::{Classified, ErrorType};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read the targets manifest {path}: {reason}; pass --targets FILE, a JSON array of targets")]
    ReadManifest { path: String, reason: String },
    #[error("the targets manifest {path}: {source}")]
    Manifest {
        path: String,
        #[source]
        source: TargetError,
    },
    #[error("the targets manifest {path} has no targets: list at least one {{\"name\", \"databaseUrl\" | \"secretArn\"}}")]
    Empty { path: String },
    #[error("--max-failures={value:?} is not valid: give a number of targets (3) or a percentage of the fleet (10%)")]
    MaxFailures { value: String },
}

impl Classified for FleetError {
    fn error_type(&self) -> ErrorType {
        ErrorType::ConfigError
    }
}

/// The manifest at `path`, every target checked.
pub fn read_manifest(path: &std::path::Path) -> Result<Vec<Target>, FleetError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FleetError::ReadManifest {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let targets = parse_manifest(&text).map_err(|source| FleetError::Manifest {
        path: shown.clone(),
        source,
    })?;
    if targets.is_empty() {
        return Err(FleetError::Empty { path: shown });
    }
    Ok(targets)
}
