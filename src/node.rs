//! Nodes as state machines, and the sans-IO runtime that drives them.
//!
//! A [`Node`] reacts to events (init, messages, RPC replies or timeouts,
//! timers) and acts only through its [`Context`]: it never touches stdout or
//! the wall clock. The [`Runtime`] owns a node and its context, turns input
//! lines into events and collects output lines; the stdin/stdout driver
//! ([`crate::stdio`]) and the in-process simulator are two hosts for it.
//!
//! ```
//! use glomers::{Context, Message, Node};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! #[serde(tag = "type", rename_all = "snake_case")]
//! enum Payload {
//!     Echo { echo: serde_json::Value },
//!     EchoOk { echo: serde_json::Value },
//! }
//!
//! #[derive(Default)]
//! struct Echo;
//!
//! impl Node for Echo {
//!     type Payload = Payload;
//!     fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
//!         if let Payload::Echo { echo } = &msg.body.payload {
//!             ctx.reply(&msg, &Payload::EchoOk { echo: echo.clone() });
//!         }
//!     }
//! }
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{
    self, ErrorCode, Inbound, LineError, MaelstromError, Message, NodeId, RawReply,
};

/// The random number generator nodes get from their context: seeded by the
/// host, so a simulation replays exactly.
pub type NodeRng = Xoshiro256PlusPlus;

/// A Maelstrom node: a state machine driven by events.
pub trait Node: Sized + 'static {
    /// The messages this node accepts (and usually sends): a serde enum
    /// tagged by `type`. Replies to RPCs are decoded separately, by the type
    /// each RPC asks for.
    type Payload: Serialize + DeserializeOwned + Send + 'static;

    /// Called once when `init` arrives, before `init_ok` is sent; node id
    /// and node ids are available from the context.
    fn init(&mut self, _ctx: &mut Context<Self>) {}

    /// Called for every message that is not a reply (replies go to the RPC
    /// callback that is waiting for them, or are dropped when none is).
    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Self::Payload>);
}

/// Why an RPC did not produce a normal reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// No reply arrived in time; the request may or may not have taken effect.
    Timeout,
    /// The peer answered with an `error` body.
    Remote(MaelstromError),
    /// The reply could not be decoded into the expected type.
    Malformed(String),
}

impl RpcError {
    /// True when the request is known not to have taken effect.
    pub fn is_definite(&self) -> bool {
        match self {
            RpcError::Remote(error) => error.is_definite(),
            RpcError::Timeout | RpcError::Malformed(_) => false,
        }
    }

    /// The Maelstrom error code of a remote error, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RpcError::Remote(error) => Some(error.code),
            _ => None,
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::Timeout => f.write_str("RPC timed out"),
            RpcError::Remote(error) => error.fmt(f),
            RpcError::Malformed(why) => write!(f, "malformed reply: {why}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// Identifies a timer so it can be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

type RpcCallback<N> = Box<dyn FnOnce(&mut N, &mut Context<N>, Result<RawReply, RpcError>)>;
type OnceCallback<N> = Box<dyn FnOnce(&mut N, &mut Context<N>)>;
type RepeatCallback<N> = Box<dyn FnMut(&mut N, &mut Context<N>)>;

enum TimerAction<N: Node> {
    Once(OnceCallback<N>),
    Repeat(Duration, RepeatCallback<N>),
    RpcTimeout(u64),
}

struct PendingRpc<N: Node> {
    callback: RpcCallback<N>,
    timeout: TimerId,
}

/// Where this incarnation's message ids start. A node restarted with its
/// memory wiped must not reuse its predecessor's ids, or a late reply
/// meant for the predecessor could complete the new node's RPC; hosts give
/// each incarnation its own seed, so ids start somewhere else each time
/// (below 2^40, so they stay exact in any JSON reader).
fn first_msg_id(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    1 + ((z ^ (z >> 31)) >> 24)
}

/// Everything a node can do: send, reply, call, set timers, read its clock.
pub struct Context<N: Node> {
    node_id: NodeId,
    node_ids: Vec<NodeId>,
    now: Duration,
    next_msg_id: u64,
    rng: NodeRng,
    output: Vec<u8>,
    pending: HashMap<u64, PendingRpc<N>>,
    timer_queue: BinaryHeap<Reverse<(Duration, TimerId)>>,
    timers: HashMap<TimerId, TimerAction<N>>,
    next_timer: u64,
    firing: Option<TimerId>,
    firing_cancelled: bool,
    dropped_replies: u64,
    data_dir: Option<PathBuf>,
}

impl<N: Node> Context<N> {
    fn new(seed: u64) -> Self {
        Context {
            node_id: NodeId::new(),
            node_ids: Vec::new(),
            now: Duration::ZERO,
            next_msg_id: first_msg_id(seed),
            rng: NodeRng::seed_from_u64(seed),
            output: Vec::with_capacity(64 * 1024),
            pending: HashMap::new(),
            timer_queue: BinaryHeap::new(),
            timers: HashMap::new(),
            next_timer: 0,
            firing: None,
            firing_cancelled: false,
            dropped_replies: 0,
            data_dir: None,
        }
    }

    /// This node's id (empty before `init`).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Every node in the cluster, this one included, in Maelstrom's order.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.node_ids
    }

    /// The other nodes of the cluster.
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> + '_ {
        self.node_ids.iter().filter(move |id| **id != self.node_id)
    }

    /// Time since the node started, from the host's clock (real or virtual).
    pub fn now(&self) -> Duration {
        self.now
    }

    /// A directory for state that must survive a restart of this node, if
    /// the host provides one. It belongs to this node and this test run only
    /// (our runner sets `GLOMERS_DATA_DIR`; the simulator keeps one per node
    /// across simulated crashes). Under real Maelstrom there is none: its
    /// nodes share `/tmp` across runs, where old state would be wrong.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// A random number generator seeded by the host.
    pub fn rng(&mut self) -> &mut NodeRng {
        &mut self.rng
    }

    /// Sends a message that expects no reply.
    pub fn send<P: Serialize + ?Sized>(&mut self, dest: &str, payload: &P) {
        self.emit(dest, payload, None, None);
    }

    /// Replies to `request` (sets `in_reply_to`). A request without a
    /// `msg_id` expects no reply, so nothing is sent.
    pub fn reply<R, P: Serialize + ?Sized>(&mut self, request: &Message<R>, payload: &P) {
        self.reply_to(&request.src, request.body.msg_id, payload);
    }

    /// Replies to a request known only by its sender and `msg_id`, e.g. one
    /// answered later from a callback.
    pub fn reply_to<P: Serialize + ?Sized>(&mut self, src: &str, msg_id: Option<u64>, payload: &P) {
        if let Some(msg_id) = msg_id {
            self.emit(src, payload, None, Some(msg_id));
        }
    }

    /// Replies to `request` with a Maelstrom error.
    pub fn reply_error<R>(&mut self, request: &Message<R>, code: ErrorCode, text: &str) {
        self.reply_error_to(&request.src, request.body.msg_id, code, text);
    }

    /// Replies with a Maelstrom error to a request known by sender and id.
    pub fn reply_error_to(&mut self, src: &str, msg_id: Option<u64>, code: ErrorCode, text: &str) {
        let error = MaelstromError::new(code, text);
        self.reply_to(src, msg_id, &error.to_payload());
    }

    /// Sends a request and calls `callback` exactly once: with the reply
    /// decoded as `R`, with the peer's error, or with [`RpcError::Timeout`]
    /// after `timeout`. A reply arriving after the timeout is dropped.
    pub fn rpc<P, R, F>(&mut self, dest: &str, payload: &P, timeout: Duration, callback: F)
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned + 'static,
        F: FnOnce(&mut N, &mut Context<N>, Result<R, RpcError>) + 'static,
    {
        self.rpc_raw(dest, payload, timeout, move |node, ctx, result| {
            callback(node, ctx, result.and_then(|reply| reply.decode::<R>()))
        });
    }

    /// Like [`Context::rpc`], but hands the callback the undecoded reply.
    pub fn rpc_raw<P, F>(&mut self, dest: &str, payload: &P, timeout: Duration, callback: F)
    where
        P: Serialize + ?Sized,
        F: FnOnce(&mut N, &mut Context<N>, Result<RawReply, RpcError>) + 'static,
    {
        let msg_id = self.fresh_msg_id();
        let timeout = self.schedule(timeout, TimerAction::RpcTimeout(msg_id));
        self.pending.insert(
            msg_id,
            PendingRpc {
                callback: Box::new(callback),
                timeout,
            },
        );
        self.emit(dest, payload, Some(msg_id), None);
    }

    /// Number of replies dropped because no RPC was waiting for them (late
    /// replies after a timeout, duplicates).
    pub fn dropped_replies(&self) -> u64 {
        self.dropped_replies
    }

    /// Number of RPCs waiting for a reply or a timeout.
    pub fn pending_rpcs(&self) -> usize {
        self.pending.len()
    }

    /// Runs `callback` once after `delay`.
    pub fn set_timer<F>(&mut self, delay: Duration, callback: F) -> TimerId
    where
        F: FnOnce(&mut N, &mut Context<N>) + 'static,
    {
        self.schedule(delay, TimerAction::Once(Box::new(callback)))
    }

    /// Runs `callback` every `period` (first after one period) until cancelled.
    pub fn repeat<F>(&mut self, period: Duration, callback: F) -> TimerId
    where
        F: FnMut(&mut N, &mut Context<N>) + 'static,
    {
        let period = period.max(Duration::from_micros(1));
        self.schedule(period, TimerAction::Repeat(period, Box::new(callback)))
    }

    /// Cancels a timer; cancelling one that already fired does nothing.
    pub fn cancel_timer(&mut self, id: TimerId) {
        if self.timers.remove(&id).is_none() && self.firing == Some(id) {
            self.firing_cancelled = true;
        }
    }

    fn schedule(&mut self, delay: Duration, action: TimerAction<N>) -> TimerId {
        let id = TimerId(self.next_timer);
        self.next_timer += 1;
        self.timers.insert(id, action);
        self.timer_queue.push(Reverse((self.now + delay, id)));
        id
    }

    fn fresh_msg_id(&mut self) -> u64 {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        id
    }

    fn emit<P: Serialize + ?Sized>(
        &mut self,
        dest: &str,
        payload: &P,
        msg_id: Option<u64>,
        in_reply_to: Option<u64>,
    ) {
        if let Err(e) = protocol::encode_line(
            &mut self.output,
            &self.node_id,
            dest,
            payload,
            msg_id,
            in_reply_to,
        ) {
            eprintln!("glomers: could not encode a message to {dest}: {e}");
        }
    }

    /// The earliest time a timer or RPC timeout is due, if any.
    fn next_deadline(&mut self) -> Option<Duration> {
        while let Some(Reverse((at, id))) = self.timer_queue.peek() {
            if self.timers.contains_key(id) {
                return Some(*at);
            }
            self.timer_queue.pop();
        }
        None
    }
}

/// A node together with its context: the part of a host that does not do
/// I/O. Feed it lines and the time; take its output lines.
pub struct Runtime<N: Node> {
    node: N,
    ctx: Context<N>,
    initialised: bool,
}

impl<N: Node> Runtime<N> {
    /// Wraps a node; `seed` seeds the node's random number generator.
    pub fn new(node: N, seed: u64) -> Self {
        Runtime {
            node,
            ctx: Context::new(seed),
            initialised: false,
        }
    }

    /// Gives the node a directory for durable state (see [`Context::data_dir`]).
    pub fn with_data_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.ctx.data_dir = dir;
        self
    }

    /// The node, for inspection (tests, invariant checks).
    pub fn node(&self) -> &N {
        &self.node
    }

    /// The node's context, for inspection.
    pub fn context(&self) -> &Context<N> {
        &self.ctx
    }

    /// True once `init` has been handled.
    pub fn is_initialised(&self) -> bool {
        self.initialised
    }

    /// Decodes one input line. Pure, so a host may call it on another thread.
    pub fn decode(line: &str) -> Result<Decoded<N>, LineError> {
        protocol::decode_line(line).map(Decoded)
    }

    /// Handles one input line at time `now`. A line that is not a message
    /// is reported as an error and otherwise ignored.
    pub fn handle_line(&mut self, line: &str, now: Duration) -> Result<(), LineError> {
        let decoded = Self::decode(line)?;
        self.handle_decoded(decoded, now);
        Ok(())
    }

    /// Fires the timers due by `now`, then handles an already decoded input
    /// message.
    pub fn handle_decoded(&mut self, decoded: Decoded<N>, now: Duration) {
        self.fire_timers(now);
        match decoded.0 {
            Inbound::Init { src, msg_id, init } => self.on_init(src, msg_id, init),
            Inbound::Message(msg) => self.on_message(msg),
            Inbound::Reply(reply) => self.on_reply(reply),
            Inbound::Unknown {
                src,
                msg_id,
                in_reply_to,
                kind,
            } => {
                if in_reply_to.is_none() {
                    let text = format!("message type {kind:?} is not supported");
                    self.ctx
                        .reply_error_to(&src, msg_id, ErrorCode::NotSupported, &text);
                }
            }
            Inbound::Malformed {
                src,
                msg_id,
                in_reply_to,
                error,
            } => {
                eprintln!("glomers: malformed message from {src}: {error}");
                if in_reply_to.is_none() {
                    self.ctx
                        .reply_error_to(&src, msg_id, ErrorCode::MalformedRequest, &error);
                }
            }
        }
    }

    /// Fires every timer and RPC timeout due at or before `now`.
    pub fn fire_timers(&mut self, now: Duration) {
        while let Some(Reverse((at, id))) = self.ctx.timer_queue.peek().copied() {
            if at > now {
                break;
            }
            self.ctx.timer_queue.pop();
            let Some(action) = self.ctx.timers.remove(&id) else {
                continue;
            };
            // Callbacks see the time the timer was due (never earlier than a
            // time the node has already seen), so a simulator is exact.
            self.advance_clock(at);
            self.fire(id, at, action);
        }
        self.advance_clock(now);
    }

    fn fire(&mut self, id: TimerId, at: Duration, action: TimerAction<N>) {
        match action {
            TimerAction::Once(callback) => callback(&mut self.node, &mut self.ctx),
            TimerAction::Repeat(period, mut callback) => {
                self.ctx.firing = Some(id);
                self.ctx.firing_cancelled = false;
                callback(&mut self.node, &mut self.ctx);
                self.ctx.firing = None;
                if !self.ctx.firing_cancelled {
                    self.ctx
                        .timers
                        .insert(id, TimerAction::Repeat(period, callback));
                    self.ctx.timer_queue.push(Reverse((at + period, id)));
                }
            }
            TimerAction::RpcTimeout(msg_id) => {
                if let Some(pending) = self.ctx.pending.remove(&msg_id) {
                    (pending.callback)(&mut self.node, &mut self.ctx, Err(RpcError::Timeout));
                }
            }
        }
    }

    /// The earliest time a timer or RPC timeout is due, if any.
    pub fn next_deadline(&mut self) -> Option<Duration> {
        self.ctx.next_deadline()
    }

    /// Output lines produced so far (newline-terminated JSON), leaving the
    /// buffer empty.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.ctx.output)
    }

    /// Appends output produced so far to `out`, leaving the buffer empty but
    /// keeping its capacity.
    pub fn drain_output_into(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.ctx.output);
    }

    fn advance_clock(&mut self, now: Duration) {
        if now > self.ctx.now {
            self.ctx.now = now;
        }
    }

    fn on_init(&mut self, src: NodeId, msg_id: Option<u64>, init: protocol::Init) {
        if self.initialised {
            eprintln!("glomers: ignoring a second init from {src}");
            return;
        }
        self.ctx.node_id = init.node_id;
        self.ctx.node_ids = init.node_ids;
        self.initialised = true;
        self.node.init(&mut self.ctx);
        #[derive(Serialize)]
        #[serde(tag = "type", rename = "init_ok")]
        struct InitOk {}
        self.ctx.reply_to(&src, msg_id, &InitOk {});
    }

    fn on_message(&mut self, msg: Message<N::Payload>) {
        if !self.initialised {
            if !msg.is_reply() {
                let text = "node has not received init yet";
                self.ctx
                    .reply_error(&msg, ErrorCode::TemporarilyUnavailable, text);
            }
            return;
        }
        self.node.handle(&mut self.ctx, msg);
    }

    fn on_reply(&mut self, reply: RawReply) {
        match self.ctx.pending.remove(&reply.in_reply_to) {
            Some(pending) => {
                self.ctx.timers.remove(&pending.timeout);
                (pending.callback)(&mut self.node, &mut self.ctx, Ok(reply));
            }
            // A late reply (its RPC timed out) or a duplicate: never answer
            // a reply, never run a callback twice.
            None => self.ctx.dropped_replies += 1,
        }
    }
}

/// An input line decoded for a node of type `N` (see [`Runtime::decode`]).
pub struct Decoded<N: Node>(pub(crate) Inbound<N::Payload>);

impl<N: Node> fmt::Debug for Decoded<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Decoded(..)")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::{Value, json};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Parses a runtime's output into JSON values.
    pub(crate) fn lines(output: &[u8]) -> Vec<Value> {
        output
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("output is JSON"))
            .collect()
    }

    pub(crate) fn init_line(node: &str, nodes: &[&str]) -> String {
        json!({"id":0,"src":"c0","dest":node,"body":{"type":"init","node_id":node,"node_ids":nodes,"msg_id":1}}).to_string()
    }

    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Payload {
        Ping,
        Pong,
        Call { to: String },
        Echo { echo: Value },
        EchoOk { echo: Value },
    }

    /// A node that records what happened to it.
    #[derive(Default)]
    struct Recorder {
        log: Rc<RefCell<Vec<String>>>,
        inits: usize,
    }

    impl Node for Recorder {
        type Payload = Payload;
        fn init(&mut self, ctx: &mut Context<Self>) {
            self.inits += 1;
            self.log.borrow_mut().push(format!(
                "init {} of {}",
                ctx.node_id(),
                ctx.node_ids().len()
            ));
        }
        fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<Payload>) {
            match &msg.body.payload {
                Payload::Ping => ctx.reply(&msg, &Payload::Pong),
                Payload::Call { to } => {
                    let to = to.clone();
                    ctx.rpc(&to, &Payload::Ping, Duration::from_secs(1), {
                        move |node: &mut Recorder, _ctx, result: Result<Value, RpcError>| {
                            node.log.borrow_mut().push(match result {
                                Ok(v) => format!("reply {}", v["type"]),
                                Err(e) => format!("error {e}"),
                            });
                        }
                    });
                }
                Payload::Echo { echo } => ctx.reply(&msg, &Payload::EchoOk { echo: echo.clone() }),
                other => self.log.borrow_mut().push(format!("got {other:?}")),
            }
        }
    }

    fn started() -> (Runtime<Recorder>, Rc<RefCell<Vec<String>>>) {
        let node = Recorder::default();
        let log = node.log.clone();
        let mut rt = Runtime::new(node, 7);
        rt.handle_line(&init_line("n1", &["n0", "n1", "n2"]), Duration::ZERO)
            .unwrap();
        (rt, log)
    }

    fn line(src: &str, body: Value) -> String {
        json!({"id": 9, "src": src, "dest": "n1", "body": body}).to_string()
    }

    #[test]
    fn init_ok_comes_after_the_nodes_own_init() {
        let (mut rt, log) = started();
        assert_eq!(*log.borrow(), vec!["init n1 of 3"]);
        assert_eq!(
            lines(&rt.take_output()),
            vec![json!({"src":"n1","dest":"c0","body":{"type":"init_ok","in_reply_to":1}})]
        );
        assert_eq!(
            rt.context().peers().cloned().collect::<Vec<_>>(),
            ["n0", "n2"]
        );
    }

    #[test]
    fn a_second_init_is_ignored() {
        let (mut rt, _) = started();
        rt.take_output();
        rt.handle_line(&init_line("n1", &["n1"]), Duration::ZERO)
            .unwrap();
        assert!(rt.take_output().is_empty());
        assert_eq!(rt.node().inits, 1);
        assert_eq!(rt.context().node_ids().len(), 3);
    }

    #[test]
    fn replies_have_in_reply_to_and_nothing_else() {
        let (mut rt, _) = started();
        rt.take_output();
        rt.handle_line(
            &line("c4", json!({"type":"echo","echo":"hi","msg_id":3})),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(
            lines(&rt.take_output()),
            vec![
                json!({"src":"n1","dest":"c4","body":{"type":"echo_ok","echo":"hi","in_reply_to":3}})
            ]
        );
    }

    #[test]
    fn unknown_types_get_error_10_and_malformed_ones_error_12() {
        let (mut rt, _) = started();
        rt.take_output();
        rt.handle_line(
            &line("c4", json!({"type":"nope","msg_id":3})),
            Duration::ZERO,
        )
        .unwrap();
        rt.handle_line(
            &line("c4", json!({"type":"echo","msg_id":4})),
            Duration::ZERO,
        )
        .unwrap();
        let out = lines(&rt.take_output());
        assert_eq!(out[0]["body"]["code"], 10);
        assert_eq!(out[0]["body"]["in_reply_to"], 3);
        assert_eq!(out[1]["body"]["code"], 12);
        assert_eq!(out[1]["body"]["in_reply_to"], 4);
        // Without a msg_id nobody waits for an answer, so none is sent.
        rt.handle_line(&line("c4", json!({"type":"nope"})), Duration::ZERO)
            .unwrap();
        assert!(rt.take_output().is_empty());
    }

    #[test]
    fn malformed_lines_are_errors_and_the_next_message_still_works() {
        let (mut rt, _) = started();
        rt.take_output();
        assert!(rt.handle_line("{oops", Duration::ZERO).is_err());
        assert!(rt.handle_line("", Duration::ZERO).is_err());
        rt.handle_line(
            &line("c4", json!({"type":"ping","msg_id":5})),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(lines(&rt.take_output())[0]["body"]["type"], "pong");
    }

    #[test]
    fn requests_before_init_get_error_11() {
        let mut rt = Runtime::new(Recorder::default(), 1);
        rt.handle_line(
            &line("c4", json!({"type":"ping","msg_id":5})),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(lines(&rt.take_output())[0]["body"]["code"], 11);
    }

    #[test]
    fn an_rpc_reply_reaches_its_callback_once() {
        let (mut rt, log) = started();
        rt.take_output();
        rt.handle_line(
            &line("c4", json!({"type":"call","to":"n2"})),
            Duration::ZERO,
        )
        .unwrap();
        let out = lines(&rt.take_output());
        assert_eq!(out[0]["dest"], "n2");
        let msg_id = out[0]["body"]["msg_id"].as_u64().unwrap();
        let reply = line("n2", json!({"type":"pong","in_reply_to":msg_id}));
        rt.handle_line(&reply, Duration::from_millis(5)).unwrap();
        // A duplicate of the reply is not delivered twice, and the timeout
        // was cancelled.
        rt.handle_line(&reply, Duration::from_millis(6)).unwrap();
        rt.fire_timers(Duration::from_secs(5));
        assert_eq!(log.borrow()[1..], ["reply \"pong\""]);
        assert_eq!(rt.context().dropped_replies(), 1);
        assert_eq!(rt.context().pending_rpcs(), 0);
        assert_eq!(rt.next_deadline(), None);
    }

    #[test]
    fn an_rpc_times_out_once_and_a_late_reply_is_dropped() {
        let (mut rt, log) = started();
        rt.take_output();
        rt.handle_line(
            &line("c4", json!({"type":"call","to":"n2"})),
            Duration::ZERO,
        )
        .unwrap();
        let msg_id = lines(&rt.take_output())[0]["body"]["msg_id"]
            .as_u64()
            .unwrap();
        assert_eq!(rt.next_deadline(), Some(Duration::from_secs(1)));
        rt.fire_timers(Duration::from_millis(999));
        assert_eq!(log.borrow().len(), 1);
        rt.fire_timers(Duration::from_secs(1));
        assert_eq!(log.borrow()[1], "error RPC timed out");
        // Late replies, good or bad, are dropped without an answer.
        let late = line("n2", json!({"type":"pong","in_reply_to":msg_id}));
        rt.handle_line(&late, Duration::from_secs(2)).unwrap();
        let late_error = line("n2", json!({"type":"error","code":11,"in_reply_to":msg_id}));
        rt.handle_line(&late_error, Duration::from_secs(2)).unwrap();
        assert_eq!(log.borrow()[1..], ["error RPC timed out"]);
        assert!(rt.take_output().is_empty());
        assert_eq!(rt.context().dropped_replies(), 2);
        assert_eq!(rt.context().pending_rpcs(), 0);
    }

    #[test]
    fn an_rpc_error_reply_is_decoded_as_remote_error() {
        let (mut rt, log) = started();
        rt.take_output();
        rt.handle_line(
            &line("c4", json!({"type":"call","to":"n0"})),
            Duration::ZERO,
        )
        .unwrap();
        let msg_id = lines(&rt.take_output())[0]["body"]["msg_id"]
            .as_u64()
            .unwrap();
        let error = line(
            "n0",
            json!({"type":"error","code":22,"text":"no","in_reply_to":msg_id}),
        );
        rt.handle_line(&error, Duration::ZERO).unwrap();
        assert_eq!(log.borrow()[1], "error error precondition-failed (22): no");
    }

    #[derive(Default)]
    struct Ticker {
        fired: Vec<(String, u128)>,
        repeating: Option<TimerId>,
    }

    impl Node for Ticker {
        type Payload = Payload;
        fn init(&mut self, ctx: &mut Context<Self>) {
            ctx.set_timer(Duration::from_millis(30), |node: &mut Ticker, ctx| {
                node.fired.push(("once".into(), ctx.now().as_millis()))
            });
            let cancelled = ctx.set_timer(Duration::from_millis(20), |node: &mut Ticker, _| {
                node.fired.push(("cancelled".into(), 0))
            });
            ctx.cancel_timer(cancelled);
            let id = ctx.repeat(Duration::from_millis(25), |node: &mut Ticker, ctx| {
                node.fired.push(("tick".into(), ctx.now().as_millis()));
                if node.fired.iter().filter(|(k, _)| k == "tick").count() == 3 {
                    let id = node.repeating.unwrap();
                    ctx.cancel_timer(id);
                }
            });
            self.repeating = Some(id);
        }
        fn handle(&mut self, _: &mut Context<Self>, _: Message<Payload>) {}
    }

    #[test]
    fn timers_fire_in_order_at_their_due_time_and_can_be_cancelled() {
        let mut rt = Runtime::new(Ticker::default(), 1);
        rt.handle_line(&init_line("n0", &["n0"]), Duration::ZERO)
            .unwrap();
        assert_eq!(rt.next_deadline(), Some(Duration::from_millis(25)));
        rt.fire_timers(Duration::from_millis(200));
        let fired: Vec<(&str, u128)> = rt
            .node()
            .fired
            .iter()
            .map(|(k, t)| (k.as_str(), *t))
            .collect();
        assert_eq!(
            fired,
            vec![("tick", 25), ("once", 30), ("tick", 50), ("tick", 75)]
        );
        assert_eq!(rt.next_deadline(), None);
    }

    #[test]
    fn each_incarnation_numbers_its_messages_from_its_own_start() {
        let a = Runtime::new(Ticker::default(), 1);
        let b = Runtime::new(Ticker::default(), 2);
        assert_ne!(a.ctx.next_msg_id, b.ctx.next_msg_id);
        assert!(a.ctx.next_msg_id >= 1 && a.ctx.next_msg_id < 1 << 40);
        assert_eq!(
            a.ctx.next_msg_id,
            Runtime::new(Ticker::default(), 1).ctx.next_msg_id
        );
    }

    #[test]
    fn the_rng_is_seeded_by_the_host() {
        use rand::RngExt;
        let mut a = Runtime::new(Ticker::default(), 42);
        let mut b = Runtime::new(Ticker::default(), 42);
        let x: u64 = a.ctx.rng().random();
        let y: u64 = b.ctx.rng().random();
        assert_eq!(x, y);
    }
}
