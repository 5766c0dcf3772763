//! The CLI's progress lines: the engine's progress events (`engine::progress::PROGRESS`), one
//! line each on stderr as they happen, so a long run is visibly alive. stdout (the report, or
//! `--json`) is untouched.

use std::fmt;
use std::io::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::engine::progress::PROGRESS;

/// A `tracing` layer printing progress events to stderr.
pub struct ProgressLines;

#[derive(Debug, Default, PartialEq, Eq)]
struct Fields {
    message: String,
    tag: Option<String>,
    duration_ms: Option<u64>,
    statements: Option<u64>,
    migrations: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "duration_ms" => self.duration_ms = Some(value),
            "statements" => self.statements = Some(value),
            "migrations" => self.migrations = Some(value),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "tag" => self.tag = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for ProgressLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != PROGRESS {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        // A closed stderr must not stop the run.
        let _ = writeln!(std::io::stderr(), "{}", render(&fields));
    }
}

fn render(f: &Fields) -> String {
    let tag = f.tag.as_deref().unwrap_or("?");
    let ms = f.duration_ms.unwrap_or(0);
    match f.message.as_str() {
        "applying" => format!("applying {tag} ({} statement(s))", f.statements.unwrap_or(0)),
        "applied, commits with its segment" => format!("  applied {tag} in {ms} ms (commits with its segment)"),
        "segment committed" => format!("committed {} migration(s) in {ms} ms", f.migrations.unwrap_or(0)),
        "applied outside a transaction, committed" => format!("  applied {tag} in {ms} ms (outside a transaction, committed)"),
        "rolled back, commits with the rollback" => format!("  rolled back {tag} in {ms} ms (commits with the rollback)"),
        other => format!("{other} {tag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_one_readable_line() {
        let event = |message: &str| Fields {
            message: message.into(),
            tag: Some("0001_x".into()),
            duration_ms: Some(35),
            statements: Some(4),
            migrations: Some(2),
        };
        assert_eq!(render(&event("applying")), "applying 0001_x (4 statement(s))");
        assert_eq!(
            render(&event("applied, commits with its segment")),
            "  applied 0001_x in 35 ms (commits with its segment)"
        );
        assert_eq!(render(&event("segment committed")), "committed 2 migration(s) in 35 ms");
        assert_eq!(
            render(&event("rolled back, commits with the rollback")),
            "  rolled back 0001_x in 35 ms (commits with the rollback)"
        );
    }
}
