//! Values inside the sections: secrets, `${VAR}` substitution, human durations and sizes.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A secret value: never printed by `Debug`, compared only by the verifiers.
#[derive(Clone, Default, Deserialize)]
#[serde(from = "Option<String>")]
pub struct Secret(String);

/// An empty value (`secret:` or an unset `${VAR}`) means "not configured".
impl From<Option<String>> for Secret {
    fn from(s: Option<String>) -> Self {
        Secret(s.unwrap_or_default())
    }
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "Secret(***)"
        } else {
            "Secret(unset)"
        })
    }
}

/// The first line of a YAML (serde-saphyr) error, without the parser's own
/// `error: line L column C:` prefix (callers put the location in their `file:line:column`).
pub(crate) fn yaml_error_message(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, message)) => message.to_string(),
        None => line.to_string(),
    }
}

/// Why a value in storeflow.yaml could not be read; each variant carries the text it is about.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("line {line}: `${{` without a closing `}}`")]
    Unclosed { line: usize },
    #[error("invalid duration `{input}` ({reason}); write e.g. 30s, 5m, 24h or 30d")]
    Duration {
        input: String,
        reason: humantime::DurationError,
    },
    #[error("invalid size `{input}`; write e.g. 512KiB, 1MiB or 1048576")]
    Size { input: String },
}

/// Replaces `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. An unset variable without a
/// default becomes the empty string (so an unset secret reads as "not configured").
pub fn substitute_env(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, ValueError> {
    let value = |name: &str, default: Option<&str>| {
        let value = env(name).filter(|v| !v.is_empty());
        Ok(value.unwrap_or_else(|| default.unwrap_or("").to_string()))
    };
    let unclosed = |offset: usize| {
        let line = text[..offset].lines().count().max(1);
        Some(ValueError::Unclosed { line })
    };
    expand_vars(text, value, unclosed)
}

/// The `${VAR}` syntax of storeflow.yaml and of job parameters (`actions::secrets`), walked in
/// one place: `$$` is `$`, `${NAME}` and `${NAME:-default}` become what `var(name, default)`
/// returns, any other `$` stays. A `${` without its `}` (at byte `offset`) is the error
/// `unclosed(offset)` returns, or text when it returns `None`.
pub fn expand_vars<E>(
    text: &str,
    mut var: impl FnMut(&str, Option<&str>) -> Result<String, E>,
    unclosed: impl Fn(usize) -> Option<E>,
) -> Result<String, E> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let reference = after.strip_prefix('{').map(|body| body.split_once('}'));
        let Some(Some((inner, tail))) = reference else {
            if let (Some(None), Some(e)) = (reference, unclosed(text.len() - rest.len() + at)) {
                return Err(e);
            }
            out.push('$');
            rest = after;
            continue;
        };
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        out.push_str(&var(name, default)?);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses `30s`, `5m`, `24h`, `30d`, `1h 30m` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    humantime::parse_duration(s.trim()).map_err(|reason| ValueError::Duration {
        input: s.to_string(),
        reason,
    })
}

/// Parses `1MiB`, `512KiB`, `2MB`, `1048576` into bytes.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad_size(s))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "kib" => 1 << 10,
        "mb" | "m" => 1_000_000,
        "mib" => 1 << 20,
        "gb" | "g" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad_size(s)),
    };
    Ok((n * mult as f64) as u64)
}

fn bad_size(s: &str) -> ValueError {
    ValueError::Size {
        input: s.to_string(),
    }
}

/// A number (seconds, bytes) or a human string.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(u64),
    Text(String),
}

pub(super) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Num(secs) => Ok(Duration::from_secs(secs)),
        NumOrText::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

pub(super) fn de_durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_duration(s).map_err(serde::de::Error::custom))
        .collect()
}

pub(super) fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Num(n) => Ok(n),
        NumOrText::Text(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "A").then(|| "x".to_string())
    }

    #[test]
    fn config_substitution_defaults_unset_and_refuses_an_unclosed_reference() {
        let text = substitute_env("${A} ${B} ${B:-d} $$A $5", env).unwrap();
        assert_eq!(text, "x  d $A $5");
        let e = substitute_env("a: 1\nb: ${A\n", env).unwrap_err();
        assert!(matches!(e, ValueError::Unclosed { line: 2 }), "{e:?}");
        assert_eq!(e.to_string(), "line 2: `${` without a closing `}`");
    }
}
