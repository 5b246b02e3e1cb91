//! Jepsen's `set-full` checker (non-linearizable mode), used by broadcast
//! (where `broadcast` is an add) and g-set.
//!
//! For each element added, it tracks when it became known (the add's ok, or
//! the first ok read that saw it, whichever is earlier in the history) and
//! the last read invocations that saw it and missed it. An element is
//! *stable* if some read saw it after every read that missed it, *lost* if
//! a read that began after it was known missed it and none saw it later,
//! otherwise *never read*. Reads are compared by their invocation.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::{Validity, quantiles};
use crate::history::{History, NANOS_PER_MS, Op, Time};

/// Where an element's story ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Stable,
    Lost,
    NeverRead,
}

/// One element's analysis, as in Jepsen's `worst-stale` entries.
#[derive(Debug, Clone, Serialize)]
pub struct ElementResult {
    pub element: Value,
    pub outcome: Outcome,
    #[serde(rename = "stable-latency")]
    pub stable_latency: Option<u64>,
    #[serde(rename = "lost-latency")]
    pub lost_latency: Option<u64>,
    pub known: Option<Op>,
    #[serde(rename = "last-absent")]
    pub last_absent: Option<Op>,
}

/// The checker's report, with Jepsen's keys.
#[derive(Debug, Clone, Serialize)]
pub struct SetFullReport {
    #[serde(rename = "valid?")]
    pub valid: Validity,
    #[serde(rename = "attempt-count")]
    pub attempt_count: usize,
    #[serde(rename = "stable-count")]
    pub stable_count: usize,
    #[serde(rename = "lost-count")]
    pub lost_count: usize,
    pub lost: Vec<Value>,
    #[serde(rename = "never-read-count")]
    pub never_read_count: usize,
    #[serde(rename = "never-read")]
    pub never_read: Vec<Value>,
    #[serde(rename = "stale-count")]
    pub stale_count: usize,
    pub stale: Vec<Value>,
    #[serde(rename = "worst-stale")]
    pub worst_stale: Vec<ElementResult>,
    #[serde(rename = "stable-latencies", skip_serializing_if = "Option::is_none")]
    pub stable_latencies: Option<BTreeMap<String, u64>>,
    #[serde(rename = "lost-latencies", skip_serializing_if = "Option::is_none")]
    pub lost_latencies: Option<BTreeMap<String, u64>>,
    /// Always 0: Jepsen's duplicate detection can never fire (it keeps
    /// frequencies below 1), and we reproduce its verdicts.
    #[serde(rename = "duplicated-count")]
    pub duplicated_count: usize,
    pub duplicated: BTreeMap<String, usize>,
}

#[derive(Debug, Clone)]
struct Element {
    value: Value,
    known: Option<usize>,
    last_present: Option<usize>,
    last_absent: Option<usize>,
}

/// Runs set-full over a history whose adds have `f == add_f`.
pub fn check(history: &History, add_f: &str) -> SetFullReport {
    let ops = history.ops();
    let mut elements: BTreeMap<String, Element> = BTreeMap::new();
    for op in history.client_ops() {
        if op.f == add_f {
            track_add(&mut elements, op);
        } else if op.f == "read" && op.is_ok() {
            let Some(inv) = history.partner(op) else {
                continue;
            };
            observe_read(&mut elements, op, inv);
        }
    }
    let results: Vec<ElementResult> = elements
        .into_values()
        .map(|e| element_result(e, ops))
        .collect();
    summarise(results)
}

fn track_add(elements: &mut BTreeMap<String, Element>, op: &Op) {
    let key = op.value.to_string();
    if op.is_invoke() {
        elements.insert(
            key,
            Element {
                value: op.value.clone(),
                known: None,
                last_present: None,
                last_absent: None,
            },
        );
    } else if op.is_ok()
        && let Some(e) = elements.get_mut(&key)
    {
        e.known.get_or_insert(op.index);
    }
}

fn observe_read(elements: &mut BTreeMap<String, Element>, op: &Op, inv: &Op) {
    let seen: std::collections::HashSet<String> = match op.value.as_array() {
        Some(items) => items.iter().map(Value::to_string).collect(),
        None => Default::default(),
    };
    for (key, e) in elements.iter_mut() {
        if seen.contains(key) {
            e.known.get_or_insert(op.index);
            if e.last_present.is_none_or(|p| p < inv.index) {
                e.last_present = Some(inv.index);
            }
        } else if e.last_absent.is_none_or(|a| a < inv.index) {
            e.last_absent = Some(inv.index);
        }
    }
}

fn element_result(e: Element, ops: &[Op]) -> ElementResult {
    let index = |i: Option<usize>| i.map_or(-1, |i| i as i64);
    let time = |i: usize| ops[i].time;
    let stable = e.last_present.is_some() && index(e.last_absent) < index(e.last_present);
    let lost = e.known.is_some()
        && e.last_absent.is_some()
        && index(e.last_present) < index(e.last_absent)
        && index(e.known) < index(e.last_absent);
    let latency = |until: Option<usize>| -> u64 {
        let end: Time = until.map_or(0, |i| time(i) + 1);
        let known = e.known.map_or(0, time);
        end.saturating_sub(known) / NANOS_PER_MS
    };
    let outcome = if stable {
        Outcome::Stable
    } else if lost {
        Outcome::Lost
    } else {
        Outcome::NeverRead
    };
    ElementResult {
        element: e.value,
        outcome,
        stable_latency: stable.then(|| latency(e.last_absent)),
        lost_latency: lost.then(|| latency(e.last_present)),
        known: e.known.map(|i| ops[i].clone()),
        last_absent: e.last_absent.map(|i| ops[i].clone()),
    }
}

fn summarise(results: Vec<ElementResult>) -> SetFullReport {
    let of =
        |o: Outcome| -> Vec<&ElementResult> { results.iter().filter(|r| r.outcome == o).collect() };
    let (stable, lost, never_read) = (
        of(Outcome::Stable),
        of(Outcome::Lost),
        of(Outcome::NeverRead),
    );
    let mut stale: Vec<&ElementResult> = stable
        .iter()
        .copied()
        .filter(|r| r.stable_latency.unwrap_or(0) > 0)
        .collect();
    stale.sort_by_key(|r| std::cmp::Reverse(r.stable_latency));
    let valid = if !lost.is_empty() {
        Validity::Invalid
    } else if stable.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let values = |rs: &[&ElementResult]| -> Vec<Value> {
        let mut v: Vec<Value> = rs.iter().map(|r| r.element.clone()).collect();
        v.sort_by(super::compare_json);
        v
    };
    let mut stable_latencies: Vec<u64> = results.iter().filter_map(|r| r.stable_latency).collect();
    let mut lost_latencies: Vec<u64> = results.iter().filter_map(|r| r.lost_latency).collect();
    SetFullReport {
        valid,
        attempt_count: results.len(),
        stable_count: stable.len(),
        lost_count: lost.len(),
        lost: values(&lost),
        never_read_count: never_read.len(),
        never_read: values(&never_read),
        stale_count: stale.len(),
        stale: values(&stale),
        worst_stale: stale.iter().take(8).map(|r| (*r).clone()).collect(),
        stable_latencies: quantiles(&mut stable_latencies),
        lost_latencies: quantiles(&mut lost_latencies),
        duplicated_count: 0,
        duplicated: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpType, Process};
    use serde_json::json;

    /// Builds a history from (process, type, f, value, time in ms) rows.
    fn history(rows: &[(u64, OpType, &str, Value, u64)]) -> History {
        History::new(
            rows.iter()
                .map(|(p, t, f, v, ms)| {
                    Op::new(0, ms * NANOS_PER_MS, *t, Process::Client(*p), f, v.clone())
                })
                .collect(),
        )
    }

    use OpType::{Invoke, Ok as Done};

    #[test]
    fn an_element_seen_by_the_last_read_is_stable_with_its_staleness() {
        let h = history(&[
            (0, Invoke, "add", json!(1), 0),
            (0, Done, "add", json!(1), 10),
            (1, Invoke, "read", Value::Null, 20),
            (1, Done, "read", json!([]), 21),
            (1, Invoke, "read", Value::Null, 150),
            (1, Done, "read", json!([1]), 151),
        ]);
        let r = check(&h, "add");
        assert_eq!(r.valid, Validity::Valid);
        assert_eq!(r.stable_count, 1);
        assert_eq!(r.stale, vec![json!(1)]);
        // Known at 10 ms (the add's ok), last missed by a read invoked at 20 ms.
        assert_eq!(r.worst_stale[0].stable_latency, Some(10));
        assert_eq!(r.stable_latencies.unwrap()["1"], 10);
    }

    #[test]
    fn an_acknowledged_element_missing_from_later_reads_is_lost() {
        let h = history(&[
            (0, Invoke, "add", json!(7), 0),
            (0, Done, "add", json!(7), 5),
            (1, Invoke, "read", Value::Null, 6),
            (1, Done, "read", json!([7]), 7),
            (1, Invoke, "read", Value::Null, 100),
            (1, Done, "read", json!([]), 101),
        ]);
        let r = check(&h, "add");
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.lost, vec![json!(7)]);
        assert_eq!(r.lost_latencies.unwrap()["0"], 1);
    }

    #[test]
    fn a_miss_concurrent_with_the_add_is_not_a_loss() {
        // The read is invoked before the add is known: it may have happened
        // before the add, so the element is never-read, not lost.
        let h = history(&[
            (1, Invoke, "read", Value::Null, 0),
            (0, Invoke, "add", json!(3), 1),
            (0, Done, "add", json!(3), 2),
            (1, Done, "read", json!([]), 3),
        ]);
        let r = check(&h, "add");
        assert_eq!(r.never_read, vec![json!(3)]);
        assert_eq!(r.valid, Validity::Unknown, "nothing stable");
    }

    #[test]
    fn unacknowledged_adds_seen_by_reads_become_known() {
        let h = history(&[
            (0, Invoke, "add", json!(4), 0),
            (0, OpType::Info, "add", json!(4), 5000),
            (1, Invoke, "read", Value::Null, 10),
            (1, Done, "read", json!([4, 99]), 11),
        ]);
        let r = check(&h, "add");
        assert_eq!(r.valid, Validity::Valid);
        assert_eq!(r.attempt_count, 1, "99 was never added, so it is ignored");
    }

    #[test]
    fn failed_reads_are_ignored_and_duplicates_are_never_flagged() {
        let h = history(&[
            (0, Invoke, "add", json!(1), 0),
            (0, Done, "add", json!(1), 1),
            (1, Invoke, "read", Value::Null, 2),
            (1, OpType::Fail, "read", Value::Null, 3),
            (1, Invoke, "read", Value::Null, 4),
            (1, Done, "read", json!([1, 1]), 5),
        ]);
        let r = check(&h, "add");
        assert_eq!(r.valid, Validity::Valid);
        assert_eq!(r.duplicated_count, 0);
        assert_eq!(r.stale_count, 0);
    }
}
