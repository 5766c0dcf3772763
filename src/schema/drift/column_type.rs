//! Column types in one spelling per type (the one `format_type` prints), with the category that
//! decides how a default of that type is compared.

use crate::db::catalog;
use crate::schema::expression;

use super::ident::quote_ident;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Category {
    Json,
    Numeric,
    Bool,
    Timestamp { tz: bool },
    Date,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TypeInfo {
    pub(super) key: String,
    pub(super) display: String,
    pub(super) category: Category,
    pub(super) array: bool,
}

impl TypeInfo {
    pub(super) fn from_drizzle(sql_type: &str, type_schema: Option<&str>) -> Self {
        let (base, array) = strip_array(sql_type);
        match type_schema {
            Some(schema) => Self::user_defined(schema, base, array),
            None => Self::builtin(&canonical_type(base), array),
        }
    }

    pub(super) fn from_catalog(c: &catalog::Column) -> Self {
        if c.type_kind == "e" {
            return Self::user_defined(&c.type_schema, &c.type_name, c.is_array);
        }
        let (base, _) = strip_array(&c.type_display);
        Self::builtin(&canonical_type(base), c.is_array)
    }

    fn user_defined(schema: &str, name: &str, array: bool) -> Self {
        let suffix = if array { "[]" } else { "" };
        let shown = if schema == "public" {
            quote_ident(name)
        } else {
            format!("{}.{}", quote_ident(schema), quote_ident(name))
        };
        Self {
            key: format!("udt:{schema}.{name}{suffix}"),
            display: format!("{shown}{suffix}"),
            category: Category::Other,
            array,
        }
    }

    fn builtin(canonical: &str, array: bool) -> Self {
        let suffix = if array { "[]" } else { "" };
        let category = match canonical {
            "json" | "jsonb" => Category::Json,
            "boolean" => Category::Bool,
            "date" => Category::Date,
            "integer" | "bigint" | "smallint" | "real" | "double precision" => Category::Numeric,
            t if t.starts_with("numeric") => Category::Numeric,
            t if t.starts_with("timestamp") => Category::Timestamp {
                tz: t.ends_with("with time zone"),
            },
            _ => Category::Other,
        };
        Self {
            key: format!("{canonical}{suffix}"),
            display: format!("{canonical}{suffix}"),
            category,
            array,
        }
    }

    pub(super) fn element(&self) -> Self {
        Self {
            array: false,
            ..self.clone()
        }
    }
}

/// `text[]`, `integer[][]`, `int[3]` → (`text`, true): Postgres does not enforce dimensions.
fn strip_array(sql_type: &str) -> (&str, bool) {
    let mut base = sql_type.trim();
    let mut array = false;
    while base.ends_with(']') {
        match base.rfind('[') {
            Some(open) => {
                base = base[..open].trim_end();
                array = true;
            }
            None => break,
        }
    }
    (base, array)
}

/// One spelling per built-in type, the one `format_type` prints: `int4`/`serial` → `integer`,
/// `varchar(255)` → `character varying(255)`, `timestamp (3) with time zone` and
/// `timestamptz(3)` → `timestamp(3) with time zone`, `numeric(10, 2)` → `numeric(10,2)`.
fn canonical_type(text: &str) -> String {
    let lower = expression::normalised_text(text);
    // normalised_text separates tokens with spaces; rebuild name, modifiers and trailing words.
    let (name, args, after) = match lower.find('(') {
        Some(open) => {
            let close = lower[open..].find(')').map_or(lower.len(), |c| open + c);
            let args: String = lower[open + 1..close].chars().filter(|c| !c.is_whitespace()).collect();
            (
                lower[..open].trim().to_string(),
                Some(args),
                lower.get(close + 1..).unwrap_or("").trim().to_string(),
            )
        }
        None => (lower.trim().to_string(), None, String::new()),
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let after = after.split_whitespace().collect::<Vec<_>>().join(" ");
    let with_args = |base: &str| match &args {
        Some(a) => format!("{base}({a})"),
        None => base.to_string(),
    };
    let zoned = |base: &str, tz: bool| format!("{} {}", with_args(base), if tz { "with time zone" } else { "without time zone" });
    match (name.as_str(), after.as_str()) {
        ("int" | "int4" | "integer" | "serial" | "serial4", "") => "integer".into(),
        ("int8" | "bigint" | "bigserial" | "serial8", "") => "bigint".into(),
        ("int2" | "smallint" | "smallserial" | "serial2", "") => "smallint".into(),
        ("bool" | "boolean", "") => "boolean".into(),
        ("float8" | "double precision", "") => "double precision".into(),
        ("float4" | "real", "") => "real".into(),
        ("float", "") => match args.as_deref().and_then(|a| a.parse::<u32>().ok()) {
            Some(p) if p <= 24 => "real".into(),
            _ => "double precision".into(),
        },
        ("decimal" | "numeric", "") => with_args("numeric"),
        ("varchar" | "character varying", "") => with_args("character varying"),
        ("char" | "character" | "bpchar", "") if args.is_none() && name != "bpchar" => "character(1)".into(),
        ("char" | "character", "") => with_args("character"),
        ("varbit" | "bit varying", "") => with_args("bit varying"),
        ("bit", "") if args.is_none() => "bit(1)".into(),
        ("timestamp", "" | "without time zone") | ("timestamp without time zone", "") => zoned("timestamp", false),
        ("timestamptz", "") | ("timestamp", "with time zone") | ("timestamp with time zone", "") => zoned("timestamp", true),
        ("time", "" | "without time zone") | ("time without time zone", "") => zoned("time", false),
        ("timetz", "") | ("time", "with time zone") | ("time with time zone", "") => zoned("time", true),
        _ => {
            let mut s = with_args(&name);
            if !after.is_empty() {
                s.push(' ');
                s.push_str(&after);
            }
            s
        }
    }
}
