//! Challenge 3, broadcast: 3a-3c at their flags, 3d (latency mode) and 3e
//! (default mode) with partitions, kills, pauses and lossy networks, and the
//! efficiency figures of both modes against their targets.

use glomers::Runtime;
use glomers::challenges::{self, Challenge};
use glomers::runner::TestOptions;
use glomers::sim::{NetworkFaults, NodeFactory, SimOutcome, Simulation};
use glomers::solutions::broadcast::{BroadcastNode, Config};

use crate::{SEEDS, assert_valid, msgs_per_op, official, run};

fn valid_across_seeds(id: &str, extra: &[&str]) {
    for seed in 0..SEEDS {
        assert_valid(&run("broadcast", official(id, seed, extra)));
    }
}

/// Every target of the challenge that applies is met.
fn assert_targets_met(id: &str, outcome: &SimOutcome) {
    assert_valid(outcome);
    let with_partitions = Challenge::with_partitions(&outcome.options);
    for target in challenges::find(id)
        .unwrap()
        .evaluate(&outcome.results, with_partitions)
    {
        assert_eq!(
            target.met,
            Some(true),
            "{id}: {} {} missed with {:?}; {}",
            target.metric,
            target.bound,
            target.value,
            outcome.replay_hint()
        );
    }
}

#[test]
fn challenge_3a_single_node() {
    valid_across_seeds("3a", &[]);
}

#[test]
fn challenge_3b_multi_node() {
    valid_across_seeds("3b", &[]);
    valid_across_seeds("3b", &["--latency", "100", "--latency-dist", "uniform"]);
}

#[test]
fn challenge_3c_with_partitions() {
    valid_across_seeds("3c", &[]);
    valid_across_seeds("3c", &["--nemesis-interval", "2", "--latency", "50"]);
}

#[test]
fn challenge_3d_latency_mode_with_partitions() {
    valid_across_seeds("3d", &["--nemesis", "partition"]);
}

#[test]
fn challenge_3e_with_partitions() {
    valid_across_seeds("3e", &["--nemesis", "partition"]);
}

#[test]
fn efficiency_figures_meet_our_targets() {
    for seed in [1, 2, 3] {
        for id in ["3d", "3e"] {
            assert_targets_met(id, &run("broadcast", official(id, seed, &[])));
        }
    }
}

#[test]
fn the_figures_quoted_in_the_readme_hold() {
    // `glomers challenge 3e --sim --seed 1` and `glomers challenge 3d --sim --seed 1`.
    let figures = |id| {
        let outcome = run("broadcast", official(id, 1, &[]));
        let figure = |path: &[&str]| outcome.result(path).as_f64().unwrap();
        (
            figure(&["net", "servers", "msgs-per-op"]),
            figure(&["workload", "stable-latencies", "0.5"]),
            figure(&["workload", "stable-latencies", "1"]),
        )
    };
    let (per_op, median, max) = figures("3e");
    assert!(
        per_op < 0.85 && median < 450.0 && max < 730.0,
        "3e: {per_op} {median} {max}"
    );
    let (per_op, median, max) = figures("3d");
    assert!(
        per_op < 11.9 && median < 90.0 && max < 100.0,
        "3d: {per_op} {median} {max}"
    );
}

#[test]
fn no_value_is_lost_to_loss_duplication_and_reordering() {
    for seed in 0..SEEDS / 4 {
        for id in ["3d", "3e"] {
            let opts = official(
                id,
                seed,
                &[
                    "--nemesis",
                    "partition",
                    "--nemesis-interval",
                    "3",
                    "--latency-dist",
                    "exponential",
                ],
            );
            let faults = NetworkFaults {
                loss: 0.1,
                duplication: 0.05,
            };
            let outcome = glomers::solutions::simulation("broadcast", opts)
                .unwrap()
                .with_faults(faults)
                .run();
            assert_valid(&outcome);
        }
    }
}

/// Partitions, kills (a wiped node restarted with its data directory) and
/// pauses, one every second on average.
fn with_crashes(id: &str, seed: u64) -> TestOptions {
    let faults = [
        "--nemesis",
        "partition,kill,pause",
        "--nemesis-interval",
        "1",
    ];
    official(id, seed, &faults)
}

/// How many nodes the nemesis killed in a run.
fn kills(outcome: &SimOutcome) -> usize {
    outcome
        .history
        .iter()
        .filter(|op| op.f == "kill" && op.value[0] == "killed")
        .map(|op| op.value[1].as_array().map_or(0, Vec::len))
        .sum()
}

#[test]
fn acknowledged_values_survive_kills() {
    for seed in 0..SEEDS / 4 {
        for id in ["3d", "3e"] {
            let outcome = run("broadcast", with_crashes(id, seed));
            assert_valid(&outcome);
            assert!(kills(&outcome) > 0, "{}", outcome.replay_hint());
        }
    }
}

#[test]
fn without_a_data_directory_a_kill_can_lose_acknowledged_values() {
    // Why broadcasts are logged before they are acknowledged: the same
    // faults, with nowhere to log, lose values acknowledged just before a
    // kill.
    let lost: u64 = (0..SEEDS / 4)
        .map(|seed| {
            let opts = with_crashes("3e", seed);
            let config = Config::from_lookup(|name| opts.node_env(name).map(String::from));
            let factory: NodeFactory = Box::new(move |_, seed, _dir| {
                Box::new(Runtime::new(BroadcastNode::new(config.clone()), seed))
            });
            let outcome = Simulation::with_factory(opts, factory).run();
            outcome
                .result(&["workload", "lost-count"])
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert!(lost > 0);
}

#[test]
fn a_round_can_be_tuned() {
    let mut opts = official("3e", 4, &[]);
    opts.node_env
        .push(("GLOMERS_BROADCAST_ROUND_MS".into(), "700".into()));
    let outcome = run("broadcast", opts);
    assert_valid(&outcome);
    let per_op = msgs_per_op(&outcome);
    assert!(per_op < 0.7, "{per_op}");
}
