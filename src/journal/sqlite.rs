//! The embedded journal: one SQLite file in WAL mode under `data_dir`.
//!
//! `synchronous = FULL` makes every commit durable against power loss, not only against a
//! process crash; group commit in [`super::Journal`] pays for that fsync once per batch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Appended, EventSummary, JournalError, Store};
use crate::event::{Event, Incoming, OrderView, Timestamp};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
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
        conn.busy_timeout(Duration::from_secs(5))?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
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

    pub fn path(&self) -> &Path {
        &self.path
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
    fn append_batch(
        &mut self,
        batch: &[Incoming],
        dedupe_window: Duration,
    ) -> Result<Vec<Appended>, JournalError> {
        let tx = self.conn.transaction()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        {
            let mut seen = tx.prepare_cached(
                "SELECT id FROM events WHERE source = ?1 AND dedupe_key = ?2 AND received_at >= ?3
                 ORDER BY seq LIMIT 1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (id, source, kind, topic, canonical, received_at, order_id,
                                     dedupe_key, payload, order_view)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for inc in batch {
                let e = &inc.event;
                let since = e.received_at.millis() - dedupe_window.as_millis() as i64;
                let earlier: Option<String> = seen
                    .query_row(params![e.source, inc.dedupe_key, since], |r| r.get(0))
                    .optional()?;
                if let Some(event_id) = earlier {
                    outcomes.push(Appended {
                        event_id,
                        duplicate: true,
                    });
                    continue;
                }
                let order_view = match &e.order {
                    Some(o) => {
                        Some(
                            serde_json::to_string(o).map_err(|err| JournalError::Corrupt {
                                id: e.id.clone(),
                                reason: err.to_string(),
                            })?,
                        )
                    }
                    None => None,
                };
                insert.execute(params![
                    e.id,
                    e.source,
                    e.kind,
                    e.topic,
                    e.canonical,
                    e.received_at.millis(),
                    e.order.as_ref().map(|o| o.id.as_str()),
                    inc.dedupe_key,
                    &inc.body[..],
                    order_view,
                ])?;
                outcomes.push(Appended {
                    event_id: e.id.clone(),
                    duplicate: false,
                });
            }
        }
        tx.commit()?;
        Ok(outcomes)
    }

    fn recent_events(&self, limit: usize) -> Result<Vec<EventSummary>, JournalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, source, kind, topic, canonical, received_at, order_id
             FROM events ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(EventSummary {
                id: r.get(0)?,
                source: r.get(1)?,
                kind: r.get(2)?,
                topic: r.get(3)?,
                canonical: r.get(4)?,
                received_at: Timestamp(r.get(5)?),
                order_id: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn event(&self, id: &str) -> Result<Option<Event>, JournalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, source, kind, topic, canonical, received_at, payload, order_view
             FROM events WHERE id = ?1",
        )?;
        let row = stmt
            .query_row([id], |r| {
                Ok((
                    Event {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        kind: r.get(2)?,
                        topic: r.get(3)?,
                        canonical: r.get(4)?,
                        received_at: Timestamp(r.get(5)?),
                        payload: serde_json::Value::Null,
                        order: None,
                    },
                    r.get::<_, Vec<u8>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .optional()?;
        let Some((mut event, payload, order_view)) = row else {
            return Ok(None);
        };
        let corrupt = |reason: String| JournalError::Corrupt {
            id: id.to_string(),
            reason,
        };
        event.payload = serde_json::from_slice(&payload).map_err(|e| corrupt(e.to_string()))?;
        event.order = order_view
            .map(|o| serde_json::from_str::<OrderView>(&o))
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;

    fn incoming(key: &str, at: i64) -> Incoming {
        let body = bytes::Bytes::from_static(br#"{"event":"order:paid","data":{}}"#);
        Incoming {
            event: Event {
                id: Event::new_id(),
                source: "sellix".into(),
                kind: "order:paid".into(),
                topic: "sellix/order:paid".into(),
                canonical: Some("order.paid".into()),
                received_at: Timestamp(at),
                payload: serde_json::from_slice(&body).unwrap(),
                order: Some(OrderView {
                    id: "inv-1".into(),
                    ..Default::default()
                }),
            },
            dedupe_key: key.into(),
            body,
        }
    }

    #[test]
    fn appends_dedupes_within_window_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("j.db")).unwrap();
        let window = Duration::from_secs(60);
        let a = incoming("k1", 1_000_000);
        let b = incoming("k1", 1_000_000 + 59_000); // same delivery, inside the window
        let c = incoming("k1", 1_000_000 + 120_000); // outside the window: a new event
        let out = store
            .append_batch(&[a.clone(), b, c.clone()], window)
            .unwrap();
        assert_eq!(
            out[0],
            Appended {
                event_id: a.event.id.clone(),
                duplicate: false
            }
        );
        assert_eq!(
            out[1],
            Appended {
                event_id: a.event.id.clone(),
                duplicate: true
            }
        );
        assert_eq!(
            out[2],
            Appended {
                event_id: c.event.id.clone(),
                duplicate: false
            }
        );

        let recent = store.recent_events(10).unwrap();
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].id, c.event.id, "newest first");
        assert_eq!(recent[0].order_id.as_deref(), Some("inv-1"));
        assert_eq!(store.event(&a.event.id).unwrap().unwrap(), a.event);
        assert_eq!(store.event("evt_missing").unwrap(), None);
    }
}
