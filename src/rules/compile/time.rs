//! The time keys of a rule (DESIGN.md §12): `wait`, `max_late`, `limit`, `digest`,
//! `quiet_hours`, and of an action: `delay`, `if_still`, `quiet_hours`. Checked at load with
//! positions (durations, numbers, time zones, patterns); what they do is `plan::time`.

use std::time::Duration;

use super::Compiler;
use crate::rules::diag::FileDiags;
use crate::rules::model::{pos, Node, Value};
use crate::rules::pattern;
use crate::template::render::Param;
use crate::template::suggest::suggest;

/// Rule keys this module reads.
pub const RULE_TIME_KEYS: &[&str] = &["wait", "max_late", "limit", "digest", "quiet_hours"];
/// Keys an action item may carry beside its action name.
pub const ACTION_TIME_KEYS: &[&str] = &["delay", "if_still", "quiet_hours"];

/// A rule's time settings; all empty for a rule that uses none.
#[derive(Debug, Default)]
pub struct RuleTime {
    pub wait: Option<Wait>,
    /// Timers of this rule firing later than this after their due time are skipped.
    pub max_late: Option<Duration>,
    pub limit: Option<Limit>,
    pub digest: Option<Digest>,
    pub quiet: Option<QuietHours>,
    /// Per action position (shorter than `actions` when the tail has none).
    pub actions: Vec<ActionTime>,
}

#[derive(Debug)]
pub struct Wait {
    pub duration: Duration,
    /// As written (`48h`): the `waited` template variable.
    pub text: String,
    /// `on:`-style patterns; a later event of the same order matching one cancels the wait.
    pub unless: Vec<String>,
}

#[derive(Debug)]
pub struct Limit {
    pub key: Param,
    pub max: u32,
    pub per: Duration,
}

#[derive(Debug)]
pub struct Digest {
    pub every: Duration,
    pub max: Option<u32>,
}

/// A daily window in a time zone; `from` after `to` spans midnight.
#[derive(Debug, Clone)]
pub struct QuietHours {
    /// Minutes after local midnight.
    pub from: u16,
    pub to: u16,
    pub tz: jiff::tz::TimeZone,
    pub tz_name: String,
}

#[derive(Debug, Default)]
pub struct ActionTime {
    pub delay: Option<Duration>,
    pub if_still: Option<String>,
    pub quiet: Option<QuietHours>,
}

impl RuleTime {
    /// The time settings of action `index`.
    pub fn action(&self, index: usize) -> Option<&ActionTime> {
        self.actions.get(index)
    }

    /// Whether the rule uses any time key (rules that do not take the plain path).
    pub fn is_empty(&self) -> bool {
        self.wait.is_none()
            && self.limit.is_none()
            && self.digest.is_none()
            && self.quiet.is_none()
            && self
                .actions
                .iter()
                .all(|a| a.delay.is_none() && a.if_still.is_none() && a.quiet.is_none())
    }
}

/// Reads the time keys of a rule mapping and of its action items.
pub fn compile(entries: &[(Node, Node)], c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> RuleTime {
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _)| key.value.as_str() == Some(k))
            .map(|e| &e.1)
    };
    let time = RuleTime {
        wait: get("wait").and_then(|n| wait(n, d)),
        max_late: get("max_late").and_then(|n| duration(n, "max_late", d)),
        limit: get("limit").and_then(|n| limit(n, c, d)),
        digest: get("digest").and_then(|n| digest(n, d)),
        quiet: get("quiet_hours").and_then(|n| quiet_hours(n, d)),
        actions: match get("actions").map(|n| &n.value) {
            Some(Value::Seq(items)) => items.iter().map(|i| action_time(i, c, d)).collect(),
            _ => Vec::new(),
        },
    };
    if let (Some(_), Some(n)) = (&time.wait, get("wait")) {
        if time.actions.iter().any(|a| a.delay.is_some()) {
            let hint =
                Some("the wait holds all the rule's actions: lengthen `wait.for` instead".into());
            d.error(
                pos(n),
                "an action of a rule with `wait` cannot have its own `delay`",
                hint,
            );
        }
    }
    if let (Some(_), Some(n)) = (&time.digest, get("wait")) {
        let hint = Some("a digest collects events; a wait holds one: use one of them".into());
        d.error(pos(n), "`wait` and `digest` cannot be combined", hint);
    }
    time
}

/// The keys of a mapping-valued time key, each checked against `known`.
fn mapping<'n>(
    n: &'n Node,
    key: &str,
    known: &[&str],
    d: &mut FileDiags<'_>,
) -> Option<&'n [(Node, Node)]> {
    let Value::Map(entries) = &n.value else {
        let msg = format!("`{key}` must be a mapping, found {}", n.value.type_name());
        d.error(
            pos(n),
            msg,
            Some(format!("`{key}` takes {}", known.join(", "))),
        );
        return None;
    };
    for (k, _) in entries {
        let name = k.value.key_text();
        if !known.contains(&name.as_str()) {
            let msg = format!("unknown key `{name}` in `{key}`");
            d.error(pos(k), msg, Some(suggest(&name, known, "keys")));
        }
    }
    Some(entries)
}

fn field<'a>(entries: &'a [(Node, Node)], k: &str) -> Option<&'a Node> {
    entries
        .iter()
        .find(|(key, _)| key.value.as_str() == Some(k))
        .map(|e| &e.1)
}

fn required<'a>(
    entries: &'a [(Node, Node)],
    at: &Node,
    owner: &str,
    k: &str,
    d: &mut FileDiags<'_>,
) -> Option<&'a Node> {
    let found = field(entries, k);
    if found.is_none() {
        d.error(pos(at), format!("`{owner}` needs `{k}`"), None);
    }
    found
}

/// A positive duration (`30s`, `10m`, `48h`, `7d`).
pub fn duration(n: &Node, key: &str, d: &mut FileDiags<'_>) -> Option<Duration> {
    let hint = || {
        Some(format!(
            "write a duration such as `30s`, `10m`, `48h` or `7d` for `{key}`"
        ))
    };
    let Some(text) = n.value.as_str() else {
        let msg = format!("`{key}` must be a duration, found {}", n.value.type_name());
        d.error(pos(n), msg, hint());
        return None;
    };
    match humantime::parse_duration(text.trim()) {
        Ok(dur) if !dur.is_zero() => Some(dur),
        Ok(_) => {
            d.error(pos(n), format!("`{key}` must be longer than zero"), hint());
            None
        }
        Err(e) => {
            d.error(
                pos(n),
                format!("`{key}`: `{text}` is not a duration ({e})"),
                hint(),
            );
            None
        }
    }
}

fn count(n: &Node, key: &str, d: &mut FileDiags<'_>) -> Option<u32> {
    match n.value {
        Value::Int(i) if i >= 1 && i <= u32::MAX as i64 => Some(i as u32),
        _ => {
            d.error(
                pos(n),
                format!("`{key}` must be a whole number of at least 1"),
                None,
            );
            None
        }
    }
}

fn wait(n: &Node, d: &mut FileDiags<'_>) -> Option<Wait> {
    let entries = mapping(n, "wait", &["for", "unless"], d)?;
    let for_node = required(entries, n, "wait", "for", d)?;
    let duration = duration(for_node, "wait.for", d)?;
    let mut unless = Vec::new();
    if let Some(u) = field(entries, "unless") {
        let items: Vec<&Node> = match &u.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![u],
        };
        for item in items {
            let Some(p) = item.value.as_str() else {
                d.error(pos(item), "`unless` patterns must be strings", None);
                continue;
            };
            if let Some((message, hint)) = pattern::never_matches(p) {
                d.warning(pos(item), message, Some(hint));
            }
            unless.push(p.to_string());
        }
    }
    Some(Wait {
        duration,
        text: for_node
            .value
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string(),
        unless,
    })
}

fn limit(n: &Node, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> Option<Limit> {
    let entries = mapping(n, "limit", &["key", "max", "per"], d)?;
    let key_node = required(entries, n, "limit", "key", d);
    let max = required(entries, n, "limit", "max", d).and_then(|m| count(m, "limit.max", d));
    let per = required(entries, n, "limit", "per", d).and_then(|p| duration(p, "limit.per", d));
    let key_node = key_node?;
    let Some(source) = key_node.value.as_str() else {
        d.error(
            pos(key_node),
            "`limit.key` must be a string (a template)",
            None,
        );
        return None;
    };
    let name = format!("t{}", c.next_template);
    c.next_template += 1;
    let key = match c.templates.compile(name, source) {
        Ok(p) => p,
        Err(issue) => {
            d.error(
                pos(key_node),
                format!("`limit.key`: {}", issue.message),
                issue.hint,
            );
            return None;
        }
    };
    Some(Limit {
        key,
        max: max?,
        per: per?,
    })
}

fn digest(n: &Node, d: &mut FileDiags<'_>) -> Option<Digest> {
    let entries = mapping(n, "digest", &["every", "max"], d)?;
    let every =
        required(entries, n, "digest", "every", d).and_then(|e| duration(e, "digest.every", d));
    let max = match field(entries, "max") {
        Some(m) => Some(count(m, "digest.max", d)?),
        None => None,
    };
    Some(Digest { every: every?, max })
}

/// `quiet_hours: {from: "22:00", to: "07:00", tz: Europe/Berlin}`.
pub fn quiet_hours(n: &Node, d: &mut FileDiags<'_>) -> Option<QuietHours> {
    let entries = mapping(n, "quiet_hours", &["from", "to", "tz"], d)?;
    let from = required(entries, n, "quiet_hours", "from", d).and_then(|f| clock_time(f, d));
    let to = required(entries, n, "quiet_hours", "to", d).and_then(|t| clock_time(t, d));
    let tz_node = required(entries, n, "quiet_hours", "tz", d)?;
    let tz_name = tz_node.value.as_str().unwrap_or_default().to_string();
    let tz = match jiff::tz::TimeZone::get(&tz_name) {
        Ok(tz) => tz,
        Err(_) => {
            let msg = format!("unknown time zone `{tz_name}`");
            let hint = Some(
                "use an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`".into(),
            );
            d.error(pos(tz_node), msg, hint);
            return None;
        }
    };
    let (from, to) = (from?, to?);
    if from == to {
        d.error(
            pos(n),
            "`quiet_hours` `from` and `to` are the same time",
            None,
        );
        return None;
    }
    Some(QuietHours {
        from,
        to,
        tz,
        tz_name,
    })
}

/// `HH:MM` as minutes after midnight.
fn clock_time(n: &Node, d: &mut FileDiags<'_>) -> Option<u16> {
    let text = n.value.as_str().unwrap_or_default();
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
        (h < 24 && m < 60 && text.len() == 5).then_some(h * 60 + m)
    });
    if parsed.is_none() {
        let msg = format!("`{text}` is not a time of day");
        d.error(
            pos(n),
            msg,
            Some("write it as \"HH:MM\", e.g. \"22:00\"".into()),
        );
    }
    parsed
}

fn action_time(item: &Node, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> ActionTime {
    let Value::Map(entries) = &item.value else {
        return ActionTime::default();
    };
    let if_still = field(entries, "if_still").and_then(|n| if_still(n, c, d));
    let time = ActionTime {
        delay: field(entries, "delay").and_then(|n| duration(n, "delay", d)),
        if_still,
        quiet: field(entries, "quiet_hours").and_then(|n| quiet_hours(n, d)),
    };
    if let (Some(n), None) = (field(entries, "if_still"), time.delay) {
        let hint =
            Some("add `delay:`; `if_still` is checked when a delayed action comes due".into());
        d.error(pos(n), "`if_still` needs `delay`", hint);
    }
    time
}

fn if_still(n: &Node, c: &mut Compiler<'_>, d: &mut FileDiags<'_>) -> Option<String> {
    let Some(source) = n.value.as_str() else {
        d.error(
            pos(n),
            "`if_still` must be a Rhai expression (a string)",
            None,
        );
        return None;
    };
    if let Err(e) = c.engine.compile_expression(source) {
        let inner = (e.1.line().unwrap_or(1), e.1.position().unwrap_or(1));
        let at = d.inner(pos(n), inner);
        let hint =
            Some("`if_still` is one Rhai expression, e.g. `order.status != \"Canceled\"`".into());
        d.error(
            at,
            format!("Rhai syntax error in `if_still`: {}", e.0),
            hint,
        );
        return None;
    }
    Some(source.to_string())
}
