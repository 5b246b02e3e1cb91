//! Random fault schedules over many seeds: partitions (symmetric,
//! one-way, rings), crashes and restarts, loss, duplication and reordering,
//! with proposals and reads throughout, then a heal and a liveness check.
//!
//! `RAFT_SEED=n` replays one seed; `RAFT_SEEDS=n` runs seeds `0..n`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::cluster::{Cluster, Network, TICK};
use crate::raft::{Config, Role};

/// Seeds run by default: about as many as a debug build does in a few
/// seconds on one core.
const DEFAULT_SEEDS: u64 = 300;

#[test]
fn random_faults_keep_raft_safe_and_live() {
    let env = |name| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seeds = match (env("RAFT_SEED"), env("RAFT_SEEDS")) {
        (Some(seed), _) => seed..seed + 1,
        (None, count) => 0..count.unwrap_or(DEFAULT_SEEDS),
    };
    for seed in seeds {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| random_run(seed))) {
            eprintln!("random run failed with seed {seed}: replay with RAFT_SEED={seed}");
            resume_unwind(panic);
        }
    }
}

fn random_run(seed: u64) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let n = if rng.random_bool(0.5) { 3 } else { 5 };
    let config = Config {
        election_timeout_min: 10,
        election_timeout_max: 20,
        heartbeat_interval: rng.random_range(1..5),
        // Small batches widen the windows between an entry and the next.
        max_append_entries: [1, 1, 2, 3, 8, 64][rng.random_range(0..6)],
        // Mostly as deployed, sometimes plain Raft: safety holds either way.
        pre_vote: rng.random_bool(0.8),
        check_quorum: rng.random_bool(0.8),
    };
    let mut c = Cluster::new(n, seed, config);
    c.network = random_network(&mut rng);
    for _ in 0..20 {
        random_fault(&mut c, &mut rng);
        for _ in 0..rng.random_range(5..40) {
            c.run(1);
            // Mostly at nodes that believe they lead, stale ones included,
            // so cut-off leaders grow suffixes that must be thrown away.
            let i = pick_leader(&c, &mut rng).unwrap_or(rng.random_range(0..n));
            if rng.random_bool(0.4) {
                let _ = c.propose(i);
            }
            if rng.random_bool(0.1) {
                let _ = c.read(i);
            }
        }
    }
    c.converge(500);
}

/// Some node that believes it leads, if any.
fn pick_leader(c: &Cluster, rng: &mut Xoshiro256PlusPlus) -> Option<usize> {
    let leaders: Vec<usize> = (0..c.len())
        .filter(|&i| c.is_up(i) && c.node(i).role() == Role::Leader)
        .collect();
    (!leaders.is_empty()).then(|| leaders[rng.random_range(0..leaders.len())])
}

/// A leader half the time (faults that hit leaders matter most), else
/// any node.
fn victim(c: &Cluster, rng: &mut Xoshiro256PlusPlus) -> usize {
    match c.leader() {
        Some(leader) if rng.random_bool(0.5) => leader,
        _ => rng.random_range(0..c.len()),
    }
}

fn random_network(rng: &mut Xoshiro256PlusPlus) -> Network {
    let slow = rng.random_range(2..40);
    Network {
        delay: 1..slow,
        loss: rng.random_range(0.0..0.15),
        duplicate: rng.random_range(0.0..0.1),
        reorder: rng.random_range(0.0..0.1),
        long_delay: rng.random_range(1..50) * TICK,
    }
}

fn random_fault(c: &mut Cluster, rng: &mut Xoshiro256PlusPlus) {
    let n = c.len();
    match rng.random_range(0..8) {
        0 => c.heal(),
        1 => c.isolate(victim(c, rng)),
        2 => {
            let (a, b): (Vec<usize>, Vec<usize>) = (0..n).partition(|_| rng.random_bool(0.5));
            c.partition(&[&a, &b]);
        }
        3 => {
            for _ in 0..rng.random_range(1..n * 2) {
                c.cut_link(rng.random_range(0..n), rng.random_range(0..n));
            }
        }
        4 if n == 5 => c.ring(),
        5 => c.crash(victim(c, rng)),
        6 => c.restart(rng.random_range(0..n)),
        _ => {
            c.crash(victim(c, rng));
            c.restart(rng.random_range(0..n));
        }
    }
}
