//! Runs every checker over a finished test and composes `results.json`,
//! mirroring Maelstrom's `results.edn` key for key (`perf`, `timeline`,
//! `exceptions`, `stats`, `availability`, `net`, `workload`, `valid?`).
//! Our own additions (seed, latencies, delivery precision, targets) live
//! under the `glomers` key so that Maelstrom's keys stay exactly its own.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::TestOptions;
use super::net::{NetStats, TrafficCounts};
use crate::checker::{self, QUANTILES, Validity, stats};
use crate::history::{History, NANOS_PER_MS, Op, Time};
use crate::workload::Workload;

/// The composed analysis of one run.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub validity: Validity,
    /// The whole `results.json` document.
    pub results: Value,
}

/// Maelstrom's `:net` result.
#[derive(Debug, Clone, Serialize)]
struct NetReport {
    all: WithPerOp,
    clients: TrafficCounts,
    servers: WithPerOp,
    #[serde(rename = "valid?")]
    valid: Validity,
}

#[derive(Debug, Clone, Serialize)]
struct WithPerOp {
    #[serde(flatten)]
    counts: TrafficCounts,
    #[serde(rename = "msgs-per-op", skip_serializing_if = "Option::is_none")]
    msgs_per_op: Option<f64>,
}

/// Runs every checker.
pub fn analyse(
    history: &History,
    net: &NetStats,
    workload: &dyn Workload,
    opts: &TestOptions,
) -> Analysis {
    let checked = workload.check(history, opts);
    let stats = stats::check(history);
    let availability = checker::availability(history, opts.availability);
    let exceptions = checker::exceptions(history);
    let net_report = net_report(history, net);
    let validity = [checked.validity, stats.total.valid, availability.valid]
        .into_iter()
        .fold(Validity::Valid, Validity::and);
    let mut results = Map::new();
    results.insert(
        "perf".into(),
        json!({"latency-graph": {"valid?": true}, "rate-graph": {"valid?": true}, "valid?": true}),
    );
    results.insert("timeline".into(), json!({"valid?": true}));
    results.insert("exceptions".into(), to_value(&exceptions));
    results.insert("stats".into(), to_value(&stats));
    results.insert("availability".into(), to_value(&availability));
    results.insert("net".into(), to_value(&net_report));
    results.insert("workload".into(), checked.report);
    results.insert("valid?".into(), to_value(&validity));
    Analysis {
        validity,
        results: Value::Object(results),
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("reports serialise")
}

fn net_report(history: &History, net: &NetStats) -> NetReport {
    let invocations = history.client_ops().filter(|op| op.is_invoke()).count();
    let per_op = |count: u64| (invocations > 0).then(|| count as f64 / invocations as f64);
    NetReport {
        all: WithPerOp {
            counts: net.all,
            msgs_per_op: per_op(net.all.msg_count),
        },
        clients: net.clients,
        servers: WithPerOp {
            counts: net.servers,
            msgs_per_op: per_op(net.servers.msg_count),
        },
        valid: Validity::Valid,
    }
}

/// Latency quantiles (ms) of completed operations per `f` and outcome,
/// e.g. `{"read": {"ok": {"0.5": 1.2, ...}}}`.
pub fn latencies(history: &History) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> {
    let mut samples: BTreeMap<(String, String), Vec<Time>> = BTreeMap::new();
    for (invoke, completion) in history.pairs() {
        if let Some(c) = completion {
            let kind = serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            samples
                .entry((invoke.f.clone(), kind))
                .or_default()
                .push(c.time.saturating_sub(invoke.time));
        }
    }
    let mut out: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>> = BTreeMap::new();
    for ((f, kind), mut times) in samples {
        if let Some(q) = checker::quantiles(&mut times) {
            let ms = q
                .into_iter()
                .map(|(k, t)| (k, t as f64 / NANOS_PER_MS as f64))
                .collect();
            out.entry(f).or_default().insert(kind, ms);
        }
    }
    out
}

/// Error names that are definite answers about the data rather than a
/// refusal to serve: Maelstrom's errors 20, 21 and 22.
const DATA_ANSWERS: [&str; 3] = [
    "key-does-not-exist",
    "key-already-exists",
    "precondition-failed",
];

/// The fraction of client requests that were served: completed ok, or
/// failed with a definite answer about the data (a missing key, a cas whose
/// expected value did not match). Maelstrom's `ok-fraction` counts those
/// answers as failures, which caps it near 0.6 for any correct store under
/// lin-kv's random cas values, and counts kafka's `crash` operations (a
/// client forgetting its positions, never sent to a node) as not ok; this
/// is the availability a node can be held to.
pub fn served_fraction(history: &History) -> f64 {
    let clients = || {
        history
            .ops()
            .iter()
            .filter(|op| op.is_client() && op.f != "crash")
    };
    let invocations = clients().filter(|op| op.is_invoke()).count();
    let served = clients()
        .filter(|op| op.is_ok() || (op.is_fail() && is_data_answer(op)))
        .count();
    if invocations == 0 {
        1.0
    } else {
        served as f64 / invocations as f64
    }
}

/// Whether a failed operation failed with a definite answer about the data
/// (errors 20-22) rather than a refusal to serve.
pub fn is_data_answer(op: &Op) -> bool {
    let name = op
        .error
        .as_ref()
        .and_then(|e| e.get(0))
        .and_then(|n| n.as_str());
    name.is_some_and(|name| DATA_ANSWERS.contains(&name))
}

/// Quantiles (ms) of how late deliveries were relative to their deadlines.
pub fn delivery_lag(net: &NetStats) -> Option<BTreeMap<String, f64>> {
    let mut lags = net.delivery_lag.clone();
    checker::quantiles(&mut lags).map(|q| {
        q.into_iter()
            .map(|(k, t)| (k, t as f64 / NANOS_PER_MS as f64))
            .collect()
    })
}

/// The fraction of deliveries within `within` of their deadline.
pub fn delivered_within(net: &NetStats, within: Time) -> f64 {
    if net.delivery_lag.is_empty() {
        return 1.0;
    }
    let on_time = net
        .delivery_lag
        .iter()
        .filter(|lag| **lag <= within)
        .count();
    on_time as f64 / net.delivery_lag.len() as f64
}

/// Names of the quantiles, for callers that print them.
pub fn quantile_names() -> impl Iterator<Item = &'static str> {
    QUANTILES.iter().map(|(name, _)| *name)
}
