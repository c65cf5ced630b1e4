//! The sparse parse intake does: the whole body is validated exactly as building a
//! `serde_json::Value` would validate it (same tokenizer, same number ranges, same UTF-8 and
//! depth checks, same error messages), but only the paths a source reads — the event name, the
//! dedupe fields, the order view — are kept. Building the full tree cost most of intake's CPU
//! (verify + normalise of a 3 KB Sellix body: 40–42 µs with it, 22.7 µs with this;
//! `cargo bench --bench intake`); the event's payload is parsed in full later, and only when a
//! rule, template or script reads it ([`crate::model::event::Payload`]).
//!
//! The kept tree has the same shape as the full one along the kept paths, so the lenient
//! readers of [`super::json`] give the same answers on it as on the full payload.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Which keys of an object to keep. Each listed key keeps its value in full when its own list
/// is empty ([`WHOLE`]), else only its listed keys; a list applies to every element of an
/// array found in its place.
#[derive(Clone, Copy)]
pub(crate) struct Keep(pub &'static [(&'static str, Keep)]);

/// Keep the value whole.
pub(crate) const WHOLE: Keep = Keep(&[]);

/// Parses `body` keeping only `keep`'s paths; the error is serde_json's own, as a full parse
/// of the same bytes would report it.
pub(crate) fn parse(body: &[u8], keep: Keep) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Sparse(keep).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Sparse(Keep);

impl<'de> DeserializeSeed<'de> for Sparse {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0 .0.is_empty() {
            Value::deserialize(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Sparse {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Sparse(self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(Key(self.0))? {
            match key {
                Some((name, keep)) => {
                    // A repeated key replaces the earlier value, as in a full parse.
                    let value = map.next_value_seed(Sparse(keep))?;
                    kept.insert(name.to_string(), value);
                }
                None => {
                    map.next_value::<Discard>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }
}

/// Reads an object key and looks it up in the kept list, without allocating.
struct Key(Keep);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Option<(&'static str, Keep)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Option<(&'static str, Keep)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0 .0.iter().find(|(name, _)| *name == v).copied())
    }
}

/// A value that is read (so validated as a full parse would) and thrown away. Unlike
/// `serde::de::IgnoredAny`, which serde_json skips without checking strings or number ranges.
struct Discard;

impl<'de> Deserialize<'de> for Discard {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Discard)
    }
}

impl<'de> Visitor<'de> for Discard {
    type Value = Discard;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Discard, E> {
        Ok(Discard)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Discard, E> {
        Ok(Discard)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Discard, E> {
        Ok(Discard)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Discard, E> {
        Ok(Discard)
    }
    fn visit_str<E>(self, _: &str) -> Result<Discard, E> {
        Ok(Discard)
    }
    fn visit_unit<E>(self) -> Result<Discard, E> {
        Ok(Discard)
    }
    fn visit_none<E>(self) -> Result<Discard, E> {
        Ok(Discard)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Discard, D::Error> {
        Discard::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Discard, A::Error> {
        while seq.next_element::<Discard>()?.is_some() {}
        Ok(Discard)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Discard, A::Error> {
        while map.next_entry::<Discard, Discard>()?.is_some() {}
        Ok(Discard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEEP: Keep = Keep(&[
        ("event", WHOLE),
        (
            "data",
            Keep(&[("id", WHOLE), ("items", Keep(&[("title", WHOLE)]))]),
        ),
    ]);

    #[test]
    fn keeps_only_the_listed_paths_in_their_shape() {
        let body = br#"{"event":"order:paid","noise":{"a":[1,2,{"b":"c"}]},
            "data":{"id":7,"secret":"x","items":[{"title":"t","price":1},"odd",{"other":1}],
                    "id":8}}"#;
        let kept = parse(body, KEEP).unwrap();
        assert_eq!(
            kept,
            json!({"event":"order:paid","data":{"id":8,"items":[{"title":"t"},"odd",{}]}})
        );
    }

    #[test]
    fn a_kept_name_holding_a_scalar_keeps_the_scalar() {
        let kept = parse(br#"{"data":"not an object","event":null}"#, KEEP).unwrap();
        assert_eq!(kept, json!({"data":"not an object","event":null}));
    }

    #[test]
    fn rejects_what_a_full_parse_rejects_with_the_same_message() {
        let bad: &[&[u8]] = &[
            b"",
            b"{",
            b"{\"a\":1}x",
            b"{\"noise\":1e400}",
            b"{\"noise\":\"\xff\"}",
            b"{\"noise\":\"\\ud800x\"}",
            b"{\"noise\":\"a\nb\"}",
            b"{\"noise\":[1,]}",
            b"{\"noise\":{\"k\" 1}}",
            b"{\"data\":{\"id\":-}}",
            b"{\"noise\":tru}",
        ];
        for body in bad {
            let full = serde_json::from_slice::<Value>(body).unwrap_err();
            let sparse = parse(body, KEEP).unwrap_err();
            assert_eq!(
                sparse.to_string(),
                full.to_string(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let deep = format!("{{\"noise\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let full = serde_json::from_str::<Value>(&deep).unwrap_err();
        assert_eq!(
            parse(deep.as_bytes(), KEEP).unwrap_err().to_string(),
            full.to_string()
        );
    }
}
