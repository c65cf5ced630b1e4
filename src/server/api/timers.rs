//! `GET /api/timers[?status=pending|fired|cancelled|skipped|all][&order=ID][&limit=N]`
//! (DESIGN.md §12): pending timers soonest due first (the default), others newest first.

use serde_json::{json, Value};

use super::params::Params;
use super::{AdminError, Api};
use crate::journal::{TimerFilter, TimerStatus};

pub(super) async fn list(api: &Api, mut p: Params) -> Result<Value, AdminError> {
    let status = match p.take("status").as_deref() {
        None | Some("pending") => Some(TimerStatus::Pending),
        Some("all") => None,
        Some(other) => Some(TimerStatus::parse(other).ok_or_else(|| {
            AdminError::param(
                "status",
                format!("`{other}` is not pending, fired, cancelled, skipped or all"),
            )
        })?),
    };
    let filter = TimerFilter {
        status,
        order_id: p.take("order"),
        event_id: None,
        limit: p.limit()?,
    };
    p.done("status, order, limit")?;
    let items = api.reader.read(move |s| s.timers(&filter)).await?;
    Ok(json!({ "items": items, "next": null }))
}
