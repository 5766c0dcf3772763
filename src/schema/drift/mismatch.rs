//! The second question drift answers: does drizzle's schema (the snapshot) agree with what the
//! migrations build? A difference between the two is not a change to the database; it says the
//! migration SQL and the snapshot disagree, and why that usually happens.

use serde::{Deserialize, Serialize};

use super::difference::{Difference, DifferenceKind};

/// One place where the snapshot and the schema the migrations build disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelMismatch {
    pub kind: DifferenceKind,
    pub object: String,
    /// What drizzle's snapshot says; absent when the snapshot does not have the object.
    pub snapshot: Option<String>,
    /// What the migrations built; absent when they do not build it.
    pub database: Option<String>,
    pub cause: String,
}

/// The snapshot-against-built differences, split into mismatches and information: enum values
/// in another order are information only, because Postgres appends a value added with
/// `ALTER TYPE … ADD VALUE` where drizzle's snapshot lists it where the source declares it.
pub fn classify(differences: Vec<Difference>) -> (Vec<ModelMismatch>, Vec<String>) {
    let mut mismatches = Vec::new();
    let mut notes = Vec::new();
    for d in differences {
        if d.kind == DifferenceKind::EnumValueOrder {
            notes.push(format!(
                "{}: enum values are in the order Postgres appended them ({}), not the snapshot's ({}); comparisons and ORDER BY use Postgres's order",
                d.object,
                d.actual.as_deref().unwrap_or_default(),
                d.expected.as_deref().unwrap_or_default()
            ));
            continue;
        }
        let cause = match (&d.expected, &d.actual) {
            (Some(_), None) => "in the snapshot but not built by the migrations: a migration edited by hand after drizzle-kit generate, or a schema change not generated yet (run drizzle-kit generate)",
            (None, Some(_)) => "built by the migrations but not in the snapshot: SQL added to a migration by hand (add it to the drizzle schema, or drop it in a new migration)",
            _ => "the migrations build it differently from the snapshot: a migration edited by hand after drizzle-kit generate",
        };
        mismatches.push(ModelMismatch {
            kind: d.kind,
            object: d.object,
            snapshot: d.expected,
            database: d.actual,
            cause: cause.to_string(),
        });
    }
    (mismatches, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn difference(kind: DifferenceKind, expected: Option<&str>, actual: Option<&str>) -> Difference {
        Difference {
            kind,
            object: "public.t".into(),
            expected: expected.map(str::to_string),
            actual: actual.map(str::to_string),
        }
    }

    #[test]
    fn enum_order_is_information_and_everything_else_a_mismatch_with_its_cause() {
        let (mismatches, notes) = classify(vec![
            difference(DifferenceKind::EnumValueOrder, Some("a, new, b"), Some("a, b, new")),
            difference(DifferenceKind::MissingIndex, Some("btree (x)"), None),
            difference(DifferenceKind::ExtraIndex, None, Some("btree (y)")),
            difference(DifferenceKind::ColumnNullability, Some("not null"), Some("nullable")),
        ]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("a, b, new") && notes[0].contains("a, new, b"), "{}", notes[0]);
        let causes: Vec<&str> = mismatches.iter().map(|m| m.cause.split(':').next().unwrap()).collect();
        assert_eq!(
            causes,
            [
                "in the snapshot but not built by the migrations",
                "built by the migrations but not in the snapshot",
                "the migrations build it differently from the snapshot"
            ]
        );
        assert_eq!(mismatches[0].snapshot.as_deref(), Some("btree (x)"));
        assert_eq!(mismatches[1].database.as_deref(), Some("btree (y)"));
    }
}
