//! Keeps the WAL small without making commits wait for it.
//!
//! A PASSIVE checkpoint copies the WAL into the database without waiting for anyone, but it
//! never lets the WAL start over: SQLite rewinds the WAL only when a write begins after a
//! checkpoint copied *every* frame and no reader still uses it, which under sustained load
//! never happens (a new batch is always committed first). The WAL then grew by every commit:
//! 1.3 GB after 30 s of load, kept at that size while idle. So the WAL is bounded in two steps,
//! split between the writer and the `journal-checkpoint` thread:
//!
//! - the writer counts the frames in the WAL after every commit (a WAL hook). Past
//!   [`RESTART_FRAMES`] it asks the checkpoint thread to copy them (a PASSIVE checkpoint, off
//!   the commit path), and once that copy left at most [`RESIDUE_FRAMES`] behind, it runs a
//!   RESTART checkpoint between two batches: it copies only that residue, and the next commit
//!   starts the WAL over, which `journal_size_limit` ([`WAL_SIZE_LIMIT`]) cuts back. The
//!   RESTART is on the writer because it needs the write lock: from another thread it starved
//!   behind back-to-back group commits (the WAL reached 82 MB at 3,400 webhooks/s), and the
//!   writer would wait on it anyway. It does not wait for readers (it tries again after the
//!   next batch) unless the WAL passed [`FORCE_FRAMES`]: then it restarts whatever that
//!   costs, so the WAL stays bounded whatever the checkpoint thread and readers do;
//! - the checkpoint thread also copies every [`PASSIVE_EVERY`], and when nothing was committed
//!   for [`IDLE_AFTER`] a TRUNCATE checkpoint empties the file; at shutdown, a last TRUNCATE.
//!
//! Before, the writer ran the RESTART as soon as the WAL passed 16 MiB and copied all of it
//! itself: ~3.5 ms with the database fsync, every ~80 ms at 2,000 webhooks/s, while every
//! webhook that arrived meanwhile waited (BENCHMARKS.md, "Issue 11, fourth round").

use std::cell::Cell;
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use super::SqliteStore;
use crate::journal::JournalError;
use crate::telemetry::{Repeated, REPEAT_WINDOW};

/// `journal_size_limit` of the writer: the WAL is cut back to this when it starts over.
pub const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;
/// Frames in the WAL (4 KiB pages, ~16 MiB) past which the writer restarts it.
pub const RESTART_FRAMES: i64 = 4096;
/// Frames not yet copied into the database that the writer's RESTART may copy itself.
pub const RESIDUE_FRAMES: i64 = 256;
/// Frames (~32 MiB) past which the writer restarts the WAL whatever it costs: copying all that
/// is left and waiting (busy timeout) for readers to leave the WAL. Keeps it bounded when the
/// checkpoint thread cannot keep up or readers never let go.
pub const FORCE_FRAMES: i64 = 2 * RESTART_FRAMES;
/// How often the checkpoint thread looks at the WAL size and the commit count.
const TICK: Duration = Duration::from_millis(100);
/// How often a PASSIVE checkpoint runs.
const PASSIVE_EVERY: Duration = Duration::from_millis(500);
/// How long without commits before the WAL is truncated.
const IDLE_AFTER: Duration = Duration::from_secs(1);

static CHECKPOINT_FAILED: Repeated = Repeated::new(REPEAT_WINDOW);

thread_local! {
    /// Frames in the WAL after the last commit on this thread (the writer's; see [`count_frames`]).
    static FRAMES: Cell<i64> = const { Cell::new(0) };
}

/// The WAL hook of the writer's connection: SQLite calls it after every commit with the number
/// of frames in the WAL. A plain `fn` (rusqlite's hook takes no closure), so the count goes to a
/// thread-local: the writer commits and reads it on its own thread.
fn count_frames(_: &Wal, frames: c_int) -> rusqlite::Result<()> {
    FRAMES.with(|f| f.set(i64::from(frames)));
    Ok(())
}

/// What the writer and the checkpoint thread know about the WAL together.
#[derive(Debug, Default)]
struct Progress {
    /// Counts the WAL's restarts (as the writer saw them): a copy reported for an older
    /// generation says nothing about the frames of this one.
    generation: u64,
    /// Frames of this generation the checkpoint thread has copied into the database.
    backfilled: i64,
    /// The writer asked for a copy and the checkpoint thread has not run it yet.
    requested: bool,
}

#[derive(Debug, Default)]
struct Shared(Mutex<Progress>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the checkpoint thread is woken for.
enum Signal {
    /// Copy the WAL into the database now (the writer is about to restart it).
    Copy,
    /// Run a last checkpoint and end.
    Stop,
}

/// What the writer does between two batches, given the frames in the WAL and how many of
/// them the checkpoint thread has copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Nothing,
    /// Ask the checkpoint thread to copy (if not asked already).
    Copy,
    /// RESTART; `force`: copy whatever is left and wait for readers.
    Restart {
        force: bool,
    },
}

fn step(frames: i64, backfilled: i64) -> Step {
    if frames >= FORCE_FRAMES {
        Step::Restart { force: true }
    } else if frames < RESTART_FRAMES {
        Step::Nothing
    } else if frames - backfilled <= RESIDUE_FRAMES {
        Step::Restart { force: false }
    } else {
        Step::Copy
    }
}

/// What the writer's restarts cost, for tests and the debug log.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Restarts {
    /// RESTART checkpoints that succeeded.
    pub done: u64,
    /// Of those, forced ones (the checkpoint thread had not caught up, or readers held on).
    pub forced: u64,
    /// The most frames a restart had left to copy itself.
    pub largest_residue: i64,
}

/// The writer's side: run between batches on the writer thread.
pub(super) struct WalBound {
    shared: Arc<Shared>,
    wake: Sender<Signal>,
    /// Frames after the previous commit: fewer now means the WAL started over.
    last_frames: i64,
    busy_timeout: Duration,
    pub(super) restarts: Restarts,
}

impl WalBound {
    /// Watches the WAL of `conn` (the writer's connection, with `wal_autocheckpoint = 0`:
    /// that pragma replaces the WAL hook); `busy_timeout` is the one `conn` waits with.
    pub(super) fn watch(
        conn: &Connection,
        checkpointer: &Checkpointer,
        busy_timeout: Duration,
    ) -> WalBound {
        conn.wal_hook(Some(count_frames));
        WalBound {
            shared: checkpointer.shared.clone(),
            wake: checkpointer.signal.clone(),
            last_frames: 0,
            busy_timeout,
            restarts: Restarts::default(),
        }
    }

    /// Between two batches: asks for a copy, or restarts the WAL, when it is due.
    pub(super) fn between_batches(&mut self, conn: &Connection) {
        let frames = FRAMES.with(Cell::get);
        let (backfilled, requested) = {
            let mut progress = self.shared.lock();
            if frames < self.last_frames {
                progress.generation += 1;
                progress.backfilled = 0;
            }
            (progress.backfilled, progress.requested)
        };
        self.last_frames = frames;
        match step(frames, backfilled) {
            Step::Nothing => {}
            Step::Copy if requested => {}
            Step::Copy => {
                self.shared.lock().requested = true;
                let _ = self.wake.send(Signal::Copy);
            }
            Step::Restart { force } => self.restart(conn, frames - backfilled, force),
        }
    }

    /// A RESTART checkpoint on the writer's connection. Unless `force`d it does not wait for
    /// readers (nor the write lock): busy, it is tried again after the next batch.
    fn restart(&mut self, conn: &Connection, residue: i64, force: bool) {
        let started = Instant::now();
        if !force {
            let _ = conn.busy_handler(None);
        }
        let result = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], outcome);
        if !force {
            let _ = conn.busy_timeout(self.busy_timeout);
        }
        let took = started.elapsed();
        match result {
            Ok((0, frames, _)) => {
                let r = &mut self.restarts;
                r.done += 1;
                r.forced += u64::from(force);
                r.largest_residue = r.largest_residue.max(residue);
                tracing::debug!(frames, residue, force, ?took, "WAL restart checkpoint");
            }
            Ok((_, frames, copied)) => {
                tracing::debug!(frames, copied, residue, force, ?took, "WAL restart busy");
            }
            Err(e) => {
                crate::rate_limited_warn!(CHECKPOINT_FAILED, error = %e, "WAL restart checkpoint failed");
            }
        }
    }
}

/// (busy, frames in the WAL, frames copied) of `PRAGMA wal_checkpoint`; busy = 1 when readers
/// or another checkpoint kept it from finishing.
fn outcome(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// The running checkpoint thread.
pub struct Checkpointer {
    signal: Sender<Signal>,
    shared: Arc<Shared>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Checkpointer, JournalError> {
        let store = SqliteStore::open(path)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let (signal, signals) = std::sync::mpsc::channel::<Signal>();
        let shared = Arc::new(Shared::default());
        let state = Loop {
            store,
            wal: PathBuf::from(wal),
            shared: shared.clone(),
            data_version: None,
            last_commit_seen: Instant::now(),
            last_passive: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || state.run(signals))
            .map_err(|e| JournalError::Open {
                path: path.display().to_string(),
                reason: format!("cannot start the checkpoint thread: {e}"),
            })?;
        Ok(Checkpointer {
            signal,
            shared,
            thread,
        })
    }

    /// Runs a last checkpoint and stops (after the writer has closed).
    pub fn stop(self) {
        let _ = self.signal.send(Signal::Stop);
        let _ = self.thread.join();
    }
}

struct Loop {
    store: SqliteStore,
    wal: PathBuf,
    shared: Arc<Shared>,
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

impl Loop {
    fn run(mut self, signals: Receiver<Signal>) {
        loop {
            match signals.recv_timeout(TICK) {
                Ok(Signal::Copy) => self.checkpoint(Mode::Passive),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(mode) = self.due() {
                        self.checkpoint(mode);
                    }
                }
                Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.checkpoint(Mode::Truncate);
                    return;
                }
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
        let generation = self.shared.lock().generation;
        let result = self.store.conn.query_row(sql, [], outcome);
        let took = self.last_passive.elapsed();
        if mode == Mode::Passive {
            self.published(generation, result.as_ref().ok());
        }
        match result {
            Ok((busy, frames, copied)) if mode == Mode::Passive => {
                tracing::trace!(?mode, busy, frames, copied, ?took, "WAL checkpoint");
            }
            Ok((busy, frames, copied)) => {
                tracing::debug!(?mode, busy, frames, copied, ?took, "WAL checkpoint");
            }
            Err(e) => {
                crate::rate_limited_warn!(CHECKPOINT_FAILED, error = %e, ?mode, "WAL checkpoint failed");
            }
        }
    }

    /// Tells the writer how far the copy got, unless the WAL started over meanwhile.
    fn published(&self, generation: u64, outcome: Option<&(i64, i64, i64)>) {
        let mut progress = self.shared.lock();
        progress.requested = false;
        match outcome {
            Some(&(_, _, copied)) if copied >= 0 && progress.generation == generation => {
                progress.backfilled = copied;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
