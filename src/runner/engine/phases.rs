//! The test's phases after setup: the main phase with its rate-limited
//! generator, draining, the recovery wait and the final operations.

use super::*;

impl Engine {
    // ----- Main phase -------------------------------------------------------------

    pub(super) fn start_main(&mut self) {
        self.phase = Phase::Main;
        let limit = self.opts.time_limit.as_nanos() as Time;
        self.info(format!(
            "running the workload for {} s",
            self.opts.time_limit.as_secs_f64()
        ));
        self.schedule(limit, Event::MainEnd);
        if self.opts.rate > 0.0 {
            self.schedule(0, Event::NextOp);
        }
        if self.nemesis.is_some() {
            self.schedule(0, Event::Nemesis);
        }
    }

    /// Starts the next main-phase operation if one is due and a thread is free.
    pub(super) fn dispatch_main(&mut self) {
        if self.phase != Phase::Main || !self.op_due || self.generator_done {
            return;
        }
        let free = self.free_threads();
        if free.is_empty() {
            return;
        }
        match self
            .workload
            .next_op(self.history_time(), &free, &mut self.generator_rng)
        {
            Next::Op(thread, op) => {
                self.op_due = false;
                self.last_thread = thread;
                self.start_op(thread, op);
                let mean = 1e9 / self.opts.rate;
                let delay = (self.stagger_rng.random::<f64>() * 2.0 * mean) as Time;
                self.schedule(delay, Event::NextOp);
            }
            Next::Wait | Next::Sleep(_) => {}
            Next::Done => self.generator_done = true,
        }
    }

    /// Idle threads, starting after the last one used (round-robin).
    pub(super) fn free_threads(&self) -> Vec<Free> {
        let n = self.workers.len();
        let start = self.last_thread.wrapping_add(1) % n;
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|t| {
                let w = &self.workers[*t];
                w.current.is_none() && !w.asleep
            })
            .map(|thread| Free {
                thread,
                process: self.workers[thread].process,
            })
            .collect()
    }

    pub(super) fn end_main(&mut self) {
        if self.phase != Phase::Main {
            return;
        }
        self.phase = Phase::Draining;
        self.info("time limit reached; waiting for operations in flight".into());
        self.maybe_end_draining();
    }

    pub(super) fn maybe_end_draining(&mut self) {
        if self.phase != Phase::Draining || self.workers.iter().any(|w| w.current.is_some()) {
            return;
        }
        if !self.workload.has_final_phase() {
            self.finish();
            return;
        }
        self.heal_all();
        self.info("Waiting for recovery...".into());
        self.phase = Phase::Recovery;
        self.schedule(RECOVERY_WAIT, Event::RecoveryEnd);
    }

    // ----- Final phase ---------------------------------------------------------------

    pub(super) fn start_final(&mut self) {
        self.phase = Phase::Final;
        self.info("running final operations".into());
        if let Some(limit) = self.workload.final_phase_limit() {
            self.schedule(limit, Event::FinalEnd);
        }
        for thread in 0..self.workers.len() {
            self.dispatch_final(thread);
        }
        self.maybe_finish_final();
    }

    pub(super) fn dispatch_final(&mut self, thread: usize) {
        let worker = &self.workers[thread];
        if self.phase != Phase::Final
            || worker.finished
            || worker.current.is_some()
            || worker.asleep
        {
            return;
        }
        match self
            .workload
            .next_final_op(self.history_time(), thread, &mut self.generator_rng)
        {
            Next::Op(t, op) => self.start_op(t, op),
            Next::Sleep(delay) => {
                self.workers[thread].asleep = true;
                self.schedule(delay, Event::Wake(thread));
            }
            Next::Wait => {}
            Next::Done => {
                self.workers[thread].finished = true;
                self.maybe_finish_final();
            }
        }
    }

    pub(super) fn maybe_finish_final(&mut self) {
        let idle = |w: &Worker| w.finished && w.current.is_none();
        if self.phase == Phase::Final && self.workers.iter().all(idle) {
            self.info("final operations complete".into());
            self.finish();
        }
    }
}
