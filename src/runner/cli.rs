//! The flags of `glomers test` (Maelstrom's, with Maelstrom's defaults) and
//! their translation into [`TestOptions`]; shared by `glomers test`,
//! `glomers sim` and the challenge registry.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::TestOptions;
use super::options::{Availability, Concurrency, Fault, LatencyDist, Topology, WorkloadName};

/// Maelstrom's test flags, plus `--seed`, `--store` and `--quiet`.
#[derive(Args, Debug, Clone)]
pub struct TestArgs {
    /// The workload: echo, unique-ids, broadcast, g-set, g-counter, pn-counter, lin-kv, kafka, txn-rw-register.
    #[arg(short = 'w', long, default_value = "lin-kv", value_name = "NAME", value_parser = parse::<WorkloadName>)]
    pub workload: WorkloadName,

    /// The node program (any executable, any language).
    #[arg(long, value_name = "FILE")]
    pub bin: Option<PathBuf>,

    /// Arguments passed on to the node program.
    #[arg(value_name = "ARGS", allow_hyphen_values = true)]
    pub bin_args: Vec<String>,

    /// Run N nodes named n0..n(N-1) [default: the five nodes n1..n5].
    #[arg(long, value_name = "N")]
    pub node_count: Option<usize>,

    /// Node names, comma separated.
    #[arg(
        long,
        value_name = "A,B,..",
        value_delimiter = ',',
        conflicts_with = "node_count"
    )]
    pub nodes: Vec<String>,

    /// A node name (repeatable).
    #[arg(
        short = 'n',
        long = "node",
        value_name = "NAME",
        conflicts_with = "node_count"
    )]
    pub node: Vec<String>,

    /// Worker threads: a number, or a multiple of the node count like 2n.
    #[arg(long, default_value = "1n", value_name = "N|Kn", value_parser = parse::<Concurrency>)]
    pub concurrency: Concurrency,

    /// Length of the main phase, in seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS")]
    pub time_limit: f64,

    /// Maximum client operations per second (0 for none).
    #[arg(long, default_value_t = 5.0, value_name = "OPS")]
    pub rate: f64,

    /// Mean inter-node message latency, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency: u64,

    /// How latency is drawn: constant, uniform or exponential.
    #[arg(long, default_value = "constant", value_name = "DIST", value_parser = parse::<LatencyDist>)]
    pub latency_dist: LatencyDist,

    /// Faults to inject, comma separated: partition (Maelstrom's), kill, pause.
    #[arg(long, value_name = "FAULTS", value_delimiter = ',', value_parser = parse::<Fault>)]
    pub nemesis: Vec<Fault>,

    /// Mean seconds between nemesis operations.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub nemesis_interval: f64,

    /// Broadcast topology: grid, line, total, tree2, tree3 or tree4.
    #[arg(long, default_value = "grid", value_name = "TOPOLOGY", value_parser = parse::<Topology>)]
    pub topology: Topology,

    /// Required availability: `total`, or the minimum fraction of ok operations.
    #[arg(long, value_name = "total|FRACTION", value_parser = parse::<Availability>)]
    pub availability: Option<Availability>,

    /// Consistency model for the transaction checker.
    #[arg(long, default_value = "strict-serializable", value_name = "MODEL")]
    pub consistency_models: String,

    /// Active keys at a time (kafka, txn-rw-register) [default: 10].
    #[arg(long, value_name = "N")]
    pub key_count: Option<usize>,

    /// Longest transaction (txn-rw-register).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_txn_length: usize,

    /// Writes per key before it is retired (kafka, txn-rw-register).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub max_writes_per_key: usize,

    /// Echo every node's stderr to the terminal as well.
    #[arg(long)]
    pub log_stderr: bool,

    /// Log every message sent.
    #[arg(long)]
    pub log_net_send: bool,

    /// Log every message received.
    #[arg(long)]
    pub log_net_recv: bool,

    /// Run the test this many times, stopping at the first that is not valid.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub test_count: usize,

    /// Seed for every random choice (printed on every run) [default: random].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Where runs are stored.
    #[arg(long, default_value = "store", value_name = "DIR")]
    pub store: PathBuf,

    /// Only print the summary.
    #[arg(short, long)]
    pub quiet: bool,

    // Maelstrom options that have no meaning here; accepted for
    // compatibility and ignored.
    #[arg(long, hide = true)]
    pub leave_db_running: bool,
    #[arg(long, hide = true)]
    pub logging_json: bool,
    #[arg(long, hide = true)]
    pub no_ssh: bool,
    #[arg(long, hide = true, value_name = "X")]
    pub username: Option<String>,
    #[arg(long, hide = true, value_name = "X")]
    pub password: Option<String>,
    #[arg(long, hide = true, value_name = "X")]
    pub strict_host_key_checking: Option<String>,
    #[arg(long, hide = true, value_name = "X")]
    pub ssh_private_key: Option<String>,
    #[arg(long, hide = true, value_name = "X")]
    pub nodes_file: Option<String>,
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

impl TestArgs {
    /// Turns the flags into test options, checking what clap cannot. The
    /// node binary must exist unless `require_bin` is false (simulations).
    pub fn to_options(&self, require_bin: bool) -> Result<TestOptions, String> {
        options(self, require_bin)
    }
}

fn options(args: &TestArgs, require_bin: bool) -> Result<TestOptions, String> {
    let bin = match (&args.bin, require_bin) {
        (Some(bin), true) => check_bin(bin)?,
        (None, true) => return Err("--bin is required: the node program to test".into()),
        (bin, false) => bin.clone().unwrap_or_else(|| PathBuf::from("in-process")),
    };
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
