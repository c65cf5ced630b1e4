//! Retention: hourly (and once at start-up), forgets what is older than `retention`:
//! - events, traces and finished (or dismissed) jobs; dead letters and flagged orders are kept
//!   until someone handles them;
//! - the script state a dynamic product's answer was kept under (`dynamic:<event id>`) once its
//!   event is gone;
//! - `.eml` files under `<data_dir>/mail` last written before the cut-off;
//! - `<data_dir>/slack.jsonl`: moved to `slack.jsonl.1` once it was created more than one
//!   retention period ago, and `slack.jsonl.1` deleted once its newest line is older than that,
//!   so a line is kept between one and about two periods. Renaming never loses a line: an append
//!   in flight lands in the renamed file. (Where the file system does not record creation
//!   times, the file is deleted once its newest line is older than the period.)
//!
//! When replicas share the journal, pruning the journal is a once-per-cluster duty: it runs on
//! the replica holding the [`lease::RETENTION`] lease (its writes fenced by it); each replica
//! still prunes the files under its own `data_dir`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::journal::lease::{self, Fence, LeaseTerms};
use crate::journal::{Journal, JournalError, Reader, Store, Write, Written};
use crate::model::event::Timestamp;

const EVERY: Duration = Duration::from_secs(3600);

/// The prefix of a dynamic product's kept answer in script state (see `server::dynamic`, which
/// sits above this layer and writes `dynamic:<event id>`).
pub const DYNAMIC_ANSWER_PREFIX: &str = "dynamic:";

/// What retention looks after.
#[derive(Debug, Clone)]
pub struct Retention {
    pub keep: Duration,
    pub journal: crate::journal::Location,
    pub data_dir: PathBuf,
}

impl Retention {
    pub fn from_config(config: &Config) -> Retention {
        Retention {
            keep: config.retention,
            journal: crate::journal::Location::of(config),
            data_dir: config.data_dir.clone(),
        }
    }
}

/// Who may prune a shared journal: the replica holding the retention lease.
pub struct Duty {
    pub reader: Reader,
    pub owner: String,
    pub terms: LeaseTerms,
}

impl Duty {
    /// `Some(fence)` when this replica prunes the journal this time: always when the journal
    /// is not shared; in a shared one when it holds (or took) the retention lease, kept from one
    /// pass to the next.
    async fn hold(&self) -> Option<Option<Fence>> {
        let (owner, length) = (self.owner.clone(), EVERY + self.terms.length);
        let held = self
            .reader
            .read(move |s| match s.shared() {
                false => Ok(Some(None)),
                true => Ok(s.hold_lease(lease::RETENTION, &owner, length)?.map(Some)),
            })
            .await;
        match held {
            Ok(Some(fence)) => Some(fence.map(|fence| Fence::Lease {
                name: lease::RETENTION.into(),
                owner: self.owner.clone(),
                fence,
            })),
            Ok(None) => None,
            Err(e) => {
                crate::telemetry::replicas::lease_failed(lease::RETENTION, &e);
                None
            }
        }
    }
}

pub async fn run(journal: Journal, retention: Retention, duty: Duty, stop: CancellationToken) {
    loop {
        match duty.hold().await {
            Some(fence) => retention.pass(&journal, fence).await,
            None => retention.pass_files().await,
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

impl Retention {
    /// One pruning pass, its journal writes fenced by `fence` (replicas); failures are logged
    /// and retried on the next pass.
    pub async fn pass(&self, journal: &Journal, fence: Option<Fence>) {
        let before = Timestamp(Timestamp::now().millis() - self.keep.as_millis() as i64);
        let fenced = |write: Write| match &fence {
            Some(f) => Write::Fenced(f.clone(), Box::new(write)),
            None => write,
        };
        match journal.write(fenced(Write::Prune { before })).await {
            Ok(Written::Changed(n)) if n > 0 => tracing::info!(events = n, "pruned old events"),
            Ok(Written::Fenced) => {
                let what = crate::telemetry::replicas::Fenced::Duty;
                crate::telemetry::replicas::fenced_off(what, &lease::RETENTION);
                return self.pass_files().await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pruning failed"),
        }
        let orphans = match crate::journal::open_reader(&self.journal) {
            Ok(reader) => reader.read(move |s| orphaned_answers(s, before)).await,
            Err(e) => Err(e),
        };
        match orphans {
            Ok(keys) if !keys.is_empty() => {
                let n = keys.len();
                match journal.write(fenced(Write::DeleteState(keys))).await {
                    Ok(_) => tracing::info!(keys = n, "pruned dynamic product answers"),
                    Err(e) => tracing::warn!(error = %e, "pruning dynamic answers failed"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading dynamic answers failed"),
        }
        self.pass_files().await;
    }

    /// Prunes the files under this replica's `data_dir` (`.eml` files, the Slack drop file).
    pub async fn pass_files(&self) {
        let now = SystemTime::now();
        let me = self.clone();
        let cutoff = now.checked_sub(self.keep).unwrap_or(SystemTime::UNIX_EPOCH);
        if let Err(e) = tokio::task::spawn_blocking(move || me.prune_files(cutoff)).await {
            tracing::warn!(error = %e, "retention task failed");
        }
    }

    /// Deletes old `.eml` files and rotates `slack.jsonl`.
    pub fn prune_files(&self, cutoff: SystemTime) {
        let mail = prune_eml(&self.data_dir.join("mail"), cutoff);
        if mail > 0 {
            tracing::info!(files = mail, "pruned old .eml files");
        }
        rotate(&self.data_dir.join("slack.jsonl"), cutoff);
    }
}

/// `dynamic:<event id>` keys written before `before` whose event is no longer journaled.
fn orphaned_answers(store: &dyn Store, before: Timestamp) -> Result<Vec<String>, JournalError> {
    let old: Vec<String> = store
        .state_keys(DYNAMIC_ANSWER_PREFIX)?
        .into_iter()
        .filter(|(_, at)| *at < before)
        .map(|(key, _)| key)
        .collect();
    let ids: Vec<String> = old
        .iter()
        .map(|k| k[DYNAMIC_ANSWER_PREFIX.len()..].to_string())
        .collect();
    let alive = store.existing_events(&ids)?;
    Ok(old
        .into_iter()
        .zip(ids)
        .filter(|(_, id)| !alive.contains(id))
        .map(|(key, _)| key)
        .collect())
}

/// When `path` was last written, if it exists.
fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Deletes `*.eml` files in `dir` last written before `cutoff`; returns how many.
fn prune_eml(dir: &Path, cutoff: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for path in entries.flatten().map(|e| e.path()) {
        let is_eml = path.extension().is_some_and(|x| x == "eml");
        if is_eml && modified(&path).is_some_and(|at| at < cutoff) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot prune"),
            }
        }
    }
    removed
}

/// Deletes `<file>.1` once its newest line is older than `cutoff`, then moves `<file>` to
/// `<file>.1` when it was created before `cutoff` and there is no `<file>.1` (any more).
fn rotate(file: &Path, cutoff: SystemTime) {
    let rotated = file.with_extension("jsonl.1");
    for stale in [&rotated, file] {
        if modified(stale).is_some_and(|at| at < cutoff) {
            match std::fs::remove_file(stale) {
                Ok(()) => tracing::info!(file = %stale.display(), "pruned an old Slack drop file"),
                Err(e) => tracing::warn!(file = %stale.display(), error = %e, "cannot prune"),
            }
        }
    }
    let created = std::fs::metadata(file).and_then(|m| m.created()).ok();
    if !rotated.exists() && created.is_some_and(|at| at < cutoff) {
        if let Err(e) = std::fs::rename(file, &rotated) {
            tracing::warn!(file = %file.display(), error = %e, "cannot rotate");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, by: Duration) {
        let f = std::fs::File::options().append(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn old_eml_files_go_and_recent_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["old.eml", "new.eml", "old.txt"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        age(&dir.path().join("old.eml"), Duration::from_secs(7200));
        age(&dir.path().join("old.txt"), Duration::from_secs(7200));
        let cutoff = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(prune_eml(dir.path(), cutoff), 1);
        assert!(!dir.path().join("old.eml").exists());
        assert!(dir.path().join("new.eml").exists());
        assert!(dir.path().join("old.txt").exists(), "only .eml files");
    }

    #[test]
    fn slack_drop_file_rotates_once_per_period_and_the_old_one_goes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("slack.jsonl");
        let rotated = dir.path().join("slack.jsonl.1");
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::write(&file, "first\n").unwrap();
        rotate(&file, hour_ago);
        assert!(file.exists() && !rotated.exists(), "a recent file stays");
        // The file system may not record creation times: then the file stays until its
        // newest line is old.
        let rotates = std::fs::metadata(&file).unwrap().created().is_ok();
        let later = SystemTime::now() + Duration::from_secs(1);
        if rotates {
            // Created before the cut-off, but written to after it: rotated, not deleted.
            let f = std::fs::File::options().append(true).open(&file).unwrap();
            f.set_modified(SystemTime::now() + Duration::from_secs(3600))
                .unwrap();
            rotate(&file, later);
            assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "first\n");
            assert!(!file.exists());
            std::fs::write(&file, "second\n").unwrap();
            rotate(&file, hour_ago);
            assert!(file.exists() && rotated.exists(), "nothing old enough yet");
        }
        age(&file, Duration::from_secs(7200));
        if rotates {
            age(&rotated, Duration::from_secs(7200));
        }
        rotate(&file, hour_ago);
        assert!(!file.exists() && !rotated.exists(), "every line was old");
    }
}
