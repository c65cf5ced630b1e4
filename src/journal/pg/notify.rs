//! Wake-ups between replicas: a commit that appended events or created jobs sends a `NOTIFY`
//! in its own transaction (delivered only if it commits); each replica keeps one connection
//! that `LISTEN`s and wakes its pipeline or dispatcher. Polling stays the fallback: a lost
//! notification costs at most one poll interval, and a lost listener connection is reconnected
//! (with a wake-up of everything, for what was missed meanwhile).

use std::time::Duration;

use super::Tx as Transaction;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::conn::PgUrl;
use crate::journal::{Change, JournalError, Wake, Write, Written};

/// The channel every replica listens on.
const CHANNEL: &str = "storeflow";
/// Pause before reconnecting a lost listener; doubles up to [`RECONNECT_MAX`].
const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Sends the notifications a batch's writes call for, inside its transaction.
pub(super) async fn after_batch(
    tx: &Transaction<'_>,
    batch: &[Write],
    out: &[Written],
) -> Result<(), JournalError> {
    let (mut events, mut jobs) = (false, false);
    for (write, written) in batch.iter().zip(out) {
        match (unfenced(write), written) {
            (Write::Append(_), Written::Appended(a)) => events |= !a.duplicate,
            (Write::Processed(_), Written::Processed(true)) => jobs = true,
            (Write::Release(_), Written::Changed(n)) => events |= *n > 0,
            (Write::FireTimers(_) | Write::Requeue(_) | Write::Replan(_), Written::Changed(n)) => {
                jobs |= *n > 0
            }
            _ => {}
        }
    }
    let payload = match (events, jobs) {
        (false, false) => return Ok(()),
        (true, false) => "events",
        (false, true) => "jobs",
        (true, true) => "events,jobs",
    };
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await?;
    Ok(())
}

fn unfenced(mut write: &Write) -> &Write {
    while let Write::Fenced(_, inner) = write {
        write = inner;
    }
    write
}

/// Listens on `url` until `stop`, calling `wake` for every notification; reconnects when the
/// connection is lost.
pub(super) async fn listen(url: PgUrl, wake: Wake, stop: CancellationToken) {
    let mut pause = RECONNECT_MIN;
    while !stop.is_cancelled() {
        match listen_once(&url, &wake, &stop, &mut pause).await {
            Ok(()) => return,
            Err(e) => crate::telemetry::replicas::listener_lost(&e),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

/// One listening connection: `Ok` at `stop`, `Err` when the connection failed.
async fn listen_once(
    url: &PgUrl,
    wake: &Wake,
    stop: &CancellationToken,
    pause: &mut Duration,
) -> Result<(), JournalError> {
    let (client, mut connection) = url.config()?.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message? {
                let _ = tx.send(n.payload().to_string());
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    *pause = RECONNECT_MIN;
    // Whatever happened while no one listened: look once.
    wake(Change::Events);
    wake(Change::Jobs);
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                driver.abort();
                return Ok(());
            }
            payload = rx.recv() => match payload {
                Some(payload) => payload.split(',').filter_map(Change::parse).for_each(|c| wake(c)),
                None => break,
            },
        }
    }
    match driver.await {
        Ok(Err(e)) => Err(e.into()),
        _ => Err(JournalError::ReadFailed(
            "the listener connection closed".into(),
        )),
    }
}
