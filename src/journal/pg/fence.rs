//! Fenced writes on PostgreSQL ([`Write::Fenced`]): a write made under a claim is applied only
//! while the claim's fence still matches, checked and locked in the same transaction, so a
//! takeover cannot slip in between the check and the write.
//!
//! - a named lease: its row is read `FOR SHARE` (a takeover waits for this commit) and must
//!   still name the owner, the fence, and a lease that has not run out;
//! - job claims (an attempt): the job rows are locked `FOR UPDATE` with their fence; once the
//!   attempt is recorded the claim is cleared (a retry is anyone's to claim when due) and the
//!   attempt records which replica made it under which fence;
//! - timer claims: the timers still claimed with their fence are settled, the others left to
//!   the replica that holds them now.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::Tx as Transaction;

use super::PgStore;
use crate::journal::{Fence, JournalError, Write, Written};

type Applied<'a> = Pin<Box<dyn Future<Output = Result<Written, JournalError>> + Send + 'a>>;

/// Applies `inner` under `fence`, or answers [`Written::Fenced`] and writes nothing.
pub(super) fn apply<'a>(
    tx: &'a Transaction<'_>,
    fence: &'a Fence,
    inner: &'a Write,
    window: Duration,
) -> Applied<'a> {
    Box::pin(async move {
        match fence {
            Fence::Lease { name, owner, fence } => {
                if !lease_holds(tx, name, owner, *fence).await? {
                    return Ok(Written::Fenced);
                }
                PgStore::apply(tx, inner, window).await
            }
            Fence::Jobs(claims) => {
                let Some(owners) = lock_jobs(tx, claims).await? else {
                    return Ok(Written::Fenced);
                };
                let written = PgStore::apply(tx, inner, window).await?;
                settled_jobs(tx, claims, &owners).await?;
                Ok(written)
            }
            Fence::Timers(claims) => {
                let held = lock_timers(tx, claims).await?;
                match inner {
                    Write::FireTimers(firings) => {
                        let mine: Vec<_> = firings
                            .iter()
                            .filter(|f| held.contains(&f.id))
                            .cloned()
                            .collect();
                        if mine.is_empty() && !firings.is_empty() {
                            return Ok(Written::Fenced);
                        }
                        PgStore::apply(tx, &Write::FireTimers(mine), window).await
                    }
                    other if held.len() == claims.len() => PgStore::apply(tx, other, window).await,
                    _ => Ok(Written::Fenced),
                }
            }
        }
    })
}

/// Whether `owner` still holds the lease `name` with `fence` (the row stays share-locked until
/// the commit, so nobody takes the lease over in between).
async fn lease_holds(
    tx: &Transaction<'_>,
    name: &str,
    owner: &str,
    fence: i64,
) -> Result<bool, JournalError> {
    let row = tx
        .query_opt(
            "SELECT 1 FROM leases WHERE name = $1 AND owner = $2 AND fence = $3 AND until > now()
             FOR SHARE",
            &[&name, &owner, &fence],
        )
        .await?;
    Ok(row.is_some())
}

/// Locks the jobs `(id, fence)` still claimed with that fence; answers their owners, or `None`
/// when any claim moved.
async fn lock_jobs(
    tx: &Transaction<'_>,
    claims: &[(i64, i64)],
) -> Result<Option<Vec<(i64, String)>>, JournalError> {
    let mut owners = Vec::with_capacity(claims.len());
    for (id, fence) in claims {
        let row = tx
            .query_opt(
                "SELECT lease_owner FROM jobs
                 WHERE id = $1 AND fence = $2 AND lease_owner IS NOT NULL FOR UPDATE",
                &[id, fence],
            )
            .await?;
        match row {
            Some(row) => owners.push((*id, row.try_get(0)?)),
            None => return Ok(None),
        }
    }
    Ok(Some(owners))
}

/// After a fenced attempt: the claim is over, and the attempt says who made it.
async fn settled_jobs(
    tx: &Transaction<'_>,
    claims: &[(i64, i64)],
    owners: &[(i64, String)],
) -> Result<(), JournalError> {
    for ((id, fence), (_, owner)) in claims.iter().zip(owners) {
        tx.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1",
            &[id],
        )
        .await?;
        tx.execute(
            "UPDATE attempts SET replica = $2, fence = $3
             WHERE job_id = $1 AND replica IS NULL
               AND number = (SELECT MAX(number) FROM attempts WHERE job_id = $1)",
            &[id, owner, fence],
        )
        .await?;
    }
    Ok(())
}

/// Locks the timers `(id, fence)` still claimed with that fence; answers their ids.
async fn lock_timers(
    tx: &Transaction<'_>,
    claims: &[(i64, i64)],
) -> Result<Vec<i64>, JournalError> {
    let (ids, fences): (Vec<i64>, Vec<i64>) = claims.iter().copied().unzip();
    let rows = tx
        .query(
            "SELECT t.id FROM timers t JOIN unnest($1::bigint[], $2::bigint[]) AS c(id, fence)
                 ON t.id = c.id AND t.fence = c.fence
             ORDER BY t.id FOR UPDATE OF t",
            &[&ids, &fences],
        )
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}
