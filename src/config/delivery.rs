//! The sections of the actions and their delivery: `email:`, `slack:`, `http:`, `delivery:`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::{de_duration, de_durations};
use super::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    pub from: String,
    pub smtp: Option<SmtpConfig>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            from: "storeflow <storeflow@localhost>".into(),
            smtp: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    /// Extra CA certificate(s) to trust, PEM (self-signed or private-CA servers). The system's
    /// roots stay trusted too.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_smtp_port() -> u16 {
    587
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    #[default]
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    pub webhook_url: Secret,
    pub bot_token: Secret,
    pub api_base: String,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            webhook_url: Secret::default(),
            bot_token: Secret::default(),
            api_base: "https://slack.com/api".into(),
        }
    }
}

/// The `http` action (docs/actions.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Hosts `http` actions may call (`erp.example.com`, `*.example.com`). Empty: any host
    /// written literally in a rule, and no host that comes from a template (SSRF).
    pub allow_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(deserialize_with = "de_durations")]
    pub retry_schedule: Vec<Duration>,
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let s = |secs| Duration::from_secs(secs);
        DeliveryConfig {
            retry_schedule: vec![s(10), s(60), s(300), s(1800), s(7200), s(21600)],
            timeout: s(30),
            concurrency: 8,
        }
    }
}
