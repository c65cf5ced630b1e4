//! `GET /api/flags[?open=true]`, `POST /api/flags/{id}/resolve`.

use serde_json::{json, Value};

use super::params::{id as parse_id, page, Params};
use super::{AdminError, Api};
use crate::journal::query::FlagQuery;
use crate::journal::Write;

pub(super) async fn list(api: &Api, mut p: Params) -> Result<Value, AdminError> {
    let query = FlagQuery {
        open: p.flag("open")?,
        limit: p.limit()?,
        before: p.before()?,
    };
    p.done("open, limit, before")?;
    let found = api.reader.read(move |s| s.flag_page(&query)).await?;
    Ok(page(found))
}

/// Marks a flag resolved; resolving a resolved flag changes nothing and says so.
pub(super) async fn resolve(api: &Api, id: &str, p: Params) -> Result<Value, AdminError> {
    p.done("nothing")?;
    let id = parse_id("flag", id)?;
    let found = api.reader.read(move |s| s.flag(id)).await?;
    let Some(flag) = found else {
        return Err(AdminError::NotFound(format!("no flag with id {id}")));
    };
    if flag.resolved_at.is_some() {
        return Ok(json!({ "resolved": false, "already_resolved": true, "flag": flag }));
    }
    api.journal.write(Write::ResolveFlag(id)).await?;
    crate::telemetry::admin_changed("resolve flag", &id.to_string(), 1);
    let flag = api.reader.read(move |s| s.flag(id)).await?;
    Ok(json!({ "resolved": true, "already_resolved": false, "flag": flag }))
}
