//! The oracle: every order of every subset of the operations that keeps
//! every ok one, respects real-time order and follows the registers, with
//! nothing shared with the checker but the history types.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::history::{History, OpType};

/// One operation as the brute force sees it.
#[derive(Debug, Clone)]
pub(super) struct Plain {
    pub(super) invoke: usize,
    /// Ok completion position; `None` when crashed.
    pub(super) complete: Option<usize>,
    pub(super) key: String,
    pub(super) f: String,
    /// Write value, `[from, to]` of a cas, or the value an ok read saw.
    pub(super) arg: Value,
}

pub(super) fn plain_ops(h: &History) -> Vec<Plain> {
    let mut out = Vec::new();
    for (invoke, complete) in h.pairs() {
        let kind = complete.map_or(OpType::Info, |c| c.kind);
        let crashed_read = kind == OpType::Info && invoke.f == "read";
        if kind == OpType::Fail || crashed_read {
            continue;
        }
        let value = if kind == OpType::Ok {
            &complete.unwrap().value
        } else {
            &invoke.value
        };
        out.push(Plain {
            invoke: invoke.index,
            complete: complete.filter(|c| c.is_ok()).map(|c| c.index),
            key: value[0].to_string(),
            f: invoke.f.clone(),
            arg: value[1].clone(),
        });
    }
    out
}

pub(super) type Registers = BTreeMap<String, Value>;

/// The registers after `op`, if it is legal.
pub(super) fn apply(registers: &Registers, op: &Plain) -> Option<Registers> {
    let current = registers.get(&op.key).unwrap_or(&Value::Null);
    let mut next = registers.clone();
    match op.f.as_str() {
        "read" => (op.arg.is_null() || op.arg == *current).then_some(next),
        "write" => {
            next.insert(op.key.clone(), op.arg.clone());
            Some(next)
        }
        _ => {
            if op.arg[0] != *current {
                return None;
            }
            next.insert(op.key.clone(), op.arg[1].clone());
            Some(next)
        }
    }
}

pub(super) fn brute_force(h: &History) -> bool {
    let ops = plain_ops(h);
    assert!(ops.len() <= 32);
    brute_force_from(&ops, 0, &Registers::new(), &mut HashSet::new())
}

/// Whether the unplaced operations can follow; `dead` remembers positions
/// already known to fail (the future depends on nothing else).
fn brute_force_from(
    ops: &[Plain],
    placed: u32,
    registers: &Registers,
    dead: &mut HashSet<(u32, Registers)>,
) -> bool {
    let is_placed = |i: usize| placed & (1 << i) != 0;
    if (0..ops.len()).all(|i| is_placed(i) || ops[i].complete.is_none()) {
        return true;
    }
    if dead.contains(&(placed, registers.clone())) {
        return false;
    }
    let can_follow = (0..ops.len()).any(|i| {
        let predecessors_placed = (0..ops.len())
            .all(|j| is_placed(j) || ops[j].complete.is_none_or(|c| c > ops[i].invoke));
        !is_placed(i)
            && predecessors_placed
            && apply(registers, &ops[i])
                .is_some_and(|next| brute_force_from(ops, placed | 1 << i, &next, dead))
    });
    if !can_follow {
        dead.insert((placed, registers.clone()));
    }
    can_follow
}
