//! `storeflow flags [--json] [--kind K]`: the flags actions recorded on orders.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::journal::{SqliteStore, Store};

#[derive(Debug, Args)]
pub struct FlagsArgs {
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Only flags of this kind (e.g. dispute)
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

pub fn run(config: &Config, args: FlagsArgs) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open_existing(&config.journal_path())?;
    let flags = store.flags(args.kind.as_deref(), args.limit)?;
    if args.json {
        for f in &flags {
            println!("{}", serde_json::to_string(f).context("printing a flag")?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if flags.is_empty() {
        println!("no flags");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24}  {:<10}  {:<28}  {:<12}  NOTE",
        "FLAGGED", "SOURCE", "ORDER", "KIND"
    );
    for f in &flags {
        println!(
            "{:<24}  {:<10}  {:<28}  {:<12}  {}",
            f.created_at.to_rfc3339(),
            f.source,
            f.order_id,
            f.kind,
            f.note
        );
    }
    Ok(ExitCode::SUCCESS)
}
