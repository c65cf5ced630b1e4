//! What can be known about a compiled script at load, beyond its syntax: calls of functions that
//! exist nowhere (neither built in, nor registered, nor defined by the script, nor a plugin), and
//! intent or plugin calls whose literal `#{...}` map has unknown or missing parameters. Each
//! would only fail when the rule fires; `check` reports them at their position instead.
//!
//! Calls that cannot be judged statically are left alone: namespaced calls into imported
//! modules, names that are also variables (a function pointer called directly), maps built at
//! run time.

use std::collections::HashSet;

use rhai::{ASTNode, Engine, Expr, FnCallExpr, Position, AST};

/// A plain (not operator, not namespaced) function call, with the keys of its argument when that
/// is a single literal map.
struct Call {
    name: String,
    pos: Position,
    map: Option<(Vec<String>, Position)>,
}

impl Call {
    fn of(call: &FnCallExpr, pos: Position) -> Option<Call> {
        if call.is_operator_call() || !call.namespace.is_empty() {
            return None;
        }
        let map = match call.args.as_slice() {
            [Expr::Map(m, at)] => {
                Some((m.0.iter().map(|(k, _)| k.name.to_string()).collect(), *at))
            }
            // A map literal of constants is folded into one constant at compile time.
            [Expr::DynamicConstant(v, at)] if v.is_map() => v
                .read_lock::<rhai::Map>()
                .map(|m| (m.keys().map(|k| k.to_string()).collect(), *at)),
            _ => None,
        };
        Some(Call {
            name: call.name.to_string(),
            pos,
            map,
        })
    }
}

use super::{intents, Plugins};
use crate::model::actions;

/// Function names a script may call that are keywords rather than registered functions.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

/// Every function name a script can call on `engine` (plus the keywords).
pub fn known_functions(engine: &Engine) -> HashSet<String> {
    let mut names: HashSet<String> = engine
        .collect_fn_metadata(None, |f| Some(f.metadata.name.to_string()), true)
        .into_iter()
        .collect();
    names.extend(KEYWORDS.iter().map(|k| k.to_string()));
    names
}

/// Problems of `ast` found without running it, each with its Rhai position.
pub fn lint(ast: &AST, known: &HashSet<String>, plugins: &Plugins) -> Vec<(Position, String)> {
    let own: HashSet<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
    let mut variables = HashSet::new();
    let mut calls: Vec<Call> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos)))
            | Some(ASTNode::Stmt(rhai::Stmt::FnCall(call, pos))) => {
                calls.extend(Call::of(call, *pos))
            }
            Some(ASTNode::Expr(Expr::Variable(v, _, _))) => {
                variables.insert(v.1.to_string());
            }
            Some(ASTNode::Stmt(rhai::Stmt::Var(v, _, _))) => {
                variables.insert(v.0.name.to_string());
            }
            _ => {}
        }
        true
    });
    for f in ast.iter_functions() {
        variables.extend(f.params.iter().map(|p| p.to_string()));
    }
    let mut out = Vec::new();
    for call in calls {
        let name = call.name.as_str();
        if variables.contains(name) || own.contains(name) {
            continue;
        }
        if !known.contains(name) {
            out.push((call.pos, unknown_function(name, known, &own)));
            continue;
        }
        if let Some((keys, at)) = &call.map {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let problems = param_problems(name, &keys, plugins);
            out.extend(
                problems
                    .into_iter()
                    .map(|p| (*at, format!("{name}(): {p}"))),
            );
        }
    }
    out
}

fn unknown_function(name: &str, known: &HashSet<String>, own: &HashSet<String>) -> String {
    let candidates: Vec<&str> = known
        .iter()
        .chain(own)
        .map(String::as_str)
        .filter(|n| !n.contains('$'))
        .collect();
    let mut msg = format!("unknown function `{name}`");
    if let Some(near) = crate::template::suggest::nearest(name, &candidates) {
        msg.push_str(&format!(" (did you mean `{near}`?)"));
    }
    msg
}

/// Unknown and missing parameters of an intent or plugin call with literal `keys`.
fn param_problems(name: &str, keys: &[&str], plugins: &Plugins) -> Vec<String> {
    if intents::is_intent(name) {
        let Some(spec) = actions::spec(name) else {
            return Vec::new();
        };
        let mut out: Vec<String> = keys
            .iter()
            .filter(|k| spec.param(k).is_none())
            .map(|k| {
                format!(
                    "unknown parameter `{k}` ({name} takes {})",
                    list(&spec.names())
                )
            })
            .collect();
        let missing = actions::missing(spec, keys);
        if !missing.is_empty() {
            out.push(format!("missing {}", missing.join(", ")));
        }
        return out;
    }
    let Some(manifest) = plugins.manifest(name) else {
        return Vec::new();
    };
    let known: Vec<&str> = manifest.params.iter().map(|p| p.name.as_str()).collect();
    let mut out: Vec<String> = keys
        .iter()
        .filter(|k| !known.contains(k))
        .map(|k| format!("unknown parameter `{k}` (takes {})", list(&known)))
        .collect();
    out.extend(
        manifest
            .params
            .iter()
            .filter(|p| p.required && p.default.is_none() && !keys.contains(&p.name.as_str()))
            .map(|p| format!("missing required parameter `{}`", p.name)),
    );
    out
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
