//! `storeflow flags [--json] [--kind K] [--all]`: the flags actions recorded on orders, one per
//! rule (two rules flagging the same order each keep their note); `storeflow flags resolve ID`
//! and `storeflow flags delete ID`.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::journal::{Flag, FlagFilter, Store, Write, Written};
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
    let journal = crate::journal::open_existing(&config.journal_path())?;
    journal.write_blocking(|store| run_on(config, args, store))
}

fn run_on(config: &Config, args: FlagsArgs, store: &mut dyn Store) -> anyhow::Result<ExitCode> {
    let (write, id, done) = match args.command {
        None => return list(store, &args),
        Some(FlagsCommand::Resolve { id }) => (Write::ResolveFlag(id), id, "resolved"),
        Some(FlagsCommand::Delete { id }) => (Write::DeleteFlag(id), id, "deleted"),
    };
    let out = store.write_batch(&[write], config.intake.dedupe_window)?;
    if matches!(out.first(), Some(Written::Changed(n)) if *n > 0) {
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
    if args.json {
        for f in &flags {
            outln!("{}", serde_json::to_string(f).context("printing a flag")?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if flags.is_empty() {
        outln!(
            "{}",
            if args.all {
                "no flags"
            } else {
                "no open flags"
            }
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:>5}  {:<24}  {:<8}  {:<10}  {:<28}  {:<12}  {:<24}  NOTE",
        "ID",
        "FLAGGED",
        "STATE",
        "SOURCE",
        "ORDER",
        "KIND",
        "RULE"
    )?;
    for f in &flags {
        outln!("{}", row(f))?;
    }
    let shared = shared_orders(&flags);
    if shared > 0 {
        outln!(
            "\n{shared} order/kind pair{} flagged by more than one rule: each rule's note is listed",
            if shared == 1 { " is" } else { "s are" }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn row(f: &Flag) -> String {
    format!(
        "{:>5}  {:<24}  {:<8}  {:<10}  {:<28}  {:<12}  {:<24}  {}",
        f.id,
        f.created_at.to_rfc3339(),
        if f.resolved_at.is_some() {
            "resolved"
        } else {
            "open"
        },
        f.source,
        f.order_id,
        f.kind,
        f.rule,
        f.note
    )
}

/// How many (source, order, kind) appear more than once (flagged by several rules).
fn shared_orders(flags: &[Flag]) -> usize {
    let mut seen = std::collections::BTreeMap::new();
    for f in flags {
        *seen.entry((&f.source, &f.order_id, &f.kind)).or_insert(0) += 1;
    }
    seen.values().filter(|n| **n > 1).count()
}
