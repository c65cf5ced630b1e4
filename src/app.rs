//! Wiring: journal, rules, pipeline, dispatcher and server under one shutdown token.
//!
//! [`run`] takes an already bound listener (tests bind port 0) and a cancellation token. When the
//! token fires it stops accepting and lets in-flight requests finish, finishes the pipeline's
//! round, gives deliveries in flight a deadline, and closes the journal after its last commit.
//! Whatever is left (unprocessed events, pending jobs) waits in the journal for the next start.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::actions::flag::FlagAction;
use crate::actions::{Actions, ActionsError};
use crate::config::Config;
use crate::journal::{Checkpointer, Journal, JournalError, SqliteStore};
use crate::rules::live::LiveRules;
use crate::rules::LoadOptions;
use crate::server::{self, Health, Intake};
use crate::sources;
use crate::worker::pipeline::Pipeline;
use crate::worker::{dispatcher, reload, retention};

/// How long shutdown waits for deliveries in flight, and then for the journal writer.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Actions(#[from] ActionsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Binds the configured listen address.
pub async fn bind(config: &Config) -> Result<TcpListener, AppError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|source| AppError::Bind {
            addr: config.listen.to_string(),
            source,
        })
}

/// Runs the daemon on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let path = config.journal_path();
    let (doorbell, rings) = std::sync::mpsc::sync_channel(1);
    let (journal, writer) = Journal::start(
        SqliteStore::open_writer(&path)?,
        config.intake.dedupe_window,
        Some(doorbell.clone()),
    );
    let checkpointer = Checkpointer::start(&path)?;
    let reader = Arc::new(Mutex::new(SqliteStore::open(&path)?));
    let mut actions = Actions::from_config(&config)?;
    actions.insert(Arc::new(FlagAction::new(journal.clone(), reader.clone())));

    let rules = Arc::new(LiveRules::load(
        config.rules_dir.clone(),
        load_options(&config),
    ));
    let jobs_planned = Arc::new(Notify::new());
    let pipeline = Pipeline::start(
        SqliteStore::open(&path)?,
        journal.clone(),
        rules.clone(),
        (doorbell.clone(), rings),
        jobs_planned.clone(),
    );
    let watcher = reload::start(&config.rules_dir, rules.clone(), doorbell, shutdown.clone());
    let dispatcher = tokio::spawn(dispatcher::run(
        reader,
        journal.clone(),
        Arc::new(actions),
        config.delivery.clone(),
        jobs_planned,
        shutdown.clone(),
        SHUTDOWN_DEADLINE,
    ));
    tokio::spawn(retention::run(
        journal.clone(),
        config.retention,
        shutdown.clone(),
    ));

    let sources = sources::registry(&config);
    let insecure = warn_insecure(&sources);
    let intake = Arc::new(Intake {
        sources,
        journal,
        max_body: config.intake.max_body,
        rules: rules.clone(),
        reader: Arc::new(Mutex::new(SqliteStore::open(&path)?)),
    });
    let health = Arc::new(Health {
        version: env!("CARGO_PKG_VERSION"),
        insecure_sources: insecure,
        rules,
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(journal = %path.display(), "listening on http://{addr}");
    }
    let stop = shutdown.clone();
    server::run(
        listener,
        intake,
        health,
        async move { stop.cancelled().await },
    )
    .await;
    tracing::info!("stopped accepting; finishing pipeline and deliveries, closing the journal");
    drop(watcher);
    let _ = dispatcher.await;
    let closed = tokio::task::spawn_blocking(move || {
        pipeline.stop();
        writer.close();
        checkpointer.stop();
    });
    if tokio::time::timeout(SHUTDOWN_DEADLINE, closed)
        .await
        .is_err()
    {
        tracing::warn!("journal writer did not stop within {SHUTDOWN_DEADLINE:?}");
    }
    Ok(())
}

/// Logs a warning for every source running without a secret; returns their names.
fn warn_insecure(sources: &sources::Sources) -> Vec<&'static str> {
    sources
        .iter()
        .filter_map(|s| {
            let warning = s.insecure_warning()?;
            tracing::warn!("{warning}");
            Some(s.name())
        })
        .collect()
}

/// How rules are compiled, from the config.
pub fn load_options(config: &Config) -> LoadOptions {
    LoadOptions {
        max_operations: config.scripts.max_operations,
        script_limits: config.scripts.limits(),
        templates_dir: config.templates_dir.clone(),
        plugins_dir: config.plugins_dir.clone(),
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        token.cancel();
    });
}
