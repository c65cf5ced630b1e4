//! Wiring: journal, sources and server under one shutdown token.
//!
//! [`run`] takes an already bound listener (tests bind port 0) and a cancellation token; when the
//! token fires it stops accepting, lets in-flight requests finish, and closes the journal after
//! its last commit.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::journal::{Journal, JournalError, SqliteStore};
use crate::server::{self, Health, Intake};
use crate::sources;

/// How long shutdown waits for the journal writer to commit what is queued.
const JOURNAL_CLOSE_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Journal(#[from] JournalError),
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
    let store = SqliteStore::open(&config.journal_path())?;
    let (journal, writer) = Journal::start(store, config.intake.dedupe_window);
    let sources = sources::registry(&config);
    let mut insecure = Vec::new();
    for source in sources.iter() {
        if let Some(warning) = source.insecure_warning() {
            tracing::warn!("{warning}");
            insecure.push(source.name());
        }
    }
    let intake = Arc::new(Intake {
        sources,
        journal,
        max_body: config.intake.max_body,
    });
    let health = Arc::new(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        insecure_sources: insecure,
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(journal = %config.journal_path().display(), "listening on http://{addr}");
    }
    let stop = shutdown.clone();
    server::run(
        listener,
        intake,
        health,
        async move { stop.cancelled().await },
    )
    .await;
    tracing::info!("stopped accepting; closing the journal");
    let closed = tokio::task::spawn_blocking(move || writer.close());
    if tokio::time::timeout(JOURNAL_CLOSE_DEADLINE, closed)
        .await
        .is_err()
    {
        tracing::warn!("journal writer did not stop within {JOURNAL_CLOSE_DEADLINE:?}");
    }
    Ok(())
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
