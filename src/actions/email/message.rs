//! Turning `email` params into an RFC 5322 message: addresses, bodies, the stable Message-ID.
//!
//! Kept apart from sending so the same message goes to SMTP or to an `.eml` file, and so it can
//! be tested without a server.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MessageBuilder, MultiPart, SinglePart};
use lettre::Message;

use super::super::params::Params;
use super::super::{key_digest, ActionError, JobContext};

/// `<{first 32 hex of sha256(idempotency key)}@storeflow>`: the same for every attempt of a job,
/// so a retried send (or a re-run) is recognisable by the receiver and by us.
pub fn message_id(job: &JobContext) -> String {
    format!("<{}@storeflow>", &key_digest(&job.idempotency_key())[..32])
}

/// Builds the message for `job` from its params; `default_from` is `email.from`.
/// `keep_bcc` keeps the `Bcc` header in the output (for `.eml` files; SMTP uses the envelope).
pub fn build(
    p: &Params<'_>,
    default_from: &Mailbox,
    job: &JobContext,
    keep_bcc: bool,
) -> Result<Message, ActionError> {
    let from = match p.opt_str("from")? {
        Some(s) => mailbox(p, "from", s)?,
        None => default_from.clone(),
    };
    let mut builder = Message::builder()
        .from(from)
        .subject(p.str("subject")?)
        .message_id(Some(message_id(job)));
    builder = add_recipients(builder, p)?;
    if keep_bcc {
        builder = builder.keep_bcc();
    }
    let text = p.opt_str("body")?;
    let html = p.opt_str("html")?;
    let built = match (text, html) {
        (Some(text), Some(html)) => builder.multipart(alternative(text.into(), html)),
        (None, Some(html)) => builder.multipart(alternative(html_to_text(html), html)),
        (Some(text), None) => builder
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string()),
        (None, None) => return Err(p.error("body", "is required (or give `html`)")),
    };
    built.map_err(|e| ActionError::permanent(format!("email: cannot build the message: {e}")))
}

fn alternative(text: String, html: &str) -> MultiPart {
    MultiPart::alternative()
        .singlepart(SinglePart::plain(text))
        .singlepart(SinglePart::html(html.to_string()))
}

fn add_recipients(
    mut builder: MessageBuilder,
    p: &Params<'_>,
) -> Result<MessageBuilder, ActionError> {
    let to = p.list("to")?;
    if to.is_empty() {
        return Err(p.error("to", "is required"));
    }
    for addr in &to {
        builder = builder.to(mailbox(p, "to", addr)?);
    }
    for addr in &p.list("cc")? {
        builder = builder.cc(mailbox(p, "cc", addr)?);
    }
    for addr in &p.list("bcc")? {
        builder = builder.bcc(mailbox(p, "bcc", addr)?);
    }
    for addr in &p.list("reply_to")? {
        builder = builder.reply_to(mailbox(p, "reply_to", addr)?);
    }
    Ok(builder)
}

/// `shop@example.com` or `Shop <shop@example.com>`: exactly ONE mailbox. A bad address, a list
/// (`a@x.com, b@x.com`) or a group (`team: a@x.com;`) is a permanent error naming the param:
/// a buyer who types a second address into a form field must not get a copy sent anywhere.
fn mailbox(p: &Params<'_>, name: &str, addr: &str) -> Result<Mailbox, ActionError> {
    let shown = addr.escape_debug();
    let text = addr.trim();
    // lettre's parser stops after the first mailbox and ignores the rest of the text, so check
    // that the mailbox is all there is: the bare address, or `display name <address>`.
    let parsed = text
        .parse::<Mailbox>()
        .ok()
        .filter(|m| text == m.email.to_string() || text.ends_with(&format!("<{}>", m.email)));
    match parsed {
        Some(mailbox) => Ok(mailbox),
        None if text.contains([',', ';']) || text.matches('@').count() > 1 => Err(p.error(
            name,
            format!(
                "`{shown}` is not exactly one mailbox (a list or a group?); \
                 give one address per item (a YAML list for several)"
            ),
        )),
        None => Err(p.error(name, format!("`{shown}` is not an email address"))),
    }
}

/// A plain-text rendering of `html` for clients that do not show HTML: tags dropped (and the
/// contents of `<script>`/`<style>`), block ends turned into line breaks, common entities decoded,
/// runs of blank lines collapsed. Deliberately simple: it is the fallback, not the message.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + len].trim().to_ascii_lowercase();
        rest = &rest[start + len + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            let close = format!("</{name}");
            rest = match rest.to_ascii_lowercase().find(&close) {
                Some(i) => &rest[i..],
                None => "",
            };
        } else if is_line_break(&name, tag.starts_with('/')) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    tidy(&decode_entities(&out))
}

fn is_line_break(name: &str, closing: bool) -> bool {
    match name {
        "br" | "hr" => true,
        "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" => closing,
        _ => false,
    }
}

fn decode_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Each line's whitespace collapsed, at most one blank line in a row, no blank start or end.
fn tidy(s: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in s.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() && lines.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> JobContext {
        JobContext {
            job_id: 1,
            event_id: "evt_1".into(),
            rule: "r".into(),
            action_index: 0,
            attempt: 1,
        }
    }

    fn from() -> Mailbox {
        "Shop <shop@example.com>".parse().unwrap()
    }

    #[test]
    fn html_becomes_readable_text() {
        let html = "<html><head><style>p{color:red}</style></head><body>\
            <h1>Order  #42</h1><p>Thanks, <b>Ann</b> &amp; co.<br>Total: 5 &lt;EUR&gt;</p>\
            <script>alert(1)</script><ul><li>one</li><li>two</li></ul></body></html>";
        assert_eq!(
            html_to_text(html),
            "Order #42\nThanks, Ann & co.\nTotal: 5 <EUR>\none\ntwo"
        );
    }

    #[test]
    fn message_id_is_stable_per_job() {
        let mut j = job();
        let id = message_id(&j);
        assert!(id.starts_with('<') && id.ends_with("@storeflow>"), "{id}");
        j.attempt = 5;
        assert_eq!(message_id(&j), id);
        j.action_index = 1;
        assert_ne!(message_id(&j), id);
    }

    #[test]
    fn builds_alternative_and_keeps_bcc_only_when_asked() {
        let v = json!({"to": ["a@x.com", "B <b@x.com>"], "bcc": ["c@x.com"], "subject": "Hi",
                       "html": "<p>Hello</p>"});
        let p = Params::new("email", &v).unwrap();
        let raw = String::from_utf8(build(&p, &from(), &job(), true).unwrap().formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain") && raw.contains("\r\nHello\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Bcc: c@x.com"), "{raw}");
        let msg = build(&p, &from(), &job(), false).unwrap();
        assert!(!String::from_utf8(msg.formatted()).unwrap().contains("Bcc:"));
        assert_eq!(msg.envelope().to().len(), 3);
    }

    #[test]
    fn regression_recipient_lists_and_groups_are_refused() {
        let refused = [
            "a@example.com, evil@example.org",
            "a@example.com evil@example.org",
            "Ann <a@example.com>, evil@example.org",
            "a@example.com,Evil <evil@example.org>",
            "team: a@example.com, evil@example.org;",
            "a@example.com\r\nRCPT TO:<evil@example.org>",
        ];
        for to in refused {
            for field in ["to", "cc", "bcc", "reply_to"] {
                let mut v = json!({"to": "ok@example.com", "subject": "s", "body": "b"});
                v[field] = json!(to);
                let p = Params::new("email", &v).unwrap();
                let e = build(&p, &from(), &job(), false).unwrap_err();
                let msg = e.to_string();
                assert!(
                    !e.is_retryable() && msg.contains(&format!("`{field}`")),
                    "{to}: {msg}"
                );
                assert!(!msg.contains('\n'), "{msg}");
            }
        }
        let v = json!({"to": ["\"Doe, Ann\" <a@example.com>", "b@example.com"], "subject": "s",
                       "body": "b"});
        let msg = build(&Params::new("email", &v).unwrap(), &from(), &job(), false).unwrap();
        assert_eq!(msg.envelope().to().len(), 2);
    }

    #[test]
    fn bad_params_name_the_param() {
        let cases = [
            (json!({"subject": "s", "body": "b"}), "`to`"),
            (json!({"to": "nope", "subject": "s", "body": "b"}), "`to`"),
            (
                json!({"to": "a@x.com", "cc": "x y", "subject": "s", "body": "b"}),
                "`cc`",
            ),
            (json!({"to": "a@x.com", "body": "b"}), "`subject`"),
            (json!({"to": "a@x.com", "subject": "s"}), "`body`"),
            (
                json!({"to": "a@x.com", "subject": "s", "body": "b", "from": "@"}),
                "`from`",
            ),
        ];
        for (v, named) in cases {
            let e = build(&Params::new("email", &v).unwrap(), &from(), &job(), false).unwrap_err();
            assert!(!e.is_retryable() && e.to_string().contains(named), "{e}");
        }
    }
}
