//! `storeflow orders show ID [--source S] [--json]`: one order's timeline (DESIGN.md §12): its
//! events in order, the rules each fired, its timers and its jobs.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::journal::{Store, TimerFilter};
use crate::outln;
use crate::plan::Trace;

#[derive(Debug, Args)]
pub struct OrdersArgs {
    #[command(subcommand)]
    pub command: OrdersCommand,
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// The order's events, fired rules, timers and jobs, oldest first
    Show {
        id: String,
        /// Only events of this source (sellix or selldone)
        #[arg(long)]
        source: Option<String>,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
}

/// Events of one order read at most.
const LIMIT: usize = 1000;

pub fn run(config: &Config, args: OrdersArgs) -> anyhow::Result<ExitCode> {
    let OrdersCommand::Show { id, source, json } = args.command;
    let journal = crate::journal::open_existing(crate::journal::Location::of(config))?;
    journal.read_blocking(|store| show(store, &id, source.as_deref(), json))
}

fn show(store: &dyn Store, id: &str, source: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let events = store.order_events(source, id, LIMIT)?;
    if events.is_empty() {
        eprintln!("no events for order {id} (see `storeflow events`)");
        return Ok(ExitCode::from(1));
    }
    let filter = TimerFilter {
        order_id: Some(id.to_string()),
        limit: LIMIT,
        ..TimerFilter::default()
    };
    let timers: Vec<_> = store
        .timers(&filter)?
        .into_iter()
        .filter(|t| source.is_none_or(|s| t.source == s))
        .collect();
    let mut rows = Vec::new();
    for e in &events {
        let fired: Vec<String> = store
            .trace(&e.id)?
            .as_ref()
            .and_then(Trace::from_json)
            .map(|t| t.fired().map(String::from).collect())
            .unwrap_or_default();
        rows.push((e, fired, store.jobs(Some(&e.id), None, LIMIT)?));
    }
    if json {
        let shown = serde_json::json!({
            "order": id,
            "events": rows.iter().map(|(e, fired, jobs)| serde_json::json!({
                "event": e, "fired": fired, "jobs": jobs,
            })).collect::<Vec<_>>(),
            "timers": timers,
        });
        outln!(
            "{}",
            serde_json::to_string(&shown).context("printing the order")?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("order {id}")?;
    for (e, fired, jobs) in &rows {
        let name = e.canonical.as_deref().unwrap_or(&e.topic);
        outln!("\n{}  {name}  event {}", e.received_at.to_rfc3339(), e.id)?;
        if !fired.is_empty() {
            outln!("  fired: {}", fired.join(", "))?;
        }
        for j in jobs {
            outln!(
                "  job #{} {} ({}): {}",
                j.id,
                j.kind,
                j.rule,
                j.status.as_str()
            )?;
        }
    }
    outln!("\ntimers")?;
    if timers.is_empty() {
        outln!("  none")?;
    }
    for t in &timers {
        outln!("  {}", super::timers::line(t))?;
    }
    Ok(ExitCode::SUCCESS)
}
