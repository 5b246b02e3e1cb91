//! Running sub-challenges with their registry flags through any runner
//! (real Maelstrom, our runner, or our simulator), and the challenge
//! matrix: every sub-challenge with and without partitions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::html;
use super::maelstrom::{self, Invocation};
use super::run::{Run, RunnerKind};
use super::summary::{self, RunInfo, Summary, Verdict};
use super::table::{self, Table};
use crate::challenges::{self, Challenge, Partitions, merge_flags};
use crate::runner::report::Reporter;
use crate::runner::store::RunDir;
use crate::runner::{self, TestOptions};
use crate::solutions;

/// Exit code when a run is valid but misses a target the challenge sets.
pub const EXIT_TARGET_MISSED: u8 = 3;

/// Which runner the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunnerChoice {
    /// Real Maelstrom when it and Java are installed, else ours.
    Auto,
    /// Real Maelstrom (fails when it cannot run).
    Maelstrom,
    /// Our runner, with the node binaries as processes.
    Glomers,
    /// Our simulator, with the built-in solution in-process.
    Sim,
}

/// Where things are and how to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the challenge binaries are.
    pub bin_dir: PathBuf,
    /// The Maelstrom launcher.
    pub launcher: PathBuf,
    /// Short runs (`challenges::QUICK_FLAGS`); targets do not count.
    pub quick: bool,
    /// Keep the runner's own output off the terminal.
    pub quiet: bool,
    /// Also write each summary here (e.g. `maelstrom-results/`).
    pub results_dir: Option<PathBuf>,
    /// Environment for every node (our `GLOMERS_*` tuning variables),
    /// before the challenge's own.
    pub node_env: Vec<(String, String)>,
}

/// The runner to use and why, for the announcement every run prints.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub kind: RunnerKind,
    /// Why Maelstrom was not used, when it was not.
    pub why: Option<String>,
}

impl Chosen {
    /// Picks the runner. Asking for Maelstrom when it cannot run is an
    /// error; `auto` falls back to ours and says why.
    pub fn resolve(choice: RunnerChoice, launcher: &Path) -> Result<Chosen> {
        let why = maelstrom::unavailable(launcher);
        let kind = match (choice, &why) {
            (RunnerChoice::Maelstrom, Some(why)) => {
                bail!("cannot run Maelstrom: {why}; or choose our runner (--runner glomers)")
            }
            (RunnerChoice::Maelstrom, None) | (RunnerChoice::Auto, None) => RunnerKind::Maelstrom,
            (RunnerChoice::Auto, Some(_)) | (RunnerChoice::Glomers, _) => RunnerKind::Glomers,
            (RunnerChoice::Sim, _) => RunnerKind::GlomersSim,
        };
        let why = match (choice, kind) {
            (RunnerChoice::Auto, RunnerKind::Glomers) => why,
            _ => None,
        };
        Ok(Chosen { kind, why })
    }

    /// One loud line naming the runner.
    pub fn announcement(&self, launcher: &Path) -> String {
        match self.kind {
            RunnerKind::Maelstrom => format!(
                "runner MAELSTROM ({}, {})",
                launcher.display(),
                maelstrom::version(launcher)
            ),
            RunnerKind::Glomers => format!(
                "runner GLOMERS (our Maelstrom-compatible runner){}",
                self.why
                    .as_ref()
                    .map_or(String::new(), |w| format!("; {w}"))
            ),
            RunnerKind::GlomersSim => {
                "runner GLOMERS-SIM (the built-in solution in-process on virtual time)".into()
            }
        }
    }
}

/// How a challenge run went.
#[derive(Debug)]
pub enum Outcome {
    Ran {
        summary: Box<Summary>,
        /// 0 valid (and the challenge's targets met), 1 invalid, 2 unknown,
        /// 3 a challenge target missed, 255 crashed.
        exit_code: u8,
        /// The run's HTML report.
        report: Option<PathBuf>,
    },
    /// It could not run, e.g. "no binary".
    Skipped(String),
}

/// The flags a run uses: official, then the quick ones, then the user's.
pub fn flags_for(challenge: &Challenge, extra: &[String], quick: bool) -> Vec<String> {
    merge_flags(challenge.flags, &extra_with_quick(extra, quick))
}

fn extra_with_quick(extra: &[String], quick: bool) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    if quick {
        all.extend(challenges::QUICK_FLAGS.iter().map(|s| s.to_string()));
    }
    all.extend_from_slice(extra);
    all
}

/// Runs one challenge and summarises it.
pub fn run_challenge(
    challenge: &'static Challenge,
    extra: &[String],
    kind: RunnerKind,
    settings: &Settings,
    interrupted: &Arc<AtomicBool>,
) -> Result<Outcome> {
    let extra = extra_with_quick(extra, settings.quick);
    let flags = merge_flags(challenge.flags, &extra);
    let bin = settings.bin_dir.join(challenge.binary);
    if kind != RunnerKind::GlomersSim && !bin.is_file() {
        return Ok(Outcome::Skipped(format!("no binary ({})", bin.display())));
    }
    let mut opts = challenge
        .options(&bin.to_string_lossy(), &extra)
        .map_err(anyhow::Error::msg)?;
    opts.node_env.extend(settings.node_env.iter().cloned());
    opts.node_env.extend(
        challenge
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let run = match kind {
        RunnerKind::Glomers => run_ours(&opts, settings.quiet, interrupted)?,
        RunnerKind::GlomersSim => match run_sim(challenge, opts.clone())? {
            Some(run) => run,
            None => return Ok(Outcome::Skipped("no built-in solution".into())),
        },
        RunnerKind::Maelstrom => run_maelstrom(&bin, &opts, &flags, settings)?,
    };
    let info = RunInfo {
        challenge: Some(challenge),
        flags: Some(flags),
        seed: (kind != RunnerKind::Maelstrom).then_some(opts.seed),
        quick: settings.quick,
    };
    finish(&run, &info, settings)
}

/// Writes the summary and report and works out the exit code.
fn finish(run: &Run, info: &RunInfo, settings: &Settings) -> Result<Outcome> {
    let summary = Summary::from_run(run, info);
    let mut report = None;
    if let Some(dir) = &run.dir {
        summary.write(&dir.join("summary.json"))?;
        let path = dir.join("report.html");
        std::fs::write(&path, html::run_page(&summary, run))
            .with_context(|| format!("writing {}", path.display()))?;
        report = Some(path);
    }
    if let Some(results_dir) = &settings.results_dir {
        summary.write_into(results_dir)?;
    }
    let exit_code = match summary.verdict {
        Verdict::Valid if !settings.quick && !summary.challenge_targets_met() => EXIT_TARGET_MISSED,
        v => v.exit_code(),
    };
    Ok(Outcome::Ran {
        summary: Box::new(summary),
        exit_code,
        report,
    })
}

fn run_ours(opts: &TestOptions, quiet: bool, interrupted: &Arc<AtomicBool>) -> Result<Run> {
    let mut reporter = Reporter::new(quiet);
    let outcome = runner::run_test(opts, interrupted, &mut reporter)?;
    if interrupted.load(Ordering::SeqCst) {
        bail!(
            "interrupted; partial results are in {}",
            outcome.dir.display()
        );
    }
    Run::load_dir(&outcome.dir)
}

/// Simulates the challenge's built-in solution and stores the run like
/// our runner does, so it has a summary and a report too.
fn run_sim(challenge: &Challenge, opts: TestOptions) -> Result<Option<Run>> {
    let Some(simulation) = solutions::simulation(challenge.binary, opts) else {
        return Ok(None);
    };
    let outcome = simulation.run();
    let version = format!("glomers-sim {}", env!("CARGO_PKG_VERSION"));
    let dir = RunDir::create(&outcome.options.store, outcome.options.workload.as_str())?;
    dir.write_json("test.json", &outcome.options)?;
    dir.write_history(&outcome.history)?;
    if !outcome.results.is_null() {
        let mut results = outcome.results.clone();
        results["glomers"]["runner"] = json!(version);
        dir.write_json("results.json", &results)?;
    }
    dir.link_latest();
    let mut run = Run::load_dir(&dir.path)?;
    run.runner = RunnerKind::GlomersSim;
    run.runner_version = version;
    Ok(Some(run))
}

fn run_maelstrom(
    bin: &Path,
    opts: &TestOptions,
    flags: &[String],
    settings: &Settings,
) -> Result<Run> {
    let (kept, dropped) = maelstrom::maelstrom_flags(flags);
    if !dropped.is_empty() && !settings.quiet {
        println!(
            "==> note: Maelstrom does not take {}; dropped",
            dropped.join(" ")
        );
    }
    let bin = bin
        .canonicalize()
        .with_context(|| format!("{}", bin.display()))?;
    // Quiet (the matrix): Maelstrom's chatty output goes to a file that
    // ends up in its run directory.
    let log = settings.quiet.then(|| {
        opts.store
            .join(format!("maelstrom-output-{}.log", std::process::id()))
    });
    if log.is_some() {
        std::fs::create_dir_all(&opts.store)?;
    }
    let invocation = Invocation {
        launcher: &settings.launcher,
        bin: &bin,
        workload: opts.workload.as_str(),
        flags: &kept,
        env: &opts.node_env,
        log: log.as_deref(),
    };
    if !settings.quiet {
        println!("==> {}", invocation.command_line());
    }
    let finished = invocation.run()?;
    let Some(dir) = finished.dir else {
        let code = finished
            .exit_code
            .map_or("a signal".into(), |c| format!("exit code {c}"));
        let see = log.map_or(String::new(), |l| {
            format!("; its output is in {}", l.display())
        });
        bail!(
            "Maelstrom ended ({code}) without writing a run directory under store/{}{see}",
            opts.workload
        );
    };
    if let Some(log) = &log {
        let _ = std::fs::rename(log, dir.join("maelstrom-output.log"));
    }
    let mut run = Run::load_dir(&dir)?;
    run.runner_version = maelstrom::version(&settings.launcher);
    Ok(run)
}

/// One run of the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub challenge: &'static Challenge,
    pub nemesis: &'static str,
}

/// Which nemesis settings the matrix runs each challenge with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PartitionMode {
    /// As the registry's policy says: with and without where both make sense.
    #[default]
    Policy,
    /// Once, with the official flags.
    Official,
    /// Once, with partitions (except single-node challenges).
    Always,
    /// Once, without partitions.
    Never,
}

impl PartitionMode {
    fn settings(self, challenge: &Challenge) -> &'static [&'static str] {
        let policy = summary::nemesis_settings(challenge);
        match self {
            PartitionMode::Policy => policy,
            PartitionMode::Official if challenge.partitions == Partitions::Required => {
                &["partition"]
            }
            PartitionMode::Official | PartitionMode::Never => &["none"],
            PartitionMode::Always if policy.contains(&"partition") => &["partition"],
            PartitionMode::Always => &["none"],
        }
    }
}

/// The matrix's runs: every challenge (or those named in `only`, by id,
/// name or alias) under the nemesis settings `mode` picks.
pub fn entries(only: &[String], mode: PartitionMode) -> Result<Vec<Entry>> {
    let mut chosen: Vec<&'static Challenge> = Vec::new();
    for name in only {
        match challenges::find(name) {
            Some(c) if !chosen.iter().any(|x| x.id == c.id) => chosen.push(c),
            Some(_) => {}
            None => bail!("unknown challenge {name:?}; `glomers challenges` lists them"),
        }
    }
    if chosen.is_empty() {
        chosen = challenges::ALL.iter().collect();
    }
    Ok(chosen
        .into_iter()
        .flat_map(|c| {
            mode.settings(c).iter().map(move |n| Entry {
                challenge: c,
                nemesis: n,
            })
        })
        .collect())
}

/// What the matrix found.
#[derive(Debug, Default)]
pub struct Matrix {
    pub table: Table,
    /// Runs that did not pass, as `3e/partition: invalid`.
    pub failures: Vec<String>,
    /// Runs that could not happen and why (e.g. "no binary").
    pub skipped: Vec<(Entry, String)>,
}

/// Runs the matrix, `jobs` runs at a time, printing a line to stderr as
/// each run ends. Real Maelstrom runs one at a time: it is found by the
/// directory it adds to the store, and it wants the machine to itself.
/// The published figures (latencies above all) should come from `jobs` 1.
pub fn run_matrix(
    entries: &[Entry],
    extra: &[String],
    kind: RunnerKind,
    settings: &Settings,
    interrupted: &Arc<AtomicBool>,
    jobs: usize,
) -> Matrix {
    let jobs = if kind == RunnerKind::Maelstrom {
        1
    } else {
        jobs.clamp(1, entries.len().max(1))
    };
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Outcome>>>> =
        entries.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= entries.len() || interrupted.load(Ordering::SeqCst) {
                        break;
                    }
                    let started = Instant::now();
                    let outcome = run_entry(&entries[i], extra, kind, settings, interrupted);
                    let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                    eprintln!(
                        "[{finished:>2}/{}] {:<18} {} ({:.1} s)",
                        entries.len(),
                        entries[i].label(),
                        progress_text(&outcome),
                        started.elapsed().as_secs_f64()
                    );
                    *slots[i]
                        .lock()
                        .expect("no run panics while holding its slot") = Some(outcome);
                }
            });
        }
    });
    let mut matrix = Matrix {
        table: table::matrix(),
        ..Matrix::default()
    };
    for (entry, slot) in entries.iter().zip(slots) {
        if let Some(outcome) = slot.into_inner().ok().flatten() {
            matrix.record(entry, kind, outcome);
        }
    }
    matrix
}

fn run_entry(
    entry: &Entry,
    extra: &[String],
    kind: RunnerKind,
    settings: &Settings,
    interrupted: &Arc<AtomicBool>,
) -> Result<Outcome> {
    let mut flags = vec!["--nemesis".to_string(), entry.nemesis.to_string()];
    flags.extend_from_slice(extra);
    run_challenge(entry.challenge, &flags, kind, settings, interrupted)
}

fn progress_text(outcome: &Result<Outcome>) -> String {
    match outcome {
        Ok(Outcome::Ran { summary, .. }) => table::verdict_text(summary),
        Ok(Outcome::Skipped(why)) => format!("skipped: {why}"),
        Err(e) => format!("error: {e:#}"),
    }
}

impl Entry {
    /// E.g. `3e/partition`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.challenge.id, self.nemesis)
    }
}

impl Matrix {
    /// Adds a run's line (and failure or skip) to the matrix.
    fn record(&mut self, entry: &Entry, kind: RunnerKind, outcome: Result<Outcome>) {
        let (id, nemesis, runner) = (entry.challenge.id, entry.nemesis, kind.as_str());
        match outcome {
            Ok(Outcome::Ran {
                summary, exit_code, ..
            }) => {
                if exit_code != 0 {
                    self.failures.push(format!(
                        "{}: {}",
                        entry.label(),
                        table::verdict_text(&summary)
                    ));
                }
                self.table.push(table::matrix_row(&summary));
            }
            Ok(Outcome::Skipped(why)) => {
                let short = why.split(" (").next().unwrap_or(&why).to_string();
                self.table
                    .push(table::matrix_placeholder(id, nemesis, runner, &short));
                self.skipped.push((*entry, short));
            }
            Err(_) => {
                self.failures.push(format!("{}: error", entry.label()));
                self.table
                    .push(table::matrix_placeholder(id, nemesis, runner, "error"));
            }
        }
    }
}

impl Matrix {
    /// The skipped runs grouped by reason and binary, e.g. "no binary:
    /// broadcast (3a, 3b, 3c), kafka (5a)".
    pub fn skipped_text(&self) -> Vec<String> {
        let reasons = unique(self.skipped.iter().map(|(_, why)| why.as_str()));
        reasons
            .into_iter()
            .map(|why| {
                let entries: Vec<&Entry> = self
                    .skipped
                    .iter()
                    .filter(|(_, w)| w == why)
                    .map(|(e, _)| e)
                    .collect();
                let binaries = unique(entries.iter().map(|e| e.challenge.binary));
                let list: Vec<String> = binaries
                    .iter()
                    .map(|b| {
                        let ids = entries
                            .iter()
                            .filter(|e| e.challenge.binary == *b)
                            .map(|e| e.challenge.id);
                        format!("{b} ({})", unique(ids).join(", "))
                    })
                    .collect();
                format!("{why}: {}", list.join(", "))
            })
            .collect()
    }
}

/// The distinct items, in order of first appearance.
fn unique<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
