//! The admin API's lists on PostgreSQL: keyset pages (newest first, `before` a cursor), each
//! filter answered from an index of the initial migration, and the `/metrics` gauges.

use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::Tx as Transaction;

use super::events::{summary, SUMMARY_COLUMNS};
use super::flags::{flag, FLAG_COLUMNS};
use super::jobs::{job, JOB_COLUMNS};
use crate::journal::query::{
    page_limit, CustomerQuery, EventItem, EventOutcome, EventPage, EventQuery, FlagPage, FlagQuery,
    JobPage, JobQuery, LastFired, Page,
};
use crate::journal::{Flag, JobStatus, JournalError};
use crate::model::event::Timestamp;
use crate::telemetry::metrics::JournalGauges;

/// The lower-cased customer fields, spelled exactly as in the indexes so the planner uses them.
const EMAIL: &str = "lower(e.order_view #>> '{customer,email}')";
const NAME: &str = "lower(e.order_view #>> '{customer,name}')";

type Param = Box<dyn ToSql + Sync + Send>;

/// A WHERE clause under construction, with its parameters in order.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Filter {
    /// Adds `clause`, whose one `?` is the next parameter.
    fn add(&mut self, clause: &str, value: Param) {
        self.params.push(value);
        self.clauses
            .push(clause.replace('?', &format!("${}", self.params.len())));
    }

    fn sql(&self) -> String {
        match self.clauses.is_empty() {
            true => "TRUE".to_string(),
            false => self.clauses.join(" AND "),
        }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

pub(super) async fn events(
    c: &impl GenericClient,
    q: &EventQuery,
) -> Result<EventPage, JournalError> {
    let limit = page_limit(q.limit);
    let (mut f, from, seq) = event_filter(q);
    f.params.push(Box::new(limit as i64 + 1));
    let sql = format!(
        "SELECT e.seq, {SUMMARY_COLUMNS},
                e.order_view #>> '{{customer,email}}', e.order_view #>> '{{customer,name}}'
         FROM events e LEFT JOIN quarantine q ON q.event_id = e.id
         WHERE e.seq IN (SELECT {seq} FROM {from} WHERE {} ORDER BY {seq} DESC LIMIT ${})
         ORDER BY e.seq DESC",
        f.sql(),
        f.params.len()
    );
    let rows = c.query(&sql, &f.refs()).await?;
    let items = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, i64>(0)?, event_item(r)?)))
        .collect::<Result<Vec<_>, JournalError>>()?;
    Ok(Page::from_rows(items, limit))
}

fn event_filter(q: &EventQuery) -> (Filter, &'static str, &'static str) {
    let mut f = Filter::default();
    let (from, seq) = match &q.rule {
        Some(rule) => {
            f.add("r.rule = ?", Box::new(rule.clone()));
            ("event_rules r JOIN events e ON e.seq = r.seq", "r.seq")
        }
        None => ("events e", "e.seq"),
    };
    if let Some(before) = q.before {
        f.add(&format!("{seq} < ?"), Box::new(before));
    }
    for (column, value) in [
        ("e.source", &q.source),
        ("e.topic", &q.topic),
        ("e.canonical", &q.canonical),
        ("e.order_id", &q.order),
    ] {
        if let Some(v) = value {
            f.add(&format!("{column} = ?"), Box::new(v.clone()));
        }
    }
    match &q.customer {
        Some(CustomerQuery::Email(email)) => {
            f.add(&format!("{EMAIL} = ?"), Box::new(email.clone()))
        }
        Some(CustomerQuery::NamePrefix(prefix)) => {
            f.add(&format!("{NAME} LIKE ?"), Box::new(like_prefix(prefix)))
        }
        None => {}
    }
    if let Some(outcome) = q.outcome {
        f.clauses.push(outcome_clause(outcome).to_string());
    }
    (f, from, seq)
}

/// `prefix` as a LIKE pattern matching the strings that start with it.
fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
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

fn event_item(r: &Row) -> Result<EventItem, JournalError> {
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(EventItem {
        summary: summary(r, 1)?,
        customer_email: nonempty(r.try_get(11)?),
        customer_name: nonempty(r.try_get(12)?),
    })
}

pub(super) async fn jobs(c: &impl GenericClient, q: &JobQuery) -> Result<JobPage, JournalError> {
    let limit = page_limit(q.limit);
    let mut f = Filter::default();
    if let Some(status) = q.status {
        f.add("status = ?", Box::new(status.as_str().to_string()));
    }
    if let Some(event) = &q.event {
        f.add("event_id = ?", Box::new(event.clone()));
    }
    if let Some(before) = q.before {
        f.add("id < ?", Box::new(before));
    }
    f.params.push(Box::new(limit as i64 + 1));
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE {} ORDER BY id DESC LIMIT ${}",
        f.sql(),
        f.params.len()
    );
    let rows = c.query(&sql, &f.refs()).await?;
    let items = rows
        .iter()
        .map(|r| job(r).map(|j| (j.id, j)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, limit))
}

pub(super) async fn flags(c: &impl GenericClient, q: &FlagQuery) -> Result<FlagPage, JournalError> {
    let limit = page_limit(q.limit);
    let sql = format!(
        "SELECT {FLAG_COLUMNS} FROM flags
         WHERE ($1::bigint IS NULL OR id < $1) AND (NOT $2 OR resolved_at IS NULL)
         ORDER BY id DESC LIMIT $3"
    );
    let rows = c
        .query(&sql, &[&q.before, &q.open, &(limit as i64 + 1)])
        .await?;
    let items = rows
        .iter()
        .map(|r| flag(r).map(|f| (f.id, f)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(items, limit))
}

pub(super) async fn flag_by_id(
    c: &impl GenericClient,
    id: i64,
) -> Result<Option<Flag>, JournalError> {
    let sql = format!("SELECT {FLAG_COLUMNS} FROM flags WHERE id = $1");
    c.query_opt(&sql, &[&id])
        .await?
        .as_ref()
        .map(flag)
        .transpose()
}

/// When each of `rules` last fired: one index lookup per rule.
pub(super) async fn last_fired(
    c: &impl GenericClient,
    rules: &[String],
) -> Result<Vec<LastFired>, JournalError> {
    let mut out = Vec::new();
    for rule in rules {
        let found = c
            .query_opt(
                "SELECT e.id, e.received_at FROM events e
                 WHERE e.seq = (SELECT MAX(seq) FROM event_rules WHERE rule = $1)",
                &[rule],
            )
            .await?;
        if let Some(r) = found {
            out.push(LastFired {
                rule: rule.clone(),
                event_id: r.try_get(0)?,
                received_at: Timestamp(r.try_get(1)?),
            });
        }
    }
    Ok(out)
}

pub(super) async fn count_jobs(
    c: &impl GenericClient,
    status: JobStatus,
) -> Result<u64, JournalError> {
    let row = c
        .query_one(
            "SELECT COUNT(*) FROM jobs WHERE status = $1",
            &[&status.as_str()],
        )
        .await?;
    Ok(row.try_get::<_, i64>(0)?.max(0) as u64)
}

/// Records the rules that fired on a processed event (the `rule` filter's index).
pub(super) async fn record_fired(
    tx: &Transaction<'_>,
    event_id: &str,
    fired: &[String],
) -> Result<(), JournalError> {
    if fired.is_empty() {
        return Ok(());
    }
    super::execute(
        tx,
        "INSERT INTO event_rules (rule, seq)
         SELECT r, e.seq FROM events e, unnest($2::text[]) r WHERE e.id = $1
         ON CONFLICT DO NOTHING",
        &[&event_id, &fired],
    )
    .await?;
    Ok(())
}

pub(super) async fn gauges(
    c: &impl GenericClient,
    now: Timestamp,
) -> Result<JournalGauges, JournalError> {
    let rows = c
        .query("SELECT status, COUNT(*) FROM jobs GROUP BY status", &[])
        .await?;
    let counted = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<_, String>(0)?,
                r.try_get::<_, i64>(1)?.max(0) as u64,
            ))
        })
        .collect::<Result<Vec<_>, JournalError>>()?;
    let jobs = JobStatus::each_counted(&counted);
    let row = c
        .query_one(
            "SELECT (SELECT COUNT(*) FROM flags WHERE resolved_at IS NULL),
                    (SELECT received_at FROM events WHERE processed_at IS NULL
                     ORDER BY seq LIMIT 1),
                    pg_database_size(current_database())",
            &[],
        )
        .await?;
    let flags_open: i64 = row.try_get(0)?;
    let oldest: Option<i64> = row.try_get(1)?;
    let bytes: i64 = row.try_get(2)?;
    let lag_ms = oldest.map_or(0, |t| (now.millis() - t).max(0));
    Ok(JournalGauges {
        jobs,
        flags_open: flags_open.max(0) as u64,
        pipeline_lag: Duration::from_millis(lag_ms as u64),
        bytes: bytes.max(0) as u64,
        timers_pending: super::timers::pending_count(c).await?,
    })
}

pub(super) async fn events_per_source(
    c: &impl GenericClient,
    since: Timestamp,
) -> Result<Vec<(String, u64)>, JournalError> {
    let rows = c
        .query(
            "SELECT source, COUNT(*) FROM events WHERE received_at >= $1
             GROUP BY source ORDER BY source",
            &[&since.millis()],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.max(0) as u64)))
        .collect()
}
