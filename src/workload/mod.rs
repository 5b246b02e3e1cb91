//! Maelstrom's workloads, one module each, holding the client (how an
//! operation becomes requests and how replies become results), the
//! generator (which operations to run) and the checker, side by side as in
//! Maelstrom's own `workload/*.clj`.
//!
//! The same workload objects serve the process runner and the in-process
//! simulator: they never see processes, threads or clocks, only operations,
//! request bodies and reply bodies.

use serde_json::{Map, Value};

use crate::checker::Validity;
use crate::history::{History, Op, OpType, Time};
use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::runner::random::Rng;

pub mod broadcast;
pub mod counter;
pub mod echo;
pub mod g_set;
pub mod kafka;
pub mod key_pool;
pub mod lin_kv;
pub mod txn_rw_register;
pub mod unique_ids;

/// One operation a generator asks a worker to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct OpSpec {
    pub f: &'static str,
    pub value: Value,
    pub is_final: bool,
    /// A note from the generator to the client that the history does not
    /// record (kafka's final assign rewinds instead of asking the node).
    pub hint: Option<&'static str>,
}

impl OpSpec {
    pub fn new(f: &'static str, value: Value) -> OpSpec {
        OpSpec {
            f,
            value,
            is_final: false,
            hint: None,
        }
    }

    /// The same operation marked as part of the final phase.
    pub fn final_op(mut self) -> OpSpec {
        self.is_final = true;
        self
    }
}

/// A worker thread that is free to run an operation, with its current
/// process id (which changes after every indeterminate operation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Free {
    pub thread: usize,
    pub process: u64,
}

/// What a generator wants next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run this operation on this worker thread.
    Op(usize, OpSpec),
    /// Nothing for these threads right now; ask again when something changes.
    Wait,
    /// This thread should sleep this long, then ask again (final phases).
    Sleep(Time),
    /// The generator is exhausted (for these threads).
    Done,
}

/// The outcome of an operation, as recorded in the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub kind: OpType,
    pub value: Value,
    pub error: Option<Value>,
    pub exception: Option<String>,
}

impl Completion {
    pub fn ok(value: Value) -> Completion {
        Completion {
            kind: OpType::Ok,
            value,
            error: None,
            exception: None,
        }
    }

    pub fn fail(value: Value, error: Value) -> Completion {
        Completion {
            kind: OpType::Fail,
            value,
            error: Some(error),
            exception: None,
        }
    }

    pub fn info(value: Value, error: Value) -> Completion {
        Completion {
            kind: OpType::Info,
            value,
            error: Some(error),
            exception: None,
        }
    }

    /// An `info` completion caused by a client-side exception (a malformed
    /// reply, an unexpected error).
    pub fn exception(value: Value, exception: String) -> Completion {
        Completion {
            kind: OpType::Info,
            value,
            error: Some(Value::String(format!("indeterminate: {exception}"))),
            exception: Some(exception),
        }
    }
}

/// The client's next move within an operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this request body (without `msg_id`) to the worker's node.
    Request(Value),
    /// The operation is over.
    Complete(Completion),
}

/// A connection from one worker to its node, as Maelstrom's clients are:
/// one request outstanding at a time.
pub trait Client: Send {
    /// Starts an operation.
    fn invoke(&mut self, op: &OpSpec) -> Step;
    /// Handles the (non-error) reply to the last request.
    fn reply(&mut self, op: &OpSpec, body: &Value) -> Step;
}

/// How RPC errors and timeouts become history entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorHandling {
    /// Maelstrom's `with-errors`: definite errors and anything on an
    /// idempotent `f` are `fail`, the rest `info`.
    WithErrors { idempotent: &'static [&'static str] },
    /// No handling (counters, g-set): every error and timeout is an
    /// exception, hence `info`.
    Indeterminate,
}

/// A workload's verdict and its report (the `workload` key of results).
#[derive(Debug, Clone)]
pub struct Checked {
    pub validity: Validity,
    pub report: Value,
}

impl Checked {
    /// Builds a result from any serialisable report that has a `valid?`.
    pub fn from_report<T: serde::Serialize>(validity: Validity, report: &T) -> Checked {
        Checked {
            validity,
            report: serde_json::to_value(report).expect("reports serialise"),
        }
    }
}

/// A Maelstrom workload.
pub trait Workload: Send {
    fn name(&self) -> WorkloadName;

    /// How long a client waits for each reply.
    fn rpc_timeout(&self) -> Time {
        5_000 * crate::history::NANOS_PER_MS
    }

    fn error_handling(&self) -> ErrorHandling;

    /// Reusable clients survive an indeterminate operation; others are
    /// closed and replaced by a fresh client (with a fresh id).
    fn reusable_clients(&self) -> bool {
        false
    }

    /// The request each node's setup client sends before the test starts
    /// (broadcast's `topology`), if any.
    fn setup_request(&self, _node: &str) -> Option<Value> {
        None
    }

    /// The reply type the setup request expects.
    fn setup_reply_type(&self) -> &'static str {
        ""
    }

    /// The next main-phase operation at test time `now`, for one of the
    /// `free` threads (listed in the order they should be preferred; never
    /// empty).
    fn next_op(&mut self, now: Time, free: &[Free], rng: &mut Rng) -> Next;

    /// Whether there is a final phase (heal, wait 10 s, final operations).
    fn has_final_phase(&self) -> bool {
        false
    }

    /// How long the final operations may run, if capped (kafka: 10 s).
    fn final_phase_limit(&self) -> Option<Time> {
        None
    }

    /// The next final-phase operation for `thread` at test time `now`.
    fn next_final_op(&mut self, _now: Time, _thread: usize, _rng: &mut Rng) -> Next {
        Next::Done
    }

    /// A fresh client for a worker thread.
    fn new_client(&self, thread: usize) -> Box<dyn Client>;

    /// Sees every completed operation, for generators that react to
    /// results (kafka's assigns, lin-kv's key rotation).
    fn observe(&mut self, _thread: usize, _invoke: &Op, _completion: &Op) {}

    /// Checks the history.
    fn check(&self, history: &History, opts: &TestOptions) -> Checked;
}

/// Builds the workload named in `opts`, or says why the options do not
/// make a valid workload.
pub fn build(opts: &TestOptions) -> Result<Box<dyn Workload>, String> {
    Ok(match opts.workload {
        WorkloadName::Echo => Box::new(echo::Echo),
        WorkloadName::UniqueIds => Box::new(unique_ids::UniqueIds),
        WorkloadName::Broadcast => Box::new(broadcast::Broadcast::new(opts)),
        WorkloadName::GSet => Box::new(g_set::GSet::default()),
        WorkloadName::GCounter => Box::new(counter::Counter::grow_only()),
        WorkloadName::PnCounter => Box::new(counter::Counter::pn()),
        WorkloadName::LinKv => Box::new(lin_kv::LinKv::new(opts)),
        WorkloadName::Kafka => Box::new(kafka::Kafka::new(opts)),
        WorkloadName::TxnRwRegister => Box::new(txn_rw_register::TxnRwRegister::new(opts)?),
    })
}

/// The JSON kinds a reply field may be required to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any,
    Integer,
    Array,
    Object,
}

impl Kind {
    fn matches(self, v: &Value) -> bool {
        match self {
            Kind::Any => true,
            Kind::Integer => v.is_i64() || v.is_u64(),
            Kind::Array => v.is_array(),
            Kind::Object => v.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Any => "any value",
            Kind::Integer => "an integer",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// Validates a reply against a closed schema, as Maelstrom's clients do:
/// exactly `type` (= `expected_type`), `in_reply_to` (integer), an optional
/// integer `msg_id`, and the listed fields with their kinds. Anything else
/// is a malformed reply.
pub fn check_reply(
    body: &Value,
    expected_type: &str,
    fields: &[(&str, Kind)],
) -> Result<(), String> {
    let Some(map) = body.as_object() else {
        return Err(format!("reply body is not an object: {body}"));
    };
    check_fields(map, expected_type, fields)
        .map_err(|why| format!("malformed RPC response ({why}): {body}"))
}

fn check_fields(
    map: &Map<String, Value>,
    expected_type: &str,
    fields: &[(&str, Kind)],
) -> Result<(), String> {
    match map.get("type").and_then(Value::as_str) {
        Some(t) if t == expected_type => {}
        Some(t) => return Err(format!("expected type {expected_type:?}, got {t:?}")),
        None => return Err("missing type".into()),
    }
    if !map
        .get("in_reply_to")
        .is_some_and(|v| Kind::Integer.matches(v))
    {
        return Err("in_reply_to must be an integer".into());
    }
    if map.get("msg_id").is_some_and(|v| !Kind::Integer.matches(v)) {
        return Err("msg_id must be an integer when present".into());
    }
    for (name, kind) in fields {
        match map.get(*name) {
            Some(v) if kind.matches(v) => {}
            Some(_) => return Err(format!("{name} must be {}", kind.name())),
            None => return Err(format!("missing field {name}")),
        }
    }
    let allowed = |k: &str| {
        matches!(k, "type" | "in_reply_to" | "msg_id") || fields.iter().any(|(n, _)| *n == k)
    };
    if let Some(extra) = map.keys().find(|k| !allowed(k)) {
        return Err(format!("unexpected field {extra}"));
    }
    Ok(())
}

/// Shorthand for a single-RPC client step that validated its reply.
pub fn complete_or_malformed(
    op: &OpSpec,
    checked: Result<(), String>,
    value: impl FnOnce() -> Value,
) -> Step {
    Step::Complete(match checked {
        Ok(()) => Completion::ok(value()),
        Err(why) => Completion::exception(op.value.clone(), why),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_schemas_are_closed() {
        let fields = [("messages", Kind::Array)];
        assert!(
            check_reply(
                &json!({"type":"read_ok","messages":[],"in_reply_to":1}),
                "read_ok",
                &fields
            )
            .is_ok()
        );
        assert!(
            check_reply(
                &json!({"type":"read_ok","messages":[],"in_reply_to":1,"msg_id":3}),
                "read_ok",
                &fields
            )
            .is_ok()
        );
        let bad = [
            json!({"type":"read_ok","messages":null,"in_reply_to":1}),
            json!({"type":"read_ok","in_reply_to":1}),
            json!({"type":"read_ok","messages":[],"in_reply_to":1,"msg_id":null}),
            json!({"type":"read_ok","messages":[],"in_reply_to":1,"extra":true}),
            json!({"type":"read","messages":[],"in_reply_to":1}),
            json!({"type":"read_ok","messages":[],"in_reply_to":1.5}),
        ];
        for body in bad {
            let err = check_reply(&body, "read_ok", &fields).unwrap_err();
            assert!(err.starts_with("malformed RPC response"), "{err}");
        }
    }
}
