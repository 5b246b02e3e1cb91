//! Hand-made histories, one or more per anomaly, present and absent.

use serde_json::{Value, json};

use super::*;
use crate::checker::Validity;
use crate::history::{Op, OpType, Process};

/// Builds histories op by op; every entry is 1 ms after the previous one.
#[derive(Default)]
struct Builder {
    ops: Vec<Op>,
}

impl Builder {
    fn push(&mut self, p: u64, kind: OpType, f: &str, value: Value) -> &mut Self {
        let time = (self.ops.len() as u64 + 1) * 1_000_000;
        let process = Process::Client(p);
        self.ops.push(Op::new(0, time, kind, process, f, value));
        self
    }

    fn invoke(&mut self, p: u64, f: &str, value: Value) -> &mut Self {
        self.push(p, OpType::Invoke, f, value)
    }

    /// An acknowledged send of `msg` to `key`, at `offset`.
    fn send(&mut self, p: u64, key: &str, msg: i64, offset: i64) -> &mut Self {
        self.invoke(p, "send", json!([["send", key, msg]]));
        self.push(p, OpType::Ok, "send", json!([["send", key, [offset, msg]]]))
    }

    /// A send completing `fail` or `info` (the value stays the invocation's).
    fn send_unacked(&mut self, p: u64, key: &str, msg: i64, kind: OpType) -> &mut Self {
        self.invoke(p, "send", json!([["send", key, msg]]));
        self.push(p, kind, "send", json!([["send", key, msg]]))
    }

    /// An `ok` poll returning `msgs`, e.g. `{"k": [[0, 1]]}`.
    fn poll(&mut self, p: u64, msgs: Value) -> &mut Self {
        self.invoke(p, "poll", json!([["poll"]]));
        self.push(p, OpType::Ok, "poll", json!([["poll", msgs]]))
    }

    fn assign(&mut self, p: u64, keys: &[&str], kind: OpType) -> &mut Self {
        self.invoke(p, "assign", json!(keys));
        self.push(p, kind, "assign", json!(keys))
    }

    fn crash(&mut self, p: u64) -> &mut Self {
        self.invoke(p, "crash", Value::Null);
        self.push(p, OpType::Info, "crash", Value::Null)
    }

    fn check(&self) -> KafkaReport {
        check(&History::new(self.ops.clone()))
    }
}

fn msgs(values: &[i64]) -> Vec<Msg> {
    values.iter().map(|v| Msg::Int(*v)).collect()
}

/// Three messages 1, 2, 3 at offsets 0, 1, 2 of "k", sent by process 9.
fn three_sent() -> Builder {
    let mut b = Builder::default();
    b.send(9, "k", 1, 0).send(9, "k", 2, 1).send(9, "k", 3, 2);
    b
}

#[test]
fn a_clean_run_with_crashes_and_assigns_is_valid() {
    let mut b = Builder::default();
    b.assign(0, &["a", "b"], OpType::Ok)
        .send(1, "a", 1, 0)
        .poll(0, json!({"a": [[0, 1]], "b": []}))
        .send(1, "b", 1, 0)
        .send(1, "a", 2, 1)
        .crash(0)
        .assign(2, &["a", "b"], OpType::Ok)
        .poll(2, json!({"a": [[0, 1], [1, 2]], "b": [[0, 1]]}))
        .send_unacked(1, "a", 3, OpType::Fail)
        .poll(2, json!({"a": []}))
        .push(9, OpType::Info, "start-partition", Value::Null);
    let report = b.check();
    assert_eq!(report.error_types(), Vec::<&str>::new());
    assert_eq!(report.validity(), Validity::Valid);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["valid?"], json!(true));
    assert_eq!(json["error-types"], json!([]));
}

#[test]
fn two_sends_given_one_offset_are_inconsistent() {
    let mut b = Builder::default();
    b.send(0, "k", 1, 0)
        .send(1, "k", 2, 0)
        .poll(2, json!({"k": [[0, 1]]}));
    let report = b.check();
    assert_eq!(report.inconsistent_offsets.len(), 1);
    let e = &report.inconsistent_offsets[0];
    assert_eq!((e.key.as_str(), e.offset, e.index), ("k", 0, 0));
    assert_eq!(e.values, msgs(&[1, 2]));
    assert_eq!(report.validity(), Validity::Invalid);
    assert!(three_sent().check().inconsistent_offsets.is_empty());
}

#[test]
fn one_message_at_two_offsets_is_a_duplicate() {
    let mut b = Builder::default();
    b.send(0, "k", 1, 0).poll(1, json!({"k": [[0, 1], [1, 1]]}));
    let report = b.check();
    assert_eq!(report.duplicate.len(), 1);
    let d = &report.duplicate[0];
    assert_eq!(
        (d.value.clone(), d.count, d.offsets.clone()),
        (Msg::Int(1), 2, vec![0, 1])
    );
    // As in Jepsen, the message's index is its last slot, so the poll also
    // repeats itself.
    assert_eq!(report.int_nonmonotonic_poll.len(), 1);
    assert!(three_sent().check().duplicate.is_empty());
}

#[test]
fn polling_a_failed_send_is_g1a() {
    // (The later empty poll keeps Jepsen's unseen quirk out of the way.)
    let mut b = Builder::default();
    b.send_unacked(0, "k", 1, OpType::Fail)
        .poll(1, json!({"k": [[0, 1]]}))
        .poll(1, json!({"k": []}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["G1a"]);
    let g = &report.g1a[0];
    assert_eq!((g.writer.index, g.reader.index), (1, 3));
    assert_eq!(g.writer.kind, OpType::Fail);

    // An indeterminate send may well have happened: no anomaly, and being
    // polled it must have committed (it enters the version order).
    let mut b = Builder::default();
    b.send_unacked(0, "k", 1, OpType::Info)
        .poll(1, json!({"k": [[0, 1]]}))
        .poll(1, json!({"k": []}));
    assert_eq!(b.check().error_types(), Vec::<&str>::new());
}

#[test]
fn a_gap_inside_one_poll_is_an_int_poll_skip() {
    let mut b = three_sent();
    b.poll(0, json!({"k": [[0, 1], [1, 2], [2, 3]]}))
        .poll(1, json!({"k": [[0, 1], [2, 3]]}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["int-poll-skip"]);
    let e = &report.int_poll_skip[0];
    assert_eq!((e.delta, e.indices), (2, [0, 2]));
    assert_eq!(e.skipped, Some(msgs(&[2])));
    assert_eq!(e.offsets, [Some(0), Some(2)]);
    assert_eq!(e.op.index, 9);
}

#[test]
fn going_backwards_inside_one_poll_is_int_nonmonotonic() {
    let mut b = three_sent();
    b.poll(0, json!({"k": [[1, 2], [0, 1], [1, 2], [2, 3]]}));
    let report = b.check();
    let deltas: Vec<i64> = report
        .int_nonmonotonic_poll
        .iter()
        .map(|e| e.delta)
        .collect();
    assert_eq!(deltas, vec![-1]);
    assert!(report.int_poll_skip.is_empty());
    assert_eq!(report.validity(), Validity::Invalid);
}

#[test]
fn a_process_skipping_between_polls_is_a_poll_skip() {
    let mut b = three_sent();
    b.poll(5, json!({"k": [[0, 1], [1, 2], [2, 3]]}))
        .poll(0, json!({"k": [[0, 1]]}))
        .poll(0, json!({"k": [[2, 3]]}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["poll-skip"]);
    let e = &report.poll_skip[0];
    assert_eq!((e.delta, e.skipped.clone()), (2, Some(msgs(&[2]))));
    assert_eq!((e.ops[0].index, e.ops[1].index), (9, 11));
    assert_eq!(e.values.to_vec(), msgs(&[1, 3]));
}

#[test]
fn a_process_repeating_between_polls_is_nonmonotonic() {
    let mut b = three_sent();
    b.poll(0, json!({"k": [[0, 1], [1, 2]]}))
        .poll(0, json!({"k": [[1, 2], [2, 3]]}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["nonmonotonic-poll"]);
    assert_eq!(report.nonmonotonic_poll[0].delta, 0);
}

#[test]
fn an_empty_poll_leaves_nothing_to_compare() {
    let mut b = three_sent();
    b.poll(5, json!({"k": [[0, 1], [1, 2], [2, 3]]}))
        .poll(0, json!({"k": [[0, 1]]}))
        .poll(0, json!({"k": []}))
        .poll(0, json!({"k": [[2, 3]]}));
    assert!(b.check().poll_skip.is_empty());
}

/// Process 0 polls message 1, does `between`, then polls message 3.
fn skip_around(between: impl FnOnce(&mut Builder)) -> KafkaReport {
    let mut b = three_sent();
    b.poll(5, json!({"k": [[0, 1], [1, 2], [2, 3]]}))
        .poll(0, json!({"k": [[0, 1]]}));
    between(&mut b);
    b.poll(0, json!({"k": [[2, 3]]}));
    b.check()
}

#[test]
fn assigns_reset_tracking_of_keys_they_drop() {
    let dropped = skip_around(|b| {
        b.assign(0, &["other"], OpType::Ok)
            .assign(0, &["k"], OpType::Ok);
    });
    assert!(dropped.poll_skip.is_empty());
    let kept = skip_around(|b| {
        b.assign(0, &["k", "other"], OpType::Ok);
    });
    assert_eq!(kept.poll_skip.len(), 1);
    let failed = skip_around(|b| {
        b.assign(0, &["other"], OpType::Fail);
    });
    assert_eq!(failed.poll_skip.len(), 1);
}

#[test]
fn a_crash_starts_a_fresh_process() {
    let mut b = three_sent();
    b.poll(5, json!({"k": [[0, 1], [1, 2], [2, 3]]}))
        .poll(0, json!({"k": [[0, 1]]}))
        .crash(0)
        .poll(4, json!({"k": [[2, 3]]}));
    let report = b.check();
    assert_eq!(report.error_types(), Vec::<&str>::new());
}

#[test]
fn a_process_sending_to_an_earlier_offset_is_nonmonotonic_send() {
    let mut b = Builder::default();
    b.send(0, "k", 5, 3)
        .send(0, "k", 6, 2)
        .poll(1, json!({"k": [[2, 6], [3, 5]]}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["nonmonotonic-send"]);
    let e = &report.nonmonotonic_send[0];
    assert_eq!(
        (e.delta, e.indices, e.offsets),
        (-1, [1, 0], [Some(3), Some(2)])
    );

    // Another process's sends, or increasing ones, are fine.
    let mut b = Builder::default();
    b.send(0, "k", 5, 3)
        .send(1, "k", 6, 2)
        .send(0, "k", 7, 4)
        .poll(1, json!({"k": [[2, 6], [3, 5], [4, 7]]}));
    assert_eq!(b.check().error_types(), Vec::<&str>::new());
}

#[test]
fn an_acknowledged_send_never_polled_is_unseen() {
    let mut b = Builder::default();
    b.send(0, "k", 1, 0).send(0, "k", 2, 1).send(0, "j", 1, 0);
    b.poll(1, json!({"k": [[0, 1]]}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["unseen"]);
    let unseen = report.unseen.as_ref().unwrap();
    assert_eq!(unseen.unseen.get("k"), Some(&1));
    assert_eq!(unseen.messages.get("j"), Some(&msgs(&[1])));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["unseen"]["unseen"], json!({"j": 1, "k": 1}));
}

#[test]
fn a_hole_below_a_polled_offset_is_a_lost_write() {
    let mut b = Builder::default();
    b.send(0, "k", 1, 0)
        .send(0, "k", 2, 1)
        .poll(1, json!({"k": [[1, 2]]}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["lost-write", "unseen"]);
    let lost = &report.lost_write[0];
    assert_eq!(
        (lost.value.clone(), lost.index, lost.max_read_index),
        (Msg::Int(1), 0, 1)
    );
    assert_eq!(lost.writer.index, 1);
    assert_eq!(lost.max_read.as_ref().map(|r| r.index), Some(5));
    assert_eq!(lost.max_read_value, Msg::Int(2));
}

#[test]
fn an_unacknowledged_send_is_not_lost() {
    let mut b = Builder::default();
    b.send_unacked(0, "k", 1, OpType::Info)
        .send(0, "k", 2, 1)
        .poll(1, json!({"k": [[0, 1], [1, 2]]}))
        .poll(2, json!({"k": [[1, 2]]}));
    assert_eq!(b.check().error_types(), Vec::<&str>::new());
}

#[test]
fn polling_a_message_before_its_send_began_is_a_realtime_cycle() {
    let mut b = Builder::default();
    b.poll(0, json!({"k": [[0, 7]]})).send(1, "k", 7, 0);
    let report = b.check();
    assert_eq!(report.error_types(), vec!["G1c-realtime"]);
    let c = &report.g1c_realtime[0];
    let indices: Vec<usize> = c.cycle.iter().map(|o| o.index).collect();
    assert_eq!(indices, vec![3, 1, 3]);
    assert_eq!(c.scc_size, 2);
    assert!(!c.same_process);
    assert_eq!(
        c.steps[1],
        Step::Realtime {
            completed_index: 1,
            invoked_index: 2
        }
    );

    // Same process: Elle still calls it G1c-realtime.
    let mut b = Builder::default();
    b.poll(0, json!({"k": [[0, 7]]})).send(0, "k", 7, 0);
    let report = b.check();
    assert!(report.g1c_realtime[0].same_process);

    // Overlapping poll and send: fine.
    let mut b = Builder::default();
    b.invoke(1, "send", json!([["send", "k", 7]]))
        .poll(0, json!({"k": [[0, 7]]}))
        .push(1, OpType::Ok, "send", json!([["send", "k", [0, 7]]]));
    assert_eq!(b.check().error_types(), Vec::<&str>::new());
}

#[test]
fn one_cycle_is_reported_per_component() {
    let mut b = Builder::default();
    // Two future reads chained by real time form one component...
    b.poll(0, json!({"k": [[0, 7]]}))
        .poll(0, json!({"k": [[1, 8]]}))
        .send(1, "k", 7, 0)
        .send(1, "k", 8, 1);
    assert_eq!(b.check().g1c_realtime.len(), 1);
}

#[test]
fn a_polled_message_nobody_sent_is_reported_not_fatal() {
    let mut b = Builder::default();
    b.send(0, "k", 1, 0)
        .poll(1, json!({"k": [[0, 1], [1, 99]]}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["no-writer-of-value"]);
    assert_eq!(report.no_writer_of_value[0].value, Msg::Int(99));
    assert_eq!(report.validity(), Validity::Invalid);
}

#[test]
fn nothing_succeeding_is_an_empty_transaction_graph() {
    let mut b = Builder::default();
    b.send_unacked(0, "k", 1, OpType::Fail).crash(1);
    let report = b.check();
    assert_eq!(report.error_types(), vec!["empty-transaction-graph"]);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["empty-transaction-graph"],
        json!({"count": 1, "errs": true})
    );
}

#[test]
fn a_key_first_seen_in_the_last_poll_counts_as_unseen_like_jepsen() {
    // Jepsen's unseen fold keeps a key that only the last op mentions with
    // that op's polled messages.
    let mut b = Builder::default();
    b.send_unacked(0, "k", 1, OpType::Info)
        .send(1, "j", 1, 0)
        .poll(2, json!({"j": [[0, 1]]}))
        .poll(2, json!({"k": [[0, 1]]}));
    let report = b.check();
    assert_eq!(report.error_types(), vec!["unseen"]);
    assert_eq!(report.unseen.unwrap().unseen.get("k"), Some(&1));
}

#[test]
fn worst_realtime_lag_follows_jepsens_example() {
    // Send x[0] (done at 2 ms), poll it, then send x[1] (done at 6 ms) and
    // poll nothing new from an invocation at 7 ms: lag 1 ms.
    let mut b = Builder::default();
    b.send(0, "x", 1, 0)
        .poll(1, json!({"x": [[0, 1]]}))
        .send(0, "x", 2, 1)
        .poll(1, json!({"x": []}));
    let lag = b.check().worst_realtime_lag;
    assert_eq!(lag.key.as_deref(), Some("x"));
    assert_eq!(lag.process, Some(1));
    assert!((lag.lag - 0.001).abs() < 1e-12, "{lag:?}");
    assert!((lag.time - 0.007).abs() < 1e-12, "{lag:?}");
}

#[test]
fn info_causes_are_distinct_errors_of_indeterminate_sends_and_polls() {
    let mut b = Builder::default();
    b.send_unacked(0, "k", 1, OpType::Info).crash(4);
    b.ops[1].error = Some(json!("net-timeout"));
    b.send_unacked(8, "k", 2, OpType::Info);
    b.ops[5].error = Some(json!("net-timeout"));
    let report = b.check();
    assert_eq!(report.info_txn_causes, vec![json!("net-timeout")]);
}

#[test]
fn errors_are_truncated_like_jepsen_with_full_counts() {
    let mut b = Builder::default();
    for i in 0..12 {
        b.send(0, "k", i, i);
    }
    // Ten polls (of fresh processes) skipping gaps of 2 to 11.
    for gap in 2..12 {
        b.poll(gap as u64, json!({"k": [[0, 0], [gap, gap]]}));
    }
    b.poll(1, json!({"k": (0..12).map(|i| [i, i]).collect::<Vec<_>>()}));
    let report = b.check();
    assert_eq!(report.int_poll_skip.len(), 10);
    let json = serde_json::to_value(&report).unwrap();
    let shown = &json["int-poll-skip"];
    assert_eq!(shown["count"], json!(10));
    let deltas: Vec<i64> = shown["errs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["delta"].as_i64().unwrap())
        .collect();
    assert_eq!(deltas, vec![4, 5, 6, 7, 8, 9, 10, 11]);
    assert_eq!(json["bad-error-types"], json!(["int-poll-skip"]));
}

#[test]
fn the_result_json_mirrors_jepsens_keys() {
    let mut b = Builder::default();
    b.send(0, "k", 1, 0)
        .send(0, "k", 2, 1)
        .poll(1, json!({"k": [[1, 2]]}));
    let json = serde_json::to_value(b.check()).unwrap();
    assert_eq!(json["valid?"], json!(false));
    assert_eq!(json["error-types"], json!(["lost-write", "unseen"]));
    let lost = &json["lost-write"]["errs"][0];
    assert_eq!(lost["key"], json!("k"));
    assert_eq!(lost["writer"]["value"], json!([["send", "k", [0, 1]]]));
    assert_eq!(
        lost["max-read"]["value"],
        json!([["poll", {"k": [[1, 2]]}]])
    );
    for key in ["worst-realtime-lag", "info-txn-causes", "bad-error-types"] {
        assert!(json.get(key).is_some(), "{key} missing");
    }
}

#[test]
fn odd_values_are_reported_not_fatal() {
    let mut b = Builder::default();
    b.send(0, "k", 1, 0)
        .poll(1, json!({"k": [[0, 1], [1, "1"], [-3, 1.5], "junk"]}))
        .poll(1, json!("not a map"))
        .push(2, OpType::Ok, "poll", Value::Null)
        .push(3, OpType::Ok, "debug-topic-partitions", json!({}));
    let report = b.check();
    let orphans: Vec<Msg> = report
        .no_writer_of_value
        .iter()
        .map(|e| e.value.clone())
        .collect();
    assert_eq!(
        orphans,
        vec![Msg::Json("\"1\"".into()), Msg::Json("1.5".into())]
    );
    // The negative offset never enters the log.
    assert!(report.duplicate.is_empty());
    assert_eq!(report.error_types(), vec!["no-writer-of-value"]);
}
