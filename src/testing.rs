//! A hand-driven cluster for unit tests of a node's logic: nodes `n0..`
//! in one process, each behind a [`Runtime`], on a network the test steps
//! itself. Messages between nodes wait on the wire until the test delivers
//! them (or drops them, to cut links); everything else a node sends (replies
//! to clients, requests to services) is collected in `replies`.
//!
//! ```
//! use glomers::solutions::echo::EchoNode;
//! use glomers::testing::Cluster;
//! use serde_json::json;
//!
//! let mut c = Cluster::with_nodes(vec![None], |_| EchoNode);
//! let reply = c.call(0, json!({"type": "echo", "echo": "hi"})).unwrap();
//! assert_eq!(reply["echo"], "hi");
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::node::{Node, Runtime};

/// How often [`Cluster::run_for`] fires timers and delivers.
const STEP: Duration = Duration::from_millis(10);

pub struct Cluster<N: Node> {
    pub nodes: Vec<Runtime<N>>,
    /// Virtual time, as the nodes see it.
    pub now: Duration,
    /// Node-to-node messages not delivered yet.
    pub wire: Vec<Value>,
    /// Everything else the nodes sent, oldest first.
    pub replies: Vec<Value>,
    next_msg_id: u64,
}

impl<N: Node + Default> Cluster<N> {
    /// `n` default nodes without data directories, initialised.
    pub fn new(n: usize) -> Cluster<N> {
        Cluster::with_dirs(vec![None; n])
    }

    /// Default nodes, one per entry, with those data directories.
    pub fn with_dirs(dirs: Vec<Option<PathBuf>>) -> Cluster<N> {
        Cluster::with_nodes(dirs, |_| N::default())
    }
}

impl<N: Node> Cluster<N> {
    /// Nodes made by `make(index)`, one per entry of `dirs` (their data
    /// directories), seeded with their index and initialised.
    pub fn with_nodes(dirs: Vec<Option<PathBuf>>, make: impl Fn(usize) -> N) -> Cluster<N> {
        let mut cluster = Cluster {
            nodes: Vec::new(),
            now: Duration::ZERO,
            wire: Vec::new(),
            replies: Vec::new(),
            next_msg_id: 1,
        };
        for (i, dir) in dirs.into_iter().enumerate() {
            cluster
                .nodes
                .push(Runtime::new(make(i), i as u64).with_data_dir(dir));
        }
        for i in 0..cluster.nodes.len() {
            cluster.init(i);
        }
        cluster
    }

    /// Sends node `node` its `init` (again, after a test replaced it to
    /// model a restart) and forgets the `init_ok`.
    pub fn init(&mut self, node: usize) {
        let ids: Vec<String> = (0..self.nodes.len()).map(|i| format!("n{i}")).collect();
        let init = json!({"src": "c0", "dest": ids[node], "body":
            {"type": "init", "node_id": ids[node], "node_ids": ids, "msg_id": 1}});
        self.input(node, &init);
        self.replies.clear();
    }

    /// Hands `message` to node `node` and collects what it sends.
    pub fn input(&mut self, node: usize, message: &Value) {
        let line = message.to_string();
        self.nodes[node]
            .handle_line(&line, self.now)
            .expect("a well-formed message");
        self.collect(node);
    }

    /// Moves what node `node` printed onto the wire or into `replies`.
    pub fn collect(&mut self, node: usize) {
        let output = self.nodes[node].take_output();
        for line in output.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let message: Value = serde_json::from_slice(line).expect("nodes print JSON");
            match message["dest"].as_str() {
                Some(dest) if is_node(dest) => self.wire.push(message),
                _ => self.replies.push(message),
            }
        }
    }

    /// Sends a client request (its `msg_id` filled in); returns the reply's
    /// body if the node answered at once.
    pub fn call(&mut self, node: usize, mut body: Value) -> Option<Value> {
        body["msg_id"] = json!(self.next_msg_id);
        self.next_msg_id += 1;
        let request = json!({"src": "c1", "dest": format!("n{node}"), "body": body});
        self.input(node, &request);
        self.take_reply()
    }

    /// The oldest collected reply's body.
    pub fn take_reply(&mut self) -> Option<Value> {
        (!self.replies.is_empty()).then(|| self.replies.remove(0)["body"].clone())
    }

    /// Delivers messages, and what they cause, until the wire is empty,
    /// dropping those `cut(src, dest)` rejects.
    pub fn deliver_unless(&mut self, cut: impl Fn(usize, usize) -> bool) {
        while !self.wire.is_empty() {
            for message in std::mem::take(&mut self.wire) {
                let index = |field: &str| node_index(message[field].as_str().unwrap_or(""));
                let (src, dest) = (index("src"), index("dest"));
                if !cut(src, dest) {
                    self.input(dest, &message);
                }
            }
        }
    }

    /// Delivers everything on the wire.
    pub fn deliver(&mut self) {
        self.deliver_unless(|_, _| false);
    }

    /// Lets `ms` milliseconds pass in 10 ms steps, firing timers and
    /// delivering what `cut(src, dest)` lets through.
    pub fn run_for(&mut self, ms: u64, cut: impl Fn(usize, usize) -> bool + Copy) {
        for _ in 0..ms / STEP.as_millis() as u64 {
            self.now += STEP;
            for node in 0..self.nodes.len() {
                self.nodes[node].fire_timers(self.now);
                self.collect(node);
            }
            self.deliver_unless(cut);
        }
    }

    /// Runs 200 ms with every link up.
    pub fn settle(&mut self) {
        self.run_for(200, |_, _| false);
    }
}

fn is_node(id: &str) -> bool {
    id.strip_prefix('n')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn node_index(id: &str) -> usize {
    id[1..].parse().expect("a node id n<index>")
}
