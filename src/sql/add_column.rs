//! `ALTER TABLE t ADD COLUMN c T DEFAULT e [NOT NULL]` read from Postgres's parse tree, and the
//! two statements the add-then-backfill recipe starts with, printed back by libpg_query's own
//! deparser: the column added bare (nullable, no default: Postgres writes no row) and its
//! default set afterwards (new rows get it; the rows already there are backfilled).

use pg_query::protobuf::{AlterTableCmd, AlterTableType, ConstrType, DropBehavior, Node, RangeVar};
use pg_query::NodeEnum;

use crate::sql::online::quote;

/// An added column with a default, as a recipe takes it apart. Names unquoted; `table` quoted
/// (with its schema when the statement names one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddColumn {
    pub table: String,
    pub table_name: String,
    pub column: String,
    /// The column added without its default and NOT NULL.
    pub add: String,
    /// `ALTER TABLE t ALTER COLUMN c SET DEFAULT e`.
    pub set_default: String,
    pub not_null: bool,
}

/// The column `piece` adds with a default, when it is one statement with that one subcommand
/// and the column has nothing else that acts on existing rows (no identity, generated,
/// primary key, unique, check or foreign key: each is its own lint finding) and no
/// `IF NOT EXISTS` (which would skip the add and still backfill).
pub fn add_column(piece: &str) -> Option<AddColumn> {
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
    let relation = alter.relation.clone()?;
    let [node] = alter.cmds.as_mut_slice() else { return None };
    let Some(NodeEnum::AlterTableCmd(cmd)) = node.node.as_mut() else {
        return None;
    };
    if cmd.subtype != AlterTableType::AtAddColumn as i32 || cmd.missing_ok {
        return None;
    }
    let Some(NodeEnum::ColumnDef(def)) = cmd.def.as_mut()?.node.as_mut() else {
        return None;
    };
    if def.colname.is_empty() || def.raw_default.is_some() || def.cooked_default.is_some() || !def.identity.is_empty() {
        return None;
    }
    let mut default = None;
    let mut not_null = def.is_not_null;
    for c in &def.constraints {
        let Some(NodeEnum::Constraint(c)) = c.node.as_ref() else {
            return None;
        };
        match ConstrType::try_from(c.contype).ok()? {
            ConstrType::ConstrDefault if default.is_none() => default = Some(c.raw_expr.clone()?),
            ConstrType::ConstrNotnull => not_null = true,
            ConstrType::ConstrNull => {}
            _ => return None,
        }
    }
    let default = default?;
    let column = def.colname.clone();
    def.constraints.clear();
    def.is_not_null = false;
    let add = NodeEnum::AlterTableStmt(alter.clone()).deparse().ok()?;
    alter.cmds = vec![Node {
        node: Some(NodeEnum::AlterTableCmd(Box::new(AlterTableCmd {
            subtype: AlterTableType::AtColumnDefault as i32,
            name: column.clone(),
            def: Some(default),
            behavior: DropBehavior::DropRestrict as i32,
            ..AlterTableCmd::default()
        }))),
    }];
    let set_default = NodeEnum::AlterTableStmt(alter).deparse().ok()?;
    Some(AddColumn {
        table: table_of(&relation),
        table_name: relation.relname.clone(),
        column,
        add,
        set_default,
        not_null,
    })
}

fn table_of(relation: &RangeVar) -> String {
    match relation.schemaname.as_str() {
        "" => quote(&relation.relname),
        schema => format!("{}.{}", quote(schema), quote(&relation.relname)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drizzles_default_random_is_added_bare_then_given_its_default() {
        let a = add_column(r#"ALTER TABLE "items" ADD COLUMN "token" uuid DEFAULT gen_random_uuid() NOT NULL;"#).unwrap();
        assert_eq!(a.table, r#""items""#);
        assert_eq!((a.table_name.as_str(), a.column.as_str(), a.not_null), ("items", "token", true));
        assert_eq!(a.add, "ALTER TABLE items ADD COLUMN token uuid");
        assert_eq!(a.set_default, "ALTER TABLE items ALTER COLUMN token SET DEFAULT gen_random_uuid()");
    }

    #[test]
    fn a_schema_a_quoted_name_and_an_expression_come_back_as_postgres_read_them() {
        let a = add_column(
            r#"ALTER TABLE "s"."Items" ADD COLUMN "Seen At" timestamp with time zone DEFAULT clock_timestamp() + interval '1 day';"#,
        )
        .unwrap();
        assert_eq!(a.table, r#""s"."Items""#);
        assert_eq!((a.column.as_str(), a.not_null), ("Seen At", false));
        assert_eq!(a.add, r#"ALTER TABLE s."Items" ADD COLUMN "Seen At" timestamp with time zone"#);
        assert_eq!(
            a.set_default,
            r#"ALTER TABLE s."Items" ALTER COLUMN "Seen At" SET DEFAULT clock_timestamp() + '1 day'::interval"#
        );
    }

    #[test]
    fn what_the_recipe_cannot_take_apart_is_not_read() {
        for sql in [
            r#"ALTER TABLE "t" ADD COLUMN "c" uuid;"#,
            r#"ALTER TABLE "t" ADD COLUMN IF NOT EXISTS "c" uuid DEFAULT gen_random_uuid();"#,
            r#"ALTER TABLE "t" ADD COLUMN "c" uuid DEFAULT gen_random_uuid() PRIMARY KEY;"#,
            r#"ALTER TABLE "t" ADD COLUMN "c" uuid DEFAULT gen_random_uuid() UNIQUE;"#,
            r#"ALTER TABLE "t" ADD COLUMN "c" integer GENERATED ALWAYS AS IDENTITY;"#,
            r#"ALTER TABLE "t" ADD COLUMN "c" double precision DEFAULT random() CHECK (c > 0);"#,
            r#"ALTER TABLE "t" ADD COLUMN "c" uuid DEFAULT gen_random_uuid(), ADD COLUMN "d" integer;"#,
            r#"ALTER TABLE "t" ALTER COLUMN "c" SET DEFAULT gen_random_uuid();"#,
            "not sql",
        ] {
            assert_eq!(add_column(sql), None, "{sql}");
        }
    }
}
