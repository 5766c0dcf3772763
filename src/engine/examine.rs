//! The two questions `drift` (and `verify`) answer, separately:
//! 1. Has anyone changed this database since its migrations ran? The live catalog against the
//!    baseline: the catalog recorded at the end of this tool's last run, or, when there is none
//!    for the current ledger, the catalog of a scratch database the applied migrations are
//!    replayed into. Postgres printed both, so a difference is a real change.
//! 2. Does drizzle's snapshot agree with what the migrations build? The snapshot against the
//!    baseline, reported as model mismatches with their likely cause.
//!
//! Without a baseline (no record, and no scratch database allowed) the live catalog is compared
//! with the snapshot, as the only answer left, and a warning says so.

use crate::db::catalog::{self, Catalog};
use crate::engine::error::Error;
use crate::engine::model;
use crate::engine::outcome::BaselineSource;
use crate::engine::plan::Assessment;
use crate::engine::replay::replay;
use crate::engine::session::Session;
use crate::migrations::source::Migration;
use crate::schema::drift::{classify, compare_catalogs, Difference, DifferenceKind, ModelMismatch};
use crate::schema::snapshot::Snapshot;

pub struct Examination {
    pub baseline: BaselineSource,
    /// Changes made to the database outside the migrations.
    pub manual_changes: Vec<Difference>,
    pub model_mismatches: Vec<ModelMismatch>,
    /// Information only (enum values Postgres appended).
    pub notes: Vec<String>,
    /// None when the snapshot could not be read and a baseline answered the first question.
    pub expected: Option<Snapshot>,
    pub actual: Catalog,
}

/// `strict`: the second question must be answered, so an unreadable snapshot is an error even
/// when a baseline answers the first.
pub async fn examine(
    session: &Session<'_>,
    assessment: &Assessment<'_>,
    strict: bool,
    warnings: &mut Vec<String>,
) -> Result<Examination, Error> {
    let version = assessment.current();
    let actual = catalog::read(session.client()).await?;
    let options = session.drift_options();
    let (baseline, built) = match baseline(session, assessment, warnings).await? {
        Some((source, built)) => (source, Some(built)),
        None => (BaselineSource::Snapshot, None),
    };
    let snapshot = Snapshot::at(&session.set.source, version);
    let (manual_changes, model, notes, expected) = match (built, snapshot) {
        (Some(built), Ok(expected)) => {
            let differences = model_question(session, &expected, &built, warnings).await;
            let (model, notes) = classify(differences);
            (compare_catalogs(&built, &actual, &options), model, notes, Some(expected))
        }
        // The first question needs no snapshot: an old snapshot format or a hand-written
        // migration without one only leaves the second unanswered.
        (Some(built), Err(e)) if !strict => {
            warnings.push(format!("the snapshot and the migrations were not compared: {e}"));
            (compare_catalogs(&built, &actual, &options), Vec::new(), Vec::new(), None)
        }
        (None, Ok(expected)) => {
            // Enum order is never a change here either: Postgres appends added values.
            let differences = model_question(session, &expected, &actual, warnings).await;
            let (differences, notes) = split_enum_order(differences);
            (differences, Vec::new(), notes, Some(expected))
        }
        (_, Err(e)) => return Err(e.into()),
    };
    Ok(Examination {
        baseline,
        manual_changes,
        model_mismatches: model,
        notes,
        expected,
        actual,
    })
}

async fn baseline(
    session: &Session<'_>,
    assessment: &Assessment<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<(BaselineSource, Catalog)>, Error> {
    let ledger = &session.settings().ledger;
    match ledger.recorded_catalog(session.client()).await? {
        Some(recorded) if recorded.belongs_to(&assessment.rows) => return Ok(Some((BaselineSource::Recorded, recorded.catalog))),
        Some(_) => warnings.push(
            "the recorded baseline belongs to another ledger (a migration was applied or removed by another tool since); replaying the migrations instead".into(),
        ),
        None => {}
    }
    let applied: Vec<&Migration> = assessment.applied.iter().map(|a| a.migration).collect();
    let shadow = session.settings().shadow.as_deref();
    let server = shadow.unwrap_or(session.inv.connection);
    let admin = if shadow.is_some() {
        None
    } else {
        Some((session.client(), session.server_major()))
    };
    match replay(server, admin, ledger, &applied, session.run_id, session.inv.budget.deadline()).await {
        Ok(built) => Ok(Some((BaselineSource::Replayed, built))),
        Err(e) => {
            tracing::warn!(error = %e, "no baseline: comparing the live schema with the snapshot");
            warnings.push(format!(
                "no baseline to tell manual changes from the migrations: {e}. Compared with the snapshot instead, where a difference may also mean the snapshot and the migration SQL disagree"
            ));
            Ok(None)
        }
    }
}

/// The snapshot, built by Postgres, against `against`. A database where nothing may be built
/// (a standby, a role without CREATE) leaves the question unanswered, with a warning.
async fn model_question(session: &Session<'_>, expected: &Snapshot, against: &Catalog, warnings: &mut Vec<String>) -> Vec<Difference> {
    match model::build(session.client(), expected, against).await {
        Ok(model) => compare_catalogs(&model, against, &session.drift_options()),
        Err(e) => {
            warnings.push(format!(
                "the snapshot was not compared: PostgreSQL could not build it in a rolled-back transaction ({e}); grant the role CREATE on the database, or run drift on the primary"
            ));
            Vec::new()
        }
    }
}

fn split_enum_order(differences: Vec<Difference>) -> (Vec<Difference>, Vec<String>) {
    let (order, rest): (Vec<Difference>, Vec<Difference>) = differences.into_iter().partition(|d| d.kind == DifferenceKind::EnumValueOrder);
    let (_, notes) = classify(order);
    (rest, notes)
}
