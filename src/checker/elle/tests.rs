//! End-to-end tests of the checker on hand-made histories, including the
//! regression cases from Elle's own test suite (re-expressed).

use serde_json::{Value, json};

use super::rw_register::{ExtraOrder, analyse};
use super::*;
use crate::history::{Op, OpType, Process};

use ConsistencyModel::{ReadCommitted, ReadUncommitted, Serializable, StrictSerializable};

/// Keys of the little transaction language: x, y, z, a, b, c, d.
fn key(c: char) -> i64 {
    match c {
        'x' => 10,
        'y' => 20,
        'z' => 30,
        'a' => 40,
        'b' => 50,
        'c' => 60,
        'd' => 70,
        _ => panic!("unknown key {c}"),
    }
}

/// Parses e.g. `"rx_ wy12"` into micro-ops: `r`/`w`, a key letter, then a
/// number or `_` (null); spaces are ignored.
fn mops(text: &str) -> Vec<(char, i64, Option<i64>)> {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (f, k) = (chars[i], key(chars[i + 1]));
        i += 2;
        let digits: String = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let value = if digits.is_empty() {
            i += 1; // the `_`
            None
        } else {
            i += digits.len();
            Some(digits.parse().unwrap())
        };
        out.push((f, k, value));
    }
    out
}

fn value(text: &str, invocation: bool) -> Value {
    let mops = mops(text).into_iter().map(|(f, k, v)| {
        let v = if invocation && f == 'r' { None } else { v };
        json!([f.to_string(), k, v])
    });
    Value::Array(mops.collect())
}

/// Builds histories op by op; `p` is the process.
#[derive(Default)]
struct Hb {
    ops: Vec<Op>,
}

impl Hb {
    fn push(&mut self, p: u64, kind: OpType, value: Value) -> &mut Hb {
        let time = self.ops.len() as u64 * 1_000_000;
        let op = Op::new(0, time, kind, Process::Client(p), "txn", value);
        self.ops.push(op);
        self
    }

    /// Invokes `txn` (its reads without values).
    fn invoke(&mut self, p: u64, txn: &str) -> &mut Hb {
        self.push(p, OpType::Invoke, value(txn, true))
    }

    /// Completes process `p`'s transaction as ok, with these results.
    fn ok(&mut self, p: u64, txn: &str) -> &mut Hb {
        self.push(p, OpType::Ok, value(txn, false))
    }

    fn fail(&mut self, p: u64, txn: &str) -> &mut Hb {
        self.push(p, OpType::Fail, value(txn, true))
    }

    fn info(&mut self, p: u64, txn: &str) -> &mut Hb {
        self.push(p, OpType::Info, value(txn, true))
    }

    /// A committed transaction that ran alone.
    fn txn(&mut self, p: u64, txn: &str) -> &mut Hb {
        self.invoke(p, txn).ok(p, txn)
    }

    /// Committed transactions that all ran concurrently.
    fn concurrent(&mut self, txns: &[&str]) -> &mut Hb {
        for (p, t) in txns.iter().enumerate() {
            self.invoke(p as u64, t);
        }
        for (p, t) in txns.iter().enumerate() {
            self.ok(p as u64, t);
        }
        self
    }

    fn build(&self) -> History {
        History::new(self.ops.clone())
    }
}

fn types(report: &TxnReport) -> Vec<&str> {
    report.anomaly_types.iter().map(String::as_str).collect()
}

/// Checks under each model, asserting the reported anomaly types.
fn assert_types(history: &History, expected: &[(ConsistencyModel, &[&str])]) {
    for (model, want) in expected {
        let report = check(history, *model);
        assert_eq!(types(&report), *want, "under {model}");
        assert_eq!(report.validity().is_valid(), want.is_empty(), "{model}");
    }
}

fn cycle<'r>(report: &'r TxnReport, anomaly: &str) -> &'r CycleCase {
    match report.cases(anomaly).first() {
        Some(Case::Cycle(c)) => c,
        other => panic!("no {anomaly} cycle: {other:?}"),
    }
}

fn step_kinds(c: &CycleCase) -> Vec<&str> {
    c.steps.iter().map(|s| s.kind).collect()
}

#[test]
fn model_names_parse_and_unknown_ones_are_rejected() {
    for model in ConsistencyModel::ALL {
        assert_eq!(model.name().parse::<ConsistencyModel>(), Ok(model));
    }
    let err = "snapshot-isolation"
        .parse::<ConsistencyModel>()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("snapshot-isolation"), "{msg}");
    for model in ConsistencyModel::ALL {
        assert!(msg.contains(model.name()), "{msg}");
    }
}

#[test]
fn g1c_fails_read_committed_but_not_read_uncommitted() {
    let h = Hb::default().concurrent(&["wx1 ry1", "wy1 rx1"]).build();
    assert_types(
        &h,
        &[
            (ReadUncommitted, &[]),
            (ReadCommitted, &["G1c"]),
            (Serializable, &["G1c"]),
            (StrictSerializable, &["G1c"]),
        ],
    );
    let report = check(&h, ReadCommitted);
    assert_eq!(
        report.not.as_deref(),
        Some(&["read-committed".to_string()][..])
    );
    let c = cycle(&report, "G1c");
    assert_eq!(c.cycle.len(), 3, "T1, T2, T1");
    assert_eq!(c.cycle[0].index, c.cycle[2].index);
    assert_eq!(step_kinds(c), ["wr", "wr"]);
    assert_eq!(c.steps[0].key, Some(10));
    assert_eq!(c.steps[0].explanation, "T1 wrote key 10 = 1, which T2 read");
    assert_eq!(c.steps[1].explanation, "T2 wrote key 20 = 1, which T1 read");
    assert_eq!(c.steps[0].a_mop_index, Some(0));
    assert_eq!(c.steps[0].b_mop_index, Some(1));
}

#[test]
fn g1a_is_a_read_of_a_failed_write() {
    let mut hb = Hb::default();
    hb.invoke(0, "wx1").fail(0, "wx1").txn(1, "rx1");
    let report = check(&hb.build(), ReadCommitted);
    // Nothing else relates the transactions: the graph is empty too.
    assert_eq!(types(&report), ["G1a", "empty-transaction-graph"]);
    let Case::Read(case) = &report.cases("G1a")[0] else {
        panic!("not a read case");
    };
    assert_eq!((case.op.index, case.writer.index), (3, 1));
    assert_eq!(
        case.mop,
        Mop {
            write: false,
            key: 10,
            value: Some(1)
        }
    );
    // Under read-uncommitted only the empty graph counts.
    assert_types(
        &hb.build(),
        &[(ReadUncommitted, &["empty-transaction-graph"])],
    );
    // A committed write is fine.
    let ok = Hb::default().txn(0, "wx1").txn(1, "rx1").build();
    assert_types(&ok, &[(ReadCommitted, &[]), (StrictSerializable, &[])]);
}

#[test]
fn g1b_is_a_read_of_an_overwritten_write() {
    let h = Hb::default().txn(0, "wx1 wx2").txn(1, "rx1").build();
    assert_types(
        &h,
        &[
            (ReadUncommitted, &["empty-transaction-graph"]),
            (ReadCommitted, &["G1b", "empty-transaction-graph"]),
        ],
    );
    let report = check(&h, ReadCommitted);
    let Case::Read(case) = &report.cases("G1b")[0] else {
        panic!("not a read case");
    };
    assert_eq!(case.writer.index, 1);
    // Reading the final write, or one's own intermediate write, is fine.
    let fine = Hb::default().txn(0, "wx1 wx2").txn(1, "rx2").build();
    assert_types(&fine, &[(ReadCommitted, &[])]);
    let own = Hb::default().txn(0, "wx1 rx1 wx2").txn(1, "rx2").build();
    assert_types(&own, &[(ReadCommitted, &[])]);
}

#[test]
fn read_write_cycle_on_one_key_is_g1c_with_cyclic_versions() {
    // Each reads the other's write, then writes: x's versions go 0 -> 1 in
    // one and 1 -> 0 in the other.
    let h = Hb::default().concurrent(&["rx0 wx1", "rx1 wx0"]).build();
    assert_types(
        &h,
        &[
            (ReadUncommitted, &["cyclic-versions"]),
            (ReadCommitted, &["G1c", "cyclic-versions"]),
            (Serializable, &["G1c", "cyclic-versions"]),
        ],
    );
    let report = check(&h, Serializable);
    let Case::CyclicVersions(case) = &report.cases("cyclic-versions")[0] else {
        panic!("not a version cycle");
    };
    assert_eq!((case.key, case.scc.as_slice()), (10, &[0, 1][..]));
    assert_eq!(
        report.not.as_deref(),
        Some(&["read-uncommitted".to_string()][..])
    );
}

#[test]
fn g_single_item_from_the_initial_state() {
    // T1 reads x unwritten but sees T2's write of y, which T2 made along
    // with a write of x: T1 both precedes and follows T2.
    let mut hb = Hb::default();
    hb.invoke(0, "rx_ ry_")
        .invoke(1, "wy1 wx2")
        .ok(1, "wy1 wx2")
        .ok(0, "rx_ ry1");
    let h = hb.build();
    assert_types(
        &h,
        &[
            (ReadCommitted, &[]),
            (Serializable, &["G-single-item"]),
            (StrictSerializable, &["G-single-item"]),
        ],
    );
    let report = check(&h, Serializable);
    let expected_not: Vec<String> = vec!["consistent-view".into(), "repeatable-read".into()];
    assert_eq!(report.not, Some(expected_not));
    let c = cycle(&report, "G-single-item");
    assert_eq!(step_kinds(c), ["rw", "wr"]);
    assert_eq!(c.steps[0].value, Some(Value::Null));
    assert_eq!(c.steps[0].later_value, Some(2));
    assert_eq!(
        c.steps[0].explanation,
        "T1 read key 10 = null, T2 overwrote it with 2"
    );
}

#[test]
fn writes_follow_reads_orders_versions() {
    // T1 read y=1 then wrote y=2, so 1 < 2; T2 read T1's x but y=1.
    let h = Hb::default()
        .concurrent(&["ry1 wx1 wy2", "rx1 ry1"])
        .build();
    assert_types(&h, &[(Serializable, &["G-single-item"])]);
    let report = check(&h, Serializable);
    let c = cycle(&report, "G-single-item");
    assert_eq!(step_kinds(c), ["rw", "wr"]);
    assert_eq!(
        (c.steps[0].key, c.steps[0].later_value),
        (Some(20), Some(2))
    );
}

#[test]
fn write_skew_is_g2_item_when_versions_are_known() {
    // Both read x and y at 0, each writes one: writes-follow-reads orders
    // 0 before each write, so each anti-depends on the other.
    let h = Hb::default()
        .concurrent(&["rx0 ry0 wx1", "rx0 ry0 wy1"])
        .build();
    assert_types(&h, &[(ReadCommitted, &[]), (Serializable, &["G2-item"])]);
    let report = check(&h, Serializable);
    assert_eq!(step_kinds(cycle(&report, "G2-item")), ["rw", "rw"]);
}

#[test]
fn cross_key_write_skew_is_invisible_to_the_inference() {
    // T1 reads x and writes y, T2 reads y and writes x: nothing orders
    // the two new versions after the ones read, so no cycle is known.
    let mut hb = Hb::default();
    hb.txn(0, "wx1 wy1");
    hb.concurrent(&["rx1 wy2", "ry1 wx2"]);
    assert_types(
        &hb.build(),
        &[(Serializable, &[]), (StrictSerializable, &[])],
    );
}

#[test]
fn realtime_cycles_need_strict_serializability() {
    // A stale read: T2 began after T1's write completed, but missed it.
    let h = Hb::default().txn(0, "wx1").txn(1, "rx_").build();
    assert_types(
        &h,
        &[
            (Serializable, &[]),
            (StrictSerializable, &["G-single-item-realtime"]),
        ],
    );
    let report = check(&h, StrictSerializable);
    let c = cycle(&report, "G-single-item-realtime");
    assert_eq!(step_kinds(c), ["rw", "realtime"]);
    assert_eq!(
        c.steps[1].explanation,
        "T2 completed (op 1) before T1 was invoked (op 2)"
    );
    assert_eq!(
        report.not.as_deref(),
        Some(&["strong-snapshot-isolation".to_string()][..])
    );
    assert_eq!(
        report.also_not.as_deref(),
        Some(&["strong-serializable".to_string()][..])
    );
}

#[test]
fn reading_a_later_transactions_write_is_g1c_realtime() {
    // T1 completed before T2 began, yet read the value T2 wrote.
    let h = Hb::default().txn(0, "ry1").txn(1, "wy1").build();
    assert_types(
        &h,
        &[
            (ReadCommitted, &[]),
            (Serializable, &[]),
            (StrictSerializable, &["G1c-realtime"]),
        ],
    );
    let report = check(&h, StrictSerializable);
    assert_eq!(
        step_kinds(cycle(&report, "G1c-realtime")),
        ["realtime", "wr"]
    );
}

#[test]
fn nonadjacent_anti_dependencies_are_g_nonadjacent_item() {
    // T1 -rw-> T2 -wr-> T3 -rw-> T4 -wr-> T1, and no shorter cycle.
    let h = Hb::default()
        .concurrent(&["ra_ rd1", "wa1 wb1", "rb1 rc_", "wc1 wd1"])
        .build();
    assert_types(
        &h,
        &[
            (ReadCommitted, &[]),
            (Serializable, &["G-nonadjacent-item"]),
        ],
    );
    let report = check(&h, Serializable);
    let c = cycle(&report, "G-nonadjacent-item");
    assert_eq!(step_kinds(c), ["rw", "wr", "rw", "wr"]);
}

#[test]
fn internal_inconsistency_needs_serializable() {
    let mut hb = Hb::default();
    hb.txn(0, "wy1").txn(1, "ry1"); // something in the graph
    hb.txn(2, "rx1 rx2");
    let h = hb.build();
    assert_types(&h, &[(ReadCommitted, &[]), (Serializable, &["internal"])]);
    let report = check(&h, Serializable);
    let Case::Internal(case) = &report.cases("internal")[0] else {
        panic!("not an internal case");
    };
    assert_eq!((case.mop.value, case.expected), (Some(2), Some(1)));
    // Reading null, then a value, is inconsistent as well.
    let mut hb = Hb::default();
    hb.txn(0, "wy1").txn(1, "ry1").txn(2, "rx_ rx1");
    assert_types(&hb.build(), &[(Serializable, &["internal"])]);
}

#[test]
fn lost_update_needs_serializable() {
    let h = Hb::default().concurrent(&["rx_ wx1", "rx_ wx2"]).build();
    assert_types(
        &h,
        &[
            (ReadCommitted, &[]),
            (Serializable, &["G2-item", "lost-update"]),
        ],
    );
    let report = check(&h, Serializable);
    let Case::LostUpdate(case) = &report.cases("lost-update")[0] else {
        panic!("not a lost update");
    };
    assert_eq!((case.key, case.value, case.txns.len()), (10, None, 2));
}

#[test]
fn an_empty_transaction_graph_is_invalid() {
    let all_failed = Hb::default().invoke(0, "wx1").fail(0, "wx1").build();
    let nothing = History::new(Vec::new());
    let lonely = Hb::default().txn(0, "wx1").build();
    for h in [all_failed, nothing, lonely] {
        for model in ConsistencyModel::ALL {
            let report = check(&h, model);
            assert_eq!(types(&report), ["empty-transaction-graph"], "{model}");
            assert_eq!(report.validity(), Validity::Invalid);
        }
    }
}

#[test]
fn a_write_cycle_shows_as_pl1_cycle_exists_under_read_uncommitted() {
    // Each overwrites a key the other wrote, after reading it: the ww cycle
    // is also a wr cycle, which Elle names G1c; read-uncommitted only sees
    // that some write cycle exists.
    let h = Hb::default()
        .concurrent(&["ry1 wx1 wy2", "rx1 wx2 wy1"])
        .build();
    assert_types(
        &h,
        &[
            (ReadUncommitted, &["PL-1-cycle-exists"]),
            (ReadCommitted, &["G1c", "PL-1-cycle-exists"]),
        ],
    );
    let report = check(&h, ReadUncommitted);
    let Case::CycleExists(case) = &report.cases("PL-1-cycle-exists")[0] else {
        panic!("not a cycle-exists case");
    };
    assert_eq!(
        (case.not, case.scc.as_slice()),
        ("read-uncommitted", &[2, 3][..])
    );
}

#[test]
fn running_out_of_budget_keeps_the_verdict() {
    let h = Hb::default().concurrent(&["wx1 ry1", "wy1 rx1"]).build();
    let opts = CheckOptions {
        cycle_search_budget: 0,
        ..CheckOptions::default()
    };
    let report = check_with(&h, ReadCommitted, &opts);
    assert_eq!(types(&report), ["G1c"]);
    assert_eq!(report.stats.cycle_search_timeouts, 1);
}

#[test]
fn indeterminate_writes_may_be_read() {
    let mut hb = Hb::default();
    hb.invoke(0, "wx1")
        .info(0, "wx1")
        .txn(1, "rx1")
        .txn(1, "wy1")
        .txn(2, "ry1");
    assert_types(&hb.build(), &[(StrictSerializable, &[])]);
    // An invocation that never completed counts as indeterminate too.
    let mut hb = Hb::default();
    hb.invoke(0, "wx1")
        .txn(1, "rx1")
        .txn(1, "wy1")
        .txn(2, "ry1");
    let report = check(&hb.build(), StrictSerializable);
    assert_eq!(types(&report), Vec::<&str>::new());
    assert_eq!(report.stats.info, 1);
}

#[test]
fn nemesis_operations_are_ignored() {
    let mut hb = Hb::default();
    hb.txn(0, "wx1");
    hb.ops.push(Op::new(
        0,
        0,
        OpType::Info,
        Process::Nemesis,
        "start-partition",
        Value::Null,
    ));
    hb.txn(1, "rx1");
    assert_types(&hb.build(), &[(StrictSerializable, &[])]);
}

#[test]
fn non_unique_writes_make_the_verdict_unknown() {
    let h = Hb::default()
        .txn(0, "wx1")
        .txn(1, "wx1")
        .txn(2, "rx1")
        .build();
    let report = check(&h, ReadCommitted);
    assert_eq!(report.validity(), Validity::Unknown);
    let error = report.error.unwrap();
    assert!(error.contains("unique writes"), "{error}");
    assert!(error.contains("key 10 value 1"), "{error}");
}

#[test]
fn malformed_transactions_make_the_verdict_unknown() {
    let mut hb = Hb::default();
    hb.push(0, OpType::Invoke, json!([["r", 1, null]]));
    hb.push(0, OpType::Ok, json!("oops"));
    let report = check(&hb.build(), ReadCommitted);
    assert_eq!(report.validity(), Validity::Unknown);
    assert!(report.error.unwrap().starts_with("op 1:"));
}

#[test]
fn witnesses_are_capped_but_counted() {
    let mut hb = Hb::default();
    hb.txn(0, "wx1 wx2");
    for p in 1..=5 {
        hb.txn(p, "rx1");
    }
    let opts = CheckOptions {
        max_witnesses: 2,
        ..CheckOptions::default()
    };
    let report = check_with(&hb.build(), ReadCommitted, &opts);
    assert_eq!(report.cases("G1b").len(), 2);
    assert_eq!(report.anomaly_counts["G1b"], 5);
}

#[test]
fn report_serialises_like_maelstrom() {
    let h = Hb::default().concurrent(&["wx1 ry1", "wy1 rx1"]).build();
    let report = serde_json::to_value(check(&h, ReadCommitted)).unwrap();
    assert_eq!(report["valid?"], json!(false));
    assert_eq!(report["anomaly-types"], json!(["G1c"]));
    assert_eq!(report["not"], json!(["read-committed"]));
    assert!(report["also-not"].as_array().unwrap().len() > 10);
    assert_eq!(report["consistency-model"], json!("read-committed"));
    let g1c = &report["anomalies"]["G1c"][0];
    assert_eq!(g1c["type"], json!("G1c"));
    assert_eq!(
        g1c["cycle"][0]["value"],
        json!([["w", 10, 1], ["r", 20, 1]])
    );
    assert_eq!(g1c["steps"][0]["type"], json!("wr"));
    assert_eq!(report["stats"]["edges"]["wr"], json!(2));
    let valid = serde_json::to_value(check(&h, ReadUncommitted)).unwrap();
    assert_eq!(valid["valid?"], json!(true));
    assert!(valid.get("not").is_none());
    let empty = serde_json::to_value(check(&History::new(vec![]), ReadCommitted)).unwrap();
    assert_eq!(empty["anomalies"]["empty-transaction-graph"], json!(true));
}

#[test]
fn order_edges_are_transitively_reduced() {
    // Three transactions in sequence, plus one overlapping the second.
    let mut hb = Hb::default();
    hb.txn(0, "wx1");
    hb.invoke(1, "wy1")
        .invoke(2, "wz1")
        .ok(1, "wy1")
        .ok(2, "wz1");
    hb.txn(0, "rx1");
    let h = hb.build();
    let opts = CheckOptions::default();
    let realtime = analyse(&h, ExtraOrder::Realtime, &opts).unwrap();
    // T1 -> T2, T1 -> T3, T2 -> T4, T3 -> T4; not T1 -> T4.
    assert_eq!(realtime.stats.edges.realtime, 4);
    let process = analyse(&h, ExtraOrder::Process, &opts).unwrap();
    assert_eq!(process.stats.edges.process, 1);
    assert_eq!(process.stats.edges.realtime, 0);
}

#[test]
fn each_model_prohibits_what_the_reference_lists() {
    let ru = ReadUncommitted.prohibited_anomalies();
    assert_eq!(
        ru,
        [
            "G0",
            "PL-1-cycle-exists",
            "cyclic-versions",
            "duplicate-elements"
        ]
    );
    let rc = ReadCommitted.prohibited_anomalies();
    for a in ["G1a", "G1b", "G1c", "G0", "PL-2-cycle-exists"] {
        assert!(rc.contains(&a), "{a}");
    }
    assert!(!rc.contains(&"internal") && !rc.contains(&"lost-update"));
    let s = Serializable.prohibited_anomalies();
    assert!(s.contains(&"internal") && s.contains(&"lost-update"));
    assert!(!s.iter().any(|a| a.ends_with("-realtime")));
    assert!(
        StrictSerializable
            .prohibited_anomalies()
            .contains(&"G-single-item-realtime")
    );
}

/// A small random workload run against a store where every transaction
/// takes effect atomically at a random moment of its lifetime, except that
/// read-only ones read the state `lag` time units earlier. With no lag the
/// store is strict serializable; with lag it is still serializable.
fn simulated_history(seed: u64, lag: u64) -> History {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut next_value = [1i64; 4];
    // (invoke, complete, effect time, process, outcome, mops)
    let mut txns = Vec::new();
    let mut free_at = [0u64; 3];
    for _ in 0..40 {
        let worker = rng.random_range(0..3);
        let invoke = free_at[worker] + rng.random_range(1..5);
        let complete = invoke + rng.random_range(1..10);
        free_at[worker] = complete;
        let mops: Vec<(bool, i64, Option<i64>)> = (0..rng.random_range(1..4))
            .map(|_| {
                let k = rng.random_range(0..4usize);
                let write = rng.random_range(0..2) == 0;
                let v = write.then(|| {
                    next_value[k] += 1;
                    next_value[k] - 1
                });
                (write, k as i64, v)
            })
            .collect();
        let outcome = match rng.random_range(0..20) {
            0 => OpType::Fail,
            1 => OpType::Info,
            _ => OpType::Ok,
        };
        // History positions: a completion at 4t, an invocation at 4t + 2,
        // so an effect strictly between them cannot tie with either.
        let effect = rng.random_range(4 * invoke + 3..4 * complete);
        let applied =
            outcome == OpType::Ok || (outcome == OpType::Info && rng.random_range(0..2) == 0);
        txns.push((
            invoke,
            complete,
            effect,
            worker as u64,
            outcome,
            applied,
            mops,
        ));
    }
    let mut order: Vec<usize> = (0..txns.len()).collect();
    order.sort_by_key(|&i| txns[i].2);
    let mut versions: Vec<(u64, i64, i64)> = Vec::new(); // (time, key, value)
    for i in order {
        let (_, _, effect, _, _, applied, ref mut mops) = txns[i];
        if !applied {
            continue;
        }
        let snapshot = if mops.iter().all(|m| !m.0) {
            effect.saturating_sub(4 * lag)
        } else {
            effect
        };
        let mut own: Vec<(i64, i64)> = Vec::new();
        for (write, k, v) in mops.iter_mut() {
            if *write {
                own.push((*k, v.unwrap()));
                versions.push((effect, *k, v.unwrap()));
            } else if let Some(&(_, mine)) = own.iter().rev().find(|(ok, _)| ok == k) {
                *v = Some(mine);
            } else {
                let mut seen = versions
                    .iter()
                    .filter(|(t, vk, _)| vk == k && *t <= snapshot);
                *v = seen.next_back().map(|&(_, _, val)| val);
            }
        }
    }
    let mut events: Vec<(u64, Op)> = Vec::new();
    for (invoke, complete, _, p, outcome, _, mops) in &txns {
        let text = |with_reads: bool| {
            let ms = mops.iter().map(|&(w, k, v)| {
                json!([
                    if w { "w" } else { "r" },
                    k,
                    if w || with_reads { v } else { None }
                ])
            });
            Value::Array(ms.collect())
        };
        let p = Process::Client(*p);
        events.push((
            4 * invoke + 2,
            Op::new(0, *invoke, OpType::Invoke, p, "txn", text(false)),
        ));
        let done = text(*outcome == OpType::Ok);
        events.push((
            4 * complete,
            Op::new(0, *complete, *outcome, p, "txn", done),
        ));
    }
    events.sort_by_key(|e| e.0);
    History::new(events.into_iter().map(|e| e.1).collect())
}

#[test]
fn strict_serializable_stores_pass_every_model() {
    for seed in 0..200 {
        let h = simulated_history(seed, 0);
        for model in ConsistencyModel::ALL {
            let report = check(&h, model);
            assert!(report.error.is_none(), "seed {seed}: {:?}", report.error);
            assert_eq!(
                types(&report),
                Vec::<&str>::new(),
                "seed {seed} under {model}"
            );
        }
    }
}

#[test]
fn stale_read_only_transactions_are_serializable_but_not_strict() {
    let mut strict_failures = 0;
    for seed in 0..200 {
        let h = simulated_history(seed, 15);
        assert_types(&h, &[(Serializable, &[])]);
        strict_failures += usize::from(!check(&h, StrictSerializable).validity().is_valid());
    }
    assert!(
        strict_failures > 50,
        "only {strict_failures} stale histories caught"
    );
}
