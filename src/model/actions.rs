//! THE action table: one row per built-in action, read by everything that knows about actions.
//!
//! Rules (`rules::compile`) and scripts (`script::intents`) validate parameters against it, plugin
//! names are checked against it, `check` lists its names, the executors' registry
//! (`actions::Actions`) is keyed by its [`ActionKind`]s and a test keeps `docs/actions.md` in step.
//! Adding a built-in action is one row in [`ACTIONS`] plus its executor file in `src/actions/`.

/// What an action list item names: a built-in action, an inline/file `script`, or a plugin.
/// Compare kinds with this enum, never by their names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    Email,
    Slack,
    Http,
    Flag,
    Log,
    Discord,
    Script,
    Plugin(String),
}

impl ActionKind {
    /// The kind `name` stands for: a row of the table, `script`, or else a plugin's name.
    pub fn parse(name: &str) -> ActionKind {
        if name == "script" {
            return ActionKind::Script;
        }
        spec(name).map_or_else(|| ActionKind::Plugin(name.to_string()), |s| s.kind.clone())
    }

    /// The name rules and scripts use (`- email: {...}`, `email(#{...})`).
    pub fn name(&self) -> &str {
        match self {
            ActionKind::Email => "email",
            ActionKind::Slack => "slack",
            ActionKind::Http => "http",
            ActionKind::Flag => "flag",
            ActionKind::Log => "log",
            ActionKind::Discord => "discord",
            ActionKind::Script => "script",
            ActionKind::Plugin(name) => name,
        }
    }

    /// The table row of a built-in action (`None` for `script` and plugins).
    pub fn spec(&self) -> Option<&'static ActionSpec> {
        ACTIONS.iter().find(|a| a.kind == *self)
    }

    /// Whether it runs a Rhai script when the event is planned (`script` and plugins).
    pub fn is_scripted(&self) -> bool {
        matches!(self, ActionKind::Script | ActionKind::Plugin(_))
    }
}

impl From<&str> for ActionKind {
    fn from(name: &str) -> ActionKind {
        ActionKind::parse(name)
    }
}

/// In JSON (traces, jobs) a kind is its name.
impl serde::Serialize for ActionKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ActionKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ActionKind, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(ActionKind::parse(&name))
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a parameter holds (validated by the executor when the job runs; shown in the docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// One string.
    Text,
    /// A string or a list of strings (each item one value, never split on commas).
    List,
    /// A map of strings (HTTP headers).
    Map,
    /// JSON, or a string holding JSON (a rendered template).
    Json,
    /// A file name under `templates/`.
    File,
}

/// How the values interpolated (`{{ … }}`) into a parameter are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    Verbatim,
    /// HTML entities (the email's `html`).
    Html,
    /// Slack's `& < >`.
    Slack,
    /// `$` → `$$`: the parameter may name a secret as `${VAR}` (resolved at delivery, kept as
    /// the reference in the job), and buyer data must not be able to name one.
    SecretRef,
}

/// How a literal value's letter case is treated (only for parameters with fixed values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Compared and kept as written.
    Exact,
    /// Accepted in any case, normalised to upper case (`post` → `POST`).
    Upper,
    /// Accepted in any case, normalised to lower case (`INFO` → `info`).
    Lower,
}

/// One parameter of a built-in action.
#[derive(Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    /// What the executor uses when the parameter is absent.
    pub default: Option<&'static str>,
    /// The only values a literal may take (empty: any).
    pub allowed: &'static [&'static str],
    pub case: Case,
    pub escaping: Escaping,
}

/// Where a kind's effect happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// Run while the event is planned; it yields jobs (`script`, plugins).
    Pipeline,
    /// A job, delivered by the dispatcher's executor for the kind (with retries).
    Dispatcher,
}

/// One row of the table.
#[derive(Debug)]
pub struct ActionSpec {
    pub kind: ActionKind,
    pub params: &'static [ParamSpec],
    /// Each group lists alternatives: at least one of them must be given.
    pub required: &'static [&'static [&'static str]],
    pub runs: Runs,
}

/// A value a fixed-value parameter does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{param}` must be one of {}, got `{value}`", quoted(allowed))]
pub struct NotAllowed {
    pub param: &'static str,
    pub value: String,
    pub allowed: &'static [&'static str],
}

impl ParamSpec {
    /// `value` in the parameter's canonical case, or why it is refused. Parameters without
    /// fixed values take anything as is.
    pub fn normalize(&self, value: &str) -> Result<String, NotAllowed> {
        let value = match self.case {
            Case::Exact => value.to_string(),
            Case::Upper => value.to_ascii_uppercase(),
            Case::Lower => value.to_ascii_lowercase(),
        };
        if self.allowed.is_empty() || self.allowed.contains(&value.as_str()) {
            return Ok(value);
        }
        Err(NotAllowed {
            param: self.name,
            value,
            allowed: self.allowed,
        })
    }
}

impl ActionSpec {
    pub fn name(&self) -> &str {
        self.kind.name()
    }

    /// Parameter names in table order.
    pub fn names(&self) -> Vec<&'static str> {
        self.params.iter().map(|p| p.name).collect()
    }

    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

const fn p(name: &'static str, ty: ParamType) -> ParamSpec {
    ParamSpec {
        name,
        ty,
        default: None,
        allowed: &[],
        case: Case::Exact,
        escaping: Escaping::Verbatim,
    }
}

const fn escaped(mut spec: ParamSpec, escaping: Escaping) -> ParamSpec {
    spec.escaping = escaping;
    spec
}

const fn fixed(
    mut spec: ParamSpec,
    allowed: &'static [&'static str],
    case: Case,
    default: &'static str,
) -> ParamSpec {
    spec.allowed = allowed;
    spec.case = case;
    spec.default = Some(default);
    spec
}

use Escaping::{Html, SecretRef, Slack};
use ParamType::{File, Json, List, Map, Text};

/// Every built-in action, in the order `check` and the docs list them.
pub static ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        kind: ActionKind::Email,
        params: &[
            p("to", List),
            p("cc", List),
            p("bcc", List),
            p("reply_to", List),
            p("subject", Text),
            p("body", Text),
            escaped(p("html", Text), Html),
            p("template", File),
            p("from", Text),
        ],
        required: &[&["to"], &["subject"], &["body", "html", "template"]],
        runs: Runs::Dispatcher,
    },
    ActionSpec {
        kind: ActionKind::Slack,
        params: &[
            escaped(p("text", Text), Slack),
            p("channel", Text),
            escaped(p("blocks", Json), Slack),
            escaped(p("webhook_url", Text), SecretRef),
        ],
        required: &[&["text", "blocks"]],
        runs: Runs::Dispatcher,
    },
    ActionSpec {
        kind: ActionKind::Http,
        params: &[
            fixed(
                p("method", Text),
                &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
                Case::Upper,
                "POST",
            ),
            escaped(p("url", Text), SecretRef),
            escaped(p("headers", Map), SecretRef),
            p("json", Json),
            p("body", Text),
            escaped(p("sign_secret", Text), SecretRef),
        ],
        required: &[&["url"]],
        runs: Runs::Dispatcher,
    },
    ActionSpec {
        kind: ActionKind::Flag,
        params: &[p("kind", Text), p("note", Text)],
        required: &[&["kind"]],
        runs: Runs::Dispatcher,
    },
    ActionSpec {
        kind: ActionKind::Log,
        params: &[
            p("message", Text),
            fixed(
                p("level", Text),
                &["trace", "debug", "info", "warn", "error"],
                Case::Lower,
                "info",
            ),
        ],
        required: &[&["message"]],
        runs: Runs::Dispatcher,
    },
    ActionSpec {
        kind: ActionKind::Discord,
        params: &[
            escaped(p("webhook_url", Text), SecretRef),
            p("content", Text),
            p("embeds", Json),
        ],
        required: &[&["webhook_url"], &["content", "embeds"]],
        runs: Runs::Dispatcher,
    },
];

/// `script` takes a string (a `.rhai` path or an inline script) instead of parameters.
pub const SCRIPT: &str = "script";

/// Every action name a rule may use, in table order, `script` last.
pub fn kinds() -> Vec<&'static str> {
    ACTIONS
        .iter()
        .map(|a| a.kind.name())
        .chain([SCRIPT])
        .collect()
}

/// The row of built-in action `name`.
pub fn spec(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.kind.name() == name)
}

/// Literal values some parameters must take (templated values are checked when rendered).
pub fn allowed_values(kind: &str, param: &str) -> Option<&'static [&'static str]> {
    let allowed = spec(kind)?.param(param)?.allowed;
    (!allowed.is_empty()).then_some(allowed)
}

/// How values interpolated into parameter `param` of `kind` are escaped.
pub fn escaping(kind: &str, param: &str) -> Escaping {
    spec(kind)
        .and_then(|s| s.param(param))
        .map_or(Escaping::Verbatim, |p| p.escaping)
}

/// Parameters in which `${VAR}` is kept in the job (a reference, never the value) and resolved
/// from the environment when the job is delivered: where credentials live.
pub fn secret_ref(kind: &str, param: &str) -> bool {
    escaping(kind, param) == Escaping::SecretRef
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
            many => format!("one of {}", quoted(many)),
        })
        .collect()
}

/// `` `a`, `b`, `c` ``.
pub fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
