//! SQL identifiers both ways: quoted only where Postgres would need it in what drift shows, and
//! unquoted as `DRIFT_IGNORE` and drizzle's policy targets and roles write them.

use crate::schema::expression;

/// Quotes an identifier only when Postgres would need it.
pub(super) fn quote_ident(name: &str) -> String {
    expression::Expr::Name(name.to_string()).canonical()
}

pub(super) fn unquote(part: &str) -> String {
    let part = part.trim();
    match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => part.to_string(),
    }
}

/// The name Postgres keeps for `name`: identifiers longer than 63 bytes (NAMEDATALEN - 1) are
/// cut, at a character boundary, where drizzle's snapshot keeps them whole.
pub(super) fn pg_name(name: &str) -> String {
    const MAX_BYTES: usize = 63;
    if name.len() <= MAX_BYTES {
        return name.to_string();
    }
    let mut cut = MAX_BYTES;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    name[..cut].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_63_bytes_at_a_character_boundary() {
        let fk = "custom_widget_secret_definition_id_custom_widget_definition_id_fk";
        assert_eq!(pg_name(fk), "custom_widget_secret_definition_id_custom_widget_definition_id_");
        assert_eq!(pg_name("short"), "short");
        let wide = format!("{}é", "a".repeat(62));
        assert_eq!(
            pg_name(&wide),
            "a".repeat(62),
            "a two-byte character across byte 63 is dropped whole"
        );
    }
}
