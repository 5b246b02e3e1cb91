//! The commands that run challenges and work with their results:
//! `challenge`, `matrix`, `results`, `compare` and `report`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use glomers::challenges::{self, Challenge};
use glomers::results::exec::{self, Chosen, Outcome, PartitionMode, RunnerChoice, Settings};
use glomers::results::run::{Run, RunnerKind};
use glomers::results::summary::{RunInfo, Summary};
use glomers::results::{html, maelstrom, publish, table};
use glomers::runner::report;

use crate::{EXIT_CRASH, usage_error};

/// Where the committed summaries live.
const RESULTS_DIR: &str = "maelstrom-results";

/// Options shared by `challenge` and `matrix`.
#[derive(Args)]
pub struct RunnerArgs {
    /// Which runner: auto (real Maelstrom when it and Java are installed,
    /// else ours), maelstrom, glomers, or sim (our simulator).
    #[arg(long, value_enum, default_value = "auto", value_name = "RUNNER")]
    runner: RunnerChoice,
    /// Shortcut for --runner sim.
    #[arg(long)]
    sim: bool,
    /// Short runs (3 s, partitions every ~1 s): a smoke test whose
    /// figures are indicative only; targets are reported, not required.
    #[arg(long)]
    quick: bool,
    /// Where the challenge binaries are [default: next to this program].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// The Maelstrom launcher [default: $MAELSTROM, else .maelstrom/maelstrom/maelstrom].
    #[arg(long, value_name = "FILE")]
    maelstrom: Option<PathBuf>,
}

impl RunnerArgs {
    fn settings(&self, quiet: bool, results_dir: Option<PathBuf>) -> Settings {
        let bin_dir = self.bin_dir.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(PathBuf::from))
                .unwrap_or_default()
        });
        Settings {
            bin_dir,
            launcher: self
                .maelstrom
                .clone()
                .unwrap_or_else(maelstrom::default_launcher),
            quick: self.quick,
            quiet,
            results_dir,
            node_env: crate::tuning_env().collect(),
        }
    }

    fn choice(&self) -> RunnerChoice {
        if self.sim {
            RunnerChoice::Sim
        } else {
            self.runner
        }
    }
}

#[derive(Args)]
pub struct ChallengeCommand {
    /// The sub-challenge: an id (1, 2, 3a..3e, 4, 5a..5c, 6a..6c, lin-kv),
    /// a name (broadcast-efficient-2) or an alias (broadcast, kafka, txn).
    challenge: String,
    #[command(flatten)]
    runner: RunnerArgs,
    /// Also write the run's summary into this directory (the make targets
    /// use maelstrom-results/).
    #[arg(long, value_name = "DIR")]
    results_dir: Option<PathBuf>,
    /// Flags for the test that override the official ones, e.g. --nemesis
    /// partition, --nemesis none, --latency 50, --seed 7 (ours only).
    #[arg(
        value_name = "FLAGS",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    flags: Vec<String>,
}

#[derive(Args)]
pub struct MatrixCommand {
    #[command(flatten)]
    runner: RunnerArgs,
    /// Only these challenges (ids, names or aliases), comma separated.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    only: Vec<String>,
    /// Which nemesis settings to run each challenge with.
    #[arg(long, value_enum, default_value = "policy", value_name = "MODE")]
    partitions: PartitionMode,
    /// Where the summaries, README.md and index.html go [default:
    /// maelstrom-results; store/results-quick with --quick,
    /// store/results-sim with the simulator].
    #[arg(long, value_name = "DIR")]
    results_dir: Option<PathBuf>,
    /// Write no summaries.
    #[arg(long, conflicts_with = "results_dir")]
    no_results: bool,
    /// Runs at a time (our runners only). More is faster, but runs then
    /// share the cores and their latencies suffer: publish figures from 1.
    #[arg(long, short = 'j', default_value_t = 1, value_name = "N")]
    jobs: usize,
    /// Print the table as markdown.
    #[arg(long)]
    markdown: bool,
    /// Flags for every run, overriding the official ones (e.g. --latency 50).
    #[arg(
        value_name = "FLAGS",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    flags: Vec<String>,
}

#[derive(Subcommand)]
pub enum ResultsCommand {
    /// Regenerate DIR/README.md (the table of every challenge's latest
    /// figures) from the summaries in DIR.
    Table(DirArg),
    /// Regenerate DIR/index.html (verdicts, comparison table and charts).
    Html(DirArg),
    /// Summarise existing run directories (ours or Maelstrom's) into DIR,
    /// e.g. after running `maelstrom test` by hand.
    Add(AddArgs),
}

#[derive(Args)]
pub struct DirArg {
    /// The summaries' directory.
    #[arg(long, default_value = RESULTS_DIR, value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Args)]
pub struct AddArgs {
    /// Run directories (store/<workload>/<time>/) or results files.
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// The challenge these runs are of (id, name or alias).
    #[arg(long, value_name = "ID")]
    challenge: Option<String>,
    #[command(flatten)]
    dir: DirArg,
}

#[derive(Args)]
pub struct CompareCommand {
    /// Runs: store directories, results.json / results.edn files, or
    /// summaries (maelstrom-results/*.json).
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// The challenge the runs are of, for their targets (when a run has
    /// no summary saying so).
    #[arg(long, value_name = "ID")]
    challenge: Option<String>,
    /// Print a markdown table.
    #[arg(long)]
    markdown: bool,
}

#[derive(Args)]
pub struct ReportCommand {
    /// Run directories: each gets a report.html.
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// The challenge the runs are of (when a run has no summary saying so).
    #[arg(long, value_name = "ID")]
    challenge: Option<String>,
}

fn find_challenge(command: &str, name: &str) -> Result<&'static Challenge, ExitCode> {
    challenges::find(name).ok_or_else(|| {
        let known: Vec<&str> = challenges::ALL.iter().map(|c| c.id).collect();
        usage_error(
            command,
            &format!("unknown challenge {name:?}; expected one of {} (or a name or alias; see 'glomers challenges')", known.join(", ")),
        )
    })
}

fn interrupt_flag() -> Arc<AtomicBool> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    interrupted
}

/// A test that could not run to its end (Maelstrom's exit code 255).
fn crashed(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(EXIT_CRASH)
}

/// Any other failure (a missing or unreadable file).
fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}

/// `glomers challenge`.
pub fn challenge(cmd: ChallengeCommand) -> ExitCode {
    let challenge = match find_challenge("challenge", &cmd.challenge) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let quiet = cmd.flags.iter().any(|f| f == "-q" || f == "--quiet");
    let settings = cmd.runner.settings(quiet, cmd.results_dir.clone());
    let chosen = match Chosen::resolve(cmd.runner.choice(), &settings.launcher) {
        Ok(c) => c,
        Err(e) => return usage_error("challenge", &e.to_string()),
    };
    let flags = exec::flags_for(challenge, &cmd.flags, settings.quick);
    if let Err(message) = challenge.options("x", &flags) {
        return usage_error("challenge", &message);
    }
    println!("==> challenge {}: {}", challenge.id, challenge.title);
    println!("==> {}", chosen.announcement(&settings.launcher));
    warn_about_gnuplot(&chosen);
    println!("==> flags: {}", flags.join(" "));
    let outcome = exec::run_challenge(
        challenge,
        &cmd.flags,
        chosen.kind,
        &settings,
        &interrupt_flag(),
    );
    match outcome {
        Ok(Outcome::Ran {
            summary,
            exit_code,
            report,
        }) => {
            print_run(&summary, report.as_deref(), settings.results_dir.as_deref());
            ExitCode::from(exit_code)
        }
        Ok(Outcome::Skipped(why)) => usage_error(
            "challenge",
            &format!("{why}; build the binaries first (make build) or pass --bin-dir"),
        ),
        Err(e) => crashed(e),
    }
}

fn warn_about_gnuplot(chosen: &Chosen) {
    if chosen.kind == RunnerKind::Maelstrom
        && let Some(warning) = maelstrom::gnuplot_warning()
    {
        println!("==> warning: {warning}");
    }
}

fn print_run(s: &Summary, report_path: Option<&Path>, results_dir: Option<&Path>) {
    let label = format!("{} ({})", s.challenge.as_deref().unwrap_or("run"), s.runner);
    println!("\n{}", table::comparison(&[(label, s.clone())]).terminal());
    if !s.targets.is_empty() {
        let mut t = table::Table::new(&[
            ("target", false),
            ("bound", false),
            ("value", true),
            ("", false),
            ("set by", false),
        ]);
        for target in &s.targets {
            let mark = match target.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not reported",
            };
            t.push(vec![
                target.metric.clone(),
                target.bound.clone(),
                table::fixed(target.value, 3),
                mark.into(),
                target.source.clone(),
            ]);
        }
        println!("{}", t.terminal());
    }
    if let Some(dir) = &s.run_dir {
        println!("run:     {dir}");
    }
    if let Some(path) = report_path {
        println!("report:  {}", path.display());
    }
    if let Some(dir) = results_dir {
        println!("summary: {}", dir.join(s.file_name()).display());
    }
    if s.quick {
        println!("(quick run: figures are indicative only; targets are not required)");
    }
    match s.verdict {
        glomers::results::Verdict::Valid => println!("{}", report::GOOD),
        glomers::results::Verdict::Invalid => println!("{}", report::INVALID),
        glomers::results::Verdict::Unknown => println!("{}", report::UNKNOWN),
        glomers::results::Verdict::Crashed => println!("The test crashed; see the run directory."),
    }
    if s.verdict == glomers::results::Verdict::Valid && !s.challenge_targets_met() {
        println!("...but the challenge's own targets were missed.");
    }
}

/// `glomers matrix`.
pub fn matrix(cmd: MatrixCommand) -> ExitCode {
    let entries = match exec::entries(&cmd.only, cmd.partitions) {
        Ok(e) => e,
        Err(e) => return usage_error("matrix", &e.to_string()),
    };
    let choice = cmd.runner.choice();
    // Quick and simulated figures are not the published ones: they go
    // under store/ (not committed), with their own table and report.
    let results_dir = match (&cmd.results_dir, cmd.no_results) {
        (_, true) => None,
        (Some(dir), _) => Some(dir.clone()),
        (None, _) if choice == RunnerChoice::Sim => Some(PathBuf::from("store/results-sim")),
        (None, _) if cmd.runner.quick => Some(PathBuf::from("store/results-quick")),
        (None, _) => Some(PathBuf::from(RESULTS_DIR)),
    };
    let settings = cmd.runner.settings(true, results_dir.clone());
    let chosen = match Chosen::resolve(choice, &settings.launcher) {
        Ok(c) => c,
        Err(e) => return usage_error("matrix", &e.to_string()),
    };
    println!(
        "==> challenge matrix: {} runs, {}",
        entries.len(),
        chosen.announcement(&settings.launcher)
    );
    warn_about_gnuplot(&chosen);
    if settings.quick {
        println!(
            "==> quick: {} on every run",
            challenges::QUICK_FLAGS.join(" ")
        );
    }
    let interrupted = interrupt_flag();
    let matrix = exec::run_matrix(
        &entries,
        &cmd.flags,
        chosen.kind,
        &settings,
        &interrupted,
        cmd.jobs,
    );
    println!();
    if cmd.markdown {
        print!("{}", matrix.table.markdown());
    } else {
        print!("{}", matrix.table.terminal());
    }
    if let Some(dir) = &results_dir {
        match publish::write_readme(dir).and_then(|r| Ok((r, publish::write_index(dir)?))) {
            Ok((readme, index)) => println!(
                "\nsummaries in {}; table {}; report {}",
                dir.display(),
                readme.display(),
                index.display()
            ),
            Err(e) => return fail(e),
        }
    }
    if !matrix.skipped.is_empty() {
        println!("\nskipped {} runs", matrix.skipped.len());
        for line in matrix.skipped_text() {
            println!("  {line}");
        }
    }
    if interrupted.load(Ordering::SeqCst) {
        println!("\ninterrupted");
        return ExitCode::from(130);
    }
    if matrix.failures.is_empty() {
        println!(
            "\nall {} runs that could run passed",
            entries.len() - matrix.skipped.len()
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "\nFAILED {}: {}",
            matrix.failures.len(),
            matrix.failures.join("; ")
        );
        ExitCode::from(1)
    }
}

/// `glomers results ...`.
pub fn results(cmd: ResultsCommand) -> ExitCode {
    let outcome = match cmd {
        ResultsCommand::Table(args) => publish::write_readme(&args.dir).map(|path| {
            if let Ok(summaries) = Summary::read_dir(&args.dir) {
                let mut t = table::matrix();
                summaries.iter().for_each(|s| t.push(table::matrix_row(s)));
                print!("{}", t.terminal());
            }
            println!("wrote {}", path.display());
        }),
        ResultsCommand::Html(args) => publish::write_index(&args.dir)
            .map(|path| println!("wrote {} (open it in a browser)", path.display())),
        ResultsCommand::Add(args) => add(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn add(args: AddArgs) -> Result<()> {
    let challenge = optional_challenge(args.challenge.as_deref())?;
    for path in &args.runs {
        let summary = load_summary(path, challenge)?;
        let written = summary.write_into(&args.dir.dir)?;
        println!("{} -> {}", path.display(), written.display());
    }
    publish::write_readme(&args.dir.dir)?;
    Ok(())
}

fn optional_challenge(name: Option<&str>) -> Result<Option<&'static Challenge>> {
    match name {
        None => Ok(None),
        Some(n) => challenges::find(n)
            .map(Some)
            .with_context(|| format!("unknown challenge {n:?}; see 'glomers challenges'")),
    }
}

/// A summary for any input: a summary file, a results file, or a run
/// directory (whose own `summary.json` wins when there).
fn load_summary(path: &Path, challenge: Option<&'static Challenge>) -> Result<Summary> {
    if path.is_dir() {
        let own = path.join("summary.json");
        if own.is_file() && challenge.is_none() {
            return Summary::read(&own);
        }
        return Ok(Summary::from_run(&Run::load_dir(path)?, &info(challenge)));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with("results.") {
        return Ok(Summary::from_run(
            &Run::load_results_file(path)?,
            &info(challenge),
        ));
    }
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    Summary::read(path)
}

fn info(challenge: Option<&'static Challenge>) -> RunInfo<'static> {
    RunInfo {
        challenge,
        ..RunInfo::default()
    }
}

/// `glomers compare`.
pub fn compare(cmd: CompareCommand) -> ExitCode {
    let run = || -> Result<String> {
        let challenge = optional_challenge(cmd.challenge.as_deref())?;
        let mut runs: Vec<(String, Summary)> = Vec::new();
        for path in &cmd.runs {
            let s = load_summary(path, challenge)?;
            let base = format!(
                "{} {} {}",
                s.challenge
                    .as_deref()
                    .or(s.workload.as_deref())
                    .unwrap_or("run"),
                s.nemesis,
                s.runner
            );
            let same = runs.iter().filter(|(l, _)| l.starts_with(&base)).count();
            let label = if same == 0 {
                base
            } else {
                format!("{base} #{}", same + 1)
            };
            runs.push((label, s));
        }
        let t = table::comparison(&runs);
        Ok(if cmd.markdown {
            t.markdown()
        } else {
            t.terminal()
        })
    };
    match run() {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `glomers report`.
pub fn report(cmd: ReportCommand) -> ExitCode {
    let run = || -> Result<()> {
        let challenge = optional_challenge(cmd.challenge.as_deref())?;
        for dir in &cmd.runs {
            let run = Run::load_dir(dir)?;
            let summary = load_summary(dir, challenge)?;
            let path = dir.join("report.html");
            std::fs::write(&path, html::run_page(&summary, &run))
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {} (open it in a browser)", path.display());
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
