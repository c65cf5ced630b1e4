//! Rules: YAML files in `rules_dir` that match events and plan actions.
//!
//! Loading is two-phase ([`model`]: raw YAML structs with positions → [`load`]: compiled rules
//! with parsed matchers, compiled Rhai `if` expressions and parsed templates). Every problem in
//! every file is reported at once as a [`Diagnostic`]. Matching ([`RuleSet::evaluate`]) is pure:
//! no I/O, no journal; the pipeline worker stores what it returns.
//!
//! This file is the public face of the module; the pipeline, the CLI and the server use only
//! what is declared here.

pub mod actions;
pub mod compile;
pub mod conditions;
pub mod diag;
pub mod fields;
pub mod live;
pub mod load;
pub mod matcher;
pub mod model;
pub mod pattern;
pub mod safety;
pub mod time;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::event::Event;

/// Settings that shape compilation (Rhai limits come from `scripts:` in storeflow.yaml).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub max_operations: u64,
    /// Wall-clock and state limits of script and plugin runs (`scripts:` in storeflow.yaml).
    pub script_limits: crate::script::RunLimits,
    /// Where `template:` files of the email action live (checked to exist at load).
    pub templates_dir: PathBuf,
    /// Where plugins (`<name>.rhai` + optional `<name>.yaml`) live; each is an action `<name>`.
    pub plugins_dir: PathBuf,
    /// `http.allow_hosts`: the hosts `http` actions may call; empty = literal hosts only.
    pub http_allow_hosts: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_operations: 1_000_000,
            script_limits: crate::script::RunLimits::default(),
            templates_dir: "./templates".into(),
            plugins_dir: "./plugins".into(),
            http_allow_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found while loading rules: where, in which rule, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no position (e.g. an unreadable file).
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    pub rule: Option<String>,
    pub message: String,
    /// What to do about it ("did you mean `email`?").
    pub hint: Option<String>,
    /// The offending source line(s) with a caret under the column.
    pub snippet: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// `rules/shop.yaml:12:9: error: unknown action `emial` (rule `x`)`, then the snippet and
    /// `  hint: ...` on their own lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(rule) = &self.rule {
            write!(f, " (rule `{rule}`)")?;
        }
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{}", snippet.trim_end())?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The result of loading a rules directory: the compiled rules (only when there are no errors)
/// and every diagnostic, errors and warnings.
#[derive(Debug)]
pub struct Loaded {
    pub rules: Option<RuleSet>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}

pub use load::RuleSet;

/// Loads every `*.yaml` / `*.yml` file directly in `dir` (sorted by name; the `tests/`
/// subfolder holds rule tests, not rules). A missing directory is an empty rule set.
pub fn load_dir(dir: &Path, options: &LoadOptions) -> Loaded {
    load::load_dir(dir, options)
}

/// What evaluating the rules against one event decided: the trace the journal keeps and the
/// actions to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// One entry per candidate rule (rules whose `on` matches the event), in load order.
    pub rules: Vec<RuleTrace>,
    /// How many rules were not candidates (their `on` does not match this event's topic or
    /// canonical name).
    pub not_listening: usize,
}

impl Evaluation {
    pub fn matched(&self) -> impl Iterator<Item = &RuleTrace> {
        self.rules.iter().filter(|r| r.matched)
    }
}

/// One rule's verdict on one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleTrace {
    pub rule: String,
    pub file: PathBuf,
    pub matched: bool,
    /// For a rule that did not match (or whose `if` failed): why.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub miss: Option<Miss>,
    /// For a matched rule: its actions with rendered parameters, in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub actions: Vec<PlannedAction>,
}

/// Why a candidate rule did not fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Miss {
    /// `enabled: false`.
    Disabled,
    /// The first `match` condition that failed, with the value actually found.
    Condition {
        path: String,
        /// The operator and operand as written (`gte 20`, `== "PHYSICAL"`, `any of 2`).
        expected: String,
        /// The value at `path` (JSON), or `null` when the path does not exist.
        actual: serde_json::Value,
    },
    /// The `if` expression evaluated to false.
    IfFalse { expr: String },
    /// The `if` expression failed at run time (the rule does not fire; nothing crashes).
    IfError { expr: String, error: String },
}

/// One action of a matched rule, with every string parameter rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// Position in the rule's `actions` list (part of the job's idempotency key).
    pub index: usize,
    /// A built-in action, `script`, or a plugin (JSON: its name).
    pub kind: crate::model::actions::ActionKind,
    /// The parameters after rendering (a JSON object), or the template error that prevented
    /// rendering (a permanent failure for the job). In JSON: the object, or
    /// `{"template_error": "..."}`.
    #[serde(with = "rendered")]
    pub params: Result<serde_json::Value, String>,
}

impl RuleSet {
    /// Evaluates the candidate rules for `event` (pure; no I/O).
    pub fn evaluate(&self, event: &Event) -> Evaluation {
        load::evaluate(self, &crate::template::EventView::new(event))
    }

    /// [`RuleSet::evaluate`] against a view the caller shares with the event's scripts, so
    /// the event is converted to Rhai values once.
    pub fn evaluate_view(&self, view: &crate::template::EventView<'_>) -> Evaluation {
        load::evaluate(self, view)
    }
}

impl fmt::Display for Miss {
    /// One line on why a rule did not fire, for people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::Disabled => write!(f, "disabled (enabled: false)"),
            Miss::Condition {
                path,
                expected,
                actual,
            } => {
                write!(f, "{path}: expected {expected}, found {actual}")
            }
            Miss::IfFalse { expr } => write!(f, "`if: {expr}` is false"),
            Miss::IfError { expr, error } => write!(f, "`if: {expr}` failed: {error}"),
        }
    }
}

/// JSON form of rendered parameters: the object itself, or `{"template_error": "..."}`.
mod rendered {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    const KEY: &str = "template_error";

    pub fn serialize<S: Serializer>(r: &Result<Value, String>, s: S) -> Result<S::Ok, S::Error> {
        match r {
            Ok(v) => v.serialize(s),
            Err(e) => serde_json::json!({ KEY: e }).serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Result<Value, String>, D::Error> {
        let v = Value::deserialize(d)?;
        match v
            .as_object()
            .and_then(|m| m.get(KEY))
            .and_then(Value::as_str)
        {
            Some(e) if v.as_object().is_some_and(|m| m.len() == 1) => Ok(Err(e.to_string())),
            _ => Ok(Ok(v)),
        }
    }
}
