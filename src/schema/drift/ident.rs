//! SQL identifiers both ways: quoted only where Postgres would need it in what drift shows, and
//! unquoted as `DRIFT_IGNORE` and drizzle's policy targets and roles write them.

use crate::schema::expression;

/// Quotes an identifier only when Postgres would need it.
pub(super) fn quote_ident(name: &str) -> String {
    expression::Expr::Name(name.to_string()).canonical()
}

pub(super) fn unquote(part: &str) -> String {
    let part = part.trim();
    match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => part.to_string(),
    }
}
