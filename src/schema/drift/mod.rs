//! Drift: the live schema ([`Catalog`]) against the schema drizzle-kit expects ([`Snapshot`]),
//! as a list of differences `{kind, object, expected, actual}`. Pure: both sides are first
//! normalised into one model (Postgres and drizzle spell the same schema differently:
//! `timestamptz` / `timestamp with time zone`, `'USD'` / `'USD'::wishlist_currency`, `serial` /
//! `integer DEFAULT nextval(..)`, `"t"."c" IN (..)` / `c = ANY (ARRAY[..])`), then compared.
//!
//! [`Catalog`]: crate::db::catalog::Catalog
//! [`Snapshot`]: crate::schema::snapshot::Snapshot

mod catalogs;
mod column_type;
mod comparison;
mod constraints;
mod defaults;
mod difference;
mod ident;
mod indexes;
mod mismatch;
mod model;
mod options;
mod policies;
#[cfg(test)]
mod postgres_spelling;
mod sequences;
mod shown;
#[cfg(test)]
mod test_support;

pub use catalogs::compare_catalogs;
pub use comparison::{compare, compare_with_questions, settle, Question};
pub use difference::{Difference, DifferenceKind, DriftError};
pub use mismatch::{classify, ModelMismatch};
pub use options::{DriftOptions, IgnoreRule};
