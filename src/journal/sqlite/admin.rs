//! The admin API's lists: keyset pages (newest first, `before` a cursor, no OFFSET), each filter
//! answered from an index of the admin migration:
//!
//! | filter | index |
//! |---|---|
//! | newest first, `before` | `events.seq` (the primary key) |
//! | `source`, `topic`, `canonical`, `order` | `events_source`, `events_topic`, `events_canonical`, `events_order` (column, seq) |
//! | customer email (whole) / name (prefix) | `events_email`, `events_name`: lower-cased `order_view` fields, seq |
//! | `rule` fired | the `event_rules` table (rule, seq), filled when an event is processed |
//! | unprocessed / quarantined / dead | `events_unprocessed`, the `quarantine` table, `jobs_due` (status) |

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};

use super::events::{summary, SUMMARY_COLUMNS};
use super::jobs::{job, JOB_COLUMNS};
use crate::journal::query::{
    page_limit, CustomerQuery, EventItem, EventOutcome, EventPage, EventQuery, FlagPage, FlagQuery,
    JobPage, JobQuery, LastFired, Page,
};
use crate::journal::{Flag, JobStatus, JournalError};
use crate::model::event::Timestamp;

/// The lower-cased customer fields, spelled exactly as in the indexes so the planner uses them.
const EMAIL: &str = "lower(json_extract(e.order_view, '$.customer.email'))";
const NAME: &str = "lower(json_extract(e.order_view, '$.customer.name'))";

/// A WHERE clause under construction, with its parameters in order.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    params: Vec<Value>,
}

impl Filter {
    fn add(&mut self, clause: &str, value: impl Into<Value>) {
        self.params.push(value.into());
        self.clauses
            .push(clause.replace('?', &format!("?{}", self.params.len())));
    }

    fn add_plain(&mut self, clause: &str) {
        self.clauses.push(clause.to_string());
    }

    fn sql(&self) -> String {
        match self.clauses.is_empty() {
            true => "1".to_string(),
            false => self.clauses.join(" AND "),
        }
    }
}

pub(super) fn events(conn: &Connection, q: &EventQuery) -> Result<EventPage, JournalError> {
    let limit = page_limit(q.limit);
    let (mut f, from, seq) = event_filter(q);
    f.params.push(Value::Integer(limit as i64 + 1));
    // Two steps: the page's seqs first (from an index alone where the filters allow: a name
    // prefix sorts index entries, not rows), then those rows whole.
    let sql = format!(
        "SELECT e.seq, {SUMMARY_COLUMNS},
                json_extract(e.order_view, '$.customer.email'),
                json_extract(e.order_view, '$.customer.name')
         FROM events e LEFT JOIN quarantine q ON q.event_id = e.id
         WHERE e.seq IN (SELECT {seq} FROM {from} WHERE {} ORDER BY {seq} DESC LIMIT ?{})
         ORDER BY e.seq DESC",
        f.sql(),
        f.params.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(&f.params), |r| {
        Ok((r.get::<_, i64>(0)?, event_item(r)?))
    })?;
    Ok(Page::from_rows(rows.collect::<Result<_, _>>()?, limit))
}

/// The WHERE clause of `q`, the table(s) to walk and the seq column that orders them.
fn event_filter(q: &EventQuery) -> (Filter, &'static str, &'static str) {
    let mut f = Filter::default();
    // With a rule, the small `event_rules` index drives the walk (newest first).
    let (from, seq) = match &q.rule {
        Some(rule) => {
            f.add("r.rule = ?", rule.clone());
            ("event_rules r JOIN events e ON e.seq = r.seq", "r.seq")
        }
        None => ("events e", "e.seq"),
    };
    if let Some(before) = q.before {
        f.add(&format!("{seq} < ?"), before);
    }
    for (column, value) in [
        ("e.source", &q.source),
        ("e.topic", &q.topic),
        ("e.canonical", &q.canonical),
        ("e.order_id", &q.order),
    ] {
        if let Some(v) = value {
            f.add(&format!("{column} = ?"), v.clone());
        }
    }
    match &q.customer {
        Some(CustomerQuery::Email(email)) => f.add(&format!("{EMAIL} = ?"), email.clone()),
        Some(CustomerQuery::NamePrefix(prefix)) => {
            f.add(&format!("{NAME} >= ?"), prefix.clone());
            f.add(&format!("{NAME} < ?"), prefix_end(prefix));
        }
        None => {}
    }
    if let Some(outcome) = q.outcome {
        f.add_plain(outcome_clause(outcome));
    }
    (f, from, seq)
}

fn outcome_clause(outcome: EventOutcome) -> &'static str {
    match outcome {
        EventOutcome::Unprocessed => "e.processed_at IS NULL",
        EventOutcome::Processed => {
            "e.processed_at IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.event_id = e.id)"
        }
        EventOutcome::Quarantined => "e.id IN (SELECT event_id FROM quarantine)",
        EventOutcome::Dead => "e.id IN (SELECT event_id FROM jobs WHERE status = 'dead')",
    }
}

/// The smallest string greater than every string starting with `prefix` (for a range scan).
fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_string();
    end.push(char::MAX);
    end
}

fn event_item(r: &Row<'_>) -> rusqlite::Result<EventItem> {
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(EventItem {
        summary: summary(r, 1)?,
        customer_email: nonempty(r.get(11)?),
        customer_name: nonempty(r.get(12)?),
    })
}

pub(super) fn jobs(conn: &Connection, q: &JobQuery) -> Result<JobPage, JournalError> {
    let limit = page_limit(q.limit);
    let mut f = Filter::default();
    if let Some(status) = q.status {
        f.add("status = ?", status.as_str().to_string());
    }
    if let Some(event) = &q.event {
        f.add("event_id = ?", event.clone());
    }
    if let Some(before) = q.before {
        f.add("id < ?", before);
    }
    f.params.push(Value::Integer(limit as i64 + 1));
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE {} ORDER BY id DESC LIMIT ?{}",
        f.sql(),
        f.params.len()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(&f.params), |r| {
        let j = job(r)?;
        Ok((j.id, j))
    })?;
    Ok(Page::from_rows(rows.collect::<Result<_, _>>()?, limit))
}

pub(super) fn flags(conn: &Connection, q: &FlagQuery) -> Result<FlagPage, JournalError> {
    let limit = page_limit(q.limit);
    let mut stmt = conn.prepare_cached(
        "SELECT id, source, order_id, kind, note, event_id, rule, created_at, resolved_at
         FROM flags WHERE (?1 IS NULL OR id < ?1) AND (NOT ?2 OR resolved_at IS NULL)
         ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(rusqlite::params![q.before, q.open, limit as i64 + 1], |r| {
        let f = flag(r)?;
        Ok((f.id, f))
    })?;
    Ok(Page::from_rows(rows.collect::<Result<_, _>>()?, limit))
}

pub(super) fn flag_by_id(conn: &Connection, id: i64) -> Result<Option<Flag>, JournalError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, source, order_id, kind, note, event_id, rule, created_at, resolved_at
             FROM flags WHERE id = ?1",
        )?
        .query_row([id], flag)
        .optional()?)
}

fn flag(r: &Row<'_>) -> rusqlite::Result<Flag> {
    Ok(Flag {
        id: r.get(0)?,
        source: r.get(1)?,
        order_id: r.get(2)?,
        kind: r.get(3)?,
        note: r.get(4)?,
        event_id: r.get(5)?,
        rule: r.get(6)?,
        created_at: Timestamp(r.get(7)?),
        resolved_at: r.get::<_, Option<i64>>(8)?.map(Timestamp),
    })
}

/// When each of `rules` last fired: one index lookup per rule.
pub(super) fn last_fired(
    conn: &Connection,
    rules: &[String],
) -> Result<Vec<LastFired>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.received_at FROM events e
         WHERE e.seq = (SELECT MAX(seq) FROM event_rules WHERE rule = ?1)",
    )?;
    let mut out = Vec::new();
    for rule in rules {
        let found = stmt
            .query_row([rule], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?;
        if let Some((event_id, at)) = found {
            out.push(LastFired {
                rule: rule.clone(),
                event_id,
                received_at: Timestamp(at),
            });
        }
    }
    Ok(out)
}

/// How many jobs are in `status` (the dry run of a bulk retry).
pub(super) fn count_jobs(conn: &Connection, status: JobStatus) -> Result<u64, JournalError> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM jobs WHERE status = ?1")?
        .query_row([status.as_str()], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Records the rules that fired on a processed event (the `rule` filter's index).
pub(super) fn record_fired(
    tx: &Connection,
    event_id: &str,
    fired: &[String],
) -> Result<(), JournalError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO event_rules (rule, seq) SELECT ?2, seq FROM events WHERE id = ?1",
    )?;
    for rule in fired {
        insert.execute([event_id, rule])?;
    }
    Ok(())
}

/// The admin migration: an index per list filter, and the rules that fired per event
/// (backfilled from the stored traces).
pub(super) const MIGRATION: &str = r#"
    CREATE INDEX events_source ON events (source, seq);
    CREATE INDEX events_topic ON events (topic, seq);
    CREATE INDEX events_canonical ON events (canonical, seq);
    CREATE INDEX events_order ON events (order_id, seq);
    CREATE INDEX events_email ON events (lower(json_extract(order_view, '$.customer.email')), seq);
    CREATE INDEX events_name ON events (lower(json_extract(order_view, '$.customer.name')), seq);
    CREATE INDEX jobs_status_id ON jobs (status, id);
    CREATE TABLE event_rules (
        rule TEXT NOT NULL,
        seq  INTEGER NOT NULL,
        PRIMARY KEY (rule, seq)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO event_rules (rule, seq)
        SELECT json_extract(r.value, '$.rule'), e.seq
        FROM traces t JOIN events e ON e.id = t.event_id, json_each(t.trace, '$.rules') r
        WHERE json_valid(t.trace) AND json_extract(r.value, '$.matched') = 1
          AND json_extract(r.value, '$.script_error') IS NULL
          AND json_extract(r.value, '$.rule') IS NOT NULL;
"#;
