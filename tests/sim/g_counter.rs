//! Challenge 4, grow-only counter on seq-kv: valid with partitions across
//! seeds, final reads exact on every node, kills and pauses, and the
//! message count.

use glomers::challenges;
use glomers::runner::TestOptions;
use glomers::sim::{NetworkFaults, SimOutcome};

use crate::{SEEDS, assert_valid, msgs_per_op, run};

fn challenge_4(seed: u64, extra: &[&str]) -> TestOptions {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let mut opts = challenges::find("4")
        .unwrap()
        .options("in-process", &extra)
        .expect("valid flags");
    opts.seed = seed;
    opts
}

/// Valid, and every final read (one per worker, on every node) is the same.
fn assert_exact(outcome: &SimOutcome) {
    assert_valid(outcome);
    let reads = outcome
        .result(&["workload", "final-reads"])
        .as_array()
        .unwrap();
    assert_eq!(
        reads.len(),
        outcome.options.concurrency,
        "{}",
        outcome.replay_hint()
    );
    assert!(
        reads.iter().all(|r| *r == reads[0]),
        "{reads:?}: {}",
        outcome.replay_hint()
    );
}

#[test]
fn challenge_4_with_partitions() {
    for seed in 0..SEEDS {
        let outcome = run("g-counter", challenge_4(seed, &[]));
        assert_exact(&outcome);
        // Nothing went wrong, so the count is exactly the acknowledged adds.
        let acceptable = outcome.result(&["workload", "acceptable"]);
        assert_eq!(acceptable[0][0], acceptable[0][1], "{acceptable}");
    }
}

#[test]
fn challenge_4_with_latency_loss_and_reordering() {
    for seed in 0..SEEDS / 2 {
        let opts = challenge_4(
            seed,
            &[
                "--latency",
                "50",
                "--latency-dist",
                "exponential",
                "--nemesis-interval",
                "2",
            ],
        );
        let faults = NetworkFaults {
            loss: 0.2,
            duplication: 0.1,
        };
        let outcome = glomers::solutions::simulation("g-counter", opts)
            .unwrap()
            .with_faults(faults)
            .run();
        assert_exact(&outcome);
    }
}

#[test]
fn messages_per_operation_meet_our_target() {
    for seed in [1, 2, 3] {
        let outcome = run("g-counter", challenge_4(seed, &[]));
        let per_op = msgs_per_op(&outcome);
        // The figure the README quotes (`glomers challenge 4 --sim --seed 1`).
        assert!(per_op < 0.7, "{per_op}: {}", outcome.replay_hint());
        for target in challenges::find("4")
            .unwrap()
            .evaluate(&outcome.results, true)
        {
            assert_eq!(target.met, Some(true), "{}", target.metric);
        }
    }
}

#[test]
fn adds_share_cas_under_load() {
    let outcome = run(
        "g-counter",
        challenge_4(
            5,
            &["--concurrency", "10n", "--rate", "1000", "--latency", "20"],
        ),
    );
    assert_exact(&outcome);
    let per_op = msgs_per_op(&outcome);
    assert!(per_op < 0.25, "{per_op}");
}

#[test]
fn acknowledged_adds_survive_kills() {
    for seed in 0..SEEDS / 2 {
        for latency in ["0", "100"] {
            let faults = [
                "--nemesis",
                "partition,kill,pause",
                "--nemesis-interval",
                "1",
            ];
            let opts = challenge_4(seed, &[&faults[..], &["--latency", latency]].concat());
            let outcome = run("g-counter", opts);
            assert_exact(&outcome);
            let kills = outcome.history.iter().filter(|op| op.f == "kill").count();
            assert!(kills > 0, "{}", outcome.replay_hint());
        }
    }
}
