//! `envs` as text: the environments' aligned table, then each fleet in a few lines, its failed
//! targets first and named.

use std::fmt::Write as _;

use super::fleet::{Standing, TargetRow};
use super::model::{behind_text, EnvironmentRow};
use super::view::View;

/// Targets named per list in the text; `--json` lists every one.
const NAMED: usize = 20;

/// The environments' table, then each fleet; `color` adds ANSI colours (a terminal, and no
/// `NO_COLOR`).
pub fn table(view: &View, color: bool) -> String {
    let mut out = environments(&view.environments, color);
    let paint = |code: &str, text: String| if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text };
    for s in &view.fleet {
        let mut counts = vec![format!("{} up to date", s.up_to_date)];
        if s.behind > 0 {
            counts.insert(0, paint("33", format!("{} behind", s.behind)));
        }
        if s.failed > 0 {
            counts.insert(0, paint("31", format!("{} failed", s.failed)));
        }
        if s.ahead > 0 {
            counts.push(format!("{} ahead of this checkout", s.ahead));
        }
        let plural = if s.targets == 1 { "" } else { "s" };
        let _ = writeln!(
            out,
            "\nfleet {}: {} target{plural}: {}",
            s.environment,
            s.targets,
            counts.join(", ")
        );
        let versions: Vec<String> = s
            .versions
            .iter()
            .map(|v| format!("{} {}", v.version.as_deref().unwrap_or("none"), v.targets))
            .collect();
        let _ = writeln!(out, "  versions: {}", versions.join(", "));
        let mine = |standing: Standing| -> Vec<&TargetRow> {
            view.targets
                .iter()
                .filter(|t| t.environment == s.environment && t.standing == standing)
                .collect()
        };
        for (label, standing) in [("failed", Standing::Failed), ("behind", Standing::Behind)] {
            let rows = mine(standing);
            if rows.is_empty() {
                continue;
            }
            let mut named: Vec<String> = rows
                .iter()
                .take(NAMED)
                .map(|t| {
                    let current = t.current.as_deref().unwrap_or("none");
                    match &t.error_type {
                        Some(e) => format!("{} ({e}, at {current})", t.name),
                        None => format!("{} ({} behind, at {current})", t.name, behind_count(t)),
                    }
                })
                .collect();
            if rows.len() > NAMED {
                named.push(format!("and {} more (--json lists every target)", rows.len() - NAMED));
            }
            let _ = writeln!(out, "  {label}: {}", named.join(", "));
        }
    }
    out
}

fn behind_count(t: &TargetRow) -> String {
    t.behind.map_or_else(|| "?".to_string(), |n| n.to_string())
}

fn environments(rows: &[EnvironmentRow], color: bool) -> String {
    let header = ["environment", "current", "behind", "status", "applied at", "ms", "ran by", "flags"];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let mut flags = Vec::new();
            if r.stale {
                flags.push("stale");
            }
            if r.ahead {
                flags.push("ahead of this checkout");
            }
            [
                r.environment.clone(),
                r.current.clone().unwrap_or_else(|| "none".into()),
                behind_text(r),
                r.error_type
                    .as_ref()
                    .map_or_else(|| r.status.clone(), |e| format!("{} ({e})", r.status)),
                r.applied_at.clone(),
                r.duration_ms.to_string(),
                r.ran_by.clone(),
                flags.join(", "),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, cols: &[String], paint: Option<&str>| {
        let text: Vec<String> = cols.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}", w = *w)).collect();
        let text = text.join("  ").trim_end().to_string();
        match paint {
            Some(code) if color => {
                let _ = writeln!(out, "\x1b[{code}m{text}\x1b[0m");
            }
            _ => {
                let _ = writeln!(out, "{text}");
            }
        }
    };
    line(&mut out, &header.map(String::from), Some("1"));
    for (r, c) in rows.iter().zip(&cells) {
        let paint = if r.status == "failed" {
            Some("31")
        } else if r.behind.is_some_and(|b| b > 0) || r.stale {
            Some("33")
        } else {
            None
        };
        line(&mut out, c, paint);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::envs::grid;
    use crate::aws::envs::html::html;
    use crate::aws::envs::model::fixtures::{set, state};
    use crate::aws::envs::model::{rows, Discovered, Published};
    use crate::aws::envs::view::view;
    use crate::report::Status;

    #[test]
    fn behind_ahead_and_stale_against_the_local_set() {
        // 2026-01-01T00:00:00Z = 1767225600000 ms.
        let local = set(&[("0000_a", 1_767_225_600_000), ("0001_b", 1_767_312_000_000)]);
        let published = vec![
            Published {
                environment: "dev".into(),
                current: state("dev", Some("0001_b"), Status::Applied, "2026-01-03T00:00:00Z"),
                history: vec![],
            },
            Published {
                environment: "prod".into(),
                current: state("prod", Some("0000_a"), Status::UpToDate, "2026-01-01T12:00:00Z"),
                history: vec![],
            },
            Published {
                environment: "qa".into(),
                current: state("qa", Some("0007_newer"), Status::Applied, "2026-02-01T00:00:00Z"),
                history: vec![],
            },
            Published {
                environment: "sandbox".into(),
                current: state("sandbox", None, Status::Failed, "2026-02-01T00:00:00Z"),
                history: vec![],
            },
        ];
        let r = rows(&published, &local);
        let view: Vec<(&str, Option<usize>, bool, bool)> = r.iter().map(|r| (r.environment.as_str(), r.behind, r.ahead, r.stale)).collect();
        assert_eq!(
            view,
            [
                ("dev", Some(0), false, false),
                ("prod", Some(1), false, true),
                ("qa", None, true, false),
                ("sandbox", Some(2), false, false)
            ]
        );
        let v = View {
            environments: r.clone(),
            fleet: vec![],
            targets: vec![],
            migrations: grid::grid(&published, &local),
        };
        let plain = table(&v, false);
        assert!(!plain.contains('\x1b'), "no colour unless asked");
        assert!(plain.lines().nth(2).unwrap().contains("stale"), "{plain}");
        assert!(table(&v, true).contains("\x1b[31m"), "a failed environment in red");
        let page = html(&v, "now");
        assert!(page.contains("data-environment=\"qa\"") && page.contains("0007_newer"));
        assert!(!page.contains("<script"), "self-contained, no script");
    }

    #[test]
    fn html_escapes_what_it_shows() {
        let local = set(&[("0000_a", 1)]);
        let published = vec![Published {
            environment: "dev".into(),
            current: state("dev", Some("<b>0000</b>"), Status::Applied, "2026-01-01T00:00:00Z"),
            history: vec![],
        }];
        let found = Discovered {
            environments: published,
            targets: vec![],
        };
        let page = html(&view(&found, &local), "now");
        assert!(page.contains("&lt;b&gt;0000&lt;/b&gt;") && !page.contains("<b>0000"));
    }
}
