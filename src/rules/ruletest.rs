//! Rule tests: `tests:` lists inside rule files (or files in `rules_dir/tests/`) that name a
//! payload and the outcome a shop owner expects. `storeflow test` runs them without side effects.
//!
//! ```yaml
//! tests:
//!   - name: shipped orders email the buyer
//!     source: selldone
//!     fixture: fixtures/SentOrder.json      # relative to this file; or `payload:` inline
//!     expect:
//!       fired: [email-customer-when-shipped]
//!       not_fired: [slack-big-paid-orders]
//!       actions:
//!         - rule: email-customer-when-shipped
//!           kind: email
//!           equals: { to: buyer@example.com }
//!           contains: { subject: on its way }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Evaluation;
use crate::config::Config;
use crate::event::{Event, Timestamp};
use crate::sources::{self, verify};

/// The top level of a file that holds tests (rule files may hold `rules:` too).
#[derive(Debug, Deserialize)]
struct TestFile {
    #[serde(default)]
    tests: Vec<RuleTest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTest {
    pub name: String,
    pub source: String,
    /// The platform's event name (Sellix `X-Sellix-Event`); default: the body's `event`.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub fixture: Option<PathBuf>,
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub fired: Vec<String>,
    #[serde(default)]
    pub not_fired: Vec<String>,
    #[serde(default)]
    pub actions: Vec<ExpectAction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectAction {
    pub rule: String,
    /// Which of the rule's actions: by kind (the first of that kind) and/or position (0-based).
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub index: Option<usize>,
    /// Rendered parameters that must be exactly equal.
    #[serde(default)]
    pub equals: BTreeMap<String, serde_json::Value>,
    /// Rendered parameters that must contain the given text.
    #[serde(default)]
    pub contains: BTreeMap<String, String>,
}

/// One test's outcome.
#[derive(Debug)]
pub struct TestResult {
    pub file: PathBuf,
    pub name: String,
    /// Empty when the test passed.
    pub failures: Vec<String>,
}

/// The tests found in `rules_dir/*.yaml` and `rules_dir/tests/*.yaml`, with their file.
pub fn discover(rules_dir: &Path) -> Result<Vec<(PathBuf, RuleTest)>, String> {
    let mut files = yaml_files(rules_dir);
    files.extend(yaml_files(&rules_dir.join("tests")));
    let mut found = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed: TestFile = serde_saphyr::from_str(&text).map_err(|e| {
            let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = crate::config::yaml_error_message(&e.to_string());
            format!("{}:{line}:{col}: {message}", file.display())
        })?;
        found.extend(parsed.tests.into_iter().map(|t| (file.clone(), t)));
    }
    Ok(found)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    files
}

/// Runs one test against `rules`.
/// Runs one test; `evaluate` produces what the rules decide for the event (the CLI passes one
/// that also runs scripts and plugins into their intents, so tests can expect those too).
pub fn run(
    config: &Config,
    file: &Path,
    test: &RuleTest,
    evaluate: &dyn Fn(&Event) -> Evaluation,
) -> TestResult {
    let failures = match event_for(config, file, test) {
        Ok(event) => check(&evaluate(&event), &test.expect),
        Err(e) => vec![e],
    };
    TestResult {
        file: file.to_path_buf(),
        name: test.name.clone(),
        failures,
    }
}

fn event_for(config: &Config, file: &Path, test: &RuleTest) -> Result<Event, String> {
    let body = match (&test.fixture, &test.payload) {
        (Some(fixture), None) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(fixture);
            std::fs::read(&path)
                .map_err(|e| format!("cannot read fixture {}: {e}", path.display()))?
        }
        (None, Some(payload)) => payload.to_string().into_bytes(),
        _ => return Err("give exactly one of `fixture:` or `payload:`".into()),
    };
    let registry = sources::registry(config);
    let source = registry.get(&test.source).ok_or_else(|| {
        format!(
            "unknown source `{}`; use one of: {}",
            test.source,
            registry.names().join(", ")
        )
    })?;
    let verified = verify::local_file(body.into(), test.event.clone());
    source
        .normalize(&verified, Timestamp::now())
        .map(|i| i.event)
        .map_err(|e| e.to_string())
}

/// Every way `evaluation` differs from `expect`.
pub fn check(evaluation: &Evaluation, expect: &Expect) -> Vec<String> {
    let mut failures = Vec::new();
    let trace = |name: &str| evaluation.rules.iter().find(|r| r.rule == name);
    for name in &expect.fired {
        match trace(name) {
            Some(r) if r.matched => {}
            Some(r) => failures.push(format!("expected `{name}` to fire, but it did not: {}", r.miss.as_ref().map_or("no reason recorded".into(), |m| m.to_string()))),
            None => failures.push(format!("expected `{name}` to fire, but it does not listen to this event (or does not exist)")),
        }
    }
    for name in &expect.not_fired {
        if trace(name).is_some_and(|r| r.matched) {
            failures.push(format!("expected `{name}` not to fire, but it did"));
        }
    }
    for want in &expect.actions {
        failures.extend(check_action(evaluation, want));
    }
    failures
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
        want.kind.as_ref().is_none_or(|k| &a.kind == k) && want.index.is_none_or(|i| a.index == i)
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
        let actual = params.get(key).unwrap_or(&serde_json::Value::Null);
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
fn loosely_equal(actual: &serde_json::Value, expected: &serde_json::Value) -> bool {
    actual == expected || (!expected.is_string() && text_of(actual) == text_of(expected))
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
