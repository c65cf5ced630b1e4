//! The PostgreSQL schema as versioned migrations, recorded in `schema_migrations`. Start-up (and
//! `storeflow migrate`) applies the missing ones in one transaction under an advisory lock, so
//! two replicas starting together neither race nor apply one twice.
//!
//! Times are milliseconds since the epoch (`BIGINT`), as in the SQLite journal, except the
//! lease columns (`TIMESTAMPTZ`), which the database itself compares with `now()`.

use tokio_postgres::Client;

use crate::journal::JournalError;

/// The advisory lock key the migrations run under ("storeflow" in ASCII, folded to 63 bits).
const MIGRATION_LOCK: i64 = 0x73_746f_7265_666c;

/// (version, name, SQL), in order. Append only: an applied migration is never edited.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial schema", INITIAL),
    (2, "attempts: the replica and fence", ATTEMPT_REPLICA),
];

/// Which replica made each attempt, under which claim (replicas, DESIGN.md §13): what shows
/// that a job taken over was completed by the replica that held it.
const ATTEMPT_REPLICA: &str = r#"
ALTER TABLE attempts ADD COLUMN replica TEXT, ADD COLUMN fence BIGINT;
"#;

const INITIAL: &str = r#"
CREATE TABLE events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    source       TEXT NOT NULL,
    shop         TEXT NOT NULL DEFAULT 'default',
    secret       TEXT,
    kind         TEXT NOT NULL,
    topic        TEXT NOT NULL,
    canonical    TEXT,
    received_at  BIGINT NOT NULL,
    order_id     TEXT,
    dedupe_key   TEXT NOT NULL,
    order_view   JSONB,
    processed_at BIGINT
);
CREATE INDEX events_unprocessed ON events (seq) WHERE processed_at IS NULL;
CREATE INDEX events_shop ON events (shop, seq);
CREATE INDEX events_source ON events (source, seq);
CREATE INDEX events_topic ON events (topic, seq);
CREATE INDEX events_canonical ON events (canonical, seq);
CREATE INDEX events_order ON events (order_id, seq);
CREATE INDEX events_email ON events ((lower(order_view #>> '{customer,email}')), seq);
CREATE INDEX events_name ON events ((lower(order_view #>> '{customer,name}')) text_pattern_ops, seq);
CREATE INDEX events_received ON events (received_at, source);

-- Dedupe through this table's primary key: one row per (source, key) naming the event that
-- opened the current window. Replicas appending the same delivery at once meet on this key.
CREATE TABLE event_dedupe (
    source      TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (source, dedupe_key)
);
CREATE INDEX event_dedupe_event ON event_dedupe (event_id);

CREATE TABLE event_bodies (
    seq     BIGINT PRIMARY KEY,
    payload BYTEA NOT NULL
);

CREATE TABLE secret_counts (
    source TEXT NOT NULL,
    shop   TEXT NOT NULL,
    secret TEXT NOT NULL,
    events BIGINT NOT NULL,
    last   BIGINT NOT NULL,
    PRIMARY KEY (source, shop, secret)
);

CREATE TABLE traces (
    event_id   TEXT PRIMARY KEY,
    trace      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE event_rules (
    rule TEXT NOT NULL,
    seq  BIGINT NOT NULL,
    PRIMARY KEY (rule, seq)
);

CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     TEXT NOT NULL,
    rule         TEXT NOT NULL,
    action_index BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    params       TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    lease_owner  TEXT NULL,
    lease_until  TIMESTAMPTZ NULL,
    fence        BIGINT NOT NULL DEFAULT 0,
    UNIQUE (event_id, rule, action_index)
);
CREATE INDEX jobs_due ON jobs (status, next_at);
CREATE INDEX jobs_status_id ON jobs (status, id);
CREATE INDEX jobs_event ON jobs (event_id);

CREATE TABLE attempts (
    job_id      BIGINT NOT NULL,
    number      BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT,
    PRIMARY KEY (job_id, number)
);

CREATE TABLE flags (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    note        TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    rule        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    resolved_at BIGINT,
    UNIQUE (source, order_id, kind, rule)
);
CREATE INDEX flags_event ON flags (event_id);

CREATE TABLE kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE quarantine (
    event_id       TEXT PRIMARY KEY,
    reason         TEXT NOT NULL,
    quarantined_at BIGINT NOT NULL
);

CREATE TABLE timers (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     TEXT NOT NULL,
    rule         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    action_index BIGINT NOT NULL,
    source       TEXT NOT NULL,
    order_id     TEXT,
    status       TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT,
    outcome      TEXT,
    if_still     TEXT,
    max_late     BIGINT,
    digest_max   BIGINT,
    events       TEXT NOT NULL DEFAULT '[]',
    jobs         TEXT NOT NULL DEFAULT '[]',
    lease_owner  TEXT NULL,
    lease_until  TIMESTAMPTZ NULL,
    fence        BIGINT NOT NULL DEFAULT 0,
    UNIQUE (event_id, rule, kind, action_index)
);
CREATE INDEX timers_due ON timers (due_at, id) WHERE status = 'pending';
CREATE INDEX timers_order ON timers (source, order_id) WHERE status = 'pending';
CREATE INDEX timers_digest ON timers (rule) WHERE status = 'pending' AND kind = 'digest';

-- Order leases and once-per-cluster duties of the replicas (DESIGN.md §13).
CREATE TABLE leases (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until TIMESTAMPTZ NOT NULL,
    fence BIGINT NOT NULL
);
"#;

/// Applies the migrations `client`'s database lacks, in one transaction under the advisory lock;
/// answers the (version, name) of those it applied, in order.
pub async fn migrate(client: &mut Client) -> Result<Vec<(i64, String)>, JournalError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?;
    let current: i64 = row.try_get(0)?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        applied.push((*version, name.to_string()));
    }
    tx.commit().await?;
    Ok(applied)
}
