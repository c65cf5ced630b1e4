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
    /// The cause (e.g. "Address already in use") is the source, printed once by whoever prints
    /// the chain; `hint` says what to do about the common cases.
    #[error("cannot listen on {addr}{hint}")]
    Bind {
        addr: String,
        hint: &'static str,
        source: std::io::Error,
    },
    #[error(
        "refusing to start: the listener {addr} is not on loopback and {} (anyone who can reach \
         it could post unsigned webhooks); set the secret/token, or `allow_unsigned: true` under \
         the source to accept that",
        unsigned.join(", ")
    )]
    Unsigned { addr: String, unsigned: Vec<String> },
}

/// Binds the configured listen address.
pub async fn bind(config: &Config) -> Result<TcpListener, AppError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|source| AppError::Bind {
            addr: config.listen.to_string(),
            hint: match source.kind() {
                std::io::ErrorKind::AddrInUse => {
                    " (another program, perhaps another storeflow, listens there; stop it or \
                     set `listen:` in storeflow.yaml)"
                }
                _ => "",
            },
            source,
        })
}

/// Runs the daemon on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let sources = sources::registry(&config);
    refuse_unsigned_on_a_public_listener(&listener, &sources)?;
    let limits = connection_limits(&config);
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
    actions.ensure_complete()?;

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
        retention::Retention::from_config(&config),
        shutdown.clone(),
    ));

    let insecure = warn_insecure(&sources);
    let intake_reader = SqliteStore::open(&path)?;
    let counts = Arc::new(secret_counts(&intake_reader, &sources));
    let journal_health = journal.health();
    let intake = Arc::new(Intake {
        sources,
        journal,
        max_body: config.intake.max_body,
        rules: rules.clone(),
        reader: Arc::new(Mutex::new(intake_reader)),
        counts: counts.clone(),
    });
    let health = Arc::new(Health {
        version: env!("CARGO_PKG_VERSION"),
        insecure_sources: insecure,
        rules,
        counts,
        journal: journal_health,
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(journal = %path.display(), "listening on http://{addr}");
    }
    let stop = shutdown.clone();
    server::run(listener, intake, health, limits, async move {
        stop.cancelled().await
    })
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

/// Logs a warning for every shop running without a secret; returns the names of their sources.
fn warn_insecure(sources: &sources::Sources) -> Vec<&'static str> {
    sources
        .iter()
        .filter_map(|s| {
            let warnings = s.insecure_warnings();
            warnings.iter().for_each(|w| tracing::warn!("{w}"));
            (!warnings.is_empty()).then(|| s.name())
        })
        .collect()
}

/// Unsigned shops are for trying storeflow on this machine: on a listener others can reach they
/// need `allow_unsigned: true`. (Behind a same-host proxy the listener is loopback, and the
/// forwarding headers keep the proxy's clients out: see `sources::client`.)
fn refuse_unsigned_on_a_public_listener(
    listener: &TcpListener,
    sources: &sources::Sources,
) -> Result<(), AppError> {
    let Ok(addr) = listener.local_addr() else {
        return Ok(());
    };
    if addr.ip().is_loopback() {
        return Ok(());
    }
    let unsigned: Vec<String> = sources
        .iter()
        .filter(|s| !s.allow_unsigned())
        .flat_map(|s| {
            let (name, key) = (s.name(), s.secret_key());
            let shops = s.shops().unsigned();
            shops
                .into_iter()
                .map(move |shop| format!("sources.{name} shop `{shop}` has no {key}"))
        })
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(AppError::Unsigned {
        addr: addr.to_string(),
        unsigned,
    })
}

/// Raises the soft open-file limit to the hard one, and keeps `intake.max_connections` under it
/// with room for the journal, mail and HTTP clients.
fn connection_limits(config: &Config) -> server::Limits {
    const RESERVED_FDS: u64 = 128;
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
    let max_connections = config.intake.max_connections.min(room);
    if max_connections < config.intake.max_connections {
        tracing::warn!(
            "intake.max_connections lowered to {max_connections}: the open-file limit is {soft}"
        );
    }
    tracing::info!(
        max_connections,
        open_file_limit = soft,
        header_timeout = ?config.intake.header_timeout,
        "connection limits"
    );
    server::Limits {
        header_timeout: config.intake.header_timeout,
        max_connections,
    }
}

/// Deliveries per shop and secret so far (from the journal), logged once so a rotated secret can
/// be retired when its count stops growing.
fn secret_counts(store: &SqliteStore, sources: &sources::Sources) -> server::health::SecretCounts {
    use crate::journal::Store;
    let counts = store.secret_counts().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot count deliveries per secret");
        Vec::new()
    });
    for s in sources.iter() {
        for shop in s.shops().iter() {
            let of = |secret: &str| {
                counts
                    .iter()
                    .filter(|c| c.source == s.name() && c.shop == shop.name && c.secret == secret)
                    .map(|c| (c.events, Some(c.last.to_rfc3339())))
                    .next()
                    .unwrap_or((0, None))
            };
            let (current, _) = of("current");
            let (previous, last_previous) = of("previous");
            tracing::info!(
                source = s.name(),
                shop = %shop.name,
                current,
                previous,
                last_previous = last_previous.as_deref().unwrap_or("never"),
                rotating = shop.previous.is_set(),
                "journaled deliveries per secret"
            );
        }
    }
    server::health::SecretCounts::seeded(&counts)
}

/// How rules are compiled, from the config.
pub fn load_options(config: &Config) -> LoadOptions {
    LoadOptions {
        max_operations: config.scripts.max_operations,
        script_limits: config.scripts.limits(),
        templates_dir: config.templates_dir.clone(),
        plugins_dir: config.plugins_dir.clone(),
        http_allow_hosts: config.http.allow_hosts.clone(),
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
