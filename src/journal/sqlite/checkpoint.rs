//! Keeps the WAL small.
//!
//! A PASSIVE checkpoint (every [`PASSIVE_EVERY`], on a thread of its own) copies the WAL into
//! the database without waiting for anyone, but it never lets the WAL start over: SQLite rewinds
//! the WAL only when a write begins after a checkpoint copied *every* frame and no reader still
//! uses it, which under sustained load never happens (a new batch is always committed first).
//! The WAL then grew by every commit: 1.3 GB after 30 s of load, kept at that size while idle.
//! So:
//!
//! - when the WAL passes [`WAL_RESTART_AT`], the *writer thread*, between two batches, runs a
//!   RESTART checkpoint ([`restart`]) that waits (busy timeout) for readers to leave the WAL, so
//!   the next commit starts it over and `journal_size_limit` ([`WAL_SIZE_LIMIT`]) cuts the file
//!   back. On the writer because it needs the write lock: from another thread it starved behind
//!   back-to-back group commits (the WAL reached 82 MB at 3,400 webhooks/s);
//! - when nothing was committed for [`IDLE_AFTER`], a TRUNCATE checkpoint empties the file;
//! - at shutdown, a last TRUNCATE.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::SqliteStore;
use crate::journal::JournalError;
use crate::telemetry::{Repeated, REPEAT_WINDOW};

/// `journal_size_limit` of the writer: the WAL is cut back to this when it starts over.
pub const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;
/// WAL size that triggers a RESTART checkpoint (by the writer, between batches).
pub const WAL_RESTART_AT: u64 = 16 * 1024 * 1024;
/// How often the checkpoint thread looks at the WAL size and the commit count.
const TICK: Duration = Duration::from_millis(100);
/// How often a PASSIVE checkpoint runs.
const PASSIVE_EVERY: Duration = Duration::from_millis(500);
/// How long without commits before the WAL is truncated.
const IDLE_AFTER: Duration = Duration::from_secs(1);

static CHECKPOINT_FAILED: Repeated = Repeated::new(REPEAT_WINDOW);

/// The running checkpoint thread.
pub struct Checkpointer {
    stop: Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Checkpointer, JournalError> {
        let store = SqliteStore::open(path)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let state = Loop {
            store,
            wal: PathBuf::from(wal),
            data_version: None,
            last_commit_seen: Instant::now(),
            last_passive: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || state.run(stopped))
            .map_err(|e| JournalError::Open {
                path: path.display().to_string(),
                reason: format!("cannot start the checkpoint thread: {e}"),
            })?;
        Ok(Checkpointer { stop, thread })
    }

    /// Runs a last checkpoint and stops (after the writer has closed).
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

struct Loop {
    store: SqliteStore,
    wal: PathBuf,
    /// `PRAGMA data_version` at the last tick: it changes when another connection commits.
    data_version: Option<i64>,
    last_commit_seen: Instant,
    last_passive: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Passive,
    Truncate,
}

/// The size-triggered checkpoint, run by the writer between batches: a RESTART when the WAL at
/// `wal` passed [`WAL_RESTART_AT`].
pub(super) fn restart_if_large(conn: &rusqlite::Connection, wal: &Path) {
    let size = std::fs::metadata(wal).map_or(0, |m| m.len());
    if size <= WAL_RESTART_AT {
        return;
    }
    let result = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match result {
        Ok((busy, frames, copied)) => {
            tracing::debug!(size, busy, frames, copied, "WAL restart checkpoint");
        }
        Err(e) => {
            crate::rate_limited_warn!(CHECKPOINT_FAILED, error = %e, size, "WAL restart checkpoint failed");
        }
    }
}

impl Loop {
    fn run(mut self, stopped: Receiver<()>) {
        loop {
            match stopped.recv_timeout(TICK) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    self.checkpoint(Mode::Truncate);
                    return;
                }
            }
            if let Some(mode) = self.due() {
                self.checkpoint(mode);
            }
        }
    }

    /// Which checkpoint this tick calls for, if any.
    fn due(&mut self) -> Option<Mode> {
        let size = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        let version = self
            .store
            .conn
            .pragma_query_value(None, "data_version", |r| r.get::<_, i64>(0))
            .ok();
        if version != self.data_version {
            self.data_version = version;
            self.last_commit_seen = Instant::now();
        }
        if size > 0 && self.last_commit_seen.elapsed() >= IDLE_AFTER {
            Some(Mode::Truncate)
        } else if self.last_passive.elapsed() >= PASSIVE_EVERY {
            Some(Mode::Passive)
        } else {
            None
        }
    }

    fn checkpoint(&mut self, mode: Mode) {
        let sql = match mode {
            Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        self.last_passive = Instant::now();
        // (busy, frames in the WAL, frames copied); busy = 1 when readers or the writer kept
        // it from finishing: the next tick tries again.
        let result = self.store.conn.query_row(sql, [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match result {
            Ok((busy, frames, copied)) if mode == Mode::Passive => {
                tracing::trace!(?mode, busy, frames, copied, "WAL checkpoint");
            }
            Ok((busy, frames, copied)) => {
                tracing::debug!(?mode, busy, frames, copied, "WAL checkpoint");
            }
            Err(e) => {
                crate::rate_limited_warn!(CHECKPOINT_FAILED, error = %e, ?mode, "WAL checkpoint failed");
            }
        }
    }
}
