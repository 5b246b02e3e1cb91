//! The checker's result, shaped like the `:workload` entry Maelstrom writes
//! for txn-rw-register, with every anomaly backed by evidence.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::ConsistencyModel;
use super::txn::{Key, Mop, Val};
use crate::checker::Validity;
use crate::history::{Op, Process};

/// The verdict on a txn-rw-register history.
#[derive(Debug, Clone, Serialize)]
pub struct TxnReport {
    /// Valid iff no anomaly the model prohibits was found (Maelstrom's rule:
    /// `cycle-search-timeout` is ignored, an empty graph is invalid).
    #[serde(rename = "valid?")]
    pub valid: Validity,
    /// The reported anomaly types, sorted.
    #[serde(rename = "anomaly-types")]
    pub anomaly_types: Vec<String>,
    /// Evidence for each reported type (capped; see `anomaly_counts`).
    pub anomalies: BTreeMap<String, Anomaly>,
    /// The weakest models the anomalies found rule out (absent when valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not: Option<Vec<String>>,
    /// The stronger models the anomalies found also rule out.
    #[serde(rename = "also-not", skip_serializing_if = "Option::is_none")]
    pub also_not: Option<Vec<String>>,
    /// How many instances of each reported type were found in total.
    #[serde(rename = "anomaly-counts")]
    pub anomaly_counts: BTreeMap<String, usize>,
    /// The model the history was checked against.
    #[serde(rename = "consistency-model")]
    pub model: ConsistencyModel,
    /// Sizes of what was analysed.
    pub stats: Stats,
    /// Why the history could not be analysed (the verdict is then unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TxnReport {
    /// The verdict.
    pub fn validity(&self) -> Validity {
        self.valid
    }

    /// The evidence for one anomaly type, if it was reported.
    pub fn cases(&self, anomaly: &str) -> &[Case] {
        match self.anomalies.get(anomaly) {
            Some(Anomaly::Cases(cases)) => cases,
            _ => &[],
        }
    }
}

/// The evidence for one anomaly type.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Anomaly {
    /// A condition with no instances, such as `empty-transaction-graph`;
    /// serialised as `true`, as Elle does.
    Present(bool),
    /// Instances of the anomaly.
    Cases(Vec<Case>),
}

/// One instance of an anomaly.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Case {
    /// A dependency cycle (G0, G1c, G-single-item, G2-item, ...).
    Cycle(CycleCase),
    /// A read of a value that a failed (G1a) or a later write of the same
    /// transaction (G1b) made invisible.
    Read(ReadCase),
    /// A read disagreeing with the transaction's own earlier read or write.
    Internal(InternalCase),
    /// Two or more committed transactions read the same version of a key
    /// and then wrote that key.
    LostUpdate(LostUpdateCase),
    /// Writes-follow-reads inference ordered a key's versions in a cycle.
    CyclicVersions(CyclicVersionsCase),
    /// Some dependency cycle exists, though no specific one was named.
    CycleExists(CycleExistsCase),
    /// The cycle search of a component ran out of budget.
    Timeout(TimeoutCase),
}

/// A cycle of committed transactions: `cycle` lists them in order with the
/// first repeated at the end, `steps[i]` explains `cycle[i] -> cycle[i+1]`.
#[derive(Debug, Clone, Serialize)]
pub struct CycleCase {
    /// The anomaly type the cycle's edges make it.
    #[serde(rename = "type")]
    pub kind: String,
    /// The completions of the transactions, named T1, T2, ... in order.
    pub cycle: Vec<Op>,
    /// Why each transaction must precede the next.
    pub steps: Vec<Step>,
}

/// One edge of a cycle.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `ww`, `wr`, `rw`, `realtime` or `process`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The key the dependency is on (data edges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// The version of `key` the first transaction wrote or read (JSON null
    /// for the initial, never-written state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The later version the second transaction wrote (ww and rw edges).
    #[serde(rename = "value'", skip_serializing_if = "Option::is_none")]
    pub later_value: Option<Val>,
    /// Position of the relevant micro-op in the first transaction.
    #[serde(rename = "a-mop-index", skip_serializing_if = "Option::is_none")]
    pub a_mop_index: Option<usize>,
    /// Position of the relevant micro-op in the second transaction.
    #[serde(rename = "b-mop-index", skip_serializing_if = "Option::is_none")]
    pub b_mop_index: Option<usize>,
    /// History index of the first transaction's completion (realtime).
    #[serde(rename = "a-completion-index", skip_serializing_if = "Option::is_none")]
    pub a_completion_index: Option<usize>,
    /// History index of the second transaction's invocation (realtime).
    #[serde(rename = "b-invoke-index", skip_serializing_if = "Option::is_none")]
    pub b_invoke_index: Option<usize>,
    /// The process that ran both transactions (process edges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// The edge in words, e.g. "T1 wrote key 3 = 5, which T2 read".
    pub explanation: String,
}

/// A G1a or G1b read.
#[derive(Debug, Clone, Serialize)]
pub struct ReadCase {
    /// The committed transaction that read.
    pub op: Op,
    /// Its offending read.
    pub mop: Mop,
    /// The transaction whose failed or intermediate write it read.
    pub writer: Op,
}

/// An internally inconsistent read.
#[derive(Debug, Clone, Serialize)]
pub struct InternalCase {
    /// The committed transaction.
    pub op: Op,
    /// The read that disagrees.
    pub mop: Mop,
    /// What the transaction's earlier micro-ops imply it should have read.
    pub expected: Option<Val>,
}

/// A lost update.
#[derive(Debug, Clone, Serialize)]
pub struct LostUpdateCase {
    /// The key both read and wrote.
    pub key: Key,
    /// The version they all read (null: never written).
    pub value: Option<Val>,
    /// The committed transactions, in history order.
    pub txns: Vec<Op>,
}

/// A cycle in one key's inferred version order.
#[derive(Debug, Clone, Serialize)]
pub struct CyclicVersionsCase {
    /// The key.
    pub key: Key,
    /// The versions on the cycle, sorted.
    pub scc: Vec<Val>,
    /// The inference sources that together produced the cycle.
    pub sources: Vec<&'static str>,
}

/// Proof that a cycle violating `not` exists among some transactions.
#[derive(Debug, Clone, Serialize)]
pub struct CycleExistsCase {
    /// The model the cycle rules out.
    pub not: &'static str,
    /// The relationships the cycle uses.
    pub subgraph: Value,
    /// How many transactions the smallest such component has.
    #[serde(rename = "scc-size")]
    pub scc_size: usize,
    /// History indices of their completions.
    pub scc: Vec<usize>,
}

/// A component whose cycle search ran out of budget.
#[derive(Debug, Clone, Serialize)]
pub struct TimeoutCase {
    /// The anomaly being searched for when the budget ran out.
    #[serde(rename = "anomaly-spec-type")]
    pub anomaly_spec_type: &'static str,
    /// Types searched for completely and not found.
    #[serde(rename = "does-not-contain")]
    pub does_not_contain: Vec<&'static str>,
    /// Transactions in the component.
    #[serde(rename = "scc-size")]
    pub scc_size: usize,
}

/// Sizes of what was analysed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Client transactions (invocations).
    #[serde(rename = "txn-count")]
    pub txns: usize,
    /// Committed ones: the vertices of the dependency graph.
    #[serde(rename = "ok-count")]
    pub ok: usize,
    /// Definitely failed ones.
    #[serde(rename = "fail-count")]
    pub fail: usize,
    /// Indeterminate ones (including never completed).
    #[serde(rename = "info-count")]
    pub info: usize,
    /// Edges of each relationship (an edge with several counts in each).
    pub edges: EdgeCounts,
    /// Strongly connected components with two or more transactions.
    #[serde(rename = "scc-count")]
    pub sccs: usize,
    /// Transactions in the largest of them.
    #[serde(rename = "largest-scc")]
    pub largest_scc: usize,
    /// Components whose cycle search ran out of budget.
    #[serde(rename = "cycle-search-timeouts")]
    pub cycle_search_timeouts: usize,
}

/// Edges of the dependency graph, per relationship.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EdgeCounts {
    /// Write-write dependencies.
    pub ww: usize,
    /// Write-read dependencies.
    pub wr: usize,
    /// Read-write anti-dependencies.
    pub rw: usize,
    /// Real-time order (transitively reduced).
    pub realtime: usize,
    /// Per-process order.
    pub process: usize,
}

impl Serialize for ConsistencyModel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}
