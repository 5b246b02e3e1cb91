//! Engine tests: a host's view, driving the engine by hand.

use super::*;
use crate::runner::options::WorkloadName;
use std::time::Duration;

fn engine(workload: WorkloadName, nodes: usize, tweak: impl FnOnce(&mut TestOptions)) -> Engine {
    let mut opts = TestOptions::new(workload, "x", 1).with_node_count(nodes);
    tweak(&mut opts);
    let w = crate::workload::build(&opts).unwrap();
    Engine::new(opts, w, Journal::in_memory())
}

fn lines(engine: &mut Engine) -> Vec<(usize, Value)> {
    engine
        .take_deliveries()
        .into_iter()
        .map(|d| (d.node, serde_json::from_slice(&d.line).unwrap()))
        .collect()
}

/// Answers every delivered request the way a well-behaved echo node would.
fn answer(engine: &mut Engine, now: Time, delivered: &[(usize, Value)]) {
    for (node, msg) in delivered {
        let body = &msg["body"];
        let reply = match body["type"].as_str().unwrap() {
            "init" => json!({"type": "init_ok"}),
            "echo" => json!({"type": "echo_ok", "echo": body["echo"]}),
            other => panic!("unexpected {other}"),
        };
        let mut reply = reply;
        reply["in_reply_to"] = body["msg_id"].clone();
        let out = json!({"src": msg["dest"], "dest": msg["src"], "body": reply});
        engine.node_output(*node, out.to_string().as_bytes(), now);
    }
}

#[test]
fn init_comes_from_c0_with_ids_and_the_first_worker_client_is_c2() {
    let mut e = engine(WorkloadName::Echo, 1, |_| {});
    e.start();
    e.run_until(0);
    let init = lines(&mut e);
    assert_eq!(init.len(), 1);
    let msg = &init[0].1;
    assert_eq!(msg["id"], 0);
    assert_eq!(msg["src"], "c0");
    assert_eq!(
        msg["body"],
        json!({"type": "init", "node_id": "n0", "node_ids": ["n0"], "msg_id": 1})
    );
    answer(&mut e, 1, &init);
    e.run_until(1);
    assert_eq!(e.phase(), Phase::Main);
    let first = lines(&mut e);
    assert_eq!(first[0].1["src"], "c2", "c1 is the setup client");
    assert_eq!(
        first[0].1["body"]["msg_id"], 1,
        "each client numbers from 1"
    );
    assert!(
        first[0].1["id"].as_u64().unwrap() >= 2,
        "global ids keep counting"
    );
}

#[test]
fn an_unanswered_init_crashes_the_test_after_ten_seconds() {
    let mut e = engine(WorkloadName::Echo, 2, |_| {});
    e.start();
    e.run_until(0);
    let init = lines(&mut e);
    answer(&mut e, 1, &init[..1]);
    e.run_until(INIT_TIMEOUT - 1);
    assert!(!e.is_done());
    e.run_until(INIT_TIMEOUT);
    assert!(e.is_done());
    assert!(
        e.crashed().unwrap().0.contains("node n1"),
        "{:?}",
        e.crashed()
    );
}

#[test]
fn a_timed_out_operation_retires_its_process_and_client() {
    let mut e = engine(WorkloadName::Echo, 1, |o| {
        o.rate = 1000.0;
        o.time_limit = Duration::from_secs(30);
    });
    e.start();
    e.run_until(0);
    let init = lines(&mut e);
    answer(&mut e, 0, &init);
    e.run_until(0);
    // The node never answers: the echo times out after 5 s.
    let first = lines(&mut e);
    assert_eq!(first[0].1["src"], "c2");
    e.run_until(5_000 * NANOS_PER_MS);
    let history = e.history().to_vec();
    let info = history
        .iter()
        .find(|op| op.kind == OpType::Info)
        .expect("an info op");
    assert_eq!(info.process, Process::Client(0));
    assert_eq!(info.error, Some(json!("net-timeout")));
    let next = lines(&mut e);
    assert_eq!(
        next[0].1["src"], "c3",
        "a fresh client replaces the old one"
    );
    let invoke = e.history().last().unwrap();
    assert_eq!(
        invoke.process,
        Process::Client(1),
        "process 0 + concurrency 1"
    );
}

#[test]
fn partitions_drop_node_traffic_at_the_receiver_but_never_client_traffic() {
    let mut e = engine(WorkloadName::Echo, 2, |_| {});
    e.start();
    e.run_until(0);
    let init = lines(&mut e);
    answer(&mut e, 0, &init);
    e.run_until(0);
    lines(&mut e);
    e.grudge.drop_from("n1", "n0");
    let to_n1 = json!({"src": "n0", "dest": "n1", "body": {"type": "gossip"}}).to_string();
    let to_n0 = json!({"src": "n1", "dest": "n0", "body": {"type": "gossip"}}).to_string();
    e.node_output(0, to_n1.as_bytes(), 1);
    e.node_output(1, to_n0.as_bytes(), 1);
    e.run_until(2);
    let delivered: Vec<(usize, String)> = lines(&mut e)
        .into_iter()
        .map(|(n, m)| (n, m["src"].as_str().unwrap().to_string()))
        .filter(|(_, src)| src.starts_with('n'))
        .collect();
    assert_eq!(
        delivered,
        vec![(0, "n1".to_string())],
        "n1 drops n0, not the reverse"
    );
    assert_eq!(e.journal().stats.dropped, 1);
}

#[test]
fn a_message_in_flight_when_the_partition_heals_is_delivered() {
    let mut e = engine(WorkloadName::Echo, 2, |o| {
        o.latency = Duration::from_millis(100)
    });
    e.start();
    e.run_until(0);
    let init = lines(&mut e);
    answer(&mut e, 0, &init);
    e.run_until(0);
    lines(&mut e);
    e.grudge.drop_from("n1", "n0");
    let msg = json!({"src": "n0", "dest": "n1", "body": {"type": "gossip"}}).to_string();
    e.node_output(0, msg.as_bytes(), 10 * NANOS_PER_MS);
    e.grudge = Grudge::default();
    e.run_until(110 * NANOS_PER_MS);
    let got: Vec<usize> = lines(&mut e)
        .into_iter()
        .filter(|(_, m)| m["src"] == "n0")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(got, vec![1], "partitions apply at delivery time");
}

#[test]
fn rate_limits_the_operations_and_the_first_starts_at_once() {
    let mut e = engine(WorkloadName::Echo, 1, |o| {
        o.rate = 20.0;
        o.time_limit = Duration::from_secs(10);
    });
    e.start();
    let mut now = 0;
    while !e.is_done() {
        e.run_until(now);
        let delivered = lines(&mut e);
        answer(&mut e, now, &delivered);
        e.run_until(now);
        now = e.next_event_time().unwrap_or(now + 1);
    }
    let invokes: Vec<&Op> = e.history().iter().filter(|o| o.is_invoke()).collect();
    assert_eq!(invokes[0].time, 0);
    assert!(
        (170..=230).contains(&invokes.len()),
        "about 200 ops, got {}",
        invokes.len()
    );
    assert!(e.history().iter().all(|o| o.kind != OpType::Info));
}

#[test]
fn a_killed_node_gets_nothing_until_it_restarts_and_is_initialised_again() {
    let mut e = engine(WorkloadName::Echo, 2, |_| {});
    e.start();
    e.run_until(0);
    let init = lines(&mut e);
    answer(&mut e, 0, &init);
    e.run_until(0);
    lines(&mut e);
    e.node_states[1] = NodeState::Down;
    let to_n1 = json!({"src": "n0", "dest": "n1", "body": {"type": "gossip"}}).to_string();
    e.node_output(0, to_n1.as_bytes(), 1);
    let from_dead = json!({"src": "n1", "dest": "n0", "body": {"type": "late"}}).to_string();
    e.node_output(1, from_dead.as_bytes(), 1);
    e.run_until(2);
    assert!(
        lines(&mut e)
            .iter()
            .all(|(_, m)| m["body"]["type"] == "echo")
    );
    assert_eq!(e.journal().stats.to_down_nodes, 1);
    e.node_exited(1, "killed");
    assert!(e.crashed().is_none(), "a killed node's exit is expected");
    e.restart_nodes();
    assert_eq!(e.take_host_commands(), vec![HostCommand::Restart(1)]);
    e.run_until(3);
    let init = lines(&mut e);
    let again = init
        .iter()
        .find(|(n, m)| *n == 1 && m["body"]["type"] == "init")
        .expect("init again");
    assert!(
        again.1["src"].as_str().unwrap() > "c2",
        "from a fresh init client"
    );
    let restart = e.history().iter().rev().find(|op| op.f == "start").unwrap();
    assert_eq!(restart.value, json!(["started", ["n1"]]));
}
