//! Challenges 5a-5c (kafka): the official flags over many seeds, with
//! partitions, on 3 to 5 nodes, and the efficiency figures of fixed seeds.

use glomers::sim::SimOutcome;

use crate::{FEWER_SEEDS, SEEDS, assert_valid, msgs_per_op, official, run};

/// Valid, and every operation but the workload's own client crashes
/// completed ok (Maelstrom counts those crashes against availability).
fn assert_valid_and_available(outcome: &SimOutcome) {
    assert_valid(outcome);
    let failed: Vec<_> = outcome
        .history
        .iter()
        .filter(|op| op.is_client() && !op.is_invoke() && !op.is_ok() && op.f != "crash")
        .collect();
    assert!(failed.is_empty(), "{}: {failed:?}", outcome.replay_hint());
}

#[test]
fn challenge_5a_single_node() {
    for seed in 0..SEEDS {
        let outcome = run("kafka", official("5a", seed, &[]));
        assert_valid_and_available(&outcome);
        assert_eq!(outcome.net.servers.msg_count, 0);
    }
}

#[test]
fn challenges_5b_5c_two_nodes() {
    for seed in 0..FEWER_SEEDS {
        let outcome = run("kafka", official("5c", seed, &[]));
        assert_valid_and_available(&outcome);
        assert!(msgs_per_op(&outcome) < 0.1, "{}", outcome.replay_hint());
    }
}

#[test]
fn challenge_5c_with_partitions_stays_available() {
    for seed in 0..SEEDS {
        let outcome = run("kafka", official("5c", seed, &["--nemesis", "partition"]));
        assert_valid_and_available(&outcome);
    }
}

#[test]
fn three_to_five_nodes_with_partitions() {
    for nodes in ["3", "4", "5"] {
        for seed in 0..2 {
            let flags = ["--node-count", nodes, "--nemesis", "partition"];
            let outcome = run("kafka", official("5c", seed, &flags));
            assert_valid_and_available(&outcome);
        }
    }
}

#[test]
fn latency_reordering_loss_and_duplicates() {
    for seed in 0..3 {
        let flags = [
            "--time-limit",
            "10",
            "--node-count",
            "3",
            "--latency",
            "30",
            "--latency-dist",
            "exponential",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "3",
        ];
        let faults = glomers::sim::NetworkFaults {
            loss: 0.2,
            duplication: 0.1,
        };
        let outcome = glomers::solutions::simulation("kafka", official("5c", seed, &flags))
            .unwrap()
            .with_faults(faults)
            .run();
        assert_valid_and_available(&outcome);
    }
}

/// The efficiency figures, exact for a fixed seed (virtual time).
#[test]
fn efficiency_of_seed_1() {
    let outcome = run("kafka", official("5c", 1, &[]));
    assert_valid_and_available(&outcome);
    let figures = (
        outcome
            .result(&["availability", "ok-fraction"])
            .as_f64()
            .unwrap(),
        msgs_per_op(&outcome),
        outcome
            .result(&["net", "all", "msgs-per-op"])
            .as_f64()
            .unwrap(),
    );
    println!("5c seed 1: availability, servers and all msgs-per-op: {figures:?}");
    assert_eq!(
        figures,
        (0.9996510294630839, 0.0719876364724064, 2.1671070342489656)
    );
}

/// Killed nodes come back from their journals (and their peers): nothing
/// acknowledged is lost, nothing reordered.
#[test]
fn survives_kill_and_pause() {
    for seed in 0..4 {
        let flags = [
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "3",
        ];
        let outcome = run("kafka", official("5c", seed, &flags));
        assert_valid(&outcome);
        let kills = outcome
            .history
            .iter()
            .filter(|op| op.f == "kill" && op.value[0] == "killed")
            .count();
        assert!(kills > 0, "no kill in {}", outcome.replay_hint());
    }
}
