//! What a user sees: the test header, the log, a progress line while the
//! test runs, and the summary at the end.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TestOptions;
use super::engine::{Engine, LogLine, Phase};
use super::options::{Availability, Fault};
use crate::checker::Validity;
use crate::history::NANOS_PER_MS;

/// Maelstrom's closing lines.
pub const GOOD: &str = "Everything looks good! ヽ(‘ー`)ノ";
pub const INVALID: &str = "Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻";
pub const UNKNOWN: &str = "Errors occurred during analysis, but no anomalies found. ಠ~ಠ";

/// Writes to the terminal (stderr for progress and logs, stdout for the
/// summary) and to the run's `glomers.log`.
pub struct Reporter {
    log_file: Option<BufWriter<File>>,
    tty: bool,
    quiet: bool,
    progress_shown: bool,
    last_progress: Option<Instant>,
}

impl Reporter {
    /// A reporter; `quiet` keeps the terminal to the summary only.
    pub fn new(quiet: bool) -> Reporter {
        Reporter {
            log_file: None,
            tty: std::io::stderr().is_terminal(),
            quiet,
            progress_shown: false,
            last_progress: None,
        }
    }

    /// Starts writing the log to `path` as well.
    pub fn log_to(&mut self, path: &Path) -> std::io::Result<()> {
        self.log_file = Some(BufWriter::new(File::create(path)?));
        Ok(())
    }

    /// Prints a line to stderr (unless quiet) and to the log file.
    pub fn line(&mut self, text: &str) {
        self.clear_progress();
        if let Some(f) = &mut self.log_file {
            let _ = writeln!(f, "{text}");
        }
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Records engine log lines; the terminal gets the important ones.
    pub fn engine_log(&mut self, lines: Vec<LogLine>, verbose: bool) {
        for LogLine { time, text } in lines {
            let stamped = format!("[{:9.3}s] {text}", time as f64 / 1e9);
            if let Some(f) = &mut self.log_file {
                let _ = writeln!(f, "{stamped}");
            }
            let important = verbose || !(text.starts_with("send ") || text.starts_with("recv "));
            if important && !self.quiet {
                self.clear_progress();
                eprintln!("{stamped}");
            }
        }
    }

    /// Shows where the test is: redrawn in place on a terminal, a line every
    /// 10 s otherwise.
    pub fn progress(&mut self, engine: &Engine) {
        if self.quiet {
            return;
        }
        let interval = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.last_progress.is_some_and(|t| t.elapsed() < interval) {
            return;
        }
        self.last_progress = Some(Instant::now());
        let p = engine.progress();
        let phase = match engine.phase() {
            Phase::Init => "starting nodes",
            Phase::Setup => "setting up",
            Phase::Main => "running",
            Phase::Draining => "finishing operations",
            Phase::Recovery => "waiting for recovery",
            Phase::Final => "final operations",
            Phase::Done => "done",
        };
        let partition = if engine.grudge().is_empty() {
            ""
        } else {
            ", network partitioned"
        };
        let text = format!(
            "[{:7.1}s] {phase}: {} ops (ok {}, fail {}, info {}), {} messages{partition}",
            engine.now() as f64 / 1e9,
            p.invoked,
            p.ok,
            p.fail,
            p.info,
            engine.journal().stats.all.msg_count
        );
        if self.tty {
            eprint!("\r\x1b[2K{text}");
            self.progress_shown = true;
        } else {
            eprintln!("{text}");
        }
    }

    fn clear_progress(&mut self) {
        if self.progress_shown {
            eprint!("\r\x1b[2K");
            self.progress_shown = false;
        }
    }

    pub fn flush(&mut self) {
        self.clear_progress();
        if let Some(f) = &mut self.log_file {
            let _ = f.flush();
        }
    }
}

/// One line describing the test's settings.
pub fn header(opts: &TestOptions) -> String {
    let nodes = match opts.nodes.as_slice() {
        [] => "no nodes".to_string(),
        [one] => format!("1 node ({one})"),
        [first, .., last] => format!("{} nodes ({first}..{last})", opts.nodes.len()),
    };
    let latency = if opts.latency.is_zero() {
        "no latency".to_string()
    } else {
        format!(
            "latency {} ms ({:?})",
            opts.latency.as_millis(),
            opts.latency_dist
        )
        .to_lowercase()
    };
    let nemesis = if opts.nemesis.is_empty() {
        "no faults".to_string()
    } else {
        let faults: Vec<String> = opts
            .nemesis
            .iter()
            .map(|f| fault_name(*f).to_string())
            .collect();
        format!(
            "nemesis {} every ~{} s",
            faults.join(","),
            opts.nemesis_interval.as_secs_f64()
        )
    };
    format!(
        "workload {}, {nodes}, concurrency {}, rate {}/s for {} s, {latency}, {nemesis}",
        opts.workload,
        opts.concurrency,
        opts.rate,
        opts.time_limit.as_secs_f64()
    )
}

fn fault_name(f: Fault) -> &'static str {
    match f {
        Fault::Partition => "partition",
        Fault::Kill => "kill",
        Fault::Pause => "pause",
    }
}

/// The closing line for a verdict.
pub fn verdict_line(validity: Validity) -> &'static str {
    match validity {
        Validity::Valid => GOOD,
        Validity::Invalid => INVALID,
        Validity::Unknown => UNKNOWN,
    }
}

/// The summary block printed after the analysis.
pub fn summary(results: &Value, opts: &TestOptions, dir: Option<&Path>) -> String {
    let mut out = String::new();
    let mut row = |label: &str, text: String| out.push_str(&format!("  {label:<13}{text}\n"));
    let stats = &results["stats"];
    row(
        "Operations",
        format!(
            "{} completed: ok {}, fail {}, info {}",
            stats["count"], stats["ok-count"], stats["fail-count"], stats["info-count"]
        ),
    );
    let availability = &results["availability"];
    let target = match opts.availability {
        Some(Availability::Total) => " (required: total)".to_string(),
        Some(Availability::Fraction(f)) => format!(" (required: {f})"),
        None => String::new(),
    };
    let ok_fraction = availability["ok-fraction"].as_f64().unwrap_or(0.0);
    // Worth a mention only where definite answers (missing key, cas
    // mismatch) or kafka's client crashes make the two differ.
    let served = match results["glomers"]["served-fraction"].as_f64() {
        Some(served) if (served - ok_fraction).abs() > 1e-9 => format!(
            " (served {served:.4}: requests answered ok or with a definite answer such as a missing key; client crashes not counted)"
        ),
        _ => String::new(),
    };
    row(
        "Availability",
        format!(
            "{ok_fraction:.4}{target}{}{served}",
            mark(&availability["valid?"])
        ),
    );
    let net = &results["net"];
    row(
        "Messages",
        format!(
            "servers {} ({} per op), all {} ({} per op)",
            net["servers"]["msg-count"],
            per_op(&net["servers"]["msgs-per-op"]),
            net["all"]["msg-count"],
            per_op(&net["all"]["msgs-per-op"])
        ),
    );
    if let Some(latencies) = results["glomers"]["latencies"].as_object() {
        let parts: Vec<String> = latencies
            .iter()
            .filter_map(|(f, by)| {
                by.get("ok").map(|q| {
                    format!(
                        "{f} p50 {} p99 {} max {}",
                        ms(&q["0.5"]),
                        ms(&q["0.99"]),
                        ms(&q["1"])
                    )
                })
            })
            .collect();
        if !parts.is_empty() {
            row("Latency (ok)", parts.join("; "));
        }
    }
    row(
        "Workload",
        format!(
            "{}{}",
            workload_line(opts, &results["workload"]),
            mark(&results["workload"]["valid?"])
        ),
    );
    if stats["valid?"] == Value::Bool(false) {
        let never: Vec<&String> = stats["by-f"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, c)| c["valid?"] == Value::Bool(false))
                    .map(|(f, _)| f)
                    .collect()
            })
            .unwrap_or_default();
        row(
            "Stats",
            format!("invalid: no successful {never:?} operation"),
        );
    }
    if let Some(within) = results["glomers"]["delivered-within-2ms"].as_f64() {
        let max = &results["glomers"]["delivery-lag-ms"]["1"];
        row(
            "Delivery",
            format!(
                "{:.2}% of messages within 2 ms of their deadline (worst {} ms late)",
                within * 100.0,
                max
            ),
        );
    }
    row(
        "Seed",
        format!("{} (rerun with --seed {})", opts.seed, opts.seed),
    );
    if let Some(dir) = dir {
        row("Results", format!("{}", dir.join("results.json").display()));
    }
    out
}

fn mark(valid: &Value) -> &'static str {
    match valid {
        Value::Bool(true) => "",
        Value::Bool(false) => "  ✗ INVALID",
        _ => "  ? UNKNOWN",
    }
}

fn per_op(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |f| format!("{f:.2}"))
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |f| format!("{f:.0} ms"))
}

/// The workload checker's headline figures.
fn workload_line(opts: &TestOptions, w: &Value) -> String {
    use super::options::WorkloadName::*;
    match opts.workload {
        Echo => format!("{} bad echoes", w["errors"].as_array().map_or(0, Vec::len)),
        UniqueIds => format!(
            "{} ids acknowledged of {} attempted, {} duplicated",
            w["acknowledged-count"], w["attempted-count"], w["duplicated-count"]
        ),
        Broadcast | GSet => {
            let q = &w["stable-latencies"];
            format!(
                "{} values: stable {}, lost {}, never read {}, stale {}; stable latency p50 {} ms, max {} ms",
                w["attempt-count"],
                w["stable-count"],
                w["lost-count"],
                w["never-read-count"],
                w["stale-count"],
                q["0.5"],
                q["1"]
            )
        }
        GCounter | PnCounter => format!(
            "final reads {}, acceptable {}",
            w["final-reads"], w["acceptable"]
        ),
        _ => {
            let keys = [
                "anomaly-types",
                "error-types",
                "bad-error-types",
                "failures",
            ];
            keys.iter()
                .filter_map(|k| {
                    w.get(*k)
                        .filter(|v| !v.is_null())
                        .map(|v| format!("{k} {v}"))
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// Milliseconds as a float, for printing.
pub fn as_ms(nanos: u64) -> f64 {
    nanos as f64 / NANOS_PER_MS as f64
}
