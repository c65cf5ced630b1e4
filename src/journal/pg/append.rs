//! Appending deliveries on PostgreSQL, with dedupe through the `event_dedupe` key.
//!
//! The key's row names the event that opened the key's current window (the earliest event of
//! the key inside it, as the SQLite journal answers). The upsert takes the key over only when
//! that window has closed; a concurrent append of the same key (another replica) waits on the
//! key's row and then sees it taken: one event, and `duplicate: true` for the other.
//!
//! A run of appends in one batch is written in three pipelined rounds (every delivery's upsert
//! and its key's owner, then the new events' rows, then their bodies and counts), sent in batch
//! order: a batch costs three round trips to the database instead of four per delivery. Within
//! a batch a repeated key meets its first delivery's upsert, as two batches would.

use std::time::Duration;

use futures_util::future::{try_join, try_join_all};
use tokio_postgres::types::{Json, ToSql};

use super::Tx;
use crate::journal::{Appended, JournalError};
use crate::model::event::Incoming;

const UPSERT_KEY: &str = "INSERT INTO event_dedupe (source, dedupe_key, event_id, received_at)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (source, dedupe_key) DO UPDATE
       SET event_id = excluded.event_id, received_at = excluded.received_at
       WHERE event_dedupe.received_at < $5
     RETURNING event_id";
const OWNER: &str = "SELECT event_id FROM event_dedupe WHERE source = $1 AND dedupe_key = $2";
const INSERT_EVENT: &str = "INSERT INTO events (id, source, kind, topic, canonical, received_at,
         order_id, dedupe_key, order_view, shop, secret)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq";
const INSERT_BODY: &str = "INSERT INTO event_bodies (seq, payload) VALUES ($1, $2)";
const COUNT_SECRET: &str = "INSERT INTO secret_counts (source, shop, secret, events, last)
     VALUES ($1, $2, COALESCE($3, 'unknown'), 1, $4)
     ON CONFLICT (source, shop, secret)
     DO UPDATE SET events = secret_counts.events + 1,
                   last = GREATEST(secret_counts.last, excluded.last)";

/// Appends `deliveries` (in order), each unless its key's window is open at its time.
pub(super) async fn append_many(
    tx: &Tx<'_>,
    deliveries: &[&Incoming],
    dedupe_window: Duration,
) -> Result<Vec<Appended>, JournalError> {
    let keys = claim_keys(tx, deliveries, dedupe_window).await?;
    let new: Vec<&Incoming> = deliveries
        .iter()
        .zip(&keys)
        .filter(|(_, (took, _))| *took)
        .map(|(inc, _)| *inc)
        .collect();
    let seqs = insert_events(tx, &new).await?;
    write_bodies(tx, &new, &seqs).await?;
    Ok(keys
        .into_iter()
        .map(|(took, event_id)| Appended {
            event_id,
            duplicate: !took,
        })
        .collect())
}

/// Each delivery's key upsert, and right behind it (in the same round, so before the next
/// upsert) the key's owner: the delivery itself when it took the key, else the event whose
/// window is open (committed by another replica, or earlier in this batch).
///
/// The keys are claimed sorted (stable: a key's deliveries keep their batch order), so two
/// replicas' batches holding the same keys lock them in the same order and one waits for the
/// other, instead of deadlocking (the database would fail one whole batch).
async fn claim_keys(
    tx: &Tx<'_>,
    deliveries: &[&Incoming],
    dedupe_window: Duration,
) -> Result<Vec<(bool, String)>, JournalError> {
    let window = dedupe_window.as_millis().min(i64::MAX as u128) as i64;
    let (upsert, owner) = (
        tx.prepare_cached(UPSERT_KEY).await?,
        tx.prepare_cached(OWNER).await?,
    );
    let mut order: Vec<usize> = (0..deliveries.len()).collect();
    order.sort_by_key(|&i| (&deliveries[i].event.source, &deliveries[i].dedupe_key));
    let claims = try_join_all(order.iter().map(|&i| {
        let inc = deliveries[i];
        let e = &inc.event;
        let at = e.received_at.millis();
        let since = at.saturating_sub(window);
        let (upsert, owner) = (&upsert, &owner);
        async move {
            let claim: [&(dyn ToSql + Sync); 5] = [&e.source, &inc.dedupe_key, &e.id, &at, &since];
            let key: [&(dyn ToSql + Sync); 2] = [&e.source, &inc.dedupe_key];
            try_join(tx.query_opt(upsert, &claim), tx.query_one(owner, &key)).await
        }
    }))
    .await?;
    let mut out = vec![(false, String::new()); deliveries.len()];
    for (i, (took, owner)) in order.into_iter().zip(claims) {
        out[i] = (took.is_some(), owner.try_get(0)?);
    }
    Ok(out)
}

/// Inserts the new events' rows; answers their seqs, in order.
async fn insert_events(tx: &Tx<'_>, new: &[&Incoming]) -> Result<Vec<i64>, JournalError> {
    let views = new
        .iter()
        .map(|inc| {
            let e = &inc.event;
            e.order
                .as_ref()
                .map(serde_json::to_value)
                .transpose()
                .map_err(|err| JournalError::Corrupt {
                    id: e.id.clone(),
                    reason: err.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let insert = tx.prepare_cached(INSERT_EVENT).await?;
    let rows = try_join_all(new.iter().zip(&views).map(|(inc, view)| {
        let e = &inc.event;
        let at = e.received_at.millis();
        let order_id = e.order.as_ref().map(|o| o.id.as_str());
        let view = view.as_ref().map(Json);
        let insert = &insert;
        async move {
            tx.query_one(
                insert,
                &[
                    &e.id,
                    &e.source,
                    &e.kind,
                    &e.topic,
                    &e.canonical,
                    &at,
                    &order_id,
                    &inc.dedupe_key,
                    &view,
                    &e.shop,
                    &e.secret,
                ],
            )
            .await
        }
    }))
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// The new events' bodies and secret counts, in one round.
async fn write_bodies(tx: &Tx<'_>, new: &[&Incoming], seqs: &[i64]) -> Result<(), JournalError> {
    let (body, count) = (
        tx.prepare_cached(INSERT_BODY).await?,
        tx.prepare_cached(COUNT_SECRET).await?,
    );
    try_join_all(new.iter().zip(seqs).map(|(inc, seq)| {
        let (e, at) = (&inc.event, inc.event.received_at.millis());
        let (body, count) = (&body, &count);
        async move {
            let body_params: [&(dyn ToSql + Sync); 2] = [seq, &&inc.body[..]];
            let count_params: [&(dyn ToSql + Sync); 4] = [&e.source, &e.shop, &e.secret, &at];
            try_join(
                tx.execute(body, &body_params),
                tx.execute(count, &count_params),
            )
            .await
        }
    }))
    .await?;
    Ok(())
}
