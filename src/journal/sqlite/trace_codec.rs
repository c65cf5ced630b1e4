//! How a trace is stored: each candidate rule's `"file"` (its rule file's full path, the same
//! for every rule of a file) is replaced by an index into a `"files"` list written once at the
//! end of the trace, and put back on read. With 1,000 rules in 10 files an event has hundreds
//! of candidates, and the path was a quarter of the stored bytes.
//!
//! Stored: `{"rules": [{"rule": "a", "file": 0, ...}], ..., "files": ["/etc/rules/a.yaml"]}`.
//! Traces written before this (no `"files"`) are read back as they are.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

const FILES: &str = "files";

/// The stored text of `trace`: compact when it has candidate rules with files, else as is.
pub(super) fn compact(trace: &Value) -> String {
    let files = distinct_files(trace);
    if files.is_empty() || trace.get(FILES).is_some() {
        return trace.to_string();
    }
    let Some(obj) = trace.as_object() else {
        return trace.to_string();
    };
    serde_json::to_string(&Top { obj, files: &files }).unwrap_or_else(|_| trace.to_string())
}

/// The trace as it was before [`compact`] (the identity for a trace stored without `"files"`).
pub(super) fn restore(mut stored: Value) -> Value {
    let Some(obj) = stored.as_object_mut() else {
        return stored;
    };
    let Some(Value::Array(files)) = obj.shift_remove(FILES) else {
        return stored;
    };
    if let Some(Value::Array(rules)) = obj.get_mut("rules") {
        for rule in rules.iter_mut() {
            let Some(file) = rule.get_mut("file") else {
                continue;
            };
            if let Some(path) = file.as_u64().and_then(|i| files.get(i as usize)) {
                *file = path.clone();
            }
        }
    }
    stored
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
    files: &'a [&'a str],
}

impl Serialize for Top<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.obj.len() + 1))?;
        for (key, value) in self.obj {
            match value {
                Value::Array(rules) if key == "rules" => {
                    out.serialize_entry(key, &Rules(rules, self.files))?
                }
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.serialize_entry(FILES, self.files)?;
        out.end()
    }
}

struct Rules<'a>(&'a [Value], &'a [&'a str]);

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

struct Rule<'a>(&'a Map<String, Value>, &'a [&'a str]);

impl Serialize for Rule<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            let index = match value {
                Value::String(path) if key == "file" => self.1.iter().position(|f| f == path),
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
            ],
            "not_listening": 2, "shop": "default", "secret": "current",
        })
    }

    #[test]
    fn a_compacted_trace_reads_back_identical_keys_in_order() {
        let trace = planned();
        let stored = compact(&trace);
        assert_eq!(stored.matches("shop.yaml").count(), 1, "{stored}");
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
