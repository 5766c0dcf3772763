//! One statement piece of a migration through Postgres's own grammar (libpg_query, by the
//! `pg_query` crate): the statements it holds with their byte ranges, the comments that carry
//! waivers, and byte offsets turned into the file's line and column. The lint reads statements
//! through it; `shorten` is how every layer cuts SQL for a message.

use pg_query::NodeEnum;

/// A statement of a piece (a piece written by hand can hold several).
pub struct Parsed {
    pub node: NodeEnum,
    /// Byte range of the statement within the piece.
    pub start: usize,
    pub end: usize,
}

/// A `-- wishlist-migrator: …` comment of the piece.
pub struct Directive {
    pub text: String,
    pub offset: usize,
}

/// Marks the comments this tool reads; only pieces holding it are scanned for them.
pub const DIRECTIVE: &str = "wishlist-migrator:";

pub fn parse(piece: &str) -> Result<Vec<Parsed>, String> {
    // libpg_query takes a C string; a NUL byte cannot be SQL anyway.
    if piece.contains('\0') {
        return Err("the statement contains a NUL byte".into());
    }
    let result = pg_query::parse(piece).map_err(|e| e.to_string())?;
    let mut parsed = Vec::with_capacity(result.protobuf.stmts.len());
    for raw in result.protobuf.stmts {
        let Some(node) = raw.stmt.and_then(|n| n.node) else { continue };
        let start = raw.stmt_location.max(0) as usize;
        // 0 means "to the end of the input".
        let end = if raw.stmt_len <= 0 {
            piece.len()
        } else {
            start + raw.stmt_len as usize
        };
        parsed.push(Parsed {
            node,
            start,
            end: end.min(piece.len()),
        });
    }
    Ok(parsed)
}

/// The tool's comments of a piece, found by Postgres's scanner so that text inside string
/// literals or dollar quotes is never taken for one.
pub fn directives(piece: &str) -> Vec<Directive> {
    if !piece.contains(DIRECTIVE) || piece.contains('\0') {
        return Vec::new();
    }
    let Ok(scanned) = pg_query::scan(piece) else {
        return Vec::new();
    };
    let comment = pg_query::protobuf::Token::SqlComment as i32;
    scanned
        .tokens
        .iter()
        .filter(|t| t.token == comment)
        .filter_map(|t| {
            let text = piece.get(t.start as usize..t.end as usize)?;
            let body = text.trim_start_matches('-').trim();
            let directive = strip_prefix_ignore_case(body, DIRECTIVE)?;
            Some(Directive {
                text: directive.trim().to_string(),
                offset: t.start as usize,
            })
        })
        .collect()
}

pub fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// Where a byte of a statement piece is in its file: 1-based line and column (in characters).
/// `line` is the line of the piece's first non-blank line (as `Statement::line` counts it).
pub fn position(sql: &str, line: usize, offset: usize) -> (usize, usize) {
    let offset = offset.min(sql.len());
    let leading_blank = sql.lines().take_while(|l| l.trim().is_empty()).count();
    let first_line = line - leading_blank;
    let before = sql.get(..offset).unwrap_or(sql);
    let line = first_line + before.matches('\n').count();
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The statement's text from `start`, on one line and shortened: what a finding shows.
pub fn excerpt(piece: &str, start: usize, end: usize) -> String {
    let text = piece.get(start..end).unwrap_or(piece);
    let code: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .collect();
    shorten(&code.join(" "), 100)
}

/// `text` cut to `max_chars` characters, with an ellipsis when it was cut.
pub fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_with_two_statements_gives_both_with_their_ranges() {
        let piece = "\nCREATE TABLE a (id int);\nDROP TABLE b;\n";
        let parsed = parse(piece).unwrap();
        assert_eq!(parsed.len(), 2);
        assert!(matches!(parsed[1].node, NodeEnum::DropStmt(_)));
        assert!(piece[parsed[1].start..parsed[1].end].contains("DROP TABLE b"));
    }

    #[test]
    fn syntax_errors_and_nul_bytes_are_errors_not_panics() {
        assert!(parse("ALTER TABLE t ADD COLUMNN x int;").is_err());
        assert!(parse("SELECT 1;\0").is_err());
    }

    #[test]
    fn directives_come_from_comments_only() {
        let piece = "-- wishlist-migrator: allow drop-table -- gone since v3\nSELECT '-- wishlist-migrator: allow x';\nDROP TABLE t; -- Wishlist-Migrator: commit-after";
        let found: Vec<String> = directives(piece).into_iter().map(|d| d.text).collect();
        assert_eq!(found, vec!["allow drop-table -- gone since v3", "commit-after"]);
    }

    #[test]
    fn positions_count_lines_of_the_file() {
        let sql = "\n\nALTER TABLE t\n  DROP COLUMN x;";
        let offset = sql.find("DROP").unwrap();
        assert_eq!(position(sql, 12, offset), (13, 3));
        assert_eq!(position(sql, 12, 2), (12, 1));
    }

    #[test]
    fn excerpts_skip_comments_and_join_lines() {
        let piece = "-- why\nALTER TABLE t\n  DROP COLUMN x;";
        assert_eq!(excerpt(piece, 0, piece.len()), "ALTER TABLE t DROP COLUMN x;");
    }
}
