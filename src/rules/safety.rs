//! Load-time rules that keep buyer-typed data and secrets where they belong.
//!
//! - Recipients: the rule author's comma-separated `to:` literal is split here, before
//!   rendering, so that after rendering every item is one mailbox and a comma typed by a buyer
//!   stays inside its item (where the email action refuses it).
//! - `${VAR}` references: allowed in the parameters that carry credentials
//!   ([`actions::secret_ref`]), kept in the job as the reference and resolved at delivery; a
//!   variable that is not set is an error here, with its position. Elsewhere they stay text
//!   (a warning says so).
//! - `http` URLs: a host that comes from a template is a server-side request forgery waiting to
//!   happen, refused unless `http.allow_hosts` is set (then every host must be listed). A
//!   `slack`/`discord` `webhook_url` never takes its host from a template.

use super::actions;
use super::diag::FileDiags;
use super::model::{pos, Node, Value};
use crate::template::render::offset_pos;

/// One `${NAME}` or `${NAME:-default}` in a string.
#[derive(Debug, PartialEq)]
pub struct EnvRef<'a> {
    /// Byte offset of the `$`.
    pub at: usize,
    pub name: &'a str,
    pub has_default: bool,
}

/// The `${…}` references in `source`; `$$` is a literal `$` and starts none.
pub fn env_refs(source: &str) -> Vec<EnvRef<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = source[i..].find('$') {
        let at = i + off;
        let rest = &source[at + 1..];
        if rest.starts_with('$') {
            i = at + 2;
            continue;
        }
        i = at + 1;
        let Some(body) = rest.strip_prefix('{') else {
            continue;
        };
        let Some(end) = body.find('}') else { break };
        let inner = &body[..end];
        let (name, has_default) = match inner.split_once(":-") {
            Some((n, _)) => (n, true),
            None => (inner, false),
        };
        out.push(EnvRef {
            at,
            name,
            has_default,
        });
        i = at + 2 + end + 1;
    }
    out
}

/// The rule author's recipients split at commas outside `{{ }}`, `{% %}`, `{# #}` and double
/// quotes (`"Doe, Ann" <ann@example.com>` is one): (byte offset, trimmed piece), empty pieces
/// dropped.
pub fn split_recipients(source: &str) -> Vec<(usize, &str)> {
    let bytes = source.as_bytes();
    let (mut depth, mut quoted, mut start) = (0usize, false, 0usize);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes.get(i..i + 2).unwrap_or(&[]);
        match (bytes[i], pair) {
            (_, b"{{" | b"{%" | b"{#") => (depth, i) = (depth + 1, i + 1),
            (_, b"}}" | b"%}" | b"#}") if depth > 0 => (depth, i) = (depth - 1, i + 1),
            (b'"', _) if depth == 0 => quoted = !quoted,
            (b',', _) if depth == 0 && !quoted => {
                pieces.push((start, &source[start..i]));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    pieces.push((start, &source[start..]));
    pieces
        .into_iter()
        .filter_map(|(at, p)| {
            let trimmed = p.trim();
            let lead = p.len() - p.trim_start().len();
            (!trimmed.is_empty()).then_some((at + lead, trimmed))
        })
        .collect()
}

/// Whether the host of the URL template `source` comes from a template: a `{{`/`{%` before the
/// end of the authority (or no literal `scheme://` before the first one).
pub fn templated_host(source: &str) -> bool {
    let Some(first) = ["{{", "{%"].iter().filter_map(|m| source.find(m)).min() else {
        return false;
    };
    let Some(scheme_end) = source.find("://").filter(|&e| e < first) else {
        return true;
    };
    let start = scheme_end + 3;
    let end = source[start..]
        .find(['/', '?', '#'])
        .map_or(source.len(), |i| start + i);
    first < end
}

/// The host of a URL with no template syntax (`None` when it has none or uses `${…}`).
pub fn literal_host(url: &str) -> Option<String> {
    let start = url.find("://")? + 3;
    let authority = url[start..].split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    if host_port.contains('$') {
        return None;
    }
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Whether `host` is in `allow`: an exact name (any case) or `*.example.com` for its subdomains.
pub fn host_allowed(host: &str, allow: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    allow.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        match entry.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == entry,
        }
    })
}

/// The checks of this module for one parameter `name` of a built-in action `kind`.
pub fn check_param(
    kind: &str,
    name: &str,
    value: &Node,
    allow_hosts: &[String],
    d: &mut FileDiags<'_>,
) {
    check_env_refs(kind, name, value, d);
    if let ("http", "url", Some(url)) = (kind, name, value.value.as_str()) {
        check_url_host(url, value, allow_hosts, d);
    }
    if let ("slack" | "discord", "webhook_url", Some(url)) = (kind, name, value.value.as_str()) {
        check_webhook_host(kind, url, value, d);
    }
    if let ("email", "from", Some(from)) = (kind, name, value.value.as_str()) {
        if from.contains("{{") || from.contains("{%") {
            d.error(
                pos(value),
                "the sender (`from`) comes from a template: the event's data would choose who \
                 the mail claims to be from",
                Some(
                    "write the sender literally (one rule per sender if shops mail from \
                     different addresses), or leave `from` out to use `email.from`"
                        .into(),
                ),
            );
        } else if from.parse::<lettre::message::Mailbox>().is_err() {
            d.error(
                pos(value),
                format!("`from` is not one mailbox: `{from}`"),
                Some("write `shop@example.com` or `Example Store <shop@example.com>`".into()),
            );
        }
    }
    if let ("http", "sign_secret", Some(s)) = (kind, name, value.value.as_str()) {
        if env_refs(s).is_empty() && !s.trim().is_empty() {
            d.warning(
                pos(value),
                "`sign_secret` is written in the rule file: it is stored with every job",
                Some("write `sign_secret: ${ERP_HOOK_SECRET}` and set the variable".into()),
            );
        }
    }
}

/// The parameters that take `${VAR}`, from the action table: "http `url`, `headers`, …".
fn secret_params() -> String {
    actions::ACTIONS
        .iter()
        .filter_map(|row| {
            let names: Vec<&str> = row
                .params
                .iter()
                .filter(|p| p.escaping == actions::Escaping::SecretRef)
                .map(|p| p.name)
                .collect();
            (!names.is_empty()).then(|| format!("{} {}", row.name(), actions::quoted(&names)))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `${VAR}` in a secret parameter must name a set variable; elsewhere it is not expanded.
fn check_env_refs(kind: &str, name: &str, value: &Node, d: &mut FileDiags<'_>) {
    let strings = strings_of(value);
    for (node, text) in strings {
        for r in env_refs(text) {
            let at = d.inner(pos(node), offset_pos(text, r.at));
            if !actions::secret_ref(kind, name) {
                let msg = format!("`${{{}}}` is not expanded in `{name}` of `{kind}`", r.name);
                let hint = format!(
                    "`${{VAR}}` is expanded in {} only; write `$${{` for a literal `${{`",
                    secret_params()
                );
                d.warning(at, msg, Some(hint));
            } else if !r.has_default && std::env::var(r.name).map_or(true, |v| v.is_empty()) {
                let msg = format!("environment variable `{}` is not set", r.name);
                let hint = format!(
                    "set `{}` where storeflow runs, or write `${{{}:-default}}`",
                    r.name, r.name
                );
                d.error(at, msg, Some(hint));
            }
        }
    }
}

fn check_url_host(url: &str, node: &Node, allow_hosts: &[String], d: &mut FileDiags<'_>) {
    if templated_host(url) {
        if allow_hosts.is_empty() {
            d.error(
                pos(node),
                "the host of this `http` url comes from a template (the event's data could \
                 send the request anywhere)",
                Some(
                    "write the host literally, or list the hosts it may take in \
                     `http.allow_hosts` in storeflow.yaml"
                        .into(),
                ),
            );
        }
    } else if let Some(host) = literal_host(url) {
        if !allow_hosts.is_empty() && !host_allowed(&host, allow_hosts) {
            d.error(
                pos(node),
                format!("host `{host}` is not in `http.allow_hosts`"),
                Some(format!(
                    "add `{host}` to `http.allow_hosts` in storeflow.yaml"
                )),
            );
        }
    }
}

/// A chat webhook's host is never taken from a template: `http.allow_hosts` does not apply to
/// these actions, so a templated host could post the message (and the event's data) anywhere.
fn check_webhook_host(kind: &str, url: &str, node: &Node, d: &mut FileDiags<'_>) {
    if templated_host(url) {
        d.error(
            pos(node),
            format!(
                "the host of this `{kind}` webhook_url comes from a template (the event's data \
                 could send the message anywhere)"
            ),
            Some(
                "write the webhook URL literally or as `${VAR}` (e.g. `${SLACK_WEBHOOK_URL}`); \
                 only its path may use a template"
                    .into(),
            ),
        );
    }
}

/// Every string scalar in `node` (maps and lists walked), with its node.
fn strings_of(node: &Node) -> Vec<(&Node, &str)> {
    match &node.value {
        Value::Str(s) => vec![(node, s.as_str())],
        Value::Seq(items) => items.iter().flat_map(strings_of).collect(),
        Value::Map(entries) => entries.iter().flat_map(|(_, v)| strings_of(v)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_refs_are_found_and_dollar_dollar_is_literal() {
        let refs = env_refs("a ${X} $${NOT} ${Y:-d} $ {Z} ${");
        let names: Vec<_> = refs.iter().map(|r| (r.name, r.has_default)).collect();
        assert_eq!(names, [("X", false), ("Y", true)]);
        assert_eq!(refs[0].at, 2);
    }

    #[test]
    fn recipients_split_only_outside_templates_and_quotes() {
        let got = split_recipients(
            "a@x.com, {{ order.customer.email }} ,\"Doe, Ann\" <d@x.com>,{{ x | join(', ') }}",
        );
        let pieces: Vec<&str> = got.iter().map(|p| p.1).collect();
        assert_eq!(
            pieces,
            [
                "a@x.com",
                "{{ order.customer.email }}",
                "\"Doe, Ann\" <d@x.com>",
                "{{ x | join(', ') }}"
            ]
        );
        assert_eq!(got[1].0, 9);
    }

    #[test]
    fn templated_hosts_are_recognised() {
        for url in [
            "{{ payload.callback }}",
            "https://{{ payload.host }}/x",
            "https://erp.{{ payload.d }}.com/",
            "http{{ s }}://x/",
        ] {
            assert!(templated_host(url), "{url}");
        }
        for url in [
            "https://erp.example.com/{{ order.id }}",
            "https://erp.example.com?id={{ order.id }}",
            "https://${ERP_HOST}/x",
            "https://x/",
        ] {
            assert!(!templated_host(url), "{url}");
        }
    }

    /// Each parameter's escaping applies to interpolated values only, never to the template text.
    #[test]
    fn regression_interpolated_values_are_escaped_per_parameter() {
        use crate::template::render::{Escape, Templates};
        let mut t = Templates::new();
        let ctx = minijinja::context! { payload => minijinja::context! { v => "<!channel> & ${HOME} <b>" } };
        let cases = [
            (
                "email",
                "html",
                "<p>{{ payload.v }}</p>",
                "<p>&lt;!channel&gt; &amp; ${HOME} &lt;b&gt;</p>",
            ),
            (
                "slack",
                "text",
                "<!here> {{ payload.v }}",
                "<!here> &lt;!channel&gt; &amp; ${HOME} &lt;b&gt;",
            ),
            (
                "http",
                "sign_secret",
                "${ERP}{{ payload.v }}",
                "${ERP}<!channel> & $${HOME} <b>",
            ),
            (
                "email",
                "subject",
                "{{ payload.v }}",
                "<!channel> & ${HOME} <b>",
            ),
        ];
        for (i, (kind, param, source, want)) in cases.into_iter().enumerate() {
            let escape: Escape = actions::escape(kind, param);
            let p = t
                .compile(format!("t{i}{}", escape.suffix()), source)
                .unwrap();
            assert_eq!(t.render(&p, &ctx).unwrap(), want, "{kind}.{param}");
        }
    }

    #[test]
    fn hosts_match_exactly_or_by_wildcard() {
        let allow = vec!["erp.example.com".to_string(), "*.shop.example".to_string()];
        assert!(host_allowed("ERP.example.com", &allow));
        assert!(host_allowed("a.b.shop.example", &allow));
        assert!(!host_allowed("shop.example", &allow));
        assert!(!host_allowed("evil-erp.example.com", &allow));
        assert_eq!(
            literal_host("https://u:p@ERP.example.com:8443/x").as_deref(),
            Some("erp.example.com")
        );
        assert_eq!(literal_host("http://[::1]:80/").as_deref(), Some("::1"));
    }
}
