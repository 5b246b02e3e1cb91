//! A finished run as the results tools see it, whichever runner made it:
//! its results (our `results.json`, or Maelstrom's `results.edn` turned
//! into the same JSON), its history, and who ran it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::edn;
use crate::history::{History, Op};
use crate::runner::analysis;

/// Which runner produced a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunnerKind {
    /// Real Maelstrom (the JVM launcher).
    Maelstrom,
    /// Our runner, with the node binaries as processes.
    Glomers,
    /// Our simulator, with the built-in solution in-process on virtual time.
    GlomersSim,
}

impl RunnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerKind::Maelstrom => "maelstrom",
            RunnerKind::Glomers => "glomers",
            RunnerKind::GlomersSim => "glomers-sim",
        }
    }
}

impl std::fmt::Display for RunnerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run's data.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's store directory, when it has one.
    pub dir: Option<PathBuf>,
    pub runner: RunnerKind,
    /// E.g. `glomers 0.1.0` or `maelstrom 0.2.4`.
    pub runner_version: String,
    /// `results.json`'s content (Maelstrom's translated); null for a crash.
    pub results: Value,
    /// The history, when its file is there.
    pub history: Option<History>,
    /// Our runner's `test.json` (the options), when there.
    pub options: Option<Value>,
}

impl Run {
    /// Loads a store directory of either runner: ours holds `results.json`
    /// and `history.jsonl`, Maelstrom's `results.edn` and `history.edn`.
    pub fn load_dir(dir: &Path) -> Result<Run> {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        // A crashed Maelstrom run may have a history but no results.
        if dir.join("results.edn").is_file() || dir.join("history.edn").is_file() {
            return Run::load_maelstrom(dir, &dir.join("results.edn"));
        }
        if dir.join("results.json").is_file() || dir.join("history.jsonl").is_file() {
            return Run::load_ours(dir, &dir.join("results.json"));
        }
        bail!(
            "{} holds no results.json (our runner) or results.edn (Maelstrom); is it a run directory under store/?",
            dir.display()
        )
    }

    /// Loads a results file (`results.json` or `results.edn`) and the
    /// history beside it, if any.
    pub fn load_results_file(path: &Path) -> Result<Run> {
        let dir = path.parent().unwrap_or(Path::new("."));
        match path.extension().and_then(|e| e.to_str()) {
            Some("edn") => Run::load_maelstrom(dir, path),
            Some("json") => Run::load_ours(dir, path),
            _ => bail!("{}: expected results.json or results.edn", path.display()),
        }
    }

    fn load_ours(dir: &Path, results_path: &Path) -> Result<Run> {
        // A crashed run has a history but no results.
        let results = match fs::read_to_string(results_path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", results_path.display()))?,
            Err(_) => Value::Null,
        };
        let history = read_if_present(&dir.join("history.jsonl"), |text| {
            History::from_jsonl(text).map_err(anyhow::Error::from)
        })?;
        let options = read_if_present(&dir.join("test.json"), |text| {
            serde_json::from_str(text).map_err(anyhow::Error::from)
        })?;
        let version = results["glomers"]["runner"]
            .as_str()
            .unwrap_or(concat!("glomers ", env!("CARGO_PKG_VERSION")))
            .to_string();
        let runner = if version.starts_with("glomers-sim") {
            RunnerKind::GlomersSim
        } else {
            RunnerKind::Glomers
        };
        Ok(Run {
            dir: Some(dir.to_path_buf()),
            runner,
            runner_version: version,
            results,
            history,
            options,
        })
    }

    fn load_maelstrom(dir: &Path, results_path: &Path) -> Result<Run> {
        let mut results = if results_path.is_file() {
            let results = edn::read_file(results_path)?;
            edn::expect_map(&results, &results_path.display().to_string())?;
            results
        } else {
            Value::Null
        };
        let history = read_if_present(&dir.join("history.edn"), history_from_edn)
            .with_context(|| format!("reading {}", dir.join("history.edn").display()))?;
        // Maelstrom reports no latency figures in results.edn (it plots
        // them); computing them from its history makes its runs comparable
        // with ours, under the same key our runner uses.
        if let Some(h) = history.as_ref().filter(|_| results.is_object()) {
            results["glomers"] = serde_json::json!({
                "latencies": analysis::latencies(h),
                "computed-from": "history.edn",
            });
        }
        Ok(Run {
            dir: Some(dir.to_path_buf()),
            runner: RunnerKind::Maelstrom,
            runner_version: super::maelstrom::version(&super::maelstrom::default_launcher()),
            results,
            history,
            options: None,
        })
    }

    /// The run directory's name: its start time in both runners' stores.
    pub fn started(&self) -> Option<String> {
        self.dir
            .as_ref()
            .and_then(|d| d.canonicalize().ok().or_else(|| Some(d.clone())))
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
    }
}

fn read_if_present<T>(path: &Path, parse: impl Fn(&str) -> Result<T>) -> Result<Option<T>> {
    match fs::read_to_string(path) {
        Ok(text) => parse(&text)
            .map(Some)
            .with_context(|| format!("cannot read {}", path.display())),
        Err(_) => Ok(None),
    }
}

/// A Maelstrom `history.edn`: one op map per line (or one vector of them).
pub fn history_from_edn(text: &str) -> Result<History> {
    let mut forms = edn::parse_all(text)?;
    if let [Value::Array(ops)] = forms.as_mut_slice() {
        forms = std::mem::take(ops);
    }
    let ops = forms
        .into_iter()
        .enumerate()
        .map(|(i, mut form)| {
            normalise_op(&mut form);
            serde_json::from_value::<Op>(form).with_context(|| format!("history entry {i}"))
        })
        .collect::<Result<Vec<Op>>>()?;
    Ok(History::new(ops))
}

/// Jepsen ops may carry fields ours lacks, and an `:error` or
/// `:exception` of any shape; keep what our `Op` models.
fn normalise_op(op: &mut Value) {
    if let Some(map) = op.as_object_mut() {
        if let Some(exception) = map.get("exception").filter(|e| !e.is_string()) {
            let text = exception["cause"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| exception.to_string());
            map.insert("exception".into(), Value::String(text));
        }
        map.entry("value").or_insert(Value::Null);
        map.entry("index").or_insert(Value::from(0));
    }
}
