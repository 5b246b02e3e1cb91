//! Challenge 4, grow-only counter: `add` deltas on any node, `read` the
//! total on any node; once the network heals every node's read is exact.
//!
//! Approach. The counter lives in `seq-kv`, one key per node
//! (`g-counter-n0`, ...), each holding the total of its node's adds. A node
//! is the only writer of its key, so it always knows the key's value and
//! advances it with a compare-and-set that never loses a race. Adds are
//! group-committed: one CAS at a time writes every add pending at that
//! moment, and the adds are acknowledged only once their CAS landed, so a
//! node killed right after acknowledging loses nothing. Nodes then gossip
//! the totals they know (every node's landed total: a grow-only vector,
//! merged by pointwise maximum) instead of reading each other's keys, and
//! answer reads locally with the vector's sum.
//!
//! seq-kv's staleness. A read may see an old state, and a CAS tried against
//! an old state may fail although the latest state matches. Neither happens
//! to a node on its own key in normal operation: seq-kv never serves a node
//! a state older than its own last write, and nobody else writes the key.
//! After a restart it can (a CAS of the previous run may land late), so a
//! CAS that fails is answered by reading the key again and retrying the
//! same batch: a failed CAS changed nothing, so nothing is counted twice. A
//! CAS that times out may or may not have landed; its adds get an indefinite
//! error (13), which the checker accepts either way.
//!
//! Cost. An add costs a CAS round trip in latency and, with Maelstrom's one
//! client per node, two messages; adds that arrive during a round trip share
//! the next CAS (`--concurrency 10n --rate 1000 --latency 20` costs 0.17
//! messages per operation).
//! Gossip goes out every `gossip` period (500 ms) to peers whose view is
//! behind: about 0.66 messages per operation in all at the challenge's
//! flags. Reads cost nothing, but a node sees its peers' adds up to a gossip
//! period late. Partitions never reach `seq-kv`, so adds stay available;
//! they only delay gossip, which is repaired like broadcast's sets: a peer
//! that has not confirmed our totals gets them again after `resend_after`
//! (2 s) of silence, with a request to answer. A restarted node reads its
//! key again and asks its peers for their totals.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use glomers::kv::Kv;
use glomers::{Context, ErrorCode, Message, Node, NodeId, RpcError};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Add {
        delta: i64,
    },
    AddOk,
    Read,
    ReadOk {
        value: u64,
    },
    /// Node to node: every node's landed total as the sender knows it;
    /// `reply` asks the receiver to answer with its own.
    Totals {
        totals: Totals,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reply: bool,
    },
}

// ----- Configuration ------------------------------------------------------------

/// The tuning knobs.
#[derive(Debug, Clone)]
pub struct Config {
    /// How often new totals are gossiped (and the repair rules checked).
    pub gossip: Duration,
    /// Tell a quiet peer we got its totals after this long.
    pub ack_delay: Duration,
    /// Resend to a peer that has not confirmed our totals after this long.
    pub resend_after: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            gossip: Duration::from_millis(500),
            ack_delay: Duration::from_secs(1),
            resend_after: Duration::from_secs(2),
        }
    }
}

impl Config {
    /// Reads `GLOMERS_COUNTER_GOSSIP_MS` through `lookup` (`std::env::var`
    /// in `main`, a test's settings in the simulator).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let mut config = Config::default();
        if let Some(text) = lookup("GLOMERS_COUNTER_GOSSIP_MS") {
            match text.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => config.gossip = Duration::from_millis(ms),
                _ => eprintln!("g-counter: ignoring GLOMERS_COUNTER_GOSSIP_MS={text:?}"),
            }
        }
        config
    }
}

// ----- The node -------------------------------------------------------------------

/// A client's add waiting for its batch to land.
#[derive(Debug)]
struct Waiter {
    client: NodeId,
    msg_id: Option<u64>,
    delta: u64,
}

/// What this node knows about one peer's view of the totals.
#[derive(Debug, Default)]
struct Link {
    /// The totals the peer told us it knows.
    has: Totals,
    /// The totals we told the peer.
    sent: Totals,
    last_send: Duration,
    last_recv: Duration,
}

/// Why a link needs a message now.
#[derive(Debug, PartialEq)]
enum Due {
    Nothing,
    Send,
    /// A resend after silence: the peer must answer.
    Probe,
}

pub struct CounterNode {
    config: Config,
    kv: Kv,
    key: String,
    /// Our key's value in seq-kv; `None` until read at start-up (or after a
    /// failed CAS showed our belief was wrong).
    own: Option<u64>,
    /// Every node's landed total, ours included: what reads return the sum of.
    totals: Totals,
    pending: Vec<Waiter>,
    /// A CAS (or the read of our key) is under way.
    busy: bool,
    links: HashMap<NodeId, Link>,
}

impl CounterNode {
    pub fn new(config: Config) -> CounterNode {
        CounterNode {
            config,
            kv: Kv::seq(),
            key: String::new(),
            own: None,
            totals: Totals::default(),
            pending: Vec::new(),
            busy: false,
            links: HashMap::new(),
        }
    }

    fn add(&mut self, ctx: &mut Context<Self>, client: NodeId, msg_id: Option<u64>, delta: i64) {
        let Ok(delta) = u64::try_from(delta) else {
            let text = format!("a grow-only counter cannot add {delta}");
            ctx.reply_error_to(&client, msg_id, ErrorCode::MalformedRequest, &text);
            return;
        };
        if delta == 0 {
            ctx.reply_to(&client, msg_id, &Payload::AddOk);
            return;
        }
        self.pending.push(Waiter {
            client,
            msg_id,
            delta,
        });
        self.flush(ctx);
    }

    fn read(&self, ctx: &mut Context<Self>, client: &str, msg_id: Option<u64>) {
        let value = self.totals.sum();
        ctx.reply_to(client, msg_id, &Payload::ReadOk { value });
    }

    /// Learns our key's current value (at start-up, and after a CAS showed
    /// we were wrong about it), then flushes what is pending.
    fn read_own(&mut self, ctx: &mut Context<Self>) {
        self.busy = true;
        let kv = self.kv.clone();
        kv.read_opt(ctx, &self.key, |node: &mut Self, ctx, result| {
            node.busy = false;
            match result {
                Ok(value) => {
                    let value = value.unwrap_or(0);
                    node.own = Some(value);
                    node.learn_own(ctx, value);
                    node.flush(ctx);
                }
                // Retried at the next tick.
                Err(e) => eprintln!("g-counter: reading {} failed: {e}", node.key),
            }
        });
    }

    /// Every `gossip` period: retry a failed read of our key, and gossip.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.own.is_none() && !self.busy {
            self.read_own(ctx);
        }
        self.gossip(ctx);
    }

    /// CASes our key from our total to total + every pending add. One CAS
    /// at a time: adds that arrive meanwhile share the next one.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        let Some(from) = self.own else { return };
        if self.busy || self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let to = batch
            .iter()
            .fold(from, |total, w| total.saturating_add(w.delta));
        self.busy = true;
        let kv = self.kv.clone();
        // Creating the key is right only if it does not exist yet, which is
        // what we believe exactly when we believe it holds 0.
        kv.cas(
            ctx,
            &self.key,
            from,
            to,
            from == 0,
            move |node: &mut Self, ctx, result| {
                node.busy = false;
                node.landed(ctx, batch, to, result);
            },
        );
    }

    fn landed(
        &mut self,
        ctx: &mut Context<Self>,
        batch: Vec<Waiter>,
        to: u64,
        result: Result<(), RpcError>,
    ) {
        match result {
            Ok(()) => {
                self.own = Some(to);
                for waiter in batch {
                    ctx.reply_to(&waiter.client, waiter.msg_id, &Payload::AddOk);
                }
                self.learn_own(ctx, to);
                self.flush(ctx);
            }
            // The CAS changed nothing: our total was wrong (a restart, or a
            // stale state). Read it again and retry the same batch.
            Err(e) if e.is_definite() => {
                self.own = None;
                self.pending.splice(0..0, batch);
                self.read_own(ctx);
            }
            // It may or may not have landed: say so, and learn which.
            Err(e) => {
                let text = format!("the add may or may not have happened: {e}");
                for waiter in batch {
                    ctx.reply_error_to(&waiter.client, waiter.msg_id, ErrorCode::Crash, &text);
                }
                self.own = None;
                self.read_own(ctx);
            }
        }
    }

    /// Records a landed value of our own key.
    fn learn_own(&mut self, ctx: &Context<Self>, value: u64) {
        self.totals.raise(ctx.node_id(), value);
    }

    fn on_totals(&mut self, ctx: &mut Context<Self>, from: &str, totals: Totals, reply: bool) {
        let now = ctx.now();
        // Only our peers gossip (answering anyone else could mean writing
        // to an endpoint Maelstrom has closed).
        let Some(link) = self.links.get_mut(from) else {
            return;
        };
        link.has.merge(&totals);
        link.last_recv = now;
        self.totals.merge(&totals);
        if reply {
            self.send_totals(ctx, from, false);
        }
    }

    /// Sends our totals to every peer that needs them: new totals, and
    /// repairs after silence (the rules of broadcast's star links).
    fn gossip(&mut self, ctx: &mut Context<Self>) {
        let now = ctx.now();
        let mut due: Vec<(NodeId, Due)> = self
            .links
            .iter()
            .map(|(peer, link)| (peer.clone(), self.due(link, now)))
            .filter(|(_, due)| *due != Due::Nothing)
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
        for (peer, due) in due {
            self.send_totals(ctx, &peer, due == Due::Probe);
        }
    }

    fn due(&self, link: &Link, now: Duration) -> Due {
        if !self.totals.le(&link.has.join(&link.sent)) {
            return Due::Send;
        }
        if !self.totals.le(&link.has) && now >= link.last_send + self.config.resend_after {
            return Due::Probe;
        }
        if !link.has.le(&link.sent) && now >= link.last_recv + self.config.ack_delay {
            return Due::Send;
        }
        Due::Nothing
    }

    fn send_totals(&mut self, ctx: &mut Context<Self>, peer: &str, reply: bool) {
        let now = ctx.now();
        let totals = self.totals.clone();
        ctx.send(peer, &Payload::Totals { totals, reply });
        if let Some(link) = self.links.get_mut(peer) {
            link.sent.merge(&self.totals);
            link.last_send = now;
        }
    }
}

impl Node for CounterNode {
    type Payload = Payload;

    fn init(&mut self, ctx: &mut Context<Self>) {
        self.key = format!("g-counter-{}", ctx.node_id());
        let now = ctx.now();
        let peers: Vec<NodeId> = ctx.peers().cloned().collect();
        for peer in &peers {
            let link = Link {
                last_send: now,
                last_recv: now,
                ..Link::default()
            };
            self.links.insert(peer.clone(), link);
        }
        // If we restarted, our peers know totals we forgot: ask for them
        // (at the very start nobody answers, and nobody needs to).
        for peer in &peers {
            self.send_totals(ctx, peer, true);
        }
        self.read_own(ctx);
        ctx.repeat(self.config.gossip, |node: &mut Self, ctx| node.tick(ctx));
    }

    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
        let Message { src, body, .. } = msg;
        let msg_id = body.msg_id;
        match body.payload {
            Payload::Add { delta } => self.add(ctx, src, msg_id, delta),
            Payload::Read => self.read(ctx, &src, msg_id),
            Payload::Totals { totals, reply } => self.on_totals(ctx, &src, totals, reply),
            Payload::AddOk | Payload::ReadOk { .. } => {}
        }
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_lookup(|name| std::env::var(name).ok());
    glomers::run(CounterNode::new(config))
}

// ----- Every node's total -----------------------------------------------------------

/// Each node's total, growing only; a missing node counts as 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Totals(BTreeMap<NodeId, u64>);

impl Totals {
    /// Raises `node`'s total to `value` if that is higher.
    pub fn raise(&mut self, node: &str, value: u64) {
        match self.0.get_mut(node) {
            Some(total) => *total = (*total).max(value),
            None if value > 0 => {
                self.0.insert(node.to_string(), value);
            }
            None => {}
        }
    }

    /// Pointwise maximum with `other`.
    pub fn merge(&mut self, other: &Totals) {
        for (node, value) in &other.0 {
            self.raise(node, *value);
        }
    }

    pub fn join(&self, other: &Totals) -> Totals {
        let mut joined = self.clone();
        joined.merge(other);
        joined
    }

    /// True if every total here is at most the same node's in `other`.
    pub fn le(&self, other: &Totals) -> bool {
        self.0
            .iter()
            .all(|(node, value)| *value <= other.0.get(node).copied().unwrap_or(0))
    }

    pub fn sum(&self) -> u64 {
        self.0.values().fold(0, |sum, v| sum.saturating_add(*v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glomers::Runtime;
    use serde_json::{Value, json};

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// n1 of a three-node cluster, started, with its read of its key pending.
    fn start() -> (Runtime<CounterNode>, u64) {
        let mut rt = Runtime::new(CounterNode::new(Config::default()), 1);
        let init = json!({"src": "c0", "dest": "n1", "body":
            {"type": "init", "msg_id": 1, "node_id": "n1", "node_ids": ["n0", "n1", "n2"]}});
        rt.handle_line(&init.to_string(), Duration::ZERO).unwrap();
        let out = output(&mut rt);
        let read = kv_requests(&out);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0]["key"], "g-counter-n1");
        (rt, read[0]["msg_id"].as_u64().unwrap())
    }

    /// Started, and its key found to hold `total`.
    fn started_at(total: u64) -> Runtime<CounterNode> {
        let (mut rt, read) = start();
        let reply = json!({"type": "read_ok", "value": total, "in_reply_to": read});
        assert!(deliver(&mut rt, "seq-kv", reply, ms(1)).is_empty());
        rt
    }

    fn deliver(rt: &mut Runtime<CounterNode>, src: &str, body: Value, at: Duration) -> Vec<Value> {
        let line = json!({"src": src, "dest": "n1", "body": body});
        rt.handle_line(&line.to_string(), at).unwrap();
        output(rt)
    }

    fn output(rt: &mut Runtime<CounterNode>) -> Vec<Value> {
        String::from_utf8(rt.take_output())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn kv_requests(out: &[Value]) -> Vec<Value> {
        out.iter()
            .filter(|m| m["dest"] == "seq-kv")
            .map(|m| m["body"].clone())
            .collect()
    }

    fn to_client(out: &[Value]) -> Vec<Value> {
        out.iter()
            .filter(|m| m["dest"] == "c1")
            .map(|m| m["body"].clone())
            .collect()
    }

    fn add(rt: &mut Runtime<CounterNode>, msg_id: u64, delta: i64, at: Duration) -> Vec<Value> {
        deliver(
            rt,
            "c1",
            json!({"type": "add", "msg_id": msg_id, "delta": delta}),
            at,
        )
    }

    fn read(rt: &mut Runtime<CounterNode>, at: Duration) -> Value {
        let out = deliver(rt, "c1", json!({"type": "read", "msg_id": 99}), at);
        to_client(&out)[0]["value"].clone()
    }

    #[test]
    fn an_add_is_acknowledged_once_its_cas_landed() {
        let mut rt = started_at(10);
        let cas = kv_requests(&add(&mut rt, 2, 3, ms(5)));
        assert_eq!(
            cas[0],
            json!({"type": "cas", "key": "g-counter-n1", "from": 10, "to": 13, "msg_id": cas[0]["msg_id"]})
        );
        // Adds arriving meanwhile wait for the next CAS, together.
        assert!(add(&mut rt, 3, 1, ms(6)).is_empty());
        assert!(add(&mut rt, 4, 2, ms(6)).is_empty());
        let out = deliver(
            &mut rt,
            "seq-kv",
            json!({"type": "cas_ok", "in_reply_to": cas[0]["msg_id"]}),
            ms(7),
        );
        assert_eq!(
            to_client(&out),
            [json!({"type": "add_ok", "in_reply_to": 2})]
        );
        let next = kv_requests(&out);
        assert_eq!(
            (next[0]["from"].as_u64(), next[0]["to"].as_u64()),
            (Some(13), Some(16))
        );
        assert_eq!(read(&mut rt, ms(8)), 13);
        let out = deliver(
            &mut rt,
            "seq-kv",
            json!({"type": "cas_ok", "in_reply_to": next[0]["msg_id"]}),
            ms(9),
        );
        assert_eq!(to_client(&out).len(), 2);
        assert_eq!(read(&mut rt, ms(9)), 16);
    }

    #[test]
    fn adds_before_the_key_is_known_wait_for_it() {
        let (mut rt, read_id) = start();
        assert!(add(&mut rt, 2, 4, ms(1)).is_empty());
        let missing = json!({"type": "error", "code": 20, "text": "key does not exist", "in_reply_to": read_id});
        let cas = kv_requests(&deliver(&mut rt, "seq-kv", missing, ms(2)));
        assert_eq!(cas[0]["from"], 0);
        assert_eq!(cas[0]["to"], 4);
        assert_eq!(cas[0]["create_if_not_exists"], true);
    }

    #[test]
    fn zero_and_negative_deltas_need_no_cas() {
        let mut rt = started_at(0);
        let out = add(&mut rt, 2, 0, ms(1));
        assert_eq!(
            to_client(&out),
            [json!({"type": "add_ok", "in_reply_to": 2})]
        );
        let out = add(&mut rt, 3, -1, ms(1));
        assert_eq!(to_client(&out)[0]["code"], 12);
        assert!(kv_requests(&out).is_empty());
    }

    #[test]
    fn a_failed_cas_rereads_the_key_and_retries_the_same_batch() {
        let mut rt = started_at(10);
        let cas = kv_requests(&add(&mut rt, 2, 3, ms(5)));
        let failed = json!({"type": "error", "code": 22, "text": "current value 12 is not 10",
            "in_reply_to": cas[0]["msg_id"]});
        let out = deliver(&mut rt, "seq-kv", failed, ms(6));
        assert!(to_client(&out).is_empty());
        let reread = kv_requests(&out);
        assert_eq!(reread[0]["type"], "read");
        let value = json!({"type": "read_ok", "value": 12, "in_reply_to": reread[0]["msg_id"]});
        let retry = kv_requests(&deliver(&mut rt, "seq-kv", value, ms(7)));
        assert_eq!(
            (retry[0]["from"].as_u64(), retry[0]["to"].as_u64()),
            (Some(12), Some(15))
        );
        let out = deliver(
            &mut rt,
            "seq-kv",
            json!({"type": "cas_ok", "in_reply_to": retry[0]["msg_id"]}),
            ms(8),
        );
        assert_eq!(
            to_client(&out),
            [json!({"type": "add_ok", "in_reply_to": 2})]
        );
    }

    #[test]
    fn a_cas_that_times_out_gets_an_indefinite_error() {
        let mut rt = started_at(10);
        add(&mut rt, 2, 3, ms(5));
        rt.fire_timers(ms(1100));
        let out = output(&mut rt);
        assert_eq!(to_client(&out)[0]["code"], 13);
        assert_eq!(kv_requests(&out)[0]["type"], "read");
    }

    #[test]
    fn totals_are_gossiped_merged_and_confirmed() {
        let mut rt = started_at(10);
        // The first tick tells both peers our total.
        rt.fire_timers(ms(500));
        let out = output(&mut rt);
        let gossip: Vec<&Value> = out
            .iter()
            .filter(|m| m["body"]["type"] == "totals")
            .collect();
        assert_eq!(gossip.len(), 2);
        assert_eq!(gossip[0]["body"]["totals"], json!({"n1": 10}));
        // A peer's totals count in reads; stale ones do not lower anything.
        let totals = json!({"type": "totals", "totals": {"n0": 5, "n1": 10}});
        assert!(deliver(&mut rt, "n0", totals, ms(600)).is_empty());
        let stale = json!({"type": "totals", "totals": {"n0": 2, "n1": 7, "n2": 1}});
        deliver(&mut rt, "n2", stale, ms(600));
        assert_eq!(read(&mut rt, ms(601)), 16);
        // Each peer lacks a total the other told us: both hear of it.
        rt.fire_timers(ms(1000));
        let out = output(&mut rt);
        let full = json!({"n0": 5, "n1": 10, "n2": 1});
        assert_eq!(dests(&out), ["n0", "n2"]);
        assert_eq!(out[0]["body"]["totals"], full);
        // Both answer with the same: everyone agrees, nothing more is sent.
        for peer in ["n0", "n2"] {
            deliver(
                &mut rt,
                peer,
                json!({"type": "totals", "totals": full}),
                ms(1700),
            );
        }
        rt.fire_timers(ms(1999));
        assert!(output(&mut rt).is_empty());
        // n0 grows: n2 hears of it at the next tick, and n0 is told we have
        // it once it has been quiet for a second.
        let grown = json!({"type": "totals", "totals": {"n0": 6, "n1": 10, "n2": 1}});
        deliver(&mut rt, "n0", grown, ms(2000));
        rt.fire_timers(ms(2500));
        assert_eq!(dests(&output(&mut rt)), ["n2"]);
        rt.fire_timers(ms(3000));
        assert_eq!(dests(&output(&mut rt)), ["n0"]);
        // n2 never confirms (a partition): it is asked to, 2 s later.
        rt.fire_timers(ms(4000));
        assert!(output(&mut rt).is_empty());
        rt.fire_timers(ms(4500));
        let out = output(&mut rt);
        assert_eq!(dests(&out), ["n2"]);
        assert_eq!(out[0]["body"]["reply"], true);
    }

    fn dests(out: &[Value]) -> Vec<&str> {
        out.iter().map(|m| m["dest"].as_str().unwrap()).collect()
    }

    #[test]
    fn only_peers_gossip() {
        let mut rt = started_at(4);
        let body = json!({"type": "totals", "totals": {"n0": 9}, "reply": true});
        assert!(deliver(&mut rt, "c4", body, ms(1)).is_empty());
        assert_eq!(read(&mut rt, ms(1)), 4);
    }

    #[test]
    fn a_request_to_answer_is_answered_at_once() {
        let mut rt = started_at(4);
        let out = deliver(
            &mut rt,
            "n2",
            json!({"type": "totals", "totals": {}, "reply": true}),
            ms(1),
        );
        assert_eq!(out[0]["dest"], "n2");
        assert_eq!(
            out[0]["body"],
            json!({"type": "totals", "totals": {"n1": 4}})
        );
    }
}
