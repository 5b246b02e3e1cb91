//! The settings of one test, with Maelstrom's defaults: what `glomers test`
//! parses its flags into, and what the simulator takes too.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// The workloads Maelstrom defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadName {
    Echo,
    UniqueIds,
    Broadcast,
    GSet,
    GCounter,
    PnCounter,
    LinKv,
    Kafka,
    TxnRwRegister,
}

impl WorkloadName {
    /// Every workload, in Maelstrom's documentation order.
    pub const ALL: [WorkloadName; 9] = [
        WorkloadName::Echo,
        WorkloadName::UniqueIds,
        WorkloadName::Broadcast,
        WorkloadName::GSet,
        WorkloadName::GCounter,
        WorkloadName::PnCounter,
        WorkloadName::LinKv,
        WorkloadName::Kafka,
        WorkloadName::TxnRwRegister,
    ];

    /// The name used on the command line and in store paths.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadName::Echo => "echo",
            WorkloadName::UniqueIds => "unique-ids",
            WorkloadName::Broadcast => "broadcast",
            WorkloadName::GSet => "g-set",
            WorkloadName::GCounter => "g-counter",
            WorkloadName::PnCounter => "pn-counter",
            WorkloadName::LinKv => "lin-kv",
            WorkloadName::Kafka => "kafka",
            WorkloadName::TxnRwRegister => "txn-rw-register",
        }
    }
}

impl fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorkloadName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "txn-list-append" {
            return Err("the txn-list-append workload is not supported by glomers yet".into());
        }
        WorkloadName::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown workload {s:?}; expected one of: {}",
                    names(&WorkloadName::ALL)
                )
            })
    }
}

fn names<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How message latency is drawn (`--latency-dist`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatencyDist {
    /// Exactly the mean.
    Constant,
    /// Uniform over [0, 2 x mean).
    Uniform,
    /// Exponential with the given mean.
    Exponential,
}

impl FromStr for LatencyDist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "constant" => Ok(LatencyDist::Constant),
            "uniform" => Ok(LatencyDist::Uniform),
            "exponential" => Ok(LatencyDist::Exponential),
            _ => Err(format!(
                "unknown latency distribution {s:?}; expected constant, uniform or exponential"
            )),
        }
    }
}

/// Broadcast topologies (`--topology`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    Grid,
    Line,
    Total,
    Tree2,
    Tree3,
    Tree4,
}

impl FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "grid" => Ok(Topology::Grid),
            "line" => Ok(Topology::Line),
            "total" => Ok(Topology::Total),
            "tree" | "tree2" => Ok(Topology::Tree2),
            "tree3" => Ok(Topology::Tree3),
            "tree4" => Ok(Topology::Tree4),
            _ => Err(format!(
                "unknown topology {s:?}; expected grid, line, total, tree2, tree3 or tree4"
            )),
        }
    }
}

/// A fault the nemesis injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Network partitions (Maelstrom's only fault).
    Partition,
    /// SIGKILL a minority of nodes and restart them (a glomers extension).
    Kill,
    /// SIGSTOP a minority of nodes and later SIGCONT them (a glomers extension).
    Pause,
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "partition" => Ok(Fault::Partition),
            "kill" => Ok(Fault::Kill),
            "pause" => Ok(Fault::Pause),
            _ => Err(format!(
                "unknown fault {s:?}; expected partition, kill or pause"
            )),
        }
    }
}

/// `--concurrency`: a number of worker threads, or a multiple of the node
/// count (`2n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Concurrency {
    Threads(usize),
    PerNode(usize),
}

impl Concurrency {
    /// The number of worker threads for `nodes` nodes.
    pub fn threads(self, nodes: usize) -> usize {
        match self {
            Concurrency::Threads(n) => n,
            Concurrency::PerNode(k) => k * nodes,
        }
    }
}

impl FromStr for Concurrency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid concurrency {s:?}; expected a number like 4 or a multiple of the node count like 2n"
            )
        };
        let (digits, per_node) = match s.strip_suffix('n') {
            Some(d) => (if d.is_empty() { "1" } else { d }, true),
            None => (s, false),
        };
        let n: usize = digits.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        Ok(if per_node {
            Concurrency::PerNode(n)
        } else {
            Concurrency::Threads(n)
        })
    }
}

/// `--availability`: how many operations must succeed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Availability {
    /// Every operation (`total`).
    Total,
    /// At least this fraction of operations.
    Fraction(f64),
}

impl FromStr for Availability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "total" {
            return Ok(Availability::Total);
        }
        match s.parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Ok(Availability::Fraction(f)),
            _ => Err(format!(
                "invalid availability {s:?}; expected 'total' or a number between 0 and 1"
            )),
        }
    }
}

/// Everything that defines one test run.
#[derive(Debug, Clone, Serialize)]
pub struct TestOptions {
    pub workload: WorkloadName,
    /// The node program and the extra arguments passed to it.
    pub bin: PathBuf,
    pub bin_args: Vec<String>,
    /// Node ids, `n0..` with `--node-count`, else Jepsen's `n1..n5`.
    pub nodes: Vec<String>,
    pub concurrency: usize,
    /// Length of the main phase.
    pub time_limit: Duration,
    /// Maximum client operations per second (0: none).
    pub rate: f64,
    /// Mean inter-node latency.
    pub latency: Duration,
    pub latency_dist: LatencyDist,
    pub nemesis: Vec<Fault>,
    /// Mean time between nemesis operations.
    pub nemesis_interval: Duration,
    pub topology: Topology,
    pub availability: Option<Availability>,
    /// The consistency model the txn checker enforces.
    pub consistency_model: String,
    pub key_count: Option<usize>,
    pub max_txn_length: usize,
    pub max_writes_per_key: usize,
    pub log_stderr: bool,
    pub log_net_send: bool,
    pub log_net_recv: bool,
    pub test_count: usize,
    /// The seed every random choice of the run derives from.
    pub seed: u64,
    /// Where runs are stored (`store/`).
    pub store: PathBuf,
    /// Extra environment variables for node processes (challenge tuning
    /// knobs); the simulator hands them to the built-in solutions.
    pub node_env: Vec<(String, String)>,
}

impl TestOptions {
    /// Maelstrom's defaults for a workload and binary, with a given seed.
    pub fn new(workload: WorkloadName, bin: impl Into<PathBuf>, seed: u64) -> TestOptions {
        TestOptions {
            workload,
            bin: bin.into(),
            bin_args: Vec::new(),
            nodes: (1..=5).map(|i| format!("n{i}")).collect(),
            concurrency: 5,
            time_limit: Duration::from_secs(60),
            rate: 5.0,
            latency: Duration::ZERO,
            latency_dist: LatencyDist::Constant,
            nemesis: Vec::new(),
            nemesis_interval: Duration::from_secs(10),
            topology: Topology::Grid,
            availability: None,
            consistency_model: "strict-serializable".into(),
            key_count: None,
            max_txn_length: 4,
            max_writes_per_key: 16,
            log_stderr: false,
            log_net_send: false,
            log_net_recv: false,
            test_count: 1,
            seed,
            store: PathBuf::from("store"),
            node_env: Vec::new(),
        }
    }

    /// Sets `n0..n(count-1)` as the nodes and `concurrency` to one thread
    /// per node (Maelstrom's `1n` default).
    pub fn with_node_count(mut self, count: usize) -> TestOptions {
        self.nodes = (0..count).map(|i| format!("n{i}")).collect();
        self.concurrency = count;
        self
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The value of a node environment variable set for this test.
    pub fn node_env(&self, name: &str) -> Option<&str> {
        self.node_env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_fault(&self, fault: Fault) -> bool {
        self.nemesis.contains(&fault)
    }

    /// Checks settings that would otherwise fail in the middle of a run.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("at least one node is needed".into());
        }
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err(format!(
                "invalid rate {}; expected a number >= 0",
                self.rate
            ));
        }
        if self.workload == WorkloadName::LinKv
            && !self.concurrency.is_multiple_of(2 * self.node_count())
        {
            return Err(format!(
                "the lin-kv workload needs a concurrency that is a multiple of 2 x node-count \
                 ({}), but it is {}; try --concurrency 2n",
                2 * self.node_count(),
                self.concurrency
            ));
        }
        if self.max_txn_length == 0 || self.max_writes_per_key == 0 {
            return Err("--max-txn-length and --max-writes-per-key must be at least 1".into());
        }
        if self.key_count == Some(0) {
            return Err("--key-count must be at least 1".into());
        }
        crate::workload::build(self)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flag_values_like_maelstrom() {
        assert_eq!("2n".parse::<Concurrency>().unwrap().threads(3), 6);
        assert_eq!("n".parse::<Concurrency>().unwrap().threads(3), 3);
        assert_eq!("7".parse::<Concurrency>().unwrap().threads(3), 7);
        assert!("0".parse::<Concurrency>().is_err());
        assert!("xn".parse::<Concurrency>().is_err());
        assert_eq!("tree".parse::<Topology>().unwrap(), Topology::Tree2);
        assert_eq!(
            "total".parse::<Availability>().unwrap(),
            Availability::Total
        );
        assert_eq!(
            "0.99".parse::<Availability>().unwrap(),
            Availability::Fraction(0.99)
        );
        assert!("1.5".parse::<Availability>().is_err());
        assert!("kafka".parse::<WorkloadName>().is_ok());
        let err = "kafak".parse::<WorkloadName>().unwrap_err();
        assert!(err.contains("expected one of"), "{err}");
    }

    #[test]
    fn lin_kv_concurrency_must_be_a_multiple_of_twice_the_nodes() {
        let mut opts = TestOptions::new(WorkloadName::LinKv, "x", 1).with_node_count(3);
        assert!(opts.validate().unwrap_err().contains("--concurrency 2n"));
        opts.concurrency = 12;
        assert!(opts.validate().is_ok());
    }

    #[test]
    fn defaults_are_maelstroms() {
        let opts = TestOptions::new(WorkloadName::Echo, "x", 1);
        assert_eq!(opts.nodes, ["n1", "n2", "n3", "n4", "n5"]);
        assert_eq!(opts.time_limit, Duration::from_secs(60));
        assert_eq!(opts.rate, 5.0);
        assert_eq!(opts.nemesis_interval, Duration::from_secs(10));
    }
}
