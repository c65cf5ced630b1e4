//! Loading a rules directory into a [`RuleSet`] (with every diagnostic of every file), and
//! evaluating a rule set against an event.
//!
//! A [`RuleSet`] is immutable once built and `Send + Sync`: the daemon shares it behind an `Arc`
//! and swaps in a new one on reload.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rhai::Dynamic;

use super::compile::{self, Compiler, Rule};
use super::diag::FileDiags;
use super::model::{self, pos, Node, Value};
use super::pattern::Index;
use super::{
    Diagnostic, Evaluation, LoadOptions, Loaded, Miss, PlannedAction, RuleTrace, Severity,
};
use crate::model::event::Event;
use crate::script::hardened_engine;
use crate::template::render::{self as template, Templates};
use crate::template::suggest::suggest;
use crate::template::EventView;

/// Compiled rules, indexed by the events they listen to.
pub struct RuleSet {
    rules: Vec<Rule>,
    index: Index,
    templates: Templates,
    engine: rhai::Engine,
    /// Runs the rules' scripts and plugin actions (the pipeline calls it).
    runner: std::sync::Arc<crate::script::Runner>,
    /// The rules with a `wait` that has `unless` patterns: the only ones an event may cancel.
    cancellable: Vec<usize>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("RuleSet")
            .field("rules", &names)
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The compiled rules in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Rules that are not candidates for `event`: each name with its `on` patterns.
    pub fn not_listening(&self, event: &Event) -> Vec<(String, Vec<String>)> {
        let candidates = self.index.candidates(event);
        self.rules
            .iter()
            .enumerate()
            .filter(|(i, _)| candidates.binary_search(i).is_err())
            .map(|(_, r)| (r.name.clone(), r.on.clone()))
            .collect()
    }
}

/// See [`super::load_dir`].
pub fn load_dir(dir: &Path, options: &LoadOptions) -> Loaded {
    let mut diagnostics = Vec::new();
    let files = match rule_files(dir) {
        Ok(files) => files,
        Err(e) => {
            diagnostics.push(unpositioned(
                dir,
                format!("cannot read rules directory: {e}"),
            ));
            return Loaded {
                rules: None,
                diagnostics,
            };
        }
    };
    let engine = hardened_engine(options.max_operations);
    let runner = script_runner(options, &mut diagnostics);
    let mut templates = Templates::new();
    let mut compiler = Compiler {
        engine: &engine,
        runner: &runner,
        templates: &mut templates,
        options,
        next_template: 0,
    };
    let rules = compile_files(&files, &mut compiler, &mut diagnostics);
    check_duplicates(&rules, &files, &mut diagnostics);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Loaded {
            rules: None,
            diagnostics,
        };
    }
    let mut index = Index::default();
    for (i, r) in rules.iter().enumerate() {
        r.on.iter().for_each(|p| index.add(i, p));
    }
    let cancellable = rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.time.wait.as_ref().is_some_and(|w| !w.unless.is_empty()))
        .map(|(i, _)| i)
        .collect();
    let set = RuleSet {
        rules,
        index,
        templates,
        engine,
        runner,
        cancellable,
    };
    Loaded {
        rules: Some(set),
        diagnostics,
    }
}

/// The script runner with the plugins of `options.plugins_dir` (their errors become
/// diagnostics).
fn script_runner(
    options: &LoadOptions,
    diagnostics: &mut Vec<Diagnostic>,
) -> std::sync::Arc<crate::script::Runner> {
    let (plugins, plugin_errors) = crate::script::Plugins::load_dir_with(
        &options.plugins_dir,
        options.max_operations,
        options.script_limits.timeout,
    );
    diagnostics.extend(plugin_errors.into_iter().map(|e| Diagnostic {
        line: e.line,
        column: e.column,
        ..unpositioned(&e.file, e.message)
    }));
    let runner = std::sync::Arc::new(crate::script::Runner::with_limits(
        options.max_operations,
        options.script_limits,
        std::sync::Arc::new(plugins),
    ));
    diagnostics.extend(runner.lint_plugins().into_iter().map(|e| Diagnostic {
        line: e.line,
        column: e.column,
        ..unpositioned(&e.file, e.message)
    }));
    runner
}

/// Compiles every rule file in order; problems go to `diagnostics`.
fn compile_files(
    files: &[std::path::PathBuf],
    compiler: &mut Compiler<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let mut d = FileDiags::new(file, &text);
                load_file(&text, compiler, &mut d, &mut rules);
                diagnostics.append(&mut d.out);
            }
            Err(e) => diagnostics.push(unpositioned(file, format!("cannot read file: {e}"))),
        }
    }
    rules
}

impl RuleSet {
    /// The runner for this set's scripts and plugins.
    pub fn runner(&self) -> &crate::script::Runner {
        &self.runner
    }

    /// The compiled script of action `index` of rule `rule`, if that action is a `script:`.
    pub fn script(&self, rule: &str, index: usize) -> Option<&crate::script::Script> {
        let r = self.rules.iter().find(|r| r.name == rule)?;
        r.actions.get(index)?.script.as_deref()
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The rules whose pending waits an event of the same order may cancel (`wait.unless`).
    pub fn cancellable(&self) -> impl Iterator<Item = &Rule> {
        self.cancellable.iter().map(|&i| &self.rules[i])
    }

    /// The hardened engine the rules' expressions run in.
    pub fn engine(&self) -> &rhai::Engine {
        &self.engine
    }

    /// The rules' compiled templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Whether `kind` is a plugin action (run by the pipeline into intents).
    pub fn is_plugin(&self, kind: &str) -> bool {
        self.runner.plugins().get(kind).is_some()
    }
}

/// `*.yaml` / `*.yml` files directly in `dir`, sorted; none when `dir` does not exist.
fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str());
        if path.is_file() && matches!(ext, Some("yaml" | "yml")) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn unpositioned(file: &Path, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        rule: None,
        message,
        hint: None,
        snippet: None,
    }
}

/// Parses one file and compiles each rule in it.
fn load_file(text: &str, c: &mut Compiler<'_>, d: &mut FileDiags<'_>, rules: &mut Vec<Rule>) {
    let root = match model::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let at = e.location().map_or((0, 0), |l| model::loc_pos(&l));
            d.error(
                at,
                crate::config::yaml_error_message(&e.to_string()),
                Some("fix the YAML syntax; rules in this file were not checked".into()),
            );
            return;
        }
    };
    for node in rule_nodes(&root, d) {
        rules.extend(compile::compile(node, c, d));
    }
}

/// The entries of the top-level `rules:` list.
fn rule_nodes<'n>(root: &'n Node, d: &mut FileDiags<'_>) -> &'n [Node] {
    let entries = match &root.value {
        Value::Null => return &[],
        Value::Map(entries) => entries,
        other => {
            let msg = format!(
                "a rules file must be a mapping with a `rules:` list, found {}",
                other.type_name()
            );
            d.error(pos(root), msg, None);
            return &[];
        }
    };
    let mut list: &[Node] = &[];
    for (key, value) in entries {
        match (key.value.key_text().as_str(), &value.value) {
            ("rules", Value::Seq(items)) => list = items,
            ("rules", Value::Null) => {}
            // Rule tests live beside the rules; `storeflow test` reads them (plan::ruletest).
            ("tests", _) => {}
            ("rules", other) => {
                let msg = format!("`rules` must be a list, found {}", other.type_name());
                d.error(
                    pos(value),
                    msg,
                    Some("write each rule as `- name: ...`".into()),
                );
            }
            (k, _) => {
                let msg = format!("unknown top-level key `{k}`");
                d.error(
                    pos(key),
                    msg,
                    Some(suggest(k, &["rules", "tests"], "top-level keys")),
                );
            }
        }
    }
    list
}

/// Reports the second and later rules with a name already used, pointing at the first.
fn check_duplicates(rules: &[Rule], files: &[PathBuf], out: &mut Vec<Diagnostic>) {
    let mut first: HashMap<&str, &Rule> = HashMap::new();
    let texts: HashMap<&PathBuf, String> = files
        .iter()
        .filter_map(|f| Some((f, std::fs::read_to_string(f).ok()?)))
        .collect();
    for r in rules {
        let Some(prev) = first.get(r.name.as_str()) else {
            first.insert(&r.name, r);
            continue;
        };
        let text = texts.get(&r.file).map_or("", String::as_str);
        let mut d = FileDiags::new(&r.file, text);
        d.rule = Some(r.name.clone());
        let (line, _) = prev.name_at;
        let msg = format!(
            "duplicate rule name `{}` (first defined at {}:{line})",
            r.name,
            prev.file.display()
        );
        d.error(
            r.name_at,
            msg,
            Some("rule names must be unique across all files".into()),
        );
        out.append(&mut d.out);
    }
}

/// Per-event values built on first use and shared by all candidate rules.
/// See [`RuleSet::evaluate`].
pub fn evaluate(set: &RuleSet, view: &EventView<'_>) -> Evaluation {
    let candidates = set.index.candidates(view.scope().event);
    let rules = candidates
        .iter()
        .map(|&i| evaluate_rule(set, &set.rules[i], view))
        .collect();
    Evaluation {
        rules,
        not_listening: set.rules.len() - candidates.len(),
    }
}

fn evaluate_rule(set: &RuleSet, r: &Rule, view: &EventView<'_>) -> RuleTrace {
    let miss = if !r.enabled {
        Some(Miss::Disabled)
    } else if let Err(f) = r.matcher.check(view.scope()) {
        Some(Miss::Condition {
            path: f.path,
            expected: f.expected,
            actual: f.actual,
        })
    } else {
        r.condition.as_ref().and_then(|c| run_if(set, c, view))
    };
    let actions = match miss {
        Some(_) => Vec::new(),
        // A digest's actions are rendered when its window closes, over all its events.
        None if r.time.digest.is_some() => Vec::new(),
        None => plan_actions(set, r, view),
    };
    RuleTrace {
        rule: r.name.clone(),
        file: r.file.clone(),
        matched: miss.is_none(),
        miss,
        actions,
    }
}

/// Runs an `if` expression; `None` when it holds.
fn run_if(set: &RuleSet, c: &compile::IfExpr, view: &EventView<'_>) -> Option<Miss> {
    let payload = match c.uses_payload {
        true => view.rhai_payload(),
        false => Dynamic::UNIT,
    };
    let mut scope = rhai::Scope::new();
    scope.push_constant_dynamic("event", view.rhai_event());
    scope.push_constant_dynamic("order", view.rhai_order());
    scope.push_constant_dynamic("payload", payload);
    let expr = c.source.clone();
    match set
        .engine
        .eval_ast_with_scope::<Dynamic>(&mut scope, &c.ast)
    {
        Ok(v) => match v.as_bool() {
            Ok(true) => None,
            Ok(false) => Some(Miss::IfFalse { expr }),
            Err(t) => Some(Miss::IfError {
                expr,
                error: format!("`if` returned {t}, not a boolean"),
            }),
        },
        Err(e) => Some(Miss::IfError {
            expr,
            error: e.to_string(),
        }),
    }
}

fn plan_actions(set: &RuleSet, r: &Rule, view: &EventView<'_>) -> Vec<PlannedAction> {
    let ctx = template::sparse_context(view.scope(), &r.template_paths, &r.name, &r.description);
    let ctx = match &r.time.wait {
        Some(w) => minijinja::context! { waited => w.text.clone(), ..ctx },
        None => ctx,
    };
    r.actions
        .iter()
        .enumerate()
        .map(|(index, a)| PlannedAction {
            index,
            kind: a.kind.clone(),
            params: set.templates.render(&a.params, &ctx),
        })
        .collect()
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
