//! `glomers`: a Maelstrom-compatible test runner (and more) for Gossip
//! Glomers nodes. `glomers test` takes Maelstrom's flags with Maelstrom's
//! defaults and exit codes; `glomers --help` lists the commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use glomers::runner::options::{
    Availability, Concurrency, Fault, LatencyDist, Topology, WorkloadName,
};
use glomers::runner::report::{self, Reporter};
use glomers::runner::{self, TestOptions};

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
    long_about = None,
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
    Test(TestArgs),
}

#[derive(Args)]
struct TestArgs {
    /// The workload to run.
    #[arg(short = 'w', long, default_value = "lin-kv", value_name = "NAME", value_parser = parse::<WorkloadName>,
          long_help = "The workload to run: echo, unique-ids, broadcast, g-set, g-counter, pn-counter, lin-kv, kafka or txn-rw-register.")]
    workload: WorkloadName,

    /// The node program (any executable, any language).
    #[arg(long, value_name = "FILE")]
    bin: PathBuf,

    /// Arguments passed on to the node program.
    #[arg(value_name = "ARGS", allow_hyphen_values = true)]
    bin_args: Vec<String>,

    /// Run N nodes named n0..n(N-1) [default: the five nodes n1..n5].
    #[arg(long, value_name = "N")]
    node_count: Option<usize>,

    /// Node names, comma separated.
    #[arg(
        long,
        value_name = "A,B,..",
        value_delimiter = ',',
        conflicts_with = "node_count"
    )]
    nodes: Vec<String>,

    /// A node name (repeatable).
    #[arg(
        short = 'n',
        long = "node",
        value_name = "NAME",
        conflicts_with = "node_count"
    )]
    node: Vec<String>,

    /// Worker threads: a number, or a multiple of the node count like 2n.
    #[arg(long, default_value = "1n", value_name = "N|Kn", value_parser = parse::<Concurrency>)]
    concurrency: Concurrency,

    /// Length of the main phase, in seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    time_limit: f64,

    /// Maximum client operations per second (0 for none).
    #[arg(long, default_value_t = 5.0, value_name = "OPS")]
    rate: f64,

    /// Mean inter-node message latency, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency: u64,

    /// How latency is drawn: constant, uniform or exponential.
    #[arg(long, default_value = "constant", value_name = "DIST", value_parser = parse::<LatencyDist>)]
    latency_dist: LatencyDist,

    /// Faults to inject, comma separated: partition (Maelstrom's), kill, pause.
    #[arg(long, value_name = "FAULTS", value_delimiter = ',', value_parser = parse::<Fault>)]
    nemesis: Vec<Fault>,

    /// Mean seconds between nemesis operations.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    nemesis_interval: f64,

    /// Broadcast topology: grid, line, total, tree2, tree3 or tree4.
    #[arg(long, default_value = "grid", value_name = "TOPOLOGY", value_parser = parse::<Topology>)]
    topology: Topology,

    /// Required availability: `total`, or the minimum fraction of ok operations.
    #[arg(long, value_name = "total|FRACTION", value_parser = parse::<Availability>)]
    availability: Option<Availability>,

    /// Consistency model for the transaction checker.
    #[arg(long, default_value = "strict-serializable", value_name = "MODEL")]
    consistency_models: String,

    /// Active keys at a time (kafka, txn-rw-register) [default: 10].
    #[arg(long, value_name = "N")]
    key_count: Option<usize>,

    /// Longest transaction (txn-rw-register).
    #[arg(long, default_value_t = 4, value_name = "N")]
    max_txn_length: usize,

    /// Writes per key before it is retired (kafka, txn-rw-register).
    #[arg(long, default_value_t = 16, value_name = "N")]
    max_writes_per_key: usize,

    /// Echo every node's stderr to the terminal as well.
    #[arg(long)]
    log_stderr: bool,

    /// Log every message sent.
    #[arg(long)]
    log_net_send: bool,

    /// Log every message received.
    #[arg(long)]
    log_net_recv: bool,

    /// Run the test this many times, stopping at the first that is not valid.
    #[arg(long, default_value_t = 1, value_name = "N")]
    test_count: usize,

    /// Seed for every random choice (printed on every run) [default: random].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Where runs are stored.
    #[arg(long, default_value = "store", value_name = "DIR")]
    store: PathBuf,

    /// Only print the summary.
    #[arg(short, long)]
    quiet: bool,

    // Maelstrom options that have no meaning here; accepted for
    // compatibility and ignored.
    #[arg(long, hide = true)]
    leave_db_running: bool,
    #[arg(long, hide = true)]
    logging_json: bool,
    #[arg(long, hide = true)]
    no_ssh: bool,
    #[arg(long, hide = true, value_name = "X")]
    username: Option<String>,
    #[arg(long, hide = true, value_name = "X")]
    password: Option<String>,
    #[arg(long, hide = true, value_name = "X")]
    strict_host_key_checking: Option<String>,
    #[arg(long, hide = true, value_name = "X")]
    ssh_private_key: Option<String>,
    #[arg(long, hide = true, value_name = "X")]
    nodes_file: Option<String>,
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
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
        Command::Test(args) => run_tests(args),
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    eprintln!("\nFor more information, try 'glomers test --help'.");
    ExitCode::from(EXIT_USAGE)
}

fn run_tests(args: TestArgs) -> ExitCode {
    let mut opts = match options(&args) {
        Ok(opts) => opts,
        Err(message) => return usage_error(&message),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let mut last = ExitCode::SUCCESS;
    for run in 0..args.test_count {
        if run > 0 {
            opts.seed = opts.seed.wrapping_add(1);
            eprintln!("\n== test {} of {} ==", run + 1, args.test_count);
        }
        let mut reporter = Reporter::new(args.quiet);
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
        match outcome.validity {
            Some(validity) => {
                println!(
                    "\n{}",
                    report::summary(&outcome.results, &opts, &outcome.dir)
                );
                println!("{}", report::verdict_line(validity));
            }
            None => println!(
                "\nThe test crashed: {}",
                outcome.crash.as_deref().unwrap_or("unknown reason")
            ),
        }
        last = ExitCode::from(outcome.exit_code() as u8);
        if outcome.exit_code() != 0 {
            break;
        }
    }
    last
}

/// Turns the flags into test options, checking what clap cannot.
fn options(args: &TestArgs) -> Result<TestOptions, String> {
    let bin = check_bin(&args.bin)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut opts = TestOptions::new(args.workload, bin, seed);
    let nodes: Vec<String> = args.nodes.iter().chain(&args.node).cloned().collect();
    if let Some(count) = args.node_count {
        if count == 0 {
            return Err("--node-count must be at least 1".into());
        }
        opts = opts.with_node_count(count);
    } else if !nodes.is_empty() {
        opts.nodes = nodes;
    }
    opts.bin_args = args.bin_args.clone();
    opts.concurrency = args.concurrency.threads(opts.node_count());
    opts.time_limit = seconds("--time-limit", args.time_limit)?;
    opts.rate = args.rate;
    opts.latency = Duration::from_millis(args.latency);
    opts.latency_dist = args.latency_dist;
    opts.nemesis = args.nemesis.clone();
    opts.nemesis_interval = seconds("--nemesis-interval", args.nemesis_interval)?;
    opts.topology = args.topology;
    opts.availability = args.availability;
    opts.consistency_model = args.consistency_models.clone();
    opts.key_count = args.key_count;
    opts.max_txn_length = args.max_txn_length;
    opts.max_writes_per_key = args.max_writes_per_key;
    opts.log_stderr = args.log_stderr;
    opts.log_net_send = args.log_net_send;
    opts.log_net_recv = args.log_net_recv;
    opts.test_count = args.test_count;
    opts.store = args.store.clone();
    opts.validate()?;
    Ok(opts)
}

fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{flag} must be a number of seconds >= 0, not {value}"))
}

/// The node binary must exist and be executable; it is run by absolute
/// path because each node runs in its own directory.
fn check_bin(bin: &Path) -> Result<PathBuf, String> {
    let path = bin
        .canonicalize()
        .map_err(|e| format!("--bin {}: {e}", bin.display()))?;
    if !path.is_file() {
        return Err(format!("--bin {}: not a file", bin.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = path.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o111 == 0 {
            return Err(format!(
                "--bin {}: not executable (try chmod +x)",
                bin.display()
            ));
        }
    }
    Ok(path)
}
