//! Before `plan` or `migrate` runs a migration here, what it cost in the other environments:
//! a warning for one that took far longer somewhere (staging 10× dev) or very long anywhere.

use aws_sdk_ssm::Client;

use super::model::Published;

/// A migration slower than this somewhere is worth a look before it runs elsewhere.
pub(super) const SLOW_MS: u64 = 1_000;
/// ... when it was this many times slower there than in the fastest environment.
pub(super) const SLOWER_BY: u64 = 10;
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
    // Environments only: the function's role reads no fleet target's state.
    match super::discovery::read(client, &root, true, false).await {
        Ok(published) => {
            let others: Vec<Published> = published
                .environments
                .into_iter()
                .filter(|p| p.environment != report.environment)
                .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::envs::model::fixtures::state;
    use crate::report::Status;

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
}
