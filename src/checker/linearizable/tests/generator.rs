//! Random small lin-kv histories: operations planned on a few threads, run
//! against real registers (so linearizable by construction), then possibly
//! corrupted.

use std::collections::BTreeMap;

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use serde_json::{Value, json};

use crate::history::{History, Op, OpType, Process};

/// How an operation ends in a generated history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Fate {
    Ok,
    Fail,
    /// Completed `info`; `true` if it took effect.
    Info(bool),
    /// Never completed; `true` if it took effect.
    Unfinished(bool),
}

/// A generated operation before it is written down as history entries.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) process: u64,
    pub(super) f: &'static str,
    pub(super) key: u64,
    /// Write value or `[from, to]`; for reads, the value seen.
    pub(super) arg: Value,
    pub(super) invoke: u64,
    /// When it takes effect: strictly inside its interval.
    pub(super) point: u64,
    pub(super) complete: u64,
    pub(super) fate: Fate,
}

/// The size and fault mix of random histories.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) max_ops: usize,
    /// Percentage of operations that end `info` or never complete.
    pub(super) crash_percent: u32,
}

/// Up to `max_ops` operations on 1-2 keys by 1-4 threads, values 0..3, run
/// against real registers (so linearizable by construction), then with
/// probability 0.6 one result altered at random.
pub(super) fn random_history(rng: &mut Xoshiro256PlusPlus, shape: Shape) -> History {
    let mut planned = plan(rng, shape.max_ops, shape.crash_percent);
    simulate(&mut planned, rng);
    if rng.random_bool(0.6) {
        let victim = rng.random_range(0..planned.len());
        corrupt_op(&mut planned[victim], rng);
    }
    write_down(&planned)
}

pub(super) fn plan(
    rng: &mut Xoshiro256PlusPlus,
    max_ops: usize,
    crash_percent: u32,
) -> Vec<Planned> {
    let threads = rng.random_range(1..=4u64);
    let keys = rng.random_range(1..=2u64);
    // Per thread: its process id (None once it stopped) and when it is free.
    let mut process: Vec<Option<u64>> = (0..threads).map(Some).collect();
    let mut free_at = vec![0u64; threads as usize];
    let mut planned = Vec::new();
    for _ in 0..rng.random_range(1..=max_ops) {
        let thread = rng.random_range(0..threads) as usize;
        let Some(p) = process[thread] else { continue };
        // Even times for events, odd for effect points: no ambiguous ties.
        let invoke = free_at[thread] + 2 * rng.random_range(0..4);
        let complete = invoke + 2 * rng.random_range(1..5);
        let point = invoke + 1 + 2 * rng.random_range(0..(complete - invoke) / 2);
        free_at[thread] = complete + 2;
        let fate = if rng.random_range(0..100) < crash_percent {
            match rng.random_bool(0.8) {
                true => Fate::Info(rng.random_bool(0.5)),
                false => Fate::Unfinished(rng.random_bool(0.5)),
            }
        } else if rng.random_bool(0.13) {
            Fate::Fail
        } else {
            Fate::Ok
        };
        process[thread] = match fate {
            Fate::Info(_) => Some(p + threads),
            Fate::Unfinished(_) => None,
            _ => Some(p),
        };
        let f = ["read", "write", "cas"][rng.random_range(0..3)];
        let arg = match f {
            "read" => Value::Null,
            "write" => json!(rng.random_range(0..3)),
            _ => json!([rng.random_range(0..3), rng.random_range(0..3)]),
        };
        let key = rng.random_range(0..keys);
        planned.push(Planned {
            process: p,
            f,
            key,
            arg,
            invoke,
            point,
            complete,
            fate,
        });
    }
    planned
}

/// Applies the operations at their effect points to real registers, filling
/// in read results; a cas that does not match fails (or crashes without
/// effect), as a real lin-kv would answer error 22.
pub(super) fn simulate(planned: &mut [Planned], rng: &mut Xoshiro256PlusPlus) {
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| planned[i].point);
    let mut registers: BTreeMap<u64, Value> = BTreeMap::new();
    for i in order {
        let op = &mut planned[i];
        let current = registers.get(&op.key).cloned().unwrap_or(Value::Null);
        let takes_effect = match op.fate {
            Fate::Ok => true,
            Fate::Fail => false,
            Fate::Info(happened) | Fate::Unfinished(happened) => happened,
        };
        match op.f {
            "read" if current.is_null() && op.fate == Fate::Ok && rng.random_bool(0.5) => {
                op.fate = Fate::Fail // Maelstrom's error 20, key does not exist
            }
            "read" => op.arg = current,
            "write" if takes_effect => {
                registers.insert(op.key, op.arg.clone());
            }
            // A mismatch fails definitely (error 22); crashed ones stay so.
            "cas" if op.arg[0] != current && op.fate == Fate::Ok => op.fate = Fate::Fail,
            "cas" if op.arg[0] != current => {}
            "cas" if takes_effect => {
                registers.insert(op.key, op.arg[1].clone());
            }
            _ => {}
        }
    }
}

/// Alters one operation's result or outcome, which may break linearizability.
fn corrupt_op(op: &mut Planned, rng: &mut Xoshiro256PlusPlus) {
    let mut value = || -> Value { json!(rng.random_range(0..3)) };
    match (op.f, op.fate) {
        ("read", _) => {
            op.fate = Fate::Ok;
            op.arg = value();
        }
        ("write", _) => op.arg = value(),
        (_, Fate::Ok) => op.fate = Fate::Fail,
        _ => op.fate = Fate::Ok,
    }
}

/// The history entries of the planned operations, in time order.
pub(super) fn write_down(planned: &[Planned]) -> History {
    let mut events: Vec<(u64, Op)> = Vec::new();
    for op in planned {
        let client = Process::Client(op.process);
        let invoke_value = match op.f {
            "read" => json!([op.key, null]),
            _ => json!([op.key, op.arg]),
        };
        events.push((
            op.invoke,
            Op::new(
                0,
                op.invoke,
                OpType::Invoke,
                client,
                op.f,
                invoke_value.clone(),
            ),
        ));
        let (kind, value) = match op.fate {
            Fate::Ok => (OpType::Ok, json!([op.key, op.arg])),
            Fate::Fail => (OpType::Fail, invoke_value),
            Fate::Info(_) => (OpType::Info, invoke_value),
            Fate::Unfinished(_) => continue,
        };
        events.push((
            op.complete,
            Op::new(0, op.complete, kind, client, op.f, value),
        ));
    }
    events.sort_by_key(|(time, _)| *time);
    History::new(events.into_iter().map(|(_, op)| op).collect())
}
