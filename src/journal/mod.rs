//! The durable journal: storage only. It knows [`Event`]s and nothing above them.
//!
//! [`Store`] is the storage interface (SQLite by default, see [`sqlite`]); [`Journal`] puts one
//! writer thread in front of it that batches concurrent appends into one transaction (group
//! commit), so durability costs one fsync per batch rather than one per webhook.

pub mod sqlite;
mod writer;

use std::time::Duration;

use serde::Serialize;

use crate::event::{Event, Incoming, Timestamp};
pub use sqlite::SqliteStore;
pub use writer::Journal;

/// What happened to one appended delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appended {
    pub event_id: String,
    /// True when an earlier delivery with the same dedupe key is inside the window: no new event.
    pub duplicate: bool,
}

/// One line of `storeflow events`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventSummary {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub topic: String,
    pub canonical: Option<String>,
    pub received_at: Timestamp,
    pub order_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("journal at {path} cannot be opened: {reason}")]
    Open { path: String, reason: String },
    #[error("journal commit failed: {0}")]
    CommitFailed(String),
    #[error("journal writer has stopped")]
    Closed,
    #[error("journal holds an unreadable record {id}: {reason}")]
    Corrupt { id: String, reason: String },
}

/// Storage for events (and, as the system grows, traces, jobs, flags and state).
pub trait Store: Send + 'static {
    /// Appends a batch in one transaction. A delivery whose dedupe key was seen (same source)
    /// within `dedupe_window` is answered with the earlier event's id and `duplicate: true`.
    fn append_batch(
        &mut self,
        batch: &[Incoming],
        dedupe_window: Duration,
    ) -> Result<Vec<Appended>, JournalError>;

    /// The newest events first.
    fn recent_events(&self, limit: usize) -> Result<Vec<EventSummary>, JournalError>;

    /// One event, whole.
    fn event(&self, id: &str) -> Result<Option<Event>, JournalError>;
}
