//! A run's summary: the small JSON document kept in `maelstrom-results/`
//! (challenge, flags, seed, runner, verdict, figures, targets), built the
//! same way from either runner's results so that runs compare.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::run::{Run, RunnerKind};
use crate::challenges::{self, Challenge, Partitions, Source};
use crate::checker;
use crate::history::{History, NANOS_PER_MS};

/// A run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Valid,
    Invalid,
    Unknown,
    /// The test could not run to its end.
    Crashed,
}

impl Verdict {
    /// The verdict in a results document (`valid?`), or crashed if absent.
    pub fn of(results: &Value) -> Verdict {
        match &results["valid?"] {
            Value::Bool(true) => Verdict::Valid,
            Value::Bool(false) => Verdict::Invalid,
            Value::String(s) if s == "unknown" => Verdict::Unknown,
            _ => Verdict::Crashed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::Crashed => "crashed",
        }
    }

    /// Maelstrom's exit code for the verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
            Verdict::Crashed => 255,
        }
    }
}

/// A run's figures. Every field is optional: a crashed run, or a results
/// file without its history, reports what it can.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Figures {
    /// Client operations completed, and how.
    pub ops: Option<u64>,
    pub ok: Option<u64>,
    pub fail: Option<u64>,
    pub info: Option<u64>,
    /// `availability.ok-fraction`.
    pub availability: Option<f64>,
    /// `net.servers.msgs-per-op`: the challenges' "messages per operation".
    pub msgs_per_op: Option<f64>,
    /// `net.servers.msg-count`.
    pub server_msgs: Option<u64>,
    /// Latency of ok client operations, ms, at "0.5", "0.95", "0.99", "1".
    pub latency_ms: Option<BTreeMap<String, f64>>,
    /// Broadcast's `workload.stable-latencies` (ms).
    pub stable_latency_ms: Option<BTreeMap<String, f64>>,
}

/// How one target fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TargetResult {
    pub metric: String,
    pub bound: String,
    /// `challenge` (the challenge's own limit) or `ours`.
    pub source: String,
    pub value: Option<f64>,
    /// `None` when the figure was not reported.
    pub met: Option<bool>,
}

/// One run's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Summary {
    /// The sub-challenge id (e.g. `3e`), when known.
    pub challenge: Option<String>,
    pub title: Option<String>,
    pub workload: Option<String>,
    /// `partition` or `none`.
    pub nemesis: String,
    /// The flags the test ran with (after `--bin`).
    pub flags: Vec<String>,
    /// Whether the flags were the challenge's official ones (the nemesis
    /// setting aside).
    pub official: Option<bool>,
    /// A short run (`--quick`): figures are indicative only.
    #[serde(default)]
    pub quick: bool,
    pub seed: Option<u64>,
    pub runner: RunnerKind,
    /// E.g. `glomers 0.1.0`, `maelstrom 0.2.4`.
    pub runner_version: String,
    /// The run's directory, when kept.
    pub run_dir: Option<String>,
    /// The run's start time (its directory name).
    pub started: Option<String>,
    pub verdict: Verdict,
    pub figures: Figures,
    pub targets: Vec<TargetResult>,
    /// Short names of what the checkers found wrong, e.g. `lost 3`, `G1a`.
    pub anomalies: Vec<String>,
}

/// What the caller knows about a run beyond its files.
#[derive(Debug, Clone, Default)]
pub struct RunInfo<'a> {
    pub challenge: Option<&'a Challenge>,
    /// The flags it ran with, if known.
    pub flags: Option<Vec<String>>,
    pub seed: Option<u64>,
    pub quick: bool,
}

impl Summary {
    /// Summarises a run.
    pub fn from_run(run: &Run, cx: &RunInfo) -> Summary {
        let results = &run.results;
        let flags = cx.flags.clone().unwrap_or_default();
        let partitions = had_partitions(run, &flags);
        let targets = cx
            .challenge
            .map(|c| targets(c, results, partitions))
            .unwrap_or_default();
        Summary {
            challenge: cx.challenge.map(|c| c.id.to_string()),
            title: cx.challenge.map(|c| c.title.to_string()),
            workload: workload_name(run, &flags),
            nemesis: nemesis_label(run, &flags),
            // Unknown flags (a run added by hand) are neither official nor not.
            official: cx
                .challenge
                .filter(|_| cx.flags.is_some())
                .map(|c| is_official(c, &flags, cx.quick)),
            flags,
            quick: cx.quick,
            seed: cx.seed.or_else(|| results["glomers"]["seed"].as_u64()),
            runner: run.runner,
            runner_version: run.runner_version.clone(),
            run_dir: run.dir.as_ref().map(|d| d.display().to_string()),
            started: run.started(),
            verdict: Verdict::of(results),
            figures: figures(results, run.history.as_ref()),
            targets,
            anomalies: anomalies(&results["workload"]),
        }
    }

    /// Whether every applicable target set by the challenge itself is met
    /// (ours are goals, reported but not required).
    pub fn challenge_targets_met(&self) -> bool {
        self.targets
            .iter()
            .filter(|t| t.source == "challenge")
            .all(|t| t.met != Some(false))
    }

    /// `met/total` over the targets with a figure, e.g. `3/4`; `-` if none.
    pub fn targets_label(&self) -> String {
        let judged: Vec<bool> = self.targets.iter().filter_map(|t| t.met).collect();
        if self.targets.is_empty() {
            return "-".into();
        }
        let met = judged.iter().filter(|m| **m).count();
        format!("{met}/{}", self.targets.len())
    }

    /// The file name in `maelstrom-results/`: one per challenge, nemesis
    /// setting and runner, so the latest run of each replaces the previous
    /// one; runs with other flags get their own name.
    pub fn file_name(&self) -> String {
        let id = self
            .challenge
            .clone()
            .or_else(|| self.workload.clone())
            .unwrap_or_else(|| "run".into());
        let custom = match self.official {
            Some(false) => format!("-custom-{:08x}", fnv(&self.flags.join(" ")) as u32),
            _ => String::new(),
        };
        let quick = if self.quick { "-quick" } else { "" };
        format!("{id}-{}-{}{custom}{quick}.json", self.nemesis, self.runner)
    }

    /// Writes the summary as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Writes the summary into `dir` under [`Summary::file_name`].
    pub fn write_into(&self, dir: &Path) -> Result<PathBuf> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(self.file_name());
        self.write(&path)?;
        Ok(path)
    }

    /// Reads a summary file.
    pub fn read(path: &Path) -> Result<Summary> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run summary", path.display()))
    }

    /// Every summary in `dir` (files ending in `.json`), in challenge order.
    pub fn read_dir(dir: &Path) -> Result<Vec<Summary>> {
        let mut summaries = Vec::new();
        let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                summaries.push(Summary::read(&path)?);
            }
        }
        sort(&mut summaries);
        Ok(summaries)
    }
}

/// Sorts summaries by challenge (registry order), nemesis, runner.
pub fn sort(summaries: &mut [Summary]) {
    let rank = |s: &Summary| {
        s.challenge
            .as_deref()
            .and_then(|id| challenges::ALL.iter().position(|c| c.id == id))
            .unwrap_or(usize::MAX)
    };
    summaries.sort_by(|a, b| {
        (rank(a), &a.workload, &a.nemesis, a.runner, &a.started).cmp(&(
            rank(b),
            &b.workload,
            &b.nemesis,
            b.runner,
            &b.started,
        ))
    });
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Partitions happened if the flags ask for them, our options say so, or
/// (for a run known only by its files) the history has nemesis entries.
fn had_partitions(run: &Run, flags: &[String]) -> bool {
    faults(run, flags).iter().any(|f| f == "partition")
}

/// The nemesis faults of a run, from its flags, our options, or (for a run
/// known only by its files) the history's nemesis entries; in a fixed order.
fn faults(run: &Run, flags: &[String]) -> Vec<String> {
    let mut faults: Vec<String> = if !flags.is_empty() {
        nemesis_flag(flags)
            .map(|n| n.split(',').map(String::from).collect())
            .unwrap_or_default()
    } else if let Some(nemesis) = run.options.as_ref().and_then(|o| o["nemesis"].as_array()) {
        nemesis
            .iter()
            .filter_map(|f| f.as_str().map(String::from))
            .collect()
    } else {
        let ops = run.history.as_ref().map(|h| h.ops()).unwrap_or_default();
        let seen = |f: &str| ops.iter().any(|op| !op.is_client() && op.f == f);
        [
            ("start-partition", "partition"),
            ("kill", "kill"),
            ("pause", "pause"),
        ]
        .into_iter()
        .filter(|(f, _)| seen(f))
        .map(|(_, fault)| fault.to_string())
        .collect()
    };
    let rank = |f: &String| ["partition", "kill", "pause"].iter().position(|k| k == f);
    faults.retain(|f| !f.is_empty());
    faults.sort_by_key(rank);
    faults.dedup();
    faults
}

/// How a run's nemesis is named in tables and file names: `none`,
/// `partition`, or the faults joined by `+` (`partition+kill`).
fn nemesis_label(run: &Run, flags: &[String]) -> String {
    let faults = faults(run, flags);
    if faults.is_empty() {
        "none".to_string()
    } else {
        faults.join("+")
    }
}

/// The value of `--nemesis` in a flag list.
pub fn nemesis_flag(flags: &[String]) -> Option<&str> {
    flags
        .iter()
        .position(|f| f == "--nemesis")
        .and_then(|i| flags.get(i + 1))
        .map(String::as_str)
}

fn workload_name(run: &Run, flags: &[String]) -> Option<String> {
    let from_flags = flags
        .iter()
        .position(|f| f == "-w" || f == "--workload")
        .and_then(|i| flags.get(i + 1))
        .cloned();
    from_flags
        .or_else(|| {
            run.options
                .as_ref()
                .and_then(|o| o["workload"].as_str().map(String::from))
        })
        .or_else(|| {
            // Both stores are laid out as store/<workload>/<time>/.
            run.dir
                .as_ref()
                .and_then(|d| d.canonicalize().ok())
                .and_then(|d| {
                    d.parent()?
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
        })
}

/// Flags that change what a run measures; the nemesis is excluded because
/// the matrix runs each challenge both ways.
fn measured_flags(flags: &[String]) -> Vec<(String, Option<String>)> {
    const IGNORED: &[&str] = &[
        "--nemesis",
        "--seed",
        "--store",
        "-q",
        "--quiet",
        "--log-stderr",
        "--log-net-send",
        "--log-net-recv",
    ];
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    let mut i = 0;
    while i < flags.len() {
        let name = flags[i].clone();
        let value = flags.get(i + 1).filter(|v| !v.starts_with('-')).cloned();
        i += if value.is_some() { 2 } else { 1 };
        if !IGNORED.contains(&name.as_str()) {
            pairs.retain(|(n, _)| *n != name);
            pairs.push((name, value));
        }
    }
    pairs.sort();
    pairs
}

/// `flags` without the flags `--quick` sets (when `quick`).
fn without_quick(flags: &[String], quick: bool) -> Vec<String> {
    if !quick {
        return flags.to_vec();
    }
    let quick_names: Vec<&str> = challenges::QUICK_FLAGS
        .iter()
        .copied()
        .filter(|f| f.starts_with("--"))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < flags.len() {
        let has_value = flags.get(i + 1).is_some_and(|v| !v.starts_with('-'));
        let step = if has_value { 2 } else { 1 };
        if !quick_names.contains(&flags[i].as_str()) {
            out.extend_from_slice(&flags[i..i + step]);
        }
        i += step;
    }
    out
}

/// Whether `flags` are the challenge's official flags (nemesis aside; in
/// a quick run, the quick flags aside too).
pub fn is_official(challenge: &Challenge, flags: &[String], quick: bool) -> bool {
    let official: Vec<String> = challenge.flags.iter().map(|s| s.to_string()).collect();
    measured_flags(&without_quick(flags, quick)) == measured_flags(&without_quick(&official, quick))
}

fn targets(challenge: &Challenge, results: &Value, partitions: bool) -> Vec<TargetResult> {
    challenge
        .evaluate(results, partitions)
        .into_iter()
        .map(|o| TargetResult {
            metric: o.metric,
            bound: o.bound,
            source: match o.source {
                Source::Challenge => "challenge",
                Source::Ours => "ours",
            }
            .to_string(),
            value: o.value,
            met: o.met,
        })
        .collect()
}

fn figures(results: &Value, history: Option<&History>) -> Figures {
    let stats = &results["stats"];
    Figures {
        ops: stats["count"].as_u64(),
        ok: stats["ok-count"].as_u64(),
        fail: stats["fail-count"].as_u64(),
        info: stats["info-count"].as_u64(),
        availability: results["availability"]["ok-fraction"].as_f64(),
        msgs_per_op: results["net"]["servers"]["msgs-per-op"].as_f64(),
        server_msgs: results["net"]["servers"]["msg-count"].as_u64(),
        latency_ms: history.and_then(ok_latencies),
        stable_latency_ms: number_map(&results["workload"]["stable-latencies"]),
    }
}

/// Quantiles (ms) of the latency of every ok client operation.
pub fn ok_latencies(history: &History) -> Option<BTreeMap<String, f64>> {
    let mut times: Vec<u64> = history
        .pairs()
        .filter_map(|(inv, done)| {
            done.filter(|d| d.is_ok())
                .map(|d| d.time.saturating_sub(inv.time))
        })
        .collect();
    checker::quantiles(&mut times).map(|q| {
        q.into_iter()
            .map(|(k, t)| (k, t as f64 / NANOS_PER_MS as f64))
            .collect()
    })
}

fn number_map(value: &Value) -> Option<BTreeMap<String, f64>> {
    let map: BTreeMap<String, f64> = value
        .as_object()?
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f)))
        .collect();
    (!map.is_empty()).then_some(map)
}

/// Keys of a workload report that hold witnesses of what went wrong.
pub const WITNESS_KEYS: &[&str] = &[
    "lost",
    "never-read",
    "duplicated",
    "errors",
    "anomalies",
    "failures",
    "unseen",
    "error",
];

/// Short names of the problems a workload checker reported.
pub fn anomalies(workload: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["lost-count", "duplicated-count"] {
        if let Some(n) = workload[key].as_u64().filter(|n| *n > 0) {
            out.push(format!("{} {n}", key.trim_end_matches("-count")));
        }
    }
    for key in ["bad-error-types", "anomaly-types"] {
        for t in workload[key].as_array().into_iter().flatten() {
            out.push(t.as_str().map_or_else(|| t.to_string(), String::from));
        }
    }
    if let Some(n) = workload["errors"]
        .as_array()
        .map(Vec::len)
        .filter(|n| *n > 0)
    {
        out.push(format!("errors {n}"));
    }
    if let Some(keys) = workload["failures"].as_array().filter(|k| !k.is_empty()) {
        out.push(format!("non-linearizable keys {}", keys.len()));
    }
    if workload.get("error").is_some_and(|e| !e.is_null()) {
        out.push("checker error".into());
    }
    out
}

/// The nemesis settings the matrix runs a challenge with.
pub fn nemesis_settings(challenge: &Challenge) -> &'static [&'static str] {
    match challenge.partitions {
        Partitions::Required => &["partition"],
        Partitions::Optional => &["none", "partition"],
        Partitions::Never => &["none"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn official_flags_ignore_the_nemesis_and_the_order() {
        let c = challenges::find("3e").unwrap();
        let mut flags = strings(c.flags);
        assert!(is_official(c, &flags, false));
        flags.extend(strings(&["--nemesis", "partition", "--seed", "4"]));
        assert!(is_official(c, &flags, false));
        flags.extend(strings(&["--latency", "50"]));
        assert!(!is_official(c, &flags, false));
        let mut quick = strings(c.flags);
        quick.extend(strings(challenges::QUICK_FLAGS));
        assert!(is_official(c, &quick, true));
        assert!(!is_official(c, &quick, false));
        let reordered = strings(&[
            "--node-count",
            "25",
            "-w",
            "broadcast",
            "--latency",
            "100",
            "--rate",
            "100",
            "--time-limit",
            "20",
        ]);
        assert!(is_official(c, &reordered, false));
    }

    #[test]
    fn anomalies_name_what_went_wrong() {
        let broadcast = json!({"lost-count": 2, "lost": [3, 4], "duplicated-count": 0});
        assert_eq!(anomalies(&broadcast), ["lost 2"]);
        let kafka = json!({"bad-error-types": ["lost-write", "unseen"]});
        assert_eq!(anomalies(&kafka), ["lost-write", "unseen"]);
        let txn = json!({"anomaly-types": ["G1a"], "anomalies": {"G1a": []}});
        assert_eq!(anomalies(&txn), ["G1a"]);
        assert!(anomalies(&json!({"errors": [], "valid?": true})).is_empty());
    }

    #[test]
    fn verdicts_read_both_runners_spellings() {
        assert_eq!(Verdict::of(&json!({"valid?": true})), Verdict::Valid);
        assert_eq!(Verdict::of(&json!({"valid?": false})), Verdict::Invalid);
        assert_eq!(Verdict::of(&json!({"valid?": "unknown"})), Verdict::Unknown);
        assert_eq!(Verdict::of(&Value::Null), Verdict::Crashed);
    }
}
