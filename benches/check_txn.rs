//! Times the txn-rw-register checker on synthetic histories shaped like a
//! 20 s Maelstrom run at `--rate 1000` with 2 nodes and `--concurrency 2n`
//! (about 20,000 transactions of 1-4 micro-ops, generated as Elle does:
//! 10 active keys chosen exponentially, unique writes per key, keys retired
//! after 16 writes), against two simulated stores:
//!
//! - `serializable`: each transaction takes effect atomically at a moment
//!   between its invocation and completion (strict serializable, so every
//!   model should pass);
//! - `dirty`: micro-ops take effect one by one as they run, visible to
//!   everyone at once, and failed transactions are not rolled back, so
//!   read-committed should fail with G1a or G1b;
//! - `stale`: as `serializable`, but read-only transactions read a
//!   snapshot 20 ms old: still serializable, not strict serializable. The
//!   realtime edges then tie thousands of transactions into large strongly
//!   connected components, the hard case for the cycle search.
//!
//! `make bench` runs it; it prints the check time and verdict per model.

use std::hint::black_box;
use std::time::{Duration, Instant};

use glomers::checker::elle::{ConsistencyModel, TxnReport, check};
use glomers::history::{History, NANOS_PER_MS, Op, OpType, Process};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

const SECONDS: u64 = 20;
const RATE_PER_SEC: u64 = 1000;
const CONCURRENCY: usize = 4;
const KEY_COUNT: usize = 10;
const MAX_WRITES_PER_KEY: i64 = 16;
const MAX_TXN_LENGTH: usize = 4;
const RUNS: usize = 3;

/// A micro-op: write or read, key, value (None for reads until run).
type Mop = (bool, i64, Option<i64>);

/// How a transaction ends.
#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    Fail,
    /// Timed out; took effect or not at random.
    Info {
        applied: bool,
    },
}

/// One generated transaction with its schedule.
struct Planned {
    process: u64,
    invoke: u64,
    complete: u64,
    outcome: Outcome,
    mops: Vec<Mop>,
}

/// Elle's rw-register generator: unique writes per key over a pool of
/// active keys, exponentially distributed, retired after a write cap.
struct TxnGen {
    active: Vec<i64>,
    next_value: std::collections::HashMap<i64, i64>,
}

impl TxnGen {
    fn new() -> TxnGen {
        TxnGen {
            active: (0..KEY_COUNT as i64).collect(),
            next_value: Default::default(),
        }
    }

    /// Key index i is twice as likely as i - 1 (Elle's exponential
    /// distribution with base 2).
    fn key(&self, rng: &mut Xoshiro256PlusPlus) -> i64 {
        let scale = ((1u64 << KEY_COUNT) - 1) as f64 * 2.0;
        let u: f64 = rng.random_range(0.0..scale);
        let i = ((u + 2.0).log2() - 1.0).floor() as usize;
        self.active[i.min(KEY_COUNT - 1)]
    }

    fn txn(&mut self, rng: &mut Xoshiro256PlusPlus) -> Vec<Mop> {
        let len = rng.random_range(1..=MAX_TXN_LENGTH);
        let mut mops = Vec::with_capacity(len);
        while mops.len() < len {
            let k = self.key(rng);
            if rng.random_range(0..2) == 0 {
                mops.push((false, k, None));
                continue;
            }
            let v = *self.next_value.get(&k).unwrap_or(&1);
            if v > MAX_WRITES_PER_KEY {
                let fresh = self.active.iter().max().unwrap() + 1;
                let slot = self.active.iter().position(|&a| a == k).unwrap();
                self.active[slot] = fresh;
                continue;
            }
            self.next_value.insert(k, v + 1);
            mops.push((true, k, Some(v)));
        }
        mops
    }
}

/// Schedules transactions as Maelstrom's stagger does: each op is due a
/// uniform [0, 2/rate) after the previous one, and starts when a worker
/// is free.
fn plan(rng: &mut Xoshiro256PlusPlus, fail_rate: f64, info_rate: f64) -> Vec<Planned> {
    let dt = 1_000_000_000 / RATE_PER_SEC;
    let mut generator = TxnGen::new();
    let mut free_at = [0u64; CONCURRENCY];
    let mut process: Vec<u64> = (0..CONCURRENCY as u64).collect();
    let mut due = 0u64;
    let mut planned = Vec::new();
    while due < SECONDS * 1_000_000_000 {
        let worker = (0..CONCURRENCY).min_by_key(|&w| free_at[w]).unwrap();
        let invoke = due.max(free_at[worker] + 1);
        let latency = rng.random_range(NANOS_PER_MS / 2..3 * NANOS_PER_MS);
        let roll: f64 = rng.random_range(0.0..1.0);
        let outcome = if roll < fail_rate {
            Outcome::Fail
        } else if roll < fail_rate + info_rate {
            Outcome::Info {
                applied: rng.random_range(0..2) == 0,
            }
        } else {
            Outcome::Ok
        };
        planned.push(Planned {
            process: process[worker],
            invoke,
            complete: invoke + latency,
            outcome,
            mops: generator.txn(rng),
        });
        free_at[worker] = invoke + latency;
        if let Outcome::Info { .. } = outcome {
            // Jepsen retires a process after an indeterminate result.
            process[worker] += CONCURRENCY as u64;
        }
        due = invoke + rng.random_range(0..2 * dt);
    }
    planned
}

/// A store where each transaction happens atomically at a random moment
/// within its lifetime, except that read-only transactions read the state
/// as it was `lag` nanoseconds before that moment.
fn run_serializable(rng: &mut Xoshiro256PlusPlus, txns: &mut [Planned], lag: u64) {
    let mut order: Vec<(u64, usize)> = txns
        .iter()
        .enumerate()
        .map(|(i, t)| (rng.random_range(t.invoke..=t.complete), i))
        .collect();
    order.sort_unstable();
    // Each key's versions, as (time written, value), in time order.
    let mut versions: std::collections::HashMap<i64, Vec<(u64, i64)>> = Default::default();
    for (at, i) in order {
        let t = &mut txns[i];
        if matches!(t.outcome, Outcome::Fail | Outcome::Info { applied: false }) {
            continue;
        }
        let read_only = t.mops.iter().all(|m| !m.0);
        let snapshot = if read_only {
            at.saturating_sub(lag)
        } else {
            at
        };
        let mut own: Vec<(i64, i64)> = Vec::new();
        for (write, k, v) in &mut t.mops {
            if *write {
                own.push((*k, v.unwrap()));
                versions.entry(*k).or_default().push((at, v.unwrap()));
            } else if let Some(&(_, mine)) = own.iter().rev().find(|(ok, _)| ok == k) {
                *v = Some(mine);
            } else {
                let history = versions.get(k).map_or(&[][..], Vec::as_slice);
                let visible = history.partition_point(|&(t, _)| t <= snapshot);
                *v = visible.checked_sub(1).map(|i| history[i].1);
            }
        }
    }
}

/// A store where every micro-op takes effect on its own, immediately
/// visible, and nothing is ever rolled back.
fn run_dirty(rng: &mut Xoshiro256PlusPlus, txns: &mut [Planned]) {
    let mut events: Vec<(u64, usize, usize)> = Vec::new();
    for (i, t) in txns.iter().enumerate() {
        let mut times: Vec<u64> = (0..t.mops.len())
            .map(|_| rng.random_range(t.invoke..=t.complete))
            .collect();
        times.sort_unstable();
        events.extend(times.into_iter().enumerate().map(|(m, at)| (at, i, m)));
    }
    events.sort_unstable();
    let mut state = std::collections::HashMap::new();
    for (_, i, m) in events {
        let (write, k, v) = &mut txns[i].mops[m];
        if *write {
            state.insert(*k, *v);
        } else {
            *v = state.get(k).copied().flatten();
        }
    }
}

fn txn_value(mops: &[Mop], with_reads: bool) -> Value {
    let mops = mops.iter().map(|&(write, k, v)| {
        let v = if write || with_reads { v } else { None };
        json!([if write { "w" } else { "r" }, k, v])
    });
    Value::Array(mops.collect())
}

fn to_history(txns: &[Planned]) -> History {
    let mut events: Vec<(u64, Op)> = Vec::new();
    for t in txns {
        let p = Process::Client(t.process);
        let invoke = txn_value(&t.mops, false);
        events.push((
            t.invoke,
            Op::new(0, t.invoke, OpType::Invoke, p, "txn", invoke.clone()),
        ));
        let (kind, value) = match t.outcome {
            Outcome::Ok => (OpType::Ok, txn_value(&t.mops, true)),
            Outcome::Fail => (OpType::Fail, invoke),
            Outcome::Info { .. } => (OpType::Info, invoke),
        };
        events.push((t.complete, Op::new(0, t.complete, kind, p, "txn", value)));
    }
    events.sort_by_key(|(at, _)| *at);
    History::new(events.into_iter().map(|(_, op)| op).collect())
}

/// The simulated stores.
#[derive(Clone, Copy)]
enum Store {
    Serializable,
    Dirty,
    Stale,
}

fn generate(seed: u64, store: Store) -> History {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut txns = match store {
        Store::Dirty => plan(&mut rng, 0.02, 0.002),
        _ => plan(&mut rng, 0.005, 0.002),
    };
    match store {
        Store::Serializable => run_serializable(&mut rng, &mut txns, 0),
        Store::Stale => run_serializable(&mut rng, &mut txns, 20 * NANOS_PER_MS),
        Store::Dirty => run_dirty(&mut rng, &mut txns),
    }
    to_history(&txns)
}

/// The fastest of a few runs, and the report.
fn time_check(history: &History, model: ConsistencyModel) -> (Duration, TxnReport) {
    let mut best = Duration::MAX;
    let mut report = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let r = black_box(check(black_box(history), model));
        best = best.min(start.elapsed());
        report = Some(r);
    }
    (best, report.expect("at least one run"))
}

fn main() {
    let models = [
        ConsistencyModel::ReadUncommitted,
        ConsistencyModel::ReadCommitted,
        ConsistencyModel::Serializable,
        ConsistencyModel::StrictSerializable,
    ];
    let stores = [
        ("serializable", Store::Serializable),
        ("dirty", Store::Dirty),
        ("stale", Store::Stale),
    ];
    for (name, store) in stores {
        let history = generate(42, store);
        println!("store {name}: {} history entries", history.len());
        for model in models {
            let (took, r) = time_check(&history, model);
            let s = &r.stats;
            println!(
                "  {:<20} {:>8.1} ms  valid? {:<7} txns {} (ok {}, fail {}, info {}), \
                 edges ww {} wr {} rw {} rt {}, sccs {} (largest {}), timeouts {}, types {:?}",
                model.name(),
                took.as_secs_f64() * 1e3,
                r.validity().to_string(),
                s.txns,
                s.ok,
                s.fail,
                s.info,
                s.edges.ww,
                s.edges.wr,
                s.edges.rw,
                s.edges.realtime,
                s.sccs,
                s.largest_scc,
                s.cycle_search_timeouts,
                r.anomaly_types,
            );
        }
    }
}
