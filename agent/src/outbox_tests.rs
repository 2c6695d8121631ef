//! Outbox core tests: acks, drop-oldest accounting, order, spill round trips and damage.

use std::path::Path;

use super::*;

fn msg(session: &str, seq: u64) -> Message {
    Message {
        session: Arc::from(session),
        seq,
        kind: Kind::Metrics,
        payload: format!("{{\"ts\":1,\"session\":\"{session}\",\"seq\":{seq}}}").into_bytes(),
    }
}

fn drain(o: &mut Outbox) -> Vec<(String, u64)> {
    std::iter::from_fn(|| o.next_unsent())
        .map(|m| (m.session.to_string(), m.seq))
        .collect()
}

fn seqs(list: &[(String, u64)]) -> Vec<u64> {
    list.iter().map(|(_, s)| *s).collect()
}

fn spill_config(path: &Path, max_messages: usize, spill_max_bytes: u64) -> OutboxConfig {
    OutboxConfig {
        max_messages,
        spill_file: Some(path.to_owned()),
        spill_max_bytes,
        ..OutboxConfig::default()
    }
}

#[test]
fn ack_removes_only_that_sessions_messages_at_or_below_the_seq() {
    let mut o = Outbox::in_memory(100);
    for seq in [2, 4, 6] {
        o.push(msg("a", seq));
        o.push(msg("b", seq));
    }
    assert_eq!(o.ack("a", 4), 2);
    assert_eq!(o.ack("a", 4), 0, "acking twice is harmless");
    assert_eq!(o.ack("c", 100), 0, "unknown session");
    let left = drain(&mut o);
    assert_eq!(
        left,
        [("b", 2), ("b", 4), ("a", 6), ("b", 6)].map(|(s, q)| (s.to_owned(), q))
    );
}

#[test]
fn a_full_outbox_drops_the_oldest_and_counts() {
    let mut o = Outbox::in_memory(3);
    for seq in 1..=5 {
        o.push(msg("a", seq));
    }
    assert_eq!((o.len(), o.dropped()), (3, 2));
    assert_eq!(seqs(&drain(&mut o)), [3, 4, 5]);
    o.set_limits(&OutboxConfig {
        max_messages: 1,
        ..OutboxConfig::default()
    });
    assert_eq!((o.len(), o.dropped()), (1, 4));
}

#[test]
fn messages_go_out_in_order_and_again_after_rewind() {
    let mut o = Outbox::in_memory(10);
    o.push(msg("a", 1));
    o.push(msg("a", 3));
    assert_eq!(o.next_unsent().map(|m| m.seq), Some(1));
    o.push(msg("a", 5));
    assert!(!o.all_sent());
    assert_eq!(seqs(&drain(&mut o)), [3, 5]);
    assert!(o.all_sent());
    o.ack("a", 3);
    o.rewind();
    assert_eq!(
        seqs(&drain(&mut o)),
        [5],
        "after a reconnect only unacked ones"
    );
    o.push(msg("a", 7));
    assert_eq!(seqs(&drain(&mut o)), [7]);
}

#[test]
fn seq_floor_is_one_below_the_oldest_held_message_of_the_session() {
    let mut o = Outbox::in_memory(10);
    assert_eq!(
        o.seq_floor("a", 9),
        8,
        "nothing held: all below the message"
    );
    o.push(msg("b", 1));
    o.push(msg("a", 4));
    o.push(msg("a", 6));
    assert_eq!(o.seq_floor("a", 6), 3);
    assert_eq!(o.seq_floor("a", 2), 1, "a message older than the outbox");
    o.ack("a", 4);
    assert_eq!(o.seq_floor("a", 9), 5);
    assert_eq!(o.seq_floor("b", 1), 0);
}

#[test]
fn spilled_messages_come_back_first_in_order_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.spill");
    let config = spill_config(&path, 2, 1 << 20);
    let mut o = Outbox::open(&config);
    for seq in 1..=5 {
        o.push(msg("old", seq));
    }
    assert_eq!((o.len(), o.spilled(), o.dropped()), (5, 3, 0));
    let all: Vec<Message> = std::iter::from_fn(|| o.next_unsent()).collect();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], msg("old", 1), "payload read back from the file");
    assert_eq!(
        all.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );

    o.ack("old", 1);
    assert_eq!(o.persist(), 2, "in-memory messages written at shutdown");
    drop(o);

    let mut o = Outbox::open(&config);
    assert_eq!(
        (o.len(), o.spilled()),
        (4, 4),
        "seq 1 was acked before the restart"
    );
    o.push(msg("new", 1));
    assert_eq!(o.ack("new", 1), 1, "an ack of the new session ...");
    assert_eq!(o.len(), 4, "... leaves the old session's messages");
    let again = drain(&mut o);
    assert_eq!(
        again,
        (2..=5).map(|s| ("old".to_owned(), s)).collect::<Vec<_>>()
    );
    o.ack("old", 5);
    assert_eq!(o.len(), 0);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        16,
        "emptied to its header"
    );
}

#[test]
fn a_truncated_spill_file_keeps_the_whole_records_and_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.spill");
    let config = spill_config(&path, 1, 1 << 20);
    let mut o = Outbox::open(&config);
    for seq in 1..=4 {
        o.push(msg("s", seq));
    }
    o.persist();
    drop(o);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);

    let mut o = Outbox::open(&config);
    assert_eq!(seqs(&drain(&mut o)), [1, 2, 3], "the cut record is dropped");
    o.push(msg("s", 9));
    o.push(msg("s", 10));
    o.rewind();
    assert_eq!(
        seqs(&drain(&mut o)),
        [1, 2, 3, 9, 10],
        "appends after the cut"
    );
}

#[test]
fn a_garbled_spill_file_is_replaced_by_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.spill");
    for junk in [&b"not a spill file at all, just text"[..], b"SWSP", b""] {
        std::fs::write(&path, junk).unwrap();
        let mut o = Outbox::open(&spill_config(&path, 1, 1 << 20));
        assert!(o.is_empty());
        o.push(msg("s", 1));
        o.push(msg("s", 2));
        assert_eq!((o.spilled(), seqs(&drain(&mut o))), (1, vec![1, 2]));
    }
    // A flipped byte inside a record: the records before it are kept.
    let mut o = Outbox::open(&spill_config(&path, 1, 1 << 20));
    assert_eq!(
        o.len(),
        1,
        "seq 1 was spilled by the last round, seq 2 was in memory"
    );
    o.push(msg("s", 2));
    o.push(msg("s", 3));
    o.persist();
    drop(o);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let mut o = Outbox::open(&spill_config(&path, 1, 1 << 20));
    assert_eq!(seqs(&drain(&mut o)), [1, 2], "seq 3 was damaged");
}

#[test]
fn the_spill_cap_drops_the_oldest_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.spill");
    let record = SpillFile::record_len("s", &msg("s", 10).payload);
    let cap = 16 + 10 * record;
    let mut o = Outbox::open(&spill_config(&path, 2, cap));
    for seq in 10..60 {
        o.push(msg("s", seq));
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= cap, "file {size} > cap {cap}");
    }
    assert!(o.dropped() > 0);
    assert_eq!(
        o.len() as u64 + o.dropped(),
        50,
        "every message kept or counted"
    );
    let left = seqs(&drain(&mut o));
    assert_eq!(*left.last().unwrap(), 59);
    assert!(left.windows(2).all(|w| w[0] < w[1]), "{left:?}");
    assert_eq!(left[0], 10 + o.dropped(), "the oldest went first");
}

#[test]
fn an_unopenable_spill_file_falls_back_to_memory() {
    let config = spill_config(Path::new("/nonexistent-dir/outbox.spill"), 2, 1 << 20);
    let mut o = Outbox::open(&config);
    for seq in 1..=3 {
        o.push(msg("s", seq));
    }
    assert_eq!((o.len(), o.dropped(), o.persist()), (2, 1, 0));
}
