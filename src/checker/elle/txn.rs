//! The transactions of a txn-rw-register history: each client invocation
//! paired with its completion, its micro-ops parsed from the JSON value.

use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;

use crate::history::{History, Op, OpType, Process};

/// A register key.
pub type Key = i64;

/// A value written to, or read from, a register.
pub type Val = i64;

/// One micro-operation: `["r", k, v]` or `["w", k, v]`. A read's value is
/// `None` when nothing was read (the invocation) or the key was never
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mop {
    /// True for a write, false for a read.
    pub write: bool,
    /// The register.
    pub key: Key,
    /// The value written or read.
    pub value: Option<Val>,
}

/// Serialised as in the history: `["r", 1, null]`.
impl Serialize for Mop {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(3))?;
        seq.serialize_element(if self.write { "w" } else { "r" })?;
        seq.serialize_element(&self.key)?;
        seq.serialize_element(&self.value)?;
        seq.end()
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// It committed.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// It may or may not have happened (including: never completed).
    Info,
}

/// One transaction: an invocation and its completion, if any.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// History index of the invocation.
    pub(crate) invoke: usize,
    /// History index of the completion; `None` if it never completed.
    pub(crate) completion: Option<usize>,
    pub(crate) status: Status,
    pub(crate) process: Process,
    /// The micro-ops as invoked (reads without values).
    pub(crate) invoked: Vec<Mop>,
    /// The micro-ops as completed: with read values when ok; otherwise the
    /// completion's value, or the invocation's when it has none.
    pub(crate) mops: Vec<Mop>,
}

impl Txn {
    /// The history index that stands for this transaction in reports: its
    /// completion, or its invocation when it never completed.
    pub(crate) fn op_index(&self) -> usize {
        self.completion.unwrap_or(self.invoke)
    }

    /// The external reads: for each key whose first micro-op is a read, that
    /// read's value, in order of first appearance.
    pub(crate) fn ext_reads(&self) -> Vec<(Key, Option<Val>)> {
        let mut seen: Vec<Key> = Vec::new();
        let mut reads = Vec::new();
        for m in &self.mops {
            if seen.contains(&m.key) {
                continue;
            }
            seen.push(m.key);
            if !m.write {
                reads.push((m.key, m.value));
            }
        }
        reads
    }

    /// The external writes: for each written key, the last value written,
    /// in order of the key's first write.
    pub(crate) fn ext_writes(&self) -> Vec<(Key, Val)> {
        let mut writes: Vec<(Key, Val)> = Vec::new();
        for m in self.mops.iter().filter(|m| m.write) {
            let Some(v) = m.value else { continue };
            match writes.iter_mut().find(|(k, _)| *k == m.key) {
                Some(w) => w.1 = v,
                None => writes.push((m.key, v)),
            }
        }
        writes
    }
}

/// The writes in `mops` that a later write in the same list overwrites.
pub(crate) fn intermediate_writes(mops: &[Mop]) -> Vec<(Key, Val)> {
    mops.iter()
        .enumerate()
        .filter(|(i, m)| m.write && mops[i + 1..].iter().any(|l| l.write && l.key == m.key))
        .filter_map(|(_, m)| Some((m.key, m.value?)))
        .collect()
}

/// Pairs every client `txn` invocation with its completion and parses the
/// micro-ops. Nemesis operations and other functions are ignored. Fails,
/// naming the operation, if a value is not a list of micro-ops.
pub(crate) fn parse(history: &History) -> Result<Vec<Txn>, String> {
    history
        .pairs()
        .filter(|(invoke, _)| invoke.f == "txn")
        .map(|(invoke, completion)| parse_pair(invoke, completion))
        .collect()
}

fn parse_pair(invoke: &Op, completion: Option<&Op>) -> Result<Txn, String> {
    let invoked = parse_mops(invoke)?;
    let status = match completion.map(|c| c.kind) {
        Some(OpType::Ok) => Status::Ok,
        Some(OpType::Fail) => Status::Fail,
        _ => Status::Info,
    };
    let mops = match completion {
        // Indeterminate and failed completions usually repeat the
        // invocation; fall back to it when they carry no value.
        Some(c) if c.value.is_null() && status != Status::Ok => invoked.clone(),
        Some(c) => parse_mops(c)?,
        None => invoked.clone(),
    };
    Ok(Txn {
        invoke: invoke.index,
        completion: completion.map(|c| c.index),
        status,
        process: invoke.process,
        invoked,
        mops,
    })
}

fn parse_mops(op: &Op) -> Result<Vec<Mop>, String> {
    let Value::Array(items) = &op.value else {
        return Err(format!(
            "op {}: a txn value must be a list of micro-ops, not {}",
            op.index, op.value
        ));
    };
    items
        .iter()
        .map(|item| {
            parse_mop(item).ok_or_else(|| {
                format!(
                    "op {}: micro-op {item} is not [\"r\"|\"w\", integer key, integer or null value] \
                     (writes need an integer)",
                    op.index
                )
            })
        })
        .collect()
}

fn parse_mop(item: &Value) -> Option<Mop> {
    let [f, k, v] = item.as_array()?.as_slice() else {
        return None;
    };
    let write = match f.as_str()? {
        "r" => false,
        "w" => true,
        _ => return None,
    };
    let value = match v {
        Value::Null if !write => None,
        v => Some(v.as_i64()?),
    };
    Some(Mop {
        write,
        key: k.as_i64()?,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn txn(mops: Value) -> Txn {
        let op = Op::new(0, 0, OpType::Ok, Process::Client(0), "txn", mops);
        let mops = parse_mops(&op).unwrap();
        Txn {
            invoke: 0,
            completion: Some(1),
            status: Status::Ok,
            process: Process::Client(0),
            invoked: mops.clone(),
            mops,
        }
    }

    #[test]
    fn external_reads_and_writes() {
        let t = txn(json!([
            ["r", 1, 5],
            ["w", 1, 6],
            ["r", 1, 6],
            ["w", 2, 1],
            ["r", 3, null],
            ["w", 2, 2]
        ]));
        assert_eq!(t.ext_reads(), vec![(1, Some(5)), (3, None)]);
        assert_eq!(t.ext_writes(), vec![(1, 6), (2, 2)]);
        assert_eq!(intermediate_writes(&t.mops), vec![(2, 1)]);
        assert_eq!(
            serde_json::to_value(t.mops[4]).unwrap(),
            json!(["r", 3, null])
        );
    }

    #[test]
    fn malformed_micro_ops_are_errors_naming_the_op() {
        for bad in [
            json!([["x", 1, 2]]),
            json!([["r", "k", 2]]),
            json!([["w", 1, null]]),
            json!([["r", 1]]),
            json!({"r": 1}),
        ] {
            let op = Op::new(7, 0, OpType::Ok, Process::Client(0), "txn", bad);
            let err = parse_mops(&op).unwrap_err();
            assert!(err.starts_with("op 7:"), "{err}");
        }
    }
}
