//! The g-counter and pn-counter workloads: adds and reads of one counter,
//! then one final read per worker after the network heals. Every final read
//! must be a sum the counter could have.
//!
//! pn-counter mixes adds of -5..4 and reads half and half; g-counter is the
//! same stream with negative adds dropped, so about two reads per add, with
//! deltas 0..4.

use rand::RngExt;
use serde_json::{Value, json};

use super::g_set::once_per_thread;
use super::{
    Checked, Client, ErrorHandling, Free, Kind, Next, OpSpec, Step, Workload, check_reply,
    complete_or_malformed,
};
use crate::checker::counter;
use crate::history::{History, Time};
use crate::runner::TestOptions;
use crate::runner::options::WorkloadName;
use crate::runner::random::Rng;

pub struct Counter {
    grow_only: bool,
    finished: Vec<usize>,
}

impl Counter {
    pub fn grow_only() -> Counter {
        Counter {
            grow_only: true,
            finished: Vec::new(),
        }
    }

    pub fn pn() -> Counter {
        Counter {
            grow_only: false,
            finished: Vec::new(),
        }
    }

    fn draw(&self, rng: &mut Rng) -> OpSpec {
        loop {
            if rng.random_bool(0.5) {
                return OpSpec::new("read", Value::Null);
            }
            let delta: i64 = rng.random_range(0..10) - 5;
            if !(self.grow_only && delta < 0) {
                return OpSpec::new("add", json!(delta));
            }
        }
    }
}

impl Workload for Counter {
    fn name(&self) -> WorkloadName {
        if self.grow_only {
            WorkloadName::GCounter
        } else {
            WorkloadName::PnCounter
        }
    }

    fn error_handling(&self) -> ErrorHandling {
        ErrorHandling::Indeterminate
    }

    fn next_op(&mut self, _now: Time, free: &[Free], rng: &mut Rng) -> Next {
        Next::Op(free[0].thread, self.draw(rng))
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
        Box::new(CounterClient)
    }

    fn check(&self, history: &History, _opts: &TestOptions) -> Checked {
        let report = counter::check(history);
        Checked::from_report(report.valid, &report)
    }
}

struct CounterClient;

impl Client for CounterClient {
    fn invoke(&mut self, op: &OpSpec) -> Step {
        match op.f {
            "add" => Step::Request(json!({"type": "add", "delta": op.value})),
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
                check_reply(body, "read_ok", &[("value", Kind::Integer)]),
                || body["value"].clone(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::random;

    #[test]
    fn g_counter_adds_are_non_negative_and_half_as_frequent_as_reads() {
        let counter = Counter::grow_only();
        let mut rng = random::stream(1, "gen");
        let ops: Vec<OpSpec> = (0..3000).map(|_| counter.draw(&mut rng)).collect();
        let adds: Vec<i64> = ops
            .iter()
            .filter(|o| o.f == "add")
            .map(|o| o.value.as_i64().unwrap())
            .collect();
        assert!(adds.iter().all(|d| (0..=4).contains(d)));
        assert!(adds.contains(&0) && adds.contains(&4));
        let ratio = (ops.len() - adds.len()) as f64 / adds.len() as f64;
        assert!((ratio - 2.0).abs() < 0.25, "reads per add {ratio}");
    }
}
