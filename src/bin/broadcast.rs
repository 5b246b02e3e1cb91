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
//!   whatever the load, and a value waits at most one round, two network
//!   hops and the gather: at the challenge's flags about 0.83 messages per
//!   operation and 450 / 725 ms median / max stable latency. A longer round
//!   trades latency for messages (700 ms: 0.63 messages, 525 / 921 ms).
//! - Latency mode (challenge 3d, `GLOMERS_BROADCAST_MODE=latency`). The
//!   node that receives a broadcast sends its set to every other node at
//!   once: one hop, so every node has the value 100 ms after it was acked
//!   (88 / 99 ms median / max stable latency), for one message per peer
//!   (about 11.9 messages per operation). The star only repairs what
//!   partitions dropped.
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
//! repairs stop); routing around a cut-off hub would cost messages in every
//! partition for latency that no target asks for.
//!
//! What a crash costs. An acknowledged value must survive its node dying
//! right after the ack: when the host gives us a data directory (our runner
//! does; Maelstrom, which never kills nodes, does not) the node appends the
//! value to a log there before acknowledging it, which costs a `write` per
//! broadcast and no latency worth measuring. A node restarted with its
//! memory wiped finds its log, reloads its own values and asks its star
//! neighbours for their sets: everything is back within one round trip.
//! (Acknowledging only once the hub has the value would need no disk but
//! add a round and a hop, about 700 ms, to every broadcast.)

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use glomers::journal::Journal;
use glomers::{Context, ErrorCode, Message, Node, NodeId, TimerId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most values a node holds. A `read` lists them all, so a set has to
/// stay small enough to print: a sync whose set would take the node past
/// this is ignored (one range on the wire can claim 2^64 values), and a
/// broadcast past it is refused. Maelstrom's workloads stay far below.
pub const MAX_VALUES: u64 = 1 << 20;

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
    log: Option<Journal<i64>>,
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
        if self.values.contains(value) {
            ctx.reply_to(src, msg_id, &Payload::BroadcastOk);
            return;
        }
        if self.values.count() >= MAX_VALUES {
            let text = format!("this node holds {MAX_VALUES} values, its most");
            ctx.reply_error_to(src, msg_id, ErrorCode::Abort, &text);
            return;
        }
        if let Err(e) = self.persist(value) {
            let text = format!("cannot make the value durable: {e}");
            ctx.reply_error_to(src, msg_id, ErrorCode::TemporarilyUnavailable, &text);
            return;
        }
        self.values.insert(value);
        ctx.reply_to(src, msg_id, &Payload::BroadcastOk);
        // In messages mode the value waits for the next round.
        if self.config.mode == Mode::Latency {
            self.fan_out(ctx);
        }
    }

    /// Latency mode: our set, new value included, to every other node.
    fn fan_out(&mut self, ctx: &mut Context<Self>) {
        let peers: Vec<NodeId> = ctx.peers().cloned().collect();
        for peer in peers {
            self.send_sync(ctx, &peer, false);
        }
    }

    fn on_sync(&mut self, ctx: &mut Context<Self>, from: &str, set: RangeSet, reply: bool) {
        // Only nodes sync (answering anyone else could mean writing to an
        // endpoint Maelstrom has closed).
        if !ctx.node_ids().iter().any(|node| node == from) {
            return;
        }
        if self.values.union(&set).count() > MAX_VALUES {
            eprintln!("broadcast: ignoring a sync from {from} past {MAX_VALUES} values");
            return;
        }
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
        let batching = self.config.mode == Mode::Messages;
        let hub = self.is_hub(ctx);
        self.send_due(ctx, batching && !hub);
        // The hub's own values normally go with the round's leaf batches,
        // which arrive a network hop after the tick; if none come, they go
        // on their own half a round later, between two rounds' batches.
        if batching
            && hub
            && self.hub_flush.is_none()
            && self.links.values().any(|link| self.is_fresh(link))
        {
            let half = self.config.round / 2;
            self.schedule_hub_flush(ctx, half);
        }
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

    /// True if we have values the peer may lack that we never sent it.
    fn is_fresh(&self, link: &Link) -> bool {
        !self.values.is_subset(&link.has.union(&link.sent))
    }

    fn due(&self, link: &Link, now: Duration, fresh: bool) -> Due {
        if fresh && self.is_fresh(link) {
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
            // One write per line: a completed write survives the process
            // being killed (only a machine crash would need an fsync, which
            // we do not pay for), and a line cut short has no newline.
            Some(log) => log.append(&value),
            None => Ok(()),
        }
    }

    /// Opens the durable log in `dir`, reloading what an earlier run of this
    /// node acknowledged. Returns whether this node ran there before.
    fn open_log(&mut self, dir: &Path) -> std::io::Result<bool> {
        let path = dir.join("broadcast-acked.log");
        let restarted = path.exists();
        // A last line cut short by a crash was never acknowledged: the
        // journal drops it, so the next line starts clean.
        let (log, values) = Journal::open(&path)?;
        for value in values {
            self.values.insert(value);
        }
        self.log = Some(log);
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

    /// The number of values (saturating: one range may hold 2^64).
    pub fn count(&self) -> u64 {
        self.ranges.iter().fold(0, |n: u64, &(lo, hi)| {
            n.saturating_add(hi.abs_diff(lo)).saturating_add(1)
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use glomers::Runtime;
    use serde_json::{Value, json};
    use std::fs::OpenOptions;
    use std::io::Write;

    const NODES: [&str; 3] = ["n0", "n1", "n2"];

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// A started node of a three-node cluster (n0 is the hub), output cleared.
    fn start(id: &str, mode: Mode) -> Runtime<BroadcastNode> {
        start_in(id, mode, None)
    }

    fn start_in(id: &str, mode: Mode, dir: Option<&Path>) -> Runtime<BroadcastNode> {
        let node = BroadcastNode::new(Config::new(mode));
        let mut rt = Runtime::new(node, 1).with_data_dir(dir.map(Path::to_path_buf));
        let init = json!({"src": "c0", "dest": id, "body":
            {"type": "init", "msg_id": 1, "node_id": id, "node_ids": NODES}});
        rt.handle_line(&init.to_string(), Duration::ZERO).unwrap();
        rt.take_output();
        rt
    }

    /// Delivers `body` from `src` at `at`, returning what the node sent.
    fn deliver(
        rt: &mut Runtime<BroadcastNode>,
        src: &str,
        body: Value,
        at: Duration,
    ) -> Vec<Value> {
        let dest = rt.context().node_id().to_string();
        let line = json!({"src": src, "dest": dest, "body": body});
        rt.handle_line(&line.to_string(), at).unwrap();
        output(rt)
    }

    /// Fires the timers due by `at`, returning what the node sent.
    fn advance(rt: &mut Runtime<BroadcastNode>, at: Duration) -> Vec<Value> {
        rt.fire_timers(at);
        output(rt)
    }

    fn output(rt: &mut Runtime<BroadcastNode>) -> Vec<Value> {
        String::from_utf8(rt.take_output())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The syncs among `out`: (destination, set, reply asked).
    fn syncs(out: &[Value]) -> Vec<(String, Value, bool)> {
        out.iter()
            .filter(|m| m["body"]["type"] == "sync")
            .map(|m| {
                let reply = m["body"]["reply"].as_bool().unwrap_or(false);
                (
                    m["dest"].as_str().unwrap().to_string(),
                    m["body"]["set"].clone(),
                    reply,
                )
            })
            .collect()
    }

    fn set(values: &[i64]) -> RangeSet {
        let mut set = RangeSet::default();
        for v in values {
            set.insert(*v);
        }
        set
    }

    #[test]
    fn range_sets_merge_adjacent_values_and_compare() {
        let s = set(&[5, 1, 3, 2, 7]);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!([[1, 3], [5, 5], [7, 7]])
        );
        assert_eq!(s.iter().collect::<Vec<_>>(), [1, 2, 3, 5, 7]);
        assert_eq!(s.count(), 5);
        assert_eq!(RangeSet::default().count(), 0);
        let all = RangeSet::from_ranges(vec![(i64::MIN, i64::MAX)]).unwrap();
        assert_eq!(all.count(), u64::MAX);
        let mut t = s.clone();
        assert!(t.union_with(&set(&[4, 6])));
        assert!(!t.union_with(&s));
        assert_eq!(serde_json::to_value(&t).unwrap(), json!([[1, 7]]));
        assert!(s.is_subset(&t) && !t.is_subset(&s));
        assert!(RangeSet::default().is_subset(&s));
        assert!(set(&[1, 2]).is_subset(&set(&[1, 2])));
        assert!(!set(&[3, 4]).is_subset(&set(&[1, 3, 5])));
        assert_eq!(s.union(&set(&[0])), set(&[0, 1, 2, 3, 5, 7]));
    }

    #[test]
    fn range_sets_take_extreme_values_and_reject_reversed_ranges() {
        let s = set(&[i64::MAX, i64::MIN, i64::MAX - 1]);
        assert!(s.contains(i64::MAX) && s.contains(i64::MIN) && !s.contains(0));
        assert_eq!(s.iter().count(), 3);
        let decoded: RangeSet = serde_json::from_value(json!([[9, 12], [1, 2], [3, 4]])).unwrap();
        assert_eq!(
            decoded,
            RangeSet::from_ranges(vec![(1, 4), (9, 12)]).unwrap()
        );
        assert!(serde_json::from_value::<RangeSet>(json!([[2, 1]])).is_err());
    }

    #[test]
    fn a_single_node_acknowledges_and_reads_exactly() {
        let mut rt = start("n0", Mode::Messages);
        let topology = json!({"type": "topology", "msg_id": 2, "topology": {"n0": ["n1"]}});
        let out = deliver(&mut rt, "c1", topology, ms(1));
        assert_eq!(
            out[0]["body"],
            json!({"type": "topology_ok", "in_reply_to": 2})
        );
        for (msg_id, value) in [(3, 7), (4, 3), (5, 7)] {
            let body = json!({"type": "broadcast", "msg_id": msg_id, "message": value});
            let out = deliver(&mut rt, "c1", body, ms(2));
            assert_eq!(
                out,
                [json!({"src": "n0", "dest": "c1",
                    "body": {"type": "broadcast_ok", "in_reply_to": msg_id}})]
            );
        }
        let out = deliver(&mut rt, "c1", json!({"type": "read", "msg_id": 6}), ms(3));
        assert_eq!(
            out[0]["body"],
            json!({"type": "read_ok", "messages": [3, 7], "in_reply_to": 6})
        );
    }

    #[test]
    fn bad_requests_get_errors_not_panics() {
        let mut rt = start("n1", Mode::Messages);
        let body = json!({"type": "broadcast", "msg_id": 2, "message": "seven"});
        assert_eq!(deliver(&mut rt, "c1", body, ms(1))[0]["body"]["code"], 12);
        let body = json!({"type": "sync", "set": [[3, 1]]});
        assert!(deliver(&mut rt, "n0", body, ms(1)).is_empty());
        let out = deliver(&mut rt, "c1", json!({"type": "read", "msg_id": 3}), ms(1));
        assert_eq!(out[0]["body"]["messages"], json!([]));
    }

    #[test]
    fn a_node_holds_no_more_values_than_a_read_can_list() {
        let mut rt = start("n1", Mode::Messages);
        // One range can claim more values than any reply could list.
        for set in [json!([[0, i64::MAX]]), json!([[i64::MIN, i64::MAX]])] {
            let body = json!({"type": "sync", "set": set});
            assert!(deliver(&mut rt, "n0", body, ms(1)).is_empty());
            let out = deliver(&mut rt, "c1", json!({"type": "read", "msg_id": 3}), ms(1));
            assert_eq!(out[0]["body"]["messages"], json!([]));
        }
        // Up to the limit is fine; past it, syncs are ignored and new
        // broadcasts refused.
        let max = MAX_VALUES as i64;
        let body = json!({"type": "sync", "set": [[1, max - 1]]});
        deliver(&mut rt, "n0", body, ms(2));
        let body = json!({"type": "sync", "set": [[max + 1, max + 2]]});
        deliver(&mut rt, "n0", body, ms(2));
        assert_eq!(rt.node().values.count(), MAX_VALUES - 1);
        let body = json!({"type": "broadcast", "msg_id": 4, "message": 0});
        let out = deliver(&mut rt, "c1", body, ms(3));
        assert_eq!(out[0]["body"]["type"], "broadcast_ok");
        let body = json!({"type": "broadcast", "msg_id": 5, "message": -1});
        let out = deliver(&mut rt, "c1", body, ms(3));
        assert_eq!(out[0]["body"]["code"], 14);
        let body = json!({"type": "broadcast", "msg_id": 6, "message": 5});
        let out = deliver(&mut rt, "c1", body, ms(3));
        assert_eq!(out[0]["body"]["type"], "broadcast_ok");
        assert_eq!(rt.node().values.count(), MAX_VALUES);
    }

    #[test]
    fn a_leaf_sends_its_new_values_to_the_hub_at_the_next_round() {
        let mut rt = start("n1", Mode::Messages);
        deliver(
            &mut rt,
            "c1",
            json!({"type": "broadcast", "msg_id": 2, "message": 4}),
            ms(10),
        );
        assert!(advance(&mut rt, ms(499)).is_empty());
        assert_eq!(
            syncs(&advance(&mut rt, ms(500))),
            [("n0".into(), json!([[4, 4]]), false)]
        );
        // Nothing new: the next round is silent.
        assert!(advance(&mut rt, ms(1000)).is_empty());
    }

    #[test]
    fn the_hub_gathers_a_rounds_batches_into_one_send_per_leaf() {
        let mut rt = start("n0", Mode::Messages);
        deliver(
            &mut rt,
            "n1",
            json!({"type": "sync", "set": [[1, 1]]}),
            ms(600),
        );
        deliver(
            &mut rt,
            "n2",
            json!({"type": "sync", "set": [[2, 2]]}),
            ms(605),
        );
        assert!(advance(&mut rt, ms(629)).is_empty());
        let out = syncs(&advance(&mut rt, ms(630)));
        assert_eq!(
            out,
            [
                ("n1".into(), json!([[1, 2]]), false),
                ("n2".into(), json!([[1, 2]]), false)
            ]
        );
        // A leaf that already has everything gets nothing.
        deliver(
            &mut rt,
            "n1",
            json!({"type": "sync", "set": [[1, 3]]}),
            ms(1100),
        );
        assert_eq!(
            syncs(&advance(&mut rt, ms(1400))),
            [("n2".into(), json!([[1, 3]]), false)]
        );
    }

    #[test]
    fn latency_mode_sends_a_new_value_to_every_node_at_once() {
        let mut rt = start("n2", Mode::Latency);
        let out = deliver(
            &mut rt,
            "c1",
            json!({"type": "broadcast", "msg_id": 2, "message": 9}),
            ms(5),
        );
        assert_eq!(out[0]["body"]["type"], "broadcast_ok");
        assert_eq!(
            syncs(&out),
            [
                ("n0".into(), json!([[9, 9]]), false),
                ("n1".into(), json!([[9, 9]]), false)
            ]
        );
    }

    #[test]
    fn an_unconfirmed_send_is_retried_with_a_request_to_answer() {
        let mut rt = start("n1", Mode::Messages);
        deliver(
            &mut rt,
            "c1",
            json!({"type": "broadcast", "msg_id": 2, "message": 4}),
            ms(10),
        );
        assert_eq!(syncs(&advance(&mut rt, ms(500))).len(), 1);
        // The hub never answers (a partition): ask again after 2 s.
        assert!(advance(&mut rt, ms(2000)).is_empty());
        assert_eq!(
            syncs(&advance(&mut rt, ms(2500))),
            [("n0".into(), json!([[4, 4]]), true)]
        );
        // The hub answers with what it has, and we are done.
        let out = deliver(
            &mut rt,
            "n0",
            json!({"type": "sync", "set": [[4, 5]]}),
            ms(2700),
        );
        assert!(out.is_empty());
        let read = deliver(
            &mut rt,
            "c1",
            json!({"type": "read", "msg_id": 3}),
            ms(2700),
        );
        assert_eq!(read[0]["body"]["messages"], json!([4, 5]));
        // Value 5 came from the hub: we tell it we have it once it goes quiet.
        assert!(advance(&mut rt, ms(3500)).is_empty());
        assert_eq!(
            syncs(&advance(&mut rt, ms(4000))),
            [("n0".into(), json!([[4, 5]]), false)]
        );
        assert!(advance(&mut rt, ms(30_000)).is_empty());
    }

    #[test]
    fn only_nodes_sync() {
        let mut rt = start("n2", Mode::Messages);
        let body = json!({"type": "sync", "set": [[1, 1]], "reply": true});
        assert!(deliver(&mut rt, "c4", body, ms(1)).is_empty());
        let read = deliver(&mut rt, "c1", json!({"type": "read", "msg_id": 3}), ms(1));
        assert_eq!(read[0]["body"]["messages"], json!([]));
    }

    #[test]
    fn a_request_to_answer_is_answered_at_once() {
        let mut rt = start("n2", Mode::Messages);
        let out = deliver(
            &mut rt,
            "n0",
            json!({"type": "sync", "set": [], "reply": true}),
            ms(1),
        );
        assert_eq!(syncs(&out), [("n0".into(), json!([]), false)]);
    }

    #[test]
    fn a_restarted_node_reloads_its_acknowledged_values_and_asks_for_the_rest() {
        let dir = std::env::temp_dir().join(format!("glomers-broadcast-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut rt = start_in("n1", Mode::Messages, Some(&dir));
        deliver(
            &mut rt,
            "c1",
            json!({"type": "broadcast", "msg_id": 2, "message": 8}),
            ms(10),
        );
        drop(rt); // killed before its round: 8 reached nobody
        let mut rt = Runtime::new(BroadcastNode::new(Config::new(Mode::Messages)), 1)
            .with_data_dir(Some(dir.clone()));
        let init = json!({"src": "c0", "dest": "n1", "body":
            {"type": "init", "msg_id": 1, "node_id": "n1", "node_ids": NODES}});
        rt.handle_line(&init.to_string(), Duration::ZERO).unwrap();
        assert_eq!(
            syncs(&output(&mut rt)),
            [("n0".into(), json!([[8, 8]]), true)]
        );
        let read = deliver(&mut rt, "c1", json!({"type": "read", "msg_id": 3}), ms(1));
        assert_eq!(read[0]["body"]["messages"], json!([8]));
        drop(rt);
        // Killed while writing 9: it was never acknowledged, and is dropped.
        let log = dir.join("broadcast-acked.log");
        OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"9")
            .unwrap();
        let mut rt = start_in("n1", Mode::Messages, Some(&dir));
        deliver(
            &mut rt,
            "c1",
            json!({"type": "broadcast", "msg_id": 2, "message": 10}),
            ms(10),
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "8\n10\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn knobs_come_from_the_lookup() {
        let config = Config::from_lookup(|name| match name {
            "GLOMERS_BROADCAST_MODE" => Some("latency".into()),
            "GLOMERS_BROADCAST_ROUND_MS" => Some("250".into()),
            _ => None,
        });
        assert_eq!((config.mode, config.round), (Mode::Latency, ms(250)));
        let config = Config::from_lookup(|_| Some("nonsense".into()));
        assert_eq!((config.mode, config.round), (Mode::Messages, ms(500)));
    }
}
