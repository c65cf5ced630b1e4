//! What a shop script needs besides intents: persistent state (`state_get`, `state_set`,
//! `state_incr`), `now()`, `render()` with the rules' template filters, `money()`, `date()`,
//! `slug()`, `random_key()` and `sha256()`. None of them touches the outside world.

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map, INT};
use serde_json::Value as J;
use sha2::{Digest, Sha256};

use super::intents::to_json;
use super::run;
use crate::template::filters;
use crate::template::Templates;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Error text of a state read that needs the key fetched first (see [`run`]).
pub const FETCH: &str = "state key not fetched yet";
const MAX_KEY_LEN: usize = 200;

/// The helper function names [`register`] defines (reserved: no plugin may take them).
pub const NAMES: &[&str] = &[
    "state_get",
    "state_set",
    "state_incr",
    "now",
    "render",
    "money",
    "date",
    "slug",
    "random_key",
    "sha256",
];

pub fn register(engine: &mut Engine, templates: Arc<Templates>) {
    engine.register_fn("state_get", state_get);
    engine.register_fn("state_set", state_set);
    engine.register_fn("state_incr", |key: &str| state_incr(key, 1));
    engine.register_fn("state_incr", state_incr);
    engine.register_fn("now", || run::with(|c| c.now));
    engine.register_fn("render", move |tmpl: &str, vars: Map| {
        render(&templates, tmpl, vars)
    });
    engine.register_fn("money", |amount: Dynamic| money(amount, None));
    engine.register_fn("money", |amount: Dynamic, cur: ImmutableString| {
        money(amount, Some(cur.to_string()))
    });
    engine.register_fn("date", |ts: Dynamic| date(ts, None));
    engine.register_fn("date", |ts: Dynamic, fmt: ImmutableString| {
        date(ts, Some(fmt.to_string()))
    });
    engine.register_fn("slug", |text: &str| slug(text));
    engine.register_fn("random_key", random_key);
    engine.register_fn("sha256", |text: &str| hex::encode(Sha256::digest(text)));
}

fn check_key(key: &str) -> Res<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!("state keys are 1 to {MAX_KEY_LEN} bytes, got {}", key.len()).into());
    }
    Ok(())
}

/// The run's own write, else the fetched value; an unfetched key stops the run for a replay.
fn lookup(key: &str) -> Res<Option<J>> {
    check_key(key)?;
    let found = run::with(|c| {
        if let Some(v) = c.changes.get(key) {
            return Ok(Some(v.clone()));
        }
        if let Some(v) = c.fetched.get(key) {
            return Ok(v.clone());
        }
        c.wanted = Some(key.to_string());
        Err(())
    })?;
    found.map_err(|()| FETCH.into())
}

fn state_get(key: &str) -> Res<Dynamic> {
    match lookup(key)? {
        Some(v) => rhai::serde::to_dynamic(v),
        None => Ok(Dynamic::UNIT),
    }
}

fn state_set(key: &str, value: Dynamic) -> Res<()> {
    check_key(key)?;
    let json = to_json(&value).map_err(|e| format!("state_set(\"{key}\"): value {e}"))?;
    run::with(|c| c.write(key, json))?.map_err(|e| format!("state_set(\"{key}\"): {e}").into())
}

/// Adds `by` to an integer key (absent counts as 0) and returns the new value.
fn state_incr(key: &str, by: INT) -> Res<INT> {
    let current = match lookup(key)? {
        None | Some(J::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            format!("state_incr(\"{key}\"): the stored value {v} is not an integer")
        })?,
    };
    let next = current
        .checked_add(by)
        .ok_or_else(|| format!("state_incr(\"{key}\"): integer overflow"))?;
    run::with(|c| c.write(key, next.into()))?.map_err(|e| format!("state_incr(\"{key}\"): {e}"))?;
    Ok(next)
}

fn render(templates: &Templates, tmpl: &str, vars: Map) -> Res<String> {
    let json = to_json(&vars.into()).map_err(|e| format!("render(): variables {e}"))?;
    let ctx = minijinja::Value::from(minijinja::value::Serde(&json));
    templates
        .render_str(tmpl, &ctx)
        .map_err(|e| format!("render(): {e}").into())
}

fn jinja(value: Dynamic) -> Res<minijinja::Value> {
    let json = to_json(&value)?;
    Ok(minijinja::Value::from(minijinja::value::Serde(&json)))
}

fn money(amount: Dynamic, currency: Option<String>) -> Res<String> {
    filters::money(jinja(amount)?, currency).map_err(|e| e.to_string().into())
}

fn date(ts: Dynamic, format: Option<String>) -> Res<String> {
    filters::date(jinja(ts)?, format).map_err(|e| e.to_string().into())
}

/// `"Pro License Key!"` → `pro-license-key`.
pub fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `random_key(4, 4)` → `K7QF-2MZX-PL0D-9HRT`: `groups` groups of `len` uppercase letters and
/// digits. Not cryptographic (xorshift seeded from the clock); fine for license keys that are
/// also stored by the shop, not for secrets.
fn random_key(groups: INT, len: INT) -> Res<String> {
    if !(1..=16).contains(&groups) || !(1..=32).contains(&len) {
        return Err(format!("random_key({groups}, {len}): groups must be 1-16, len 1-32").into());
    }
    run::with(|c| {
        let mut parts = Vec::with_capacity(groups as usize);
        for _ in 0..groups {
            let part: String = (0..len)
                .map(|_| KEY_ALPHABET[(next(&mut c.rng) % KEY_ALPHABET.len() as u64) as usize])
                .map(char::from)
                .collect();
            parts.push(part);
        }
        parts.join("-")
    })
}

/// xorshift64*.
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_collapse_punctuation() {
        assert_eq!(slug("  Pro License Key!! 2025 "), "pro-license-key-2025");
        assert_eq!(slug("---"), "");
    }

    /// [`NAMES`] lists exactly the functions [`register`] defines, so plugins cannot shadow one.
    #[test]
    fn names_match_the_registered_helpers() {
        let source = include_str!("helpers.rs");
        let body = &source[source.find("pub fn register(").unwrap()..];
        let body = &body[..body.find("\n}\n").unwrap()];
        let mut registered: Vec<&str> = body
            .split("register_fn(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        registered.dedup();
        assert_eq!(registered, NAMES);
    }

    #[test]
    fn xorshift_moves() {
        let mut s = 1;
        assert_ne!(next(&mut s), next(&mut s));
    }
}
