//! Fuzz harnesses: what the cargo-fuzz targets in `fuzz/` run, and what the
//! regression test replays for every input the fuzzer ever found.
//!
//! Both feed a node input after a valid `init` and check its contract:
//! it never panics, never prints anything but well-formed messages, and
//! answers every request of a type it does not know with error 10 (and
//! anything it cannot decode with 12). [`raw_lines`] feeds arbitrary bytes as
//! lines; [`structured`] builds messages of the node's own request types
//! with wrong, missing or extreme fields (huge and negative numbers,
//! unknown keys, nulls, nested junk).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::node::{Node, Runtime};

/// How far timers are run after the input, in virtual time.
const SETTLE: Duration = Duration::from_secs(60);

/// Field names the structured harness tries, covering every workload.
const FIELDS: [&str; 18] = [
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
];

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
        if n == 0 { 0 } else { self.byte() as usize % n }
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
            4 => json!(-(self.u64() as i64).abs().max(1)),
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

/// The fuzz targets: one per built-in solution.
pub const TARGETS: [&str; 2] = ["echo", "unique-ids"];

/// Runs a target's harness on fuzz input: the first byte picks raw lines
/// or structured messages, the rest is the input.
pub fn run_target(target: &str, data: &[u8]) -> Result<(), Violation> {
    use crate::solutions::{echo::EchoNode, unique_ids::UniqueIdsNode};
    let (mode, rest) = data.split_first().map_or((0, data), |(m, r)| (*m, r));
    let raw = mode.is_multiple_of(2);
    match target {
        "echo" if raw => raw_lines(EchoNode, rest),
        "echo" => structured(EchoNode, &["echo"], rest),
        "unique-ids" if raw => raw_lines(UniqueIdsNode::default(), rest),
        "unique-ids" => structured(UniqueIdsNode::default(), &["generate"], rest),
        other => Err(Violation(format!("unknown fuzz target {other:?}"))),
    }
}

/// A node whose contract failed: what went wrong, with the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

fn init_line(node_ids: &[&str]) -> String {
    json!({"id": 0, "src": "c0", "dest": node_ids[0],
           "body": {"type": "init", "node_id": node_ids[0], "node_ids": node_ids, "msg_id": 1}})
    .to_string()
}

/// Feeds arbitrary bytes, split into lines, to a fresh node.
pub fn raw_lines<N: Node>(node: N, data: &[u8]) -> Result<(), Violation> {
    let mut runtime = Runtime::new(node, 1);
    let _ = runtime.handle_line(&init_line(&["n0", "n1", "n2"]), Duration::ZERO);
    output(&mut runtime)?;
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let text = String::from_utf8_lossy(line);
        let _ = runtime.handle_line(&text, Duration::from_millis(i as u64));
        output(&mut runtime)?;
    }
    runtime.fire_timers(SETTLE);
    output(&mut runtime).map(|_| ())
}

/// Feeds a fresh node messages of its own `request_types` (and of made-up
/// ones) with fields drawn from the fuzz input, from clients, peers and
/// services, interleaved with time passing.
pub fn structured<N: Node>(node: N, request_types: &[&str], data: &[u8]) -> Result<(), Violation> {
    let mut runtime = Runtime::new(node, 1);
    let _ = runtime.handle_line(&init_line(&["n0", "n1", "n2"]), Duration::ZERO);
    output(&mut runtime)?;
    let mut bytes = Bytes::new(data);
    let mut now = Duration::ZERO;
    let mut msg_id = 1;
    while !bytes.is_empty() {
        now += Duration::from_millis(u64::from(bytes.byte()) * 4);
        let line = structured_message(&mut bytes, request_types, &mut msg_id);
        let _ = runtime.handle_line(&line.to_string(), now);
        let printed = output(&mut runtime)?;
        check_unknown_type_answered(&line, &printed)?;
    }
    runtime.fire_timers(now + SETTLE);
    output(&mut runtime).map(|_| ())
}

fn structured_message(bytes: &mut Bytes<'_>, request_types: &[&str], msg_id: &mut u64) -> Value {
    let kind = match bytes.choose(request_types.len() + 2) {
        i if i < request_types.len() => request_types[i].to_string(),
        i if i == request_types.len() => "read_ok".to_string(),
        _ => format!("bogus{}", bytes.byte() % 4),
    };
    let mut body = Map::new();
    body.insert("type".into(), json!(kind));
    for _ in 0..bytes.choose(5) {
        let field = FIELDS[bytes.choose(FIELDS.len())];
        if field != "type" {
            body.insert(field.into(), bytes.value(0));
        }
    }
    match bytes.choose(4) {
        0 => {}
        1 => {
            body.insert("in_reply_to".into(), json!(bytes.byte() % 16));
        }
        _ => {
            *msg_id += 1;
            body.insert("msg_id".into(), json!(*msg_id));
        }
    }
    let src = ["c7", "n1", "n2", "seq-kv", "lin-kv", "lww-kv", "lin-tso"][bytes.choose(7)];
    json!({"src": src, "dest": "n0", "body": body})
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

/// A request (a `msg_id`, no `in_reply_to`) of a type no node knows must be
/// answered at once with error 10, addressed to its sender.
fn check_unknown_type_answered(request: &Value, printed: &[Value]) -> Result<(), Violation> {
    let body = &request["body"];
    let unknown = body["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("bogus"));
    let Some(msg_id) = body
        .get("msg_id")
        .filter(|_| unknown && body.get("in_reply_to").is_none())
    else {
        return Ok(());
    };
    let answered = printed.iter().any(|m| {
        m["dest"] == request["src"]
            && m["body"]["type"] == "error"
            && m["body"]["code"] == 10
            && m["body"]["in_reply_to"] == *msg_id
    });
    if answered {
        Ok(())
    } else {
        Err(Violation(format!(
            "no error 10 for an unknown request type: {request}"
        )))
    }
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
        // One echo request with an `echo` field and a msg_id (see
        // `structured_message` for how bytes become choices).
        let data = [0, 0, 1, 0, 0, 2, 0];
        let err = structured(Bad, &["echo"], &data).unwrap_err();
        assert!(err.0.contains("malformed message"), "{err:?}");
    }
}
