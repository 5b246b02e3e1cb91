//! Linearizability checker for Maelstrom's `lin-kv` workload: an exact
//! replacement for Knossos with its CAS-register model.
//!
//! Each key is an independent register starting at null (linearizability
//! is local), so the history is split by key and keys are checked in
//! parallel. Per key, [`search`] runs Wing & Gong's search with Lowe's
//! memoisation. Semantics follow Knossos: `fail` operations never happened
//! and are dropped; `info` (or never completed) writes and cas may take
//! effect at any point after their invocation, or never; `info` reads are
//! dropped; real-time order comes from history positions, not timestamps.
//! A search that exhausts its [`Options`] budget yields an unknown verdict.

mod cache;
mod model;
mod report;
mod search;
mod split;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::history::History;
pub use report::{FinalState, KeyReport, LinearizabilityReport, OpPair, Witness};
use search::Budget;
use split::KeyHistory;

/// Limits on the checker's work.
#[derive(Debug, Clone)]
pub struct Options {
    /// Wall-clock budget for the whole check; keys still searching when it
    /// runs out are unknown.
    pub time_limit: Duration,
    /// Configurations a key's search may hold in its cache before giving
    /// up: the memory bound. Each costs about `ops / 8 + 200` bytes (ops
    /// of that key), and each thread holds one key's cache.
    pub max_cache_entries: usize,
    /// Keys checked at once.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Options {
            time_limit: Duration::from_secs(60),
            max_cache_entries: 2_000_000,
            threads: cores.min(2),
        }
    }
}

/// Checks a lin-kv history for linearizability, key by key.
pub fn check(history: &History, options: &Options) -> LinearizabilityReport {
    let budget = Budget {
        deadline: Instant::now() + options.time_limit,
        max_configurations: options.max_cache_entries,
    };
    let (mut keys, errors) = split::split_by_key(history);
    keys.sort_by(|a, b| compare_keys(&a.key, &b.key));
    let reports = check_keys(&keys, &budget, options.threads);
    let results = keys.iter().map(|k| k.key.clone()).zip(reports).collect();
    LinearizabilityReport::new(results, errors)
}

/// Checks every key on up to `threads` threads; reports in `keys` order.
fn check_keys(keys: &[KeyHistory], budget: &Budget, threads: usize) -> Vec<KeyReport> {
    // Likely-cheap keys first (crashed operations drive the cost, then
    // size), so one pathological key cannot use up the shared time budget
    // before the others have had their turn.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| (keys[i].crashed(), keys[i].calls.len()));
    let check_one = |&i: &usize| {
        let key = &keys[i];
        (
            i,
            KeyReport::new(key, search::search(&key.model, &key.calls, budget)),
        )
    };
    let mut reports: Vec<Option<KeyReport>> = vec![None; keys.len()];
    for (i, report) in map_parallel(&order, threads, check_one) {
        reports[i] = Some(report);
    }
    reports
        .into_iter()
        .map(|r| r.expect("every key checked"))
        .collect()
}

/// Applies `f` to every item on up to `threads` scoped threads, which take
/// items in order from a shared counter. Results come back unordered.
fn map_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        while let Some(item) = items.get(next.fetch_add(1, AtomicOrdering::Relaxed)) {
            done.push(f(item));
        }
        done
    };
    let threads = threads.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        let joined = handles
            .into_iter()
            .map(|h| h.join().expect("checker thread panicked"));
        joined.flatten().collect()
    })
}

/// Key order in reports: numbers numerically first, then the rest by JSON
/// text (Maelstrom's keys are 0, 1, 2, ...).
fn compare_keys(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.to_string().cmp(&b.to_string()),
    }
}
