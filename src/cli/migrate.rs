//! `storeflow migrate`: brings the journal's schema up to date and says which migrations ran.
//! `serve` does the same at start-up; this runs them alone (e.g. before starting replicas of a
//! new version, DESIGN.md §13).

use std::process::ExitCode;

use crate::config::Config;
use crate::journal::Location;
use crate::outln;

pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let at = Location::of(config);
    let applied = crate::journal::migrate(&at)?;
    if let Location::Sqlite(_) = at {
        outln!("the SQLite journal at {at} is up to date")?;
        return Ok(ExitCode::SUCCESS);
    }
    if applied.is_empty() {
        outln!("the journal at {at} is up to date: no migration to apply")?;
    }
    for (version, name) in &applied {
        outln!("applied migration {version}: {name}")?;
    }
    Ok(ExitCode::SUCCESS)
}
