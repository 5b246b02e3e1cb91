//! Hand-made histories with known verdicts, and a differential test against
//! a brute-force checker on small random histories.

mod brute_force;
mod generator;

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde_json::{Value, json};

use brute_force::{Registers, apply, brute_force, plain_ops};
use generator::{Shape, plan, random_history, simulate, write_down};

use super::model::Model;
use super::search::{Budget, Call, Outcome, search};
use super::*;
use crate::checker::Validity;
use crate::history::{History, Op, OpType, Process};

// ---------------------------------------------------------------------------
// Helpers

/// A history from `(process, type, f, value)` events; time = position.
fn history(events: &[(u64, &str, &str, Value)]) -> History {
    let ops = events
        .iter()
        .enumerate()
        .map(|(i, (process, kind, f, value))| {
            let kind = serde_json::from_value(json!(kind)).expect("op type");
            Op::new(
                i,
                i as u64,
                kind,
                Process::Client(*process),
                f,
                value.clone(),
            )
        })
        .collect();
    History::new(ops)
}

fn run(h: &History) -> LinearizabilityReport {
    check(h, &Options::default())
}

fn verdict(h: &History) -> Validity {
    run(h).validity()
}

fn only_key(report: &LinearizabilityReport) -> &KeyReport {
    assert_eq!(report.results.len(), 1);
    &report.results[0].1
}

// ---------------------------------------------------------------------------
// Hand-made histories

#[test]
fn sequential_ok_ops_are_linearizable() {
    let h = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
        (1, "invoke", "read", json!([0, null])),
        (1, "ok", "read", json!([0, 1])),
        (0, "invoke", "cas", json!([0, [1, 2]])),
        (0, "ok", "cas", json!([0, [1, 2]])),
        (1, "invoke", "read", json!([0, null])),
        (1, "ok", "read", json!([0, 2])),
    ]);
    let report = run(&h);
    assert_eq!(report.validity(), Validity::Valid);
    assert_eq!(report.op_count, 4);
    assert_eq!(report.key_count, 1);
    assert!(report.failures.is_empty());
}

#[test]
fn empty_history_is_valid() {
    let report = run(&History::default());
    assert_eq!(report.validity(), Validity::Valid);
    assert_eq!(report.key_count, 0);
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for (seen, expected) in [
        (1, Validity::Valid),
        (2, Validity::Valid),
        (3, Validity::Invalid),
    ] {
        let h = history(&[
            (0, "invoke", "write", json!([0, 1])),
            (0, "ok", "write", json!([0, 1])),
            (1, "invoke", "read", json!([0, null])),
            (0, "invoke", "write", json!([0, 2])),
            (0, "ok", "write", json!([0, 2])),
            (1, "ok", "read", json!([0, seen])),
        ]);
        assert_eq!(verdict(&h), expected, "read {seen}");
    }
}

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    for last in [1, 2] {
        let h = history(&[
            (0, "invoke", "write", json!([0, 1])),
            (1, "invoke", "write", json!([0, 2])),
            (0, "ok", "write", json!([0, 1])),
            (1, "ok", "write", json!([0, 2])),
            (2, "invoke", "read", json!([0, null])),
            (2, "ok", "read", json!([0, last])),
        ]);
        assert_eq!(verdict(&h), Validity::Valid, "read {last}");
    }
}

#[test]
fn a_stale_read_is_invalid_and_the_witness_names_it() {
    let h = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
        (1, "invoke", "write", json!([0, 2])),
        (1, "ok", "write", json!([0, 2])),
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 1])),
    ]);
    let report = run(&h);
    assert_eq!(report.validity(), Validity::Invalid);
    assert_eq!(report.failures, vec![json!(0)]);
    let witness = only_key(&report).witness.as_ref().expect("witness");
    assert_eq!(witness.op.invoke.index, 4);
    assert_eq!(witness.op.complete.as_ref().unwrap().index, 5);
    assert_eq!(witness.previous_ok.as_ref().unwrap().invoke.index, 2);
    assert_eq!(witness.linearized, vec![0, 2]);
    assert!(witness.concurrent.is_empty());
    assert_eq!(witness.final_states.len(), 1);
    assert_eq!(witness.final_states[0].model, json!(2));
    assert_eq!(
        witness.final_states[0].why,
        "can't read 1 from a register holding 2"
    );
    assert!(
        witness.explanation.contains("read [0,1]"),
        "{}",
        witness.explanation
    );
}

#[test]
fn the_witness_lists_concurrent_ops_and_every_final_state() {
    // Writes of 1 and 2 overlap the read of 3; a crashed write of 4 too.
    let h = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (1, "invoke", "write", json!([0, 2])),
        (3, "invoke", "write", json!([0, 4])),
        (3, "info", "write", json!([0, 4])),
        (2, "invoke", "read", json!([0, null])),
        (0, "ok", "write", json!([0, 1])),
        (1, "ok", "write", json!([0, 2])),
        (2, "ok", "read", json!([0, 3])),
    ]);
    let report = run(&h);
    let witness = only_key(&report).witness.as_ref().expect("witness");
    assert_eq!(witness.op.invoke.index, 4);
    let concurrent: Vec<usize> = witness.concurrent.iter().map(|p| p.invoke.index).collect();
    assert_eq!(concurrent, vec![0, 1, 2]);
    let states: Vec<&Value> = witness.final_states.iter().map(|s| &s.model).collect();
    assert_eq!(states, vec![&json!(1), &json!(2), &json!(4)]);
}

#[test]
fn a_crashed_write_may_have_happened() {
    for completion in ["info", "never"] {
        let mut events = vec![
            (0, "invoke", "write", json!([0, 1])),
            (0, "ok", "write", json!([0, 1])),
            (1, "invoke", "write", json!([0, 2])),
        ];
        if completion == "info" {
            events.push((1, "info", "write", json!([0, 2])));
        }
        events.push((2, "invoke", "read", json!([0, null])));
        events.push((2, "ok", "read", json!([0, 2])));
        assert_eq!(verdict(&history(&events)), Validity::Valid, "{completion}");
    }
}

#[test]
fn a_crashed_write_may_never_happen_or_happen_late() {
    let h = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
        (1, "invoke", "write", json!([0, 2])),
        (1, "info", "write", json!([0, 2])),
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 1])),
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 2])),
    ]);
    assert_eq!(verdict(&h), Validity::Valid);
}

#[test]
fn a_crashed_write_happens_at_most_once() {
    let h = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
        (1, "invoke", "write", json!([0, 2])),
        (1, "info", "write", json!([0, 2])),
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 2])),
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 2])),
    ]);
    assert_eq!(verdict(&h), Validity::Invalid);
}

#[test]
fn a_crashed_write_cannot_take_effect_before_its_invocation() {
    let h = history(&[
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 2])),
        (1, "invoke", "write", json!([0, 2])),
        (1, "info", "write", json!([0, 2])),
    ]);
    assert_eq!(verdict(&h), Validity::Invalid);
}

#[test]
fn cas_chains_follow_the_register() {
    let chain = [
        (0, "invoke", "write", json!([0, 0])),
        (0, "ok", "write", json!([0, 0])),
        (1, "invoke", "cas", json!([0, [0, 1]])),
        (1, "ok", "cas", json!([0, [0, 1]])),
        (0, "invoke", "cas", json!([0, [1, 2]])),
        (0, "ok", "cas", json!([0, [1, 2]])),
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 2])),
    ];
    assert_eq!(verdict(&history(&chain)), Validity::Valid);
    let mut broken = chain.to_vec();
    broken.push((1, "invoke", "cas", json!([0, [0, 3]])));
    broken.push((1, "ok", "cas", json!([0, [0, 3]])));
    let report = run(&history(&broken));
    assert_eq!(report.validity(), Validity::Invalid);
    let witness = only_key(&report).witness.as_ref().unwrap();
    assert_eq!(
        witness.final_states[0].why,
        "can't cas from 0 to 3 on a register holding 2"
    );
}

#[test]
fn a_crashed_cas_takes_effect_only_if_it_matches() {
    let prefix = [
        (0, "invoke", "write", json!([0, 0])),
        (0, "ok", "write", json!([0, 0])),
        (1, "invoke", "cas", json!([0, [0, 1]])),
        (1, "info", "cas", json!([0, [0, 1]])),
    ];
    let read = |v: u64| {
        [
            (2, "invoke", "read", json!([0, null])),
            (2, "ok", "read", json!([0, v])),
        ]
    };
    let with_reads = |vs: &[u64]| {
        let mut events = prefix.to_vec();
        vs.iter().for_each(|&v| events.extend(read(v)));
        history(&events)
    };
    assert_eq!(verdict(&with_reads(&[1])), Validity::Valid);
    assert_eq!(verdict(&with_reads(&[0, 1])), Validity::Valid);
    assert_eq!(verdict(&with_reads(&[1, 0])), Validity::Invalid);
    // From 2 the crashed cas cannot apply, so 1 is unreachable.
    let mut events = prefix.to_vec();
    events.splice(
        0..2,
        [
            (0, "invoke", "write", json!([0, 2])),
            (0, "ok", "write", json!([0, 2])),
        ],
    );
    events.extend(read(1));
    assert_eq!(verdict(&history(&events)), Validity::Invalid);
}

#[test]
fn failed_ops_and_crashed_reads_are_ignored() {
    let h = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
        (1, "invoke", "write", json!([0, 2])),
        (1, "fail", "write", json!([0, 2])),
        (1, "invoke", "cas", json!([0, [7, 8]])),
        (1, "fail", "cas", json!([0, [7, 8]])),
        (2, "invoke", "read", json!([0, null])),
        (2, "info", "read", json!([0, null])),
        (3, "invoke", "read", json!([0, null])),
        (3, "ok", "read", json!([0, 1])),
        (4, "invoke", "read", json!([0, null])),
    ]);
    let report = run(&h);
    assert_eq!(report.validity(), Validity::Valid);
    let key = only_key(&report);
    assert_eq!((key.ops, key.crashed, key.ignored), (2, 0, 4));
}

#[test]
fn a_read_of_null_is_accepted_in_any_state() {
    let h = history(&[
        (0, "invoke", "read", json!([0, null])),
        (0, "ok", "read", json!([0, null])),
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
        (0, "invoke", "read", json!([0, null])),
        (0, "ok", "read", json!([0, null])),
    ]);
    assert_eq!(verdict(&h), Validity::Valid);
}

#[test]
fn a_read_before_any_write_must_see_null() {
    let h = history(&[
        (0, "invoke", "read", json!([0, null])),
        (0, "ok", "read", json!([0, 1])),
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
    ]);
    let report = run(&h);
    assert_eq!(report.validity(), Validity::Invalid);
    let witness = only_key(&report).witness.as_ref().unwrap();
    assert!(witness.previous_ok.is_none());
    assert!(witness.linearized.is_empty());
    assert_eq!(witness.final_states[0].model, Value::Null);
}

#[test]
fn keys_are_independent_and_only_the_bad_one_fails() {
    let h = history(&[
        (0, "invoke", "write", json!([1, 1])),
        (0, "ok", "write", json!([1, 1])),
        (1, "invoke", "write", json!([0, 3])),
        (1, "ok", "write", json!([0, 3])),
        (0, "invoke", "read", json!([1, null])),
        (0, "ok", "read", json!([1, 3])),
        (1, "invoke", "read", json!([0, null])),
        (1, "ok", "read", json!([0, 3])),
        (2, "invoke", "write", json!([10, 0])),
        (2, "ok", "write", json!([10, 0])),
    ]);
    let report = run(&h);
    assert_eq!(report.validity(), Validity::Invalid);
    assert_eq!(report.failures, vec![json!(1)]);
    let keys: Vec<&Value> = report.results.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![&json!(0), &json!(1), &json!(10)]);
    let text = serde_json::to_value(&report).unwrap();
    assert_eq!(text["valid?"], json!(false));
    assert_eq!(text["failures"], json!([1]));
    assert_eq!(text["results"]["0"]["valid?"], json!(true));
    assert_eq!(text["results"]["1"]["valid?"], json!(false));
    assert_eq!(text["results"]["1"]["op"]["invoke"]["index"], json!(4));
    assert_eq!(text["results"]["1"]["final-states"][0]["model"], json!(1));
}

#[test]
fn nemesis_ops_and_lone_infos_are_ignored_and_malformed_ops_make_it_unknown() {
    let mut ops = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
    ])
    .into_ops();
    ops.insert(
        1,
        Op::new(
            0,
            0,
            OpType::Info,
            Process::Nemesis,
            "start-partition",
            json!("majority"),
        ),
    );
    assert_eq!(verdict(&History::new(ops.clone())), Validity::Valid);
    ops.push(Op::new(
        0,
        9,
        OpType::Invoke,
        Process::Client(5),
        "write",
        json!(3),
    ));
    ops.push(Op::new(
        0,
        9,
        OpType::Ok,
        Process::Client(5),
        "write",
        json!(3),
    ));
    ops.push(Op::new(
        0,
        9,
        OpType::Info,
        Process::Client(6),
        "write",
        json!([0, 2]),
    ));
    ops.push(Op::new(
        0,
        9,
        OpType::Ok,
        Process::Client(7),
        "read",
        json!([0, 1]),
    ));
    let report = run(&History::new(ops));
    assert_eq!(report.validity(), Validity::Unknown);
    assert_eq!(
        report.errors,
        vec![
            "op 3: value 3 is not [key, argument]".to_string(),
            "op 6: completion without an invocation".to_string(),
        ]
    );
}

#[test]
fn real_time_order_comes_from_positions_not_timestamps() {
    let mut ops = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (0, "ok", "write", json!([0, 1])),
        (1, "invoke", "write", json!([0, 2])),
        (1, "ok", "write", json!([0, 2])),
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 1])),
    ])
    .into_ops();
    ops.iter_mut().for_each(|op| op.time = 7);
    assert_eq!(verdict(&History::new(ops)), Validity::Invalid);
}

#[test]
fn a_tiny_budget_gives_an_unknown_verdict() {
    let h = history(&[
        (0, "invoke", "write", json!([0, 1])),
        (1, "invoke", "write", json!([0, 2])),
        (0, "ok", "write", json!([0, 1])),
        (1, "ok", "write", json!([0, 2])),
        (2, "invoke", "read", json!([0, null])),
        (2, "ok", "read", json!([0, 2])),
    ]);
    let tiny_cache = Options {
        max_cache_entries: 1,
        ..Options::default()
    };
    let report = check(&h, &tiny_cache);
    assert_eq!(report.validity(), Validity::Unknown);
    assert!(report.failures.is_empty());
    assert_eq!(report.unknown_keys, vec![json!(0)]);
    let error = only_key(&report).error.as_ref().unwrap();
    assert!(error.contains("cache limit of 1 configurations"), "{error}");
    let no_time = Options {
        time_limit: Duration::ZERO,
        ..Options::default()
    };
    let report = check(&h, &no_time);
    assert_eq!(report.validity(), Validity::Unknown);
    assert!(
        only_key(&report)
            .error
            .as_ref()
            .unwrap()
            .contains("time limit")
    );
}

/// A model other than the register: a counter with increments and reads.
struct Counter;

impl Model for Counter {
    type State = i64;
    type Op = (bool, i64);

    fn init(&self) -> i64 {
        0
    }

    fn step(&self, state: &i64, &(is_add, n): &(bool, i64)) -> Option<i64> {
        match is_add {
            true => Some(state + n),
            false => (*state == n).then_some(*state),
        }
    }

    fn describe(&self, state: &i64) -> Value {
        json!(state)
    }

    fn explain(&self, state: &i64, op: &(bool, i64)) -> String {
        format!("{op:?} on {state}")
    }
}

#[test]
fn the_search_works_for_other_models() {
    let call = |invoke, complete, op| Call {
        invoke,
        complete,
        op,
    };
    let budget = Budget {
        deadline: Instant::now() + Duration::from_secs(10),
        max_configurations: 1000,
    };
    // add 1 ‖ add 2, then read: 3 is fine, 1 is not (both adds finished).
    let calls = |seen| {
        vec![
            call(0, Some(2), (true, 1)),
            call(1, Some(3), (true, 2)),
            call(4, Some(5), (false, seen)),
        ]
    };
    assert!(matches!(
        search(&Counter, &calls(3), &budget).outcome,
        Outcome::Linearizable
    ));
    let Outcome::NotLinearizable(stuck) = search(&Counter, &calls(1), &budget).outcome else {
        panic!("a read of 1 after both adds is not linearizable");
    };
    assert_eq!((stuck.op, stuck.states), (2, vec![3]));
}

// ---------------------------------------------------------------------------
// Differential tests

/// Checks `count` random histories of `shape` against the brute force and
/// returns how many were valid and invalid.
fn compare_with_brute_force(shape: Shape, count: u64) -> (usize, usize) {
    let (mut valid, mut invalid) = (0, 0);
    for seed in 0..count {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let h = random_history(&mut rng, shape);
        let expected = brute_force(&h);
        let report = run(&h);
        let want = Validity::from_bool(expected);
        assert_eq!(
            report.validity(),
            want,
            "{shape:?} seed {seed}: {:#?}",
            h.ops()
        );
        assert_witness_replays(&h, &report);
        *(if expected { &mut valid } else { &mut invalid }) += 1;
    }
    (valid, invalid)
}

#[test]
fn agrees_with_brute_force_on_random_small_histories() {
    for crash_percent in [10, 25] {
        let shape = Shape {
            max_ops: 8,
            crash_percent,
        };
        let (valid, invalid) = compare_with_brute_force(shape, 6_000);
        // Both verdicts must be well represented for agreement to mean much.
        assert!(
            valid > 1500 && invalid > 1500,
            "{valid} valid, {invalid} invalid"
        );
    }
}

/// Longer histories with many crashed operations exercise the cache's
/// dominance check, which small ones rarely reach.
#[test]
fn agrees_with_brute_force_on_crash_heavy_histories() {
    let shape = Shape {
        max_ops: 14,
        crash_percent: 50,
    };
    let (valid, invalid) = compare_with_brute_force(shape, 3_000);
    assert!(
        valid > 750 && invalid > 750,
        "{valid} valid, {invalid} invalid"
    );
}

/// The witness's linearized prefix is a legal sequence of the key's
/// operations, and the stuck operation fails in every final state.
fn assert_witness_replays(h: &History, report: &LinearizabilityReport) {
    let plain = plain_ops(h);
    let by_invoke = |i: usize| {
        plain
            .iter()
            .find(|p| p.invoke == i)
            .expect("op of the history")
    };
    for (_, key) in &report.results {
        let Some(witness) = &key.witness else {
            continue;
        };
        let mut registers = Registers::new();
        for &i in &witness.linearized {
            registers = apply(&registers, by_invoke(i)).expect("linearized prefix is legal");
        }
        let stuck = by_invoke(witness.op.invoke.index);
        assert!(
            apply(&registers, stuck).is_none(),
            "stuck op applies after the prefix"
        );
        for state in &witness.final_states {
            let registers = Registers::from([(stuck.key.clone(), state.model.clone())]);
            assert!(
                apply(&registers, stuck).is_none(),
                "stuck op applies in {}",
                state.model
            );
        }
    }
}

#[test]
fn longer_histories_linearizable_by_construction_are_valid() {
    for seed in 0..300u64 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        // Ten small plans one after another; each batch gets its own
        // process ids, and crashed operations stay concurrent to the end.
        let mut planned = Vec::new();
        for batch in 0..10u64 {
            for mut op in plan(&mut rng, 8, 25) {
                let shift = 1000 * batch;
                op.process += 100 * batch;
                (op.invoke, op.point, op.complete) =
                    (op.invoke + shift, op.point + shift, op.complete + shift);
                planned.push(op);
            }
        }
        simulate(&mut planned, &mut rng);
        let h = write_down(&planned);
        let threads = Options {
            threads: 1 + (seed % 2) as usize,
            ..Options::default()
        };
        assert_eq!(
            check(&h, &threads).validity(),
            Validity::Valid,
            "seed {seed}"
        );
    }
}
