//! The traps themselves, pure: a folder's files (and the base's) in, findings out. Each finding
//! says what the trap does to a deploy and which command fixes it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::engine::check::tree::Tree;
use crate::engine::check::{Severity, Trap, TrapFinding};
use crate::migrations::folders::{self, MIGRATION_FILE};
use crate::migrations::journal::Journal;
use crate::migrations::source::{unsafe_tag, Layout, JOURNAL_PATH};

/// The parent of a first snapshot.
const ORIGIN: &str = "00000000-0000-0000-0000-000000000000";
const SNAPSHOT_V1: &str = "snapshot.json";

/// A migration the folder lists: a journal entry, or a 1.0 folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub tag: String,
    /// The SQL file, relative to the folder.
    pub file: String,
    /// The journal's `when` (1.0: the folder name's time).
    pub when: i64,
}

/// What the check learnt of a folder: its migrations in order, and the traps.
#[derive(Debug, Clone, Default)]
pub struct Examined {
    pub layout: Option<Layout>,
    pub migrations: Vec<Listed>,
    /// The migrations the base lacks: what the change adds (all of them without a base).
    pub new: Vec<String>,
    pub traps: Vec<TrapFinding>,
}

/// The fix for a migration that collides with main's: drizzle-kit numbers and snapshots each
/// branch on its own, so the branch merged last regenerates on top of the other.
fn regenerate(tag: &str, layout: Layout) -> String {
    match layout {
        Layout::Journal => format!(
            "regenerate {tag} on its branch: `npx drizzle-kit drop` (pick {tag}), merge main in, then `npx drizzle-kit generate`, so it gets the next prefix, a later `when` and a snapshot built on main's"
        ),
        Layout::Folders => format!(
            "regenerate {tag} on its branch: delete its folder, merge main in, then `npx drizzle-kit generate`, so it gets a newer folder name and a snapshot built on main's"
        ),
    }
}

fn finding(trap: Trap, level: Severity, migration: Option<&str>, file: &str, message: String, fix: String) -> TrapFinding {
    TrapFinding {
        trap,
        level,
        migration: migration.map(str::to_string),
        file: file.to_string(),
        line: None,
        message,
        fix,
    }
}

/// Reads `tree` as drizzle-kit wrote it and finds the traps; `base` is the folder as released.
pub fn examine(head: &Tree, base: Option<&Tree>) -> Examined {
    let mut out = Examined::default();
    let Some((layout, migrations)) = list(head, &mut out.traps) else {
        return out;
    };
    let released: Option<Vec<Listed>> = base.and_then(|b| list(b, &mut Vec::new()).map(|(_, m)| m));
    let released_tags: BTreeSet<&str> = released.iter().flatten().map(|m| m.tag.as_str()).collect();
    let is_new = |tag: &str| base.is_none() || !released_tags.contains(tag);
    out.new = migrations.iter().filter(|m| is_new(&m.tag)).map(|m| m.tag.clone()).collect();

    duplicate_prefixes(&migrations, layout, &is_new, &mut out.traps);
    match layout {
        Layout::Journal => {
            when_not_increasing(&migrations, &mut out.traps);
            files_without_entries(head, base, &migrations, &mut out.traps);
        }
        Layout::Folders => {
            if released.is_some() {
                sorts_before_released(&migrations, &is_new, &mut out.traps);
            }
        }
    }
    for m in &migrations {
        if head.get(&m.file).is_none() {
            let (listed_by, remove) = match layout {
                Layout::Journal => ("the journal lists", "remove the entry with `npx drizzle-kit drop`"),
                Layout::Folders => ("a snapshot.json stands for", "delete the folder"),
            };
            out.traps.push(finding(
                Trap::EntryWithoutFile,
                Severity::Error,
                Some(&m.tag),
                &m.file,
                format!("{listed_by} {} but the folder has no {}: drizzle-orm stops every deploy at it (a merge that kept the entry and lost the file?)", m.tag, m.file),
                format!("restore {} from the branch that generated it, or {remove}", m.file),
            ));
        }
    }
    snapshots(head, layout, &migrations, &is_new, &mut out.traps);
    if let (Some(base), Some(released)) = (base, &released) {
        released_changed(head, base, released, &mut out.traps);
        if layout == Layout::Journal {
            released_when_changed(&migrations, released, &mut out.traps);
        }
    }
    out.layout = Some(layout);
    out.migrations = migrations;
    out
}

/// The folder's migrations in drizzle's order, or `None` (with why) when it cannot be read.
fn list(tree: &Tree, traps: &mut Vec<TrapFinding>) -> Option<(Layout, Vec<Listed>)> {
    let mut unreadable = |file: &str, message: String, fix: &str| {
        traps.push(finding(Trap::Unreadable, Severity::Error, None, file, message, fix.to_string()));
    };
    let folder_names: BTreeSet<&str> = tree
        .files
        .keys()
        .filter_map(|rel| rel.split_once('/'))
        .filter(|(dir, file)| *dir != "meta" && (*file == MIGRATION_FILE || *file == SNAPSHOT_V1))
        .map(|(dir, _)| dir)
        .collect();
    match (tree.get(JOURNAL_PATH), folder_names.is_empty()) {
        (Some(_), false) => {
            unreadable(
                JOURNAL_PATH,
                "the folder is in both drizzle-kit layouts: a 0.x journal and 1.0 migration folders".into(),
                "finish the upgrade with `npx drizzle-kit up`, or remove what it left behind",
            );
            None
        }
        (None, true) => {
            unreadable(
                JOURNAL_PATH,
                "no drizzle journal and no migration folders".into(),
                "point --migrations at drizzle-kit's output folder",
            );
            None
        }
        (Some(bytes), true) => {
            let journal = match Journal::parse(bytes) {
                Ok(j) => j,
                Err(e) => {
                    unreadable(
                        JOURNAL_PATH,
                        format!("not a valid drizzle journal: {e}"),
                        "resolve the merge conflict in the journal: keep every entry of both sides, in order",
                    );
                    return None;
                }
            };
            let mut listed: Vec<Listed> = Vec::new();
            for entry in journal.entries {
                if let Some(reason) = unsafe_tag(&entry.tag) {
                    unreadable(
                        JOURNAL_PATH,
                        format!("journal tag {:?} {reason}", entry.tag),
                        "fix the journal: drizzle-kit writes tags like 0003_add_index",
                    );
                } else if !listed.iter().any(|m| m.tag == entry.tag) {
                    listed.push(Listed {
                        file: format!("{}.sql", entry.tag),
                        tag: entry.tag,
                        when: entry.when,
                    });
                }
            }
            Some((Layout::Journal, listed))
        }
        (None, false) => {
            let mut names: Vec<String> = folder_names.into_iter().map(str::to_string).collect();
            folders::sort(&mut names);
            let mut listed = Vec::new();
            for name in names {
                match folders::folder_millis(&name) {
                    Some(when) => listed.push(Listed {
                        file: format!("{name}/{MIGRATION_FILE}"),
                        tag: name,
                        when,
                    }),
                    None => unreadable(
                        &format!("{name}/{MIGRATION_FILE}"),
                        format!(
                            "folder {name:?} does not start with 14 digits (YYYYMMDDHHMMSS), which drizzle-orm 1.0 reads as its created_at"
                        ),
                        "rename it as drizzle-kit 1.0 names folders, or regenerate it",
                    ),
                }
            }
            Some((Layout::Folders, listed))
        }
    }
}

/// The part of a tag drizzle-kit numbers: before the first `_` (0.x), the 14-digit time (1.0).
fn prefix(tag: &str, layout: Layout) -> &str {
    match layout {
        Layout::Journal => tag.split('_').next().unwrap_or(tag),
        Layout::Folders => tag.get(..14).unwrap_or(tag),
    }
}

fn duplicate_prefixes(migrations: &[Listed], layout: Layout, is_new: &dyn Fn(&str) -> bool, traps: &mut Vec<TrapFinding>) {
    let mut by_prefix: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for m in migrations {
        by_prefix.entry(prefix(&m.tag, layout)).or_default().push(m);
    }
    // drizzle-kit's `prefix: "none"` numbers nothing: every tag starts with `_`.
    for (p, group) in by_prefix.into_iter().filter(|(p, g)| !p.is_empty() && g.len() > 1) {
        // The one to regenerate is the one the base lacks; without a base, the later one.
        let keep = group.iter().position(|m| !is_new(&m.tag)).unwrap_or(0);
        for m in group.iter().enumerate().filter(|(i, _)| *i != keep).map(|(_, m)| m) {
            traps.push(finding(
                Trap::DuplicatePrefix,
                Severity::Error,
                Some(&m.tag),
                &m.file,
                format!(
                    "{} shares the prefix {p} with {}: two branches each generated their next migration from the same base, and neither knows the other's schema change (drizzle-kit's next generate diffs against one snapshot only)",
                    m.tag, group[keep].tag
                ),
                regenerate(&m.tag, layout),
            ));
        }
    }
}

fn when_not_increasing(migrations: &[Listed], traps: &mut Vec<TrapFinding>) {
    let mut newest: Option<&Listed> = None;
    for m in migrations {
        match newest {
            Some(prev) if m.when <= prev.when => traps.push(finding(
                Trap::WhenNotIncreasing,
                Severity::Error,
                Some(&m.tag),
                JOURNAL_PATH,
                format!(
                    "{}'s `when` ({}) is not newer than {}'s ({}): drizzle-orm applies only entries newer than the newest one applied, so every database that has {} skips {} forever and reports success",
                    m.tag, m.when, prev.tag, prev.when, prev.tag, m.tag
                ),
                regenerate(&m.tag, Layout::Journal),
            )),
            _ => newest = Some(m),
        }
    }
}

/// Top-level `.sql` files no entry names: an error when the change adds them, a warning for
/// leftovers the base already had (real histories carry some; drizzle-orm ignores them).
fn files_without_entries(head: &Tree, base: Option<&Tree>, migrations: &[Listed], traps: &mut Vec<TrapFinding>) {
    let named: BTreeSet<&str> = migrations.iter().map(|m| m.file.as_str()).collect();
    for rel in head
        .files
        .keys()
        .filter(|r| !r.contains('/') && r.ends_with(".sql") && !r.ends_with(".down.sql"))
    {
        if named.contains(rel.as_str()) {
            continue;
        }
        let added = base.is_some_and(|b| b.get(rel).is_none());
        let tag = rel.trim_end_matches(".sql");
        traps.push(finding(
            Trap::FileWithoutEntry,
            if added { Severity::Error } else { Severity::Warning },
            Some(tag),
            rel,
            if added {
                format!("{rel} is new and no journal entry names it: drizzle-orm never runs it (a journal merge conflict resolved with one side?)")
            } else {
                format!("{rel} is a leftover no journal entry names: drizzle-orm ignores it")
            },
            if added {
                regenerate(tag, Layout::Journal)
            } else {
                format!("delete {rel} when nobody needs it")
            },
        ));
    }
}

fn sorts_before_released(migrations: &[Listed], is_new: &dyn Fn(&str) -> bool, traps: &mut Vec<TrapFinding>) {
    let Some(last) = migrations.iter().rposition(|m| !is_new(&m.tag)) else {
        return;
    };
    for m in migrations[..last].iter().filter(|m| is_new(&m.tag)) {
        let newest = &migrations[last].tag;
        traps.push(finding(
            Trap::WhenNotIncreasing,
            Severity::Error,
            Some(&m.tag),
            &m.file,
            format!("{} is new but sorts before {newest}, which is released: databases that applied {newest} refuse it as out of order (drizzle-orm 1.0 would run it after {newest}, though it was written before)", m.tag),
            format!("{}; or, when it commutes with {newest} (`npx drizzle-kit check`), deploy with ALLOW_OUT_OF_ORDER=true", regenerate(&m.tag, Layout::Folders)),
        ));
    }
}

/// Only the fields of a snapshot that link it to its parent (0.x `prevId`, 1.0 `prevIds`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Link {
    id: String,
    #[serde(default)]
    prev_id: Option<String>,
    #[serde(default)]
    prev_ids: Vec<String>,
}

struct Node<'a> {
    tag: &'a str,
    file: String,
    id: String,
    parents: Vec<String>,
}

fn snapshots(head: &Tree, layout: Layout, migrations: &[Listed], is_new: &dyn Fn(&str) -> bool, traps: &mut Vec<TrapFinding>) {
    // In order, one per snapshot file; `None` where the file was pruned (not a break).
    let mut nodes: Vec<Option<Node>> = Vec::new();
    let mut seen = BTreeSet::new();
    for m in migrations {
        let file = match layout {
            Layout::Journal => format!("meta/{}_snapshot.json", prefix(&m.tag, layout)),
            Layout::Folders => format!("{}/{SNAPSHOT_V1}", m.tag),
        };
        if !seen.insert(file.clone()) {
            continue;
        }
        let node = head.get(&file).and_then(|bytes| match serde_json::from_slice::<Link>(bytes) {
            Ok(link) => Some(Node {
                tag: &m.tag,
                file,
                id: link.id,
                parents: link.prev_id.into_iter().chain(link.prev_ids).collect(),
            }),
            Err(e) => {
                traps.push(finding(
                    Trap::Unreadable,
                    Severity::Warning,
                    Some(&m.tag),
                    &file,
                    format!("snapshot not readable ({e}); its chain was not checked"),
                    "resolve the merge conflict in it, or regenerate the migration".into(),
                ));
                None
            }
        });
        nodes.push(node);
    }
    let ids: BTreeSet<&str> = nodes.iter().flatten().map(|n| n.id.as_str()).collect();
    let merged = nodes.iter().flatten().any(|n| n.parents.len() > 1);
    let mut first_child: BTreeMap<&str, &Node> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        let Some(parent) = node.parents.first() else { continue };
        if let Some(&first) = first_child.get(parent.as_str()) {
            // Named on the migration the change adds, whichever sorts first.
            let (node, sibling) = if is_new(first.tag) && !is_new(node.tag) {
                (first, node)
            } else {
                (node, first)
            };
            // drizzle-kit 1.0 combines branches that never merged; 0.x forgets one of them.
            let (level, fix) = match layout {
                Layout::Journal => (Severity::Error, regenerate(node.tag, layout)),
                Layout::Folders if merged => continue,
                Layout::Folders => (
                    Severity::Warning,
                    "run `npx drizzle-kit check` to confirm the two branches' changes commute; drizzle-kit 1.0 combines them when it next generates".to_string(),
                ),
            };
            traps.push(finding(
                Trap::SnapshotFork,
                level,
                Some(node.tag),
                &node.file,
                format!("{}'s snapshot has the same parent as {}'s ({}): both were generated from one schema, so each migration's SQL was written without the other's change", node.tag, sibling.tag, sibling.file),
                fix,
            ));
        } else {
            first_child.insert(parent, node);
        }
        let all_before_present = nodes[..i].iter().all(Option::is_some);
        let missing = node.parents.iter().find(|p| p.as_str() != ORIGIN && !ids.contains(p.as_str()));
        if let (true, Some(parent)) = (all_before_present, missing) {
            traps.push(finding(
                Trap::SnapshotBreak,
                Severity::Error,
                Some(node.tag),
                &node.file,
                format!("{}'s snapshot names parent {parent}, which no snapshot of the folder has: it was generated on a branch whose earlier migration is not here (lost in a merge conflict?), so drizzle-kit's next generate diffs against a schema the database never had", node.tag),
                regenerate(node.tag, layout),
            ));
        }
    }
}

/// Released migrations (in `base`) must stay byte for byte: databases recorded their hash.
fn released_changed(head: &Tree, base: &Tree, released: &[Listed], traps: &mut Vec<TrapFinding>) {
    for m in released {
        let Some(old) = base.get(&m.file) else { continue };
        let (message, line) = match head.get(&m.file) {
            Some(new) if new == old => continue,
            Some(new) => (
                format!("{} is released (in the base) and its file changed: databases that applied it keep the old version and refuse the new hash (ChecksumMismatch), and new databases get something else", m.tag),
                Some(first_different_line(old, new)),
            ),
            None => (format!("{} is released (in the base) and its file is gone: databases that applied it report it as unknown", m.tag), None),
        };
        traps.push(TrapFinding {
            line,
            ..finding(
                Trap::ReleasedMigrationChanged,
                Severity::Error,
                Some(&m.tag),
                &m.file,
                message,
                format!("restore {} as released (`git checkout <base> -- {}`) and put the change in a new migration (`npx drizzle-kit generate`)", m.file, m.file),
            )
        });
    }
}

/// drizzle-orm stored a released entry's `when` as the ledger's `created_at` and compares the
/// newest with every entry's: a released `when` moved changes what counts as pending.
fn released_when_changed(migrations: &[Listed], released: &[Listed], traps: &mut Vec<TrapFinding>) {
    for m in migrations {
        let Some(old) = released.iter().find(|r| r.tag == m.tag) else {
            continue;
        };
        if old.when != m.when {
            traps.push(finding(
                Trap::ReleasedMigrationChanged,
                Severity::Error,
                Some(&m.tag),
                JOURNAL_PATH,
                format!("{}'s `when` changed from {} (released) to {}: databases recorded the old one as its created_at, and drizzle-orm decides what is pending by comparing it", m.tag, old.when, m.when),
                format!("restore {}'s `when` to {} in {JOURNAL_PATH}", m.tag, old.when),
            ));
        }
    }
}

fn first_different_line(old: &[u8], new: &[u8]) -> usize {
    let same = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    1 + new[..same].iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
#[path = "traps_tests.rs"]
mod tests;
