//! Maelstrom's built-in services, with their real semantics:
//!
//! - `lin-kv`: one map, every operation on the latest state (linearizable);
//! - `seq-kv`: sequentially consistent. The service remembers the last 32
//!   states and, per requesting node, a floor. Each request runs against a
//!   state drawn uniformly from [floor, latest]; if it would not change the
//!   state (reads, failed or no-op writes and CAS) that possibly stale answer
//!   is returned and the floor moves there; otherwise it is re-run against
//!   the latest state, which appends a new state and moves the floor to it;
//! - `lww-kv`: two replicas picked at random per request, which never
//!   converge (Maelstrom's merge result is discarded by a shadowing bug);
//! - `lin-tso`: timestamps 0, 1, 2, ...
//!
//! Keys and values are arbitrary JSON compared structurally (`1` and `1.0`
//! and `"1"` are three different keys). A request of an unknown type gets no
//! reply, as in Maelstrom.

use std::collections::{HashMap, VecDeque};

use rand::RngExt;
use serde_json::{Value, json};

use super::random::Rng;

/// The service endpoints every test has.
pub const SERVICE_NAMES: [&str; 4] = ["lin-kv", "seq-kv", "lww-kv", "lin-tso"];

/// How many past states `seq-kv` may serve reads from.
const SEQ_KV_STATES: usize = 32;

/// All four services of a test.
pub struct Services {
    lin_kv: KvMap,
    seq_kv: SeqKv,
    lww_kv: [KvMap; 2],
    next_ts: u64,
    rng: Rng,
}

impl Services {
    pub fn new(rng: Rng) -> Services {
        Services {
            lin_kv: KvMap::default(),
            seq_kv: SeqKv::default(),
            lww_kv: [KvMap::default(), KvMap::default()],
            next_ts: 0,
            rng,
        }
    }

    /// True if `name` is one of the services.
    pub fn is_service(name: &str) -> bool {
        SERVICE_NAMES.contains(&name)
    }

    /// Handles a request from `src`; returns the reply body (with
    /// `in_reply_to`), or `None` when the request gets no reply.
    pub fn handle(&mut self, service: &str, src: &str, body: &Value) -> Option<Value> {
        let request = Request::parse(body)?;
        let mut reply = match service {
            "lin-kv" => self.lin_kv.apply(&request, Dialect::Kv).0,
            "seq-kv" => self.seq_kv.handle(src, &request, &mut self.rng),
            "lww-kv" => {
                let replica = self.rng.random_range(0..2);
                self.lww_kv[replica].apply(&request, Dialect::Lww).0
            }
            "lin-tso" => match request {
                Request::Ts => {
                    self.next_ts += 1;
                    json!({"type": "ts_ok", "ts": self.next_ts - 1})
                }
                _ => return None,
            },
            _ => return None,
        };
        reply["in_reply_to"] = body.get("msg_id").cloned().unwrap_or(Value::Null);
        Some(reply)
    }
}

/// A service request, decoded from a body.
#[derive(Debug, Clone, PartialEq)]
enum Request {
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
        create: bool,
    },
    Ts,
}

impl Request {
    /// Decodes a body the way Maelstrom reads it: absent fields are nil.
    fn parse(body: &Value) -> Option<Request> {
        let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
        Some(match body.get("type")?.as_str()? {
            "read" => Request::Read { key: field("key") },
            "write" => Request::Write {
                key: field("key"),
                value: field("value"),
            },
            "cas" => Request::Cas {
                key: field("key"),
                from: field("from"),
                to: field("to"),
                create: truthy(&field("create_if_not_exists")),
            },
            "ts" => Request::Ts,
            _ => return None,
        })
    }

    fn key(&self) -> Option<&Value> {
        match self {
            Request::Read { key } | Request::Write { key, .. } | Request::Cas { key, .. } => {
                Some(key)
            }
            Request::Ts => None,
        }
    }
}

/// Clojure truthiness: everything but nil and false.
fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// Differences between the KV flavours' replies.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dialect {
    /// lin-kv and seq-kv: CAS may create a missing key.
    Kv,
    /// lww-kv: ignores `create_if_not_exists`; its error text prints `from`
    /// without quoting.
    Lww,
}

/// A key for the maps: canonical JSON text, so structurally equal JSON
/// values are equal keys (serde_json's maps are sorted).
fn canonical(key: &Value) -> String {
    key.to_string()
}

/// One key-value map; `apply` returns the reply and the mutation, if any.
#[derive(Debug, Clone, Default)]
struct KvMap {
    values: HashMap<String, Value>,
}

/// A change to one key, remembered with the value it replaced.
#[derive(Debug, Clone)]
struct Mutation {
    key: String,
    before: Option<Value>,
}

impl KvMap {
    fn apply(&mut self, request: &Request, dialect: Dialect) -> (Value, Option<Mutation>) {
        let Some(key) = request.key() else {
            return (Value::Null, None);
        };
        let key = canonical(key);
        let current = self.values.get(&key).cloned();
        let (reply, after) = decide(request, current.as_ref(), dialect);
        let mutation = after.map(|after| {
            self.values.insert(key.clone(), after);
            Mutation {
                key,
                before: current,
            }
        });
        (reply, mutation)
    }
}

/// The reply to `request` against `current`, and the key's new value if the
/// request writes one.
fn decide(request: &Request, current: Option<&Value>, dialect: Dialect) -> (Value, Option<Value>) {
    match (request, current) {
        (Request::Read { .. }, Some(v)) => (json!({"type": "read_ok", "value": v}), None),
        (Request::Read { .. }, None) => (missing_key(), None),
        (Request::Write { value, .. }, _) => (json!({"type": "write_ok"}), Some(value.clone())),
        (Request::Cas { from, to, .. }, Some(v)) if v == from => {
            (json!({"type": "cas_ok"}), Some(to.clone()))
        }
        (Request::Cas { from, .. }, Some(v)) => {
            let from_text = match dialect {
                Dialect::Kv => clojure_repr(from),
                Dialect::Lww => clojure_str(from),
            };
            let text = format!("current value {} is not {}", clojure_repr(v), from_text);
            (json!({"type": "error", "code": 22, "text": text}), None)
        }
        (
            Request::Cas {
                to, create: true, ..
            },
            None,
        ) if dialect == Dialect::Kv => (json!({"type": "cas_ok"}), Some(to.clone())),
        (Request::Cas { .. }, None) => (missing_key(), None),
        (Request::Ts, _) => (Value::Null, None),
    }
}

fn missing_key() -> Value {
    json!({"type": "error", "code": 20, "text": "key does not exist"})
}

/// `seq-kv`: the latest map plus the last mutations, which is enough to
/// answer against any of the last 32 states for the one key a request names.
#[derive(Debug, Default)]
struct SeqKv {
    latest: KvMap,
    /// Mutation i (oldest first) turned state `last_index - len + i` into the
    /// next state.
    recent: VecDeque<Mutation>,
    last_index: u64,
    floors: HashMap<String, u64>,
}

impl SeqKv {
    fn handle(&mut self, src: &str, request: &Request, rng: &mut Rng) -> Value {
        let oldest = self.last_index - self.recent.len() as u64;
        let floor = self.floors.get(src).copied().unwrap_or(0).max(oldest);
        let index = rng.random_range(floor..=self.last_index);
        let Some(key) = request.key() else {
            return Value::Null;
        };
        let key = canonical(key);
        let seen = self.value_at(&key, index);
        let (reply, after) = decide(request, seen.as_ref(), Dialect::Kv);
        if after.is_none() || after == seen {
            // Changes nothing: the possibly stale answer stands.
            self.floors.insert(src.to_string(), index);
            return reply;
        }
        // A real change happens on the latest state, always appending one
        // (even if the latest state makes it a no-op or an error).
        let (reply, mutation) = self.latest.apply(request, Dialect::Kv);
        let mutation = mutation.unwrap_or_else(|| Mutation {
            key: key.clone(),
            before: self.latest.values.get(&key).cloned(),
        });
        self.push(mutation);
        self.floors.insert(src.to_string(), self.last_index);
        reply
    }

    fn push(&mut self, mutation: Mutation) {
        self.recent.push_back(mutation);
        if self.recent.len() >= SEQ_KV_STATES {
            self.recent.pop_front();
        }
        self.last_index += 1;
    }

    /// The value of `key` in state `index` (which must be retained).
    fn value_at(&self, key: &str, index: u64) -> Option<Value> {
        let mut value = self.latest.values.get(key).cloned();
        let first = self.last_index - self.recent.len() as u64;
        for (i, m) in self.recent.iter().enumerate().rev() {
            let produced = first + i as u64 + 1;
            if produced <= index {
                break;
            }
            if m.key == key {
                value = m.before.clone();
            }
        }
        value
    }
}

/// How Clojure's `pr-str` prints a JSON value (as Maelstrom's error texts do).
fn clojure_repr(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(clojure_repr).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} {}", Value::String(k.clone()), clojure_repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// How Clojure's `str` prints a JSON value (strings unquoted).
fn clojure_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => clojure_repr(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::random;

    fn services(seed: u64) -> Services {
        Services::new(random::stream(seed, "services"))
    }

    fn call(s: &mut Services, service: &str, src: &str, body: Value) -> Value {
        s.handle(service, src, &body).expect("a reply")
    }

    #[test]
    fn lin_kv_reads_writes_and_cas() {
        let mut s = services(1);
        let r = call(
            &mut s,
            "lin-kv",
            "n0",
            json!({"type":"read","key":"a","msg_id":1}),
        );
        assert_eq!(
            r,
            json!({"type":"error","code":20,"text":"key does not exist","in_reply_to":1})
        );
        call(
            &mut s,
            "lin-kv",
            "n0",
            json!({"type":"write","key":"a","value":3,"msg_id":2}),
        );
        let r = call(
            &mut s,
            "lin-kv",
            "n1",
            json!({"type":"cas","key":"a","from":4,"to":5,"msg_id":3}),
        );
        assert_eq!(r["code"], 22);
        assert_eq!(r["text"], "current value 3 is not 4");
        let r = call(
            &mut s,
            "lin-kv",
            "n1",
            json!({"type":"cas","key":"a","from":3,"to":5,"msg_id":4}),
        );
        assert_eq!(r, json!({"type":"cas_ok","in_reply_to":4}));
        let r = call(
            &mut s,
            "lin-kv",
            "n0",
            json!({"type":"cas","key":"b","from":0,"to":1,"create_if_not_exists":true,"msg_id":5}),
        );
        assert_eq!(r["type"], "cas_ok");
        let r = call(
            &mut s,
            "lin-kv",
            "n2",
            json!({"type":"read","key":"b","msg_id":6}),
        );
        assert_eq!(r["value"], 1);
    }

    #[test]
    fn keys_compare_structurally_and_by_json_type() {
        let mut s = services(1);
        call(
            &mut s,
            "lin-kv",
            "n0",
            json!({"type":"write","key":1,"value":"int","msg_id":1}),
        );
        call(
            &mut s,
            "lin-kv",
            "n0",
            json!({"type":"write","key":"1","value":"str","msg_id":2}),
        );
        call(
            &mut s,
            "lin-kv",
            "n0",
            json!({"type":"write","key":[1,{"b":2,"a":1}],"value":"vec","msg_id":3}),
        );
        let read = |s: &mut Services, key: Value| {
            call(s, "lin-kv", "n0", json!({"type":"read","key":key}))["value"].clone()
        };
        assert_eq!(read(&mut s, json!(1)), "int");
        assert_eq!(read(&mut s, json!("1")), "str");
        assert_eq!(read(&mut s, json!([1,{"a":1,"b":2}])), "vec");
        assert_eq!(
            call(&mut s, "lin-kv", "n0", json!({"type":"read","key":1.0}))["code"],
            20
        );
    }

    #[test]
    fn unknown_request_types_get_no_reply() {
        let mut s = services(1);
        assert!(
            s.handle("lin-kv", "n0", &json!({"type":"delete","key":1,"msg_id":1}))
                .is_none()
        );
        assert!(
            s.handle("lin-tso", "n0", &json!({"type":"read","msg_id":1}))
                .is_none()
        );
        assert!(s.handle("lin-kv", "n0", &json!({"msg_id":1})).is_none());
    }

    #[test]
    fn lin_tso_counts_from_zero() {
        let mut s = services(1);
        let ts: Vec<Value> = (0..3)
            .map(|i| call(&mut s, "lin-tso", "n0", json!({"type":"ts","msg_id":i}))["ts"].clone())
            .collect();
        assert_eq!(ts, vec![json!(0), json!(1), json!(2)]);
    }

    #[test]
    fn seq_kv_reads_can_be_stale_until_the_reader_writes() {
        let mut stale_reads = 0;
        for seed in 0..50 {
            let mut s = services(seed);
            for v in 1..=5 {
                call(
                    &mut s,
                    "seq-kv",
                    "n0",
                    json!({"type":"write","key":"k","value":v}),
                );
            }
            // n1 has never touched seq-kv: it may see any of the last states.
            let seen = call(&mut s, "seq-kv", "n1", json!({"type":"read","key":"k"}));
            if seen.get("value") != Some(&json!(5)) {
                stale_reads += 1;
            }
            // Its floor only moves forwards: later reads are never older.
            let again = call(&mut s, "seq-kv", "n1", json!({"type":"read","key":"k"}));
            let rank = |r: &Value| r.get("value").and_then(Value::as_i64).unwrap_or(0);
            assert!(rank(&again) >= rank(&seen));
            // After a write of its own, n1 sees the latest state.
            call(
                &mut s,
                "seq-kv",
                "n1",
                json!({"type":"write","key":"mine","value":seed}),
            );
            let fresh = call(&mut s, "seq-kv", "n1", json!({"type":"read","key":"k"}));
            assert_eq!(fresh["value"], 5);
        }
        assert!(stale_reads > 10, "stale reads happen ({stale_reads}/50)");
    }

    #[test]
    fn seq_kv_cas_can_fail_stale_but_a_real_change_uses_the_latest_state() {
        let mut stale_failures = 0;
        for seed in 0..50 {
            let mut s = services(seed);
            call(
                &mut s,
                "seq-kv",
                "n0",
                json!({"type":"write","key":"k","value":0}),
            );
            call(
                &mut s,
                "seq-kv",
                "n0",
                json!({"type":"write","key":"k","value":1}),
            );
            // n1 CASes from the latest value; against an old state the
            // precondition fails, and that stale failure is what it gets.
            let r = call(
                &mut s,
                "seq-kv",
                "n1",
                json!({"type":"cas","key":"k","from":1,"to":2}),
            );
            if r["type"] == "error" {
                assert!(r["code"] == 22 || r["code"] == 20, "{r}");
                stale_failures += 1;
            } else {
                let now = call(&mut s, "seq-kv", "n1", json!({"type":"read","key":"k"}));
                assert_eq!(now["value"], 2);
            }
        }
        assert!(
            stale_failures > 5,
            "stale CAS failures happen ({stale_failures}/50)"
        );

        // A CAS that matched an old state is re-run on the latest, where it
        // fails: the answer is the latest state's error.
        let mut s = services(3);
        call(
            &mut s,
            "seq-kv",
            "n0",
            json!({"type":"write","key":"k","value":0}),
        );
        call(
            &mut s,
            "seq-kv",
            "n0",
            json!({"type":"write","key":"k","value":1}),
        );
        for _ in 0..20 {
            let r = call(
                &mut s,
                "seq-kv",
                "n2",
                json!({"type":"cas","key":"k","from":0,"to":9}),
            );
            if r["type"] == "error" && r["code"] == 22 {
                assert!(r["text"].as_str().unwrap().starts_with("current value"));
            }
            assert_ne!(r["type"], "cas_ok", "0 is never the latest value");
        }
    }

    #[test]
    fn seq_kv_keeps_only_the_last_32_states() {
        let mut s = services(9);
        for v in 0..100 {
            call(
                &mut s,
                "seq-kv",
                "n0",
                json!({"type":"write","key":"k","value":v}),
            );
        }
        for _ in 0..200 {
            let r = call(&mut s, "seq-kv", "n5", json!({"type":"read","key":"k"}));
            let v = r["value"].as_i64().unwrap();
            assert!(v >= 99 - 31, "read {v} from beyond the retained states");
        }
    }

    #[test]
    fn lww_kv_replicas_never_converge_and_ignore_create() {
        let mut s = services(1);
        let r = call(
            &mut s,
            "lww-kv",
            "n0",
            json!({"type":"cas","key":"k","from":0,"to":1,"create_if_not_exists":true}),
        );
        assert_eq!(r["code"], 20);
        call(
            &mut s,
            "lww-kv",
            "n0",
            json!({"type":"write","key":"k","value":"x"}),
        );
        let mut missing = 0;
        for _ in 0..40 {
            if call(&mut s, "lww-kv", "n0", json!({"type":"read","key":"k"}))["type"] == "error" {
                missing += 1;
            }
        }
        assert!(
            missing > 5 && missing < 35,
            "reads bounce between replicas ({missing}/40)"
        );
    }

    #[test]
    fn error_texts_print_values_like_clojure() {
        assert_eq!(clojure_repr(&json!("a")), "\"a\"");
        assert_eq!(clojure_repr(&json!([1, "b", null])), "[1 \"b\" nil]");
        assert_eq!(clojure_repr(&json!({"x": [1]})), "{\"x\" [1]}");
        assert_eq!(clojure_str(&json!("a")), "a");
    }
}
