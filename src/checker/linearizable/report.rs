//! The checker's results, shaped like Maelstrom's lin-kv `:workload` map:
//! `{"valid?", "results": {key: {...}}, "failures": [keys]}` plus counts.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

use super::model::{Model, ValueId};
use super::search::{Call, Outcome, SearchResult, Stuck};
use super::split::KeyHistory;
use crate::checker::Validity;
use crate::history::Op;

/// The verdict for a whole lin-kv history.
#[derive(Debug, Clone, Serialize)]
pub struct LinearizabilityReport {
    /// The overall verdict; see [`LinearizabilityReport::validity`].
    #[serde(rename = "valid?")]
    valid: Validity,
    /// Per-key verdicts, keyed by the key's JSON text, keys in order.
    #[serde(serialize_with = "as_map")]
    pub results: Vec<(Value, KeyReport)>,
    /// Keys found not linearizable (as Jepsen's independent checker,
    /// unknown keys are not listed here).
    pub failures: Vec<Value>,
    /// Keys whose search gave up.
    #[serde(rename = "unknown-keys", skip_serializing_if = "Vec::is_empty")]
    pub unknown_keys: Vec<Value>,
    /// Number of keys checked.
    #[serde(rename = "key-count")]
    pub key_count: usize,
    /// Operations searched over all keys (ok ones and crashed writes/cas).
    #[serde(rename = "op-count")]
    pub op_count: usize,
    /// Configurations (linearized set, state) explored over all keys.
    pub configurations: usize,
    /// Client entries that are not lin-kv operations; any makes the
    /// verdict at best unknown, as Knossos would refuse the history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl LinearizabilityReport {
    /// Assembles the report from per-key results, keys in output order.
    pub(crate) fn new(results: Vec<(Value, KeyReport)>, errors: Vec<String>) -> Self {
        let keys_where = |v: Validity| -> Vec<Value> {
            let matching = results.iter().filter(|(_, r)| r.valid == v);
            matching.map(|(k, _)| k.clone()).collect()
        };
        let errors_verdict = if errors.is_empty() {
            Validity::Valid
        } else {
            Validity::Unknown
        };
        LinearizabilityReport {
            valid: results
                .iter()
                .fold(errors_verdict, |acc, (_, r)| acc.and(r.valid)),
            failures: keys_where(Validity::Invalid),
            unknown_keys: keys_where(Validity::Unknown),
            key_count: results.len(),
            op_count: results.iter().map(|(_, r)| r.ops).sum(),
            configurations: results.iter().map(|(_, r)| r.configurations).sum(),
            results,
            errors,
        }
    }

    /// Invalid if any key is, else unknown if any key (or the input) is,
    /// else valid.
    pub fn validity(&self) -> Validity {
        self.valid
    }
}

/// Serialises `(key, report)` pairs as a JSON object keyed by key text.
fn as_map<S: Serializer>(results: &[(Value, KeyReport)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(results.len()))?;
    for (key, report) in results {
        map.serialize_entry(&key_label(key), report)?;
    }
    map.end()
}

/// A key as an object key: strings as they are, anything else as JSON.
fn key_label(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The verdict for one key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    /// This key's verdict.
    #[serde(rename = "valid?")]
    pub valid: Validity,
    /// Operations searched: ok ones plus crashed writes and cas.
    pub ops: usize,
    /// Of those, crashed (`info` or never completed) ones.
    pub crashed: usize,
    /// Operations dropped because they had no effect: failed ones and
    /// crashed reads.
    pub ignored: usize,
    /// Configurations (linearized set, state) the search explored.
    pub configurations: usize,
    /// Why the verdict is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the verdict is invalid.
    #[serde(flatten)]
    pub witness: Option<Witness>,
}

impl KeyReport {
    /// The report for one key's search.
    pub(crate) fn new(key: &KeyHistory, result: SearchResult<ValueId>) -> KeyReport {
        let mut report = KeyReport {
            valid: Validity::Valid,
            ops: key.calls.len(),
            crashed: key.crashed(),
            ignored: key.ignored,
            configurations: result.configurations,
            error: None,
            witness: None,
        };
        match result.outcome {
            Outcome::Linearizable => {}
            Outcome::NotLinearizable(stuck) => {
                report.valid = Validity::Invalid;
                report.witness = Some(Witness::new(key, &stuck));
            }
            Outcome::GaveUp(why) => {
                report.valid = Validity::Unknown;
                report.error = Some(why);
            }
        }
        report
    }
}

/// Why a key is not linearizable, after Knossos's `:op`, `:previous-ok`
/// and (simplified) `:final-paths`.
#[derive(Debug, Clone, Serialize)]
pub struct Witness {
    /// The first ok operation (in completion order) that cannot be
    /// linearized after every ok operation that completed before it.
    pub op: OpPair,
    /// The ok operation that completed just before `op` (it could be
    /// linearized).
    #[serde(rename = "previous-ok")]
    pub previous_ok: Option<OpPair>,
    /// Every model state reachable having linearized all ok operations
    /// completed before `op`, each with why `op` cannot follow it.
    #[serde(rename = "final-states")]
    pub final_states: Vec<FinalState>,
    /// Operations whose intervals overlap `op`'s (crashed ones never end).
    pub concurrent: Vec<OpPair>,
    /// History indices (of invocations) of one furthest linearization, in
    /// the order the search placed them.
    pub linearized: Vec<usize>,
    /// The above in one sentence.
    pub explanation: String,
}

/// An operation: its invocation and its completion (null if none).
#[derive(Debug, Clone, Serialize)]
pub struct OpPair {
    /// The invocation.
    pub invoke: Op,
    /// Its completion; null if it never completed.
    pub complete: Option<Op>,
}

/// A model state at the furthest point of the search.
#[derive(Debug, Clone, Serialize)]
pub struct FinalState {
    /// The register's value.
    pub model: Value,
    /// Why the stuck operation cannot happen in it.
    pub why: String,
}

impl Witness {
    fn new(key: &KeyHistory, stuck: &Stuck<ValueId>) -> Witness {
        let pair = |i: usize| OpPair {
            invoke: key.ops[i].0.clone(),
            complete: key.ops[i].1.cloned(),
        };
        let stuck_call = &key.calls[stuck.op];
        let mut final_states: Vec<FinalState> = stuck
            .states
            .iter()
            .map(|s| FinalState {
                model: key.model.describe(s),
                why: key.model.explain(s, &stuck_call.op),
            })
            .collect();
        final_states.sort_by_key(|s| s.model.to_string());
        let mut concurrent: Vec<usize> = (0..key.calls.len())
            .filter(|&i| i != stuck.op && overlaps(&key.calls[i], stuck_call))
            .collect();
        concurrent.sort_by_key(|&i| key.calls[i].invoke);
        Witness {
            explanation: explain(key, stuck, &final_states),
            op: pair(stuck.op),
            previous_ok: stuck.previous_ok.map(pair),
            final_states,
            concurrent: concurrent.into_iter().map(pair).collect(),
            linearized: stuck.path.iter().map(|&i| key.calls[i].invoke).collect(),
        }
    }
}

/// Whether two operations' intervals in the history overlap.
fn overlaps<O>(a: &Call<O>, b: &Call<O>) -> bool {
    let before = |x: &Call<O>, y: &Call<O>| x.complete.is_some_and(|c| c < y.invoke);
    !before(a, b) && !before(b, a)
}

fn explain(key: &KeyHistory, stuck: &Stuck<ValueId>, states: &[FinalState]) -> String {
    let (invoke, complete) = key.ops[stuck.op];
    let names: Vec<String> = states.iter().map(|s| s.model.to_string()).collect();
    let (state_names, how) = match names.as_slice() {
        [one] => (one.clone(), "where"),
        [init @ .., last] => (format!("{} or {last}", init.join(", ")), "in each of which"),
        [] => unreachable!("the search always reaches at least one state"),
    };
    format!(
        "process {} {} {} (history {}..{}) cannot be linearized after the {} ok operations \
         that completed before it: linearizing those (with any concurrent or crashed ones) \
         leaves the model in state {state_names}, {how} it fails ({})",
        invoke.process,
        invoke.f,
        complete.map_or(&invoke.value, |c| &c.value),
        invoke.index,
        complete.map_or(invoke.index, |c| c.index),
        count_ok_before(key, stuck.op),
        states[0].why,
    )
}

/// Ok operations completed before the given (ok) one.
fn count_ok_before(key: &KeyHistory, op: usize) -> usize {
    let end = key.calls[op].complete;
    let ok_before = |c: &&Call<_>| c.complete.is_some() && c.complete < end;
    key.calls.iter().filter(ok_before).count()
}
