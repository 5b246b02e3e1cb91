//! Indexes every analysis shares: who wrote and who read each message, and
//! the version order of each key (which message sits at which offset).

use std::collections::{HashMap, HashSet};

use crate::history::OpType;

use super::parse::{KOp, KeyId, Msg, Parsed, clojure_set_order};

/// Where each message came from and who saw it, per key. Op ids are
/// positions in [`Parsed::ops`].
#[derive(Debug)]
pub(crate) struct Facts {
    /// Messages polled by `ok` polls.
    pub ok_reads: Vec<HashSet<Msg>>,
    /// Messages whose send definitely failed.
    pub failed_writes: Vec<HashSet<Msg>>,
    /// The completion that sent each message (the last one, if sent twice).
    pub writer_of: Vec<HashMap<Msg, usize>>,
    /// The first completion (any type) that polled each message.
    pub first_reader: Vec<HashMap<Msg, usize>>,
}

impl Facts {
    /// Indexes a parsed history.
    pub(crate) fn new(parsed: &Parsed) -> Facts {
        let n = parsed.keys.len();
        let mut facts = Facts {
            ok_reads: vec![HashSet::new(); n],
            failed_writes: vec![HashSet::new(); n],
            writer_of: vec![HashMap::new(); n],
            first_reader: vec![HashMap::new(); n],
        };
        for (id, op) in parsed.ops.iter().enumerate() {
            facts.add(id, op);
        }
        facts
    }

    fn add(&mut self, id: usize, op: &KOp) {
        for sent in &op.sends {
            let k = sent.key as usize;
            self.writer_of[k].insert(sent.pair.msg.clone(), id);
            if op.kind == OpType::Fail {
                self.failed_writes[k].insert(sent.pair.msg.clone());
            }
        }
        for reads in &op.reads {
            let k = reads.key as usize;
            for pair in &reads.pairs {
                self.first_reader[k].entry(pair.msg.clone()).or_insert(id);
                if op.is_ok() {
                    self.ok_reads[k].insert(pair.msg.clone());
                }
            }
        }
    }

    /// The op that sent `msg` to `key`, if any.
    pub(crate) fn writer(&self, key: KeyId, msg: &Msg) -> Option<usize> {
        self.writer_of[key as usize].get(msg).copied()
    }

    /// Jepsen's `must-have-committed?`: the op is `ok`, or it is `info` and
    /// some message it sent was polled by an `ok` poll.
    pub(crate) fn must_have_committed(&self, op: &KOp) -> bool {
        match op.kind {
            OpType::Ok => true,
            OpType::Info => op
                .sends
                .iter()
                .any(|s| self.ok_reads[s.key as usize].contains(&s.pair.msg)),
            _ => false,
        }
    }
}

/// The messages seen at one offset of a key.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub offset: i64,
    /// Distinct messages, in Clojure set order: the first is the one Jepsen
    /// takes as the offset's message.
    pub values: Vec<Msg>,
}

/// One key's log as observed: the non-empty offsets in increasing order.
/// A message's *dense index* is the position of its slot here.
#[derive(Debug, Default)]
pub(crate) struct VersionOrder {
    pub slots: Vec<Slot>,
    /// Each slot's first message → the last slot it heads (Jepsen's
    /// `by-value`). Other messages of a conflicting slot have no index.
    by_value: HashMap<Msg, usize>,
}

impl VersionOrder {
    fn from_pairs(mut pairs: Vec<(i64, Msg)>) -> VersionOrder {
        pairs.sort_unstable();
        pairs.dedup();
        let mut slots: Vec<Slot> = Vec::new();
        for (offset, msg) in pairs {
            match slots.last_mut() {
                Some(slot) if slot.offset == offset => slot.values.push(msg),
                _ => slots.push(Slot {
                    offset,
                    values: vec![msg],
                }),
            }
        }
        let mut by_value = HashMap::with_capacity(slots.len());
        for (i, slot) in slots.iter_mut().enumerate() {
            slot.values.sort_by(clojure_set_order);
            by_value.insert(slot.values[0].clone(), i);
        }
        VersionOrder { slots, by_value }
    }

    /// The dense index of a message, if it heads some slot.
    pub(crate) fn index_of(&self, msg: &Msg) -> Option<usize> {
        self.by_value.get(msg).copied()
    }

    /// The messages heading the slots strictly between two indices.
    pub(crate) fn between(&self, lo: usize, hi: usize) -> Vec<Msg> {
        let range = (lo + 1).min(hi)..hi;
        self.slots[range]
            .iter()
            .map(|s| s.values[0].clone())
            .collect()
    }

    /// Every message with the dense indices of its first and last slot.
    pub(crate) fn first_last_indices(&self) -> HashMap<&Msg, (usize, usize)> {
        let mut spans: HashMap<&Msg, (usize, usize)> = HashMap::new();
        for (i, slot) in self.slots.iter().enumerate() {
            for msg in &slot.values {
                spans.entry(msg).and_modify(|s| s.1 = i).or_insert((i, i));
            }
        }
        spans
    }
}

/// Builds every key's version order, as Jepsen's `version-orders`: offsets
/// come from sends that must have committed and from *all* polls, whatever
/// their completion type. Offsets below zero never enter a log (Jepsen's
/// logs are vectors indexed from offset 0).
pub(crate) fn version_orders(parsed: &Parsed, facts: &Facts) -> Vec<VersionOrder> {
    let mut pairs: Vec<Vec<(i64, Msg)>> = vec![Vec::new(); parsed.keys.len()];
    let mut add = |key: KeyId, offset: Option<i64>, msg: &Msg| {
        if let Some(offset) = offset.filter(|o| *o >= 0) {
            pairs[key as usize].push((offset, msg.clone()));
        }
    };
    for op in &parsed.ops {
        if facts.must_have_committed(op) {
            for sent in &op.sends {
                add(sent.key, sent.pair.offset, &sent.pair.msg);
            }
        }
        for reads in &op.reads {
            for pair in &reads.pairs {
                add(reads.key, pair.offset, &pair.msg);
            }
        }
    }
    pairs.into_iter().map(VersionOrder::from_pairs).collect()
}
