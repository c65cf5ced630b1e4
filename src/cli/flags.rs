//! `storeflow flags [--json] [--kind K] [--all]`: the flags actions recorded on orders, one per
//! rule (two rules flagging the same order each keep their note); `storeflow flags resolve ID`
//! and `storeflow flags delete ID`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::table::{no_note, Column, Listing};
use crate::config::Config;
use crate::journal::{Flag, FlagFilter, Store, Write};
use crate::outln;

#[derive(Debug, Args)]
pub struct FlagsArgs {
    #[command(subcommand)]
    pub command: Option<FlagsCommand>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Only flags of this kind (e.g. dispute)
    #[arg(long)]
    pub kind: Option<String>,
    /// Resolved flags too (by default only open ones)
    #[arg(long)]
    pub all: bool,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// Mark a flag handled: it leaves the default listing (`--all` still shows it)
    Resolve { id: i64 },
    /// Delete a flag for good
    Delete { id: i64 },
}

pub fn run(config: &Config, args: FlagsArgs) -> anyhow::Result<ExitCode> {
    let journal = crate::journal::open_existing(crate::journal::Location::of(config))?;
    journal.write_blocking(|store| run_on(config, args, store))
}

fn run_on(config: &Config, args: FlagsArgs, store: &mut dyn Store) -> anyhow::Result<ExitCode> {
    let (write, id, done) = match args.command {
        None => return list(store, &args),
        Some(FlagsCommand::Resolve { id }) => (Write::ResolveFlag(id), id, "resolved"),
        Some(FlagsCommand::Delete { id }) => (Write::DeleteFlag(id), id, "deleted"),
    };
    if super::write_one(store, config, write)? > 0 {
        outln!("flag {id} {done}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let hint = if done == "resolved" {
        "no open flag"
    } else {
        "no flag"
    };
    eprintln!("{hint} with id {id} (see `storeflow flags --all`)");
    Ok(ExitCode::from(1))
}

fn list(store: &dyn Store, args: &FlagsArgs) -> anyhow::Result<ExitCode> {
    let filter = if args.all {
        FlagFilter::All
    } else {
        FlagFilter::Open
    };
    let flags = store.flags(args.kind.as_deref(), filter, args.limit)?;
    let empty = if args.all {
        "no flags"
    } else {
        "no open flags"
    };
    Listing { empty, ..FLAGS }.print(&flags, args.json)?;
    let shared = shared_orders(&flags);
    if shared > 0 && !args.json {
        outln!(
            "\n{shared} order/kind pair{} flagged by more than one rule: each rule's note is listed",
            if shared == 1 { " is" } else { "s are" }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

const FLAGS: Listing<'static, Flag> = Listing {
    item: "a flag",
    empty: "",
    columns: &[
        Column::right("ID", 5),
        Column::left("FLAGGED", 24),
        Column::left("STATE", 8),
        Column::left("SOURCE", 10),
        Column::left("ORDER", 28),
        Column::left("KIND", 12),
        Column::left("RULE", 24),
        Column::rest("NOTE"),
    ],
    cells: |f| {
        let state = if f.resolved_at.is_some() {
            "resolved"
        } else {
            "open"
        };
        vec![
            f.id.to_string(),
            f.created_at.to_rfc3339(),
            state.to_string(),
            f.source.clone(),
            f.order_id.clone(),
            f.kind.clone(),
            f.rule.clone(),
            f.note.clone(),
        ]
    },
    note: no_note,
};

/// How many (source, order, kind) appear more than once (flagged by several rules).
fn shared_orders(flags: &[Flag]) -> usize {
    let mut seen = std::collections::BTreeMap::new();
    for f in flags {
        *seen.entry((&f.source, &f.order_id, &f.kind)).or_insert(0) += 1;
    }
    seen.values().filter(|n| **n > 1).count()
}
