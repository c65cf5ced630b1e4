//! Plugin manifests: `plugins_dir/<name>.yaml` describes a plugin's parameters (types,
//! required, defaults, docs), so `check` can report a rule's unknown, missing and mistyped
//! parameters before the plugin runs.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map as JMap, Value as J};

use super::{Origin, ScriptError};

/// A plugin's `<name>.yaml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    pub description: String,
    /// In manifest order.
    pub params: Vec<ParamSpec>,
}

/// One documented parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub ty: ParamType,
    /// Required parameters with a default are filled in, never reported missing.
    pub required: bool,
    pub default: Option<J>,
    pub doc: String,
}

/// The JSON type a parameter takes. A templated string (`{{ ... }}`) passes any type at load:
/// it is only known once rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    #[default]
    Any,
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Map,
}

impl ParamType {
    fn accepts(self, v: &J) -> bool {
        match self {
            ParamType::Any => true,
            ParamType::String => v.is_string(),
            ParamType::Number => v.is_number(),
            ParamType::Integer => v.is_i64() || v.is_u64(),
            ParamType::Boolean => v.is_boolean(),
            ParamType::Array => v.is_array(),
            ParamType::Map => v.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ParamType::Any => "any",
            ParamType::String => "string",
            ParamType::Number => "number",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
            ParamType::Array => "array",
            ParamType::Map => "map",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    description: String,
    #[serde(default)]
    params: JMap<String, J>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(default, rename = "type")]
    ty: ParamType,
    #[serde(default)]
    required: bool,
    default: Option<J>,
    #[serde(default)]
    doc: String,
}

pub(super) fn load_manifest(path: &Path) -> Result<Option<Manifest>, ScriptError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let err = |m: String| ScriptError::at(&Origin::file(path), m);
    let raw: RawManifest =
        serde_saphyr::from_str(&text).map_err(|e| err(format!("manifest: {e}")))?;
    let mut params = Vec::new();
    for (name, value) in raw.params {
        let p: RawParam = serde_json::from_value(value)
            .map_err(|e| err(format!("manifest parameter `{name}`: {e}")))?;
        if let Some(d) = p.default.as_ref().filter(|d| !p.ty.accepts(d)) {
            return Err(err(format!(
                "manifest parameter `{name}`: default {d} is not a {}",
                p.ty.name()
            )));
        }
        params.push(ParamSpec {
            name,
            ty: p.ty,
            required: p.required,
            default: p.default,
            doc: p.doc,
        });
    }
    Ok(Some(Manifest {
        description: raw.description,
        params,
    }))
}

/// Unknown, missing and mistyped parameters.
pub(super) fn manifest_problems(m: &Manifest, params: &J) -> Vec<String> {
    let J::Object(map) = params else {
        return vec![format!("parameters must be a map, got {params}")];
    };
    let known: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    let mut out: Vec<String> = map
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            format!(
                "unknown parameter `{k}` (takes {})",
                known
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    for p in &m.params {
        match map.get(&p.name).filter(|v| !v.is_null()) {
            None if p.required => out.push(format!("missing required parameter `{}`", p.name)),
            Some(v) if !p.ty.accepts(v) && !is_template(v) => out.push(format!(
                "parameter `{}` must be a {}, got {v}",
                p.name,
                p.ty.name()
            )),
            _ => {}
        }
    }
    out
}

fn is_template(v: &J) -> bool {
    v.as_str()
        .is_some_and(|s| s.contains("{{") || s.contains("{%"))
}
