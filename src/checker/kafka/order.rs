//! Anomalies of order: within one poll, between a process's successive
//! polls, and between a process's successive sends. Each compares dense
//! indices in the version order; when either index is unknown Jepsen assumes
//! the step was fine (delta 1), and so do we.

use std::collections::{HashMap, HashSet};

use crate::history::OpType;

use super::Analysis;
use super::facts::VersionOrder;
use super::parse::{Func, KOp, KeyId, Msg, Pair};
use super::report::{IntPollError, ProcessOrderError};

/// Skips and backward steps found by one analysis.
#[derive(Debug)]
pub(crate) struct Steps<T> {
    pub skips: Vec<T>,
    pub nonmonotonic: Vec<T>,
}

impl<T> Default for Steps<T> {
    fn default() -> Self {
        Steps {
            skips: Vec::new(),
            nonmonotonic: Vec::new(),
        }
    }
}

/// A move between two known dense indices.
struct Jump {
    indices: [usize; 2],
    delta: i64,
}

impl Jump {
    /// The move from `from` to `to`, when both messages have an index.
    fn between(order: &VersionOrder, from: Option<&Pair>, to: Option<&Pair>) -> Option<Jump> {
        let i = order.index_of(&from?.msg)?;
        let j = order.index_of(&to?.msg)?;
        Some(Jump {
            indices: [i, j],
            delta: j as i64 - i as i64,
        })
    }

    /// For a skip, the messages jumped over.
    fn skipped(&self, order: &VersionOrder) -> Option<Vec<Msg>> {
        (self.delta > 1).then(|| order.between(self.indices[0], self.indices[1]))
    }
}

/// `int-poll-skip` and `int-nonmonotonic-poll`: consecutive messages of a
/// key within one poll must be adjacent in the version order.
pub(crate) fn int_poll(a: &Analysis) -> Steps<IntPollError> {
    let mut found = Steps::default();
    for (id, op) in a.parsed.ops.iter().enumerate() {
        for reads in &op.reads {
            let order = &a.orders[reads.key as usize];
            for window in reads.pairs.windows(2) {
                let Some(jump) = Jump::between(order, Some(&window[0]), Some(&window[1])) else {
                    continue;
                };
                if jump.delta == 1 {
                    continue;
                }
                let error = IntPollError {
                    key: a.key_name(reads.key),
                    values: [window[0].msg.clone(), window[1].msg.clone()],
                    offsets: [window[0].offset, window[1].offset],
                    indices: jump.indices,
                    delta: jump.delta,
                    skipped: jump.skipped(order),
                    op: a.op_ref(id, reads.key),
                };
                push_step(&mut found, error, jump.delta);
            }
        }
    }
    found
}

fn push_step<T>(found: &mut Steps<T>, error: T, delta: i64) {
    if delta > 1 {
        found.skips.push(error);
    } else {
        found.nonmonotonic.push(error);
    }
}

/// What a process last did to a key: the op, and its last message there
/// (`None` when that op polled the key and got nothing).
#[derive(Clone, Copy)]
struct Last<'a> {
    op: usize,
    pair: Option<&'a Pair>,
}

/// Per process, per key tracking, reset the way Jepsen resets it.
#[derive(Default)]
struct Tracker<'a> {
    by_process: HashMap<u64, HashMap<KeyId, Last<'a>>>,
}

impl<'a> Tracker<'a> {
    fn keys(&mut self, process: u64) -> &mut HashMap<KeyId, Last<'a>> {
        self.by_process.entry(process).or_default()
    }

    /// An `ok` or `info` assign keeps tracking only for the keys it assigns;
    /// invocations and failed assigns change nothing.
    fn assign(&mut self, op: &KOp) {
        if matches!(op.kind, OpType::Ok | OpType::Info) {
            let kept: HashSet<KeyId> = op.assigned.iter().copied().collect();
            self.keys(op.process).retain(|k, _| kept.contains(k));
        }
    }
}

/// `poll-skip` and `nonmonotonic-poll`: for each process and key, the first
/// message of a poll must directly follow the last message of the process's
/// previous `ok` poll of that key. A new process starts with nothing
/// tracked; an empty list for a key leaves nothing to compare next time.
pub(crate) fn poll_order(a: &Analysis) -> Steps<ProcessOrderError> {
    let mut found = Steps::default();
    let mut tracker = Tracker::default();
    for (id, op) in a.parsed.ops.iter().enumerate() {
        match op.f {
            Func::Assign => tracker.assign(op),
            Func::Poll => {
                let tracked = tracker.keys(op.process);
                for reads in &op.reads {
                    let next = Last {
                        op: id,
                        pair: reads.pairs.first(),
                    };
                    let Some(&last) = tracked.get(&reads.key) else {
                        continue;
                    };
                    if let Some((error, delta)) = compare(a, reads.key, last, next) {
                        push_step(&mut found, error, delta);
                    }
                }
                // Only `ok` polls move the process on.
                if op.is_ok() {
                    for reads in &op.reads {
                        let pair = reads.pairs.last();
                        tracked.insert(reads.key, Last { op: id, pair });
                    }
                }
            }
            Func::Send | Func::Crash => {}
        }
    }
    found
}

/// `nonmonotonic-send`: for each process and key, over `ok` and `info`
/// sends, a send's message must come after the previous send's message in
/// the version order. (Jepsen checks no skips here.)
pub(crate) fn send_order(a: &Analysis) -> Vec<ProcessOrderError> {
    let mut found = Vec::new();
    let mut tracker = Tracker::default();
    let completed = a.parsed.ops.iter().enumerate();
    for (id, op) in completed.filter(|(_, op)| matches!(op.kind, OpType::Ok | OpType::Info)) {
        match op.f {
            Func::Assign => tracker.assign(op),
            Func::Send => check_send(a, tracker.keys(op.process), id, &mut found),
            Func::Poll | Func::Crash => {}
        }
    }
    found
}

/// Compares each key's first message in send `id` with the process's
/// previous send there, then remembers this send's last message.
fn check_send<'a>(
    a: &Analysis<'a>,
    tracked: &mut HashMap<KeyId, Last<'a>>,
    id: usize,
    found: &mut Vec<ProcessOrderError>,
) {
    let op = &a.parsed.ops[id];
    for key in distinct_keys(op) {
        let mut pairs = op.writes_of(key);
        let first = pairs.next();
        let last_here = pairs.last().or(first);
        if let Some(&last) = tracked.get(&key) {
            let next = Last {
                op: id,
                pair: first,
            };
            if let Some((error, delta)) = compare(a, key, last, next)
                && delta < 1
            {
                found.push(error);
            }
        }
        tracked.insert(
            key,
            Last {
                op: id,
                pair: last_here,
            },
        );
    }
}

/// The keys an op sends to, each once, in order.
fn distinct_keys(op: &KOp) -> Vec<KeyId> {
    let mut keys: Vec<KeyId> = Vec::with_capacity(op.sends.len());
    for sent in &op.sends {
        if !keys.contains(&sent.key) {
            keys.push(sent.key);
        }
    }
    keys
}

/// Compares a process's previous touch of a key with the next one; an error
/// (with its delta) unless the step is exactly 1 or cannot be measured.
fn compare(a: &Analysis, key: KeyId, last: Last, next: Last) -> Option<(ProcessOrderError, i64)> {
    let order = &a.orders[key as usize];
    let jump = Jump::between(order, last.pair, next.pair)?;
    if jump.delta == 1 {
        return None;
    }
    let (from, to) = (last.pair?, next.pair?);
    let error = ProcessOrderError {
        key: a.key_name(key),
        values: [from.msg.clone(), to.msg.clone()],
        offsets: [from.offset, to.offset],
        indices: jump.indices,
        delta: jump.delta,
        skipped: jump.skipped(order),
        ops: [a.op_ref(last.op, key), a.op_ref(next.op, key)],
    };
    Some((error, jump.delta))
}
