//! `storeflow events [--json] [--status S] [--limit N]`, `storeflow events show ID` and
//! `storeflow events retry ID|--quarantined`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::journal::{EventStatus, Release, SqliteStore, Store, Write, Written};

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub show: Option<EventsCommand>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Only events in this state: unprocessed, processed or quarantined
    #[arg(long, value_parser = parse_status)]
    pub status: Option<EventStatus>,
    /// How many events to list
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

fn parse_status(s: &str) -> Result<EventStatus, String> {
    EventStatus::parse(s)
        .ok_or_else(|| format!("unknown status `{s}`; use unprocessed, processed or quarantined"))
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Show one event in full, with the rules' trace and its jobs (JSON)
    Show { id: String },
    /// Hand a quarantined event (or every one) back to the pipeline, after fixing what kept it
    /// from being read or planned; the running daemon processes it
    Retry {
        /// The quarantined event to re-queue
        id: Option<String>,
        /// Re-queue every quarantined event
        #[arg(long, conflicts_with = "id")]
        quarantined: bool,
    },
}

pub fn run(config: &Config, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let mut store = SqliteStore::open_existing(&config.journal_path())?;
    if let Some(EventsCommand::Retry { id, quarantined }) = args.show {
        return retry(config, &mut store, id, quarantined);
    }
    if let Some(EventsCommand::Show { id }) = args.show {
        let Some(event) = store.event(&id)? else {
            eprintln!("no event with id {id}");
            return Ok(ExitCode::from(1));
        };
        let shown = serde_json::json!({
            "event": event,
            "trace": store.trace(&id)?,
            "jobs": store.jobs(Some(&id), None, 1000)?,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).context("printing the event")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let events = match args.status {
        Some(status) => store.events_with_status(status, args.limit)?,
        None => store.recent_events(args.limit)?,
    };
    if args.json {
        for e in &events {
            println!("{}", serde_json::to_string(e).context("printing an event")?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        match args.status {
            Some(status) => println!("no {} events", status.as_str()),
            None => println!("no events yet"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24}  {:<36}  {:<28}  {:<20}  {:<12}  ORDER",
        "RECEIVED", "ID", "TOPIC", "CANONICAL", "STATUS"
    );
    for e in &events {
        println!(
            "{:<24}  {:<36}  {:<28}  {:<20}  {:<12}  {}",
            e.received_at.to_rfc3339(),
            e.id,
            e.topic,
            e.canonical.as_deref().unwrap_or("-"),
            e.status.as_str(),
            e.order_id.as_deref().unwrap_or("-"),
        );
        if let Some(reason) = &e.reason {
            println!("    quarantined: {reason}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `events retry`: quarantined events become unprocessed again.
fn retry(
    config: &Config,
    store: &mut SqliteStore,
    id: Option<String>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let which = match (id, all) {
        (Some(id), _) => Release::One(id),
        (None, true) => Release::AllQuarantined,
        (None, false) => {
            anyhow::bail!("say which: `storeflow events retry ID` or `--quarantined`")
        }
    };
    let out = store.write_batch(&[Write::Release(which)], config.intake.dedupe_window)?;
    let n = match out.first() {
        Some(Written::Changed(n)) => *n,
        _ => 0,
    };
    println!(
        "re-queued {n} quarantined event{}",
        if n == 1 { "" } else { "s" }
    );
    Ok(if n == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
