//! [`Reader`]: the owned, clonable handle the rest of the code reads the journal through.
//!
//! A store's reads are blocking (SQLite); the handle runs them on a blocking thread so the async
//! threads that answer webhooks never wait on the disk. Callers see only the [`Store`] trait and
//! [`JournalError`]: nothing above `journal/` names the backend, so another backend (PostgreSQL)
//! plugs in here.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Event, Job, JournalError, Store};
use crate::model::event::Timestamp;

/// A connection of its own to the journal, shared by the clones of this handle (one read at a
/// time per handle: open another [`Reader`] for a worker that reads a lot).
#[derive(Clone)]
pub struct Reader {
    store: Arc<Mutex<Box<dyn Store>>>,
}

impl Reader {
    /// Wraps an opened store (see [`super::open_reader`] for the usual way to get one).
    pub fn new(store: impl Store) -> Reader {
        Reader {
            store: Arc::new(Mutex::new(Box::new(store))),
        }
    }

    /// A failed read must not leave the handle unusable: the connection holds no half-done
    /// state between reads, so a poisoned lock (a read that panicked) is taken over.
    fn lock(&self) -> MutexGuard<'_, Box<dyn Store>> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on this thread (for callers that are on a blocking thread already: the
    /// pipeline, the CLI).
    pub fn read_blocking<R>(&self, f: impl FnOnce(&dyn Store) -> R) -> R {
        let store = self.lock();
        f(store.as_ref())
    }

    /// Runs `f` on a blocking thread and awaits its answer.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.read_blocking(f))
            .await
            .map_err(|e| JournalError::ReadFailed(format!("the read task failed: {e}")))?
    }

    /// Runs `f` with the store writable, on this thread: the CLI (`retry`, `dismiss`,
    /// `resolve`) writes directly, without the daemon's group-commit writer.
    pub fn write_blocking<R>(&self, f: impl FnOnce(&mut dyn Store) -> R) -> R {
        let mut store = self.lock();
        f(store.as_mut())
    }

    /// One event, whole.
    pub async fn event(&self, id: &str) -> Result<Option<Event>, JournalError> {
        let id = id.to_string();
        self.read(move |s| s.event(&id)).await
    }

    /// A script state value.
    pub async fn state(&self, key: &str) -> Result<Option<serde_json::Value>, JournalError> {
        let key = key.to_string();
        self.read(move |s| s.state(&key)).await
    }

    /// Pending jobs due at `now`, oldest due first.
    pub async fn due_jobs(&self, now: Timestamp, limit: usize) -> Result<Vec<Job>, JournalError> {
        self.read(move |s| s.due_jobs(now, limit)).await
    }

    /// When the next pending job falls due, if any.
    pub async fn next_due(&self) -> Result<Option<Timestamp>, JournalError> {
        self.read(|s| s.next_due()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::SqliteStore;

    #[tokio::test]
    async fn regression_a_read_that_panics_leaves_the_handle_usable() {
        let dir = tempfile::tempdir().unwrap();
        let reader = Reader::new(SqliteStore::open(&dir.path().join("j.db")).unwrap());
        let failed = reader
            .read(|_| -> Result<(), JournalError> { panic!("a bug in a read") })
            .await;
        assert!(
            matches!(failed, Err(JournalError::ReadFailed(_))),
            "{failed:?}"
        );
        assert_eq!(reader.next_due().await.unwrap(), None);
        assert!(reader.event("nope").await.unwrap().is_none());
    }
}
