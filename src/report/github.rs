//! `check --format github`: GitHub Actions workflow commands, one per trap and lint finding, so
//! each lands on the pull request's line (`::error file=…,line=…,title=…::message`).

use std::fmt::Write as _;

use crate::engine::check::Severity;
use crate::report::Report;

impl Report {
    /// `folder` is the migrations folder as the workflow names it (relative to the checkout),
    /// which GitHub needs to find the files.
    pub fn render_github(&self, folder: &str) -> String {
        let folder = folder.trim_end_matches('/');
        let path = |rel: &str| {
            if folder.is_empty() || folder == "." {
                rel.to_string()
            } else {
                format!("{folder}/{rel}")
            }
        };
        let mut out = String::new();
        for t in self.traps.iter().flatten() {
            let level = match t.level {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let line = t.line.map(|l| format!(",line={l}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "::{level} file={}{line},title={}::{}",
                property(&path(&t.file)),
                property(t.trap.name()),
                data(&format!("{} Fix: {}", t.message, t.fix))
            );
        }
        for f in &self.findings {
            let level = if f.waived.is_some() || f.level != "error" {
                "warning"
            } else {
                "error"
            };
            let _ = writeln!(
                out,
                "::{level} file={},line={},col={},title={}::{}",
                property(&path(&f.file)),
                f.line,
                f.column,
                property(&f.rule),
                data(&format!("{} Instead: {}", f.message, f.alternative))
            );
        }
        let _ = writeln!(out, "{}", self.render_human().lines().last().unwrap_or_default());
        out
    }
}

/// GitHub's escaping of a command's message.
fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// GitHub's escaping of a command's property values.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_properties_are_escaped_as_github_reads_them() {
        assert_eq!(data("50% done\nnext"), "50%25 done%0Anext");
        assert_eq!(property("a:b,c"), "a%3Ab%2Cc");
    }
}
