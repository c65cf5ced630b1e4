//! Reading a job's params: typed getters whose errors name the param.
//!
//! Params arrive as a JSON object of rendered templates. A missing or ill-typed param is a
//! *permanent* failure (the same params will fail the same way on every retry), and the message
//! says which param and what was expected, so the dead letter explains itself.

use serde_json::{Map, Value};

use super::ActionError;

/// The params of one job, for one action (the name goes into messages).
pub(crate) struct Params<'a> {
    action: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    /// Fails unless `value` is a JSON object (`null` reads as an empty object).
    pub fn new(action: &'static str, value: &'a Value) -> Result<Params<'a>, ActionError> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let map = match value {
            Value::Object(map) => map,
            Value::Null => EMPTY.get_or_init(Map::new),
            other => {
                return Err(ActionError::permanent(format!(
                    "{action}: params must be an object, got {}",
                    kind(other)
                )))
            }
        };
        Ok(Params { action, map })
    }

    /// The error for param `name`: "`email` param `to`: …".
    pub fn error(&self, name: &str, problem: impl std::fmt::Display) -> ActionError {
        ActionError::permanent(format!("{} param `{name}`: {problem}", self.action))
    }

    /// The raw value, treating `null` as absent.
    pub fn value(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// An optional string; empty strings (a template that rendered to nothing) read as absent.
    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, ActionError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.error(name, format!("expected a string, got {}", kind(other)))),
        }
    }

    pub fn str(&self, name: &str) -> Result<&'a str, ActionError> {
        self.opt_str(name)?
            .ok_or_else(|| self.error(name, "is required"))
    }

    /// A list given as a JSON array of strings or as one string; items are trimmed and empty
    /// items dropped. A string is ONE item, never split on commas: a rendered value may hold
    /// buyer-typed text, and a comma in it must not add a second item (the rule loader splits
    /// the rule author's own comma-separated literals before rendering).
    pub fn list(&self, name: &str) -> Result<Vec<String>, ActionError> {
        let items: Vec<&str> = match self.value(name) {
            None => return Ok(Vec::new()),
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| {
                    v.as_str().ok_or_else(|| {
                        self.error(name, format!("list items must be strings, got {}", kind(v)))
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(self.error(
                    name,
                    format!("expected a string or a list, got {}", kind(other)),
                ))
            }
        };
        Ok(items
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    }

    /// An optional map of strings (HTTP headers).
    pub fn string_map(&self, name: &str) -> Result<Vec<(&'a str, &'a str)>, ActionError> {
        match self.value(name) {
            None => Ok(Vec::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.as_str(), s.as_str())),
                    other => Err(self.error(
                        &format!("{name}.{k}"),
                        format!("expected a string, got {}", kind(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(self.error(name, format!("expected a map, got {}", kind(other)))),
        }
    }

    /// Optional JSON that may also arrive as a string holding JSON (a rendered template).
    pub fn json_or_text(&self, name: &str) -> Result<Option<Value>, ActionError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|e| self.error(name, format!("is not valid JSON: {e}"))),
            Some(other) => Ok(Some(other.clone())),
        }
    }
}

/// A JSON value's type, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_accept_strings_and_arrays_but_never_split_a_string() {
        let v = json!({"a": "x@e.com, y@e.com", "b": ["p@e.com", " q@e.com,r@e.com "], "c": ""});
        let p = Params::new("email", &v).unwrap();
        assert_eq!(p.list("a").unwrap(), ["x@e.com, y@e.com"]);
        assert_eq!(p.list("b").unwrap(), ["p@e.com", "q@e.com,r@e.com"]);
        assert!(p.list("c").unwrap().is_empty());
        assert!(p.list("missing").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_param_and_are_permanent() {
        let v = json!({"to": 5, "headers": {"X-A": 1}});
        let p = Params::new("email", &v).unwrap();
        let e = p.list("to").unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("`to`"), "{e}");
        assert!(p
            .str("subject")
            .unwrap_err()
            .to_string()
            .contains("`subject`"));
        let e = p.string_map("headers").unwrap_err().to_string();
        assert!(e.contains("`headers.X-A`"), "{e}");
        assert!(Params::new("log", &json!([1])).is_err());
    }

    #[test]
    fn json_may_arrive_as_text() {
        let v = json!({"a": "[{\"type\":\"divider\"}]", "b": [1], "c": "{oops"});
        let p = Params::new("slack", &v).unwrap();
        assert_eq!(
            p.json_or_text("a").unwrap(),
            Some(json!([{"type": "divider"}]))
        );
        assert_eq!(p.json_or_text("b").unwrap(), Some(json!([1])));
        assert!(p.json_or_text("c").unwrap_err().to_string().contains("`c`"));
    }
}
