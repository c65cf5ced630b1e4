//! `storeflow.yaml`: loading, `${VAR}` substitution, human durations and sizes, validation.
//!
//! Every key is optional and the defaults serve a local trial, so `storeflow serve` with no file
//! works at once. Unknown keys are errors that name the key, file, line and column: a typo in a
//! config file should never silently fall back to a default.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

mod sources;
pub use sources::{SelldoneConfig, SellixConfig, ShopConfig, SourcesConfig};

/// The daemon's configuration (DESIGN.md §8).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub rules_dir: PathBuf,
    pub plugins_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub sources: SourcesConfig,
    pub intake: IntakeConfig,
    pub email: EmailConfig,
    pub slack: SlackConfig,
    pub http: HttpConfig,
    pub delivery: DeliveryConfig,
    pub scripts: ScriptsConfig,
    pub admin: AdminConfig,
    /// How long events, traces and finished jobs are kept.
    #[serde(deserialize_with = "de_duration")]
    pub retention: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: "./data".into(),
            rules_dir: "./rules".into(),
            plugins_dir: "./plugins".into(),
            templates_dir: "./templates".into(),
            sources: SourcesConfig::default(),
            intake: IntakeConfig::default(),
            email: EmailConfig::default(),
            slack: SlackConfig::default(),
            http: HttpConfig::default(),
            delivery: DeliveryConfig::default(),
            scripts: ScriptsConfig::default(),
            admin: AdminConfig::default(),
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    #[serde(deserialize_with = "de_size")]
    pub max_body: u64,
    /// A second delivery of the same webhook within this window is answered without a new event.
    #[serde(deserialize_with = "de_duration")]
    pub dedupe_window: Duration,
    /// A connection that has not sent a request's complete headers by then is closed.
    #[serde(deserialize_with = "de_duration")]
    pub header_timeout: Duration,
    /// Connections served at once; past it the oldest idle connection is closed.
    pub max_connections: usize,
}

impl IntakeConfig {
    fn validate(&self) -> Result<(), String> {
        if self.header_timeout.is_zero() {
            return Err("intake.header_timeout must be more than 0 (e.g. 10s)".into());
        }
        if self.max_connections == 0 {
            return Err("intake.max_connections must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            max_body: 1024 * 1024,
            dedupe_window: Duration::from_secs(24 * 3600),
            header_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptsConfig {
    pub max_operations: u64,
    /// Wall-clock time per script run and per plugin `validate` call.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Distinct state keys one run may write.
    pub max_state_keys: usize,
    /// Bytes of state (keys + JSON values) one run may write.
    #[serde(deserialize_with = "de_size")]
    pub max_state_bytes: u64,
    /// Largest JSON value one `state_set` may store.
    #[serde(deserialize_with = "de_size")]
    pub max_value_bytes: u64,
}

impl Default for ScriptsConfig {
    fn default() -> Self {
        let limits = crate::script::RunLimits::default();
        ScriptsConfig {
            max_operations: 1_000_000,
            timeout: limits.timeout,
            max_state_keys: limits.max_state_keys,
            max_state_bytes: limits.max_state_bytes as u64,
            max_value_bytes: limits.max_value_bytes as u64,
        }
    }
}

impl ScriptsConfig {
    /// The run limits these settings give (a zero timeout is read as 1 ms).
    pub fn limits(&self) -> crate::script::RunLimits {
        let bytes = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        crate::script::RunLimits {
            timeout: self.timeout.max(Duration::from_millis(1)),
            max_state_keys: self.max_state_keys,
            max_state_bytes: bytes(self.max_state_bytes),
            max_value_bytes: bytes(self.max_value_bytes),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    pub token: Secret,
}

/// A secret value: never printed by `Debug`, compared only by the verifiers.
#[derive(Clone, Default, Deserialize)]
#[serde(from = "Option<String>")]
pub struct Secret(String);

/// An empty value (`secret:` or an unset `${VAR}`) means "not configured".
impl From<Option<String>> for Secret {
    fn from(s: Option<String>) -> Self {
        Secret(s.unwrap_or_default())
    }
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "Secret(***)"
        } else {
            "Secret(unset)"
        })
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    Other { path: PathBuf, message: String },
}

impl Config {
    /// Loads `path`, or the built-in defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, |name| std::env::var(name).ok())
    }

    /// Parses config text after substituting `${VAR}` from `env`. `path` is for messages only.
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = substitute_env(text, env).map_err(|message| ConfigError::Other {
            path: path.to_path_buf(),
            message,
        })?;
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config = serde_saphyr::from_str::<Config>(&text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: yaml_error_message(&e.to_string()),
            }
        })?;
        config
            .sources
            .validate()
            .and_then(|()| config.intake.validate())
            .map_err(|message| ConfigError::Other {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// `./storeflow.yaml` when it exists: the default of every command's `-c`.
    pub fn default_path() -> Option<PathBuf> {
        let p = PathBuf::from("storeflow.yaml");
        p.exists().then_some(p)
    }

    /// The SQLite journal file inside `data_dir`.
    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join("storeflow.db")
    }
}

/// The first line of a YAML (serde-saphyr) error, without the parser's own
/// `error: line L column C:` prefix (callers put the location in their `file:line:column`).
pub(crate) fn yaml_error_message(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, message)) => message.to_string(),
        None => line.to_string(),
    }
}

/// Replaces `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. An unset variable without a
/// default becomes the empty string (so an unset secret reads as "not configured").
pub fn substitute_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                let line = text[..text.len() - rest.len() + pos].lines().count().max(1);
                format!("line {line}: `${{` without a closing `}}`")
            })?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let value = env(name).filter(|v| !v.is_empty());
            out.push_str(&value.unwrap_or_else(|| default.unwrap_or("").to_string()));
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses `30s`, `5m`, `24h`, `30d`, `1h 30m` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration `{s}` ({e}); write e.g. 30s, 5m, 24h or 30d"))
}

/// Parses `1MiB`, `512KiB`, `2MB`, `1048576` into bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad_size(s))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "kib" => 1 << 10,
        "mb" | "m" => 1_000_000,
        "mib" => 1 << 20,
        "gb" | "g" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad_size(s)),
    };
    Ok((n * mult as f64) as u64)
}

fn bad_size(s: &str) -> String {
    format!("invalid size `{s}`; write e.g. 512KiB, 1MiB or 1048576")
}

/// A number (seconds, bytes) or a human string.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(u64),
    Text(String),
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Num(secs) => Ok(Duration::from_secs(secs)),
        NumOrText::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

fn de_durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_duration(s).map_err(serde::de::Error::custom))
        .collect()
}

fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Num(n) => Ok(n),
        NumOrText::Text(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let env = |name: &str| match name {
            "SECRET" => Some("s3cret".to_string()),
            _ => None,
        };
        Config::parse(text, Path::new("storeflow.yaml"), env)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.intake.max_body, 1 << 20);
        assert_eq!(c.intake.dedupe_window, Duration::from_secs(86400));
    }

    #[test]
    fn env_substitution_with_defaults() {
        let c = parse(
            "sources:\n  sellix:\n    secret: ${SECRET}\n  selldone:\n    token: ${NOPE:-fallback}\n",
        )
        .unwrap();
        assert_eq!(c.sources.sellix.secret.expose(), "s3cret");
        assert_eq!(c.sources.selldone.token.expose(), "fallback");
        let c = parse("sources:\n  sellix:\n    secret: ${UNSET}\n").unwrap();
        assert!(!c.sources.sellix.secret.is_set());
    }

    #[test]
    fn human_durations_and_sizes() {
        let c = parse("intake:\n  max_body: 512KiB\n  dedupe_window: 2h\nretention: 7d\n").unwrap();
        assert_eq!(c.intake.max_body, 512 * 1024);
        assert_eq!(c.intake.dedupe_window, Duration::from_secs(7200));
        assert_eq!(c.retention, Duration::from_secs(7 * 86400));
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn unknown_key_names_key_line_and_column() {
        let err = parse("listen: 127.0.0.1:9000\nintake:\n  max_bdy: 1MiB\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("storeflow.yaml:3:3: "), "{msg}");
        assert!(msg.contains("max_bdy"), "{msg}");
    }

    #[test]
    fn bad_duration_says_how_to_write_one() {
        let msg = parse("intake:\n  dedupe_window: soon\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("storeflow.yaml:2:"), "{msg}");
        assert!(msg.contains("invalid duration `soon`"), "{msg}");
    }

    #[test]
    fn intake_limits_are_validated() {
        let msg = parse("intake:\n  header_timeout: 0s\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("intake.header_timeout must be more than 0"),
            "{msg}"
        );
        let msg = parse("intake:\n  max_connections: 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("intake.max_connections must be at least 1"),
            "{msg}"
        );
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let c = parse("sources:\n  sellix:\n    secret: ${SECRET}\n").unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
