//! Elle's key pool, which the kafka and txn-rw-register generators draw
//! from: a fixed number of active keys, chosen with an exponential bias
//! (each slot twice as likely as the one before), each written with values
//! 1, 2, 3, ... and retired after a number of writes in favour of a fresh
//! key, so values are unique per key and every key's history stays short.

use std::collections::HashMap;

use rand::RngExt;

use crate::runner::random::Rng;

/// A read or write of one key, as Elle's generator draws them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MicroOp {
    Read(u64),
    Write(u64, u64),
}

impl MicroOp {
    pub fn key(self) -> u64 {
        match self {
            MicroOp::Read(k) | MicroOp::Write(k, _) => k,
        }
    }
}

/// The active keys and how many times each has been written.
#[derive(Debug, Clone)]
pub struct KeyPool {
    active: Vec<u64>,
    writes: HashMap<u64, u64>,
    max_writes: u64,
}

impl KeyPool {
    /// Keys `0..key_count`, each retired after `max_writes` writes.
    pub fn new(key_count: usize, max_writes: usize) -> KeyPool {
        KeyPool {
            active: (0..key_count as u64).collect(),
            writes: HashMap::new(),
            max_writes: max_writes as u64,
        }
    }

    /// Slot i has weight 2^(i+1): the last slot takes about half the picks.
    fn pick_slot(&self, rng: &mut Rng) -> usize {
        let n = self.active.len() as i32;
        let span = 2.0 * (2f64.powi(n) - 1.0);
        let x = rng.random::<f64>() * span + 2.0;
        ((x.log2().floor() as usize).saturating_sub(1)).min(self.active.len() - 1)
    }

    /// Draws a read or a write (even odds). A write to a key that used up
    /// its writes retires the key, puts a fresh one in its slot, and draws
    /// again.
    pub fn draw(&mut self, rng: &mut Rng) -> MicroOp {
        loop {
            let read = rng.random_bool(0.5);
            let slot = self.pick_slot(rng);
            let key = self.active[slot];
            if read {
                return MicroOp::Read(key);
            }
            let written = self.writes.entry(key).or_insert(0);
            if *written >= self.max_writes {
                let fresh = self.active.iter().max().copied().unwrap_or(0) + 1;
                self.active[slot] = fresh;
                continue;
            }
            *written += 1;
            return MicroOp::Write(key, *written);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::random;

    #[test]
    fn keys_are_biased_towards_later_slots() {
        let pool = KeyPool::new(10, 16);
        let mut rng = random::stream(1, "t");
        let mut counts = [0usize; 10];
        for _ in 0..20_000 {
            counts[pool.pick_slot(&mut rng)] += 1;
        }
        let last = counts[9] as f64 / 20_000.0;
        assert!((last - 0.5).abs() < 0.03, "last slot share {last}");
        assert!(counts[8] > counts[7] && counts[7] > counts[6]);
    }

    #[test]
    fn writes_are_unique_per_key_and_keys_retire() {
        let mut pool = KeyPool::new(3, 4);
        let mut rng = random::stream(2, "t");
        let mut seen = std::collections::HashSet::new();
        let mut max_key = 0;
        for _ in 0..1000 {
            if let MicroOp::Write(k, v) = pool.draw(&mut rng) {
                assert!((1..=4).contains(&v));
                assert!(seen.insert((k, v)), "value {v} written twice to {k}");
                max_key = max_key.max(k);
            }
        }
        assert!(max_key > 20, "keys get retired and replaced");
        assert_eq!(pool.active.len(), 3);
    }
}
