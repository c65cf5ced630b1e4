//! The command line: one file per subcommand. Errors surface here as `anyhow` with context.

mod backup;
mod check;
mod event_show;
mod events;
mod flags;
mod init;
mod jobs;
mod journal;
mod migrate;
mod orders;
pub mod output;
mod replan;
mod serve;
mod sign;
mod simulate;
mod table;
mod test;
mod timers;

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
    /// Check the rules: every problem with file, line, column and a hint
    Check(check::CheckArgs),
    /// Dry-run the rules on a webhook body: what matches, why not, what would be sent
    Simulate(simulate::SimulateArgs),
    /// Run the rule tests (`tests:` in rule files and rules_dir/tests/*.yaml)
    Test(test::TestArgs),
    /// List journaled events, newest first, or show one (rules fired and why not, its jobs)
    Events(events::EventsArgs),
    /// List jobs (planned actions), show one with its attempts, re-queue, replan or dismiss dead letters
    Jobs(jobs::JobsArgs),
    /// List the flags actions recorded on orders (e.g. disputes), resolve or delete one
    Flags(flags::FlagsArgs),
    /// List timers (waits, delayed actions, digest windows), soonest due first, or cancel one
    Timers(timers::TimersArgs),
    /// Show one order's timeline: its events, fired rules, timers and jobs
    Orders(orders::OrdersArgs),
    /// Print the Sellix signature (X-Sellix-Signature) of a file, to test with curl
    Sign(sign::SignArgs),
    /// Copy the journal to a new file, consistently, while `serve` runs (a backup)
    Backup(backup::BackupArgs),
    /// Move the journal: `journal copy --from sqlite:PATH --to postgres://…`
    Journal(journal::JournalArgs),
    /// Apply the journal's pending schema migrations (PostgreSQL: versioned, listed as they run)
    Migrate,
    /// Create a project: a commented storeflow.yaml, example rules with tests, templates, plugins
    Init(init::InitArgs),
}

impl Cli {
    /// The log level when `RUST_LOG` is not set. `simulate` and `test` are dry runs whose report
    /// is the output: the pipeline's INFO lines (about made-up event ids) stay off unless
    /// `-v/--verbose` asks for them.
    pub fn default_log_filter(&self) -> &'static str {
        match &self.command {
            Command::Simulate(a) if !a.verbose => "error",
            Command::Test(a) if !a.verbose => "error",
            // Verbose dry runs show the per-event lines, which are DEBUG (cheap intake).
            Command::Simulate(_) | Command::Test(_) => "info,storeflow::plan=debug",
            _ => "info",
        }
    }
}

impl Cli {
    /// `log.format` of the configuration the command will load; text when it cannot be loaded
    /// (the command then reports why).
    pub fn log_format(&self) -> crate::config::LogFormat {
        let path = self.config.clone().or_else(Config::default_path);
        Config::load(path.as_deref())
            .map(|c| c.log.format)
            .unwrap_or_default()
    }
}

/// Runs one command and returns its exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve => serve::run(load_config(cli.config)?),
        Command::Check(args) => check::run(&load_config(cli.config)?, args),
        Command::Simulate(args) => simulate::run(&load_config(cli.config)?, args),
        Command::Test(args) => test::run(&load_config(cli.config)?, args),
        Command::Events(args) => events::run(&load_config(cli.config)?, args),
        Command::Jobs(args) => jobs::run(&load_config(cli.config)?, args),
        Command::Flags(args) => flags::run(&load_config(cli.config)?, args),
        Command::Timers(args) => timers::run(&load_config(cli.config)?, args),
        Command::Orders(args) => orders::run(&load_config(cli.config)?, args),
        Command::Sign(args) => sign::run(&load_config(cli.config)?, args),
        Command::Init(args) => init::run(args),
        Command::Backup(args) => backup::run(&load_config(cli.config)?, args),
        Command::Migrate => migrate::run(&load_config(cli.config)?),
        Command::Journal(args) => journal::run(&load_config(cli.config)?, args),
    }
}

/// Applies one write directly to the journal (the CLI's `retry`, `dismiss`, `resolve`...): how
/// many rows it changed.
fn write_one(
    store: &mut dyn crate::journal::Store,
    config: &Config,
    write: crate::journal::Write,
) -> anyhow::Result<usize> {
    let out = store.write_batch(&[write], config.intake.dedupe_window)?;
    Ok(match out.first() {
        Some(crate::journal::Written::Changed(n)) => *n,
        _ => 0,
    })
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let path = path.or_else(Config::default_path);
    if path.is_none() {
        tracing::debug!("no storeflow.yaml: using built-in defaults");
    }
    Config::load(path.as_deref()).context("loading the configuration")
}
