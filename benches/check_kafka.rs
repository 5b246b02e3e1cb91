//! Times the kafka checker on synthetic histories shaped like a 20 s
//! Maelstrom run (`--rate 1000`, 2 nodes, `--concurrency 2n`): about 20,000
//! ops, half sends and half polls, commits after polls, keys retired after
//! 16 writes, periodic crashes, occasional timeouts, then the final phase of
//! full polls. The log behind it is either correct or faulty (a node that
//! sometimes reuses the latest offset, overwriting its message).
//!
//! `cargo bench --bench check_kafka` prints check times and verdicts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use glomers::checker::kafka;
use glomers::history::{History, Op, OpType, Process, Time};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

const CONCURRENCY: usize = 4;
const RATE: f64 = 1000.0;
const TIME_LIMIT: Time = 20 * SEC;
const KEY_COUNT: usize = 10;
const MAX_WRITES_PER_KEY: u64 = 16;
const SEC: Time = 1_000_000_000;
const MS: Time = 1_000_000;

fn main() {
    for (name, faulty) in [("correct", false), ("faulty (reused offsets)", true)] {
        let history = Simulation::new(7, faulty).run();
        let ops = history.ops().iter().filter(|op| op.is_invoke()).count();
        let (report, times) = time_checks(&history, 5);
        let best = times.iter().min().unwrap();
        let median = times[times.len() / 2];
        println!(
            "kafka check, {name}: {ops} ops ({} entries): best {best:.1?}, median {median:.1?}",
            history.len()
        );
        println!("  {}", shape(&history));
        let counts: Vec<String> = report_counts(&report);
        println!(
            "  valid? {}  error types: {}",
            report.validity(),
            counts.join(", ")
        );
        if !faulty {
            assert!(report.validity().is_valid(), "the correct log must pass");
        } else {
            assert!(!report.validity().is_valid(), "the faulty log must fail");
        }
    }
}

/// Runs the check `runs` times; the last report and each duration, sorted.
fn time_checks(history: &History, runs: usize) -> (kafka::KafkaReport, Vec<Duration>) {
    let mut times = Vec::with_capacity(runs);
    let mut report = None;
    for _ in 0..runs {
        let start = Instant::now();
        report = Some(kafka::check(history));
        times.push(start.elapsed());
    }
    times.sort();
    (report.expect("at least one run"), times)
}

/// Op counts per function, keys, polled pairs and info completions.
fn shape(history: &History) -> String {
    let mut by_f: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut pairs, mut infos) = (0, 0);
    let mut keys = std::collections::HashSet::new();
    for op in history.ops() {
        if op.is_invoke() {
            *by_f.entry(op.f.as_str()).or_default() += 1;
            continue;
        }
        infos += usize::from(op.is_info());
        if let Some(msgs) = op.value[0][1].as_object().filter(|_| op.f == "poll") {
            pairs += msgs
                .values()
                .map(|p| p.as_array().map_or(0, Vec::len))
                .sum::<usize>();
        }
        if op.f == "send" {
            keys.insert(op.value[0][1].to_string());
        }
    }
    format!(
        "{by_f:?}, {} keys, {pairs} polled pairs, {infos} info",
        keys.len()
    )
}

/// "type (count)" for every error type found.
fn report_counts(report: &kafka::KafkaReport) -> Vec<String> {
    let json = serde_json::to_value(report).expect("serialisable");
    report
        .error_types()
        .iter()
        .map(|t| match json[*t]["count"].as_u64() {
            Some(n) => format!("{t} ({n})"),
            None => format!(
                "{t} ({} keys)",
                json[*t]["unseen"].as_object().map_or(0, |m| m.len())
            ),
        })
        .collect()
}

/// The nodes' shared state: per key, a log of (offset, message) and the
/// committed offset.
#[derive(Default)]
struct Server {
    logs: HashMap<u64, Vec<(i64, i64)>>,
    committed: BTreeMap<u64, i64>,
    faulty: bool,
}

impl Server {
    /// Appends; a faulty server sometimes hands out the latest offset again,
    /// overwriting that offset's message.
    fn send(&mut self, rng: &mut Xoshiro256PlusPlus, key: u64, msg: i64) -> i64 {
        let log = self.logs.entry(key).or_default();
        if self.faulty && !log.is_empty() && rng.random_range(0..100) < 2 {
            let last = log.last_mut().unwrap();
            last.1 = msg;
            return last.0;
        }
        let offset = log.len() as i64;
        log.push((offset, msg));
        offset
    }

    /// Up to 10 messages of each requested key from its offset on.
    fn poll(&self, offsets: &BTreeMap<u64, i64>) -> BTreeMap<u64, Vec<(i64, i64)>> {
        let mut out = BTreeMap::new();
        for (key, from) in offsets {
            let log = self.logs.get(key).map_or(&[][..], |l| l.as_slice());
            let pairs = log.iter().filter(|(o, _)| o >= from).take(10).copied();
            out.insert(*key, pairs.collect());
        }
        out
    }
}

/// A worker thread: its current process and its client's local positions.
struct Worker {
    process: u64,
    free_at: Time,
    positions: BTreeMap<u64, i64>,
}

/// A kafka run, simulated: ops take effect atomically at invocation, so the
/// history is linearizable whenever the server is correct.
struct Simulation {
    rng: Xoshiro256PlusPlus,
    server: Server,
    workers: Vec<Worker>,
    entries: Vec<(Time, usize, Op)>,
    // The list-append generator's state.
    active_keys: Vec<u64>,
    writes: HashMap<u64, i64>,
    pending: Option<(u64, bool)>,
    // The poll-unseen wrapper's view, and every key's highest offset.
    sent: BTreeMap<u64, i64>,
    polled: BTreeMap<u64, i64>,
    max_offsets: BTreeMap<u64, i64>,
}

impl Simulation {
    fn new(seed: u64, faulty: bool) -> Simulation {
        let workers = (0..CONCURRENCY)
            .map(|t| Worker {
                process: t as u64,
                free_at: 0,
                positions: BTreeMap::new(),
            })
            .collect();
        Simulation {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            server: Server {
                faulty,
                ..Server::default()
            },
            workers,
            entries: Vec::new(),
            active_keys: (0..KEY_COUNT as u64).collect(),
            writes: HashMap::new(),
            pending: None,
            sent: BTreeMap::new(),
            polled: BTreeMap::new(),
            max_offsets: BTreeMap::new(),
        }
    }

    fn run(mut self) -> History {
        let mut now: Time = 0;
        let mut next_crash: Time = 0;
        while now < TIME_LIMIT {
            let thread = self.free_worker(now);
            now = now.max(self.workers[thread].free_at);
            if next_crash <= now {
                self.crash(thread, now);
                next_crash = now + self.rng.random_range(0..2 * 30 * SEC / CONCURRENCY as u64);
            } else {
                self.client_op(thread, now);
            }
            now += self.rng.random_range(0..(2.0 * SEC as f64 / RATE) as u64);
        }
        let end = self.workers.iter().map(|w| w.free_at).max().unwrap_or(now);
        self.final_phase(end + 10 * SEC);
        self.entries.sort_by_key(|(t, seq, _)| (*t, *seq));
        History::new(self.entries.into_iter().map(|(_, _, op)| op).collect())
    }

    /// The worker that is free first (round-robin among the free ones).
    fn free_worker(&self, now: Time) -> usize {
        let free = (0..CONCURRENCY).find(|t| self.workers[*t].free_at <= now);
        free.unwrap_or_else(|| {
            (0..CONCURRENCY)
                .min_by_key(|t| self.workers[*t].free_at)
                .unwrap()
        })
    }

    /// Records an invocation at `at` and its completion after a short
    /// latency; returns the completion time.
    fn record(
        &mut self,
        thread: usize,
        at: Time,
        invoke: (&str, Value),
        done: (OpType, Value),
    ) -> Time {
        let latency = self.rng.random_range(300_000..3 * MS);
        let process = Process::Client(self.workers[thread].process);
        let seq = self.entries.len();
        self.entries.push((
            at,
            seq,
            Op::new(0, at, OpType::Invoke, process, invoke.0, invoke.1),
        ));
        let mut completion = Op::new(0, at + latency, done.0, process, invoke.0, done.1);
        if done.0 == OpType::Info && invoke.0 != "crash" {
            completion.error = Some(json!("net-timeout"));
        }
        self.entries.push((at + latency, seq + 1, completion));
        let worker = &mut self.workers[thread];
        worker.free_at = at + latency;
        if done.0 == OpType::Info {
            // A new process and a fresh client.
            worker.process += CONCURRENCY as u64;
            worker.positions.clear();
        }
        at + latency
    }

    fn crash(&mut self, thread: usize, at: Time) -> Time {
        self.record(
            thread,
            at,
            ("crash", Value::Null),
            (OpType::Info, Value::Null),
        )
    }

    /// The next generator op: maybe an assign of the next txn's key first.
    fn client_op(&mut self, thread: usize, at: Time) {
        let (key, is_send) = match self.pending {
            Some(txn) => txn,
            None => self.next_txn(),
        };
        if self.rng.random_range(0..64) == 0 {
            self.pending = Some((key, is_send));
            let mut keys = vec![key];
            if !self.sent.is_empty() && self.rng.random_range(0..3) == 0 {
                keys.extend(self.sent.keys().filter(|k| **k != key));
            }
            self.assign(thread, at, &keys, false);
            return;
        }
        self.pending = None;
        if is_send {
            self.send(thread, at, key);
        } else {
            self.poll(thread, at);
        }
    }

    /// Elle's list-append stream with one-mop txns: an exponentially chosen
    /// active key, read or write; keys retire after 16 writes.
    fn next_txn(&mut self) -> (u64, bool) {
        loop {
            let is_send = self.rng.random_range(0..2) == 0;
            let scale = 2.0 * ((1u64 << KEY_COUNT) - 1) as f64;
            let x = self.rng.random_range(0.0..scale);
            let i = ((x + 2.0).log2() - 1.0).floor() as usize;
            let key = self.active_keys[i.min(KEY_COUNT - 1)];
            let written = self.writes.get(&key).copied().unwrap_or(0);
            if is_send && written as u64 >= MAX_WRITES_PER_KEY {
                let fresh = self.active_keys.iter().max().unwrap() + 1;
                self.active_keys[i.min(KEY_COUNT - 1)] = fresh;
                continue;
            }
            return (key, is_send);
        }
    }

    fn send(&mut self, thread: usize, at: Time, key: u64) {
        let msg = self.writes.get(&key).copied().unwrap_or(0) + 1;
        self.writes.insert(key, msg);
        let invoke = json!([["send", key.to_string(), msg]]);
        // Rarely a timeout: the message may or may not have been stored.
        if self.rng.random_range(0..500) == 0 {
            if self.rng.random_range(0..2) == 0 {
                self.server.send(&mut self.rng, key, msg);
            }
            self.record(thread, at, ("send", invoke.clone()), (OpType::Info, invoke));
            return;
        }
        let offset = self.server.send(&mut self.rng, key, msg);
        let done = json!([["send", key.to_string(), [offset, msg]]]);
        self.record(thread, at, ("send", invoke), (OpType::Ok, done));
        raise(&mut self.sent, key, offset);
        raise(&mut self.max_offsets, key, offset);
    }

    /// Polls from the worker's positions, advances them, commits.
    fn poll(&mut self, thread: usize, at: Time) -> BTreeMap<u64, Vec<(i64, i64)>> {
        let msgs = self.server.poll(&self.workers[thread].positions);
        let mut value = serde_json::Map::new();
        for (key, pairs) in &msgs {
            value.insert(
                key.to_string(),
                json!(pairs.iter().map(|(o, m)| [*o, *m]).collect::<Vec<_>>()),
            );
            let top = pairs.iter().map(|(o, _)| *o).max().unwrap_or(-1);
            let position = self.workers[thread].positions.entry(*key).or_insert(0);
            *position = (*position).max(top + 1);
            if top >= 0 {
                raise(&mut self.server.committed, *key, top);
            }
            raise(&mut self.polled, *key, top);
            raise(&mut self.max_offsets, *key, top);
        }
        let done = json!([["poll", value]]);
        self.record(thread, at, ("poll", json!([["poll"]])), (OpType::Ok, done));
        self.forget_caught_up();
        msgs
    }

    /// The poll-unseen wrapper drops keys whose polls caught up with sends.
    fn forget_caught_up(&mut self) {
        let polled = &self.polled;
        self.sent
            .retain(|k, sent| polled.get(k).copied().unwrap_or(-1) < *sent);
    }

    /// Assigns keys: known positions stay, others start at the committed
    /// offset (or 0); `rewind` starts everything at 0 without asking.
    fn assign(&mut self, thread: usize, at: Time, keys: &[u64], rewind: bool) -> Time {
        let old = std::mem::take(&mut self.workers[thread].positions);
        for key in keys {
            let position = match rewind {
                true => 0,
                false => old
                    .get(key)
                    .or(self.server.committed.get(key))
                    .copied()
                    .unwrap_or(0),
            };
            self.workers[thread].positions.insert(*key, position);
        }
        let value = json!(keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        self.record(thread, at, ("assign", value.clone()), (OpType::Ok, value))
    }

    /// Each worker: crash, rewound assign of every key, polls every
    /// 0–0.4 s until it has reached every key's highest offset, 10 s cap.
    fn final_phase(&mut self, start: Time) {
        let targets = self.max_offsets.clone();
        let keys: Vec<u64> = targets.keys().copied().collect();
        for thread in 0..CONCURRENCY {
            let mut at = self.crash(thread, start);
            at = self.assign(thread, at, &keys, true);
            let mut waiting = targets.clone();
            while !waiting.is_empty() && at < start + 10 * SEC {
                let msgs = self.poll(thread, at);
                for (key, pairs) in msgs {
                    let top = pairs.iter().map(|(o, _)| *o).max().unwrap_or(-1);
                    if waiting.get(&key).is_some_and(|t| *t <= top) {
                        waiting.remove(&key);
                    }
                }
                at = self.workers[thread].free_at + self.rng.random_range(0..400 * MS);
            }
        }
    }
}

fn raise(map: &mut BTreeMap<u64, i64>, key: u64, offset: i64) {
    let entry = map.entry(key).or_insert(offset);
    *entry = (*entry).max(offset);
}
