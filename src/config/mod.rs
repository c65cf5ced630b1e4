//! `storeflow.yaml`: loading, `${VAR}` substitution, human durations and sizes, validation.
//!
//! Every key is optional and the defaults serve a local trial, so `storeflow serve` with no file
//! works at once. Unknown keys are errors that name the key, file, line and column: a typo in a
//! config file should never silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod delivery;
mod intake;
mod replicas;
mod sources;
mod values;
pub use delivery::{
    DeliveryConfig, EmailConfig, HttpConfig, SlackConfig, SmtpConfig, SmtpSecurity,
};
pub use intake::{IntakeConfig, IntakeLimitError};
pub use replicas::{ReplicasConfig, ReplicasError};
pub use sources::{SelldoneConfig, SellixConfig, ShopConfig, SourcesConfig, SourcesError};
pub(crate) use values::yaml_error_message;
use values::{de_duration, de_size};
pub use values::{expand_vars, parse_duration, parse_size, substitute_env, Secret, ValueError};

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
    pub log: LogConfig,
    /// `tls: {cert, key}`: serve HTTPS on `listen` (reloaded on SIGHUP).
    pub tls: Option<TlsConfig>,
    /// `journal: {url}`: the journal in PostgreSQL instead of SQLite in `data_dir` (§13).
    pub journal: JournalConfig,
    /// How long events, traces and finished jobs are kept.
    #[serde(deserialize_with = "de_duration")]
    pub retention: Duration,
    /// `replicas: {lease, renew_every}`: claims of replicas sharing a PostgreSQL journal.
    pub replicas: ReplicasConfig,
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
            log: LogConfig::default(),
            tls: None,
            journal: JournalConfig::default(),
            retention: Duration::from_secs(30 * 24 * 3600),
            replicas: ReplicasConfig::default(),
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

/// The defaults of every script limit (`script::RunLimits` is built from these).
impl Default for ScriptsConfig {
    fn default() -> Self {
        ScriptsConfig {
            max_operations: 1_000_000,
            timeout: Duration::from_secs(1),
            max_state_keys: 100,
            max_state_bytes: 1024 * 1024,
            max_value_bytes: 64 * 1024,
        }
    }
}

/// Where the journal lives (DESIGN.md §13).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    /// `postgres://user:password@host:port/db`; unset: SQLite in `data_dir`. A secret: it
    /// holds the database password, so it is never logged or shown whole.
    pub url: Secret,
}

impl JournalConfig {
    /// A set URL must be a PostgreSQL one; the message never shows it (it holds a password).
    fn validate(&self) -> Result<(), String> {
        let url = self.url.expose().trim();
        if url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(());
        }
        Err("journal.url must be a PostgreSQL URL: \
             postgres://user:password@host:port/database"
            .into())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    pub token: Secret,
    /// A console session ends after this long without a request (`admin.session_idle`).
    #[serde(deserialize_with = "de_duration")]
    pub session_idle: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: Secret::default(),
            session_idle: Duration::from_secs(12 * 3600),
        }
    }
}

/// `tls:`: PEM files of the certificate chain and its private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `log:`: how log lines are written to stderr.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

/// `log.format`: `text` (default, for people) or `json` (one object a line, for collectors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
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
    #[error("{path}: {source}")]
    Value { path: PathBuf, source: ValueError },
    #[error("{path}: {source}")]
    Sources { path: PathBuf, source: SourcesError },
    #[error("{path}: {source}")]
    Intake {
        path: PathBuf,
        source: IntakeLimitError,
    },
    #[error("{path}: {source}")]
    Replicas {
        path: PathBuf,
        source: ReplicasError,
    },
    #[error("{path}: {message}")]
    Journal { path: PathBuf, message: String },
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
        let text = substitute_env(text, env).map_err(|source| ConfigError::Value {
            path: path.to_path_buf(),
            source,
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
        let path = || path.to_path_buf();
        config
            .sources
            .validate()
            .map_err(|source| ConfigError::Sources {
                path: path(),
                source,
            })?;
        config
            .intake
            .validate()
            .map_err(|source| ConfigError::Intake {
                path: path(),
                source,
            })?;
        config
            .replicas
            .validate()
            .map_err(|source| ConfigError::Replicas {
                path: path(),
                source,
            })?;
        config
            .journal
            .validate()
            .map_err(|message| ConfigError::Journal {
                path: path(),
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
    fn regression_a_journal_url_that_is_not_postgres_is_refused_without_echoing_it() {
        let err = parse("journal:\n  url: mysql://u:hunter2@db/x\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("postgres://user:password@host"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let ok = parse("journal:\n  url: postgres://u:${SECRET}@db/x\n").unwrap();
        assert_eq!(ok.journal.url.expose(), "postgres://u:s3cret@db/x");
        assert!(!format!("{ok:?}").contains("s3cret"));
        assert!(!parse("").unwrap().journal.url.is_set());
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
