//! `storeflow journal copy`: moves an installation's SQLite journal into an empty PostgreSQL
//! journal, table by table in one transaction (all or nothing), keeping every id, so job keys,
//! cursors and links stay what they were. The dedupe keys are rebuilt from the events: the
//! newest event of each key opened its current window.

use std::error::Error;
use std::path::Path;

use bytes::BytesMut;
use rusqlite::types::Value;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Transaction;

use super::{conn, PgStore, PgUrl};
use crate::journal::{JournalError, SqliteStore};

/// How many rows of each table were copied, in copy order.
pub type CopySummary = Vec<(&'static str, u64)>;

/// (table, columns, whether ids are kept over the identity column). The column lists are the
/// same in both schemas.
const TABLES: &[(&str, &str, bool)] = &[
    ("events", "seq, id, source, shop, secret, kind, topic, canonical, received_at, order_id, dedupe_key, order_view, processed_at", true),
    ("event_bodies", "seq, payload", false),
    ("secret_counts", "source, shop, secret, events, last", false),
    ("traces", "event_id, trace, created_at", false),
    ("event_rules", "rule, seq", false),
    ("jobs", "id, event_id, rule, action_index, kind, params, status, attempts, next_at, last_error, created_at, updated_at", true),
    ("attempts", "job_id, number, started_at, finished_at, outcome, error", false),
    ("flags", "id, source, order_id, kind, note, event_id, rule, created_at, resolved_at", true),
    ("kv", "key, value, updated_at", false),
    ("quarantine", "event_id, reason, quarantined_at", false),
    ("timers", "id, event_id, rule, kind, action_index, source, order_id, status, due_at, created_at, finished_at, outcome, if_still, max_late, digest_max, events, jobs", true),
];

/// Copies the SQLite journal at `from` into the PostgreSQL journal at `to`, which must be
/// empty (its schema is created if needed).
pub fn from_sqlite(from: &Path, to: &PgUrl) -> Result<CopySummary, JournalError> {
    let source = SqliteStore::open_existing(from)?.into_connection();
    let target = PgStore::open(to)?;
    conn::block_on_here(async {
        let mut object = target.client().await?;
        let client: &mut tokio_postgres::Client = &mut object;
        refuse_non_empty(client, to).await?;
        let tx = client.transaction().await?;
        let mut summary = Vec::new();
        for (table, columns, keep_ids) in TABLES {
            let n = copy_table(&source, &tx, table, columns, *keep_ids).await?;
            summary.push((*table, n));
        }
        finish(&tx).await?;
        tx.commit().await?;
        Ok(summary)
    })?
}

async fn refuse_non_empty(client: &tokio_postgres::Client, to: &PgUrl) -> Result<(), JournalError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM jobs)
                 OR EXISTS (SELECT 1 FROM flags) OR EXISTS (SELECT 1 FROM kv)
                 OR EXISTS (SELECT 1 FROM timers)",
            &[],
        )
        .await?;
    match row.try_get::<_, bool>(0)? {
        false => Ok(()),
        true => {
            Err(to.open_error("the target journal is not empty: copy into a new, empty database"))
        }
    }
}

/// The SQL that reads `table` from SQLite (an event's body may still be in `events.payload`,
/// from before `event_bodies`).
fn select(table: &str, columns: &str) -> String {
    match table {
        "event_bodies" => "SELECT e.seq, COALESCE(b.payload, e.payload)
                           FROM events e LEFT JOIN event_bodies b ON b.seq = e.seq"
            .into(),
        _ => format!("SELECT {columns} FROM {table}"),
    }
}

fn insert(table: &str, columns: &str, keep_ids: bool) -> String {
    let values: Vec<String> = columns
        .split(", ")
        .enumerate()
        .map(|(i, column)| match column {
            "order_view" => format!("${}::text::jsonb", i + 1),
            _ => format!("${}", i + 1),
        })
        .collect();
    let overriding = if keep_ids {
        "OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    format!(
        "INSERT INTO {table} ({columns}) {overriding} VALUES ({})",
        values.join(", ")
    )
}

async fn copy_table(
    source: &rusqlite::Connection,
    tx: &Transaction<'_>,
    table: &str,
    columns: &str,
    keep_ids: bool,
) -> Result<u64, JournalError> {
    let insert = tx.prepare(&insert(table, columns, keep_ids)).await?;
    let mut stmt = source.prepare(&select(table, columns))?;
    let width = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let cells = (0..width)
            .map(|i| row.get::<_, Value>(i).map(Cell))
            .collect::<Result<Vec<_>, _>>()?;
        let params: Vec<&(dyn ToSql + Sync)> =
            cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        tx.execute(&insert, &params).await?;
        copied += 1;
    }
    Ok(copied)
}

/// Rebuilds the dedupe keys and moves the identity columns past the copied ids.
async fn finish(tx: &Transaction<'_>) -> Result<(), JournalError> {
    tx.batch_execute(
        "INSERT INTO event_dedupe (source, dedupe_key, event_id, received_at)
             SELECT DISTINCT ON (source, dedupe_key) source, dedupe_key, id, received_at
             FROM events ORDER BY source, dedupe_key, seq DESC;
         SELECT setval(pg_get_serial_sequence('events', 'seq'), COALESCE(MAX(seq), 0) + 1, false) FROM events;
         SELECT setval(pg_get_serial_sequence('jobs', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM jobs;
         SELECT setval(pg_get_serial_sequence('flags', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM flags;
         SELECT setval(pg_get_serial_sequence('timers', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM timers;",
    )
    .await?;
    Ok(())
}

/// A SQLite value as a PostgreSQL parameter of the column's type (the schemas agree: integers
/// are BIGINT, text TEXT, bodies BYTEA).
#[derive(Debug)]
struct Cell(Value);

impl ToSql for Cell {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match &self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => i.to_sql(ty, out),
            Value::Real(f) => f.to_sql(ty, out),
            Value::Text(s) if *ty == Type::BYTEA => s.as_bytes().to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Blob(b) if *ty == Type::TEXT => String::from_utf8_lossy(b).to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
