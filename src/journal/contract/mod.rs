//! The journal's contract: one suite of tests that every backend passes, run against SQLite
//! (a file in a temp dir) and PostgreSQL (a fresh database in the test cluster,
//! [`crate::journal::pg::cluster`]). Each test takes a [`TestStore`]; [`contract!`] makes one
//! `#[test]` per backend of it.
//!
//! Tests that look at one backend's insides (SQLite's query plans, migrations of old files)
//! stay with that backend.

use std::ops::{Deref, DerefMut};

use crate::journal::pg::{cluster, PgStore, PgUrl};
use crate::journal::{SqliteStore, Store};

pub(crate) mod admin;
pub(crate) mod bodies;
mod core;
mod leases;
mod postgres;
mod timers;

/// A fresh, empty journal of one backend (and the temp dir it lives in, for SQLite).
pub(crate) struct TestStore {
    store: Box<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

impl Deref for TestStore {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        self.store.as_ref()
    }
}

impl DerefMut for TestStore {
    fn deref_mut(&mut self) -> &mut (dyn Store + 'static) {
        self.store.as_mut()
    }
}

pub(crate) fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("j.db")).unwrap();
    TestStore {
        store: Box::new(store),
        _dir: Some(dir),
    }
}

pub(crate) fn postgres() -> TestStore {
    TestStore {
        store: Box::new(PgStore::open(&pg_url()).unwrap()),
        _dir: None,
    }
}

/// A fresh database in the test cluster.
pub(crate) fn pg_url() -> PgUrl {
    PgUrl::parse(&cluster::cluster().database()).unwrap()
}

/// One `#[test]` per backend for each contract test named.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::journal::contract::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name($crate::journal::contract::postgres()) } )*
        }
    };
}
pub(crate) use contract;
