//! The `storeflow` binary: parse the command line, set up logging, map outcomes to exit codes
//! (0 ok, 1 problems found, 2 usage or runtime error).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use storeflow::config::LogFormat;
use tracing::Level;
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::prelude::*;

/// Crates that log request paths, query strings, URLs or raw bytes below INFO or DEBUG: a
/// Selldone token sits in the webhook path (warp logs `param?: "<token>"` at TRACE and an
/// undecodable query string at DEBUG) and a Slack webhook URL is a credential. These caps hold
/// whatever `RUST_LOG` says: that output is for those crates' developers, not storeflow's users.
const CAPS: &[(&str, Level)] = &[
    ("warp", Level::INFO),
    ("hyper", Level::DEBUG),
    ("hyper_util", Level::DEBUG),
    ("reqwest", Level::DEBUG),
    ("h2", Level::DEBUG),
    ("rustls", Level::DEBUG),
];

fn main() -> ExitCode {
    let cli = storeflow::cli::Cli::parse();
    init_logging(cli.default_log_filter(), cli.log_format());
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

/// `RUST_LOG` (else `default`) to stderr in `format`, with [`CAPS`] applied on top.
fn init_logging(default: &str, format: LogFormat) {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let capped = filter_fn(|meta| {
        let target = meta.target();
        CAPS.iter()
            .find(|(krate, _)| {
                target
                    .strip_prefix(krate)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
            .is_none_or(|(_, cap)| meta.level() <= cap)
    });
    let filter = env.and(capped);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let layer = layer.with_ansi(std::io::stderr().is_terminal());
            tracing_subscriber::registry()
                .with(layer.with_filter(filter))
                .init();
        }
        LogFormat::Json => {
            let layer = layer.json().with_ansi(false);
            tracing_subscriber::registry()
                .with(layer.with_filter(filter))
                .init();
        }
    }
}
