//! The echo workload: each worker sends `echo` with a random text and
//! expects the same value back. Any operation that does not come back with
//! its text (including a timeout) is an error.

use rand::RngExt;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    Checked, Client, ErrorHandling, Free, Kind, Next, OpSpec, Step, Workload, check_reply,
    complete_or_malformed,
};
use crate::checker::Validity;
use crate::history::{History, Time};
use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::runner::random::Rng;

pub struct Echo;

impl Workload for Echo {
    fn name(&self) -> WorkloadName {
        WorkloadName::Echo
    }

    fn error_handling(&self) -> ErrorHandling {
        ErrorHandling::WithErrors { idempotent: &[] }
    }

    fn next_op(&mut self, _now: Time, free: &[Free], rng: &mut Rng) -> Next {
        let text = format!("Please echo {}", rng.random_range(0..128));
        Next::Op(free[0].thread, OpSpec::new("echo", json!(text)))
    }

    fn new_client(&self, _thread: usize) -> Box<dyn Client> {
        Box::new(EchoClient)
    }

    fn check(&self, history: &History, _opts: &TestOptions) -> Checked {
        let report = check(history);
        Checked::from_report(report.valid, &report)
    }
}

struct EchoClient;

impl Client for EchoClient {
    fn invoke(&mut self, op: &OpSpec) -> Step {
        Step::Request(json!({"type": "echo", "echo": op.value}))
    }

    fn reply(&mut self, op: &OpSpec, body: &Value) -> Step {
        // Maelstrom records the whole reply body as the completion's value.
        let checked = check_reply(body, "echo_ok", &[("echo", Kind::Any)]);
        complete_or_malformed(op, checked, || body.clone())
    }
}

/// The echo checker's report.
#[derive(Debug, Clone, Serialize)]
pub struct EchoReport {
    #[serde(rename = "valid?")]
    pub valid: Validity,
    /// For each bad operation: what was sent and what came back.
    pub errors: Vec<Value>,
}

/// Every invocation must have a completion whose `echo` is its value.
pub fn check(history: &History) -> EchoReport {
    let errors: Vec<Value> = history
        .pairs()
        .filter(|(invoke, _)| invoke.f == "echo")
        .filter_map(|(invoke, completion)| {
            let received = completion.map_or(Value::Null, |c| c.value.clone());
            let echoed = completion
                .filter(|c| c.is_ok())
                .and_then(|c| c.value.get("echo"));
            (echoed != Some(&invoke.value)).then(|| {
                json!([
                    "Expected a message with :echo",
                    invoke.value,
                    "But received",
                    received
                ])
            })
        })
        .collect();
    EchoReport {
        valid: Validity::from_bool(errors.is_empty()),
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType, Process};

    fn pair(p: u64, sent: &str, kind: OpType, got: Value) -> [Op; 2] {
        [
            Op::new(
                0,
                0,
                OpType::Invoke,
                Process::Client(p),
                "echo",
                json!(sent),
            ),
            Op::new(0, 0, kind, Process::Client(p), "echo", got),
        ]
    }

    #[test]
    fn matching_echoes_are_valid_and_anything_else_is_an_error() {
        let good = pair(
            0,
            "Please echo 1",
            OpType::Ok,
            json!({"type":"echo_ok","echo":"Please echo 1","in_reply_to":1}),
        );
        assert_eq!(check(&History::new(good.to_vec())).valid, Validity::Valid);

        let altered = pair(
            0,
            "Please echo 1",
            OpType::Ok,
            json!({"type":"echo_ok","echo":"Please echo 2","in_reply_to":1}),
        );
        let timed_out = pair(1, "Please echo 3", OpType::Info, json!("Please echo 3"));
        let ops: Vec<Op> = altered.into_iter().chain(timed_out).collect();
        let report = check(&History::new(ops));
        assert_eq!(report.valid, Validity::Invalid);
        assert_eq!(report.errors.len(), 2);
        assert_eq!(report.errors[0][1], "Please echo 1");
    }

    #[test]
    fn the_client_validates_the_reply_shape() {
        let op = OpSpec::new("echo", json!("hi"));
        let mut client = EchoClient;
        assert_eq!(
            client.invoke(&op),
            Step::Request(json!({"type":"echo","echo":"hi"}))
        );
        let Step::Complete(c) = client.reply(
            &op,
            &json!({"type":"echo_ok","echo":"hi","in_reply_to":1,"extra":1}),
        ) else {
            panic!()
        };
        assert_eq!(c.kind, OpType::Info);
        assert!(c.exception.unwrap().contains("unexpected field extra"));
    }
}
