//! Times the lin-kv linearizability checker on a synthetic history shaped
//! like a 60 s Maelstrom run (`-w lin-kv --node-count 3 --concurrency 4n
//! --rate 100 --nemesis partition`), produced by simulating a real
//! linearizable register (so it must be valid), and on the same history
//! with one stale read injected (so it must be invalid).
//!
//! Simulation: 12 worker threads bound to nodes n0..n2 round-robin, in two
//! groups of 6 per key (3 readers, 3 doing write:cas 1:2, values 0..4); ops
//! start at a global stagger of uniform [0, 20 ms) when a thread is free;
//! each takes effect at a random point 1..30 ms after its invocation and
//! returns 1..30 ms later. Every 10 s the nemesis isolates one node or heals;
//! most ops on an isolated node time out after 1 s: reads fail, writes and
//! cas end `info` and took effect (at some later point) or not, at random.
//! After an `info` the thread's process becomes old + 12; a group moves to a
//! fresh key once 20 distinct processes have used its key.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use glomers::checker::linearizable::{LinearizabilityReport, Options, check};
use glomers::history::{History, NANOS_PER_MS, Op, OpType, Process, Time};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

const NODES: usize = 3;
const THREADS: usize = 12;
const GROUP: usize = 6;
const READERS_PER_GROUP: usize = 3;
const PROCESS_LIMIT: usize = 20;
const RUN: Time = 60_000 * NANOS_PER_MS;
const STAGGER: Time = 20 * NANOS_PER_MS;
const TIMEOUT: Time = 1_000 * NANOS_PER_MS;
const NEMESIS_EVERY: Time = 10_000 * NANOS_PER_MS;

fn main() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut planned = plan(&mut rng);
    simulate(&mut planned);
    let valid = write_down(&planned, &nemesis_ops());
    println!("{}", describe(&valid));
    let one_core = Options {
        threads: 1,
        ..Options::default()
    };
    measure("valid, 1 thread", &valid, &one_core);
    measure("valid, default threads", &valid, &Options::default());
    let stale = inject_stale_read(&mut planned);
    let invalid = write_down(&planned, &nemesis_ops());
    println!("injected: {stale}");
    let report = measure("stale read, 1 thread", &invalid, &one_core);
    print_witness(&report);
}

fn print_witness(report: &LinearizabilityReport) {
    let Some(bad_key) = report.failures.first() else {
        return;
    };
    let (_, result) = report.results.iter().find(|(k, _)| k == bad_key).unwrap();
    let witness = result.witness.as_ref().unwrap();
    println!("witness for key {bad_key}: {}", witness.explanation);
    println!("  op:          {}", json(&witness.op));
    println!("  previous-ok: {}", json(&witness.previous_ok));
    println!("  final-states: {}", json(&witness.final_states));
    println!(
        "  {} concurrent ops, {} ops in the linearized prefix",
        witness.concurrent.len(),
        witness.linearized.len()
    );
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap()
}

fn describe(history: &History) -> String {
    let client = history.client_ops().count();
    let infos = history.client_ops().filter(|op| op.is_info()).count();
    let fails = history.client_ops().filter(|op| op.is_fail()).count();
    format!(
        "history: {} entries, {} client ops ({fails} fail, {infos} info)",
        history.len(),
        client / 2
    )
}

/// Checks `history` a few times and prints the fastest run.
fn measure(label: &str, history: &History, options: &Options) -> LinearizabilityReport {
    let mut best = Duration::MAX;
    let mut report = None;
    for _ in 0..3 {
        let start = Instant::now();
        report = Some(check(history, options));
        best = best.min(start.elapsed());
    }
    let report = report.unwrap();
    println!(
        "{label:24} {:>9.1} ms  valid? {:<7} keys {:3}  ops {:5}  configurations {}",
        best.as_secs_f64() * 1e3,
        report.validity().to_string(),
        report.key_count,
        report.op_count,
        report.configurations
    );
    report
}

/// A client operation before it is written down as history entries.
#[derive(Debug, Clone)]
struct Planned {
    process: u64,
    f: &'static str,
    key: u64,
    /// Write value or `[from, to]`; for ok reads, the value seen.
    arg: Value,
    invoke: Time,
    /// When it takes effect, if it does.
    point: Option<Time>,
    complete: Time,
    outcome: OpType,
}

/// The nemesis's partition windows: node isolated from `start` to `end`.
fn partitions() -> Vec<(usize, Time, Time)> {
    // Start at 10 s, 30 s, 50 s; heal 10 s later.
    (0..3)
        .map(|i| {
            let start = NEMESIS_EVERY * (2 * i + 1);
            (i as usize % NODES, start, start + NEMESIS_EVERY)
        })
        .collect()
}

fn nemesis_ops() -> Vec<(Time, OpType, &'static str)> {
    let mut ops = Vec::new();
    for (_, start, end) in partitions() {
        for (time, f) in [(start, "start-partition"), (end, "stop-partition")] {
            ops.push((time, OpType::Invoke, f));
            ops.push((time + 1, OpType::Info, f));
        }
    }
    ops
}

fn isolated(node: usize, at: Time) -> bool {
    partitions()
        .iter()
        .any(|&(n, start, end)| n == node && (start..end).contains(&at))
}

/// Each thread's group key and the processes that used it.
struct Group {
    key: u64,
    processes: HashSet<u64>,
}

fn plan(rng: &mut Xoshiro256PlusPlus) -> Vec<Planned> {
    let mut process: Vec<u64> = (0..THREADS as u64).collect();
    let mut free_at = [0; THREADS];
    let mut groups: Vec<Group> = (0..THREADS / GROUP)
        .map(|g| Group {
            key: g as u64,
            processes: HashSet::new(),
        })
        .collect();
    let mut next_key = groups.len() as u64;
    let mut planned = Vec::new();
    let mut slot: Time = 0;
    while slot < RUN {
        let start = slot.max(*free_at.iter().min().unwrap());
        let free: Vec<usize> = (0..THREADS).filter(|&t| free_at[t] <= start).collect();
        let thread = free[rng.random_range(0..free.len())];
        let group = &mut groups[thread / GROUP];
        if !group.processes.contains(&process[thread]) && group.processes.len() == PROCESS_LIMIT {
            *group = Group {
                key: next_key,
                processes: HashSet::new(),
            };
            next_key += 1;
        }
        group.processes.insert(process[thread]);
        let op = plan_op(rng, thread, process[thread], group.key, start);
        free_at[thread] = op.complete + NANOS_PER_MS;
        if op.outcome == OpType::Info {
            process[thread] += THREADS as u64;
        }
        planned.push(op);
        slot = start + rng.random_range(0..STAGGER);
    }
    planned
}

fn plan_op(
    rng: &mut Xoshiro256PlusPlus,
    thread: usize,
    process: u64,
    key: u64,
    invoke: Time,
) -> Planned {
    let f = if thread % GROUP < READERS_PER_GROUP {
        "read"
    } else if rng.random_bool(1.0 / 3.0) {
        "write"
    } else {
        "cas"
    };
    let arg = match f {
        "read" => Value::Null,
        "write" => json!(rng.random_range(0..5)),
        _ => json!([rng.random_range(0..5), rng.random_range(0..5)]),
    };
    let latency = |rng: &mut Xoshiro256PlusPlus| rng.random_range(NANOS_PER_MS..30 * NANOS_PER_MS);
    let timed_out = isolated(thread % NODES, invoke) && rng.random_bool(0.9);
    let (point, complete, outcome) = if !timed_out {
        let point = invoke + latency(rng);
        (Some(point), point + latency(rng), OpType::Ok)
    } else if f == "read" {
        (None, invoke + TIMEOUT, OpType::Fail)
    } else {
        // It may still have been applied, even after the client gave up.
        let point = rng
            .random_bool(0.5)
            .then(|| invoke + rng.random_range(0..2 * TIMEOUT));
        (point, invoke + TIMEOUT, OpType::Info)
    };
    Planned {
        process,
        f,
        key,
        arg,
        invoke,
        point,
        complete,
        outcome,
    }
}

/// Applies the operations at their points to real registers: reads see the
/// current value (error 20, a failure, when there is none yet); a cas that
/// does not match has no effect and, if it was going to be ok, fails
/// (error 22).
fn simulate(planned: &mut [Planned]) {
    let mut order: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].point.is_some())
        .collect();
    order.sort_by_key(|&i| planned[i].point);
    let mut registers: BTreeMap<u64, Value> = BTreeMap::new();
    for i in order {
        let op = &mut planned[i];
        let current = registers.get(&op.key).cloned().unwrap_or(Value::Null);
        match op.f {
            "read" if current.is_null() => op.outcome = OpType::Fail,
            "read" => op.arg = current,
            "write" => {
                registers.insert(op.key, op.arg.clone());
            }
            _ if op.arg[0] == current => {
                registers.insert(op.key, op.arg[1].clone());
            }
            _ if op.outcome == OpType::Ok => op.outcome = OpType::Fail,
            _ => {}
        }
    }
}

/// Makes one ok read in the middle of the run return the value its key held
/// before a write that had completed before the read began, choosing a read
/// where nothing could have restored that value in between.
fn inject_stale_read(planned: &mut [Planned]) -> String {
    let middle = planned.len() / 2;
    for r in middle..planned.len() {
        let read = &planned[r];
        if read.f != "read" || read.outcome != OpType::Ok {
            continue;
        }
        if let Some(stale) = stale_value(planned, read) {
            let text = format!(
                "op {r} of the plan (process {}, key {}) now reads {stale} instead of {}",
                read.process, read.key, read.arg
            );
            planned[r].arg = stale;
            return text;
        }
    }
    panic!("no read to make stale");
}

/// A value `read` cannot legally return although the key held it earlier.
fn stale_value(planned: &[Planned], read: &Planned) -> Option<Value> {
    let same_key = |op: &&Planned| op.key == read.key && op.f != "read";
    // The last ok write or cas to complete before the read was invoked.
    let last = planned
        .iter()
        .filter(same_key)
        .filter(|op| op.outcome == OpType::Ok && op.complete < read.invoke)
        .max_by_key(|op| op.complete)?;
    // A successful cas proves what the key held just before it.
    let stale = match last.f {
        "cas" if last.arg[0] != last.arg[1] => last.arg[0].clone(),
        _ => return None,
    };
    // Could any operation have (re)written `stale` after `last` began?
    let writes = |op: &Planned| match op.f {
        "write" => op.arg == stale,
        _ => op.arg[1] == stale,
    };
    let could_follow = |op: &&Planned| {
        let may_happen = op.outcome == OpType::Info || op.outcome == OpType::Ok;
        let after_last = op.outcome == OpType::Info || op.complete > last.invoke;
        may_happen && after_last && op.invoke < read.complete
    };
    let restorable = planned
        .iter()
        .filter(same_key)
        .filter(could_follow)
        .any(writes);
    (stale != read.arg && !restorable).then_some(stale)
}

/// The history entries of the plan plus the nemesis's, in time order.
fn write_down(planned: &[Planned], nemesis: &[(Time, OpType, &str)]) -> History {
    let mut events: Vec<(Time, Op)> = Vec::new();
    for op in planned {
        let client = Process::Client(op.process);
        let invoke_value = match op.f {
            "read" => json!([op.key, null]),
            _ => json!([op.key, op.arg]),
        };
        let complete_value = match op.outcome {
            OpType::Ok => json!([op.key, op.arg]),
            _ => invoke_value.clone(),
        };
        events.push((
            op.invoke,
            Op::new(0, op.invoke, OpType::Invoke, client, op.f, invoke_value),
        ));
        events.push((
            op.complete,
            Op::new(0, op.complete, op.outcome, client, op.f, complete_value),
        ));
    }
    for &(time, kind, f) in nemesis {
        events.push((
            time,
            Op::new(0, time, kind, Process::Nemesis, f, Value::Null),
        ));
    }
    events.sort_by_key(|(time, _)| *time);
    History::new(events.into_iter().map(|(_, op)| op).collect())
}
