//! The `storeflow` binary: parse the command line, set up logging, map outcomes to exit codes
//! (0 ok, 1 problems found, 2 usage or runtime error).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::prelude::*;

/// Crates that log request lines, URLs or raw bytes at TRACE: a Selldone token sits in the
/// webhook path and a Slack webhook URL is a credential. Capped at DEBUG whatever `RUST_LOG`
/// says (their TRACE output is for their own developers, not for storeflow's users).
const CAPPED_AT_DEBUG: &[&str] = &["warp", "hyper", "hyper_util", "reqwest", "h2", "rustls"];

fn main() -> ExitCode {
    let cli = storeflow::cli::Cli::parse();
    init_logging();
    match storeflow::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `RUST_LOG` (default `info`) to stderr, with [`CAPPED_AT_DEBUG`] applied on top.
fn init_logging() {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let capped = filter_fn(|meta| {
        *meta.level() != tracing::Level::TRACE
            || !CAPPED_AT_DEBUG.iter().any(|c| {
                meta.target()
                    .strip_prefix(c)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(env.and(capped));
    tracing_subscriber::registry().with(layer).init();
}
