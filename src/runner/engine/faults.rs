//! The nemesis: partitions, kills and pauses, and how they are recorded.

use serde_json::{Value, json};

use super::*;

impl Engine {
    // ----- Nemesis -------------------------------------------------------------------------

    pub(super) fn nemesis_step(&mut self) {
        if self.phase != Phase::Main {
            return;
        }
        let Some(schedule) = &mut self.nemesis else {
            return;
        };
        let (fault, start, delay) = schedule.next(&mut self.nemesis_rng);
        match (fault, start) {
            (Fault::Partition, true) => self.start_partition(),
            (Fault::Partition, false) => self.stop_partition(),
            (Fault::Kill, true) => self.kill_nodes(),
            (Fault::Kill, false) => self.restart_nodes(),
            (Fault::Pause, true) => self.pause_nodes(),
            (Fault::Pause, false) => self.resume_nodes(),
        }
        self.schedule(delay, Event::Nemesis);
    }

    /// Ends every fault before the final phase, as Jepsen's final
    /// generators do (each fault's stop op is recorded even if idle).
    pub(super) fn heal_all(&mut self) {
        let Some(schedule) = &mut self.nemesis else {
            return;
        };
        let faults = schedule.faults().to_vec();
        schedule.reset();
        for fault in faults {
            match fault {
                Fault::Partition => self.stop_partition(),
                Fault::Kill => self.restart_nodes(),
                Fault::Pause => self.resume_nodes(),
            }
        }
    }

    pub(super) fn start_partition(&mut self) {
        let spec = PartitionSpec::random(&mut self.nemesis_rng);
        self.grudge = spec.grudge(&self.opts.nodes, &mut self.nemesis_rng);
        let value = json!(["isolated", self.grudge.to_json()]);
        self.record_nemesis("start-partition", json!(spec.name()), value);
        self.info(format!(
            "partition {}: {}",
            spec.name(),
            self.grudge.to_json()
        ));
    }

    pub(super) fn stop_partition(&mut self) {
        self.grudge = Grudge::default();
        self.record_nemesis("stop-partition", Value::Null, json!("network-healed"));
        self.info("network healed".into());
    }

    pub(super) fn nodes_in(&self, state: NodeState) -> Vec<usize> {
        (0..self.node_states.len())
            .filter(|n| self.node_states[*n] == state)
            .collect()
    }

    pub(super) fn names(&self, nodes: &[usize]) -> Value {
        json!(
            nodes
                .iter()
                .map(|n| &self.opts.nodes[*n])
                .collect::<Vec<_>>()
        )
    }

    pub(super) fn kill_nodes(&mut self) {
        let candidates = self.nodes_in(NodeState::Up);
        let victims = nemesis::minority(&candidates, self.node_states.len(), &mut self.nemesis_rng);
        for node in &victims {
            self.node_states[*node] = NodeState::Down;
            self.commands.push(HostCommand::Kill(*node));
        }
        let names = self.names(&victims);
        self.record_nemesis("kill", json!("minority"), json!(["killed", names]));
        self.info(format!("killed {names}"));
    }

    /// Restarts every killed node with a fresh process and sends it init.
    pub(super) fn restart_nodes(&mut self) {
        let down = self.nodes_in(NodeState::Down);
        for node in &down {
            self.node_states[*node] = NodeState::Up;
            self.commands.push(HostCommand::Restart(*node));
            let client = self.open_client(Role::Init(*node));
            let body = json!({
                "type": "init",
                "node_id": self.opts.nodes[*node],
                "node_ids": self.opts.nodes,
            });
            self.request(&client, *node, body, INIT_TIMEOUT);
        }
        let names = self.names(&down);
        self.record_nemesis("start", Value::Null, json!(["started", names]));
        if !down.is_empty() {
            self.info(format!("restarted {names}"));
        }
    }

    pub(super) fn pause_nodes(&mut self) {
        let candidates = self.nodes_in(NodeState::Up);
        let victims = nemesis::minority(&candidates, self.node_states.len(), &mut self.nemesis_rng);
        for node in &victims {
            self.node_states[*node] = NodeState::Paused;
            self.commands.push(HostCommand::Pause(*node));
        }
        let names = self.names(&victims);
        self.record_nemesis("pause", json!("minority"), json!(["paused", names]));
        self.info(format!("paused {names}"));
    }

    pub(super) fn resume_nodes(&mut self) {
        let paused = self.nodes_in(NodeState::Paused);
        for node in &paused {
            self.node_states[*node] = NodeState::Up;
            self.commands.push(HostCommand::Resume(*node));
        }
        let names = self.names(&paused);
        self.record_nemesis("resume", Value::Null, json!(["resumed", names]));
        if !paused.is_empty() {
            self.info(format!("resumed {names}"));
        }
    }

    /// Nemesis operations are recorded as Jepsen does: two `info` entries.
    pub(super) fn record_nemesis(&mut self, f: &str, invoke_value: Value, result: Value) {
        let time = self.history_time();
        for value in [invoke_value, result] {
            let op = Op::new(
                self.history.len(),
                time,
                OpType::Info,
                Process::Nemesis,
                f,
                value,
            );
            self.history.push(op);
        }
    }
}
