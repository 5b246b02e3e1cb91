//! lin-kv: a linearizable key-value store (`read`, `write`, `cas`) on the
//! Raft core in `glomers::raft`.
//!
//! Approach. Every node runs Raft. `write` and `cas` are log entries,
//! applied in log order on every node, so a `cas` mismatch (22) or a
//! missing key (20) is decided on the committed log, never on a guess.
//! Reads stay out of the log: the leader serves them at a ReadIndex, once a
//! quorum has answered a heartbeat round started after the read arrived
//! (reads arriving together share that round), so a deposed leader cannot
//! answer from stale state. A follower forwards a request to the leader it
//! knows and forgets it; the leader answers the client itself (Maelstrom
//! clients match replies by `in_reply_to` alone), which saves the hop back.
//!
//! Latency: a request to the leader costs one replication round trip (two
//! one-way delays) plus one log sync on the leader and one on a follower; a
//! request to a follower costs one more delay for the forward. Requests
//! arriving within 2 ms of a sync share the next one (group commit).
//! Timeouts are counted in ticks of half the measured round trip (at least
//! 10 ms), so a slow network gets slower elections rather than none.
//!
//! A partition: the majority side elects a leader within about half a
//! second (at 10 ms ticks, election timeouts of 150-300 ms, then pre-vote
//! and vote round trips), and a leader cut off from its quorum steps down
//! after 150-300 ms (check-quorum). Requests on the minority side wait for
//! a leader for up to 0.8 s, just under the client's 1 s timeout, and then
//! get error 11: they were never proposed, so that answer is definite.
//! Requests caught in flight (forwarded to a leader that was just cut off,
//! or proposed but not committed) get no answer: they may still commit, so
//! only the client's timeout (indeterminate) is honest. A proposal whose
//! log index is later committed with another leader's entry can never
//! commit, so it is retried. A partition that cuts links one way only
//! (Maelstrom's `majorities-ring`: on 3 nodes no link works both ways) is
//! bridged by relaying node messages through the other nodes while a link
//! looks dead, at the price of duplicate messages during partitions.
//!
//! A crash: term, vote and log are in `FileStorage` in the host's data
//! directory, synced before any message leaves, so a node killed and
//! restarted with its memory wiped keeps its promises and rebuilds the
//! store by re-applying its log. There are no snapshots, so restart time
//! and memory grow with the log. Requests in flight on the crashed node are
//! lost (clients time out). Under real Maelstrom there is no data
//! directory (its nodes share `/tmp` across runs) and nodes are never
//! killed, so the log is kept in memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::time::Duration;

use glomers::raft::{
    self, Config, Durability, Entry, FileStorage, MemStorage, Raft, Role, SoftState, Storage,
};
use glomers::{Context, ErrorCode, Message, Node};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The shortest Raft tick. Ticks stretch to half the measured round trip
/// (up to `MAX_TICK`), so that heartbeats, elections and check-quorum stay
/// a few round trips long on a slow network instead of never completing.
const MIN_TICK: Duration = Duration::from_millis(10);
const MAX_TICK: Duration = Duration::from_millis(250);
/// How often a node measures its round trip to each peer.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a request waits for a leader to be known before error 11:
/// elections take a few hundred ms, clients give up after 1 s.
const LEADER_WAIT: Duration = Duration::from_millis(800);
/// Past this age a lost proposal is not retried: its client has given up.
const RETRY_WITHIN: Duration = Duration::from_secs(1);
/// A proposal still unresolved after this long is forgotten, silently (it
/// may still commit). Only a node cut off for that long holds any.
const FORGET_AFTER: Duration = Duration::from_secs(10);
/// Forwards in a row before a request waits for a fresher view of the
/// leader, so two nodes that name each other cannot bounce it forever.
const MAX_HOPS: u8 = 3;
/// A link is suspect when nothing came over it for this many ticks
/// although something should have (heartbeats go out every 5 ticks).
const SUSPECT_AFTER_TICKS: u32 = 12;
/// Requests arriving this soon after the last log sync wait out the gap
/// and share the next sync (group commit): under load a sync per request
/// costs throughput, while an idle node never waits.
const SYNC_GAP: Duration = Duration::from_millis(2);

fn raft_config() -> Config {
    Config {
        // Ticks of at least half a round trip: heartbeats every 2.5 round
        // trips or more (the core re-sends entries when streaming shows no
        // progress for a whole heartbeat interval); at 10 ms latency, ticks
        // of 10 ms, heartbeats every 50 ms, elections after 150-300 ms.
        heartbeat_interval: 5,
        election_timeout_min: 15,
        election_timeout_max: 30,
        // A follower back from a 10 s partition catches up in a few rounds.
        max_append_entries: 256,
        pre_vote: true,
        check_quorum: true,
    }
}

/// Messages from clients and between nodes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Read {
        key: Value,
    },
    Write {
        key: Value,
        value: Value,
    },
    Cas {
        key: Value,
        from: Value,
        to: Value,
    },
    /// A message from a node, sent straight to its destination.
    /// `relaying`: the sender sees a broken link and relays what it sends.
    Peer {
        msg: PeerMsg,
        relaying: bool,
    },
    /// A message for node `to`, for the receiver to pass on.
    Relay {
        to: String,
        msg: PeerMsg,
        relaying: bool,
    },
    /// A message from node `from`, passed on by the sender.
    Relayed {
        from: String,
        msg: PeerMsg,
        relaying: bool,
    },
    /// Measures the round trip: answered at once with the same `sent_us`.
    Ping {
        sent_us: u64,
    },
    Pong {
        sent_us: u64,
    },
}

/// What nodes tell each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMsg {
    /// A Raft message.
    Raft { raft: raft::Message<Request> },
    /// A client request on its way to the leader.
    Forward { request: Request, hops: u8 },
}

/// Successful answers to clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    ReadOk { value: Value },
    WriteOk,
    CasOk,
}

/// A client request, as forwarded and as stored in the log (reads never
/// are). The leader answers `client` with `in_reply_to: msg_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Op {
    Read { key: Value },
    Write { key: Value, value: Value },
    Cas { key: Value, from: Value, to: Value },
}

/// What a request came to: a reply, or a definite error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(Reply),
    Failed(ErrorCode, &'static str),
}

/// The replicated state machine: the registers, plus the last outcome per
/// client so that a request applied twice (a duplicated forward) takes
/// effect once. Maelstrom clients number their requests upwards.
#[derive(Debug, Default)]
pub struct Store {
    /// Values by the JSON text of their key (keys may be any JSON value).
    values: HashMap<String, Value>,
    sessions: HashMap<String, (u64, Outcome)>,
}

impl Store {
    /// Applies a committed request. `None` for a stale duplicate, which
    /// needs no answer: its client has moved on.
    pub fn apply(&mut self, req: &Request) -> Option<Outcome> {
        let Some(id) = req.msg_id else {
            return Some(self.execute(&req.op));
        };
        match self.sessions.get(&req.client) {
            Some((last, outcome)) if *last == id => return Some(outcome.clone()),
            Some((last, _)) if *last > id => return None,
            _ => {}
        }
        let outcome = self.execute(&req.op);
        self.sessions
            .insert(req.client.clone(), (id, outcome.clone()));
        Some(outcome)
    }

    /// The current value of `key`.
    pub fn read(&self, key: &Value) -> Outcome {
        match self.values.get(&key.to_string()) {
            Some(value) => Outcome::Done(Reply::ReadOk {
                value: value.clone(),
            }),
            None => Outcome::Failed(ErrorCode::KeyDoesNotExist, "no such key"),
        }
    }

    fn execute(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Read { key } => self.read(key),
            Op::Write { key, value } => {
                self.values.insert(key.to_string(), value.clone());
                Outcome::Done(Reply::WriteOk)
            }
            Op::Cas { key, from, to } => match self.values.get_mut(&key.to_string()) {
                None => Outcome::Failed(ErrorCode::KeyDoesNotExist, "no such key"),
                Some(current) if current != from => Outcome::Failed(
                    ErrorCode::PreconditionFailed,
                    "the value differs from `from`",
                ),
                Some(current) => {
                    *current = to.clone();
                    Outcome::Done(Reply::CasOk)
                }
            },
        }
    }
}

/// A request this node is responsible for, until it answers it, forwards
/// it, or forgets it.
#[derive(Debug, Clone)]
struct Pending {
    request: Request,
    /// Straight from the client: no other node ever saw it, so while it
    /// is unproposed a definite error is safe even if messages were
    /// duplicated.
    origin: bool,
    hops: u8,
    since: Duration,
}

impl Pending {
    /// Whether failing it definitely is truthful: a read has no effect, and
    /// a request only this node ever held was never proposed.
    fn may_fail_definitely(&self) -> bool {
        self.origin || matches!(self.request.op, Op::Read { .. })
    }
}

pub struct LinKvNode {
    /// `None` before `init`, and after the storage failed: a node that
    /// cannot keep its promises stops taking part.
    raft: Option<Raft<Request>>,
    storage: Box<dyn Storage<Request>>,
    store: Store,
    /// Write and cas proposals, by (log index, term), until that index is
    /// applied: with this term the request took effect, with another it
    /// never will.
    proposals: BTreeMap<(u64, u64), Pending>,
    /// Reads waiting for their ReadIndex, by request id.
    reads: HashMap<u64, Pending>,
    next_read: u64,
    /// The term this node leads, if it does: reads are tied to it.
    leading: Option<u64>,
    /// Requests waiting for a leader to be known.
    waiting: VecDeque<Pending>,
    /// When each peer was last heard from directly (not through a relay).
    heard_directly: HashMap<String, Duration>,
    /// A peer that sees a broken link asked for relayed messages until then.
    relay_asked_until: Duration,
    /// Whether the log is on disk, where syncs are worth batching.
    durable: bool,
    /// Which crash the files must survive (the machine's, unless the host
    /// only ever kills the process).
    durability: Durability,
    last_sync: Duration,
    pump_scheduled: bool,
    /// Smoothed round trip to the peers, once measured.
    round_trip: Option<Duration>,
    tick: Duration,
}

impl Default for LinKvNode {
    fn default() -> Self {
        LinKvNode {
            raft: None,
            storage: Box::new(MemStorage::new()),
            store: Store::default(),
            proposals: BTreeMap::new(),
            reads: HashMap::new(),
            next_read: 0,
            leading: None,
            waiting: VecDeque::new(),
            heard_directly: HashMap::new(),
            relay_asked_until: Duration::ZERO,
            durable: false,
            durability: Durability::Machine,
            last_sync: Duration::ZERO,
            pump_scheduled: false,
            round_trip: None,
            tick: MIN_TICK,
        }
    }
}

impl LinKvNode {
    /// A node whose files need only survive the process being killed, not
    /// the machine: no `fsync`. For the simulator, which kills nodes but
    /// has no page cache to lose.
    pub fn for_process_crashes() -> LinKvNode {
        LinKvNode {
            durability: Durability::Process,
            ..LinKvNode::default()
        }
    }
}

impl Node for LinKvNode {
    type Payload = Payload;

    fn init(&mut self, ctx: &mut Context<Self>) {
        if let Err(e) = self.start_raft(ctx) {
            eprintln!("lin-kv: cannot start Raft from storage, serving nothing: {e}");
        }
        ctx.set_timer(self.tick, |node: &mut Self, ctx| node.on_tick(ctx));
        Self::ping(ctx);
        ctx.repeat(PING_EVERY, |_: &mut Self, ctx| Self::ping(ctx));
        // Re-applies what a restarted node's storage holds as committed.
        self.pump(ctx);
    }

    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
        let Message { src, body, .. } = msg;
        let op = match body.payload {
            Payload::Read { key } => Op::Read { key },
            Payload::Write { key, value } => Op::Write { key, value },
            Payload::Cas { key, from, to } => Op::Cas { key, from, to },
            Payload::Peer { msg, relaying } => {
                self.heard(ctx, &src, relaying);
                return self.deliver(ctx, &src, msg);
            }
            Payload::Relay { to, msg, relaying } => {
                self.heard(ctx, &src, relaying);
                return self.pass_on(ctx, src, to, msg, relaying);
            }
            Payload::Relayed {
                from,
                msg,
                relaying,
            } => {
                self.heard(ctx, &src, relaying);
                return self.deliver(ctx, &from, msg);
            }
            Payload::Ping { sent_us } => return ctx.send(&src, &Payload::Pong { sent_us }),
            Payload::Pong { sent_us } => return self.measured(ctx, sent_us),
        };
        let request = Request {
            client: src,
            msg_id: body.msg_id,
            op,
        };
        self.route(ctx, Self::pending(ctx, request, true, 0));
        self.pump_batched(ctx);
    }
}

impl LinKvNode {
    /// Opens durable storage when the host gives a data directory (a
    /// restart finds its state there), memory otherwise.
    fn start_raft(&mut self, ctx: &mut Context<Self>) -> io::Result<()> {
        if let Some(dir) = ctx.data_dir() {
            self.storage = Box::new(FileStorage::open_with(dir.join("raft"), self.durability)?);
            self.durable = true;
        }
        let seed = ctx.rng().random();
        let raft = Raft::new(
            ctx.node_id(),
            ctx.node_ids(),
            raft_config(),
            seed,
            &*self.storage,
        )?;
        self.raft = Some(raft);
        Ok(())
    }

    fn pending(ctx: &Context<Self>, request: Request, origin: bool, hops: u8) -> Pending {
        Pending {
            request,
            origin,
            hops,
            since: ctx.now(),
        }
    }

    /// Handles a message from node `from`, however it came.
    fn deliver(&mut self, ctx: &mut Context<Self>, from: &str, msg: PeerMsg) {
        match msg {
            PeerMsg::Raft { raft } => {
                if let Some(node) = self.raft.as_mut() {
                    node.step(from, raft);
                }
            }
            PeerMsg::Forward { request, hops } => {
                self.route(ctx, Self::pending(ctx, request, false, hops));
                return self.pump_batched(ctx);
            }
        }
        self.pump(ctx);
    }

    fn on_tick(&mut self, ctx: &mut Context<Self>) {
        ctx.set_timer(self.tick, |node: &mut Self, ctx| node.on_tick(ctx));
        if let Some(raft) = self.raft.as_mut() {
            raft.tick();
        }
        self.expire(ctx);
        self.pump(ctx);
    }

    fn ping(ctx: &mut Context<Self>) {
        let sent_us = ctx.now().as_micros() as u64;
        let peers: Vec<String> = ctx.peers().cloned().collect();
        for peer in peers {
            ctx.send(&peer, &Payload::Ping { sent_us });
        }
    }

    /// A pong: updates the round trip (rising fast, falling slowly) and the
    /// tick length that follows from it.
    fn measured(&mut self, ctx: &Context<Self>, sent_us: u64) {
        let sample = ctx.now().saturating_sub(Duration::from_micros(sent_us));
        let smoothed = match self.round_trip {
            None => sample,
            Some(rtt) if sample > rtt => (rtt + sample) / 2,
            Some(rtt) => (rtt * 7 + sample) / 8,
        };
        self.round_trip = Some(smoothed);
        self.tick = (smoothed / 2).clamp(MIN_TICK, MAX_TICK);
    }

    /// Sends a request where it can be served: into Raft if this node
    /// leads, to the leader if one is known, else into the waiting queue.
    fn route(&mut self, ctx: &mut Context<Self>, mut p: Pending) {
        let Some(raft) = self.raft.as_mut() else {
            if p.may_fail_definitely() {
                fail(ctx, &p, "this node's storage failed");
            }
            return;
        };
        if raft.role() == Role::Leader {
            return self.submit(p);
        }
        match raft.leader().map(str::to_owned) {
            Some(leader) if p.hops < MAX_HOPS => {
                p.hops += 1;
                let forward = PeerMsg::Forward {
                    request: p.request,
                    hops: p.hops,
                };
                self.send_peer(ctx, &leader, forward);
            }
            _ => self.waiting.push_back(p),
        }
    }

    /// Hands a request to Raft on the leader: a read asks for a ReadIndex,
    /// anything else is proposed.
    fn submit(&mut self, p: Pending) {
        if self.is_pending(&p.request) {
            // A copy that came by another path (a relay): one is enough.
            return;
        }
        let Some(raft) = self.raft.as_mut() else {
            return;
        };
        let accepted = match p.request.op {
            Op::Read { .. } => {
                self.next_read += 1;
                let id = self.next_read;
                raft.read_index(id).map(|()| {
                    self.reads.insert(id, p.clone());
                })
            }
            _ => raft.propose(p.request.clone()).map(|(index, term)| {
                self.proposals.insert((index, term), p.clone());
            }),
        };
        if accepted.is_err() {
            self.waiting.push_back(p);
        }
    }

    /// Pumps after a new request: at once, unless a log sync happened less
    /// than [`SYNC_GAP`] ago; then once the gap is over, for all requests
    /// that arrived meanwhile.
    fn pump_batched(&mut self, ctx: &mut Context<Self>) {
        let now = ctx.now();
        let due = self.last_sync + SYNC_GAP;
        if !self.durable || now >= due {
            return self.pump(ctx);
        }
        if !self.pump_scheduled {
            self.pump_scheduled = true;
            ctx.set_timer(due - now, |node: &mut Self, ctx| {
                node.pump_scheduled = false;
                node.pump(ctx);
            });
        }
    }

    /// Whether this node already holds `req` in Raft, to be answered.
    fn is_pending(&self, req: &Request) -> bool {
        let same = |p: &Pending| p.request.client == req.client && p.request.msg_id == req.msg_id;
        req.msg_id.is_some() && (self.proposals.values().any(same) || self.reads.values().any(same))
    }

    /// Drains Raft's Readys: persist, send, apply, serve reads. Requests to
    /// route again wait until Raft is advanced.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        loop {
            let Some(raft) = self.raft.as_mut().filter(|r| r.has_ready()) else {
                return;
            };
            let ready = raft.ready();
            if let Err(e) = self.storage.persist(&ready) {
                return self.stop(ctx, &e);
            }
            if !ready.entries.is_empty() {
                self.last_sync = ctx.now();
            }
            for out in ready.messages {
                self.send_peer(ctx, &out.to, PeerMsg::Raft { raft: out.msg });
            }
            let mut reroute = Vec::new();
            for entry in ready.committed {
                self.apply(ctx, entry, &mut reroute);
            }
            for read in ready.read_states {
                self.serve_read(ctx, read.request_id);
            }
            if let Some(raft) = self.raft.as_mut() {
                raft.advance();
            }
            if let Some(soft) = ready.soft_state {
                self.on_soft_state(&soft, &mut reroute);
            }
            for p in reroute {
                self.route(ctx, p);
            }
        }
    }

    /// Applies a committed entry and settles the proposals at its index.
    fn apply(
        &mut self,
        ctx: &mut Context<Self>,
        entry: Entry<Request>,
        reroute: &mut Vec<Pending>,
    ) {
        let outcome = entry.cmd.as_ref().and_then(|req| self.store.apply(req));
        let at_index: Vec<(u64, u64)> = self
            .proposals
            .range((entry.index, 0)..=(entry.index, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for key in at_index {
            let Some(p) = self.proposals.remove(&key) else {
                continue;
            };
            if key.1 == entry.term {
                if let Some(outcome) = &outcome {
                    answer(ctx, &p.request, outcome);
                }
            } else if ctx.now().saturating_sub(p.since) < RETRY_WITHIN {
                // Another leader's entry holds this index: ours never
                // commits, so trying again cannot apply it twice.
                reroute.push(p);
            }
        }
    }

    fn serve_read(&mut self, ctx: &mut Context<Self>, id: u64) {
        if let Some(p) = self.reads.remove(&id)
            && let Op::Read { key } = &p.request.op
        {
            answer(ctx, &p.request, &self.store.read(key));
        }
    }

    /// A new leader means waiting requests can go; leadership lost (or
    /// won in a new term) means Raft dropped our pending reads, which are
    /// harmless to send again.
    fn on_soft_state(&mut self, soft: &SoftState, reroute: &mut Vec<Pending>) {
        let leading = (soft.role == Role::Leader).then_some(soft.term);
        if leading != self.leading {
            self.leading = leading;
            reroute.extend(self.reads.drain().map(|(_, p)| p));
        }
        if soft.leader.is_some() {
            reroute.extend(self.waiting.drain(..).map(|mut p| {
                p.hops = 0;
                p
            }));
        }
    }

    /// Sends a message to node `to`; while a link looks broken, also through
    /// every other node, as partitions may cut links in one direction only
    /// (in Maelstrom's `majorities-ring` on 3 nodes no two nodes hear each
    /// other both ways, yet every node reaches every other through a third).
    /// Raft shrugs off the duplicates; the store applies a request once.
    fn send_peer(&mut self, ctx: &mut Context<Self>, to: &str, msg: PeerMsg) {
        let relaying = self.sees_broken_link(ctx.now());
        if relaying || ctx.now() < self.relay_asked_until {
            let vias: Vec<String> = ctx.peers().filter(|p| *p != to).cloned().collect();
            for via in vias {
                let relay = Payload::Relay {
                    to: to.to_owned(),
                    msg: msg.clone(),
                    relaying,
                };
                ctx.send(&via, &relay);
            }
        }
        ctx.send(to, &Payload::Peer { msg, relaying });
    }

    /// Whether a link this node depends on has gone quiet: a leader hears
    /// every follower's answers, a follower its leader's heartbeats. With no
    /// leader known, elections need every path there is.
    fn sees_broken_link(&self, now: Duration) -> bool {
        let Some(raft) = &self.raft else {
            return false;
        };
        let silent = |peer: &str| {
            let last = self.heard_directly.get(peer).copied().unwrap_or_default();
            now.saturating_sub(last) > self.tick * SUSPECT_AFTER_TICKS
        };
        match raft.role() {
            Role::Leader => raft.peers().iter().any(|p| silent(p)),
            _ => raft.leader().is_none_or(silent),
        }
    }

    /// Notes a message received straight from node `src`.
    fn heard(&mut self, ctx: &Context<Self>, src: &str, relaying: bool) {
        let now = ctx.now();
        self.heard_directly.insert(src.to_owned(), now);
        if relaying {
            self.relay_asked_until = now + self.tick * SUSPECT_AFTER_TICKS;
        }
    }

    /// Passes a relayed message on to its destination, a member node.
    fn pass_on(
        &mut self,
        ctx: &mut Context<Self>,
        from: String,
        to: String,
        msg: PeerMsg,
        relaying: bool,
    ) {
        if to == ctx.node_id() {
            return self.deliver(ctx, &from, msg);
        }
        if ctx.node_ids().contains(&to) {
            ctx.send(
                &to,
                &Payload::Relayed {
                    from,
                    msg,
                    relaying,
                },
            );
        }
    }

    /// Gives up on requests that waited too long for a leader, and forgets
    /// proposals that stayed unresolved for very long.
    fn expire(&mut self, ctx: &mut Context<Self>) {
        let now = ctx.now();
        self.waiting.retain(|p| {
            let keep = now.saturating_sub(p.since) < LEADER_WAIT;
            if !keep && p.may_fail_definitely() {
                fail(ctx, p, "no leader");
            }
            keep
        });
        self.proposals
            .retain(|_, p| now.saturating_sub(p.since) < FORGET_AFTER);
    }

    /// The storage failed: stop taking part. What was proposed may still
    /// commit elsewhere, so only requests never handed on are failed.
    fn stop(&mut self, ctx: &mut Context<Self>, error: &io::Error) {
        eprintln!("lin-kv: storage failed, this node stops serving: {error}");
        self.raft = None;
        self.proposals.clear();
        for p in self
            .reads
            .drain()
            .map(|(_, p)| p)
            .chain(self.waiting.drain(..))
        {
            if p.may_fail_definitely() {
                fail(ctx, &p, "this node's storage failed");
            }
        }
    }
}

fn answer(ctx: &mut Context<LinKvNode>, req: &Request, outcome: &Outcome) {
    match outcome {
        Outcome::Done(reply) => ctx.reply_to(&req.client, req.msg_id, reply),
        Outcome::Failed(code, text) => ctx.reply_error_to(&req.client, req.msg_id, *code, text),
    }
}

/// Error 11: definitely not performed.
fn fail(ctx: &mut Context<LinKvNode>, p: &Pending, text: &str) {
    let code = ErrorCode::TemporarilyUnavailable;
    ctx.reply_error_to(&p.request.client, p.request.msg_id, code, text);
}

fn main() -> anyhow::Result<()> {
    glomers::run(LinKvNode::default())
}

#[cfg(test)]
mod tests {
    //! The node driven through `glomers::Runtime` with JSON lines, on a
    //! tiny hand-made network with virtual time and cuttable links.

    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashSet};
    use std::path::PathBuf;

    use glomers::Runtime;
    use serde_json::json;

    use super::*;

    const LATENCY: Duration = Duration::from_millis(5);

    /// Nodes `n0..`, messages between them after `LATENCY` unless their
    /// link is cut, and everything sent to clients collected in `inbox`.
    struct Net {
        nodes: Vec<Runtime<LinKvNode>>,
        now: Duration,
        in_flight: BinaryHeap<Reverse<(Duration, u64, usize, String)>>,
        seq: u64,
        cut: HashSet<(usize, usize)>,
        inbox: Vec<Value>,
        next_msg_id: u64,
    }

    impl Net {
        fn new(n: usize) -> Net {
            Net::with_dirs(vec![None; n])
        }

        fn with_dirs(dirs: Vec<Option<PathBuf>>) -> Net {
            let n = dirs.len();
            let mut net = Net {
                nodes: Vec::new(),
                now: Duration::ZERO,
                in_flight: BinaryHeap::new(),
                seq: 0,
                cut: HashSet::new(),
                inbox: Vec::new(),
                next_msg_id: 0,
            };
            for (i, dir) in dirs.into_iter().enumerate() {
                let runtime = Runtime::new(LinKvNode::default(), i as u64 + 1).with_data_dir(dir);
                net.nodes.push(runtime);
                net.init(i, n);
            }
            net
        }

        fn init(&mut self, i: usize, n: usize) {
            let ids: Vec<String> = (0..n).map(|k| format!("n{k}")).collect();
            let body = json!({"type": "init", "node_id": ids[i], "node_ids": ids, "msg_id": 1});
            let line = json!({"src": "c0", "dest": ids[i], "body": body}).to_string();
            self.nodes[i].handle_line(&line, self.now).unwrap();
            self.collect(i);
            self.inbox.clear();
        }

        /// A client sends `body` to node `i`; returns its msg_id.
        fn request(&mut self, i: usize, client: &str, mut body: Value) -> u64 {
            self.next_msg_id += 1;
            body["msg_id"] = json!(self.next_msg_id);
            let line = json!({"src": client, "dest": format!("n{i}"), "body": body});
            self.nodes[i]
                .handle_line(&line.to_string(), self.now)
                .unwrap();
            self.collect(i);
            self.next_msg_id
        }

        fn collect(&mut self, from: usize) {
            let output = self.nodes[from].take_output();
            for line in output.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let msg: Value = serde_json::from_slice(line).unwrap();
                let dest = msg["dest"].as_str().unwrap();
                match dest.strip_prefix('n').and_then(|k| k.parse::<usize>().ok()) {
                    Some(to) if self.cut.contains(&(from, to)) => {}
                    Some(to) => {
                        self.seq += 1;
                        let text = String::from_utf8(line.to_vec()).unwrap();
                        self.in_flight
                            .push(Reverse((self.now + LATENCY, self.seq, to, text)));
                    }
                    None => self.inbox.push(msg),
                }
            }
        }

        /// Runs the network until `now + d`.
        fn run(&mut self, d: Duration) {
            let end = self.now + d;
            loop {
                let next_msg = self.in_flight.peek().map(|Reverse(m)| m.0);
                let next_timer = (0..self.nodes.len())
                    .filter_map(|i| self.nodes[i].next_deadline().map(|t| (t, i)))
                    .min();
                match (next_msg, next_timer) {
                    (Some(t), timer) if t <= end && timer.is_none_or(|(tt, _)| t <= tt) => {
                        let Reverse((at, _, to, line)) = self.in_flight.pop().unwrap();
                        self.now = at;
                        self.nodes[to].handle_line(&line, at).unwrap();
                        self.collect(to);
                    }
                    (_, Some((t, i))) if t <= end => {
                        self.now = t;
                        self.nodes[i].fire_timers(t);
                        self.collect(i);
                    }
                    _ => break,
                }
            }
            self.now = end;
        }

        fn isolate(&mut self, i: usize) {
            for k in 0..self.nodes.len() {
                self.cut.insert((i, k));
                self.cut.insert((k, i));
            }
        }

        fn heal(&mut self) {
            self.cut.clear();
        }

        fn leader(&self) -> Option<usize> {
            (0..self.nodes.len()).find(|&i| {
                let raft = self.nodes[i].node().raft.as_ref();
                raft.is_some_and(|r| r.role() == Role::Leader)
            })
        }

        /// The replies to `msg_id` so far, with the node that sent them.
        fn replies(&self, msg_id: u64) -> Vec<(String, Value)> {
            self.inbox
                .iter()
                .filter(|m| m["body"]["in_reply_to"] == json!(msg_id))
                .map(|m| (m["src"].as_str().unwrap().to_owned(), m["body"].clone()))
                .collect()
        }

        /// The one reply to `msg_id`, without `in_reply_to`.
        fn reply(&self, msg_id: u64) -> Value {
            let replies = self.replies(msg_id);
            assert_eq!(replies.len(), 1, "replies to {msg_id}: {replies:?}");
            let mut body = replies[0].1.clone();
            body.as_object_mut().unwrap().remove("in_reply_to");
            body.as_object_mut().unwrap().remove("text");
            body
        }
    }

    const SETTLE: Duration = Duration::from_millis(600);

    #[test]
    fn a_single_node_serves_reads_writes_and_cas_with_maelstrom_errors() {
        let mut net = Net::new(1);
        // Sent before any leader exists: it waits for the election.
        let early = net.request(0, "c1", json!({"type": "read", "key": 1}));
        net.run(SETTLE);
        assert_eq!(net.reply(early), json!({"type": "error", "code": 20}));
        let cases = [
            (
                json!({"type": "cas", "key": 1, "from": 1, "to": 2}),
                json!({"type": "error", "code": 20}),
            ),
            (
                json!({"type": "write", "key": 1, "value": 1}),
                json!({"type": "write_ok"}),
            ),
            (
                json!({"type": "cas", "key": 1, "from": 3, "to": 2}),
                json!({"type": "error", "code": 22}),
            ),
            (
                json!({"type": "cas", "key": 1, "from": 1, "to": 2}),
                json!({"type": "cas_ok"}),
            ),
            (
                json!({"type": "read", "key": 1}),
                json!({"type": "read_ok", "value": 2}),
            ),
            (
                json!({"type": "read", "key": "1"}),
                json!({"type": "error", "code": 20}),
            ),
        ];
        for (request, expected) in cases {
            let id = net.request(0, "c1", request.clone());
            net.run(Duration::from_millis(1));
            assert_eq!(net.reply(id), expected, "{request}");
        }
    }

    #[test]
    fn followers_forward_and_the_leader_answers_the_client() {
        let mut net = Net::new(3);
        net.run(SETTLE);
        let leader = net.leader().expect("a leader");
        let follower = (leader + 1) % 3;
        let write = net.request(
            follower,
            "c1",
            json!({"type": "write", "key": 0, "value": 7}),
        );
        net.run(SETTLE);
        let replies = net.replies(write);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].0, format!("n{leader}"));
        assert_eq!(replies[0].1["type"], "write_ok");
        // Every node applied it.
        let read = net.request(follower, "c2", json!({"type": "read", "key": 0}));
        net.run(SETTLE);
        assert_eq!(net.reply(read), json!({"type": "read_ok", "value": 7}));
        for node in &net.nodes {
            assert_eq!(node.node().store.values.get("0"), Some(&json!(7)));
        }
    }

    #[test]
    fn a_deposed_leader_never_serves_a_stale_read() {
        let mut net = Net::new(3);
        net.run(SETTLE);
        let old = net.leader().unwrap();
        let write = net.request(old, "c1", json!({"type": "write", "key": 0, "value": 1}));
        net.run(SETTLE);
        assert_eq!(net.reply(write)["type"], "write_ok");
        net.isolate(old);
        let stale = net.request(old, "c2", json!({"type": "read", "key": 0}));
        net.run(SETTLE);
        let new = net.leader().filter(|l| *l != old).expect("a new leader");
        let write = net.request(new, "c1", json!({"type": "write", "key": 0, "value": 2}));
        net.run(SETTLE);
        assert_eq!(net.reply(write)["type"], "write_ok");
        net.heal();
        net.run(SETTLE * 2);
        // The read waited, then failed or saw the new value; never 1.
        let replies = net.replies(stale);
        assert!(replies.len() <= 1, "{replies:?}");
        for (_, body) in replies {
            assert!(
                body["value"] == json!(2) || body["code"] == json!(11),
                "{body}"
            );
        }
    }

    #[test]
    fn a_request_without_a_leader_waits_then_fails_definitely() {
        let mut net = Net::new(3);
        net.run(SETTLE);
        let lonely = (net.leader().unwrap() + 1) % 3;
        net.isolate(lonely);
        net.run(SETTLE);
        let write = net.request(lonely, "c1", json!({"type": "write", "key": 0, "value": 1}));
        net.run(LEADER_WAIT - Duration::from_millis(50));
        assert!(net.replies(write).is_empty(), "a leader may still appear");
        net.run(Duration::from_millis(100));
        assert_eq!(net.reply(write), json!({"type": "error", "code": 11}));
    }

    #[test]
    fn a_proposal_overwritten_by_another_leader_is_retried_once() {
        let mut net = Net::new(3);
        net.run(SETTLE);
        let old = net.leader().unwrap();
        let old_term = net.nodes[old].node().raft.as_ref().unwrap().term();
        net.isolate(old);
        // Proposed by a leader that cannot commit it.
        let write = net.request(old, "c1", json!({"type": "write", "key": 0, "value": 5}));
        net.run(Duration::from_millis(400));
        assert!(net.leader().is_some_and(|l| l != old));
        net.heal();
        net.run(SETTLE);
        assert_eq!(net.reply(write), json!({"type": "write_ok"}));
        // Exactly one copy in the log, from a later term: the retry.
        let raft = net.nodes[old].node().raft.as_ref().unwrap();
        let copies: Vec<u64> = raft
            .log()
            .iter()
            .filter(|e| e.cmd.as_ref().is_some_and(|r| r.msg_id == Some(write)))
            .map(|e| e.term)
            .collect();
        assert_eq!(copies.len(), 1);
        assert!(copies[0] > old_term);
    }

    #[test]
    fn a_duplicated_request_takes_effect_once() {
        let mut store = Store::default();
        let req = |msg_id, op| Request {
            client: "c1".into(),
            msg_id: Some(msg_id),
            op,
        };
        let write = |value: i64| Op::Write {
            key: json!(0),
            value: json!(value),
        };
        let cas = Op::Cas {
            key: json!(0),
            from: json!(1),
            to: json!(2),
        };
        assert_eq!(
            store.apply(&req(1, write(1))),
            Some(Outcome::Done(Reply::WriteOk))
        );
        assert_eq!(
            store.apply(&req(2, cas.clone())),
            Some(Outcome::Done(Reply::CasOk))
        );
        // The same cas again answers as the first time and changes nothing;
        // an older request is dropped.
        assert_eq!(store.apply(&req(2, cas)), Some(Outcome::Done(Reply::CasOk)));
        assert_eq!(store.apply(&req(1, write(1))), None);
        assert_eq!(store.values.get("0"), Some(&json!(2)));
    }

    #[test]
    fn a_restarted_node_keeps_its_log_in_the_data_directory() {
        let dir = std::env::temp_dir().join(format!("lin-kv-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut net = Net::with_dirs(vec![Some(dir.clone())]);
        net.run(SETTLE);
        let write = net.request(0, "c1", json!({"type": "write", "key": 3, "value": 9}));
        net.run(SETTLE);
        assert_eq!(net.reply(write), json!({"type": "write_ok"}));
        let term = net.nodes[0].node().raft.as_ref().unwrap().term();

        // Killed: memory gone, files kept.
        let mut net = Net::with_dirs(vec![Some(dir.clone())]);
        assert_eq!(net.nodes[0].node().raft.as_ref().unwrap().term(), term);
        net.run(SETTLE);
        let read = net.request(0, "c1", json!({"type": "read", "key": 3}));
        net.run(SETTLE);
        assert_eq!(net.reply(read), json!({"type": "read_ok", "value": 9}));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_requests_get_error_12_and_unknown_relays_are_dropped() {
        let mut net = Net::new(1);
        net.run(SETTLE);
        let bad = net.request(0, "c1", json!({"type": "cas", "key": 1, "from": 1}));
        assert_eq!(net.reply(bad), json!({"type": "error", "code": 12}));
        let relay = json!({"type": "relay", "to": "c9", "relaying": true,
            "msg": {"type": "forward", "hops": 0,
                "request": {"client": "c9", "msg_id": 1, "op": {"f": "read", "key": 1}}}});
        net.request(0, "n0", relay);
        net.run(SETTLE);
        assert!(
            net.inbox.iter().all(|m| m["dest"] != "c9"),
            "{:?}",
            net.inbox
        );
    }
}
