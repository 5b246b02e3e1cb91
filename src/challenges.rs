//! The Gossip Glomers challenges in one table: each sub-challenge's
//! official Maelstrom flags, the binary that solves it, whether partitions
//! apply, and the targets its results are held to (the challenge's own
//! limits and ours). The Makefile, `glomers challenge`, the simulator tests
//! and the results pages all read this table.

use clap::Parser;
use serde::Serialize;
use serde_json::Value;

use crate::runner::TestOptions;
use crate::runner::cli::TestArgs;

/// Whether a challenge runs with network partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Partitions {
    /// The official flags include `--nemesis partition`.
    Required,
    /// Official without; the matrix also runs it with partitions.
    Optional,
    /// One node: partitions cannot happen.
    Never,
}

/// What a target measures, read from `results.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// `net.servers.msgs-per-op`.
    ServerMsgsPerOp,
    /// `workload.stable-latencies` at a quantile, in ms ("0.5" or "1").
    StableLatency(&'static str),
    /// `availability.ok-fraction`.
    Availability,
    /// `glomers.served-fraction`: ok, or a definite answer about the data
    /// (errors 20-22), over all requests (kafka's client `crash` operations
    /// are not requests); ours, Maelstrom does not report it.
    Served,
    /// Median latency of ok operations of every kind, in ms (ours: from
    /// `glomers.latencies`, which Maelstrom does not report).
    MedianOkLatency,
}

impl Metric {
    /// The measured value in a `results.json` document, if present.
    pub fn read(self, results: &Value) -> Option<f64> {
        match self {
            Metric::ServerMsgsPerOp => results["net"]["servers"]["msgs-per-op"].as_f64(),
            Metric::StableLatency(q) => results["workload"]["stable-latencies"][q].as_f64(),
            Metric::Availability => results["availability"]["ok-fraction"].as_f64(),
            Metric::Served => results["glomers"]["served-fraction"].as_f64(),
            Metric::MedianOkLatency => median_ok_latency(results),
        }
    }

    pub fn label(self) -> String {
        match self {
            Metric::ServerMsgsPerOp => "msgs-per-op".into(),
            Metric::StableLatency("0.5") => "median stable latency (ms)".into(),
            Metric::StableLatency("1") => "max stable latency (ms)".into(),
            Metric::StableLatency(q) => format!("stable latency {q} (ms)"),
            Metric::Availability => "availability".into(),
            Metric::Served => "served (ok or definite answer)".into(),
            Metric::MedianOkLatency => "median ok latency (ms)".into(),
        }
    }
}

/// The largest per-`f` median among ok operations (ms).
fn median_ok_latency(results: &Value) -> Option<f64> {
    results["glomers"]["latencies"]
        .as_object()?
        .values()
        .filter_map(|by| by["ok"]["0.5"].as_f64())
        .reduce(f64::max)
}

/// Who set a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The challenge's own limit.
    Challenge,
    /// Our stricter goal.
    Ours,
}

/// Which runs a target applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    Always,
    WithPartitions,
    WithoutPartitions,
}

/// A bound a run's figure must respect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    pub metric: Metric,
    /// The figure must be strictly below this (e.g. "< 30 msgs-per-op").
    pub below: Option<f64>,
    /// The figure must be at most this.
    pub at_most: Option<f64>,
    /// The figure must be at least this.
    pub at_least: Option<f64>,
    pub source: Source,
    pub when: When,
}

impl Target {
    const fn new(metric: Metric, source: Source) -> Target {
        Target {
            metric,
            below: None,
            at_most: None,
            at_least: None,
            source,
            when: When::Always,
        }
    }
    const fn below(metric: Metric, limit: f64) -> Target {
        Target {
            below: Some(limit),
            ..Target::new(metric, Source::Challenge)
        }
    }
    const fn at_most(metric: Metric, limit: f64) -> Target {
        Target {
            at_most: Some(limit),
            ..Target::new(metric, Source::Ours)
        }
    }
    const fn at_least(metric: Metric, limit: f64, when: When) -> Target {
        Target {
            at_least: Some(limit),
            when,
            ..Target::new(metric, Source::Ours)
        }
    }

    /// Whether `value` meets the bound.
    pub fn met_by(&self, value: f64) -> bool {
        self.below.is_none_or(|b| value < b)
            && self.at_most.is_none_or(|b| value <= b)
            && self.at_least.is_none_or(|b| value >= b)
    }

    /// E.g. "< 30", "<= 1.5", ">= 0.999".
    pub fn bound(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.below {
            parts.push(format!("< {b}"));
        }
        if let Some(b) = self.at_most {
            parts.push(format!("<= {b}"));
        }
        if let Some(b) = self.at_least {
            parts.push(format!(">= {b}"));
        }
        parts.join(", ")
    }

    pub fn applies(&self, with_partitions: bool) -> bool {
        match self.when {
            When::Always => true,
            When::WithPartitions => with_partitions,
            When::WithoutPartitions => !with_partitions,
        }
    }
}

/// One sub-challenge.
#[derive(Debug, Clone, Serialize)]
pub struct Challenge {
    /// The challenge number, e.g. `3e`.
    pub id: &'static str,
    /// A friendly name usable instead of the id, e.g. `broadcast-efficient-2`.
    pub name: &'static str,
    pub title: &'static str,
    /// The binary in `src/bin/` that solves it.
    pub binary: &'static str,
    /// The official flags after `--bin` (from the challenge page).
    pub flags: &'static [&'static str],
    pub partitions: Partitions,
    /// Environment for the binary (e.g. a tuning mode).
    pub env: &'static [(&'static str, &'static str)],
    pub targets: &'static [Target],
}

use Metric::*;

const BROADCAST_EFFICIENT: &[&str] = &[
    "-w",
    "broadcast",
    "--node-count",
    "25",
    "--time-limit",
    "20",
    "--rate",
    "100",
    "--latency",
    "100",
];
const KAFKA_MULTI: &[&str] = &[
    "-w",
    "kafka",
    "--node-count",
    "2",
    "--concurrency",
    "2n",
    "--time-limit",
    "20",
    "--rate",
    "1000",
];
const TXN_6C: &[&str] = &[
    "-w",
    "txn-rw-register",
    "--node-count",
    "2",
    "--concurrency",
    "2n",
    "--time-limit",
    "20",
    "--rate",
    "1000",
    "--consistency-models",
    "read-committed",
    "--availability",
    "total",
    "--nemesis",
    "partition",
];

/// Every sub-challenge, in order.
pub const ALL: &[Challenge] = &[
    Challenge {
        id: "1",
        name: "echo",
        title: "Echo",
        binary: "echo",
        flags: &["-w", "echo", "--node-count", "1", "--time-limit", "10"],
        partitions: Partitions::Never,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "2",
        name: "unique-ids",
        title: "Unique ID Generation",
        binary: "unique-ids",
        flags: &[
            "-w",
            "unique-ids",
            "--time-limit",
            "30",
            "--rate",
            "1000",
            "--node-count",
            "3",
            "--availability",
            "total",
            "--nemesis",
            "partition",
        ],
        partitions: Partitions::Required,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "3a",
        name: "broadcast-single",
        title: "Single-Node Broadcast",
        binary: "broadcast",
        flags: &[
            "-w",
            "broadcast",
            "--node-count",
            "1",
            "--time-limit",
            "20",
            "--rate",
            "10",
        ],
        partitions: Partitions::Never,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "3b",
        name: "broadcast-multi",
        title: "Multi-Node Broadcast",
        binary: "broadcast",
        flags: &[
            "-w",
            "broadcast",
            "--node-count",
            "5",
            "--time-limit",
            "20",
            "--rate",
            "10",
        ],
        partitions: Partitions::Optional,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "3c",
        name: "broadcast-fault-tolerant",
        title: "Fault Tolerant Broadcast",
        binary: "broadcast",
        flags: &[
            "-w",
            "broadcast",
            "--node-count",
            "5",
            "--time-limit",
            "20",
            "--rate",
            "10",
            "--nemesis",
            "partition",
        ],
        partitions: Partitions::Required,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "3d",
        name: "broadcast-efficient-1",
        title: "Efficient Broadcast, Part I",
        binary: "broadcast",
        flags: BROADCAST_EFFICIENT,
        partitions: Partitions::Optional,
        env: &[("GLOMERS_BROADCAST_MODE", "latency")],
        targets: &[
            Target::below(ServerMsgsPerOp, 30.0),
            // Partitions make stable latency as long as they last, so the
            // challenge asks for its latencies without them only.
            Target {
                when: When::WithoutPartitions,
                ..Target::below(StableLatency("0.5"), 400.0)
            },
            Target {
                when: When::WithoutPartitions,
                ..Target::below(StableLatency("1"), 600.0)
            },
            Target {
                when: When::WithoutPartitions,
                ..Target::at_most(ServerMsgsPerOp, 13.0)
            },
            Target {
                when: When::WithoutPartitions,
                ..Target::at_most(StableLatency("0.5"), 110.0)
            },
            Target {
                when: When::WithoutPartitions,
                ..Target::at_most(StableLatency("1"), 160.0)
            },
        ],
    },
    Challenge {
        id: "3e",
        name: "broadcast-efficient-2",
        title: "Efficient Broadcast, Part II",
        binary: "broadcast",
        flags: BROADCAST_EFFICIENT,
        partitions: Partitions::Optional,
        env: &[],
        targets: &[
            Target::below(ServerMsgsPerOp, 20.0),
            // Partitions make stable latency as long as they last, so the
            // challenge asks for its latencies without them only.
            Target {
                when: When::WithoutPartitions,
                ..Target::below(StableLatency("0.5"), 1000.0)
            },
            Target {
                when: When::WithoutPartitions,
                ..Target::below(StableLatency("1"), 2000.0)
            },
            Target {
                when: When::WithoutPartitions,
                ..Target::at_most(ServerMsgsPerOp, 1.5)
            },
            Target {
                when: When::WithoutPartitions,
                ..Target::at_most(StableLatency("0.5"), 600.0)
            },
            Target {
                when: When::WithoutPartitions,
                ..Target::at_most(StableLatency("1"), 1000.0)
            },
        ],
    },
    Challenge {
        id: "4",
        name: "g-counter",
        title: "Grow-Only Counter",
        binary: "g-counter",
        flags: &[
            "-w",
            "g-counter",
            "--node-count",
            "3",
            "--rate",
            "100",
            "--time-limit",
            "20",
            "--nemesis",
            "partition",
        ],
        partitions: Partitions::Required,
        env: &[],
        targets: &[Target::at_most(ServerMsgsPerOp, 2.0)],
    },
    Challenge {
        id: "5a",
        name: "kafka-single",
        title: "Single-Node Kafka-Style Log",
        binary: "kafka",
        flags: &[
            "-w",
            "kafka",
            "--node-count",
            "1",
            "--concurrency",
            "2n",
            "--time-limit",
            "20",
            "--rate",
            "1000",
        ],
        partitions: Partitions::Never,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "5b",
        name: "kafka-multi",
        title: "Multi-Node Kafka-Style Log",
        binary: "kafka",
        flags: KAFKA_MULTI,
        partitions: Partitions::Optional,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "5c",
        name: "kafka-efficient",
        title: "Efficient Kafka-Style Log",
        binary: "kafka",
        flags: KAFKA_MULTI,
        partitions: Partitions::Optional,
        env: &[],
        targets: &[
            Target {
                when: When::WithoutPartitions,
                ..Target::at_most(ServerMsgsPerOp, 2.0)
            },
            // Kafka's own `crash` operations count as not ok in
            // `availability.ok-fraction`, so every request is held to
            // being served instead.
            Target::at_least(Served, 1.0, When::WithoutPartitions),
        ],
    },
    Challenge {
        id: "6a",
        name: "txn-single",
        title: "Single-Node, Totally-Available Transactions",
        binary: "txn",
        flags: &[
            "-w",
            "txn-rw-register",
            "--node-count",
            "1",
            "--time-limit",
            "20",
            "--rate",
            "1000",
            "--concurrency",
            "2n",
            "--consistency-models",
            "read-uncommitted",
            "--availability",
            "total",
        ],
        partitions: Partitions::Never,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "6b",
        name: "txn-read-uncommitted",
        title: "Totally-Available, Read Uncommitted Transactions",
        binary: "txn",
        flags: &[
            "-w",
            "txn-rw-register",
            "--node-count",
            "2",
            "--concurrency",
            "2n",
            "--time-limit",
            "20",
            "--rate",
            "1000",
            "--consistency-models",
            "read-uncommitted",
            "--availability",
            "total",
        ],
        partitions: Partitions::Optional,
        env: &[],
        targets: &[],
    },
    Challenge {
        id: "6c",
        name: "txn-read-committed",
        title: "Totally-Available, Read Committed Transactions",
        binary: "txn",
        flags: TXN_6C,
        partitions: Partitions::Required,
        env: &[],
        targets: &[Target::at_most(ServerMsgsPerOp, 0.2)],
    },
    Challenge {
        id: "lin-kv",
        name: "lin-kv",
        title: "Linearizable Key-Value Store (Raft)",
        binary: "lin-kv",
        flags: &[
            "-w",
            "lin-kv",
            "--node-count",
            "3",
            "--concurrency",
            "4n",
            "--time-limit",
            "60",
            "--rate",
            "100",
        ],
        partitions: Partitions::Optional,
        env: &[],
        // The issue sets 0.999 and 0.8 on `availability.ok-fraction`, which
        // counts a read of a missing key and a cas on a mismatched value
        // (definite, correct answers) as failures: under this workload's
        // random cas values that caps it near 0.6 for any correct store.
        // The targets hold on the served fraction instead.
        targets: &[
            Target::at_least(Served, 0.999, When::WithoutPartitions),
            Target::at_least(Served, 0.8, When::WithPartitions),
        ],
    },
];

/// Short names for a family's representative sub-challenge, for `make
/// test-broadcast` and friends: the fault-tolerant broadcast (3c: the
/// correctness bar every later part keeps), and the last part of kafka and
/// txn (same flags as their multi-node parts, plus targets).
pub const ALIASES: &[(&str, &str)] = &[("broadcast", "3c"), ("kafka", "5c"), ("txn", "6c")];

/// Flags that shorten a run to a few seconds (`--quick`, `make test`),
/// with partitions frequent enough to happen at all in that time.
pub const QUICK_FLAGS: &[&str] = &["--time-limit", "3", "--nemesis-interval", "1"];

/// Finds a challenge by id (`3e`), name (`broadcast-efficient-2`) or alias
/// (`broadcast`).
pub fn find(id_or_name: &str) -> Option<&'static Challenge> {
    let id = ALIASES
        .iter()
        .find(|(alias, _)| *alias == id_or_name)
        .map_or(id_or_name, |(_, id)| *id);
    ALL.iter().find(|c| c.id == id || c.name == id)
}

/// How one target fared in a run.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    pub metric: String,
    pub bound: String,
    pub source: Source,
    pub value: Option<f64>,
    /// `None` when the results do not report the figure.
    pub met: Option<bool>,
}

impl Challenge {
    /// Parses the official flags plus `extra` (later flags win) into test
    /// options for `bin`. `extra` uses the same syntax as `glomers test`.
    pub fn options(&self, bin: &str, extra: &[String]) -> Result<TestOptions, String> {
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            args: TestArgs,
        }
        let mut argv: Vec<String> = vec!["glomers".into(), "--bin".into(), bin.into()];
        argv.extend(merge_flags(self.flags, extra));
        let flags = Flags::try_parse_from(&argv).map_err(|e| e.to_string())?;
        flags.args.to_options(false)
    }

    /// Whether a run with `opts` has partitions.
    pub fn with_partitions(opts: &TestOptions) -> bool {
        opts.has_fault(crate::runner::options::Fault::Partition)
    }

    /// Checks a run's results against the targets that apply to it.
    pub fn evaluate(&self, results: &Value, with_partitions: bool) -> Vec<TargetOutcome> {
        self.targets
            .iter()
            .filter(|t| t.applies(with_partitions))
            .map(|t| {
                let value = t.metric.read(results);
                TargetOutcome {
                    metric: t.metric.label(),
                    bound: t.bound(),
                    source: t.source,
                    value,
                    met: value.map(|v| t.met_by(v)),
                }
            })
            .collect()
    }
}

/// The official flags with `extra` applied: a flag given in `extra`
/// replaces the official one of the same name (a flag without a value,
/// like `--log-stderr`, is added). `--nemesis none` removes the nemesis.
pub fn merge_flags(official: &[&str], extra: &[String]) -> Vec<String> {
    let pairs = |flags: Vec<String>| -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < flags.len() {
            let name = flags[i].clone();
            let value = flags.get(i + 1).filter(|v| !v.starts_with('-')).cloned();
            i += if value.is_some() { 2 } else { 1 };
            out.push((name, value));
        }
        out
    };
    let mut merged = pairs(official.iter().map(|s| s.to_string()).collect());
    for (name, value) in pairs(extra.to_vec()) {
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => merged.push((name, value)),
        }
    }
    merged.retain(|(name, value)| !(name == "--nemesis" && value.as_deref() == Some("none")));
    merged
        .into_iter()
        .flat_map(|(n, v)| std::iter::once(n).chain(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::options::{Fault, WorkloadName};
    use serde_json::json;

    #[test]
    fn every_challenge_parses_into_valid_options() {
        for c in ALL {
            let opts = c
                .options("x", &[])
                .unwrap_or_else(|e| panic!("{}: {e}", c.id));
            assert_eq!(
                Challenge::with_partitions(&opts),
                c.partitions == Partitions::Required,
                "{}",
                c.id
            );
        }
        let opts = find("3e").unwrap().options("x", &[]).unwrap();
        assert_eq!(
            (opts.workload, opts.node_count(), opts.rate),
            (WorkloadName::Broadcast, 25, 100.0)
        );
        assert_eq!(
            find("lin-kv")
                .unwrap()
                .options("x", &[])
                .unwrap()
                .concurrency,
            12
        );
    }

    #[test]
    fn extra_flags_replace_official_ones() {
        let c = find("broadcast-efficient-2").unwrap();
        let extra: Vec<String> = ["--nemesis", "partition", "--time-limit", "5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let opts = c.options("x", &extra).unwrap();
        assert_eq!(opts.nemesis, vec![Fault::Partition]);
        assert_eq!(opts.time_limit.as_secs(), 5);
        assert_eq!(
            merge_flags(
                &["--rate", "1", "--log-stderr"],
                &["--rate".into(), "2".into()]
            ),
            ["--rate", "2", "--log-stderr"]
        );
        assert_eq!(
            merge_flags(
                &["--rate", "1", "--nemesis", "partition"],
                &["--nemesis".into(), "none".into()]
            ),
            ["--rate", "1"]
        );
        assert_eq!(find("broadcast").unwrap().id, "3c");
        assert_eq!(find("txn-read-committed").unwrap().id, "6c");
    }

    #[test]
    fn targets_are_checked_against_results() {
        let c = find("3e").unwrap();
        let results = json!({
            "net": {"servers": {"msgs-per-op": 1.4}},
            "workload": {"stable-latencies": {"0.5": 700, "1": 900}},
        });
        let outcomes = c.evaluate(&results, false);
        let met: Vec<(String, Option<bool>)> = outcomes
            .iter()
            .map(|o| (format!("{} {}", o.metric, o.bound), o.met))
            .collect();
        assert_eq!(met[0], ("msgs-per-op < 20".into(), Some(true)));
        assert_eq!(
            met[4],
            ("median stable latency (ms) <= 600".into(), Some(false))
        );
        assert_eq!(
            c.evaluate(&results, true).len(),
            1,
            "with partitions only the message count applies"
        );
        assert_eq!(
            find("lin-kv").unwrap().evaluate(&json!({}), false)[0].met,
            None
        );
    }
}
