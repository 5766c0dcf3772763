//! The live schema as Postgres itself records it, read from `pg_catalog` (not
//! `information_schema`, which hides enums' order, index predicates and validity): schemas,
//! tables, columns, indexes, constraints, policies, enums, sequences and views. Read-only;
//! system schemas and extension-owned objects are left out.

use serde::{Deserialize, Serialize};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row};

use crate::db::connection::PgError;
use crate::error::{Classified, Details, ErrorType, INSUFFICIENT_PRIVILEGE};

#[derive(Debug, thiserror::Error)]
#[error("reading the live schema ({what}) failed: {error}")]
pub struct CatalogError {
    pub what: &'static str,
    pub error: PgError,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// `server_version_num`, e.g. 150004.
    pub server_version: i32,
    pub schemas: Vec<String>,
    pub tables: Vec<Table>,
    pub views: Vec<View>,
    pub enums: Vec<Enum>,
    /// Sequences not owned by a column (serial and identity sequences belong to their column).
    pub sequences: Vec<Sequence>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub rls_enabled: bool,
    /// In column order.
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
    pub constraints: Vec<Constraint>,
    pub policies: Vec<Policy>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, atttypmod)`: `numeric(10,2)`, `timestamp with time zone`, ...
    pub type_display: String,
    /// Schema and name of the type, or of the element type for arrays.
    pub type_schema: String,
    pub type_name: String,
    /// `pg_type.typtype` of that type: `b` base, `e` enum, `d` domain, `c` composite, `r` range.
    pub type_kind: String,
    pub is_array: bool,
    pub not_null: bool,
    /// `pg_get_expr` of the default, as Postgres prints it (`'USD'::wishlist_currency`).
    pub default: Option<String>,
    pub identity: Option<Identity>,
    /// The expression of a stored generated column.
    pub generated: Option<String>,
    /// The sequence a `serial` column owns (its default is `nextval` of it).
    pub owned_sequence: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `always` or `byDefault`, as drizzle names them.
    pub kind: String,
    pub sequence: SequenceOptions,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    /// `btree`, `gin`, `hash`, ...
    pub method: String,
    pub unique: bool,
    /// False when a failed `CREATE INDEX CONCURRENTLY` left it behind, unusable.
    pub valid: bool,
    /// Whether the access method has an order (ASC/DESC/NULLS mean something).
    pub orderable: bool,
    pub columns: Vec<IndexColumn>,
    /// `INCLUDE (...)` columns.
    pub included: Vec<String>,
    /// `pg_get_expr` of the partial index predicate.
    pub predicate: Option<String>,
    /// Storage parameters, `name=value`.
    pub options: Vec<String>,
    pub nulls_not_distinct: bool,
    /// The index behind a primary key or unique constraint (compared as the constraint).
    pub constraint: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexColumn {
    /// The column name or expression, as `pg_get_indexdef(index, n, true)` prints it.
    pub expression: String,
    pub opclass: String,
    /// Whether `opclass` is the type's default for the method (then nobody wrote it).
    pub opclass_default: bool,
    pub descending: bool,
    pub nulls_first: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    pub columns: Vec<String>,
    /// `pg_get_constraintdef`, for reports.
    pub definition: String,
    /// The expression of a check constraint, as `pg_get_expr` prints it.
    pub check: Option<String>,
    pub references: Option<Reference>,
    pub nulls_not_distinct: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    /// `no action`, `restrict`, `cascade`, `set null`, `set default`.
    pub on_update: String,
    pub on_delete: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub permissive: bool,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enum {
    pub schema: String,
    pub name: String,
    /// In `enumsortorder`: the order comparisons and `ORDER BY` use.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    pub options: SequenceOptions,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceOptions {
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub start: i64,
    pub cache: i64,
    pub cycle: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub materialized: bool,
    /// `pg_get_viewdef`: what the view selects, as Postgres prints it.
    pub definition: String,
}

impl Catalog {
    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.schema == schema && t.name == name)
    }

    /// Every index with where it lives, for checks that look at indexes one by one.
    pub fn indexes(&self) -> impl Iterator<Item = (&Table, &Index)> {
        self.tables.iter().flat_map(|t| t.indexes.iter().map(move |i| (t, i)))
    }
}

/// Filters shared by every query: not a system schema, not owned by an extension.
const USER_SCHEMAS: &str = "select n.oid, n.nspname::text from pg_namespace n
    where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
      and n.nspname not like 'pg\\_temp\\_%' and n.nspname not like 'pg\\_toast\\_temp\\_%'
      and not exists (select 1 from pg_depend d where d.classid = 'pg_namespace'::regclass and d.objid = n.oid and d.deptype = 'e')
      and ($1::text is null or left(n.nspname, length($1)) = $1)
    order by 2";

const RELATIONS: &str = "select c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity,
        case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid, true) end
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any($1) and c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition
      and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    order by 2, 3";

const COLUMNS: &str = "select a.attrelid, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
        pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, a.attgenerated::text,
        (t.typcategory = 'A' and t.typelem <> 0) as is_array, en.nspname::text, et.typname::text, et.typtype::text,
        owned.relname::text, owned.deptype::text,
        sq.seqincrement, sq.seqmin, sq.seqmax, sq.seqstart, sq.seqcache, sq.seqcycle
    from pg_attribute a
    join pg_type t on t.oid = a.atttypid
    join pg_type et on et.oid = case when t.typcategory = 'A' and t.typelem <> 0 then t.typelem else t.oid end
    join pg_namespace en on en.oid = et.typnamespace
    left join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
    left join lateral (
        select s.oid, s.relname, d.deptype from pg_depend d join pg_class s on s.oid = d.objid and s.relkind = 'S'
        where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass
          and d.refobjid = a.attrelid and d.refobjsubid = a.attnum and d.deptype in ('a', 'i')
        limit 1) owned on true
    left join pg_sequence sq on sq.seqrelid = owned.oid
    where a.attrelid = any($1) and a.attnum > 0 and not a.attisdropped
    order by a.attrelid, a.attnum";

/// `indnullsnotdistinct` exists from PostgreSQL 15 on.
fn indexes_sql(server_version: i32) -> String {
    let nulls = if server_version >= 150_000 {
        "i.indnullsnotdistinct"
    } else {
        "false"
    };
    format!(
        "select i.indexrelid, i.indrelid, ic.relname::text, am.amname::text, i.indisunique, i.indisvalid,
            pg_indexam_has_property(am.oid, 'can_order'), i.indnkeyatts::int, i.indnatts::int,
            pg_get_expr(i.indpred, i.indrelid, true), coalesce(ic.reloptions, '{{}}'::text[]), {nulls},
            (select con.conname::text from pg_constraint con
              where con.conindid = i.indexrelid and con.conrelid = i.indrelid and con.contype in ('p', 'u', 'x') limit 1)
        from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_am am on am.oid = ic.relam
        where i.indrelid = any($1)
        order by i.indrelid, ic.relname"
    )
}

const INDEX_COLUMNS: &str = "select i.indexrelid, k, pg_get_indexdef(i.indexrelid, k, true),
        coalesce(i.indoption[k - 1], 0)::int, opc.opcname::text, coalesce(opc.opcdefault, false)
    from pg_index i cross join lateral generate_series(1, i.indnatts) k
    left join pg_opclass opc on k <= i.indnkeyatts and opc.oid = i.indclass[k - 1]
    where i.indrelid = any($1)
    order by i.indexrelid, k";

fn constraints_sql(server_version: i32) -> String {
    let nulls = if server_version >= 150_000 {
        "coalesce(ix.indnullsnotdistinct, false)"
    } else {
        "false"
    };
    format!(
        "select con.conrelid, con.conname::text, con.contype::text, pg_get_constraintdef(con.oid, true),
            case when con.contype = 'c' then pg_get_expr(con.conbin, con.conrelid, true) end,
            array(select a.attname::text from unnest(con.conkey) with ordinality k(n, ord)
                  join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.ord),
            fn.nspname::text, fc.relname::text,
            array(select a.attname::text from unnest(con.confkey) with ordinality k(n, ord)
                  join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.ord),
            con.confupdtype::text, con.confdeltype::text, {nulls}
        from pg_constraint con
        left join pg_class fc on fc.oid = con.confrelid
        left join pg_namespace fn on fn.oid = fc.relnamespace
        left join pg_index ix on ix.indexrelid = con.conindid and con.contype = 'u'
        where con.conrelid = any($1) and con.contype in ('p', 'u', 'f', 'c')
        order by con.conrelid, con.conname"
    )
}

const POLICIES: &str = "select pol.polrelid, pol.polname::text, pol.polpermissive, pol.polcmd::text,
        array(select case when r = 0 then 'public' else pg_get_userbyid(r)::text end from unnest(pol.polroles) r order by 1),
        pg_get_expr(pol.polqual, pol.polrelid, true), pg_get_expr(pol.polwithcheck, pol.polrelid, true)
    from pg_policy pol where pol.polrelid = any($1) order by pol.polrelid, pol.polname";

const ENUMS: &str = "select n.nspname::text, t.typname::text, array_agg(e.enumlabel::text order by e.enumsortorder)
    from pg_type t join pg_namespace n on n.oid = t.typnamespace join pg_enum e on e.enumtypid = t.oid
    where n.nspname = any($1)
      and not exists (select 1 from pg_depend d where d.classid = 'pg_type'::regclass and d.objid = t.oid and d.deptype = 'e')
    group by 1, 2 order by 1, 2";

const SEQUENCES: &str = "select n.nspname::text, c.relname::text, s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, s.seqcycle
    from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_sequence s on s.seqrelid = c.oid
    where n.nspname = any($1) and c.relkind = 'S'
      and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i', 'e'))
    order by 1, 2";

fn referential_action(code: &str) -> String {
    match code {
        "r" => "restrict",
        "c" => "cascade",
        "n" => "set null",
        "d" => "set default",
        _ => "no action",
    }
    .to_string()
}

/// One query of the catalog read, in one round trip: its parameter types are given, so there is
/// no prepare first (`query` would describe the statement in a round trip of its own).
async fn rows(
    client: &impl GenericClient,
    what: &'static str,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Row>, CatalogError> {
    client
        .query_typed(sql, params)
        .await
        .map_err(|e| CatalogError { what, error: e.into() })
}

/// Reads the whole user schema of the connected database, in three flights: each sends every
/// query that only needs what the flight before it answered (the schemas, then the tables' oids),
/// and tokio-postgres pipelines queries issued together.
pub async fn read(client: &impl GenericClient) -> Result<Catalog, CatalogError> {
    read_schemas(client, None).await
}

/// Reads only the schemas whose names start with `prefix`: a model built beside the live schema
/// (`engine::model`).
pub async fn read_prefixed(client: &impl GenericClient, prefix: &str) -> Result<Catalog, CatalogError> {
    read_schemas(client, Some(prefix)).await
}

async fn read_schemas(client: &impl GenericClient, prefix: Option<&str>) -> Result<Catalog, CatalogError> {
    let by_prefix = [(&prefix as &(dyn ToSql + Sync), Type::TEXT)];
    let (version_rows, schema_rows) = tokio::try_join!(
        rows(client, "server version", "select current_setting('server_version_num')::int", &[]),
        rows(client, "schemas", USER_SCHEMAS, &by_prefix),
    )?;
    // `current_setting` answers one row, always.
    let server_version: i32 = version_rows.first().map_or(0, |r| r.get(0));
    let schemas: Vec<String> = schema_rows.iter().map(|r| r.get(1)).collect();

    let by_schema = [(&schemas as &(dyn ToSql + Sync), Type::NAME_ARRAY)];
    let (relation_rows, enum_rows, sequence_rows) = tokio::try_join!(
        rows(client, "tables", RELATIONS, &by_schema),
        rows(client, "enums", ENUMS, &by_schema),
        rows(client, "sequences", SEQUENCES, &by_schema),
    )?;

    let mut tables: Vec<(u32, Table)> = Vec::new();
    let mut views = Vec::new();
    for r in relation_rows {
        let (oid, schema, name, kind): (u32, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        match kind.as_str() {
            "v" | "m" => views.push(View {
                schema,
                name,
                materialized: kind == "m",
                definition: r.get::<_, Option<String>>(5).unwrap_or_default(),
            }),
            _ => tables.push((
                oid,
                Table {
                    schema,
                    name,
                    rls_enabled: r.get(4),
                    ..Table::default()
                },
            )),
        }
    }
    let oids: Vec<u32> = tables.iter().map(|(oid, _)| *oid).collect();
    let table_mut = |tables: &[(u32, Table)], oid: u32| -> Option<usize> { tables.iter().position(|(o, _)| *o == oid) };

    let by_table = [(&oids as &(dyn ToSql + Sync), Type::OID_ARRAY)];
    let (indexes_sql, constraints_sql) = (indexes_sql(server_version), constraints_sql(server_version));
    let (column_rows, index_rows, index_column_rows, constraint_rows, policy_rows) = tokio::try_join!(
        rows(client, "columns", COLUMNS, &by_table),
        rows(client, "indexes", &indexes_sql, &by_table),
        rows(client, "index columns", INDEX_COLUMNS, &by_table),
        rows(client, "constraints", &constraints_sql, &by_table),
        rows(client, "policies", POLICIES, &by_table),
    )?;

    for r in column_rows {
        let Some(at) = table_mut(&tables, r.get(0)) else { continue };
        let identity: String = r.get(5);
        let generated: String = r.get(6);
        let default: Option<String> = r.get(4);
        let owned: Option<String> = r.get(11);
        let owned_kind: Option<String> = r.get(12);
        let column = Column {
            name: r.get(1),
            type_display: r.get(2),
            not_null: r.get(3),
            is_array: r.get(7),
            type_schema: r.get(8),
            type_name: r.get(9),
            type_kind: r.get(10),
            identity: match identity.as_str() {
                "a" | "d" => Some(Identity {
                    kind: if identity == "a" { "always" } else { "byDefault" }.into(),
                    sequence: SequenceOptions {
                        increment: r.get::<_, Option<i64>>(13).unwrap_or_default(),
                        min: r.get::<_, Option<i64>>(14).unwrap_or_default(),
                        max: r.get::<_, Option<i64>>(15).unwrap_or_default(),
                        start: r.get::<_, Option<i64>>(16).unwrap_or_default(),
                        cache: r.get::<_, Option<i64>>(17).unwrap_or_default(),
                        cycle: r.get::<_, Option<bool>>(18).unwrap_or_default(),
                    },
                }),
                _ => None,
            },
            generated: if generated == "s" { default.clone() } else { None },
            default: if generated == "s" { None } else { default },
            owned_sequence: match owned_kind.as_deref() {
                Some("a") => owned,
                _ => None,
            },
        };
        tables[at].1.columns.push(column);
    }

    // index oid -> (table position, index position, key column count)
    let mut index_at: std::collections::HashMap<u32, (usize, usize, i32)> = std::collections::HashMap::new();
    for r in index_rows {
        let Some(at) = table_mut(&tables, r.get(1)) else { continue };
        let indexes = &mut tables[at].1.indexes;
        index_at.insert(r.get(0), (at, indexes.len(), r.get(7)));
        indexes.push(Index {
            name: r.get(2),
            method: r.get(3),
            unique: r.get(4),
            valid: r.get(5),
            orderable: r.get::<_, Option<bool>>(6).unwrap_or(false),
            predicate: r.get(9),
            options: r.get(10),
            nulls_not_distinct: r.get(11),
            constraint: r.get(12),
            columns: Vec::new(),
            included: Vec::new(),
        });
    }
    for r in index_column_rows {
        let Some(&(at, position, key_columns)) = index_at.get(&r.get::<_, u32>(0)) else {
            continue;
        };
        let index = &mut tables[at].1.indexes[position];
        let k: i32 = r.get(1);
        let expression: String = r.get(2);
        if k > key_columns {
            index.included.push(expression);
            continue;
        }
        let option: i32 = r.get(3);
        index.columns.push(IndexColumn {
            expression,
            opclass: r.get::<_, Option<String>>(4).unwrap_or_default(),
            opclass_default: r.get(5),
            // pg_index.indoption bits: 1 = DESC, 2 = NULLS FIRST.
            descending: option & 1 != 0,
            nulls_first: option & 2 != 0,
        });
    }

    for r in constraint_rows {
        let Some(at) = table_mut(&tables, r.get(0)) else { continue };
        let kind: String = r.get(2);
        let kind = match kind.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "f" => ConstraintKind::ForeignKey,
            _ => ConstraintKind::Check,
        };
        let references = match kind {
            ConstraintKind::ForeignKey => Some(Reference {
                schema: r.get::<_, Option<String>>(6).unwrap_or_default(),
                table: r.get::<_, Option<String>>(7).unwrap_or_default(),
                columns: r.get(8),
                on_update: referential_action(&r.get::<_, String>(9)),
                on_delete: referential_action(&r.get::<_, String>(10)),
            }),
            _ => None,
        };
        tables[at].1.constraints.push(Constraint {
            name: r.get(1),
            kind,
            definition: r.get(3),
            check: r.get(4),
            columns: r.get(5),
            references,
            nulls_not_distinct: r.get(11),
        });
    }

    for r in policy_rows {
        let Some(at) = table_mut(&tables, r.get(0)) else { continue };
        let command: String = r.get(3);
        tables[at].1.policies.push(Policy {
            name: r.get(1),
            permissive: r.get(2),
            command: match command.as_str() {
                "r" => "SELECT",
                "a" => "INSERT",
                "w" => "UPDATE",
                "d" => "DELETE",
                _ => "ALL",
            }
            .into(),
            roles: r.get(4),
            using: r.get(5),
            with_check: r.get(6),
        });
    }

    let enums = enum_rows
        .iter()
        .map(|r| Enum {
            schema: r.get(0),
            name: r.get(1),
            values: r.get(2),
        })
        .collect();
    let sequences = sequence_rows
        .iter()
        .map(|r| Sequence {
            schema: r.get(0),
            name: r.get(1),
            options: SequenceOptions {
                increment: r.get(2),
                min: r.get(3),
                max: r.get(4),
                start: r.get(5),
                cache: r.get(6),
                cycle: r.get(7),
            },
        })
        .collect();
    Ok(Catalog {
        server_version,
        schemas,
        tables: tables.into_iter().map(|(_, t)| t).collect(),
        views,
        enums,
        sequences,
    })
}

impl Classified for CatalogError {
    fn error_type(&self) -> ErrorType {
        if self.error.is(INSUFFICIENT_PRIVILEGE) {
            ErrorType::PermissionDenied
        } else {
            ErrorType::InspectionFailed
        }
    }

    fn details(&self) -> Details {
        self.error.details()
    }
}
