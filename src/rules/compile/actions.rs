//! A rule's actions: the built-in ones against the action table, plugins against their
//! manifest, every string parameter compiled as a template.

use super::script::compile_script;
use super::{Action, Compiler};
use crate::rules::actions::{self, ActionKind, ActionSpec};
use crate::rules::diag::FileDiags;
use crate::rules::model::{pos, Node, Value};
use crate::rules::safety;
use crate::template::render::{offset_pos, Escape, Param};
use crate::template::suggest::suggest;

pub(super) fn compile_actions(
    n: &Node,
    c: &mut Compiler<'_>,
    d: &mut FileDiags<'_>,
) -> Vec<Action> {
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
    let (key, value) = single_entry(item, d)?;
    let kind = key.value.key_text();
    if ActionKind::parse(&kind) == ActionKind::Script {
        return compile_script(value, c, d);
    }
    if c.runner.plugins().names().contains(&kind) {
        return compile_plugin_action(kind, key, value, c, d);
    }
    let Some(spec) = actions::spec(&kind) else {
        unknown_action(&kind, key, c, d);
        return None;
    };
    let params = params_of(&kind, value, d)?;
    let given: Vec<String> = params.iter().map(|(k, _)| k.value.key_text()).collect();
    check_missing(&kind, spec, key, &given, d);
    let out = compile_params(&kind, spec, params, &given, c, d);
    Some(Action {
        kind: spec.kind.clone(),
        params: Param::Map(out),
        script: None,
    })
}

/// The action name and its parameters of one `actions` item (a mapping with one key).
/// `delay`, `if_still` and `quiet_hours` beside the name are read by `compile::time`.
fn single_entry<'n>(item: &'n Node, d: &mut FileDiags<'_>) -> Option<(&'n Node, &'n Node)> {
    let named = |e: &'n Vec<(Node, Node)>| -> Vec<&'n (Node, Node)> {
        e.iter()
            .filter(|(k, _)| !super::time::ACTION_TIME_KEYS.contains(&k.value.key_text().as_str()))
            .collect()
    };
    match &item.value {
        Value::Map(e) if named(e).len() == 1 => named(e).first().map(|(k, v)| (k, v)),
        _ => {
            let hint =
                Some("write `- slack: { text: \"...\" }`: one action name per list item".into());
            d.error(
                pos(item),
                "an action must be a mapping with exactly one key, the action name",
                hint,
            );
            None
        }
    }
}

/// Reports an action name that is neither built in nor a plugin, with the nearest known one.
fn unknown_action(kind: &str, key: &Node, c: &Compiler<'_>, d: &mut FileDiags<'_>) {
    let mut known: Vec<String> = actions::kinds().iter().map(|k| k.to_string()).collect();
    known.extend(c.runner.plugins().names());
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let hint = suggest(kind, &known, "actions");
    d.error(pos(key), format!("unknown action `{kind}`"), Some(hint));
}

/// The parameter entries of an action (none for `email:` with no value); `None` when the value
/// is not a mapping.
fn params_of<'n>(kind: &str, value: &'n Node, d: &mut FileDiags<'_>) -> Option<&'n [(Node, Node)]> {
    match &value.value {
        Value::Map(p) => Some(p.as_slice()),
        Value::Null => Some(&[]),
        other => {
            let msg = format!(
                "parameters of `{kind}` must be a mapping, found {}",
                other.type_name()
            );
            d.error(pos(value), msg, None);
            None
        }
    }
}

/// Reports the required parameters of `spec` that `given` lacks.
fn check_missing(
    kind: &str,
    spec: &ActionSpec,
    key: &Node,
    given: &[String],
    d: &mut FileDiags<'_>,
) {
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
}

/// Checks and compiles each known parameter of a built-in action (unknown ones are reported
/// and dropped).
fn compile_params(
    kind: &str,
    spec: &ActionSpec,
    params: &[(Node, Node)],
    given: &[String],
    c: &mut Compiler<'_>,
    d: &mut FileDiags<'_>,
) -> Vec<(String, Param)> {
    let mut out = Vec::new();
    for ((pk, pv), name) in params.iter().zip(given) {
        if spec.param(name).is_none() {
            let msg = format!("unknown parameter `{name}` for action `{kind}`");
            d.error(
                pos(pk),
                msg,
                Some(suggest(name, &spec.names(), "parameters")),
            );
            continue;
        }
        check_param_value(kind, name, pv, c, d);
        safety::check_param(kind, name, pv, &c.options.http_allow_hosts, d);
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
            _ => compile_param(pv, actions::escape(kind, name), c, d),
        };
        out.push((name.clone(), param));
    }
    out
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
