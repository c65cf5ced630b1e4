//! `intake:`: what the webhook server accepts (body size, dedupe window, connection limits).

use std::time::Duration;

use serde::Deserialize;

use super::values::{de_duration, de_size};

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

/// An intake limit that would refuse every request.
#[derive(Debug, thiserror::Error)]
pub enum IntakeLimitError {
    #[error("intake.header_timeout must be more than 0 (e.g. 10s)")]
    ZeroHeaderTimeout,
    #[error("intake.max_connections must be at least 1")]
    NoConnections,
}

impl IntakeConfig {
    pub(super) fn validate(&self) -> Result<(), IntakeLimitError> {
        if self.header_timeout.is_zero() {
            return Err(IntakeLimitError::ZeroHeaderTimeout);
        }
        if self.max_connections == 0 {
            return Err(IntakeLimitError::NoConnections);
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
