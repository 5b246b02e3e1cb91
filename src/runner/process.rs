//! The process host: runs every node as a child process speaking JSON lines
//! on stdin/stdout, and drives the [`Engine`] in real time.
//!
//! Each node gets three threads: one writes the engine's deliveries to its
//! stdin (so a node that reads slowly only delays itself), one reads its
//! stdout lines, one copies its stderr to `node-logs/<node>.log`. The drive
//! loop sleeps on the channel of node output until the engine's next event
//! is due, so deliveries happen close to their deadlines without spinning.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};

use super::TestOptions;
use super::engine::{Delivery, Engine, HostCommand};
use crate::history::Time;

/// Something a node's process did, seen by its reader thread; tagged with
/// the process's generation so a killed process's last lines and its end
/// of output are not mistaken for its successor's.
enum NodeEvent {
    Line(usize, u64, Vec<u8>),
    StdoutClosed(usize, u64),
}

struct NodeProcess {
    name: String,
    child: Child,
    generation: u64,
    stdin: Sender<Vec<u8>>,
    log_path: PathBuf,
}

/// The running node processes of one test.
pub struct ProcessCluster {
    nodes: Vec<NodeProcess>,
    events: Receiver<NodeEvent>,
    events_tx: Sender<NodeEvent>,
    opts: TestOptions,
    run_dir: PathBuf,
    started: Instant,
}

/// Lines a node may print before the runner reads them: a node that floods
/// stdout is slowed down (its writes block) rather than eating memory.
const OUTPUT_BACKLOG: usize = 100_000;

impl ProcessCluster {
    /// Starts one process per node. Logs go to `run_dir/node-logs/`; each
    /// node runs in its own `run_dir/node-data/<node>/` directory, so files
    /// it writes survive a restart and never leak between runs.
    pub fn spawn(opts: &TestOptions, run_dir: &Path) -> Result<ProcessCluster> {
        let (tx, events) = bounded(OUTPUT_BACKLOG);
        let logs = run_dir.join("node-logs");
        fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let mut nodes = Vec::new();
        for (index, name) in opts.nodes.iter().enumerate() {
            let node = spawn_node(opts, run_dir, index, name, 0, tx.clone())
                .with_context(|| format!("starting node {name} ({})", opts.bin.display()))?;
            nodes.push(node);
        }
        Ok(ProcessCluster {
            nodes,
            events,
            events_tx: tx,
            opts: opts.clone(),
            run_dir: run_dir.to_path_buf(),
            started: Instant::now(),
        })
    }

    /// Carries out what the nemesis asked for.
    fn execute(&mut self, command: HostCommand) -> Result<()> {
        match command {
            HostCommand::Kill(node) => {
                let process = &mut self.nodes[node];
                let _ = process.child.kill();
                let _ = process.child.wait();
            }
            HostCommand::Restart(node) => {
                let name = self.nodes[node].name.clone();
                let generation = self.nodes[node].generation + 1;
                let fresh = spawn_node(
                    &self.opts,
                    &self.run_dir,
                    node,
                    &name,
                    generation,
                    self.events_tx.clone(),
                )
                .with_context(|| format!("restarting node {name}"))?;
                self.nodes[node] = fresh;
            }
            HostCommand::Pause(node) => signal(&self.nodes[node].child, libc::SIGSTOP),
            HostCommand::Resume(node) => signal(&self.nodes[node].child, libc::SIGCONT),
        }
        Ok(())
    }

    /// Nanoseconds since the cluster started: the engine's clock.
    pub fn now(&self) -> Time {
        self.started.elapsed().as_nanos() as Time
    }

    fn deliver(&self, delivery: Delivery) {
        // A closed channel means the node's writer stopped (its stdin broke);
        // its exit is reported separately.
        let _ = self.nodes[delivery.node].stdin.send(delivery.line);
    }

    /// The last lines a node wrote to stderr, for crash reports.
    pub fn log_tail(&self, node: usize, lines: usize) -> Vec<String> {
        let text = fs::read_to_string(&self.nodes[node].log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Kills every node (SIGKILL, which also ends a paused one) and reaps it.
    pub fn shutdown(&mut self) {
        for node in &mut self.nodes {
            if matches!(node.child.try_wait(), Ok(None)) {
                let _ = node.child.kill();
            }
            let _ = node.child.wait();
        }
    }

    fn exit_status(&mut self, node: usize) -> String {
        let process = &mut self.nodes[node];
        // Give the process a moment to finish exiting after closing stdout.
        for _ in 0..50 {
            if let Ok(Some(status)) = process.child.try_wait() {
                return format!("process exited with {status}");
            }
            thread::sleep(Duration::from_millis(10));
        }
        "it closed its stdout".to_string()
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Each incarnation of a node gets its own seed, so a restarted node does
/// not replay its previous life's random choices.
fn incarnation_seed(seed: u64, name: &str, generation: u64) -> u64 {
    if generation == 0 {
        super::random::derive(seed, name)
    } else {
        super::random::derive(seed, &format!("{name}#{generation}"))
    }
}

/// Sends a signal to a child that is still running.
fn signal(child: &Child, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own
    // unreaped child, so it cannot name an unrelated process.
    unsafe {
        libc::kill(pid, signal);
    }
}

fn spawn_node(
    opts: &TestOptions,
    run_dir: &Path,
    index: usize,
    name: &str,
    generation: u64,
    events: Sender<NodeEvent>,
) -> Result<NodeProcess> {
    let data_dir = run_dir.join("node-data").join(name);
    fs::create_dir_all(&data_dir)?;
    let log_path = run_dir.join("node-logs").join(format!("{name}.log"));
    let mut command = Command::new(&opts.bin);
    die_with_parent(&mut command);
    let mut child = command
        .args(&opts.bin_args)
        .current_dir(&data_dir)
        .env(
            "GLOMERS_SEED",
            incarnation_seed(opts.seed, name, generation).to_string(),
        )
        .env("GLOMERS_DATA_DIR", &data_dir)
        .envs(opts.node_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (stdin_tx, stdin_rx) = unbounded::<Vec<u8>>();
    thread::Builder::new()
        .name(format!("{name}-stdin"))
        .spawn(move || write_stdin(stdin, stdin_rx))?;
    thread::Builder::new()
        .name(format!("{name}-stdout"))
        .spawn(move || read_stdout(index, generation, stdout, events))?;
    // A restarted node keeps appending to the same log.
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let echo = opts.log_stderr.then(|| name.to_string());
    thread::Builder::new()
        .name(format!("{name}-stderr"))
        .spawn(move || copy_stderr(stderr, log, echo))?;
    Ok(NodeProcess {
        name: name.to_string(),
        child,
        generation,
        stdin: stdin_tx,
        log_path,
    })
}

/// On Linux, children get SIGKILL if the runner dies, so no node outlives
/// a crashed or killed runner.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of ours; it
    // runs in the child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

fn write_stdin(mut stdin: std::process::ChildStdin, lines: Receiver<Vec<u8>>) {
    let mut buffer = Vec::new();
    while let Ok(line) = lines.recv() {
        buffer.extend_from_slice(&line);
        // Write everything already queued in one go.
        while let Ok(more) = lines.try_recv() {
            buffer.extend_from_slice(&more);
        }
        if stdin
            .write_all(&buffer)
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return;
        }
        buffer.clear();
    }
}

fn read_stdout(
    node: usize,
    generation: u64,
    stdout: std::process::ChildStdout,
    events: Sender<NodeEvent>,
) {
    let mut reader = BufReader::with_capacity(256 * 1024, stdout);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if events
                    .send(NodeEvent::Line(node, generation, line))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    let _ = events.send(NodeEvent::StdoutClosed(node, generation));
}

fn copy_stderr(stderr: std::process::ChildStderr, mut log: File, echo_as: Option<String>) {
    let reader = BufReader::new(stderr);
    for line in reader.split(b'\n') {
        let Ok(line) = line else { break };
        let _ = log.write_all(&line).and_then(|()| log.write_all(b"\n"));
        if let Some(name) = &echo_as {
            eprintln!("[{name}] {}", String::from_utf8_lossy(&line));
        }
    }
}

/// Runs the engine against the cluster until the test is over (or
/// `interrupted` is set), calling `on_tick` about every 100 ms.
pub fn drive(
    engine: &mut Engine,
    cluster: &mut ProcessCluster,
    interrupted: &Arc<AtomicBool>,
    mut on_tick: impl FnMut(&mut Engine),
) {
    let tick = Duration::from_millis(100);
    let mut last_tick = Instant::now();
    loop {
        engine.run_until(cluster.now());
        for command in engine.take_host_commands() {
            if let Err(e) = cluster.execute(command) {
                engine.abort(&format!("{e:#}"));
            }
        }
        for delivery in engine.take_deliveries() {
            cluster.deliver(delivery);
        }
        if last_tick.elapsed() >= tick {
            on_tick(engine);
            last_tick = Instant::now();
        }
        if engine.is_done() {
            break;
        }
        if interrupted.load(Ordering::SeqCst) {
            engine.abort("interrupted (Ctrl-C); results so far are kept");
            break;
        }
        let now = cluster.now();
        let wait = engine
            .next_event_time()
            .map_or(tick, |at| Duration::from_nanos(at.saturating_sub(now)))
            .min(tick);
        match cluster.events.recv_timeout(wait) {
            Ok(event) => {
                handle_event(engine, cluster, event);
                while let Ok(event) = cluster.events.try_recv() {
                    handle_event(engine, cluster, event);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                engine.abort("every node's output closed");
                break;
            }
        }
    }
    on_tick(engine);
}

fn handle_event(engine: &mut Engine, cluster: &mut ProcessCluster, event: NodeEvent) {
    match event {
        NodeEvent::Line(node, generation, line) => {
            if generation == cluster.nodes[node].generation {
                engine.node_output(node, &line, cluster.now());
            }
        }
        NodeEvent::StdoutClosed(node, generation) => {
            if engine.is_done() || generation != cluster.nodes[node].generation {
                return;
            }
            let status = cluster.exit_status(node);
            let tail = cluster.log_tail(node, 10);
            let mut why = status;
            if !tail.is_empty() {
                why.push_str(&format!(
                    "; last stderr lines of {}:\n    {}",
                    cluster.nodes[node].name,
                    tail.join("\n    ")
                ));
            }
            engine.node_exited(node, &why);
        }
    }
}
