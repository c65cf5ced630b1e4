//! `GET /api/rules`: the running rules by file, the errors and warnings of the last reload, and
//! when each rule last fired.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::params::Params;
use super::{AdminError, Api};

pub(super) async fn status(api: &Api, p: Params) -> Result<Value, AdminError> {
    p.done("nothing")?;
    let status = api.rules.status();
    let current = api.rules.current();
    let rules = current.as_deref().map(|set| set.rules()).unwrap_or(&[]);
    let names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
    let fired = api.reader.read(move |s| s.last_fired(&names)).await?;
    let mut files: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for rule in rules {
        let last = fired.iter().find(|f| f.rule == rule.name);
        files
            .entry(rule.file.display().to_string())
            .or_default()
            .push(json!({
                "name": rule.name,
                "description": rule.description,
                "enabled": rule.enabled,
                "on": rule.on,
                "actions": rule.actions.iter().map(|a| a.kind.name().to_string()).collect::<Vec<_>>(),
                "last_fired": last.map(|f| json!({"event_id": f.event_id, "received_at": f.received_at})),
            }));
    }
    let files: Vec<Value> = files
        .into_iter()
        .map(|(file, rules)| json!({ "file": file, "rules": rules }))
        .collect();
    Ok(json!({
        "loaded": status.loaded,
        "last_reload_ok": status.last_reload_ok,
        "last_reload_at": status.last_reload_at,
        "reloads": status.reloads,
        "errors": status.errors,
        "warnings": status.warning_lines,
        "files": files,
    }))
}
