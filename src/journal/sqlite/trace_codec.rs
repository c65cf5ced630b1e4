//! How a trace is stored: each candidate rule's `"file"` (its rule file's full path, the same
//! for every rule of a file) is replaced by an index into a `"files"` list written once at the
//! end of the trace, and put back on read. With 1,000 rules in 10 files an event has hundreds
//! of candidates, and the path was a quarter of the stored bytes.
//!
//! Likewise the value a failed `match` condition found (`miss.actual`) is the same for every
//! candidate that tested the same path in one event: a path two or more candidates tested has
//! its value once in `"actuals"`, and those misses are stored without `"actual"`.
//!
//! Stored: `{"rules": [{"rule": "a", "file": 0, "miss": {"reason": "condition", "path": "p",
//! "expected": "gte 5"}}, ...], ..., "files": ["/etc/rules/a.yaml"], "actuals": {"p": 1}}`.
//! Traces written before this (no `"files"`) are read back as they are.

use std::collections::{BTreeMap, HashMap};

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

const FILES: &str = "files";
const ACTUALS: &str = "actuals";
const ACTUAL: &str = "actual";

/// What is stored once per trace.
struct Shared<'a> {
    files: Vec<&'a str>,
    actuals: BTreeMap<&'a str, &'a Value>,
}

/// The stored text of `trace`: compact when it has candidate rules with files, else as is.
pub(in crate::journal) fn compact(trace: &Value) -> String {
    let files = distinct_files(trace);
    if files.is_empty() || trace.get(FILES).is_some() || trace.get(ACTUALS).is_some() {
        return trace.to_string();
    }
    let Some(obj) = trace.as_object() else {
        return trace.to_string();
    };
    let shared = Shared {
        files,
        actuals: shared_actuals(trace),
    };
    serde_json::to_string(&Top {
        obj,
        shared: &shared,
    })
    .unwrap_or_else(|_| trace.to_string())
}

/// The trace as it was before [`compact`] (the identity for a trace stored without `"files"`).
pub(in crate::journal) fn restore(mut stored: Value) -> Value {
    let Some(obj) = stored.as_object_mut() else {
        return stored;
    };
    let Some(Value::Array(files)) = obj.shift_remove(FILES) else {
        return stored;
    };
    let actuals = match obj.shift_remove(ACTUALS) {
        Some(Value::Object(actuals)) => actuals,
        _ => Map::new(),
    };
    if let Some(Value::Array(rules)) = obj.get_mut("rules") {
        for rule in rules.iter_mut() {
            if let Some(file) = rule.get_mut("file") {
                if let Some(path) = file.as_u64().and_then(|i| files.get(i as usize)) {
                    *file = path.clone();
                }
            }
            restore_actual(rule, &actuals);
        }
    }
    stored
}

/// Puts a shared `actual` back, last, into a condition miss stored without one.
fn restore_actual(rule: &mut Value, actuals: &Map<String, Value>) {
    let Some(Value::Object(miss)) = rule.get_mut("miss") else {
        return;
    };
    if miss.get("reason").and_then(Value::as_str) != Some("condition") || miss.contains_key(ACTUAL)
    {
        return;
    }
    let value = miss
        .get("path")
        .and_then(Value::as_str)
        .and_then(|p| actuals.get(p));
    if let Some(value) = value.cloned() {
        miss.insert(ACTUAL.to_string(), value);
    }
}

/// The path and value of a condition miss whose `"actual"` is its last key (as written).
fn condition(miss: &Value) -> Option<(&str, &Value)> {
    let obj = miss.as_object()?;
    if obj.get("reason")?.as_str()? != "condition" {
        return None;
    }
    let (last, actual) = obj.iter().next_back()?;
    let path = obj.get("path")?.as_str()?;
    (last == ACTUAL).then_some((path, actual))
}

/// The value per path that two or more candidates' condition misses found (the first one found
/// at that path; a miss that found another value keeps its own).
fn shared_actuals(trace: &Value) -> BTreeMap<&str, &Value> {
    let mut seen: HashMap<&str, (&Value, usize)> = HashMap::new();
    for (path, actual) in rule_entries(trace)
        .iter()
        .filter_map(|r| condition(r.get("miss")?))
    {
        let entry = seen.entry(path).or_insert((actual, 0));
        if entry.0 == actual {
            entry.1 += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, (_, n))| *n >= 2)
        .map(|(path, (actual, _))| (path, actual))
        .collect()
}

/// The distinct `"file"` strings of the candidate rules, in first-seen order.
fn distinct_files(trace: &Value) -> Vec<&str> {
    let mut files: Vec<&str> = Vec::new();
    for rule in rule_entries(trace) {
        if let Some(path) = rule.get("file").and_then(Value::as_str) {
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    files
}

fn rule_entries(trace: &Value) -> &[Value] {
    match trace.get("rules") {
        Some(Value::Array(rules)) => rules,
        _ => &[],
    }
}

/// The trace's own keys (with `"rules"` compacted), then `"files"`.
struct Top<'a> {
    obj: &'a Map<String, Value>,
    shared: &'a Shared<'a>,
}

impl Serialize for Top<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.obj.len() + 1))?;
        for (key, value) in self.obj {
            match value {
                Value::Array(rules) if key == "rules" => {
                    out.serialize_entry(key, &Rules(rules, self.shared))?
                }
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.serialize_entry(FILES, &self.shared.files)?;
        if !self.shared.actuals.is_empty() {
            out.serialize_entry(ACTUALS, &self.shared.actuals)?;
        }
        out.end()
    }
}

struct Rules<'a>(&'a [Value], &'a Shared<'a>);

impl Serialize for Rules<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_seq(Some(self.0.len()))?;
        for rule in self.0 {
            match rule.as_object() {
                Some(obj) => out.serialize_element(&Rule(obj, self.1))?,
                None => out.serialize_element(rule)?,
            }
        }
        out.end()
    }
}

struct Rule<'a>(&'a Map<String, Value>, &'a Shared<'a>);

impl Serialize for Rule<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            let index = match value {
                Value::String(path) if key == "file" => self.1.files.iter().position(|f| f == path),
                _ => None,
            };
            let shared_actual = key == "miss"
                && condition(value)
                    .is_some_and(|(path, actual)| self.1.actuals.get(path) == Some(&actual));
            match (index, value) {
                (Some(i), _) => out.serialize_entry(key, &i)?,
                (None, Value::Object(miss)) if shared_actual => {
                    out.serialize_entry(key, &WithoutActual(miss))?
                }
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.end()
    }
}

/// A condition miss without its (last) `"actual"`.
struct WithoutActual<'a>(&'a Map<String, Value>);

impl Serialize for WithoutActual<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.0.len() - 1))?;
        for (key, value) in self.0.iter().filter(|(k, _)| *k != ACTUAL) {
            out.serialize_entry(key, value)?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn planned() -> Value {
        json!({
            "rules": [
                {"rule": "a", "file": "/etc/storeflow/rules/shop.yaml", "matched": true,
                 "actions": [{"index": 0, "kind": "log", "params": {"message": "hi"}}]},
                {"rule": "b", "file": "/etc/storeflow/rules/shop.yaml", "matched": false,
                 "miss": {"reason": "condition", "path": "order.total", "expected": "gte 5",
                          "actual": 1}},
                {"rule": "c", "file": "/etc/storeflow/rules/other.yaml", "matched": true,
                 "actions": [], "script_error": "s.rhai:1:2: boom"},
                {"rule": "d", "file": "/etc/storeflow/rules/other.yaml", "matched": false,
                 "miss": {"reason": "condition", "path": "order.total", "expected": "gte 9",
                          "actual": 1}},
                {"rule": "e", "file": "/etc/storeflow/rules/other.yaml", "matched": false,
                 "miss": {"reason": "condition", "path": "order.email", "expected": "== \"x\"",
                          "actual": "buyer@example.com"}},
            ],
            "not_listening": 2, "shop": "default", "secret": "current",
        })
    }

    #[test]
    fn a_compacted_trace_reads_back_identical_keys_in_order() {
        let trace = planned();
        let stored = compact(&trace);
        assert_eq!(stored.matches("shop.yaml").count(), 1, "{stored}");
        // order.total was tested twice: its value once; order.email once: kept in place.
        assert_eq!(stored.matches("\"actual\"").count(), 1, "{stored}");
        assert!(
            stored.contains(r#""actuals":{"order.total":1}"#),
            "{stored}"
        );
        let back = restore(serde_json::from_str(&stored).unwrap());
        assert_eq!(back, trace);
        assert_eq!(back.to_string(), trace.to_string(), "same keys, same order");
    }

    #[test]
    fn traces_without_files_are_stored_and_read_as_they_are() {
        for trace in [
            json!({"error": "bad"}),
            json!({"quarantined": {"reason": "x"}}),
            json!({"rules": [], "not_listening": 3}),
            json!({}),
        ] {
            assert_eq!(compact(&trace), trace.to_string());
            assert_eq!(restore(trace.clone()), trace);
        }
        // Written before compaction: a path stays a path.
        assert_eq!(restore(planned()), planned());
    }
}
