//! Internal clients (init, setup and worker connections) and the
//! lifecycle of one operation: invoke, requests, replies, errors and
//! timeouts, completion.

use serde_json::{Value, json};

use super::*;

impl Engine {
    // ----- Internal clients ----------------------------------------------------

    pub(super) fn open_client(&mut self, role: Role) -> String {
        let id = format!("c{}", self.next_client);
        self.next_client += 1;
        self.endpoints.insert(id.clone(), Endpoint::Client);
        self.connections.insert(
            id.clone(),
            Connection {
                role,
                next_msg_id: 1,
                awaiting: None,
            },
        );
        id
    }

    pub(super) fn close_client(&mut self, id: &str) {
        self.endpoints.remove(id);
        self.connections.remove(id);
    }

    /// Sends a request from an internal client to a node and arms its timeout.
    pub(super) fn request(&mut self, client: &str, node: usize, mut body: Value, timeout: Time) {
        let conn = self.connections.get_mut(client).expect("open client");
        let msg_id = conn.next_msg_id;
        conn.next_msg_id += 1;
        conn.awaiting = Some(msg_id);
        body["msg_id"] = json!(msg_id);
        let dest = self.opts.nodes[node].clone();
        self.send_value(client, &dest, &body);
        self.schedule(
            timeout,
            Event::ClientTimeout {
                client: client.to_string(),
                msg_id,
            },
        );
    }

    pub(super) fn client_received(&mut self, client: &str, body: Value) {
        let Some(conn) = self.connections.get_mut(client) else {
            return;
        };
        let expected = conn.awaiting;
        // Maelstrom's clients discard anything that does not answer the
        // request they are waiting for (late replies, duplicates).
        if expected.is_none() || body.get("in_reply_to").and_then(Value::as_u64) != expected {
            return;
        }
        conn.awaiting = None;
        match conn.role {
            Role::Init(node) => self.init_replied(client, node, &body),
            Role::Setup(node) => self.setup_replied(node, &body),
            Role::Worker(thread) => self.worker_replied(thread, &body),
        }
    }

    pub(super) fn client_timeout(&mut self, client: &str, msg_id: u64) {
        let Some(conn) = self.connections.get_mut(client) else {
            return;
        };
        if conn.awaiting != Some(msg_id) {
            return;
        }
        conn.awaiting = None;
        match conn.role {
            Role::Init(node) => {
                let node = self.opts.nodes[node].clone();
                self.crash(format!(
                    "expected node {node} to respond to an init message within 10 s, but it did not"
                ));
            }
            Role::Setup(node) => {
                let node = self.opts.nodes[node].clone();
                self.crash(format!(
                    "node {node} did not answer the setup request within 5 s"
                ));
            }
            Role::Worker(thread) => self.worker_timed_out(thread),
        }
    }

    // ----- Init and setup --------------------------------------------------------

    pub(super) fn init_replied(&mut self, client: &str, node: usize, body: &Value) {
        let name = self.opts.nodes[node].clone();
        if body.get("type").and_then(Value::as_str) != Some("init_ok") {
            self.crash(format!(
                "expected node {name} to respond to an init message with init_ok, but it sent {body}"
            ));
            return;
        }
        self.close_client(client);
        if self.phase != Phase::Init {
            self.info(format!("node {name} restarted and initialised"));
            return;
        }
        let waiting = self
            .connections
            .values()
            .any(|c| matches!(c.role, Role::Init(_)));
        if !waiting {
            self.info("all nodes initialised".into());
            self.start_setup();
        }
    }

    pub(super) fn init_timeout(&mut self) {
        // Individual init timeouts crash the test; this catches nothing else
        // but keeps the rule in one obvious place.
        if self.phase == Phase::Init {
            let pending: Vec<String> = self
                .connections
                .values()
                .filter_map(|c| match c.role {
                    Role::Init(n) => Some(self.opts.nodes[n].clone()),
                    _ => None,
                })
                .collect();
            if !pending.is_empty() {
                self.crash(format!("nodes {pending:?} never answered init"));
            }
        }
    }

    pub(super) fn start_setup(&mut self) {
        self.phase = Phase::Setup;
        self.epoch = self.now;
        for node in 0..self.opts.node_count() {
            let client = self.open_client(Role::Setup(node));
            if let Some(body) = self.workload.setup_request(&self.opts.nodes[node]) {
                self.pending_setup += 1;
                self.request(&client, node, body, SETUP_TIMEOUT);
            }
        }
        if self.pending_setup == 0 {
            self.start_main();
        }
    }

    pub(super) fn setup_replied(&mut self, node: usize, body: &Value) {
        let expected = self.workload.setup_reply_type();
        if body.get("type").and_then(Value::as_str) != Some(expected) {
            let name = self.opts.nodes[node].clone();
            self.crash(format!(
                "node {name} answered the setup request with {body}, expected {expected}"
            ));
            return;
        }
        self.pending_setup -= 1;
        if self.pending_setup == 0 {
            self.start_main();
        }
    }

    // ----- Operations -------------------------------------------------------------------

    pub(super) fn start_op(&mut self, thread: usize, op: OpSpec) {
        if self.workers[thread].client.is_none() {
            let id = self.open_client(Role::Worker(thread));
            let worker = &mut self.workers[thread];
            worker.client = Some(self.workload.new_client(thread));
            worker.client_id = Some(id);
        }
        let process = self.workers[thread].process;
        let mut invoke = Op::new(
            self.history.len(),
            self.history_time(),
            OpType::Invoke,
            Process::Client(process),
            op.f,
            op.value.clone(),
        );
        invoke.is_final = op.is_final;
        let step = self.workers[thread]
            .client
            .as_mut()
            .expect("client opened above")
            .invoke(&op);
        self.workers[thread].current = Some(Current {
            op,
            invoke_index: self.history.len(),
        });
        self.history.push(invoke);
        self.progress.invoked += 1;
        self.step(thread, step);
    }

    pub(super) fn step(&mut self, thread: usize, step: Step) {
        match step {
            Step::Request(body) => {
                let worker = &self.workers[thread];
                let client = worker.client_id.clone().expect("an open client");
                let timeout = self.workload.rpc_timeout();
                self.request(&client, worker.node, body, timeout);
            }
            Step::Complete(completion) => self.complete(thread, completion),
        }
    }

    pub(super) fn worker_replied(&mut self, thread: usize, body: &Value) {
        let Some(current) = &self.workers[thread].current else {
            return;
        };
        if body.get("type").and_then(Value::as_str) == Some("error") {
            let completion = self.error_completion(&current.op, body);
            self.complete(thread, completion);
            return;
        }
        let op = current.op.clone();
        let client = self.workers[thread].client.as_mut().expect("a client");
        let step = client.reply(&op, body);
        self.step(thread, step);
    }

    pub(super) fn worker_timed_out(&mut self, thread: usize) {
        let Some(current) = &self.workers[thread].current else {
            return;
        };
        let op = &current.op;
        let completion = match self.workload.error_handling() {
            ErrorHandling::WithErrors { idempotent } if idempotent.contains(&op.f) => {
                Completion::fail(op.value.clone(), json!("net-timeout"))
            }
            ErrorHandling::WithErrors { .. } => {
                Completion::info(op.value.clone(), json!("net-timeout"))
            }
            ErrorHandling::Indeterminate => Completion::exception(
                op.value.clone(),
                "timeout: the node did not reply in time".into(),
            ),
        };
        self.complete(thread, completion);
    }

    /// Maps an error reply to a completion, as Maelstrom's clients do.
    pub(super) fn error_completion(&self, op: &OpSpec, body: &Value) -> Completion {
        let code = body
            .get("code")
            .and_then(Value::as_u64)
            .map(|c| ErrorCode::from_code(c as u32));
        let text = body.get("text").cloned().unwrap_or(Value::Null);
        let name = code.map_or("unknown", |c| c.name());
        let error = json!([name, text]);
        match self.workload.error_handling() {
            ErrorHandling::WithErrors { idempotent } => {
                let definite = code.is_some_and(|c| c.is_definite());
                if definite || idempotent.contains(&op.f) {
                    Completion::fail(op.value.clone(), error)
                } else {
                    Completion::info(op.value.clone(), error)
                }
            }
            ErrorHandling::Indeterminate => {
                let mut c =
                    Completion::exception(op.value.clone(), format!("RPCError: {name} {text}"));
                c.error = Some(json!(format!("indeterminate: {name} {text}")));
                c
            }
        }
    }

    pub(super) fn complete(&mut self, thread: usize, completion: Completion) {
        let Some(current) = self.workers[thread].current.take() else {
            return;
        };
        let process = self.workers[thread].process;
        let mut op = Op::new(
            self.history.len(),
            self.history_time(),
            completion.kind,
            Process::Client(process),
            current.op.f,
            completion.value,
        );
        op.error = completion.error;
        op.exception = completion.exception;
        op.is_final = current.op.is_final;
        match op.kind {
            OpType::Ok => self.progress.ok += 1,
            OpType::Fail => self.progress.fail += 1,
            _ => self.progress.info += 1,
        }
        let invoke = self.history[current.invoke_index].clone();
        self.workload.observe(thread, &invoke, &op);
        let indeterminate = op.kind == OpType::Info;
        self.history.push(op);
        if indeterminate {
            self.retire_process(thread);
        }
        self.after_completion(thread);
    }

    /// After an indeterminate operation the thread continues as a new
    /// process; clients that are not reusable are replaced.
    pub(super) fn retire_process(&mut self, thread: usize) {
        let concurrency = self.workers.len() as u64;
        let reusable = self.workload.reusable_clients();
        let worker = &mut self.workers[thread];
        worker.process += concurrency;
        if !reusable {
            worker.client = None;
            if let Some(id) = worker.client_id.take() {
                self.close_client(&id);
            }
        }
    }

    pub(super) fn after_completion(&mut self, thread: usize) {
        match self.phase {
            Phase::Main => self.dispatch_main(),
            Phase::Draining => self.maybe_end_draining(),
            Phase::Final => {
                self.dispatch_final(thread);
                self.maybe_finish_final();
            }
            _ => {}
        }
    }

    pub(super) fn history_time(&self) -> Time {
        self.now.saturating_sub(self.epoch)
    }
}
