//! Jepsen's `worst-realtime-lag`: a lower bound on how far behind the log
//! tail a poll could have been.
//!
//! Offsets are taken as the node reported them (not dense indices). Once an
//! op reveals that offset `o` of a key exists, every offset up to `o` is
//! known to exist from that op's completion time on, so offset `o - 1` was
//! no longer the tail. A poll whose process has reached offset `o` on a key
//! (or -1 if nothing yet) therefore lags by at least its invocation time
//! minus the time offset `o + 1` became known.

use std::collections::HashMap;

use crate::history::{OpType, Time};

use super::Analysis;
use super::parse::{Func, KOp, KeyId};
use super::report::RealtimeLag;

/// For one key, the times at which offsets became known to exist: offsets
/// `[previous end, end)` at `time`. Ends only grow, so this is a prefix.
type Expiry = Vec<(u64, Time)>;

fn note_offset(expiry: &mut Expiry, offset: i64, time: Time) {
    let known = expiry.last().map_or(0, |(end, _)| *end);
    if offset >= 0 && offset as u64 >= known {
        expiry.push((offset as u64 + 1, time));
    }
}

/// When offset `i` of the key became known to exist, if it ever did.
fn known_at(expiry: &Expiry, i: u64) -> Option<Time> {
    let pos = expiry.partition_point(|(end, _)| *end <= i);
    expiry.get(pos).map(|(_, time)| *time)
}

/// Jepsen's `op->max-offsets` for `ok` and `info` ops: a poll's highest
/// offset per key (-1 for an empty list); a send's offset, floored at 0.
fn max_offsets(op: &KOp) -> Vec<(KeyId, i64)> {
    let mut out: Vec<(KeyId, i64)> = Vec::new();
    if !matches!(op.kind, OpType::Ok | OpType::Info) {
        return out;
    }
    match op.f {
        Func::Poll => {
            for reads in &op.reads {
                let max = reads.pairs.iter().filter_map(|p| p.offset).max();
                out.push((reads.key, max.unwrap_or(-1)));
            }
        }
        Func::Send => {
            for sent in &op.sends {
                // Jepsen's fold restarts when a send has no offset.
                let Some(offset) = sent.pair.offset else {
                    out.clear();
                    continue;
                };
                match out.iter_mut().find(|(k, _)| *k == sent.key) {
                    Some((_, max)) => *max = (*max).max(offset),
                    None => out.push((sent.key, offset.max(0))),
                }
            }
        }
        Func::Assign | Func::Crash => {}
    }
    out
}

/// A process's view: each tracked key's highest offset, in insertion order.
#[derive(Default, Clone)]
struct Positions {
    order: Vec<(KeyId, i64)>,
    slot: HashMap<KeyId, usize>,
}

impl Positions {
    fn get(&self, key: KeyId) -> Option<i64> {
        self.slot.get(&key).map(|i| self.order[*i].1)
    }

    fn raise(&mut self, key: KeyId, offset: i64) {
        match self.slot.get(&key) {
            Some(&i) => self.order[i].1 = self.order[i].1.max(offset),
            None => {
                self.slot.insert(key, self.order.len());
                self.order.push((key, offset));
            }
        }
    }

    /// After an assign: the assigned keys, keeping known positions, -1 else.
    fn reassigned(&self, keys: &[KeyId]) -> Positions {
        let mut next = Positions::default();
        for key in keys {
            next.raise(*key, self.get(*key).unwrap_or(-1));
        }
        next
    }
}

/// Computes the worst lag over every `ok` poll.
pub(crate) fn worst_realtime_lag(a: &Analysis) -> RealtimeLag {
    let expiry = expiries(a);
    let mut positions: HashMap<u64, Positions> = HashMap::new();
    let mut worst: Option<(Time, Time, u64, KeyId)> = None; // lag, time, process, key
    for op in a.parsed.ops.iter().filter(|op| op.is_ok()) {
        match op.f {
            Func::Assign => {
                let mine = positions.entry(op.process).or_default();
                *mine = mine.reassigned(&op.assigned);
            }
            Func::Poll => {
                let mine = positions.entry(op.process).or_default();
                for (key, offset) in max_offsets(op) {
                    mine.raise(key, offset);
                }
                for &(key, offset) in &mine.order {
                    let lag = lag_of(&expiry[key as usize], offset, op.invoke_time);
                    if worst.is_none_or(|w| lag > w.0) {
                        worst = Some((lag, op.invoke_time, op.process, key));
                    }
                }
            }
            Func::Send | Func::Crash => {}
        }
    }
    match worst {
        Some((lag, time, process, key)) => RealtimeLag {
            time: secs(time),
            process: Some(process),
            key: Some(a.key_name(key)),
            lag: secs(lag),
        },
        None => RealtimeLag::default(),
    }
}

fn lag_of(expiry: &Expiry, offset: i64, invoked: Time) -> Time {
    let Ok(next) = u64::try_from(offset + 1) else {
        return 0;
    };
    known_at(expiry, next).map_or(0, |t| invoked.saturating_sub(t))
}

/// Per key, when each offset became known, from `ok` and `info` sends and
/// polls in history order.
fn expiries(a: &Analysis) -> Vec<Expiry> {
    let mut expiry = vec![Expiry::new(); a.parsed.keys.len()];
    for op in &a.parsed.ops {
        for (key, offset) in max_offsets(op) {
            note_offset(&mut expiry[key as usize], offset, op.time);
        }
    }
    expiry
}

fn secs(nanos: Time) -> f64 {
    nanos as f64 / 1e9
}
