//! `storeflow serve`: run the daemon until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::config::Config;

pub fn run(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = app::bind(&config).await?;
        let shutdown = CancellationToken::new();
        app::cancel_on_signals(shutdown.clone());
        app::run(config, listener, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}
