//! How fast the simulator runs each challenge's built-in solution at the
//! challenge's official flags (with partitions where the challenge allows
//! them): virtual seconds simulated per wall-clock second, including the
//! workload's checker. Seed 1 each, best of three runs.
//!
//! `cargo bench --bench sim_speed` prints one line per challenge. The
//! issue's bar is 3e (25 nodes, 20 s, rate 100, latency 100) in under 1 s of
//! wall time; the bench reports the figures, it does not assert on the
//! clock (the development machines are shared and noisy).

use std::time::{Duration, Instant};

use glomers::challenges::{self, Partitions};
use glomers::sim::SimOutcome;
use glomers::solutions;

const RUNS: usize = 3;
const SEED: u64 = 1;

fn main() {
    println!(
        "{:<9} {:<10} {:>7} {:>10} {:>10} {:>12}  verdict",
        "challenge", "nemesis", "ops", "virtual s", "wall s", "virtual/wall"
    );
    for challenge in challenges::ALL {
        let nemesis: &[String] = if challenge.partitions == Partitions::Never {
            &[]
        } else {
            &["--nemesis".to_string(), "partition".to_string()]
        };
        let Ok(mut opts) = challenge.options(challenge.binary, nemesis) else {
            eprintln!("{}: its official flags do not parse", challenge.id);
            continue;
        };
        opts.seed = SEED;
        let Some(solution) = solutions::for_workload(opts.workload) else {
            continue;
        };
        let mut best = Duration::MAX;
        let mut outcome = None;
        for _ in 0..RUNS {
            let sim = solutions::simulation(solution, opts.clone()).expect("a known solution");
            let start = Instant::now();
            let run = sim.run();
            best = best.min(start.elapsed());
            outcome = Some(run);
        }
        print_line(challenge.id, !nemesis.is_empty(), best, &outcome.unwrap());
    }
}

fn print_line(id: &str, partitions: bool, wall: Duration, outcome: &SimOutcome) {
    let virtual_secs = outcome.virtual_secs;
    let ops = outcome.history.iter().filter(|op| op.is_invoke()).count();
    let verdict = match outcome.exit_code() {
        0 => "valid",
        1 => "INVALID",
        _ => "crashed",
    };
    println!(
        "{:<9} {:<10} {:>7} {:>10.1} {:>10.3} {:>12.0}  {verdict}",
        id,
        if partitions { "partition" } else { "none" },
        ops,
        virtual_secs,
        wall.as_secs_f64(),
        virtual_secs / wall.as_secs_f64(),
    );
}
