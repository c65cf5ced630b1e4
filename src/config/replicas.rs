//! `replicas:`: how replicas sharing one PostgreSQL journal hold their claims (DESIGN.md §13).
//! Without `journal.url` (SQLite) there is one process and these keys change nothing.

use std::time::Duration;

use serde::Deserialize;

use super::values::de_duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicasConfig {
    /// How long a claim (a job, a timer, the pipeline, retention) lasts without renewal: how
    /// long others wait before taking over the work of a replica that died or was cut off,
    /// and so the window in which a job it was delivering may be delivered again.
    #[serde(deserialize_with = "de_duration")]
    pub lease: Duration,
    /// How often a replica renews the claims it holds (at most half of `lease`).
    #[serde(deserialize_with = "de_duration")]
    pub renew_every: Duration,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        ReplicasConfig {
            lease: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// Lease settings under which a replica would lose its claims while alive.
#[derive(Debug, thiserror::Error)]
pub enum ReplicasError {
    #[error("replicas.lease must be at least 1s (got {0:?})")]
    LeaseTooShort(Duration),
    #[error(
        "replicas.renew_every ({renew:?}) must be more than 0 and at most half of replicas.lease \
         ({lease:?}), so one late renewal does not lose the claims"
    )]
    RenewTooSlow { renew: Duration, lease: Duration },
}

impl ReplicasConfig {
    pub(super) fn validate(&self) -> Result<(), ReplicasError> {
        if self.lease < Duration::from_secs(1) {
            return Err(ReplicasError::LeaseTooShort(self.lease));
        }
        if self.renew_every.is_zero() || self.renew_every > self.lease / 2 {
            return Err(ReplicasError::RenewTooSlow {
                renew: self.renew_every,
                lease: self.lease,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_must_fit_twice_in_a_lease() {
        let ok = ReplicasConfig::default();
        assert!(ok.validate().is_ok());
        let slow = ReplicasConfig {
            lease: Duration::from_secs(10),
            renew_every: Duration::from_secs(6),
        };
        let e = slow.validate().unwrap_err().to_string();
        assert!(e.contains("replicas.renew_every"), "{e}");
        let short = ReplicasConfig {
            lease: Duration::from_millis(500),
            renew_every: Duration::from_millis(100),
        };
        assert!(short.validate().is_err());
    }
}
