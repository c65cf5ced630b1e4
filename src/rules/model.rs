//! Raw YAML of a rules file: a loosely typed tree in which every node keeps its position.
//!
//! serde-saphyr stops at the first error when it deserializes into strict structs, but `check`
//! must report every problem of every rule at once. So a file is read into [`Node`]s (any YAML
//! value, each wrapped in [`Spanned`]) and [`crate::rules::load`] walks that tree, checking keys,
//! types and values itself and recording a diagnostic for each problem.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// A YAML value with the position where it was written.
pub type Node = Spanned<Value>;

/// Any YAML value. Mappings keep their key order and the keys' positions.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What kind of value this is, for "expected a list, found a string" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The key as text: strings as written, other scalars printed (`1: x` has key `1`).
    pub fn key_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".into(),
            Value::Seq(_) | Value::Map(_) => "<complex key>".into(),
        }
    }

    /// The same value as JSON (positions dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(|n| n.value.to_json()).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.key_text(), v.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// 1-based (line, column) of a node.
pub fn pos(node: &Node) -> (usize, usize) {
    loc_pos(&node.referenced)
}

pub fn loc_pos(loc: &Location) -> (usize, usize) {
    (loc.line() as usize, loc.column() as usize)
}

/// Parses one rules file into a tree. Booleans are YAML 1.2 (`true`/`false` only), so the
/// `on:` key and values like `country: NO` stay strings.
pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options::<Node>(text, options)
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_nested_values() {
        let text = "rules:\n  - name: a\n    on: [x, 'y']\n    n: 3\n";
        let root = parse(text).unwrap();
        let Value::Map(top) = &root.value else {
            panic!("{root:?}")
        };
        let (key, rules) = &top[0];
        assert_eq!(key.value.as_str(), Some("rules"));
        assert_eq!(pos(key), (1, 1));
        let Value::Seq(list) = &rules.value else {
            panic!()
        };
        let Value::Map(rule) = &list[0].value else {
            panic!()
        };
        assert_eq!(pos(&rule[0].1), (2, 11));
        let Value::Seq(on) = &rule[1].1.value else {
            panic!()
        };
        assert_eq!(pos(&on[1]), (3, 13));
        assert_eq!(rule[2].1.value, Value::Int(3));
        assert_eq!(rule[1].0.value.as_str(), Some("on"));
        let root = parse("country: NO\nok: true\n").unwrap();
        let Value::Map(m) = root.value else { panic!() };
        assert_eq!(
            (&m[0].1.value, &m[1].1.value),
            (&Value::Str("NO".into()), &Value::Bool(true))
        );
    }

    #[test]
    fn converts_to_json() {
        let root = parse("a: [1, 2.5, true, ~, x]\n").unwrap();
        assert_eq!(
            root.value.to_json(),
            serde_json::json!({"a": [1, 2.5, true, null, "x"]})
        );
    }
}
