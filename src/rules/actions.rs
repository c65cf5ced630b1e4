//! The closed table of built-in action kinds and their parameters, checked at load.
//!
//! This is the registry rules are validated against; the executors (in `src/actions/`) read the
//! rendered parameters of a [`crate::rules::PlannedAction`] by these same names. A new built-in
//! action is one row in [`ACTIONS`].

/// One action kind: which parameters it takes and which must be present.
#[derive(Debug)]
pub struct ActionSpec {
    pub kind: &'static str,
    pub params: &'static [&'static str],
    /// Each group lists alternatives: at least one of them must be given.
    pub required: &'static [&'static [&'static str]],
}

use super::template::Escape;

/// `script` takes a string (a `.rhai` path or an inline script) instead of parameters.
pub const SCRIPT: &str = "script";

pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        kind: "email",
        params: &[
            "to", "cc", "bcc", "reply_to", "subject", "body", "html", "template",
        ],
        required: &[&["to"], &["subject"], &["body", "html", "template"]],
    },
    ActionSpec {
        kind: "slack",
        params: &["text", "channel", "blocks", "webhook_url"],
        required: &[&["text", "blocks"]],
    },
    ActionSpec {
        kind: "http",
        params: &["method", "url", "headers", "json", "body", "sign_secret"],
        required: &[&["url"]],
    },
    ActionSpec {
        kind: "flag",
        params: &["kind", "note"],
        required: &[&["kind"]],
    },
    ActionSpec {
        kind: "log",
        params: &["message", "level"],
        required: &[&["message"]],
    },
];

/// Every action name a rule may use, in table order, `script` last.
pub fn kinds() -> Vec<&'static str> {
    ACTIONS.iter().map(|a| a.kind).chain([SCRIPT]).collect()
}

pub fn spec(kind: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.kind == kind)
}

/// Literal values some parameters must take (templated values are checked when rendered).
pub fn allowed_values(kind: &str, param: &str) -> Option<&'static [&'static str]> {
    match (kind, param) {
        ("http", "method") => Some(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
        ("log", "level") => Some(&["trace", "debug", "info", "warn", "error"]),
        _ => None,
    }
}

/// How the values interpolated into parameter `param` of `kind` are escaped: HTML for the
/// email's `html`, Slack's `& < >` for Slack text and blocks, `$` → `$$` where `${VAR}` names
/// a secret ([`secret_ref`]). Everything else is verbatim.
pub fn escaping(kind: &str, param: &str) -> Escape {
    match (kind, param) {
        ("email", "html") => Escape::Html,
        ("slack", "text" | "blocks") => Escape::Slack,
        _ if secret_ref(kind, param) => Escape::SecretRef,
        _ => Escape::None,
    }
}

/// Parameters in which `${VAR}` is kept in the job (a reference, never the value) and resolved
/// from the environment when the job is delivered: where credentials live.
pub fn secret_ref(kind: &str, param: &str) -> bool {
    matches!(
        (kind, param),
        ("http", "url" | "headers" | "sign_secret") | ("slack", "webhook_url")
    )
}

/// Email parameters that hold recipients: each rendered item must be exactly one mailbox.
pub const RECIPIENTS: &[&str] = &["to", "cc", "bcc", "reply_to"];

/// `params` of a script intent made safe like rendered values: a `$` in a secret-reference
/// parameter becomes `$$` (scripts build strings from buyer data, so they cannot name secrets).
pub fn escape_secret_refs(kind: &str, params: &mut serde_json::Map<String, serde_json::Value>) {
    fn escape(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = s.replace('$', "$$"),
            serde_json::Value::Array(items) => items.iter_mut().for_each(escape),
            serde_json::Value::Object(map) => map.values_mut().for_each(escape),
            _ => {}
        }
    }
    for (name, value) in params.iter_mut() {
        if secret_ref(kind, name) {
            escape(value);
        }
    }
}

/// The required groups `given` does not satisfy, phrased for a message
/// (`` `to` ``, `` one of `body`, `html`, `template` ``).
pub fn missing(spec: &ActionSpec, given: &[&str]) -> Vec<String> {
    spec.required
        .iter()
        .filter(|group| !group.iter().any(|p| given.contains(p)))
        .map(|group| match group {
            [one] => format!("`{one}`"),
            many => format!(
                "one of {}",
                many.iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_needs_to_subject_and_a_body() {
        let email = spec("email").unwrap();
        assert_eq!(
            missing(email, &["to"]),
            vec!["`subject`", "one of `body`, `html`, `template`"]
        );
        assert!(missing(email, &["to", "subject", "template"]).is_empty());
    }

    #[test]
    fn table_lists_every_kind() {
        assert_eq!(kinds(), ["email", "slack", "http", "flag", "log", "script"]);
        assert!(spec("script").is_none());
        assert!(missing(spec("slack").unwrap(), &["blocks"]).is_empty());
    }
}
