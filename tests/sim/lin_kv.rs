//! lin-kv (the Raft key-value store) at the official flags (3 nodes,
//! concurrency 4n, 60 s, rate 100), with and without partitions, under
//! reordering latency, and its figures for fixed seeds, exact in virtual
//! time.

use std::time::Duration;

use glomers::runner::TestOptions;
use glomers::runner::analysis::is_data_answer;
use glomers::runner::options::{Fault, LatencyDist, WorkloadName};
use glomers::sim::SimOutcome;

use crate::{FEWER_SEEDS, SEEDS, assert_valid, options, run};

/// The official lin-kv flags.
fn official(seed: u64) -> TestOptions {
    let mut opts = options(WorkloadName::LinKv, 3, seed);
    opts.concurrency = 12;
    opts.time_limit = Duration::from_secs(60);
    opts.rate = 100.0;
    opts
}

fn with_partitions(mut opts: TestOptions) -> TestOptions {
    opts.nemesis = vec![Fault::Partition];
    opts.nemesis_interval = Duration::from_secs(10);
    opts
}

fn with_latency(mut opts: TestOptions, ms: u64, dist: LatencyDist) -> TestOptions {
    opts.latency = Duration::from_millis(ms);
    opts.latency_dist = dist;
    opts
}

/// Ok operations and definite answers about the data (missing key, cas
/// mismatch) over all invocations: what the challenge's targets hold (see
/// `glomers::runner::analysis::served_fraction`).
fn served_fraction(outcome: &SimOutcome) -> f64 {
    outcome
        .result(&["glomers", "served-fraction"])
        .as_f64()
        .unwrap()
}

/// The largest per-operation median latency of ok operations, in ms (the
/// challenge table's "median ok latency").
fn median_ok_latency(outcome: &SimOutcome) -> f64 {
    let by_f = outcome.result(&["glomers", "latencies"]);
    ["read", "write", "cas"]
        .iter()
        .map(|f| by_f[f]["ok"]["0.5"].as_f64().expect("ok latencies"))
        .fold(0.0, f64::max)
}

fn ok_count(outcome: &SimOutcome) -> u64 {
    outcome.result(&["stats", "ok-count"]).as_u64().unwrap()
}

fn run_valid(opts: TestOptions) -> SimOutcome {
    let outcome = run("lin-kv", opts);
    assert_valid(&outcome);
    outcome
}

#[test]
fn lin_kv_without_faults_serves_everything() {
    for seed in 0..FEWER_SEEDS {
        let outcome = run_valid(official(seed));
        let served = served_fraction(&outcome);
        assert!(served >= 0.999, "{served}: {}", outcome.replay_hint());
    }
}

#[test]
fn lin_kv_with_partitions_stays_valid_and_mostly_available() {
    for seed in 0..SEEDS {
        let outcome = run_valid(with_partitions(official(seed)));
        let served = served_fraction(&outcome);
        assert!(served >= 0.8, "{served}: {}", outcome.replay_hint());
    }
}

#[test]
fn lin_kv_under_reordering_latency() {
    for seed in 0..5 {
        let opts = with_latency(official(seed), 10, LatencyDist::Exponential);
        run_valid(opts.clone());
        run_valid(with_partitions(opts));
    }
}

#[test]
fn lin_kv_on_a_slow_network_stretches_its_timeouts() {
    // A 200 ms round trip is longer than the 150 ms election timeout of a
    // fast network: ticks follow the measured round trip.
    let outcome = run_valid(with_latency(official(1), 100, LatencyDist::Constant));
    assert!(served_fraction(&outcome) >= 0.999);
}

#[test]
fn lin_kv_figures_for_fixed_seeds() {
    // One forward hop plus one replication round trip: 3 x 10 ms.
    let outcome = run_valid(with_latency(official(1), 10, LatencyDist::Constant));
    assert_eq!(median_ok_latency(&outcome), 30.0);
    assert!(served_fraction(&outcome) >= 0.999);

    let outcome = run_valid(with_partitions(official(1)));
    let served = served_fraction(&outcome);
    assert!(served >= 0.9, "{served}");

    // At rate 1000 (10 s of it) every offered operation is served.
    let mut opts = official(1);
    opts.rate = 1000.0;
    opts.time_limit = Duration::from_secs(10);
    let outcome = run_valid(opts);
    let invocations = outcome.result(&["stats", "count"]).as_u64().unwrap();
    assert!(invocations >= 9_500, "{invocations}");
    assert_eq!(served_fraction(&outcome), 1.0);
    assert!(ok_count(&outcome) > 5_000);
}

/// Exploration aid: `cargo test --test sim lin_kv_breakdown -- --ignored --nocapture`.
#[test]
#[ignore]
fn lin_kv_breakdown() {
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14);
    let outcome = run("lin-kv", with_partitions(official(seed)));
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for op in &outcome.history {
        if !op.is_client() {
            eprintln!("{:8.3} nemesis {} {}", op.time as f64 / 1e9, op.f, op.value);
            continue;
        }
        if op.is_invoke() {
            continue;
        }
        let key = format!(
            "{} {:?} {}",
            op.f,
            op.kind,
            op.error.clone().unwrap_or_default()
        );
        *counts.entry(key).or_default() += 1;
        if !(op.is_ok() || is_data_answer(op)) {
            eprintln!(
                "{:8.3} {:?} {} {:?} {}",
                op.time as f64 / 1e9,
                op.process,
                op.f,
                op.kind,
                op.error.clone().unwrap_or_default()
            );
        }
    }
    for (k, v) in counts {
        eprintln!("{v:6} {k}");
    }
    eprintln!("served {}", served_fraction(&outcome));
}
