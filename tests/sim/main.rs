//! Every challenge's node under the simulator at its official flags, across
//! many seeds, with partitions where the challenge allows: the fast,
//! deterministic counterpart of `make challenges`. One module per challenge;
//! a failure prints the seed and the command that replays it.

mod broadcast;
mod echo_unique_ids;
mod faulty_nodes;
mod g_counter;
mod kafka;
mod lin_kv;
mod txn;

use glomers::challenges;
use glomers::runner::TestOptions;
use glomers::runner::options::WorkloadName;
use glomers::sim::SimOutcome;
use glomers::solutions;

/// Seeds per official configuration (with partitions where the challenge
/// allows them).
pub const SEEDS: u64 = 20;

/// Seeds for a configuration the official one with faults already covers
/// in spirit (the same flags without partitions): fewer keep `cargo test`
/// short.
pub const FEWER_SEEDS: u64 = 5;

/// Maelstrom's defaults for `workload` on `nodes` nodes, with a seed.
pub fn options(workload: WorkloadName, nodes: usize, seed: u64) -> TestOptions {
    TestOptions::new(workload, "in-process", seed).with_node_count(nodes)
}

/// Runs a built-in solution under the simulator.
pub fn run(solution: &str, opts: TestOptions) -> SimOutcome {
    solutions::simulation(solution, opts)
        .expect("a known solution")
        .run()
}

/// Fails with the replay command unless the run is valid.
pub fn assert_valid(outcome: &SimOutcome) {
    assert_eq!(
        outcome.exit_code(),
        0,
        "{} is not valid: {}\nworkload: {}",
        outcome.options.workload,
        outcome.replay_hint(),
        outcome.results["workload"]
    );
}

/// A sub-challenge's options for a seed: its official flags with `extra`
/// on top, and its environment (tuning variables such as 3d's mode).
pub fn official(id: &str, seed: u64, extra: &[&str]) -> TestOptions {
    let challenge = challenges::find(id).expect("a known challenge");
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let mut opts = challenge
        .options("in-process", &extra)
        .expect("valid flags");
    opts.seed = seed;
    opts.node_env.extend(
        challenge
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    opts
}

/// `net.servers.msgs-per-op`: messages between nodes (and services) per
/// client operation.
pub fn msgs_per_op(outcome: &SimOutcome) -> f64 {
    outcome
        .result(&["net", "servers", "msgs-per-op"])
        .as_f64()
        .unwrap()
}
