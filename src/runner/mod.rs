//! A Maelstrom-compatible test runner: spawns node processes, simulates the
//! network and services, drives a workload with faults, and checks the
//! history with Maelstrom's checkers.
//!
//! The [`engine`] is shared with the in-process simulator; [`process`] is
//! the host that runs real processes; [`analysis`] composes the checkers;
//! [`store`] and [`report`] write results and talk to the user.

pub mod analysis;
pub mod cli;
pub mod engine;
pub mod nemesis;
pub mod net;
pub mod options;
pub mod process;
pub mod random;
pub mod report;
pub mod services;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;
use serde_json::{Value, json};

pub use options::TestOptions;

use crate::checker::Validity;
use crate::history::{History, NANOS_PER_MS};
use engine::Engine;
use net::{Journal, NetStats};
use process::ProcessCluster;
use report::Reporter;
use store::RunDir;

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The verdict, or `None` when the test crashed before analysis.
    pub validity: Option<Validity>,
    /// Why the test crashed, if it did.
    pub crash: Option<String>,
    /// Where its files are.
    pub dir: PathBuf,
    /// `results.json`'s content (empty for a crash).
    pub results: Value,
}

impl RunOutcome {
    /// Maelstrom's exit code: 0 valid, 1 invalid, 2 unknown, 255 crash.
    pub fn exit_code(&self) -> i32 {
        match self.validity {
            Some(Validity::Valid) => 0,
            Some(Validity::Invalid) => 1,
            Some(Validity::Unknown) => 2,
            None => 255,
        }
    }
}

/// Runs one test against node processes.
pub fn run_test(
    opts: &TestOptions,
    interrupted: &Arc<AtomicBool>,
    reporter: &mut Reporter,
) -> Result<RunOutcome> {
    let dir = RunDir::create(&opts.store, opts.workload.as_str())?;
    reporter.log_to(&dir.file("glomers.log"))?;
    dir.write_json("test.json", opts)?;
    dir.link_latest();
    reporter.line(&format!("glomers test: {}", report::header(opts)));
    reporter.line(&format!(
        "seed {} (store {})",
        opts.seed,
        dir.path.display()
    ));

    let journal = Journal::to_file(&dir.file("messages.jsonl"))?;
    let workload = crate::workload::build(opts).map_err(anyhow::Error::msg)?;
    let mut engine = Engine::new(opts.clone(), workload, journal);
    let mut cluster = ProcessCluster::spawn(opts, &dir.path)?;
    let started = Instant::now();
    engine.start();
    process::drive(&mut engine, &mut cluster, interrupted, |engine| {
        let lines = engine.take_log();
        reporter.engine_log(lines, opts.log_net_send || opts.log_net_recv);
        reporter.progress(engine);
    });
    cluster.shutdown();
    let wall = started.elapsed();
    reporter.engine_log(engine.take_log(), false);
    finish(engine, opts, &dir, reporter, wall.as_secs_f64())
}

/// Writes the history, analyses it and writes `results.json`.
fn finish(
    mut engine: Engine,
    opts: &TestOptions,
    dir: &RunDir,
    reporter: &mut Reporter,
    wall_secs: f64,
) -> Result<RunOutcome> {
    engine.journal_mut().flush()?;
    let crash = engine.crashed().map(|c| c.0.clone());
    let bad_lines = engine.bad_output_lines();
    let (ops, journal, workload) = engine.into_parts();
    dir.write_history(&ops)?;
    if let Some(why) = crash {
        reporter.line(&format!("error: the test crashed: {why}"));
        reporter.line(&format!(
            "the history so far is in {}",
            dir.file("history.jsonl").display()
        ));
        reporter.flush();
        return Ok(RunOutcome {
            validity: None,
            crash: Some(why),
            dir: dir.path.clone(),
            results: Value::Null,
        });
    }
    reporter.line("analysing the history...");
    let history = History::new(ops);
    let mut analysis = analysis::analyse(&history, &journal.stats, workload.as_ref(), opts);
    analysis.results["glomers"] = extras(&history, &journal.stats, opts, bad_lines, wall_secs);
    dir.write_json("results.json", &analysis.results)?;
    reporter.flush();
    Ok(RunOutcome {
        validity: Some(analysis.validity),
        crash: None,
        dir: dir.path.clone(),
        results: analysis.results,
    })
}

/// Our additions to `results.json`, under the `glomers` key.
pub fn extras(
    history: &History,
    net: &NetStats,
    opts: &TestOptions,
    bad_lines: u64,
    wall_secs: f64,
) -> Value {
    json!({
        "runner": format!("glomers {}", env!("CARGO_PKG_VERSION")),
        "seed": opts.seed,
        "options": opts,
        "latencies": analysis::latencies(history),
        "served-fraction": analysis::served_fraction(history),
        "delivery-lag-ms": analysis::delivery_lag(net),
        "delivered-within-2ms": analysis::delivered_within(net, 2 * NANOS_PER_MS),
        "dropped-by-partitions": net.dropped,
        "to-unknown-destinations": net.unknown_dest,
        "malformed-output-lines": bad_lines,
        "wall-seconds": wall_secs,
    })
}
