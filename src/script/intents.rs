//! Intent functions: one per row of the built-in action table ([`crate::model::actions`]), taking
//! a map (`email(#{...})`), plus the short forms `slack(text)`, `flag(kind)`, `flag(kind, note)`
//! and `log(value)`. Each checks its parameters against the table and records an [`Intent`];
//! nothing is sent until the pipeline has committed the run and a dispatcher picks the job up.

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map};
use serde_json::{Map as JMap, Value as J};

use super::{run, Intent};
use crate::model::actions::{self, ACTIONS};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Whether `name` is an intent function (reserved: no plugin may take it).
pub fn is_intent(name: &str) -> bool {
    actions::spec(name).is_some()
}

pub fn register(engine: &mut Engine) {
    for row in ACTIONS {
        let kind: &'static str = row.kind.name();
        engine.register_fn(kind, move |p: Map| record(kind, p.into()));
    }
    engine.register_fn("slack", |text: ImmutableString| {
        record("slack", single("text", text.into()))
    });
    engine.register_fn("flag", |kind: ImmutableString| {
        record("flag", single("kind", kind.into()))
    });
    engine.register_fn("flag", |kind: ImmutableString, note: Dynamic| {
        let mut m = single("kind", kind.into());
        if let Some(map) = m.write_lock::<Map>().as_deref_mut() {
            map.insert("note".into(), note.to_string().into());
        }
        record("flag", m)
    });
    engine.register_fn("log", |m: Dynamic| {
        if m.is_map() {
            record("log", m)
        } else {
            record("log", single("message", m.to_string().into()))
        }
    });
}

fn single(key: &str, value: Dynamic) -> Dynamic {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m.into()
}

/// Converts, checks and records one intent.
fn record(kind: &str, params: Dynamic) -> Res<()> {
    let json = to_json(&params).map_err(|e| format!("{kind}(): {e}"))?;
    let json = check(kind, json).map_err(|e| format!("{kind}(): {e}"))?;
    run::with(|c| {
        c.intents.push(Intent {
            kind: kind.to_string(),
            params: json,
        })
    })
}

/// A Rhai value as JSON (functions pointers and custom types are refused).
pub fn to_json(value: &Dynamic) -> Result<J, String> {
    rhai::serde::from_dynamic::<J>(value).map_err(|e| format!("not JSON-compatible: {e}"))
}

/// Why a script's action parameters were refused; the script fails with `{kind}(): {this}`.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ParamsError {
    #[error("unknown action `{kind}`")]
    UnknownAction { kind: String },
    #[error("takes an object map like #{{...}}, got {got}")]
    NotAMap { got: J },
    #[error("unknown parameter `{name}` ({kind} takes {takes})")]
    UnknownParam {
        name: String,
        kind: String,
        takes: String,
    },
    #[error("missing {}", missing.join(", "))]
    Missing { missing: Vec<String> },
    #[error(transparent)]
    NotAllowed(#[from] actions::NotAllowed),
}

/// `params` checked against the action's table row: an object, no unknown names, every
/// required group present, fixed values (`http.method`, `log.level`) among the allowed ones.
/// `()` values count as absent and are dropped.
pub fn check(kind: &str, params: J) -> Result<J, ParamsError> {
    let spec = actions::spec(kind).ok_or_else(|| ParamsError::UnknownAction {
        kind: kind.to_string(),
    })?;
    let J::Object(map) = params else {
        return Err(ParamsError::NotAMap { got: params });
    };
    let map: JMap<String, J> = map.into_iter().filter(|(_, v)| !v.is_null()).collect();
    if let Some(bad) = map.keys().find(|k| spec.param(k).is_none()) {
        return Err(ParamsError::UnknownParam {
            name: bad.clone(),
            kind: kind.to_string(),
            takes: actions::quoted(&spec.names()),
        });
    }
    let given: Vec<&str> = map.keys().map(String::as_str).collect();
    let missing = actions::missing(spec, &given);
    if !missing.is_empty() {
        return Err(ParamsError::Missing { missing });
    }
    let mut map = map;
    for (name, value) in map.iter_mut() {
        let param = spec.param(name).filter(|p| !p.allowed.is_empty());
        if let (Some(param), J::String(v)) = (param, &mut *value) {
            // Same rule as YAML: `post` is accepted and becomes `POST`.
            *v = param.normalize(v)?;
        }
    }
    // Scripts build strings from buyer data: they cannot name `${VAR}` secrets.
    actions::escape_secret_refs(kind, &mut map);
    Ok(J::Object(map))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_refused_intent_names_the_parameter_and_keeps_its_message() {
        let e = check("log", json!({"message": "hi", "colour": "red"})).unwrap_err();
        let ParamsError::UnknownParam { name, kind, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!((name.as_str(), kind.as_str()), ("colour", "log"));
        assert!(
            e.to_string()
                .starts_with("unknown parameter `colour` (log takes "),
            "{e}"
        );
        let e = check("nope", json!({})).unwrap_err();
        assert_eq!(e.to_string(), "unknown action `nope`");
        let e = check("log", json!(3)).unwrap_err();
        assert_eq!(e.to_string(), "takes an object map like #{...}, got 3");
    }
}
