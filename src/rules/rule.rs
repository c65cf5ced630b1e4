//! Compiling one rule from its YAML node: keys checked, `on` patterns, `match` conditions, the
//! Rhai `if` expression and the actions with their templates. Every problem becomes a diagnostic
//! and compilation goes on, so one pass reports them all.

use std::path::PathBuf;

use super::actions::{self, ActionKind};
use super::diag::FileDiags;
use super::matcher::Matcher;
use super::model::{pos, Node, Value};
use super::{conditions, pattern, safety, LoadOptions};
use crate::template::render::{offset_pos, Escape, Param, Templates};
use crate::template::suggest::suggest;

/// Keys a rule may have.
pub const RULE_KEYS: &[&str] = &[
    "name",
    "description",
    "enabled",
    "on",
    "match",
    "if",
    "actions",
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

/// Compiles one entry of a `rules:` list; `None` when it has no usable name.
pub fn compile(node: &Node, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> Option<Rule> {
    let Value::Map(entries) = &node.value else {
        d.error(
            pos(node),
            format!("a rule must be a mapping, found {}", node.value.type_name()),
            None,
        );
        return None;
    };
    let get = |k: &str| field(entries, k);
    let name_node = get("name");
    let name = name_node.and_then(|n| n.value.as_str()).map(str::to_string);
    d.rule = name.clone();
    check_keys(entries, d);
    check_required(node, entries, name.is_some(), d);
    let rule = Rule {
        name: name.clone().unwrap_or_default(),
        description: get("description")
            .map(|n| string_of(n, "description", d))
            .unwrap_or_default(),
        file: d.file.clone(),
        name_at: name_node.map(pos).unwrap_or_else(|| pos(node)),
        enabled: get("enabled").is_none_or(|n| bool_of(n, d)),
        on: get("on").map(|n| compile_on(n, d)).unwrap_or_default(),
        matcher: get("match")
            .map(|n| conditions::compile(n, d))
            .unwrap_or_default(),
        condition: get("if").and_then(|n| compile_if(n, c, d)),
        actions: get("actions")
            .map(|n| compile_actions(n, c, d))
            .unwrap_or_default(),
        template_paths: Vec::new(),
    };
    let mut rule = rule;
    for a in &rule.actions {
        c.templates.paths(&a.params, &mut rule.template_paths);
    }
    rule.template_paths.sort_by_key(Vec::len);
    d.rule = None;
    name.map(|_| rule)
}

/// The value of key `k` in a rule's mapping.
fn field<'a>(entries: &'a [(Node, Node)], k: &str) -> Option<&'a Node> {
    entries
        .iter()
        .find(|(key, _)| key.value.as_str() == Some(k))
        .map(|e| &e.1)
}

/// Every rule needs `name` (a string), `on` and `actions`.
fn check_required(node: &Node, entries: &[(Node, Node)], named: bool, d: &mut FileDiags<'_>) {
    for key in ["name", "on", "actions"] {
        if field(entries, key).is_none() {
            d.error(
                pos(node),
                format!("rule has no `{key}`"),
                Some(format!(
                    "every rule needs `name`, `on` and `actions`; add `{key}:`"
                )),
            );
        }
    }
    if let (Some(n), false) = (field(entries, "name"), named) {
        d.error(
            pos(n),
            format!("`name` must be a string, found {}", n.value.type_name()),
            None,
        );
    }
}

fn check_keys(entries: &[(Node, Node)], d: &mut FileDiags<'_>) {
    for (key, _) in entries {
        let k = key.value.key_text();
        if !RULE_KEYS.contains(&k.as_str()) {
            d.error(
                pos(key),
                format!("unknown key `{k}` in rule"),
                Some(suggest(&k, RULE_KEYS, "keys")),
            );
        }
    }
}

fn string_of(n: &Node, key: &str, d: &mut FileDiags<'_>) -> String {
    match &n.value {
        Value::Str(s) => s.clone(),
        other => {
            d.error(
                pos(n),
                format!("`{key}` must be a string, found {}", other.type_name()),
                None,
            );
            String::new()
        }
    }
}

fn bool_of(n: &Node, d: &mut FileDiags<'_>) -> bool {
    match n.value {
        Value::Bool(b) => b,
        ref other => {
            let hint = Some("write `enabled: true` or `enabled: false`".to_string());
            d.error(
                pos(n),
                format!(
                    "`enabled` must be true or false, found {}",
                    other.type_name()
                ),
                hint,
            );
            true
        }
    }
}

fn compile_on(n: &Node, d: &mut FileDiags<'_>) -> Vec<String> {
    let items: Vec<&Node> = match &n.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![n],
    };
    if items.is_empty() {
        d.error(
            pos(n),
            "`on` is an empty list",
            Some("list at least one event pattern".into()),
        );
    }
    let mut out = Vec::new();
    for item in items {
        let Some(p) = item.value.as_str() else {
            let msg = format!(
                "`on` patterns must be strings, found {}",
                item.value.type_name()
            );
            d.error(pos(item), msg, None);
            continue;
        };
        if let Some((message, hint)) = pattern::never_matches(p) {
            d.warning(pos(item), message, Some(hint));
        }
        out.push(p.to_string());
    }
    out
}

fn compile_if(n: &Node, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> Option<IfExpr> {
    let source = string_of(n, "if", d);
    match c.engine.compile_expression(&source) {
        Ok(ast) => {
            super::fields::report_rhai(&source, pos(n), d);
            Some(IfExpr {
                uses_payload: source.contains("payload"),
                source,
                ast,
            })
        }
        Err(e) => {
            let inner = (e.1.line().unwrap_or(1), e.1.position().unwrap_or(1));
            let at = d.inner(pos(n), inner);
            let hint = Some(
                "`if` is one Rhai expression, e.g. `order.total > 20 && order.currency == \"EUR\"`"
                    .into(),
            );
            d.error(at, format!("Rhai syntax error in `if`: {}", e.0), hint);
            None
        }
    }
}

fn compile_actions(n: &Node, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> Vec<Action> {
    let Value::Seq(items) = &n.value else {
        let msg = format!("`actions` must be a list, found {}", n.value.type_name());
        d.error(
            pos(n),
            msg,
            Some("write each action as `- email: {...}`".into()),
        );
        return Vec::new();
    };
    if items.is_empty() {
        d.error(
            pos(n),
            "`actions` is an empty list",
            Some("a rule needs at least one action".into()),
        );
    }
    items
        .iter()
        .filter_map(|item| compile_action(item, c, d))
        .collect()
}

fn compile_action(item: &Node, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> Option<Action> {
    let entries = match &item.value {
        Value::Map(e) if e.len() == 1 => e,
        _ => {
            let hint =
                Some("write `- slack: { text: \"...\" }`: one action name per list item".into());
            d.error(
                pos(item),
                "an action must be a mapping with exactly one key, the action name",
                hint,
            );
            return None;
        }
    };
    let (key, value) = &entries[0];
    let kind = key.value.key_text();
    if ActionKind::parse(&kind) == ActionKind::Script {
        return compile_script(value, c, d);
    }
    if c.runner.plugins().names().contains(&kind) {
        return compile_plugin_action(kind, key, value, c, d);
    }
    let Some(spec) = actions::spec(&kind) else {
        let mut known: Vec<String> = actions::kinds().iter().map(|k| k.to_string()).collect();
        known.extend(c.runner.plugins().names());
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let hint = suggest(&kind, &known, "actions");
        d.error(pos(key), format!("unknown action `{kind}`"), Some(hint));
        return None;
    };
    let params = match &value.value {
        Value::Map(p) => p.as_slice(),
        Value::Null => &[],
        other => {
            let msg = format!(
                "parameters of `{kind}` must be a mapping, found {}",
                other.type_name()
            );
            d.error(pos(value), msg, None);
            return None;
        }
    };
    let given: Vec<String> = params.iter().map(|(k, _)| k.value.key_text()).collect();
    let given_refs: Vec<&str> = given.iter().map(String::as_str).collect();
    let missing = actions::missing(spec, &given_refs);
    if !missing.is_empty() {
        let msg = format!("action `{kind}` is missing {}", missing.join(" and "));
        d.error(
            pos(key),
            msg,
            Some(format!("`{kind}` takes {}", spec.names().join(", "))),
        );
    }
    let mut out = Vec::new();
    for ((pk, pv), name) in params.iter().zip(&given) {
        if spec.param(name).is_none() {
            let msg = format!("unknown parameter `{name}` for action `{kind}`");
            d.error(
                pos(pk),
                msg,
                Some(suggest(name, &spec.names(), "parameters")),
            );
            continue;
        }
        check_param_value(&kind, name, pv, c, d);
        safety::check_param(&kind, name, pv, &c.options.http_allow_hosts, d);
        if spec.kind == ActionKind::Email && name == "template" {
            out.extend(compile_template_file(pv, c, d));
            continue;
        }
        let param = match pv.value.as_str() {
            Some(s)
                if spec.kind == ActionKind::Email
                    && actions::RECIPIENTS.contains(&name.as_str()) =>
            {
                compile_recipients(s, pv, c, d)
            }
            _ => compile_param(pv, actions::escape(&kind, name), c, d),
        };
        out.push((name.clone(), param));
    }
    Some(Action {
        kind: spec.kind.clone(),
        params: Param::Map(out),
        script: None,
    })
}

fn check_param_value(kind: &str, name: &str, v: &Node, c: &Compiler<'_>, d: &mut FileDiags<'_>) {
    let Some(lit) = v
        .value
        .as_str()
        .filter(|s| !s.contains("{{") && !s.contains("{%"))
    else {
        return;
    };
    let param = actions::spec(kind).and_then(|s| s.param(name));
    if let Some(Err(not_allowed)) = param.map(|p| p.normalize(lit)) {
        let msg = format!("`{name}` of `{kind}` cannot be `{lit}`");
        d.error(
            pos(v),
            msg,
            Some(suggest(lit, not_allowed.allowed, "values")),
        );
    }
    if ActionKind::parse(kind) == ActionKind::Email
        && name == "template"
        && !c.options.templates_dir.join(lit).is_file()
    {
        let dir = c.options.templates_dir.display();
        let msg = format!("template file `{lit}` not found in `{dir}`");
        d.error(
            pos(v),
            msg,
            Some(format!("create `{dir}/{lit}` or fix the name")),
        );
    }
}

/// The email `template:` file, compiled now so its errors show at load: it renders into `html`
/// (for `.html`/`.htm` files, with HTML escaping) or `body`.
fn compile_template_file(
    v: &Node,
    c: &mut Compiler<'_>,
    d: &mut FileDiags<'_>,
) -> Option<(String, Param)> {
    let file = v.value.as_str()?;
    let path = c.options.templates_dir.join(file);
    let source = std::fs::read_to_string(&path).ok()?; // a missing file is already reported
    let html = file.ends_with(".html") || file.ends_with(".htm");
    let name = format!("t{}{}", c.next_template, if html { ".html" } else { "" });
    c.next_template += 1;
    match c.templates.compile(name, &source) {
        Ok(param) => Some((if html { "html" } else { "body" }.to_string(), param)),
        Err(issue) => {
            let line = issue
                .at
                .map_or(String::new(), |(l, col)| format!(" line {l} column {col}"));
            d.error(
                pos(v),
                format!("template file `{file}`{line}: {}", issue.message),
                issue.hint,
            );
            None
        }
    }
}

/// Turns a parameter value into a [`Param`] tree, parsing every string as a template whose
/// interpolated values are escaped as `escape` says.
fn compile_param(v: &Node, escape: Escape, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> Param {
    match &v.value {
        Value::Str(s) => compile_str(s, (0, 0), escape, v, c, d),
        Value::Seq(items) => Param::Seq(
            items
                .iter()
                .map(|i| compile_param(i, escape, c, d))
                .collect(),
        ),
        Value::Map(entries) => Param::Map(
            entries
                .iter()
                .map(|(k, v)| (k.value.key_text(), compile_param(v, escape, c, d)))
                .collect(),
        ),
        scalar => Param::Lit(scalar.to_json()),
    }
}

/// Compiles `s`, which starts at 1-based (line, column) `at` inside the string of node `v`
/// ((0, 0): it is the whole string).
fn compile_str(
    s: &str,
    at: (usize, usize),
    escape: Escape,
    v: &Node,
    c: &mut Compiler<'_>,
    d: &mut FileDiags<'_>,
) -> Param {
    let name = format!("t{}{}", c.next_template, escape.suffix());
    c.next_template += 1;
    c.templates.compile(name, s).unwrap_or_else(|issue| {
        let inner = match (issue.at, at) {
            (None, (0, 0)) => None,
            (None, at) => Some(at),
            (Some(inner), (0, 0)) => Some(inner),
            (Some((1, col)), (l, c0)) => Some((l, c0 + col - 1)),
            (Some((line, col)), (l, _)) => Some((l + line - 1, col)),
        };
        let at = inner.map_or(pos(v), |inner| d.inner(pos(v), inner));
        d.error(at, issue.message, issue.hint);
        Param::Lit(serde_json::Value::Null)
    })
}

/// An email recipient string: the rule author's comma-separated list split now (see
/// [`safety::split_recipients`]), one template per recipient (a list of them when several).
fn compile_recipients(
    source: &str,
    v: &Node,
    c: &mut Compiler<'_>,
    d: &mut FileDiags<'_>,
) -> Param {
    let pieces = safety::split_recipients(source);
    if pieces.len() < 2 {
        // One recipient stays a string, as written (rule tests compare it as such).
        return compile_str(source, (0, 0), Escape::None, v, c, d);
    }
    Param::Seq(
        pieces
            .into_iter()
            .map(|(at, piece)| {
                let at = offset_pos(source, at);
                compile_str(piece, at, Escape::None, v, c, d)
            })
            .collect(),
    )
}

/// `script:` takes a `.rhai` path (relative to the rule file's folder) or an inline script;
/// either is compiled now, with errors at their position in the file.
fn compile_script(v: &Node, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> Option<Action> {
    let Value::Str(s) = &v.value else {
        let msg = format!(
            "`script` takes a file path or an inline script, found {}",
            v.value.type_name()
        );
        d.error(pos(v), msg, None);
        return None;
    };
    let (source, origin) = if s.trim_end().ends_with(".rhai") && !s.contains('\n') {
        let path = d
            .file
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(s.trim());
        match std::fs::read_to_string(&path) {
            Ok(text) => (text, crate::script::Origin::file(path)),
            Err(e) => {
                d.error(
                    pos(v),
                    format!("cannot read script `{}`: {e}", path.display()),
                    None,
                );
                return None;
            }
        }
    } else {
        let (line, column) = d.inner(pos(v), (1, 1));
        let origin = crate::script::Origin {
            file: d.file.to_path_buf(),
            line,
            column,
        };
        (s.clone(), origin)
    };
    let script = match c.runner.compile(&source, origin) {
        Ok(script) => script,
        Err(e) => {
            script_error(d, &e, &source);
            return None;
        }
    };
    let problems = c.runner.lint(&script);
    problems.iter().for_each(|e| script_error(d, e, &source));
    if !problems.is_empty() {
        return None;
    }
    let script = std::sync::Arc::new(script);
    let params = Param::Map(vec![("script".into(), Param::Lit(s.clone().into()))]);
    Some(Action {
        kind: ActionKind::Script,
        params,
        script: Some(script),
    })
}

/// A problem of a script at its own position: in the `.rhai` file (with a snippet of the script)
/// for a script file, in the rule file for an inline script.
fn script_error(d: &mut FileDiags<'_>, e: &crate::script::ScriptError, source: &str) {
    let message = format!("Rhai error in `script`: {}", e.message);
    if e.file == d.file {
        d.error((e.line, e.column), message, None);
        return;
    }
    d.out.push(super::Diagnostic {
        severity: super::Severity::Error,
        file: e.file.clone(),
        line: e.line,
        column: e.column,
        rule: d.rule.clone(),
        message,
        hint: None,
        snippet: super::diag::snippet(source, e.line, e.column),
    });
}

/// A plugin used as an action: its parameters are templates like any action's; the literal
/// ones are checked now against the manifest and the plugin's own `validate`.
fn compile_plugin_action(
    kind: String,
    key: &Node,
    value: &Node,
    c: &mut Compiler<'_>,
    d: &mut FileDiags<'_>,
) -> Option<Action> {
    let params = compile_param(value, Escape::None, c, d);
    let literal = match &value.value {
        Value::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.value.key_text(), v.value.to_json()))
                .collect(),
        ),
        _ => serde_json::json!({}),
    };
    if let Err(problems) = c.runner.plugins().validate(&kind, &literal) {
        for p in problems {
            d.error(pos(key), format!("plugin `{kind}`: {p}"), None);
        }
    }
    Some(Action {
        kind: ActionKind::Plugin(kind),
        params,
        script: None,
    })
}
