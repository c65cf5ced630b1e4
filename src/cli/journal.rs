//! `storeflow journal copy --from sqlite:PATH --to postgres://…`: moves an installation's
//! SQLite journal into an empty PostgreSQL database (DESIGN.md §13), then the config's
//! `journal.url` points at it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::journal::pg::{copy, PgUrl};
use crate::outln;

#[derive(Debug, Args)]
pub struct JournalArgs {
    #[command(subcommand)]
    pub command: JournalCommand,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Copy a SQLite journal into an empty PostgreSQL journal (stop `serve` first)
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The SQLite journal: `sqlite:PATH` [default: storeflow.db in the config's data_dir]
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: Option<String>,
    /// The PostgreSQL database, empty: `postgres://user:password@host/db` [default: the
    /// config's journal.url]
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
}

pub fn run(config: &Config, args: JournalArgs) -> anyhow::Result<ExitCode> {
    let JournalCommand::Copy(args) = args.command;
    let from = match &args.from {
        Some(from) => PathBuf::from(from.strip_prefix("sqlite:").unwrap_or(from)),
        None => config.journal_path(),
    };
    let to = match &args.to {
        Some(to) => to.clone(),
        None if config.journal.url.is_set() => config.journal.url.expose().to_string(),
        None => bail!("--to postgres://… is needed (or journal.url in the config)"),
    };
    let to = PgUrl::parse(&to).map_err(anyhow::Error::msg)?;
    let summary = copy::from_sqlite(&from, &to)
        .with_context(|| format!("copying {} to {to}", from.display()))?;
    let counts: Vec<String> = summary
        .iter()
        .filter(|(table, _)| *table != "event_bodies")
        .map(|(table, n)| format!("{n} {table}"))
        .collect();
    outln!(
        "copied {} from {} to {to}",
        counts.join(", "),
        from.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
