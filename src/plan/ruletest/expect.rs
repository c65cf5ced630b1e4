//! Comparing what the rules did with what a rule test expects, and finding the jobs that would
//! fail live even though no test asked about them.

use serde_json::Value as J;

use super::{Answer, Expect, ExpectAction, Outcome};
use crate::rules::{actions, Evaluation};
use crate::template::suggest::suggest;

/// Every way `outcome` differs from `expect`, then every planned job that would fail live.
/// `rule_names` are the rules that exist: a name in `expect` that is none of them fails.
pub fn check(outcome: &Outcome, expect: &Expect, rule_names: &[&str]) -> Vec<String> {
    let mut failures = unknown_names(expect, rule_names);
    let evaluation = &outcome.evaluation;
    let trace = |name: &str| evaluation.rules.iter().find(|r| r.rule == name);
    for name in expect
        .fired
        .iter()
        .filter(|n| rule_names.contains(&n.as_str()))
    {
        match trace(name) {
            Some(r) if r.matched => {
                if let Some(error) = outcome.script_errors.get(name) {
                    failures.push(format!(
                        "expected `{name}` to fire, but its script failed, so it planned nothing: {error}"
                    ));
                }
            }
            Some(r) => failures.push(format!(
                "expected `{name}` to fire, but it did not: {}",
                r.miss
                    .as_ref()
                    .map_or("no reason recorded".into(), |m| m.to_string())
            )),
            None => failures.push(format!(
                "expected `{name}` to fire, but it does not listen to this event"
            )),
        }
    }
    for name in &expect.not_fired {
        if trace(name).is_some_and(|r| r.matched) {
            failures.push(format!("expected `{name}` not to fire, but it did"));
        }
    }
    for want in expect
        .actions
        .iter()
        .filter(|a| rule_names.contains(&a.rule.as_str()))
    {
        failures.extend(check_action(evaluation, want));
    }
    failures.extend(check_answer(outcome, expect));
    failures.extend(live_failures(outcome));
    failures
}

/// Names in `fired`, `not_fired` and `actions` that are no rule: a typo would otherwise make
/// `not_fired` pass forever.
fn unknown_names(expect: &Expect, rule_names: &[&str]) -> Vec<String> {
    let listed = [("fired", &expect.fired), ("not_fired", &expect.not_fired)];
    let mut named: Vec<(&str, &str)> = listed
        .iter()
        .flat_map(|(key, names)| names.iter().map(move |n| (*key, n.as_str())))
        .collect();
    named.extend(expect.actions.iter().map(|a| ("actions", a.rule.as_str())));
    named
        .into_iter()
        .filter(|(_, name)| !rule_names.contains(name))
        .map(|(key, name)| {
            format!(
                "`{key}` names `{name}`, which is no rule ({})",
                suggest(name, rule_names, "rules")
            )
        })
        .collect()
}

fn check_answer(outcome: &Outcome, expect: &Expect) -> Vec<String> {
    if expect.answer.is_none() && expect.answer_contains.is_none() {
        return Vec::new();
    }
    let body = match &outcome.answer {
        Answer::NoScript => return vec![
            "expected a dynamic-product answer, but no matching rule has a script that answers this event (it must be `sellix/product:dynamic`)".into(),
        ],
        Answer::Failed(e) | Answer::TimedOut(e) => return vec![format!("expected a dynamic-product answer, but the script failed: {e}")],
        Answer::Produced(body) => body,
    };
    let mut failures = Vec::new();
    if let Some(want) = expect.answer.as_ref().filter(|w| *w != body) {
        failures.push(format!("answer: expected {want:?}, got {body:?}"));
    }
    if let Some(want) = expect
        .answer_contains
        .as_ref()
        .filter(|w| !body.contains(w.as_str()))
    {
        failures.push(format!(
            "answer: expected to contain {want:?}, got {body:?}"
        ));
    }
    failures
}

/// What would fail live among the rules that fired: a failed script, a job with a template
/// error or with a required parameter that renders empty.
fn live_failures(outcome: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    for r in outcome.evaluation.matched() {
        if let Some(error) = outcome.script_errors.get(&r.rule) {
            failures.push(format!(
                "`{}` fired but its script failed, so it would do nothing: {error}",
                r.rule
            ));
        }
        for a in &r.actions {
            let what = format!("`{}` action {} ({})", r.rule, a.index, a.kind);
            let problems = match &a.params {
                Ok(params) => job_problems(a.kind.name(), params),
                Err(e) => vec![format!("template error: {e}")],
            };
            failures.extend(problems.into_iter().map(|p| format!("{what}: {p}")));
        }
    }
    failures
}

/// Why a built-in action's rendered parameters cannot be sent: each required parameter that
/// renders empty (`required \`to\` renders empty`). Plugins and unknown kinds pass.
pub fn job_problems(kind: &str, params: &J) -> Vec<String> {
    let Some(spec) = actions::spec(kind) else {
        return Vec::new();
    };
    spec.required
        .iter()
        .filter_map(|group| {
            let given: Vec<(&str, &J)> = group
                .iter()
                .filter_map(|p| Some((*p, params.get(*p)?)))
                .collect();
            if given.iter().any(|(_, v)| !is_empty(v)) {
                return None;
            }
            let names = group.join("`/`");
            Some(match given.first() {
                Some((name, _)) if given.len() == 1 => format!(
                    "required `{name}` renders empty: sending would fail (check the template's fields, or guard the rule with `if:`)"
                ),
                Some(_) => format!("`{names}` all render empty: sending would fail"),
                None => format!("required `{names}` is missing: sending would fail"),
            })
        })
        .collect()
}

fn is_empty(v: &J) -> bool {
    match v {
        J::Null => true,
        J::String(s) => s.trim().is_empty(),
        J::Array(a) => a.is_empty(),
        J::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn check_action(evaluation: &Evaluation, want: &ExpectAction) -> Vec<String> {
    let Some(rule) = evaluation
        .rules
        .iter()
        .find(|r| r.rule == want.rule && r.matched)
    else {
        return vec![format!(
            "expected actions of `{}`, but the rule did not fire",
            want.rule
        )];
    };
    let Some(action) = rule.actions.iter().find(|a| {
        want.kind.as_ref().is_none_or(|k| a.kind.name() == k)
            && want.index.is_none_or(|i| a.index == i)
    }) else {
        return vec![format!(
            "`{}` has no action matching kind {:?} index {:?}",
            want.rule, want.kind, want.index
        )];
    };
    let what = format!("`{}` action {} ({})", want.rule, action.index, action.kind);
    let params = match &action.params {
        Ok(p) => p,
        Err(e) => return vec![format!("{what}: template error: {e}")],
    };
    let mut failures = Vec::new();
    for (key, expected) in &want.equals {
        let actual = params.get(key).unwrap_or(&J::Null);
        if !loosely_equal(actual, expected) {
            failures.push(format!("{what} `{key}`: expected {expected}, got {actual}"));
        }
    }
    for (key, needle) in &want.contains {
        let actual = params.get(key).map(text_of).unwrap_or_default();
        if !actual.contains(needle.as_str()) {
            failures.push(format!(
                "{what} `{key}`: expected to contain {needle:?}, got {actual:?}"
            ));
        }
    }
    failures
}

/// Rendered parameters are text; `equals: { total: 20 }` should still match "20".
fn loosely_equal(actual: &J, expected: &J) -> bool {
    actual == expected || (!expected.is_string() && text_of(actual) == text_of(expected))
}

fn text_of(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::rules::{PlannedAction, RuleTrace};

    fn outcome(matched: bool, params: J) -> Outcome {
        let trace = RuleTrace {
            rule: "mail".into(),
            file: "r.yaml".into(),
            matched,
            miss: None,
            actions: vec![PlannedAction {
                index: 0,
                kind: "email".into(),
                params: Ok(params),
            }],
        };
        Outcome {
            evaluation: Evaluation {
                rules: vec![trace],
                not_listening: 0,
            },
            script_errors: BTreeMap::new(),
            answer: Answer::NoScript,
        }
    }

    fn expect(yaml: &str) -> Expect {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const GOOD: &str = r#"{"to": "a@example.com", "subject": "s", "body": "b"}"#;

    #[test]
    fn regression_not_fired_with_an_unknown_rule_name_fails() {
        let o = outcome(false, serde_json::from_str(GOOD).unwrap());
        let failures = check(&o, &expect("not_fired: [mial]"), &["mail"]);
        assert_eq!(
            failures,
            ["`not_fired` names `mial`, which is no rule (did you mean `mail`?)"]
        );
        assert!(check(&o, &expect("not_fired: [mail]"), &["mail"]).is_empty());
    }

    #[test]
    fn regression_fired_with_a_failed_script_fails() {
        let mut o = outcome(true, serde_json::from_str(GOOD).unwrap());
        o.evaluation.rules[0].actions.clear();
        o.script_errors
            .insert("mail".into(), "r.rhai:1:5: boom".into());
        let failures = check(&o, &expect("fired: [mail]"), &["mail"]);
        assert!(
            failures[0].contains("its script failed, so it planned nothing: r.rhai:1:5: boom"),
            "{failures:?}"
        );
    }

    #[test]
    fn regression_required_parameter_rendering_empty_fails_the_test() {
        let o = outcome(true, json!({"to": " ", "subject": "s", "body": "b"}));
        let failures = check(&o, &expect("fired: [mail]"), &["mail"]);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with("`mail` action 0 (email): required `to` renders empty"),
            "{failures:?}"
        );
        let problems = job_problems("email", &json!({"to": "x", "subject": "s", "html": ""}));
        assert!(
            problems[0].starts_with("required `html` renders empty"),
            "{problems:?}"
        );
        let problems = job_problems("email", &json!({"to": "x", "subject": "s"}));
        assert_eq!(
            problems,
            ["required `body`/`html`/`template` is missing: sending would fail"]
        );
        assert!(job_problems("discord_plugin", &json!({})).is_empty());
    }

    #[test]
    fn answers_are_compared_exactly_or_by_containment() {
        let mut o = outcome(false, json!({}));
        o.answer = Answer::Produced("KEY-1".into());
        assert!(check(&o, &expect("answer: KEY-1"), &["mail"]).is_empty());
        assert!(check(&o, &expect("answer_contains: KEY-"), &["mail"]).is_empty());
        assert_eq!(
            check(&o, &expect("answer: KEY-2"), &["mail"]),
            [r#"answer: expected "KEY-2", got "KEY-1""#]
        );
        o.answer = Answer::NoScript;
        assert!(check(&o, &expect("answer: x"), &["mail"])[0].contains("no matching rule"));
    }
}
