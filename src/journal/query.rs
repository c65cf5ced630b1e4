//! What the admin API and the console ask the journal for: filtered lists, newest first, one
//! page at a time with a keyset cursor (`before`), never an OFFSET, so a deep page costs what
//! the first one costs. Each filter is answered from an index (see the admin migration in
//! [`super::sqlite`]).

use serde::Serialize;

use super::{EventSummary, Flag, Job, JobStatus};
use crate::model::event::Timestamp;

/// The most items one page holds, whatever `limit` asks.
pub const MAX_PAGE: usize = 500;

/// One page of a list: `next` is the cursor of the following (older) page, `None` at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

/// How many rows a page of `limit` shows: at least one, at most [`MAX_PAGE`]. Backends read one
/// row more, to know whether another page follows.
pub(crate) fn page_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}

impl<T> Page<T> {
    /// The page of the rows read (up to `limit + 1`, each with its cursor), the cursor of its
    /// last row kept when another page follows.
    pub(crate) fn from_rows(mut rows: Vec<(i64, T)>, limit: usize) -> Page<T> {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match more {
            true => rows.last().map(|(cursor, _)| *cursor),
            false => None,
        };
        Page {
            items: rows.into_iter().map(|(_, item)| item).collect(),
            next,
        }
    }
}

/// Which events a page shows. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub source: Option<String>,
    pub topic: Option<String>,
    pub canonical: Option<String>,
    /// The order id, exactly.
    pub order: Option<String>,
    pub customer: Option<CustomerQuery>,
    /// Only events on which this rule fired (matched, and its script did not fail).
    pub rule: Option<String>,
    pub outcome: Option<EventOutcome>,
    /// Only events older than this cursor (a [`Page::next`]).
    pub before: Option<i64>,
    pub limit: usize,
}

/// A search for a customer: an email is matched whole, a name by its start (both ignoring
/// ASCII case), so both are answered from an index.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerQuery {
    Email(String),
    NamePrefix(String),
}

impl CustomerQuery {
    /// `q` as the API and console take it: with an `@` it is an email, otherwise the start of
    /// a name.
    pub fn parse(q: &str) -> Option<CustomerQuery> {
        let q = q.trim();
        match q {
            "" => None,
            q if q.contains('@') => Some(CustomerQuery::Email(q.to_ascii_lowercase())),
            q => Some(CustomerQuery::NamePrefix(q.to_ascii_lowercase())),
        }
    }
}

/// Where an event stands, as a list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    Processed,
    Unprocessed,
    Quarantined,
    /// At least one of its jobs is a dead letter.
    Dead,
}

impl EventOutcome {
    pub const ALL: [EventOutcome; 4] = [
        EventOutcome::Processed,
        EventOutcome::Unprocessed,
        EventOutcome::Quarantined,
        EventOutcome::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Processed => "processed",
            EventOutcome::Unprocessed => "unprocessed",
            EventOutcome::Quarantined => "quarantined",
            EventOutcome::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<EventOutcome> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One event in a list: its summary and who the order is for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventItem {
    #[serde(flatten)]
    pub summary: EventSummary,
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
}

/// Which jobs a page shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobQuery {
    pub status: Option<JobStatus>,
    pub event: Option<String>,
    pub before: Option<i64>,
    pub limit: usize,
}

/// Which flags a page shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagQuery {
    /// Only flags nobody resolved yet.
    pub open: bool,
    pub before: Option<i64>,
    pub limit: usize,
}

/// When a rule last fired, if it ever did (within the journal's retention).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastFired {
    pub rule: String,
    pub event_id: String,
    pub received_at: Timestamp,
}

/// The page types, named for the trait.
pub type EventPage = Page<EventItem>;
pub type JobPage = Page<Job>;
pub type FlagPage = Page<Flag>;
