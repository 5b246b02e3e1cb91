//! The txn-rw-register workload: transactions of 1 to `--max-txn-length`
//! reads and writes over Elle's key pool (unique values per key), checked
//! with Elle's rw-register analysis under `--consistency-models`.

use rand::RngExt;
use serde_json::{Value, json};

use super::key_pool::{KeyPool, MicroOp};
use super::{
    Checked, Client, Completion, ErrorHandling, Free, Next, OpSpec, Step, Workload, check_reply,
};
use crate::checker::elle::{self, ConsistencyModel};
use crate::history::{History, Time};
use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::runner::random::Rng;

pub struct TxnRwRegister {
    pool: KeyPool,
    max_length: usize,
    model: ConsistencyModel,
}

impl TxnRwRegister {
    /// Fails with a usage message when the consistency model is unknown.
    pub fn new(opts: &TestOptions) -> Result<TxnRwRegister, String> {
        let model = opts
            .consistency_model
            .parse::<ConsistencyModel>()
            .map_err(|e| e.to_string())?;
        Ok(TxnRwRegister {
            pool: KeyPool::new(opts.key_count.unwrap_or(10), opts.max_writes_per_key),
            max_length: opts.max_txn_length,
            model,
        })
    }

    fn txn(&mut self, rng: &mut Rng) -> Value {
        let length = rng.random_range(1..=self.max_length);
        let mops: Vec<Value> = (0..length)
            .map(|_| match self.pool.draw(rng) {
                MicroOp::Read(k) => json!(["r", k, null]),
                MicroOp::Write(k, v) => json!(["w", k, v]),
            })
            .collect();
        Value::Array(mops)
    }
}

impl Workload for TxnRwRegister {
    fn name(&self) -> WorkloadName {
        WorkloadName::TxnRwRegister
    }

    fn error_handling(&self) -> ErrorHandling {
        ErrorHandling::WithErrors { idempotent: &[] }
    }

    fn reusable_clients(&self) -> bool {
        true
    }

    fn next_op(&mut self, _now: Time, free: &[Free], rng: &mut Rng) -> Next {
        Next::Op(free[0].thread, OpSpec::new("txn", self.txn(rng)))
    }

    fn new_client(&self, _thread: usize) -> Box<dyn Client> {
        Box::new(TxnClient)
    }

    fn check(&self, history: &History, _opts: &TestOptions) -> Checked {
        let report = elle::check(history, self.model);
        Checked::from_report(report.validity(), &report)
    }
}

struct TxnClient;

impl Client for TxnClient {
    fn invoke(&mut self, op: &OpSpec) -> Step {
        Step::Request(json!({"type": "txn", "txn": op.value}))
    }

    fn reply(&mut self, op: &OpSpec, body: &Value) -> Step {
        let checked = check_reply(body, "txn_ok", &[("txn", super::Kind::Array)])
            .and_then(|()| check_micro_ops(&body["txn"]));
        Step::Complete(match checked {
            Ok(()) => Completion::ok(body["txn"].clone()),
            Err(why) => Completion::exception(op.value.clone(), why),
        })
    }
}

/// Every micro-op in a reply must be exactly `["r", key, value]` or
/// `["w", key, value]`.
fn check_micro_ops(txn: &Value) -> Result<(), String> {
    for mop in txn.as_array().into_iter().flatten() {
        let ok = match mop.as_array() {
            Some(parts) if parts.len() == 3 => matches!(parts[0].as_str(), Some("r" | "w")),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "malformed RPC response: micro-op {mop} is not [\"r\"|\"w\", key, value]"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;
    use crate::runner::random;

    #[test]
    fn transactions_respect_the_length_limit() {
        let mut opts = TestOptions::new(WorkloadName::TxnRwRegister, "x", 1);
        opts.max_txn_length = 3;
        let mut w = TxnRwRegister::new(&opts).unwrap();
        let mut rng = random::stream(1, "t");
        let lengths: Vec<usize> = (0..500)
            .map(|_| w.txn(&mut rng).as_array().unwrap().len())
            .collect();
        assert!(lengths.iter().all(|l| (1..=3).contains(l)));
        assert!(lengths.contains(&1) && lengths.contains(&3));
    }

    #[test]
    fn an_unknown_model_is_a_usage_error() {
        let mut opts = TestOptions::new(WorkloadName::TxnRwRegister, "x", 1);
        opts.consistency_model = "snapshot-isolationish".into();
        let err = TxnRwRegister::new(&opts).err().unwrap();
        assert!(err.contains("read-committed"), "{err}");
    }

    #[test]
    fn replies_must_repeat_well_formed_micro_ops() {
        let op = OpSpec::new("txn", json!([["r", 1, null]]));
        let ok = json!({"type": "txn_ok", "txn": [["r", 1, 3]], "in_reply_to": 1});
        let Step::Complete(c) = TxnClient.reply(&op, &ok) else {
            panic!()
        };
        assert_eq!((c.kind, c.value), (OpType::Ok, json!([["r", 1, 3]])));
        let bad = json!({"type": "txn_ok", "txn": [["r", 1]], "in_reply_to": 1});
        let Step::Complete(c) = TxnClient.reply(&op, &bad) else {
            panic!()
        };
        assert_eq!(c.kind, OpType::Info);
    }
}
