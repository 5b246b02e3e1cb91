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

    // ----- Internal clients ----------------------------------------------------

    fn open_client(&mut self, role: Role) -> String {
        let id = format!("c{}", self.next_client);
        self.next_client += 1;
        self.endpoints.insert(id.clone(), Endpoint::Client);
        self.connections.insert(
            id.clone(),
            Connection {
                role,
                next_msg_id: 1,
                awaiting: None,
            },
        );
        id
    }

    fn close_client(&mut self, id: &str) {
        self.endpoints.remove(id);
        self.connections.remove(id);
    }

    /// Sends a request from an internal client to a node and arms its timeout.
    fn request(&mut self, client: &str, node: usize, mut body: Value, timeout: Time) {
        let conn = self.connections.get_mut(client).expect("open client");
        let msg_id = conn.next_msg_id;
        conn.next_msg_id += 1;
        conn.awaiting = Some(msg_id);
        body["msg_id"] = json!(msg_id);
        let dest = self.opts.nodes[node].clone();
        self.send_value(client, &dest, &body);
        self.schedule(
            timeout,
            Event::ClientTimeout {
                client: client.to_string(),
                msg_id,
            },
        );
    }

    fn client_received(&mut self, client: &str, body: Value) {
        let Some(conn) = self.connections.get_mut(client) else {
            return;
        };
        let expected = conn.awaiting;
        // Maelstrom's clients discard anything that does not answer the
        // request they are waiting for (late replies, duplicates).
        if expected.is_none() || body.get("in_reply_to").and_then(Value::as_u64) != expected {
            return;
        }
        conn.awaiting = None;
        match conn.role {
            Role::Init(node) => self.init_replied(client, node, &body),
            Role::Setup(node) => self.setup_replied(node, &body),
            Role::Worker(thread) => self.worker_replied(thread, &body),
        }
    }

    fn client_timeout(&mut self, client: &str, msg_id: u64) {
        let Some(conn) = self.connections.get_mut(client) else {
            return;
        };
        if conn.awaiting != Some(msg_id) {
            return;
        }
        conn.awaiting = None;
        match conn.role {
            Role::Init(node) => {
                let node = self.opts.nodes[node].clone();
                self.crash(format!(
                    "expected node {node} to respond to an init message within 10 s, but it did not"
                ));
            }
            Role::Setup(node) => {
                let node = self.opts.nodes[node].clone();
                self.crash(format!(
                    "node {node} did not answer the setup request within 5 s"
                ));
            }
            Role::Worker(thread) => self.worker_timed_out(thread),
        }
    }

    // ----- Init and setup --------------------------------------------------------

    fn init_replied(&mut self, client: &str, node: usize, body: &Value) {
        let name = self.opts.nodes[node].clone();
        if body.get("type").and_then(Value::as_str) != Some("init_ok") {
            self.crash(format!(
                "expected node {name} to respond to an init message with init_ok, but it sent {body}"
            ));
            return;
        }
        self.close_client(client);
        if self.phase != Phase::Init {
            self.info(format!("node {name} restarted and initialised"));
            return;
        }
        let waiting = self
            .connections
            .values()
            .any(|c| matches!(c.role, Role::Init(_)));
        if !waiting {
            self.info("all nodes initialised".into());
            self.start_setup();
        }
    }

    fn init_timeout(&mut self) {
        // Individual init timeouts crash the test; this catches nothing else
        // but keeps the rule in one obvious place.
        if self.phase == Phase::Init {
            let pending: Vec<String> = self
                .connections
                .values()
                .filter_map(|c| match c.role {
                    Role::Init(n) => Some(self.opts.nodes[n].clone()),
                    _ => None,
                })
                .collect();
            if !pending.is_empty() {
                self.crash(format!("nodes {pending:?} never answered init"));
            }
        }
    }

    fn start_setup(&mut self) {
        self.phase = Phase::Setup;
        self.epoch = self.now;
        for node in 0..self.opts.node_count() {
            let client = self.open_client(Role::Setup(node));
            if let Some(body) = self.workload.setup_request(&self.opts.nodes[node]) {
                self.pending_setup += 1;
                self.request(&client, node, body, SETUP_TIMEOUT);
            }
        }
        if self.pending_setup == 0 {
            self.start_main();
        }
    }

    fn setup_replied(&mut self, node: usize, body: &Value) {
        let expected = self.workload.setup_reply_type();
        if body.get("type").and_then(Value::as_str) != Some(expected) {
            let name = self.opts.nodes[node].clone();
            self.crash(format!(
                "node {name} answered the setup request with {body}, expected {expected}"
            ));
            return;
        }
        self.pending_setup -= 1;
        if self.pending_setup == 0 {
            self.start_main();
        }
    }

    // ----- Main phase -------------------------------------------------------------

    fn start_main(&mut self) {
        self.phase = Phase::Main;
        let limit = self.opts.time_limit.as_nanos() as Time;
        self.info(format!(
            "running the workload for {} s",
            self.opts.time_limit.as_secs_f64()
        ));
        self.schedule(limit, Event::MainEnd);
        if self.opts.rate > 0.0 {
            self.schedule(0, Event::NextOp);
        }
        if self.nemesis.is_some() {
            self.schedule(0, Event::Nemesis);
        }
    }

    /// Starts the next main-phase operation if one is due and a thread is free.
    fn dispatch_main(&mut self) {
        if self.phase != Phase::Main || !self.op_due || self.generator_done {
            return;
        }
        let free = self.free_threads();
        if free.is_empty() {
            return;
        }
        match self
            .workload
            .next_op(self.history_time(), &free, &mut self.generator_rng)
        {
            Next::Op(thread, op) => {
                self.op_due = false;
                self.last_thread = thread;
                self.start_op(thread, op);
                let mean = 1e9 / self.opts.rate;
                let delay = (self.stagger_rng.random::<f64>() * 2.0 * mean) as Time;
                self.schedule(delay, Event::NextOp);
            }
            Next::Wait | Next::Sleep(_) => {}
            Next::Done => self.generator_done = true,
        }
    }

    /// Idle threads, starting after the last one used (round-robin).
    fn free_threads(&self) -> Vec<Free> {
        let n = self.workers.len();
        let start = self.last_thread.wrapping_add(1) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|t| {
                let w = &self.workers[*t];
                w.current.is_none() && !w.asleep
            })
            .map(|thread| Free {
                thread,
                process: self.workers[thread].process,
            })
            .collect()
    }

    fn end_main(&mut self) {
        if self.phase != Phase::Main {
            return;
        }
        self.phase = Phase::Draining;
        self.info("time limit reached; waiting for operations in flight".into());
        self.maybe_end_draining();
    }

    fn maybe_end_draining(&mut self) {
        if self.phase != Phase::Draining || self.workers.iter().any(|w| w.current.is_some()) {
            return;
        }
        if !self.workload.has_final_phase() {
            self.finish();
            return;
        }
        self.heal_all();
        self.info("Waiting for recovery...".into());
        self.phase = Phase::Recovery;
        self.schedule(RECOVERY_WAIT, Event::RecoveryEnd);
    }

    // ----- Final phase ---------------------------------------------------------------

    fn start_final(&mut self) {
        self.phase = Phase::Final;
        self.info("running final operations".into());
        if let Some(limit) = self.workload.final_phase_limit() {
            self.schedule(limit, Event::FinalEnd);
        }
        for thread in 0..self.workers.len() {
            self.dispatch_final(thread);
        }
        self.maybe_finish_final();
    }

    fn dispatch_final(&mut self, thread: usize) {
        let worker = &self.workers[thread];
        if self.phase != Phase::Final
            || worker.finished
            || worker.current.is_some()
            || worker.asleep
        {
            return;
        }
        match self
            .workload
            .next_final_op(self.history_time(), thread, &mut self.generator_rng)
        {
            Next::Op(t, op) => self.start_op(t, op),
            Next::Sleep(delay) => {
                self.workers[thread].asleep = true;
                self.schedule(delay, Event::Wake(thread));
            }
            Next::Wait => {}
            Next::Done => {
                self.workers[thread].finished = true;
                self.maybe_finish_final();
            }
        }
    }

    fn maybe_finish_final(&mut self) {
        let idle = |w: &Worker| w.finished && w.current.is_none();
        if self.phase == Phase::Final && self.workers.iter().all(idle) {
            self.info("final operations complete".into());
            self.finish();
        }
    }

    // ----- Operations -------------------------------------------------------------------

    fn start_op(&mut self, thread: usize, op: OpSpec) {
        if self.workers[thread].client.is_none() {
            let id = self.open_client(Role::Worker(thread));
            let worker = &mut self.workers[thread];
            worker.client = Some(self.workload.new_client(thread));
            worker.client_id = Some(id);
        }
        let process = self.workers[thread].process;
        let mut invoke = Op::new(
            self.history.len(),
            self.history_time(),
            OpType::Invoke,
            Process::Client(process),
            op.f,
            op.value.clone(),
        );
        invoke.is_final = op.is_final;
        let step = self.workers[thread]
            .client
            .as_mut()
            .expect("client opened above")
            .invoke(&op);
        self.workers[thread].current = Some(Current {
            op,
            invoke_index: self.history.len(),
        });
        self.history.push(invoke);
        self.progress.invoked += 1;
        self.step(thread, step);
    }

    fn step(&mut self, thread: usize, step: Step) {
        match step {
            Step::Request(body) => {
                let worker = &self.workers[thread];
                let client = worker.client_id.clone().expect("an open client");
                let timeout = self.workload.rpc_timeout();
                self.request(&client, worker.node, body, timeout);
            }
            Step::Complete(completion) => self.complete(thread, completion),
        }
    }

    fn worker_replied(&mut self, thread: usize, body: &Value) {
        let Some(current) = &self.workers[thread].current else {
            return;
        };
        if body.get("type").and_then(Value::as_str) == Some("error") {
            let completion = self.error_completion(&current.op, body);
            self.complete(thread, completion);
            return;
        }
        let op = current.op.clone();
        let client = self.workers[thread].client.as_mut().expect("a client");
        let step = client.reply(&op, body);
        self.step(thread, step);
    }

    fn worker_timed_out(&mut self, thread: usize) {
        let Some(current) = &self.workers[thread].current else {
            return;
        };
        let op = &current.op;
        let completion = match self.workload.error_handling() {
            ErrorHandling::WithErrors { idempotent } if idempotent.contains(&op.f) => {
                Completion::fail(op.value.clone(), json!("net-timeout"))
            }
            ErrorHandling::WithErrors { .. } => {
                Completion::info(op.value.clone(), json!("net-timeout"))
            }
            ErrorHandling::Indeterminate => Completion::exception(
                op.value.clone(),
                "timeout: the node did not reply in time".into(),
            ),
        };
        self.complete(thread, completion);
    }

    /// Maps an error reply to a completion, as Maelstrom's clients do.
    fn error_completion(&self, op: &OpSpec, body: &Value) -> Completion {
        let code = body
            .get("code")
            .and_then(Value::as_u64)
            .map(|c| ErrorCode::from_code(c as u32));
        let text = body.get("text").cloned().unwrap_or(Value::Null);
        let name = code.map_or("unknown", |c| c.name());
        let error = json!([name, text]);
        match self.workload.error_handling() {
            ErrorHandling::WithErrors { idempotent } => {
                let definite = code.is_some_and(|c| c.is_definite());
                if definite || idempotent.contains(&op.f) {
                    Completion::fail(op.value.clone(), error)
                } else {
                    Completion::info(op.value.clone(), error)
                }
            }
            ErrorHandling::Indeterminate => {
                let mut c =
                    Completion::exception(op.value.clone(), format!("RPCError: {name} {text}"));
                c.error = Some(json!(format!("indeterminate: {name} {text}")));
                c
            }
        }
    }

    fn complete(&mut self, thread: usize, completion: Completion) {
        let Some(current) = self.workers[thread].current.take() else {
            return;
        };
        let process = self.workers[thread].process;
        let mut op = Op::new(
            self.history.len(),
            self.history_time(),
            completion.kind,
            Process::Client(process),
            current.op.f,
            completion.value,
        );
        op.error = completion.error;
        op.exception = completion.exception;
        op.is_final = current.op.is_final;
        match op.kind {
            OpType::Ok => self.progress.ok += 1,
            OpType::Fail => self.progress.fail += 1,
            _ => self.progress.info += 1,
        }
        let invoke = self.history[current.invoke_index].clone();
        self.workload.observe(thread, &invoke, &op);
        let indeterminate = op.kind == OpType::Info;
        self.history.push(op);
        if indeterminate {
            self.retire_process(thread);
        }
        self.after_completion(thread);
    }

    /// After an indeterminate operation the thread continues as a new
    /// process; clients that are not reusable are replaced.
    fn retire_process(&mut self, thread: usize) {
        let concurrency = self.workers.len() as u64;
        let reusable = self.workload.reusable_clients();
        let worker = &mut self.workers[thread];
        worker.process += concurrency;
        if !reusable {
            worker.client = None;
            if let Some(id) = worker.client_id.take() {
                self.close_client(&id);
            }
        }
    }

    fn after_completion(&mut self, thread: usize) {
        match self.phase {
            Phase::Main => self.dispatch_main(),
            Phase::Draining => self.maybe_end_draining(),
            Phase::Final => {
                self.dispatch_final(thread);
                self.maybe_finish_final();
            }
            _ => {}
        }
    }

    fn history_time(&self) -> Time {
        self.now.saturating_sub(self.epoch)
    }

    // ----- Nemesis -------------------------------------------------------------------------

    fn nemesis_step(&mut self) {
        if self.phase != Phase::Main {
            return;
        }
        let Some(schedule) = &mut self.nemesis else {
            return;
        };
        let (fault, start, delay) = schedule.next(&mut self.nemesis_rng);
        match (fault, start) {
            (Fault::Partition, true) => self.start_partition(),
            (Fault::Partition, false) => self.stop_partition(),
            (Fault::Kill, true) => self.kill_nodes(),
            (Fault::Kill, false) => self.restart_nodes(),
            (Fault::Pause, true) => self.pause_nodes(),
            (Fault::Pause, false) => self.resume_nodes(),
        }
        self.schedule(delay, Event::Nemesis);
    }

    /// Ends every fault before the final phase, as Jepsen's final
    /// generators do (each fault's stop op is recorded even if idle).
    fn heal_all(&mut self) {
        let Some(schedule) = &mut self.nemesis else {
            return;
        };
        let faults = schedule.faults().to_vec();
        schedule.reset();
        for fault in faults {
            match fault {
                Fault::Partition => self.stop_partition(),
                Fault::Kill => self.restart_nodes(),
                Fault::Pause => self.resume_nodes(),
            }
        }
    }

    fn start_partition(&mut self) {
        let spec = PartitionSpec::random(&mut self.nemesis_rng);
        self.grudge = spec.grudge(&self.opts.nodes, &mut self.nemesis_rng);
        let value = json!(["isolated", self.grudge.to_json()]);
        self.record_nemesis("start-partition", json!(spec.name()), value);
        self.info(format!(
            "partition {}: {}",
            spec.name(),
            self.grudge.to_json()
        ));
    }

    fn stop_partition(&mut self) {
        self.grudge = Grudge::default();
        self.record_nemesis("stop-partition", Value::Null, json!("network-healed"));
        self.info("network healed".into());
    }

    fn nodes_in(&self, state: NodeState) -> Vec<usize> {
        (0..self.node_states.len())
            .filter(|n| self.node_states[*n] == state)
            .collect()
    }

    fn names(&self, nodes: &[usize]) -> Value {
        json!(
            nodes
                .iter()
                .map(|n| &self.opts.nodes[*n])
                .collect::<Vec<_>>()
        )
    }

    fn kill_nodes(&mut self) {
        let candidates = self.nodes_in(NodeState::Up);
        let victims = nemesis::minority(&candidates, self.node_states.len(), &mut self.nemesis_rng);
        for node in &victims {
            self.node_states[*node] = NodeState::Down;
            self.commands.push(HostCommand::Kill(*node));
        }
        let names = self.names(&victims);
        self.record_nemesis("kill", json!("minority"), json!(["killed", names]));
        self.info(format!("killed {names}"));
    }

    /// Restarts every killed node with a fresh process and sends it init.
    fn restart_nodes(&mut self) {
        let down = self.nodes_in(NodeState::Down);
        for node in &down {
            self.node_states[*node] = NodeState::Up;
            self.commands.push(HostCommand::Restart(*node));
            let client = self.open_client(Role::Init(*node));
            let body = json!({
                "type": "init",
                "node_id": self.opts.nodes[*node],
                "node_ids": self.opts.nodes,
            });
            self.request(&client, *node, body, INIT_TIMEOUT);
        }
        let names = self.names(&down);
        self.record_nemesis("start", Value::Null, json!(["started", names]));
        if !down.is_empty() {
            self.info(format!("restarted {names}"));
        }
    }

    fn pause_nodes(&mut self) {
        let candidates = self.nodes_in(NodeState::Up);
        let victims = nemesis::minority(&candidates, self.node_states.len(), &mut self.nemesis_rng);
        for node in &victims {
            self.node_states[*node] = NodeState::Paused;
            self.commands.push(HostCommand::Pause(*node));
        }
        let names = self.names(&victims);
        self.record_nemesis("pause", json!("minority"), json!(["paused", names]));
        self.info(format!("paused {names}"));
    }

    fn resume_nodes(&mut self) {
        let paused = self.nodes_in(NodeState::Paused);
        for node in &paused {
            self.node_states[*node] = NodeState::Up;
            self.commands.push(HostCommand::Resume(*node));
        }
        let names = self.names(&paused);
        self.record_nemesis("resume", Value::Null, json!(["resumed", names]));
        if !paused.is_empty() {
            self.info(format!("resumed {names}"));
        }
    }

    /// Nemesis operations are recorded as Jepsen does: two `info` entries.
    fn record_nemesis(&mut self, f: &str, invoke_value: Value, result: Value) {
        let time = self.history_time();
        for value in [invoke_value, result] {
            let op = Op::new(
                self.history.len(),
                time,
                OpType::Info,
                Process::Nemesis,
                f,
                value,
            );
            self.history.push(op);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::options::WorkloadName;
    use std::time::Duration;

    fn engine(
        workload: WorkloadName,
        nodes: usize,
        tweak: impl FnOnce(&mut TestOptions),
    ) -> Engine {
        let mut opts = TestOptions::new(workload, "x", 1).with_node_count(nodes);
        tweak(&mut opts);
        let w = crate::workload::build(&opts).unwrap();
        Engine::new(opts, w, Journal::in_memory())
    }

    fn lines(engine: &mut Engine) -> Vec<(usize, Value)> {
        engine
            .take_deliveries()
            .into_iter()
            .map(|d| (d.node, serde_json::from_slice(&d.line).unwrap()))
            .collect()
    }

    /// Answers every delivered request the way a well-behaved echo node would.
    fn answer(engine: &mut Engine, now: Time, delivered: &[(usize, Value)]) {
        for (node, msg) in delivered {
            let body = &msg["body"];
            let reply = match body["type"].as_str().unwrap() {
                "init" => json!({"type": "init_ok"}),
                "echo" => json!({"type": "echo_ok", "echo": body["echo"]}),
                other => panic!("unexpected {other}"),
            };
            let mut reply = reply;
            reply["in_reply_to"] = body["msg_id"].clone();
            let out = json!({"src": msg["dest"], "dest": msg["src"], "body": reply});
            engine.node_output(*node, out.to_string().as_bytes(), now);
        }
    }

    #[test]
    fn init_comes_from_c0_with_ids_and_the_first_worker_client_is_c2() {
        let mut e = engine(WorkloadName::Echo, 1, |_| {});
        e.start();
        e.run_until(0);
        let init = lines(&mut e);
        assert_eq!(init.len(), 1);
        let msg = &init[0].1;
        assert_eq!(msg["id"], 0);
        assert_eq!(msg["src"], "c0");
        assert_eq!(
            msg["body"],
            json!({"type": "init", "node_id": "n0", "node_ids": ["n0"], "msg_id": 1})
        );
        answer(&mut e, 1, &init);
        e.run_until(1);
        assert_eq!(e.phase(), Phase::Main);
        let first = lines(&mut e);
        assert_eq!(first[0].1["src"], "c2", "c1 is the setup client");
        assert_eq!(
            first[0].1["body"]["msg_id"], 1,
            "each client numbers from 1"
        );
        assert!(
            first[0].1["id"].as_u64().unwrap() >= 2,
            "global ids keep counting"
        );
    }

    #[test]
    fn an_unanswered_init_crashes_the_test_after_ten_seconds() {
        let mut e = engine(WorkloadName::Echo, 2, |_| {});
        e.start();
        e.run_until(0);
        let init = lines(&mut e);
        answer(&mut e, 1, &init[..1]);
        e.run_until(INIT_TIMEOUT - 1);
        assert!(!e.is_done());
        e.run_until(INIT_TIMEOUT);
        assert!(e.is_done());
        assert!(
            e.crashed().unwrap().0.contains("node n1"),
            "{:?}",
            e.crashed()
        );
    }

    #[test]
    fn a_timed_out_operation_retires_its_process_and_client() {
        let mut e = engine(WorkloadName::Echo, 1, |o| {
            o.rate = 1000.0;
            o.time_limit = Duration::from_secs(30);
        });
        e.start();
        e.run_until(0);
        let init = lines(&mut e);
        answer(&mut e, 0, &init);
        e.run_until(0);
        // The node never answers: the echo times out after 5 s.
        let first = lines(&mut e);
        assert_eq!(first[0].1["src"], "c2");
        e.run_until(5_000 * NANOS_PER_MS);
        let history = e.history().to_vec();
        let info = history
            .iter()
            .find(|op| op.kind == OpType::Info)
            .expect("an info op");
        assert_eq!(info.process, Process::Client(0));
        assert_eq!(info.error, Some(json!("net-timeout")));
        let next = lines(&mut e);
        assert_eq!(
            next[0].1["src"], "c3",
            "a fresh client replaces the old one"
        );
        let invoke = e.history().last().unwrap();
        assert_eq!(
            invoke.process,
            Process::Client(1),
            "process 0 + concurrency 1"
        );
    }

    #[test]
    fn partitions_drop_node_traffic_at_the_receiver_but_never_client_traffic() {
        let mut e = engine(WorkloadName::Echo, 2, |_| {});
        e.start();
        e.run_until(0);
        let init = lines(&mut e);
        answer(&mut e, 0, &init);
        e.run_until(0);
        lines(&mut e);
        e.grudge.drop_from("n1", "n0");
        let to_n1 = json!({"src": "n0", "dest": "n1", "body": {"type": "gossip"}}).to_string();
        let to_n0 = json!({"src": "n1", "dest": "n0", "body": {"type": "gossip"}}).to_string();
        e.node_output(0, to_n1.as_bytes(), 1);
        e.node_output(1, to_n0.as_bytes(), 1);
        e.run_until(2);
        let delivered: Vec<(usize, String)> = lines(&mut e)
            .into_iter()
            .map(|(n, m)| (n, m["src"].as_str().unwrap().to_string()))
            .filter(|(_, src)| src.starts_with('n'))
            .collect();
        assert_eq!(
            delivered,
            vec![(0, "n1".to_string())],
            "n1 drops n0, not the reverse"
        );
        assert_eq!(e.journal().stats.dropped, 1);
    }

    #[test]
    fn a_message_in_flight_when_the_partition_heals_is_delivered() {
        let mut e = engine(WorkloadName::Echo, 2, |o| {
            o.latency = Duration::from_millis(100)
        });
        e.start();
        e.run_until(0);
        let init = lines(&mut e);
        answer(&mut e, 0, &init);
        e.run_until(0);
        lines(&mut e);
        e.grudge.drop_from("n1", "n0");
        let msg = json!({"src": "n0", "dest": "n1", "body": {"type": "gossip"}}).to_string();
        e.node_output(0, msg.as_bytes(), 10 * NANOS_PER_MS);
        e.grudge = Grudge::default();
        e.run_until(110 * NANOS_PER_MS);
        let got: Vec<usize> = lines(&mut e)
            .into_iter()
            .filter(|(_, m)| m["src"] == "n0")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(got, vec![1], "partitions apply at delivery time");
    }

    #[test]
    fn rate_limits_the_operations_and_the_first_starts_at_once() {
        let mut e = engine(WorkloadName::Echo, 1, |o| {
            o.rate = 20.0;
            o.time_limit = Duration::from_secs(10);
        });
        e.start();
        let mut now = 0;
        while !e.is_done() {
            e.run_until(now);
            let delivered = lines(&mut e);
            answer(&mut e, now, &delivered);
            e.run_until(now);
            now = e.next_event_time().unwrap_or(now + 1);
        }
        let invokes: Vec<&Op> = e.history().iter().filter(|o| o.is_invoke()).collect();
        assert_eq!(invokes[0].time, 0);
        assert!(
            (170..=230).contains(&invokes.len()),
            "about 200 ops, got {}",
            invokes.len()
        );
        assert!(e.history().iter().all(|o| o.kind != OpType::Info));
    }

    #[test]
    fn a_killed_node_gets_nothing_until_it_restarts_and_is_initialised_again() {
        let mut e = engine(WorkloadName::Echo, 2, |_| {});
        e.start();
        e.run_until(0);
        let init = lines(&mut e);
        answer(&mut e, 0, &init);
        e.run_until(0);
        lines(&mut e);
        e.node_states[1] = NodeState::Down;
        let to_n1 = json!({"src": "n0", "dest": "n1", "body": {"type": "gossip"}}).to_string();
        e.node_output(0, to_n1.as_bytes(), 1);
        let from_dead = json!({"src": "n1", "dest": "n0", "body": {"type": "late"}}).to_string();
        e.node_output(1, from_dead.as_bytes(), 1);
        e.run_until(2);
        assert!(
            lines(&mut e)
                .iter()
                .all(|(_, m)| m["body"]["type"] == "echo")
        );
        assert_eq!(e.journal().stats.to_down_nodes, 1);
        e.node_exited(1, "killed");
        assert!(e.crashed().is_none(), "a killed node's exit is expected");
        e.restart_nodes();
        assert_eq!(e.take_host_commands(), vec![HostCommand::Restart(1)]);
        e.run_until(3);
        let init = lines(&mut e);
        let again = init
            .iter()
            .find(|(n, m)| *n == 1 && m["body"]["type"] == "init")
            .expect("init again");
        assert!(
            again.1["src"].as_str().unwrap() > "c2",
            "from a fresh init client"
        );
        let restart = e.history().iter().rev().find(|op| op.f == "start").unwrap();
        assert_eq!(restart.value, json!(["started", ["n1"]]));
    }
}
