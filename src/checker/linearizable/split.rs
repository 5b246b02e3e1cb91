//! Turns a lin-kv history into one register history per key, applying
//! Knossos's preprocessing: failed operations and crashed reads are dropped,
//! reads learn their value from their completion, invocations that never
//! completed count as crashed.

use std::collections::HashMap;

use serde_json::Value;

use super::model::{Register, RegisterOp};
use super::search::Call;
use crate::history::{History, Op, OpType};

/// One key's operations, ready for the search.
#[derive(Debug)]
pub(crate) struct KeyHistory<'h> {
    /// The key, as JSON.
    pub key: Value,
    /// The key's register, which interns the values its operations use.
    pub model: Register,
    /// The operations the search checks.
    pub calls: Vec<Call<RegisterOp>>,
    /// The history entries behind each call (same indices as `calls`).
    pub ops: Vec<(&'h Op, Option<&'h Op>)>,
    /// Operations that had no effect: failed ones and crashed reads.
    pub ignored: usize,
}

impl KeyHistory<'_> {
    /// How many of the calls are crashed (may or may not have happened).
    pub fn crashed(&self) -> usize {
        self.calls.iter().filter(|c| c.complete.is_none()).count()
    }
}

/// The history split by key, in order of first appearance, plus a message
/// for every client entry that is not a well-formed lin-kv operation.
pub(crate) fn split_by_key(history: &History) -> (Vec<KeyHistory<'_>>, Vec<String>) {
    let mut keys: Vec<KeyHistory> = Vec::new();
    // Canonical JSON text of a key → its position in `keys`.
    let mut positions: HashMap<String, usize> = HashMap::new();
    let mut errors = Vec::new();
    for (invoke, complete) in history.pairs() {
        let (key, effect) = match parse(invoke, complete) {
            Ok(parsed) => parsed,
            Err(why) => {
                errors.push(format!("op {}: {why}", invoke.index));
                continue;
            }
        };
        let position = *positions.entry(key.to_string()).or_insert_with(|| {
            keys.push(KeyHistory {
                key: key.clone(),
                model: Register::default(),
                calls: Vec::new(),
                ops: Vec::new(),
                ignored: 0,
            });
            keys.len() - 1
        });
        keys[position].add(invoke, complete, effect);
    }
    errors.extend(orphan_completions(history));
    (keys, errors)
}

impl<'h> KeyHistory<'h> {
    fn add(&mut self, invoke: &'h Op, complete: Option<&'h Op>, effect: Option<Effect>) {
        let Some(effect) = effect else {
            self.ignored += 1;
            return;
        };
        let op = match effect {
            Effect::Read(v) if v.is_null() => RegisterOp::Read(None),
            Effect::Read(v) => RegisterOp::Read(Some(self.model.intern(v))),
            Effect::Write(v) => RegisterOp::Write(self.model.intern(v)),
            Effect::Cas(from, to) => RegisterOp::Cas {
                from: self.model.intern(from),
                to: self.model.intern(to),
            },
        };
        let ok = complete.filter(|c| c.is_ok());
        self.calls.push(Call {
            invoke: invoke.index,
            complete: ok.map(|c| c.index),
            op,
        });
        self.ops.push((invoke, complete));
    }
}

/// What an operation means for its key's register.
#[derive(Debug)]
enum Effect<'v> {
    Read(&'v Value),
    Write(&'v Value),
    Cas(&'v Value, &'v Value),
}

/// The key an operation touches and its effect, `None` when it is dropped.
fn parse<'h>(
    invoke: &'h Op,
    complete: Option<&'h Op>,
) -> Result<(Value, Option<Effect<'h>>), String> {
    let outcome = complete.map_or(OpType::Info, |c| c.kind);
    // Ok completions carry the result (a read's value); otherwise the
    // invocation is all we know.
    let source = match complete {
        Some(c) if c.is_ok() => c,
        _ => invoke,
    };
    let (key, argument) = key_and_argument(&source.value)?;
    let dropped = match outcome {
        OpType::Fail => true,
        OpType::Info => invoke.f == "read",
        OpType::Ok | OpType::Invoke => false,
    };
    let effect = match invoke.f.as_str() {
        "read" => Effect::Read(argument),
        "write" => Effect::Write(argument),
        "cas" => match argument.as_array().map(Vec::as_slice) {
            Some([from, to]) => Effect::Cas(from, to),
            _ => return Err(format!("cas value {argument} is not [from, to]")),
        },
        other => return Err(format!("unknown function {other:?}")),
    };
    Ok((key.clone(), (!dropped).then_some(effect)))
}

fn key_and_argument(value: &Value) -> Result<(&Value, &Value), String> {
    match value.as_array().map(Vec::as_slice) {
        Some([key, argument]) => Ok((key, argument)),
        _ => Err(format!("value {value} is not [key, argument]")),
    }
}

/// Ok or failed completions with no invocation: Knossos rejects such
/// histories (a lone `info` it ignores, and so do we).
fn orphan_completions(history: &History) -> impl Iterator<Item = String> + '_ {
    history
        .client_ops()
        .filter(|op| (op.is_ok() || op.is_fail()) && history.partner(op).is_none())
        .map(|op| format!("op {}: completion without an invocation", op.index))
}
