//! `storeflow backup FILE`: a consistent copy of the journal, safe while `serve` runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Config;
use crate::outln;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file to write (it must not exist), e.g. /var/backups/storeflow-2026-11-23.db
    pub file: PathBuf,
}

pub fn run(config: &Config, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let journal = crate::journal::open_existing(crate::journal::Location::of(config))?;
    let summary = journal.read_blocking(|store| store.backup_into(&args.file))?;
    outln!(
        "backed up {} events ({:.1} MB) to {}",
        summary.events,
        summary.bytes as f64 / 1e6,
        args.file.display()
    )?;
    outln!(
        "restore: stop storeflow, copy it to {} (remove any storeflow.db-wal and -shm there), start storeflow",
        config.journal_path().display()
    )?;
    Ok(ExitCode::SUCCESS)
}
