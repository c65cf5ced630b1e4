//! A [`Trace`] in the journal's stored form (`journal/trace_codec.rs`, v2), written
//! straight from the typed trace. Building the JSON tree of hundreds of candidate rules first
//! (`serde_json::to_value`) and compacting it took three quarters of the pipeline thread with
//! 1,000 rules. The text is the same as the journal's `compact` of that tree (tested below).

use std::collections::HashMap;

use serde::ser::{Error as _, Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use super::trace::{RuleRecord, Trace};
use crate::journal::StoredTrace;
use crate::rules::Miss;

/// What is stored once per trace.
struct Shared<'a> {
    files: Vec<&'a str>,
    paths: Vec<(&'a str, &'a Value)>,
    path_index: HashMap<&'a str, usize>,
}

/// The stored form of `trace`.
pub fn stored(trace: &Trace) -> Result<StoredTrace, serde_json::Error> {
    let records = trace.records();
    if records.is_empty() {
        return Ok(StoredTrace::from_text(serde_json::to_string(trace)?));
    }
    let Some(files) = distinct_files(records) else {
        // A path that is not UTF-8: the generic way (which says what is wrong).
        return Ok(StoredTrace::from(&serde_json::to_value(trace)?));
    };
    let mut shared = Shared {
        files,
        paths: Vec::new(),
        path_index: HashMap::new(),
    };
    for (_, path, _, actual) in records.iter().filter_map(condition_miss) {
        if !shared.path_index.contains_key(path) {
            shared.path_index.insert(path, shared.paths.len());
            shared.paths.push((path, actual));
        }
    }
    // The trace's other keys (not_listening aside), as the typed trace writes them.
    let rest = serde_json::to_value(Trace {
        rules: None,
        error: trace.error.clone(),
        shop: trace.shop.clone(),
        secret: trace.secret.clone(),
        quarantined: trace.quarantined.clone(),
        time: trace.time.clone(),
    })?;
    let text = serde_json::to_string(&Top {
        records,
        not_listening: trace.not_listening(),
        rest: rest.as_object(),
        shared: &shared,
    })?;
    Ok(StoredTrace::from_text(text))
}

/// `(file, path, expected, actual)` of a candidate stored as an array: it missed on a `match`
/// condition (no actions, no script error).
fn condition_miss(r: &RuleRecord) -> Option<(&str, &str, &str, &Value)> {
    let v = &r.verdict;
    if v.matched || !v.actions.is_empty() || r.script_error.is_some() {
        return None;
    }
    match v.miss.as_ref()? {
        Miss::Condition {
            path,
            expected,
            actual,
        } => Some((v.file.to_str()?, path, expected, actual)),
        _ => None,
    }
}

/// The candidates' files in first-seen order; `None` if one is not UTF-8.
fn distinct_files(records: &[RuleRecord]) -> Option<Vec<&str>> {
    let mut files: Vec<&str> = Vec::new();
    for r in records {
        let file = r.verdict.file.to_str()?;
        if !files.contains(&file) {
            files.push(file);
        }
    }
    Some(files)
}

struct Top<'a> {
    records: &'a [RuleRecord],
    not_listening: usize,
    rest: Option<&'a serde_json::Map<String, Value>>,
    shared: &'a Shared<'a>,
}

impl Serialize for Top<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(None)?;
        out.serialize_entry("rules", &Entries(self.records, self.shared))?;
        out.serialize_entry("not_listening", &self.not_listening)?;
        for (key, value) in self.rest.into_iter().flatten() {
            out.serialize_entry(key, value)?;
        }
        out.serialize_entry("files", &self.shared.files)?;
        if !self.shared.paths.is_empty() {
            out.serialize_entry("paths", &self.shared.paths)?;
        }
        out.end()
    }
}

struct Entries<'a>(&'a [RuleRecord], &'a Shared<'a>);

impl Serialize for Entries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_seq(Some(self.0.len()))?;
        for r in self.0 {
            let file = r
                .verdict
                .file
                .to_str()
                .and_then(|f| self.1.files.iter().position(|known| *known == f))
                .ok_or_else(|| S::Error::custom("a candidate's file is not listed"))?;
            match condition_miss(r) {
                Some((_, path, expected, actual)) => {
                    let path = self.1.path_index[path];
                    let own = (self.1.paths[path].1 != actual).then_some(actual);
                    out.serialize_element(&Compact {
                        rule: &r.verdict.rule,
                        file,
                        path,
                        expected,
                        own,
                    })?
                }
                None => {
                    let mut whole = serde_json::to_value(r).map_err(S::Error::custom)?;
                    whole["file"] = file.into();
                    out.serialize_element(&whole)?
                }
            }
        }
        out.end()
    }
}

/// `[rule, file, path, expected(, actual)]`.
struct Compact<'a> {
    rule: &'a str,
    file: usize,
    path: usize,
    expected: &'a str,
    own: Option<&'a Value>,
}

impl Serialize for Compact<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_seq(Some(4 + usize::from(self.own.is_some())))?;
        out.serialize_element(self.rule)?;
        out.serialize_element(&self.file)?;
        out.serialize_element(&self.path)?;
        out.serialize_element(self.expected)?;
        if let Some(actual) = self.own {
            out.serialize_element(actual)?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::time::{TimeNote, TimeWhat};
    use crate::plan::trace::{Quarantined, RuleVerdicts};
    use crate::rules::{PlannedAction, RuleTrace};
    use serde_json::json;

    fn record(rule: &str, file: &str, matched: bool, miss: Option<Miss>) -> RuleRecord {
        RuleRecord {
            verdict: RuleTrace {
                rule: rule.into(),
                file: file.into(),
                matched,
                miss,
                actions: Vec::new(),
            },
            script_error: None,
        }
    }

    fn condition(path: &str, expected: &str, actual: Value) -> Option<Miss> {
        Some(Miss::Condition {
            path: path.into(),
            expected: expected.into(),
            actual,
        })
    }

    fn traces() -> Vec<Trace> {
        let mut fired = record("a", "/r/shop.yaml", true, None);
        fired.verdict.actions.push(PlannedAction {
            index: 0,
            kind: serde_json::from_value(json!("log")).unwrap(),
            params: Ok(json!({"message": "hi"})),
        });
        let mut failed = record("c", "/r/other.yaml", true, None);
        failed.script_error = Some("s.rhai:1:2: boom".into());
        let rules = vec![
            fired,
            record(
                "b",
                "/r/shop.yaml",
                false,
                condition("order.total", "gte 5", json!(1)),
            ),
            failed,
            record(
                "d",
                "/r/other.yaml",
                false,
                condition("order.total", "gte 9", json!(2)),
            ),
            record(
                "e",
                "/r/other.yaml",
                false,
                condition("order.email", "== \"x\"", json!("b@x")),
            ),
            record(
                "f",
                "/r/other.yaml",
                false,
                Some(Miss::IfFalse {
                    expr: "false".into(),
                }),
            ),
            record("g", "/r/other.yaml", false, Some(Miss::Disabled)),
            record(
                "h",
                "/r/other.yaml",
                false,
                condition("order.gone", "exists", Value::Null),
            ),
        ];
        let planned = Trace {
            rules: Some(RuleVerdicts {
                rules,
                not_listening: 3,
            }),
            shop: Some("default".into()),
            secret: Some("current".into()),
            time: vec![TimeNote {
                rule: "a".into(),
                what: TimeWhat::Cancels,
                action: None,
                due_at: None,
                detail: "cancels".into(),
            }],
            ..Trace::default()
        };
        vec![
            planned,
            Trace::failed("bad"),
            Trace {
                quarantined: Some(Quarantined { reason: "x".into() }),
                ..Trace::default()
            },
            Trace {
                rules: Some(RuleVerdicts {
                    rules: Vec::new(),
                    not_listening: 4,
                }),
                ..Trace::default()
            },
        ]
    }

    #[test]
    fn the_typed_trace_is_stored_as_the_journal_compacts_its_json() {
        for trace in traces() {
            let generic = StoredTrace::from(&serde_json::to_value(&trace).unwrap());
            assert_eq!(stored(&trace).unwrap(), generic);
        }
        let text = stored(&traces()[0]).unwrap();
        assert!(text.as_str().contains(r#"["d",1,0,"gte 9",2]"#), "{text:?}");
    }
}
