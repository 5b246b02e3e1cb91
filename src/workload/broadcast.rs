//! The broadcast workload: every node first gets a `topology` (its
//! neighbours, by `--topology`); then half the operations broadcast the next
//! integer and half read a node's messages; a final read per worker after
//! the network heals. Checked by set-full, with `broadcast` as the add.

use std::collections::BTreeMap;

use rand::RngExt;
use serde_json::{Value, json};

use super::g_set::once_per_thread;
use super::{
    Checked, Client, ErrorHandling, Free, Kind, Next, OpSpec, Step, Workload, check_reply,
    complete_or_malformed,
};
use crate::checker::set_full;
use crate::history::{History, Time};
use crate::runner::TestOptions;
use crate::runner::options::{Topology, WorkloadName};
use crate::runner::random::Rng;

pub struct Broadcast {
    topology: BTreeMap<String, Vec<String>>,
    next_message: u64,
    finished: Vec<usize>,
}

impl Broadcast {
    pub fn new(opts: &TestOptions) -> Broadcast {
        Broadcast {
            topology: topology(opts.topology, &opts.nodes),
            next_message: 0,
            finished: Vec::new(),
        }
    }
}

/// Each node's neighbours for a topology, as Maelstrom computes them.
pub fn topology(kind: Topology, nodes: &[String]) -> BTreeMap<String, Vec<String>> {
    let n = nodes.len();
    let pick = |indices: Vec<usize>| indices.into_iter().map(|i| nodes[i].clone()).collect();
    let mut map = BTreeMap::new();
    match kind {
        Topology::Grid => {
            let side = (n as f64).sqrt().ceil() as i64;
            let at = |row: i64, col: i64| -> Option<usize> {
                let index = row * side + col;
                (row >= 0 && (0..side).contains(&col) && index < n as i64).then_some(index as usize)
            };
            for (i, node) in nodes.iter().enumerate() {
                let (row, col) = (i as i64 / side, i as i64 % side);
                let neighbours = [
                    (row + 1, col),
                    (row - 1, col),
                    (row, col + 1),
                    (row, col - 1),
                ];
                map.insert(
                    node.clone(),
                    pick(neighbours.iter().filter_map(|(r, c)| at(*r, *c)).collect()),
                );
            }
        }
        Topology::Line if n >= 2 => {
            for (i, node) in nodes.iter().enumerate() {
                let neighbours = [i.checked_sub(1), (i + 1 < n).then_some(i + 1)];
                map.insert(
                    node.clone(),
                    pick(neighbours.into_iter().flatten().collect()),
                );
            }
        }
        Topology::Line => {}
        Topology::Total => {
            for (i, node) in nodes.iter().enumerate() {
                map.insert(node.clone(), pick((0..n).filter(|j| *j != i).collect()));
            }
        }
        Topology::Tree2 | Topology::Tree3 | Topology::Tree4 => {
            let b = match kind {
                Topology::Tree2 => 2,
                Topology::Tree3 => 3,
                _ => 4,
            };
            for (i, node) in nodes.iter().enumerate() {
                let parent = (i > 0).then(|| (i - 1) / b);
                let children = (b * i + 1..=b * i + b).filter(|c| *c < n);
                map.insert(
                    node.clone(),
                    pick(parent.into_iter().chain(children).collect()),
                );
            }
        }
    }
    map
}

impl Workload for Broadcast {
    fn name(&self) -> WorkloadName {
        WorkloadName::Broadcast
    }

    fn error_handling(&self) -> ErrorHandling {
        ErrorHandling::WithErrors {
            idempotent: &["read"],
        }
    }

    fn setup_request(&self, _node: &str) -> Option<Value> {
        Some(json!({"type": "topology", "topology": self.topology}))
    }

    fn setup_reply_type(&self) -> &'static str {
        "topology_ok"
    }

    fn next_op(&mut self, _now: Time, free: &[Free], rng: &mut Rng) -> Next {
        if rng.random_bool(0.5) {
            self.next_message += 1;
            Next::Op(
                free[0].thread,
                OpSpec::new("broadcast", json!(self.next_message - 1)),
            )
        } else {
            Next::Op(free[0].thread, OpSpec::new("read", Value::Null))
        }
    }

    fn has_final_phase(&self) -> bool {
        true
    }

    fn next_final_op(&mut self, _now: Time, thread: usize, _rng: &mut Rng) -> Next {
        once_per_thread(&mut self.finished, thread, || {
            OpSpec::new("read", Value::Null).final_op()
        })
    }

    fn new_client(&self, _thread: usize) -> Box<dyn Client> {
        Box::new(BroadcastClient)
    }

    fn check(&self, history: &History, _opts: &TestOptions) -> Checked {
        let report = set_full::check(history, "broadcast");
        Checked::from_report(report.valid, &report)
    }
}

struct BroadcastClient;

impl Client for BroadcastClient {
    fn invoke(&mut self, op: &OpSpec) -> Step {
        match op.f {
            "broadcast" => Step::Request(json!({"type": "broadcast", "message": op.value})),
            _ => Step::Request(json!({"type": "read"})),
        }
    }

    fn reply(&mut self, op: &OpSpec, body: &Value) -> Step {
        match op.f {
            "broadcast" => {
                complete_or_malformed(op, check_reply(body, "broadcast_ok", &[]), || {
                    op.value.clone()
                })
            }
            _ => complete_or_malformed(
                op,
                check_reply(body, "read_ok", &[("messages", Kind::Array)]),
                || body["messages"].clone(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    fn neighbours<'a>(t: &'a BTreeMap<String, Vec<String>>, node: &str) -> Vec<&'a str> {
        t[node].iter().map(String::as_str).collect()
    }

    #[test]
    fn grid_topology_orders_neighbours_down_up_right_left() {
        let t = topology(Topology::Grid, &nodes(5));
        // side 3: n0 n1 n2 / n3 n4
        assert_eq!(neighbours(&t, "n0"), ["n3", "n1"]);
        assert_eq!(neighbours(&t, "n1"), ["n4", "n2", "n0"]);
        assert_eq!(neighbours(&t, "n2"), ["n1"]);
        assert_eq!(neighbours(&t, "n4"), ["n1", "n3"]);
        let t25 = topology(Topology::Grid, &nodes(25));
        assert_eq!(neighbours(&t25, "n12"), ["n17", "n7", "n13", "n11"]);
    }

    #[test]
    fn line_total_and_tree_topologies() {
        let line = topology(Topology::Line, &nodes(3));
        assert_eq!(neighbours(&line, "n0"), ["n1"]);
        assert_eq!(neighbours(&line, "n1"), ["n0", "n2"]);
        assert!(topology(Topology::Line, &nodes(1)).is_empty());
        let total = topology(Topology::Total, &nodes(3));
        assert_eq!(neighbours(&total, "n1"), ["n0", "n2"]);
        let tree = topology(Topology::Tree2, &nodes(6));
        assert_eq!(neighbours(&tree, "n0"), ["n1", "n2"]);
        assert_eq!(neighbours(&tree, "n1"), ["n0", "n3", "n4"]);
        assert_eq!(neighbours(&tree, "n2"), ["n0", "n5"]);
        let tree4 = topology(Topology::Tree4, &nodes(6));
        assert_eq!(neighbours(&tree4, "n0"), ["n1", "n2", "n3", "n4"]);
        assert_eq!(neighbours(&tree4, "n5"), ["n1"]);
    }
}
