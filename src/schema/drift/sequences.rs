//! Identity columns and sequences, compared on the sequence options drizzle names: all of them for
//! an identity, only those the snapshot names for a sequence.

use crate::db::catalog;
use crate::schema::expression::canonical_number;
use crate::schema::snapshot;

use super::shown::Shown;

fn identity_display(kind: &str, options: &[(&str, String)]) -> String {
    let how = if kind == "always" { "ALWAYS" } else { "BY DEFAULT" };
    let opts: Vec<String> = options.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("GENERATED {how} AS IDENTITY ({})", opts.join(" "))
}

pub(super) fn expected_identity(i: &snapshot::Identity) -> Shown {
    let options = sequence_fields(&i.increment, &i.min_value, &i.max_value, &i.start_with, &i.cache, i.cycle);
    Shown {
        key: identity_display(&i.kind, &options),
        display: identity_display(&i.kind, &options),
    }
}

pub(super) fn actual_identity(i: &catalog::Identity) -> Shown {
    // Keyed on the same fields drizzle writes (it always writes them all).
    let s = &i.sequence;
    let options = sequence_fields(
        &Some(s.increment.to_string()),
        &Some(s.min.to_string()),
        &Some(s.max.to_string()),
        &Some(s.start.to_string()),
        &Some(s.cache.to_string()),
        Some(s.cycle),
    );
    Shown::same(identity_display(&i.kind, &options))
}

fn sequence_fields(
    increment: &Option<String>,
    min: &Option<String>,
    max: &Option<String>,
    start: &Option<String>,
    cache: &Option<String>,
    cycle: Option<bool>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, value) in [
        ("increment", increment),
        ("minvalue", min),
        ("maxvalue", max),
        ("start", start),
        ("cache", cache),
    ] {
        if let Some(v) = value {
            out.push((name, canonical_number(v).unwrap_or_else(|| v.clone())));
        }
    }
    if let Some(c) = cycle {
        out.push(("cycle", c.to_string()));
    }
    out
}

pub(super) fn expected_sequence(q: &snapshot::Sequence) -> Shown {
    let fields = sequence_fields(&q.increment, &q.min_value, &q.max_value, &q.start_with, &q.cache, q.cycle);
    let text = fields.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" ");
    Shown::same(text)
}

pub(super) fn sequence_display(o: &catalog::SequenceOptions) -> String {
    format!(
        "increment {} minvalue {} maxvalue {} start {} cache {} cycle {}",
        o.increment, o.min, o.max, o.start, o.cache, o.cycle
    )
}

/// Whether the live options agree with every option the snapshot names.
pub(super) fn sequence_matches(expected: &Shown, o: &catalog::SequenceOptions) -> bool {
    let words: Vec<&str> = expected.key.split_whitespace().collect();
    words.chunks(2).all(|pair| match pair {
        [name, value] => {
            let live = match *name {
                "increment" => o.increment.to_string(),
                "minvalue" => o.min.to_string(),
                "maxvalue" => o.max.to_string(),
                "start" => o.start.to_string(),
                "cache" => o.cache.to_string(),
                "cycle" => o.cycle.to_string(),
                _ => return false,
            };
            live == *value
        }
        _ => false,
    })
}
