//! `glomers`: a Maelstrom-compatible test runner (and more) for Gossip
//! Glomers nodes. `glomers test` takes Maelstrom's flags with Maelstrom's
//! defaults and exit codes; `glomers --help` lists the commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};

use glomers::challenges::{self, Challenge, TargetOutcome};
use glomers::checker::Validity;
use glomers::runner::cli::TestArgs;
use glomers::runner::report::{self, Reporter};
use glomers::runner::{self, TestOptions};
use glomers::sim::NetworkFaults;
use glomers::solutions;

/// Exit code for bad command-line arguments, as Maelstrom uses.
const EXIT_USAGE: u8 = 254;
/// Exit code when the test could not run to the end.
const EXIT_CRASH: u8 = 255;
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
    /// Run a Gossip Glomers sub-challenge with its official flags and check
    /// its targets; extra flags override the official ones.
    #[command(
        after_help = "Examples:\n  glomers challenge 3e\n  glomers challenge broadcast-efficient-2 --nemesis partition\n  glomers challenge 4 --sim --seed 7"
    )]
    Challenge(ChallengeCommand),
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

#[derive(Args)]
struct ChallengeCommand {
    /// The sub-challenge: an id (1, 2, 3a..3e, 4, 5a..5c, 6a..6c, lin-kv) or name.
    challenge: String,
    /// Run the built-in solution in the simulator instead of as processes.
    #[arg(long)]
    sim: bool,
    /// Where the challenge binaries are [default: next to this program].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Flags for `glomers test` that override the official ones (e.g.
    /// --nemesis partition --seed 7).
    #[arg(
        value_name = "FLAGS",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    flags: Vec<String>,
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
        Command::Challenge(challenge) => run_challenge(challenge),
        Command::Challenges => list_challenges(),
    }
}

fn usage_error(command: &str, message: &str) -> ExitCode {
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
    run_processes(opts, args.test_count, args.quiet, None)
}

/// Runs `count` tests (seed, seed+1, ...) against processes, stopping at
/// the first that is not valid; prints each summary (and targets).
fn run_processes(
    mut opts: TestOptions,
    count: usize,
    quiet: bool,
    challenge: Option<&Challenge>,
) -> ExitCode {
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
            challenge,
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
    challenge: Option<&Challenge>,
) {
    match validity {
        Some(validity) => {
            println!("\n{}", report::summary(results, opts, dir));
            if let Some(challenge) = challenge {
                print_targets(&challenge.evaluate(results, Challenge::with_partitions(opts)));
            }
            println!("{}", report::verdict_line(validity));
        }
        None => println!("\nThe test crashed: {}", crash.unwrap_or("unknown reason")),
    }
}

fn print_targets(outcomes: &[TargetOutcome]) {
    if outcomes.is_empty() {
        return;
    }
    println!("  Targets");
    for o in outcomes {
        let value = o
            .value
            .map_or("not reported".to_string(), |v| format!("{v:.3}"));
        let mark = match o.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "n/a",
        };
        let source = match o.source {
            challenges::Source::Challenge => "challenge",
            challenges::Source::Ours => "ours",
        };
        println!(
            "    {:<28} {:<10} {:>12}  {mark:<6} ({source})",
            o.metric, o.bound, value
        );
    }
    println!();
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
    simulate(opts, &solution, faults, sim.seeds, None)
}

/// Simulates `seeds` runs; with one seed prints the full summary, with
/// more one line per seed. Exits with the worst outcome.
/// Our `GLOMERS_*` tuning variables: node processes inherit them from us,
/// and the simulator hands them to the built-in solutions, so both see the
/// same knobs (the runner's own `GLOMERS_SEED` and `GLOMERS_DATA_DIR` are
/// set per node and left out).
fn tuning_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter(|(name, _)| {
        name.starts_with("GLOMERS_") && name != "GLOMERS_SEED" && name != "GLOMERS_DATA_DIR"
    })
}

fn simulate(
    opts: TestOptions,
    solution: &str,
    faults: NetworkFaults,
    seeds: u64,
    challenge: Option<&Challenge>,
) -> ExitCode {
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
                challenge,
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

fn run_challenge(cmd: ChallengeCommand) -> ExitCode {
    let Some(challenge) = challenges::find(&cmd.challenge) else {
        let known: Vec<&str> = challenges::ALL.iter().map(|c| c.id).collect();
        return usage_error(
            "challenge",
            &format!(
                "unknown challenge {:?}; expected one of {}",
                cmd.challenge,
                known.join(", ")
            ),
        );
    };
    let bin_dir = cmd
        .bin_dir
        .clone()
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(PathBuf::from))
        })
        .unwrap_or_default();
    let bin = bin_dir.join(challenge.binary);
    let mut opts = match challenge.options(&bin.to_string_lossy(), &cmd.flags) {
        Ok(opts) => opts,
        Err(message) => return usage_error("challenge", &message),
    };
    opts.node_env.extend(tuning_env());
    opts.node_env.extend(
        challenge
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    println!("challenge {}: {}", challenge.id, challenge.title);
    if cmd.sim {
        let faults = NetworkFaults::default();
        return simulate(opts, challenge.binary, faults, 1, Some(challenge));
    }
    if !bin.is_file() {
        return usage_error(
            "challenge",
            &format!(
                "{} does not exist; build the binaries first (make build) or pass --bin-dir",
                bin.display()
            ),
        );
    }
    let quiet = cmd.flags.iter().any(|f| f == "-q" || f == "--quiet");
    run_processes(opts, 1, quiet, Some(challenge))
}

fn list_challenges() -> ExitCode {
    for c in challenges::ALL {
        println!("{:<7} {:<28} {}", c.id, c.name, c.title);
        println!("        binary {}, partitions {:?}", c.binary, c.partitions);
        println!("        flags  {}", c.flags.join(" "));
        for t in c.targets {
            println!(
                "        target {} {} ({:?}, {:?})",
                t.metric.label(),
                t.bound(),
                t.source,
                t.when
            );
        }
    }
    ExitCode::SUCCESS
}
