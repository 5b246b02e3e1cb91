//! Challenges 1 (echo) and 2 (unique ids), and replay determinism.

use std::time::Duration;

use glomers::runner::options::{Availability, Fault, WorkloadName};

use crate::{SEEDS, assert_valid, options, run};

#[test]
fn challenge_1_echo() {
    for seed in 0..SEEDS {
        let mut opts = options(WorkloadName::Echo, 1, seed);
        opts.time_limit = Duration::from_secs(10);
        assert_valid(&run("echo", opts));
    }
}

#[test]
fn challenge_2_unique_ids_with_partitions() {
    for seed in 0..SEEDS {
        let mut opts = options(WorkloadName::UniqueIds, 3, seed);
        opts.time_limit = Duration::from_secs(30);
        opts.rate = 1000.0;
        opts.availability = Some(Availability::Total);
        opts.nemesis = vec![Fault::Partition];
        let outcome = run("unique-ids", opts);
        assert_valid(&outcome);
        assert!(
            outcome
                .result(&["workload", "acknowledged-count"])
                .as_u64()
                .unwrap()
                > 25_000
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    let opts = || {
        let mut opts = options(WorkloadName::UniqueIds, 3, 99);
        opts.time_limit = Duration::from_secs(5);
        opts.rate = 200.0;
        opts.nemesis = vec![Fault::Partition];
        opts.nemesis_interval = Duration::from_secs(1);
        opts
    };
    let a = run("unique-ids", opts());
    let b = run("unique-ids", opts());
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.history, b.history);
    let mut other = opts();
    other.seed = 100;
    assert_ne!(run("unique-ids", other).digest, a.digest);
}

#[test]
fn unique_ids_survive_kill_and_pause() {
    for seed in 0..SEEDS {
        let mut opts = options(WorkloadName::UniqueIds, 3, seed);
        opts.time_limit = Duration::from_secs(20);
        opts.rate = 200.0;
        opts.nemesis = vec![Fault::Partition, Fault::Kill, Fault::Pause];
        opts.nemesis_interval = Duration::from_secs(1);
        let outcome = run("unique-ids", opts);
        assert_valid(&outcome);
        let kills = outcome
            .history
            .iter()
            .filter(|op| op.f == "kill" && op.value[0] == "killed")
            .count();
        assert!(
            kills > 0,
            "the nemesis killed nodes: {}",
            outcome.replay_hint()
        );
    }
}
