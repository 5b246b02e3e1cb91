//! Wing & Gong's linearizability search with Lowe's memoisation, in the
//! shape Knossos's `wgl` and Porcupine use (after Horn & Kroening):
//!
//! - every operation has a call entry and a return entry in a doubly linked
//!   list ordered as the history; crashed (`info`) operations' returns are
//!   moved to the end, since they may take effect at any later time;
//! - walking the list from its head, a call whose operation the model
//!   accepts is *linearized*: pushed on a stack and lifted out of the list
//!   with its return, and the walk restarts; meeting the return of an ok
//!   operation whose call is still in the list is a dead end: the last
//!   linearized call is put back and the walk resumes after it;
//! - a configuration (set of linearized operations, model state) is only
//!   explored once: the cache remembers every one reached, and also skips
//!   those dominated by one reached (see `cache`);
//! - unlike Knossos, ok calls are tried before crashed ones; the order
//!   changes neither verdicts nor the witness's states, and it makes the
//!   dominance check effective.
//!
//! Entry ids number ok operations first, in completion order, then crashed
//! ones, so "every id below n is linearized" measures progress through the
//! operations that must happen; the failure witness is built from it.

use std::time::Instant;

use super::cache::{Bitset, Cache};
use super::model::Model;

/// One operation as the search sees it.
#[derive(Debug, Clone)]
pub(crate) struct Call<O> {
    /// Position of the invocation in the history.
    pub invoke: usize,
    /// Position of the ok completion, or `None` for a crashed operation.
    pub complete: Option<usize>,
    /// What the operation does, for the model.
    pub op: O,
}

/// Limits past which the search gives up with an unknown verdict.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// When to stop searching.
    pub deadline: Instant,
    /// How many configurations the cache may hold.
    pub max_configurations: usize,
}

/// The verdict of one search.
#[derive(Debug)]
pub(crate) enum Outcome<S> {
    Linearizable,
    NotLinearizable(Stuck<S>),
    /// The budget ran out; the string says which part and how far it got.
    GaveUp(String),
}

/// Where a failed search got stuck. Operations are the caller's indices
/// into the slice of [`Call`]s.
#[derive(Debug)]
pub(crate) struct Stuck<S> {
    /// The first ok operation (in completion order) that no configuration
    /// could linearize after all the ok operations completed before it.
    pub op: usize,
    /// The ok operation completed just before `op`, if any.
    pub previous_ok: Option<usize>,
    /// Distinct model states of the configurations that got that far.
    pub states: Vec<S>,
    /// One such configuration's operations, in the order it placed them.
    pub path: Vec<usize>,
}

/// A search's verdict and how many configurations it explored.
#[derive(Debug)]
pub(crate) struct SearchResult<S> {
    /// The verdict.
    pub outcome: Outcome<S>,
    /// Configurations explored (including ones later found dominated).
    pub configurations: usize,
}

/// Checks `calls` against `model`. Calls may come in any order.
pub(crate) fn search<M: Model>(
    model: &M,
    calls: &[Call<M::Op>],
    budget: &Budget,
) -> SearchResult<M::State> {
    let mut search = Search::new(model, calls);
    let outcome = search.run(budget);
    SearchResult {
        outcome,
        configurations: search.cache.explored(),
    }
}

/// How often (in loop iterations) the clock is read.
const CLOCK_EVERY: u64 = 1 << 10;

struct Search<'a, M: Model> {
    model: &'a M,
    calls: &'a [Call<M::Op>],
    /// Entry id → index into `calls`.
    by_entry: Vec<usize>,
    /// Entry ids below this are ok operations.
    ok_count: usize,
    list: EntryList,
    /// Linearized ok entry ids.
    ok: Bitset,
    /// Linearized crashed entry ids, minus `ok_count`.
    crashed: Bitset,
    cache: Cache<M::State>,
    /// Linearized entry ids with the model state before each.
    stack: Vec<(usize, M::State)>,
    furthest: Furthest,
}

/// Which calls a walk over the list tries. Trying ok calls before crashed
/// ones reaches configurations with few crashed operations first, so the
/// cache's dominance check prunes the many variants with more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Ok,
    Crashed,
}

/// Where the walk over the list is: model state, next node, pass.
#[derive(Debug)]
struct Walk<S> {
    state: S,
    node: Option<u32>,
    pass: Pass,
}

/// The deepest progress seen, kept for the failure witness.
#[derive(Debug, Default)]
struct Furthest {
    /// Ok entry ids below this were all linearized together at some point.
    progress: usize,
    /// The stack's entry ids when that progress was first reached.
    path: Vec<usize>,
    /// Length of the stack prefix still equal to `path`: copying only the
    /// changed suffix keeps snapshots cheap.
    unchanged: usize,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, calls: &'a [Call<M::Op>]) -> Self {
        let by_entry = entry_order(calls);
        let ok_count = calls.iter().filter(|c| c.complete.is_some()).count();
        let list = EntryList::new(calls, &by_entry);
        let ok = Bitset::new(ok_count);
        let crashed = Bitset::new(calls.len() - ok_count);
        let mut cache = Cache::new();
        cache.insert(&ok, &crashed, &model.init());
        Search {
            model,
            calls,
            by_entry,
            ok_count,
            list,
            ok,
            crashed,
            cache,
            stack: Vec::new(),
            furthest: Furthest::default(),
        }
    }

    fn run(&mut self, budget: &Budget) -> Outcome<M::State> {
        let mut walk = Walk {
            state: self.model.init(),
            node: self.list.first(),
            pass: Pass::Ok,
        };
        let mut steps: u64 = 0;
        loop {
            if let Some(reason) = self.exhausted(budget, steps) {
                return Outcome::GaveUp(reason);
            }
            steps += 1;
            let Some(current) = walk.node else {
                return Outcome::Linearizable;
            };
            match EntryList::kind(current) {
                Entry::Call(entry) if self.pass_of(entry) == walk.pass => {
                    self.try_call(&mut walk, entry);
                }
                Entry::Call(_) => walk.node = self.list.next(current),
                // Every ok operation is linearized: the crashed ones still
                // in the list simply never happened.
                Entry::Return(entry) if self.pass_of(entry) == Pass::Crashed => {
                    return Outcome::Linearizable;
                }
                // No ok call fits here: try the crashed ones.
                Entry::Return(_) if walk.pass == Pass::Ok => {
                    (walk.node, walk.pass) = (self.list.first(), Pass::Crashed);
                }
                // An ok operation returned before we could place its call.
                Entry::Return(_) => {
                    if !self.backtrack(&mut walk) {
                        return Outcome::NotLinearizable(self.stuck());
                    }
                }
            }
        }
    }

    /// Linearizes `entry` if the model allows it and that reaches a new
    /// configuration, restarting the walk; else moves on.
    fn try_call(&mut self, walk: &mut Walk<M::State>, entry: usize) {
        let op = &self.calls[self.by_entry[entry]].op;
        match self.model.step(&walk.state, op) {
            Some(next) if self.remember(entry, &next) => {
                let previous = std::mem::replace(&mut walk.state, next);
                self.stack.push((entry, previous));
                self.list.lift(entry);
                self.note_progress();
                (walk.node, walk.pass) = (self.list.first(), Pass::Ok);
            }
            _ => walk.node = self.list.next(EntryList::call_node(entry)),
        }
    }

    /// Undoes the last linearization and resumes the walk after its call;
    /// false when there is nothing left to undo.
    fn backtrack(&mut self, walk: &mut Walk<M::State>) -> bool {
        let Some((entry, previous)) = self.stack.pop() else {
            return false;
        };
        walk.state = previous;
        self.unmark(entry);
        self.list.unlift(entry);
        let len = self.stack.len();
        self.furthest.unchanged = self.furthest.unchanged.min(len);
        walk.node = self.list.next(EntryList::call_node(entry));
        walk.pass = self.pass_of(entry);
        true
    }

    fn pass_of(&self, entry: usize) -> Pass {
        if entry < self.ok_count {
            Pass::Ok
        } else {
            Pass::Crashed
        }
    }

    /// Marks `entry` linearized if that leads to a new configuration.
    fn remember(&mut self, entry: usize, state: &M::State) -> bool {
        self.mark(entry);
        let new = self.cache.insert(&self.ok, &self.crashed, state);
        if !new {
            self.unmark(entry);
        }
        new
    }

    fn mark(&mut self, entry: usize) {
        match self.pass_of(entry) {
            Pass::Ok => self.ok.set(entry),
            Pass::Crashed => self.crashed.set(entry - self.ok_count),
        }
    }

    fn unmark(&mut self, entry: usize) {
        match self.pass_of(entry) {
            Pass::Ok => self.ok.clear(entry),
            Pass::Crashed => self.crashed.clear(entry - self.ok_count),
        }
    }

    /// Why the search must stop now, if it must.
    fn exhausted(&self, budget: &Budget, steps: u64) -> Option<String> {
        let explored = self.cache.explored();
        let why = if self.cache.stored() > budget.max_configurations {
            format!(
                "cache limit of {} configurations reached",
                budget.max_configurations
            )
        } else if steps.is_multiple_of(CLOCK_EVERY) && Instant::now() >= budget.deadline {
            "time limit reached".to_string()
        } else {
            return None;
        };
        Some(format!(
            "gave up ({why}) after exploring {explored} configurations; \
             at best {} of {} ok operations were linearized",
            self.furthest.progress, self.ok_count
        ))
    }

    fn note_progress(&mut self) {
        let progress = self.ok.first_clear().min(self.ok_count);
        let furthest = &mut self.furthest;
        if progress > furthest.progress {
            furthest.progress = progress;
            furthest.path.truncate(furthest.unchanged);
            let changed = &self.stack[furthest.unchanged..];
            furthest
                .path
                .extend(changed.iter().map(|(entry, _)| *entry));
            furthest.unchanged = self.stack.len();
        }
    }

    /// The witness, once the search has exhausted every configuration.
    fn stuck(&self) -> Stuck<M::State> {
        let progress = self.furthest.progress;
        Stuck {
            op: self.by_entry[progress],
            previous_ok: progress.checked_sub(1).map(|e| self.by_entry[e]),
            // The configurations that linearized every ok operation before
            // the stuck one; none could place it, whatever else they placed.
            states: self.cache.states_covering(progress),
            path: self
                .furthest
                .path
                .iter()
                .map(|&e| self.by_entry[e])
                .collect(),
        }
    }
}

/// Entry ids → call indices: ok operations by completion, then crashed ones
/// by invocation.
fn entry_order<O>(calls: &[Call<O>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..calls.len()).collect();
    order.sort_by_key(|&i| match calls[i].complete {
        Some(complete) => (0, complete),
        None => (1, calls[i].invoke),
    });
    order
}

/// A list entry: the call or the return of the operation with that entry id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Call(usize),
    Return(usize),
}

/// The history as a doubly linked list over arrays, for O(1) lift and
/// unlift. Node 0 is the head sentinel; entry `e` owns nodes `2e + 1` (its
/// call) and `2e + 2` (its return).
#[derive(Debug)]
struct EntryList {
    next: Vec<u32>,
    prev: Vec<u32>,
}

const NIL: u32 = u32::MAX;

impl EntryList {
    fn new<O>(calls: &[Call<O>], by_entry: &[usize]) -> EntryList {
        // (history position, node); crashed returns sort after everything.
        let mut events = Vec::with_capacity(2 * calls.len());
        for (entry, &i) in by_entry.iter().enumerate() {
            let call = &calls[i];
            events.push((call.invoke, Self::call_node(entry)));
            let end = call.complete.unwrap_or(usize::MAX);
            events.push((end, Self::call_node(entry) + 1));
        }
        events.sort_unstable();
        let len = 2 * calls.len() + 1;
        assert!(len < NIL as usize, "too many operations for one key");
        let mut list = EntryList {
            next: vec![NIL; len],
            prev: vec![NIL; len],
        };
        let mut last = 0;
        for (_, node) in events {
            list.next[last as usize] = node;
            list.prev[node as usize] = last;
            last = node;
        }
        list
    }

    fn call_node(entry: usize) -> u32 {
        (2 * entry + 1) as u32
    }

    fn kind(node: u32) -> Entry {
        let entry = (node as usize - 1) / 2;
        if node % 2 == 1 {
            Entry::Call(entry)
        } else {
            Entry::Return(entry)
        }
    }

    fn first(&self) -> Option<u32> {
        self.next(0)
    }

    fn next(&self, node: u32) -> Option<u32> {
        Some(self.next[node as usize]).filter(|&n| n != NIL)
    }

    /// Removes an entry's call and return.
    fn lift(&mut self, entry: usize) {
        let call = Self::call_node(entry);
        self.unlink(call);
        self.unlink(call + 1);
    }

    /// Undoes the last `lift` (lifts are undone in reverse order).
    fn unlift(&mut self, entry: usize) {
        let call = Self::call_node(entry);
        self.relink(call + 1);
        self.relink(call);
    }

    fn unlink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = next;
        if next != NIL {
            self.prev[next as usize] = prev;
        }
    }

    /// Puts back an unlinked node; its own links still name its neighbours.
    fn relink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = node;
        if next != NIL {
            self.prev[next as usize] = node;
        }
    }
}
