//! Opening the journal: the one place that picks the backend (SQLite in `data_dir`, or
//! PostgreSQL when `journal.url` is set), so nothing above `journal/` names it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::pg::{PgStore, PgUrl};
use super::sqlite::SqliteStore;
use super::{Journal, JournalError, Reader};
use crate::config::Config;

/// Where the journal is. Shown (logs, errors) without a database password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (DESIGN.md §13).
    Postgres(PgUrl),
}

impl Location {
    /// The journal `config` names: `journal.url` when set, else the file in `data_dir`.
    /// A malformed URL is refused when the journal is opened, with the reason.
    pub fn of(config: &Config) -> Location {
        let url = config.journal.url.expose();
        match url.trim().is_empty() {
            true => Location::Sqlite(config.journal_path()),
            false => Location::Postgres(PgUrl::new(url)),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => write!(f, "{url}"),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Sqlite(path.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Sqlite(path.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Sqlite(path)
    }
}

impl From<&Location> for Location {
    fn from(at: &Location) -> Location {
        at.clone()
    }
}

/// Starts the daemon's journal at `at` (created if needed): the group-commit writer (and, for
/// SQLite, its WAL checkpointer), as threads tracked by `tracker`. The writer commits until the
/// last [`Journal`] clone is dropped, then a last checkpoint runs and the threads end.
pub fn start_writer(
    at: impl Into<Location>,
    dedupe_window: Duration,
    appended: Option<SyncSender<()>>,
    tracker: &TaskTracker,
) -> Result<Journal, JournalError> {
    match at.into() {
        Location::Sqlite(path) => {
            let (store, checkpointer) = SqliteStore::open_writer(&path)?;
            Journal::start(
                store,
                dedupe_window,
                appended,
                tracker,
                Some(Box::new(move || checkpointer.stop())),
            )
        }
        Location::Postgres(url) => {
            let store = PgStore::open(&url)?;
            Journal::start(store, dedupe_window, appended, tracker, None)
        }
    }
}

/// A read connection of its own to the journal at `at` (created if needed).
pub fn open_reader(at: impl Into<Location>) -> Result<Reader, JournalError> {
    match at.into() {
        Location::Sqlite(path) => Ok(Reader::new(SqliteStore::open(&path)?)),
        Location::Postgres(url) => Ok(Reader::new(PgStore::open(&url)?)),
    }
}

/// An existing journal, for the CLI: fails clearly when `storeflow serve` never ran there.
pub fn open_existing(at: impl Into<Location>) -> Result<Reader, JournalError> {
    match at.into() {
        Location::Sqlite(path) => Ok(Reader::new(SqliteStore::open_existing(&path)?)),
        Location::Postgres(url) => Ok(Reader::new(PgStore::open(&url)?)),
    }
}

/// Brings the schema of the journal at `at` up to date (`storeflow migrate`); answers the
/// (version, name) of the migrations applied (SQLite's run unnumbered on open: none listed).
pub fn migrate(at: impl Into<Location>) -> Result<Vec<(i64, String)>, JournalError> {
    match at.into() {
        Location::Sqlite(path) => SqliteStore::open(&path).map(|_| Vec::new()),
        Location::Postgres(url) => PgStore::connect(&url)?.migrate(),
    }
}
