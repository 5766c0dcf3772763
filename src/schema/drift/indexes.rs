//! Indexes as one key on both sides: drizzle-kit writes an operator class in place of the order,
//! Postgres prints defaults nobody wrote; both reduce to the same canonical columns.

use crate::db::catalog;
use crate::schema::expression;
use crate::schema::snapshot;

use super::ident::quote_ident;
use super::shown::Shown;

/// One index column in canonical form: expression, non-default operator class, then order
/// only where it differs from the default (ASC, and NULLS LAST for ASC / FIRST for DESC).
fn index_column_key(expr: &str, opclass: Option<&str>, descending: bool, nulls_first: bool, orderable: bool) -> String {
    let mut s = expr.to_string();
    if let Some(o) = opclass {
        s.push(' ');
        s.push_str(o);
    }
    if orderable {
        if descending {
            s.push_str(" DESC");
        }
        if nulls_first != descending {
            s.push_str(if nulls_first { " NULLS FIRST" } else { " NULLS LAST" });
        }
    }
    s
}

fn index_key(unique: bool, method: &str, columns: &[String], extra: &[String], predicate: Option<&str>) -> String {
    let mut s = String::new();
    if unique {
        s.push_str("UNIQUE ");
    }
    s.push_str(&format!("USING {method} ({})", columns.join(", ")));
    for e in extra {
        s.push(' ');
        s.push_str(e);
    }
    if let Some(p) = predicate {
        s.push_str(" WHERE ");
        s.push_str(&expression::canonical(p));
    }
    s
}

pub(super) fn expected_index(i: &snapshot::Index, live: Option<&catalog::Index>) -> Shown {
    let method = i.method.to_ascii_lowercase();
    let orderable = method == "btree";
    let columns: Vec<String> = i
        .columns
        .iter()
        .enumerate()
        .map(|(n, c)| {
            let (expr, mut opclass, written_desc, written_nulls) = if c.is_expression {
                match expression::parse_index_element(&c.expression) {
                    Ok(e) => (
                        e.expr.canonical(),
                        e.opclass.or_else(|| c.opclass.clone()),
                        e.descending,
                        e.nulls_first,
                    ),
                    Err(_) => (expression::normalised_text(&c.expression), c.opclass.clone(), None, None),
                }
            } else {
                (quote_ident(&c.expression), c.opclass.clone(), None, None)
            };
            // drizzle-kit 0.x emits the operator class instead of ASC/DESC and NULLS when one is
            // given, so the index Postgres built is ascending with nulls last (1.0 writes both).
            let (descending, nulls_first) = if opclass.is_some() && !c.order_beside_opclass {
                (written_desc.unwrap_or(false), written_nulls.unwrap_or(false))
            } else {
                let desc = written_desc.unwrap_or(!c.asc);
                let nulls_first = written_nulls.unwrap_or(match c.nulls.as_deref() {
                    Some("first") => true,
                    Some("last") => false,
                    _ => desc,
                });
                (desc, nulls_first)
            };
            // Naming the type's default operator class is the same as naming none.
            if let (Some(o), Some(lc)) = (&opclass, live.and_then(|l| l.columns.get(n))) {
                if lc.opclass_default && lc.opclass == *o {
                    opclass = None;
                }
            }
            index_column_key(&expr, opclass.as_deref(), descending, nulls_first, orderable)
        })
        .collect();
    let mut extra = Vec::new();
    if let Some(with) = &i.with {
        if !with.is_empty() {
            let mut params: Vec<String> = with
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{}={s}", k.to_ascii_lowercase()),
                    other => format!("{}={other}", k.to_ascii_lowercase()),
                })
                .collect();
            params.sort();
            extra.push(format!("WITH ({})", params.join(", ")));
        }
    }
    Shown::same(index_key(i.is_unique, &method, &columns, &extra, i.predicate.as_deref()))
}

pub(super) fn actual_index(i: &catalog::Index) -> Shown {
    let columns: Vec<String> = i
        .columns
        .iter()
        .map(|c| {
            let expr = expression::canonical(&c.expression);
            let opclass = (!c.opclass_default && !c.opclass.is_empty()).then_some(c.opclass.as_str());
            index_column_key(&expr, opclass, c.descending, c.nulls_first, i.orderable)
        })
        .collect();
    let mut extra = Vec::new();
    if !i.included.is_empty() {
        let included: Vec<String> = i.included.iter().map(|c| expression::canonical(c)).collect();
        extra.push(format!("INCLUDE ({})", included.join(", ")));
    }
    if i.nulls_not_distinct {
        extra.push("NULLS NOT DISTINCT".into());
    }
    if !i.options.is_empty() {
        let mut params: Vec<String> = i.options.iter().map(|o| o.to_ascii_lowercase()).collect();
        params.sort();
        extra.push(format!("WITH ({})", params.join(", ")));
    }
    Shown::same(index_key(i.unique, &i.method, &columns, &extra, i.predicate.as_deref()))
}
