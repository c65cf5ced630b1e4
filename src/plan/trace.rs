//! [`Trace`]: why the rules did what they did with one event, as the journal stores it (JSON)
//! and `events show`, `simulate`, `test` and `jobs retry --replan` read it back.

use serde::{Deserialize, Serialize};

use crate::rules::{Evaluation, Miss, RuleTrace};

/// The stored trace of one event. In JSON: `{"rules": [...], "not_listening": n, "shop": ...,
/// "secret": ...}`; `{"error": "..."}` for an event that could not be planned; `{"quarantined":
/// {"reason": ...}}` for one the pipeline set aside (written by the journal).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The candidate rules' verdicts; `None` when the event could not be planned.
    #[serde(flatten, default)]
    pub rules: Option<RuleVerdicts>,
    /// Why the event could not be planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The shop the event came for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop: Option<String>,
    /// Which of the shop's secrets verified it (`current`, `previous`, `none`), so a rotated
    /// secret can be retired once nothing arrives with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Set when the pipeline quarantined the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<Quarantined>,
    /// What waits, delays, limits, digests and quiet hours did (DESIGN.md §12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time: Vec<super::time::TimeNote>,
}

/// Every candidate rule's verdict, in load order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleVerdicts {
    pub rules: Vec<RuleRecord>,
    /// How many rules do not listen to this event.
    pub not_listening: usize,
}

/// One rule's verdict, and whether its script failed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleRecord {
    #[serde(flatten)]
    pub verdict: RuleTrace,
    /// The script or plugin failed (`file:line:column: reason`): the rule planned nothing.
    #[serde(default)]
    pub script_error: Option<String>,
}

/// Why the pipeline set an event aside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub reason: String,
}

impl Trace {
    /// The trace of a planned event: every candidate rule, with the rules whose script failed.
    pub fn planned(evaluation: Evaluation, failures: &[(String, String)]) -> Trace {
        let rules = evaluation
            .rules
            .into_iter()
            .map(|mut verdict| {
                let script_error = failures
                    .iter()
                    .find(|(rule, _)| *rule == verdict.rule)
                    .map(|(_, e)| e.clone());
                if script_error.is_some() {
                    verdict.actions.clear(); // none of the rule's jobs are kept
                }
                RuleRecord {
                    verdict,
                    script_error,
                }
            })
            .collect();
        Trace {
            rules: Some(RuleVerdicts {
                rules,
                not_listening: evaluation.not_listening,
            }),
            ..Trace::default()
        }
    }

    /// The trace of an event that could not be planned.
    pub fn failed(reason: impl Into<String>) -> Trace {
        Trace {
            error: Some(reason.into()),
            ..Trace::default()
        }
    }

    /// Reads a stored trace; `None` when it is not one (written by another version).
    pub fn from_json(value: &serde_json::Value) -> Option<Trace> {
        serde_json::from_value(value.clone()).ok()
    }

    /// The candidate rules' verdicts (none for an event that could not be planned).
    pub fn records(&self) -> &[RuleRecord] {
        self.rules.as_ref().map_or(&[], |r| &r.rules)
    }

    /// The verdict on `rule`, if it was a candidate.
    pub fn rule(&self, rule: &str) -> Option<&RuleRecord> {
        self.records().iter().find(|r| r.verdict.rule == rule)
    }

    /// The script error of `rule`, if its script failed.
    pub fn script_error(&self, rule: &str) -> Option<&str> {
        self.rule(rule)?.script_error.as_deref()
    }

    /// The rules that fired: matched, their script (if any) did not fail, and they were not
    /// over their `limit` (a limited run plans nothing).
    pub fn fired(&self) -> impl Iterator<Item = &str> {
        self.records()
            .iter()
            .filter(|r| r.verdict.matched && r.script_error.is_none())
            .map(|r| r.verdict.rule.as_str())
            .filter(|rule| !self.limited(rule))
    }

    /// Whether `rule` matched but was over its `limit`, so it planned nothing.
    pub fn limited(&self, rule: &str) -> bool {
        self.time
            .iter()
            .any(|n| n.rule == rule && n.what == super::time::TimeWhat::Limited)
    }

    pub fn not_listening(&self) -> usize {
        self.rules.as_ref().map_or(0, |r| r.not_listening)
    }
}

impl RuleRecord {
    /// Why the rule did not fire, if it did not.
    pub fn miss(&self) -> Option<&Miss> {
        self.verdict.miss.as_ref()
    }
}

/// The stored shape: a rule whose script failed lists no actions (`"actions": []`) and its
/// `script_error` last.
impl Serialize for RuleRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let serde_json::Value::Object(mut map) =
            serde_json::to_value(&self.verdict).map_err(S::Error::custom)?
        else {
            return Err(S::Error::custom("a rule verdict is not a JSON object"));
        };
        if let Some(error) = &self.script_error {
            map.insert("script_error".into(), error.clone().into());
            map.insert("actions".into(), serde_json::json!([]));
        }
        let mut out = s.serialize_map(Some(map.len()))?;
        for (k, v) in &map {
            out.serialize_entry(k, v)?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_json_keeps_its_shape() {
        let stored = json!({
            "rules": [
                {"rule": "a", "file": "r.yaml", "matched": true,
                 "actions": [{"index": 0, "kind": "log", "params": {"message": "hi"}}]},
                {"rule": "b", "file": "r.yaml", "matched": true, "actions": [],
                 "script_error": "s.rhai:1:2: boom"},
                {"rule": "c", "file": "r.yaml", "matched": false,
                 "miss": {"reason": "if_false", "expr": "false"}},
            ],
            "not_listening": 2, "shop": "default", "secret": "current",
        });
        let trace = Trace::from_json(&stored).unwrap();
        assert_eq!(trace.script_error("b"), Some("s.rhai:1:2: boom"));
        assert_eq!(trace.not_listening(), 2);
        assert_eq!(serde_json::to_value(&trace).unwrap(), stored);
        for other in [
            json!({"error": "bad"}),
            json!({"quarantined": {"reason": "x"}}),
        ] {
            let trace = Trace::from_json(&other).unwrap();
            assert!(trace.records().is_empty());
            assert_eq!(serde_json::to_value(&trace).unwrap(), other);
        }
    }
}
