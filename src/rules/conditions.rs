//! Compiling a rule's `match:` YAML into a [`Matcher`], with a diagnostic for every bad path,
//! operator or operand (the rule keeps compiling so all of them are reported).

use regex::Regex;
use serde_json::Value as J;

use super::diag::FileDiags;
use super::matcher::{Matcher, Op, Path, Root, Test, OPERATORS};
use super::model::{pos, Node, Value};
use crate::template::suggest::{nearest, suggest};

/// Compiles a `match:` map (or a group's member map).
pub fn compile(node: &Node, d: &mut FileDiags<'_>) -> Matcher {
    let Value::Map(entries) = &node.value else {
        d.error(
            pos(node),
            format!(
                "`match` must be a mapping of path: condition, found {}",
                node.value.type_name()
            ),
            Some("e.g. `order.total: { gte: 20 }`".into()),
        );
        return Matcher::default();
    };
    let mut tests = Vec::new();
    for (key, value) in entries {
        let name = key.value.key_text();
        match name.as_str() {
            "any" | "all" => {
                let list = compile_group(&name, value, d);
                tests.push(if name == "any" {
                    Test::Any(list)
                } else {
                    Test::All(list)
                });
            }
            "not" => tests.push(Test::Not(Box::new(compile(value, d)))),
            _ => compile_path_conditions(&name, key, value, d, &mut tests),
        }
    }
    Matcher { tests }
}

fn compile_group(name: &str, node: &Node, d: &mut FileDiags<'_>) -> Vec<Matcher> {
    match &node.value {
        Value::Seq(items) => items.iter().map(|m| compile(m, d)).collect(),
        other => {
            d.error(
                pos(node),
                format!(
                    "`{name}` must be a list of match maps, found {}",
                    other.type_name()
                ),
                Some(format!(
                    "write `{name}:` followed by `- path: value` entries"
                )),
            );
            Vec::new()
        }
    }
}

fn compile_path_conditions(
    name: &str,
    key: &Node,
    value: &Node,
    d: &mut FileDiags<'_>,
    tests: &mut Vec<Test>,
) {
    let Some(path) = compile_path(name, key, d) else {
        return;
    };
    match &value.value {
        Value::Map(ops) => {
            for (op_key, operand) in ops {
                if let Some(op) = compile_op(&op_key.value.key_text(), op_key, operand, d) {
                    tests.push(Test::Cond {
                        path: path.clone(),
                        op,
                    });
                }
            }
        }
        Value::Seq(_) => d.error(
            pos(value),
            format!("condition on `{name}` is a list"),
            Some("to match one of several values write `{ in: [a, b] }`".into()),
        ),
        scalar => tests.push(Test::Cond {
            path,
            op: Op::Eq(scalar.to_json()),
        }),
    }
}

/// Splits and checks a dotted path; `None` (with a diagnostic) when it cannot resolve.
pub fn compile_path(text: &str, at: &Node, d: &mut FileDiags<'_>) -> Option<Path> {
    let mut parts = text.split('.');
    let root = match parts.next() {
        Some("event") => Root::Event,
        Some("order") => Root::Order,
        Some("payload") => Root::Payload,
        Some(other) => {
            let hint = match nearest(other, &["event", "order", "payload"]) {
                Some(n) => format!("did you mean `{n}`?"),
                None => "paths start with `event.`, `order.` or `payload.`".into(),
            };
            d.error(
                pos(at),
                format!("unknown path root `{other}` in `{text}`"),
                Some(hint),
            );
            return None;
        }
        None => return None,
    };
    let steps: Vec<(String, Option<usize>)> =
        parts.map(|s| (s.to_string(), s.parse().ok())).collect();
    if steps.iter().any(|(s, _)| s.is_empty()) {
        d.error(pos(at), format!("empty segment in path `{text}`"), None);
        return None;
    }
    if let Err(e) = crate::template::fields::check(&text.split('.').collect::<Vec<_>>()) {
        d.error(pos(at), e.message, Some(e.hint));
        return None;
    }
    Some(Path {
        text: text.to_string(),
        root,
        steps,
    })
}

fn compile_op(name: &str, key: &Node, operand: &Node, d: &mut FileDiags<'_>) -> Option<Op> {
    let v = &operand.value;
    let result = match name {
        "eq" => scalar(v).map(Op::Eq),
        "ne" => scalar(v).map(Op::Ne),
        "gt" => num(name, v).map(Op::Gt),
        "gte" => num(name, v).map(Op::Gte),
        "lt" => num(name, v).map(Op::Lt),
        "lte" => num(name, v).map(Op::Lte),
        "in" => list(name, v).map(Op::In),
        "not_in" => list(name, v).map(Op::NotIn),
        "contains" => scalar(v).map(Op::Contains),
        "starts_with" => string(name, v).map(Op::StartsWith),
        "matches" => string(name, v).and_then(|re| {
            Regex::new(&re).map(Op::Matches).map_err(|e| {
                let detail = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                format!("invalid regex `{re}`: {detail}")
            })
        }),
        "exists" => match v {
            Value::Bool(b) => Ok(Op::Exists(*b)),
            other => Err(format!(
                "`exists` takes true or false, found {}",
                other.type_name()
            )),
        },
        _ => {
            d.error(
                pos(key),
                format!("unknown operator `{name}`"),
                Some(suggest(name, OPERATORS, "operators")),
            );
            return None;
        }
    };
    result
        .map_err(|message| d.error(pos(operand), message, None))
        .ok()
}

fn scalar(v: &Value) -> Result<J, String> {
    match v {
        Value::Seq(_) | Value::Map(_) => {
            Err(format!("expected a single value, found {}", v.type_name()))
        }
        _ => Ok(v.to_json()),
    }
}

fn num(op: &str, v: &Value) -> Result<f64, String> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("`{op}` needs a number, found \"{s}\"")),
        other => Err(format!(
            "`{op}` needs a number, found {}",
            other.type_name()
        )),
    }
}

fn list(op: &str, v: &Value) -> Result<Vec<J>, String> {
    match v {
        Value::Seq(items) => items.iter().map(|n| scalar(&n.value)).collect(),
        other => Err(format!("`{op}` needs a list, found {}", other.type_name())),
    }
}

fn string(op: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "`{op}` needs a string, found {}",
            other.type_name()
        )),
    }
}
