//! The pure matcher: compiled `match:` conditions and their evaluation against one event.
//!
//! Conditions are compiled at load (paths split, regexes built, operands checked; see
//! [`super::conditions`]); evaluating them borrows the event's payload and never clones it.
//! Evaluation stops at the first condition that fails and reports it with the value found,
//! which is what `simulate` and the trace show.

use regex::Regex;
use serde_json::Value as J;

use crate::template::filters::number;
use crate::template::Scope;

/// Where a dotted path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Event,
    Order,
    Payload,
}

/// Fields of `event.*` paths.
pub const EVENT_FIELDS: &[&str] = &[
    "id",
    "source",
    "shop",
    "kind",
    "topic",
    "canonical",
    "received_at",
];
/// Fields of `order.*` paths ([`crate::model::event::OrderView`]).
pub const ORDER_FIELDS: &[&str] = &[
    "id", "status", "total", "currency", "customer", "items", "shop",
];

/// A compiled dotted path (`payload.basket.items.0.count`).
#[derive(Debug, Clone)]
pub struct Path {
    pub text: String,
    pub root: Root,
    /// Each step: the key, and the array index when the key is a number.
    pub steps: Vec<(String, Option<usize>)>,
}

/// One operator with its operand, checked at load.
#[derive(Debug, Clone)]
pub enum Op {
    Eq(J),
    Ne(J),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    In(Vec<J>),
    NotIn(Vec<J>),
    Contains(J),
    StartsWith(String),
    Matches(Regex),
    Exists(bool),
}

/// Operator names as written in rules.
pub const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "matches",
    "exists",
];

/// One test in a `match:` map; all tests of a [`Matcher`] must hold.
#[derive(Debug, Clone)]
pub enum Test {
    Cond { path: Path, op: Op },
    Any(Vec<Matcher>),
    All(Vec<Matcher>),
    Not(Box<Matcher>),
}

/// A compiled `match:` map.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub tests: Vec<Test>,
}

/// The first test that did not hold (becomes [`super::Miss::Condition`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub path: String,
    pub expected: String,
    pub actual: J,
}

/// The value at `path`, if every step exists.
pub fn resolve<'s>(scope: &'s Scope<'_>, path: &Path) -> Option<&'s J> {
    let root = match path.root {
        Root::Event => scope.event_json(),
        Root::Order => scope.order_json(),
        Root::Payload => &scope.event.payload,
    };
    path.steps.iter().try_fold(root, |v, (key, index)| match v {
        J::Object(m) => m.get(key.as_str()),
        J::Array(a) => index.and_then(|i| a.get(i)),
        _ => None,
    })
}

impl Matcher {
    /// `Ok` when every test holds, else the first one that does not.
    pub fn check(&self, scope: &Scope<'_>) -> Result<(), Failure> {
        self.tests.iter().try_for_each(|t| t.check(scope))
    }
}

impl Test {
    fn check(&self, scope: &Scope<'_>) -> Result<(), Failure> {
        match self {
            Test::Cond { path, op } => {
                let actual = resolve(scope, path);
                if op.holds(actual) {
                    return Ok(());
                }
                Err(Failure {
                    path: path.text.clone(),
                    expected: op.describe(),
                    actual: actual.cloned().unwrap_or(J::Null),
                })
            }
            Test::Any(list) if list.iter().any(|m| m.check(scope).is_ok()) => Ok(()),
            Test::Any(list) => Err(group_failure("any", format!("any of {}", list.len()))),
            Test::All(list) => list.iter().try_for_each(|m| m.check(scope)),
            Test::Not(m) if m.check(scope).is_ok() => Err(group_failure(
                "not",
                format!("not all of {}", m.tests.len()),
            )),
            Test::Not(_) => Ok(()),
        }
    }
}

fn group_failure(path: &str, expected: String) -> Failure {
    Failure {
        path: path.to_string(),
        expected,
        actual: J::Null,
    }
}

impl Op {
    /// Whether the operator holds for the value found (`None`: the path does not exist).
    pub fn holds(&self, actual: Option<&J>) -> bool {
        let num = || actual.and_then(number);
        match self {
            Op::Eq(e) => actual.is_some_and(|a| loose_eq(a, e)),
            Op::Ne(e) => !actual.is_some_and(|a| loose_eq(a, e)),
            Op::Gt(n) => num().is_some_and(|a| a > *n),
            Op::Gte(n) => num().is_some_and(|a| a >= *n),
            Op::Lt(n) => num().is_some_and(|a| a < *n),
            Op::Lte(n) => num().is_some_and(|a| a <= *n),
            Op::In(list) => actual.is_some_and(|a| list.iter().any(|e| loose_eq(a, e))),
            Op::NotIn(list) => !actual.is_some_and(|a| list.iter().any(|e| loose_eq(a, e))),
            Op::Contains(e) => actual.is_some_and(|a| contains(a, e)),
            Op::StartsWith(p) => actual
                .and_then(text)
                .is_some_and(|s| s.starts_with(p.as_str())),
            Op::Matches(re) => actual.and_then(text).is_some_and(|s| re.is_match(&s)),
            Op::Exists(want) => actual.is_some_and(|a| !a.is_null()) == *want,
        }
    }

    /// The operator and operand as a trace shows them (`gte 20`, `== "PHYSICAL"`).
    pub fn describe(&self) -> String {
        let list = |l: &Vec<J>| J::Array(l.clone()).to_string();
        match self {
            Op::Eq(e) => format!("== {e}"),
            Op::Ne(e) => format!("!= {e}"),
            Op::Gt(n) => format!("gt {n}"),
            Op::Gte(n) => format!("gte {n}"),
            Op::Lt(n) => format!("lt {n}"),
            Op::Lte(n) => format!("lte {n}"),
            Op::In(l) => format!("in {}", list(l)),
            Op::NotIn(l) => format!("not_in {}", list(l)),
            Op::Contains(e) => format!("contains {e}"),
            Op::StartsWith(p) => format!("starts_with {}", J::from(p.as_str())),
            Op::Matches(re) => format!("matches {}", J::from(re.as_str())),
            Op::Exists(b) => format!("exists {b}"),
        }
    }
}

/// Text of a string or number (what `starts_with` and `matches` look at).
fn text(v: &J) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        J::String(s) => Some(s.as_str().into()),
        J::Number(n) => Some(n.to_string().into()),
        _ => None,
    }
}

/// Equality where numbers compare numerically (`20`, `20.0` and `"20"` are equal when either
/// side is a JSON number); everything else compares exactly.
pub fn loose_eq(a: &J, e: &J) -> bool {
    if a.is_number() || e.is_number() {
        if let (Some(x), Some(y)) = (number(a), number(e)) {
            return x == y;
        }
    }
    a == e
}

fn contains(a: &J, e: &J) -> bool {
    match a {
        J::String(s) => text(e).is_some_and(|t| s.contains(t.as_ref())),
        J::Array(items) => items.iter().any(|i| loose_eq(i, e)),
        _ => false,
    }
}

#[cfg(test)]
#[path = "matcher_tests.rs"]
mod tests;
