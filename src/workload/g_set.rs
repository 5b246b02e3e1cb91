//! The g-set workload: a grow-only set. Half the operations add the next
//! integer, half read the whole set; a final read per worker after the
//! network heals. Checked by set-full.

use serde_json::{Value, json};

use super::{
    Checked, Client, ErrorHandling, Free, Kind, Next, OpSpec, Step, Workload, check_reply,
    complete_or_malformed,
};
use crate::checker::set_full;
use crate::history::{History, Time};
use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::runner::random::Rng;
use rand::RngExt;

#[derive(Default)]
pub struct GSet {
    next_element: u64,
    finished: Vec<usize>,
}

impl Workload for GSet {
    fn name(&self) -> WorkloadName {
        WorkloadName::GSet
    }

    fn error_handling(&self) -> ErrorHandling {
        ErrorHandling::Indeterminate
    }

    fn next_op(&mut self, _now: Time, free: &[Free], rng: &mut Rng) -> Next {
        if rng.random_bool(0.5) {
            self.next_element += 1;
            Next::Op(
                free[0].thread,
                OpSpec::new("add", json!(self.next_element - 1)),
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
            OpSpec::new("read", Value::Null)
        })
    }

    fn new_client(&self, _thread: usize) -> Box<dyn Client> {
        Box::new(GSetClient)
    }

    fn check(&self, history: &History, _opts: &TestOptions) -> Checked {
        let report = set_full::check(history, "add");
        Checked::from_report(report.valid, &report)
    }
}

/// A final generator that gives each thread one operation.
pub(crate) fn once_per_thread(
    done: &mut Vec<usize>,
    thread: usize,
    op: impl FnOnce() -> OpSpec,
) -> Next {
    if done.contains(&thread) {
        Next::Done
    } else {
        done.push(thread);
        Next::Op(thread, op())
    }
}

struct GSetClient;

impl Client for GSetClient {
    fn invoke(&mut self, op: &OpSpec) -> Step {
        match op.f {
            "add" => Step::Request(json!({"type": "add", "element": op.value})),
            _ => Step::Request(json!({"type": "read"})),
        }
    }

    fn reply(&mut self, op: &OpSpec, body: &Value) -> Step {
        match op.f {
            "add" => {
                complete_or_malformed(op, check_reply(body, "add_ok", &[]), || op.value.clone())
            }
            _ => complete_or_malformed(
                op,
                check_reply(body, "read_ok", &[("value", Kind::Array)]),
                || body["value"].clone(),
            ),
        }
    }
}
