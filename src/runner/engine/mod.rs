//! The test engine: a discrete-event simulation of everything in a
//! Maelstrom test except the nodes themselves.
//!
//! It owns the clock, the network (latency, partitions, journal), the
//! services, the nemesis, the worker threads with their clients, and the
//! history. A host drives it: it tells the engine what time it is and what
//! the nodes printed, and it delivers the lines the engine hands back to
//! the nodes. The process runner drives it in real time with child
//! processes; the simulator drives it in virtual time with in-process
//! nodes. Everything random comes from the test's seed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rand::RngExt;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::TestOptions;
use super::nemesis::{self, NemesisSchedule, PartitionSpec};
use super::net::{Envelope, Grudge, Journal, LatencyModel, NodeOutput};
use super::options::Fault;
use super::random::{self, Rng};
use super::services::{SERVICE_NAMES, Services};
use crate::history::{NANOS_PER_MS, Op, OpType, Process, Time};
use crate::protocol::ErrorCode;
use crate::workload::{Client, Completion, ErrorHandling, Free, Next, OpSpec, Step, Workload};

mod clients;
mod faults;
mod phases;
#[cfg(test)]
mod tests;

/// How long a node has to answer `init`.
const INIT_TIMEOUT: Time = 10_000 * NANOS_PER_MS;
/// How long setup requests (broadcast's `topology`) may take.
const SETUP_TIMEOUT: Time = 5_000 * NANOS_PER_MS;
/// The quiet period before the final operations.
const RECOVERY_WAIT: Time = 10_000 * NANOS_PER_MS;
/// How many malformed output lines are shown before they are only counted.
const MAX_BAD_LINE_WARNINGS: u64 = 5;

/// Where the test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for every node's `init_ok`.
    Init,
    /// Waiting for setup replies (broadcast's `topology_ok`).
    Setup,
    /// Running the workload and the nemesis until the time limit.
    Main,
    /// Time is up; waiting for operations in flight.
    Draining,
    /// Network healed; waiting before the final operations.
    Recovery,
    /// Running the final operations.
    Final,
    /// Finished (or crashed).
    Done,
}

/// Why a test ended without results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash(pub String);

/// A line to write to a node's stdin.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub node: usize,
    pub line: Vec<u8>,
}

/// Something the host must do to a node's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCommand {
    /// Kill it abruptly (SIGKILL): its memory is lost.
    Kill(usize),
    /// Start a fresh process for it (same id, same working directory); the
    /// engine sends it `init` again.
    Restart(usize),
    /// Stop it (SIGSTOP): it keeps its memory but runs nothing.
    Pause(usize),
    /// Let it run again (SIGCONT).
    Resume(usize),
}

/// Whether a node is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Up,
    /// Killed and not restarted yet: messages to it are lost.
    Down,
    /// Stopped: messages to it wait until it resumes.
    Paused,
}

/// A log line from the engine, stamped with test time.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub time: Time,
    pub text: String,
}

#[derive(Debug)]
enum Event {
    Deliver(Envelope, Time),
    ClientTimeout { client: String, msg_id: u64 },
    InitTimeout,
    NextOp,
    Nemesis,
    MainEnd,
    RecoveryEnd,
    FinalEnd,
    Wake(usize),
}

struct Scheduled {
    at: Time,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What an internal client is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Init(usize),
    Setup(usize),
    Worker(usize),
}

/// An internal client's connection: its id, its own msg_id counter, and the
/// one request it may have outstanding.
#[derive(Debug)]
struct Connection {
    role: Role,
    next_msg_id: u64,
    awaiting: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Node(usize),
    Client,
    Service,
}

/// A worker thread: bound to one node, running one operation at a time.
struct Worker {
    node: usize,
    process: u64,
    client_id: Option<String>,
    client: Option<Box<dyn Client>>,
    current: Option<Current>,
    asleep: bool,
    finished: bool,
}

struct Current {
    op: OpSpec,
    invoke_index: usize,
}

/// Counters for progress reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// The engine. See the module documentation.
pub struct Engine {
    opts: TestOptions,
    now: Time,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    phase: Phase,
    crash: Option<Crash>,
    // Network
    endpoints: HashMap<String, Endpoint>,
    next_msg_id: u64,
    latency: LatencyModel,
    grudge: Grudge,
    journal: Journal,
    services: Services,
    outbox: Vec<Delivery>,
    loss: f64,
    duplication: f64,
    fault_rng: Rng,
    // Clients and workers
    connections: HashMap<String, Connection>,
    next_client: u64,
    workers: Vec<Worker>,
    workload: Box<dyn Workload>,
    generator_rng: Rng,
    stagger_rng: Rng,
    op_due: bool,
    generator_done: bool,
    last_thread: usize,
    pending_setup: usize,
    // Nemesis
    nemesis_rng: Rng,
    nemesis: Option<NemesisSchedule>,
    node_states: Vec<NodeState>,
    commands: Vec<HostCommand>,
    // Results
    history: Vec<Op>,
    epoch: Time,
    progress: Progress,
    log: Vec<LogLine>,
    bad_output_lines: u64,
}

impl Engine {
    /// A new engine at time 0. Call [`Engine::start`] before anything else.
    pub fn new(opts: TestOptions, workload: Box<dyn Workload>, journal: Journal) -> Engine {
        let seed = opts.seed;
        let workers = (0..opts.concurrency)
            .map(|thread| Worker {
                node: thread % opts.node_count(),
                process: thread as u64,
                client_id: None,
                client: None,
                current: None,
                asleep: false,
                finished: false,
            })
            .collect();
        let nemesis = (!opts.nemesis.is_empty())
            .then(|| NemesisSchedule::new(&opts.nemesis, opts.nemesis_interval.as_nanos() as u64));
        let node_states = vec![NodeState::Up; opts.node_count()];
        let mut endpoints = HashMap::new();
        for (i, node) in opts.nodes.iter().enumerate() {
            endpoints.insert(node.clone(), Endpoint::Node(i));
        }
        for service in SERVICE_NAMES {
            endpoints.insert(service.to_string(), Endpoint::Service);
        }
        Engine {
            latency: LatencyModel::new(
                opts.latency.as_secs_f64() * 1000.0,
                opts.latency_dist,
                seed,
            ),
            services: Services::new(random::stream(seed, "services")),
            generator_rng: random::stream(seed, "generator"),
            stagger_rng: random::stream(seed, "stagger"),
            nemesis_rng: random::stream(seed, "nemesis"),
            opts,
            now: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            phase: Phase::Init,
            crash: None,
            endpoints,
            next_msg_id: 0,
            grudge: Grudge::default(),
            journal,
            outbox: Vec::new(),
            loss: 0.0,
            duplication: 0.0,
            fault_rng: random::stream(seed, "network-faults"),
            connections: HashMap::new(),
            next_client: 0,
            workers,
            workload,
            op_due: false,
            generator_done: false,
            last_thread: usize::MAX,
            pending_setup: 0,
            nemesis,
            node_states,
            commands: Vec::new(),
            history: Vec::new(),
            epoch: 0,
            progress: Progress::default(),
            log: Vec::new(),
            bad_output_lines: 0,
        }
    }

    // ----- What hosts call -------------------------------------------------

    /// Makes the network lose or duplicate node-to-node messages with the
    /// given probabilities (the simulator's extra faults).
    pub fn set_network_faults(&mut self, loss: f64, duplication: f64) {
        self.loss = loss.clamp(0.0, 1.0);
        self.duplication = duplication.clamp(0.0, 1.0);
    }

    /// Sends `init` to every node (from init clients `c0..`).
    pub fn start(&mut self) {
        self.info(format!(
            "starting {} node(s) for workload {}",
            self.opts.node_count(),
            self.opts.workload
        ));
        for node in 0..self.opts.node_count() {
            let client = self.open_client(Role::Init(node));
            let body = json!({
                "type": "init",
                "node_id": self.opts.nodes[node],
                "node_ids": self.opts.nodes,
            });
            self.request(&client, node, body, INIT_TIMEOUT);
        }
        self.schedule(INIT_TIMEOUT, Event::InitTimeout);
    }

    /// The time of the next scheduled event, if any.
    pub fn next_event_time(&self) -> Option<Time> {
        self.queue.peek().map(|Reverse(s)| s.at)
    }

    /// Processes every event due at or before `now`.
    pub fn run_until(&mut self, now: Time) {
        while self.phase != Phase::Done {
            match self.queue.peek() {
                Some(Reverse(s)) if s.at <= now => {}
                _ => break,
            }
            let Reverse(scheduled) = self.queue.pop().expect("peeked");
            self.now = self.now.max(scheduled.at);
            self.handle(scheduled.event);
        }
        self.now = self.now.max(now);
    }

    /// A node printed `line` at `now`.
    pub fn node_output(&mut self, node: usize, line: &[u8], now: Time) {
        self.now = self.now.max(now);
        // A killed process's last words arrive after its death: ignore them.
        let down = self.node_states[node] == NodeState::Down;
        if down || line.iter().all(u8::is_ascii_whitespace) || self.phase == Phase::Done {
            return;
        }
        match NodeOutput::parse(line) {
            Ok(out) => self.route_node_output(node, out),
            Err(why) => {
                self.bad_output_lines += 1;
                // Show the first few; a node printing logs to stdout would
                // otherwise drown everything else.
                if self.bad_output_lines <= MAX_BAD_LINE_WARNINGS {
                    let text = String::from_utf8_lossy(&line[..line.len().min(300)]).into_owned();
                    let node = &self.opts.nodes[node];
                    self.warn(format!(
                        "node {node} printed a line that is not a valid message ({why}); skipping it: {text}"
                    ));
                }
                if self.bad_output_lines == MAX_BAD_LINE_WARNINGS {
                    self.warn("further malformed lines are skipped and only counted (nodes must log to stderr)".into());
                }
            }
        }
    }

    /// A node's process ended (or closed its stdout) on its own.
    pub fn node_exited(&mut self, node: usize, status: &str) {
        if self.phase != Phase::Done && self.node_states[node] != NodeState::Down {
            self.crash(format!("node {} crashed: {status}", self.opts.nodes[node]));
        }
    }

    /// Ends the test now (e.g. on Ctrl-C), keeping what has been recorded.
    pub fn abort(&mut self, why: &str) {
        if self.phase != Phase::Done {
            self.crash(why.to_string());
        }
    }

    /// Lines to write to nodes, in delivery order.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.outbox)
    }

    /// What the host must do to node processes, in order; do it before
    /// writing the deliveries taken at the same time.
    pub fn take_host_commands(&mut self) -> Vec<HostCommand> {
        std::mem::take(&mut self.commands)
    }

    /// Whether each node is up, down or paused.
    pub fn node_state(&self, node: usize) -> NodeState {
        self.node_states[node]
    }

    /// Log lines produced since the last call.
    pub fn take_log(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.log)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn crashed(&self) -> Option<&Crash> {
        self.crash.as_ref()
    }

    pub fn now(&self) -> Time {
        self.now
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    pub fn history(&self) -> &[Op] {
        &self.history
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    pub fn options(&self) -> &TestOptions {
        &self.opts
    }

    pub fn workload(&self) -> &dyn Workload {
        self.workload.as_ref()
    }

    /// Lines nodes printed that were not messages.
    pub fn bad_output_lines(&self) -> u64 {
        self.bad_output_lines
    }

    /// The current partition, for inspection.
    pub fn grudge(&self) -> &Grudge {
        &self.grudge
    }

    /// Consumes the engine, returning the history, the journal and the
    /// workload (which checks the history).
    pub fn into_parts(self) -> (Vec<Op>, Journal, Box<dyn Workload>) {
        (self.history, self.journal, self.workload)
    }

    // ----- Scheduling and logging -------------------------------------------

    fn schedule(&mut self, delay: Time, event: Event) {
        self.schedule_at(self.now + delay, event);
    }

    fn schedule_at(&mut self, at: Time, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn info(&mut self, text: String) {
        self.log.push(LogLine {
            time: self.now,
            text,
        });
    }

    fn warn(&mut self, text: String) {
        self.log.push(LogLine {
            time: self.now,
            text: format!("WARN {text}"),
        });
    }

    fn crash(&mut self, why: String) {
        self.warn(format!("test aborted: {why}"));
        self.crash = Some(Crash(why));
        self.finish();
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.grudge = Grudge::default();
        self.queue.clear();
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver(envelope, deadline) => self.deliver(envelope, deadline),
            Event::ClientTimeout { client, msg_id } => self.client_timeout(&client, msg_id),
            Event::InitTimeout => self.init_timeout(),
            Event::NextOp => {
                self.op_due = true;
                self.dispatch_main();
            }
            Event::Nemesis => self.nemesis_step(),
            Event::MainEnd => self.end_main(),
            Event::RecoveryEnd => self.start_final(),
            Event::FinalEnd => {
                self.info("final phase time limit reached".into());
                for worker in &mut self.workers {
                    worker.finished = true;
                }
                self.maybe_finish_final();
            }
            Event::Wake(thread) => {
                self.workers[thread].asleep = false;
                self.dispatch_final(thread);
            }
        }
    }

    // ----- Network -----------------------------------------------------------

    fn route_node_output(&mut self, node: usize, out: NodeOutput) {
        let name = &self.opts.nodes[node];
        if !self.endpoints.contains_key(&out.src) {
            let text = format!(
                "node {name} sent a message from unknown id {:?}; dropping it",
                out.src
            );
            self.warn(text);
            return;
        }
        self.send(out.src, out.dest, out.body);
    }

    fn send(&mut self, src: String, dest: String, body: Box<RawValue>) {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        let deadline = self.now + self.latency.next(&src, &dest);
        let envelope = Envelope {
            id,
            src,
            dest,
            body,
        };
        self.journal.send(self.now, &envelope, deadline);
        if self.opts.log_net_send {
            let text = format!(
                "send {} -> {}: {}",
                envelope.src,
                envelope.dest,
                envelope.body.get()
            );
            self.info(text);
        }
        let between_nodes = matches!(self.endpoints.get(&envelope.src), Some(Endpoint::Node(_)))
            && matches!(self.endpoints.get(&envelope.dest), Some(Endpoint::Node(_)));
        if between_nodes && self.loss > 0.0 && self.fault_rng.random_bool(self.loss) {
            self.journal.drop_lost(self.now, &envelope);
            return;
        }
        if between_nodes && self.duplication > 0.0 && self.fault_rng.random_bool(self.duplication) {
            let again = self.now + self.latency.next(&envelope.src, &envelope.dest);
            self.schedule_at(again, Event::Deliver(envelope.clone(), again));
        }
        self.schedule_at(deadline, Event::Deliver(envelope, deadline));
    }

    fn send_value(&mut self, src: &str, dest: &str, body: &Value) {
        let raw = serde_json::value::to_raw_value(body).expect("JSON values serialise");
        self.send(src.to_string(), dest.to_string(), raw);
    }

    fn deliver(&mut self, msg: Envelope, deadline: Time) {
        let Some(endpoint) = self.endpoints.get(&msg.dest).copied() else {
            self.journal.drop_unknown(self.now, &msg);
            if !crate::runner::net::is_client(&msg.dest) {
                let text = format!(
                    "message from {} to unknown node {:?} dropped",
                    msg.src, msg.dest
                );
                self.warn(text);
            }
            return;
        };
        if self.grudge.blocks(&msg.src, &msg.dest) {
            self.journal.drop_partitioned(self.now, &msg);
            return;
        }
        self.journal.recv(self.now, &msg, deadline);
        if self.opts.log_net_recv {
            let text = format!("recv {} -> {}: {}", msg.src, msg.dest, msg.body.get());
            self.info(text);
        }
        if let Endpoint::Node(node) = endpoint
            && self.node_states[node] == NodeState::Down
        {
            self.journal.drop_down(self.now, &msg);
            return;
        }
        match endpoint {
            Endpoint::Node(node) => self.outbox.push(Delivery {
                node,
                line: msg.to_line(),
            }),
            Endpoint::Service => {
                let body: Value = serde_json::from_str(msg.body.get()).unwrap_or(Value::Null);
                if let Some(reply) = self.services.handle(&msg.dest, &msg.src, &body) {
                    self.send_value(&msg.dest, &msg.src, &reply);
                }
            }
            Endpoint::Client => {
                let body: Value = serde_json::from_str(msg.body.get()).unwrap_or(Value::Null);
                self.client_received(&msg.dest, body);
            }
        }
    }
}
