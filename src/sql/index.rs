//! Which index a `CREATE INDEX CONCURRENTLY` builds or a `DROP INDEX CONCURRENTLY` drops, read
//! from Postgres's parse tree: the runner checks the catalog for it to tell whether such a
//! statement (which cannot commit with a history row of ours) already took effect.

use pg_query::protobuf::{DropBehavior, ObjectType};
use pg_query::NodeEnum;

/// An index as a statement names it: its schema when the statement gives one (a build's index
/// lives in its table's schema), and its name, both as Postgres folds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexName {
    pub schema: Option<String>,
    pub name: String,
}

/// The one statement of `piece`, if it is exactly one.
fn only_statement(piece: &str) -> Option<NodeEnum> {
    if piece.contains('\0') {
        return None;
    }
    let mut stmts = pg_query::parse(piece).ok()?.protobuf.stmts;
    if stmts.len() != 1 {
        return None;
    }
    stmts.pop()?.stmt?.node
}

/// The named index a `CREATE [UNIQUE] INDEX CONCURRENTLY` piece builds; `None` for anything
/// else, and for an unnamed index (Postgres picks its name).
pub fn built_concurrently(piece: &str) -> Option<IndexName> {
    let NodeEnum::IndexStmt(index) = only_statement(piece)? else {
        return None;
    };
    if !index.concurrent || index.idxname.is_empty() {
        return None;
    }
    let schema = index.relation.map(|r| r.schemaname).filter(|s| !s.is_empty());
    Some(IndexName {
        schema,
        name: index.idxname,
    })
}

/// The one index a `DROP INDEX CONCURRENTLY [IF EXISTS] name` piece drops; `None` for anything
/// else, a list of indexes, or `CASCADE` (which drops more than the index).
pub fn dropped_concurrently(piece: &str) -> Option<IndexName> {
    let NodeEnum::DropStmt(drop) = only_statement(piece)? else {
        return None;
    };
    if !drop.concurrent || drop.remove_type != ObjectType::ObjectIndex as i32 || drop.behavior == DropBehavior::DropCascade as i32 {
        return None;
    }
    let [object] = drop.objects.as_slice() else { return None };
    let Some(NodeEnum::List(list)) = &object.node else { return None };
    let mut parts: Vec<String> = list
        .items
        .iter()
        .map(|item| match &item.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let name = parts.pop()?;
    Some(IndexName { schema: parts.pop(), name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(schema: Option<&str>, name: &str) -> Option<IndexName> {
        Some(IndexName {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        })
    }

    #[test]
    fn the_index_a_concurrent_build_creates() {
        assert_eq!(
            built_concurrently("CREATE INDEX CONCURRENTLY \"idx_a\" ON \"t\" (a)"),
            named(None, "idx_a")
        );
        assert_eq!(
            built_concurrently("create unique index concurrently if not exists Idx_B on only \"app\".\"T\" using btree (b)"),
            named(Some("app"), "idx_b")
        );
        assert_eq!(built_concurrently("CREATE INDEX \"idx_a\" ON \"t\" (a)"), None);
        assert_eq!(
            built_concurrently("CREATE INDEX CONCURRENTLY ON \"t\" (a)"),
            None,
            "an unnamed index"
        );
        assert_eq!(built_concurrently("REINDEX INDEX CONCURRENTLY \"idx_a\""), None);
        assert_eq!(built_concurrently("CREATE INDEX CONCURRENTLY a ON t (a); SELECT 1"), None);
    }

    #[test]
    fn the_index_a_concurrent_drop_drops() {
        assert_eq!(
            dropped_concurrently("DROP INDEX CONCURRENTLY IF EXISTS \"app\".\"idx_a\";"),
            named(Some("app"), "idx_a")
        );
        assert_eq!(dropped_concurrently("drop index concurrently Idx_A"), named(None, "idx_a"));
        assert_eq!(dropped_concurrently("DROP INDEX CONCURRENTLY \"idx_a\" CASCADE"), None);
        assert_eq!(dropped_concurrently("DROP INDEX \"idx_a\""), None);
        assert_eq!(dropped_concurrently("DROP INDEX CONCURRENTLY a, b"), None);
    }
}
