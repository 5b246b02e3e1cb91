//! Anomalies of the logs themselves: conflicting or duplicated offsets,
//! aborted reads, lost and unseen messages, messages nobody sent.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Analysis;
use super::parse::{Func, KOp, KeyId, Msg, clojure_set_order};
use super::report::{AbortedRead, Duplicate, InconsistentOffset, LostWrite, NoWriter, Unseen};

/// `inconsistent-offsets`: offsets holding more than one message, by key.
pub(crate) fn inconsistent_offsets(a: &Analysis) -> Vec<InconsistentOffset> {
    let mut found = Vec::new();
    for key in a.parsed.keys.by_name() {
        let slots = a.orders[key as usize].slots.iter().enumerate();
        for (index, slot) in slots.filter(|(_, s)| s.values.len() > 1) {
            let mut values = slot.values.clone();
            values.sort();
            found.push(InconsistentOffset {
                key: a.key_name(key),
                offset: slot.offset,
                index,
                values,
            });
        }
    }
    found
}

/// `duplicate`: messages found at more than one offset of their key.
pub(crate) fn duplicates(a: &Analysis) -> Vec<Duplicate> {
    let mut found = Vec::new();
    for key in a.parsed.keys.by_name() {
        let mut offsets: BTreeMap<&Msg, Vec<i64>> = BTreeMap::new();
        for slot in &a.orders[key as usize].slots {
            for msg in &slot.values {
                offsets.entry(msg).or_default().push(slot.offset);
            }
        }
        let mut dups: Vec<(&Msg, Vec<i64>)> =
            offsets.into_iter().filter(|(_, o)| o.len() > 1).collect();
        // Report in log order: by the first offset each duplicate holds.
        dups.sort_by_key(|(_, o)| o[0]);
        found.extend(dups.into_iter().map(|(msg, offsets)| Duplicate {
            key: a.key_name(key),
            value: msg.clone(),
            count: offsets.len(),
            offsets,
        }));
    }
    found
}

/// `G1a`: every message an `ok` poll returned although its send failed.
pub(crate) fn aborted_reads(a: &Analysis) -> Vec<AbortedRead> {
    let mut found = Vec::new();
    for (id, op) in a.parsed.ops.iter().enumerate() {
        if !op.is_ok() {
            continue;
        }
        for reads in &op.reads {
            let failed = &a.facts.failed_writes[reads.key as usize];
            for pair in reads.pairs.iter().filter(|p| failed.contains(&p.msg)) {
                let writer = a.facts.writer(reads.key, &pair.msg);
                found.push(AbortedRead {
                    key: a.key_name(reads.key),
                    value: pair.msg.clone(),
                    writer: a.op_ref(writer.expect("failed writes have writers"), reads.key),
                    reader: a.op_ref(id, reads.key),
                });
            }
        }
    }
    found
}

/// `no-writer-of-value`: each message some poll returned that no op sent,
/// cited once with its first reader.
pub(crate) fn no_writers(a: &Analysis) -> Vec<NoWriter> {
    let mut seen: HashSet<(KeyId, &Msg)> = HashSet::new();
    let mut found = Vec::new();
    for (id, op) in a.parsed.ops.iter().enumerate() {
        for reads in &op.reads {
            for pair in &reads.pairs {
                let orphan = a.facts.writer(reads.key, &pair.msg).is_none();
                if orphan && seen.insert((reads.key, &pair.msg)) {
                    found.push(NoWriter {
                        key: a.key_name(reads.key),
                        value: pair.msg.clone(),
                        offset: pair.offset,
                        reader: a.op_ref(id, reads.key),
                    });
                }
            }
        }
    }
    found
}

/// `lost-write`, per key: take the highest dense index at which any message
/// returned by an `ok` poll first appears; every message whose *last*
/// appearance is at or below it should have been returned by some `ok`
/// poll. Those that were not, and whose send must have committed, are lost.
pub(crate) fn lost_writes(a: &Analysis) -> Vec<LostWrite> {
    let mut found = Vec::new();
    for key in a.parsed.keys.by_name() {
        found.extend(lost_writes_of(a, key));
    }
    found
}

fn lost_writes_of(a: &Analysis, key: KeyId) -> Vec<LostWrite> {
    let k = key as usize;
    let read = &a.facts.ok_reads[k];
    let spans = a.orders[k].first_last_indices();
    let Some((bound, bound_msg)) = read_bound(read, &spans) else {
        return Vec::new();
    };
    let max_read = a.facts.first_reader[k].get(bound_msg);
    let mut lost = Vec::new();
    for (msg, first) in must_read(&spans, bound) {
        if read.contains(msg) {
            continue;
        }
        // Without a writer Jepsen's analysis throws; that message is
        // already reported as `no-writer-of-value`.
        let Some(writer) = a.facts.writer(key, msg) else {
            continue;
        };
        if a.facts.must_have_committed(&a.parsed.ops[writer]) {
            lost.push(LostWrite {
                key: a.key_name(key),
                value: msg.clone(),
                index: first,
                offset: a.orders[k].slots[first].offset,
                max_read_index: bound,
                writer: a.op_ref(writer, key),
                max_read_value: bound_msg.clone(),
                max_read: max_read.map(|r| a.op_ref(*r, key)),
            });
        }
    }
    lost
}

/// First and last dense index of each message of a key.
type Spans<'a> = HashMap<&'a Msg, (usize, usize)>;

/// The highest first index among messages `ok` polls returned, and the
/// message at it (on ties, the first in Clojure set order).
fn read_bound<'a>(read: &HashSet<Msg>, spans: &Spans<'a>) -> Option<(usize, &'a Msg)> {
    read.iter()
        .filter_map(|m| spans.get_key_value(m).map(|(m, s)| (s.0, *m)))
        .max_by(|x, y| x.0.cmp(&y.0).then(clojure_set_order(y.1, x.1)))
}

/// Messages whose last index is at or below the bound, in log order, each
/// with its first index.
fn must_read<'a>(spans: &Spans<'a>, bound: usize) -> Vec<(&'a Msg, usize)> {
    let mut due: Vec<(&Msg, usize, usize)> = spans
        .iter()
        .filter(|(_, s)| s.1 <= bound)
        .map(|(m, s)| (*m, s.0, s.1))
        .collect();
    due.sort_by(|x, y| x.2.cmp(&y.2).then(clojure_set_order(x.0, y.0)));
    due.into_iter().map(|(m, first, _)| (m, first)).collect()
}

/// `unseen`: at the end of the history, messages sent by `ok` sends that no
/// `ok` poll returned, per key.
///
/// Jepsen folds over `ok` sends and polls keeping `sent \ polled` per key,
/// but a key that first appears in the very last op, through a poll only,
/// ends up holding that poll's messages (its merge keeps keys present on one
/// side as they are). We reproduce that: it can change the verdict.
pub(crate) fn unseen(a: &Analysis) -> Option<Unseen> {
    let relevant: Vec<&KOp> = a
        .parsed
        .ops
        .iter()
        .filter(|op| op.is_ok() && matches!(op.f, Func::Send | Func::Poll))
        .collect();
    let (last, earlier) = relevant.split_last()?;
    let seen = Seen::of(a.parsed.keys.len(), &relevant);
    let new_in_last = keys_new_in_last_poll(a.parsed.keys.len(), last, earlier);
    let mut unseen = Unseen {
        time: last.time,
        unseen: BTreeMap::new(),
        messages: BTreeMap::new(),
    };
    for key in a.parsed.keys.by_name() {
        let k = key as usize;
        let mut msgs: Vec<Msg> = if new_in_last[k] {
            seen.polled[k].iter().map(|m| (*m).clone()).collect()
        } else {
            let missing = seen.sent[k].difference(&seen.polled[k]);
            missing.map(|m| (*m).clone()).collect()
        };
        if !msgs.is_empty() {
            msgs.sort();
            unseen.unseen.insert(a.key_name(key), msgs.len());
            unseen.messages.insert(a.key_name(key), msgs);
        }
    }
    (!unseen.unseen.is_empty()).then_some(unseen)
}

/// Per key, the messages `ok` sends sent and `ok` polls returned.
struct Seen<'a> {
    sent: Vec<HashSet<&'a Msg>>,
    polled: Vec<HashSet<&'a Msg>>,
}

impl<'a> Seen<'a> {
    fn of(keys: usize, ops: &[&'a KOp]) -> Seen<'a> {
        let mut seen = Seen {
            sent: vec![HashSet::new(); keys],
            polled: vec![HashSet::new(); keys],
        };
        for op in ops {
            for s in &op.sends {
                seen.sent[s.key as usize].insert(&s.pair.msg);
            }
            for r in &op.reads {
                seen.polled[r.key as usize].extend(r.pairs.iter().map(|p| &p.msg));
            }
        }
        seen
    }
}

/// Keys that no earlier op mentioned and the last op only polls.
fn keys_new_in_last_poll(keys: usize, last: &KOp, earlier: &[&KOp]) -> Vec<bool> {
    let mut new = vec![false; keys];
    for r in &last.reads {
        new[r.key as usize] = true;
    }
    for op in earlier.iter().chain([&last]) {
        for s in &op.sends {
            new[s.key as usize] = false;
        }
    }
    for op in earlier {
        for r in &op.reads {
            new[r.key as usize] = false;
        }
    }
    new
}
