//! Seeded randomness for runs: every random choice derives from the run's
//! seed through a named stream, so one purpose (latency, nemesis, a worker's
//! operations) cannot shift the draws of another.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// The generator every runner stream uses (a portable, documented algorithm).
pub type Rng = Xoshiro256PlusPlus;

/// SplitMix64's finaliser: a good 64-bit mixing function.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, for a stable hash of labels (std's hasher may change between
/// Rust releases, which would change replays).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A sub-seed for the purpose `label`.
pub fn derive(seed: u64, label: &str) -> u64 {
    mix(seed ^ mix(fnv1a(label.as_bytes())))
}

/// An independent generator for the purpose `label`.
pub fn stream(seed: u64, label: &str) -> Rng {
    Rng::seed_from_u64(derive(seed, label))
}

/// A uniform number in [0, 1) determined by the seed, some labels and a
/// counter: random access, no state.
pub fn unit(seed: u64, labels: &[&str], n: u64) -> f64 {
    let mut h = seed;
    for label in labels {
        h = mix(h ^ fnv1a(label.as_bytes()));
    }
    let bits = mix(h ^ mix(n));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_are_stable_and_independent() {
        let a: u64 = stream(7, "nemesis").random();
        let b: u64 = stream(7, "nemesis").random();
        let c: u64 = stream(7, "latency").random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let u = unit(7, &["n0", "n1"], 3);
        assert!((0.0..1.0).contains(&u));
        assert_eq!(u, unit(7, &["n0", "n1"], 3));
        assert_ne!(u, unit(7, &["n1", "n0"], 3));
    }
}
