//! The kafka workload checker: Jepsen's `jepsen.tests.kafka` analysis under
//! Maelstrom's settings (single-mop sends and polls, assign only, crashing
//! clients, no write-write inference, strict-serializable cycle search).
//!
//! The history holds `send`, `poll`, `assign` and `crash` client ops:
//!
//! - send: invoke `[["send", "5", 3]]`; ok `[["send", "5", [1000, 3]]]`;
//! - poll: invoke `[["poll"]]`; ok `[["poll", {"5": [[1000, 3]], "7": []}]]`;
//! - assign: the list of keys; crash: `null`, always completed `info`.
//!
//! Every anomaly comes with its evidence (ops by history index, keys,
//! offsets, messages, dense indices). Where Jepsen would throw (a polled
//! message nobody sent) we report `no-writer-of-value` instead. The verdict
//! is Jepsen's: valid iff every anomaly type found is in
//! [`ALLOWED_ERROR_TYPES`].

#![warn(missing_docs)]

mod cycles;
mod facts;
mod lag;
mod log;
mod order;
mod parse;
mod report;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::history::History;

use facts::{Facts, VersionOrder};
use parse::{KeyId, Parsed};

pub use parse::Msg;
pub use report::{
    ALLOWED_ERROR_TYPES, AbortedRead, Cycle, Duplicate, InconsistentOffset, IntPollError,
    KafkaReport, LostWrite, NoWriter, OpRef, ProcessOrderError, RealtimeLag, Step, Unseen,
};

/// Checks a kafka history.
pub fn check(history: &History) -> KafkaReport {
    let parsed = parse::parse(history);
    let facts = Facts::new(&parsed);
    let orders = facts::version_orders(&parsed, &facts);
    let analysis = Analysis {
        parsed: &parsed,
        facts: &facts,
        orders: &orders,
    };
    analysis.report(info_txn_causes(history))
}

/// The shared indexes every anomaly search reads.
pub(crate) struct Analysis<'a> {
    parsed: &'a Parsed,
    facts: &'a Facts,
    orders: &'a [VersionOrder],
}

impl Analysis<'_> {
    fn report(&self, info_txn_causes: Vec<Value>) -> KafkaReport {
        let int_poll = order::int_poll(self);
        let polls = order::poll_order(self);
        let cycles = cycles::search(self);
        KafkaReport {
            inconsistent_offsets: log::inconsistent_offsets(self),
            duplicate: log::duplicates(self),
            g1a: log::aborted_reads(self),
            lost_write: log::lost_writes(self),
            int_poll_skip: int_poll.skips,
            int_nonmonotonic_poll: int_poll.nonmonotonic,
            poll_skip: polls.skips,
            nonmonotonic_poll: polls.nonmonotonic,
            nonmonotonic_send: order::send_order(self),
            g1c_realtime: cycles.cycles,
            no_writer_of_value: log::no_writers(self),
            empty_transaction_graph: cycles.empty_graph,
            unseen: log::unseen(self),
            worst_realtime_lag: lag::worst_realtime_lag(self),
            info_txn_causes,
        }
    }

    /// Cites op `id` (a position in `parsed.ops`), trimmed to `key`.
    fn op_ref(&self, id: usize, key: KeyId) -> OpRef {
        OpRef::new(self.parsed, id, key)
    }

    fn key_name(&self, key: KeyId) -> String {
        self.parsed.keys.name(key).to_string()
    }
}

/// Distinct `error` values of `info` sends and polls (null when absent), in
/// order of appearance.
fn info_txn_causes(history: &History) -> Vec<Value> {
    let mut causes: Vec<Value> = Vec::new();
    let infos = history.client_ops().filter(|op| op.is_info());
    for op in infos.filter(|op| matches!(op.f.as_str(), "send" | "poll" | "txn")) {
        let cause = op.error.clone().unwrap_or(Value::Null);
        if !causes.contains(&cause) {
            causes.push(cause);
        }
    }
    causes
}
