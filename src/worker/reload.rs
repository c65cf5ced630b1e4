//! Rule reloading: on changes in `rules_dir` (debounced) and on SIGHUP. Each reload validates
//! first and swaps atomically (see [`LiveRules`]); the pipeline is woken afterwards, since events
//! may be waiting for a valid rule set.

use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::rules::live::LiveRules;

/// How long file events settle before a reload (editors write files in several steps).
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Keeps the file watcher alive; dropping it stops watching.
pub struct Watcher {
    _debouncer: Option<Debouncer<notify::RecommendedWatcher>>,
}

/// Watches `dir` and reloads `rules` on changes; also reloads on SIGHUP until `stop` (a task of
/// `tracker`).
pub fn start(
    dir: &Path,
    rules: Arc<LiveRules>,
    doorbell: SyncSender<()>,
    (stop, tracker): (CancellationToken, &TaskTracker),
) -> Watcher {
    spawn_sighup(rules.clone(), doorbell.clone(), stop, tracker);
    let reload = move || {
        rules.reload();
        let _ = doorbell.try_send(());
    };
    let debouncer = new_debouncer(DEBOUNCE, move |res: DebounceEventResult| match res {
        Ok(events) if !events.is_empty() => reload(),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "watching the rules directory failed"),
    });
    let watched = debouncer.and_then(|mut d| {
        d.watcher().watch(dir, notify::RecursiveMode::Recursive)?;
        Ok(d)
    });
    match watched {
        Ok(d) => Watcher {
            _debouncer: Some(d),
        },
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "not watching the rules directory; reload with SIGHUP");
            Watcher { _debouncer: None }
        }
    }
}

#[cfg(unix)]
fn spawn_sighup(
    rules: Arc<LiveRules>,
    doorbell: SyncSender<()>,
    stop: CancellationToken,
    tracker: &TaskTracker,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP");
        return;
    };
    tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                got = hup.recv() => if got.is_none() { return },
            }
            tracing::info!("SIGHUP: reloading rules");
            let rules = rules.clone();
            let _ = tokio::task::spawn_blocking(move || rules.reload()).await;
            let _ = doorbell.try_send(());
        }
    });
}

#[cfg(not(unix))]
fn spawn_sighup(_: Arc<LiveRules>, _: SyncSender<()>, _: CancellationToken, _: &TaskTracker) {}
