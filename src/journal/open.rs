//! Opening the journal: the one place that picks the backend (SQLite today), so nothing above
//! `journal/` names it.

use std::path::Path;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::sqlite::{Checkpointer, SqliteStore};
use super::{Journal, JournalError, Reader};

/// Starts the daemon's journal at `path` (created if needed): the group-commit writer and its
/// WAL checkpointer, as threads tracked by `tracker`. The writer commits until the last
/// [`Journal`] clone is dropped, then a last checkpoint runs and both threads end.
pub fn start_writer(
    path: &Path,
    dedupe_window: Duration,
    appended: Option<SyncSender<()>>,
    tracker: &TaskTracker,
) -> Result<Journal, JournalError> {
    let store = SqliteStore::open_writer(path)?;
    let checkpointer = Checkpointer::start(path)?;
    Journal::start(
        store,
        dedupe_window,
        appended,
        tracker,
        Some(Box::new(move || checkpointer.stop())),
    )
}

/// A read connection of its own to the journal at `path` (created if needed).
pub fn open_reader(path: &Path) -> Result<Reader, JournalError> {
    Ok(Reader::new(SqliteStore::open(path)?))
}

/// An existing journal, for the CLI: fails clearly when `storeflow serve` never ran there.
pub fn open_existing(path: &Path) -> Result<Reader, JournalError> {
    Ok(Reader::new(SqliteStore::open_existing(path)?))
}
