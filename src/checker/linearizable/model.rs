//! Sequential specifications the search checks histories against, and the
//! one lin-kv needs: a compare-and-set register per key.

use std::hash::Hash;

use serde_json::Value;

/// A sequential datatype: a pure step function over small, hashable states.
pub(crate) trait Model {
    /// A model state. Kept small: the search stores one per configuration.
    type State: Clone + Eq + Hash;
    /// One operation with its arguments and, once completed, its result.
    type Op;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `op`, or `None` when `op` cannot happen in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// The state as JSON, for failure reports.
    fn describe(&self, state: &Self::State) -> Value;

    /// Why `op` cannot happen in `state`, for failure reports.
    fn explain(&self, state: &Self::State, op: &Self::Op) -> String;
}

/// A register value, interned: `NULL` is JSON null, the initial value.
pub(crate) type ValueId = u32;

/// The interned id of JSON null (absent key).
pub(crate) const NULL: ValueId = 0;

/// An operation on a CAS register, with values interned by [`Register`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegisterOp {
    /// A read that returned the value, or `None` if it returned null
    /// (Knossos accepts a null read in any state).
    Read(Option<ValueId>),
    Write(ValueId),
    Cas {
        from: ValueId,
        to: ValueId,
    },
}

/// Knossos's `cas-register` starting at null. Values are JSON, interned to
/// small integers so states are cheap to hash and compare (what Knossos's
/// `memo` achieves by precomputing the state graph).
#[derive(Debug, Clone)]
pub(crate) struct Register {
    values: Vec<Value>,
}

impl Default for Register {
    fn default() -> Register {
        Register {
            values: vec![Value::Null],
        }
    }
}

impl Register {
    /// The id of `value`, allocating one on first sight. Linear lookup: a
    /// key sees a handful of distinct values (lin-kv uses 0..4).
    pub(crate) fn intern(&mut self, value: &Value) -> ValueId {
        match self.values.iter().position(|v| v == value) {
            Some(id) => id as ValueId,
            None => {
                self.values.push(value.clone());
                (self.values.len() - 1) as ValueId
            }
        }
    }

    fn value(&self, id: ValueId) -> &Value {
        &self.values[id as usize]
    }
}

impl Model for Register {
    type State = ValueId;
    type Op = RegisterOp;

    fn init(&self) -> ValueId {
        NULL
    }

    fn step(&self, state: &ValueId, op: &RegisterOp) -> Option<ValueId> {
        match *op {
            RegisterOp::Read(None) => Some(*state),
            RegisterOp::Read(Some(v)) => (v == *state).then_some(*state),
            RegisterOp::Write(v) => Some(v),
            RegisterOp::Cas { from, to } => (from == *state).then_some(to),
        }
    }

    fn describe(&self, state: &ValueId) -> Value {
        self.value(*state).clone()
    }

    fn explain(&self, state: &ValueId, op: &RegisterOp) -> String {
        let held = self.value(*state);
        match *op {
            RegisterOp::Read(Some(v)) if v != *state => {
                format!(
                    "can't read {} from a register holding {held}",
                    self.value(v)
                )
            }
            RegisterOp::Cas { from, to } if from != *state => format!(
                "can't cas from {} to {} on a register holding {held}",
                self.value(from),
                self.value(to)
            ),
            _ => format!("legal on a register holding {held}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn register_follows_knossos_cas_register() {
        let mut r = Register::default();
        let one = r.intern(&json!(1));
        let two = r.intern(&json!(2));
        assert_eq!(r.intern(&json!(1)), one);
        assert_eq!(r.intern(&Value::Null), NULL);
        assert_eq!(r.step(&NULL, &RegisterOp::Read(None)), Some(NULL));
        assert_eq!(r.step(&two, &RegisterOp::Read(None)), Some(two));
        assert_eq!(r.step(&NULL, &RegisterOp::Read(Some(one))), None);
        assert_eq!(r.step(&one, &RegisterOp::Read(Some(one))), Some(one));
        assert_eq!(r.step(&NULL, &RegisterOp::Write(one)), Some(one));
        let cas = RegisterOp::Cas { from: one, to: two };
        assert_eq!(r.step(&one, &cas), Some(two));
        assert_eq!(r.step(&two, &cas), None);
        assert_eq!(
            r.explain(&two, &cas),
            "can't cas from 1 to 2 on a register holding 2"
        );
        assert_eq!(
            r.explain(&NULL, &RegisterOp::Read(Some(one))),
            "can't read 1 from a register holding null"
        );
        assert_eq!(r.describe(&two), json!(2));
    }
}
