//! Unique, foreign key and check constraints, shown the way Postgres prints their definitions;
//! a check is keyed on its canonical expression.

use crate::schema::expression;

use super::ident::quote_ident;
use super::shown::Shown;

fn column_list(columns: &[String]) -> String {
    columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
}

pub(super) fn unique_shown(columns: &[String], nulls_not_distinct: bool) -> Shown {
    let nnd = if nulls_not_distinct { " NULLS NOT DISTINCT" } else { "" };
    Shown::same(format!("UNIQUE{nnd} ({})", column_list(columns)))
}

pub(super) fn foreign_key_shown(from: &[String], schema: &str, table: &str, to: &[String], on_update: &str, on_delete: &str) -> Shown {
    Shown::same(format!(
        "FOREIGN KEY ({}) REFERENCES {}.{} ({}) ON UPDATE {} ON DELETE {}",
        column_list(from),
        quote_ident(schema),
        quote_ident(table),
        column_list(to),
        on_update.to_ascii_uppercase(),
        on_delete.to_ascii_uppercase()
    ))
}

pub(super) fn check_shown(expression: &str) -> Shown {
    Shown {
        key: format!("CHECK {}", expression::canonical(expression)),
        display: format!("CHECK ({expression})"),
    }
}
