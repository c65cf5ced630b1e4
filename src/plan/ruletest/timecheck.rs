//! Checking a virtual-clock run ([`super::timeline`]) against what the test expects: what
//! fired when, what was cancelled, limited, postponed or left pending. Each failure says what
//! happened instead, from the rule's own history ("wait started at +0s …, cancelled at +30h").

use super::timeline::{self, offset, show, ExpectFire, History};
use super::{Expect, RuleTest, TestResult};
use crate::config::Config;
use crate::plan::time::TimeWhat;
use crate::rules::RuleSet;
use crate::template::suggest::suggest;

/// Runs a test on the virtual clock and checks it.
pub fn run_timeline(
    config: &Config,
    file: &std::path::Path,
    test: &RuleTest,
    rule_names: &[&str],
    rules: &RuleSet,
) -> TestResult {
    let failures = match timeline::run(config, file, test, rules) {
        Ok(history) => check(&history, &test.expect, rule_names),
        Err(e) => vec![e],
    };
    TestResult {
        file: file.to_path_buf(),
        name: test.name.clone(),
        failures,
    }
}

fn check(h: &History, expect: &Expect, rule_names: &[&str]) -> Vec<String> {
    let mut failures = unknown(expect, rule_names);
    let known = |n: &String| rule_names.contains(&n.as_str());
    for want in expect.fires.iter().filter(|w| known(&w.rule)) {
        failures.extend(check_fire(h, want));
    }
    for name in expect.fired.iter().filter(|n| known(n)) {
        if !h.fires.iter().any(|f| &f.0 == name) {
            failures.push(format!(
                "expected `{name}` to fire, but it never did: {}",
                h.story(name)
            ));
        }
    }
    for name in expect.not_fired.iter().filter(|n| known(n)) {
        if let Some(f) = h.fires.iter().find(|f| &f.0 == name) {
            failures.push(format!(
                "expected `{name}` not to fire, but it fired at {}",
                show(f.1)
            ));
        }
    }
    let kinds = [
        (
            &expect.cancelled,
            TimeWhat::Cancelled,
            "a timer of",
            "cancelled",
        ),
        (&expect.limited, TimeWhat::Limited, "", "limited"),
        (
            &expect.postponed,
            TimeWhat::Postponed,
            "",
            "postponed by quiet hours",
        ),
    ];
    for (names, what, of, word) in kinds {
        for name in names.iter().filter(|n| known(n)) {
            if !h.notes.iter().any(|n| &n.0 == name && n.2 == what) {
                let subject = format!("{of} `{name}`").trim().to_string();
                failures.push(format!(
                    "expected {subject} to be {word}, but it was not: {}",
                    h.story(name)
                ));
            }
        }
    }
    for name in expect.pending.iter().filter(|n| known(n)) {
        if !h.pending.contains(name) {
            failures.push(format!(
                "expected a timer of `{name}` still pending at the end, but none is: {}",
                h.story(name)
            ));
        }
    }
    failures
}

fn check_fire(h: &History, want: &ExpectFire) -> Vec<String> {
    let name = &want.rule;
    let runs: Vec<_> = h.fires.iter().filter(|f| &f.0 == name).collect();
    let at = match want.at.as_deref().map(offset).transpose() {
        Ok(at) => at,
        Err(e) => return vec![e],
    };
    let when = at.map_or(String::new(), |a| format!(" at {}", show(a)));
    if runs.is_empty() {
        return vec![format!(
            "expected `{name}` to fire{when}, but it never did: {}",
            h.story(name)
        )];
    }
    let Some(run) = runs.iter().find(|f| at.is_none_or(|a| f.1 == a)) else {
        let times: Vec<String> = runs.iter().map(|f| show(f.1)).collect();
        return vec![format!(
            "expected `{name}` to fire{when}, but it fired at {}",
            times.join(", ")
        )];
    };
    let mut failures = Vec::new();
    if let Some(n) = want.events.filter(|n| *n != run.3) {
        failures.push(format!(
            "expected `{name}` to run once over {n} event(s){when}, but its run held {}",
            run.3
        ));
    }
    for (key, needle) in &want.contains {
        let found = run.2.iter().any(|j| {
            j.params.get(key).is_some_and(|v| match v {
                serde_json::Value::String(s) => s.contains(needle.as_str()),
                other => other.to_string().contains(needle.as_str()),
            })
        });
        if !found {
            let actual: Vec<String> = run
                .2
                .iter()
                .filter_map(|j| j.params.get(key).map(|v| v.to_string()))
                .collect();
            failures.push(format!(
                "expected `{name}`{when}: `{key}` to contain {needle:?}, got {}",
                if actual.is_empty() {
                    "no such parameter".into()
                } else {
                    actual.join(", ")
                }
            ));
        }
    }
    failures
}

fn unknown(expect: &Expect, rule_names: &[&str]) -> Vec<String> {
    let mut named: Vec<(&str, &str)> = expect
        .fires
        .iter()
        .map(|f| ("fires", f.rule.as_str()))
        .collect();
    for (key, names) in [
        ("fired", &expect.fired),
        ("not_fired", &expect.not_fired),
        ("cancelled", &expect.cancelled),
        ("limited", &expect.limited),
        ("postponed", &expect.postponed),
        ("pending", &expect.pending),
    ] {
        named.extend(names.iter().map(|n| (key, n.as_str())));
    }
    named
        .into_iter()
        .filter(|(_, n)| !rule_names.contains(n))
        .map(|(key, n)| {
            format!(
                "`{key}` names `{n}`, which is no rule ({})",
                suggest(n, rule_names, "rules")
            )
        })
        .collect()
}
