//! The transaction checker for Maelstrom's `txn-rw-register` workload: a
//! re-implementation of Elle 0.2.2's rw-register analysis as Maelstrom
//! configures it (writes-follow-reads inference on, realtime edges when
//! the model needs them), with Maelstrom's verdict rule on top.
//!
//! ```
//! use glomers::checker::elle::{check, ConsistencyModel};
//! use glomers::history::{History, Op, OpType, Process};
//! use serde_json::json;
//!
//! let op = |kind, value| Op::new(0, 0, kind, Process::Client(0), "txn", value);
//! let history = History::new(vec![
//!     op(OpType::Invoke, json!([["w", 1, 1]])),
//!     op(OpType::Ok, json!([["w", 1, 1]])),
//!     op(OpType::Invoke, json!([["r", 1, null]])),
//!     op(OpType::Ok, json!([["r", 1, 1]])),
//! ]);
//! let model: ConsistencyModel = "strict-serializable".parse().unwrap();
//! assert!(check(&history, model).validity().is_valid());
//! ```
//!
//! How it works: `rw_register` finds the anomalies visible without a graph
//! and builds the dependency graph, `cycles` searches its strongly
//! connected components for cycles, `models` knows which anomalies each
//! consistency model prohibits.

mod cycles;
mod graph;
mod models;
mod report;
mod rw_register;
mod txn;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use report::{
    Anomaly, Case, CycleCase, CycleExistsCase, CyclicVersionsCase, EdgeCounts, InternalCase,
    LostUpdateCase, ReadCase, Stats, Step, TimeoutCase, TxnReport,
};
pub use txn::{Key, Mop, Val};

use crate::checker::Validity;
use crate::history::History;
use models::Name;
use rw_register::{Entry, ExtraOrder, Findings};

/// The consistency models Maelstrom's txn-rw-register test is run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsistencyModel {
    /// No dirty writes (Adya's PL-1).
    ReadUncommitted,
    /// No dirty reads either (PL-2).
    ReadCommitted,
    /// Equivalent to some serial order (PL-3).
    Serializable,
    /// Serializable in an order consistent with real time (Maelstrom's
    /// default).
    StrictSerializable,
}

impl ConsistencyModel {
    /// Every supported model, weakest first.
    pub const ALL: [ConsistencyModel; 4] = [
        ConsistencyModel::ReadUncommitted,
        ConsistencyModel::ReadCommitted,
        ConsistencyModel::Serializable,
        ConsistencyModel::StrictSerializable,
    ];

    /// The model's name, as Maelstrom's `--consistency-models` spells it.
    pub fn name(self) -> &'static str {
        match self {
            ConsistencyModel::ReadUncommitted => "read-uncommitted",
            ConsistencyModel::ReadCommitted => "read-committed",
            ConsistencyModel::Serializable => "serializable",
            ConsistencyModel::StrictSerializable => "strict-serializable",
        }
    }

    /// The anomalies that make a history violate this model, sorted.
    pub fn prohibited_anomalies(self) -> Vec<&'static str> {
        models::prohibited_by(&[self.name()]).into_iter().collect()
    }
}

impl fmt::Display for ConsistencyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A consistency model name the checker does not support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel(
    /// The name given.
    pub String,
);

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = ConsistencyModel::ALL.iter().map(|m| m.name()).collect();
        write!(
            f,
            "unknown consistency model {:?}; expected one of: {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownModel {}

impl FromStr for ConsistencyModel {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConsistencyModel::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

/// Tuning for [`check_with`].
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Work allowed per strongly connected component for the cycle search,
    /// in edge visits; when it runs out the component is reported as a
    /// `cycle-search-timeout` (which Maelstrom ignores) plus whatever
    /// cycles are known. Elle allows one second per component instead.
    pub cycle_search_budget: u64,
    /// Most witnesses kept per anomaly type; the rest are only counted.
    pub max_witnesses: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            cycle_search_budget: 50_000_000,
            max_witnesses: 16,
        }
    }
}

/// Anomalies that make Elle's verdict unknown rather than invalid.
const UNKNOWN_TYPES: [Name; 2] = ["empty-transaction-graph", "cycle-search-timeout"];

/// Checks a txn-rw-register history against a consistency model.
pub fn check(history: &History, model: ConsistencyModel) -> TxnReport {
    check_with(history, model, &CheckOptions::default())
}

/// [`check`] with explicit tuning.
pub fn check_with(history: &History, model: ConsistencyModel, opts: &CheckOptions) -> TxnReport {
    let prohibited = models::prohibited_by(&[model.name()]);
    let reportable = |a: &str| prohibited.contains(a) || UNKNOWN_TYPES.contains(&a);
    // Elle adds realtime order when the model prohibits any realtime cycle
    // (process order would then be redundant), else process order if it
    // prohibits a process one.
    let wants = |suffix| {
        prohibited
            .iter()
            .any(|a| cycles::is_cycle_variant(a, suffix))
    };
    let order = if wants("-realtime") {
        ExtraOrder::Realtime
    } else if wants("-process") {
        ExtraOrder::Process
    } else {
        ExtraOrder::None
    };
    match rw_register::analyse(history, order, opts) {
        Ok(findings) => verdict(model, findings, reportable),
        Err(error) => TxnReport {
            valid: Validity::Unknown,
            anomaly_types: Vec::new(),
            anomalies: BTreeMap::new(),
            not: None,
            also_not: None,
            anomaly_counts: BTreeMap::new(),
            model,
            stats: Stats::default(),
            error: Some(error),
        },
    }
}

/// Elle's result for the findings, then Maelstrom's wrapper: only
/// reportable anomalies are shown, a specific anomaly makes a redundant
/// `*-cycle-exists` one go away, `cycle-search-timeout` is dropped, and the
/// history is valid iff nothing else remains.
fn verdict(
    model: ConsistencyModel,
    findings: Findings,
    reportable: impl Fn(&str) -> bool,
) -> TxnReport {
    let found: Vec<Name> = findings.entries.keys().copied().collect();
    let mut shown: BTreeMap<Name, Entry> = findings
        .entries
        .into_iter()
        .filter(|(a, _)| reportable(a))
        .collect();
    drop_redundant_cycle_exists(&mut shown);
    let (not, also_not) = if shown.is_empty() {
        (None, None)
    } else {
        let (not, also) = models::boundary(&found);
        (Some(strings(not)), Some(strings(also)))
    };
    shown.remove("cycle-search-timeout");
    let mut anomalies = BTreeMap::new();
    let mut anomaly_counts = BTreeMap::new();
    for (name, entry) in shown {
        let (count, anomaly) = match entry {
            Entry::Present => (1, Anomaly::Present(true)),
            Entry::Cases { total, kept } => (total, Anomaly::Cases(kept)),
        };
        anomaly_counts.insert(name.to_string(), count);
        anomalies.insert(name.to_string(), anomaly);
    }
    TxnReport {
        valid: Validity::from_bool(anomalies.is_empty()),
        anomaly_types: anomalies.keys().cloned().collect(),
        anomalies,
        not,
        also_not,
        anomaly_counts,
        model,
        stats: findings.stats,
        error: None,
    }
}

/// Removes `*-cycle-exists` anomalies whose model the other reported
/// anomalies already rule out: a named cycle says more than "some cycle".
fn drop_redundant_cycle_exists(shown: &mut BTreeMap<Name, Entry>) {
    let specific: Vec<Name> = shown
        .keys()
        .copied()
        .filter(|a| cycles::cycle_exists_model(a).is_none())
        .collect();
    let impossible = models::impossible_models(&specific);
    shown.retain(|a, _| cycles::cycle_exists_model(a).is_none_or(|m| !impossible.contains(m)));
}

fn strings(names: Vec<Name>) -> Vec<String> {
    names.into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests;
