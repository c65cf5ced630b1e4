use std::time::{Duration, Instant};

use super::*;
use crate::journal::contract::bodies::fixture;
use crate::journal::{Store, Write};

#[test]
fn the_writer_asks_for_small_copies_and_restarts_only_a_copied_wal() {
    let copy = COPY_FRAMES;
    assert_eq!(step(copy - 1, 0, false), Step::Nothing);
    assert_eq!(step(copy, 0, true), Step::Copy, "a copy every COPY_FRAMES");
    assert_eq!(step(2 * copy, copy + 1, false), Step::Nothing);
    // Past RESTART_FRAMES: copy first, restart once the residue is small and no one waits.
    let past = RESTART_FRAMES + 10;
    assert_eq!(step(past, 0, false), Step::Copy);
    assert_eq!(step(past, past - RESIDUE_FRAMES - 1, false), Step::Copy);
    assert_eq!(
        step(past, past - RESIDUE_FRAMES, false),
        Step::Restart { force: false }
    );
    assert_eq!(step(past, past - RESIDUE_FRAMES, true), Step::Nothing);
    // The bound holds whatever the checkpoint thread did and whoever waits.
    for (backfilled, queued) in [(0, false), (0, true), (FORCE_FRAMES, true)] {
        assert_eq!(
            step(FORCE_FRAMES, backfilled, queued),
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
    let mut n = 0;
    while store.wal.as_ref().unwrap().restarts.done < 3 {
        let batch: Vec<Write> = (0..32)
            .map(|i| Write::Append(Box::new(fixture(&format!("u-{n}-{i}")))))
            .collect();
        store.write_batch(&batch, Duration::ZERO).unwrap();
        store.between_batches(false);
        wait_for_copy(&store.wal.as_ref().unwrap().shared);
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

/// Writes queued for the next batch: the restart waits for a gap, unless the WAL reached
/// [`FORCE_FRAMES`]; then it restarts anyway, so the WAL stays bounded under any load.
#[test]
fn a_busy_writer_restarts_in_a_gap_or_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storeflow.db");
    let (mut store, checkpointer) = SqliteStore::open_writer(&path).unwrap();
    let mut n = 0;
    while store.wal.as_ref().unwrap().restarts.done < 1 {
        let batch: Vec<Write> = (0..32)
            .map(|i| Write::Append(Box::new(fixture(&format!("b-{n}-{i}")))))
            .collect();
        store.write_batch(&batch, Duration::ZERO).unwrap();
        store.between_batches(true);
        wait_for_copy(&store.wal.as_ref().unwrap().shared);
        assert!(
            FRAMES.with(Cell::get) < FORCE_FRAMES + 1024,
            "WAL past its bound"
        );
        n += 1;
        assert!(n < 10_000, "the WAL never restarted");
    }
    assert_eq!(store.wal.as_ref().unwrap().restarts.forced, 1);
    drop(store);
    checkpointer.stop();
}
