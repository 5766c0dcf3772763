//! What drift reports: one [`Difference`] per place the schemas disagree, and the [`DriftError`]
//! a run fails with when there are any.

use std::fmt;

use crate::error::{Classified, ErrorType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DifferenceKind {
    MissingSchema,
    ExtraSchema,
    MissingTable,
    ExtraTable,
    MissingColumn,
    ExtraColumn,
    ColumnType,
    ColumnNullability,
    ColumnDefault,
    ColumnIdentity,
    ColumnGenerated,
    MissingIndex,
    ExtraIndex,
    IndexDefinition,
    MissingPrimaryKey,
    ExtraPrimaryKey,
    PrimaryKeyDefinition,
    MissingConstraint,
    ExtraConstraint,
    ConstraintDefinition,
    MissingEnum,
    ExtraEnum,
    MissingEnumValue,
    ExtraEnumValue,
    EnumValueOrder,
    MissingSequence,
    ExtraSequence,
    SequenceDefinition,
    MissingView,
    ExtraView,
    ViewDefinition,
    RowLevelSecurity,
    MissingPolicy,
    ExtraPolicy,
    PolicyDefinition,
}

impl DifferenceKind {
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One way the live schema differs from the expected one. `object` is schema-qualified
/// (`public.wishlist_items.idx_wishlist_user_sort`); `expected`/`actual` are absent for objects
/// missing on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub kind: DifferenceKind,
    pub object: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.object)?;
        match (&self.expected, &self.actual) {
            (Some(e), Some(a)) => write!(f, ": expected {e}, actual {a}"),
            (Some(e), None) => write!(f, ": expected {e}"),
            (None, Some(a)) => write!(f, ": actual {a}"),
            (None, None) => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("the database was changed outside its migrations in {count} place(s) (at {version}); first: {first}. Undo the change, or write a migration that makes it")]
    Detected { version: String, count: usize, first: String },
    #[error("drizzle's snapshot of {version} and what the migrations build disagree in {count} place(s); first: {first}. A migration was edited by hand, or the schema changed without drizzle-kit generate")]
    ModelMismatch { version: String, count: usize, first: String },
    #[error("rolled back to {version}, but the schema differs from its snapshot in {count} place(s); first: {first}. The down files do not restore what drizzle-kit expects: fix them, and the schema by hand")]
    AfterRollback { version: String, count: usize, first: String },
}

impl DriftError {
    pub fn detected(version: &str, differences: &[Difference]) -> Self {
        Self::Detected {
            version: version.to_string(),
            count: differences.len(),
            first: differences.first().map(ToString::to_string).unwrap_or_default(),
        }
    }

    pub fn model_mismatch(version: &str, count: usize, first: String) -> Self {
        Self::ModelMismatch {
            version: version.to_string(),
            count,
            first,
        }
    }

    pub fn after_rollback(version: &str, differences: &[Difference]) -> Self {
        Self::AfterRollback {
            version: version.to_string(),
            count: differences.len(),
            first: differences.first().map(ToString::to_string).unwrap_or_default(),
        }
    }
}

pub(super) fn missing(kind: DifferenceKind, object: String, expected: &str) -> Difference {
    Difference {
        kind,
        object,
        expected: Some(expected.to_string()),
        actual: None,
    }
}

pub(super) fn extra(kind: DifferenceKind, object: String, actual: &str) -> Difference {
    Difference {
        kind,
        object,
        expected: None,
        actual: Some(actual.to_string()),
    }
}

pub(super) fn changed(kind: DifferenceKind, object: String, expected: &str, actual: &str) -> Difference {
    Difference {
        kind,
        object,
        expected: Some(expected.to_string()),
        actual: Some(actual.to_string()),
    }
}

/// The values of one enum on both sides: missing, extra, and the order of those both have (it
/// is how Postgres compares and sorts them).
pub(super) fn diff_enum_values(name: &str, want: &[String], have: &[String], out: &mut Vec<Difference>) {
    for v in want.iter().filter(|v| !have.contains(v)) {
        out.push(missing(DifferenceKind::MissingEnumValue, name.to_string(), v));
    }
    for v in have.iter().filter(|v| !want.contains(v)) {
        out.push(extra(DifferenceKind::ExtraEnumValue, name.to_string(), v));
    }
    let common_want: Vec<&String> = want.iter().filter(|v| have.contains(v)).collect();
    let common_have: Vec<&String> = have.iter().filter(|v| want.contains(v)).collect();
    if common_want != common_have {
        out.push(changed(
            DifferenceKind::EnumValueOrder,
            name.to_string(),
            &want.join(", "),
            &have.join(", "),
        ));
    }
}

impl Classified for DriftError {
    fn error_type(&self) -> ErrorType {
        match self {
            Self::ModelMismatch { .. } => ErrorType::ModelMismatch,
            Self::Detected { .. } | Self::AfterRollback { .. } => ErrorType::DriftDetected,
        }
    }
}
