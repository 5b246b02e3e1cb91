//! Jepsen's `stats` checker (with Maelstrom's kafka wrapper): counts of
//! ok/fail/info completions, overall and per `f`. A test is invalid if some
//! `f` never succeeded (ignoring kafka's `crash`, which never does).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Validity;
use crate::history::{History, OpType};

/// Completion counts for one `f`, or for all.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    #[serde(rename = "valid?")]
    pub valid: Validity,
    pub count: usize,
    #[serde(rename = "ok-count")]
    pub ok_count: usize,
    #[serde(rename = "fail-count")]
    pub fail_count: usize,
    #[serde(rename = "info-count")]
    pub info_count: usize,
}

/// The report: overall counts plus `by-f`.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    #[serde(flatten)]
    pub total: Counts,
    #[serde(rename = "by-f")]
    pub by_f: BTreeMap<String, Counts>,
}

/// `f`s that never complete ok by design and are ignored for validity.
const IGNORED: [&str; 2] = ["crash", "debug-topic-partitions"];

pub fn check(history: &History) -> StatsReport {
    let mut total = Counts::default();
    let mut by_f: BTreeMap<String, Counts> = BTreeMap::new();
    for op in history.client_ops().filter(|op| !op.is_invoke()) {
        for counts in [&mut total, by_f.entry(op.f.clone()).or_default()] {
            counts.count += 1;
            match op.kind {
                OpType::Ok => counts.ok_count += 1,
                OpType::Fail => counts.fail_count += 1,
                OpType::Info => counts.info_count += 1,
                OpType::Invoke => {}
            }
        }
    }
    for (f, counts) in by_f.iter_mut() {
        counts.valid = Validity::from_bool(counts.ok_count > 0 || IGNORED.contains(&f.as_str()));
    }
    total.valid = by_f.values().fold(Validity::Valid, |v, c| v.and(c.valid));
    StatsReport { total, by_f }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, Process};
    use serde_json::Value;

    #[test]
    fn an_f_that_never_succeeds_is_invalid_unless_it_is_a_crash() {
        let op = |p, kind, f: &str| Op::new(0, 0, kind, Process::Client(p), f, Value::Null);
        let h = History::new(vec![
            op(0, OpType::Invoke, "read"),
            op(0, OpType::Ok, "read"),
            op(1, OpType::Invoke, "crash"),
            op(1, OpType::Info, "crash"),
        ]);
        let r = check(&h);
        assert_eq!(r.total.valid, Validity::Valid);
        assert_eq!(r.total.count, 2);
        let h = History::new(vec![
            op(0, OpType::Invoke, "read"),
            op(0, OpType::Ok, "read"),
            op(1, OpType::Invoke, "cas"),
            op(1, OpType::Fail, "cas"),
        ]);
        let r = check(&h);
        assert_eq!(r.total.valid, Validity::Invalid);
        assert_eq!(r.by_f["cas"].fail_count, 1);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["ok-count"], 1);
        assert_eq!(json["by-f"]["cas"]["valid?"], false);
    }
}
