//! Maelstrom's counter checker (g-counter and pn-counter): every final read
//! must be a value the counter could have: the sum of the adds that surely
//! happened plus any subset of the adds that may have happened.

use serde::Serialize;
use serde_json::Value;

use super::Validity;
use crate::history::{History, Op};

/// The report, with Maelstrom's keys.
#[derive(Debug, Clone, Serialize)]
pub struct CounterReport {
    #[serde(rename = "valid?")]
    pub valid: Validity,
    /// Final reads outside the acceptable set.
    pub errors: Vec<Op>,
    #[serde(rename = "final-reads")]
    pub final_reads: Vec<Value>,
    /// The acceptable values as inclusive `[lo, hi]` ranges.
    pub acceptable: Vec<[i64; 2]>,
}

/// A set of integers as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(Vec<[i64; 2]>);

impl RangeSet {
    pub fn single(v: i64) -> RangeSet {
        RangeSet(vec![[v, v]])
    }

    /// The set united with itself shifted by `delta`: "this add may or may
    /// not have happened".
    pub fn maybe_add(&mut self, delta: i64) {
        let shifted = self.0.iter().map(|[lo, hi]| [lo + delta, hi + delta]);
        let mut all: Vec<[i64; 2]> = self.0.iter().copied().chain(shifted).collect();
        all.sort();
        let mut merged: Vec<[i64; 2]> = Vec::with_capacity(all.len());
        for [lo, hi] in all {
            match merged.last_mut() {
                Some(last) if lo <= last[1] + 1 => last[1] = last[1].max(hi),
                _ => merged.push([lo, hi]),
            }
        }
        self.0 = merged;
    }

    pub fn contains(&self, v: i64) -> bool {
        self.0.iter().any(|[lo, hi]| (*lo..=*hi).contains(&v))
    }

    pub fn ranges(&self) -> &[[i64; 2]] {
        &self.0
    }
}

/// Checks the final reads of a counter history.
pub fn check(history: &History) -> CounterReport {
    let adds = history.client_ops().filter(|op| op.f == "add");
    let definite: i64 = adds
        .clone()
        .filter(|op| op.is_ok())
        .filter_map(|op| op.value.as_i64())
        .sum();
    let mut acceptable = RangeSet::single(definite);
    for add in adds.filter(|op| op.is_info()) {
        if let Some(delta) = add.value.as_i64() {
            acceptable.maybe_add(delta);
        }
    }
    let final_reads: Vec<&Op> = history
        .client_ops()
        .filter(|op| op.is_final && op.is_ok() && op.f == "read")
        .collect();
    let errors: Vec<Op> = final_reads
        .iter()
        .filter(|op| !op.value.as_i64().is_some_and(|v| acceptable.contains(v)))
        .map(|op| (*op).clone())
        .collect();
    CounterReport {
        valid: Validity::from_bool(errors.is_empty()),
        errors,
        final_reads: final_reads.iter().map(|op| op.value.clone()).collect(),
        acceptable: acceptable.ranges().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpType, Process};
    use serde_json::json;

    fn op(p: u64, kind: OpType, f: &str, v: Value, is_final: bool) -> Op {
        let mut op = Op::new(0, 0, kind, Process::Client(p), f, v);
        op.is_final = is_final;
        op
    }

    #[test]
    fn maybe_adds_form_exact_subset_sums() {
        let mut s = RangeSet::single(10);
        s.maybe_add(5);
        assert_eq!(s.ranges(), [[10, 10], [15, 15]]);
        s.maybe_add(1);
        assert_eq!(s.ranges(), [[10, 11], [15, 16]]);
        s.maybe_add(-3);
        assert_eq!(s.ranges(), [[7, 8], [10, 13], [15, 16]]);
        assert!(!s.contains(9) && s.contains(12) && !s.contains(14));
    }

    fn history(final_read: i64) -> History {
        History::new(vec![
            op(0, OpType::Invoke, "add", json!(3), false),
            op(0, OpType::Ok, "add", json!(3), false),
            op(1, OpType::Invoke, "add", json!(4), false),
            op(1, OpType::Info, "add", json!(4), false),
            op(2, OpType::Invoke, "add", json!(100), false),
            op(2, OpType::Fail, "add", json!(100), false),
            op(3, OpType::Invoke, "read", Value::Null, false),
            op(3, OpType::Ok, "read", json!(999), false),
            op(5, OpType::Invoke, "read", Value::Null, true),
            op(5, OpType::Ok, "read", json!(final_read), true),
        ])
    }

    #[test]
    fn final_reads_must_be_reachable_sums() {
        for good in [3, 7] {
            let r = check(&history(good));
            assert_eq!(r.valid, Validity::Valid, "{good}");
            assert_eq!(r.acceptable, vec![[3, 3], [7, 7]]);
        }
        // Double-counting the definite add, or counting the failed one.
        for bad in [6, 103, 999] {
            let r = check(&history(bad));
            assert_eq!(r.valid, Validity::Invalid, "{bad}");
            assert_eq!(r.errors[0].value, json!(bad));
        }
    }

    #[test]
    fn no_final_reads_is_valid() {
        let h = History::new(vec![op(0, OpType::Invoke, "add", json!(1), false)]);
        assert_eq!(check(&h).valid, Validity::Valid);
    }
}
