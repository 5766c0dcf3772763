//! Row-level security policies, keyed on what they do: kind, command, sorted roles, and canonical
//! USING and WITH CHECK expressions.

use crate::db::catalog;
use crate::schema::expression;
use crate::schema::snapshot;

use super::ident::unquote;
use super::shown::{Probe, Shown};

fn policy_key(permissive: bool, command: &str, roles: &[String], using: Option<&str>, with_check: Option<&str>) -> String {
    let mut s = format!(
        "AS {} FOR {} TO {}",
        if permissive { "PERMISSIVE" } else { "RESTRICTIVE" },
        command.to_ascii_uppercase(),
        roles.join(", ")
    );
    if let Some(u) = using {
        s.push_str(&format!(" USING {}", expression::canonical(u)));
    }
    if let Some(w) = with_check {
        s.push_str(&format!(" WITH CHECK {}", expression::canonical(w)));
    }
    s
}

fn policy_probe(permissive: bool, command: &str, roles: &[String], using: Option<&str>, with_check: Option<&str>) -> Probe {
    let mut frame = policy_key(permissive, command, roles, None, None);
    let mut expressions = Vec::new();
    for (clause, expr) in [("USING", using), ("WITH CHECK", with_check)] {
        if let Some(e) = expr {
            frame.push_str(&format!(" {clause} ?"));
            expressions.push(e.to_string());
        }
    }
    Probe { frame, expressions }
}

pub(super) fn expected_policy_probe(p: &snapshot::Policy) -> Probe {
    let (permissive, command, roles) = expected_policy_frame(p);
    policy_probe(permissive, &command, &roles, p.using.as_deref(), p.with_check.as_deref())
}

pub(super) fn actual_policy_probe(p: &catalog::Policy) -> Probe {
    let mut roles = p.roles.clone();
    roles.sort();
    policy_probe(p.permissive, &p.command, &roles, p.using.as_deref(), p.with_check.as_deref())
}

fn expected_policy_frame(p: &snapshot::Policy) -> (bool, String, Vec<String>) {
    let mut roles: Vec<String> =
        p.to.clone()
            .unwrap_or_else(|| vec!["public".into()])
            .iter()
            .map(|r| unquote(r))
            .collect();
    roles.sort();
    let permissive = p.kind.as_deref().is_none_or(|k| k.eq_ignore_ascii_case("permissive"));
    (permissive, p.command.clone().unwrap_or_else(|| "ALL".into()), roles)
}

pub(super) fn expected_policy(p: &snapshot::Policy) -> Shown {
    let (permissive, command, roles) = expected_policy_frame(p);
    Shown::same(policy_key(
        permissive,
        &command,
        &roles,
        p.using.as_deref(),
        p.with_check.as_deref(),
    ))
}

pub(super) fn actual_policy(p: &catalog::Policy) -> Shown {
    let mut roles = p.roles.clone();
    roles.sort();
    Shown::same(policy_key(
        p.permissive,
        &p.command,
        &roles,
        p.using.as_deref(),
        p.with_check.as_deref(),
    ))
}
