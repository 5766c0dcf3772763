//! The statements an online recipe can take apart, read from Postgres's parse tree, and the
//! lock-safe statements they become, printed back by libpg_query's own deparser (so a name,
//! an expression or an `ON DELETE` clause comes out exactly as Postgres read it).

use pg_query::protobuf::{AlterTableCmd, AlterTableType, ConstrType, Node, RangeVar};
use pg_query::NodeEnum;

/// A statement a recipe knows, with what its steps need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `CREATE [UNIQUE] INDEX name ...` without `CONCURRENTLY`: `concurrently` is the same
    /// build with it; `index` is the index's name (quoted, in the table's schema when given).
    CreateIndex { concurrently: String, index: String },
    /// `ALTER TABLE t ADD CONSTRAINT name FOREIGN KEY / CHECK ...` that validates the rows:
    /// `not_valid` adds it without the scan, `validate` scans under a lock writers pass.
    AddConstraint { not_valid: String, validate: String },
    /// `ALTER TABLE t ADD CONSTRAINT name UNIQUE (cols)`: `concurrently` builds its unique index
    /// under the constraint's name without blocking writes, `attach` makes it the constraint.
    AddUnique { concurrently: String, attach: String },
    /// `ALTER TABLE t ALTER COLUMN c SET NOT NULL`; `table` quoted (with its schema when given).
    SetNotNull { table: String, table_name: String, column: String },
}

/// What a recipe can do with `piece` (one statement); `None` when it is not one of the shapes
/// above (already concurrent or `NOT VALID`, an unnamed index or constraint, several
/// subcommands, several statements, or not SQL at all).
pub fn shape(piece: &str) -> Option<Shape> {
    if piece.contains('\0') {
        return None;
    }
    let mut stmts = pg_query::parse(piece).ok()?.protobuf.stmts;
    if stmts.len() != 1 {
        return None;
    }
    match stmts.pop()?.stmt?.node? {
        NodeEnum::IndexStmt(mut index) => {
            if index.concurrent || index.idxname.is_empty() {
                return None;
            }
            let schema = index.relation.as_ref().map(|r| r.schemaname.clone()).filter(|s| !s.is_empty());
            let name = qualified(schema.as_deref(), &index.idxname);
            index.concurrent = true;
            let concurrently = NodeEnum::IndexStmt(index).deparse().ok()?;
            Some(Shape::CreateIndex { concurrently, index: name })
        }
        NodeEnum::AlterTableStmt(mut alter) => {
            let relation = alter.relation.clone()?;
            let [node] = alter.cmds.as_mut_slice() else { return None };
            let Some(NodeEnum::AlterTableCmd(cmd)) = node.node.as_mut() else {
                return None;
            };
            match AlterTableType::try_from(cmd.subtype).ok()? {
                AlterTableType::AtAddConstraint if unique(cmd, &relation).is_some() => unique(cmd, &relation),
                AlterTableType::AtAddConstraint => {
                    let (not_valid_cmd, validate) = add_constraint(cmd, &relation)?;
                    **cmd = not_valid_cmd;
                    let not_valid = NodeEnum::AlterTableStmt(alter).deparse().ok()?;
                    Some(Shape::AddConstraint { not_valid, validate })
                }
                AlterTableType::AtSetNotNull if !cmd.name.is_empty() => Some(Shape::SetNotNull {
                    table: table_of(&relation),
                    table_name: relation.relname.clone(),
                    column: cmd.name.clone(),
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The `NOT VALID` form of an `ADD CONSTRAINT` of a named foreign key or check that validates,
/// and the `VALIDATE CONSTRAINT` that finishes it.
fn add_constraint(cmd: &AlterTableCmd, relation: &RangeVar) -> Option<(AlterTableCmd, String)> {
    let Some(NodeEnum::Constraint(constraint)) = cmd.def.as_ref()?.node.as_ref() else {
        return None;
    };
    let kind = ConstrType::try_from(constraint.contype).ok()?;
    if !matches!(kind, ConstrType::ConstrForeign | ConstrType::ConstrCheck) || constraint.skip_validation || constraint.conname.is_empty() {
        return None;
    }
    let mut not_valid = constraint.clone();
    not_valid.skip_validation = true;
    not_valid.initially_valid = false;
    let mut cmd = cmd.clone();
    cmd.def = Some(Box::new(Node {
        node: Some(NodeEnum::Constraint(not_valid)),
    }));
    let validate = format!(
        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
        table_of(relation),
        quote(&constraint.conname)
    );
    Some((cmd, validate))
}

/// A plain named `UNIQUE` constraint (drizzle-kit's `.unique()`): its index built concurrently
/// under the constraint's name, then attached. Anything more (`DEFERRABLE`, `INCLUDE`, storage
/// options, a tablespace, `USING INDEX` already) is left to the gate.
fn unique(cmd: &AlterTableCmd, relation: &RangeVar) -> Option<Shape> {
    let Some(NodeEnum::Constraint(c)) = cmd.def.as_ref()?.node.as_ref() else {
        return None;
    };
    let plain = c.contype == ConstrType::ConstrUnique as i32
        && !c.conname.is_empty()
        && !c.deferrable
        && c.including.is_empty()
        && c.options.is_empty()
        && c.indexname.is_empty()
        && c.indexspace.is_empty()
        && !c.keys.is_empty();
    if !plain {
        return None;
    }
    let columns = c
        .keys
        .iter()
        .map(|k| match &k.node {
            Some(NodeEnum::String(s)) => Some(quote(&s.sval)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?
        .join(", ");
    let table = table_of(relation);
    let name = quote(&c.conname);
    let nulls = if c.nulls_not_distinct { " NULLS NOT DISTINCT" } else { "" };
    Some(Shape::AddUnique {
        concurrently: format!("CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} ({columns}){nulls}"),
        attach: format!("ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}"),
    })
}

fn table_of(relation: &RangeVar) -> String {
    let schema = Some(relation.schemaname.as_str()).filter(|s| !s.is_empty());
    qualified(schema, &relation.relname)
}

fn qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(name)),
        None => quote(name),
    }
}

/// An identifier quoted for Postgres, whatever its letters (a folded name stays what it is).
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drizzle_index_becomes_the_same_build_concurrently() {
        let s = shape(r#"CREATE UNIQUE INDEX "items_sku_idx" ON "public"."items" USING btree ("sku") WHERE "sku" is not null;"#);
        let Some(Shape::CreateIndex { concurrently, index }) = s else {
            panic!("{s:?}")
        };
        assert_eq!(index, r#""public"."items_sku_idx""#);
        assert!(
            concurrently.starts_with("CREATE UNIQUE INDEX CONCURRENTLY items_sku_idx ON public.items"),
            "{concurrently}"
        );
        assert!(concurrently.contains("WHERE sku IS NOT NULL"), "{concurrently}");
    }

    #[test]
    fn a_foreign_key_is_added_not_valid_then_validated() {
        let s = shape(
            r#"ALTER TABLE "items" ADD CONSTRAINT "items_list_fk" FOREIGN KEY ("list_id") REFERENCES "public"."lists"("id") ON DELETE cascade ON UPDATE no action;"#,
        );
        let Some(Shape::AddConstraint { not_valid, validate }) = s else {
            panic!("{s:?}")
        };
        assert!(
            not_valid.contains("ON DELETE CASCADE") && not_valid.ends_with("NOT VALID"),
            "{not_valid}"
        );
        assert_eq!(validate, r#"ALTER TABLE "items" VALIDATE CONSTRAINT "items_list_fk""#);
    }

    #[test]
    fn a_check_is_added_not_valid_then_validated() {
        let s = shape(r#"ALTER TABLE "Items" ADD CONSTRAINT "qty_positive" CHECK ("Items"."qty" > 0);"#);
        let Some(Shape::AddConstraint { not_valid, validate }) = s else {
            panic!("{s:?}")
        };
        assert!(not_valid.contains("CHECK (\"Items\".qty > 0) NOT VALID"), "{not_valid}");
        assert_eq!(validate, r#"ALTER TABLE "Items" VALIDATE CONSTRAINT "qty_positive""#);
    }

    #[test]
    fn a_unique_constraint_is_built_concurrently_then_attached_under_its_name() {
        assert_eq!(
            shape(r#"ALTER TABLE "s"."items" ADD CONSTRAINT "items_sku_unique" UNIQUE NULLS NOT DISTINCT("sku","Store");"#),
            Some(Shape::AddUnique {
                concurrently: r#"CREATE UNIQUE INDEX CONCURRENTLY "items_sku_unique" ON "s"."items" ("sku", "Store") NULLS NOT DISTINCT"#
                    .into(),
                attach: r#"ALTER TABLE "s"."items" ADD CONSTRAINT "items_sku_unique" UNIQUE USING INDEX "items_sku_unique""#.into(),
            })
        );
    }

    #[test]
    fn set_not_null_names_its_table_and_column() {
        assert_eq!(
            shape(r#"ALTER TABLE "s"."items" ALTER COLUMN "Qty" SET NOT NULL;"#),
            Some(Shape::SetNotNull {
                table: r#""s"."items""#.into(),
                table_name: "items".into(),
                column: "Qty".into(),
            })
        );
    }

    #[test]
    fn what_is_already_safe_or_cannot_be_named_has_no_shape() {
        for sql in [
            r#"CREATE INDEX CONCURRENTLY "i" ON "t" ("c");"#,
            r#"CREATE INDEX ON "t" ("c");"#,
            r#"ALTER TABLE "t" ADD CONSTRAINT "f" FOREIGN KEY ("a") REFERENCES "u"("id") NOT VALID;"#,
            r#"ALTER TABLE "t" ADD FOREIGN KEY ("a") REFERENCES "u"("id");"#,
            r#"ALTER TABLE "t" ADD CONSTRAINT "u" UNIQUE ("a") DEFERRABLE;"#,
            r#"ALTER TABLE "t" ADD CONSTRAINT "u" UNIQUE ("a") INCLUDE ("b");"#,
            r#"ALTER TABLE "t" ADD CONSTRAINT "p" PRIMARY KEY ("a");"#,
            r#"ALTER TABLE "t" ADD UNIQUE ("a");"#,
            r#"ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL, ALTER COLUMN "b" SET NOT NULL;"#,
            r#"ALTER TABLE "t" ALTER COLUMN "a" SET DATA TYPE integer;"#,
            "CREATE INDEX i ON t (c); CREATE INDEX j ON t (d);",
            "not sql",
        ] {
            assert_eq!(shape(sql), None, "{sql}");
        }
    }
}
