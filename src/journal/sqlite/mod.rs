//! The embedded journal: one SQLite file in WAL mode under `data_dir`.
//!
//! `synchronous = FULL` makes every commit durable against power loss, not only against a
//! process crash; group commit in [`super::Journal`] pays for that fsync once per batch.

mod admin;
mod backup;
mod checkpoint;
mod events;
mod flags;
mod gauges;
mod identity;
mod jobs;
mod quarantine;
pub(super) mod timers;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::query::{EventPage, EventQuery, FlagPage, FlagQuery, JobPage, JobQuery, LastFired};
use super::{
    Attempt, BackupSummary, Event, EventStatus, EventSummary, Flag, FlagFilter, Job, JobStatus,
    JournalError, SecretCount, Store, Timer, TimerFilter, Unreadable, Write, Written,
};
use crate::model::event::Timestamp;
use crate::telemetry::metrics::JournalGauges;
pub use checkpoint::Checkpointer;
pub use identity::FileIdentity;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE events (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        id           TEXT NOT NULL UNIQUE,
        source       TEXT NOT NULL,
        kind         TEXT NOT NULL,
        topic        TEXT NOT NULL,
        canonical    TEXT,
        received_at  INTEGER NOT NULL,
        order_id     TEXT,
        dedupe_key   TEXT NOT NULL,
        payload      BLOB NOT NULL,
        order_view   TEXT,
        processed_at INTEGER
    );
    CREATE INDEX events_dedupe ON events (source, dedupe_key, received_at);
    CREATE INDEX events_unprocessed ON events (seq) WHERE processed_at IS NULL;
    "#,
    r#"
    CREATE TABLE traces (
        event_id   TEXT PRIMARY KEY,
        trace      TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE jobs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id     TEXT NOT NULL,
        rule         TEXT NOT NULL,
        action_index INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        params       TEXT NOT NULL,
        status       TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_at      INTEGER NOT NULL,
        last_error   TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        UNIQUE (event_id, rule, action_index)
    );
    CREATE INDEX jobs_due ON jobs (status, next_at);
    CREATE INDEX jobs_event ON jobs (event_id);
    "#,
    r#"
    CREATE TABLE attempts (
        job_id      INTEGER NOT NULL,
        number      INTEGER NOT NULL,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        outcome     TEXT NOT NULL,
        error       TEXT,
        PRIMARY KEY (job_id, number)
    );
    CREATE TABLE flags (
        source     TEXT NOT NULL,
        order_id   TEXT NOT NULL,
        kind       TEXT NOT NULL,
        note       TEXT NOT NULL,
        event_id   TEXT NOT NULL,
        rule       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (source, order_id, kind)
    );
    "#,
    r#"
    CREATE TABLE kv (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    "#,
    // Events the pipeline could not read back or plan. A quarantined event is also marked
    // processed, so it leaves the unprocessed queue; `storeflow events retry` undoes both.
    r#"
    CREATE TABLE quarantine (
        event_id       TEXT PRIMARY KEY,
        reason         TEXT NOT NULL,
        quarantined_at INTEGER NOT NULL
    );
    "#,
    // Flags: one per rule (a second rule flagging the same order and kind keeps its note), an
    // id to resolve or delete one by, and when it was resolved.
    r#"
    CREATE TABLE flags_by_rule (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        source      TEXT NOT NULL,
        order_id    TEXT NOT NULL,
        kind        TEXT NOT NULL,
        note        TEXT NOT NULL,
        event_id    TEXT NOT NULL,
        rule        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        resolved_at INTEGER,
        UNIQUE (source, order_id, kind, rule)
    );
    INSERT INTO flags_by_rule (source, order_id, kind, note, event_id, rule, created_at)
        SELECT source, order_id, kind, note, event_id, rule, created_at FROM flags
        ORDER BY created_at;
    DROP TABLE flags;
    ALTER TABLE flags_by_rule RENAME TO flags;
    "#,
    // Shops (DESIGN.md §14): the shop an event was posted for, and which of its secrets matched.
    r#"
    ALTER TABLE events ADD COLUMN shop TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE events ADD COLUMN secret TEXT;
    CREATE INDEX events_shop ON events (shop, seq);
    "#,
    // The admin API's lists (DESIGN.md §11): an index per filter, the rules fired per event.
    admin::MIGRATION,
    // The console's overview: events per source in the last 24 h, from the index alone.
    r#"
    CREATE INDEX events_received ON events (received_at, source);
    "#,
    // Write-once events (issue 11): the body in a table of its own, written once, so marking an
    // event processed rewrites its small row instead of the 4 KB one with the body. Events
    // from before keep their body in `events.payload`; new ones store an empty one there.
    r#"
    CREATE TABLE event_bodies (
        seq     INTEGER PRIMARY KEY,
        payload BLOB NOT NULL
    );
    "#,
    // Deliveries per (source, shop, secret), counted at append (issue 11): start-up read them
    // with a GROUP BY over every event, a full scan that grew with the journal.
    r#"
    CREATE TABLE secret_counts (
        source TEXT NOT NULL,
        shop   TEXT NOT NULL,
        secret TEXT NOT NULL,
        events INTEGER NOT NULL,
        last   INTEGER NOT NULL,
        PRIMARY KEY (source, shop, secret)
    );
    INSERT INTO secret_counts (source, shop, secret, events, last)
        SELECT source, shop, COALESCE(secret, 'unknown'), COUNT(*), MAX(received_at)
        FROM events GROUP BY 1, 2, 3;
    "#,
    // Timers (DESIGN.md §12): waits, delayed actions and digest windows.
    timers::MIGRATION,
];

/// How long a connection waits for a lock another one holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SqliteStore {
    conn: Connection,
    /// Set on the daemon's writer: every batch checks that the files are still in place.
    files: Option<FileIdentity>,
    /// Set on the daemon's writer: bounds its WAL between batches.
    wal: Option<checkpoint::WalBound>,
}

impl SqliteStore {
    /// Opens (creating if needed) the journal at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, JournalError> {
        let open_err = |reason: String| JournalError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mut store = SqliteStore {
            conn,
            files: None,
            wal: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens the connection that writes for the daemon, and starts the [`Checkpointer`] thread
    /// beside it. The writer does no routine checkpoints: a checkpoint flushes and fsyncs the
    /// database file, and doing that after every commit would stall every webhook waiting on
    /// it; the checkpoint thread does them.
    ///
    /// It only bounds the WAL (see [`checkpoint`]): past [`checkpoint::RESTART_FRAMES`] it has
    /// the checkpoint thread copy the WAL, then restarts it between batches, and when the WAL
    /// starts over the file is cut back to [`checkpoint::WAL_SIZE_LIMIT`]
    /// (`journal_size_limit`). And it records the identity of the files so no batch is
    /// committed into a journal that was removed or replaced.
    pub fn open_writer(path: &Path) -> Result<(SqliteStore, Checkpointer), JournalError> {
        let mut store = Self::open(path)?;
        store.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        store
            .conn
            .pragma_update(None, "journal_size_limit", checkpoint::WAL_SIZE_LIMIT)?;
        let files = FileIdentity::of(path).map_err(|e| JournalError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        store.files = Some(files);
        let checkpointer = Checkpointer::start(path)?;
        let bound = checkpoint::WalBound::watch(&store.conn, &checkpointer, BUSY_TIMEOUT);
        store.wal = Some(bound);
        Ok((store, checkpointer))
    }

    /// Opens an existing journal for reading (the CLI), failing clearly if there is none.
    pub fn open_existing(path: &Path) -> Result<SqliteStore, JournalError> {
        if !path.exists() {
            return Err(JournalError::Open {
                path: path.display().to_string(),
                reason: "no journal there yet (has `storeflow serve` run with this data_dir?)"
                    .into(),
            });
        }
        Self::open(path)
    }

    /// The connection, for copying the journal elsewhere (`storeflow journal copy`).
    pub(in crate::journal) fn into_connection(self) -> Connection {
        self.conn
    }

    fn check_files(&self) -> Result<(), JournalError> {
        self.files.as_ref().map_or(Ok(()), FileIdentity::verify)
    }

    fn migrate(&mut self) -> Result<(), JournalError> {
        let version: usize = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn write_batch(
        &mut self,
        batch: &[Write],
        dedupe_window: Duration,
    ) -> Result<Vec<Written>, JournalError> {
        self.check_files()?;
        let t0 = std::time::Instant::now();
        // IMMEDIATE: take the write lock up front, waiting (busy timeout) while a RESTART or
        // TRUNCATE checkpoint holds it. A deferred transaction that read first (the dedupe
        // lookup) and then wants to write gets SQLITE_BUSY at once, without waiting.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let t_begin = t0.elapsed();
        let mut out = Vec::with_capacity(batch.len());
        for write in batch {
            out.push(match unfenced(write) {
                Write::Append(inc) => Written::Appended(events::append(&tx, inc, dedupe_window)?),
                Write::Processed(p) => Written::Processed(jobs::processed(&tx, p)?),
                Write::Attempt(a) => Written::Changed(jobs::record_attempt(&tx, a)?),
                Write::Flag(f) => Written::Changed(flags::add(&tx, f)?),
                Write::Requeue(r) => Written::Changed(jobs::requeue(&tx, r)?),
                Write::Quarantine(u) => Written::Changed(quarantine::add(&tx, u)?),
                Write::Release(r) => Written::Changed(quarantine::release(&tx, r)?),
                Write::State(key, value) => Written::Changed(jobs::set_state(&tx, key, value)?),
                Write::Prune { before } => Written::Changed(events::prune(&tx, *before)?),
                Write::Replan(r) => Written::Changed(jobs::replan(&tx, r)?),
                Write::Dismiss(ids) => Written::Changed(jobs::dismiss(&tx, ids)?),
                Write::ResolveFlag(id) => Written::Changed(flags::resolve(&tx, *id)?),
                Write::DeleteFlag(id) => Written::Changed(flags::delete(&tx, *id)?),
                Write::DeleteState(keys) => Written::Changed(jobs::delete_state(&tx, keys)?),
                Write::FireTimers(f) => Written::Changed(timers::fire(&tx, f)?),
                Write::CancelTimer(id) => Written::Changed(timers::cancel(&tx, *id)?),
                Write::DeleteStateUnchanged(keys) => {
                    Written::Changed(timers::delete_state_unchanged(&tx, keys)?)
                }
                Write::Fenced(..) => unreachable_fenced()?,
            });
        }
        let t_stmts = t0.elapsed();
        tx.commit()?;
        tracing::debug!(target: "diag", begin_us = t_begin.as_micros() as u64, stmts_us = (t_stmts - t_begin).as_micros() as u64, commit_us = (t0.elapsed() - t_stmts).as_micros() as u64, "commit");
        // Checked again: a batch committed into a file unlinked meanwhile is not durable.
        self.check_files()?;
        Ok(out)
    }

    fn files(&self) -> Option<FileIdentity> {
        self.files.clone()
    }

    fn between_batches(&mut self) {
        if let Some(wal) = &mut self.wal {
            wal.between_batches(&self.conn);
        }
    }

    fn recent_events(&self, limit: usize) -> Result<Vec<EventSummary>, JournalError> {
        events::recent(&self.conn, None, None, limit)
    }

    fn events_with_status(
        &self,
        status: EventStatus,
        limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError> {
        events::recent(&self.conn, Some(status), None, limit)
    }

    fn events_filtered(
        &self,
        status: Option<EventStatus>,
        shop: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError> {
        events::recent(&self.conn, status, shop, limit)
    }

    fn secret_counts(&self) -> Result<Vec<SecretCount>, JournalError> {
        events::secret_counts(&self.conn)
    }

    fn event(&self, id: &str) -> Result<Option<Event>, JournalError> {
        events::one(&self.conn, id)
    }

    fn unprocessed_events(
        &self,
        limit: usize,
    ) -> Result<Vec<Result<Event, Unreadable>>, JournalError> {
        events::unprocessed(&self.conn, limit)
    }

    fn state(&self, key: &str) -> Result<Option<serde_json::Value>, JournalError> {
        jobs::state(&self.conn, key)
    }

    fn trace(&self, event_id: &str) -> Result<Option<serde_json::Value>, JournalError> {
        jobs::trace(&self.conn, event_id)
    }

    fn job(&self, id: i64) -> Result<Option<Job>, JournalError> {
        jobs::one(&self.conn, id)
    }

    fn due_jobs(&self, now: Timestamp, limit: usize) -> Result<Vec<Job>, JournalError> {
        jobs::due(&self.conn, now, limit)
    }

    fn next_due(&self) -> Result<Option<Timestamp>, JournalError> {
        jobs::next_due(&self.conn)
    }

    fn attempts(&self, job_id: i64) -> Result<Vec<Attempt>, JournalError> {
        jobs::attempts(&self.conn, job_id)
    }

    fn flags(
        &self,
        kind: Option<&str>,
        filter: FlagFilter,
        limit: usize,
    ) -> Result<Vec<Flag>, JournalError> {
        flags::list(&self.conn, kind, filter, limit)
    }

    fn state_keys(&self, prefix: &str) -> Result<Vec<(String, Timestamp)>, JournalError> {
        jobs::state_keys(&self.conn, prefix)
    }

    fn existing_events(&self, ids: &[String]) -> Result<Vec<String>, JournalError> {
        events::existing(&self.conn, ids)
    }

    fn jobs(
        &self,
        event_id: Option<&str>,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>, JournalError> {
        jobs::list(&self.conn, event_id, status, limit)
    }

    fn gauges(&self, now: Timestamp) -> Result<JournalGauges, JournalError> {
        gauges::read(&self.conn, now)
    }

    fn event_page(&self, q: &EventQuery) -> Result<EventPage, JournalError> {
        admin::events(&self.conn, q)
    }

    fn job_page(&self, q: &JobQuery) -> Result<JobPage, JournalError> {
        admin::jobs(&self.conn, q)
    }

    fn flag_page(&self, q: &FlagQuery) -> Result<FlagPage, JournalError> {
        admin::flags(&self.conn, q)
    }

    fn flag(&self, id: i64) -> Result<Option<Flag>, JournalError> {
        admin::flag_by_id(&self.conn, id)
    }

    fn last_fired(&self, rules: &[String]) -> Result<Vec<LastFired>, JournalError> {
        admin::last_fired(&self.conn, rules)
    }

    fn count_jobs(&self, status: JobStatus) -> Result<u64, JournalError> {
        admin::count_jobs(&self.conn, status)
    }

    fn backup_into(&self, dest: &Path) -> Result<BackupSummary, JournalError> {
        backup::vacuum_into(&self.conn, dest)
    }

    fn events_per_source(&self, since: Timestamp) -> Result<Vec<(String, u64)>, JournalError> {
        gauges::events_per_source(&self.conn, since)
    }

    fn unprocessed_ids(&self, limit: usize) -> Result<Vec<String>, JournalError> {
        events::unprocessed_ids(&self.conn, limit)
    }

    fn timers(&self, filter: &TimerFilter) -> Result<Vec<Timer>, JournalError> {
        timers::list(&self.conn, filter)
    }

    fn due_timers(&self, now: Timestamp, limit: usize) -> Result<Vec<Timer>, JournalError> {
        timers::due(&self.conn, now, limit)
    }

    fn next_timer_due(&self) -> Result<Option<Timestamp>, JournalError> {
        timers::next_due(&self.conn)
    }

    fn timers_pending(&self) -> Result<u64, JournalError> {
        timers::pending_count(&self.conn)
    }

    fn order_events(
        &self,
        source: Option<&str>,
        order_id: &str,
        limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError> {
        timers::order_events(&self.conn, source, order_id, limit)
    }

    fn order_timeline(
        &self,
        source: &str,
        order_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, Option<String>)>, JournalError> {
        timers::order_timeline(&self.conn, source, order_id, limit)
    }
}

/// The write a [`Write::Fenced`] wraps: SQLite is not shared (this daemon holds the journal
/// alone), so no claim can have moved and fenced writes apply as they are.
fn unfenced(mut write: &Write) -> &Write {
    while let Write::Fenced(_, inner) = write {
        write = inner;
    }
    write
}

/// [`unfenced`] never answers a fenced write.
fn unreachable_fenced() -> Result<Written, JournalError> {
    Err(JournalError::CommitFailed(
        "a fenced write was not unwrapped".into(),
    ))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bodies;

#[cfg(test)]
mod admin_tests;

/// SQLite's errors stay inside `journal/`: above it they are a [`JournalError::Db`].
impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> JournalError {
        JournalError::Db(Box::new(e))
    }
}
