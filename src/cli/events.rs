//! `storeflow events [--json] [--limit N]` and `storeflow events show ID [--json]`
//! (see [`super::event_show`]).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::journal::{SqliteStore, Store};
use crate::outln;

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub show: Option<EventsCommand>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// How many events to list
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Show one event: which rules fired and why the others did not, its jobs and where each
    /// email went
    Show {
        id: String,
        /// Everything the journal holds instead (event with payload, trace, jobs) as JSON
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Config, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open_existing(&config.journal_path())?;
    if let Some(EventsCommand::Show { id, json }) = args.show {
        return super::event_show::run(config, &store, &id, json || args.json);
    }
    let events = store.recent_events(args.limit)?;
    if args.json {
        for e in &events {
            outln!("{}", serde_json::to_string(e).context("printing an event")?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        outln!("no events yet")?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<24}  {:<36}  {:<28}  {:<20}  ORDER",
        "RECEIVED",
        "ID",
        "TOPIC",
        "CANONICAL"
    )?;
    for e in &events {
        outln!(
            "{:<24}  {:<36}  {:<28}  {:<20}  {}",
            e.received_at.to_rfc3339(),
            e.id,
            e.topic,
            e.canonical.as_deref().unwrap_or("-"),
            e.order_id.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
