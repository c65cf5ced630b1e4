//! Retention: prunes events, traces and finished jobs older than `retention`, hourly. Dead
//! letters and flagged orders are kept until someone handles them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::event::Timestamp;
use crate::journal::{Journal, Write, Written};

const EVERY: Duration = Duration::from_secs(3600);

pub async fn run(journal: Journal, retention: Duration, stop: CancellationToken) {
    loop {
        let before = Timestamp(Timestamp::now().millis() - retention.as_millis() as i64);
        match journal.write(Write::Prune { before }).await {
            Ok(Written::Changed(n)) if n > 0 => tracing::info!(events = n, "pruned old events"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pruning failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
