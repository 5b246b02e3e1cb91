//! Anomalies of the logs themselves: conflicting or duplicated offsets,
//! aborted reads, lost and unseen messages, messages nobody sent.

use std::collections::{BTreeMap, HashSet};

use super::Analysis;
use super::parse::{Func, KeyId, Msg, clojure_set_order};
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
    // The bound, and the message that sets it (ties: Clojure set order).
    let Some((bound, bound_msg)) = read
        .iter()
        .filter_map(|m| spans.get(m).map(|s| (s.0, m)))
        .max_by(|x, y| x.0.cmp(&y.0).then(clojure_set_order(y.1, x.1)))
    else {
        return Vec::new();
    };
    let mut must_read: Vec<(&Msg, usize, usize)> = spans
        .iter()
        .filter(|(_, s)| s.1 <= bound)
        .map(|(m, s)| (*m, s.0, s.1))
        .collect();
    must_read.sort_by(|x, y| x.2.cmp(&y.2).then(clojure_set_order(x.0, y.0)));
    let max_read = a.facts.first_reader[k].get(bound_msg);
    let mut lost = Vec::new();
    for (msg, first, _) in must_read {
        if read.contains(msg) {
            continue;
        }
        // Without a writer Jepsen's analysis throws; that message is
        // already reported as `no-writer-of-value`.
        let Some(writer) = a.facts.writer(key, msg) else {
            continue;
        };
        if !a.facts.must_have_committed(&a.parsed.ops[writer]) {
            continue;
        }
        lost.push(LostWrite {
            key: a.key_name(key),
            value: msg.clone(),
            index: first,
            max_read_index: bound,
            writer: a.op_ref(writer, key),
            max_read_value: bound_msg.clone(),
            max_read: max_read.map(|r| a.op_ref(*r, key)),
        });
    }
    lost
}

/// `unseen`: at the end of the history, messages sent by `ok` sends that no
/// `ok` poll returned, per key.
///
/// Jepsen folds over `ok` sends and polls keeping `sent \ polled` per key,
/// but a key that first appears in the very last op, through a poll only,
/// ends up holding that poll's messages (its merge keeps keys present on one
/// side as they are). We reproduce that: it can change the verdict.
pub(crate) fn unseen(a: &Analysis) -> Option<Unseen> {
    let relevant: Vec<&super::parse::KOp> = a
        .parsed
        .ops
        .iter()
        .filter(|op| op.is_ok() && matches!(op.f, Func::Send | Func::Poll))
        .collect();
    let (last, earlier) = relevant.split_last()?;
    let n = a.parsed.keys.len();
    let mut sent: Vec<HashSet<&Msg>> = vec![HashSet::new(); n];
    let mut polled: Vec<HashSet<&Msg>> = vec![HashSet::new(); n];
    let mut appeared_earlier = vec![false; n];
    for op in earlier {
        for s in &op.sends {
            appeared_earlier[s.key as usize] = true;
        }
        for r in &op.reads {
            appeared_earlier[r.key as usize] = true;
        }
    }
    for op in &relevant {
        for s in &op.sends {
            sent[s.key as usize].insert(&s.pair.msg);
        }
        for r in &op.reads {
            polled[r.key as usize].extend(r.pairs.iter().map(|p| &p.msg));
        }
    }
    let quirk = |k: KeyId| {
        let k = k as usize;
        !appeared_earlier[k] && last.sends.iter().all(|s| s.key as usize != k)
    };
    let mut unseen = Unseen {
        time: last.time,
        unseen: BTreeMap::new(),
        messages: BTreeMap::new(),
    };
    for key in a.parsed.keys.by_name() {
        let k = key as usize;
        let mut msgs: Vec<Msg> = if quirk(key) {
            polled[k].iter().map(|m| (*m).clone()).collect()
        } else {
            sent[k]
                .difference(&polled[k])
                .map(|m| (*m).clone())
                .collect()
        };
        if msgs.is_empty() {
            continue;
        }
        msgs.sort();
        unseen.unseen.insert(a.key_name(key), msgs.len());
        unseen.messages.insert(a.key_name(key), msgs);
    }
    (!unseen.unseen.is_empty()).then_some(unseen)
}
