//! A rule's verdict on one event as the event page and "try a payload" show it: fired, did not
//! fire (the failing condition with its expected and actual value), or its script failed.

use serde::Serialize;

use crate::rules::{Miss, PlannedAction, RuleTrace};

#[derive(Serialize)]
pub struct Verdict {
    pub name: String,
    pub file: String,
    /// `fired`, `missed` or `failed` (its script failed).
    pub state: &'static str,
    pub miss: Option<Condition>,
    pub script_error: Option<String>,
    pub actions: Vec<ActionView>,
}

/// The condition that did not hold.
#[derive(Serialize)]
pub struct Condition {
    /// A `match:` path, or none for `if:` and `enabled:`.
    pub path: Option<String>,
    pub expr: Option<String>,
    pub what: &'static str,
    pub expected: String,
    pub actual: String,
}

#[derive(Serialize)]
pub struct ActionView {
    pub index: usize,
    pub kind: String,
    /// Pretty JSON of the rendered parameters.
    pub params: String,
    pub error: Option<String>,
    /// Why the job would fail live (an empty recipient, …).
    pub problems: Vec<String>,
}

impl Verdict {
    /// `r`'s verdict; its file shown relative to `rules_dir`.
    pub fn of(r: &RuleTrace, script_error: Option<&str>, rules_dir: &std::path::Path) -> Verdict {
        let state = match (r.matched, script_error) {
            (true, None) => "fired",
            (true, Some(_)) => "failed",
            (false, _) => "missed",
        };
        Verdict {
            name: r.rule.clone(),
            file: r
                .file
                .strip_prefix(rules_dir)
                .unwrap_or(&r.file)
                .display()
                .to_string(),
            state,
            miss: r.miss.as_ref().map(condition),
            // `file:line:col: reason`, the file shown as the rules page shows it.
            script_error: script_error.map(|e| {
                let prefix = format!("{}/", rules_dir.display());
                e.strip_prefix(&prefix).unwrap_or(e).to_string()
            }),
            actions: r.actions.iter().map(action).collect(),
        }
    }
}

fn condition(m: &Miss) -> Condition {
    let (path, expr, what, expected, actual) = match m {
        Miss::Disabled => (None, None, "enabled", "true".into(), "false".into()),
        Miss::Condition {
            path,
            expected,
            actual,
        } => (
            Some(path.clone()),
            None,
            "match",
            expected.clone(),
            match actual {
                serde_json::Value::Null => "null (no such field)".into(),
                v => v.to_string(),
            },
        ),
        Miss::IfFalse { expr } => (
            None,
            Some(expr.clone()),
            "if",
            "true".into(),
            "false".into(),
        ),
        Miss::IfError { expr, error } => (
            None,
            Some(expr.clone()),
            "if",
            "true".into(),
            format!("error: {error}"),
        ),
    };
    Condition {
        path,
        expr,
        what,
        expected,
        actual,
    }
}

fn action(a: &PlannedAction) -> ActionView {
    let kind = serde_json::to_value(&a.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let (params, error, problems) = match &a.params {
        Ok(p) => (
            serde_json::to_string_pretty(p).unwrap_or_default(),
            None,
            crate::plan::ruletest::job_problems(&kind, p),
        ),
        Err(e) => (String::new(), Some(e.clone()), Vec::new()),
    };
    ActionView {
        index: a.index,
        kind,
        params,
        error,
        problems,
    }
}
