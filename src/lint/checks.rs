//! The rules applied to one parsed statement, in the order the migrations run, against what the
//! earlier statements built ([`SchemaState`]). Pure: the parse tree in, findings out.

use std::collections::{BTreeMap, BTreeSet};

use pg_query::protobuf::{AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint, ObjectType};
use pg_query::{NodeEnum, NodeRef};

use crate::lint::rule::Rule;
use crate::lint::schema_state::{self as state, change_keeps_rows, column_type, dotted, string_value, SchemaState};
use crate::sql::parse;

/// A rule broken at a byte of the statement piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: Rule,
    pub offset: usize,
    pub table: Option<String>,
    /// The enum type the finding is about, if it is about one.
    pub enum_type: Option<String>,
    pub message: String,
}

/// Where the rules put what they find.
pub struct Sink<'h>(&'h mut Vec<Hit>);

impl Sink<'_> {
    /// A finding about a table (or about no object, with `None`).
    fn table(&mut self, rule: Rule, offset: usize, table: Option<&str>, message: String) {
        self.0.push(Hit {
            rule,
            offset,
            table: table.map(str::to_string),
            enum_type: None,
            message,
        });
    }

    fn on_enum(&mut self, rule: Rule, offset: usize, enum_type: &str, message: String) {
        self.0.push(Hit {
            rule,
            offset,
            table: None,
            enum_type: Some(enum_type.to_string()),
            message,
        });
    }
}

/// Functions whose value differs per row: as a column default they make Postgres write every
/// existing row (a constant default is stored once in the catalog instead, since Postgres 11).
/// Only for a lint without a database: with one, Postgres's own `provolatile` decides.
const VOLATILE: [&str; 9] = [
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
];

/// An enum dropped in this migration, waiting to see whether it is created again.
struct DroppedEnum {
    values: Option<Vec<String>>,
    in_use: bool,
    piece: usize,
    offset: usize,
}

/// The rules' memory within one migration.
#[derive(Default)]
pub struct MigrationChecks<'v> {
    /// The statement piece being checked, set by the caller.
    pub piece: usize,
    /// The names of the functions the database marks volatile, when there is a database.
    pub volatile: Option<&'v BTreeSet<String>>,
    added_values: BTreeMap<String, String>,
    dropped_enums: BTreeMap<String, DroppedEnum>,
    /// While a `DO` block's statement is checked: where that statement starts in the piece (its
    /// own offsets start at 0).
    body_at: Option<usize>,
}

impl MigrationChecks<'_> {
    /// Enums dropped and not created again: dropping one in use (or unknown) is an error.
    pub fn finish(self, hits: &mut Vec<(usize, Hit)>) {
        for (name, dropped) in self.dropped_enums {
            if dropped.in_use || dropped.values.is_none() {
                hits.push((
                    dropped.piece,
                    Hit {
                        rule: Rule::EnumTypeDropped,
                        offset: dropped.offset,
                        table: None,
                        enum_type: Some(name.clone()),
                        message: format!("drops enum type \"{name}\": a column or the running API may still use it"),
                    },
                ));
            }
        }
    }

    /// The rules for one statement at `base` (its offset in the piece); updates `schema`.
    pub fn check(&mut self, node: &NodeEnum, text: &str, base: usize, schema: &mut SchemaState, hits: &mut Vec<Hit>) {
        let at = |location: i32| if location >= 0 { location as usize } else { base };
        let mut sink = Sink(hits);
        let hit = &mut sink;
        self.uses_added_value(node, text, base, hit);
        match node {
            NodeEnum::CreateStmt(create) => {
                let Some(rv) = &create.relation else { return };
                let table = schema.new_key(&rv.schemaname, &rv.relname);
                schema.created_table(&table);
                for element in &create.table_elts {
                    if let Some(NodeEnum::ColumnDef(col)) = &element.node {
                        if let Some(ty) = &col.type_name {
                            schema.set_column(&table, &col.colname, column_type(ty));
                        }
                    }
                }
            }
            NodeEnum::AlterTableStmt(alter) => {
                let Some(rv) = &alter.relation else { return };
                if alter.objtype != ObjectType::ObjectTable as i32 {
                    return;
                }
                let table = schema.table(rv);
                for cmd in &alter.cmds {
                    if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                        self.alter_table_cmd(cmd, &table, at(rv.location), schema, hit);
                    }
                }
            }
            NodeEnum::IndexStmt(index) => {
                let Some(rv) = &index.relation else { return };
                let table = schema.table(rv);
                if !index.concurrent && !schema.is_new(&table) {
                    let name = if index.idxname.is_empty() {
                        "an index".to_string()
                    } else {
                        format!("index \"{}\"", index.idxname)
                    };
                    hit.table(
                        Rule::IndexWithoutConcurrently,
                        base,
                        Some(&table),
                        format!("builds {name} on \"{table}\" without CONCURRENTLY: writes to the table wait until it is built"),
                    );
                }
            }
            NodeEnum::RenameStmt(rename) => {
                let Some(table) = rename.relation.as_ref().map(|rv| schema.table(rv)) else {
                    return;
                };
                let new = schema.is_new(&table);
                if rename.rename_type == ObjectType::ObjectTable as i32 {
                    // Renamed in the schema it is in.
                    let renamed = match table.rsplit_once('.') {
                        Some((in_schema, _)) => format!("{in_schema}.{}", rename.newname),
                        None => rename.newname.clone(),
                    };
                    schema.rename_table(&table, &renamed);
                } else if rename.rename_type == ObjectType::ObjectColumn as i32 {
                    schema.rename_column(&table, &rename.subname, &rename.newname);
                }
                if new {
                    return;
                }
                let at_table = rename.relation.as_ref().map(|r| at(r.location)).unwrap_or(base);
                if rename.rename_type == ObjectType::ObjectTable as i32 {
                    hit.table(
                        Rule::RenameTable,
                        at_table,
                        Some(&table),
                        format!(
                            "renames table \"{table}\" to \"{}\": the running API version still uses the old name",
                            rename.newname
                        ),
                    );
                } else if rename.rename_type == ObjectType::ObjectColumn as i32 {
                    hit.table(
                        Rule::RenameColumn,
                        at_table,
                        Some(&table),
                        format!(
                            "renames column \"{}\" of \"{table}\" to \"{}\": the running API version still uses the old name",
                            rename.subname, rename.newname
                        ),
                    );
                }
            }
            NodeEnum::DropStmt(drop) => self.drop(drop, base, schema, hit),
            NodeEnum::DoStmt(_) => self.do_block(text, base, schema, &mut *hit.0),
            NodeEnum::CreateEnumStmt(create) => {
                let (in_schema, bare) = state::split(&create.type_name);
                // Made again by drizzle-kit's value removal under the name it was dropped by.
                let dropped = &self.dropped_enums;
                let name = schema.resolve(in_schema, bare, |k| dropped.contains_key(k), dropped.keys());
                let values: Vec<String> = create.vals.iter().filter_map(string_value).map(str::to_string).collect();
                let recreated = self.dropped_enums.contains_key(&name);
                let name = if recreated { name } else { schema.new_key(in_schema, bare) };
                if let Some(dropped) = self.dropped_enums.remove(&name) {
                    let removed: Vec<String> = match &dropped.values {
                        Some(old) => old.iter().filter(|v| !values.contains(v)).cloned().collect(),
                        None => Vec::new(),
                    };
                    if !removed.is_empty() {
                        hit.on_enum(
                            Rule::EnumValueRemoved,
                            base,
                            &name,
                            format!(
                                "recreates enum \"{name}\" without {}: rows or the running API may still hold them",
                                quoted_list(&removed)
                            ),
                        );
                    }
                }
                // Made again by drizzle-kit's value removal: the same type, not a new one.
                if recreated {
                    schema.set_enum(&name, values);
                } else {
                    schema.created_enum(&name, values);
                }
            }
            NodeEnum::AlterEnumStmt(alter) => {
                let name = schema.enum_named(&alter.type_name);
                if !alter.old_val.is_empty() {
                    hit.on_enum(
                        Rule::EnumValueRenamed,
                        base,
                        &name,
                        format!(
                            "renames value '{}' of enum \"{name}\" to '{}': the running API version still writes the old one",
                            alter.old_val, alter.new_val
                        ),
                    );
                } else if !alter.new_val.is_empty() {
                    schema.add_enum_value(&name, &alter.new_val);
                    self.added_values.insert(alter.new_val.clone(), name);
                }
            }
            NodeEnum::VariableSetStmt(set) if set.name.eq_ignore_ascii_case("search_path") => {
                let first = set.args.first().and_then(|a| match a.node.as_ref()? {
                    NodeEnum::AConst(c) => match c.val.as_ref()? {
                        pg_query::protobuf::a_const::Val::Sval(s) => Some(s.sval.as_str()),
                        _ => None,
                    },
                    _ => None,
                });
                schema.set_search_path(first);
            }
            NodeEnum::VariableSetStmt(set) if set.name.eq_ignore_ascii_case("lock_timeout") => {
                hit.table(
                    Rule::LockTimeoutOverridden,
                    base,
                    None,
                    "sets lock_timeout itself: the statements after it can queue every writer behind their lock".into(),
                );
            }
            _ => {}
        }
    }

    fn alter_table_cmd(&mut self, cmd: &AlterTableCmd, table: &str, at_table: usize, schema: &mut SchemaState, hit: &mut Sink) {
        let existing = !schema.is_new(table);
        let subtype = cmd.subtype;
        let def = cmd.def.as_ref().and_then(|d| d.node.as_ref());
        if subtype == AlterTableType::AtAddColumn as i32 {
            let Some(NodeEnum::ColumnDef(col)) = def else { return };
            if let Some(ty) = &col.type_name {
                schema.set_column(table, &col.colname, column_type(ty));
            }
            if existing {
                add_column(col, table, self.volatile, hit);
            }
        } else if subtype == AlterTableType::AtDropColumn as i32 {
            schema.drop_column(table, &cmd.name);
            if existing {
                hit.table(
                    Rule::DropColumn,
                    at_table,
                    Some(table),
                    format!(
                        "drops column \"{}\" of \"{table}\": the running API version may still read or write it",
                        cmd.name
                    ),
                );
            }
        } else if subtype == AlterTableType::AtValidateConstraint as i32 {
            schema.validated(table, &cmd.name);
        } else if subtype == AlterTableType::AtSetNotNull as i32 {
            if existing && !schema.proven_not_null(table, &cmd.name) {
                hit.table(
                    Rule::SetNotNull,
                    at_table,
                    Some(table),
                    format!(
                        "sets \"{}\" of \"{table}\" NOT NULL: Postgres reads every row under ACCESS EXCLUSIVE",
                        cmd.name
                    ),
                );
            }
        } else if subtype == AlterTableType::AtAlterColumnType as i32 {
            let Some(NodeEnum::ColumnDef(col)) = def else { return };
            let Some(new) = col.type_name.as_ref().map(column_type) else {
                return;
            };
            let old = schema.column(table, &cmd.name).cloned();
            schema.set_column(table, &cmd.name, new.clone());
            let keeps = old.as_ref().is_some_and(|old| change_keeps_rows(old, &new));
            if existing && !keeps {
                let from = old.map(|o| format!(" from {}", o.name)).unwrap_or_default();
                hit.table(
                    Rule::ColumnTypeRewrite,
                    at_table,
                    Some(table),
                    format!(
                        "changes the type of \"{}\" of \"{table}\"{from} to {}: Postgres rewrites the table and its indexes under ACCESS EXCLUSIVE",
                        cmd.name, new.name
                    ),
                );
            }
        } else if subtype == AlterTableType::AtAddConstraint as i32 {
            let Some(NodeEnum::Constraint(c)) = def else { return };
            if let Some(column) = not_null_check_column(c) {
                schema.not_null_check(table, &c.conname, &column, !c.skip_validation);
            }
            if existing {
                constraint(c, table, at_table, hit);
            }
        }
    }

    fn drop(&mut self, drop: &pg_query::protobuf::DropStmt, base: usize, schema: &mut SchemaState, hit: &mut Sink) {
        for object in &drop.objects {
            let name = match object.node.as_ref() {
                Some(NodeEnum::List(list)) if drop.remove_type == ObjectType::ObjectTable as i32 => schema.table_named(&list.items),
                Some(NodeEnum::TypeName(ty)) => schema.enum_named(&ty.names),
                Some(NodeEnum::List(list)) => dotted(&list.items),
                _ => continue,
            };
            if drop.remove_type == ObjectType::ObjectTable as i32 {
                if !schema.is_new(&name) {
                    hit.table(
                        Rule::DropTable,
                        base,
                        Some(&name),
                        format!("drops table \"{name}\": the running API version may still use it"),
                    );
                }
                schema.drop_table(&name);
            } else if drop.remove_type == ObjectType::ObjectType as i32 {
                let in_use = schema.enum_in_use(&name);
                let values = schema.drop_enum(&name);
                self.dropped_enums.insert(
                    name,
                    DroppedEnum {
                        values,
                        in_use,
                        piece: self.piece,
                        offset: self.body_at.map_or(base, |at| at + base),
                    },
                );
            }
        }
    }

    /// The SQL statements of a `DO` block's body, checked as if written outside it: older
    /// drizzle-kit wraps `CREATE TYPE` and foreign keys in `DO $$ BEGIN … EXCEPTION WHEN
    /// duplicate_object THEN null; END $$;`, and what they build counts as built. PL/pgSQL's own
    /// parser (libpg_query's) finds them; a body it cannot read is left alone.
    fn do_block(&mut self, text: &str, base: usize, schema: &mut SchemaState, hits: &mut Vec<Hit>) {
        for query in embedded_sql(text) {
            let Ok(parsed) = parse::parse(&query) else { continue };
            // Where the statement's text sits in the piece, so a finding points into the body.
            let at = text.find(query.as_str()).map(|i| base + i);
            let outer = self.body_at.replace(at.unwrap_or(base));
            for p in &parsed {
                let mut found = Vec::new();
                self.check(&p.node, &query[p.start..p.end], p.start, schema, &mut found);
                for mut h in found {
                    h.offset = at.map_or(base, |at| at + h.offset);
                    hits.push(h);
                }
            }
            self.body_at = outer;
        }
    }

    /// A value added by `ALTER TYPE … ADD VALUE` earlier in this migration, used as a literal
    /// (found by the scanner: a string constant is lexical, wherever the tree keeps it).
    fn uses_added_value(&self, node: &NodeEnum, text: &str, base: usize, hit: &mut Sink) {
        if self.added_values.is_empty() || matches!(node, NodeEnum::AlterEnumStmt(_)) {
            return;
        }
        let Ok(scanned) = pg_query::scan(text) else { return };
        let string = pg_query::protobuf::Token::Sconst as i32;
        for token in scanned.tokens.iter().filter(|t| t.token == string) {
            let Some(literal) = text.get(token.start as usize..token.end as usize) else {
                continue;
            };
            let value = literal.trim_start_matches(['E', 'e']).trim_matches('\'').replace("''", "'");
            if let Some(enum_name) = self.added_values.get(&value) {
                hit.on_enum(
                    Rule::EnumValueUsedBeforeCommit,
                    base + token.start as usize,
                    enum_name,
                    format!("uses '{value}', added to enum \"{enum_name}\" earlier in this migration: Postgres refuses it until that commits (55P04)"),
                );
                return;
            }
        }
    }
}

/// The SQL statements a `DO` block runs on its main path, in order: PL/pgSQL's `PLpgSQL_expr`
/// queries of its plain SQL statements (`PLpgSQL_stmt_execsql`), outside exception handlers.
pub fn embedded_sql(do_statement: &str) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(map) => {
                if let Some(query) = map
                    .get("PLpgSQL_stmt_execsql")
                    .and_then(|s| s.pointer("/sqlstmt/PLpgSQL_expr/query"))
                    .and_then(|q| q.as_str())
                {
                    out.push(query.to_string());
                    return;
                }
                for (key, v) in map {
                    if key != "exceptions" {
                        walk(v, out);
                    }
                }
            }
            _ => {}
        }
    }
    if do_statement.contains('\0') {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Ok(json) = pg_query::parse_plpgsql(do_statement) {
        walk(&json, &mut out);
    }
    out
}

fn add_column(col: &ColumnDef, table: &str, volatile: Option<&BTreeSet<String>>, hit: &mut Sink) {
    let at = if col.location >= 0 { col.location as usize } else { 0 };
    let constraints: Vec<&Constraint> = col
        .constraints
        .iter()
        .filter_map(|c| match c.node.as_ref()? {
            NodeEnum::Constraint(c) => Some(c.as_ref()),
            _ => None,
        })
        .collect();
    let has = |t: ConstrType| constraints.iter().any(|c| c.contype == t as i32);
    let default = constraints.iter().find(|c| c.contype == ConstrType::ConstrDefault as i32);
    let serial = col.type_name.as_ref().map(column_type).is_some_and(|t| {
        matches!(
            t.name.as_str(),
            "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
        )
    });
    let fills_rows = has(ConstrType::ConstrIdentity) || has(ConstrType::ConstrGenerated) || serial;
    let not_null = col.is_not_null || has(ConstrType::ConstrNotnull) || has(ConstrType::ConstrPrimary);
    if not_null && default.is_none() && !fills_rows {
        hit.table(
            Rule::NotNullColumnWithoutDefault,
            at,
            Some(table),
            format!("adds NOT NULL column \"{}\" to \"{table}\" without a default: it fails on a table with rows, and the running API does not write it", col.colname),
        );
    }
    let volatile = default
        .and_then(|d| d.raw_expr.as_ref())
        .and_then(|e| e.node.as_ref())
        .and_then(|e| volatile_call(e, volatile));
    if let Some(function) = volatile {
        hit.table(
            Rule::VolatileDefault,
            at,
            Some(table),
            format!("adds \"{}\" to \"{table}\" with the volatile default {function}(): Postgres writes every existing row under ACCESS EXCLUSIVE", col.colname),
        );
    } else if fills_rows {
        hit.table(
            Rule::VolatileDefault,
            at,
            Some(table),
            format!("adds \"{}\" to \"{table}\" as an identity, serial or stored generated column: Postgres writes every existing row under ACCESS EXCLUSIVE", col.colname),
        );
    }
    if has(ConstrType::ConstrUnique) || has(ConstrType::ConstrPrimary) {
        hit.table(
            Rule::ConstraintBuildsIndex,
            at,
            Some(table),
            format!(
                "adds \"{}\" to \"{table}\" with a unique index built while writes wait",
                col.colname
            ),
        );
    }
}

fn constraint(c: &Constraint, table: &str, at_table: usize, hit: &mut Sink) {
    let at = if c.location >= 0 { c.location as usize } else { at_table };
    let name = if c.conname.is_empty() {
        "a constraint".to_string()
    } else {
        format!("constraint \"{}\"", c.conname)
    };
    let kind = c.contype;
    if (kind == ConstrType::ConstrForeign as i32 || kind == ConstrType::ConstrCheck as i32) && !c.skip_validation {
        let what = if kind == ConstrType::ConstrForeign as i32 {
            "foreign key"
        } else {
            "check"
        };
        hit.table(
            Rule::ConstraintWithoutNotValid,
            at,
            Some(table),
            format!("adds {what} {name} to \"{table}\" without NOT VALID: Postgres checks every row while writes wait"),
        );
    }
    let builds_index =
        kind == ConstrType::ConstrUnique as i32 || kind == ConstrType::ConstrPrimary as i32 || kind == ConstrType::ConstrExclusion as i32;
    if builds_index && c.indexname.is_empty() {
        hit.table(
            Rule::ConstraintBuildsIndex,
            at,
            Some(table),
            format!("adds {name} to \"{table}\", building its index while writes wait"),
        );
    }
}

/// The column of a `CHECK (column IS NOT NULL)`.
fn not_null_check_column(c: &Constraint) -> Option<String> {
    if c.contype != ConstrType::ConstrCheck as i32 {
        return None;
    }
    let NodeEnum::NullTest(test) = c.raw_expr.as_ref()?.node.as_ref()? else {
        return None;
    };
    if test.nulltesttype != pg_query::protobuf::NullTestType::IsNotNull as i32 {
        return None;
    }
    match test.arg.as_ref()?.node.as_ref()? {
        NodeEnum::ColumnRef(col) => col.fields.iter().filter_map(state::string_value).next_back().map(str::to_string),
        _ => None,
    }
}

/// The first volatile function an expression calls, if any: a function the database marks
/// volatile (by name: an overload or a namespace that is, counts), or without a database one
/// of the usual ones.
fn volatile_call(expr: &NodeEnum, volatile: Option<&BTreeSet<String>>) -> Option<String> {
    expr.nodes().into_iter().find_map(|(n, _, _, _)| match n {
        NodeRef::FuncCall(f) => {
            let name = f.funcname.iter().filter_map(state::string_value).next_back()?;
            let is_volatile = match volatile {
                Some(known) => known.contains(name),
                None => VOLATILE.contains(&name),
            };
            is_volatile.then(|| name.to_string())
        }
        _ => None,
    })
}

fn quoted_list(values: &[String]) -> String {
    values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
}
