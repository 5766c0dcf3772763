//! `envs`: where every environment stands, read back from the state each one publishes in SSM
//! (`<prefix>/<env>/migrations/state`) and its parameter history, against the local migration
//! set: one row per environment, as an aligned table, JSON, or a self-contained HTML page.

use std::fmt::Write as _;

use aws_sdk_ssm::types::ParameterStringFilter;
use aws_sdk_ssm::Client;
use serde::Serialize;

use crate::aws::state::{EnvironmentState, StateStoreError};
use crate::migrations::source::MigrationSet;

const STATE_SUFFIX: &str = "/migrations/state";

/// One environment's published states: the current one and, oldest first, the earlier ones.
pub struct Published {
    pub environment: String,
    pub current: EnvironmentState,
    pub history: Vec<EnvironmentState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentRow {
    pub environment: String,
    pub current: Option<String>,
    /// Local migrations it lacks; absent when its current version is not in the local set.
    pub behind: Option<usize>,
    /// Its current version is not in the local set: it runs a newer build than this checkout.
    pub ahead: bool,
    /// Its state was written before the newest local migration was generated.
    pub stale: bool,
    pub status: String,
    pub applied_at: String,
    pub duration_ms: u64,
    /// `functionVersion` of the Lambda that ran it, or `cli`.
    pub ran_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Earlier runs, oldest first (from the parameter's history).
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub applied_at: String,
    pub current: Option<String>,
    pub status: String,
    pub duration_ms: u64,
}

fn ssm_error(operation: &'static str, name: &str, e: impl std::error::Error) -> StateStoreError {
    StateStoreError::Ssm {
        operation,
        name: name.to_string(),
        reason: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
    }
}

/// Every environment under `prefix` (e.g. `/wishlist`), with its history when `with_history`.
///
/// The names come from DescribeParameters, which returns no values, and only the states' values
/// are read: a role can then be granted `<prefix>/*/migrations/state` and nothing else under the
/// prefix (GetParametersByPath would hand it every parameter below, another environment's
/// settings and secrets included).
pub async fn read(client: &Client, prefix: &str, with_history: bool) -> Result<Vec<Published>, StateStoreError> {
    let prefix = prefix.trim_end_matches('/');
    let begins = format!("{prefix}/");
    let filter = ParameterStringFilter::builder()
        .key("Name")
        .option("BeginsWith")
        .values(&begins)
        .build()
        .map_err(|e| ssm_error("DescribeParameters", &begins, e))?;
    let mut names = Vec::new();
    let mut pages = client.describe_parameters().parameter_filters(filter).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ssm_error("DescribeParameters", &begins, e))?;
        for name in page.parameters().iter().filter_map(|p| p.name()) {
            if let Some(environment) = name.strip_suffix(STATE_SUFFIX).and_then(|rest| rest.rsplit('/').next()) {
                names.push((name.to_string(), environment.to_string()));
            }
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for (name, environment) in names {
        let Some(current) = state(client, &name).await? else {
            continue;
        };
        let history = if with_history { history(client, &name).await? } else { Vec::new() };
        out.push(Published {
            environment,
            current,
            history,
        });
    }
    out.sort_by(|a, b| a.environment.cmp(&b.environment));
    Ok(out)
}

/// One state parameter's value; `None` when it is gone or not a migration state.
async fn state(client: &Client, name: &str) -> Result<Option<EnvironmentState>, StateStoreError> {
    let output = match client.get_parameter().name(name).send().await {
        Ok(o) => o,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => return Ok(None),
        Err(e) => return Err(ssm_error("GetParameter", name, e)),
    };
    let Some(value) = output.parameter().and_then(|p| p.value()) else {
        return Ok(None);
    };
    match serde_json::from_str::<EnvironmentState>(value) {
        Ok(state) => Ok(Some(state)),
        Err(_) => {
            tracing::warn!(parameter = %name, "not a migration state; skipped");
            Ok(None)
        }
    }
}

/// `read` through each named AWS profile (environments in other accounts), or the default
/// credentials when none is named; an environment seen through two profiles is shown once. The
/// error names the profile it came through.
pub async fn read_profiles(profiles: &[String], prefix: &str, with_history: bool) -> Result<Vec<Published>, (String, StateStoreError)> {
    let accounts: Vec<Option<&str>> = match profiles {
        [] => vec![None],
        named => named.iter().map(|p| Some(p.as_str())).collect(),
    };
    let mut published: Vec<Published> = Vec::new();
    for profile in accounts {
        let found = read(&Client::new(&super::sdk_config(profile).await), prefix, with_history)
            .await
            .map_err(|e| (profile.unwrap_or("default").to_string(), e))?;
        for f in found {
            if !published.iter().any(|p| p.environment == f.environment) {
                published.push(f);
            }
        }
    }
    published.sort_by(|a, b| a.environment.cmp(&b.environment));
    Ok(published)
}

async fn history(client: &Client, name: &str) -> Result<Vec<EnvironmentState>, StateStoreError> {
    let mut states = Vec::new();
    let mut pages = client.get_parameter_history().name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ssm_error("GetParameterHistory", name, e))?;
        states.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.value())
                .filter_map(|v| serde_json::from_str::<EnvironmentState>(v).ok()),
        );
    }
    Ok(states)
}

/// The rows, against the local migration set.
pub fn rows(published: &[Published], local: &MigrationSet) -> Vec<EnvironmentRow> {
    let newest_local_ms = local.migrations.last().map(|m| m.created_at);
    published
        .iter()
        .map(|p| {
            let s = &p.current;
            let position = match &s.current {
                None => Some(0),
                Some(tag) => local.migrations.iter().position(|m| &m.tag == tag).map(|i| i + 1),
            };
            let applied_ms = time::OffsetDateTime::parse(&s.applied_at, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .ok();
            EnvironmentRow {
                environment: p.environment.clone(),
                current: s.current.clone(),
                behind: position.map(|applied| local.migrations.len() - applied),
                ahead: position.is_none(),
                stale: matches!((applied_ms, newest_local_ms), (Some(at), Some(newest)) if at < newest),
                status: status_name(s),
                applied_at: s.applied_at.clone(),
                duration_ms: s.duration_ms,
                ran_by: s.function_version.clone(),
                error_type: s.error.as_ref().map(|e| e.error_type.clone()),
                runs: p
                    .history
                    .iter()
                    .map(|h| Run {
                        applied_at: h.applied_at.clone(),
                        current: h.current.clone(),
                        status: status_name(h),
                        duration_ms: h.duration_ms,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// A migration slower than this somewhere is worth a look before it runs elsewhere.
const SLOW_MS: u64 = 1_000;
/// ... when it was this many times slower there than in the fastest environment.
const SLOWER_BY: u64 = 10;
/// ... or slower than this, wherever it ran.
const VERY_SLOW_MS: u64 = 30_000;

/// Warnings for the migrations `tags` about to run in `environment`: one per migration that took
/// far longer in another environment than in the fastest one (staging 10× dev), or took very
/// long anywhere. Each environment's newest recorded duration counts (current state first, then
/// its history, newest first).
pub fn duration_warnings(published: &[Published], environment: &str, tags: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for tag in tags {
        let mut seen: Vec<(&str, u64)> = published
            .iter()
            .filter_map(|p| {
                std::iter::once(&p.current)
                    .chain(p.history.iter().rev())
                    .find_map(|s| s.durations.get(tag))
                    .map(|ms| (p.environment.as_str(), *ms))
            })
            .collect();
        seen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let (Some(&(slow_env, slowest)), Some(&(_, fastest))) = (seen.first(), seen.last()) else {
            continue;
        };
        let far_above = seen.len() > 1 && slowest >= SLOW_MS && slowest >= SLOWER_BY * fastest.max(1);
        if !(far_above || slowest >= VERY_SLOW_MS) {
            continue;
        }
        let elsewhere: Vec<String> = seen.iter().skip(1).map(|(e, ms)| format!("{e} {ms} ms")).collect();
        let others = if elsewhere.is_empty() {
            String::new()
        } else {
            format!(" ({})", elsewhere.join(", "))
        };
        out.push(format!(
            "{tag} took {slowest} ms in {slow_env}{others}: expect {environment} to take as long or longer, on its larger tables; a table rewrite or a plain index build blocks writes for that long (BENCHMARKS.md part 5)"
        ));
    }
    out
}

/// The duration warnings for what `report` (a `plan` or `migrate`) runs or would run, from the
/// other environments under the same root; a failure to read them is itself a warning.
pub async fn warn_about_durations(client: &Client, state_prefix: &str, report: &mut crate::report::Report) {
    let Some(root) = root_prefix(state_prefix, &report.environment) else {
        return;
    };
    let tags: Vec<String> = report
        .applied
        .iter()
        .map(|a| a.tag.clone())
        .chain(report.pending.iter().map(|p| p.tag.clone()))
        .collect();
    if tags.is_empty() {
        return;
    }
    match read(client, &root, true).await {
        Ok(published) => {
            let others: Vec<Published> = published.into_iter().filter(|p| p.environment != report.environment).collect();
            let environment = report.environment.clone();
            report.warnings.extend(duration_warnings(&others, &environment, &tags));
        }
        Err(e) => report.warnings.push(format!(
            "the other environments' durations could not be read ({e}); no comparison made"
        )),
    }
}

/// The environments' root prefix in SSM from one environment's state prefix
/// (`/wishlist/prod/migrations` → `/wishlist`), when it has that shape.
pub fn root_prefix(state_prefix: &str, environment: &str) -> Option<String> {
    state_prefix
        .trim_end_matches('/')
        .strip_suffix(&format!("/{environment}/migrations"))
        .map(str::to_string)
}

fn status_name(s: &EnvironmentState) -> String {
    serde_json::to_value(s.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn behind_text(r: &EnvironmentRow) -> String {
    match r.behind {
        _ if r.ahead => "ahead".to_string(),
        Some(n) => n.to_string(),
        None => "?".to_string(),
    }
}

/// The aligned table; `color` adds ANSI colours (a terminal, and no `NO_COLOR`).
pub fn table(rows: &[EnvironmentRow], color: bool) -> String {
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One self-contained page (no script, no network): the table, and per environment its runs.
pub fn html(rows: &[EnvironmentRow], generated_at: &str) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<table id=\"environments\"><thead><tr><th>environment</th><th>current</th><th>behind</th><th>status</th><th>applied at</th><th>ms</th><th>ran by</th></tr></thead><tbody>"
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
    for r in rows {
        let longest = r.runs.iter().map(|run| run.duration_ms).max().unwrap_or(1).max(1);
        let _ = write!(
            body,
            "<section class=\"timeline\" data-environment=\"{0}\"><h2>{0}</h2><ol>",
            escape(&r.environment)
        );
        for run in &r.runs {
            let width = (run.duration_ms * 100 / longest).max(1);
            let _ = write!(
                body,
                "<li class=\"{status}\"><span class=\"at\">{at}</span> <span class=\"version\">{version}</span> <span class=\"bar\" style=\"width:{width}%\"></span> <span class=\"ms\">{ms} ms</span></li>",
                status = escape(&run.status),
                at = escape(&run.applied_at),
                version = escape(run.current.as_deref().unwrap_or("none")),
                ms = run.duration_ms,
            );
        }
        body.push_str("</ol></section>");
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>wishlist migrations by environment</title><style>\
body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}\
th,td{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}tr.failed td{{color:#b00}}\
.timeline ol{{list-style:none;padding:0}}.timeline li{{margin:2px 0;white-space:nowrap}}\
.bar{{display:inline-block;height:10px;background:#4a7;vertical-align:middle;min-width:2px;max-width:50%}}\
li.failed .bar{{background:#c33}}</style></head><body><h1>Migrations by environment</h1>\
<p>Generated {}.</p>{body}</body></html>\n",
        escape(generated_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    fn state(environment: &str, current: Option<&str>, status: Status, applied_at: &str) -> EnvironmentState {
        EnvironmentState {
            environment: environment.into(),
            current: current.map(str::to_string),
            status,
            last_action: "migrate".into(),
            applied_at: applied_at.into(),
            duration_ms: 42,
            applied: vec![],
            applied_count: 0,
            run_id: "r".into(),
            pending: 0,
            function_version: "7".into(),
            durations: Default::default(),
            error: None,
            recovery_point: None,
            cfn_request_id: None,
        }
    }

    fn set(tags: &[(&str, i64)]) -> MigrationSet {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        let entries: Vec<String> = tags
            .iter()
            .enumerate()
            .map(|(i, (t, w))| format!(r#"{{"idx":{i},"version":"7","when":{w},"tag":"{t}","breakpoints":true}}"#))
            .collect();
        std::fs::write(
            dir.path().join("meta/_journal.json"),
            format!(r#"{{"version":"7","dialect":"postgresql","entries":[{}]}}"#, entries.join(",")),
        )
        .unwrap();
        for (t, _) in tags {
            std::fs::write(dir.path().join(format!("{t}.sql")), "SELECT 1;").unwrap();
        }
        crate::migrations::source::MigrationSource::Dir(dir.path().to_path_buf())
            .load()
            .unwrap()
    }

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
        let plain = table(&r, false);
        assert!(!plain.contains('\x1b'), "no colour unless asked");
        assert!(plain.lines().nth(2).unwrap().contains("stale"), "{plain}");
        assert!(table(&r, true).contains("\x1b[31m"), "a failed environment in red");
        let page = html(&r, "now");
        assert!(page.contains("data-environment=\"qa\"") && page.contains("0007_newer"));
        assert!(!page.contains("<script"), "self-contained, no script");
    }

    #[test]
    fn a_migration_far_slower_elsewhere_is_warned_about_before_it_runs() {
        let with = |env: &str, ms: u64| {
            let mut s = state(env, Some("0001_b"), Status::Applied, "2026-01-01T00:00:00Z");
            s.durations.insert("0001_b".into(), ms);
            Published {
                environment: env.into(),
                current: s,
                history: vec![],
            }
        };
        let tags = vec!["0001_b".to_string(), "0002_c".to_string()];
        let warnings = duration_warnings(&[with("dev", 800), with("staging", 9_200)], "prod", &tags);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("0001_b took 9200 ms in staging (dev 800 ms): expect prod"),
            "{}",
            warnings[0]
        );
        // Alike everywhere, or fast everywhere: nothing to say.
        assert!(duration_warnings(&[with("dev", 2_000), with("staging", 3_000)], "prod", &tags).is_empty());
        assert!(duration_warnings(&[with("dev", 5), with("staging", 900)], "prod", &tags).is_empty());
        // Very slow where it ran at all.
        assert_eq!(duration_warnings(&[with("staging", 45_000)], "prod", &tags).len(), 1);
        // The newest duration of an environment is in its history when a later run applied others.
        let mut later = with("dev", 1);
        later.current.durations.clear();
        later.history = vec![with("dev", 700).current];
        let w = duration_warnings(&[later, with("staging", 8_000)], "prod", &tags);
        assert!(w[0].contains("(dev 700 ms)"), "{w:?}");
        assert_eq!(root_prefix("/wishlist/prod/migrations", "prod").as_deref(), Some("/wishlist"));
        assert_eq!(root_prefix("/custom/state", "prod"), None);
    }

    #[test]
    fn html_escapes_what_it_shows() {
        let local = set(&[("0000_a", 1)]);
        let published = vec![Published {
            environment: "dev".into(),
            current: state("dev", Some("<b>0000</b>"), Status::Applied, "2026-01-01T00:00:00Z"),
            history: vec![],
        }];
        let page = html(&rows(&published, &local), "now");
        assert!(page.contains("&lt;b&gt;0000&lt;/b&gt;") && !page.contains("<b>0000"));
    }
}
