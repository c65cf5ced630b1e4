use std::time::{Duration, Instant};

use super::*;
use crate::journal::contract::bodies::fixture;
use crate::journal::{Store, Write};
use crate::model::event::Event;

#[test]
fn the_writer_restarts_only_a_wal_the_checkpoint_thread_copied() {
    assert_eq!(step(RESTART_FRAMES - 1, 0), Step::Nothing);
    // Past RESTART_FRAMES: copy first, restart once the residue is small.
    let past = RESTART_FRAMES + 10;
    assert_eq!(step(past, 0), Step::Copy);
    assert_eq!(step(past, past - RESIDUE_FRAMES - 1), Step::Copy);
    assert_eq!(
        step(past, past - RESIDUE_FRAMES),
        Step::Restart { force: false }
    );
    // The bound holds whatever the checkpoint thread did.
    for backfilled in [0, FORCE_FRAMES] {
        assert_eq!(
            step(FORCE_FRAMES, backfilled),
            Step::Restart { force: true }
        );
    }
}

/// Until the checkpoint thread ran the copy the writer asked for (so the test does not depend
/// on how fast that thread gets the CPU; the daemon's writer does not wait).
fn wait_for_copy(shared: &Shared) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while shared.lock().requested {
        assert!(
            Instant::now() < deadline,
            "the checkpoint thread never copied"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Before, the writer restarted the WAL past 16 MiB by copying all of it into the database and
/// fsyncing that, ~3.5 ms (up to 11 ms) every ~80 ms at 2,000 webhooks/s, while every webhook
/// that arrived meanwhile waited: the open-loop p99. Now the checkpoint thread copies and the
/// writer's restart copies at most [`RESIDUE_FRAMES`]; the WAL still starts over and stays
/// bounded.
#[test]
fn regression_restarting_the_wal_never_makes_a_commit_wait_for_a_whole_wal_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storeflow.db");
    let (mut store, checkpointer) = SqliteStore::open_writer(&path).unwrap();
    let wal = dir.path().join("storeflow.db-wal");
    let mut largest_wal = 0;
    let template = fixture("u");
    let mut n = 0;
    while store.wal.as_ref().unwrap().restarts.done < 2 {
        let batch: Vec<Write> = (0..32)
            .map(|i| {
                let mut incoming = template.clone();
                incoming.event.id = Event::new_id();
                incoming.dedupe_key = format!("u-{n}-{i}");
                Write::Append(Box::new(incoming))
            })
            .collect();
        store.write_batch(&batch, Duration::ZERO).unwrap();
        // The copy asked for after the previous batch ran while this one committed, as in the
        // daemon (waiting before the commit would let SQLite restart the WAL on its own).
        wait_for_copy(&store.wal.as_ref().unwrap().shared);
        store.between_batches();
        largest_wal = largest_wal.max(std::fs::metadata(&wal).unwrap().len());
        n += 1;
        assert!(n < 5_000, "the WAL never restarted");
    }
    let restarts = store.wal.as_ref().unwrap().restarts;
    assert_eq!(restarts.forced, 0, "{restarts:?}");
    assert!(
        restarts.largest_residue <= RESIDUE_FRAMES,
        "a restart copied {} frames itself: {restarts:?}",
        restarts.largest_residue
    );
    let bound = (FORCE_FRAMES * (4096 + 24)) as u64;
    assert!(largest_wal < bound, "WAL reached {largest_wal} bytes");
    // Started over: the last restart cut the file back to the size limit.
    assert!(std::fs::metadata(&wal).unwrap().len() <= WAL_SIZE_LIMIT as u64 + (1 << 20));
    drop(store);
    checkpointer.stop();
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
}
