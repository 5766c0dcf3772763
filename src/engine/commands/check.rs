//! `check`: the pull request's gate, offline. The folder's traps (`engine/check`), compared with
//! `--base` (a git ref or a folder) when given, and the lint of the migrations the change adds.

use std::path::Path;

use crate::config::RunSettings;
use crate::engine::check::traps::{self, Examined};
use crate::engine::check::tree::Tree;
use crate::engine::check::{CheckError, Severity};
use crate::engine::outcome::{Checked, Finished};
use crate::lint::{self, Finding};
use crate::migrations::source::{Layout, Migration, MigrationSource};

pub fn check(source: &MigrationSource, settings: &RunSettings, base: Option<&str>) -> Finished<Checked> {
    let MigrationSource::Dir(dir) = source else {
        return Finished::failed(CheckError::NoFolder.into());
    };
    let head = match Tree::from_dir(dir) {
        Ok(t) => t,
        Err(e) => return Finished::failed(e.into()),
    };
    let base_tree = match base.map(|b| read_base(dir, b)).transpose() {
        Ok(t) => t,
        Err(e) => return Finished::failed(e.into()),
    };
    let examined = traps::examine(&head, base_tree.as_ref());
    // Without a base nothing is known to be new: the lint of old files is `lint`'s business.
    let findings = if base.is_some() {
        lint_new(&head, &examined, settings)
    } else {
        Vec::new()
    };
    let checked = Checked {
        base: base.map(str::to_string),
        new: if base.is_some() { examined.new.clone() } else { Vec::new() },
        traps: examined.traps,
        findings,
    };
    let error = refusal(&checked);
    Finished::new(checked, Vec::new(), error.map(Into::into))
}

/// A folder when one is at that path, else a git ref of the repository the migrations are in.
fn read_base(dir: &Path, base: &str) -> Result<Tree, CheckError> {
    let as_dir = Path::new(base);
    if as_dir.is_dir() {
        Tree::from_dir(as_dir)
    } else {
        Tree::from_git(dir, base)
    }
}

/// The lint over the new migrations, read from the same files as the traps: a folder the traps
/// refuse (a duplicate tag, a missing file) still gets its new migrations linted.
fn lint_new(head: &Tree, examined: &Examined, settings: &RunSettings) -> Vec<Finding> {
    // The lint reads every earlier migration for what it built: not worth it for nothing new.
    let Some(layout) = examined.layout.filter(|_| !examined.new.is_empty()) else {
        return Vec::new();
    };
    let migrations: Vec<Migration> = examined
        .migrations
        .iter()
        .filter_map(|m| {
            let sql = std::str::from_utf8(head.get(&m.file)?).ok()?;
            let mut migration = Migration::new(0, m.tag.clone(), m.when, String::new(), sql, None);
            if layout == Layout::Folders {
                migration.name = Some(m.tag.clone());
            }
            Some(migration)
        })
        .enumerate()
        .map(|(idx, m)| Migration { idx, ..m })
        .collect();
    let all: Vec<&Migration> = migrations.iter().collect();
    let mut findings = lint::lint_selected(layout, &all, |m| examined.new.contains(&m.tag), None);
    for f in &mut findings {
        let allowed = settings.lint_allow.iter().any(|a| a.tag == f.migration && a.rule == f.rule);
        if allowed && f.waived.is_none() {
            f.waived = Some("allowed for this run (LINT_ALLOW / --allow-finding)".into());
        }
    }
    findings
}

fn refusal(checked: &Checked) -> Option<CheckError> {
    let traps = checked.traps.iter().filter(|t| t.level == Severity::Error);
    let lint = checked.findings.iter().filter(|f| f.blocks());
    let errors = traps.clone().count() + lint.clone().count();
    let (first, migration) = match (traps.clone().next(), lint.clone().next()) {
        (Some(t), _) => (
            format!("{} in {}: {} Fix: {}", t.trap.name(), t.file, t.message, t.fix),
            t.migration.clone(),
        ),
        (None, Some(f)) => (
            format!("{} in {} line {}: {}", f.rule.id(), f.file, f.line, f.message),
            Some(f.migration.clone()),
        ),
        (None, None) => return None,
    };
    Some(CheckError::Failed { errors, first, migration })
}
