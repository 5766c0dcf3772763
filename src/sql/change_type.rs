//! `ALTER TABLE t ALTER COLUMN c SET DATA TYPE T USING e` read from Postgres's parse tree, and
//! the definitions the expand/backfill/swap recipe rebuilds on the new column (an index or a
//! constraint as `pg_get_indexdef` / `pg_get_constraintdef` print it) with their column
//! references moved in the tree, printed back by libpg_query's deparser.

use pg_query::protobuf::{AlterTableCmd, AlterTableType, ConstrType, Node, RangeVar};
use pg_query::NodeEnum;

use crate::sql::online::quote;

/// A type change a recipe can take apart: names unquoted, `table` quoted as written (with its
/// schema when given), `new_type` and `using` as the deparser prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeType {
    pub table: String,
    pub schema: Option<String>,
    pub table_name: String,
    pub column: String,
    pub new_type: String,
    /// The `USING` expression; without one, the column cast to the new type.
    pub using: String,
}

/// The type change `piece` makes, when it is one statement with that one subcommand and no
/// `COLLATE` (which the new column would have to carry).
pub fn change_type(piece: &str) -> Option<ChangeType> {
    let (relation, cmd) = one_alter_command(piece)?;
    if cmd.subtype != AlterTableType::AtAlterColumnType as i32 || cmd.name.is_empty() {
        return None;
    }
    let Some(NodeEnum::ColumnDef(def)) = cmd.def.as_ref()?.node.as_ref() else {
        return None;
    };
    if def.coll_clause.is_some() {
        return None;
    }
    let type_name = def.type_name.clone()?;
    let cast = |arg: Node| Node {
        node: Some(NodeEnum::TypeCast(Box::new(pg_query::protobuf::TypeCast {
            arg: Some(Box::new(arg)),
            type_name: Some(type_name.clone()),
            location: -1,
        }))),
    };
    let new_type = expression(&cast(null()))?.strip_prefix("NULL::")?.to_string();
    let using = match def.raw_default.as_deref() {
        Some(e) => expression(e)?,
        None => expression(&cast(column_ref(&cmd.name)))?,
    };
    let schema = Some(relation.schemaname.clone()).filter(|s| !s.is_empty());
    let table = match &schema {
        Some(s) => format!("{}.{}", quote(s), quote(&relation.relname)),
        None => quote(&relation.relname),
    };
    Some(ChangeType {
        table,
        schema,
        table_name: relation.relname,
        column: cmd.name.clone(),
        new_type,
        using,
    })
}

/// The type changes `sql` makes, one statement each (as [`change_type`] reads them): what a
/// merged recipe's phase step carries. `None` unless every statement is one, all of one table
/// (as written), no column twice.
pub fn change_types(sql: &str) -> Option<Vec<ChangeType>> {
    let mut out: Vec<ChangeType> = Vec::new();
    for piece in pg_query::split_with_parser(sql).ok()? {
        let ct = change_type(piece)?;
        if out
            .first()
            .is_some_and(|first| first.table != ct.table || out.iter().any(|c| c.column == ct.column))
        {
            return None;
        }
        out.push(ct);
    }
    (!out.is_empty()).then_some(out)
}

/// The table (quoted as written, with its schema when given) and the column of a statement
/// that only sets or drops one column's default: `ALTER TABLE t ALTER COLUMN c SET DEFAULT e`
/// or `DROP DEFAULT`, one subcommand.
pub fn column_default(piece: &str) -> Option<(String, String)> {
    let (relation, cmd) = one_alter_command(piece)?;
    if cmd.subtype != AlterTableType::AtColumnDefault as i32 || cmd.name.is_empty() {
        return None;
    }
    let table = match relation.schemaname.as_str() {
        "" => quote(&relation.relname),
        s => format!("{}.{}", quote(s), quote(&relation.relname)),
    };
    Some((table, cmd.name.clone()))
}

/// The table and the one subcommand of `piece`, when it is one `ALTER TABLE` with exactly one.
fn one_alter_command(piece: &str) -> Option<(RangeVar, AlterTableCmd)> {
    if piece.contains('\0') {
        return None;
    }
    let mut stmts = pg_query::parse(piece).ok()?.protobuf.stmts;
    if stmts.len() != 1 {
        return None;
    }
    let NodeEnum::AlterTableStmt(mut alter) = stmts.pop()?.stmt?.node? else {
        return None;
    };
    let relation = alter.relation?;
    if alter.cmds.len() != 1 {
        return None;
    }
    let Some(NodeEnum::AlterTableCmd(cmd)) = alter.cmds.pop()?.node else {
        return None;
    };
    Some((relation, *cmd))
}

fn null() -> Node {
    Node {
        node: Some(NodeEnum::AConst(pg_query::protobuf::AConst {
            isnull: true,
            location: -1,
            val: None,
        })),
    }
}

fn column_ref(name: &str) -> Node {
    Node {
        node: Some(NodeEnum::ColumnRef(pg_query::protobuf::ColumnRef {
            fields: vec![Node {
                node: Some(NodeEnum::String(pg_query::protobuf::String { sval: name.into() })),
            }],
            location: -1,
        })),
    }
}

/// An expression as the deparser prints it: the one target of a `SELECT`, printed whole.
fn expression(e: &Node) -> Option<String> {
    let mut parsed = pg_query::parse("SELECT 1").ok()?.protobuf;
    let Some(NodeEnum::SelectStmt(select)) = parsed.stmts.first_mut()?.stmt.as_mut()?.node.as_mut() else {
        return None;
    };
    let Some(NodeEnum::ResTarget(target)) = select.target_list.first_mut()?.node.as_mut() else {
        return None;
    };
    target.val = Some(Box::new(e.clone()));
    Some(parsed.deparse().ok()?.strip_prefix("SELECT ")?.to_string())
}

/// Each column's references (last field) and index elements made its new name, for each
/// `(column, to)` of `moves`, through the expression nodes an index or a check can hold; `None`
/// when one is left that this walk does not reach (counted over the whole tree), so nothing is
/// half moved.
fn move_references(parsed: &mut pg_query::protobuf::ParseResult, moves: &[(&str, &str)]) -> Option<()> {
    for (column, to) in moves {
        for stmt in &mut parsed.stmts {
            if let Some(node) = stmt.stmt.as_mut() {
                walk(node, column, to);
            }
        }
    }
    let tree = serde_json::to_value(&*parsed).ok()?;
    moves.iter().all(|(column, _)| references(&tree, column) == 0).then_some(())
}

fn walk(node: &mut Node, column: &str, to: &str) {
    let Some(n) = node.node.as_mut() else { return };
    let each = |nodes: &mut Vec<Node>| nodes.iter_mut().for_each(|n| walk(n, column, to));
    match n {
        NodeEnum::ColumnRef(c) => {
            if let Some(Node {
                node: Some(NodeEnum::String(s)),
            }) = c.fields.last_mut()
            {
                if s.sval == column {
                    s.sval = to.to_string();
                }
            }
        }
        NodeEnum::IndexStmt(i) => {
            each(&mut i.index_params);
            each(&mut i.index_including_params);
            if let Some(w) = i.where_clause.as_deref_mut() {
                walk(w, column, to);
            }
        }
        NodeEnum::IndexElem(e) => {
            if e.name == column {
                e.name = to.to_string();
            }
            if let Some(x) = e.expr.as_deref_mut() {
                walk(x, column, to);
            }
        }
        NodeEnum::AlterTableStmt(a) => each(&mut a.cmds),
        NodeEnum::AlterTableCmd(c) => {
            if let Some(d) = c.def.as_deref_mut() {
                walk(d, column, to);
            }
        }
        NodeEnum::Constraint(c) => {
            if let Some(x) = c.raw_expr.as_deref_mut() {
                walk(x, column, to);
            }
        }
        NodeEnum::AExpr(a) => {
            for x in [a.lexpr.as_deref_mut(), a.rexpr.as_deref_mut()].into_iter().flatten() {
                walk(x, column, to);
            }
        }
        NodeEnum::BoolExpr(b) => each(&mut b.args),
        NodeEnum::FuncCall(f) => each(&mut f.args),
        NodeEnum::List(l) => each(&mut l.items),
        NodeEnum::RowExpr(r) => each(&mut r.args),
        NodeEnum::AArrayExpr(a) => each(&mut a.elements),
        NodeEnum::CoalesceExpr(c) => each(&mut c.args),
        NodeEnum::MinMaxExpr(m) => each(&mut m.args),
        NodeEnum::TypeCast(t) => {
            if let Some(x) = t.arg.as_deref_mut() {
                walk(x, column, to);
            }
        }
        NodeEnum::CollateClause(c) => {
            if let Some(x) = c.arg.as_deref_mut() {
                walk(x, column, to);
            }
        }
        NodeEnum::NullTest(t) => {
            if let Some(x) = t.arg.as_deref_mut() {
                walk(x, column, to);
            }
        }
        NodeEnum::BooleanTest(t) => {
            if let Some(x) = t.arg.as_deref_mut() {
                walk(x, column, to);
            }
        }
        NodeEnum::CaseExpr(c) => {
            for x in [c.arg.as_deref_mut(), c.defresult.as_deref_mut()].into_iter().flatten() {
                walk(x, column, to);
            }
            each(&mut c.args);
        }
        NodeEnum::CaseWhen(w) => {
            for x in [w.expr.as_deref_mut(), w.result.as_deref_mut()].into_iter().flatten() {
                walk(x, column, to);
            }
        }
        _ => {}
    }
}

/// How many column references to `column` (last field) or index elements on it the tree holds.
fn references(tree: &serde_json::Value, column: &str) -> usize {
    use serde_json::Value;
    match tree {
        Value::Object(map) => {
            let here = match (map.get("ColumnRef"), map.get("IndexElem")) {
                (Some(c), _) => usize::from(
                    c.get("fields")
                        .and_then(Value::as_array)
                        .and_then(|f| f.last())
                        .and_then(|f| f.pointer("/node/String/sval"))
                        .and_then(Value::as_str)
                        == Some(column),
                ),
                (_, Some(e)) => usize::from(e.get("name").and_then(Value::as_str) == Some(column)),
                _ => 0,
            };
            here + map.values().map(|v| references(v, column)).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(|v| references(v, column)).sum(),
        _ => 0,
    }
}

/// `CREATE INDEX CONCURRENTLY name …` of the index `def` (as `pg_get_indexdef` prints it) with
/// each `(column, to)` of `moves` replaced in its columns, expressions and predicate.
pub fn index_on(def: &str, moves: &[(&str, &str)], name: &str) -> Option<String> {
    let mut parsed = pg_query::parse(def).ok()?.protobuf;
    move_references(&mut parsed, moves)?;
    let Some(NodeEnum::IndexStmt(index)) = parsed.stmts.first_mut()?.stmt.as_mut()?.node.as_mut() else {
        return None;
    };
    index.concurrent = true;
    index.if_not_exists = false;
    index.idxname = name.to_string();
    parsed.deparse().ok()
}

/// `ALTER TABLE table ADD CONSTRAINT name <def> NOT VALID` for a `CHECK` or `FOREIGN KEY`
/// (`def` as `pg_get_constraintdef` prints it) with each `(column, to)` of `moves` replaced.
pub fn constraint_on(table: &str, name: &str, def: &str, moves: &[(&str, &str)]) -> Option<String> {
    let sql = format!("ALTER TABLE {table} ADD CONSTRAINT {} {def}", quote(name));
    let mut parsed = pg_query::parse(&sql).ok()?.protobuf;
    move_references(&mut parsed, moves)?;
    let Some(NodeEnum::AlterTableStmt(alter)) = parsed.stmts.first_mut()?.stmt.as_mut()?.node.as_mut() else {
        return None;
    };
    let Some(NodeEnum::AlterTableCmd(cmd)) = alter.cmds.first_mut()?.node.as_mut() else {
        return None;
    };
    let Some(NodeEnum::Constraint(c)) = cmd.def.as_mut()?.node.as_mut() else {
        return None;
    };
    match ConstrType::try_from(c.contype).ok()? {
        ConstrType::ConstrCheck => {}
        ConstrType::ConstrForeign => {
            for key in &mut c.fk_attrs {
                if let Some(NodeEnum::String(s)) = key.node.as_mut() {
                    if let Some((_, to)) = moves.iter().find(|(column, _)| s.sval == *column) {
                        s.sval = to.to_string();
                    }
                }
            }
        }
        _ => return None,
    }
    c.skip_validation = true;
    c.initially_valid = false;
    parsed.deparse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_drizzle_type_change() {
        let ct = change_type(
            r#"ALTER TABLE "wishlist_items" ALTER COLUMN "store" SET DATA TYPE "public"."wishlist_store" USING "store"::"public"."wishlist_store";"#,
        )
        .unwrap();
        assert_eq!(ct.table, r#""wishlist_items""#);
        assert_eq!(
            (ct.schema, ct.table_name.as_str(), ct.column.as_str()),
            (None, "wishlist_items", "store")
        );
        assert_eq!(ct.new_type, "public.wishlist_store");
        assert_eq!(ct.using, "store::public.wishlist_store");
        let plain = change_type(r#"ALTER TABLE "s"."T" ALTER COLUMN "Qty" SET DATA TYPE bigint;"#).unwrap();
        assert_eq!((plain.table.as_str(), plain.new_type.as_str()), (r#""s"."T""#, "bigint"));
        assert_eq!(plain.using, r#""Qty"::bigint"#);
        for other in [
            r#"ALTER TABLE "t" ALTER COLUMN "a" SET DATA TYPE text COLLATE "C";"#,
            r#"ALTER TABLE "t" ALTER COLUMN "a" TYPE int, ALTER COLUMN "b" TYPE int;"#,
            r#"ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL;"#,
        ] {
            assert_eq!(change_type(other), None, "{other}");
        }
    }

    #[test]
    fn an_index_is_rebuilt_on_the_new_column_concurrently() {
        let def = "CREATE UNIQUE INDEX idx_store ON public.items USING btree (user_id, store) WHERE (store <> 'x'::text)";
        assert_eq!(
            index_on(def, &[("store", "store__wm_new")], "idx_store__wm").unwrap(),
            "CREATE UNIQUE INDEX CONCURRENTLY idx_store__wm ON public.items USING btree (user_id, store__wm_new) WHERE store__wm_new <> 'x'::text"
        );
        let expr = "CREATE INDEX i ON public.items USING btree (lower(store))";
        assert!(index_on(expr, &[("store", "n")], "i2").unwrap().contains("(lower(n))"));
    }

    #[test]
    fn a_check_or_foreign_key_is_rebuilt_not_valid_on_the_new_column() {
        let check = constraint_on(
            r#""items""#,
            "store_check",
            "CHECK ((store <> ''::text))",
            &[("store", "store__wm_new")],
        )
        .unwrap();
        assert_eq!(
            check,
            r#"ALTER TABLE items ADD CONSTRAINT store_check CHECK (store__wm_new <> ''::text) NOT VALID"#
        );
        let fk = constraint_on(
            r#""items""#,
            "items_store_fk",
            "FOREIGN KEY (store) REFERENCES stores(store) ON DELETE CASCADE",
            &[("store", "n")],
        )
        .unwrap();
        assert!(
            fk.contains("FOREIGN KEY (n) REFERENCES stores (store) ON DELETE CASCADE NOT VALID"),
            "{fk}"
        );
        assert_eq!(constraint_on("t", "u", "UNIQUE (store)", &[("store", "n")]), None);
    }

    #[test]
    fn an_index_on_two_changed_columns_moves_both_at_once() {
        let def = "CREATE INDEX i ON public.items USING btree (user_id, store, currency)";
        assert_eq!(
            index_on(def, &[("store", "store__wm_new"), ("currency", "currency__wm_new")], "i__wm").unwrap(),
            "CREATE INDEX CONCURRENTLY i__wm ON public.items USING btree (user_id, store__wm_new, currency__wm_new)"
        );
        let check = constraint_on("t", "c", "CHECK ((a <> b))", &[("a", "a2"), ("b", "b2")]).unwrap();
        assert_eq!(check, "ALTER TABLE t ADD CONSTRAINT c CHECK (a2 <> b2) NOT VALID");
    }

    #[test]
    fn reads_several_type_changes_of_one_table_and_a_default_statement() {
        let store = r#"ALTER TABLE "items" ALTER COLUMN "store" SET DATA TYPE "public"."store" USING "store"::"public"."store";"#;
        let currency =
            r#"ALTER TABLE "items" ALTER COLUMN "currency" SET DATA TYPE "public"."currency" USING "currency"::"public"."currency";"#;
        let both = change_types(&format!("{store}\n{currency}")).unwrap();
        assert_eq!(both.iter().map(|c| c.column.as_str()).collect::<Vec<_>>(), ["store", "currency"]);
        assert_eq!(change_types(store).unwrap(), vec![change_type(store).unwrap()]);
        let other = r#"ALTER TABLE "lists" ALTER COLUMN "store" SET DATA TYPE text;"#;
        assert_eq!(change_types(&format!("{store}\n{other}")), None, "another table");
        assert_eq!(change_types(&format!("{store}\n{store}")), None, "a column twice");
        assert_eq!(change_types(""), None);
        assert_eq!(
            column_default(r#"ALTER TABLE "items" ALTER COLUMN "currency" SET DEFAULT 'USD'::"public"."currency";"#),
            Some((r#""items""#.to_string(), "currency".to_string()))
        );
        assert_eq!(
            column_default(r#"ALTER TABLE "s"."items" ALTER COLUMN "c" DROP DEFAULT;"#),
            Some((r#""s"."items""#.to_string(), "c".to_string()))
        );
        for not in [
            r#"ALTER TABLE "items" ALTER COLUMN "c" SET NOT NULL;"#,
            r#"ALTER TABLE "items" ALTER COLUMN "c" SET DEFAULT 1, ALTER COLUMN "d" SET DEFAULT 2;"#,
            store,
        ] {
            assert_eq!(column_default(not), None, "{not}");
        }
    }
}
