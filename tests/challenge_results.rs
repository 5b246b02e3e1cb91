//! The challenge matrix and its results tooling, end to end through the
//! `glomers` binary: a quick run of every challenge that has a binary, the
//! Maelstrom path with a stand-in launcher that writes a realistic
//! `results.edn`, `glomers compare`, and the HTML report as headless
//! Chromium renders it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use glomers::challenges;
use serde_json::Value;

const GLOMERS: &str = env!("CARGO_BIN_EXE_glomers");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/maelstrom-broadcast"
);

/// A fresh scratch directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn glomers(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    Command::new(GLOMERS)
        .args(args)
        .current_dir(cwd)
        .env_remove("MAELSTROM")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run glomers")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn write_executable(path: &Path, script: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The directory of the challenge binaries cargo built for this test.
fn bin_dir() -> PathBuf {
    Path::new(GLOMERS).parent().unwrap().to_path_buf()
}

/// What CI runs of every challenge: a 3-second run, with partitions where
/// the challenge can have them, through our runner. Challenges whose
/// binary does not exist yet are reported as such, not failed.
#[test]
fn every_challenge_with_a_binary_passes_a_quick_run() {
    let dir = scratch("quick-matrix");
    let bins = bin_dir();
    let out = glomers(
        &dir,
        &[
            "matrix",
            "--quick",
            "--runner",
            "glomers",
            "--partitions",
            "always",
            // Quick runs mostly wait (for the recovery phase): three at a
            // time keeps CI short without starving the cores.
            "--jobs",
            "3",
            "--bin-dir",
            bins.to_str().unwrap(),
            "--results-dir",
            "results",
        ],
        &[],
    );
    let output = text(&out);
    assert!(out.status.success(), "the quick matrix failed:\n{output}");
    assert!(output.contains("runner GLOMERS"), "{output}");
    let mut ran = 0;
    for c in challenges::ALL {
        let has_binary = bins.join(c.binary).is_file();
        let line = output
            .lines()
            .find(|l| l.split_whitespace().next() == Some(c.id))
            .unwrap_or_else(|| panic!("no table line for {}:\n{output}", c.id));
        if !has_binary {
            assert!(line.contains("no binary"), "{line}");
            continue;
        }
        ran += 1;
        assert!(line.contains("valid"), "{line}");
        let nemesis = if c.partitions == challenges::Partitions::Never {
            "none"
        } else {
            "partition"
        };
        let summary =
            read_json(&dir.join(format!("results/{}-{nemesis}-glomers-quick.json", c.id)));
        assert_eq!(summary["verdict"], "valid", "{summary}");
        assert_eq!(summary["quick"], true);
        let run_dir = dir.join(summary["run-dir"].as_str().unwrap());
        assert!(run_dir.join("report.html").is_file());
    }
    assert!(
        ran >= 2,
        "echo and unique-ids at least should have run:\n{output}"
    );
    let readme = fs::read_to_string(dir.join("results/README.md")).unwrap();
    assert!(readme.contains("| challenge"), "{readme}");
    assert!(dir.join("results/index.html").is_file());
}

/// A stand-in for Maelstrom's launcher: it records its arguments and the
/// node environment, and writes a run directory from the fixture as
/// Maelstrom does (`store/<workload>/<time>/`).
const FAKE_MAELSTROM: &str = r#"#!/usr/bin/env bash
set -eu
printf '%s\n' "$@" > "$FAKE_ARGS"
env | grep '^GLOMERS_' > "$FAKE_ENV" || true
workload=lin-kv
while [ $# -gt 0 ]; do
    case "$1" in
        -w|--workload) workload="$2"; shift 2 ;;
        *) shift ;;
    esac
done
dir="store/$workload/20261123T150000.000-0500"
mkdir -p "$dir"
cp "$FAKE_FIXTURE"/results.edn "$FAKE_FIXTURE"/history.edn "$dir"/
ln -sfn "20261123T150000.000-0500" "store/$workload/latest"
echo "Everything looks good! ヽ('ー\`)ノ"
"#;

/// Sets up the fake launcher, a fake `java` and a dummy node binary;
/// returns the environment to run glomers with.
fn fake_maelstrom(dir: &Path) -> Vec<(&'static str, String)> {
    let launcher = dir.join("maelstrom/maelstrom");
    write_executable(&launcher, FAKE_MAELSTROM);
    fs::write(dir.join("maelstrom/VERSION"), "0.2.4\n").unwrap();
    write_executable(&dir.join("fake-bin/java"), "#!/bin/sh\nexit 0\n");
    write_executable(&dir.join("bins/broadcast"), "#!/bin/sh\nexit 0\n");
    let path = format!(
        "{}:{}",
        dir.join("fake-bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    vec![
        ("PATH", path),
        ("FAKE_ARGS", dir.join("args.txt").display().to_string()),
        ("FAKE_ENV", dir.join("env.txt").display().to_string()),
        ("FAKE_FIXTURE", FIXTURE.to_string()),
    ]
}

#[test]
fn with_maelstrom_installed_the_challenge_runs_through_it() {
    let dir = scratch("fake-maelstrom");
    let env = fake_maelstrom(&dir);
    let out = glomers(
        &dir,
        &[
            "challenge",
            "3d",
            "--maelstrom",
            "maelstrom/maelstrom",
            "--bin-dir",
            "bins",
            "--results-dir",
            "results",
            "--seed",
            "9",
        ],
        &env,
    );
    let output = text(&out);
    assert!(out.status.success(), "{output}");
    assert!(output.contains("runner MAELSTROM"), "{output}");
    assert!(output.contains("maelstrom 0.2.4"), "{output}");

    // The launcher got Maelstrom's flags (not ours) and the node's env.
    let args = fs::read_to_string(dir.join("args.txt")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[..2], ["test", "--bin"]);
    assert!(args[2].ends_with("bins/broadcast"), "{args:?}");
    for flag in ["-w", "broadcast", "--node-count", "25", "--latency", "100"] {
        assert!(args.contains(&flag), "{flag} missing from {args:?}");
    }
    assert!(
        !args.contains(&"--seed") && !args.contains(&"--nemesis"),
        "{args:?}"
    );
    let env_seen = fs::read_to_string(dir.join("env.txt")).unwrap();
    assert!(
        env_seen.contains("GLOMERS_BROADCAST_MODE=latency"),
        "{env_seen}"
    );

    // The summary has the same shape as our runner's, from results.edn.
    let s = read_json(&dir.join("results/3d-none-maelstrom.json"));
    assert_eq!(s["runner"], "maelstrom");
    assert_eq!(s["runner-version"], "maelstrom 0.2.4");
    assert_eq!(s["verdict"], "valid");
    assert_eq!(s["official"], true);
    assert_eq!(s["seed"], Value::Null, "Maelstrom has no seed");
    let f = &s["figures"];
    assert_eq!(
        (f["ops"].as_u64(), f["ok"].as_u64(), f["info"].as_u64()),
        (Some(29), Some(28), Some(1))
    );
    assert!((f["availability"].as_f64().unwrap() - 28.0 / 29.0).abs() < 1e-9);
    assert_eq!(f["msgs-per-op"].as_f64(), Some(10.137931));
    assert_eq!(f["stable-latency-ms"]["1"].as_f64(), Some(12.0));
    assert!(
        f["latency-ms"]["0.5"].as_f64().unwrap() > 0.0,
        "latencies come from history.edn"
    );
    let targets = s["targets"].as_array().unwrap();
    assert_eq!(
        targets.len(),
        6,
        "the challenge's three limits and ours: {s}"
    );
    assert!(targets.iter().all(|t| t["met"] == true), "{s}");
    let run_dir = dir.join(s["run-dir"].as_str().unwrap());
    assert!(run_dir.join("report.html").is_file());
    assert!(run_dir.join("summary.json").is_file());
}

#[test]
fn without_maelstrom_the_challenge_says_it_uses_ours() {
    let dir = scratch("no-maelstrom");
    let bins = bin_dir();
    let out = glomers(
        &dir,
        &[
            "challenge",
            "echo",
            "--quick",
            "--maelstrom",
            "nowhere/maelstrom",
            "--bin-dir",
            bins.to_str().unwrap(),
        ],
        &[],
    );
    let output = text(&out);
    assert!(out.status.success(), "{output}");
    assert!(output.contains("runner GLOMERS"), "{output}");
    assert!(
        output.contains("not installed at nowhere/maelstrom"),
        "{output}"
    );

    let missing = glomers(
        &dir,
        &[
            "challenge",
            "3c",
            "--runner",
            "glomers",
            "--bin-dir",
            "nowhere",
        ],
        &[],
    );
    assert_eq!(missing.status.code(), Some(254));
    assert!(text(&missing).contains("no binary"), "{}", text(&missing));

    let forced = glomers(
        &dir,
        &[
            "challenge",
            "1",
            "--runner",
            "maelstrom",
            "--maelstrom",
            "nowhere/m",
        ],
        &[],
    );
    assert_eq!(forced.status.code(), Some(254));
    assert!(
        text(&forced).contains("cannot run Maelstrom"),
        "{}",
        text(&forced)
    );
}

#[test]
fn compare_puts_both_runners_side_by_side() {
    let dir = scratch("compare");
    let mut env = fake_maelstrom(&dir);
    env.push((
        "MAELSTROM",
        dir.join("maelstrom/maelstrom").display().to_string(),
    ));
    let fixture_dir = dir.join("store/broadcast/20261123T150000.000-0500");
    fs::create_dir_all(&fixture_dir).unwrap();
    for f in ["results.edn", "history.edn"] {
        fs::copy(Path::new(FIXTURE).join(f), fixture_dir.join(f)).unwrap();
    }
    let ours = dir.join("ours/results.json");
    fs::create_dir_all(ours.parent().unwrap()).unwrap();
    fs::write(
        &ours,
        r#"{"valid?": false, "stats": {"count": 40}, "availability": {"ok-fraction": 1.0},
            "net": {"servers": {"msgs-per-op": 3.5}}, "workload": {"lost-count": 2, "lost": [4, 5]},
            "glomers": {"runner": "glomers 0.1.0", "seed": 11}}"#,
    )
    .unwrap();
    let args = [
        "compare",
        "--challenge",
        "3b",
        fixture_dir.to_str().unwrap(),
        ours.to_str().unwrap(),
    ];
    let out = glomers(&dir, &args, &env);
    let table = text(&out);
    assert!(out.status.success(), "{table}");
    let row = |label: &str| {
        table
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        row("runner").contains("maelstrom 0.2.4") && row("runner").contains("glomers 0.1.0"),
        "{table}"
    );
    assert!(
        row("verdict").contains("valid") && row("verdict").contains("invalid"),
        "{table}"
    );
    assert!(row("anomalies").contains("lost 2"), "{table}");
    assert!(
        row("nemesis").contains("partition"),
        "from the history's nemesis ops: {table}"
    );

    let mut md_args = args.to_vec();
    md_args.push("--markdown");
    let md = text(&glomers(&dir, &md_args, &env));
    assert!(md.starts_with("| "), "{md}");
    assert!(md.contains("| msgs/op (servers)"), "{md}");

    let bad = glomers(&dir, &["compare", "nowhere.json"], &env);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad).contains("nowhere.json does not exist"),
        "{}",
        text(&bad)
    );
}

/// Headless Chromium, installing Debian's package if it is missing and we
/// may; `None` (the test then skips) only when that is impossible.
fn chromium() -> Option<PathBuf> {
    let find = || {
        ["chromium", "chromium-browser"].iter().find_map(|name| {
            let out = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
    };
    if let Some(path) = find() {
        return Some(path);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        eprintln!(
            "skipping: chromium is not installed and installing it needs root (apt-get install -y chromium)"
        );
        return None;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        install();
    }
    let found = find();
    if found.is_none() {
        eprintln!("skipping: chromium could not be installed (apt-get install -y chromium failed)");
    }
    found
}

/// Renders `page` and returns the DOM Chromium built from it.
fn render(chromium: &Path, page: &Path, profile: &Path) -> String {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_html_report_shows_verdicts_and_charts_in_a_browser() {
    let dir = scratch("html-report");
    let env = fake_maelstrom(&dir);
    let out = glomers(
        &dir,
        &[
            "challenge",
            "3c",
            "--maelstrom",
            "maelstrom/maelstrom",
            "--bin-dir",
            "bins",
            "--results-dir",
            "results",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = glomers(&dir, &["results", "html", "--dir", "results"], &env);
    assert!(out.status.success(), "{}", text(&out));
    let index = dir.join("results/index.html").canonicalize().unwrap();
    let run_page = dir.join("store/broadcast/20261123T150000.000-0500/report.html");
    assert!(run_page.is_file());

    let Some(chromium) = chromium() else { return };
    let dom = render(&chromium, &index, &scratch("html-report-profile"));
    assert!(dom.contains("challenge results"), "{dom:.2000}");
    assert!(
        dom.contains("class=\"verdict valid\""),
        "the verdict badge: {dom:.2000}"
    );
    assert!(dom.contains("3c: Fault Tolerant Broadcast"), "{dom:.2000}");
    assert!(dom.contains("maelstrom 0.2.4"));
    assert!(
        dom.matches("<svg").count() >= 2,
        "a latency and a rate chart"
    );
    assert!(dom.contains("network partitioned"), "the partition legend");
    assert!(dom.contains("Latency of each operation") && dom.contains("Completions per second"));
    let dom = render(
        &chromium,
        &run_page.canonicalize().unwrap(),
        &scratch("html-report-profile-2"),
    );
    assert!(
        dom.contains("class=\"verdict valid\"") && dom.contains("<svg"),
        "{dom:.2000}"
    );
}
