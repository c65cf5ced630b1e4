//! `storeflow events show ID [--json]`: one event for people first: what came in, which rules
//! fired and why the others did not, each job and where it went (the recipient, the `.eml`
//! file). `--json` prints everything the journal holds (event, trace, jobs) instead.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::output::plural;
use crate::actions::destination::{eml_path, recipients, slack_destination};
use crate::config::Config;
use crate::journal::{EventStatus, Job, JobStatus, Store};
use crate::model::actions::ActionKind;
use crate::model::event::Event;
use crate::outln;
use crate::plan::Trace;

pub fn run(config: &Config, store: &dyn Store, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let Some(event) = store.event(id)? else {
        eprintln!("no event with id {id}");
        return Ok(ExitCode::from(1));
    };
    let trace = store.trace(id)?;
    let jobs = store.jobs(Some(id), None, 1000)?;
    let timers = store.timers(&crate::journal::TimerFilter {
        event_id: Some(id.to_string()),
        limit: 1000,
        ..Default::default()
    })?;
    if json {
        let shown =
            serde_json::json!({ "event": event, "trace": trace, "jobs": jobs, "timers": timers });
        outln!(
            "{}",
            serde_json::to_string_pretty(&shown).context("printing the event")?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    header(&event)?;
    let quarantined = match trace {
        Some(_) => None,
        None => quarantine_reason(store, id)?,
    };
    rules(trace.as_ref(), quarantined)?;
    let notes = trace.as_ref().and_then(Trace::from_json).map(|t| t.time);
    for n in notes.unwrap_or_default() {
        outln!("  ⏱ {}: {}", n.rule, n.detail)?;
    }
    outln!("\njobs")?;
    if jobs.is_empty() {
        outln!("  none")?;
    }
    for job in jobs.iter().rev() {
        job_line(config, store, job)?;
    }
    if !timers.is_empty() {
        outln!("\ntimers")?;
        for t in &timers {
            outln!("  {}", super::timers::line(t))?;
        }
    }
    outln!("\nthe payload and the full trace: storeflow events show {id} --json")?;
    Ok(ExitCode::SUCCESS)
}

fn header(e: &Event) -> std::io::Result<()> {
    let canonical = e.canonical.as_deref().unwrap_or("no canonical name");
    outln!("event {}  {} ({canonical})", e.id, e.topic)?;
    outln!("received {}", e.received_at.to_rfc3339())?;
    if let Some(o) = &e.order {
        outln!(
            "order {}  {} {}  {}",
            o.id,
            o.total.map_or("-".to_string(), |t| t.to_string()),
            o.currency,
            o.customer.email
        )?;
    }
    Ok(())
}

/// Why the event is quarantined, if it is.
fn quarantine_reason(store: &dyn Store, id: &str) -> anyhow::Result<Option<String>> {
    let all = store.events_with_status(EventStatus::Quarantined, usize::MAX >> 1)?;
    Ok(all
        .into_iter()
        .find(|e| e.id == id)
        .map(|e| e.reason.unwrap_or_default()))
}

/// One line per candidate rule: fired, or the first condition that failed.
fn rules(trace: Option<&Value>, quarantined: Option<String>) -> std::io::Result<()> {
    outln!("\nrules")?;
    let trace = trace.map(|t| Trace::from_json(t).unwrap_or_default());
    let quarantined = quarantined.or_else(|| {
        let q = trace.as_ref()?.quarantined.as_ref()?;
        Some(q.reason.clone())
    });
    if let Some(reason) = quarantined {
        return outln!("  quarantined, not planned: {reason} (see `storeflow events retry`)");
    }
    let Some(trace) = trace else {
        return outln!("  not processed yet (is the daemon running?)");
    };
    if let Some(e) = &trace.error {
        outln!("  ! {e}")?;
    }
    for r in trace.records() {
        let (name, file) = (&r.verdict.rule, r.verdict.file.display());
        if let Some(e) = &r.script_error {
            outln!("  ✘ {name} ({file}) matched, but its script failed: {e}")?;
        } else if r.verdict.matched && trace.limited(name) {
            outln!("  ✘ {name} ({file}) matched, but was over its limit: nothing planned")?;
        } else if r.verdict.matched {
            outln!("  ✔ {name} ({file}) fired")?;
        } else {
            let why = r
                .miss()
                .map_or("does not match".to_string(), |m| m.to_string());
            outln!("  ✘ {name} ({file}) did not fire: {why}")?;
        }
    }
    match trace.not_listening() as u64 {
        n if n > 0 => outln!(
            "  ({n} other rule{} not listening to this event)",
            plural(n)
        ),
        _ => Ok(()),
    }
}

fn job_line(config: &Config, store: &dyn Store, job: &Job) -> anyhow::Result<()> {
    let tries = store.attempts(job.id)?.len() as u64;
    outln!(
        "  #{} {} {}: {} ({tries} attempt{})",
        job.id,
        job.rule,
        job.kind,
        job.status.as_str(),
        plural(tries)
    )?;
    let kind = ActionKind::parse(&job.kind);
    if kind == ActionKind::Email {
        let to = recipients(&job.params);
        outln!("      to {to}")?;
        match &config.email.smtp {
            Some(smtp) => outln!("      via SMTP {}:{}", smtp.host, smtp.port)?,
            None => {
                let path = eml_path(config, job.id, &job.event_id, &job.rule, job.action_index);
                let note = match (path.exists(), job.status) {
                    (true, _) => "",
                    (false, JobStatus::Done) => " (no longer on disk)",
                    (false, _) => " (not written yet)",
                };
                outln!("      file {}{note}", path.display())?;
            }
        }
    }
    if kind == ActionKind::Slack {
        outln!("      {}", slack_destination(config, &job.params))?;
    }
    if let Some(e) = &job.last_error {
        outln!("      last error: {e}")?;
    }
    Ok(())
}
