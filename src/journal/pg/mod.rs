//! The PostgreSQL journal (DESIGN.md §13): the same [`Store`] as the SQLite journal, every table
//! in one database that several replicas share.
//!
//! The trait is synchronous (the writer thread, blocking reader threads); each call runs its
//! queries on the journal's own runtime ([`conn::block_on`]) with a connection from the
//! process's pool. A lost connection is a [`JournalError::Db`] (intake answers 503); the pool
//! replaces closed connections, so the store recovers by itself when the database comes back.

mod admin;
mod append;
mod claims;
pub mod conn;
pub mod copy;
mod events;
mod fence;
mod flags;
mod jobs;
mod notify;
pub mod schema;
mod timers;

#[cfg(test)]
pub(crate) mod cluster;

use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use tokio_postgres::types::ToSql;

use super::query::{EventPage, EventQuery, FlagPage, FlagQuery, JobPage, JobQuery, LastFired};
use super::{
    Attempt, BackupSummary, Claimed, Event, EventStatus, EventSummary, Flag, FlagFilter, Job,
    JobStatus, JournalError, SecretCount, Store, Timer, TimerFilter, Unreadable, Write, Written,
};
use crate::model::event::{Incoming, Timestamp};
use crate::telemetry::metrics::JournalGauges;
use conn::block_on;
pub use conn::PgUrl;

/// The transaction of one batch: deadpool's, whose statements are prepared once per
/// connection ([`execute`]).
pub(super) type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// Runs `sql` with a statement prepared once per connection: the writes every batch repeats
/// then cost one round trip, not two (parse, then bind and execute).
pub(super) async fn execute(
    tx: &Tx<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, JournalError> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&statement, params).await?)
}

/// A handle on the PostgreSQL journal at one URL (cheap: the connections are pooled per URL).
pub struct PgStore {
    url: PgUrl,
    pool: Pool,
}

/// Runs `$body` (an expression awaiting on `$c`, a `&tokio_postgres::Client`) on the journal's
/// runtime with a pooled connection.
macro_rules! read {
    ($self:ident, |$c:ident| $body:expr) => {
        block_on(async {
            let object = $self.client().await?;
            let $c: &tokio_postgres::Client = &object;
            $body.await
        })?
    };
}

impl PgStore {
    /// Connects to the journal at `url` and brings its schema up to date (see [`schema`]).
    pub fn open(url: &PgUrl) -> Result<PgStore, JournalError> {
        let store = PgStore::connect(url)?;
        store.migrate()?;
        Ok(store)
    }

    /// A store on `url` without touching the schema.
    pub fn connect(url: &PgUrl) -> Result<PgStore, JournalError> {
        Ok(PgStore {
            url: url.clone(),
            pool: conn::pool(url)?,
        })
    }

    /// Applies the missing migrations; answers the (version, name) of those it applied.
    pub fn migrate(&self) -> Result<Vec<(i64, String)>, JournalError> {
        block_on(async {
            let mut object = self.pool.get().await.map_err(|e| self.url.open_error(e))?;
            let client: &mut tokio_postgres::Client = &mut object;
            schema::migrate(client)
                .await
                .map_err(|e| self.url.open_error(e))
        })?
    }

    /// The URL, without its password when shown.
    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    pub(super) async fn client(&self) -> Result<Object, JournalError> {
        self.pool
            .get()
            .await
            .map_err(|e| JournalError::Db(Box::new(e)))
    }

    async fn apply(tx: &Tx<'_>, write: &Write, window: Duration) -> Result<Written, JournalError> {
        Ok(match write {
            Write::Append(inc) => {
                let mut one = append::append_many(tx, &[inc], window).await?;
                Written::Appended(one.pop().ok_or(JournalError::Closed)?)
            }
            Write::Processed(p) => Written::Processed(jobs::processed(tx, p).await?),
            Write::Attempt(a) => Written::Changed(jobs::record_attempt(tx, a).await?),
            Write::Flag(f) => Written::Changed(flags::add(tx, f).await?),
            Write::Requeue(r) => Written::Changed(jobs::requeue(tx, r).await?),
            Write::Quarantine(u) => Written::Changed(flags::quarantine(tx, u).await?),
            Write::Release(r) => Written::Changed(flags::release(tx, r).await?),
            Write::State(key, value) => Written::Changed(jobs::set_state(tx, key, value).await?),
            Write::Prune { before } => Written::Changed(events::prune(tx, *before).await?),
            Write::Replan(r) => Written::Changed(jobs::replan(tx, r).await?),
            Write::Dismiss(ids) => Written::Changed(jobs::dismiss(tx, ids).await?),
            Write::ResolveFlag(id) => Written::Changed(flags::resolve(tx, *id).await?),
            Write::DeleteFlag(id) => Written::Changed(flags::delete(tx, *id).await?),
            Write::DeleteState(keys) => Written::Changed(jobs::delete_state(tx, keys).await?),
            Write::FireTimers(f) => Written::Changed(timers::fire(tx, f).await?),
            Write::CancelTimer(id) => Written::Changed(timers::cancel(tx, *id).await?),
            Write::DeleteStateUnchanged(keys) => {
                Written::Changed(timers::delete_state_unchanged(tx, keys).await?)
            }
            Write::Fenced(f, inner) => fence::apply(tx, f, inner, window).await?,
        })
    }
}

impl Store for PgStore {
    fn write_batch(
        &mut self,
        batch: &[Write],
        dedupe_window: Duration,
    ) -> Result<Vec<Written>, JournalError> {
        block_on(async {
            let mut object = self.client().await?;
            let tx = object.transaction().await?;
            let mut out = Vec::with_capacity(batch.len());
            let mut rest = batch;
            while let Some(write) = rest.first() {
                // A run of appends goes in pipelined rounds (see `append`).
                let run: Vec<&Incoming> = rest
                    .iter()
                    .map_while(|w| match w {
                        Write::Append(inc) => Some(&**inc),
                        _ => None,
                    })
                    .collect();
                if run.is_empty() {
                    out.push(Self::apply(&tx, write, dedupe_window).await?);
                    rest = &rest[1..];
                    continue;
                }
                rest = &rest[run.len()..];
                let appended = append::append_many(&tx, &run, dedupe_window).await?;
                out.extend(appended.into_iter().map(Written::Appended));
            }
            notify::after_batch(&tx, batch, &out).await?;
            tx.commit().await?;
            Ok(out)
        })?
    }

    fn recent_events(&self, limit: usize) -> Result<Vec<EventSummary>, JournalError> {
        read!(self, |c| events::recent(c, None, None, limit))
    }

    fn events_filtered(
        &self,
        status: Option<EventStatus>,
        shop: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError> {
        read!(self, |c| events::recent(c, status, shop, limit))
    }

    fn secret_counts(&self) -> Result<Vec<SecretCount>, JournalError> {
        read!(self, |c| events::secret_counts(c))
    }

    fn event(&self, id: &str) -> Result<Option<Event>, JournalError> {
        read!(self, |c| events::one(c, id))
    }

    fn unprocessed_events(
        &self,
        limit: usize,
    ) -> Result<Vec<Result<Event, Unreadable>>, JournalError> {
        read!(self, |c| events::unprocessed(c, limit))
    }

    fn events_with_status(
        &self,
        status: EventStatus,
        limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError> {
        read!(self, |c| events::recent(c, Some(status), None, limit))
    }

    fn state(&self, key: &str) -> Result<Option<serde_json::Value>, JournalError> {
        read!(self, |c| jobs::state(c, key))
    }

    fn trace(&self, event_id: &str) -> Result<Option<serde_json::Value>, JournalError> {
        read!(self, |c| jobs::trace(c, event_id))
    }

    fn job(&self, id: i64) -> Result<Option<Job>, JournalError> {
        read!(self, |c| jobs::one(c, id))
    }

    fn due_jobs(&self, now: Timestamp, limit: usize) -> Result<Vec<Job>, JournalError> {
        read!(self, |c| jobs::due(c, now, limit))
    }

    fn next_due(&self) -> Result<Option<Timestamp>, JournalError> {
        read!(self, |c| jobs::next_due(c))
    }

    fn attempts(&self, job_id: i64) -> Result<Vec<Attempt>, JournalError> {
        read!(self, |c| jobs::attempts(c, job_id))
    }

    fn flags(
        &self,
        kind: Option<&str>,
        filter: FlagFilter,
        limit: usize,
    ) -> Result<Vec<Flag>, JournalError> {
        read!(self, |c| flags::list(c, kind, filter, limit))
    }

    fn state_keys(&self, prefix: &str) -> Result<Vec<(String, Timestamp)>, JournalError> {
        read!(self, |c| jobs::state_keys(c, prefix))
    }

    fn existing_events(&self, ids: &[String]) -> Result<Vec<String>, JournalError> {
        read!(self, |c| events::existing(c, ids))
    }

    fn jobs(
        &self,
        event_id: Option<&str>,
        status: Option<JobStatus>,
        limit: usize,
    ) -> Result<Vec<Job>, JournalError> {
        read!(self, |c| jobs::list(c, event_id, status, limit))
    }

    fn gauges(&self, now: Timestamp) -> Result<JournalGauges, JournalError> {
        read!(self, |c| admin::gauges(c, now))
    }

    fn event_page(&self, q: &EventQuery) -> Result<EventPage, JournalError> {
        read!(self, |c| admin::events(c, q))
    }

    fn job_page(&self, q: &JobQuery) -> Result<JobPage, JournalError> {
        read!(self, |c| admin::jobs(c, q))
    }

    fn flag_page(&self, q: &FlagQuery) -> Result<FlagPage, JournalError> {
        read!(self, |c| admin::flags(c, q))
    }

    fn flag(&self, id: i64) -> Result<Option<Flag>, JournalError> {
        read!(self, |c| admin::flag_by_id(c, id))
    }

    fn last_fired(&self, rules: &[String]) -> Result<Vec<LastFired>, JournalError> {
        read!(self, |c| admin::last_fired(c, rules))
    }

    fn count_jobs(&self, status: JobStatus) -> Result<u64, JournalError> {
        read!(self, |c| admin::count_jobs(c, status))
    }

    /// A PostgreSQL journal is backed up with the database's own tools.
    fn backup_into(&self, dest: &std::path::Path) -> Result<BackupSummary, JournalError> {
        Err(JournalError::Backup {
            path: dest.display().to_string(),
            reason: format!(
                "the journal is in PostgreSQL ({}): back it up with pg_dump",
                self.url
            ),
        })
    }

    fn events_per_source(&self, since: Timestamp) -> Result<Vec<(String, u64)>, JournalError> {
        read!(self, |c| admin::events_per_source(c, since))
    }

    fn unprocessed_ids(&self, limit: usize) -> Result<Vec<String>, JournalError> {
        read!(self, |c| events::unprocessed_ids(c, limit))
    }

    fn timers(&self, filter: &TimerFilter) -> Result<Vec<Timer>, JournalError> {
        read!(self, |c| timers::list(c, filter))
    }

    fn due_timers(&self, now: Timestamp, limit: usize) -> Result<Vec<Timer>, JournalError> {
        read!(self, |c| timers::due(c, now, limit))
    }

    fn next_timer_due(&self) -> Result<Option<Timestamp>, JournalError> {
        read!(self, |c| timers::next_due(c))
    }

    fn timers_pending(&self) -> Result<u64, JournalError> {
        read!(self, |c| timers::pending_count(c))
    }

    fn order_events(
        &self,
        source: Option<&str>,
        order_id: &str,
        limit: usize,
    ) -> Result<Vec<EventSummary>, JournalError> {
        read!(self, |c| timers::order_events(c, source, order_id, limit))
    }

    fn order_timeline(
        &self,
        source: &str,
        order_id: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, Option<String>)>, JournalError> {
        read!(self, |c| timers::order_timeline(c, source, order_id, limit))
    }

    // Replicas (DESIGN.md §13): see `claims`, `fence` and `notify`.

    fn shared(&self) -> bool {
        true
    }

    fn claim_jobs(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed<Job>>, JournalError> {
        read!(self, |c| claims::claim_jobs(c, owner, now, lease, limit))
    }

    fn renew_jobs(
        &self,
        owner: &str,
        jobs: &[(i64, i64)],
        lease: Duration,
    ) -> Result<Vec<i64>, JournalError> {
        read!(self, |c| claims::renew_jobs(c, owner, jobs, lease))
    }

    fn release_jobs(&self, owner: &str, jobs: &[(i64, i64)]) -> Result<(), JournalError> {
        read!(self, |c| claims::release_jobs(c, owner, jobs))
    }

    fn claim_timers(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed<Timer>>, JournalError> {
        read!(self, |c| claims::claim_timers(c, owner, now, lease, limit))
    }

    fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<i64>, JournalError> {
        read!(self, |c| claims::hold_lease(c, name, owner, lease))
    }

    fn release_lease(&self, name: &str, owner: &str) -> Result<(), JournalError> {
        read!(self, |c| claims::release_lease(c, name, owner))
    }

    fn watch_changes(
        &self,
        wake: super::Wake,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<(), JournalError> {
        conn::spawn(notify::listen(self.url.clone(), wake, stop))
    }
}

/// PostgreSQL's errors stay inside `journal/`: above it they are a [`JournalError::Db`].
impl From<tokio_postgres::Error> for JournalError {
    fn from(e: tokio_postgres::Error) -> JournalError {
        JournalError::Db(Box::new(e))
    }
}
