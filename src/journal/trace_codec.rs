//! How a trace is stored, compactly. With 1,000 rules an event has hundreds of candidate rules,
//! almost all of them missed on their first `match` condition; stored as the pretty JSON
//! `events show` reads, that was ~145 bytes per candidate (81 KB per event).
//!
//! Stored now (v2): each candidate rule that missed on a `match` condition is an array
//! `[rule, file, path, expected]` (`file` and `path` are indexes into `"files"` and `"paths"`,
//! written once at the end), with a fifth element only when the value it found is not the one
//! `"paths"` holds for that path (the first value found there: an event has one value per
//! path). Every other candidate (matched, `if`, disabled, script errors) stays the object it
//! was, with its file as an index, so the rules that fired are still found by `$.matched`.
//!
//! `{"rules": [["rule-1", 0, 0, "gte 5"], {"rule": "a", "file": 0, "matched": true, ...}],
//!   "not_listening": 3, ..., "files": ["/etc/rules/a.yaml"], "paths": [["order.total", 1]]}`
//!
//! [`restore`] gives back exactly the JSON (keys in order) the trace had before [`compact`],
//! for this form and for the two stored before it: v1 (`"files"` and an `"actuals"` object,
//! candidates as objects) and the plain trace (no `"files"`), read as it is.

use std::collections::HashMap;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

const FILES: &str = "files";
const PATHS: &str = "paths";
/// v1: the shared found values, `{"path": value}`.
const ACTUALS: &str = "actuals";
const ACTUAL: &str = "actual";

/// What is stored once per trace.
struct Shared<'a> {
    files: Vec<&'a str>,
    /// Each path a condition miss tested, with the first value found there.
    paths: Vec<(&'a str, &'a Value)>,
    path_index: HashMap<&'a str, usize>,
}

/// A candidate that missed on a `match` condition, in the shape [`Miss::Condition`] is written
/// (`{"rule", "file", "matched": false, "miss": {"reason": "condition", "path", "expected",
/// "actual"}}`, keys in that order): the ones stored as arrays.
///
/// [`Miss::Condition`]: crate::rules::Miss::Condition
struct ConditionMiss<'a> {
    rule: &'a str,
    file: &'a str,
    path: &'a str,
    expected: &'a str,
    actual: &'a Value,
}

fn condition_miss(rule: &Value) -> Option<ConditionMiss<'_>> {
    let obj = rule.as_object()?;
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    if keys != ["rule", "file", "matched", "miss"] || obj["matched"] != Value::Bool(false) {
        return None;
    }
    let miss = obj["miss"].as_object()?;
    let keys: Vec<&str> = miss.keys().map(String::as_str).collect();
    if keys != ["reason", "path", "expected", ACTUAL] || miss["reason"] != "condition" {
        return None;
    }
    Some(ConditionMiss {
        rule: obj["rule"].as_str()?,
        file: obj["file"].as_str()?,
        path: miss["path"].as_str()?,
        expected: miss["expected"].as_str()?,
        actual: &miss[ACTUAL],
    })
}

/// The stored text of `trace`: compact when it has candidate rules with files, else as is.
pub(in crate::journal) fn compact(trace: &Value) -> String {
    let Some(obj) = trace.as_object() else {
        return trace.to_string();
    };
    let files = distinct_files(trace);
    let reserved = [FILES, PATHS, ACTUALS].iter().any(|k| obj.contains_key(*k));
    if files.is_empty() || reserved {
        return trace.to_string();
    }
    let mut shared = Shared {
        files,
        paths: Vec::new(),
        path_index: HashMap::new(),
    };
    for miss in rule_entries(trace).iter().filter_map(condition_miss) {
        if !shared.path_index.contains_key(miss.path) {
            shared.path_index.insert(miss.path, shared.paths.len());
            shared.paths.push((miss.path, miss.actual));
        }
    }
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
    let paths = match obj.shift_remove(PATHS) {
        Some(Value::Array(paths)) => paths,
        _ => Vec::new(),
    };
    let actuals = match obj.shift_remove(ACTUALS) {
        Some(Value::Object(actuals)) => actuals,
        _ => Map::new(),
    };
    if let Some(Value::Array(rules)) = obj.get_mut("rules") {
        for rule in rules.iter_mut() {
            if let Value::Array(parts) = rule {
                if let Some(whole) = expand(parts, &files, &paths) {
                    *rule = whole;
                }
                continue;
            }
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

/// A condition miss stored as `[rule, file, path, expected(, actual)]`, whole again; `None`
/// for an array that is not one (left as it is).
fn expand(parts: &mut Vec<Value>, files: &[Value], paths: &[Value]) -> Option<Value> {
    let index = |v: &Value| v.as_u64().and_then(|i| usize::try_from(i).ok());
    if !(4..=5).contains(&parts.len()) {
        return None;
    }
    let file = files.get(index(&parts[1])?)?.clone();
    let (path, first) = match paths.get(index(&parts[2])?)? {
        Value::Array(pair) if pair.len() == 2 => (pair[0].clone(), &pair[1]),
        _ => return None,
    };
    let actual = match parts.len() {
        5 => parts.pop()?,
        _ => first.clone(),
    };
    let expected = parts.pop()?;
    let mut miss = Map::new();
    miss.insert("reason".into(), "condition".into());
    miss.insert("path".into(), path);
    miss.insert("expected".into(), expected);
    miss.insert(ACTUAL.into(), actual);
    let mut whole = Map::new();
    whole.insert("rule".into(), parts.swap_remove(0));
    whole.insert("file".into(), file);
    whole.insert("matched".into(), false.into());
    whole.insert("miss".into(), Value::Object(miss));
    Some(Value::Object(whole))
}

/// v1: puts a shared `actual` back, last, into a condition miss stored without one.
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

/// The trace's own keys (with `"rules"` compacted), then `"files"` and `"paths"`.
struct Top<'a> {
    obj: &'a Map<String, Value>,
    shared: &'a Shared<'a>,
}

impl Serialize for Top<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.obj.len() + 2))?;
        for (key, value) in self.obj {
            match value {
                Value::Array(rules) if key == "rules" => {
                    out.serialize_entry(key, &Rules(rules, self.shared))?
                }
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.serialize_entry(FILES, &self.shared.files)?;
        if !self.shared.paths.is_empty() {
            out.serialize_entry(PATHS, &self.shared.paths)?;
        }
        out.end()
    }
}

struct Rules<'a>(&'a [Value], &'a Shared<'a>);

impl Serialize for Rules<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_seq(Some(self.0.len()))?;
        for rule in self.0 {
            match (condition_miss(rule), rule.as_object()) {
                (Some(miss), _) => out.serialize_element(&Compact(miss, self.1))?,
                (None, Some(obj)) => out.serialize_element(&Rule(obj, self.1))?,
                (None, None) => out.serialize_element(rule)?,
            }
        }
        out.end()
    }
}

/// A condition miss as `[rule, file, path, expected(, actual)]`.
struct Compact<'a>(ConditionMiss<'a>, &'a Shared<'a>);

impl Serialize for Compact<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let (miss, shared) = (&self.0, self.1);
        let file = shared.files.iter().position(|f| *f == miss.file);
        let path = shared.path_index.get(miss.path).copied();
        let (Some(file), Some(path)) = (file, path) else {
            return Err(S::Error::custom("a candidate's file or path is not listed"));
        };
        let own = shared.paths[path].1 != miss.actual;
        let mut out = s.serialize_seq(Some(if own { 5 } else { 4 }))?;
        out.serialize_element(miss.rule)?;
        out.serialize_element(&file)?;
        out.serialize_element(&path)?;
        out.serialize_element(miss.expected)?;
        if own {
            out.serialize_element(miss.actual)?;
        }
        out.end()
    }
}

/// Any other candidate: as it is, with its file as an index.
struct Rule<'a>(&'a Map<String, Value>, &'a Shared<'a>);

impl Serialize for Rule<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            let index = match value {
                Value::String(path) if key == "file" => self.1.files.iter().position(|f| f == path),
                _ => None,
            };
            match index {
                Some(i) => out.serialize_entry(key, &i)?,
                None => out.serialize_entry(key, value)?,
            }
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
                {"rule": "f", "file": "/etc/storeflow/rules/other.yaml", "matched": false,
                 "miss": {"reason": "if_false", "expr": "false"}},
                {"rule": "g", "file": "/etc/storeflow/rules/other.yaml", "matched": false,
                 "miss": {"reason": "condition", "path": "order.missing", "expected": "exists",
                          "actual": null}},
            ],
            "not_listening": 2, "shop": "default", "secret": "current",
        })
    }

    fn round_trip(trace: &Value) -> String {
        let stored = compact(trace);
        let back = restore(serde_json::from_str(&stored).unwrap());
        assert_eq!(&back, trace);
        assert_eq!(back.to_string(), trace.to_string(), "same keys, same order");
        stored
    }

    #[test]
    fn a_compacted_trace_reads_back_identical_keys_in_order() {
        let stored = round_trip(&planned());
        assert_eq!(stored.matches("shop.yaml").count(), 1, "{stored}");
        assert_eq!(stored.matches("order.total").count(), 1, "{stored}");
        assert!(stored.contains(r#"["b",0,0,"gte 5"]"#), "{stored}");
        assert!(stored.contains(r#"["g",1,2,"exists"]"#), "{stored}");
        assert!(stored.ends_with(
            r#""paths":[["order.total",1],["order.email","buyer@example.com"],["order.missing",null]]}"#
        ));
        // Matched rules stay objects: `$.matched` finds them (event_rules backfill).
        assert!(
            stored.contains(r#"{"rule":"a","file":0,"matched":true"#),
            "{stored}"
        );
    }

    #[test]
    fn regression_a_miss_that_found_another_value_at_a_path_keeps_its_own() {
        let mut trace = planned();
        trace["rules"][3]["miss"]["actual"] = json!(2);
        let stored = round_trip(&trace);
        assert!(stored.contains(r#"["d",1,0,"gte 9",2]"#), "{stored}");
    }

    #[test]
    fn regression_candidates_of_a_thousand_rules_take_a_few_dozen_bytes_each() {
        let rules: Vec<Value> = (0..375)
            .map(|i| {
                json!({"rule": format!("rule-{i:04}"), "file": "/etc/storeflow/rules/gen.yaml",
                "matched": false, "miss": {"reason": "condition", "path": "payload.data.product_id",
                "expected": format!("== \"prod-{i:04}\""), "actual": "65f2c9a1b7d4e"}})
            })
            .collect();
        let trace = json!({"rules": rules, "not_listening": 625, "shop": "default"});
        let stored = round_trip(&trace);
        assert!(stored.len() < 375 * 40, "{} bytes", stored.len());
        assert!(trace.to_string().len() > 3 * stored.len());
    }

    #[test]
    fn traces_stored_by_the_previous_version_read_back_whole() {
        // v1: files once, shared found values in "actuals", candidates as objects.
        let v1 = r#"{"rules":[{"rule":"a","file":0,"matched":true,"actions":[{"index":0,"kind":"log","params":{"message":"hi"}}]},{"rule":"b","file":0,"matched":false,"miss":{"reason":"condition","path":"order.total","expected":"gte 5"}},{"rule":"c","file":1,"matched":true,"actions":[],"script_error":"s.rhai:1:2: boom"},{"rule":"d","file":1,"matched":false,"miss":{"reason":"condition","path":"order.total","expected":"gte 9"}},{"rule":"e","file":1,"matched":false,"miss":{"reason":"condition","path":"order.email","expected":"== \"x\"","actual":"buyer@example.com"}},{"rule":"f","file":1,"matched":false,"miss":{"reason":"if_false","expr":"false"}},{"rule":"g","file":1,"matched":false,"miss":{"reason":"condition","path":"order.missing","expected":"exists","actual":null}}],"not_listening":2,"shop":"default","secret":"current","files":["/etc/storeflow/rules/shop.yaml","/etc/storeflow/rules/other.yaml"],"actuals":{"order.total":1}}"#;
        let back = restore(serde_json::from_str(v1).unwrap());
        assert_eq!(back.to_string(), planned().to_string());
        // Written before compaction: a path stays a path.
        assert_eq!(restore(planned()), planned());
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
    }
}
