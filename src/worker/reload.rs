//! Rule reloading: on content changes in `rules_dir` (debounced) and on SIGHUP. Each reload
//! validates first and swaps atomically (see [`LiveRules`]); the pipeline is woken afterwards,
//! since events may be waiting for a valid rule set.
//!
//! Only content changes count: a created, written, renamed or removed `*.yaml`, `*.yml` or
//! `*.rhai` file. Reads (the daemon's own reload reads every rule file; so do `storeflow check`
//! and `cat`) and new folders are not changes: reacting to them made every reload trigger the
//! next one, forever. As a second guard, a reload only happens when the files' contents differ
//! from what was last loaded (an editor that rewrites a file unchanged reloads nothing).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::rules::live::LiveRules;

/// How long file events settle before a reload (editors write files in several steps).
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Keeps the file watcher alive; dropping it stops watching (and ends the debounce thread).
pub struct Watcher {
    _watcher: Option<RecommendedWatcher>,
}

/// Watches `dir` and reloads `rules` when rule sources change; also reloads on SIGHUP until
/// `stop`. The SIGHUP task and the debounce thread are tracked by `tracker`.
pub fn start(
    dir: &Path,
    rules: Arc<LiveRules>,
    doorbell: SyncSender<()>,
    (stop, tracker): (CancellationToken, &TaskTracker),
) -> Watcher {
    spawn_sighup(rules.clone(), doorbell.clone(), stop, tracker);
    let (tx, rx) = mpsc::channel::<()>();
    let watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) if is_content_change(&event) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching the rules directory failed"),
        });
    let watched = watcher.and_then(|mut w| {
        w.watch(dir, RecursiveMode::Recursive)?;
        Ok(w)
    });
    match watched {
        Ok(w) => {
            let dir = dir.to_path_buf();
            // Taken now, not in the thread: an edit right after start-up must count as a change.
            let loaded = fingerprint(&dir);
            // Ends when the watcher is dropped (its sender goes with it).
            let tracked = tracker.token();
            std::thread::spawn(move || {
                debounce_and_reload(&dir, loaded, &rx, &rules, &doorbell);
                drop(tracked);
            });
            Watcher { _watcher: Some(w) }
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "not watching the rules directory; reload with SIGHUP");
            Watcher { _watcher: None }
        }
    }
}

/// Waits for a change, lets the burst settle, and reloads when the sources really changed.
/// Returns when the watcher (the sending side) is dropped.
fn debounce_and_reload(
    dir: &Path,
    mut loaded: u64,
    changes: &Receiver<()>,
    rules: &LiveRules,
    doorbell: &SyncSender<()>,
) {
    while changes.recv().is_ok() {
        loop {
            match changes.recv_timeout(DEBOUNCE) {
                Ok(()) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        let now = fingerprint(dir);
        if now == loaded {
            tracing::debug!(dir = %dir.display(), "rule files touched but unchanged; not reloading");
            continue;
        }
        loaded = now;
        rules.reload();
        let _ = doorbell.try_send(());
    }
}

/// Whether a file event is a content change of a rule source (not a read, not metadata, not a
/// folder).
fn is_content_change(event: &notify::Event) -> bool {
    let kind = matches!(
        event.kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    );
    kind && event.paths.iter().any(|p| is_rule_source(p))
}

/// `*.yaml`, `*.yml` and `*.rhai` files: rules, rule tests, scripts.
fn is_rule_source(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "rhai")
    )
}

/// A hash of every rule source under `dir` (paths and contents), to skip reloads that would
/// load the same thing again.
fn fingerprint(dir: &Path) -> u64 {
    let mut files = Vec::new();
    collect_sources(dir, &mut files, 0);
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in &files {
        file.hash(&mut hasher);
        std::fs::read(file).ok().hash(&mut hasher);
    }
    hasher.finish()
}

/// Rule sources under `dir`, at most a few folders deep (a symlink loop must not hang us).
fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() && depth < 8 {
            collect_sources(&path, out, depth + 1);
        } else if is_rule_source(&path) {
            out.push(path);
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

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange};

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn regression_reads_and_folders_are_not_rule_changes() {
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(!is_content_change(&event(read, "rules/orders.yaml")));
        assert!(!is_content_change(&event(open, "rules/orders.yaml")));
        let folder = EventKind::Create(CreateKind::Folder);
        assert!(!is_content_change(&event(folder, "rules/tests")));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(is_content_change(&event(write, "rules/orders.yaml")));
        assert!(is_content_change(&event(write, "rules/s/x.rhai")));
        assert!(!is_content_change(&event(write, "rules/.orders.yaml.swp")));
    }

    #[test]
    fn fingerprint_follows_contents_not_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "rules: []\n").unwrap();
        let before = fingerprint(dir.path());
        let _ = std::fs::read(dir.path().join("a.yaml")).unwrap();
        std::fs::create_dir(dir.path().join("tests")).unwrap();
        assert_eq!(fingerprint(dir.path()), before);
        std::fs::write(dir.path().join("a.yaml"), "rules: []\n\n").unwrap();
        assert_ne!(fingerprint(dir.path()), before);
    }
}
