//! `storeflow simulate --source S [--event E] FILE`: a dry run. Which rules match the payload,
//! why the others do not, and every action rendered exactly as it would be sent. No side effects:
//! nothing is journaled and no action runs.

use crate::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::app::load_options;
use crate::config::Config;
use crate::model::event::{Event, Timestamp};
use crate::plan::{self, dynamic, Answer};
use crate::rules::{self, Evaluation, RuleSet};
use crate::sources::{self, verify};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The platform that would send the payload: sellix or selldone
    #[arg(long)]
    pub source: String,
    /// The event name (Sellix `X-Sellix-Event`); default: the body's `event` field
    #[arg(long)]
    pub event: Option<String>,
    /// Print the evaluation as JSON
    #[arg(long)]
    pub json: bool,
    /// Print the pipeline's log lines (INFO and up) to stderr
    #[arg(short, long)]
    pub verbose: bool,
    /// The webhook body
    pub file: PathBuf,
}

pub fn run(config: &Config, args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let event = event_from_file(config, &args.source, args.event, &args.file)?;
    let loaded = rules::load_dir(&config.rules_dir, &load_options(config));
    let Some(rules) = loaded.rules.filter(|_| {
        loaded
            .diagnostics
            .iter()
            .all(|d| d.severity != rules::Severity::Error)
    }) else {
        for d in loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == rules::Severity::Error)
        {
            eprintln!("{d}\n");
        }
        eprintln!("the rules have errors; fix them first (see `storeflow check`)");
        return Ok(ExitCode::from(1));
    };
    let evaluation = rules.evaluate(&event);
    let answer = match event.topic == dynamic::TOPIC {
        true => dynamic::product(&rules, &event, dynamic::DEADLINE),
        false => Answer::NoScript,
    };
    if args.json {
        let mut json = serde_json::to_value(&evaluation)?;
        if let Some(map) = json.as_object_mut() {
            let shown = match answer {
                Answer::NoScript => None,
                Answer::Produced(body) => Some(serde_json::json!({ "body": body })),
                Answer::Failed(error) | Answer::TimedOut(error) => {
                    Some(serde_json::json!({ "error": error }))
                }
            };
            if let Some(shown) = shown {
                map.insert("answer".into(), shown);
            }
            let planned = crate::plan::plan(&event, &rules, &crate::script::NoState, &[]);
            map.insert("timers".into(), timers_json(&planned.timers.timers));
            map.insert("time".into(), serde_json::to_value(&planned.trace.time)?);
        }
        outln!("{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        print_report(&event, &rules, &evaluation)?;
        print_answer(&answer)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the event the daemon would journal for this body (no signature check: the file is
/// the user's own).
pub fn event_from_file(
    config: &Config,
    source: &str,
    kind: Option<String>,
    file: &PathBuf,
) -> anyhow::Result<Event> {
    let registry = sources::registry(config);
    let Some(adapter) = registry.get(source) else {
        anyhow::bail!(
            "unknown source `{source}`; use one of: {}",
            registry.names().join(", ")
        );
    };
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let verified = verify::local_file(body.into(), kind);
    let incoming = adapter
        .normalize(&verified, Timestamp::now())
        .with_context(|| format!("{} is not a {source} webhook", file.display()))?;
    Ok(incoming.event)
}

fn print_report(event: &Event, rules: &RuleSet, evaluation: &Evaluation) -> anyhow::Result<()> {
    let canonical = event.canonical.as_deref().unwrap_or("no canonical name");
    outln!("event {} ({canonical})", event.topic)?;
    // What the pipeline would commit, scripts and plugins run into their intents; no state is
    // read or written, nothing is sent.
    let planned = crate::plan::plan(event, rules, &crate::script::NoState, &[]);
    for r in &evaluation.rules {
        if !r.matched {
            let why = r
                .miss
                .as_ref()
                .map_or("does not match".into(), |m| m.to_string());
            outln!("\n✘ {} — {why}", r.rule)?;
            continue;
        }
        outln!("\n✔ {} — matches", r.rule)?;
        if let Some(error) = planned.trace.script_error(&r.rule) {
            outln!("  script failed, the rule would do nothing: {error}")?;
        }
        for job in planned.jobs.iter().filter(|j| j.rule == r.rule) {
            let from = if job.key(&event.id).is_intent() {
                " (from a script or plugin)"
            } else {
                ""
            };
            let shown = match &job.error {
                Some(e) => e.clone(),
                None => serde_json::to_string_pretty(&job.params)?.replace('\n', "\n     "),
            };
            outln!("  {}{from}: {shown}", job.kind)?;
            if job.error.is_none() {
                for problem in plan::ruletest::job_problems(&job.kind, &job.params) {
                    outln!("  ⚠ {problem}")?;
                }
            }
        }
    }
    print_time(&planned)?;
    let others = rules.not_listening(event);
    if !others.is_empty() {
        outln!("\nnot listening to {}:", event.topic)?;
        for (name, on) in others {
            outln!("  {name} (on: {})", on.join(", "))?;
        }
    }
    let matched = evaluation.matched().count();
    outln!(
        "\n{matched} of {} rules match; nothing was sent.",
        rules.len()
    )?;
    Ok(())
}

/// What waits, delays, limits, digests and quiet hours would do (DESIGN.md §12). The virtual
/// clock is the event's `received_at` (now); limits read no journal here.
fn print_time(planned: &crate::plan::Plan) -> anyhow::Result<()> {
    if planned.trace.time.is_empty() {
        return Ok(());
    }
    outln!("\ntimers this event would create:")?;
    for n in &planned.trace.time {
        outln!("  ⏱ {}: {}", n.rule, n.detail)?;
    }
    for t in &planned.timers.timers {
        for job in &t.jobs {
            let shown = serde_json::to_string(&job.params)?;
            outln!(
                "    {} of {} due {} runs {}: {shown}",
                t.kind.as_str(),
                t.rule,
                t.due_at.to_rfc3339(),
                job.kind
            )?;
        }
    }
    Ok(())
}

fn timers_json(timers: &[crate::journal::NewTimer]) -> serde_json::Value {
    timers
        .iter()
        .map(|t| {
            serde_json::json!({
                "rule": t.rule,
                "kind": t.kind,
                "due_at": t.due_at,
                "if_still": t.if_still,
                "jobs": t.jobs.iter().map(|j| serde_json::json!({"kind": j.kind, "params": j.params})).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A dynamic product's answer: the body Sellix would deliver to the buyer.
fn print_answer(answer: &Answer) -> std::io::Result<()> {
    match answer {
        Answer::NoScript => Ok(()),
        Answer::Produced(body) => {
            let body = body.trim_end().replace('\n', "\n  ");
            outln!("\nanswer (what Sellix delivers to the buyer):\n  {body}")
        }
        Answer::Failed(e) | Answer::TimedOut(e) => {
            outln!("\nanswer: the script failed, Sellix would get a 500: {e}")
        }
    }
}
