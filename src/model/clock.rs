//! The daemon's one clock. Everything that asks "what time is it" (intake's `received_at`, the
//! timer worker, the dispatcher) reads [`crate::model::event::Timestamp::now`], which is this
//! clock; planning never does: it works from the event's `received_at`, so rule tests and
//! `simulate` run on a virtual clock by giving events the times they want.
//!
//! End-to-end tests need "it is 06:59:55 in Berlin" without waiting for it: the environment
//! variable `STOREFLOW_TEST_CLOCK` (an RFC 3339 time) starts the clock at that instant when the
//! process starts; it then runs at the real pace. It is for tests only (documented in
//! docs/rules.md, "Time"); a production daemon never sets it.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that shifts the clock (tests only).
pub const TEST_CLOCK_ENV: &str = "STOREFLOW_TEST_CLOCK";

/// Milliseconds to add to the system clock (0 unless [`TEST_CLOCK_ENV`] is set).
fn offset() -> i64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var(TEST_CLOCK_ENV)
            .ok()
            .and_then(|s| humantime::parse_rfc3339_weak(s.trim()).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |start| start.as_millis() as i64 - system_millis())
    })
}

fn system_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    system_millis() + offset()
}
