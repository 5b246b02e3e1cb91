//! The runner against hostile node programs: whatever a node does, the
//! runner ends with a clear message and the right exit code, keeps what it
//! recorded, and leaves no process behind.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("glomers-robust-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes an executable script.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An echo node in Python that also does something odd, given as code run
/// for every message before it answers (`m` is the message).
fn echo_node(extra: &str) -> String {
    format!(
        r#"#!/usr/bin/env python3
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    b = m["body"]
{extra}
    t = "init_ok" if b["type"] == "init" else "echo_ok"
    r = {{"type": t, "in_reply_to": b["msg_id"]}}
    if t == "echo_ok": r["echo"] = b["echo"]
    print(json.dumps({{"src": m["dest"], "dest": m["src"], "body": r}}), flush=True)
"#
    )
}

fn glomers(store: &Path, bin: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glomers"))
        .args([
            "test",
            "-w",
            "echo",
            "--node-count",
            "2",
            "--time-limit",
            "2",
            "--rate",
            "20",
            "--seed",
            "1",
        ])
        .arg("--bin")
        .arg(bin)
        .arg("--store")
        .arg(store)
        .args(extra)
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

/// Whether a process with this pid still exists.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Pids the nodes recorded in `dir/pids/`.
fn recorded_pids(dir: &Path) -> Vec<u32> {
    fs::read_dir(dir.join("pids"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

const RECORD_PID: &str =
    r#"    open(os.path.join(os.environ["PIDS"], str(os.getpid())), "w").close()"#;

#[test]
fn garbage_on_stdout_is_skipped_and_counted() {
    let s = Scratch::new("garbage");
    let bin = s.script(
        "node.py",
        &echo_node(r#"    print("this is not a message", flush=True)"#),
    );
    let out = glomers(&s.0, &bin, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("not a valid message"), "{all}");
    assert!(all.contains("only counted"), "repeats are not shown: {all}");
    let results = fs::read_to_string(s.0.join("echo/latest/results.json")).unwrap();
    assert!(results.contains("\"malformed-output-lines\""));
}

#[test]
fn messages_to_unknown_clients_and_nodes_are_dropped_and_counted() {
    let s = Scratch::new("unknown-dest");
    // Before each answer, a stray reply to a client that never existed and
    // a message to a node outside the cluster.
    let bin = s.script(
        "node.py",
        &echo_node(
            r#"    for d in ["c999", "n42"]:
        print(json.dumps({"src": m["dest"], "dest": d, "body": {"type": "echo_ok", "in_reply_to": 7}}), flush=True)"#,
        ),
    );
    let out = glomers(&s.0, &bin, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = fs::read_to_string(s.0.join("echo/latest/results.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&results).unwrap();
    let unknown = results["glomers"]["to-unknown-destinations"]
        .as_u64()
        .unwrap();
    assert!(unknown >= 2, "{}", results["glomers"]);
}

#[test]
fn a_node_that_exits_crashes_the_test_with_its_last_words_and_keeps_the_history() {
    let s = Scratch::new("exits");
    let bin = s.script(
        "node.py",
        &echo_node(r#"    if b["type"] == "echo" and b["msg_id"] > 3: print("giving up", file=sys.stderr); sys.exit(7)"#),
    );
    let out = glomers(&s.0, &bin, &[]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("crashed") && all.contains("giving up"),
        "{all}"
    );
    let history = fs::read_to_string(s.0.join("echo/latest/history.jsonl")).unwrap();
    assert!(history.lines().count() > 4, "partial history kept");
}

#[test]
fn a_node_that_never_answers_init_fails_after_ten_seconds() {
    let s = Scratch::new("silent");
    let bin = s.script("node.sh", "#!/bin/sh\nwhile read -r line; do :; done\n");
    let started = Instant::now();
    let out = glomers(&s.0, &bin, &[]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(text(&out).contains("init"), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(60), "never hangs");
}

#[test]
fn nodes_that_ignore_sigterm_or_flood_stdout_are_still_stopped_and_reaped() {
    let s = Scratch::new("stubborn");
    fs::create_dir_all(s.0.join("pids")).unwrap();
    // Ignores SIGTERM, and answers every echo with 2,000 messages to a
    // client that does not exist.
    let flood = format!(
        "{RECORD_PID}
    import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if b['type'] == 'echo':
        for _ in range(2000):
            print(json.dumps({{'src': m['dest'], 'dest': 'c999', 'body': {{'type': 'noise'}}}}))"
    );
    let bin = s.script("node.py", &echo_node(&flood));
    let out = Command::new(env!("CARGO_BIN_EXE_glomers"))
        .args([
            "test",
            "-w",
            "echo",
            "--node-count",
            "2",
            "--time-limit",
            "2",
            "--rate",
            "10",
            "--seed",
            "2",
        ])
        .arg("--bin")
        .arg(&bin)
        .arg("--store")
        .arg(&s.0)
        .env("PIDS", s.0.join("pids"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "messages to unknown clients are dropped: {}",
        text(&out)
    );
    let pids = recorded_pids(&s.0);
    assert!(!pids.is_empty());
    std::thread::sleep(Duration::from_millis(200));
    for pid in pids {
        assert!(!alive(pid), "node process {pid} outlived the runner");
    }
}

#[test]
fn a_missing_or_non_executable_bin_is_a_usage_error() {
    let s = Scratch::new("bin");
    let out = glomers(&s.0, &s.0.join("nope"), &[]);
    assert_eq!(out.status.code(), Some(254));
    assert!(text(&out).contains("--bin"), "{}", text(&out));
    let plain = s.0.join("plain.txt");
    fs::write(&plain, "not a program").unwrap();
    let out = glomers(&s.0, &plain, &[]);
    assert_eq!(out.status.code(), Some(254));
    assert!(text(&out).contains("not executable"), "{}", text(&out));
}

#[test]
fn an_unwritable_store_is_reported_clearly() {
    let s = Scratch::new("store");
    let bin = s.script("node.py", &echo_node(""));
    let blocker = s.0.join("not-a-dir");
    fs::write(&blocker, "a file where the store should be").unwrap();
    let out = glomers(&blocker, &bin, &[]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(text(&out).contains("store directory"), "{}", text(&out));
}

#[test]
fn ctrl_c_keeps_partial_results_and_reaps_every_node() {
    let s = Scratch::new("ctrlc");
    fs::create_dir_all(s.0.join("pids")).unwrap();
    let bin = s.script("node.py", &echo_node(RECORD_PID));
    let mut child = Command::new(env!("CARGO_BIN_EXE_glomers"))
        .args([
            "test",
            "-w",
            "echo",
            "--node-count",
            "3",
            "--time-limit",
            "60",
            "--rate",
            "50",
            "--seed",
            "3",
        ])
        .arg("--bin")
        .arg(&bin)
        .arg("--store")
        .arg(&s.0)
        .env("PIDS", s.0.join("pids"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the nodes are up and the workload is running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorded_pids(&s.0).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let history = fs::read_to_string(s.0.join("echo/latest/history.jsonl")).unwrap();
    assert!(history.lines().count() > 3, "partial history kept");
    std::thread::sleep(Duration::from_millis(200));
    for pid in recorded_pids(&s.0) {
        assert!(!alive(pid), "node process {pid} outlived the runner");
    }
}
