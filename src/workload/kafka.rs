//! The kafka workload: a replicated log of string-keyed queues.
//!
//! Operations come from Elle's key pool, one micro-op each: a write becomes
//! `send` of the key's next value, a read becomes `poll` from the client's
//! current positions (then `commit_offsets` of what it got). Before an
//! operation, with probability 1/64, the client is `assign`ed the key that
//! operation touches (plus, one time in three, every key with acknowledged
//! sends no poll has returned yet). Clients also crash, each about every
//! 30 s, losing their positions. In the final phase every thread crashes,
//! rewinds every key to offset 0 and polls until it has read up to the
//! highest offset seen during the test (for at most 10 s).
//!
//! The details follow Maelstrom's `workload/kafka.clj` over Jepsen's
//! `tests/kafka.clj` (v0.3.7), including the client's bookkeeping.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::RngExt;
use serde_json::{Map, Value, json};

use super::key_pool::{KeyPool, MicroOp};
use super::{
    Checked, Client, Completion, ErrorHandling, Free, Kind, Next, OpSpec, Step, Workload,
    check_reply,
};
use crate::checker::kafka;
use crate::history::{History, NANOS_PER_MS, Op, OpType, Time};
use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::runner::random::Rng;

/// Mean seconds between crashes of one client.
const CRASH_INTERVAL_SECS: f64 = 30.0;
/// How long the final polls may take.
const FINAL_PHASE: Time = 10_000 * NANOS_PER_MS;
/// Mean time between one thread's final polls (Jepsen staggers by 0.2 s).
const FINAL_POLL_MEAN: Time = 200 * NANOS_PER_MS;
/// Marks the final phase's assign, which rewinds without asking the node.
const REWIND: &str = "seek-to-beginning";

pub struct Kafka {
    pool: KeyPool,
    concurrency: usize,
    /// A micro-op drawn but held back because an assign went first.
    pending: Option<MicroOp>,
    next_crash_at: Option<Time>,
    /// Highest offset seen per key in ok sends and polls (-1: only seen empty).
    max_offset: BTreeMap<u64, i64>,
    /// For "unseen" assigns: highest acknowledged send and polled offsets.
    max_sent: HashMap<u64, i64>,
    max_polled: HashMap<u64, i64>,
    finals: HashMap<usize, FinalThread>,
    /// The offsets final polls must reach, fixed at the first final operation.
    targets: Option<BTreeMap<u64, i64>>,
}

/// Where one thread is in the final phase.
#[derive(Debug, Clone)]
enum FinalThread {
    Crash,
    Rewind,
    Polling {
        reached: HashMap<u64, i64>,
        seen: BTreeSet<u64>,
        next_at: Time,
    },
    Done,
}

impl Kafka {
    pub fn new(opts: &TestOptions) -> Kafka {
        Kafka {
            pool: KeyPool::new(opts.key_count.unwrap_or(10), opts.max_writes_per_key),
            concurrency: opts.concurrency,
            pending: None,
            next_crash_at: Some(0),
            max_offset: BTreeMap::new(),
            max_sent: HashMap::new(),
            max_polled: HashMap::new(),
            finals: HashMap::new(),
            targets: None,
        }
    }

    /// Crashes run alongside the operations, staggered with a mean of 30 s
    /// per client; the first is due at once (tying with the first operation).
    fn crash_due(&mut self, now: Time, rng: &mut Rng) -> bool {
        let Some(at) = self.next_crash_at else {
            return false;
        };
        if now < at || (now == at && rng.random_bool(0.5)) {
            return false;
        }
        let mean = CRASH_INTERVAL_SECS / self.concurrency as f64 * 1e9;
        self.next_crash_at = Some(at.max(now) + (rng.random::<f64>() * 2.0 * mean) as Time);
        true
    }

    fn unseen_keys(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = self
            .max_sent
            .iter()
            .filter(|(k, sent)| self.max_polled.get(*k).is_none_or(|p| p < *sent))
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        keys
    }

    fn main_op(&mut self, rng: &mut Rng) -> OpSpec {
        let mop = self.pending.take().unwrap_or_else(|| self.pool.draw(rng));
        if rng.random_ratio(1, 64) {
            self.pending = Some(mop);
            let mut keys = vec![mop.key()];
            if rng.random_ratio(1, 3) {
                for k in self.unseen_keys() {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
            let keys: Vec<String> = keys.iter().map(u64::to_string).collect();
            return OpSpec::new("assign", json!(keys));
        }
        match mop {
            MicroOp::Write(k, v) => OpSpec::new("send", json!([["send", k.to_string(), v]])),
            MicroOp::Read(_) => OpSpec::new("poll", json!([["poll"]])),
        }
    }

    fn record_offsets(&mut self, completion: &Op) {
        match completion.f.as_str() {
            "send" => {
                let mop = &completion.value[0];
                if let (Some(k), Some(offset)) = (key_of(&mop[1]), mop[2][0].as_i64()) {
                    bump(&mut self.max_offset, k, offset);
                    bump_map(&mut self.max_sent, k, offset);
                }
            }
            "poll" => {
                for (k, pairs) in polled(completion) {
                    let highest = pairs
                        .iter()
                        .filter_map(|p| p[0].as_i64())
                        .max()
                        .unwrap_or(-1);
                    bump(&mut self.max_offset, k, highest);
                    if highest >= 0 {
                        bump_map(&mut self.max_polled, k, highest);
                    }
                }
            }
            _ => {}
        }
    }

    fn final_op(&mut self, now: Time, thread: usize, rng: &mut Rng) -> Next {
        let targets = self
            .targets
            .get_or_insert_with(|| self.max_offset.clone())
            .clone();
        let state = self.finals.entry(thread).or_insert(FinalThread::Crash);
        match state {
            FinalThread::Crash => {
                *state = FinalThread::Rewind;
                Next::Op(thread, OpSpec::new("crash", Value::Null))
            }
            FinalThread::Rewind => {
                *state = FinalThread::Polling {
                    reached: HashMap::new(),
                    seen: BTreeSet::new(),
                    next_at: now,
                };
                let keys: Vec<String> = targets.keys().map(u64::to_string).collect();
                let mut op = OpSpec::new("assign", json!(keys));
                op.hint = Some(REWIND);
                Next::Op(thread, op)
            }
            FinalThread::Polling {
                reached,
                seen,
                next_at,
            } => {
                let caught_up = targets.iter().all(|(k, target)| {
                    if *target < 0 {
                        seen.contains(k)
                    } else {
                        reached.get(k).is_some_and(|r| r >= target)
                    }
                });
                if caught_up {
                    *state = FinalThread::Done;
                    return Next::Done;
                }
                if now < *next_at {
                    return Next::Sleep(*next_at - now);
                }
                *next_at += (rng.random::<f64>() * 2.0 * FINAL_POLL_MEAN as f64) as Time;
                Next::Op(thread, OpSpec::new("poll", json!([["poll"]])))
            }
            FinalThread::Done => Next::Done,
        }
    }
}

fn key_of(v: &Value) -> Option<u64> {
    v.as_str().and_then(|s| s.parse().ok())
}

fn bump(map: &mut BTreeMap<u64, i64>, k: u64, offset: i64) {
    let entry = map.entry(k).or_insert(offset);
    *entry = (*entry).max(offset);
}

fn bump_map(map: &mut HashMap<u64, i64>, k: u64, offset: i64) {
    let entry = map.entry(k).or_insert(offset);
    *entry = (*entry).max(offset);
}

/// The `{key: [[offset, msg], ...]}` of an ok poll, by numeric key.
fn polled(completion: &Op) -> Vec<(u64, Vec<Value>)> {
    let Some(msgs) = completion.value[0][1].as_object() else {
        return Vec::new();
    };
    msgs.iter()
        .filter_map(|(k, pairs)| Some((k.parse().ok()?, pairs.as_array()?.clone())))
        .collect()
}

impl Workload for Kafka {
    fn name(&self) -> WorkloadName {
        WorkloadName::Kafka
    }

    fn error_handling(&self) -> ErrorHandling {
        ErrorHandling::WithErrors {
            idempotent: &["assign"],
        }
    }

    fn next_op(&mut self, now: Time, free: &[Free], rng: &mut Rng) -> Next {
        let op = if self.crash_due(now, rng) {
            OpSpec::new("crash", Value::Null)
        } else {
            self.main_op(rng)
        };
        Next::Op(free[0].thread, op)
    }

    fn has_final_phase(&self) -> bool {
        true
    }

    fn final_phase_limit(&self) -> Option<Time> {
        Some(FINAL_PHASE)
    }

    fn next_final_op(&mut self, now: Time, thread: usize, rng: &mut Rng) -> Next {
        self.final_op(now, thread, rng)
    }

    fn new_client(&self, _thread: usize) -> Box<dyn Client> {
        Box::new(KafkaClient::default())
    }

    fn observe(&mut self, thread: usize, _invoke: &Op, completion: &Op) {
        if completion.kind != OpType::Ok {
            return;
        }
        self.record_offsets(completion);
        if let (Some(FinalThread::Polling { reached, seen, .. }), "poll") =
            (self.finals.get_mut(&thread), completion.f.as_str())
        {
            for (k, pairs) in polled(completion) {
                seen.insert(k);
                if let Some(highest) = pairs.iter().filter_map(|p| p[0].as_i64()).max() {
                    bump_map(reached, k, highest);
                }
            }
        }
    }

    fn check(&self, history: &History, _opts: &TestOptions) -> Checked {
        let report = kafka::check(history);
        Checked::from_report(report.validity(), &report)
    }
}

/// A kafka client: its local positions and where it is in an operation.
#[derive(Default)]
struct KafkaClient {
    positions: BTreeMap<String, i64>,
    /// A poll's messages, kept while their commit is in flight.
    committing: Option<Value>,
}

impl Client for KafkaClient {
    fn invoke(&mut self, op: &OpSpec) -> Step {
        match op.f {
            "crash" => Step::Complete(Completion {
                kind: OpType::Info,
                value: Value::Null,
                error: None,
                exception: None,
            }),
            "assign" if op.hint == Some(REWIND) => {
                self.positions = keys(&op.value).into_iter().map(|k| (k, 0)).collect();
                Step::Complete(Completion::ok(op.value.clone()))
            }
            "assign" => Step::Request(json!({"type": "list_committed_offsets", "keys": op.value})),
            "send" => {
                let mop = &op.value[0];
                Step::Request(json!({"type": "send", "key": mop[1], "msg": mop[2]}))
            }
            _ => Step::Request(json!({"type": "poll", "offsets": self.positions})),
        }
    }

    fn reply(&mut self, op: &OpSpec, body: &Value) -> Step {
        let result = match op.f {
            "assign" => self.assigned(op, body),
            "send" => sent(op, body),
            _ if self.committing.is_some() => self.committed(body),
            _ => return self.polled(op, body),
        };
        Step::Complete(result.unwrap_or_else(|why| Completion::exception(op.value.clone(), why)))
    }
}

impl KafkaClient {
    fn assigned(&mut self, op: &OpSpec, body: &Value) -> Result<Completion, String> {
        check_reply(
            body,
            "list_committed_offsets_ok",
            &[("offsets", Kind::Object)],
        )?;
        let committed = int_map(&body["offsets"])?;
        self.positions = keys(&op.value)
            .into_iter()
            .map(|k| {
                let at = self
                    .positions
                    .get(&k)
                    .or(committed.get(&k))
                    .copied()
                    .unwrap_or(0);
                (k, at)
            })
            .collect();
        Ok(Completion::ok(op.value.clone()))
    }

    /// After a poll, positions move past what was returned and the highest
    /// offsets are committed (when anything was returned).
    fn polled(&mut self, op: &OpSpec, body: &Value) -> Step {
        let checked = check_reply(body, "poll_ok", &[("msgs", Kind::Object)])
            .and_then(|()| check_msgs(&body["msgs"]));
        if let Err(why) = checked {
            return Step::Complete(Completion::exception(op.value.clone(), why));
        }
        let msgs = &body["msgs"];
        let mut commit = Map::new();
        for (k, pairs) in msgs.as_object().into_iter().flatten() {
            let highest = pairs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p[0].as_i64())
                .max();
            let next = highest.map_or(0, |h| h + 1);
            let position = self.positions.entry(k.clone()).or_insert(next);
            *position = (*position).max(next);
            if let Some(h) = highest {
                commit.insert(k.clone(), json!(h));
            }
        }
        if commit.is_empty() {
            return Step::Complete(Completion::ok(json!([["poll", msgs]])));
        }
        self.committing = Some(msgs.clone());
        Step::Request(json!({"type": "commit_offsets", "offsets": commit}))
    }

    fn committed(&mut self, body: &Value) -> Result<Completion, String> {
        let msgs = self.committing.take().unwrap_or(Value::Null);
        check_reply(body, "commit_offsets_ok", &[])?;
        Ok(Completion::ok(json!([["poll", msgs]])))
    }
}

fn sent(op: &OpSpec, body: &Value) -> Result<Completion, String> {
    check_reply(body, "send_ok", &[("offset", Kind::Integer)])?;
    let mop = &op.value[0];
    Ok(Completion::ok(json!([[
        "send",
        mop[1],
        [body["offset"], mop[2]]
    ]])))
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(String::from))
        .collect()
}

fn int_map(value: &Value) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in value.as_object().into_iter().flatten() {
        let offset = v.as_i64().ok_or_else(|| {
            format!("malformed RPC response: offset for {k} is not an integer: {v}")
        })?;
        out.insert(k.clone(), offset);
    }
    Ok(out)
}

/// `msgs` must map keys to lists of exactly-two-element `[offset, msg]`
/// pairs with integer offsets.
fn check_msgs(msgs: &Value) -> Result<(), String> {
    for (k, pairs) in msgs.as_object().into_iter().flatten() {
        let Some(pairs) = pairs.as_array() else {
            return Err(format!(
                "malformed RPC response: msgs[{k}] is not a list: {pairs}"
            ));
        };
        for pair in pairs {
            let good = pair
                .as_array()
                .is_some_and(|p| p.len() == 2 && (p[0].is_i64() || p[0].is_u64()));
            if !good {
                return Err(format!(
                    "malformed RPC response: msgs[{k}] holds {pair}, not [offset, msg]"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;
    use crate::runner::random;

    fn ok(step: Step) -> Value {
        match step {
            Step::Complete(c) if c.kind == OpType::Ok => c.value,
            other => panic!("expected ok, got {other:?}"),
        }
    }

    #[test]
    fn a_poll_advances_positions_and_commits_what_it_returned() {
        let mut client = KafkaClient::default();
        let poll = OpSpec::new("poll", json!([["poll"]]));
        assert_eq!(
            client.invoke(&poll),
            Step::Request(json!({"type": "poll", "offsets": {}}))
        );
        let reply = json!({"type":"poll_ok","msgs":{"5":[[3,30],[4,40]],"7":[]},"in_reply_to":1});
        assert_eq!(
            client.reply(&poll, &reply),
            Step::Request(json!({"type": "commit_offsets", "offsets": {"5": 4}}))
        );
        let value = ok(client.reply(&poll, &json!({"type":"commit_offsets_ok","in_reply_to":2})));
        assert_eq!(value, json!([["poll", {"5":[[3,30],[4,40]],"7":[]}]]));
        assert_eq!(
            client.positions,
            BTreeMap::from([("5".to_string(), 5), ("7".to_string(), 0)])
        );
    }

    #[test]
    fn an_assign_keeps_known_positions_then_committed_offsets_then_zero() {
        let mut client = KafkaClient::default();
        client.positions.insert("1".into(), 9);
        client.positions.insert("2".into(), 4);
        let assign = OpSpec::new("assign", json!(["1", "3", "4"]));
        assert!(matches!(client.invoke(&assign), Step::Request(_)));
        let reply =
            json!({"type":"list_committed_offsets_ok","offsets":{"1":2,"3":7},"in_reply_to":1});
        ok(client.reply(&assign, &reply));
        let expected: BTreeMap<String, i64> = [("1", 9), ("3", 7), ("4", 0)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        assert_eq!(client.positions, expected, "key 2 is dropped");
    }

    #[test]
    fn sends_record_their_offset_and_bad_replies_are_exceptions() {
        let mut client = KafkaClient::default();
        let send = OpSpec::new("send", json!([["send", "5", 3]]));
        assert_eq!(
            client.invoke(&send),
            Step::Request(json!({"type":"send","key":"5","msg":3}))
        );
        let value = ok(client.reply(
            &send,
            &json!({"type":"send_ok","offset":17,"in_reply_to":1}),
        ));
        assert_eq!(value, json!([["send", "5", [17, 3]]]));
        let poll = OpSpec::new("poll", json!([["poll"]]));
        client.invoke(&poll);
        let Step::Complete(c) = client.reply(
            &poll,
            &json!({"type":"poll_ok","msgs":{"5":[[1]]},"in_reply_to":2}),
        ) else {
            panic!()
        };
        assert_eq!(c.kind, OpType::Info);
    }

    #[test]
    fn the_generator_mixes_sends_polls_assigns_and_crashes() {
        let opts = TestOptions::new(WorkloadName::Kafka, "x", 1).with_node_count(2);
        let mut w = Kafka::new(&opts);
        let mut rng = random::stream(3, "t");
        let free = [Free {
            thread: 0,
            process: 0,
        }];
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for i in 0..20_000u64 {
            let Next::Op(_, op) = w.next_op(i * NANOS_PER_MS, &free, &mut rng) else {
                panic!()
            };
            *counts.entry(op.f).or_default() += 1;
        }
        assert!((counts["send"] as f64 / 20_000.0 - 0.49).abs() < 0.03);
        assert!((counts["poll"] as f64 / 20_000.0 - 0.49).abs() < 0.03);
        assert!((200..450).contains(&counts["assign"]), "{counts:?}");
        // 20 s with 2 clients crashing every 30 s on average.
        assert!((1..=5).contains(&counts["crash"]), "{counts:?}");
    }

    #[test]
    fn final_threads_crash_rewind_and_poll_until_caught_up() {
        let opts = TestOptions::new(WorkloadName::Kafka, "x", 1).with_node_count(1);
        let mut w = Kafka::new(&opts);
        let mut rng = random::stream(4, "t");
        let send = Op::new(
            1,
            0,
            OpType::Ok,
            Process::Client(0),
            "send",
            json!([["send", "3", [5, 1]]]),
        );
        w.observe(0, &send, &send);
        let Next::Op(_, crash) = w.next_final_op(0, 0, &mut rng) else {
            panic!()
        };
        assert_eq!(crash.f, "crash");
        let Next::Op(_, rewind) = w.next_final_op(0, 0, &mut rng) else {
            panic!()
        };
        assert_eq!(
            (rewind.f, rewind.value.clone(), rewind.hint),
            ("assign", json!(["3"]), Some(REWIND))
        );
        let Next::Op(_, poll) = w.next_final_op(0, 0, &mut rng) else {
            panic!()
        };
        assert_eq!(poll.f, "poll");
        let short = Op::new(
            3,
            0,
            OpType::Ok,
            Process::Client(0),
            "poll",
            json!([["poll", {"3": [[4, 9]]}]]),
        );
        w.observe(0, &short, &short);
        assert!(matches!(
            w.next_final_op(10 * FINAL_POLL_MEAN, 0, &mut rng),
            Next::Op(..)
        ));
        let done = Op::new(
            5,
            0,
            OpType::Ok,
            Process::Client(0),
            "poll",
            json!([["poll", {"3": [[5, 1]]}]]),
        );
        w.observe(0, &done, &done);
        assert_eq!(
            w.next_final_op(20 * FINAL_POLL_MEAN, 0, &mut rng),
            Next::Done
        );
    }
}
