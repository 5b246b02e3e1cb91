//! `glomers`: a Maelstrom-compatible test runner (and more) for Gossip
//! Glomers nodes. `glomers test` takes Maelstrom's flags with Maelstrom's
//! defaults and exit codes; `glomers --help` lists the commands.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};

#[path = "glomers/results_cmd.rs"]
mod results_cmd;

use glomers::challenges::{self, Partitions, Source, When};
use glomers::checker::Validity;
use glomers::runner::cli::TestArgs;
use glomers::runner::report::{self, Reporter};
use glomers::runner::{self, TestOptions};
use glomers::sim::NetworkFaults;
use glomers::solutions;

/// Exit code for bad command-line arguments, as Maelstrom uses.
pub(crate) const EXIT_USAGE: u8 = 254;
/// Exit code when the test could not run to the end.
pub(crate) const EXIT_CRASH: u8 = 255;
/// Exit code after Ctrl-C.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "glomers",
    version,
    about = "Test Gossip Glomers / Maelstrom nodes: a Maelstrom-compatible runner without a JVM",
    after_help = "Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 the test crashed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a workload against a node binary, like `maelstrom test`.
    #[command(
        after_help = "Example:\n  glomers test -w broadcast --bin target/release/broadcast --node-count 5 \\\n      --time-limit 20 --rate 10 --nemesis partition"
    )]
    Test(TestCommand),
    /// Simulate a built-in solution in-process on virtual time (milliseconds
    /// per test, exactly reproducible from --seed).
    #[command(
        after_help = "Example:\n  glomers sim -w broadcast --node-count 25 --time-limit 20 --rate 100 --latency 100 --seeds 10"
    )]
    Sim(SimCommand),
    /// Run a Gossip Glomers sub-challenge with its official flags (through
    /// real Maelstrom when installed, else our runner) and check its targets.
    #[command(
        after_help = "Exit codes: 0 valid, 1 invalid, 2 unknown, 3 valid but a target the challenge sets was missed, 254 bad arguments, 255 crashed.\n\nExamples:\n  glomers challenge 3e\n  glomers challenge broadcast-efficient-2 --nemesis partition\n  glomers challenge 4 --runner glomers --seed 7 --results-dir maelstrom-results\n  glomers challenge 4 --sim"
    )]
    Challenge(results_cmd::ChallengeCommand),
    /// Run every sub-challenge, with and without partitions where that
    /// makes sense; one line per run, summaries and an HTML report.
    #[command(
        after_help = "Exits non-zero if any run is not valid or misses a target the challenge sets (targets do not count with --quick). Challenges without a binary are shown as \"no binary\" and skipped.\n\nExamples:\n  glomers matrix\n  glomers matrix --quick --only 3a,3b\n  glomers matrix --sim"
    )]
    Matrix(results_cmd::MatrixCommand),
    /// Regenerate maelstrom-results/README.md or index.html, or add runs to it.
    #[command(subcommand)]
    Results(results_cmd::ResultsCommand),
    /// Show runs side by side: store directories, results.json/.edn files
    /// or summaries.
    #[command(
        after_help = "Examples:\n  glomers compare maelstrom-results/3e-none-glomers.json maelstrom-results/3e-partition-glomers.json\n  glomers compare store/broadcast/20261123T150000.000Z store/broadcast/latest --markdown"
    )]
    Compare(results_cmd::CompareCommand),
    /// Write an HTML report (charts, verdict, anomalies) into run directories.
    Report(results_cmd::ReportCommand),
    /// List the sub-challenges, their flags and targets.
    Challenges,
}

#[derive(Args)]
struct TestCommand {
    #[command(flatten)]
    args: TestArgs,
}

#[derive(Args)]
struct SimCommand {
    #[command(flatten)]
    args: TestArgs,
    /// The built-in solution to run [default: the one for the workload].
    #[arg(long, value_name = "NAME")]
    solution: Option<String>,
    /// Probability that a node-to-node message is lost.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    loss: f64,
    /// Probability that a node-to-node message is delivered twice.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    duplicate: f64,
    /// Run this many seeds, from --seed upwards.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seeds: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Test(test) => run_tests(test.args),
        Command::Sim(sim) => run_sim(sim),
        Command::Challenge(cmd) => results_cmd::challenge(cmd),
        Command::Matrix(cmd) => results_cmd::matrix(cmd),
        Command::Results(cmd) => results_cmd::results(cmd),
        Command::Compare(cmd) => results_cmd::compare(cmd),
        Command::Report(cmd) => results_cmd::report(cmd),
        Command::Challenges => list_challenges(),
    }
}

pub(crate) fn usage_error(command: &str, message: &str) -> ExitCode {
    eprintln!("error: {message}");
    eprintln!("\nFor more information, try 'glomers {command} --help'.");
    ExitCode::from(EXIT_USAGE)
}

fn exit_code(validity: Option<Validity>) -> u8 {
    match validity {
        Some(Validity::Valid) => 0,
        Some(Validity::Invalid) => 1,
        Some(Validity::Unknown) => 2,
        None => EXIT_CRASH,
    }
}

fn run_tests(args: TestArgs) -> ExitCode {
    let opts = match args.to_options(true) {
        Ok(opts) => opts,
        Err(message) => return usage_error("test", &message),
    };
    run_processes(opts, args.test_count, args.quiet)
}

/// Runs `count` tests (seed, seed+1, ...) against processes, stopping at
/// the first that is not valid; prints each summary (and targets).
fn run_processes(mut opts: TestOptions, count: usize, quiet: bool) -> ExitCode {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let mut last = 0;
    for run in 0..count {
        if run > 0 {
            opts.seed = opts.seed.wrapping_add(1);
            eprintln!("\n== test {} of {} ==", run + 1, count);
        }
        let mut reporter = Reporter::new(quiet);
        let outcome = match runner::run_test(&opts, &interrupted, &mut reporter) {
            Ok(outcome) => outcome,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(EXIT_CRASH);
            }
        };
        if interrupted.load(Ordering::SeqCst) {
            eprintln!(
                "interrupted; partial results are in {}",
                outcome.dir.display()
            );
            return ExitCode::from(EXIT_INTERRUPTED);
        }
        print_outcome(
            outcome.validity,
            outcome.crash.as_deref(),
            &outcome.results,
            &opts,
            Some(&outcome.dir),
        );
        last = exit_code(outcome.validity);
        if last != 0 {
            break;
        }
    }
    ExitCode::from(last)
}

fn print_outcome(
    validity: Option<Validity>,
    crash: Option<&str>,
    results: &serde_json::Value,
    opts: &TestOptions,
    dir: Option<&std::path::Path>,
) {
    match validity {
        Some(validity) => {
            println!("\n{}", report::summary(results, opts, dir));
            println!("{}", report::verdict_line(validity));
        }
        None => println!("\nThe test crashed: {}", crash.unwrap_or("unknown reason")),
    }
}

fn run_sim(sim: SimCommand) -> ExitCode {
    let mut opts = match sim.args.to_options(false) {
        Ok(opts) => opts,
        Err(message) => return usage_error("sim", &message),
    };
    opts.node_env.extend(tuning_env());
    let solution = match sim
        .solution
        .clone()
        .or_else(|| solutions::for_workload(opts.workload).map(String::from))
    {
        Some(s) if solutions::NAMES.contains(&s.as_str()) => s,
        Some(s) => {
            return usage_error(
                "sim",
                &format!(
                    "unknown solution {s:?}; built-in solutions: {}",
                    solutions::NAMES.join(", ")
                ),
            );
        }
        None => {
            return usage_error(
                "sim",
                &format!(
                    "no built-in solution for workload {}; pass --solution",
                    opts.workload
                ),
            );
        }
    };
    let faults = NetworkFaults {
        loss: sim.loss,
        duplication: sim.duplicate,
    };
    simulate(opts, &solution, faults, sim.seeds)
}

/// Simulates `seeds` runs; with one seed prints the full summary, with
/// more one line per seed. Exits with the worst outcome.
/// Our `GLOMERS_*` tuning variables: node processes inherit them from us,
/// and the simulator hands them to the built-in solutions, so both see the
/// same knobs (the runner's own `GLOMERS_SEED` and `GLOMERS_DATA_DIR` are
/// set per node and left out).
pub(crate) fn tuning_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter(|(name, _)| {
        name.starts_with("GLOMERS_") && name != "GLOMERS_SEED" && name != "GLOMERS_DATA_DIR"
    })
}

fn simulate(opts: TestOptions, solution: &str, faults: NetworkFaults, seeds: u64) -> ExitCode {
    let mut worst = 0;
    for k in 0..seeds.max(1) {
        let mut opts = opts.clone();
        opts.seed = opts.seed.wrapping_add(k);
        let started = std::time::Instant::now();
        let outcome = solutions::simulation(solution, opts.clone())
            .expect("the solution name was checked")
            .with_faults(faults)
            .run();
        let wall = started.elapsed().as_secs_f64();
        let code = exit_code(outcome.validity);
        worst = worst.max(code);
        if seeds <= 1 {
            eprintln!(
                "simulated {:.1} s in {wall:.2} s of wall time",
                outcome.virtual_secs
            );
            print_outcome(
                outcome.validity,
                outcome.crash.as_deref(),
                &outcome.results,
                &opts,
                None,
            );
        } else {
            let verdict = match outcome.validity {
                Some(v) => v.to_string(),
                None => format!("crashed: {}", outcome.crash.as_deref().unwrap_or("")),
            };
            let per_op = outcome
                .result(&["net", "servers", "msgs-per-op"])
                .as_f64()
                .unwrap_or(0.0);
            println!(
                "seed {:<20} {verdict:<8} ops {:>6}  availability {:.4}  servers msgs-per-op {per_op:.2}  ({wall:.2} s)",
                opts.seed,
                outcome.result(&["stats", "count"]),
                outcome
                    .result(&["availability", "ok-fraction"])
                    .as_f64()
                    .unwrap_or(0.0),
            );
            if code != 0 {
                println!("  {}", outcome.replay_hint());
            }
        }
    }
    ExitCode::from(worst)
}

fn list_challenges() -> ExitCode {
    for c in challenges::ALL {
        let aliases: Vec<&str> = challenges::ALIASES
            .iter()
            .filter(|(_, id)| *id == c.id)
            .map(|(alias, _)| *alias)
            .collect();
        let alias = if aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", aliases.join(", "))
        };
        println!("{:<7} {:<28} {}{alias}", c.id, c.name, c.title);
        let partitions = match c.partitions {
            Partitions::Required => "with partitions (official)",
            Partitions::Optional => "with and without partitions",
            Partitions::Never => "never partitioned (one node)",
        };
        println!("        binary {}, {partitions}", c.binary);
        println!("        flags  {}", c.flags.join(" "));
        for t in c.targets {
            let source = match t.source {
                Source::Challenge => "the challenge's limit",
                Source::Ours => "our goal",
            };
            let when = match t.when {
                When::Always => "",
                When::WithPartitions => ", with partitions",
                When::WithoutPartitions => ", without partitions",
            };
            println!(
                "        target {} {} ({source}{when})",
                t.metric.label(),
                t.bound()
            );
        }
    }
    ExitCode::SUCCESS
}
