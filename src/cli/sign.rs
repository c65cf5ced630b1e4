//! `storeflow sign --secret S FILE`: the Sellix signature of a file, for testing with curl.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::sources::verify::sign_sha512_hex;

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The webhook secret (or set SELLIX_WEBHOOK_SECRET, which keeps it out of `ps`)
    #[arg(long, env = "SELLIX_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// The exact body to sign
    pub file: PathBuf,
}

pub fn run(args: SignArgs) -> anyhow::Result<ExitCode> {
    let body =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    println!("{}", sign_sha512_hex(args.secret.as_bytes(), &body));
    Ok(ExitCode::SUCCESS)
}
