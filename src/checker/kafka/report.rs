//! The checker's result: one list of evidence per anomaly type, serialised
//! with Jepsen's keys and Jepsen's display truncation.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::checker::Validity;
use crate::history::{OpType, Time};

use super::parse::{KeyId, Msg, Pair, Parsed};

/// Error types that never invalidate a Maelstrom kafka run (Jepsen's
/// `allowed-error-types` without subscribe and without ww-deps).
pub const ALLOWED_ERROR_TYPES: [&str; 6] = [
    "int-send-skip",
    "G0",
    "G0-process",
    "G0-realtime",
    "PL-1-cycle-exists",
    "strong-PL-1-cycle-exists",
];

/// An operation cited as evidence, its value trimmed to the key at issue.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct OpRef {
    /// History index of the completion.
    pub index: usize,
    /// History index of the invocation.
    pub invoke_index: usize,
    /// Completion time, in nanoseconds.
    pub time: Time,
    /// Completion type.
    #[serde(rename = "type")]
    pub kind: OpType,
    /// Client process.
    pub process: u64,
    /// `send`, `poll`, `assign` or `crash`.
    pub f: &'static str,
    /// The op's value, keeping only the key at issue.
    pub value: Value,
}

impl OpRef {
    /// Cites op `id`, showing only what it did to `key`.
    pub(crate) fn new(parsed: &Parsed, id: usize, key: KeyId) -> OpRef {
        let op = &parsed.ops[id];
        let name = parsed.keys.name(key);
        let value = match op.f {
            super::parse::Func::Send => {
                let mops: Vec<Value> = op
                    .writes_of(key)
                    .map(|p| json!(["send", name, sent_json(p)]))
                    .collect();
                Value::from(mops)
            }
            super::parse::Func::Poll => {
                let mut msgs = serde_json::Map::new();
                if let Some(pairs) = op.reads_of(key) {
                    msgs.insert(name.to_string(), pairs_json(pairs));
                }
                json!([["poll", msgs]])
            }
            super::parse::Func::Assign => {
                let keys = op.assigned.iter().map(|k| parsed.keys.name(*k));
                Value::from(keys.collect::<Vec<_>>())
            }
            super::parse::Func::Crash => Value::Null,
        };
        OpRef {
            index: op.index,
            invoke_index: op.invoke_index,
            time: op.time,
            kind: op.kind,
            process: op.process,
            f: op.f.name(),
            value,
        }
    }
}

fn sent_json(pair: &Pair) -> Value {
    match pair.offset {
        Some(offset) => json!([offset, pair.msg]),
        None => pair.msg.to_json(),
    }
}

fn pairs_json(pairs: &[Pair]) -> Value {
    let pairs = pairs.iter().map(|p| json!([p.offset, p.msg]));
    Value::from(pairs.collect::<Vec<_>>())
}

/// `inconsistent-offsets`: one offset of a key holds several messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct InconsistentOffset {
    /// The key.
    pub key: String,
    /// The offset, as nodes reported it.
    pub offset: i64,
    /// Dense index of the offset.
    pub index: usize,
    /// The distinct messages seen there, sorted.
    pub values: Vec<Msg>,
}

/// `duplicate`: one message sits at several offsets of a key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Duplicate {
    /// The key.
    pub key: String,
    /// The duplicated message.
    pub value: Msg,
    /// How many offsets hold it.
    pub count: usize,
    /// The offsets holding it, ascending.
    pub offsets: Vec<i64>,
}

/// `G1a`: an `ok` poll returned a message whose send failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AbortedRead {
    /// The key.
    pub key: String,
    /// The message polled.
    pub value: Msg,
    /// The failed send.
    pub writer: OpRef,
    /// The `ok` poll that returned it.
    pub reader: OpRef,
}

/// `lost-write`: an acknowledged message below the highest polled index of
/// its key that no `ok` poll ever returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LostWrite {
    /// The key.
    pub key: String,
    /// The lost message.
    pub value: Msg,
    /// Dense index of the message's first slot.
    pub index: usize,
    /// The offset of that slot.
    pub offset: i64,
    /// Highest dense index (first slot) of any message an `ok` poll returned.
    pub max_read_index: usize,
    /// The send of the lost message.
    pub writer: OpRef,
    /// The message at `max-read-index` that some `ok` poll returned.
    pub max_read_value: Msg,
    /// The first `ok` poll that returned it.
    pub max_read: Option<OpRef>,
}

/// `int-poll-skip` / `int-nonmonotonic-poll`: two consecutive messages of
/// one key within a single poll are not adjacent in the version order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct IntPollError {
    /// The key.
    pub key: String,
    /// The two consecutive messages.
    pub values: [Msg; 2],
    /// Their offsets as the poll returned them.
    pub offsets: [Option<i64>; 2],
    /// Their dense indices in the version order.
    pub indices: [usize; 2],
    /// Index difference: 1 is expected; more is a skip, less goes backwards.
    pub delta: i64,
    /// For a skip: the messages the poll jumped over, in log order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Vec<Msg>>,
    /// The poll.
    pub op: OpRef,
}

/// `poll-skip` / `nonmonotonic-poll` / `nonmonotonic-send`: a process's
/// consecutive operations on a key are not adjacent (sends: not increasing)
/// in the version order. `values` are the last message of the earlier op and
/// the first of the later one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProcessOrderError {
    /// The key.
    pub key: String,
    /// The earlier op's last message and the later op's first.
    pub values: [Msg; 2],
    /// Their offsets as the ops reported them.
    pub offsets: [Option<i64>; 2],
    /// Their dense indices in the version order.
    pub indices: [usize; 2],
    /// Index difference: 1 is expected for polls, more than 0 for sends.
    pub delta: i64,
    /// For a skip: the messages jumped over, in log order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Vec<Msg>>,
    /// The earlier and the later operation.
    pub ops: [OpRef; 2],
}

/// `no-writer-of-value`: a poll returned a message nobody sent. Jepsen's
/// analysis throws on this (its result is then `unknown`); we report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct NoWriter {
    /// The key.
    pub key: String,
    /// The message nobody sent.
    pub value: Msg,
    /// Its offset in the poll.
    pub offset: Option<i64>,
    /// The first op that polled it.
    pub reader: OpRef,
}

/// One step of a dependency cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Step {
    /// The next op polled a message this op sent.
    #[serde(rename = "wr")]
    Wr {
        /// The key.
        key: String,
        /// The message sent and polled.
        value: Msg,
    },
    /// This op completed before the next one was invoked.
    #[serde(rename = "realtime", rename_all = "kebab-case")]
    Realtime {
        /// History index of this op's completion.
        completed_index: usize,
        /// History index of the next op's invocation.
        invoked_index: usize,
    },
}

/// `G1c-realtime`: a cycle of write-read and real-time edges. One is
/// reported per strongly connected component, as Elle does; the cycle shown
/// is a poll that completed before the send of a message it returned began.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cycle {
    /// The ops of the cycle, the first repeated at the end.
    pub cycle: Vec<OpRef>,
    /// `steps[i]` relates `cycle[i]` to `cycle[i + 1]`.
    pub steps: Vec<Step>,
    /// How many send/poll ops the component holds.
    pub scc_size: usize,
    /// Whether both ops ran on the same process (Elle still names this
    /// `G1c-realtime`: Maelstrom builds a real-time graph, no process graph).
    pub same_process: bool,
}

/// `unseen`: messages acknowledged by `ok` sends that no `ok` poll returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unseen {
    /// Time of the last `ok` send or poll, in nanoseconds.
    pub time: Time,
    /// Per key, how many messages are unseen.
    pub unseen: BTreeMap<String, usize>,
    /// Per key, the unseen messages, sorted.
    pub messages: BTreeMap<String, Vec<Msg>>,
}

/// The poll that lagged furthest behind the log (Jepsen's
/// `worst-realtime-lag`, a lower bound): times in seconds. With no `ok`
/// poll it is Jepsen's `{time 0, lag 0}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RealtimeLag {
    /// When the poll was invoked, in seconds.
    pub time: f64,
    /// The polling process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<u64>,
    /// The key it lagged on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// How long the newest message it could see had already been superseded,
    /// in seconds.
    pub lag: f64,
}

/// Everything the kafka checker found. Lists hold every case; serialisation
/// shows at most Jepsen's number per type, with the full count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KafkaReport {
    /// `inconsistent-offsets`, by key then offset.
    pub inconsistent_offsets: Vec<InconsistentOffset>,
    /// `duplicate`, by key then first offset.
    pub duplicate: Vec<Duplicate>,
    /// `G1a`, in history order of the polls.
    pub g1a: Vec<AbortedRead>,
    /// `lost-write`, by key then index.
    pub lost_write: Vec<LostWrite>,
    /// `int-poll-skip`, in history order.
    pub int_poll_skip: Vec<IntPollError>,
    /// `int-nonmonotonic-poll`, in history order.
    pub int_nonmonotonic_poll: Vec<IntPollError>,
    /// `poll-skip`, in history order of the later poll.
    pub poll_skip: Vec<ProcessOrderError>,
    /// `nonmonotonic-poll`, in history order of the later poll.
    pub nonmonotonic_poll: Vec<ProcessOrderError>,
    /// `nonmonotonic-send`, in history order of the later send.
    pub nonmonotonic_send: Vec<ProcessOrderError>,
    /// `G1c-realtime`: one cycle per strongly connected component.
    pub g1c_realtime: Vec<Cycle>,
    /// `no-writer-of-value`, in history order of the first reader.
    pub no_writer_of_value: Vec<NoWriter>,
    /// Elle's `empty-transaction-graph`: no send or poll could be related to
    /// any other (e.g. nothing succeeded).
    pub empty_transaction_graph: bool,
    /// `unseen`, when any message is.
    pub unseen: Option<Unseen>,
    /// `worst-realtime-lag`.
    pub worst_realtime_lag: RealtimeLag,
    /// Distinct `error`s of `info` sends and polls, in order of appearance.
    pub info_txn_causes: Vec<Value>,
}

impl KafkaReport {
    /// Names of every anomaly type found, sorted as Jepsen sorts them.
    pub fn error_types(&self) -> Vec<&'static str> {
        let present = [
            ("G1a", !self.g1a.is_empty()),
            ("G1c-realtime", !self.g1c_realtime.is_empty()),
            ("duplicate", !self.duplicate.is_empty()),
            ("empty-transaction-graph", self.empty_transaction_graph),
            (
                "inconsistent-offsets",
                !self.inconsistent_offsets.is_empty(),
            ),
            (
                "int-nonmonotonic-poll",
                !self.int_nonmonotonic_poll.is_empty(),
            ),
            ("int-poll-skip", !self.int_poll_skip.is_empty()),
            ("lost-write", !self.lost_write.is_empty()),
            ("no-writer-of-value", !self.no_writer_of_value.is_empty()),
            ("nonmonotonic-poll", !self.nonmonotonic_poll.is_empty()),
            ("nonmonotonic-send", !self.nonmonotonic_send.is_empty()),
            ("poll-skip", !self.poll_skip.is_empty()),
            ("unseen", self.unseen.is_some()),
        ];
        let mut names: Vec<&str> = present
            .iter()
            .filter(|(_, found)| *found)
            .map(|(name, _)| *name)
            .collect();
        names.sort_unstable();
        names
    }

    /// The error types that invalidate the run: all but the allowed ones.
    pub fn bad_error_types(&self) -> Vec<&'static str> {
        let mut bad = self.error_types();
        bad.retain(|t| !ALLOWED_ERROR_TYPES.contains(t));
        bad
    }

    /// Valid iff no bad error type was found (Jepsen's rule).
    pub fn validity(&self) -> Validity {
        Validity::from_bool(self.bad_error_types().is_empty())
    }
}

/// A truncated error list, as Jepsen's `condense-error` shows it.
#[derive(Serialize)]
struct Condensed<'a, T> {
    count: usize,
    errs: Vec<&'a T>,
}

/// Keeps the first `n` after a stable sort by `key` (Jepsen's
/// `(take n (sort-by key errs))`).
fn first_by<T, K: Ord>(errs: &[T], n: usize, key: impl Fn(&T) -> K) -> Condensed<'_, T> {
    let mut sorted: Vec<&T> = errs.iter().collect();
    sorted.sort_by_key(|e| key(e));
    sorted.truncate(n);
    Condensed {
        count: errs.len(),
        errs: sorted,
    }
}

/// Keeps the last `n` after a stable sort by `key` (`take-last`).
fn last_by<T, K: Ord>(errs: &[T], n: usize, key: impl Fn(&T) -> K) -> Condensed<'_, T> {
    let mut sorted: Vec<&T> = errs.iter().collect();
    sorted.sort_by_key(|e| key(e));
    let drop = sorted.len().saturating_sub(n);
    sorted.drain(..drop);
    Condensed {
        count: errs.len(),
        errs: sorted,
    }
}

fn all<T>(errs: &[T]) -> Condensed<'_, T> {
    Condensed {
        count: errs.len(),
        errs: errs.iter().collect(),
    }
}

/// The unseen map with each key's messages cut to the first 32.
fn condensed_unseen(unseen: &Unseen) -> Unseen {
    let mut shown = unseen.clone();
    for messages in shown.messages.values_mut() {
        messages.truncate(32);
    }
    shown
}

impl Serialize for KafkaReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("valid?", &self.validity())?;
        for name in self.error_types() {
            self.serialize_errors(name, &mut map)?;
        }
        map.serialize_entry("error-types", &self.error_types())?;
        map.serialize_entry("bad-error-types", &self.bad_error_types())?;
        map.serialize_entry("worst-realtime-lag", &self.worst_realtime_lag)?;
        map.serialize_entry("info-txn-causes", &self.info_txn_causes)?;
        map.end()
    }
}

impl KafkaReport {
    /// Writes one error type's entry, truncated as Jepsen truncates it.
    fn serialize_errors<M: SerializeMap>(&self, name: &str, map: &mut M) -> Result<(), M::Error> {
        match name {
            "G1a" => map.serialize_entry(name, &all(&self.g1a)),
            "G1c-realtime" => {
                map.serialize_entry(name, &first_by(&self.g1c_realtime, 8, |c| c.steps.len()))
            }
            "duplicate" => map.serialize_entry(name, &first_by(&self.duplicate, 32, |d| d.count)),
            "empty-transaction-graph" => {
                map.serialize_entry(name, &json!({"count": 1, "errs": true}))
            }
            "inconsistent-offsets" => map.serialize_entry(
                name,
                &first_by(&self.inconsistent_offsets, 32, |e| e.values.len()),
            ),
            "int-nonmonotonic-poll" => {
                map.serialize_entry(name, &first_by(&self.int_nonmonotonic_poll, 8, |e| e.delta))
            }
            "int-poll-skip" => {
                map.serialize_entry(name, &last_by(&self.int_poll_skip, 8, |e| e.delta))
            }
            "lost-write" => map.serialize_entry(name, &all(&self.lost_write)),
            "no-writer-of-value" => map.serialize_entry(name, &all(&self.no_writer_of_value)),
            "nonmonotonic-poll" => {
                map.serialize_entry(name, &first_by(&self.nonmonotonic_poll, 8, |e| e.delta))
            }
            "nonmonotonic-send" => {
                map.serialize_entry(name, &first_by(&self.nonmonotonic_send, 8, |e| e.delta))
            }
            "poll-skip" => map.serialize_entry(name, &last_by(&self.poll_skip, 8, |e| e.delta)),
            "unseen" => match &self.unseen {
                Some(unseen) => map.serialize_entry(name, &condensed_unseen(unseen)),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}
