//! The lin-kv workload: independent linearizable registers.
//!
//! Worker threads form groups of 2 x node-count; each group works on its
//! own key (0, 1, 2, ...). In the first group the first node-count threads
//! only read (Jepsen's `reserve` names absolute thread numbers, so later
//! groups have no readers); everyone else writes or compare-and-sets, one
//! write per two CAS, with values 0..4. A group moves on to a fresh key once
//! more than 20 distinct processes would have used its key, which happens
//! only as indeterminate operations renumber processes, and keeps each
//! key's history small enough to check. Checked per key for
//! linearizability against a CAS register.

use std::collections::HashSet;

use rand::RngExt;
use serde_json::{Value, json};

use super::{
    Checked, Client, ErrorHandling, Free, Kind, Next, OpSpec, Step, Workload, check_reply,
    complete_or_malformed,
};
use crate::checker::linearizable;
use crate::history::{History, NANOS_PER_MS, Time};
use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::runner::random::Rng;

/// Distinct processes allowed per key (Jepsen's `process-limit`).
const PROCESS_LIMIT: usize = 20;

pub struct LinKv {
    nodes: usize,
    groups: Vec<Group>,
    next_key: u64,
    timeout: Time,
}

struct Group {
    key: u64,
    processes: HashSet<u64>,
}

impl LinKv {
    pub fn new(opts: &TestOptions) -> LinKv {
        let nodes = opts.node_count();
        let group_count = opts.concurrency.div_ceil(2 * nodes).max(1);
        let groups = (0..group_count as u64)
            .map(|key| Group {
                key,
                processes: HashSet::new(),
            })
            .collect();
        // Maelstrom: max(10 x mean latency, 1 s).
        let timeout = (10 * opts.latency.as_millis() as Time).max(1000) * NANOS_PER_MS;
        LinKv {
            nodes,
            groups,
            next_key: group_count as u64,
            timeout,
        }
    }

    fn op_for(&mut self, free: Free, rng: &mut Rng) -> OpSpec {
        let group = &mut self.groups[free.thread / (2 * self.nodes)];
        if !group.processes.contains(&free.process) && group.processes.len() >= PROCESS_LIMIT {
            group.key = self.next_key;
            group.processes.clear();
            self.next_key += 1;
        }
        group.processes.insert(free.process);
        let key = group.key;
        if free.thread < self.nodes {
            return OpSpec::new("read", json!([key, null]));
        }
        if rng.random_range(0..3) == 0 {
            OpSpec::new("write", json!([key, rng.random_range(0..5)]))
        } else {
            let (from, to) = (rng.random_range(0..5), rng.random_range(0..5));
            OpSpec::new("cas", json!([key, [from, to]]))
        }
    }
}

impl Workload for LinKv {
    fn name(&self) -> WorkloadName {
        WorkloadName::LinKv
    }

    fn rpc_timeout(&self) -> Time {
        self.timeout
    }

    fn error_handling(&self) -> ErrorHandling {
        ErrorHandling::WithErrors {
            idempotent: &["read"],
        }
    }

    fn reusable_clients(&self) -> bool {
        true
    }

    fn next_op(&mut self, _now: Time, free: &[Free], rng: &mut Rng) -> Next {
        let chosen = free[0];
        Next::Op(chosen.thread, self.op_for(chosen, rng))
    }

    fn new_client(&self, _thread: usize) -> Box<dyn Client> {
        Box::new(LinKvClient)
    }

    fn check(&self, history: &History, _opts: &TestOptions) -> Checked {
        let report = linearizable::check(history, &linearizable::Options::default());
        Checked::from_report(report.validity(), &report)
    }
}

struct LinKvClient;

impl Client for LinKvClient {
    fn invoke(&mut self, op: &OpSpec) -> Step {
        let key = &op.value[0];
        Step::Request(match op.f {
            "read" => json!({"type": "read", "key": key}),
            "write" => json!({"type": "write", "key": key, "value": op.value[1]}),
            _ => json!({"type": "cas", "key": key, "from": op.value[1][0], "to": op.value[1][1]}),
        })
    }

    fn reply(&mut self, op: &OpSpec, body: &Value) -> Step {
        match op.f {
            "read" => {
                let checked = check_reply(body, "read_ok", &[("value", Kind::Any)]);
                complete_or_malformed(op, checked, || json!([op.value[0], body["value"]]))
            }
            "write" => {
                complete_or_malformed(op, check_reply(body, "write_ok", &[]), || op.value.clone())
            }
            _ => complete_or_malformed(op, check_reply(body, "cas_ok", &[]), || op.value.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::random;

    fn workload(nodes: usize, concurrency: usize) -> LinKv {
        let mut opts = TestOptions::new(WorkloadName::LinKv, "x", 1).with_node_count(nodes);
        opts.concurrency = concurrency;
        LinKv::new(&opts)
    }

    #[test]
    fn first_group_readers_and_writers_share_one_key() {
        let mut w = workload(3, 12);
        let mut rng = random::stream(1, "t");
        let op =
            |w: &mut LinKv, rng: &mut Rng, thread, process| w.op_for(Free { thread, process }, rng);
        assert_eq!(op(&mut w, &mut rng, 0, 0).f, "read");
        assert_eq!(op(&mut w, &mut rng, 2, 2).value[0], 0);
        let writer = op(&mut w, &mut rng, 3, 3);
        assert!(writer.f == "write" || writer.f == "cas");
        // The second group works on key 1 and has no readers.
        for _ in 0..20 {
            let o = op(&mut w, &mut rng, 6, 6);
            assert_eq!(o.value[0], 1);
            assert_ne!(o.f, "read");
        }
    }

    #[test]
    fn a_group_moves_to_a_fresh_key_after_twenty_processes() {
        let mut w = workload(1, 2);
        let mut rng = random::stream(2, "t");
        for process in 0..20 {
            let o = w.op_for(Free { thread: 1, process }, &mut rng);
            assert_eq!(o.value[0], 0);
        }
        let o = w.op_for(
            Free {
                thread: 0,
                process: 20,
            },
            &mut rng,
        );
        assert_eq!(o.value[0], 1, "the 21st process starts a new key");
        let o = w.op_for(
            Free {
                thread: 1,
                process: 19,
            },
            &mut rng,
        );
        assert_eq!(o.value[0], 1, "the whole group follows");
    }

    #[test]
    fn timeout_is_ten_latencies_but_at_least_a_second() {
        let mut opts = TestOptions::new(WorkloadName::LinKv, "x", 1).with_node_count(1);
        opts.concurrency = 2;
        assert_eq!(LinKv::new(&opts).timeout, 1000 * NANOS_PER_MS);
        opts.latency = std::time::Duration::from_millis(300);
        assert_eq!(LinKv::new(&opts).timeout, 3000 * NANOS_PER_MS);
    }
}
