//! Challenges 5a-5c, a Kafka-style log: `send` appends a message to a key's
//! log and returns its offset, `poll` reads logs from given offsets, and
//! `commit_offsets` / `list_committed_offsets` keep consumers' positions.
//!
//! Every request is answered by the node that receives it, at once, with no
//! message to anyone, except `list_committed_offsets` (one round trip to
//! the peers). What makes that possible:
//!
//! - **Offsets need no coordination.** Each node reads offsets off its own
//!   clock, in ticks (microseconds since it started, pushed forward to the
//!   highest tick it has heard of, never back): a message sent to node `i`
//!   of `n` at tick `t` gets offset `t * n + i`. No two nodes pick the same
//!   offset and each node's offsets grow, so every client's sends do too.
//! - **A poll only shows what can no longer change.** Offsets of different
//!   nodes interleave, so a message may only be handed out once no node can
//!   still send one below it. Each node promises a tick it will never use
//!   again and tells the others; every node holds all messages below the
//!   smallest promise it knows of (the *stable tick*) and polls return only
//!   those. A poll therefore returns a run with no holes starting at the
//!   requested offset, and the order it shows is final.
//! - **Replication is a feed.** A node appends everything it learns (its
//!   own and others' messages, committed offsets) to its feed, and every
//!   50 ms sends each peer the part that peer has not acknowledged, with its
//!   promises and what it knows of everyone else's. Feeds are relayed, so a
//!   connected path between two nodes is enough. Idle nodes stay silent.
//! - **Committed offsets** are a max per key: recorded locally, spread on
//!   the feed; `list_committed_offsets` also asks every peer, so an offset
//!   committed at any reachable node before it started is in its answer.
//!
//! Trade-offs. Messages: none per send, poll or commit; `2(n-1)` per
//! `list_committed_offsets` (an assign, about one operation in 64); about
//! `n(n-1)` syncs per 50 ms while busy (5c: 0.07 per operation in all).
//! Latency: every reply is immediate; a message becomes pollable, on every
//! node, about one sync interval after it was sent.
//!
//! Partitions: everything stays available and nothing is lost or
//! reordered, but a node that cannot hear (even through relays) from every
//! other node cannot move its stable tick: its polls return older messages
//! only, and catch up when the network heals. `list_committed_offsets`
//! answers with what it knows (after 100 ms the first time; later ones skip
//! the silent peers), which may be lower than the truth: a consumer then
//! re-reads, it never skips.
//!
//! Crashes: with a data directory, the node journals each message, commit
//! and clock reservation before acknowledging or promising anything, and
//! replays the journal when it restarts; peers then resend their feeds, so
//! nothing acknowledged is lost. While a node is down, the others' stable
//! ticks stop at its last promise (new messages wait for its return). With
//! no data directory (real Maelstrom, which never kills nodes) a wiped node
//! gets everything back from its peers except sends it acknowledged during
//! its last sync interval, and may reuse offsets of those.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::time::Duration;

use glomers::journal::Journal;
use glomers::{Context, ErrorCode, Message, Node, RpcError};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How often a node brings its peers up to date.
const SYNC_INTERVAL: Duration = Duration::from_millis(50);
/// At most this many feed entries in one sync message.
const MAX_BATCH: usize = 1000;
/// How long `list_committed_offsets` waits for peers before answering.
const LIST_TIMEOUT: Duration = Duration::from_millis(100);
/// Clock ticks reserved in the journal at once (one second), so a restarted
/// node resumes past every tick it used or promised.
const RESERVE: u64 = 1_000_000;
/// Ticks are microseconds: 2^52 of them is 142 years, which no clock
/// reaches. A sync carrying a tick past it (a promise, a need, a message's
/// offset) comes from a broken peer and is ignored, so that the clock stays
/// far from where `tick + RESERVE` and `tick * n + i` overflow.
const MAX_TICK: u64 = 1 << 52;

/// Committed (or requested) offsets by key.
pub type Offsets = BTreeMap<String, i64>;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Send {
        key: String,
        msg: Value,
    },
    SendOk {
        offset: u64,
    },
    Poll {
        offsets: Offsets,
    },
    PollOk {
        msgs: BTreeMap<String, Vec<(u64, Value)>>,
    },
    CommitOffsets {
        offsets: Offsets,
    },
    CommitOffsetsOk,
    ListCommittedOffsets {
        keys: Vec<String>,
    },
    ListCommittedOffsetsOk {
        offsets: Offsets,
    },
    /// Node to node: a peer's committed offsets, asked for by
    /// `list_committed_offsets`.
    ReadCommitted {
        keys: Vec<String>,
    },
    ReadCommittedOk {
        offsets: Offsets,
    },
    /// Node to node, no reply: a piece of the sender's feed.
    Sync(SyncMsg),
}

/// One thing a node learned: a message at an offset, or a committed offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    Msg(String, u64, Value),
    Commit(String, i64),
}

/// The peer (node index) and that peer's feed an entry came from, so it is
/// not sent back.
type Via = (usize, u64);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncMsg {
    /// The sender's feed id, and the feed positions `from..to` covered.
    feed: u64,
    from: usize,
    to: usize,
    /// The entries in that range, less those the receiver sent first.
    entries: Vec<Entry>,
    /// Per node, a tick up to which the sender holds all of that node's
    /// messages; its own slot is its promise.
    known: Vec<u64>,
    /// `to` is the end of the sender's feed, so `known` may be adopted.
    complete: bool,
    /// The highest tick the sender holds but cannot serve yet (0: none).
    need: u64,
    /// How much of the receiver's feed the sender has: (feed id, position).
    ack: Option<(u64, usize)>,
}

#[derive(Deserialize)]
struct CommittedReply {
    offsets: Offsets,
}

#[derive(Default)]
pub struct KafkaNode {
    me: usize,
    n: usize,
    logs: HashMap<String, BTreeMap<u64, Value>>,
    committed: HashMap<String, i64>,
    clock: Clock,
    /// `known[o]`: this node holds every message of node `o` whose tick is
    /// at most this (its own slot is unused: the clock's floor says it).
    known: Vec<u64>,
    /// The highest tick of any message held.
    highest_tick: u64,
    feed: Vec<(Entry, Option<Via>)>,
    feed_id: u64,
    peers: BTreeMap<usize, Peer>,
    lists: HashMap<u64, PendingList>,
    next_list: u64,
    journal: Option<Journal<Record>>,
}

/// What a node knows about one peer.
#[derive(Default)]
struct Peer {
    id: String,
    /// How much of our feed the peer last said it has.
    acked: usize,
    /// The peer's feed id, and how much of that feed we have applied.
    feed: u64,
    applied: usize,
    /// We received entries and have not acknowledged them yet.
    ack_due: bool,
    /// It did not answer our last request and has not been heard from since.
    silent: bool,
    /// The peer's last reported need and `known` vector (updated when we
    /// send it ours, assuming it arrives; the peer's next report corrects).
    need: u64,
    view: Vec<u64>,
}

impl Peer {
    fn new(id: String, n: usize) -> Peer {
        Peer {
            id,
            // The first sync says hello, so that the peers of a restarted
            // node learn it needs their feeds again.
            ack_due: true,
            view: vec![0; n],
            ..Peer::default()
        }
    }
}

/// A `list_committed_offsets` waiting for peers.
struct PendingList {
    client: String,
    msg_id: Option<u64>,
    keys: Vec<String>,
    waiting: usize,
}

impl Node for KafkaNode {
    type Payload = Payload;

    fn init(&mut self, ctx: &mut Context<Self>) {
        let ids = ctx.node_ids().to_vec();
        self.me = ids.iter().position(|id| id == ctx.node_id()).unwrap_or(0);
        self.n = ids.len().max(1);
        self.known = vec![0; self.n];
        for (i, id) in ids.into_iter().enumerate().filter(|(i, _)| *i != self.me) {
            self.peers.insert(i, Peer::new(id, self.n));
        }
        // Below 2^53, so the id survives any JSON parser; never 0 ("none").
        self.feed_id = (ctx.rng().random::<u64>() >> 11) | 1;
        if let Some(dir) = ctx.data_dir().map(Path::to_path_buf) {
            self.open_journal(ctx, &dir);
        }
        ctx.repeat(SYNC_INTERVAL, |node: &mut KafkaNode, ctx| {
            node.sync_all(ctx)
        });
    }

    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
        let (src, id) = (msg.src, msg.body.msg_id);
        match msg.body.payload {
            Payload::Send { key, msg } => match self.send(ctx, key, msg) {
                Ok(offset) => ctx.reply_to(&src, id, &Payload::SendOk { offset }),
                Err(e) => ctx.reply_error_to(&src, id, ErrorCode::Crash, &e.to_string()),
            },
            Payload::Poll { offsets } => {
                let msgs = self.poll(ctx, &offsets);
                ctx.reply_to(&src, id, &Payload::PollOk { msgs });
            }
            Payload::CommitOffsets { offsets } => match self.commit(offsets, None) {
                Ok(()) => ctx.reply_to(&src, id, &Payload::CommitOffsetsOk),
                // Indefinite on purpose: a definite error would let the
                // client skip messages.
                Err(e) => ctx.reply_error_to(&src, id, ErrorCode::Crash, &e.to_string()),
            },
            Payload::ListCommittedOffsets { keys } => self.list_committed(ctx, src, id, keys),
            Payload::ReadCommitted { keys } => {
                let offsets = self.committed_of(&keys);
                ctx.reply_to(&src, id, &Payload::ReadCommittedOk { offsets });
            }
            Payload::Sync(sync) => self.on_sync(ctx, &src, sync),
            Payload::SendOk { .. }
            | Payload::PollOk { .. }
            | Payload::CommitOffsetsOk
            | Payload::ListCommittedOffsetsOk { .. }
            | Payload::ReadCommittedOk { .. } => {}
        }
    }
}

// Client requests.
impl KafkaNode {
    fn send(&mut self, ctx: &mut Context<Self>, key: String, msg: Value) -> io::Result<u64> {
        let tick = self.clock.next(ctx.now());
        self.reserve()?;
        let offset = tick
            .saturating_mul(self.n as u64)
            .saturating_add(self.me as u64);
        self.learn(Entry::Msg(key, offset, msg), None)?;
        Ok(offset)
    }

    /// Each requested log from its offset up to the stable tick; logs with
    /// nothing to return are left out.
    fn poll(
        &mut self,
        ctx: &mut Context<Self>,
        offsets: &Offsets,
    ) -> BTreeMap<String, Vec<(u64, Value)>> {
        let n = self.n as u64;
        let last = self
            .stable_tick(ctx)
            .saturating_mul(n)
            .saturating_add(n - 1);
        let mut msgs = BTreeMap::new();
        for (key, &from) in offsets {
            let from = from.max(0) as u64;
            let Some(log) = self.logs.get(key).filter(|_| from <= last) else {
                continue;
            };
            let found: Vec<(u64, Value)> = log
                .range(from..=last)
                .map(|(offset, msg)| (*offset, msg.clone()))
                .collect();
            if !found.is_empty() {
                msgs.insert(key.clone(), found);
            }
        }
        msgs
    }

    fn commit(&mut self, offsets: Offsets, via: Option<Via>) -> io::Result<()> {
        for (key, offset) in offsets {
            self.learn(Entry::Commit(key, offset), via)?;
        }
        Ok(())
    }

    fn committed_of(&self, keys: &[String]) -> Offsets {
        keys.iter()
            .filter_map(|k| Some((k.clone(), *self.committed.get(k)?)))
            .collect()
    }

    /// Asks the peers for their committed offsets first, so that a commit
    /// acknowledged by any reachable node is in the answer. Peers that did
    /// not answer last time and have not been heard from since are
    /// skipped: during a partition, only the first list waits.
    fn list_committed(
        &mut self,
        ctx: &mut Context<Self>,
        client: String,
        msg_id: Option<u64>,
        keys: Vec<String>,
    ) {
        let list = self.next_list;
        self.next_list += 1;
        let request = Payload::ReadCommitted { keys: keys.clone() };
        let peers: Vec<(usize, String)> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.silent)
            .map(|(i, p)| (*i, p.id.clone()))
            .collect();
        let pending = PendingList {
            client,
            msg_id,
            keys,
            waiting: peers.len(),
        };
        self.lists.insert(list, pending);
        for (i, peer) in peers {
            ctx.rpc(
                &peer,
                &request,
                LIST_TIMEOUT,
                move |node: &mut Self, ctx, reply| node.peer_listed(ctx, list, i, reply),
            );
        }
        self.finish_list(ctx, list);
    }

    fn peer_listed(
        &mut self,
        ctx: &mut Context<Self>,
        list: u64,
        peer: usize,
        reply: Result<CommittedReply, RpcError>,
    ) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.silent = reply.is_err();
        }
        if let Ok(reply) = reply {
            let via = self.peers.get(&peer).map(|p| (peer, p.feed));
            if let Err(e) = self.commit(reply.offsets, via) {
                eprintln!("kafka: could not record a peer's commits: {e}");
            }
        }
        if let Some(pending) = self.lists.get_mut(&list) {
            pending.waiting = pending.waiting.saturating_sub(1);
        }
        self.finish_list(ctx, list);
    }

    fn finish_list(&mut self, ctx: &mut Context<Self>, list: u64) {
        if self.lists.get(&list).is_some_and(|p| p.waiting == 0) {
            let pending = self.lists.remove(&list).expect("just seen");
            let offsets = self.committed_of(&pending.keys);
            let reply = Payload::ListCommittedOffsetsOk { offsets };
            ctx.reply_to(&pending.client, pending.msg_id, &reply);
        }
    }
}

// What the node holds, and what it may show.
impl KafkaNode {
    /// Records an entry unless already known: journal first, then memory
    /// and the feed. Returns whether it was new.
    fn learn(&mut self, entry: Entry, via: Option<Via>) -> io::Result<bool> {
        if !self.is_new(&entry) {
            return Ok(false);
        }
        if let Some(journal) = &mut self.journal {
            journal.append(&Record::Learned(entry.clone(), via))?;
        }
        self.apply(&entry);
        self.feed.push((entry, via));
        Ok(true)
    }

    fn is_new(&self, entry: &Entry) -> bool {
        match entry {
            Entry::Msg(key, offset, msg) => match self.logs.get(key).and_then(|l| l.get(offset)) {
                None => true,
                Some(held) => {
                    if held != msg {
                        eprintln!("kafka: two messages at {key}/{offset}; keeping the first");
                    }
                    false
                }
            },
            Entry::Commit(key, offset) => self.committed.get(key).is_none_or(|c| offset > c),
        }
    }

    fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::Msg(key, offset, msg) => {
                let log = self.logs.entry(key.clone()).or_default();
                log.insert(*offset, msg.clone());
                self.highest_tick = self.highest_tick.max(offset / self.n as u64);
            }
            Entry::Commit(key, offset) => {
                self.committed.insert(key.clone(), *offset);
            }
        }
    }

    /// The highest tick below which this node holds every message there
    /// will ever be. Promises the node's own part.
    fn stable_tick(&mut self, ctx: &Context<Self>) -> u64 {
        let own = self.clock.promise(ctx.now(), 0);
        self.reserve_or_log();
        let others = self.known.iter().enumerate().filter(|(o, _)| *o != self.me);
        others.map(|(_, tick)| *tick).fold(own, u64::min)
    }

    /// The highest tick held but not yet stable (0 if everything is).
    fn need(&mut self, ctx: &Context<Self>) -> u64 {
        let stable = self.stable_tick(ctx);
        if self.highest_tick > stable {
            self.highest_tick
        } else {
            0
        }
    }

    /// Journals a new reservation once the clock's floor passes the last.
    fn reserve(&mut self) -> io::Result<()> {
        if self.clock.floor <= self.clock.reserved {
            return Ok(());
        }
        let reserved = self.clock.floor + RESERVE;
        if let Some(journal) = &mut self.journal {
            journal.append(&Record::Reserve(reserved))?;
        }
        self.clock.reserved = reserved;
        Ok(())
    }

    fn reserve_or_log(&mut self) {
        if let Err(e) = self.reserve() {
            eprintln!("kafka: could not journal a clock reservation: {e}");
        }
    }
}

// Replication.
impl KafkaNode {
    fn sync_all(&mut self, ctx: &mut Context<Self>) {
        let need = self.need(ctx);
        let peers: Vec<usize> = self.peers.keys().copied().collect();
        for p in peers {
            self.sync_peer(ctx, p, need);
        }
    }

    /// Sends peer `p` what it lacks, if anything: feed entries it has not
    /// acknowledged, an acknowledgement we owe it, our need for promises,
    /// or promises it needs and we can give.
    fn sync_peer(&mut self, ctx: &mut Context<Self>, p: usize, need: u64) {
        let peer = &self.peers[&p];
        let from = peer.acked.min(self.feed.len());
        let not_from_them = Some((p, peer.feed));
        let mut entries = Vec::new();
        let mut to = from;
        for (entry, via) in &self.feed[from..] {
            if entries.len() == MAX_BATCH {
                break;
            }
            to += 1;
            if *via != not_from_them {
                entries.push(entry.clone());
            }
        }
        let mut known = self.known.clone();
        known[self.me] = self.clock.peek(ctx.now()).max(peer.need);
        let helps = peer.need > 0
            && (0..self.n).any(|o| o != p && peer.view[o] < peer.need && known[o] > peer.view[o]);
        if entries.is_empty() && !peer.ack_due && need == 0 && !helps {
            return;
        }
        let promise = known[self.me];
        known[self.me] = self.clock.promise(ctx.now(), promise);
        self.reserve_or_log();
        let peer = self.peers.get_mut(&p).expect("a peer");
        let ack = (peer.feed != 0).then_some((peer.feed, peer.applied));
        peer.ack_due = false;
        for (seen, sent) in peer.view.iter_mut().zip(&known) {
            *seen = (*seen).max(*sent);
        }
        let sync = SyncMsg {
            feed: self.feed_id,
            from,
            to,
            entries,
            complete: to == self.feed.len(),
            known,
            need,
            ack,
        };
        let dest = peer.id.clone();
        ctx.send(&dest, &Payload::Sync(sync));
    }

    fn on_sync(&mut self, ctx: &mut Context<Self>, src: &str, sync: SyncMsg) {
        let Some((&p, _)) = self.peers.iter().find(|(_, peer)| peer.id == src) else {
            return;
        };
        if sync.known.len() != self.n {
            eprintln!("kafka: ignoring a sync from {src} for another cluster size");
            return;
        }
        let n = self.n as u64;
        let ticks = sync.entries.iter().filter_map(|entry| match entry {
            Entry::Msg(_, offset, _) => Some(offset / n),
            Entry::Commit(..) => None,
        });
        if !sync
            .known
            .iter()
            .copied()
            .chain([sync.need])
            .chain(ticks)
            .all(|t| t < MAX_TICK)
        {
            eprintln!("kafka: ignoring a sync from {src} with a tick past {MAX_TICK}");
            return;
        }
        self.clock.observe(ctx.now(), sync.known[p]);
        let (feed_len, feed_id) = (self.feed.len(), self.feed_id);
        let peer = self.peers.get_mut(&p).expect("a peer");
        peer.silent = false;
        peer.acked = match sync.ack {
            Some((feed, position)) if feed == feed_id => position.min(feed_len),
            _ => 0,
        };
        if sync.feed != peer.feed {
            (peer.feed, peer.applied) = (sync.feed, 0);
        }
        peer.need = sync.need;
        peer.view.clone_from(&sync.known);
        peer.ack_due |= !sync.entries.is_empty();
        // A gap (an earlier sync was lost): wait for the resend from what
        // we acknowledged.
        if sync.from > peer.applied {
            return;
        }
        for entry in sync.entries {
            if let Err(e) = self.learn(entry, Some((p, sync.feed))) {
                eprintln!("kafka: could not journal what {src} sent: {e}");
                return;
            }
        }
        let peer = self.peers.get_mut(&p).expect("a peer");
        peer.applied = peer.applied.max(sync.to);
        if sync.complete {
            self.adopt(&sync.known);
        }
    }

    /// Takes over a peer's knowledge, valid now that we hold its whole feed.
    /// Our own slot can only be ahead of our clock if we lost our memory:
    /// then it restores what we once promised.
    fn adopt(&mut self, known: &[u64]) {
        for (o, &tick) in known.iter().enumerate() {
            if o == self.me {
                self.clock.floor = self.clock.floor.max(tick);
            } else {
                self.known[o] = self.known[o].max(tick);
            }
        }
        self.reserve_or_log();
    }
}

// Durability.
impl KafkaNode {
    /// Replays the journal left by an earlier run of this node, if any, and
    /// keeps appending to it.
    fn open_journal(&mut self, ctx: &mut Context<Self>, dir: &Path) {
        let (mut journal, records) = match Journal::open(&dir.join("kafka.journal")) {
            Ok(opened) => opened,
            Err(e) => {
                eprintln!("kafka: no journal, running from memory only: {e}");
                return;
            }
        };
        if records.is_empty()
            && let Err(e) = journal.append(&Record::Feed(self.feed_id))
        {
            eprintln!("kafka: could not journal the feed id: {e}");
        }
        for record in records {
            match record {
                Record::Feed(id) => self.feed_id = id,
                Record::Reserve(tick) => self.clock.reserved = self.clock.reserved.max(tick),
                Record::Learned(entry, via) => {
                    self.apply(&entry);
                    self.feed.push((entry, via));
                }
            }
        }
        // Resume past every tick the previous run could have used.
        self.clock.floor = self.clock.reserved;
        self.clock.observe(ctx.now(), self.clock.reserved);
        self.journal = Some(journal);
    }
}

/// A node's clock in ticks: microseconds since the node started, plus a
/// skew that keeps it level with the fastest clock it has heard of.
#[derive(Debug, Default)]
struct Clock {
    skew: u64,
    /// Every tick at or below this has been used or promised: the node
    /// never uses one of them again.
    floor: u64,
    /// Ticks up to this are reserved in the journal.
    reserved: u64,
}

impl Clock {
    fn peek(&self, since_start: Duration) -> u64 {
        (since_start.as_micros() as u64).saturating_add(self.skew)
    }

    /// A fresh tick for a new message.
    fn next(&mut self, since_start: Duration) -> u64 {
        self.floor = self.floor.saturating_add(1).max(self.peek(since_start));
        self.floor
    }

    /// Promises never to use a tick up to the returned one (at least `at_least`).
    fn promise(&mut self, since_start: Duration, at_least: u64) -> u64 {
        self.floor = self.floor.max(self.peek(since_start)).max(at_least);
        self.floor
    }

    /// Catches up with a tick heard from elsewhere.
    fn observe(&mut self, since_start: Duration, tick: u64) {
        let now = self.peek(since_start);
        if tick > now {
            self.skew += tick - now;
        }
    }
}

/// What the journal holds, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Feed(u64),
    Reserve(u64),
    Learned(Entry, Option<Via>),
}

fn main() -> anyhow::Result<()> {
    glomers::run(KafkaNode::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use glomers::Runtime;
    use serde_json::json;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::PathBuf;

    type Cluster = glomers::testing::Cluster<KafkaNode>;

    /// The kafka requests a test sends, each answered at once.
    trait KafkaClient {
        fn send(&mut self, node: usize, key: &str, msg: i64) -> u64;
        fn poll(&mut self, node: usize, offsets: Value) -> Value;
    }

    impl KafkaClient for Cluster {
        fn send(&mut self, node: usize, key: &str, msg: i64) -> u64 {
            let reply = self.call(node, json!({"type": "send", "key": key, "msg": msg}));
            let reply = reply.expect("send replies at once");
            assert_eq!(reply["type"], "send_ok", "{reply}");
            reply["offset"].as_u64().unwrap()
        }

        fn poll(&mut self, node: usize, offsets: Value) -> Value {
            let reply = self.call(node, json!({"type": "poll", "offsets": offsets}));
            let reply = reply.expect("poll replies at once");
            assert_eq!(reply["type"], "poll_ok", "{reply}");
            reply["msgs"].clone()
        }
    }

    fn no_cut(_: usize, _: usize) -> bool {
        false
    }

    #[test]
    fn a_single_node_serves_its_sends_at_once_from_the_requested_offset() {
        let mut c = Cluster::new(1);
        let a = c.send(0, "k", 10);
        let b = c.send(0, "k", 11);
        assert!(b > a);
        assert_eq!(c.poll(0, json!({"k": 0})), json!({"k": [[a, 10], [b, 11]]}));
        assert_eq!(c.poll(0, json!({"k": b})), json!({"k": [[b, 11]]}));
        // Offsets have holes: a poll from one starts at the next message.
        assert_eq!(c.poll(0, json!({"k": a + 1})), json!({"k": [[b, 11]]}));
    }

    #[test]
    fn a_poll_past_the_end_or_of_an_unknown_key_returns_nothing() {
        let mut c = Cluster::new(1);
        let a = c.send(0, "k", 1);
        assert_eq!(c.poll(0, json!({"k": a + 1, "other": 0})), json!({}));
        assert_eq!(c.poll(0, json!({})), json!({}));
        assert_eq!(c.poll(0, json!({"k": -5})), json!({"k": [[a, 1]]}));
    }

    #[test]
    fn two_sends_racing_for_one_key_get_one_order_on_every_node() {
        let mut c = Cluster::new(2);
        let a = c.send(0, "k", 1);
        let b = c.send(1, "k", 2);
        assert_ne!(a, b);
        // Neither node may show a message another node could still
        // precede: nothing is stable before the first sync.
        assert_eq!(c.poll(0, json!({"k": 0})), json!({}));
        c.settle();
        let both = c.poll(0, json!({"k": 0}));
        assert_eq!(both.as_object().unwrap()["k"].as_array().unwrap().len(), 2);
        assert_eq!(c.poll(1, json!({"k": 0})), both);
        // Later sends on either node come after both.
        let later = c.send(1, "k", 3);
        assert!(later > a.max(b));
    }

    #[test]
    fn syncs_stop_when_there_is_nothing_new() {
        let mut c = Cluster::new(2);
        c.send(0, "k", 1);
        c.settle();
        c.run_for(20, no_cut);
        assert!(c.wire.is_empty());
        c.now += Duration::from_millis(50);
        for node in 0..2 {
            c.nodes[node].fire_timers(c.now);
            c.collect(node);
        }
        assert!(c.wire.is_empty(), "idle nodes send nothing: {:?}", c.wire);
    }

    #[test]
    fn commits_are_kept_for_any_key_and_listed_by_every_node() {
        let mut c = Cluster::new(2);
        let ok = c.call(0, json!({"type": "commit_offsets", "offsets": {"nope": 7}}));
        assert_eq!(ok.unwrap()["type"], "commit_offsets_ok");
        // Lower commits never move an offset back.
        c.call(0, json!({"type": "commit_offsets", "offsets": {"nope": 3}}));
        // n1 has not heard of it yet, but asks n0 before answering.
        let list = json!({"type": "list_committed_offsets", "keys": ["nope", "none"]});
        assert_eq!(c.call(1, list.clone()), None);
        c.deliver();
        let reply = c.take_reply().expect("answered once n0 replied");
        assert_eq!(reply["offsets"], json!({"nope": 7}));
        c.call(0, list);
        c.deliver();
        assert_eq!(c.take_reply().unwrap()["offsets"], json!({"nope": 7}));
    }

    #[test]
    fn a_cut_off_node_lists_what_it_knows_after_a_timeout() {
        let mut c = Cluster::new(2);
        c.call(1, json!({"type": "commit_offsets", "offsets": {"k": 4}}));
        let list = json!({"type": "list_committed_offsets", "keys": ["k"]});
        assert_eq!(c.call(0, list), None);
        c.wire.clear();
        c.run_for(100, |_, _| true);
        let reply = c.take_reply().expect("answered after the timeout");
        assert_eq!(reply["offsets"], json!({}));
        // The silent peer is not waited for again...
        let list = json!({"type": "list_committed_offsets", "keys": ["k"]});
        assert_eq!(c.call(0, list.clone()).unwrap()["offsets"], json!({}));
        // ...until it is heard from: then it is asked (and its commit has
        // arrived on the feed anyway).
        c.settle();
        assert_eq!(c.call(0, list), None);
        c.deliver();
        assert_eq!(c.take_reply().unwrap()["offsets"], json!({"k": 4}));
    }

    #[test]
    fn malformed_requests_get_error_12_and_the_node_carries_on() {
        let mut c = Cluster::new(1);
        let bad = [
            json!({"type": "send", "msg": 1}),
            json!({"type": "send", "key": 5, "msg": 1}),
            json!({"type": "poll", "offsets": ["k"]}),
            json!({"type": "poll", "offsets": {"k": "zero"}}),
            json!({"type": "commit_offsets", "offsets": {"k": 1.5}}),
            json!({"type": "list_committed_offsets", "keys": "k"}),
        ];
        for body in bad {
            let reply = c.call(0, body.clone()).unwrap();
            assert_eq!(reply["code"], 12, "{body} got {reply}");
        }
        let a = c.send(0, "k", 1);
        assert_eq!(c.poll(0, json!({"k": 0})), json!({"k": [[a, 1]]}));
    }

    #[test]
    fn a_sync_with_ticks_no_clock_reaches_is_ignored() {
        let mut c = Cluster::new(2);
        // A promise, a need or a message at tick 2^64 - 1: the node's clock
        // jumped there, and its next reservation overflowed.
        let max = u64::MAX;
        let syncs = [
            json!({"feed": 7, "from": 0, "to": 0, "entries": [], "known": [max, max],
                   "complete": true, "need": 0, "ack": null}),
            json!({"feed": 7, "from": 0, "to": 0, "entries": [], "known": [0, 0],
                   "complete": true, "need": max, "ack": null}),
            json!({"feed": 7, "from": 0, "to": 1, "entries": [{"msg": ["k", max, 1]}],
                   "known": [0, 0], "complete": true, "need": 0, "ack": null}),
        ];
        for mut sync in syncs {
            sync["type"] = json!("sync");
            c.input(0, &json!({"src": "n1", "dest": "n0", "body": sync}));
            c.wire.clear();
            c.now += SYNC_INTERVAL;
            c.nodes[0].fire_timers(c.now);
            c.collect(0);
            c.wire.clear();
        }
        let offset = c.send(0, "k", 5);
        assert!(offset < MAX_TICK, "{offset}");
        c.settle();
        assert_eq!(c.poll(1, json!({"k": 0})), json!({"k": [[offset, 5]]}));
    }

    #[test]
    fn a_partitioned_pair_keeps_answering_and_converges_after_the_heal() {
        let mut c = Cluster::new(2);
        let cut = |_: usize, _: usize| true;
        let mut sent = Vec::new();
        for i in 0..10 {
            sent.push(c.send(i % 2, "k", i as i64));
            c.run_for(30, cut);
        }
        // Both sides answer, but show nothing the other could precede.
        assert_eq!(c.poll(0, json!({"k": 0})), json!({}));
        c.settle();
        let all = c.poll(0, json!({"k": 0}));
        let offsets: Vec<u64> = all["k"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_u64().unwrap())
            .collect();
        sent.sort_unstable();
        assert_eq!(offsets, sent);
        assert_eq!(c.poll(1, json!({"k": 0})), all);
    }

    #[test]
    fn feeds_are_relayed_around_a_missing_link() {
        let mut c = Cluster::new(3);
        // n0 and n2 cannot talk; both talk to n1.
        let cut = |a: usize, b: usize| a + b == 2 && a != b;
        let a = c.send(0, "k", 1);
        let b = c.send(2, "k", 2);
        c.run_for(300, cut);
        for node in 0..3 {
            let msgs = c.poll(node, json!({"k": 0}));
            let offsets: Vec<u64> = msgs["k"]
                .as_array()
                .unwrap_or(&Vec::new())
                .iter()
                .map(|p| p[0].as_u64().unwrap())
                .collect();
            assert_eq!(offsets, vec![a.min(b), a.max(b)], "on n{node}");
        }
    }

    #[test]
    fn a_lost_sync_is_sent_again() {
        let mut c = Cluster::new(2);
        let a = c.send(0, "k", 1);
        c.run_for(50, |_, _| true);
        c.settle();
        assert_eq!(c.poll(1, json!({"k": 0})), json!({"k": [[a, 1]]}));
    }

    #[test]
    fn a_node_wiped_without_a_data_dir_gets_replicated_state_back_from_peers() {
        let mut c = Cluster::new(2);
        let a = c.send(1, "k", 1);
        c.call(1, json!({"type": "commit_offsets", "offsets": {"k": a}}));
        c.settle();
        c.nodes[1] = Runtime::new(KafkaNode::default(), 9);
        let init = json!({"src": "c0", "dest": "n1", "body":
            {"type": "init", "node_id": "n1", "node_ids": ["n0", "n1"], "msg_id": 1}});
        c.input(1, &init);
        c.take_reply();
        c.settle();
        assert_eq!(c.poll(1, json!({"k": 0})), json!({"k": [[a, 1]]}));
        assert_eq!(c.nodes[1].node().committed["k"], a as i64);
        // Its clock resumed past what it had promised before.
        assert!(c.send(1, "k", 2) > a);
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("glomers-kafka-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_restarted_node_replays_its_journal_and_never_reuses_an_offset() {
        let dir = scratch_dir("restart");
        let mut c = Cluster::with_dirs(vec![Some(dir.clone())]);
        let a = c.send(0, "k", 1);
        let b = c.send(0, "k", 2);
        c.call(0, json!({"type": "commit_offsets", "offsets": {"k": a}}));
        // A kill in the middle of a write leaves a torn line behind.
        let journal = dir.join("kafka.journal");
        let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
        file.write_all(br#"{"learned":[{"msg":["k","#).unwrap();
        drop(c);

        let mut c = Cluster::with_dirs(vec![Some(dir.clone())]);
        assert_eq!(c.poll(0, json!({"k": 0})), json!({"k": [[a, 1], [b, 2]]}));
        let list = json!({"type": "list_committed_offsets", "keys": ["k"]});
        assert_eq!(c.call(0, list).unwrap()["offsets"], json!({"k": a}));
        let later = c.send(0, "k", 3);
        assert!(later > b);
        drop(c);
        let c = Cluster::with_dirs(vec![Some(dir.clone())]);
        assert_eq!(c.nodes[0].node().logs["k"].len(), 3, "nothing lost twice");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_restarted_peer_gets_the_other_feeds_again() {
        let dirs = vec![Some(scratch_dir("peer0")), Some(scratch_dir("peer1"))];
        let mut c = Cluster::with_dirs(dirs.clone());
        let a = c.send(0, "k", 1);
        let b = c.send(1, "k", 2);
        c.settle();
        // n1 loses its memory; its journal and n0 bring everything back.
        let fresh = Runtime::new(KafkaNode::default(), 9).with_data_dir(dirs[1].clone());
        c.nodes[1] = fresh;
        let init = json!({"src": "c0", "dest": "n1", "body":
            {"type": "init", "node_id": "n1", "node_ids": ["n0", "n1"], "msg_id": 1}});
        c.input(1, &init);
        c.take_reply();
        let c2 = c.send(1, "k", 3);
        assert!(c2 > a.max(b));
        c.settle();
        let expected = json!({"k": [[a.min(b), if a < b {1} else {2}], [a.max(b), if a < b {2} else {1}], [c2, 3]]});
        assert_eq!(c.poll(0, json!({"k": 0})), expected);
        assert_eq!(c.poll(1, json!({"k": 0})), expected);
        for dir in dirs.into_iter().flatten() {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}
