//! Deterministic simulation: the runner's engine (same network, services,
//! nemesis, workloads and checkers) driving library nodes in-process on
//! virtual time. No threads, no sleeps: a 20-second test takes
//! milliseconds, and a seed replays it exactly.
//!
//! ```
//! use glomers::runner::TestOptions;
//! use glomers::runner::options::WorkloadName;
//! use glomers::sim::Simulation;
//! # use glomers::{Context, Message, Node};
//! # #[derive(serde::Serialize, serde::Deserialize)]
//! # #[serde(tag = "type", rename_all = "snake_case")]
//! # enum Payload { Echo { echo: serde_json::Value }, EchoOk { echo: serde_json::Value } }
//! # #[derive(Default)] struct MyEcho;
//! # impl Node for MyEcho {
//! #     type Payload = Payload;
//! #     fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
//! #         if let Payload::Echo { echo } = &msg.body.payload {
//! #             ctx.reply(&msg, &Payload::EchoOk { echo: echo.clone() });
//! #         }
//! #     }
//! # }
//! let mut opts = TestOptions::new(WorkloadName::Echo, "in-process", 42).with_node_count(1);
//! opts.time_limit = std::time::Duration::from_secs(10);
//! let outcome = Simulation::new(opts, || MyEcho).run();
//! assert_eq!(outcome.exit_code(), 0, "{}", outcome.replay_hint());
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::checker::Validity;
use crate::history::{History, Op, Time};
use crate::node::{Node, Runtime};
use crate::runner::engine::{Engine, HostCommand, NodeState};
use crate::runner::net::{Journal, NetStats};
use crate::runner::{TestOptions, analysis, random};

/// A node the simulator can drive: a [`Runtime`] behind a trait object.
pub trait SimNode {
    /// Handles one input line at virtual time `now`.
    fn handle_line(&mut self, line: &[u8], now: Time);
    /// Fires timers due by `now`.
    fn fire_timers(&mut self, now: Time);
    /// When the node next needs to run a timer.
    fn next_deadline(&mut self) -> Option<Time>;
    /// Output lines produced so far.
    fn take_output(&mut self) -> Vec<u8>;
}

impl<N: Node> SimNode for Runtime<N> {
    fn handle_line(&mut self, line: &[u8], now: Time) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\n');
        // The engine only delivers well-formed messages; a decode error
        // here is the node's own business (it logs like the stdio host).
        if let Err(e) = Runtime::handle_line(self, text, Duration::from_nanos(now)) {
            eprintln!("glomers sim: node could not decode its input: {e}");
        }
    }

    fn fire_timers(&mut self, now: Time) {
        Runtime::fire_timers(self, Duration::from_nanos(now));
    }

    fn next_deadline(&mut self) -> Option<Time> {
        Runtime::next_deadline(self).map(|d| d.as_nanos() as Time)
    }

    fn take_output(&mut self) -> Vec<u8> {
        Runtime::take_output(self)
    }
}

/// Builds a fresh node for a node id, a seed and the node's durable
/// directory (which survives simulated crashes).
pub type NodeFactory = Box<dyn Fn(&str, u64, Option<PathBuf>) -> Box<dyn SimNode>>;

/// Message faults beyond Maelstrom's (which has partitions only).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetworkFaults {
    /// Probability that a node-to-node message is lost.
    pub loss: f64,
    /// Probability that a node-to-node message is delivered twice.
    pub duplication: f64,
}

/// How a simulation ended.
#[derive(Debug, Clone)]
pub struct SimOutcome {
    pub options: TestOptions,
    /// The verdict, or `None` if the test crashed.
    pub validity: Option<Validity>,
    pub crash: Option<String>,
    /// `results.json`'s content (null for a crash).
    pub results: Value,
    pub history: Vec<Op>,
    pub net: NetStats,
    /// A digest of the history and the message journal: equal digests mean
    /// identical runs.
    pub digest: u64,
    /// Virtual seconds simulated.
    pub virtual_secs: f64,
}

impl SimOutcome {
    /// Maelstrom's exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self.validity {
            Some(Validity::Valid) => 0,
            Some(Validity::Invalid) => 1,
            Some(Validity::Unknown) => 2,
            None => 255,
        }
    }

    /// A value from `results.json` by path, e.g. `["net", "servers", "msgs-per-op"]`.
    pub fn result(&self, path: &[&str]) -> &Value {
        path.iter().fold(&self.results, |v, k| &v[*k])
    }

    /// What to run to replay this simulation.
    pub fn replay_hint(&self) -> String {
        let o = &self.options;
        let mut cmd = format!(
            "glomers sim -w {} --node-count {} --concurrency {} --time-limit {} --rate {} --latency {} --latency-dist {}",
            o.workload,
            o.node_count(),
            o.concurrency,
            o.time_limit.as_secs_f64(),
            o.rate,
            o.latency.as_millis(),
            serde_json::to_value(o.latency_dist)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
        );
        if !o.nemesis.is_empty() {
            let faults: Vec<String> = o
                .nemesis
                .iter()
                .filter_map(|f| {
                    serde_json::to_value(f)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                })
                .collect();
            cmd.push_str(&format!(
                " --nemesis {} --nemesis-interval {}",
                faults.join(","),
                o.nemesis_interval.as_secs_f64()
            ));
        }
        cmd.push_str(&format!(" --seed {}", o.seed));
        format!("seed {} (replay: {cmd})", o.seed)
    }
}

/// One simulated node: the running instance, whether it runs, and what
/// arrived for it while it was paused.
struct Slot {
    node: Box<dyn SimNode>,
    state: NodeState,
    held: Vec<Vec<u8>>,
    data_dir: PathBuf,
    restarts: u64,
}

/// One simulated test.
pub struct Simulation {
    engine: Engine,
    slots: Vec<Slot>,
    factory: NodeFactory,
    seed: u64,
    names: Vec<String>,
    scratch: Option<ScratchDir>,
}

/// The simulation's directory for nodes' durable state, removed at the end.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("glomers-sim-{}-{n}", std::process::id()))
}

impl Simulation {
    /// A simulation of `opts` where every node is built by `make`.
    pub fn new<N: Node>(opts: TestOptions, make: impl Fn() -> N + 'static) -> Simulation {
        let factory: NodeFactory =
            Box::new(move |_, seed, dir| Box::new(Runtime::new(make(), seed).with_data_dir(dir)));
        Simulation::with_factory(opts, factory)
    }

    /// A simulation with a custom node factory (e.g. mixing node types).
    pub fn with_factory(opts: TestOptions, factory: NodeFactory) -> Simulation {
        let scratch = ScratchDir(scratch_dir());
        let slots = opts
            .nodes
            .iter()
            .map(|name| {
                let data_dir = scratch.0.join(name);
                let _ = std::fs::create_dir_all(&data_dir);
                let seed = random::derive(opts.seed, name);
                Slot {
                    node: factory(name, seed, Some(data_dir.clone())),
                    state: NodeState::Up,
                    held: Vec::new(),
                    data_dir,
                    restarts: 0,
                }
            })
            .collect();
        let (seed, names) = (opts.seed, opts.nodes.clone());
        // Options come from code here (tests, `glomers sim` validates its
        // flags first), so invalid ones are a programming error.
        let workload = crate::workload::build(&opts)
            .unwrap_or_else(|e| panic!("invalid simulation options: {e}"));
        Simulation {
            engine: Engine::new(opts, workload, Journal::in_memory()),
            slots,
            factory,
            seed,
            names,
            scratch: Some(scratch),
        }
    }

    /// Adds message loss and duplication between nodes.
    pub fn with_faults(mut self, faults: NetworkFaults) -> Simulation {
        self.engine
            .set_network_faults(faults.loss, faults.duplication);
        self
    }

    /// Runs the test to the end and checks it.
    pub fn run(mut self) -> SimOutcome {
        self.engine.start();
        let mut now = 0;
        loop {
            self.pump(now);
            if self.engine.is_done() {
                break;
            }
            let next_event = self.engine.next_event_time();
            let next_timer = self.next_node_timer();
            match (next_event, next_timer) {
                (None, None) => {
                    self.engine
                        .abort("the simulation stalled: no event is left and no node has a timer");
                }
                (Some(at), None) => {
                    now = at;
                    self.engine.run_until(now);
                }
                (Some(at), Some((t, _))) if at <= t => {
                    now = at;
                    self.engine.run_until(now);
                }
                (_, Some((at, node))) => {
                    now = at;
                    self.slots[node].node.fire_timers(now);
                    self.collect(node, now);
                }
            }
        }
        self.finish(now)
    }

    /// Carries out the nemesis's commands, then delivers everything the
    /// engine has for nodes at `now` and feeds their replies back, until
    /// nothing more happens at this instant.
    fn pump(&mut self, now: Time) {
        loop {
            let commands = self.engine.take_host_commands();
            let deliveries = self.engine.take_deliveries();
            if commands.is_empty() && deliveries.is_empty() {
                return;
            }
            for command in commands {
                self.execute(command, now);
            }
            for delivery in deliveries {
                let slot = &mut self.slots[delivery.node];
                match slot.state {
                    NodeState::Up => {
                        slot.node.handle_line(&delivery.line, now);
                        self.collect(delivery.node, now);
                    }
                    NodeState::Paused => slot.held.push(delivery.line),
                    NodeState::Down => {}
                }
            }
            self.engine.run_until(now);
        }
    }

    fn execute(&mut self, command: HostCommand, now: Time) {
        match command {
            HostCommand::Kill(node) => {
                let slot = &mut self.slots[node];
                slot.state = NodeState::Down;
                slot.held.clear();
            }
            HostCommand::Restart(node) => {
                let slot = &mut self.slots[node];
                slot.restarts += 1;
                // A fresh instance: memory wiped, durable directory kept, and
                // a new seed so it does not replay its previous life.
                let seed = random::derive(
                    self.seed,
                    &format!("{}#{}", self.names[node], slot.restarts),
                );
                slot.node = (self.factory)(&self.names[node], seed, Some(slot.data_dir.clone()));
                slot.state = NodeState::Up;
            }
            HostCommand::Pause(node) => self.slots[node].state = NodeState::Paused,
            HostCommand::Resume(node) => {
                let slot = &mut self.slots[node];
                slot.state = NodeState::Up;
                for line in std::mem::take(&mut slot.held) {
                    slot.node.handle_line(&line, now);
                }
                slot.node.fire_timers(now);
                self.collect(node, now);
            }
        }
    }

    fn collect(&mut self, node: usize, now: Time) {
        let output = self.slots[node].node.take_output();
        for line in output.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.engine.node_output(node, line, now);
        }
    }

    /// The next timer of a running node (paused and dead nodes run nothing).
    fn next_node_timer(&mut self) -> Option<(Time, usize)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| s.state == NodeState::Up)
            .filter_map(|(i, s)| s.node.next_deadline().map(|t| (t, i)))
            .min()
    }

    fn finish(mut self, now: Time) -> SimOutcome {
        drop(self.scratch.take());
        let opts = self.engine.options().clone();
        let crash = self.engine.crashed().map(|c| c.0.clone());
        let (ops, journal, workload) = self.engine.into_parts();
        let history = History::new(ops);
        let digest = digest(history.ops(), journal.digest());
        let (validity, results) = match &crash {
            Some(_) => (None, Value::Null),
            None => {
                let mut analysis =
                    analysis::analyse(&history, &journal.stats, workload.as_ref(), &opts);
                analysis.results["glomers"] =
                    crate::runner::extras(&history, &journal.stats, &opts, 0, 0.0);
                (Some(analysis.validity), analysis.results)
            }
        };
        SimOutcome {
            options: opts,
            validity,
            crash,
            results,
            history: history.into_ops(),
            net: journal.stats,
            digest,
            virtual_secs: now as f64 / 1e9,
        }
    }
}

/// FNV-1a over the history's JSON and the journal's digest.
fn digest(ops: &[Op], journal_digest: u64) -> u64 {
    let mut h = journal_digest ^ 0xcbf2_9ce4_8422_2325;
    for op in ops {
        for b in serde_json::to_vec(op).expect("ops serialise") {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
