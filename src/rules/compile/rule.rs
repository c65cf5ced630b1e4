//! One rule: its keys, `on` patterns, `match` conditions and Rhai `if` expression.

use super::actions::compile_actions;
use super::{Compiler, IfExpr, Rule, RULE_KEYS};
use crate::rules::diag::FileDiags;
use crate::rules::model::{pos, Node, Value};
use crate::rules::{conditions, pattern};
use crate::template::suggest::suggest;

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
        time: super::time::compile(entries, c, d),
    };
    let mut rule = rule;
    for a in &rule.actions {
        c.templates.paths(&a.params, &mut rule.template_paths);
    }
    if let Some(limit) = &rule.time.limit {
        c.templates.paths(&limit.key, &mut rule.template_paths);
    }
    check_time_variables(node, &rule, d);
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
            crate::rules::fields::report_rhai(&source, pos(n), d);
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

/// `events` exists only in digest rules, `waited` only in rules with `wait`: elsewhere they
/// would render empty.
fn check_time_variables(node: &Node, rule: &Rule, d: &mut FileDiags<'_>) {
    let uses = |root: &str| {
        rule.template_paths
            .iter()
            .any(|p| p.first().is_some_and(|f| f == root))
    };
    if uses("events") && rule.time.digest.is_none() {
        let hint = Some("add `digest: {every: 10m}` to the rule, or use `event`".into());
        d.error(
            pos(node),
            "templates use `events`, which only digest rules have",
            hint,
        );
    }
    if uses("waited") && rule.time.wait.is_none() {
        let hint = Some("add `wait: {for: ...}` to the rule".into());
        d.error(
            pos(node),
            "templates use `waited`, which only rules with `wait` have",
            hint,
        );
    }
}
