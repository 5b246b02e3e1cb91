//! Challenges 6a-6c (txn-rw-register): the official flags over many
//! seeds, with partitions where allowed, on 3 to 5 nodes, and the
//! efficiency figures of fixed seeds.

use glomers::sim::SimOutcome;

use crate::{FEWER_SEEDS, SEEDS, assert_valid, msgs_per_op, official, run};

/// Valid, with every transaction answered ok (`--availability total` is
/// part of every official txn flag set, so validity says it already; the
/// extra count makes a failure's message specific).
fn assert_totally_available(outcome: &SimOutcome) {
    assert_valid(outcome);
    let ok_fraction = outcome.result(&["availability", "ok-fraction"]);
    assert_eq!(ok_fraction.as_f64(), Some(1.0), "{}", outcome.replay_hint());
}

#[test]
fn challenge_6a_single_node() {
    for seed in 0..SEEDS {
        let outcome = run("txn", official("6a", seed, &[]));
        assert_totally_available(&outcome);
        assert_eq!(outcome.net.servers.msg_count, 0);
    }
}

#[test]
fn challenge_6b_read_uncommitted() {
    for seed in 0..FEWER_SEEDS {
        assert_totally_available(&run("txn", official("6b", seed, &[])));
    }
}

#[test]
fn challenge_6b_read_uncommitted_with_partitions() {
    for seed in 0..SEEDS {
        let outcome = run("txn", official("6b", seed, &["--nemesis", "partition"]));
        assert_totally_available(&outcome);
    }
}

#[test]
fn challenge_6c_read_committed_with_partitions() {
    for seed in 0..SEEDS {
        let outcome = run("txn", official("6c", seed, &[]));
        assert_totally_available(&outcome);
        assert!(msgs_per_op(&outcome) <= 0.2, "{}", outcome.replay_hint());
    }
}

#[test]
fn three_to_five_nodes_read_committed_with_partitions() {
    for nodes in ["3", "4", "5"] {
        for seed in 0..2 {
            let outcome = run("txn", official("6c", seed, &["--node-count", nodes]));
            assert_totally_available(&outcome);
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
            "--nemesis-interval",
            "3",
        ];
        let faults = glomers::sim::NetworkFaults {
            loss: 0.2,
            duplication: 0.1,
        };
        let outcome = glomers::solutions::simulation("txn", official("6c", seed, &flags))
            .unwrap()
            .with_faults(faults)
            .run();
        assert_totally_available(&outcome);
    }
}

/// The efficiency figure, exact for a fixed seed (virtual time).
#[test]
fn efficiency_of_seed_1() {
    let outcome = run("txn", official("6c", 1, &[]));
    assert_totally_available(&outcome);
    let figures = (
        msgs_per_op(&outcome),
        outcome
            .result(&["net", "all", "msgs-per-op"])
            .as_f64()
            .unwrap(),
    );
    println!("6c seed 1: servers and all msgs-per-op: {figures:?}");
    assert_eq!(figures, (0.0398064548311468, 2.0400059859330573));
}

/// Killed nodes come back from their journals and their peers. (Requests
/// to a node while it is down time out, so availability is not total.)
#[test]
fn survives_kill_and_pause() {
    for seed in 0..4 {
        let flags = [
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "3",
            "--availability",
            "0.99",
        ];
        let outcome = run("txn", official("6c", seed, &flags));
        assert_valid(&outcome);
        let kills = outcome
            .history
            .iter()
            .filter(|op| op.f == "kill" && op.value[0] == "killed")
            .count();
        assert!(kills > 0, "no kill in {}", outcome.replay_hint());
    }
}
