//! Challenges 6a-6c, totally available transactions: `txn` runs a list of
//! register reads and writes and answers with the values read, on every
//! node, through any partition, up to read committed.
//!
//! Each node runs a transaction alone, start to finish, against its own
//! copy of the registers, so it sees no other transaction half done. Its
//! writes (only the last write to each key: intermediate values never leave
//! the transaction) become one write set, stamped with a version (a Lamport
//! time, then the node's index), applied at once and appended to the node's
//! feed. Every `50 (n - 1)` ms a node sends each peer the part of its feed
//! that peer has not acknowledged. A node applies a write set key by key,
//! last writer wins by version, so all nodes converge on the same values,
//! and appends whatever changed something to its own feed: feeds are
//! relayed, so a connected path between two nodes is enough. Idle nodes
//! stay silent.
//!
//! Why this is read committed: a transaction reads only values that
//! committed, whole transactions' final values (no G1a, no G1b); and every
//! dependency points forward in time: a transaction can only read, or
//! overwrite after reading, a value whose transaction had already run on
//! some node. A cycle of such dependencies (G0, G1c) would have to go back
//! in time.
//!
//! Trade-offs. Messages: none per transaction; about `20 n` syncs a second
//! while busy (6c: 0.04 per operation). Latency: every reply is immediate;
//! other nodes see a write about one sync interval later (50 ms on two
//! nodes, 200 ms on five).
//!
//! Partitions: every request is still answered; writes cross when the
//! network heals (or through a relay). Nothing stronger than read
//! committed: two nodes may read different values meanwhile, and a read may
//! see one of a transaction's writes but not (yet) another.
//!
//! Crashes: with a data directory, a node journals each write set before
//! acknowledging its transaction or accepting it from a peer, replays the
//! journal when it restarts, and its peers resend what it had not
//! acknowledged, so nothing acknowledged is lost; requests sent to it while
//! it is down time out. With no data directory (real Maelstrom, which never
//! kills nodes) a wiped node gets everything back from its peers except
//! writes it acknowledged during its last sync interval.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::time::Duration;

use glomers::journal::Journal;
use glomers::{Context, ErrorCode, Message, Node};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How often a node brings its peers up to date, per peer: a node syncs
/// every `(n - 1) * SYNC_INTERVAL`, so a cluster sends about `20 n` syncs a
/// second while busy, whatever its size.
const SYNC_INTERVAL: Duration = Duration::from_millis(50);
/// At most this many write sets in one sync message.
const MAX_BATCH: usize = 1000;

/// Registers are named by integers, as in Maelstrom's workload.
pub type Key = i64;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Txn {
        txn: Vec<Mop>,
    },
    TxnOk {
        txn: Vec<Mop>,
    },
    /// Node to node, no reply: a piece of the sender's feed.
    Sync(SyncMsg),
}

/// A micro-operation as on the wire: `["r", key, null]` (the reply fills
/// in the value read, `null` if never written) or `["w", key, value]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mop(pub Op, pub Key, pub Value);

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "r")]
    Read,
    #[serde(rename = "w")]
    Write,
}

/// When a write happened: Lamport time, then node index, so that every
/// node picks the same winner.
pub type Version = (u64, usize);

/// A committed transaction's final writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteSet {
    version: Version,
    writes: Vec<(Key, Value)>,
}

/// The peer (node index) and that peer's feed a write set came from, so it
/// is not sent back.
type Via = (usize, u64);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncMsg {
    /// The sender's feed id, and the feed positions `from..to` covered.
    feed: u64,
    from: usize,
    to: usize,
    /// The write sets in that range, less those the receiver sent first.
    entries: Vec<WriteSet>,
    /// How much of the receiver's feed the sender has: (feed id, position).
    ack: Option<(u64, usize)>,
}

#[derive(Default)]
pub struct TxnNode {
    me: usize,
    /// The Lamport clock: the highest version time seen.
    clock: u64,
    registers: HashMap<Key, (Value, Version)>,
    feed: Vec<(WriteSet, Option<Via>)>,
    feed_id: u64,
    peers: BTreeMap<usize, Peer>,
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
    /// We received write sets and have not acknowledged them yet.
    ack_due: bool,
}

impl Node for TxnNode {
    type Payload = Payload;

    fn init(&mut self, ctx: &mut Context<Self>) {
        let ids = ctx.node_ids().to_vec();
        self.me = ids.iter().position(|id| id == ctx.node_id()).unwrap_or(0);
        for (i, id) in ids.into_iter().enumerate().filter(|(i, _)| *i != self.me) {
            // The first sync says hello, so that the peers of a restarted
            // node learn it needs their feeds again.
            let ack_due = true;
            self.peers.insert(
                i,
                Peer {
                    id,
                    ack_due,
                    ..Peer::default()
                },
            );
        }
        // Below 2^53, so the id survives any JSON parser; never 0 ("none").
        self.feed_id = (ctx.rng().random::<u64>() >> 11) | 1;
        if let Some(dir) = ctx.data_dir().map(Path::to_path_buf) {
            self.open_journal(&dir);
        }
        let every = SYNC_INTERVAL * self.peers.len().max(1) as u32;
        ctx.repeat(every, |node: &mut TxnNode, ctx| node.sync_all(ctx));
    }

    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
        let (src, id) = (msg.src, msg.body.msg_id);
        match msg.body.payload {
            Payload::Txn { txn } => match self.transact(txn) {
                Ok(txn) => ctx.reply_to(&src, id, &Payload::TxnOk { txn }),
                // Indefinite: the journal may hold the write set after all.
                Err(e) => ctx.reply_error_to(&src, id, ErrorCode::Crash, &e.to_string()),
            },
            Payload::Sync(sync) => self.on_sync(&src, sync),
            Payload::TxnOk { .. } => {}
        }
    }
}

// Transactions.
impl TxnNode {
    /// Runs a transaction: reads see the registers and the transaction's
    /// own earlier writes; the final writes commit together.
    fn transact(&mut self, mut txn: Vec<Mop>) -> io::Result<Vec<Mop>> {
        let mut writes: BTreeMap<Key, Value> = BTreeMap::new();
        for Mop(op, key, value) in &mut txn {
            match op {
                Op::Read => *value = self.read(&writes, *key),
                Op::Write => {
                    writes.insert(*key, value.clone());
                }
            }
        }
        if !writes.is_empty() {
            let version = (self.clock.saturating_add(1), self.me);
            let writes = writes.into_iter().collect();
            self.learn(WriteSet { version, writes }, None)?;
        }
        Ok(txn)
    }

    fn read(&self, own_writes: &BTreeMap<Key, Value>, key: Key) -> Value {
        let committed = || self.registers.get(&key).map(|(value, _)| value);
        own_writes
            .get(&key)
            .or_else(committed)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Applies the writes that win (a newer version than the register's),
    /// journalled first; whatever changed something joins the feed.
    fn learn(&mut self, set: WriteSet, via: Option<Via>) -> io::Result<()> {
        let wins = |(key, _): &(Key, Value)| {
            self.registers
                .get(key)
                .is_none_or(|(_, held)| set.version > *held)
        };
        let writes: Vec<(Key, Value)> = set.writes.iter().filter(|w| wins(w)).cloned().collect();
        if writes.is_empty() {
            return Ok(());
        }
        let set = WriteSet {
            version: set.version,
            writes,
        };
        if let Some(journal) = &mut self.journal {
            journal.append(&Record::Learned(set.clone(), via))?;
        }
        self.apply(&set);
        self.feed.push((set, via));
        Ok(())
    }

    fn apply(&mut self, set: &WriteSet) {
        self.clock = self.clock.max(set.version.0);
        for (key, value) in &set.writes {
            self.registers.insert(*key, (value.clone(), set.version));
        }
    }
}

// Replication.
impl TxnNode {
    fn sync_all(&mut self, ctx: &mut Context<Self>) {
        let peers: Vec<usize> = self.peers.keys().copied().collect();
        for p in peers {
            self.sync_peer(ctx, p);
        }
    }

    /// Sends peer `p` the write sets it has not acknowledged and the
    /// acknowledgement we owe it, if there is either.
    fn sync_peer(&mut self, ctx: &mut Context<Self>, p: usize) {
        let peer = self.peers.get_mut(&p).expect("a peer");
        let from = peer.acked.min(self.feed.len());
        let not_from_them = Some((p, peer.feed));
        let mut entries = Vec::new();
        let mut to = from;
        for (set, via) in &self.feed[from..] {
            if entries.len() == MAX_BATCH {
                break;
            }
            to += 1;
            if *via != not_from_them {
                entries.push(set.clone());
            }
        }
        if entries.is_empty() && !peer.ack_due {
            return;
        }
        peer.ack_due = false;
        let sync = SyncMsg {
            feed: self.feed_id,
            from,
            to,
            entries,
            ack: (peer.feed != 0).then_some((peer.feed, peer.applied)),
        };
        ctx.send(&peer.id, &Payload::Sync(sync));
    }

    fn on_sync(&mut self, src: &str, sync: SyncMsg) {
        let Some((&p, _)) = self.peers.iter().find(|(_, peer)| peer.id == src) else {
            return;
        };
        let (feed_len, feed_id) = (self.feed.len(), self.feed_id);
        let peer = self.peers.get_mut(&p).expect("a peer");
        peer.acked = match sync.ack {
            Some((feed, position)) if feed == feed_id => position.min(feed_len),
            _ => 0,
        };
        if sync.feed != peer.feed {
            (peer.feed, peer.applied) = (sync.feed, 0);
        }
        peer.ack_due |= !sync.entries.is_empty();
        // A gap (an earlier sync was lost): wait for the resend from what
        // we acknowledged.
        if sync.from > peer.applied {
            return;
        }
        for set in sync.entries {
            if let Err(e) = self.learn(set, Some((p, sync.feed))) {
                eprintln!("txn: could not journal what {src} sent: {e}");
                return;
            }
        }
        let peer = self.peers.get_mut(&p).expect("a peer");
        peer.applied = peer.applied.max(sync.to);
    }
}

// Durability.
impl TxnNode {
    /// Replays the journal left by an earlier run of this node, if any, and
    /// keeps appending to it.
    fn open_journal(&mut self, dir: &Path) {
        let (mut journal, records) = match Journal::open(&dir.join("txn.journal")) {
            Ok(opened) => opened,
            Err(e) => {
                eprintln!("txn: no journal, running from memory only: {e}");
                return;
            }
        };
        if records.is_empty()
            && let Err(e) = journal.append(&Record::Feed(self.feed_id))
        {
            eprintln!("txn: could not journal the feed id: {e}");
        }
        for record in records {
            match record {
                Record::Feed(id) => self.feed_id = id,
                Record::Learned(set, via) => {
                    self.apply(&set);
                    self.feed.push((set, via));
                }
            }
        }
        self.journal = Some(journal);
    }
}

/// What the journal holds, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Feed(u64),
    Learned(WriteSet, Option<Via>),
}

fn main() -> anyhow::Result<()> {
    glomers::run(TxnNode::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use glomers::Runtime;
    use serde_json::json;
    use std::path::PathBuf;

    type Cluster = glomers::testing::Cluster<TxnNode>;

    /// The transactions a test runs, each answered at once.
    trait TxnClient {
        /// Runs a transaction and returns the micro-ops of its `txn_ok`.
        fn txn(&mut self, node: usize, txn: Value) -> Value;
        fn read(&mut self, node: usize, key: i64) -> Value;
    }

    impl TxnClient for Cluster {
        fn txn(&mut self, node: usize, txn: Value) -> Value {
            let reply = self.call(node, json!({"type": "txn", "txn": txn}));
            let reply = reply.expect("a transaction is answered at once");
            assert_eq!(reply["type"], "txn_ok", "{reply}");
            reply["txn"].clone()
        }

        fn read(&mut self, node: usize, key: i64) -> Value {
            self.txn(node, json!([["r", key, null]]))[0][2].clone()
        }
    }

    #[test]
    fn a_transaction_reads_its_own_writes_and_null_for_unwritten_keys() {
        let mut c = Cluster::new(1);
        let done = c.txn(
            0,
            json!([["r", 1, null], ["w", 1, 5], ["r", 1, null], ["r", 2, null]]),
        );
        assert_eq!(
            done,
            json!([["r", 1, null], ["w", 1, 5], ["r", 1, 5], ["r", 2, null]])
        );
        assert_eq!(c.read(0, 1), json!(5));
    }

    #[test]
    fn only_a_transactions_last_write_to_a_key_is_ever_seen() {
        let mut c = Cluster::new(2);
        c.txn(0, json!([["w", 1, 1], ["w", 1, 2], ["w", 3, 7]]));
        assert_eq!(c.read(0, 1), json!(2));
        c.settle();
        assert_eq!(c.read(1, 1), json!(2));
        assert_eq!(c.read(1, 3), json!(7));
        let sets = &c.nodes[1].node().feed;
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].0.writes, vec![(1, json!(2)), (3, json!(7))]);
    }

    #[test]
    fn concurrent_writes_to_one_key_converge_on_every_node() {
        let mut c = Cluster::new(3);
        c.txn(0, json!([["w", 1, 10]]));
        c.txn(1, json!([["w", 1, 11]]));
        c.txn(2, json!([["w", 1, 12], ["w", 2, 20]]));
        c.settle();
        let winner = c.read(0, 1);
        assert_eq!(c.read(1, 1), winner);
        assert_eq!(c.read(2, 1), winner);
        assert_eq!(c.read(0, 2), json!(20));
        // A later write wins everywhere.
        c.txn(1, json!([["w", 1, 13]]));
        c.settle();
        assert_eq!([c.read(0, 1), c.read(2, 1)], [json!(13), json!(13)]);
    }

    #[test]
    fn partitioned_nodes_keep_answering_and_converge_after_the_heal() {
        let mut c = Cluster::new(2);
        let cut = |_: usize, _: usize| true;
        for i in 0..10 {
            c.txn(i % 2, json!([["w", i, i * 10], ["r", 100, null]]));
            c.run_for(30, cut);
        }
        assert_eq!(c.read(0, 1), json!(null));
        c.settle();
        for node in 0..2 {
            for i in 0..10 {
                assert_eq!(c.read(node, i), json!(i * 10), "n{node} key {i}");
            }
        }
    }

    #[test]
    fn writes_are_relayed_around_a_missing_link() {
        let mut c = Cluster::new(3);
        let cut = |a: usize, b: usize| a + b == 2 && a != b;
        c.txn(0, json!([["w", 1, 1]]));
        c.txn(2, json!([["w", 2, 2]]));
        c.run_for(300, cut);
        assert_eq!([c.read(2, 1), c.read(0, 2)], [json!(1), json!(2)]);
    }

    #[test]
    fn read_only_transactions_and_idle_nodes_send_nothing() {
        let mut c = Cluster::new(2);
        c.txn(0, json!([["r", 1, null]]));
        c.run_for(200, |_, _| false);
        assert!(c.nodes.iter().all(|n| n.node().feed.is_empty()));
        c.txn(0, json!([["w", 1, 1]]));
        c.settle();
        c.run_for(100, |_, _| panic!("a message while idle"));
    }

    #[test]
    fn malformed_requests_get_error_12_and_the_node_carries_on() {
        let mut c = Cluster::new(1);
        let bad = [
            json!({"type": "txn"}),
            json!({"type": "txn", "txn": {"r": 1}}),
            json!({"type": "txn", "txn": [["x", 1, 2]]}),
            json!({"type": "txn", "txn": [["r", "one", null]]}),
            json!({"type": "txn", "txn": [["w", 1]]}),
            json!({"type": "txn", "txn": [["w", 1, 2, 3]]}),
        ];
        for body in bad {
            let reply = c.call(0, body.clone()).expect("an answer at once");
            assert_eq!(reply["code"], 12, "{body} got {reply}");
        }
        assert_eq!(c.txn(0, json!([])), json!([]));
        c.txn(0, json!([["w", 1, 1]]));
        assert_eq!(c.read(0, 1), json!(1));
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("glomers-txn-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_restarted_node_replays_its_journal_and_its_peers_resend() {
        let dirs = vec![Some(scratch_dir("n0")), Some(scratch_dir("n1"))];
        let mut c = Cluster::with_dirs(dirs.clone());
        c.txn(0, json!([["w", 1, 1]]));
        c.settle();
        c.txn(1, json!([["w", 2, 2]]));
        c.run_for(100, |_, _| true);
        // n0 loses its memory (and the link to n1, for now).
        c.nodes[0] = Runtime::new(TxnNode::default(), 7).with_data_dir(dirs[0].clone());
        c.init(0);
        assert_eq!([c.read(0, 1), c.read(0, 2)], [json!(1), json!(null)]);
        // Its clock is back too: its next write beats the older one.
        c.txn(0, json!([["w", 1, 3]]));
        c.settle();
        for node in 0..2 {
            assert_eq!([c.read(node, 1), c.read(node, 2)], [json!(3), json!(2)]);
        }
        for dir in dirs.into_iter().flatten() {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn a_node_wiped_without_a_data_dir_gets_replicated_writes_back() {
        let mut c = Cluster::new(2);
        c.txn(0, json!([["w", 1, 1]]));
        c.settle();
        c.nodes[0] = Runtime::new(TxnNode::default(), 7);
        c.init(0);
        c.settle();
        assert_eq!(c.read(0, 1), json!(1));
    }
}
