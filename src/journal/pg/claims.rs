//! Claims of replicas sharing the PostgreSQL journal (DESIGN.md §13, [`crate::journal::lease`]):
//! jobs and timers claimed with `FOR UPDATE SKIP LOCKED` under a lease that bumps their fence,
//! and named leases (the pipeline, retention) in `leases`.
//!
//! Lease times are the database's own clock (`now()`), so replicas whose clocks differ agree on
//! when a lease ends.

use std::time::Duration;

use tokio_postgres::GenericClient;

use crate::journal::{Claimed, Job, JournalError, Timer};
use crate::model::event::Timestamp;

/// `$n` milliseconds as an interval, in SQL.
fn millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// Claims up to `limit` due pending jobs that nobody holds (or whose lease ran out) for `owner`,
/// each with its new fence, oldest due first. Rows another transaction has locked are skipped,
/// not waited for.
pub(super) async fn claim_jobs(
    c: &impl GenericClient,
    owner: &str,
    now: Timestamp,
    lease: Duration,
    limit: usize,
) -> Result<Vec<Claimed<Job>>, JournalError> {
    let due = Due {
        owner,
        now,
        lease,
        limit,
    };
    let mut claimed = claim(
        c,
        "jobs",
        super::jobs::JOB_COLUMNS,
        "next_at",
        &due,
        super::jobs::job,
    )
    .await?;
    claimed.sort_by_key(|c| (c.item.next_at, c.item.id));
    Ok(claimed)
}

/// Who claims what is due when, for how long, how many.
struct Due<'a> {
    owner: &'a str,
    now: Timestamp,
    lease: Duration,
    limit: usize,
}

/// Claims due pending rows of `table` (jobs or timers: `status`, `lease_*`, `fence` columns)
/// whose `due_column` has passed: `fence + 1` and a lease for `due.owner`, skipping locked rows.
async fn claim<T>(
    c: &impl GenericClient,
    table: &str,
    columns: &str,
    due_column: &str,
    due: &Due<'_>,
    read: fn(&tokio_postgres::Row) -> Result<T, JournalError>,
) -> Result<Vec<Claimed<T>>, JournalError> {
    let columns = columns
        .split(',')
        .map(|c| format!("x.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH due AS (
             SELECT id FROM {table}
             WHERE status = 'pending' AND {due_column} <= $1
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY {due_column}, id LIMIT $2
             FOR UPDATE SKIP LOCKED)
         UPDATE {table} x SET lease_owner = $3, fence = x.fence + 1,
                              lease_until = now() + $4::bigint * interval '1 millisecond'
         FROM due WHERE x.id = due.id
         RETURNING {columns}, x.fence"
    );
    let rows = c
        .query(
            &sql,
            &[
                &due.now.millis(),
                &(due.limit as i64),
                &due.owner,
                &millis(due.lease),
            ],
        )
        .await?;
    let fence_at = rows.first().map_or(0, |r| r.len() - 1);
    rows.iter()
        .map(|r| {
            Ok(Claimed {
                item: read(r)?,
                fence: r.try_get(fence_at)?,
            })
        })
        .collect()
}

/// Extends `owner`'s claims `(id, fence)`; answers the ids still held. A row locked right now
/// (its attempt being journaled) is not waited for: it counts as held, since only the holder
/// of the fence completes it.
pub(super) async fn renew_jobs(
    c: &impl GenericClient,
    owner: &str,
    jobs: &[(i64, i64)],
    lease: Duration,
) -> Result<Vec<i64>, JournalError> {
    let (ids, fences): (Vec<i64>, Vec<i64>) = jobs.iter().copied().unzip();
    c.execute(
        "WITH mine AS (
             SELECT j.id FROM jobs j JOIN unnest($1::bigint[], $2::bigint[]) AS c(id, fence)
                 ON j.id = c.id AND j.fence = c.fence
             WHERE j.lease_owner = $3 AND j.status = 'pending'
             ORDER BY j.id FOR UPDATE OF j SKIP LOCKED)
         UPDATE jobs SET lease_until = now() + $4::bigint * interval '1 millisecond'
         FROM mine WHERE jobs.id = mine.id",
        &[&ids, &fences, &owner, &millis(lease)],
    )
    .await?;
    let held = c
        .query(
            "SELECT j.id FROM jobs j JOIN unnest($1::bigint[], $2::bigint[]) AS c(id, fence)
                 ON j.id = c.id AND j.fence = c.fence
             WHERE j.lease_owner = $3 AND j.status = 'pending'",
            &[&ids, &fences, &owner],
        )
        .await?;
    held.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// Gives back `owner`'s claims `(id, fence)` so anyone may claim them at once.
pub(super) async fn release_jobs(
    c: &impl GenericClient,
    owner: &str,
    jobs: &[(i64, i64)],
) -> Result<(), JournalError> {
    let (ids, fences): (Vec<i64>, Vec<i64>) = jobs.iter().copied().unzip();
    c.execute(
        "UPDATE jobs j SET lease_owner = NULL, lease_until = NULL
         FROM unnest($1::bigint[], $2::bigint[]) AS c(id, fence)
         WHERE j.id = c.id AND j.fence = c.fence AND j.lease_owner = $3",
        &[&ids, &fences, &owner],
    )
    .await?;
    Ok(())
}

/// Claims up to `limit` due pending timers nobody holds for `owner`, soonest first.
pub(super) async fn claim_timers(
    c: &impl GenericClient,
    owner: &str,
    now: Timestamp,
    lease: Duration,
    limit: usize,
) -> Result<Vec<Claimed<Timer>>, JournalError> {
    let due = Due {
        owner,
        now,
        lease,
        limit,
    };
    let mut claimed = claim(
        c,
        "timers",
        super::timers::COLUMNS,
        "due_at",
        &due,
        super::timers::timer,
    )
    .await?;
    claimed.sort_by_key(|c| (c.item.due_at, c.item.id));
    Ok(claimed)
}

/// Takes the lease `name` for `owner` (free, run out, or `owner`'s already: renewed); answers
/// its fence, or `None` while another owner holds it. The fence rises whenever the owner
/// changes, and the row is never deleted, so a fence is never handed out twice.
pub(super) async fn hold_lease(
    c: &impl GenericClient,
    name: &str,
    owner: &str,
    lease: Duration,
) -> Result<Option<i64>, JournalError> {
    let row = c
        .query_opt(
            "INSERT INTO leases (name, owner, until, fence)
             VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond', 1)
             ON CONFLICT (name) DO UPDATE SET
                 fence = CASE WHEN leases.owner = excluded.owner THEN leases.fence
                              ELSE leases.fence + 1 END,
                 owner = excluded.owner, until = excluded.until
             WHERE leases.owner = excluded.owner OR leases.until < now()
             RETURNING fence",
            &[&name, &owner, &millis(lease)],
        )
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// Ends `owner`'s lease `name` now (the row and its fence stay).
pub(super) async fn release_lease(
    c: &impl GenericClient,
    name: &str,
    owner: &str,
) -> Result<(), JournalError> {
    c.execute(
        "UPDATE leases SET until = now() - interval '1 millisecond'
         WHERE name = $1 AND owner = $2",
        &[&name, &owner],
    )
    .await?;
    Ok(())
}
