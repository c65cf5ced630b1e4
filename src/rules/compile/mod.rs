//! Compiling one rule from its YAML node: keys checked, `on` patterns, `match` conditions, the
//! Rhai `if` expression and the actions with their templates. Every problem becomes a diagnostic
//! and compilation goes on, so one pass reports them all.
//!
//! `rule.rs` compiles one rule (keys, `on`, `match`, `if`), `actions.rs` its actions and their
//! templates, `script.rs` the `script:` actions.

mod actions;
mod rule;
mod script;
pub mod time;

pub use rule::compile;

use std::path::PathBuf;

use crate::rules::actions::ActionKind;
use crate::rules::matcher::Matcher;
use crate::rules::LoadOptions;
use crate::template::render::{Param, Templates};

/// Keys a rule may have.
pub const RULE_KEYS: &[&str] = &[
    "name",
    "description",
    "enabled",
    "on",
    "match",
    "if",
    "actions",
    "wait",
    "max_late",
    "limit",
    "digest",
    "quiet_hours",
];

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// Where the name is written, for "first defined at" messages.
    pub name_at: (usize, usize),
    pub enabled: bool,
    pub on: Vec<String>,
    pub matcher: Matcher,
    pub condition: Option<IfExpr>,
    pub actions: Vec<Action>,
    /// The event paths the action templates read, shortest first (see
    /// [`crate::template::render::sparse_context`]).
    pub template_paths: Vec<Vec<String>>,
    /// `wait`, `limit`, `digest`, `quiet_hours` and the actions' `delay`/`if_still`
    /// (DESIGN.md §12).
    pub time: time::RuleTime,
}

/// A compiled `if:` expression.
#[derive(Debug)]
pub struct IfExpr {
    pub source: String,
    pub ast: rhai::AST,
    /// Whether the expression names `payload` (else the payload is not converted for it).
    pub uses_payload: bool,
}

/// An action with its parameters ready to render.
#[derive(Debug)]
pub struct Action {
    pub kind: ActionKind,
    pub params: Param,
    /// For `script:` actions: compiled once at load, run by the pipeline.
    pub script: Option<std::sync::Arc<crate::script::Script>>,
}

/// What rule compilation needs from the loader.
pub struct Compiler<'a> {
    pub engine: &'a rhai::Engine,
    /// Compiles scripts and knows the plugins.
    pub runner: &'a crate::script::Runner,
    pub templates: &'a mut Templates,
    pub options: &'a LoadOptions,
    /// Numbers template names so they are unique in the environment.
    pub next_template: usize,
}
