//! `email`: sends through SMTP (lettre, pooled, STARTTLS/TLS), or without SMTP configured writes
//! the message as an `.eml` file to `<data_dir>/mail` so a trial run shows exactly what would be
//! sent. The Message-ID is derived from the job's idempotency key: a retried or replayed send of
//! the same job carries the same id, so mail systems can recognise a repeat.

use std::path::PathBuf;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::params::{list, required, text};
use super::{write_atomically, Action, ActionError, ActionsError, Delivery, JobContext};
use crate::config::{Config, SmtpConfig, SmtpSecurity};

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// No SMTP configured: `.eml` files in this folder.
    Drop(PathBuf),
}

pub struct EmailAction {
    from: Mailbox,
    transport: Transport,
}

impl EmailAction {
    pub fn from_config(config: &Config) -> Result<EmailAction, ActionsError> {
        let from = config
            .email
            .from
            .parse::<Mailbox>()
            .map_err(|e| ActionsError::From {
                from: config.email.from.clone(),
                reason: e.to_string(),
            })?;
        let transport = match &config.email.smtp {
            Some(smtp) => Transport::Smtp(smtp_transport(smtp, config.delivery.timeout)?),
            None => Transport::Drop(config.data_dir.join("mail")),
        };
        Ok(EmailAction { from, transport })
    }

    async fn send(&self, params: &Value, job: &JobContext) -> Result<(), ActionError> {
        let message = build_message(&self.from, params, job)?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(smtp_error),
            Transport::Drop(dir) => {
                let path = dir.join(format!("{}.eml", file_safe(&job.idempotency_key())));
                write_atomically(&path, &message.formatted()).map_err(|e| {
                    ActionError::retryable(format!("cannot write {}: {e}", path.display()))
                })
            }
        }
    }
}

impl Action for EmailAction {
    fn name(&self) -> &'static str {
        "email"
    }

    fn execute<'a>(&'a self, params: &'a Value, job: &'a JobContext) -> Delivery<'a> {
        Box::pin(self.send(params, job))
    }
}

fn smtp_transport(
    smtp: &SmtpConfig,
    timeout: std::time::Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, ActionsError> {
    let err = |e: lettre::transport::smtp::Error| ActionsError::Smtp(e.to_string());
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).port(smtp.port);
    if smtp.security != SmtpSecurity::None {
        let mut tls = TlsParameters::builder(smtp.host.clone());
        if let Some(ca) = &smtp.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| ActionsError::Smtp(format!("ca_file {}: {e}", ca.display())))?;
            tls = tls.add_root_certificate(Certificate::from_pem(&pem).map_err(err)?);
        }
        let params = tls.build_rustls().map_err(err)?;
        builder = builder.tls(match smtp.security {
            SmtpSecurity::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if !smtp.username.is_empty() {
        let creds = Credentials::new(smtp.username.clone(), smtp.password.expose().to_string());
        builder = builder.credentials(creds);
    }
    Ok(builder.timeout(Some(timeout)).build())
}

/// The message for one job. Bad addresses are permanent failures naming the parameter.
fn build_message(from: &Mailbox, params: &Value, job: &JobContext) -> Result<Message, ActionError> {
    let mut b = Message::builder()
        .from(match text(params, "from") {
            f if f.is_empty() => from.clone(),
            f => mailbox("from", &f)?,
        })
        .subject(required(params, "email", "subject")?)
        .message_id(Some(message_id(&job.idempotency_key())));
    let to = list(params, "to");
    if to.is_empty() {
        return Err(ActionError::permanent(
            "email: parameter `to` is missing or empty",
        ));
    }
    for m in mailboxes("to", &to)? {
        b = b.to(m);
    }
    for m in mailboxes("cc", &list(params, "cc"))? {
        b = b.cc(m);
    }
    for m in mailboxes("bcc", &list(params, "bcc"))? {
        b = b.bcc(m);
    }
    if let Some(r) = list(params, "reply_to").first() {
        b = b.reply_to(mailbox("reply_to", r)?);
    }
    let (body, html) = (text(params, "body"), text(params, "html"));
    let built = match (body.is_empty(), html.is_empty()) {
        (true, true) => {
            return Err(ActionError::permanent(
                "email: give `body`, `html` or `template`",
            ))
        }
        (false, true) => b.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(body),
        ),
        (true, false) => b.multipart(MultiPart::alternative_plain_html(html_to_text(&html), html)),
        (false, false) => b.multipart(MultiPart::alternative_plain_html(body, html)),
    };
    built.map_err(|e| ActionError::permanent(format!("email: {e}")))
}

fn mailbox(param: &str, s: &str) -> Result<Mailbox, ActionError> {
    s.parse().map_err(|e| {
        ActionError::permanent(format!("email: `{param}` address `{s}` is invalid: {e}"))
    })
}

fn mailboxes(param: &str, items: &[String]) -> Result<Mailboxes, ActionError> {
    items.iter().map(|s| mailbox(param, s)).collect()
}

/// `<first 32 hex of sha256(key)>@storeflow`: stable for a job, opaque to readers.
pub fn message_id(key: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    format!("<{}@storeflow>", &digest[..32])
}

/// SMTP 4xx, timeouts and connection problems are worth retrying; 5xx are not.
fn smtp_error(e: lettre::transport::smtp::Error) -> ActionError {
    if e.is_permanent() {
        ActionError::permanent(format!("SMTP server refused the message: {e}"))
    } else {
        ActionError::retryable(format!("SMTP delivery failed: {e}"))
    }
}

fn file_safe(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A readable plain-text alternative of an HTML body: tags dropped, block ends as line breaks,
/// the common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let tag = rest[start + 1..start + end]
            .trim_start_matches('/')
            .to_ascii_lowercase();
        if ["br", "p", "div", "li", "tr", "h1", "h2", "h3"]
            .iter()
            .any(|t| tag.starts_with(t))
        {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let lines: Vec<&str> = decoded.lines().map(str::trim).collect();
    lines.join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_readable_text() {
        let html = "<p>Hi &lt;Jane&gt;,</p><p>order <b>42</b> &amp; more<br>bye</p>";
        assert_eq!(html_to_text(html), "Hi <Jane>,\n\norder 42 & more\nbye");
    }

    #[test]
    fn message_ids_are_stable_per_job() {
        assert_eq!(message_id("e/r/0"), message_id("e/r/0"));
        assert_ne!(message_id("e/r/0"), message_id("e/r/1"));
        assert!(message_id("e/r/0").ends_with("@storeflow>"));
    }
}
