//! What the linted migrations have built so far, as far as the rules need it: column types (is a
//! type change a rewrite?), enum values (is a value removed?), which columns use each enum, and
//! which tables the current migration created (a table created in the same migration is empty,
//! so nothing done to it blocks anyone).

use std::collections::{BTreeMap, BTreeSet};

use pg_query::protobuf::{Node, RangeVar, TypeName};
use pg_query::NodeEnum;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    pub name: String,
    pub mods: Vec<i64>,
    pub array: bool,
}

#[derive(Default)]
pub struct SchemaState {
    columns: BTreeMap<(String, String), ColumnType>,
    enums: BTreeMap<String, Vec<String>>,
    created_here: BTreeSet<String>,
    /// Tables and enum types created by a linted (with a database: pending) migration.
    created_by_linted: BTreeSet<String>,
    linting: bool,
    /// (table, constraint) -> column of a `CHECK (column IS NOT NULL)`, and the columns such a
    /// check has proved (validated): `SET NOT NULL` then skips its scan.
    not_null_checks: BTreeMap<(String, String), String>,
    proven_not_null: BTreeSet<(String, String)>,
    /// Tables the history has created and not dropped, by key.
    tables: BTreeSet<String>,
    /// The schema a `SET search_path` of the files puts unqualified new names in; `None`: the
    /// session's own, which the files do not tell (public, or a schema named like the role).
    creation_schema: Option<String>,
}

impl SchemaState {
    /// A new migration starts: its tables are no longer new. `linted`: its findings are
    /// reported (with a database: it is pending).
    pub fn next_migration(&mut self, linted: bool) {
        self.created_here.clear();
        self.linting = linted;
    }

    pub fn created_table(&mut self, table: &str) {
        self.tables.insert(table.to_string());
        self.created_here.insert(table.to_string());
        if self.linting {
            self.created_by_linted.insert(table.to_string());
        }
    }

    /// Created by this migration: empty while it runs.
    pub fn is_new(&self, table: &str) -> bool {
        self.created_here.contains(table)
    }

    /// A table or enum type created by a linted migration: with a live database, one that is
    /// still pending, so nothing running uses it yet.
    pub fn created_by_linted(&self, name: &str) -> bool {
        self.created_by_linted.contains(name)
    }

    pub fn set_column(&mut self, table: &str, column: &str, ty: ColumnType) {
        self.columns.insert((table.to_string(), column.to_string()), ty);
    }

    pub fn column(&self, table: &str, column: &str) -> Option<&ColumnType> {
        self.columns.get(&(table.to_string(), column.to_string()))
    }

    pub fn drop_column(&mut self, table: &str, column: &str) {
        self.columns.remove(&(table.to_string(), column.to_string()));
    }

    pub fn drop_table(&mut self, table: &str) {
        self.tables.remove(table);
        self.columns.retain(|(t, _), _| t != table);
        self.created_here.remove(table);
    }

    /// `ALTER TABLE … RENAME TO`: the table is the same one under its new name, as new (or as
    /// created by a linted migration) as it was, with its columns. The old name stays known as
    /// created, for the findings about it before the rename.
    pub fn rename_table(&mut self, from: &str, to: &str) {
        let moved: Vec<(String, ColumnType)> = self
            .columns
            .iter()
            .filter(|((t, _), _)| t == from)
            .map(|((_, c), ty)| (c.clone(), ty.clone()))
            .collect();
        self.columns.retain(|(t, _), _| t != from);
        for (column, ty) in moved {
            self.columns.insert((to.to_string(), column), ty);
        }
        if self.tables.remove(from) {
            self.tables.insert(to.to_string());
        }
        if self.created_here.remove(from) {
            self.created_here.insert(to.to_string());
        }
        if self.created_by_linted.contains(from) {
            self.created_by_linted.insert(to.to_string());
        }
    }

    pub fn rename_column(&mut self, table: &str, from: &str, to: &str) {
        if let Some(ty) = self.columns.remove(&(table.to_string(), from.to_string())) {
            self.columns.insert((table.to_string(), to.to_string()), ty);
        }
    }

    /// A `CHECK (column IS NOT NULL)` added; `validated` when added without `NOT VALID`.
    pub fn not_null_check(&mut self, table: &str, constraint: &str, column: &str, validated: bool) {
        if validated {
            self.proven_not_null.insert((table.to_string(), column.to_string()));
        } else {
            self.not_null_checks
                .insert((table.to_string(), constraint.to_string()), column.to_string());
        }
    }

    pub fn validated(&mut self, table: &str, constraint: &str) {
        if let Some(column) = self.not_null_checks.remove(&(table.to_string(), constraint.to_string())) {
            self.proven_not_null.insert((table.to_string(), column));
        }
    }

    /// A validated check proves the column holds no NULL, so `SET NOT NULL` does not scan.
    pub fn proven_not_null(&self, table: &str, column: &str) -> bool {
        self.proven_not_null.contains(&(table.to_string(), column.to_string()))
    }

    pub fn enum_values(&self, name: &str) -> Option<&Vec<String>> {
        self.enums.get(name)
    }

    pub fn created_enum(&mut self, name: &str, values: Vec<String>) {
        if self.linting {
            self.created_by_linted.insert(name.to_string());
        }
        self.enums.insert(name.to_string(), values);
    }

    pub fn set_enum(&mut self, name: &str, values: Vec<String>) {
        self.enums.insert(name.to_string(), values);
    }

    pub fn add_enum_value(&mut self, name: &str, value: &str) {
        self.enums.entry(name.to_string()).or_default().push(value.to_string());
    }

    pub fn drop_enum(&mut self, name: &str) -> Option<Vec<String>> {
        self.enums.remove(name)
    }

    /// Whether a column of a known table is of this enum type (or an array of it).
    pub fn enum_in_use(&self, name: &str) -> bool {
        let bare = name.rsplit('.').next().unwrap_or(name);
        self.columns.values().any(|c| c.name == bare)
    }
}

/// Names resolved as Postgres resolves them, as far as the files tell: an unqualified name is
/// created in the first schema of the search_path, and found in the first schema of it that
/// has one.
impl SchemaState {
    /// `SET search_path`: where the statements after it create unqualified names. `None` when
    /// reset, or when it starts with `"$user"` (the role's name, not known here).
    pub fn set_search_path(&mut self, first: Option<&str>) {
        self.creation_schema = first.filter(|s| *s != "$user").map(str::to_string);
    }

    /// The key of a table or type a statement creates.
    pub fn new_key(&self, schema: &str, name: &str) -> String {
        match (schema, &self.creation_schema) {
            ("", Some(path)) => qualified(path, name),
            _ => qualified(schema, name),
        }
    }

    /// The key of the table a statement names.
    pub fn table(&self, rv: &RangeVar) -> String {
        self.resolve(&rv.schemaname, &rv.relname, |k| self.tables.contains(k), self.tables.iter())
    }

    /// The key of the table or type a dotted name (`"public"."t"`, `"t"`) names.
    pub fn table_named(&self, names: &[Node]) -> String {
        let (schema, name) = split(names);
        self.resolve(schema, name, |k| self.tables.contains(k), self.tables.iter())
    }

    pub fn enum_named(&self, names: &[Node]) -> String {
        let (schema, name) = split(names);
        self.resolve(schema, name, |k| self.enums.contains_key(k), self.enums.keys())
    }

    /// The known name a statement means: qualified, the one of that schema, or else one created
    /// unqualified under that name (the session's search_path put it in that schema, which the
    /// files did not say); unqualified, the one of the creation schema, or else the only known
    /// one of that name in any schema.
    pub fn resolve<'k>(&self, schema: &str, name: &str, known: impl Fn(&str) -> bool, keys: impl Iterator<Item = &'k String>) -> String {
        let key = self.new_key(schema, name);
        if known(&key) {
            return key;
        }
        if known(name) {
            return name.to_string();
        }
        if !schema.is_empty() {
            return key;
        }
        let suffix = format!(".{name}");
        let mut elsewhere = keys.filter(|k| k.ends_with(&suffix));
        match (elsewhere.next(), elsewhere.next()) {
            (Some(only), None) => only.clone(),
            _ => key,
        }
    }
}

/// A dotted name's schema (empty when unqualified) and name.
pub fn split(names: &[Node]) -> (&str, &str) {
    let parts: Vec<&str> = names.iter().filter_map(string_value).collect();
    match parts.as_slice() {
        [.., schema, name] => (schema, name),
        [name] => ("", name),
        [] => ("", ""),
    }
}

/// The key a table or type is known by: `public` is left out, as drizzle-kit writes it both ways.
pub fn qualified(schema: &str, name: &str) -> String {
    if schema.is_empty() || schema == "public" {
        name.to_string()
    } else {
        format!("{schema}.{name}")
    }
}

/// A dotted name from a list of `String` nodes (`"public"."status"` → `status`).
pub fn dotted(names: &[Node]) -> String {
    let parts: Vec<&str> = names.iter().filter_map(string_value).collect();
    match parts.as_slice() {
        [schema, name] => qualified(schema, name),
        [.., name] => name.to_string(),
        [] => String::new(),
    }
}

pub fn string_value(node: &Node) -> Option<&str> {
    match node.node.as_ref()? {
        NodeEnum::String(s) => Some(&s.sval),
        _ => None,
    }
}

pub fn column_type(ty: &TypeName) -> ColumnType {
    let name = ty.names.iter().filter_map(string_value).next_back().unwrap_or("").to_string();
    let mods = ty
        .typmods
        .iter()
        .filter_map(|m| match m.node.as_ref()? {
            NodeEnum::AConst(c) => match c.val.as_ref()? {
                pg_query::protobuf::a_const::Val::Ival(i) => Some(i.ival as i64),
                _ => None,
            },
            _ => None,
        })
        .collect();
    ColumnType {
        name,
        mods,
        array: !ty.array_bounds.is_empty(),
    }
}

/// Whether changing a column from `old` to `new` keeps every row as it is on disk (Postgres
/// then checks nothing, or only scans): the binary-coercible widenings drizzle-kit emits.
pub fn change_keeps_rows(old: &ColumnType, new: &ColumnType) -> bool {
    if old.array != new.array {
        return false;
    }
    match (old.name.as_str(), new.name.as_str()) {
        (a, b) if a == b && old.mods == new.mods => true,
        // varchar(n) -> varchar(m >= n) or unlimited; anything text-like -> text.
        ("varchar", "varchar") => new.mods.is_empty() || (!old.mods.is_empty() && new.mods[0] >= old.mods[0]),
        ("varchar" | "text", "text") => true,
        ("text", "varchar") => new.mods.is_empty(),
        // numeric(p, s) -> numeric(p' >= p, s) or unconstrained.
        ("numeric", "numeric") => {
            new.mods.is_empty()
                || (old.mods.len() == new.mods.len()
                    && !old.mods.is_empty()
                    && new.mods[0] >= old.mods[0]
                    && old.mods.get(1) == new.mods.get(1))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(name: &str, mods: &[i64]) -> ColumnType {
        ColumnType {
            name: name.into(),
            mods: mods.to_vec(),
            array: false,
        }
    }

    #[test]
    fn widenings_keep_rows_and_everything_else_rewrites() {
        assert!(change_keeps_rows(&ty("varchar", &[50]), &ty("varchar", &[100])));
        assert!(change_keeps_rows(&ty("varchar", &[50]), &ty("varchar", &[])));
        assert!(change_keeps_rows(&ty("varchar", &[50]), &ty("text", &[])));
        assert!(change_keeps_rows(&ty("numeric", &[10, 2]), &ty("numeric", &[12, 2])));
        assert!(!change_keeps_rows(&ty("varchar", &[100]), &ty("varchar", &[50])));
        assert!(!change_keeps_rows(&ty("text", &[]), &ty("item_status", &[])));
        assert!(!change_keeps_rows(&ty("int4", &[]), &ty("int8", &[])));
        assert!(!change_keeps_rows(&ty("numeric", &[10, 2]), &ty("numeric", &[12, 3])));
    }

    #[test]
    fn a_table_is_new_only_in_the_migration_that_created_it() {
        let mut s = SchemaState::default();
        s.next_migration(true);
        s.created_table("items");
        assert!(s.is_new("items"));
        s.next_migration(true);
        assert!(!s.is_new("items"));
        assert!(s.created_by_linted("items"));
        s.next_migration(false);
        s.created_table("applied");
        assert!(!s.created_by_linted("applied"));
    }
}
