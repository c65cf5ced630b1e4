//! `storeflow backup`: a consistent copy of the journal while the daemon keeps writing.
//!
//! `VACUUM INTO` reads the database inside one read transaction (a WAL snapshot), so the copy
//! holds every commit made before it began and none made after, and it does not block the
//! writer. The copy is then fsync'd with its directory, so a backup that was reported done is on
//! disk.

use std::fs::File;
use std::path::Path;

use rusqlite::Connection;

use crate::journal::{BackupSummary, JournalError};

pub(super) fn vacuum_into(conn: &Connection, dest: &Path) -> Result<BackupSummary, JournalError> {
    let fail = |reason: String| JournalError::Backup {
        path: dest.display().to_string(),
        reason,
    };
    if dest.exists() {
        return Err(fail("the file exists; choose a new file name".into()));
    }
    let dest_str = dest
        .to_str()
        .ok_or_else(|| fail("the path is not valid UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [dest_str])
        .map_err(|e| fail(e.to_string()))?;
    sync(dest).map_err(|e| fail(format!("written but not synced to disk: {e}")))?;
    let copy = Connection::open(dest).map_err(|e| fail(e.to_string()))?;
    let events = copy
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .map_err(|e| fail(e.to_string()))?;
    let bytes = std::fs::metadata(dest).map_or(0, |m| m.len());
    Ok(BackupSummary { events, bytes })
}

fn sync(file: &Path) -> std::io::Result<()> {
    File::open(file)?.sync_all()?;
    match file.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}
