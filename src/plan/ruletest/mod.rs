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
//!
//! Beyond what a test expects, every test also fails when a rule that fired would fail live:
//! its script failed, or one of its jobs has a template error or a required parameter that
//! renders empty (an email to `""` is a dead letter). Names in `fired`, `not_fired` and
//! `actions` must be rules that exist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Answer;
use crate::config::Config;
use crate::model::actions::ActionKind;
use crate::model::event::{Event, Timestamp};
use crate::rules::{Evaluation, PlannedAction, RuleSet};
use crate::sources::{self, verify};
pub use expect::{check, job_problems};

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
    /// The event's source (a single-event test); `events:` steps name their own.
    #[serde(default)]
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
    /// Dotted body paths to overwrite (`basket.id: 2`).
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
    /// A sequence of events on a virtual clock (see [`timeline`]).
    #[serde(default)]
    pub events: Vec<timeline::Step>,
    /// Where the virtual clock starts (RFC 3339; default [`timeline::DEFAULT_START`]).
    #[serde(default)]
    pub start: Option<String>,
    /// Stop the virtual clock at this offset (timers due later stay pending).
    #[serde(default)]
    pub until: Option<String>,
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
    /// A dynamic product's answer (`sellix/product:dynamic`): exactly this text.
    #[serde(default)]
    pub answer: Option<String>,
    /// A dynamic product's answer contains this text (for answers with random keys).
    #[serde(default)]
    pub answer_contains: Option<String>,
    /// Time (DESIGN.md §12): which rules run their actions, and when (`at: +48h`).
    #[serde(default)]
    pub fires: Vec<timeline::ExpectFire>,
    /// Rules with a wait or delayed action that was cancelled or skipped.
    #[serde(default)]
    pub cancelled: Vec<String>,
    /// Rules that were over their `limit`.
    #[serde(default)]
    pub limited: Vec<String>,
    /// Rules whose actions quiet hours postponed.
    #[serde(default)]
    pub postponed: Vec<String>,
    /// Rules with a timer still pending when the clock stops.
    #[serde(default)]
    pub pending: Vec<String>,
}

impl Expect {
    /// Whether the test expects anything about time (it then runs on the virtual clock).
    pub fn has_time(&self) -> bool {
        !(self.fires.is_empty()
            && self.cancelled.is_empty()
            && self.limited.is_empty()
            && self.postponed.is_empty()
            && self.pending.is_empty())
    }
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

/// What the rules did with a test's event, as the pipeline and the intake would.
#[derive(Debug)]
pub struct Outcome {
    /// The evaluation, with each matched rule's actions replaced by the jobs it plans
    /// (scripts and plugins run into their intents).
    pub evaluation: Evaluation,
    /// Matched rules whose script or plugin failed (they plan nothing), with the error.
    pub script_errors: BTreeMap<String, String>,
    /// For a dynamic product: the answer the daemon would send, or the script's error.
    pub answer: Answer,
}

/// One test's outcome.
#[derive(Debug)]
pub struct TestResult {
    pub file: PathBuf,
    pub name: String,
    /// Empty when the test passed.
    pub failures: Vec<String>,
}

/// Why the rule tests could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", file.display())]
    Yaml {
        file: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
}

/// The tests found in `rules_dir/*.yaml` and `rules_dir/tests/*.yaml`, with their file.
pub fn discover(rules_dir: &Path) -> Result<Vec<(PathBuf, RuleTest)>, DiscoverError> {
    let mut files = yaml_files(rules_dir);
    files.extend(yaml_files(&rules_dir.join("tests")));
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| DiscoverError::Read {
            file: file.clone(),
            source,
        })?;
        let parsed: TestFile = serde_saphyr::from_str(&text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            DiscoverError::Yaml {
                file: file.clone(),
                line,
                column,
                message: crate::config::yaml_error_message(&e.to_string()),
            }
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

/// Runs one test; `evaluate` produces what the rules do with the event (the CLI passes one
/// that runs scripts and plugins into their intents, so tests can expect those too), and
/// `rule_names` are the rules that exist.
pub fn run(
    config: &Config,
    file: &Path,
    test: &RuleTest,
    rule_names: &[&str],
    evaluate: &dyn Fn(&Event) -> Outcome,
) -> TestResult {
    let failures = match event_for(config, file, test) {
        Ok(event) => check(&evaluate(&event), &test.expect, rule_names),
        Err(e) => vec![e.to_string()],
    };
    TestResult {
        file: file.to_path_buf(),
        name: test.name.clone(),
        failures,
    }
}

/// Why a rule test's event could not be built (the test fails with this).
#[derive(Debug, thiserror::Error)]
pub enum TestEventError {
    #[error("give exactly one of `fixture:` or `payload:`")]
    NoBody,
    #[error("cannot read fixture {}: {source}", path.display())]
    Fixture {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown source `{name}`; use one of: {known}")]
    UnknownSource { name: String, known: String },
    #[error(transparent)]
    Normalize(#[from] crate::sources::IntakeError),
    #[error("`set:` needs a JSON object body: {0}")]
    Set(String),
}

fn event_for(config: &Config, file: &Path, test: &RuleTest) -> Result<Event, TestEventError> {
    let step = steps_of(test).remove(0);
    build_event(config, file, &step, Timestamp::now())
}

/// A test's events: its `events:`, or the one its top-level keys describe.
fn steps_of(test: &RuleTest) -> Vec<timeline::Step> {
    if !test.events.is_empty() {
        return test.events.clone();
    }
    vec![timeline::Step {
        at: "+0s".into(),
        source: test.source.clone(),
        event: test.event.clone(),
        fixture: test.fixture.clone(),
        payload: test.payload.clone(),
        set: test.set.clone(),
    }]
}

/// The event a step describes, received at `at`.
fn build_event(
    config: &Config,
    file: &Path,
    test: &timeline::Step,
    at: Timestamp,
) -> Result<Event, TestEventError> {
    let body = match (&test.fixture, &test.payload) {
        (Some(fixture), None) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(fixture);
            std::fs::read(&path).map_err(|source| TestEventError::Fixture { path, source })?
        }
        (None, Some(payload)) => payload.to_string().into_bytes(),
        _ => return Err(TestEventError::NoBody),
    };
    let body = with_set(body, &test.set)?;
    let registry = sources::registry(config);
    let source = registry
        .get(&test.source)
        .ok_or_else(|| TestEventError::UnknownSource {
            name: test.source.clone(),
            known: registry.names().join(", "),
        })?;
    let verified = verify::local_file(body.into(), test.event.clone());
    Ok(source.normalize(&verified, at)?.event)
}

/// The body with `set:` paths overwritten (objects created on the way).
fn with_set(
    body: Vec<u8>,
    set: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<u8>, TestEventError> {
    if set.is_empty() {
        return Ok(body);
    }
    let mut json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| TestEventError::Set(e.to_string()))?;
    for (path, value) in set {
        let mut at = &mut json;
        for key in path.split('.') {
            if !at.is_object() {
                *at = serde_json::json!({});
            }
            at = at
                .as_object_mut()
                .map(|m| m.entry(key).or_insert(serde_json::Value::Null))
                .ok_or_else(|| TestEventError::Set(path.clone()))?;
        }
        *at = value.clone();
    }
    Ok(json.to_string().into_bytes())
}

/// What the daemon would do with `event`: the rules' evaluation with every script or plugin
/// action replaced by the jobs it would plan (its intents, numbered as the pipeline numbers
/// them), the scripts that failed, and a dynamic product's answer. Nothing runs for real.
pub fn outcome(rules: &RuleSet, event: &Event) -> Outcome {
    let mut evaluation = rules.evaluate(event);
    let planned = super::plan(event, rules, &crate::script::NoState, &[]);
    let mut script_errors = BTreeMap::new();
    for r in evaluation.rules.iter_mut().filter(|r| r.matched) {
        if let Some(error) = planned.trace.script_error(&r.rule) {
            script_errors.insert(r.rule.clone(), error.to_string());
        }
        r.actions = planned
            .jobs
            .iter()
            .filter(|j| j.rule == r.rule)
            .map(|j| PlannedAction {
                index: j.action_index,
                kind: ActionKind::parse(&j.kind),
                params: match &j.error {
                    Some(e) => Err(e.clone()),
                    None => Ok(j.params.clone()),
                },
            })
            .collect();
    }
    let answer = match event.topic == super::dynamic::TOPIC {
        true => super::dynamic::product(rules, event, super::dynamic::DEADLINE),
        false => Answer::NoScript,
    };
    Outcome {
        evaluation,
        script_errors,
        answer,
    }
}

mod expect;
mod timecheck;
pub mod timeline;

pub use timecheck::run_timeline;
