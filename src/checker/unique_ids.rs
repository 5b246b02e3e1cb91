//! Jepsen's `unique-ids` checker: no two successful `generate` operations
//! may return the same id.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::{Validity, compare_json_strict};
use crate::history::History;

/// The report, with Jepsen's keys.
#[derive(Debug, Clone, Serialize)]
pub struct UniqueIdsReport {
    #[serde(rename = "valid?")]
    pub valid: Validity,
    #[serde(rename = "attempted-count")]
    pub attempted_count: usize,
    #[serde(rename = "acknowledged-count")]
    pub acknowledged_count: usize,
    #[serde(rename = "duplicated-count")]
    pub duplicated_count: usize,
    /// Up to 48 of the most duplicated ids, with how often each was returned.
    pub duplicated: BTreeMap<String, usize>,
    /// The smallest and largest id, when ids are mutually comparable.
    pub range: Option<[Value; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks that every acknowledged id is unique.
pub fn check(history: &History) -> UniqueIdsReport {
    let generates = history.client_ops().filter(|op| op.f == "generate");
    let attempted_count = generates.clone().filter(|op| op.is_invoke()).count();
    let ids: Vec<&Value> = generates
        .filter(|op| op.is_ok())
        .map(|op| &op.value)
        .collect();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        *counts.entry(id.to_string()).or_default() += 1;
    }
    let mut duplicated: Vec<(String, usize)> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
    let duplicated_count = duplicated.len();
    duplicated.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let (range, error) = match range(&ids) {
        Ok(range) => (range, None),
        Err(e) => (None, Some(e)),
    };
    // Jepsen's checker throws on incomparable ids, which makes it unknown.
    let valid = if duplicated_count > 0 {
        Validity::Invalid
    } else if error.is_some() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    UniqueIdsReport {
        valid,
        attempted_count,
        acknowledged_count: ids.len(),
        duplicated_count,
        duplicated: duplicated.into_iter().take(48).collect(),
        range,
        error,
    }
}

fn range(ids: &[&Value]) -> Result<Option<[Value; 2]>, String> {
    let Some(first) = ids.first() else {
        return Ok(None);
    };
    let (mut lo, mut hi) = (*first, *first);
    for id in &ids[1..] {
        let incomparable = |other: &Value| {
            format!("ids {other} and {id} cannot be compared; use one type for ids")
        };
        if compare_json_strict(id, lo).ok_or_else(|| incomparable(lo))? == Ordering::Less {
            lo = id;
        }
        if compare_json_strict(id, hi).ok_or_else(|| incomparable(hi))? == Ordering::Greater {
            hi = id;
        }
    }
    Ok(Some([lo.clone(), hi.clone()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType, Process};
    use serde_json::json;

    fn history(ids: &[Value]) -> History {
        let mut ops = Vec::new();
        for (p, id) in ids.iter().enumerate() {
            ops.push(Op::new(
                0,
                0,
                OpType::Invoke,
                Process::Client(p as u64),
                "generate",
                Value::Null,
            ));
            ops.push(Op::new(
                0,
                0,
                OpType::Ok,
                Process::Client(p as u64),
                "generate",
                id.clone(),
            ));
        }
        ops.push(Op::new(
            0,
            0,
            OpType::Invoke,
            Process::Client(99),
            "generate",
            Value::Null,
        ));
        History::new(ops)
    }

    #[test]
    fn distinct_ids_are_valid_with_their_range() {
        let r = check(&history(&[json!(5), json!(2), json!(9)]));
        assert_eq!(r.valid, Validity::Valid);
        assert_eq!(r.attempted_count, 4);
        assert_eq!(r.acknowledged_count, 3);
        assert_eq!(r.range, Some([json!(2), json!(9)]));
    }

    #[test]
    fn duplicates_are_invalid_and_reported_by_frequency() {
        let r = check(&history(&[
            json!("a"),
            json!("b"),
            json!("a"),
            json!("b"),
            json!("a"),
        ]));
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.duplicated_count, 2);
        assert_eq!(r.duplicated["\"a\""], 3);
    }

    #[test]
    fn incomparable_ids_make_the_verdict_unknown() {
        let r = check(&history(&[json!(1), json!("x")]));
        assert_eq!(r.valid, Validity::Unknown);
        assert!(r.error.unwrap().contains("cannot be compared"));
    }
}
