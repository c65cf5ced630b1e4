//! `storeflow check [--deny-warnings]`: load the rules as `serve` would and report every problem.

use crate::outln;
use std::process::ExitCode;

use clap::Args;

use super::output::plural;
use crate::app::load_options;
use crate::config::Config;
use crate::rules;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Fail (exit 1) on warnings too
    #[arg(long)]
    pub deny_warnings: bool,
}

pub fn run(config: &Config, args: CheckArgs) -> anyhow::Result<ExitCode> {
    let loaded = rules::load_dir(&config.rules_dir, &load_options(config));
    let errors: Vec<_> = loaded.errors().collect();
    let warnings: Vec<_> = loaded.warnings().collect();
    for d in &errors {
        outln!("{d}\n")?;
    }
    for d in &warnings {
        outln!("{d}\n")?;
    }
    let count = loaded.rules.as_ref().map(|r| r.len()).unwrap_or(0);
    outln!(
        "{}: {} rule{}, {} error{}, {} warning{}",
        config.rules_dir.display(),
        count,
        plural(count),
        errors.len(),
        plural(errors.len()),
        warnings.len(),
        plural(warnings.len()),
    )?;
    let failed = !errors.is_empty() || (args.deny_warnings && !warnings.is_empty());
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
