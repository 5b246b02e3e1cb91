//! Test histories in Jepsen's shape: every client operation is an `invoke`
//! followed by exactly one completion (`ok`, `fail` or `info`).
//!
//! - `ok`: it happened, and `value` holds its result;
//! - `fail`: it definitely did not happen;
//! - `info`: it may or may not have happened (a timeout, a crash); the
//!   process that ran it is retired and its thread continues under a new
//!   process id (old id + concurrency).
//!
//! Values are JSON, shaped per workload as Maelstrom records them, e.g. a
//! lin-kv read is `[key, null]` when invoked and `[key, value]` when ok.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// Nanoseconds since the test's clock started.
pub type Time = u64;

/// Nanoseconds in a millisecond.
pub const NANOS_PER_MS: u64 = 1_000_000;

/// What an entry of the history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// Who performed an operation: a client process or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Process {
    /// The client process id, if this is a client.
    pub fn client(self) -> Option<u64> {
        match self {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => serializer.serialize_u64(*p),
            Process::Nemesis => serializer.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProcessVisitor;
        impl Visitor<'_> for ProcessVisitor {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a process number or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom("negative process"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Process, E> {
                match v {
                    "nemesis" => Ok(Process::Nemesis),
                    other => Err(E::custom(format!("unknown process {other:?}"))),
                }
            }
        }
        deserializer.deserialize_any(ProcessVisitor)
    }
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history, 0-based and dense.
    pub index: usize,
    /// When it happened, in nanoseconds since the test started.
    pub time: Time,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub process: Process,
    /// The operation's function, e.g. `read`, `write`, `cas`, `send`.
    pub f: String,
    pub value: Value,
    /// Why the operation failed or is indeterminate, e.g.
    /// `["key-does-not-exist", "text"]` or `"net-timeout"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The client-side exception behind an `info` completion, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// Set on operations of the final phase (e.g. the last reads).
    #[serde(rename = "final?", default, skip_serializing_if = "is_false")]
    pub is_final: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Op {
    /// A new entry with no error, exception or final flag.
    pub fn new(
        index: usize,
        time: Time,
        kind: OpType,
        process: Process,
        f: &str,
        value: Value,
    ) -> Op {
        Op {
            index,
            time,
            kind,
            process,
            f: f.to_string(),
            value,
            error: None,
            exception: None,
            is_final: false,
        }
    }

    pub fn is_invoke(&self) -> bool {
        self.kind == OpType::Invoke
    }

    pub fn is_ok(&self) -> bool {
        self.kind == OpType::Ok
    }

    pub fn is_fail(&self) -> bool {
        self.kind == OpType::Fail
    }

    pub fn is_info(&self) -> bool {
        self.kind == OpType::Info
    }

    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Client(_))
    }
}

/// A whole history, with the invoke/completion pairing precomputed.
#[derive(Debug, Clone, Default)]
pub struct History {
    ops: Vec<Op>,
    /// For each index: the index of the matching invoke or completion.
    partner: Vec<Option<usize>>,
}

impl History {
    /// Builds a history from entries in order. Indices are reassigned to be
    /// dense; pairing is by process (each process runs one op at a time).
    pub fn new(mut ops: Vec<Op>) -> History {
        for (i, op) in ops.iter_mut().enumerate() {
            op.index = i;
        }
        let mut partner = vec![None; ops.len()];
        let mut open: std::collections::HashMap<Process, usize> = Default::default();
        for (i, op) in ops.iter().enumerate() {
            if op.is_invoke() {
                open.insert(op.process, i);
            } else if let Some(inv) = open.remove(&op.process) {
                partner[inv] = Some(i);
                partner[i] = Some(inv);
            }
        }
        History { ops, partner }
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Op> {
        self.ops.get(index)
    }

    /// The completion of an invoke (None if it never completed), or the
    /// invoke of a completion.
    pub fn partner(&self, op: &Op) -> Option<&Op> {
        self.partner
            .get(op.index)
            .copied()
            .flatten()
            .map(|i| &self.ops[i])
    }

    /// Client operations only (no nemesis entries).
    pub fn client_ops(&self) -> impl Iterator<Item = &Op> + Clone + '_ {
        self.ops.iter().filter(|op| op.is_client())
    }

    /// Every client invoke with its completion, if any, in invoke order.
    pub fn pairs(&self) -> impl Iterator<Item = (&Op, Option<&Op>)> + '_ {
        self.client_ops()
            .filter(|op| op.is_invoke())
            .map(move |inv| (inv, self.partner(inv)))
    }

    /// Consumes the history, returning its entries.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    /// Parses a history from JSON lines (one op per line), as written to
    /// `history.jsonl`.
    pub fn from_jsonl(text: &str) -> Result<History, serde_json::Error> {
        let ops = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<Vec<Op>, _>>()?;
        Ok(History::new(ops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ops_serialise_like_jepsen_histories() {
        let mut op = Op::new(
            3,
            1500,
            OpType::Ok,
            Process::Client(2),
            "read",
            json!([1, 4]),
        );
        op.is_final = true;
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(
            text,
            r#"{"index":3,"time":1500,"type":"ok","process":2,"f":"read","value":[1,4],"final?":true}"#
        );
        assert_eq!(serde_json::from_str::<Op>(&text).unwrap(), op);
        let nemesis = Op::new(
            0,
            0,
            OpType::Info,
            Process::Nemesis,
            "start-partition",
            Value::Null,
        );
        let text = serde_json::to_string(&nemesis).unwrap();
        assert!(text.contains(r#""process":"nemesis""#));
        assert_eq!(serde_json::from_str::<Op>(&text).unwrap(), nemesis);
    }

    #[test]
    fn pairs_invokes_with_completions_by_process() {
        let ops = vec![
            Op::new(
                0,
                0,
                OpType::Invoke,
                Process::Client(0),
                "read",
                Value::Null,
            ),
            Op::new(0, 1, OpType::Invoke, Process::Client(1), "write", json!(1)),
            Op::new(
                0,
                2,
                OpType::Info,
                Process::Nemesis,
                "start-partition",
                Value::Null,
            ),
            Op::new(0, 3, OpType::Ok, Process::Client(1), "write", json!(1)),
            Op::new(0, 4, OpType::Ok, Process::Client(0), "read", json!(1)),
            Op::new(
                0,
                5,
                OpType::Invoke,
                Process::Client(1),
                "read",
                Value::Null,
            ),
        ];
        let history = History::new(ops);
        let pairs: Vec<(usize, Option<usize>)> = history
            .pairs()
            .map(|(i, c)| (i.index, c.map(|c| c.index)))
            .collect();
        assert_eq!(pairs, vec![(0, Some(4)), (1, Some(3)), (5, None)]);
        assert_eq!(history.partner(&history.ops()[4]).unwrap().index, 0);
    }
}
