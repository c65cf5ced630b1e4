//! The `email` action: send over SMTP with lettre, or drop `.eml` files when SMTP is not set up.
//!
//! The SMTP transport (with its connection pool) is configured once from `email.smtp` and opened
//! on first use. Without `email.smtp`, each message is written to
//! `<data_dir>/mail/<key>.eml`, named from the job's idempotency key, so running the same job
//! again overwrites its file instead of adding a second one. Every message carries a Message-ID
//! derived from that key ([`message::message_id`]).

mod message;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lettre::{AsyncTransport, Message, Tokio1Executor};

use super::params::Params;
use super::{ActionError, ActionsError, Executor, JobContext};
use crate::config::{Config, SmtpConfig, SmtpSecurity};
use crate::model::actions::ActionKind;

pub use message::message_id;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// Sends `email` jobs.
pub struct EmailAction {
    from: Mailbox,
    destination: Destination,
    timeout: Duration,
}

enum Destination {
    Smtp {
        /// `host:port`, for messages.
        server: String,
        builder: Box<AsyncSmtpTransportBuilder>,
        /// Built on first use: lettre's pool starts a task, which needs the runtime.
        transport: OnceLock<Transport>,
    },
    /// `<data_dir>/mail`.
    MailDir(PathBuf),
}

impl EmailAction {
    pub fn from_config(config: &Config) -> Result<EmailAction, ActionsError> {
        let from = config
            .email
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| ActionsError::From {
                from: config.email.from.clone(),
                message: e.to_string(),
            })?;
        let destination = match &config.email.smtp {
            Some(smtp) => Destination::Smtp {
                server: format!("{}:{}", smtp.host, smtp.port),
                builder: Box::new(transport_builder(smtp, config.delivery.timeout)?),
                transport: OnceLock::new(),
            },
            None => Destination::MailDir(config.data_dir.join("mail")),
        };
        Ok(EmailAction {
            from,
            destination,
            timeout: config.delivery.timeout,
        })
    }

    async fn deliver(&self, msg: &Message, job: &JobContext) -> Result<(), ActionError> {
        match &self.destination {
            Destination::Smtp {
                server,
                builder,
                transport,
            } => {
                let transport = transport.get_or_init(|| (**builder).clone().build());
                let sent = tokio::time::timeout(self.timeout, transport.send(msg.clone())).await;
                match sent {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(smtp_error(server, &e)),
                    Err(_) => Err(ActionError::retryable(format!(
                        "smtp {server}: no answer within {:?}",
                        self.timeout
                    ))),
                }
            }
            Destination::MailDir(dir) => write_eml(dir, &job.file_stem(), &msg.formatted()).await,
        }
    }
}

impl Executor for EmailAction {
    const KIND: ActionKind = ActionKind::Email;

    async fn run(&self, params: &serde_json::Value, job: &JobContext) -> Result<(), ActionError> {
        let p = Params::new("email", params)?;
        let keep_bcc = matches!(self.destination, Destination::MailDir(_));
        let msg = message::build(&p, &self.from, job, keep_bcc)?;
        self.deliver(&msg, job).await
    }
}

/// The transport as `email.smtp` describes it (not connected yet).
fn transport_builder(
    smtp: &SmtpConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransportBuilder, ActionsError> {
    let host = smtp.host.trim();
    if host.is_empty() {
        return Err(ActionsError::SmtpHost);
    }
    let tls = match smtp.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::Starttls => Tls::Required(tls_parameters(smtp, host)?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(smtp, host)?),
    };
    let mut builder = Transport::builder_dangerous(host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(timeout));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.expose().to_string(),
        ));
    }
    Ok(builder)
}

/// TLS for `host`, trusting the system roots plus `ca_file` when given.
fn tls_parameters(smtp: &SmtpConfig, host: &str) -> Result<TlsParameters, ActionsError> {
    let mut params = TlsParameters::builder(host.to_string());
    if let Some(path) = &smtp.ca_file {
        let ca_error = |message: String| ActionsError::CaFile {
            path: path.clone(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(ca_error("no PEM certificate in the file".into()));
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
        params = params.add_root_certificate(cert);
    }
    params.build().map_err(|e| ActionsError::Tls {
        host: host.to_string(),
        message: e.to_string(),
    })
}

/// SMTP 5xx and malformed messages are permanent; 4xx, network, TLS and timeouts are retryable.
fn smtp_error(server: &str, e: &lettre::transport::smtp::Error) -> ActionError {
    let message = format!("smtp {server}: {}", super::http::error_chain(e));
    if e.is_permanent() || e.is_client() {
        ActionError::permanent(message)
    } else {
        ActionError::retryable(message)
    }
}

/// Writes `<dir>/<stem>.eml` through a temporary file and a rename, so a reader never sees half a
/// message and a re-run replaces the file.
async fn write_eml(dir: &std::path::Path, stem: &str, bytes: &[u8]) -> Result<(), ActionError> {
    let path = dir.join(format!("{stem}.eml"));
    let tmp = dir.join(format!(".{stem}.eml.tmp"));
    let failed =
        |e: std::io::Error| ActionError::retryable(format!("cannot write {}: {e}", path.display()));
    tokio::fs::create_dir_all(dir).await.map_err(failed)?;
    tokio::fs::write(&tmp, bytes).await.map_err(failed)?;
    tokio::fs::rename(&tmp, &path).await.map_err(failed)?;
    tracing::info!(path = %path.display(), "email written to the mail drop (no email.smtp configured)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(host: &str) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port: 25,
            security: SmtpSecurity::Starttls,
            username: String::new(),
            password: Default::default(),
            ca_file: None,
        }
    }

    #[test]
    fn ca_file_is_read_from_the_config() {
        let yaml = "email:\n  smtp:\n    host: mail.example.com\n    ca_file: /etc/ca.pem\n";
        let config = Config::parse(yaml, std::path::Path::new("t.yaml"), |_| None).unwrap();
        let smtp = config.email.smtp.unwrap();
        assert_eq!(
            smtp.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(smtp.security, SmtpSecurity::Starttls);
    }

    #[test]
    fn config_problems_are_reported_at_build() {
        let timeout = Duration::from_secs(1);
        assert!(matches!(
            transport_builder(&smtp(" "), timeout),
            Err(ActionsError::SmtpHost)
        ));
        let mut bad_ca = smtp("localhost");
        bad_ca.ca_file = Some("/nonexistent/ca.pem".into());
        let e = transport_builder(&bad_ca, timeout).err().unwrap();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let mut config = Config::default();
        config.email.from = "not an address".into();
        assert!(matches!(
            EmailAction::from_config(&config),
            Err(ActionsError::From { .. })
        ));
    }
}
