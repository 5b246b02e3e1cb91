//! The partition nemesis: Jepsen's four partition specs and the staggered
//! start/stop schedule Maelstrom uses.
//!
//! Each `start-partition` picks a spec uniformly and turns it into a grudge
//! (receiver -> senders it drops); `stop-partition` heals everything. Ops
//! alternate, each one a uniform [0, 2 x interval) after the previous, the
//! first at the start of the main phase.

use std::collections::{BTreeMap, BTreeSet};

use rand::RngExt;
use rand::seq::SliceRandom;

use super::net::Grudge;
use super::options::Fault;
use super::random::Rng;

/// Jepsen's partition specs, in `partition-specs` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionSpec {
    /// One random node cut off from all others.
    One,
    /// A random ⌊(n-1)/3⌋ nodes cut off from the rest.
    MinorityThird,
    /// A random split into ⌊n/2⌋ and the rest.
    Majority,
    /// Every node sees a majority, but no two see the same one.
    MajoritiesRing,
}

impl PartitionSpec {
    pub const ALL: [PartitionSpec; 4] = [
        PartitionSpec::One,
        PartitionSpec::MinorityThird,
        PartitionSpec::Majority,
        PartitionSpec::MajoritiesRing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PartitionSpec::One => "one",
            PartitionSpec::MinorityThird => "minority-third",
            PartitionSpec::Majority => "majority",
            PartitionSpec::MajoritiesRing => "majorities-ring",
        }
    }

    /// Picks a spec uniformly at random.
    pub fn random(rng: &mut Rng) -> PartitionSpec {
        PartitionSpec::ALL[rng.random_range(0..PartitionSpec::ALL.len())]
    }

    /// The grudge this spec produces for `nodes`.
    pub fn grudge(self, nodes: &[String], rng: &mut Rng) -> Grudge {
        match self {
            PartitionSpec::One => {
                let mut nodes = nodes.to_vec();
                let isolated = nodes.remove(rng.random_range(0..nodes.len()));
                complete_grudge(&[vec![isolated], nodes])
            }
            PartitionSpec::MinorityThird => {
                let shuffled = shuffled(nodes, rng);
                let (cut, rest) = shuffled.split_at(minority_third(nodes.len()));
                complete_grudge(&[cut.to_vec(), rest.to_vec()])
            }
            PartitionSpec::Majority => {
                let shuffled = shuffled(nodes, rng);
                let (small, large) = shuffled.split_at(nodes.len() / 2);
                complete_grudge(&[small.to_vec(), large.to_vec()])
            }
            PartitionSpec::MajoritiesRing if nodes.len() <= 5 => majorities_ring_exact(nodes, rng),
            PartitionSpec::MajoritiesRing => majorities_ring_stochastic(nodes, rng),
        }
    }
}

/// The smallest majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Jepsen's `minority-third`: the largest group that leaves more than
/// two thirds behind.
pub fn minority_third(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

fn shuffled(nodes: &[String], rng: &mut Rng) -> Vec<String> {
    let mut nodes = nodes.to_vec();
    nodes.shuffle(rng);
    nodes
}

/// Every node drops every node outside its own component.
fn complete_grudge(components: &[Vec<String>]) -> Grudge {
    let mut grudge = Grudge::default();
    for (i, component) in components.iter().enumerate() {
        for (j, other) in components.iter().enumerate() {
            if i == j {
                continue;
            }
            for receiver in component {
                for sender in other {
                    grudge.drop_from(receiver, sender);
                }
            }
        }
    }
    grudge
}

/// Drops, for each node, every node it is not connected to.
fn invert(nodes: &[String], connected: &BTreeMap<String, BTreeSet<String>>) -> Grudge {
    let mut grudge = Grudge::default();
    for receiver in nodes {
        for sender in nodes {
            if !connected[receiver].contains(sender) {
                grudge.drop_from(receiver, sender);
            }
        }
    }
    grudge
}

/// Up to 5 nodes: shuffle into a ring; the majority-sized window starting
/// at each position belongs to the node in its middle, which keeps exactly
/// that window. Connections can be asymmetric (e.g. with 3 nodes).
fn majorities_ring_exact(nodes: &[String], rng: &mut Rng) -> Grudge {
    let ring = shuffled(nodes, rng);
    let n = ring.len();
    let m = majority(n);
    let mut connected = BTreeMap::new();
    for start in 0..n {
        let window: BTreeSet<String> = (0..m).map(|k| ring[(start + k) % n].clone()).collect();
        let owner = ring[(start + m / 2) % n].clone();
        connected.insert(owner, window);
    }
    invert(nodes, &connected)
}

/// More than 5 nodes: grow a symmetric connection graph by repeatedly
/// linking a least-connected node to another least-connected node it is not
/// yet linked to, until every node reaches a majority (itself included).
fn majorities_ring_stochastic(nodes: &[String], rng: &mut Rng) -> Grudge {
    let m = majority(nodes.len());
    let mut connected: BTreeMap<String, BTreeSet<String>> = nodes
        .iter()
        .map(|n| (n.clone(), BTreeSet::from([n.clone()])))
        .collect();
    loop {
        // Nodes by ascending degree, ties in random order.
        let mut order = shuffled(nodes, rng);
        order.sort_by_key(|n| connected[n].len());
        let a = order[0].clone();
        if connected[&a].len() >= m {
            return invert(nodes, &connected);
        }
        let Some(b) = order.iter().find(|b| !connected[&a].contains(*b)).cloned() else {
            return invert(nodes, &connected);
        };
        connected.get_mut(&a).unwrap().insert(b.clone());
        connected.get_mut(&b).unwrap().insert(a);
    }
}

/// The nemesis schedule over every enabled fault: ops come a uniform
/// [0, 2 x interval) apart (the first at once); each picks one of the
/// faults at random and starts it, or stops it if it is active. With
/// partitions alone this is Maelstrom's alternating start/stop schedule.
pub struct NemesisSchedule {
    faults: Vec<Fault>,
    active: Vec<Fault>,
    interval_ns: f64,
}

impl NemesisSchedule {
    pub fn new(faults: &[Fault], interval_ns: u64) -> NemesisSchedule {
        NemesisSchedule {
            faults: faults.to_vec(),
            active: Vec::new(),
            interval_ns: interval_ns as f64,
        }
    }

    /// The next fault to act on, whether to start it (or stop it), and how
    /// long after this op the next one comes.
    pub fn next(&mut self, rng: &mut Rng) -> (Fault, bool, u64) {
        let fault = if self.faults.len() == 1 {
            self.faults[0]
        } else {
            self.faults[rng.random_range(0..self.faults.len())]
        };
        let start = !self.active.contains(&fault);
        if start {
            self.active.push(fault);
        } else {
            self.active.retain(|f| *f != fault);
        }
        let delay = (rng.random::<f64>() * 2.0 * self.interval_ns) as u64;
        (fault, start, delay)
    }

    /// Every enabled fault (each is stopped before the final phase).
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// Forgets which faults are active (after healing everything).
    pub fn reset(&mut self) {
        self.active.clear();
    }
}

/// A random minority of `candidates` to kill or pause: at least one node,
/// at most ⌊(n-1)/2⌋ of the cluster's `n` when that is more.
pub fn minority(candidates: &[usize], cluster: usize, rng: &mut Rng) -> Vec<usize> {
    let mut pool = candidates.to_vec();
    pool.shuffle(rng);
    let most = (cluster.saturating_sub(1) / 2).max(1);
    let count = rng.random_range(1..=most).min(pool.len());
    let mut chosen: Vec<usize> = pool.into_iter().take(count).collect();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::random;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    /// Which nodes each node can hear from (itself included).
    fn hears(grudge: &Grudge, nodes: &[String]) -> BTreeMap<String, BTreeSet<String>> {
        nodes
            .iter()
            .map(|r| {
                let heard = nodes
                    .iter()
                    .filter(|s| !grudge.blocks(s, r))
                    .cloned()
                    .collect();
                (r.clone(), heard)
            })
            .collect()
    }

    #[test]
    fn one_isolates_a_single_node_both_ways() {
        let mut rng = random::stream(1, "t");
        let nodes = nodes(5);
        let grudge = PartitionSpec::One.grudge(&nodes, &mut rng);
        let heard = hears(&grudge, &nodes);
        let isolated: Vec<_> = heard.iter().filter(|(_, h)| h.len() == 1).collect();
        assert_eq!(isolated.len(), 1);
        assert!(heard.values().filter(|h| h.len() == 4).count() == 4);
    }

    #[test]
    fn majority_splits_into_floor_half_and_the_rest() {
        let mut rng = random::stream(2, "t");
        let nodes = nodes(5);
        let heard = hears(&PartitionSpec::Majority.grudge(&nodes, &mut rng), &nodes);
        let mut sizes: Vec<usize> = heard.values().map(BTreeSet::len).collect();
        sizes.sort();
        assert_eq!(sizes, vec![2, 2, 3, 3, 3]);
    }

    #[test]
    fn minority_third_is_a_no_op_for_three_nodes() {
        let mut rng = random::stream(3, "t");
        assert!(
            PartitionSpec::MinorityThird
                .grudge(&nodes(3), &mut rng)
                .is_empty()
        );
        let nodes7 = nodes(7);
        let heard = hears(
            &PartitionSpec::MinorityThird.grudge(&nodes7, &mut rng),
            &nodes7,
        );
        assert_eq!(heard.values().filter(|h| h.len() == 2).count(), 2);
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority() {
        for n in [3, 4, 5, 6, 7, 9, 25] {
            for seed in 0..20 {
                let mut rng = random::stream(seed, "ring");
                let nodes = nodes(n);
                let grudge = PartitionSpec::MajoritiesRing.grudge(&nodes, &mut rng);
                let heard = hears(&grudge, &nodes);
                for (node, h) in &heard {
                    assert!(h.len() >= majority(n), "{node} hears {h:?} of {n}");
                    assert!(h.contains(node));
                }
                if n == 5 {
                    let distinct: BTreeSet<_> = heard.values().collect();
                    assert_eq!(distinct.len(), 5, "distinct majorities for 5 nodes");
                    assert!(heard.values().all(|h| h.len() == 3));
                }
            }
        }
    }

    #[test]
    fn specs_are_no_ops_on_tiny_clusters() {
        let mut rng = random::stream(4, "t");
        for spec in PartitionSpec::ALL {
            assert!(spec.grudge(&nodes(1), &mut rng).is_empty(), "{spec:?}");
        }
        assert!(
            PartitionSpec::MajoritiesRing
                .grudge(&nodes(2), &mut rng)
                .is_empty()
        );
    }

    #[test]
    fn partitions_alone_alternate_with_delays_below_twice_the_interval() {
        let mut rng = random::stream(5, "t");
        let mut schedule = NemesisSchedule::new(&[Fault::Partition], 10_000);
        let ops: Vec<(Fault, bool, u64)> = (0..100).map(|_| schedule.next(&mut rng)).collect();
        assert!(ops.iter().all(|(f, _, _)| *f == Fault::Partition));
        let starts: Vec<bool> = ops.iter().map(|(_, s, _)| *s).collect();
        assert_eq!(&starts[..4], &[true, false, true, false]);
        assert!(ops.iter().all(|(_, _, d)| *d < 20_000));
        let mean = ops.iter().map(|(_, _, d)| *d as f64).sum::<f64>() / 100.0;
        assert!((mean - 10_000.0).abs() < 2_000.0);
    }

    #[test]
    fn combined_faults_each_alternate_on_their_own() {
        let mut rng = random::stream(6, "t");
        let faults = [Fault::Partition, Fault::Kill, Fault::Pause];
        let mut schedule = NemesisSchedule::new(&faults, 1_000);
        let mut active = std::collections::HashSet::new();
        for _ in 0..300 {
            let (fault, start, _) = schedule.next(&mut rng);
            assert_eq!(
                start,
                active.insert(fault),
                "{fault:?} starts only when stopped"
            );
            if !start {
                active.remove(&fault);
            }
        }
    }

    #[test]
    fn kill_and_pause_take_a_minority_but_at_least_one() {
        let mut rng = random::stream(7, "t");
        for _ in 0..50 {
            let chosen = minority(&[0, 1, 2, 3, 4], 5, &mut rng);
            assert!((1..=2).contains(&chosen.len()));
            assert_eq!(minority(&[0, 1], 2, &mut rng).len(), 1);
            assert_eq!(minority(&[0], 1, &mut rng), vec![0]);
            assert!(minority(&[], 3, &mut rng).is_empty());
        }
    }
}
