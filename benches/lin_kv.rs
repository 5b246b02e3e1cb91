//! The lin-kv figures, measured with our runner on real processes: ours
//! (`src/bin/lin-kv.rs`) and, when its path is given, Maelstrom's Ruby
//! Raft demo, with the same flags and seeds.
//!
//! ```text
//! cargo bench --bench lin_kv -- [--demo PATH/demo/ruby/raft.rb]
//!                               [--time-limit 20] [--seed 1]
//! ```
//!
//! Every run is `glomers test -w lin-kv --node-count 3 --concurrency 4n`
//! plus one configuration's flags; runs are kept under
//! `target/lin-kv-bench/`. Figures per run:
//!
//! - `valid`: the checker's verdict;
//! - `ok-frac`: Maelstrom's `availability.ok-fraction` (ok / invocations);
//!   cas mismatches (22) and missing keys (20) are definite failures, so
//!   this stays near 0.6 for any correct store under this workload;
//! - `served`: operations answered with ok or with one of those two data
//!   errors, over invocations: what the node could serve;
//! - `p50 ms`: the largest per-operation median latency of ok operations
//!   (the challenge table's "median ok latency");
//! - `inv/s`, `served/s`, `ok/s`: invocations, served and ok operations
//!   per second of the test.
//!
//! Wall-clock figures depend on the machine and its load; the simulator
//! tests (`tests/sim/lin_kv.rs`) hold the exact, virtual-time ones.

use std::path::{Path, PathBuf};
use std::process::Command;

use glomers::history::Op;
use serde_json::Value;

/// A named set of flags on top of the common ones.
struct Config {
    name: &'static str,
    flags: &'static [&'static str],
}

const CONFIGS: [Config; 5] = [
    Config {
        name: "no faults, rate 100",
        flags: &["--rate", "100"],
    },
    Config {
        name: "partitions (interval 10 s), rate 100",
        flags: &[
            "--rate",
            "100",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "10",
        ],
    },
    Config {
        name: "latency 10 ms exponential, rate 100",
        flags: &[
            "--rate",
            "100",
            "--latency",
            "10",
            "--latency-dist",
            "exponential",
        ],
    },
    Config {
        name: "latency 10 ms, rate 100",
        flags: &["--rate", "100", "--latency", "10"],
    },
    Config {
        name: "latency 0, rate 1000",
        flags: &["--rate", "1000"],
    },
];

struct Args {
    demo: Option<PathBuf>,
    time_limit: u64,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        demo: None,
        time_limit: 20,
        seed: 1,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = || argv.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--demo" => args.demo = Some(PathBuf::from(value()?)),
            "--time-limit" => args.time_limit = value()?.parse().map_err(|e| format!("{e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("{e}"))?,
            // cargo bench passes --bench to every bench.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("lin_kv bench: {e}");
            std::process::exit(2);
        }
    };
    let mut subjects = vec![("ours", PathBuf::from(env!("CARGO_BIN_EXE_lin-kv")))];
    if let Some(demo) = &args.demo {
        subjects.push(("ruby demo", demo.clone()));
    }
    println!(
        "lin-kv: --node-count 3 --concurrency 4n --time-limit {} --seed {}",
        args.time_limit, args.seed
    );
    println!(
        "{:<38} {:<10} {:>7} {:>7} {:>7} {:>7} {:>9} {:>7}",
        "configuration", "node", "valid", "ok-frac", "served", "p50 ms", "served/s", "ok/s"
    );
    for (i, config) in CONFIGS.iter().enumerate() {
        for (name, bin) in &subjects {
            let store = bench_dir().join(name.replace(' ', "-")).join(i.to_string());
            match run(bin, config, &args, &store) {
                Ok(f) => println!(
                    "{:<38} {:<10} {:>7} {:>7.3} {:>7.3} {:>7.1} {:>9.1} {:>7.1}",
                    config.name,
                    name,
                    f.valid,
                    f.ok_fraction,
                    f.served,
                    f.median_ok_ms,
                    f.served_per_s,
                    f.ok_per_s
                ),
                Err(e) => println!("{:<38} {:<10} failed: {e}", config.name, name),
            }
        }
    }
    println!("runs are under {}", bench_dir().display());
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lin-kv-bench")
}

struct Figures {
    valid: String,
    ok_fraction: f64,
    served: f64,
    median_ok_ms: f64,
    served_per_s: f64,
    ok_per_s: f64,
}

fn run(bin: &Path, config: &Config, args: &Args, store: &Path) -> Result<Figures, String> {
    let _ = std::fs::remove_dir_all(store);
    let time_limit = args.time_limit.to_string();
    let seed = args.seed.to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_glomers"))
        .args(["test", "-w", "lin-kv", "--node-count", "3"])
        .args(["--concurrency", "4n", "--time-limit", &time_limit])
        .args(["--seed", &seed, "-q", "--bin"])
        .arg(bin)
        .arg("--store")
        .arg(store)
        .args(config.flags)
        .output()
        .map_err(|e| format!("cannot run glomers: {e}"))?;
    let run_dir = store.join("lin-kv/latest");
    let results: Value = read(&run_dir.join("results.json"))
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| format!("{e}; {}", String::from_utf8_lossy(&output.stderr)))?;
    let history: Vec<Op> = read(&run_dir.join("history.jsonl"))?
        .lines()
        .map(|line| serde_json::from_str(line).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let secs = args.time_limit as f64;
    let count = |f: &dyn Fn(&Op) -> bool| history.iter().filter(|op| f(op)).count() as f64;
    let served = count(&|op| op.is_client() && (op.is_ok() || is_data_answer(op)));
    let invoked = count(&|op| op.is_client() && op.is_invoke());
    Ok(Figures {
        valid: results["valid?"].to_string(),
        ok_fraction: results["availability"]["ok-fraction"]
            .as_f64()
            .unwrap_or(0.0),
        served: served / invoked.max(1.0),
        median_ok_ms: median_ok_latency(&results),
        served_per_s: served / secs,
        ok_per_s: count(&|op| op.is_client() && op.is_ok()) / secs,
    })
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A definite answer about the data: key missing (20), cas mismatch (22).
fn is_data_answer(op: &Op) -> bool {
    let name = op
        .error
        .as_ref()
        .and_then(|e| e.get(0))
        .and_then(Value::as_str);
    op.is_fail() && matches!(name, Some("key-does-not-exist" | "precondition-failed"))
}

/// The largest per-operation median of ok latencies, in ms.
fn median_ok_latency(results: &Value) -> f64 {
    results["glomers"]["latencies"]
        .as_object()
        .into_iter()
        .flat_map(|by_f| by_f.values())
        .filter_map(|by_kind| by_kind["ok"]["0.5"].as_f64())
        .fold(0.0, f64::max)
}
