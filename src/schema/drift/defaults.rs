//! Column defaults compared by value in the column's type: `'0'::numeric` and `0`, jsonb with its
//! keys reordered, array literals, timestamps written in another zone.

use crate::schema::expression::{self, canonical_number, Literal};

use super::column_type::{Category, TypeInfo};
use super::shown::Shown;

/// A snapshot default: SQL text, or a JSON number or boolean.
pub(super) fn default_from_json(value: &serde_json::Value, ty: &TypeInfo) -> Shown {
    match value {
        serde_json::Value::String(sql) => default_from_sql(sql, ty),
        serde_json::Value::Bool(b) => Shown {
            key: literal_key(Literal::Bool(*b), ty),
            display: b.to_string(),
        },
        serde_json::Value::Number(n) => Shown {
            key: literal_key(Literal::Num(n.to_string()), ty),
            display: n.to_string(),
        },
        other => Shown::same(other.to_string()),
    }
}

pub(super) fn default_from_sql(sql: &str, ty: &TypeInfo) -> Shown {
    let key = match expression::parse(sql) {
        Ok(e) => match e.literal() {
            Some(literal) => literal_key(literal, ty),
            None => format!("expr:{}", e.canonical()),
        },
        Err(_) => format!("text:{}", expression::normalised_text(sql)),
    };
    Shown {
        key,
        display: sql.trim().to_string(),
    }
}

fn literal_key(literal: Literal, ty: &TypeInfo) -> String {
    match literal {
        Literal::Null => "null".into(),
        Literal::Bool(b) => format!("bool:{b}"),
        Literal::Num(n) | Literal::Str(n) => value_key(&n, ty),
    }
}

/// A literal's value in the column's terms: jsonb by its JSON value, numbers by their digits,
/// arrays element by element, timestamps by the instant they name.
fn value_key(text: &str, ty: &TypeInfo) -> String {
    if ty.array {
        return match parse_array_literal(text) {
            Some(items) => format!("array:{}", array_key(&items, &ty.element())),
            None => format!("str:{text}"),
        };
    }
    match ty.category {
        Category::Json => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => format!("json:{}", canonical_json(&v)),
            Err(_) => format!("str:{text}"),
        },
        // By value: the column's own type decides the scale the default is stored with.
        Category::Numeric => match canonical_number(text) {
            Some(n) if n.contains('.') && !n.contains('e') => {
                let trimmed = n.trim_end_matches('0').trim_end_matches('.');
                format!("num:{}", if trimmed == "-0" { "0" } else { trimmed })
            }
            Some(n) => format!("num:{n}"),
            None => format!("str:{text}"),
        },
        Category::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "y" | "yes" | "on" | "1" => "bool:true".into(),
            "f" | "false" | "n" | "no" | "off" | "0" => "bool:false".into(),
            _ => format!("str:{text}"),
        },
        Category::Timestamp { tz } => match parse_timestamp(text) {
            Some((micros, Some(offset))) if tz => match micros.checked_sub(i64::from(offset) * 1_000_000) {
                Some(utc) => format!("ts:{utc}"),
                None => format!("str:{text}"),
            },
            Some((micros, None)) if !tz => format!("ts:{micros}"),
            // A zone on a zoneless timestamp is ignored by Postgres.
            Some((micros, Some(_))) if !tz => format!("ts:{micros}"),
            _ => format!("str:{text}"),
        },
        Category::Date => match parse_timestamp(text) {
            Some((micros, _)) => format!("date:{}", micros.div_euclid(86_400_000_000)),
            None => format!("str:{text}"),
        },
        Category::Other => format!("str:{text}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ArrayItem {
    Null,
    Value(String),
    Nested(Vec<ArrayItem>),
}

fn array_key(items: &[ArrayItem], element: &TypeInfo) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| match i {
            ArrayItem::Null => "NULL".to_string(),
            ArrayItem::Value(v) => value_key(v, element),
            ArrayItem::Nested(inner) => array_key(inner, element),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Postgres's array literal syntax: `{a,"b c",NULL,{1,2}}`.
fn parse_array_literal(text: &str) -> Option<Vec<ArrayItem>> {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut pos = 0;
    let items = parse_array_level(&chars, &mut pos, 1)?;
    (pos == chars.len()).then_some(items)
}

/// More than Postgres's `MAXDIM` (6), so every real array literal parses.
const MAX_ARRAY_DEPTH: usize = 16;

fn parse_array_level(chars: &[char], pos: &mut usize, depth: usize) -> Option<Vec<ArrayItem>> {
    if chars.get(*pos) != Some(&'{') {
        return None;
    }
    *pos += 1;
    let mut items = Vec::new();
    loop {
        while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
            *pos += 1;
        }
        match chars.get(*pos)? {
            '}' if items.is_empty() => {
                *pos += 1;
                return Some(items);
            }
            // Postgres allows 6 dimensions: deeper nesting is not an array default, and
            // recursing on it would overflow the stack.
            '{' if depth >= MAX_ARRAY_DEPTH => return None,
            '{' => items.push(ArrayItem::Nested(parse_array_level(chars, pos, depth + 1)?)),
            '"' => {
                *pos += 1;
                let mut s = String::new();
                loop {
                    match chars.get(*pos)? {
                        '\\' => {
                            s.push(*chars.get(*pos + 1)?);
                            *pos += 2;
                        }
                        '"' => {
                            *pos += 1;
                            break;
                        }
                        c => {
                            s.push(*c);
                            *pos += 1;
                        }
                    }
                }
                items.push(ArrayItem::Value(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.get(*pos) {
                    if c == ',' || c == '}' {
                        break;
                    }
                    if c == '\\' {
                        s.push(*chars.get(*pos + 1)?);
                        *pos += 2;
                        continue;
                    }
                    s.push(c);
                    *pos += 1;
                }
                let s = s.trim().to_string();
                items.push(if s.eq_ignore_ascii_case("null") {
                    ArrayItem::Null
                } else {
                    ArrayItem::Value(s)
                });
            }
        }
        while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
            *pos += 1;
        }
        match chars.get(*pos)? {
            ',' => *pos += 1,
            '}' => {
                *pos += 1;
                return Some(items);
            }
            _ => return None,
        }
    }
}

/// JSON with object keys sorted: jsonb reorders keys, `JSON.stringify` does not.
fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::Value::String((*k).clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// `2024-01-02T03:04:05.678Z`, `2024-01-02 03:04:05+00`, `2024-01-02`: microseconds since
/// 1970-01-01 of the local date-time, and the UTC offset in seconds when one is given.
fn parse_timestamp(text: &str) -> Option<(i64, Option<i32>)> {
    let t = text.trim();
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let (date, rest) = t.split_at(t.find(['T', 't', ' ']).unwrap_or(t.len()));
    let mut d = date.split('-');
    let (y, mo, da) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || !digits(y) || !digits(mo) || !digits(da) {
        return None;
    }
    let days = days_from_civil(y.parse().ok()?, mo.parse().ok()?, da.parse().ok()?)?;
    let rest = rest.trim_start_matches(['T', 't', ' ']);
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    // A crafted snapshot may hold any digits: out-of-range values are not timestamps.
    let mut micros = days.checked_mul(86_400_000_000)?;
    if !time.trim().is_empty() {
        let mut parts = time.trim().split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next()?.parse().ok()?;
        if !(0..=24).contains(&h) || !(0..60).contains(&m) {
            return None;
        }
        let (s, frac) = match parts.next() {
            Some(sec) => match sec.split_once('.') {
                Some((s, f)) => (s.parse::<i64>().ok()?, f),
                None => (sec.parse::<i64>().ok()?, ""),
            },
            None => (0, ""),
        };
        if (!frac.is_empty() && !digits(frac)) || !(0..=60).contains(&s) {
            return None;
        }
        let frac_micros: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
        micros = micros.checked_add(((h * 60 + m) * 60 + s) * 1_000_000 + frac_micros)?;
    }
    let offset = match zone.map(str::trim) {
        None | Some("") => None,
        Some("Z" | "z") => Some(0),
        Some(z) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let body = &z[1..];
            let mut p = body.split(':');
            let first = p.next()?;
            if !digits(first) {
                return None;
            }
            let (h, m) = if first.len() == 4 && p.clone().next().is_none() {
                (first[..2].parse::<i32>().ok()?, first[2..].parse::<i32>().ok()?)
            } else {
                (first.parse::<i32>().ok()?, p.next().map_or(Some(0), |m| m.parse::<i32>().ok())?)
            };
            if !(0..=15).contains(&h) || !(0..60).contains(&m) {
                return None;
            }
            Some(sign * (h * 3600 + m * 60))
        }
    };
    Some((micros, offset))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    // Postgres's range is 4713 BC to 294276 AD; beyond it the arithmetic below could overflow.
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(-5_000..=300_000).contains(&y) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_instants() {
        assert_eq!(parse_timestamp("1970-01-01"), Some((0, None)));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.5Z"), Some((1_500_000, Some(0))));
        assert_eq!(parse_timestamp("1970-01-02 00:00:00+01"), Some((86_400_000_000, Some(3600))));
        assert_eq!(parse_timestamp("2000-03-01 00:00:00-05:30").map(|(_, o)| o), Some(Some(-19_800)));
        assert_eq!(parse_timestamp("now"), None);
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
    }

    #[test]
    fn crafted_defaults_cannot_panic() {
        let tz = TypeInfo::from_drizzle("timestamp with time zone", None);
        for text in [
            "2024-01-01 00:00:00+1\u{e9}1",
            "2024-01-01 00:00:00+\u{e9}\u{e9}",
            "2024-01-01 00:00:00+99999999999",
            "2024-01-01 00:00:00+2147483647:00",
            "9223372036854775807-01-01",
            "-9223372036854775807-01-01",
            "200000000000000-01-01 00:00:00",
            "2024-01-01 9223372036854775807:00:00",
            "2024-01-01 00:9223372036854775807:00",
            "2024-01-01 00:00:9223372036854775807.5",
            "294276-12-31 23:59:59-15",
        ] {
            let key = value_key(text, &tz);
            assert!(key.starts_with("ts:") || key.starts_with("str:"), "{text}: {key}");
            let _ = value_key(text, &TypeInfo::from_drizzle("date", None));
        }
        let deep = format!("{}{}", "{".repeat(100_000), "}".repeat(100_000));
        assert_eq!(parse_array_literal(&deep), None);
        assert_eq!(
            parse_array_literal("{{{{{{1}}}}}}").map(|v| v.len()),
            Some(1),
            "6 dimensions still parse"
        );
        let _ = value_key(&deep, &TypeInfo::from_drizzle("integer[]", None));
        let _ = default_from_json(&serde_json::json!(1e308), &TypeInfo::from_drizzle("numeric", None));
        let _ = default_from_json(&serde_json::json!(u64::MAX), &TypeInfo::from_drizzle("bigint", None));
    }

    #[test]
    fn array_literals() {
        assert_eq!(parse_array_literal("{}"), Some(vec![]));
        assert_eq!(
            parse_array_literal(r#"{a,"b c",NULL,{1,2}}"#),
            Some(vec![
                ArrayItem::Value("a".into()),
                ArrayItem::Value("b c".into()),
                ArrayItem::Null,
                ArrayItem::Nested(vec![ArrayItem::Value("1".into()), ArrayItem::Value("2".into())])
            ])
        );
        assert_eq!(parse_array_literal(r#"{"a\"b"}"#), Some(vec![ArrayItem::Value("a\"b".into())]));
        assert_eq!(parse_array_literal("{a"), None);
        assert_eq!(parse_array_literal("x"), None);
    }
}
