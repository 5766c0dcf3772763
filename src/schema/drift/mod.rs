//! Drift: differences between two catalogs Postgres built and printed, as a list of
//! `{kind, object, expected, actual}`. Manual changes compare the live catalog with the baseline
//! (recorded, or replayed); the model question compares the catalog built from drizzle's
//! snapshot (`schema::model_ddl`, [`model_catalog`]) with the one the migrations built. Nothing
//! here reads SQL: Postgres read both sides. Pure.

mod catalogs;
mod difference;
mod mismatch;
mod model;
mod options;

pub use catalogs::compare_catalogs;
pub use difference::{Difference, DifferenceKind, DriftError};
pub use mismatch::{classify, ModelMismatch};
pub use model::model_catalog;
pub use options::{DriftOptions, IgnoreRule};
