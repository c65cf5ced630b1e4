//! The retry policy: when a failed job runs again, or that it will not.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::event::Timestamp;

/// When to try again after the `attempts`-th failed attempt (1-based), following `schedule`
/// with ±10 % jitter (so a burst of failures does not retry in lockstep) and never sooner than
/// the receiver's `Retry-After`. `None` when the schedule is exhausted: the job is dead.
pub fn next_attempt(
    now: Timestamp,
    attempts: u32,
    schedule: &[Duration],
    retry_after: Option<Duration>,
) -> Option<Timestamp> {
    let base = *schedule.get(attempts.checked_sub(1)? as usize)?;
    let delay = jitter(base).max(retry_after.unwrap_or_default());
    Some(Timestamp(now.millis() + delay.as_millis() as i64))
}

/// `d` scaled by a factor in [0.9, 1.1).
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let factor = 0.9 + f64::from(nanos % 1000) / 5000.0;
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_with_jitter_then_gives_up() {
        let s = [Duration::from_secs(10), Duration::from_secs(60)];
        let now = Timestamp(1_000_000);
        let first = next_attempt(now, 1, &s, None).unwrap().millis() - now.millis();
        assert!((9_000..11_000).contains(&first), "{first}");
        let second = next_attempt(now, 2, &s, None).unwrap().millis() - now.millis();
        assert!((54_000..66_000).contains(&second), "{second}");
        assert_eq!(next_attempt(now, 3, &s, None), None, "exhausted");
        assert_eq!(
            next_attempt(now, 1, &[], None),
            None,
            "no retries configured"
        );
    }

    #[test]
    fn honours_retry_after_when_longer() {
        let s = [Duration::from_secs(1)];
        let now = Timestamp(0);
        let at = next_attempt(now, 1, &s, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(at, Timestamp(30_000));
    }
}
