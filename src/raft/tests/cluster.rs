//! A deterministic simulated cluster: Raft nodes on a seeded event queue in
//! logical time, over a network that delays, loses, duplicates and
//! reorders messages and can be cut in any direction, with nodes that crash
//! and restart from their storage. Every step is followed by the
//! [`Checker`]'s invariant checks; a failure panics with the seed.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::invariants::{Checker, Cmd};
use crate::protocol::NodeId;
use crate::raft::{
    Config, FileStorage, MemStorage, Message, NotLeader, Raft, Ready, Role, Storage,
};

/// Time units per tick: message delays are finer than ticks.
pub(super) const TICK: u64 = 10;

/// How the network treats each message (delays in time units).
#[derive(Debug, Clone)]
pub(super) struct Network {
    /// Usual delivery delay, drawn uniformly.
    pub delay: Range<u64>,
    /// Chance a message is lost.
    pub loss: f64,
    /// Chance a message is delivered twice.
    pub duplicate: f64,
    /// Chance a message is held back, up to `long_delay`, overtaken by
    /// later ones.
    pub reorder: f64,
    pub long_delay: u64,
}

impl Network {
    pub fn reliable() -> Network {
        Network {
            delay: 1..6,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            long_delay: 0,
        }
    }

    pub fn unreliable() -> Network {
        Network {
            delay: 1..20,
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.05,
            long_delay: 30 * TICK,
        }
    }
}

enum Event {
    Tick(usize),
    Deliver {
        from: usize,
        to: usize,
        msg: Message<Cmd>,
    },
}

enum Disk {
    Memory(MemStorage<Cmd>),
    Files(FileStorage<Cmd>),
}

impl Disk {
    fn storage(&mut self) -> &mut dyn Storage<Cmd> {
        match self {
            Disk::Memory(storage) => storage,
            Disk::Files(storage) => storage,
        }
    }

    /// What a restart finds: the same memory, or the files read afresh
    /// after a crash that tore `torn` bytes of an unfinished append.
    fn reopen(&mut self, torn: &[u8]) {
        if let Disk::Files(storage) = self {
            let dir = storage.dir().to_path_buf();
            let mut log = OpenOptions::new()
                .append(true)
                .open(dir.join("log"))
                .unwrap();
            log.write_all(torn).unwrap();
            *storage = FileStorage::open(&dir).unwrap();
        }
    }
}

struct SimNode {
    raft: Option<Raft<Cmd>>,
    disk: Disk,
    /// The state machine: commands applied in order (no-ops skipped).
    applied: Vec<Cmd>,
    incarnation: u64,
}

/// A simulated cluster of `n0`, `n1`, ... (see the module docs).
pub(super) struct Cluster {
    pub seed: u64,
    rng: Xoshiro256PlusPlus,
    now: u64,
    next_seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    ids: Vec<NodeId>,
    nodes: Vec<SimNode>,
    config: Config,
    pub network: Network,
    /// Directed links whose messages are dropped on delivery.
    cut: HashSet<(usize, usize)>,
    checker: Checker,
    next_cmd: Cmd,
    next_read: u64,
    served_reads: HashSet<u64>,
    /// AppendEntries rejected because the logs diverge (not merely because
    /// the follower's log is too short): the cost of backing up.
    pub conflicts: u64,
    trace: bool,
}

impl Cluster {
    /// `n` nodes with in-memory storage on a reliable network.
    pub fn new(n: usize, seed: u64, config: Config) -> Cluster {
        Cluster::build(n, seed, config, |_| Disk::Memory(MemStorage::new()))
    }

    /// `n` nodes storing their state in files under `dir`.
    pub fn with_files(n: usize, seed: u64, config: Config, dir: &Path) -> Cluster {
        Cluster::build(n, seed, config, |i| {
            let path: PathBuf = dir.join(format!("n{i}"));
            Disk::Files(FileStorage::open(path).unwrap())
        })
    }

    fn build(n: usize, seed: u64, config: Config, disk: impl Fn(usize) -> Disk) -> Cluster {
        let ids: Vec<NodeId> = (0..n).map(|i| format!("n{i}")).collect();
        let mut cluster = Cluster {
            seed,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            now: 0,
            next_seq: 0,
            queue: BTreeMap::new(),
            nodes: Vec::new(),
            ids,
            config,
            network: Network::reliable(),
            cut: HashSet::new(),
            checker: Checker::new(n),
            next_cmd: 1,
            next_read: 1,
            served_reads: HashSet::new(),
            conflicts: 0,
            trace: std::env::var_os("RAFT_TRACE").is_some(),
        };
        for i in 0..n {
            cluster.nodes.push(SimNode {
                raft: None,
                disk: disk(i),
                applied: Vec::new(),
                incarnation: 0,
            });
            cluster.boot(i);
            // Nodes tick at the same rate but out of phase.
            let phase = cluster.rng.random_range(0..TICK);
            cluster.schedule(phase, Event::Tick(i));
        }
        cluster
    }

    /// Starts node `i` from its storage, with a seed of its own.
    fn boot(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let seed = self.seed ^ ((i as u64) << 32) ^ (node.incarnation << 48);
        let config = self.config.clone();
        match Raft::new(&self.ids[i], &self.ids, config, seed, node.disk.storage()) {
            Ok(raft) => node.raft = Some(raft),
            Err(e) => self.fail(&format!("n{i} cannot start from its storage: {e}")),
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Panics with the seed, so the run can be replayed.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "seed {} at tick {}: {what} (replay with RAFT_SEED={} RAFT_TRACE=1)",
            self.seed,
            self.now / TICK,
            self.seed
        )
    }

    pub fn rng(&mut self) -> &mut Xoshiro256PlusPlus {
        &mut self.rng
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.next_seq += 1;
        self.queue.insert((self.now + delay, self.next_seq), event);
    }

    /// Runs for `ticks` ticks of logical time.
    pub fn run(&mut self, ticks: u64) {
        let end = self.now + ticks * TICK;
        while self
            .queue
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= end)
        {
            self.step();
        }
        self.now = end;
    }

    /// Runs until `done` holds (checked every tick), for at most `ticks`.
    pub fn run_until(&mut self, ticks: u64, done: impl Fn(&Cluster) -> bool) -> bool {
        for _ in 0..ticks {
            if done(self) {
                return true;
            }
            self.run(1);
        }
        done(self)
    }

    /// Runs one event at a time until `done` holds, for at most `ticks`:
    /// for stopping between a message and its answer.
    pub fn step_until(&mut self, ticks: u64, done: impl Fn(&Cluster) -> bool) -> bool {
        let end = self.now + ticks * TICK;
        while !done(self) {
            if self
                .queue
                .first_key_value()
                .is_none_or(|((at, _), _)| *at > end)
            {
                return false;
            }
            self.step();
        }
        true
    }

    fn step(&mut self) {
        let ((at, _), event) = self.queue.pop_first().expect("ticks keep the queue busy");
        self.now = at;
        match event {
            Event::Tick(i) => {
                self.schedule(TICK, Event::Tick(i));
                if let Some(raft) = self.nodes[i].raft.as_mut() {
                    raft.tick();
                    self.after(i);
                }
            }
            Event::Deliver { from, to, msg } => self.deliver(from, to, msg),
        }
    }

    fn deliver(&mut self, from: usize, to: usize, msg: Message<Cmd>) {
        if self.cut.contains(&(from, to)) {
            return;
        }
        let Some(raft) = self.nodes[to].raft.as_mut() else {
            return;
        };
        if self.trace {
            eprintln!("{:>6} n{from} -> n{to} {msg:?}", self.now);
        }
        if let Message::AppendReject(reject) = &msg
            && reject.hint_term.is_some()
        {
            self.conflicts += 1;
        }
        raft.step(&self.ids[from], msg);
        self.after(to);
    }

    fn send(&mut self, from: usize, to: usize, msg: Message<Cmd>) {
        let net = &self.network;
        if self.rng.random_bool(net.loss) {
            return;
        }
        let copies = if self.rng.random_bool(net.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if self.rng.random_bool(self.network.reorder) {
                self.rng.random_range(1..=self.network.long_delay.max(1))
            } else {
                self.rng.random_range(self.network.delay.clone())
            };
            let msg = msg.clone();
            self.schedule(delay, Event::Deliver { from, to, msg });
        }
    }

    /// Handles node `i`'s Ready the way a host must: persist, check, send,
    /// apply, advance.
    fn after(&mut self, i: usize) {
        let Some(ready) = self.take_ready(i) else {
            return;
        };
        for out in ready.messages {
            let to = self.index(&out.to);
            self.send(i, to, out.msg);
        }
    }

    fn take_ready(&mut self, i: usize) -> Option<Ready<Cmd>> {
        let node = &mut self.nodes[i];
        let raft = node.raft.as_mut()?;
        if !raft.has_ready() {
            return None;
        }
        let ready = raft.ready();
        if let Err(e) = node.disk.storage().persist(&ready) {
            self.fail(&format!("n{i} cannot persist: {e}"));
        }
        let fresh = match self.checker.after_step(i, raft, &ready) {
            Ok(fresh) => fresh,
            Err(violation) => self.fail(&violation),
        };
        node.applied
            .extend(ready.committed.iter().filter_map(|e| e.cmd));
        raft.advance();
        self.served_reads
            .extend(ready.read_states.iter().map(|r| r.request_id));
        if !fresh.is_empty() {
            self.check_leaders_complete(fresh);
        }
        Some(ready)
    }

    /// Newly committed entries must be in every current leader of a later
    /// term.
    fn check_leaders_complete(&self, fresh: Range<u64>) {
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(raft) = node.raft.as_ref().filter(|r| r.role() == Role::Leader)
                && let Err(violation) = self.checker.check_complete(i, raft, fresh.clone())
            {
                self.fail(&violation);
            }
        }
    }

    fn index(&self, id: &str) -> usize {
        self.ids.iter().position(|n| n == id).expect("a member")
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].raft.is_some()
    }

    /// Node `i`'s Raft state; it must be up.
    pub fn node(&self, i: usize) -> &Raft<Cmd> {
        self.nodes[i].raft.as_ref().expect("node is up")
    }

    /// Commands node `i` has applied since it last started.
    pub fn applied(&self, i: usize) -> &[Cmd] {
        &self.nodes[i].applied
    }

    /// Whether node `i` is up and holds `cmd` in its log.
    pub fn holds(&self, i: usize, cmd: Cmd) -> bool {
        self.is_up(i) && self.node(i).log().iter().any(|e| e.cmd == Some(cmd))
    }

    /// Everything known to be committed.
    pub fn committed(&self) -> usize {
        self.checker.committed().len()
    }

    /// Whether `cmd` is committed.
    pub fn is_committed(&self, cmd: Cmd) -> bool {
        self.checker.committed().iter().any(|e| e.cmd == Some(cmd))
    }

    /// The up node that leads the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.len())
            .filter(|&i| self.is_up(i) && self.node(i).role() == Role::Leader)
            .max_by_key(|&i| self.node(i).term())
    }

    /// Runs until some node leads, for at most `ticks`.
    pub fn wait_leader(&mut self, ticks: u64) -> usize {
        self.run_until(ticks, |c| c.leader().is_some());
        self.leader()
            .unwrap_or_else(|| self.fail(&format!("no leader within {ticks} ticks")))
    }

    /// Runs until one of `group` leads the highest term, for at most `ticks`.
    pub fn wait_leader_among(&mut self, group: &[usize], ticks: u64) -> usize {
        let leads = |c: &Cluster| c.leader().filter(|l| group.contains(l));
        self.run_until(ticks, |c| leads(c).is_some());
        leads(self).unwrap_or_else(|| self.fail(&format!("none of {group:?} leads")))
    }

    /// Proposes a fresh command at node `i` (a down node refuses).
    pub fn propose(&mut self, i: usize) -> Result<Cmd, NotLeader> {
        let cmd = self.next_cmd;
        let down = NotLeader { leader_hint: None };
        self.nodes[i].raft.as_mut().ok_or(down)?.propose(cmd)?;
        self.next_cmd += 1;
        self.after(i);
        Ok(cmd)
    }

    /// Proposes `count` commands at node `i` at once, as a host does with
    /// requests that arrive together: they share AppendEntries.
    pub fn propose_batch(&mut self, i: usize, count: usize) -> Vec<Cmd> {
        let raft = self.nodes[i].raft.as_mut().expect("node is up");
        let first = self.next_cmd;
        for cmd in first..first + count as Cmd {
            if let Err(e) = raft.propose(cmd) {
                self.fail(&format!("n{i} refused a proposal: {e}"));
            }
        }
        self.next_cmd += count as Cmd;
        self.after(i);
        (first..self.next_cmd).collect()
    }

    /// Proposes `count` commands at node `i` and runs until they are
    /// committed.
    pub fn commit_many(&mut self, i: usize, count: usize, ticks: u64) -> Vec<Cmd> {
        let cmds = self.propose_batch(i, count);
        let last = *cmds.last().expect("at least one command");
        if !self.run_until(ticks, |c| c.is_committed(last)) {
            self.fail(&format!(
                "n{i} did not commit {count} commands in {ticks} ticks"
            ));
        }
        cmds
    }

    /// Proposes one command at the leader and runs until it is committed,
    /// proposing again if that leader is deposed first (as a client
    /// retries), for at most `ticks`.
    pub fn commit_one(&mut self, ticks: u64) -> Cmd {
        let deadline = self.now + ticks * TICK;
        while self.now < deadline {
            let leader = self.wait_leader(ticks);
            let term = self.node(leader).term();
            let cmd = self.propose(leader).expect("the leader accepts");
            let leads = |c: &Cluster| {
                c.is_up(leader)
                    && c.node(leader).role() == Role::Leader
                    && c.node(leader).term() == term
            };
            if self.run_until(ticks, |c| c.is_committed(cmd) || !leads(c)) && self.is_committed(cmd)
            {
                return cmd;
            }
        }
        self.fail(&format!("no command committed in {ticks} ticks"))
    }

    /// Asks node `i` for a linearizable read; returns its request id.
    pub fn read(&mut self, i: usize) -> Result<u64, NotLeader> {
        let id = self.next_read;
        let down = NotLeader { leader_hint: None };
        self.nodes[i].raft.as_mut().ok_or(down)?.read_index(id)?;
        self.next_read += 1;
        self.checker.read_asked(id);
        self.after(i);
        Ok(id)
    }

    /// Whether read `id` was served.
    pub fn served(&self, id: u64) -> bool {
        self.served_reads.contains(&id)
    }

    /// Cuts every link between different `groups`.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        self.heal();
        for (a, group) in groups.iter().enumerate() {
            for (b, other) in groups.iter().enumerate() {
                if a != b {
                    for &from in group.iter() {
                        for &to in other.iter() {
                            self.cut.insert((from, to));
                        }
                    }
                }
            }
        }
    }

    /// Maelstrom's majorities ring: each node hears only its two
    /// neighbours, so every node sees a different majority.
    pub fn ring(&mut self) {
        self.heal();
        let n = self.len();
        for a in 0..n {
            for b in 0..n {
                let distance = (a + n - b) % n;
                if distance > 1 && distance < n - 1 {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    /// Cuts node `i` off from everyone.
    pub fn isolate(&mut self, i: usize) {
        let rest: Vec<usize> = (0..self.len()).filter(|&j| j != i).collect();
        self.partition(&[&[i], &rest]);
    }

    /// Drops messages from `from` to `to` (one direction only).
    pub fn cut_link(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Stops node `i`, losing its volatile state (storage is kept).
    pub fn crash(&mut self, i: usize) {
        if self.nodes[i].raft.take().is_some() {
            self.nodes[i].applied.clear();
            self.checker.crashed(i);
        }
    }

    /// Starts a crashed node `i` from its storage. With file storage the
    /// crash may also have torn an append that never finished.
    pub fn restart(&mut self, i: usize) {
        if self.is_up(i) {
            return;
        }
        let torn: Vec<u8> = match self.rng.random_bool(0.5) {
            true => (0..self.rng.random_range(1..40))
                .map(|_| self.rng.random())
                .collect(),
            false => Vec::new(),
        };
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        node.disk.reopen(&torn);
        self.boot(i);
        let raft = self.nodes[i].raft.as_ref().expect("just booted");
        if let Err(violation) = self.checker.restarted(i, raft) {
            self.fail(&violation);
        }
        // The state machine is rebuilt from the log.
        self.after(i);
    }

    /// Heals the network, restarts every node, and checks the cluster
    /// recovers: a leader is elected, a new command is applied everywhere,
    /// and every log is the same.
    pub fn converge(&mut self, ticks: u64) {
        self.heal();
        self.network = Network::reliable();
        for i in 0..self.len() {
            self.restart(i);
        }
        self.commit_one(ticks);
        let caught_up =
            |c: &Cluster| (0..c.len()).all(|i| c.node(i).last_applied() == c.committed() as u64);
        if !self.run_until(ticks, caught_up) {
            self.fail(&format!(
                "not every node applied everything in {ticks} ticks"
            ));
        }
        // Past the commit index a node may still hold a stale suffix, which
        // goes only when the leader's entries overwrite it.
        let committed = self.checker.committed();
        for i in 0..self.len() {
            if self.node(i).log().get(..committed.len()) != Some(committed) {
                self.fail(&format!(
                    "n{i}'s log does not start with the committed entries"
                ));
            }
        }
        let expected: Vec<Cmd> = self
            .checker
            .committed()
            .iter()
            .filter_map(|e| e.cmd)
            .collect();
        for i in 0..self.len() {
            if self.applied(i) != expected {
                self.fail(&format!("n{i} applied other commands than were committed"));
            }
        }
    }
}
