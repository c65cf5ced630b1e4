//! `storeflow events [--json] [--limit N]` and `storeflow events show ID`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::journal::{SqliteStore, Store};

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
    /// Only events of this shop (`default` for the single-shop routes)
    #[arg(long)]
    pub shop: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Show one event in full, with the rules' trace and its jobs (JSON)
    Show { id: String },
}

pub fn run(config: &Config, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open_existing(&config.journal_path())?;
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
    let events = match &args.shop {
        Some(shop) => store.recent_events_of_shop(shop, args.limit)?,
        None => store.recent_events(args.limit)?,
    };
    if args.json {
        for e in &events {
            println!("{}", serde_json::to_string(e).context("printing an event")?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        println!("no events yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24}  {:<36}  {:<12}  {:<28}  {:<20}  ORDER",
        "RECEIVED", "ID", "SHOP", "TOPIC", "CANONICAL"
    );
    for e in &events {
        println!(
            "{:<24}  {:<36}  {:<12}  {:<28}  {:<20}  {}",
            e.received_at.to_rfc3339(),
            e.id,
            e.shop,
            e.topic,
            e.canonical.as_deref().unwrap_or("-"),
            e.order_id.as_deref().unwrap_or("-"),
        );
    }
    Ok(ExitCode::SUCCESS)
}
