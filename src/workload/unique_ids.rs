//! The unique-ids workload: endless `generate` requests; every acknowledged
//! id must be unique.

use serde_json::{Value, json};

use super::{
    Checked, Client, ErrorHandling, Free, Kind, Next, OpSpec, Step, Workload, check_reply,
    complete_or_malformed,
};
use crate::checker::unique_ids;
use crate::history::{History, Time};
use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::runner::random::Rng;

pub struct UniqueIds;

impl Workload for UniqueIds {
    fn name(&self) -> WorkloadName {
        WorkloadName::UniqueIds
    }

    fn error_handling(&self) -> ErrorHandling {
        ErrorHandling::WithErrors { idempotent: &[] }
    }

    fn reusable_clients(&self) -> bool {
        true
    }

    fn next_op(&mut self, _now: Time, free: &[Free], _rng: &mut Rng) -> Next {
        Next::Op(free[0].thread, OpSpec::new("generate", Value::Null))
    }

    fn new_client(&self, _thread: usize) -> Box<dyn Client> {
        Box::new(GenerateClient)
    }

    fn check(&self, history: &History, _opts: &TestOptions) -> Checked {
        let report = unique_ids::check(history);
        Checked::from_report(report.valid, &report)
    }
}

struct GenerateClient;

impl Client for GenerateClient {
    fn invoke(&mut self, _op: &OpSpec) -> Step {
        Step::Request(json!({"type": "generate"}))
    }

    fn reply(&mut self, op: &OpSpec, body: &Value) -> Step {
        let checked = check_reply(body, "generate_ok", &[("id", Kind::Any)]);
        complete_or_malformed(op, checked, || body["id"].clone())
    }
}
