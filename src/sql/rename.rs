//! Schema names inside an SQL expression, renamed through Postgres's parse tree: a snapshot's
//! `"shop"."items"."qty"` or `'x'::"shop"."state"` must name the model's copy of the schema when
//! drift has Postgres build the snapshot beside the live schema (`schema::model_ddl`).

use pg_query::protobuf::Node;
use pg_query::{NodeEnum, NodeMut};

/// `expression` with every schema name `rename` answers for replaced: in column references of
/// three parts, relations and type names. As written when it names no such schema; `None` when
/// Postgres's grammar does not read it (Postgres will then say why when it is built).
pub fn rename_schemas(expression: &str, rename: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if expression.contains('\0') {
        return None;
    }
    // The newline keeps a trailing `--` comment inside.
    let mut parsed = pg_query::parse(&format!("SELECT ({expression}\n)")).ok()?;
    let mut changed = false;
    // SAFETY: the pointers point into `parsed.protobuf`, which outlives this loop and is not
    // otherwise touched while they are used; each is dereferenced once, alone.
    unsafe {
        for (node, _, _) in parsed.protobuf.nodes_mut() {
            match node {
                NodeMut::ColumnRef(c) => changed |= rename_first(&mut (*c).fields, 3, rename),
                NodeMut::TypeName(t) => changed |= rename_first(&mut (*t).names, 2, rename),
                // A cast holds its type in a field of its own, which the walk does not visit.
                NodeMut::TypeCast(c) => {
                    if let Some(t) = (*c).type_name.as_mut() {
                        changed |= rename_first(&mut t.names, 2, rename);
                    }
                }
                NodeMut::RangeVar(r) => {
                    if let Some(new) = rename(&(*r).schemaname) {
                        (*r).schemaname = new;
                        changed = true;
                    }
                }
                _ => {}
            }
        }
    }
    if !changed {
        return Some(expression.to_string());
    }
    let deparsed = parsed.protobuf.deparse().ok()?;
    deparsed.strip_prefix("SELECT ").map(str::to_string)
}

/// Renames the first of `parts` names (the schema of `schema.table.column` or `schema.type`).
fn rename_first(names: &mut [Node], parts: usize, rename: &dyn Fn(&str) -> Option<String>) -> bool {
    if names.len() != parts {
        return false;
    }
    if let Some(NodeEnum::String(s)) = names[0].node.as_mut() {
        if let Some(new) = rename(&s.sval) {
            s.sval = new;
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(schema: &str) -> Option<String> {
        (schema == "shop").then(|| "wm_model__shop".to_string())
    }

    #[test]
    fn schemas_in_columns_relations_and_types_are_renamed() {
        let renamed = rename_schemas("\"shop\".\"items\".\"qty\" < 100", &shop).unwrap();
        assert!(renamed.contains("wm_model__shop.items.qty"), "{renamed}");
        let renamed = rename_schemas("'a'::\"shop\".\"state\"", &shop).unwrap();
        assert!(renamed.contains("wm_model__shop.state"), "{renamed}");
        let renamed = rename_schemas("exists (select 1 from shop.orders o where o.id = 1)", &shop).unwrap();
        assert!(renamed.contains("wm_model__shop.orders"), "{renamed}");
    }

    #[test]
    fn an_expression_naming_no_such_schema_is_kept_as_written() {
        assert_eq!(
            rename_schemas("\"items\".\"qty\" < 100", &shop).as_deref(),
            Some("\"items\".\"qty\" < 100")
        );
        assert_eq!(rename_schemas("auth.uid()", &shop).as_deref(), Some("auth.uid()"));
        assert_eq!(rename_schemas("this is not sql (", &shop), None);
    }
}
