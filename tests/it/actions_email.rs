//! The `email` action against a real SMTP server on loopback (plain and STARTTLS), SMTP refusals,
//! a server that is down, and the `.eml` drop used when no SMTP server is configured.

use std::path::Path;

use serde_json::{json, Value};
use storeflow::actions::{message_id, ActionError, Actions, JobContext};
use storeflow::config::Config;
use tempfile::TempDir;

use crate::helpers::fixture_path;
use crate::receivers::{header, job, SmtpServer};

/// Actions built from `yaml` (plus a temporary data dir, returned to keep it alive).
fn build(yaml: &str) -> (Actions, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::parse(yaml, Path::new("test.yaml"), |_| None).unwrap();
    config.data_dir = dir.path().join("data");
    (Actions::from_config(&config).unwrap(), dir)
}

fn smtp_yaml(port: u16, extra: &str) -> String {
    format!(
        "email:\n  from: \"Shop <shop@example.com>\"\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    security: none\n{extra}delivery:\n  timeout: 10s\n"
    )
}

async fn send(actions: &Actions, params: Value, job: &JobContext) -> Result<(), ActionError> {
    actions.get("email").unwrap().execute(&params, job).await
}

#[tokio::test]
async fn email_arrives_with_recipients_subject_and_body() {
    let mut server = SmtpServer::start();
    let (actions, _dir) = build(&smtp_yaml(server.port, ""));
    let params = json!({
        "to": ["ann@example.com", "Bob <bob@example.com>"],
        "cc": ["cat@example.com"],
        "bcc": "dan@example.com",
        "reply_to": "help@example.com",
        "subject": "Your order 42 is on its way",
        "body": "Hello Ann, order 42 left the warehouse.",
    });
    let j = job("evt_1", "email-shipped", 0);
    send(&actions, params, &j).await.unwrap();

    let mail = server.next().await;
    assert_eq!(mail.from, "shop@example.com");
    let mut to = mail.to.clone();
    to.sort();
    assert_eq!(
        to,
        [
            "ann@example.com",
            "bob@example.com",
            "cat@example.com",
            "dan@example.com"
        ]
    );
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Your order 42 is on its way"
    );
    assert_eq!(mail.header("From").unwrap(), "Shop <shop@example.com>");
    let to_header = mail.header("To").unwrap();
    assert!(to_header.contains("ann@example.com") && to_header.contains("Bob <bob@example.com>"));
    assert_eq!(mail.header("Cc").unwrap(), "cat@example.com");
    assert_eq!(mail.header("Reply-To").unwrap(), "help@example.com");
    assert_eq!(
        mail.header("Bcc"),
        None,
        "Bcc must not be in the sent headers"
    );
    assert!(mail
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(mail
        .data
        .contains("Hello Ann, order 42 left the warehouse."));
    assert_eq!(mail.header("Message-ID").unwrap(), message_id(&j));
}

#[tokio::test]
async fn html_only_gets_a_text_alternative_and_a_stable_message_id() {
    let mut server = SmtpServer::start();
    let (actions, _dir) = build(&smtp_yaml(server.port, ""));
    let params = json!({
        "to": ["ann@example.com"],
        "from": "Orders <orders@example.com>",
        "subject": "Shipped",
        "html": "<html><body><h1>Order <b>42</b></h1><p>Thanks &amp; see you</p></body></html>",
    });
    let mut j = job("evt_2", "email-shipped", 1);
    send(&actions, params.clone(), &j).await.unwrap();
    j.attempt = 2; // a retry of the same job
    send(&actions, params.clone(), &j).await.unwrap();
    send(&actions, params, &job("evt_2", "email-shipped", 2))
        .await
        .unwrap();
    let (first, retry, other) = (
        server.next().await,
        server.next().await,
        server.next().await,
    );

    assert_eq!(first.from, "orders@example.com");
    assert!(first
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    let text_part = part(&first.data, "text/plain");
    assert!(
        text_part.contains("Order 42\r\nThanks & see you"),
        "{text_part}"
    );
    assert!(!text_part.contains('<'), "{text_part}");
    assert!(part(&first.data, "text/html").contains("<h1>Order <b>42</b></h1>"));

    let id = first.header("Message-ID").unwrap();
    assert_eq!(retry.header("Message-ID").unwrap(), id);
    assert_ne!(other.header("Message-ID").unwrap(), id);
}

#[tokio::test]
async fn body_and_html_are_sent_as_alternatives() {
    let mut server = SmtpServer::start();
    let (actions, _dir) = build(&smtp_yaml(server.port, ""));
    let params = json!({"to": "ann@example.com", "subject": "Hi",
                        "body": "plain words", "html": "<p>rich words</p>"});
    send(&actions, params, &job("evt_3", "r", 0)).await.unwrap();
    let mail = server.next().await;
    assert!(part(&mail.data, "text/plain").contains("plain words"));
    assert!(part(&mail.data, "text/html").contains("<p>rich words</p>"));
}

/// The body of the first MIME part whose Content-Type starts with `content_type`.
fn part<'a>(data: &'a str, content_type: &str) -> &'a str {
    let marker = format!("Content-Type: {content_type}");
    let start = data
        .find(&marker)
        .unwrap_or_else(|| panic!("no {content_type} part in:\n{data}"));
    let body = &data[start..];
    let body = &body[body.find("\r\n\r\n").unwrap() + 4..];
    &body[..body.find("\r\n--").unwrap_or(body.len())]
}

#[tokio::test]
async fn starttls_with_a_private_ca_from_ca_file() {
    let mut server = SmtpServer::start_with(None, true);
    let ca = fixture_path("tls/ca.pem");
    let yaml = format!(
        "email:\n  smtp:\n    host: localhost\n    port: {}\n    security: starttls\n    ca_file: {}\ndelivery:\n  timeout: 10s\n",
        server.port,
        ca.display()
    );
    let (actions, _dir) = build(&yaml);
    let params = json!({"to": "ann@example.com", "subject": "Over TLS", "body": "secret"});
    // `security: starttls` refuses to send in the clear, so arriving means TLS was used.
    send(&actions, params, &job("evt_4", "r", 0)).await.unwrap();
    assert_eq!(server.next().await.header("Subject").unwrap(), "Over TLS");
}

#[tokio::test]
async fn starttls_without_trusting_the_ca_fails_and_sends_nothing() {
    let mut server = SmtpServer::start_with(None, true);
    let yaml = format!(
        "email:\n  smtp:\n    host: localhost\n    port: {}\n    security: starttls\ndelivery:\n  timeout: 10s\n",
        server.port
    );
    let (actions, _dir) = build(&yaml);
    let params = json!({"to": "ann@example.com", "subject": "Over TLS", "body": "secret"});
    let err = send(&actions, params, &job("evt_5", "r", 0))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(server.try_next().is_none());
}

#[tokio::test]
async fn smtp_5xx_is_permanent_and_4xx_is_retryable() {
    let params = json!({"to": "ann@example.com", "subject": "s", "body": "b"});
    let server = SmtpServer::start_with(Some((550, "mailbox unavailable")), false);
    let (actions, _dir) = build(&smtp_yaml(server.port, ""));
    let err = send(&actions, params.clone(), &job("evt_6", "r", 0))
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("550"), "{err}");

    let server = SmtpServer::start_with(Some((451, "try again later")), false);
    let (actions, _dir) = build(&smtp_yaml(server.port, ""));
    let err = send(&actions, params, &job("evt_6", "r", 0))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("451"), "{err}");
}

#[tokio::test]
async fn smtp_server_down_is_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there now
    let (actions, _dir) = build(&smtp_yaml(port, ""));
    let params = json!({"to": "ann@example.com", "subject": "s", "body": "b"});
    let err = send(&actions, params, &job("evt_7", "r", 0))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn bad_address_is_permanent_and_names_the_param() {
    let server = SmtpServer::start();
    let (actions, _dir) = build(&smtp_yaml(server.port, ""));
    let params =
        json!({"to": "ann@example.com", "cc": "not an address", "subject": "s", "body": "b"});
    let err = send(&actions, params, &job("evt_8", "r", 0))
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("`cc`"), "{err}");
}

#[tokio::test]
async fn without_smtp_messages_are_written_as_eml_files() {
    let (actions, dir) = build("email:\n  from: \"Shop <shop@example.com>\"\n");
    let params = json!({"to": "ann@example.com", "bcc": "audit@example.com",
                        "subject": "Trial run", "html": "<p>Hello <i>Ann</i></p>"});
    let j = job("evt_9", "email/shipped", 0);
    send(&actions, params.clone(), &j).await.unwrap();
    send(&actions, params, &j).await.unwrap(); // a re-run overwrites

    let mail_dir = dir.path().join("data/mail");
    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("evt_9_email_shipped_0-") && name.ends_with(".eml"),
        "{name}"
    );
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(header(&eml, "From").unwrap(), "Shop <shop@example.com>");
    assert_eq!(header(&eml, "To").unwrap(), "ann@example.com");
    assert_eq!(header(&eml, "Bcc").unwrap(), "audit@example.com");
    assert_eq!(header(&eml, "Subject").unwrap(), "Trial run");
    assert_eq!(header(&eml, "Message-ID").unwrap(), message_id(&j));
    assert!(header(&eml, "Date").is_some());
    assert!(part(&eml, "text/plain").contains("Hello Ann"));
}
