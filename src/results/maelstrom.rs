//! Running a challenge through real Maelstrom: finding the launcher,
//! deciding whether it can run, spawning `maelstrom test`, and finding the
//! run directory it wrote under `store/`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Where `make maelstrom` installs the launcher.
pub const DEFAULT_LAUNCHER: &str = ".maelstrom/maelstrom/maelstrom";

/// The launcher: `$MAELSTROM` when set, else the default install path.
pub fn default_launcher() -> PathBuf {
    std::env::var_os("MAELSTROM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LAUNCHER))
}

/// E.g. `maelstrom 0.2.4`, from the `VERSION` file `make maelstrom` writes
/// beside the launcher (the release itself does not record its version).
pub fn version(launcher: &Path) -> String {
    let file = launcher.with_file_name("VERSION");
    match fs::read_to_string(file) {
        Ok(v) if !v.trim().is_empty() => format!("maelstrom {}", v.trim()),
        _ => "maelstrom (version unknown)".to_string(),
    }
}

/// Why Maelstrom cannot run here, or `None` when it can: the launcher must
/// be an executable file and Java must be on the PATH.
pub fn unavailable(launcher: &Path) -> Option<String> {
    if !is_executable(launcher) {
        return Some(format!(
            "Maelstrom is not installed at {} (make maelstrom)",
            launcher.display()
        ));
    }
    if find_on_path("java").is_none() {
        return Some("Java is not installed (Maelstrom needs a JDK 11+)".to_string());
    }
    None
}

/// A warning when Maelstrom will run but cannot draw its plots: without
/// gnuplot its `:perf` checker is `:unknown`, so even a correct run ends
/// `unknown` (exit code 2).
pub fn gnuplot_warning() -> Option<String> {
    find_on_path("gnuplot").is_none().then(|| {
        "gnuplot is not installed, so Maelstrom will call every run 'unknown' \
         (its plots fail); install it with 'apt-get install gnuplot'"
            .to_string()
    })
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// Flags of ours that Maelstrom does not know, with whether they take a
/// value. They are dropped when Maelstrom runs.
const OURS_ONLY: &[(&str, bool)] = &[
    ("--seed", true),
    ("--store", true),
    ("--quiet", false),
    ("-q", false),
];

/// Splits `flags` into those Maelstrom accepts and the ones dropped.
pub fn maelstrom_flags(flags: &[String]) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut i = 0;
    while i < flags.len() {
        let takes_value = OURS_ONLY
            .iter()
            .find(|(name, _)| *name == flags[i])
            .map(|(_, v)| *v);
        match takes_value {
            Some(v) => {
                let end = (i + 1 + usize::from(v)).min(flags.len());
                dropped.extend_from_slice(&flags[i..end]);
                i = end;
            }
            None => {
                kept.push(flags[i].clone());
                i += 1;
            }
        }
    }
    (kept, dropped)
}

/// How a Maelstrom run ended.
#[derive(Debug)]
pub struct Finished {
    /// Maelstrom's exit code (0 valid, 1 invalid, 2 unknown, 254 usage,
    /// 255 crash); `None` if it was killed by a signal.
    pub exit_code: Option<i32>,
    /// The run directory it wrote, if one appeared.
    pub dir: Option<PathBuf>,
}

/// What to run.
pub struct Invocation<'a> {
    pub launcher: &'a Path,
    pub bin: &'a Path,
    pub workload: &'a str,
    /// Flags after `--bin` (Maelstrom's only).
    pub flags: &'a [String],
    /// Environment for the node processes (Maelstrom passes its own on).
    pub env: &'a [(String, String)],
    /// Where Maelstrom's own output goes; `None` shows it on the terminal.
    pub log: Option<&'a Path>,
}

impl Invocation<'_> {
    /// The command line, for printing.
    pub fn command_line(&self) -> String {
        let mut parts = vec![
            self.launcher.display().to_string(),
            "test".into(),
            "--bin".into(),
            self.bin.display().to_string(),
        ];
        parts.extend(self.flags.iter().cloned());
        parts.join(" ")
    }

    /// Runs `maelstrom test` in the current directory (so it writes to
    /// `./store/`) and waits for it.
    pub fn run(&self) -> Result<Finished> {
        let store = Path::new("store").join(self.workload);
        let before = run_dirs(&store);
        let mut command = Command::new(self.launcher);
        command
            .arg("test")
            .arg("--bin")
            .arg(self.bin)
            .args(self.flags)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if let Some(log) = self.log {
            let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
            command.stdout(out.try_clone()?).stderr(out);
        }
        let status = command
            .status()
            .with_context(|| format!("cannot start {}", self.launcher.display()))?;
        let dir = new_run_dir(&store, &before);
        Ok(Finished {
            exit_code: status.code(),
            dir,
        })
    }
}

/// The run directories under `store/<workload>/` (not the `latest` link).
fn run_dirs(store: &Path) -> BTreeSet<PathBuf> {
    let Ok(entries) = fs::read_dir(store) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// The directory that appeared during the run (the newest if several).
fn new_run_dir(store: &Path, before: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    run_dirs(store)
        .into_iter()
        .filter(|d| !before.contains(d))
        .max()
}

/// Fails with a helpful message when the launcher cannot be used.
pub fn require(launcher: &Path) -> Result<()> {
    match unavailable(launcher) {
        Some(why) => bail!("cannot run Maelstrom: {why}; or use our runner (--runner glomers)"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_only_flags_are_dropped_for_maelstrom() {
        let flags: Vec<String> = ["-w", "echo", "--seed", "7", "--time-limit", "5", "-q"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (kept, dropped) = maelstrom_flags(&flags);
        assert_eq!(kept, ["-w", "echo", "--time-limit", "5"]);
        assert_eq!(dropped, ["--seed", "7", "-q"]);
    }

    #[test]
    fn a_missing_launcher_is_explained() {
        let why = unavailable(Path::new("/nonexistent/maelstrom")).unwrap();
        assert!(why.contains("make maelstrom"), "{why}");
        assert_eq!(
            version(Path::new("/nonexistent/maelstrom")),
            "maelstrom (version unknown)"
        );
    }
}
