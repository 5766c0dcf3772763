//! drizzle-kit 1.0's snapshots (format 9) hold the schema as a chain: the first folder's is a
//! `base` with every entity (`ddl`), each later one a `diff` with `deltas` against its parent,
//! the snapshot whose `id` its `prevIds[0]` names (a merge of branches names more parents).
//! This rebuilds the schema of a folder as drizzle-kit 1.0 does (`reconstruct.ts`, 1.0.0-rc.5):
//! follow `prevIds[0]` back to a base, then apply the diffs oldest first, and for a merge also
//! the other branches' diffs its first parent has not seen, in folder order.
//!
//! Entities stay JSON objects here, keyed as drizzle-kit keys them (entity type and identity
//! fields); `ddl.rs` types them. Where drizzle-kit would silently go on (a delta that names an
//! entity the state does not hold), this is an error: the chain is broken, and a comparison
//! built on it could not be trusted.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value};

/// The parent of a first migration: no snapshot.
pub const ORIGIN: &str = "00000000-0000-0000-0000-000000000000";

pub type Row = Map<String, Value>;

/// One change of a diff snapshot: `key` is drizzle-kit's `<entityType>\0<JSON array of the
/// identity fields>`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Delta {
    Create { row: Row },
    Drop { key: String },
    Alter { key: String, set: Row },
    Rename { key: String, set: Row },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Every entity (a format 9 `base`, or any format 8 snapshot: each holds the whole schema).
    Whole(Vec<Row>),
    Diff(Vec<Delta>),
}

/// One folder's snapshot, as the chain needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub folder: String,
    /// The snapshot format, `"9"` or `"8"`.
    pub version: String,
    pub id: String,
    pub prev_ids: Vec<String>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("its prevIds name snapshot {parent}, which no migration folder before it holds; the schema cannot be rebuilt (drizzle-kit 1.0 cannot either). Restore the missing folder from git, or delete {folder} and every later migration and run drizzle-kit generate again")]
    MissingParent { folder: String, parent: String },
    #[error("its chain of diffs does not reach a base snapshot (the first migration's, holding the whole schema); restore the first migration folder from git")]
    NoBase { folder: String },
    #[error("it has the snapshot id {id}, which {other} has too; each migration folder needs its own snapshot (a copied folder?)")]
    DuplicateId { folder: String, other: String, id: String },
    #[error("{reason}; the snapshots do not build on each other. Restore the folders from git")]
    Inconsistent { folder: String, reason: String },
}

impl ChainError {
    /// The folder whose snapshot the error is about.
    pub fn folder(&self) -> &str {
        match self {
            Self::MissingParent { folder, .. }
            | Self::NoBase { folder }
            | Self::DuplicateId { folder, .. }
            | Self::Inconsistent { folder, .. } => folder,
        }
    }
}

/// The identity fields of each entity type, as drizzle-kit 1.0's postgres DDL keys them.
fn identity_fields(entity_type: &str) -> Option<&'static [&'static str]> {
    Some(match entity_type {
        "schemas" | "roles" => &["name"],
        "tables" | "enums" | "indexes" | "sequences" | "views" => &["schema", "name"],
        "columns" | "fks" | "pks" | "uniques" | "checks" | "policies" => &["schema", "table", "name"],
        "privileges" => &["schema", "table", "grantor", "grantee", "type"],
        _ => return None,
    })
}

/// A reference from one entity to another, by fields: renaming the target moves the reference
/// (a renamed table's columns follow it; a renamed column's indexes name it anew).
struct Edge {
    from: &'static str,
    to: &'static str,
    /// (the target's field, the referring row's field).
    scalars: &'static [(&'static str, &'static str)],
    list: Option<ListEdge>,
    /// Only columns of a user type (not `pg_catalog`) refer to an enum.
    user_type_only: bool,
}

struct ListEdge {
    /// The target's field the list's elements name.
    target: &'static str,
    list: &'static str,
    /// The element's field holding the name, when the elements are objects.
    pick: Option<&'static str>,
    /// Elements with this field true name nothing (index expressions).
    skip_when: Option<&'static str>,
}

const IN_SCHEMA: &[(&str, &str)] = &[("name", "schema")];
const IN_TABLE: &[(&str, &str)] = &[("schema", "schema"), ("name", "table")];
const OF_TABLE: &[(&str, &str)] = &[("schema", "schema"), ("table", "table")];
const COLUMNS: Option<ListEdge> = Some(ListEdge {
    target: "name",
    list: "columns",
    pick: None,
    skip_when: None,
});

const fn edge(from: &'static str, to: &'static str, scalars: &'static [(&'static str, &'static str)]) -> Edge {
    Edge {
        from,
        to,
        scalars,
        list: None,
        user_type_only: false,
    }
}

const fn role_edge(from: &'static str, list: Option<ListEdge>, scalars: &'static [(&'static str, &'static str)]) -> Edge {
    Edge {
        from,
        to: "roles",
        scalars,
        list,
        user_type_only: false,
    }
}

/// drizzle-kit 1.0's postgres DDL edges (`createDDL`), those that can move with a rename.
const EDGES: &[Edge] = &[
    edge("tables", "schemas", IN_SCHEMA),
    edge("enums", "schemas", IN_SCHEMA),
    edge("sequences", "schemas", IN_SCHEMA),
    edge("views", "schemas", IN_SCHEMA),
    edge("checks", "tables", IN_TABLE),
    edge("policies", "tables", IN_TABLE),
    role_edge(
        "policies",
        Some(ListEdge {
            target: "name",
            list: "roles",
            pick: None,
            skip_when: None,
        }),
        &[],
    ),
    edge("privileges", "tables", IN_TABLE),
    role_edge("privileges", None, &[("name", "grantee")]),
    role_edge("privileges", None, &[("name", "grantor")]),
    edge("columns", "tables", IN_TABLE),
    Edge {
        from: "columns",
        to: "enums",
        scalars: &[("schema", "typeSchema"), ("name", "type")],
        list: None,
        user_type_only: true,
    },
    edge("indexes", "tables", IN_TABLE),
    Edge {
        from: "indexes",
        to: "columns",
        scalars: OF_TABLE,
        list: Some(ListEdge {
            target: "name",
            list: "columns",
            pick: Some("value"),
            skip_when: Some("isExpression"),
        }),
        user_type_only: false,
    },
    edge("pks", "tables", IN_TABLE),
    Edge {
        from: "pks",
        to: "columns",
        scalars: OF_TABLE,
        list: COLUMNS,
        user_type_only: false,
    },
    edge("uniques", "tables", IN_TABLE),
    Edge {
        from: "uniques",
        to: "columns",
        scalars: OF_TABLE,
        list: COLUMNS,
        user_type_only: false,
    },
    edge("fks", "tables", IN_TABLE),
    Edge {
        from: "fks",
        to: "columns",
        scalars: OF_TABLE,
        list: COLUMNS,
        user_type_only: false,
    },
    edge("fks", "tables", &[("schema", "schemaTo"), ("name", "tableTo")]),
    Edge {
        from: "fks",
        to: "columns",
        scalars: &[("schema", "schemaTo"), ("table", "tableTo")],
        list: Some(ListEdge {
            target: "name",
            list: "columnsTo",
            pick: None,
            skip_when: None,
        }),
        user_type_only: false,
    },
];

/// (entity type, identity as a compact JSON array).
type Key = (String, String);

fn entity_type(row: &Row) -> Option<&str> {
    row.get("entityType").and_then(Value::as_str)
}

fn key_of(row: &Row) -> Result<Key, String> {
    let ty = entity_type(row).ok_or("an entity without an entityType")?;
    let fields = identity_fields(ty).ok_or_else(|| format!("an entity of unknown type {ty:?}"))?;
    let identity: Vec<&Value> = fields.iter().map(|f| row.get(*f).unwrap_or(&Value::Null)).collect();
    Ok((
        ty.to_string(),
        Value::from(identity.into_iter().cloned().collect::<Vec<_>>()).to_string(),
    ))
}

/// A delta's key in the same form: the identity re-serialised, so escapes compare equal.
fn parse_key(key: &str) -> Result<Key, String> {
    let (ty, identity) = key.split_once('\0').ok_or_else(|| format!("a delta key without a type: {key:?}"))?;
    if identity_fields(ty).is_none() {
        return Err(format!("a delta on an entity of unknown type {ty:?}"));
    }
    let identity: Value = serde_json::from_str(identity).map_err(|e| format!("a delta key {key:?} that is not JSON: {e}"))?;
    Ok((ty.to_string(), identity.to_string()))
}

fn describe((ty, identity): &Key) -> String {
    let parts: Vec<String> = serde_json::from_str::<Vec<Value>>(identity)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    format!("{ty} {}", parts.join("."))
}

/// The schema as a set of entities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    rows: BTreeMap<Key, Row>,
}

impl State {
    fn whole(rows: &[Row]) -> Result<Self, String> {
        let mut state = Self::default();
        for row in rows {
            let key = key_of(row)?;
            if state.rows.insert(key.clone(), row.clone()).is_some() {
                return Err(format!("the snapshot lists {} twice", describe(&key)));
            }
        }
        Ok(state)
    }

    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }

    fn apply(&mut self, deltas: &[Delta]) -> Result<(), String> {
        for delta in deltas {
            match delta {
                Delta::Create { row } => {
                    let key = key_of(row)?;
                    match self.rows.get(&key) {
                        None => {
                            self.rows.insert(key, row.clone());
                        }
                        // drizzle-kit accepts creating what is there already, with the same values.
                        Some(stored) if stored.iter().all(|(f, v)| row.get(f).unwrap_or(&Value::Null) == v) => {}
                        Some(_) => {
                            return Err(format!(
                                "a create delta adds {}, which is there already with other values",
                                describe(&key)
                            ))
                        }
                    }
                }
                Delta::Drop { key } => {
                    let key = parse_key(key)?;
                    if self.rows.remove(&key).is_none() {
                        return Err(format!(
                            "a drop delta removes {}, which the snapshots before it do not have",
                            describe(&key)
                        ));
                    }
                }
                Delta::Alter { key, set } | Delta::Rename { key, set } => self.update(&parse_key(key)?, set)?,
            }
        }
        Ok(())
    }

    /// Sets fields of one entity; when that changes its identity, the entities referring to it
    /// follow (and those referring to them), as drizzle-kit moves them.
    fn update(&mut self, key: &Key, set: &Row) -> Result<(), String> {
        let Some(row) = self.rows.get(key) else {
            return Err(format!(
                "a delta changes {}, which the snapshots before it do not have",
                describe(key)
            ));
        };
        // drizzle-kit's rows carry every field of their type (null when unset), so it sets each
        // one named; a row written without a null field takes it here the same way.
        let mut next = row.clone();
        next.extend(set.iter().map(|(f, v)| (f.clone(), v.clone())));
        let new_key = key_of(&next)?;
        if &new_key == key {
            self.rows.insert(new_key, next);
            return Ok(());
        }
        let old = self.rows.remove(key).expect("looked up above");
        let mut rows: Vec<Row> = std::mem::take(&mut self.rows).into_values().collect();
        rows.push(next.clone());
        let mut queue = vec![(key.0.clone(), old, next)];
        let mut visited: BTreeSet<Key> = BTreeSet::from([key.clone()]);
        let mut i = 0;
        while i < queue.len() {
            let (ty, from, to) = queue[i].clone();
            i += 1;
            for row in rows.iter_mut() {
                let Some(row_type) = entity_type(row).map(str::to_string) else {
                    continue;
                };
                for edge in EDGES.iter().filter(|e| e.from == row_type && e.to == ty) {
                    let Some(patch) = relocate(row, edge, &from, &to) else { continue };
                    let before = row.clone();
                    let before_key = key_of(&before)?;
                    row.extend(patch);
                    if key_of(row)? != before_key && visited.insert(before_key) {
                        queue.push((row_type.clone(), before, row.clone()));
                    }
                }
            }
        }
        for row in rows {
            let key = key_of(&row)?;
            if self.rows.insert(key.clone(), row).is_some() {
                return Err(format!("a rename gives {} a name another entity has", describe(&key)));
            }
        }
        Ok(())
    }
}

/// The fields of `row` to change when the entity it refers to by `edge` moves from `from` to `to`.
fn relocate(row: &Row, edge: &Edge, from: &Row, to: &Row) -> Option<Row> {
    if edge.user_type_only {
        match row.get("typeSchema").and_then(Value::as_str) {
            Some(s) if !s.is_empty() && s != "pg_catalog" => {}
            _ => return None,
        }
    }
    let null = Value::Null;
    let field = |r: &'_ Row, f: &str| -> Value { r.get(f).unwrap_or(&null).clone() };
    if edge
        .scalars
        .iter()
        .any(|(target, source)| field(row, source) != field(from, target))
    {
        return None;
    }
    let mut patch = Row::new();
    for (target, source) in edge.scalars {
        patch.insert((*source).to_string(), field(to, target));
    }
    let Some(list) = &edge.list else {
        return Some(patch);
    };
    let elements = row.get(list.list)?.as_array()?;
    let (old_name, new_name) = (field(from, list.target), field(to, list.target));
    let mut changed = false;
    let moved: Vec<Value> = elements
        .iter()
        .map(|element| {
            if list.skip_when.is_some_and(|s| element.get(s) == Some(&Value::Bool(true))) {
                return element.clone();
            }
            let name = match list.pick {
                Some(pick) => element.get(pick).cloned().unwrap_or(Value::Null),
                None => element.clone(),
            };
            if name != old_name {
                return element.clone();
            }
            changed = true;
            match (list.pick, element) {
                (Some(pick), Value::Object(o)) => {
                    let mut o = o.clone();
                    o.insert(pick.to_string(), new_name.clone());
                    Value::Object(o)
                }
                _ => new_name.clone(),
            }
        })
        .collect();
    if !changed {
        return None;
    }
    patch.insert(list.list.to_string(), Value::Array(moved));
    Some(patch)
}

/// The folders' snapshots, in drizzle-orm 1.0's folder order, by id.
struct Chain<'a> {
    nodes: &'a [Node],
    by_id: BTreeMap<&'a str, usize>,
}

impl<'a> Chain<'a> {
    fn new(nodes: &'a [Node]) -> Result<Self, ChainError> {
        let mut by_id = BTreeMap::new();
        for (i, node) in nodes.iter().enumerate() {
            if let Some(other) = by_id.insert(node.id.as_str(), i) {
                return Err(ChainError::DuplicateId {
                    folder: node.folder.clone(),
                    other: nodes[other].folder.clone(),
                    id: node.id.clone(),
                });
            }
        }
        Ok(Self { nodes, by_id })
    }

    fn lookup(&self, id: &str, wanted_by: &Node) -> Result<&'a Node, ChainError> {
        self.by_id
            .get(id)
            .map(|&i| &self.nodes[i])
            .ok_or_else(|| ChainError::MissingParent {
                folder: wanted_by.folder.clone(),
                parent: id.to_string(),
            })
    }

    fn apply(state: &mut State, node: &Node) -> Result<(), ChainError> {
        if let Body::Diff(deltas) = &node.body {
            state.apply(deltas).map_err(|reason| ChainError::Inconsistent {
                folder: node.folder.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// The schema once `node`'s migration has run.
    fn reconstruct(&self, node: &'a Node) -> Result<State, ChainError> {
        let mut diffs = Vec::new();
        let mut at = node;
        let whole = loop {
            match &at.body {
                Body::Whole(rows) => break rows,
                Body::Diff(_) => {
                    if diffs.len() > self.nodes.len() {
                        return Err(ChainError::NoBase {
                            folder: node.folder.clone(),
                        });
                    }
                    diffs.push(at);
                    match at.prev_ids.first().map(String::as_str) {
                        None | Some(ORIGIN) => return Err(ChainError::NoBase { folder: at.folder.clone() }),
                        Some(parent) => at = self.lookup(parent, at)?,
                    }
                }
            }
        };
        let mut state = State::whole(whole).map_err(|reason| ChainError::Inconsistent {
            folder: at.folder.clone(),
            reason,
        })?;
        for diff in diffs.into_iter().rev() {
            if diff.prev_ids.len() > 1 {
                self.apply_other_parents(&mut state, &diff.prev_ids, diff)?;
            }
            Self::apply(&mut state, diff)?;
        }
        Ok(state)
    }

    /// For a merge: the diffs of the other parents' histories the first parent has not seen.
    fn apply_other_parents(&self, state: &mut State, prev_ids: &[String], merge: &Node) -> Result<(), ChainError> {
        let (first, others) = prev_ids.split_first().expect("a merge has parents");
        let known = self.history(std::slice::from_ref(first), &BTreeSet::new(), merge)?;
        let rest = self.history(others, &known, merge)?;
        for node in self.nodes.iter().filter(|n| rest.contains(n.id.as_str())) {
            Self::apply(state, node)?;
        }
        Ok(())
    }

    /// Every snapshot `ids` descend from, themselves included, except those in `known`.
    fn history(&self, ids: &[String], known: &BTreeSet<&'a str>, wanted_by: &Node) -> Result<BTreeSet<&'a str>, ChainError> {
        let mut found = BTreeSet::new();
        let mut stack: Vec<(&str, &Node)> = ids.iter().map(|id| (id.as_str(), wanted_by)).collect();
        while let Some((id, by)) = stack.pop() {
            if id == ORIGIN || found.contains(id) || known.contains(id) {
                continue;
            }
            let node = self.lookup(id, by)?;
            found.insert(node.id.as_str());
            stack.extend(node.prev_ids.iter().map(|p| (p.as_str(), node)));
        }
        Ok(found)
    }
}

/// The schema once every folder of `nodes` (in folder order) has run: the state of the one
/// snapshot no other names as its parent, or, when branches were never merged, of all such
/// leaves combined, as drizzle-kit combines them (the newest first).
pub fn state_of(nodes: &[Node]) -> Result<State, ChainError> {
    let chain = Chain::new(nodes)?;
    let parents: BTreeSet<&str> = nodes.iter().flat_map(|n| n.prev_ids.iter().map(String::as_str)).collect();
    let leaves: Vec<&Node> = nodes.iter().rev().filter(|n| !parents.contains(n.id.as_str())).collect();
    let Some((newest, others)) = leaves.split_first() else {
        return match nodes.last() {
            Some(last) => Err(ChainError::NoBase {
                folder: last.folder.clone(),
            }),
            None => Ok(State::default()),
        };
    };
    let mut state = chain.reconstruct(newest)?;
    if !others.is_empty() {
        let ids: Vec<String> = leaves.iter().map(|n| n.id.clone()).collect();
        chain.apply_other_parents(&mut state, &ids, newest)?;
    }
    Ok(state)
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
