//! The connection side of the PostgreSQL journal: the URL (kept out of every message with its
//! password), the small tokio runtime that drives the async client for the synchronous
//! [`crate::journal::Store`] trait, and one connection pool per URL shared by every store the
//! process opens (the daemon's writer and its readers).
//!
//! The trait is called from the journal's writer thread and from blocking threads; [`block_on`]
//! runs the query on the journal's own runtime, so no worker thread of the daemon's runtime ever
//! waits on the database.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::journal::JournalError;

/// Connections one process keeps open at most (writer, pipeline, workers, API readers).
const POOL_SIZE: usize = 16;
/// How long opening a connection, or waiting for a free one, may take before the call fails
/// (and intake answers 503) instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A `postgres://` URL. Its `Display` and `Debug` show it without the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PgUrl(String);

impl PgUrl {
    /// `url` as configured; [`PgUrl::parse`] checks it (opening a store does).
    pub fn new(url: &str) -> PgUrl {
        PgUrl(url.trim().to_string())
    }

    /// Checks that `url` is a PostgreSQL URL the client can use; the error never holds the
    /// password.
    pub fn parse(url: &str) -> Result<PgUrl, String> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "journal.url must start with postgres:// or postgresql:// (got {})",
                redact(url)
            ));
        }
        tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("journal.url {} is not usable: {e}", redact(url)))?;
        Ok(PgUrl(url.to_string()))
    }

    pub(super) fn config(&self) -> Result<tokio_postgres::Config, JournalError> {
        PgUrl::parse(&self.0).map_err(|reason| self.open_error(reason))?;
        let mut config =
            tokio_postgres::Config::from_str(&self.0).map_err(|e| self.open_error(e))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("storeflow");
        }
        Ok(config)
    }

    /// An [`JournalError::Open`] naming this URL without its password.
    pub(super) fn open_error(&self, reason: impl fmt::Display) -> JournalError {
        JournalError::Open {
            path: self.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

/// `url` with the password of its `user:password@` part (if any) replaced by `***`, and any
/// `password=` query parameter's value too.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let from = rest_start + colon + 1;
                out.replace_range(from..rest_start + at, "***");
            }
        }
    }
    if let Some(p) = out.find("password=") {
        let from = p + "password=".len();
        let to = out[from..].find('&').map_or(out.len(), |i| from + i);
        out.replace_range(from..to, "***");
    }
    out
}

/// The runtime every PostgreSQL connection of the process runs on.
fn runtime() -> Result<&'static tokio::runtime::Runtime, JournalError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("journal-pg")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| JournalError::Open {
            path: "postgres".into(),
            reason: format!("cannot start the journal's runtime: {e}"),
        })
}

/// Runs `f` to completion on the journal's runtime and answers its output. From a thread of
/// some tokio runtime (a caller that opens a store while starting up) it runs on a scoped thread
/// of its own, since a runtime cannot be blocked on from inside another.
pub(super) fn block_on<F>(f: F) -> Result<F::Output, JournalError>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(rt.block_on(f));
    }
    std::thread::scope(|s| {
        s.spawn(|| rt.block_on(f))
            .join()
            .map_err(|_| JournalError::ReadFailed("a journal query panicked".into()))
    })
}

/// Runs `f` in the background on the journal's runtime (the replicas' listener).
pub(super) fn spawn<F>(f: F) -> Result<(), JournalError>
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime()?.spawn(f);
    Ok(())
}

/// Runs `f` on the journal's runtime from a thread outside any runtime (the CLI), without
/// asking `f` to be `Send` (it may hold a SQLite statement across its awaits).
pub(super) fn block_on_here<F: Future>(f: F) -> Result<F::Output, JournalError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(JournalError::ReadFailed(
            "the journal copy cannot run inside an async runtime".into(),
        ));
    }
    Ok(runtime()?.block_on(f))
}

/// The pool of `url`, created on first use (no connection is opened until one is needed).
pub(super) fn pool(url: &PgUrl) -> Result<Pool, JournalError> {
    static POOLS: OnceLock<Mutex<HashMap<PgUrl, Pool>>> = OnceLock::new();
    let pools = POOLS.get_or_init(Default::default);
    let mut pools = pools.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pool) = pools.get(url) {
        return Ok(pool.clone());
    }
    let manager = Manager::from_config(
        url.config()?,
        tokio_postgres::NoTls,
        ManagerConfig {
            // A connection whose socket closed (the database restarted) is replaced, so the
            // store comes back by itself when the database does.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| url.open_error(e))?;
    pools.insert(url.clone(), pool.clone());
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let cases = [
            (
                "postgres://u:s3cret@db:5432/x",
                "postgres://u:***@db:5432/x",
            ),
            ("postgres://u@db/x", "postgres://u@db/x"),
            (
                "postgresql://db/x?password=s3cret&x=1",
                "postgresql://db/x?password=***&x=1",
            ),
            ("postgres://u:p@ss:w@db/x", "postgres://u:***@db/x"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown);
        }
        let url = PgUrl::parse("postgres://u:s3cret@db/x").unwrap();
        assert!(!format!("{url} {url:?}").contains("s3cret"));
        let bad = PgUrl::parse("mysql://u:s3cret@db/x").unwrap_err();
        assert!(
            bad.contains("postgres://") && !bad.contains("s3cret"),
            "{bad}"
        );
    }
}
