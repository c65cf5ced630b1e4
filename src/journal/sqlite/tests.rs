use std::time::Duration;

use super::*;

#[test]
fn regression_flags_of_a_journal_from_before_per_rule_flags_survive_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storeflow.db");
    {
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute(
            "INSERT INTO flags VALUES ('sellix', 'inv-1', 'dispute', 'old note', 'evt_1', 'r', 5)",
            [],
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    let flags = store.flags(None, FlagFilter::All, 10).unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!(
        (flags[0].note.as_str(), flags[0].resolved_at),
        ("old note", None)
    );
    let second_rule = Flag {
        rule: "other".into(),
        note: "second note".into(),
        ..flags[0].clone()
    };
    let out = store
        .write_batch(&[Write::Flag(second_rule)], Duration::ZERO)
        .unwrap();
    assert_eq!(
        out,
        vec![Written::Changed(1)],
        "a second rule keeps its note"
    );
    let out = store
        .write_batch(&[Write::ResolveFlag(flags[0].id)], Duration::ZERO)
        .unwrap();
    assert_eq!(out, vec![Written::Changed(1)]);
    let open = store.flags(None, FlagFilter::Open, 10).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].note, "second note");
}
