//! Fuzz harnesses: what the cargo-fuzz targets in `fuzz/` run, and what the
//! regression test replays for every input the fuzzer ever found.
//!
//! Both feed a node input after a valid `init` and check its contract:
//! it never panics, never prints anything but well-formed messages, and
//! answers every request it cannot decode with error 12, and every request
//! of a type it does not know with error 10. [`raw_lines`] feeds arbitrary
//! bytes as lines; [`structured`] builds messages with wrong, missing or
//! extreme fields (huge and negative numbers, unknown keys, nulls, nested
//! junk): requests of the node's own types, answers to the RPCs it made
//! (from the services and peers it asked), and mutated copies of what it
//! sent to its peers, which is how peers' messages of the node's internal
//! types get a plausible shape.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Map, Number, Value, json};

use crate::node::{Node, Runtime};
use crate::protocol::Inbound;

/// How far timers are run after the input, in virtual time: past every
/// built-in node's longest timer (lin-kv forgets a proposal after 10 s),
/// and no further, as a node that ticks every 10 ms costs a run per tick.
const SETTLE: Duration = Duration::from_secs(15);

/// Field names the structured harness tries, covering every workload, the
/// services' replies and the built-in nodes' messages to each other.
const FIELDS: [&str; 56] = [
    // Client requests.
    "echo",
    "message",
    "messages",
    "topology",
    "delta",
    "value",
    "key",
    "from",
    "to",
    "msg",
    "offsets",
    "keys",
    "txn",
    "id",
    "create_if_not_exists",
    "node_id",
    "node_ids",
    "type",
    // Replies, from services and peers.
    "code",
    "text",
    "offset",
    "msgs",
    "ts",
    // Node to node.
    "set",
    "reply",
    "totals",
    "feed",
    "entries",
    "known",
    "complete",
    "need",
    "ack",
    "relaying",
    "sent_us",
    "raft",
    "request",
    "hops",
    "client",
    "msg_id",
    "op",
    "f",
    "in_reply_to",
    // Raft.
    "term",
    "granted",
    "last_index",
    "last_term",
    "prev_index",
    "prev_term",
    "commit",
    "round",
    "index",
    "hint_index",
    "hint_term",
    "cmd",
    // Txn's write sets.
    "version",
    "writes",
];

/// Tags found inside the built-in nodes' messages (a Raft message's type,
/// a forwarded operation's `f`, a micro-operation): what a string in a
/// replayed message may become, besides the target's own types.
const WORDS: [&str; 18] = [
    "raft",
    "forward",
    "pre_vote",
    "pre_vote_resp",
    "vote",
    "vote_resp",
    "append",
    "append_ok",
    "append_reject",
    "read",
    "write",
    "cas",
    "r",
    "w",
    "msg",
    "commit",
    "error",
    "init",
];

/// Senders: a client, the cluster's nodes (the node itself included) and
/// Maelstrom's services.
const SOURCES: [&str; 8] = [
    "c7", "n0", "n1", "n2", "seq-kv", "lin-kv", "lww-kv", "lin-tso",
];

/// Error codes a service or peer may answer with.
const CODES: [u64; 12] = [0, 1, 10, 11, 12, 13, 14, 20, 21, 22, 30, 1000];

/// Reads fuzz bytes as a stream of small choices.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A choice in `0..n`.
    pub fn choose(&mut self, n: usize) -> usize {
        match n {
            0 => 0,
            1..=256 => self.byte() as usize % n,
            _ => (usize::from(self.byte()) << 8 | usize::from(self.byte())) % n,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    /// A JSON value with an eye for the edges: huge, negative and fractional
    /// numbers, strings that look like keys, nested arrays and objects.
    pub fn value(&mut self, depth: u32) -> Value {
        match self.choose(if depth > 2 { 8 } else { 11 }) {
            0 => Value::Null,
            1 => json!(self.byte().is_multiple_of(2)),
            2 => json!(self.byte() as i64 - 128),
            3 => json!(self.u64()),
            4 => json!(
                (self.u64() as i64)
                    .checked_abs()
                    .map_or(i64::MIN, |a| -a.max(1))
            ),
            5 => json!(self.u64() as f64 / 7.0),
            6 => json!((self.byte() % 16).to_string()),
            7 => json!(format!("n{}", self.byte() % 8)),
            8 => Value::Array((0..self.choose(5)).map(|_| self.value(depth + 1)).collect()),
            9 => {
                let mut map = Map::new();
                for _ in 0..self.choose(4) {
                    map.insert((self.byte() % 16).to_string(), self.value(depth + 1));
                }
                Value::Object(map)
            }
            _ => json!([
                ["r", self.byte() % 8, null],
                ["w", self.byte() % 8, self.value(depth + 1)]
            ]),
        }
    }
}

/// The fuzz targets: one per built-in solution, named alike.
pub const TARGETS: [&str; crate::solutions::NAMES.len()] = crate::solutions::NAMES;

/// Message types the structured harness sends each target: its clients'
/// requests, then what its peers send it.
fn request_types(target: &str) -> Option<&'static [&'static str]> {
    Some(match target {
        "echo" => &["echo"],
        "unique-ids" => &["generate"],
        "broadcast" => &["broadcast", "read", "topology", "sync"],
        "g-counter" => &["add", "read", "totals"],
        "kafka" => &[
            "send",
            "poll",
            "commit_offsets",
            "list_committed_offsets",
            "read_committed",
            "sync",
        ],
        "txn" => &["txn", "sync"],
        "lin-kv" => &[
            "read", "write", "cas", "peer", "relay", "relayed", "ping", "pong",
        ],
        _ => return None,
    })
}

/// Bodies of messages a target's peers send it, for the structured harness
/// to mutate and send as theirs: shapes the node's own output may take long
/// to show, like the Raft answers that make a lin-kv node a leader.
fn peer_templates(target: &str) -> &'static [&'static str] {
    match target {
        "broadcast" => &[r#"{"type":"sync","set":[[1,3],[7,7]],"reply":true}"#],
        "g-counter" => &[r#"{"type":"totals","totals":{"n1":3,"n2":1},"reply":true}"#],
        "kafka" => &[
            r#"{"type":"sync","feed":5,"from":0,"to":2,"known":[9,9,9],"complete":true,
                "need":0,"ack":null,"entries":[{"msg":["k",4,7]},{"commit":["k",4]}]}"#,
        ],
        "txn" => &[r#"{"type":"sync","feed":5,"from":0,"to":1,"ack":null,
                "entries":[{"version":[1,1],"writes":[[1,2],[3,null]]}]}"#],
        "lin-kv" => &[
            r#"{"type":"peer","relaying":false,"msg":{"type":"raft",
                "raft":{"type":"pre_vote_resp","term":1,"granted":true}}}"#,
            r#"{"type":"peer","relaying":false,"msg":{"type":"raft",
                "raft":{"type":"vote_resp","term":1,"granted":true}}}"#,
            r#"{"type":"peer","relaying":false,"msg":{"type":"raft",
                "raft":{"type":"append_ok","term":1,"index":1,"round":1}}}"#,
            r#"{"type":"peer","relaying":false,"msg":{"type":"raft",
                "raft":{"type":"append_reject","term":1,"index":1,"hint_index":1,
                        "hint_term":1,"round":1}}}"#,
            r#"{"type":"peer","relaying":false,"msg":{"type":"raft",
                "raft":{"type":"append","term":1,"prev_index":0,"prev_term":0,"commit":2,
                        "round":1,"entries":[{"index":1,"term":1},{"index":2,"term":1,
                        "cmd":{"client":"c7","msg_id":3,"op":{"f":"write","key":1,"value":2}}}]}}}"#,
            r#"{"type":"peer","relaying":true,"msg":{"type":"forward","hops":0,
                "request":{"client":"c7","msg_id":4,"op":{"f":"cas","key":1,"from":2,"to":3}}}}"#,
            r#"{"type":"relay","to":"n2","relaying":true,"msg":{"type":"raft",
                "raft":{"type":"vote","term":2,"last_index":0,"last_term":0}}}"#,
            r#"{"type":"relayed","from":"n2","relaying":false,"msg":{"type":"raft",
                "raft":{"type":"pre_vote","term":1,"last_index":0,"last_term":0}}}"#,
            r#"{"type":"pong","sent_us":0}"#,
        ],
        _ => &[],
    }
}

/// Runs a target's harness on fuzz input: the first byte picks raw lines
/// or structured messages (and, for broadcast, the mode), the rest is the
/// input.
pub fn run_target(target: &str, data: &[u8]) -> Result<(), Violation> {
    use crate::solutions::{
        broadcast, echo::EchoNode, g_counter, kafka::KafkaNode, lin_kv::LinKvNode, txn::TxnNode,
        unique_ids::UniqueIdsNode,
    };
    let (mode, rest) = data.split_first().map_or((0, data), |(m, r)| (*m, r));
    fn run<N: Node>(node: N, raw: bool, target: &str, data: &[u8]) -> Result<(), Violation> {
        if raw {
            return raw_lines(node, data);
        }
        let types = request_types(target).unwrap_or_default();
        structured_with(node, types, peer_templates(target), data)
    }
    let raw = mode.is_multiple_of(2);
    match target {
        "echo" => run(EchoNode, raw, target, rest),
        "unique-ids" => run(UniqueIdsNode::default(), raw, target, rest),
        "broadcast" => {
            let mode = if mode & 2 == 0 {
                broadcast::Mode::Messages
            } else {
                broadcast::Mode::Latency
            };
            let node = broadcast::BroadcastNode::new(broadcast::Config::new(mode));
            run(node, raw, target, rest)
        }
        "g-counter" => {
            let node = g_counter::CounterNode::new(g_counter::Config::default());
            run(node, raw, target, rest)
        }
        "kafka" => run(KafkaNode::default(), raw, target, rest),
        "txn" => run(TxnNode::default(), raw, target, rest),
        "lin-kv" => run(LinKvNode::default(), raw, target, rest),
        other => Err(Violation(format!("unknown fuzz target {other:?}"))),
    }
}

/// A node whose contract failed: what went wrong, with the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

fn init_line(node_id: &str, node_ids: &[&str]) -> String {
    json!({"id": 0, "src": "c0", "dest": node_id,
           "body": {"type": "init", "node_id": node_id, "node_ids": node_ids, "msg_id": 1}})
    .to_string()
}

/// Feeds arbitrary bytes, split into lines, to a fresh node.
pub fn raw_lines<N: Node>(node: N, data: &[u8]) -> Result<(), Violation> {
    let mut runtime = Runtime::new(node, 1);
    let _ = runtime.handle_line(&init_line("n0", &["n0", "n1", "n2"]), Duration::ZERO);
    output(&mut runtime)?;
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let text = String::from_utf8_lossy(line);
        feed(&mut runtime, &text, Duration::from_millis(i as u64))?;
    }
    runtime.fire_timers(SETTLE);
    output(&mut runtime).map(|_| ())
}

/// Feeds a fresh node messages of its own `request_types` (and of made-up
/// ones) with fields drawn from the fuzz input, from clients, peers and
/// services, answers to its RPCs and mutated copies of its messages to
/// peers, interleaved with time passing. The first byte picks the
/// cluster: n0 or n1 of three nodes, or n0 alone.
pub fn structured<N: Node>(node: N, request_types: &[&str], data: &[u8]) -> Result<(), Violation> {
    structured_with(node, request_types, &[], data)
}

/// [`structured`], with `templates` (message bodies as JSON) mutated and
/// sent as the peers' besides the node's own messages.
pub fn structured_with<N: Node>(
    node: N,
    request_types: &[&str],
    templates: &[&str],
    data: &[u8],
) -> Result<(), Violation> {
    let mut bytes = Bytes::new(data);
    let (me, ids): (&str, &[&str]) = match bytes.choose(3) {
        0 => ("n0", &["n0", "n1", "n2"]),
        1 => ("n1", &["n0", "n1", "n2"]),
        _ => ("n0", &["n0"]),
    };
    let mut runtime = Runtime::new(node, 1);
    let _ = runtime.handle_line(&init_line(me, ids), Duration::ZERO);
    let mut input = Generator {
        bytes,
        types: request_types,
        templates,
        me,
        msg_id: 1,
        sent: VecDeque::new(),
        requests: VecDeque::new(),
    };
    input.saw(output(&mut runtime)?);
    let mut now = Duration::ZERO;
    while !input.bytes.is_empty() {
        now += Duration::from_millis(u64::from(input.bytes.byte()) * 4);
        let line = input.message();
        let printed = feed(&mut runtime, &line.to_string(), now)?;
        input.saw(printed);
    }
    runtime.fire_timers(now + SETTLE);
    output(&mut runtime).map(|_| ())
}

/// Handles one line and returns what the node printed, checking that a
/// request it cannot decode got error 12 and one of an unknown type error
/// 10, addressed to its sender.
fn feed<N: Node>(
    runtime: &mut Runtime<N>,
    line: &str,
    now: Duration,
) -> Result<Vec<Value>, Violation> {
    let Ok(decoded) = Runtime::<N>::decode(line) else {
        runtime.fire_timers(now);
        return output(runtime);
    };
    let expected = match &decoded.0 {
        Inbound::Unknown {
            src,
            msg_id: Some(msg_id),
            in_reply_to: None,
            ..
        } => Some((src.clone(), *msg_id, 10)),
        Inbound::Malformed {
            src,
            msg_id: Some(msg_id),
            in_reply_to: None,
            ..
        } => Some((src.clone(), *msg_id, 12)),
        _ => None,
    };
    runtime.handle_decoded(decoded, now);
    let printed = output(runtime)?;
    if let Some((src, msg_id, code)) = expected {
        let answered = printed.iter().any(|m| {
            m["dest"] == src.as_str()
                && m["body"]["type"] == "error"
                && m["body"]["code"] == code
                && m["body"]["in_reply_to"] == msg_id
        });
        if !answered {
            return Err(Violation(format!("no error {code} for: {line}")));
        }
    }
    Ok(printed)
}

/// Builds the structured harness's messages from fuzz bytes and from what
/// the node printed so far.
struct Generator<'a> {
    bytes: Bytes<'a>,
    types: &'a [&'a str],
    /// Bodies of peer messages, as JSON.
    templates: &'a [&'a str],
    me: &'a str,
    msg_id: u64,
    /// The node's latest messages to anyone.
    sent: VecDeque<Value>,
    /// The node's latest requests (messages with a `msg_id`): RPCs to
    /// services and peers, waiting for an answer.
    requests: VecDeque<Value>,
}

impl Generator<'_> {
    const KEEP: usize = 32;

    /// Remembers what the node printed.
    fn saw(&mut self, printed: Vec<Value>) {
        for message in printed {
            if message["body"]["msg_id"].is_u64() {
                if self.requests.len() == Self::KEEP {
                    self.requests.pop_front();
                }
                self.requests.push_back(message.clone());
            }
            if self.sent.len() == Self::KEEP {
                self.sent.pop_front();
            }
            self.sent.push_back(message);
        }
    }

    fn message(&mut self) -> Value {
        match self.bytes.choose(4) {
            0 | 1 => self.fresh(),
            2 => self.answer(),
            _ => self.replay(),
        }
    }

    /// A message of one of the node's types, a `read_ok`, or a made-up
    /// type, from anyone, with random fields.
    fn fresh(&mut self) -> Value {
        let n = self.types.len();
        let kind = match self.bytes.choose(n + 2) {
            i if i < n => self.types[i].to_string(),
            i if i == n => "read_ok".to_string(),
            _ => format!("bogus{}", self.bytes.byte() % 4),
        };
        let mut body = Map::new();
        body.insert("type".into(), json!(kind));
        self.add_fields(&mut body, 5);
        self.number(&mut body);
        let src = SOURCES[self.bytes.choose(SOURCES.len())];
        self.envelope(src, body)
    }

    /// An answer to one of the node's requests, from whoever it asked:
    /// its `_ok`, an error, or another type, with random fields.
    fn answer(&mut self) -> Value {
        if self.requests.is_empty() {
            return self.fresh();
        }
        let i = self.bytes.choose(self.requests.len());
        let request = &self.requests[i];
        let src = request["dest"].as_str().unwrap_or("c7").to_string();
        let kind = request["body"]["type"].as_str().unwrap_or("").to_string();
        let in_reply_to = request["body"]["msg_id"].clone();
        let mut body = Map::new();
        match self.bytes.choose(4) {
            0 | 1 => {
                body.insert("type".into(), json!(format!("{kind}_ok")));
            }
            2 => {
                body.insert("type".into(), json!("error"));
                let code = match self.bytes.choose(CODES.len() + 1) {
                    i if i < CODES.len() => json!(CODES[i]),
                    _ => self.bytes.value(0),
                };
                body.insert("code".into(), code);
            }
            _ => {
                let kind = self.word();
                body.insert("type".into(), json!(kind));
            }
        }
        self.add_fields(&mut body, 4);
        body.insert("in_reply_to".into(), in_reply_to);
        self.envelope(&src, body)
    }

    /// One of the node's messages or of the templates, mutated a little,
    /// as if a peer had sent it: the shape of the node's internal messages
    /// with wrong, missing, extreme or unknown parts.
    fn replay(&mut self) -> Value {
        let (sent, templates) = (self.sent.len(), self.templates.len());
        // Half and half, when there are both: the node's messages outnumber
        // the templates, whose shapes matter as much.
        let own = match (sent, templates) {
            (0, 0) => return self.fresh(),
            (_, 0) => true,
            (0, _) => false,
            _ => self.bytes.choose(2) == 0,
        };
        let (src, body) = if own {
            let message = &self.sent[self.bytes.choose(sent)];
            let dest = message["dest"].as_str().unwrap_or("");
            let src = if SOURCES.contains(&dest) && dest != "c7" {
                dest.to_string()
            } else {
                SOURCES[self.bytes.choose(SOURCES.len())].to_string()
            };
            (src, message["body"].clone())
        } else {
            // From n0, n1 or n2.
            let src = SOURCES[1 + self.bytes.choose(3)].to_string();
            let template = self.templates[self.bytes.choose(templates)];
            let body = serde_json::from_str(template).unwrap_or_default();
            (src, body)
        };
        let Value::Object(mut body) = body else {
            return self.fresh();
        };
        body.remove("msg_id");
        body.remove("in_reply_to");
        let mut body = Value::Object(body);
        for _ in 0..self.bytes.choose(4) {
            self.mutate(&mut body);
        }
        let Value::Object(mut body) = body else {
            return self.fresh();
        };
        self.number(&mut body);
        self.envelope(&src, body)
    }

    /// Changes one part of `value`, chosen anywhere in it.
    fn mutate(&mut self, value: &mut Value) {
        let at = self.bytes.choose(size(value));
        let part = nth(value, at);
        match part {
            Value::Object(map) => match self.bytes.choose(3) {
                0 if !map.is_empty() => {
                    let key = map.keys().nth(self.bytes.choose(map.len())).cloned();
                    map.remove(&key.unwrap_or_default());
                }
                1 if map.contains_key("type") => {
                    let kind = self.word();
                    map.insert("type".into(), json!(kind));
                }
                _ => {
                    let field = FIELDS[self.bytes.choose(FIELDS.len())];
                    map.insert(field.into(), self.bytes.value(1));
                }
            },
            Value::Array(items) => match self.bytes.choose(3) {
                0 if !items.is_empty() => {
                    items.remove(self.bytes.choose(items.len()));
                }
                1 if !items.is_empty() => {
                    let copy = items[self.bytes.choose(items.len())].clone();
                    items.push(copy);
                }
                _ => items.push(self.bytes.value(1)),
            },
            Value::Number(n) => *part = self.tweak(n.clone()),
            Value::String(s) => {
                *part = match self.bytes.choose(4) {
                    0 => json!(format!("{s}_ok")),
                    1 => json!(format!("{s}_resp")),
                    2 => json!(SOURCES[self.bytes.choose(SOURCES.len())]),
                    _ => json!(self.word()),
                }
            }
            Value::Bool(b) => *b = !*b,
            Value::Null => *part = self.bytes.value(1),
        }
    }

    /// A number near `n` or at an edge.
    fn tweak(&mut self, n: Number) -> Value {
        let i = n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
        match (self.bytes.choose(8), i) {
            (0, Some(i)) => json_int(i + 1),
            (1, Some(i)) => json_int(i - 1),
            (2, Some(i)) => json_int(i * 2 + 1),
            (3, _) => json!(0),
            (4, _) => json!(u64::MAX),
            (5, _) => json!(i64::MIN),
            (6, _) => json!(-1),
            _ => self.bytes.value(1),
        }
    }

    /// A message type or tag: one of the target's, or of the nodes' inner
    /// messages.
    fn word(&mut self) -> String {
        let n = self.types.len();
        match self.bytes.choose(n + WORDS.len()) {
            i if i < n => self.types[i].to_string(),
            i => WORDS[i - n].to_string(),
        }
    }

    /// Up to `most - 1` random fields.
    fn add_fields(&mut self, body: &mut Map<String, Value>, most: usize) {
        for _ in 0..self.bytes.choose(most) {
            let field = FIELDS[self.bytes.choose(FIELDS.len())];
            if field != "type" {
                body.insert(field.into(), self.bytes.value(0));
            }
        }
    }

    /// Makes the message a request (a fresh `msg_id`), a reply (a small
    /// `in_reply_to`, which matches no RPC) or neither.
    fn number(&mut self, body: &mut Map<String, Value>) {
        match self.bytes.choose(4) {
            0 => {}
            1 => {
                body.insert("in_reply_to".into(), json!(self.bytes.byte() % 16));
            }
            _ => {
                self.msg_id += 1;
                body.insert("msg_id".into(), json!(self.msg_id));
            }
        }
    }

    fn envelope(&self, src: &str, body: Map<String, Value>) -> Value {
        json!({"src": src, "dest": self.me, "body": body})
    }
}

/// An integer as JSON, clamped into what JSON numbers here can hold.
fn json_int(i: i128) -> Value {
    match (u64::try_from(i), i64::try_from(i)) {
        (Ok(u), _) => json!(u),
        (_, Ok(i)) => json!(i),
        _ if i > 0 => json!(u64::MAX),
        _ => json!(i64::MIN),
    }
}

/// The number of parts of `value`: itself and everything inside it.
fn size(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(size).sum(),
        Value::Object(map) => map.values().map(size).sum(),
        _ => 0,
    }
}

/// The `n`th part of `value` in pre-order (`value` itself is part 0).
fn nth(value: &mut Value, mut n: usize) -> &mut Value {
    if n == 0 {
        return value;
    }
    n -= 1;
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(map) => map.values_mut().collect(),
        _ => return value,
    };
    for child in children {
        let s = size(child);
        if n < s {
            return nth(child, n);
        }
        n -= s;
    }
    unreachable!("a part index past the value's size")
}

/// What the node printed since the last call, each line checked to be a
/// message: exactly `src`, `dest` and a body with a string `type`.
fn output<N: Node>(runtime: &mut Runtime<N>) -> Result<Vec<Value>, Violation> {
    let mut messages = Vec::new();
    for line in runtime
        .take_output()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let parsed: Value = serde_json::from_slice(line).map_err(|e| {
            Violation(format!(
                "printed a line that is not JSON ({e}): {}",
                String::from_utf8_lossy(line)
            ))
        })?;
        let well_formed = parsed["src"].is_string()
            && parsed["dest"].is_string()
            && parsed["body"]["type"].is_string()
            && parsed.as_object().is_some_and(|m| m.len() == 3);
        if !well_formed {
            return Err(Violation(format!("printed a malformed message: {parsed}")));
        }
        messages.push(parsed);
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solutions::{echo::EchoNode, unique_ids::UniqueIdsNode};

    #[test]
    fn the_harnesses_accept_well_behaved_nodes() {
        let inputs: [&[u8]; 4] = [
            b"",
            b"{}\n[1,2]\nnot json\n\xff\xfe",
            b"\x00\x01\x02\x03\x04\x05\x06\x07",
            &[7; 300],
        ];
        for data in inputs {
            raw_lines(EchoNode, data).unwrap();
            structured(EchoNode, &["echo"], data).unwrap();
            structured(UniqueIdsNode::default(), &["generate"], data).unwrap();
        }
    }

    #[test]
    fn every_target_runs_in_every_mode() {
        let inputs: [&[u8]; 3] = [b"", b"\x01\x02\x03\x04\x05\x06\x07\x08", &[9; 200]];
        for target in TARGETS {
            for mode in [0, 1, 2, 3] {
                for data in inputs {
                    let data = [&[mode], data].concat();
                    run_target(target, &data).unwrap();
                }
            }
        }
        assert!(run_target("nope", b"").is_err());
    }

    fn generator(data: &[u8]) -> Generator<'_> {
        Generator {
            bytes: Bytes::new(data),
            types: &["add", "read"],
            templates: &[],
            me: "n0",
            msg_id: 1,
            sent: VecDeque::new(),
            requests: VecDeque::new(),
        }
    }

    #[test]
    fn answers_go_to_the_nodes_requests_from_whom_it_asked() {
        let mut input = generator(&[0, 0, 0]);
        let read = json!({"src": "n0", "dest": "seq-kv",
                          "body": {"type": "read", "key": "k", "msg_id": 77}});
        let sync = json!({"src": "n0", "dest": "n1", "body": {"type": "totals", "totals": {}}});
        input.saw(vec![read, sync]);
        assert_eq!(input.requests.len(), 1);
        assert_eq!(input.sent.len(), 2);
        // Request 0, its `_ok`, no fields.
        assert_eq!(
            input.answer(),
            json!({"src": "seq-kv", "dest": "n0", "body": {"type": "read_ok", "in_reply_to": 77}})
        );
        // Request 0, an error with code CODES[7].
        let mut input = Generator {
            bytes: Bytes::new(&[0, 2, 7, 0]),
            ..input
        };
        assert_eq!(
            input.answer()["body"],
            json!({"type": "error", "code": 20, "in_reply_to": 77})
        );
    }

    #[test]
    fn replays_come_from_the_peer_the_node_wrote_to_and_mutate_its_message() {
        let sync = json!({"src": "n0", "dest": "n1",
                          "body": {"type": "totals", "totals": {"n0": 5}, "msg_id": 9}});
        // Message 0, no mutation, no msg_id: the same body from n1.
        let mut input = generator(&[0, 0, 0]);
        input.saw(vec![sync.clone()]);
        assert_eq!(
            input.replay(),
            json!({"src": "n1", "dest": "n0", "body": {"type": "totals", "totals": {"n0": 5}}})
        );
        // Message 0, one mutation of part 2 (the 5; keys are sorted): plus one.
        let mut input = generator(&[0, 1, 2, 0, 0]);
        input.saw(vec![sync]);
        assert_eq!(input.replay()["body"]["totals"]["n0"], 6);
    }

    #[test]
    fn negative_numbers_reach_i64_min_without_overflowing() {
        let data = [4, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(Bytes::new(&data).value(0), json!(i64::MIN));
        let data = [4, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(Bytes::new(&data).value(0), json!(-1));
        let data = [4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe];
        assert_eq!(Bytes::new(&data).value(0), json!(-2));
    }

    #[test]
    fn every_peer_template_is_a_message_its_node_accepts() {
        use crate::solutions::{broadcast, g_counter, kafka, lin_kv, txn};
        fn accepted<N: Node>(template: &str) {
            let line = format!(r#"{{"src":"n1","dest":"n0","body":{template}}}"#);
            let decoded = Runtime::<N>::decode(&line).map(|d| d.0);
            match decoded {
                Ok(Inbound::Message(_)) => {}
                Ok(Inbound::Malformed { error, .. }) => panic!("{template}: {error}"),
                _ => panic!("{template} is no message of its node"),
            }
        }
        for target in TARGETS {
            for template in peer_templates(target) {
                match target {
                    "broadcast" => accepted::<broadcast::BroadcastNode>(template),
                    "g-counter" => accepted::<g_counter::CounterNode>(template),
                    "kafka" => accepted::<kafka::KafkaNode>(template),
                    "txn" => accepted::<txn::TxnNode>(template),
                    "lin-kv" => accepted::<lin_kv::LinKvNode>(template),
                    other => panic!("no node for {other}'s templates"),
                }
            }
        }
    }

    #[test]
    fn parts_are_numbered_in_pre_order() {
        let mut value = json!({"a": [1, {"b": 2}], "c": 3});
        assert_eq!(size(&value), 6);
        assert_eq!(*nth(&mut value, 2), json!(1));
        assert_eq!(*nth(&mut value, 4), json!(2));
        assert_eq!(*nth(&mut value, 5), json!(3));
        assert_eq!(json_int(i128::from(u64::MAX) + 1), json!(u64::MAX));
        assert_eq!(json_int(-5), json!(-5));
    }

    #[test]
    fn the_harness_catches_a_node_that_prints_garbage() {
        use crate::{Context, Message};
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum P {
            Echo { echo: Value },
        }
        struct Bad;
        impl Node for Bad {
            type Payload = P;
            fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<P>) {
                // A reply whose body has no type.
                ctx.reply(&msg, &json!({"oops": 1}));
            }
        }
        // n0 of three nodes; at time 0 one echo request from c7 with an
        // `echo` field and a msg_id (see `Generator` for how bytes become
        // choices).
        let data = [0, 0, 0, 0, 1, 0, 0, 2, 0];
        let err = structured(Bad, &["echo"], &data).unwrap_err();
        assert!(err.0.contains("malformed message"), "{err:?}");
    }
}
