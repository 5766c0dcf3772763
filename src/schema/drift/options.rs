//! What drift leaves out: relations listed in `DRIFT_IGNORE`, and the ledger, which belongs to
//! this tool and drizzle-orm rather than to the application.

use crate::db::ledger::{LedgerTable, HISTORY_TABLE};

use crate::schema::model_ddl::unquote;

/// A `DRIFT_IGNORE` entry: `table` (in `public`), `schema.table`, or `schema.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRule {
    pub schema: String,
    /// `None` ignores the whole schema.
    pub name: Option<String>,
}

impl IgnoreRule {
    /// Parses a comma-separated list; blanks are skipped, `"quoted"` parts keep their case.
    pub fn parse_list(text: &str) -> Vec<Self> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let parts: Vec<String> = entry.split('.').map(unquote).collect();
                match parts.as_slice() {
                    [schema, name] if name == "*" => Self {
                        schema: schema.clone(),
                        name: None,
                    },
                    [schema, name] => Self {
                        schema: schema.clone(),
                        name: Some(name.clone()),
                    },
                    _ => Self {
                        schema: "public".into(),
                        name: Some(unquote(entry)),
                    },
                }
            })
            .collect()
    }

    fn matches(&self, schema: &str, name: &str) -> bool {
        self.schema == schema && self.name.as_deref().is_none_or(|n| n == name)
    }
}

#[derive(Debug, Clone, Default)]
pub struct DriftOptions {
    /// drizzle's ledger and this tool's history live here; never drift.
    pub ledger: LedgerTable,
    pub ignore: Vec<IgnoreRule>,
}

impl DriftOptions {
    /// Whether a whole schema is outside drift (`DRIFT_IGNORE` lists `schema.*`).
    pub fn ignored_schema(&self, schema: &str) -> bool {
        self.ignore.iter().any(|r| r.schema == schema && r.name.is_none())
    }

    /// Whether a relation is outside drift: listed in `DRIFT_IGNORE`, or the ledger itself.
    pub fn ignored(&self, schema: &str, name: &str) -> bool {
        self.ignore.iter().any(|r| r.matches(schema, name))
            || (schema == self.ledger.schema && (name == self.ledger.table || name == HISTORY_TABLE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_rules_parse() {
        assert_eq!(
            IgnoreRule::parse_list("a, audit.events,\"Mixed\".\"Case\",x.*"),
            [
                IgnoreRule {
                    schema: "public".into(),
                    name: Some("a".into())
                },
                IgnoreRule {
                    schema: "audit".into(),
                    name: Some("events".into())
                },
                IgnoreRule {
                    schema: "Mixed".into(),
                    name: Some("Case".into())
                },
                IgnoreRule {
                    schema: "x".into(),
                    name: None
                },
            ]
        );
        assert!(IgnoreRule::parse_list(" , ").is_empty());
    }
}
