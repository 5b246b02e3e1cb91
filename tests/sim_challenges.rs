//! Every challenge's node under the simulator at its official flags, across
//! many seeds, with partitions where the challenge allows: the fast,
//! deterministic counterpart of `make challenges`.

use std::time::Duration;

use glomers::runner::TestOptions;
use glomers::runner::options::{Availability, Fault, WorkloadName};
use glomers::sim::SimOutcome;
use glomers::solutions;

const SEEDS: u64 = 20;

fn options(workload: WorkloadName, nodes: usize, seed: u64) -> TestOptions {
    TestOptions::new(workload, "in-process", seed).with_node_count(nodes)
}

fn run(solution: &str, opts: TestOptions) -> SimOutcome {
    solutions::simulation(solution, opts).expect("a known solution").run()
}

fn assert_valid(outcome: &SimOutcome) {
    assert_eq!(
        outcome.exit_code(),
        0,
        "{} is not valid: {}\nworkload: {}",
        outcome.options.workload,
        outcome.replay_hint(),
        outcome.results["workload"]
    );
}

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
        assert!(outcome.result(&["workload", "acknowledged-count"]).as_u64().unwrap() > 25_000);
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
