//! Log hygiene for errors that repeat: a full disk or an unwritable journal fails every commit,
//! and logging each failure filled 227 MB of log in a minute. A [`Repeated`] lets the first
//! occurrence through, then at most one line per window carrying how many were held back
//! ("37 more in the last 10s").

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a repeated error stays quiet after it was logged.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(10);

/// A rate limit for one log line. Cheap enough to check on every occurrence; usable as a
/// `static`.
pub struct Repeated {
    window: Duration,
    state: Mutex<Window>,
}

struct Window {
    /// When the line was last let through; `None` before the first occurrence.
    logged_at: Option<Instant>,
    /// Occurrences held back since then.
    held: u64,
}

/// Occurrences held back before the one being logged; its `Display` reads
/// "37 more in the last 10s" (empty for none), ready to be a log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub count: u64,
    pub window: Duration,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.count == 0 {
            return Ok(());
        }
        write!(
            f,
            "{} more in the last {}s",
            self.count,
            self.window.as_secs()
        )
    }
}

impl Repeated {
    /// A limit letting one line through per `window`.
    pub const fn new(window: Duration) -> Repeated {
        Repeated {
            window,
            state: Mutex::new(Window {
                logged_at: None,
                held: 0,
            }),
        }
    }

    /// Counts one occurrence: `Some` (with what was held back) when it should be logged now,
    /// `None` when it is held back.
    pub fn check(&self) -> Option<Held> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Option<Held> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let due = w
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.window);
        if !due {
            w.held += 1;
            return None;
        }
        let held = Held {
            count: std::mem::take(&mut w.held),
            window: self.window,
        };
        w.logged_at = Some(now);
        Some(held)
    }

    /// Ends a run of failures: what was held back since the last line (to be reported with the
    /// recovery), and the next failure is logged at once again.
    pub fn reset(&self) -> Held {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        w.logged_at = None;
        Held {
            count: std::mem::take(&mut w.held),
            window: self.window,
        }
    }
}

/// Logs through a [`Repeated`] limit at `level`: the line carries
/// `repeated = "N more in the last Ns"` when occurrences were held back. Use
/// [`rate_limited_error!`] or [`rate_limited_warn!`].
#[macro_export]
#[doc(hidden)]
macro_rules! rate_limited {
    ($level:expr, $limit:expr, target: $target:expr, $($field:tt)+) => {
        if let Some(held) = $limit.check() {
            if held.count == 0 {
                tracing::event!(target: $target, $level, $($field)+);
            } else {
                tracing::event!(target: $target, $level, repeated = %held, $($field)+);
            }
        }
    };
    ($level:expr, $limit:expr, $($field:tt)+) => {
        $crate::rate_limited!($level, $limit, target: module_path!(), $($field)+)
    };
}

/// Logs an error through a [`Repeated`] limit: `rate_limited_error!(LIMIT, error = %e, "msg")`
/// (optionally `target: "..."` after the limit).
#[macro_export]
macro_rules! rate_limited_error {
    ($($args:tt)+) => { $crate::rate_limited!(tracing::Level::ERROR, $($args)+) };
}

/// [`rate_limited_error!`] at warning level.
#[macro_export]
macro_rules! rate_limited_warn {
    ($($args:tt)+) => { $crate::rate_limited!(tracing::Level::WARN, $($args)+) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_log_flood_first_then_one_line_per_window_with_a_count() {
        let limit = Repeated::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(
            limit.check_at(t0).map(|h| h.count),
            Some(0),
            "the first one is logged"
        );
        let logged = (1..10_000)
            .filter_map(|i| limit.check_at(t0 + Duration::from_millis(i)))
            .count();
        assert_eq!(logged, 0, "10,000 repeats within the window are held back");
        let next = limit.check_at(t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(next.count, 9_999);
        assert_eq!(next.to_string(), "9999 more in the last 10s");
        assert!(limit.check_at(t0 + Duration::from_secs(11)).is_none());
        assert_eq!(limit.reset().count, 1, "what was held since the last line");
        assert_eq!(
            limit
                .check_at(t0 + Duration::from_secs(12))
                .map(|h| h.count),
            Some(0)
        );
    }
}
