//! Node crashes in the simulator, ahead of a `kill` nemesis: a node is
//! killed (its memory and timers gone, messages to it dropped) and later
//! restarted with a fresh state, the same id and the same data directory,
//! and sent `init` again. The engine does not know; to it the node was
//! merely silent.

use std::collections::VecDeque;
use std::fs;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use glomers::history::Time;
use glomers::runner::TestOptions;
use glomers::sim::{NodeFactory, SimNode, SimOutcome, Simulation};
use glomers::{Node, Runtime};

/// One crash: node index, when it dies, when it comes back (virtual ns).
#[derive(Debug, Clone, Copy)]
pub struct Outage {
    pub node: usize,
    pub kill: Time,
    pub restart: Time,
}

/// Runs `opts` with every node built by `make`, crashing nodes as listed.
/// Each node gets its own data directory (removed afterwards) unless
/// `durable` is false.
pub fn run_with_outages<N: Node>(
    opts: TestOptions,
    make: impl Fn() -> N + 'static,
    outages: &[Outage],
    durable: bool,
) -> SimOutcome {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("glomers-sim-{}-{run}", std::process::id()));
    let make: Rc<dyn Fn() -> N> = Rc::new(make);
    let names = opts.nodes.clone();
    let outages = outages.to_vec();
    let dirs = base.clone();
    let factory: NodeFactory = Box::new(move |name, seed| {
        let index = names.iter().position(|n| n == name).expect("a known node");
        let data_dir = durable.then(|| dirs.join(name));
        if let Some(dir) = &data_dir {
            fs::create_dir_all(dir).expect("a data directory");
        }
        let mut mine: Vec<Outage> = outages
            .iter()
            .filter(|o| o.node == index)
            .copied()
            .collect();
        mine.sort_by_key(|o| o.kill);
        Box::new(Restarting {
            make: make.clone(),
            runtime: Some(Runtime::new(make(), seed).with_data_dir(data_dir.clone())),
            seed,
            data_dir,
            init: None,
            outages: mine.into(),
            boots: 1,
        })
    });
    let outcome = Simulation::with_factory(opts, factory).run();
    let _ = fs::remove_dir_all(&base);
    outcome
}

/// A node that dies and comes back on schedule.
struct Restarting<N: Node> {
    make: Rc<dyn Fn() -> N>,
    /// `None` while the node is down.
    runtime: Option<Runtime<N>>,
    seed: u64,
    data_dir: Option<PathBuf>,
    /// The `init` line, replayed to every new incarnation.
    init: Option<Vec<u8>>,
    outages: VecDeque<Outage>,
    boots: u64,
}

impl<N: Node> Restarting<N> {
    /// Kills or restarts the node if an outage begins or ends by `now`.
    fn catch_up(&mut self, now: Time) {
        while let Some(outage) = self.outages.front().copied() {
            if self.runtime.is_some() && outage.kill <= now {
                self.runtime = None;
            } else if self.runtime.is_none() && outage.restart <= now {
                self.outages.pop_front();
                self.boots += 1;
                let seed = self.seed.wrapping_add(self.boots);
                let mut runtime =
                    Runtime::new((self.make)(), seed).with_data_dir(self.data_dir.clone());
                if let Some(init) = &self.init {
                    SimNode::handle_line(&mut runtime, init, outage.restart);
                    // Nobody waits for this init_ok any more.
                    let _ = SimNode::take_output(&mut runtime);
                }
                self.runtime = Some(runtime);
            } else {
                return;
            }
        }
    }
}

impl<N: Node> SimNode for Restarting<N> {
    fn handle_line(&mut self, line: &[u8], now: Time) {
        self.catch_up(now);
        if self.init.is_none() && is_init(line) {
            self.init = Some(line.to_vec());
        }
        if let Some(runtime) = &mut self.runtime {
            SimNode::handle_line(runtime, line, now);
        }
    }

    fn fire_timers(&mut self, now: Time) {
        self.catch_up(now);
        if let Some(runtime) = &mut self.runtime {
            SimNode::fire_timers(runtime, now);
        }
    }

    fn next_deadline(&mut self) -> Option<Time> {
        let outage = self.outages.front().map(|o| match self.runtime {
            Some(_) => o.kill,
            None => o.restart,
        });
        let timer = self.runtime.as_mut().and_then(SimNode::next_deadline);
        timer.into_iter().chain(outage).min()
    }

    fn take_output(&mut self) -> Vec<u8> {
        self.runtime
            .as_mut()
            .map(SimNode::take_output)
            .unwrap_or_default()
    }
}

fn is_init(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(line).is_ok_and(|m| m["body"]["type"] == "init")
}

/// A seeded schedule: `count` crashes of random nodes during the first
/// `within` ns, each down for up to `max_down` ns (sometimes not at all).
pub fn random_outages(
    seed: u64,
    nodes: usize,
    count: usize,
    within: Time,
    max_down: Time,
) -> Vec<Outage> {
    use rand::RngExt;
    let mut rng = glomers::runner::random::stream(seed, "outages");
    let mut outages: Vec<Outage> = Vec::new();
    while outages.len() < count {
        let node = rng.random_range(0..nodes);
        let kill = rng.random_range(500_000_000..within);
        let down = if rng.random_bool(0.3) {
            0
        } else {
            rng.random_range(0..max_down)
        };
        let outage = Outage {
            node,
            kill,
            restart: kill + down,
        };
        // One outage at a time per node.
        let overlaps = outages
            .iter()
            .any(|o| o.node == node && o.kill <= outage.restart && outage.kill <= o.restart);
        if !overlaps {
            outages.push(outage);
        }
    }
    outages
}
