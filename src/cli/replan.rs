//! `storeflow jobs retry --replan`: plan a dead letter's event again with the rules as they are
//! now (the rule was fixed since), instead of re-sending the parameters stored when it failed.
//!
//! Only the rules of the dead jobs are replanned. A planned action whose original job already
//! succeeded (or is still pending) is skipped, so nothing is sent twice. Fresh jobs get the key
//! `RULE@replanN` (see [`crate::journal::replan_rule_key`]), which never collides with the
//! original (event, rule, action) key, and the dead letters they replace become `replanned`.
//! Script state written while replanning is not kept: the event's scripts already ran once.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use super::output::{changed_exit, plural};
use crate::app::load_options;
use crate::config::Config;
use crate::journal::{base_rule, replan_rule_key, Job, NewJob, Replan, Store, Write};
use crate::outln;
use crate::plan::{plan, replay, JournalState, Trace};
use crate::rules::{self, RuleSet};

pub fn run(config: &Config, store: &mut dyn Store, dead: Vec<Job>) -> anyhow::Result<ExitCode> {
    if dead.is_empty() {
        outln!("no dead letters to replan")?;
        return Ok(ExitCode::from(1));
    }
    let Some(rules) = load_rules(config) else {
        return Ok(ExitCode::from(1));
    };
    let mut by_event: BTreeMap<String, Vec<Job>> = BTreeMap::new();
    for job in dead {
        by_event.entry(job.event_id.clone()).or_default().push(job);
    }
    let mut created = 0;
    for (event_id, jobs) in by_event {
        let Some(replan) = replan_event(store, &rules, &event_id, &jobs)? else {
            continue;
        };
        let n = replan.jobs.len();
        store.write_batch(&[Write::Replan(replan)], config.intake.dedupe_window)?;
        created += n;
    }
    outln!(
        "planned {created} fresh job{}; the daemon sends them",
        plural(created)
    )?;
    Ok(changed_exit(created))
}

/// The current rules, or `None` (errors printed) when they do not load cleanly.
fn load_rules(config: &Config) -> Option<RuleSet> {
    let loaded = rules::load_dir(&config.rules_dir, &load_options(config));
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == rules::Severity::Error)
        .collect();
    for d in &errors {
        eprintln!("{d}\n");
    }
    if !errors.is_empty() || loaded.rules.is_none() {
        eprintln!("the rules have errors; fix them first (see `storeflow check`)");
        return None;
    }
    loaded.rules
}

/// Plans `event_id` again and keeps the jobs of the dead letters' rules that are not done yet.
fn replan_event(
    store: &dyn Store,
    rules: &RuleSet,
    event_id: &str,
    dead: &[Job],
) -> anyhow::Result<Option<Replan>> {
    let Some(event) = store.event(event_id)? else {
        eprintln!("event {event_id} is no longer in the journal: cannot replan its jobs");
        return Ok(None);
    };
    let planned = plan(&event, rules, &JournalState(store), &[]);
    let existing = store.jobs(Some(event_id), None, usize::MAX >> 1)?;
    let wanted: BTreeSet<&str> = dead.iter().map(|j| base_rule(&j.rule)).collect();
    let mut jobs = Vec::new();
    let mut replaces = Vec::new();
    for rule in wanted {
        let fresh: Vec<&NewJob> = planned.jobs.iter().filter(|j| j.rule == rule).collect();
        if fresh.is_empty() {
            eprintln!(
                "rule `{rule}` plans nothing for event {event_id} now; {}",
                why_not(&planned.trace, rule)
            );
            continue;
        }
        let n = replay::next_number(&existing, rule, "@replan");
        for job in fresh {
            if replay::settled_by(&existing, &job.key(event_id)).is_some() {
                outln!(
                    "  {rule} action {} ({}) already sent or queued: skipped",
                    job.action_index,
                    job.kind
                )?;
                continue;
            }
            outln!(
                "  {rule} action {} ({}) replanned as {}",
                job.action_index,
                job.kind,
                replan_rule_key(rule, n)
            )?;
            jobs.push(NewJob {
                rule: replan_rule_key(rule, n),
                ..job.clone()
            });
        }
        replaces.extend(
            dead.iter()
                .filter(|j| base_rule(&j.rule) == rule)
                .map(|j| j.id),
        );
    }
    Ok(Some(Replan {
        event_id: event_id.to_string(),
        replaces,
        jobs,
    }))
}

/// Why a rule planned nothing, from the trace.
fn why_not(trace: &Trace, rule: &str) -> String {
    let Some(entry) = trace.rule(rule) else {
        return "it no longer exists or does not listen to this event".into();
    };
    if let Some(e) = &entry.script_error {
        return format!("its script failed: {e}");
    }
    match entry.miss() {
        Some(miss) => format!("it does not match: {miss}"),
        None => "it has no actions".into(),
    }
}
