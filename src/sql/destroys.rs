//! What a statement destroys with the data it holds, read from Postgres's parse tree: the
//! rollback planner asks it of every down statement before running any.

use pg_query::protobuf::{AlterTableType, DropBehavior, ObjectType, RangeVar};
use pg_query::{Node, NodeEnum};

/// A table, column or schema a statement drops with whatever it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destroys {
    /// `DROP TABLE` or `TRUNCATE`; the name as an SQL reference (`"public"."t"` or `"t"`).
    Table(String),
    Column {
        table: String,
        column: String,
    },
    Schema(String),
    /// A statement the check cannot read (a `DELETE`, an `UPDATE`, a `DO` block, a `CASCADE`
    /// that may take columns with it, SQL Postgres's grammar refuses, ...): it may lose data, so
    /// it counts as a risk.
    Unclassified,
}

/// Objects whose drop loses no rows (their data, if any, is derived or rebuilt).
const DROPS_WITHOUT_ROWS: &[ObjectType] = &[
    ObjectType::ObjectIndex,
    ObjectType::ObjectType,
    ObjectType::ObjectView,
    ObjectType::ObjectMatview,
    ObjectType::ObjectSequence,
    ObjectType::ObjectFunction,
    ObjectType::ObjectProcedure,
    ObjectType::ObjectRoutine,
    ObjectType::ObjectTrigger,
    ObjectType::ObjectPolicy,
    ObjectType::ObjectRule,
    ObjectType::ObjectDomain,
    ObjectType::ObjectAggregate,
    ObjectType::ObjectOperator,
    ObjectType::ObjectCollation,
    ObjectType::ObjectStatisticExt,
    ObjectType::ObjectCast,
];

/// What `sql` drops: `DROP TABLE a, b`, `TRUNCATE a`, `ALTER TABLE t DROP [COLUMN] c, ...`,
/// `DROP SCHEMA s`. Statements that change no rows (creating, altering, commenting, granting,
/// settings, drops of objects without rows) give nothing; any other is [`Destroys::Unclassified`].
pub fn destroys(sql: &str) -> Vec<Destroys> {
    // libpg_query takes a C string; a NUL byte cannot be SQL anyway.
    if sql.contains('\0') {
        return vec![Destroys::Unclassified];
    }
    let Ok(parsed) = pg_query::parse(sql) else {
        return vec![Destroys::Unclassified];
    };
    let mut out = Vec::new();
    for node in parsed.protobuf.stmts.into_iter().filter_map(|s| s.stmt?.node) {
        match node {
            NodeEnum::DropStmt(d) => {
                let kind = ObjectType::try_from(d.remove_type).unwrap_or(ObjectType::Undefined);
                let cascades = d.behavior == DropBehavior::DropCascade as i32;
                match kind {
                    ObjectType::ObjectTable => out.extend(d.objects.iter().map(|o| Destroys::Table(qualified(&names(o))))),
                    ObjectType::ObjectSchema => out.extend(d.objects.iter().filter_map(|o| match &o.node {
                        Some(NodeEnum::String(s)) => Some(Destroys::Schema(s.sval.clone())),
                        _ => None,
                    })),
                    // `DROP TYPE ... CASCADE` drops the columns of that type with their values.
                    ObjectType::ObjectIndex => {}
                    k if DROPS_WITHOUT_ROWS.contains(&k) && !cascades => {}
                    _ => out.push(Destroys::Unclassified),
                }
            }
            NodeEnum::TruncateStmt(t) => out.extend(t.relations.iter().filter_map(|r| match &r.node {
                Some(NodeEnum::RangeVar(r)) => Some(Destroys::Table(range_var(r))),
                _ => None,
            })),
            NodeEnum::AlterTableStmt(a) => {
                let Some(relation) = a.relation.as_ref().filter(|_| a.objtype == ObjectType::ObjectTable as i32) else {
                    continue;
                };
                let table = range_var(relation);
                for cmd in a.cmds.iter().filter_map(|c| match &c.node {
                    Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd),
                    _ => None,
                }) {
                    if cmd.subtype == AlterTableType::AtDropColumn as i32 {
                        out.push(Destroys::Column {
                            table: table.clone(),
                            column: cmd.name.clone(),
                        });
                    }
                }
            }
            n if changes_no_rows(&n) => {}
            _ => out.push(Destroys::Unclassified),
        }
    }
    out
}

fn changes_no_rows(node: &NodeEnum) -> bool {
    use NodeEnum as N;
    matches!(
        node,
        N::CreateStmt(_)
            | N::CreateTableAsStmt(_)
            | N::IndexStmt(_)
            | N::CreateSeqStmt(_)
            | N::ViewStmt(_)
            | N::CreateEnumStmt(_)
            | N::CreateRangeStmt(_)
            | N::CompositeTypeStmt(_)
            | N::CreateDomainStmt(_)
            | N::DefineStmt(_)
            | N::CreateFunctionStmt(_)
            | N::CreateSchemaStmt(_)
            | N::CreateTrigStmt(_)
            | N::CreatePolicyStmt(_)
            | N::CreateExtensionStmt(_)
            | N::CreateCastStmt(_)
            | N::CreateStatsStmt(_)
            | N::CreateRoleStmt(_)
            | N::RuleStmt(_)
            | N::CommentStmt(_)
            | N::GrantStmt(_)
            | N::GrantRoleStmt(_)
            | N::AlterDefaultPrivilegesStmt(_)
            | N::VariableSetStmt(_)
            | N::RenameStmt(_)
            | N::AlterEnumStmt(_)
            | N::AlterSeqStmt(_)
            | N::AlterDomainStmt(_)
            | N::AlterOwnerStmt(_)
            | N::AlterObjectSchemaStmt(_)
            | N::AlterFunctionStmt(_)
            | N::AlterPolicyStmt(_)
            | N::AlterExtensionStmt(_)
            | N::AlterRoleStmt(_)
            | N::AlterStatsStmt(_)
            | N::AlterTableStmt(_)
    )
}

/// The names of a dotted object name in a `DROP` (`a`, or `s.t`), as Postgres folded them.
fn names(object: &Node) -> Vec<String> {
    match &object.node {
        Some(NodeEnum::List(list)) => list
            .items
            .iter()
            .filter_map(|i| match &i.node {
                Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn range_var(r: &RangeVar) -> String {
    let mut parts = Vec::new();
    if !r.schemaname.is_empty() {
        parts.push(r.schemaname.clone());
    }
    parts.push(r.relname.clone());
    qualified(&parts)
}

/// An SQL reference with every part quoted exactly.
fn qualified(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}
