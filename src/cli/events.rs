//! `storeflow events [--json] [--status S] [--limit N]`, `storeflow events show ID [--json]`
//! (see [`super::event_show`]) and `storeflow events retry ID|--quarantined`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::output::{changed_exit, plural};
use super::table::{Column, Listing};
use crate::config::Config;
use crate::journal::{EventStatus, EventSummary, Release, Store, Write};
use crate::outln;

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
    /// Only events of this shop (`default` for the single-shop routes)
    #[arg(long)]
    pub shop: Option<String>,
}

fn parse_status(s: &str) -> Result<EventStatus, String> {
    EventStatus::parse(s)
        .ok_or_else(|| format!("unknown status `{s}`; use unprocessed, processed or quarantined"))
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
    let journal = crate::journal::open_existing(crate::journal::Location::of(config))?;
    journal.write_blocking(|store| run_on(config, args, store))
}

fn run_on(config: &Config, args: EventsArgs, store: &mut dyn Store) -> anyhow::Result<ExitCode> {
    if let Some(EventsCommand::Retry { id, quarantined }) = args.show {
        return retry(config, store, id, quarantined);
    }
    if let Some(EventsCommand::Show { id, json }) = args.show {
        return super::event_show::run(config, store, &id, json || args.json);
    }
    let events = match (args.status, args.shop.as_deref()) {
        (None, None) => store.recent_events(args.limit)?,
        (status, shop) => store.events_filtered(status, shop, args.limit)?,
    };
    let empty = match args.status {
        Some(status) => format!("no {} events", status.as_str()),
        None => "no events yet".to_string(),
    };
    Listing {
        empty: &empty,
        ..EVENTS
    }
    .print(&events, args.json)?;
    Ok(ExitCode::SUCCESS)
}

const EVENTS: Listing<'static, EventSummary> = Listing {
    item: "an event",
    empty: "",
    columns: &[
        Column::left("RECEIVED", 24),
        Column::left("ID", 36),
        Column::left("SHOP", 12),
        Column::left("TOPIC", 28),
        Column::left("CANONICAL", 20),
        Column::left("STATUS", 12),
        Column::rest("ORDER"),
    ],
    cells: |e| {
        vec![
            e.received_at.to_rfc3339(),
            e.id.clone(),
            e.shop.clone(),
            e.topic.clone(),
            e.canonical.clone().unwrap_or_else(|| "-".into()),
            e.status.as_str().to_string(),
            e.order_id.clone().unwrap_or_else(|| "-".into()),
        ]
    },
    note: |e| {
        e.reason
            .as_ref()
            .map(|reason| format!("    quarantined: {reason}"))
    },
};

/// `events retry`: quarantined events become unprocessed again.
fn retry(
    config: &Config,
    store: &mut dyn Store,
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
    let n = super::write_one(store, config, Write::Release(which))?;
    outln!("re-queued {n} quarantined event{}", plural(n))?;
    Ok(changed_exit(n))
}
