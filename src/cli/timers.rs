//! `storeflow timers [--json] [--order ID] [--all]`: waits, delayed actions and digest windows
//! (DESIGN.md §12), pending ones soonest first; `storeflow timers cancel ID`. Also the timer
//! lines of `events show` and `orders show`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::table::{Column, Listing};
use crate::config::Config;
use crate::journal::{Store, Timer, TimerFilter, TimerStatus, Write};
use crate::outln;

#[derive(Debug, Args)]
pub struct TimersArgs {
    #[command(subcommand)]
    pub command: Option<TimersCommand>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Only the timers of this order id
    #[arg(long)]
    pub order: Option<String>,
    /// Fired, cancelled and skipped timers too (by default only pending ones)
    #[arg(long)]
    pub all: bool,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum TimersCommand {
    /// Cancel a pending timer: its actions never run
    Cancel { id: i64 },
}

pub fn run(config: &Config, args: TimersArgs) -> anyhow::Result<ExitCode> {
    let journal = crate::journal::open_existing(crate::journal::Location::of(config))?;
    journal.write_blocking(|store| match args.command {
        Some(TimersCommand::Cancel { id }) => cancel(config, store, id),
        None => list(store, &args),
    })
}

fn cancel(config: &Config, store: &mut dyn Store, id: i64) -> anyhow::Result<ExitCode> {
    if super::write_one(store, config, Write::CancelTimer(id))? > 0 {
        outln!("timer {id} cancelled")?;
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("no pending timer with id {id} (see `storeflow timers`)");
    Ok(ExitCode::from(1))
}

fn list(store: &dyn Store, args: &TimersArgs) -> anyhow::Result<ExitCode> {
    let filter = TimerFilter {
        status: (!args.all).then_some(TimerStatus::Pending),
        order_id: args.order.clone(),
        event_id: None,
        limit: args.limit,
    };
    let timers = store.timers(&filter)?;
    let empty = if args.all {
        "no timers"
    } else {
        "no pending timers"
    };
    Listing { empty, ..TIMERS }.print(&timers, args.json)?;
    Ok(ExitCode::SUCCESS)
}

pub const TIMERS: Listing<'static, Timer> = Listing {
    item: "a timer",
    empty: "",
    columns: &[
        Column::right("ID", 5),
        Column::left("DUE", 24),
        Column::left("STATUS", 9),
        Column::left("KIND", 6),
        Column::left("ORDER", 20),
        Column::left("RULE", 24),
        Column::rest("EVENT"),
    ],
    cells: |t| {
        vec![
            t.id.to_string(),
            t.due_at.to_rfc3339(),
            t.status.as_str().to_string(),
            t.kind.as_str().to_string(),
            t.order_id.clone().unwrap_or_else(|| "-".into()),
            t.rule.clone(),
            t.event_id.clone(),
        ]
    },
    note: |t| t.outcome.clone(),
};

/// One timer as a line of `events show` / `orders show`.
pub fn line(t: &Timer) -> String {
    let mut s = format!(
        "#{} {} of {} due {}: {}",
        t.id,
        t.kind.as_str(),
        t.rule,
        t.due_at.to_rfc3339(),
        t.status.as_str()
    );
    if t.events.len() > 1 {
        s.push_str(&format!(" ({} events)", t.events.len()));
    }
    if let Some(why) = &t.outcome {
        s.push_str(&format!(" — {why}"));
    }
    s
}
