//! History checkers, one module per checker, as Jepsen and Maelstrom name
//! them. Each returns a serialisable result whose `valid?` field is a
//! [`Validity`]; `results.json` is their composition.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::history::{History, Op};
use crate::runner::options::Availability;

pub mod counter;
pub mod elle;
pub mod kafka;
pub mod linearizable;
pub mod set_full;
pub mod stats;
pub mod unique_ids;

/// The quantiles Jepsen reports: 0, 0.5, 0.95, 0.99 and 1.
pub const QUANTILES: [(&str, f64); 5] = [
    ("0", 0.0),
    ("0.5", 0.5),
    ("0.95", 0.95),
    ("0.99", 0.99),
    ("1", 1.0),
];

/// Jepsen's quantiles of `values` (sorted in place): for each point q the
/// element at index min(n-1, floor(n q)). `None` when there are no values.
pub fn quantiles<T: Copy + Ord>(values: &mut [T]) -> Option<BTreeMap<String, T>> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(
        QUANTILES
            .iter()
            .map(|(name, q)| {
                let index = ((n as f64 * q).floor() as usize).min(n - 1);
                (name.to_string(), values[index])
            })
            .collect(),
    )
}

/// Compares JSON values the way Clojure's `compare` does, or `None` where
/// Clojure would throw: numbers with numbers, strings with strings,
/// booleans with booleans, arrays by length then element by element, and
/// null before anything.
pub fn compare_json_strict(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) => Some(Ordering::Less),
        (_, Value::Null) => Some(Ordering::Greater),
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(x.len().cmp(&y.len()));
            }
            for (p, q) in x.iter().zip(y) {
                match compare_json_strict(p, q)? {
                    Ordering::Equal => continue,
                    other => return Some(other),
                }
            }
            Some(Ordering::Equal)
        }
        _ => None,
    }
}

fn compare_numbers(x: &serde_json::Number, y: &serde_json::Number) -> Option<Ordering> {
    match (x.as_i64(), y.as_i64()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// A total order on JSON values for sorting reports: Clojure's order where
/// it has one, otherwise by type and then by text.
pub fn compare_json(a: &Value, b: &Value) -> Ordering {
    compare_json_strict(a, b).unwrap_or_else(|| {
        let rank = |v: &Value| match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.to_string().cmp(&b.to_string()))
    })
}

/// Maelstrom's availability checker: the fraction of client invocations
/// that completed ok, against `--availability` when given.
#[derive(Debug, Clone, Serialize)]
pub struct AvailabilityReport {
    #[serde(rename = "valid?")]
    pub valid: Validity,
    #[serde(rename = "ok-fraction")]
    pub ok_fraction: f64,
}

pub fn availability(history: &History, target: Option<Availability>) -> AvailabilityReport {
    let invokes = history.client_ops().filter(|op| op.is_invoke()).count();
    let oks = history.client_ops().filter(|op| op.is_ok()).count();
    let ok_fraction = if invokes == 0 {
        1.0
    } else {
        oks as f64 / invokes as f64
    };
    let valid = match target {
        None => true,
        Some(Availability::Total) => oks == invokes,
        Some(Availability::Fraction(a)) => ok_fraction >= a,
    };
    AvailabilityReport {
        valid: Validity::from_bool(valid),
        ok_fraction,
    }
}

/// One kind of client-side exception, with how often it happened.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionGroup {
    pub count: usize,
    pub class: String,
    pub example: Op,
}

/// Jepsen's `unhandled-exceptions`: indeterminate operations caused by
/// client-side exceptions, grouped by kind. Always valid.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionsReport {
    #[serde(rename = "valid?")]
    pub valid: Validity,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<ExceptionGroup>,
}

pub fn exceptions(history: &History) -> ExceptionsReport {
    let mut groups: BTreeMap<String, ExceptionGroup> = BTreeMap::new();
    for op in history.client_ops().filter(|op| op.is_info()) {
        if let Some(text) = &op.exception {
            let class = text
                .split([':', '('])
                .next()
                .unwrap_or(text)
                .trim()
                .to_string();
            groups
                .entry(class.clone())
                .and_modify(|g| g.count += 1)
                .or_insert_with(|| ExceptionGroup {
                    count: 1,
                    class,
                    example: op.clone(),
                });
        }
    }
    let mut exceptions: Vec<ExceptionGroup> = groups.into_values().collect();
    exceptions.sort_by_key(|g| std::cmp::Reverse(g.count));
    ExceptionsReport {
        valid: Validity::Valid,
        exceptions,
    }
}

/// A checker's verdict: valid, invalid, or unknown (the analysis could not
/// decide, e.g. it ran out of its time budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Validity {
    #[default]
    Valid,
    Invalid,
    Unknown,
}

impl Validity {
    /// Combines two verdicts: invalid dominates unknown, which dominates valid.
    pub fn and(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }

    /// `Valid` when `ok`, else `Invalid`.
    pub fn from_bool(ok: bool) -> Validity {
        if ok {
            Validity::Valid
        } else {
            Validity::Invalid
        }
    }

    pub fn is_valid(self) -> bool {
        self == Validity::Valid
    }
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        })
    }
}

/// Serialised as Maelstrom writes `:valid?`: `true`, `false` or `"unknown"`.
impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => serializer.serialize_bool(true),
            Validity::Invalid => serializer.serialize_bool(false),
            Validity::Unknown => serializer.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Bool(true) => Ok(Validity::Valid),
            serde_json::Value::Bool(false) => Ok(Validity::Invalid),
            serde_json::Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "valid? must be true, false or \"unknown\", not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpType, Process};
    use serde_json::json;

    #[test]
    fn quantiles_take_jepsens_indices() {
        let mut v: Vec<u64> = (1..=10).rev().collect();
        let q = quantiles(&mut v).unwrap();
        assert_eq!(q["0"], 1);
        assert_eq!(q["0.5"], 6);
        assert_eq!(q["0.95"], 10);
        assert_eq!(q["1"], 10);
        assert!(quantiles::<u64>(&mut []).is_none());
    }

    #[test]
    fn clojure_comparison_rules() {
        assert_eq!(
            compare_json_strict(&json!(1), &json!(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare_json_strict(&json!([1, 9]), &json!([2])),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_json_strict(&json!(null), &json!("a")),
            Some(Ordering::Less)
        );
        assert_eq!(compare_json_strict(&json!(1), &json!("a")), None);
        assert_eq!(compare_json_strict(&json!({}), &json!({})), None);
        assert_eq!(compare_json(&json!(1), &json!("a")), Ordering::Less);
    }

    #[test]
    fn availability_counts_ok_completions_over_client_invocations() {
        let op = |p, kind| Op::new(0, 0, kind, Process::Client(p), "read", Value::Null);
        let h = History::new(vec![
            op(0, OpType::Invoke),
            op(0, OpType::Ok),
            op(1, OpType::Invoke),
            op(1, OpType::Fail),
            Op::new(
                0,
                0,
                OpType::Info,
                Process::Nemesis,
                "start-partition",
                Value::Null,
            ),
            Op::new(
                0,
                0,
                OpType::Info,
                Process::Nemesis,
                "start-partition",
                Value::Null,
            ),
        ]);
        assert_eq!(availability(&h, None).ok_fraction, 0.5);
        assert_eq!(availability(&h, None).valid, Validity::Valid);
        assert_eq!(
            availability(&h, Some(Availability::Total)).valid,
            Validity::Invalid
        );
        assert_eq!(
            availability(&h, Some(Availability::Fraction(0.5))).valid,
            Validity::Valid
        );
        assert_eq!(availability(&History::new(vec![]), None).ok_fraction, 1.0);
    }

    #[test]
    fn verdicts_combine_and_serialise_like_maelstrom() {
        use Validity::*;
        assert_eq!(Valid.and(Unknown), Unknown);
        assert_eq!(Unknown.and(Invalid), Invalid);
        assert_eq!(Valid.and(Valid), Valid);
        assert_eq!(
            serde_json::to_string(&[Valid, Invalid, Unknown]).unwrap(),
            r#"[true,false,"unknown"]"#
        );
        let back: Vec<Validity> = serde_json::from_str(r#"[true,false,"unknown"]"#).unwrap();
        assert_eq!(back, vec![Valid, Invalid, Unknown]);
    }
}
