//! The search's memory of configurations already explored.
//!
//! A configuration is (set of linearized operations, model state). Lowe's
//! memoisation skips a configuration seen before; we also skip one that is
//! *dominated*: same ok operations, same state, and a superset of the
//! crashed operations of one seen before. That is exact, because crashed
//! operations are optional and never precede anything in real time: any
//! way to finish from the bigger set also finishes from the smaller one.
//! So the cache maps (ok set, state) to the minimal crashed sets seen.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A set of small integers with an incrementally maintained Zobrist hash
/// (the XOR of a fixed random word per member), so hashing it is O(1).
#[derive(Debug, Clone)]
pub(super) struct Bitset {
    words: Vec<u64>,
    hash: u64,
}

impl Bitset {
    pub fn new(bits: usize) -> Bitset {
        Bitset {
            words: vec![0; bits.div_ceil(64)],
            hash: 0,
        }
    }

    pub fn set(&mut self, i: usize) {
        debug_assert!(self.words[i / 64] & (1 << (i % 64)) == 0);
        self.words[i / 64] |= 1 << (i % 64);
        self.hash ^= zobrist(i);
    }

    pub fn clear(&mut self, i: usize) {
        debug_assert!(self.words[i / 64] & (1 << (i % 64)) != 0);
        self.words[i / 64] &= !(1 << (i % 64));
        self.hash ^= zobrist(i);
    }

    /// The smallest member not in the set.
    pub fn first_clear(&self) -> usize {
        first_clear(&self.words)
    }
}

fn first_clear(words: &[u64]) -> usize {
    match words.iter().position(|&w| w != u64::MAX) {
        Some(i) => 64 * i + words[i].trailing_ones() as usize,
        None => 64 * words.len(),
    }
}

fn is_subset(small: &[u64], big: &[u64]) -> bool {
    small.iter().zip(big).all(|(s, b)| s & !b == 0)
}

/// SplitMix64's finaliser: a fixed pseudo-random word per member.
fn zobrist(i: usize) -> u64 {
    let mut z = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Configurations explored, keyed by (ok set, state).
#[derive(Debug)]
pub(super) struct Cache<S> {
    /// Per (ok set, state): the minimal crashed sets explored with it.
    map: HashMap<OkConfig<S>, Vec<Box<[u64]>>, BuildHasherDefault<FoldHasher>>,
    explored: usize,
    /// Crashed sets held: the memory measure (each has one key at most).
    stored: usize,
}

impl<S: Clone + Eq + Hash> Cache<S> {
    pub fn new() -> Cache<S> {
        Cache {
            map: HashMap::default(),
            explored: 0,
            stored: 0,
        }
    }

    /// Records a configuration; false if it (or one dominating it) was
    /// explored before.
    pub fn insert(&mut self, ok: &Bitset, crashed: &Bitset, state: &S) -> bool {
        let crashed_words = &crashed.words;
        match self.map.entry(OkConfig::new(ok, state.clone())) {
            Entry::Occupied(entry) => {
                let minimal = entry.into_mut();
                if minimal.iter().any(|seen| is_subset(seen, crashed_words)) {
                    return false;
                }
                let before = minimal.len();
                minimal.retain(|seen| !is_subset(crashed_words, seen));
                self.stored -= before - minimal.len();
                minimal.push(crashed_words.clone().into_boxed_slice());
            }
            Entry::Vacant(entry) => {
                entry.insert(vec![crashed_words.clone().into_boxed_slice()]);
            }
        }
        self.explored += 1;
        self.stored += 1;
        true
    }

    /// Configurations recorded so far.
    pub fn explored(&self) -> usize {
        self.explored
    }

    /// Configurations held now: fewer than explored, as a configuration
    /// replaces those it dominates.
    pub fn stored(&self) -> usize {
        self.stored
    }

    /// Distinct states of configurations whose ok set holds every id below
    /// `progress`.
    pub fn states_covering(&self, progress: usize) -> Vec<S> {
        let mut states: Vec<S> = Vec::new();
        for config in self.map.keys() {
            if first_clear(&config.ok) >= progress && !states.contains(&config.state) {
                states.push(config.state.clone());
            }
        }
        states
    }
}

/// The cache key: ok set and state, hashed once.
#[derive(Debug)]
struct OkConfig<S> {
    ok: Box<[u64]>,
    state: S,
    hash: u64,
}

impl<S: Hash> OkConfig<S> {
    fn new(ok: &Bitset, state: S) -> OkConfig<S> {
        let mut hasher = FoldHasher::default();
        state.hash(&mut hasher);
        OkConfig {
            ok: ok.words.clone().into_boxed_slice(),
            hash: ok.hash ^ hasher.finish(),
            state,
        }
    }
}

impl<S> Hash for OkConfig<S> {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        hasher.write_u64(self.hash);
    }
}

impl<S: Eq> PartialEq for OkConfig<S> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.state == other.state && self.ok == other.ok
    }
}

impl<S: Eq> Eq for OkConfig<S> {}

/// A small multiply-rotate hasher (in the style of FxHash): keys arrive
/// pre-hashed and states are a few integers, so SipHash's flood resistance
/// would only cost time.
#[derive(Debug, Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517C_C1B7_2722_0A95);
    }

    fn finish(&self) -> u64 {
        // Fold the high bits down: the table picks buckets from low bits.
        self.0 ^ (self.0 >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(members: &[usize]) -> Bitset {
        let mut set = Bitset::new(70);
        members.iter().for_each(|&i| set.set(i));
        set
    }

    #[test]
    fn bitsets_track_their_first_gap_and_hash() {
        let mut set = bits(&[0, 1, 2, 65]);
        assert_eq!(set.first_clear(), 3);
        set.clear(65);
        assert_eq!(set.hash, bits(&[0, 1, 2]).hash);
        assert_eq!(bits(&(0..70).collect::<Vec<_>>()).first_clear(), 70);
    }

    #[test]
    fn a_configuration_with_extra_crashed_ops_is_dominated() {
        let mut cache = Cache::new();
        let ok = bits(&[0, 1]);
        assert!(cache.insert(&ok, &bits(&[3]), &7));
        assert!(!cache.insert(&ok, &bits(&[3]), &7), "seen");
        assert!(!cache.insert(&ok, &bits(&[3, 5]), &7), "dominated");
        assert!(cache.insert(&ok, &bits(&[3]), &8), "other state");
        assert!(
            cache.insert(&bits(&[0]), &bits(&[3, 5]), &7),
            "other ok set"
        );
        assert!(cache.insert(&ok, &bits(&[]), &7), "dominates");
        assert!(
            !cache.insert(&ok, &bits(&[5]), &7),
            "dominated by the empty set"
        );
        assert_eq!(cache.explored(), 4);
        assert_eq!(cache.stored(), 3);
        assert_eq!(cache.map[&OkConfig::new(&ok, 7)].len(), 1);
        let mut covering = cache.states_covering(2);
        covering.sort();
        assert_eq!(covering, vec![7, 8]);
    }
}
