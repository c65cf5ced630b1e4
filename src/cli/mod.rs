//! The command line: one file per subcommand. Errors surface here as `anyhow` with context.

mod events;
mod serve;
mod sign;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "storeflow",
    version,
    about = "Automation for Selldone and Sellix shops"
)]
pub struct Cli {
    /// Config file [default: ./storeflow.yaml if present, else built-in defaults]
    #[arg(short, long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: receive webhooks and journal them
    Serve,
    /// List journaled events, newest first, or show one
    Events(events::EventsArgs),
    /// Print the Sellix signature (X-Sellix-Signature) of a file, to test with curl
    Sign(sign::SignArgs),
}

/// Runs one command and returns its exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => serve::run(load_config(cli.config)?),
        Command::Events(args) => events::run(&load_config(cli.config)?, args),
        Command::Sign(args) => sign::run(args),
    }
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let path = path.or_else(Config::default_path);
    if path.is_none() {
        tracing::debug!("no storeflow.yaml: using built-in defaults");
    }
    Config::load(path.as_deref()).context("loading the configuration")
}
