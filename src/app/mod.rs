//! Wiring: journal, rules, pipeline, dispatcher and server under one shutdown token.
//!
//! [`run`] takes an already bound listener (tests bind port 0) and a cancellation token: it
//! builds the parts, starts every task and thread under one [`TaskTracker`], serves, and stops.
//! When the token fires it stops accepting and lets in-flight requests finish, finishes the
//! pipeline's round, gives deliveries in flight a deadline, and closes the journal after its
//! last commit. That one token and that one tracker are the only shutdown mechanism.
//! Whatever is left (unprocessed events, pending jobs) waits in the journal for the next start.

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actions::flag::FlagAction;
use crate::actions::{Actions, ActionsError};
use crate::config::Config;
use crate::journal::{self, Journal, JournalError, Reader};
use crate::rules::live::LiveRules;
use crate::rules::LoadOptions;
use crate::server::{self, Health, Intake, Metrics};
use crate::sources;
use crate::worker::dispatcher::Dispatcher;
use crate::worker::pipeline::Pipeline;
use crate::worker::timers::{TimerCounts, TimerWorker};
use crate::worker::{reload, retention};

mod checks;
use checks::{
    connection_limits, refuse_unsigned_on_a_public_listener, secret_counts, warn_insecure,
};

/// How long shutdown waits for deliveries in flight, and then for the journal writer.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Actions(#[from] ActionsError),
    #[error(transparent)]
    Tls(#[from] server::tls::TlsError),
    #[error("cannot start the {name} thread")]
    Thread {
        name: &'static str,
        source: std::io::Error,
    },
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
    let tls = config.tls.as_ref().map(server::Tls::load).transpose()?;
    let listening = server::Listening {
        limits: connection_limits(&config),
        tls,
    };
    let tracker = TaskTracker::new();
    let started = build(&config, sources, &tracker)
        .and_then(|parts| start(&config, parts, &shutdown, &tracker));
    let serving = match started {
        Ok(serving) => serving,
        Err(e) => {
            shutdown.cancel();
            stop(tracker).await;
            return Err(e);
        }
    };
    if let Some(tls) = &listening.tls {
        tls.reload_on_sighup(shutdown.clone(), &tracker);
    }
    if let Ok(addr) = listener.local_addr() {
        let scheme = if listening.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(journal = %journal::Location::of(&config), "listening on {scheme}://{addr}");
    }
    let token = shutdown.clone();
    server::run(listener, serving.served, listening, async move {
        token.cancelled().await
    })
    .await;
    tracing::info!("stopped accepting; finishing pipeline and deliveries, closing the journal");
    drop(serving.watcher);
    stop(tracker).await;
    Ok(())
}

/// The daemon's parts, opened but not yet running.
struct Parts {
    sources: sources::Sources,
    journal: Journal,
    /// A read connection each for the pipeline, the dispatcher (and `flag`), and intake.
    readers: [Reader; 4],
    doorbell: (SyncSender<()>, Receiver<()>),
    actions: Actions,
    rules: Arc<LiveRules>,
}

/// What the server needs while the workers run.
struct Serving {
    served: server::Served,
    watcher: reload::Watcher,
}

/// Opens the journal (its writer a thread of `tracker`), the readers, the executors and rules.
fn build(
    config: &Config,
    sources: sources::Sources,
    tracker: &TaskTracker,
) -> Result<Parts, AppError> {
    let path = journal::Location::of(config);
    let (bell, rings) = std::sync::mpsc::sync_channel(1);
    let journal = journal::start_writer(
        &path,
        config.intake.dedupe_window,
        Some(bell.clone()),
        tracker,
    )?;
    let readers = [
        journal::open_reader(&path)?,
        journal::open_reader(&path)?,
        journal::open_reader(&path)?,
        journal::open_reader(&path)?,
    ];
    let mut actions = Actions::from_config(config)?;
    actions.insert(Arc::new(FlagAction::new(
        journal.clone(),
        readers[1].clone(),
    )));
    actions.ensure_complete()?;
    let rules = Arc::new(LiveRules::load(
        config.rules_dir.clone(),
        load_options(config),
    ));
    Ok(Parts {
        sources,
        journal,
        readers,
        doorbell: (bell, rings),
        actions,
        rules,
    })
}

/// Starts the pipeline, dispatcher, retention and reload as tasks and threads of `tracker`
/// under `shutdown`; answers what the server needs.
fn start(
    config: &Config,
    parts: Parts,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<Serving, AppError> {
    let Parts {
        sources,
        journal,
        readers: [pipeline_reader, dispatcher_reader, intake_reader, timers_reader],
        doorbell,
        actions,
        rules,
    } = parts;
    let bell = doorbell.0.clone();
    // Who this process is among replicas sharing the journal (unused by SQLite).
    let replica = journal::ReplicaId::new();
    let jobs_planned = Arc::new(Notify::new());
    let timers_planned = Arc::new(Notify::new());
    watch_other_replicas(&pipeline_reader, &bell, &jobs_planned, shutdown)?;
    let timer_counts = Arc::new(TimerCounts::default());
    Pipeline {
        reader: pipeline_reader,
        journal: journal.clone(),
        rules: rules.clone(),
        jobs_planned: jobs_planned.clone(),
        timers_planned: timers_planned.clone(),
        handoff: journal.handoff(),
        owner: replica.to_string(),
        terms: lease_terms(config),
    }
    .start(doorbell, shutdown.clone(), tracker)
    .map_err(|source| AppError::Thread {
        name: "pipeline",
        source,
    })?;
    let watcher = reload::start(
        &config.rules_dir,
        rules.clone(),
        bell,
        (shutdown.clone(), tracker),
    );
    let duty_reader = timers_reader.clone();
    let timers = TimerWorker {
        reader: timers_reader,
        journal: journal.clone(),
        rules: rules.clone(),
        jobs_planned: jobs_planned.clone(),
        timers_planned,
        counts: timer_counts.clone(),
        owner: replica.to_string(),
        terms: lease_terms(config),
    };
    tracker.spawn(timers.run(shutdown.clone()));
    let dispatcher = Dispatcher {
        reader: dispatcher_reader,
        journal: journal.clone(),
        actions: Arc::new(actions),
        delivery: config.delivery.clone(),
        wake: jobs_planned.clone(),
        drain: SHUTDOWN_DEADLINE,
        owner: replica.to_string(),
        terms: lease_terms(config),
    };
    tracker.spawn(dispatcher.run(shutdown.clone(), tracker.clone()));
    let retention = retention::Retention::from_config(config);
    let duty = retention::Duty {
        reader: duty_reader,
        owner: replica.to_string(),
        terms: lease_terms(config),
    };
    tracker.spawn(retention::run(
        journal.clone(),
        retention,
        duty,
        shutdown.clone(),
    ));
    let served = serving(
        config,
        sources,
        journal,
        intake_reader,
        rules,
        jobs_planned,
        timer_counts,
    )?;
    Ok(Serving { served, watcher })
}

/// Wakes the pipeline and the dispatcher when other replicas sharing the journal append events
/// or create jobs (nothing to do for a journal that is not shared).
fn watch_other_replicas(
    reader: &Reader,
    pipeline: &SyncSender<()>,
    dispatcher: &Arc<Notify>,
    shutdown: &CancellationToken,
) -> Result<(), AppError> {
    let (pipeline, dispatcher) = (pipeline.clone(), dispatcher.clone());
    let wake: journal::Wake = Arc::new(move |change| match change {
        journal::Change::Events => {
            let _ = pipeline.try_send(());
        }
        journal::Change::Jobs => dispatcher.notify_one(),
    });
    reader.read_blocking(|s| s.watch_changes(wake, shutdown.clone()))?;
    Ok(())
}

/// The intake route's and `/healthz`'s shared state.
fn serving(
    config: &Config,
    sources: sources::Sources,
    journal: Journal,
    reader: Reader,
    rules: Arc<LiveRules>,
    jobs_changed: Arc<Notify>,
    timers: Arc<TimerCounts>,
) -> Result<server::Served, AppError> {
    let insecure = warn_insecure(&sources);
    let console = Arc::new(server::ui::Console::new(
        Arc::new(config.clone()),
        server::ui::ConsoleParts {
            reader: journal::open_reader(journal::Location::of(config))?,
            journal: journal.clone(),
            rules: rules.clone(),
            load_options: load_options(config),
            insecure_sources: insecure.clone(),
        },
    ));
    let counts = Arc::new(secret_counts(&reader, &sources));
    let journal_health = journal.health();
    let intake = Arc::new(Intake {
        sources,
        journal,
        max_body: config.intake.max_body,
        rules: rules.clone(),
        reader,
        counts: counts.clone(),
    });
    let metrics = Arc::new(Metrics {
        handle: crate::telemetry::metrics::install(),
        reader: intake.reader.clone(),
        rules: rules.clone(),
        token: Some(config.admin.token.expose().to_string()).filter(|t| !t.is_empty()),
    });
    let api = Arc::new(server::api::Api {
        reader: intake.reader.clone(),
        journal: intake.journal.clone(),
        rules: rules.clone(),
        sources: intake.sources.clone(),
        token: metrics.token.clone(),
        max_body: config.intake.max_body,
        body_timeout: config.intake.header_timeout,
        jobs_changed,
    });
    let health = Arc::new(Health {
        version: env!("CARGO_PKG_VERSION"),
        insecure_sources: insecure,
        rules,
        counts,
        journal: journal_health,
        timers,
    });
    Ok(server::Served {
        intake,
        health,
        metrics,
        api,
        console,
    })
}

/// Waits for every task and thread of `tracker`: the pipeline finishes its round, deliveries in
/// flight get [`SHUTDOWN_DEADLINE`], and the journal writer closes after the last commit of the
/// others (then checkpoints). The shutdown token must be cancelled already.
async fn stop(tracker: TaskTracker) {
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE * 2, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "workers or the journal writer did not stop within {:?}",
            SHUTDOWN_DEADLINE * 2
        );
    }
}

/// How long claims of replicas sharing the journal last, from the config.
fn lease_terms(config: &Config) -> journal::LeaseTerms {
    journal::LeaseTerms {
        length: config.replicas.lease,
        renew_every: config.replicas.renew_every,
    }
}

/// How rules are compiled, from the config.
pub fn load_options(config: &Config) -> LoadOptions {
    LoadOptions {
        max_operations: config.scripts.max_operations,
        script_limits: crate::script::RunLimits::from(&config.scripts),
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
