//! Challenge 3, broadcast (3a-3e): every value a client broadcasts to any
//! node must end up in every node's `read`, through partitions.
//!
//! Approach. Each node keeps its values as a set of integer ranges, and every
//! message between nodes carries the sender's *whole* set: the broadcast
//! values are consecutive integers, so a set of a thousand values is a
//! handful of ranges. A message is therefore data, digest and
//! acknowledgement at once: merging is idempotent, a lost message is
//! repaired by any later one, and "what does my peer have?" is answered by
//! the last set it sent. Nodes ignore Maelstrom's topology and use a star:
//! the first node is the hub, the others are leaves.
//!
//! - Default mode (challenge 3e: fewest messages). Rounds of `round`
//!   (500 ms), aligned on `init`: at each round a leaf sends its set to the
//!   hub if it has values the hub may lack; the hub waits `gather` (30 ms)
//!   for the round's batches, then sends its set to every leaf that may lack
//!   something. A round costs at most 24 + 24 messages for 25 nodes,
//!   whatever the load, and a value waits at most one round plus two network
//!   hops: about 0.8 messages per operation and 450 / 700 ms median / max
//!   stable latency at the challenge's flags.
//! - Latency mode (challenge 3d, `GLOMERS_BROADCAST_MODE=latency`). The
//!   node that receives a broadcast sends its set to every other node at
//!   once: one hop, so every node has the value 100 ms after it was acked,
//!   for one message per peer (about 12 messages per operation). The star
//!   only repairs what partitions dropped.
//!
//! Reliability, the same in both modes, on the star's links only (24 links
//! rather than 600 for a full mesh). A node resends its set, asking for a
//! reply, when a peer has not confirmed everything after `resend_after`
//! (2 s) of silence towards it; and a node that has heard new values from a
//! peer but has been quiet for `ack_delay` (1 s) tells it so. Under steady
//! load both rules stay silent, because regular traffic already carries the
//! sets; when the load stops they cost one or two messages per leaf.
//!
//! What faults cost. A partition delays values, never loses them: what a
//! cut-off node holds crosses at the first message after the network heals,
//! within about `resend_after`. A partition that isolates the hub stops
//! dissemination between leaves until it heals (in latency mode only the
//! repairs stop). A node restarted with its memory wiped asks its star
//! neighbours for their sets and has everything back within one round trip.
//! An acknowledged value must survive its node dying right after the ack:
//! when the host gives us a data directory (our runner does; Maelstrom,
//! which never kills nodes, does not) the node appends the value to a log
//! there before acknowledging it, which costs a `write` per broadcast and no
//! latency worth measuring, and reloads it on restart.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use glomers::{Context, ErrorCode, Message, Node, NodeId, TimerId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

// ----- Messages ---------------------------------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    /// Maelstrom's suggested neighbours: accepted, and ignored.
    Topology {
        #[allow(dead_code)]
        topology: HashMap<NodeId, Vec<NodeId>>,
    },
    TopologyOk,
    Broadcast {
        message: i64,
    },
    BroadcastOk,
    Read,
    ReadOk {
        messages: Vec<i64>,
    },
    /// Node to node: the sender's whole set; `reply` asks the receiver to
    /// answer with its own set even if it has nothing new.
    Sync {
        set: RangeSet,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reply: bool,
    },
}

// ----- Configuration ------------------------------------------------------------

/// Which figure the node optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batch through the hub: fewest messages (challenge 3e).
    Messages,
    /// Send every new value to every node at once: lowest latency (3d).
    Latency,
}

/// The tuning knobs.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    /// Messages mode: how often leaves send their batch to the hub. In both
    /// modes: how often the repair rules are checked.
    pub round: Duration,
    /// Messages mode: how long the hub waits for a round's batches.
    pub gather: Duration,
    /// Tell a quiet peer we got its values after this long.
    pub ack_delay: Duration,
    /// Resend to a peer that has not confirmed our values after this long.
    pub resend_after: Duration,
}

impl Config {
    /// The defaults of a mode.
    pub fn new(mode: Mode) -> Config {
        Config {
            mode,
            round: match mode {
                Mode::Messages => Duration::from_millis(500),
                Mode::Latency => Duration::from_millis(200),
            },
            gather: Duration::from_millis(30),
            ack_delay: Duration::from_secs(1),
            resend_after: Duration::from_secs(2),
        }
    }

    /// Reads `GLOMERS_BROADCAST_MODE` (`messages`, the default, or
    /// `latency`) and `GLOMERS_BROADCAST_ROUND_MS` through `lookup`
    /// (`std::env::var` in `main`, a test's settings in the simulator).
    /// Bad values are reported and replaced by defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let mode = match lookup("GLOMERS_BROADCAST_MODE").as_deref() {
            None | Some("messages") => Mode::Messages,
            Some("latency") => Mode::Latency,
            Some(other) => {
                eprintln!("broadcast: unknown GLOMERS_BROADCAST_MODE {other:?}, using messages");
                Mode::Messages
            }
        };
        let mut config = Config::new(mode);
        if let Some(text) = lookup("GLOMERS_BROADCAST_ROUND_MS") {
            match text.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => config.round = Duration::from_millis(ms),
                _ => eprintln!("broadcast: ignoring GLOMERS_BROADCAST_ROUND_MS={text:?}"),
            }
        }
        config
    }
}

// ----- The node -------------------------------------------------------------------

/// What this node knows about one star neighbour.
#[derive(Debug, Default)]
struct Link {
    /// Everything the peer told us it has.
    has: RangeSet,
    /// Everything we told the peer we have (each message carries our set).
    sent: RangeSet,
    last_send: Duration,
    last_recv: Duration,
}

/// Why a link needs a message now.
#[derive(Debug, PartialEq)]
enum Due {
    Nothing,
    /// Values the peer may lack, or an acknowledgement it is waiting for.
    Send,
    /// A resend after silence: the peer must answer.
    Probe,
}

pub struct BroadcastNode {
    config: Config,
    values: RangeSet,
    hub: NodeId,
    /// Star neighbours: every leaf for the hub, the hub for a leaf.
    links: HashMap<NodeId, Link>,
    /// Appended to before a broadcast is acknowledged, when durable.
    log: Option<File>,
    /// The hub's pending send to the leaves and when it is due.
    hub_flush: Option<(TimerId, Duration)>,
    last_hub_flush: Option<Duration>,
}

impl BroadcastNode {
    pub fn new(config: Config) -> BroadcastNode {
        BroadcastNode {
            config,
            values: RangeSet::default(),
            hub: NodeId::new(),
            links: HashMap::new(),
            log: None,
            hub_flush: None,
            last_hub_flush: None,
        }
    }

    fn is_hub(&self, ctx: &Context<Self>) -> bool {
        ctx.node_id() == self.hub
    }

    /// A broadcast: make it durable, acknowledge it, then spread it.
    fn broadcast(&mut self, ctx: &mut Context<Self>, src: &str, msg_id: Option<u64>, value: i64) {
        if !self.values.contains(value) {
            if let Err(e) = self.persist(value) {
                let text = format!("cannot make the value durable: {e}");
                ctx.reply_error_to(src, msg_id, ErrorCode::TemporarilyUnavailable, &text);
                return;
            }
            self.values.insert(value);
            match self.config.mode {
                Mode::Latency => self.fan_out(ctx),
                // A leaf's value leaves at its next round; the hub's goes
                // with the next batch of leaf values, within a round.
                Mode::Messages if self.is_hub(ctx) => {
                    let round = self.config.round;
                    self.schedule_hub_flush(ctx, round);
                }
                Mode::Messages => {}
            }
        }
        ctx.reply_to(src, msg_id, &Payload::BroadcastOk);
    }

    /// Latency mode: our set, new value included, to every other node.
    fn fan_out(&mut self, ctx: &mut Context<Self>) {
        let peers: Vec<NodeId> = ctx.peers().cloned().collect();
        for peer in peers {
            self.send_sync(ctx, &peer, false);
        }
    }

    fn on_sync(&mut self, ctx: &mut Context<Self>, from: &str, set: RangeSet, reply: bool) {
        // Only star links are tracked: in latency mode every node hears
        // from every other, but only the star's links are kept in sync.
        if let Some(link) = self.links.get_mut(from) {
            link.has.union_with(&set);
            link.last_recv = ctx.now();
        }
        let grew = self.values.union_with(&set);
        if reply {
            self.send_sync(ctx, from, false);
        }
        if grew && self.config.mode == Mode::Messages && self.is_hub(ctx) {
            let gather = self.config.gather;
            self.schedule_hub_flush(ctx, gather);
        }
    }

    /// Sends our whole set to `peer` and remembers that it was told.
    fn send_sync(&mut self, ctx: &mut Context<Self>, peer: &str, reply: bool) {
        let now = ctx.now();
        let payload = Payload::Sync {
            set: self.values.clone(),
            reply,
        };
        ctx.send(peer, &payload);
        if let Some(link) = self.links.get_mut(peer) {
            link.sent.union_with(&self.values);
            link.last_send = now;
        }
    }

    /// The periodic check of every star link: leaves send their new values
    /// (messages mode), and everyone applies the repair rules.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let fresh = self.config.mode == Mode::Messages && !self.is_hub(ctx);
        self.send_due(ctx, fresh);
    }

    /// The hub's send to the leaves after gathering a round's batches.
    fn flush_hub(&mut self, ctx: &mut Context<Self>) {
        self.hub_flush = None;
        self.last_hub_flush = Some(ctx.now());
        self.send_due(ctx, true);
    }

    /// Sends to every star neighbour that needs a message; `fresh` allows
    /// sending values merely because the peer may not have them yet.
    fn send_due(&mut self, ctx: &mut Context<Self>, fresh: bool) {
        let now = ctx.now();
        let mut due: Vec<(NodeId, Due)> = self
            .links
            .iter()
            .map(|(peer, link)| (peer.clone(), self.due(link, now, fresh)))
            .filter(|(_, due)| *due != Due::Nothing)
            .collect();
        // Same order on every run, so a simulation replays exactly.
        due.sort_by(|a, b| a.0.cmp(&b.0));
        for (peer, due) in due {
            self.send_sync(ctx, &peer, due == Due::Probe);
        }
    }

    fn due(&self, link: &Link, now: Duration, fresh: bool) -> Due {
        if fresh && !self.values.is_subset(&link.has.union(&link.sent)) {
            return Due::Send;
        }
        let unconfirmed = !self.values.is_subset(&link.has);
        if unconfirmed && now >= link.last_send + self.config.resend_after {
            return Due::Probe;
        }
        let unacknowledged = !link.has.is_subset(&link.sent);
        if unacknowledged && now >= link.last_recv + self.config.ack_delay {
            return Due::Send;
        }
        Due::Nothing
    }

    /// Makes the hub send to the leaves `delay` from now (or earlier if
    /// already planned), but never twice within half a round: batches that
    /// arrive a little apart still share one send.
    fn schedule_hub_flush(&mut self, ctx: &mut Context<Self>, delay: Duration) {
        let mut at = ctx.now() + delay;
        if let Some(last) = self.last_hub_flush {
            at = at.max(last + self.config.round / 2);
        }
        if let Some((timer, planned)) = self.hub_flush {
            if planned <= at {
                return;
            }
            ctx.cancel_timer(timer);
        }
        let timer = ctx.set_timer(at - ctx.now(), |node: &mut Self, ctx| node.flush_hub(ctx));
        self.hub_flush = Some((timer, at));
    }

    /// Appends `value` to the durable log, if there is one.
    fn persist(&mut self, value: i64) -> std::io::Result<()> {
        match &mut self.log {
            // A completed write survives the process being killed; only a
            // machine crash would need an fsync, which we do not pay for.
            Some(file) => writeln!(file, "{value}"),
            None => Ok(()),
        }
    }

    /// Opens the durable log in `dir`, reloading what an earlier run of this
    /// node acknowledged. Returns whether this node ran there before.
    fn open_log(&mut self, dir: &Path) -> std::io::Result<bool> {
        let path = dir.join("broadcast-acked.log");
        let restarted = path.exists();
        if restarted {
            for line in fs::read_to_string(&path)?.lines() {
                match line.trim().parse::<i64>() {
                    Ok(value) => {
                        self.values.insert(value);
                    }
                    // The last line may be cut short if we died writing it:
                    // that value was never acknowledged.
                    Err(_) => eprintln!("broadcast: skipping log line {line:?}"),
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.log = Some(file);
        Ok(restarted)
    }
}

impl Node for BroadcastNode {
    type Payload = Payload;

    fn init(&mut self, ctx: &mut Context<Self>) {
        self.hub = ctx.node_ids().first().cloned().unwrap_or_default();
        let now = ctx.now();
        let neighbours: Vec<NodeId> = if self.is_hub(ctx) {
            ctx.peers().cloned().collect()
        } else {
            vec![self.hub.clone()]
        };
        for peer in neighbours {
            let link = Link {
                last_send: now,
                last_recv: now,
                ..Link::default()
            };
            self.links.insert(peer, link);
        }
        let restarted = match ctx.data_dir().map(Path::to_path_buf) {
            Some(dir) => self.open_log(&dir).unwrap_or_else(|e| {
                eprintln!("broadcast: no durable log in {}: {e}", dir.display());
                false
            }),
            None => false,
        };
        if restarted {
            // We lost what our neighbours sent us: ask for it again.
            let peers: Vec<NodeId> = self.links.keys().cloned().collect();
            for peer in peers {
                self.send_sync(ctx, &peer, true);
            }
        }
        ctx.repeat(self.config.round, |node: &mut Self, ctx| node.tick(ctx));
    }

    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
        let Message { src, body, .. } = msg;
        let msg_id = body.msg_id;
        match body.payload {
            Payload::Topology { .. } => ctx.reply_to(&src, msg_id, &Payload::TopologyOk),
            Payload::Broadcast { message } => self.broadcast(ctx, &src, msg_id, message),
            Payload::Read => {
                let messages = self.values.iter().collect();
                ctx.reply_to(&src, msg_id, &Payload::ReadOk { messages });
            }
            Payload::Sync { set, reply } => self.on_sync(ctx, &src, set, reply),
            Payload::TopologyOk | Payload::BroadcastOk | Payload::ReadOk { .. } => {}
        }
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_lookup(|name| std::env::var(name).ok());
    glomers::run(BroadcastNode::new(config))
}

// ----- A set of integers as ranges ----------------------------------------------

/// A set of integers stored as sorted, disjoint, non-adjacent inclusive
/// ranges; on the wire, a list of `[lo, hi]` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(i64, i64)>,
}

impl RangeSet {
    /// A set from any list of ranges (overlapping, unsorted); `None` if a
    /// range is reversed.
    pub fn from_ranges(mut ranges: Vec<(i64, i64)>) -> Option<RangeSet> {
        if ranges.iter().any(|(lo, hi)| lo > hi) {
            return None;
        }
        ranges.sort_unstable();
        let mut set = RangeSet::default();
        for range in ranges {
            set.push(range);
        }
        Some(set)
    }

    /// Appends a range that starts at or after the last one's start.
    fn push(&mut self, (lo, hi): (i64, i64)) {
        match self.ranges.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => self.ranges.push((lo, hi)),
        }
    }

    pub fn contains(&self, value: i64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < value);
        self.ranges.get(i).is_some_and(|r| r.0 <= value)
    }

    /// Adds `value`; true if it was new.
    pub fn insert(&mut self, value: i64) -> bool {
        if self.contains(value) {
            return false;
        }
        self.union_with(&RangeSet {
            ranges: vec![(value, value)],
        });
        true
    }

    /// Adds every value of `other`; true if the set grew.
    pub fn union_with(&mut self, other: &RangeSet) -> bool {
        if other.is_subset(self) {
            return false;
        }
        *self = self.union(other);
        true
    }

    pub fn union(&self, other: &RangeSet) -> RangeSet {
        let mut merged = RangeSet::default();
        let (mut a, mut b) = (
            self.ranges.iter().peekable(),
            other.ranges.iter().peekable(),
        );
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, _) => b.next(),
            };
            match next {
                Some(range) => merged.push(*range),
                None => return merged,
            }
        }
    }

    pub fn is_subset(&self, other: &RangeSet) -> bool {
        // Ranges are maximal, so each of ours must fit inside one of theirs.
        let mut theirs = other.ranges.iter().peekable();
        self.ranges.iter().all(|&(lo, hi)| {
            while theirs.next_if(|r| r.1 < lo).is_some() {}
            theirs.peek().is_some_and(|r| r.0 <= lo && hi <= r.1)
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.ranges.iter().flat_map(|&(lo, hi)| lo..=hi)
    }
}

impl Serialize for RangeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ranges.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RangeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ranges = Vec::<(i64, i64)>::deserialize(deserializer)?;
        RangeSet::from_ranges(ranges)
            .ok_or_else(|| serde::de::Error::custom("a range's start is after its end"))
    }
}
