//! Is the journal file at its path still the one the daemon opened?
//!
//! SQLite keeps writing to an open file after it was unlinked (`rm -rf data_dir`) or replaced
//! (a backup restored over it): every commit "succeeds" into a file nobody will ever read again,
//! and the webhooks acknowledged then are gone at the next start. The writer compares the
//! (device, inode) of the database and its WAL at their paths with those it opened, before and
//! after each commit batch (two `stat`s), and refuses the batch on a mismatch.

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use crate::journal::JournalError;

/// The (device, inode) of the journal's files when they were opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    db: Identity,
    /// Absent if the WAL did not exist at open (it is created with the first connection).
    wal: Option<Identity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// (device, inode) of a file.
#[cfg(unix)]
fn dev_ino(m: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// Elsewhere only a removed file is noticed.
#[cfg(not(unix))]
fn dev_ino(_: &Metadata) -> (u64, u64) {
    (0, 0)
}

impl Identity {
    fn of(path: PathBuf) -> std::io::Result<Identity> {
        let (dev, ino) = dev_ino(&std::fs::metadata(&path)?);
        Ok(Identity { path, dev, ino })
    }

    fn verify(&self) -> Result<(), JournalError> {
        let replaced = |reason: String| JournalError::Replaced {
            path: self.path.display().to_string(),
            reason,
        };
        match std::fs::metadata(&self.path) {
            Ok(m) if dev_ino(&m) == (self.dev, self.ino) => Ok(()),
            Ok(_) => Err(replaced("another file is there now".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(replaced("it was removed".into()))
            }
            Err(e) => Err(replaced(e.to_string())),
        }
    }
}

impl FileIdentity {
    /// Records the identity of the database at `db` (just opened) and of its WAL.
    pub fn of(db: &Path) -> std::io::Result<FileIdentity> {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        Ok(FileIdentity {
            db: Identity::of(db.to_path_buf())?,
            wal: Identity::of(PathBuf::from(wal)).ok(),
        })
    }

    /// `Err(JournalError::Replaced)` when the database or its WAL at their paths are not the
    /// files that were opened.
    pub fn verify(&self) -> Result<(), JournalError> {
        self.db.verify()?;
        self.wal.as_ref().map_or(Ok(()), Identity::verify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_a_removed_or_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("j.db");
        std::fs::write(&db, b"x").unwrap();
        // Held open as SQLite holds it, so its inode cannot be reused by the next file.
        let _open = std::fs::File::open(&db).unwrap();
        let id = FileIdentity::of(&db).unwrap();
        assert!(id.verify().is_ok());
        std::fs::remove_file(&db).unwrap();
        let e = id.verify().unwrap_err().to_string();
        assert!(e.contains("removed"), "{e}");
        std::fs::write(&db, b"x").unwrap();
        let e = id.verify().unwrap_err().to_string();
        assert!(e.contains("another file"), "{e}");
    }
}
