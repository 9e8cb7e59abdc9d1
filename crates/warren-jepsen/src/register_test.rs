//! Hand-written register histories that must pass and ones that must fail.

use std::time::Duration;

use super::*;
use crate::history::{HistoryBuilder, Value};

const INIT: RegisterState = RegisterState {
    value: 0,
    version: 0,
};

fn read() -> Call {
    Call::Read { path: "/r".into() }
}
fn write(value: i64) -> Call {
    Call::Write {
        path: "/r".into(),
        value,
    }
}
fn cas(version: i32, value: i64) -> Call {
    Call::Cas {
        path: "/r".into(),
        version,
        value,
    }
}
fn data(value: i64, version: i32) -> Value {
    Value::Data { value, version }
}

fn verdict(h: HistoryBuilder) -> Verdict {
    check_registers(&h.build(), INIT, &Bounds::default())
}

// Histories that must pass.

#[test]
fn sequential_write_then_read_passes() {
    let h = HistoryBuilder::new()
        .ok(1, 0, 10, write(5), Value::Version(1))
        .ok(2, 20, 30, read(), data(5, 1));
    assert!(verdict(h).is_pass());
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [data(0, 0), data(5, 1)] {
        let h = HistoryBuilder::new()
            .ok(1, 0, 100, write(5), Value::Version(1))
            .ok(2, 10, 50, read(), seen.clone());
        assert!(verdict(h).is_pass(), "seeing {seen:?}");
    }
}

#[test]
fn cas_success_and_bad_version_in_order_pass() {
    let h = HistoryBuilder::new()
        .ok(1, 0, 10, cas(0, 7), Value::Version(1))
        .fail(2, 20, 30, cas(0, 8), BAD_VERSION)
        .ok(3, 40, 50, cas(1, 9), Value::Version(2))
        .ok(1, 60, 70, read(), data(9, 2));
    assert!(verdict(h).is_pass());
}

#[test]
fn an_unknown_write_may_take_effect_later_or_never() {
    // The write's connection was lost; a read long after sees it: fine.
    let seen = HistoryBuilder::new()
        .info(1, 0, write(3))
        .ok(2, 1_000, 1_010, read(), data(3, 1));
    assert!(verdict(seen).is_pass());
    // Or it never happened: fine too.
    let lost = HistoryBuilder::new()
        .info(1, 0, write(3))
        .ok(2, 1_000, 1_010, read(), data(0, 0));
    assert!(verdict(lost).is_pass());
}

#[test]
fn an_unknown_cas_applies_only_on_its_version() {
    // cas(0 -> 4) unknown, then a write made it version 1; a read of (4, 2) needs the cas
    // to land after the write, which its expected version 0 forbids.
    let h = HistoryBuilder::new()
        .info(1, 0, cas(0, 4))
        .ok(2, 10, 20, write(6), Value::Version(1))
        .ok(3, 30, 40, read(), data(4, 2));
    assert!(verdict(h).is_fail());
    // But landing before the write, then the write, then reading the write is fine.
    let h = HistoryBuilder::new()
        .info(1, 0, cas(0, 4))
        .ok(2, 10, 20, write(6), Value::Version(2))
        .ok(3, 30, 40, read(), data(6, 2));
    assert!(verdict(h).is_pass());
}

#[test]
fn znodes_are_checked_apart() {
    let other = |value| Call::Write {
        path: "/s".into(),
        value,
    };
    let h = HistoryBuilder::new()
        .ok(1, 0, 10, write(1), Value::Version(1))
        .ok(2, 0, 10, other(2), Value::Version(1))
        .ok(1, 20, 30, read(), data(1, 1));
    let v = verdict(h);
    assert!(v.is_pass(), "{v}");
}

#[test]
fn many_concurrent_clients_are_decided_quickly() {
    // 6 clients, 300 ops each, every write acknowledged with the next version: the memo
    // keeps this to a few states per op.
    let mut h = HistoryBuilder::new();
    let mut version = 0;
    for round in 0..300u64 {
        for client in 0..6u64 {
            let t = round * 100 + client;
            if client % 2 == 0 {
                version += 1;
                h = h.ok(
                    client as i64,
                    t,
                    t + 50,
                    write(version as i64),
                    Value::Version(version),
                );
            } else {
                h = h.ok(
                    client as i64,
                    t,
                    t + 50,
                    read(),
                    data(version as i64, version),
                );
            }
        }
    }
    let v = verdict(h);
    assert!(v.is_pass(), "{v}");
}

#[test]
fn many_pending_unknown_writes_are_decided_quickly() {
    // 60 writes lost in flight (a leader died), then an acknowledged write answered with
    // version 31: 30 of the lost ones landed first. Which 30 does not matter to the model;
    // without the twin pruning the search would walk C(60, 30) subsets.
    let mut h = HistoryBuilder::new();
    for i in 0..60 {
        h = h.info(i, i as u64, write(100 + i));
    }
    let tail = |h: HistoryBuilder, version: i32| {
        h.ok(70, 1_000, 1_010, write(7), Value::Version(version))
            .ok(71, 2_000, 2_010, read(), data(7, version))
    };
    let bounds = Bounds {
        max_states: 200_000,
        max_time: Duration::from_secs(10),
    };
    let v = check_registers(&tail(h, 31).build(), INIT, &bounds);
    assert!(v.is_pass(), "{v}");
    // Version 62 needs 61 earlier writes: only 60 were ever sent. Decided, not unknown.
    let mut h = HistoryBuilder::new();
    for i in 0..60 {
        h = h.info(i, i as u64, write(100 + i));
    }
    let v = check_registers(&tail(h, 62).build(), INIT, &bounds);
    assert!(v.is_fail(), "{v}");
}

// Histories that must fail.

#[test]
fn a_stale_read_after_a_completed_write_fails() {
    let h = HistoryBuilder::new()
        .ok(1, 0, 10, write(5), Value::Version(1))
        .ok(2, 20, 30, read(), data(0, 0));
    let v = verdict(h);
    assert!(v.is_fail(), "{v}");
    let Verdict::Fail(lines) = v else {
        unreachable!()
    };
    assert!(lines[0].contains("not linearizable"), "{lines:?}");
}

#[test]
fn a_read_of_a_value_never_written_fails() {
    let h = HistoryBuilder::new()
        .ok(1, 0, 10, write(5), Value::Version(1))
        .ok(2, 20, 30, read(), data(42, 1));
    assert!(verdict(h).is_fail());
}

#[test]
fn two_writes_acknowledged_with_the_same_version_fail() {
    // A lost update: both setData calls answered version 1.
    let h = HistoryBuilder::new()
        .ok(1, 0, 10, write(1), Value::Version(1))
        .ok(2, 5, 15, write(2), Value::Version(1));
    assert!(verdict(h).is_fail());
}

#[test]
fn a_bad_version_when_the_version_matched_fails() {
    let h = HistoryBuilder::new()
        .ok(1, 0, 10, read(), data(0, 0))
        .fail(2, 20, 30, cas(0, 9), BAD_VERSION)
        .ok(1, 40, 50, read(), data(0, 0));
    assert!(verdict(h).is_fail());
}

#[test]
fn reads_going_back_in_time_fail() {
    // Two writes in sequence; a read sees the second, a later read the first.
    let h = HistoryBuilder::new()
        .ok(1, 0, 10, write(1), Value::Version(1))
        .ok(1, 20, 30, write(2), Value::Version(2))
        .ok(2, 40, 50, read(), data(2, 2))
        .ok(3, 60, 70, read(), data(1, 1));
    assert!(verdict(h).is_fail());
}

#[test]
fn a_search_past_its_bound_is_unknown_not_a_hang() {
    // 40 overlapping unknown writes of distinct values, then a read no subset of them
    // explains. Straight to the search (no canonical values: every write stays distinct),
    // proving that means trying every subset (2^40), so the bound must stop it: Unknown.
    let mut h = HistoryBuilder::new();
    for i in 0..40 {
        h = h.info(i, i as u64, write(i));
    }
    let h = h.ok(99, 1_000, 1_010, read(), data(999, 3)).build();
    let ops: Vec<&Op> = h.iter().collect();
    let bounds = Bounds {
        max_states: 10_000,
        max_time: Duration::from_secs(5),
    };
    let r = wgl::check(&Register, INIT, &ops, &bounds);
    assert!(matches!(r, Linearizability::Unknown(_)), "{r:?}");
}

#[test]
fn no_register_ops_is_unknown() {
    assert!(matches!(
        check_registers(&Vec::new(), INIT, &Bounds::default()),
        Verdict::Unknown(_)
    ));
}
