//! The `storeflow` binary: parse the command line, set up logging, map outcomes to exit codes
//! (0 ok, 1 problems found, 2 usage or runtime error).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = storeflow::cli::Cli::parse();
    let level = cli.default_log_filter();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match storeflow::cli::run(cli) {
        Ok(code) => code,
        // `storeflow events | head -1`: the reader has what it wanted; not an error.
        Err(e) if storeflow::cli::output::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, joined with ": ", each said once: a cause whose text the message
/// above it already contains (an error that prints its source itself) is not repeated.
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if out.contains(&cause) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&cause);
    }
    out
}
