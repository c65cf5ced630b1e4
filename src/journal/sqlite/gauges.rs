//! The counts `/metrics` reports, each an indexed or small query.

use std::time::Duration;

use rusqlite::Connection;

use super::{JobStatus, JournalError};

use crate::model::event::Timestamp;
use crate::telemetry::metrics::JournalGauges;

pub(super) fn read(conn: &Connection, now: Timestamp) -> Result<JournalGauges, JournalError> {
    let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
    let counted = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let jobs = JobStatus::each_counted(&counted);
    let flags_open: i64 = conn.query_row(
        "SELECT COUNT(*) FROM flags WHERE resolved_at IS NULL",
        [],
        |r| r.get(0),
    )?;
    let oldest: Option<i64> = conn.query_row(
        "SELECT MIN(received_at) FROM (SELECT received_at FROM events \
         WHERE processed_at IS NULL ORDER BY seq LIMIT 1)",
        [],
        |r| r.get(0),
    )?;
    let lag_ms = oldest.map_or(0, |t| (now.millis() - t).max(0));
    let bytes: i64 = conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get(0),
    )?;
    Ok(JournalGauges {
        jobs,
        flags_open: flags_open.max(0) as u64,
        pipeline_lag: Duration::from_millis(lag_ms as u64),
        bytes: bytes.max(0) as u64,
        timers_pending: super::timers::pending_count(conn)?,
    })
}

/// Events journaled per source since `since` (the console's overview), by source name.
pub(super) fn events_per_source(
    conn: &Connection,
    since: Timestamp,
) -> Result<Vec<(String, u64)>, JournalError> {
    let mut stmt = conn.prepare_cached(
        // Named: without it the planner scans all of `events_dedupe` (it starts with `source`,
        // so it saves the GROUP BY's sort) instead of the last day's range.
        "SELECT source, COUNT(*) FROM events INDEXED BY events_received \
         WHERE received_at >= ?1 GROUP BY source ORDER BY source",
    )?;
    let rows = stmt
        .query_map([since.millis()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
