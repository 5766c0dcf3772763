//! The `envs --html` page: one self-contained file (no script, no network). The environments'
//! table; each fleet as counts and a compact list, the failed targets first and named; which
//! migrations ran where, with every duration on one scale; each environment's runs.

use std::fmt::Write as _;

use super::fleet::{FleetSummary, Standing, TargetRow};
use super::grid::{Cell, Grid};
use super::model::{behind_text, EnvironmentRow};
use super::view::View;

/// The longest bar, in em: every duration on the page is drawn against this and one maximum,
/// whatever column or environment it is in.
const BAR_EM: f64 = 10.0;
/// Targets listed open in a list; the rest are behind a "more" that folds them away, so 500
/// behind or failed targets still leave the page a few screens high.
const OPEN_TARGETS: usize = 60;

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A duration's bar on the page's one scale.
fn bar(ms: u64, scale_ms: u64, class: &str) -> String {
    let em = ms as f64 * BAR_EM / scale_ms.max(1) as f64;
    format!("<span class=\"{class}\" style=\"width:{em:.2}em\"></span>")
}

pub fn html(view: &View, generated_at: &str) -> String {
    let mut body = String::new();
    environments(&mut body, &view.environments);
    for summary in &view.fleet {
        let rows: Vec<&TargetRow> = view.targets.iter().filter(|t| t.environment == summary.environment).collect();
        fleet(&mut body, summary, &rows);
    }
    // One scale for every bar of the page: the longest migration or run anywhere.
    let scale_ms = view
        .environments
        .iter()
        .flat_map(|r| r.runs.iter().map(|run| run.duration_ms))
        .chain([view.migrations.scale_ms, 1])
        .max()
        .unwrap_or(1);
    if !view.migrations.environments.is_empty() {
        grid(&mut body, &view.migrations, scale_ms);
    }
    timelines(&mut body, &view.environments, scale_ms);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>wishlist migrations by environment</title><style>\
body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}\
th,td{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}}tr.failed td{{color:#b00}}\
.timeline ol{{list-style:none;padding:0}}.timeline li{{margin:2px 0;white-space:nowrap}}\
.bar{{display:inline-block;height:10px;background:#4a7;vertical-align:middle;min-width:2px}}\
li.failed .bar{{background:#c33}}td.slow .bar{{background:#d80}}td.slow .ms{{color:#b50;font-weight:bold}}\
#migrations td{{white-space:nowrap}}#migrations .when{{display:block;color:#666;font-size:12px}}\
td.failed{{color:#b00}}td.notApplied,td.applied{{color:#888}}\
.fleet .counts span{{margin-right:1.2em}}.fleet .counts .failed{{color:#b00;font-weight:bold}}.fleet .counts .behind{{color:#a60}}\
ul.targets{{list-style:none;padding:0;margin:4px 0;display:grid;grid-template-columns:repeat(auto-fill,minmax(15em,1fr));gap:2px 12px}}\
ul.targets li{{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}}ul.targets small{{color:#666}}\
.failed-targets li{{color:#b00}}.share{{display:inline-block;height:8px;background:#4a7;vertical-align:middle}}\
</style></head><body><h1>Migrations by environment</h1>\
<p>Generated {}.</p>{body}</body></html>\n",
        escape(generated_at)
    )
}

fn environments(body: &mut String, rows: &[EnvironmentRow]) {
    body.push_str(
        "<table id=\"environments\"><thead><tr><th>environment</th><th>current</th><th>behind</th><th>status</th><th>applied at</th><th>ms</th><th>ran by</th></tr></thead><tbody>",
    );
    for r in rows {
        let _ = write!(
            body,
            "<tr data-environment=\"{env}\" class=\"{status}\"><td>{env}</td><td class=\"current\">{current}</td><td>{behind}</td><td>{status}{error}</td><td>{at}</td><td>{ms}</td><td>{by}</td></tr>",
            env = escape(&r.environment),
            current = escape(r.current.as_deref().unwrap_or("none")),
            behind = escape(&behind_text(r)),
            status = escape(&r.status),
            error = r.error_type.as_ref().map(|e| format!(" ({})", escape(e))).unwrap_or_default(),
            at = escape(&r.applied_at),
            ms = r.duration_ms,
            by = escape(&r.ran_by),
        );
    }
    body.push_str("</tbody></table>");
}

/// One environment's fleet: counts, versions, then the failed, the behind, and the rest folded.
fn fleet(body: &mut String, s: &FleetSummary, rows: &[&TargetRow]) {
    let env = escape(&s.environment);
    let _ = write!(
        body,
        "<section class=\"fleet\" id=\"fleet-{env}\" data-environment=\"{env}\"><h2>{env}: {n} target{plural}</h2><p class=\"counts\">\
<span class=\"failed\" data-count=\"{failed}\">{failed} failed</span><span class=\"behind\" data-count=\"{behind}\">{behind} behind</span>\
<span class=\"upToDate\" data-count=\"{up}\">{up} up to date</span>{ahead}</p>",
        n = s.targets,
        plural = if s.targets == 1 { "" } else { "s" },
        failed = s.failed,
        behind = s.behind,
        up = s.up_to_date,
        ahead = if s.ahead > 0 {
            format!(
                "<span class=\"ahead\" data-count=\"{0}\">{0} ahead of this checkout</span>",
                s.ahead
            )
        } else {
            String::new()
        },
    );
    body.push_str("<table class=\"versions\"><thead><tr><th>version</th><th>targets</th><th></th></tr></thead><tbody>");
    for v in &s.versions {
        let _ = write!(
            body,
            "<tr data-version=\"{version}\"><td>{version}</td><td class=\"count\">{n}</td><td>{bar}</td></tr>",
            version = escape(v.version.as_deref().unwrap_or("none")),
            n = v.targets,
            bar = bar(v.targets as u64, s.targets as u64, "share"),
        );
    }
    body.push_str("</tbody></table>");
    let of = |standing: Standing| rows.iter().copied().filter(move |r| r.standing == standing);
    let failed: Vec<&TargetRow> = of(Standing::Failed).collect();
    let behind: Vec<&TargetRow> = of(Standing::Behind).collect();
    let rest: Vec<&TargetRow> = of(Standing::Ahead).chain(of(Standing::UpToDate)).collect();
    if !failed.is_empty() {
        let _ = write!(body, "<div class=\"failed-targets\"><h3>Failed ({})</h3>", failed.len());
        targets(body, &failed, OPEN_TARGETS);
        body.push_str("</div>");
    }
    if !behind.is_empty() {
        let _ = write!(body, "<div class=\"behind-targets\"><h3>Behind ({})</h3>", behind.len());
        targets(body, &behind, OPEN_TARGETS);
        body.push_str("</div>");
    }
    if !rest.is_empty() {
        let _ = write!(
            body,
            "<details class=\"other-targets\"><summary>{} up to date or ahead</summary>",
            rest.len()
        );
        targets(body, &rest, usize::MAX);
        body.push_str("</details>");
    }
    body.push_str("</section>");
}

/// The targets as a compact grid of names, `open` of them shown, the rest folded.
fn targets(body: &mut String, rows: &[&TargetRow], open: usize) {
    let item = |r: &TargetRow| {
        let what = match (&r.error_type, r.behind) {
            (Some(e), _) => e.clone(),
            (None, Some(n)) if n > 0 => format!("{n} behind"),
            _ => String::new(),
        };
        format!(
            "<li data-target=\"{name}\" title=\"{name}: {current}\">{name} <small>{what} {current}</small></li>",
            name = escape(&r.name),
            current = escape(r.current.as_deref().unwrap_or("none")),
            what = escape(&what),
        )
    };
    let (shown, folded) = rows.split_at(open.min(rows.len()));
    body.push_str("<ul class=\"targets\">");
    shown.iter().for_each(|r| body.push_str(&item(r)));
    body.push_str("</ul>");
    if !folded.is_empty() {
        let _ = write!(body, "<details><summary>and {} more</summary><ul class=\"targets\">", folded.len());
        folded.iter().for_each(|r| body.push_str(&item(r)));
        body.push_str("</ul></details>");
    }
}

/// Migrations × environments: when each ran and how long, every bar against `scale_ms`.
fn grid(body: &mut String, g: &Grid, scale_ms: u64) {
    let _ = write!(
        body,
        "<h2>Which migrations ran where</h2><p>Every bar of this page is on one scale: {scale_ms} ms draws {BAR_EM} em long. The time is when the run that applied it finished.</p><table id=\"migrations\"><thead><tr><th>migration</th>"
    );
    for e in &g.environments {
        let _ = write!(body, "<th>{}</th>", escape(e));
    }
    body.push_str("</tr></thead><tbody>");
    for row in &g.migrations {
        let _ = write!(body, "<tr data-tag=\"{0}\"><th>{0}</th>", escape(&row.tag));
        for (environment, cell) in g.environments.iter().zip(&row.cells) {
            let env = escape(environment);
            match cell {
                Cell::Ran { at, duration_ms, slow } => {
                    let _ = write!(
                        body,
                        "<td class=\"ran{slow}\" data-environment=\"{env}\"{data}><span class=\"when\">{at}</span>{bar}<span class=\"ms\">{ms}</span></td>",
                        slow = if *slow { " slow" } else { "" },
                        data = duration_ms.map(|ms| format!(" data-ms=\"{ms}\"")).unwrap_or_default(),
                        at = escape(at),
                        bar = duration_ms.map(|ms| bar(ms, scale_ms, "bar")).unwrap_or_default(),
                        ms = duration_ms.map_or_else(|| " duration not kept".to_string(), |ms| format!(" {ms} ms")),
                    );
                }
                Cell::Applied => {
                    let _ = write!(
                        body,
                        "<td class=\"applied\" data-environment=\"{env}\">applied (when not kept)</td>"
                    );
                }
                Cell::Failed { at, error_type } => {
                    let _ = write!(
                        body,
                        "<td class=\"failed\" data-environment=\"{env}\"><span class=\"when\">{}</span>failed{}</td>",
                        escape(at),
                        error_type.as_ref().map(|e| format!(" ({})", escape(e))).unwrap_or_default()
                    );
                }
                Cell::NotApplied => {
                    let _ = write!(body, "<td class=\"notApplied\" data-environment=\"{env}\">not applied</td>");
                }
            }
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table>");
}

/// Each environment's runs (from the parameter's history), on the page's one scale.
fn timelines(body: &mut String, rows: &[EnvironmentRow], scale_ms: u64) {
    for r in rows {
        let _ = write!(
            body,
            "<section class=\"timeline\" data-environment=\"{0}\"><h2>{0}</h2><ol>",
            escape(&r.environment)
        );
        for run in &r.runs {
            let _ = write!(
                body,
                "<li class=\"{status}\"><span class=\"at\">{at}</span> <span class=\"version\">{version}</span> {bar} <span class=\"ms\">{ms} ms</span></li>",
                status = escape(&run.status),
                at = escape(&run.applied_at),
                version = escape(run.current.as_deref().unwrap_or("none")),
                bar = bar(run.duration_ms, scale_ms, "bar"),
                ms = run.duration_ms,
            );
        }
        body.push_str("</ol></section>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::envs::model::fixtures::{set, state};
    use crate::aws::envs::model::{Discovered, Published, PublishedTarget};
    use crate::aws::envs::view::view;
    use crate::report::Status;

    #[test]
    fn every_bar_of_the_page_is_on_one_scale() {
        let local = set(&[("0000_a", 1), ("0001_b", 2)]);
        let ran = |environment: &str, ms: u64| {
            let mut s = state(environment, Some("0001_b"), Status::Applied, "2026-01-01T00:00:00Z");
            s.duration_ms = ms;
            s.applied = vec!["0001_b".into()];
            s.durations.insert("0001_b".into(), ms);
            Published {
                environment: environment.into(),
                // SSM's parameter history holds the current version too.
                history: vec![s.clone()],
                current: s,
            }
        };
        let found = Discovered {
            environments: vec![ran("dev", 151), ran("staging", 1_015)],
            targets: vec![],
        };
        let page = html(&view(&found, &local), "now");
        // 151 ms in dev draws a seventh of staging's 1,015 ms, not as long (each scaled alone).
        assert!(
            page.contains("data-ms=\"151\"><span class=\"when\">2026-01-01T00:00:00Z</span><span class=\"bar\" style=\"width:1.49em\">"),
            "{page}"
        );
        assert!(
            page.contains("data-ms=\"1015\"><span class=\"when\">2026-01-01T00:00:00Z</span><span class=\"bar\" style=\"width:10.00em\">")
        );
        assert_eq!(
            page.matches("style=\"width:10.00em\"").count(),
            2,
            "staging's cell and its run: the page's longest"
        );
    }

    #[test]
    fn a_long_list_of_targets_folds_after_the_first_ones() {
        let local = set(&[("0000_a", 1), ("0001_b", 2)]);
        let target = |i: usize, status: Status, current: &str| PublishedTarget {
            environment: "prod".into(),
            name: format!("t{i:03}"),
            state: state("prod", Some(current), status, "2026-01-01T00:00:00Z"),
        };
        let targets: Vec<PublishedTarget> = (0..500)
            .map(|i| match i {
                0..=99 => target(i, Status::Failed, "0000_a"),
                100..=119 => target(i, Status::Applied, "0000_a"),
                _ => target(i, Status::UpToDate, "0001_b"),
            })
            .collect();
        let page = html(
            &view(
                &Discovered {
                    environments: vec![],
                    targets,
                },
                &local,
            ),
            "now",
        );
        let failed = &page[page.find("class=\"failed-targets\"").unwrap()..];
        let (open, rest) = failed.split_at(failed.find("<details>").unwrap());
        assert_eq!(open.matches("<li data-target=").count(), OPEN_TARGETS, "the first failed shown");
        assert!(open.contains("data-target=\"t000\"") && rest.starts_with("<details><summary>and 40 more</summary>"));
        assert!(page.contains("<details class=\"other-targets\"><summary>380 up to date or ahead</summary>"));
        assert!(page.contains("<h3>Behind (20)</h3>"));
        assert!(!page.contains("<script"));
    }
}
