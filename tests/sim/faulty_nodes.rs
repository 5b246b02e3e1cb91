//! Deliberately wrong nodes: each must fail its workload's checker with the
//! anomaly its bug produces, so a checker that cannot fail cannot hide here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use glomers::runner::TestOptions;
use glomers::runner::options::{Fault, WorkloadName};
use glomers::sim::{NetworkFaults, SimOutcome, Simulation};
use glomers::{Context, ErrorCode, Message, Node};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::options;

fn assert_invalid(outcome: &SimOutcome) {
    assert_eq!(
        outcome.exit_code(),
        1,
        "expected an invalid verdict: {}\nworkload: {}",
        outcome.replay_hint(),
        outcome.results["workload"]
    );
}

// ----- echo that alters the text -------------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EchoPayload {
    Echo { echo: Value },
    EchoOk { echo: Value },
}

struct ShoutingEcho;

impl Node for ShoutingEcho {
    type Payload = EchoPayload;
    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<EchoPayload>) {
        if let EchoPayload::Echo { echo } = &msg.body.payload {
            let loud = format!("{}!", echo.as_str().unwrap_or_default());
            ctx.reply(&msg, &EchoPayload::EchoOk { echo: loud.into() });
        }
    }
}

#[test]
fn an_echo_that_alters_the_text_is_invalid() {
    let mut opts = options(WorkloadName::Echo, 1, 1);
    opts.time_limit = Duration::from_secs(5);
    let outcome = Simulation::new(opts, || ShoutingEcho).run();
    assert_invalid(&outcome);
    let errors = outcome.result(&["workload", "errors"]).as_array().unwrap();
    assert_eq!(
        errors.len(),
        outcome.result(&["stats", "count"]).as_u64().unwrap() as usize
    );
}

// ----- unique ids without the node id ----------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum IdPayload {
    Generate,
    GenerateOk { id: u64 },
}

#[derive(Default)]
struct CounterIds(u64);

impl Node for CounterIds {
    type Payload = IdPayload;
    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<IdPayload>) {
        self.0 += 1;
        ctx.reply(&msg, &IdPayload::GenerateOk { id: self.0 });
    }
}

#[test]
fn ids_that_are_only_unique_per_node_are_duplicates() {
    let mut opts = options(WorkloadName::UniqueIds, 3, 2);
    opts.time_limit = Duration::from_secs(5);
    opts.rate = 200.0;
    let outcome = Simulation::new(opts, CounterIds::default).run();
    assert_invalid(&outcome);
    assert!(
        outcome
            .result(&["workload", "duplicated-count"])
            .as_u64()
            .unwrap()
            > 100
    );
}

// ----- broadcast that gossips once and forgets ---------------------------------

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum GossipPayload {
    Topology {
        topology: BTreeMap<String, Vec<String>>,
    },
    TopologyOk,
    Broadcast {
        message: u64,
    },
    BroadcastOk,
    Read,
    ReadOk {
        messages: Vec<u64>,
    },
    Gossip {
        message: u64,
    },
}

#[derive(Default)]
struct GossipOnce {
    seen: BTreeSet<u64>,
}

impl Node for GossipOnce {
    type Payload = GossipPayload;
    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<GossipPayload>) {
        match &msg.body.payload {
            GossipPayload::Topology { .. } => ctx.reply(&msg, &GossipPayload::TopologyOk),
            GossipPayload::Broadcast { message } => {
                // Fire and forget: a message dropped by a partition is gone.
                if self.seen.insert(*message) {
                    let peers: Vec<String> = ctx.peers().cloned().collect();
                    for peer in peers {
                        ctx.send(&peer, &GossipPayload::Gossip { message: *message });
                    }
                }
                ctx.reply(&msg, &GossipPayload::BroadcastOk);
            }
            GossipPayload::Gossip { message } => {
                self.seen.insert(*message);
            }
            GossipPayload::Read => {
                let messages = self.seen.iter().copied().collect();
                ctx.reply(&msg, &GossipPayload::ReadOk { messages });
            }
            _ => {}
        }
    }
}

#[test]
fn a_broadcast_without_retries_loses_values_under_partitions() {
    let mut opts = options(WorkloadName::Broadcast, 5, 3);
    opts.time_limit = Duration::from_secs(20);
    opts.rate = 10.0;
    opts.nemesis = vec![Fault::Partition];
    opts.nemesis_interval = Duration::from_secs(3);
    let outcome = Simulation::new(opts, GossipOnce::default).run();
    assert_invalid(&outcome);
    assert!(
        outcome
            .result(&["workload", "lost-count"])
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn the_same_broadcast_is_valid_without_faults() {
    let mut opts = options(WorkloadName::Broadcast, 5, 3);
    opts.time_limit = Duration::from_secs(10);
    opts.rate = 10.0;
    let outcome = Simulation::new(opts, GossipOnce::default).run();
    assert_eq!(outcome.exit_code(), 0, "{}", outcome.results["workload"]);
}

// ----- a counter that counts gossip twice ----------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CounterPayload {
    Add { delta: i64 },
    AddOk,
    Read,
    ReadOk { value: i64 },
    Delta { delta: i64 },
}

#[derive(Default)]
struct DoubleCounter(i64);

impl Node for DoubleCounter {
    type Payload = CounterPayload;
    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<CounterPayload>) {
        match &msg.body.payload {
            CounterPayload::Add { delta } => {
                self.0 += delta;
                let peers: Vec<String> = ctx.peers().cloned().collect();
                for peer in peers {
                    ctx.send(&peer, &CounterPayload::Delta { delta: *delta });
                }
                ctx.reply(&msg, &CounterPayload::AddOk);
            }
            // The bug: a peer's delta is counted twice.
            CounterPayload::Delta { delta } => self.0 += 2 * delta,
            CounterPayload::Read => ctx.reply(&msg, &CounterPayload::ReadOk { value: self.0 }),
            _ => {}
        }
    }
}

#[test]
fn a_counter_that_double_counts_fails_its_final_reads() {
    let mut opts = options(WorkloadName::GCounter, 3, 4);
    opts.time_limit = Duration::from_secs(5);
    opts.rate = 50.0;
    let outcome = Simulation::new(opts, DoubleCounter::default).run();
    assert_invalid(&outcome);
    assert!(
        !outcome
            .result(&["workload", "errors"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

// ----- kafka whose nodes number offsets independently ------------------------------

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum KafkaPayload {
    Send {
        key: String,
        msg: Value,
    },
    SendOk {
        offset: u64,
    },
    Poll {
        offsets: BTreeMap<String, u64>,
    },
    PollOk {
        msgs: BTreeMap<String, Vec<(u64, Value)>>,
    },
    CommitOffsets {
        offsets: BTreeMap<String, u64>,
    },
    CommitOffsetsOk,
    ListCommittedOffsets {
        keys: Vec<String>,
    },
    ListCommittedOffsetsOk {
        offsets: BTreeMap<String, u64>,
    },
    Replicate {
        key: String,
        msg: Value,
    },
}

#[derive(Default)]
struct LocalOffsets {
    logs: HashMap<String, Vec<Value>>,
    committed: BTreeMap<String, u64>,
}

impl LocalOffsets {
    fn append(&mut self, key: &str, msg: Value) -> u64 {
        let log = self.logs.entry(key.to_string()).or_default();
        log.push(msg);
        log.len() as u64 - 1
    }
}

impl Node for LocalOffsets {
    type Payload = KafkaPayload;
    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<KafkaPayload>) {
        match &msg.body.payload {
            KafkaPayload::Send { key, msg: m } => {
                let offset = self.append(key, m.clone());
                let peers: Vec<String> = ctx.peers().cloned().collect();
                for peer in peers {
                    ctx.send(
                        &peer,
                        &KafkaPayload::Replicate {
                            key: key.clone(),
                            msg: m.clone(),
                        },
                    );
                }
                ctx.reply(&msg, &KafkaPayload::SendOk { offset });
            }
            // The bug: a replica appends at its own next offset.
            KafkaPayload::Replicate { key, msg: m } => {
                self.append(key, m.clone());
            }
            KafkaPayload::Poll { offsets } => {
                let mut msgs = BTreeMap::new();
                for (key, from) in offsets {
                    let log = self.logs.get(key).map(Vec::as_slice).unwrap_or_default();
                    let pairs = log.iter().enumerate().skip(*from as usize).take(10);
                    msgs.insert(
                        key.clone(),
                        pairs.map(|(o, m)| (o as u64, m.clone())).collect(),
                    );
                }
                ctx.reply(&msg, &KafkaPayload::PollOk { msgs });
            }
            KafkaPayload::CommitOffsets { offsets } => {
                self.committed.extend(offsets.clone());
                ctx.reply(&msg, &KafkaPayload::CommitOffsetsOk);
            }
            KafkaPayload::ListCommittedOffsets { keys } => {
                let offsets = keys
                    .iter()
                    .filter_map(|k| self.committed.get(k).map(|o| (k.clone(), *o)))
                    .collect();
                ctx.reply(&msg, &KafkaPayload::ListCommittedOffsetsOk { offsets });
            }
            _ => {}
        }
    }
}

#[test]
fn kafka_nodes_that_number_offsets_independently_are_inconsistent() {
    let mut opts = options(WorkloadName::Kafka, 2, 5);
    opts.concurrency = 4;
    opts.time_limit = Duration::from_secs(5);
    opts.rate = 200.0;
    // Replication must race with local sends for the logs to diverge.
    opts.latency = Duration::from_millis(10);
    let outcome = Simulation::new(opts, LocalOffsets::default).run();
    assert_invalid(&outcome);
    let bad: Vec<&str> = outcome
        .result(&["workload", "bad-error-types"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        bad.contains(&"inconsistent-offsets") || bad.contains(&"duplicate"),
        "bad error types {bad:?}"
    );
}

// ----- transactions that expose aborted writes -------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TxnPayload {
    Txn {
        txn: Vec<(String, u64, Option<u64>)>,
    },
    TxnOk {
        txn: Vec<(String, u64, Option<u64>)>,
    },
}

#[derive(Default)]
struct DirtyAborts {
    data: HashMap<u64, u64>,
    count: u64,
}

impl Node for DirtyAborts {
    type Payload = TxnPayload;
    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<TxnPayload>) {
        let TxnPayload::Txn { txn } = &msg.body.payload else {
            return;
        };
        let mut result = Vec::new();
        for (f, k, v) in txn {
            match f.as_str() {
                "r" => result.push((f.clone(), *k, self.data.get(k).copied())),
                _ => {
                    self.data.insert(*k, v.unwrap_or_default());
                    result.push((f.clone(), *k, *v));
                }
            }
        }
        // The bug: every fifth transaction "aborts" but its writes stay.
        self.count += 1;
        if self.count.is_multiple_of(5) {
            ctx.reply_error(&msg, ErrorCode::TxnConflict, "aborted");
        } else {
            ctx.reply(&msg, &TxnPayload::TxnOk { txn: result });
        }
    }
}

#[test]
fn transactions_that_leak_aborted_writes_fail_read_committed_with_g1a() {
    let mut opts = options(WorkloadName::TxnRwRegister, 1, 6);
    opts.concurrency = 2;
    opts.time_limit = Duration::from_secs(5);
    opts.rate = 200.0;
    opts.consistency_model = "read-committed".into();
    let outcome = Simulation::new(opts.clone(), DirtyAborts::default).run();
    assert_invalid(&outcome);
    let types = outcome.result(&["workload", "anomaly-types"]);
    assert!(types.as_array().unwrap().contains(&"G1a".into()), "{types}");
    // Read-uncommitted allows reading aborted writes.
    opts.consistency_model = "read-uncommitted".into();
    let outcome = Simulation::new(opts, DirtyAborts::default).run();
    assert_eq!(
        outcome.result(&["workload", "valid?"]),
        &Value::Bool(true),
        "{}",
        outcome.results["workload"]
    );
}

// ----- a key-value store that reads its local replica --------------------------------

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum KvPayload {
    Read { key: u64 },
    ReadOk { value: u64 },
    Write { key: u64, value: u64 },
    WriteOk,
    Cas { key: u64, from: u64, to: u64 },
    CasOk,
    Apply { key: u64, value: u64 },
}

#[derive(Default)]
struct LocalReplica {
    data: HashMap<u64, u64>,
}

impl LocalReplica {
    fn set(&mut self, ctx: &mut Context<Self>, key: u64, value: u64) {
        self.data.insert(key, value);
        let peers: Vec<String> = ctx.peers().cloned().collect();
        for peer in peers {
            ctx.send(&peer, &KvPayload::Apply { key, value });
        }
    }
}

impl Node for LocalReplica {
    type Payload = KvPayload;
    fn handle(&mut self, ctx: &mut Context<Self>, msg: Message<KvPayload>) {
        match msg.body.payload {
            KvPayload::Read { key } => match self.data.get(&key) {
                Some(value) => ctx.reply(&msg, &KvPayload::ReadOk { value: *value }),
                None => ctx.reply_error(&msg, ErrorCode::KeyDoesNotExist, "no such key"),
            },
            KvPayload::Write { key, value } => {
                self.set(ctx, key, value);
                ctx.reply(&msg, &KvPayload::WriteOk);
            }
            KvPayload::Cas { key, from, to } => match self.data.get(&key) {
                Some(v) if *v == from => {
                    self.set(ctx, key, to);
                    ctx.reply(&msg, &KvPayload::CasOk);
                }
                Some(_) => ctx.reply_error(&msg, ErrorCode::PreconditionFailed, "mismatch"),
                None => ctx.reply_error(&msg, ErrorCode::KeyDoesNotExist, "no such key"),
            },
            KvPayload::Apply { key, value } => {
                self.data.insert(key, value);
            }
            _ => {}
        }
    }
}

#[test]
fn a_kv_store_without_consensus_is_not_linearizable_and_says_why() {
    let mut opts: TestOptions = options(WorkloadName::LinKv, 3, 7);
    opts.concurrency = 6;
    opts.time_limit = Duration::from_secs(10);
    opts.rate = 100.0;
    opts.latency = Duration::from_millis(20);
    let outcome = Simulation::new(opts, LocalReplica::default)
        .with_faults(NetworkFaults::default())
        .run();
    assert_invalid(&outcome);
    let failures = outcome
        .result(&["workload", "failures"])
        .as_array()
        .unwrap();
    let key = failures[0].to_string();
    let witness = &outcome.results["workload"]["results"][key.as_str()];
    assert!(
        witness["op"].is_object(),
        "a failing key shows the op: {witness}"
    );
    assert!(
        witness["explanation"]
            .as_str()
            .unwrap()
            .contains("cannot be linearized")
    );
}
