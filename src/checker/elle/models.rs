//! Elle 0.2.2's knowledge of consistency models and anomalies, as data:
//! which model implies which, which anomalies each model rules out, and
//! which anomalies imply others. From these we derive what a model
//! prohibits, which models a set of anomalies rules out (`not` /
//! `also-not`), and the order in which to search for cycle anomalies.
//!
//! Models have several names: "canonical" ones (Adya's PL-x levels) are
//! used internally; reports use the "friendly" ones, as Elle does.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

/// An anomaly or model name.
pub(crate) type Name = &'static str;

/// Everyday model names and their canonical equivalents.
const CANONICAL: &[(Name, Name)] = &[
    ("consistent-view", "PL-2+"),
    ("conflict-serializable", "PL-3"),
    ("cursor-stability", "PL-CS"),
    ("forward-consistent-view", "PL-FCV"),
    ("monotonic-snapshot-read", "PL-MSR"),
    ("monotonic-view", "PL-2L"),
    ("read-committed", "PL-2"),
    ("read-uncommitted", "PL-1"),
    ("repeatable-read", "PL-2.99"),
    ("serializable", "PL-3"),
    ("snapshot-isolation", "PL-SI"),
    ("strict-serializable", "PL-SS"),
    ("strong-serializable", "PL-SS"),
    ("update-serializable", "PL-3U"),
    ("strong-session-read-uncommitted", "strong-session-PL-1"),
    ("strong-session-read-committed", "strong-session-PL-2"),
    ("strong-read-uncommitted", "strong-PL-1"),
    ("strong-read-committed", "strong-PL-2"),
];

/// The name reports use for a canonical model. Where two everyday names
/// share a canonical one, Elle 0.2.2 reports PL-3 as `serializable` and
/// PL-SS as `strong-serializable`.
const FRIENDLY: &[(Name, Name)] = &[
    ("PL-2+", "consistent-view"),
    ("PL-3", "serializable"),
    ("PL-CS", "cursor-stability"),
    ("PL-FCV", "forward-consistent-view"),
    ("PL-MSR", "monotonic-snapshot-read"),
    ("PL-2L", "monotonic-view"),
    ("PL-2", "read-committed"),
    ("PL-1", "read-uncommitted"),
    ("PL-2.99", "repeatable-read"),
    ("PL-SI", "snapshot-isolation"),
    ("PL-SS", "strong-serializable"),
    ("PL-3U", "update-serializable"),
    ("strong-session-PL-1", "strong-session-read-uncommitted"),
    ("strong-session-PL-2", "strong-session-read-committed"),
    ("strong-PL-1", "strong-read-uncommitted"),
    ("strong-PL-2", "strong-read-committed"),
];

/// `(a, [b...])`: a history satisfying model `a` satisfies every `b`.
const MODEL_IMPLIES: &[(Name, &[Name])] = &[
    ("causal-cerone", &["read-atomic"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    ("conflict-serializable", &["view-serializable"]),
    ("cursor-stability", &["read-committed"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("PL-2", &["PL-1"]),
    ("PL-3", &["repeatable-read", "update-serializable"]),
    ("update-serializable", &["forward-consistent-view"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("monotonic-view", &["PL-2"]),
    ("monotonic-snapshot-read", &["PL-2"]),
    (
        "parallel-snapshot-isolation",
        &["causal-cerone", "update-atomic"],
    ),
    ("prefix", &["causal-cerone"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    ("read-committed", &["read-uncommitted"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    ("update-atomic", &["read-atomic"]),
    (
        "serializable",
        &["repeatable-read", "snapshot-isolation", "view-serializable"],
    ),
    ("session-serializable", &["1SR"]),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    (
        "strict-serializable",
        &[
            "PL-3",
            "linearizable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
    ("strong-session-PL-1", &["PL-1"]),
    ("strong-session-PL-2", &["PL-2", "strong-session-PL-1"]),
    ("strong-PL-1", &["strong-session-PL-1"]),
    ("strong-PL-2", &["strong-session-PL-2", "strong-PL-1"]),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-PL-2"],
    ),
    ("strong-serializable", &["session-serializable"]),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-PL-2"],
    ),
    ("linearizable", &["sequential"]),
    ("sequential", &["causal"]),
    ("causal", &["writes-follow-reads", "PRAM"]),
    (
        "PRAM",
        &["monotonic-reads", "monotonic-writes", "read-your-writes"],
    ),
];

/// `(model, [anomaly...])`: the anomalies a model rules out directly; it
/// also rules out those of every model it implies, and every anomaly that
/// implies one of these.
const PROSCRIBES: &[(Name, &[Name])] = &[
    ("causal-cerone", &["internal", "G1a"]),
    ("cursor-stability", &["G1", "G-cursor", "lost-update"]),
    ("monotonic-view", &["G1", "G-monotonic"]),
    ("monotonic-snapshot-read", &["G1", "G-MSR"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1", "G-SIb"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    (
        "PL-3",
        &["G1", "G2", "predicate-read-miss", "PL-3-cycle-exists"],
    ),
    ("PL-2", &["G1", "PL-2-cycle-exists"]),
    (
        "PL-1",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "PL-1-cycle-exists",
        ],
    ),
    ("prefix", &["internal", "G1a"]),
    ("serializable", &["internal"]),
    (
        "snapshot-isolation",
        &[
            "internal",
            "G1",
            "G-SI",
            "G-nonadjacent",
            "PL-SI-cycle-exists",
        ],
    ),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    (
        "repeatable-read",
        &["G1", "G2-item", "PL-2.99-cycle-exists", "lost-update"],
    ),
    ("update-atomic", &["lost-update"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"],
    ),
    (
        "strong-session-PL-1",
        &["strong-session-PL-1-cycle-exists", "G0-process"],
    ),
    (
        "strong-session-PL-2",
        &["strong-session-PL-2-cycle-exists", "G1c-process"],
    ),
    ("strong-PL-1", &["strong-PL-1-cycle-exists", "G0-realtime"]),
    ("strong-PL-2", &["strong-PL-2-cycle-exists", "G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &[
            "internal",
            "G1-process",
            "G-nonadjacent-process",
            "strong-session-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-snapshot-isolation",
        &[
            "internal",
            "G1-realtime",
            "G-nonadjacent-realtime",
            "strong-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-session-serializable",
        &[
            "G1-process",
            "G2-process",
            "strong-session-serializable-cycle-exists",
        ],
    ),
    ("update-serializable", &["G1", "G-update"]),
];

/// `(a, [b...])`: a history exhibiting anomaly `a` also exhibits every `b`.
const ANOMALY_IMPLIES: &[(Name, &[Name])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single-item",
        &["G-single", "G-single-item-process", "G-nonadjacent-item"],
    ),
    (
        "G-single-item-process",
        &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
    ),
    (
        "G-single-item-realtime",
        &["G-single-realtime", "G-nonadjacent-item-realtime"],
    ),
    ("G-single", &["G-nonadjacent", "GSIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    (
        "G-nonadjacent-item",
        &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
    ),
    (
        "G-nonadjacent-item-process",
        &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
    ),
    (
        "G-nonadjacent-item-realtime",
        &["G2-item-realtime", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2-process", &["G2-realtime"]),
    ("GSIa", &["GSI"]),
    ("GSIb", &["GSI"]),
    ("incompatible-order", &["G1a"]),
    ("future-read", &["G1c"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["write-skew", "G2-item"]),
    ("write-skew", &["G2"]),
];

/// `(a, [b...])`: `a` is worse than `b` without implying it. Only used,
/// with the implications, to order the cycle search worst-first.
const SEVERITY: &[(Name, &[Name])] = &[
    ("G0", &["G1c"]),
    ("G0-process", &["G1c-process"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1c", &["G-single", "G2-item"]),
    ("G1c-process", &["G-single-process", "G2-item-process"]),
    ("G1c-realtime", &["G-single-realtime", "G2-item-realtime"]),
    ("G2", &["G0-process"]),
    ("G2-process", &["G0-realtime"]),
];

/// A directed graph over names, with edges in both directions.
#[derive(Default)]
struct NameGraph {
    out: HashMap<Name, Vec<Name>>,
    into: HashMap<Name, Vec<Name>>,
}

impl NameGraph {
    fn link(&mut self, a: Name, b: Name) {
        self.out.entry(a).or_default().push(b);
        self.into.entry(b).or_default().push(a);
        self.out.entry(b).or_default();
        self.into.entry(a).or_default();
    }

    fn from_table(table: &[(Name, &[Name])], rename: impl Fn(Name) -> Name) -> NameGraph {
        let mut g = NameGraph::default();
        for &(a, bs) in table {
            for &b in bs {
                g.link(rename(a), rename(b));
            }
        }
        g
    }

    /// Every name reachable from `start` (inclusive), forwards or backwards.
    fn reach(&self, start: impl IntoIterator<Item = Name>, forwards: bool) -> BTreeSet<Name> {
        let edges = if forwards { &self.out } else { &self.into };
        let mut seen: BTreeSet<Name> = BTreeSet::new();
        let mut todo: Vec<Name> = start.into_iter().collect();
        while let Some(n) = todo.pop() {
            if seen.insert(n) {
                todo.extend(edges.get(n).into_iter().flatten().copied());
            }
        }
        seen
    }
}

/// The tables, indexed once.
struct Tables {
    models: NameGraph,
    /// Model -> anomalies it directly proscribes (canonical model names).
    proscribes: NameGraph,
    anomalies: NameGraph,
    depth: HashMap<Name, u32>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let anomalies = NameGraph::from_table(ANOMALY_IMPLIES, |n| n);
        let mut ordering = NameGraph::from_table(ANOMALY_IMPLIES, |n| n);
        for &(a, bs) in SEVERITY {
            for &b in bs {
                ordering.link(a, b);
            }
        }
        Tables {
            models: NameGraph::from_table(MODEL_IMPLIES, canonical),
            proscribes: NameGraph::from_table(PROSCRIBES, canonical),
            anomalies,
            depth: depths(&ordering),
        }
    })
}

/// Topological depth of each name: 0 for names nothing points to, then one
/// more than the deepest name pointing to it (the longest path from a root).
fn depths(g: &NameGraph) -> HashMap<Name, u32> {
    let mut pending: HashMap<Name, usize> = g.into.iter().map(|(&n, v)| (n, v.len())).collect();
    let mut layer: Vec<Name> = pending
        .iter()
        .filter(|&(_, &k)| k == 0)
        .map(|(&n, _)| n)
        .collect();
    let mut depth = HashMap::new();
    let mut d = 0;
    while !layer.is_empty() {
        let mut next = Vec::new();
        for n in layer {
            depth.insert(n, d);
            for &m in &g.out[n] {
                let k = pending.get_mut(m).expect("every vertex is counted");
                *k -= 1;
                if *k == 0 {
                    next.push(m);
                }
            }
        }
        layer = next;
        d += 1;
    }
    depth
}

/// The canonical name of a model (itself when it has no other).
pub(crate) fn canonical(model: Name) -> Name {
    CANONICAL
        .iter()
        .find(|(friendly, _)| *friendly == model)
        .map_or(model, |&(_, c)| c)
}

/// The name reports use for a model.
pub(crate) fn friendly(model: Name) -> Name {
    let model = canonical(model);
    FRIENDLY
        .iter()
        .find(|(c, _)| *c == model)
        .map_or(model, |&(_, f)| f)
}

/// Every anomaly which would violate at least one of `models`.
pub(crate) fn prohibited_by(models: &[Name]) -> BTreeSet<Name> {
    let t = tables();
    let implied = t.models.reach(models.iter().map(|m| canonical(m)), true);
    let direct: Vec<Name> = implied
        .iter()
        .flat_map(|m| t.proscribes.out.get(m).into_iter().flatten().copied())
        .collect();
    t.anomalies.reach(direct, false)
}

/// Every anomaly implied by the given ones (including themselves).
pub(crate) fn implied_anomalies(anomalies: &[Name]) -> BTreeSet<Name> {
    tables().anomalies.reach(anomalies.iter().copied(), true)
}

/// Every model that implies one of `models` (including themselves): if the
/// given models are impossible, so are these. Canonical names.
pub(crate) fn models_implying(models: &[Name]) -> BTreeSet<Name> {
    tables()
        .models
        .reach(models.iter().map(|m| canonical(m)), false)
}

/// Every model ruled out by a history exhibiting `anomalies`. Canonical
/// names.
pub(crate) fn impossible_models(anomalies: &[Name]) -> BTreeSet<Name> {
    let t = tables();
    let direct: Vec<Name> = implied_anomalies(anomalies)
        .iter()
        .flat_map(|a| t.proscribes.into.get(a).into_iter().flatten().copied())
        .collect();
    t.models.reach(direct, false)
}

/// The models of `set` which imply none of the others: the weakest ones.
fn weakest(set: &BTreeSet<Name>) -> BTreeSet<Name> {
    let t = tables();
    set.iter()
        .copied()
        .filter(|&m| {
            let implied = t.models.reach([m], true);
            !set.iter().any(|&o| o != m && implied.contains(o))
        })
        .collect()
}

/// Elle's model boundary for a set of anomalies: the weakest models they
/// rule out (`not`) and the remaining, stronger ones (`also-not`), in
/// friendly names, sorted.
pub(crate) fn boundary(anomalies: &[Name]) -> (Vec<Name>, Vec<Name>) {
    let impossible = impossible_models(anomalies);
    let not = weakest(&impossible);
    let name = |m: &Name| friendly(m);
    let friendly_set = |s: &mut dyn Iterator<Item = &Name>| -> Vec<Name> {
        s.map(name).collect::<BTreeSet<_>>().into_iter().collect()
    };
    let also_not = friendly_set(&mut impossible.iter().filter(|m| !not.contains(*m)));
    (friendly_set(&mut not.iter()), also_not)
}

/// How deep an anomaly lies in the implication and severity order; worse
/// anomalies come first (lower depth) and are searched for first.
pub(crate) fn depth(anomaly: Name) -> u32 {
    tables().depth.get(anomaly).copied().unwrap_or(0)
}

/// Every anomaly the tables know, in Elle's order: by depth, then name.
#[cfg(test)]
fn all_anomalies() -> Vec<Name> {
    let t = tables();
    let mut all: BTreeSet<Name> = t.anomalies.out.keys().copied().collect();
    all.extend(t.depth.keys().copied());
    for &(_, bs) in PROSCRIBES {
        all.extend(bs.iter().copied());
    }
    let mut all: Vec<Name> = all.into_iter().collect();
    all.sort_by_key(|a| (depth(a), *a));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[Name]) -> BTreeSet<Name> {
        names.iter().copied().collect()
    }

    #[test]
    fn read_uncommitted_and_read_committed_prohibit_what_elle_lists() {
        assert_eq!(
            prohibited_by(&["read-uncommitted"]),
            set(&[
                "G0",
                "cyclic-versions",
                "duplicate-elements",
                "PL-1-cycle-exists"
            ])
        );
        assert_eq!(
            prohibited_by(&["read-committed"]),
            set(&[
                "dirty-update",
                "G1a",
                "G1b",
                "G1c",
                "G1",
                "G0",
                "PL-1-cycle-exists",
                "PL-2-cycle-exists",
                "cyclic-versions",
                "duplicate-elements",
                "incompatible-order",
                "future-read",
            ])
        );
    }

    #[test]
    fn serializable_adds_internal_lost_update_and_g2_but_no_realtime() {
        let s = prohibited_by(&["serializable"]);
        for a in [
            "internal",
            "lost-update",
            "G-single-item",
            "G-nonadjacent-item",
            "G2-item",
            "G1c",
            "PL-3-cycle-exists",
        ] {
            assert!(s.contains(a), "{a}");
        }
        assert!(s.iter().all(|a| !a.contains("realtime")));
        assert!(s.iter().all(|a| !a.contains("process")));
    }

    #[test]
    fn strict_serializable_adds_realtime_and_process_variants() {
        let s = prohibited_by(&["strict-serializable"]);
        assert!(s.is_superset(&prohibited_by(&["serializable"])));
        for a in [
            "G0-realtime",
            "G1c-realtime",
            "G-single-item-realtime",
            "G2-item-realtime",
            "G-single-item-process",
            "PL-SS-cycle-exists",
            "strong-PL-2-cycle-exists",
        ] {
            assert!(s.contains(a), "{a}");
        }
    }

    #[test]
    fn anomaly_order_matches_elle() {
        let expected = [
            "G-MSR",
            "G-SI",
            "G-SIb",
            "G-cursor",
            "G-monotonic",
            "G-single-item",
            "G-update",
            "G0",
            "G1b",
            "GSIa",
            "PL-1-cycle-exists",
            "PL-2-cycle-exists",
            "PL-2.99-cycle-exists",
            "PL-3-cycle-exists",
            "PL-SI-cycle-exists",
            "PL-SS-cycle-exists",
            "cyclic-versions",
            "dirty-update",
            "duplicate-elements",
            "future-read",
            "incompatible-order",
            "internal",
            "lost-update",
            "predicate-read-miss",
            "strong-PL-1-cycle-exists",
            "strong-PL-2-cycle-exists",
            "strong-session-PL-1-cycle-exists",
            "strong-session-PL-2-cycle-exists",
            "strong-session-serializable-cycle-exists",
            "strong-session-snapshot-isolation-cycle-exists",
            "strong-snapshot-isolation-cycle-exists",
            "G-nonadjacent-item",
            "G-single-item-process",
            "G1a",
            "G1c",
            "write-skew",
            "G-nonadjacent-item-process",
            "G-single",
            "G-single-item-realtime",
            "G1",
            "G2-item",
            "G-nonadjacent",
            "G-nonadjacent-item-realtime",
            "GSIb",
            "G2",
            "GSI",
            "G0-process",
            "G1c-process",
            "G-single-process",
            "G1-process",
            "G2-item-process",
            "G-nonadjacent-process",
            "G2-process",
            "G0-realtime",
            "G1c-realtime",
            "G-single-realtime",
            "G1-realtime",
            "G2-item-realtime",
            "G-nonadjacent-realtime",
            "G2-realtime",
        ];
        assert_eq!(all_anomalies(), expected);
    }

    #[test]
    fn boundaries_match_elle() {
        let (not, also) = boundary(&["G1a"]);
        assert_eq!(not, ["read-committed"]);
        let expected_also: Vec<Name> = set(&[
            "read-atomic",
            "update-atomic",
            "causal-cerone",
            "consistent-view",
            "cursor-stability",
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "monotonic-view",
            "parallel-snapshot-isolation",
            "prefix",
            "repeatable-read",
            "serializable",
            "snapshot-isolation",
            "strong-read-committed",
            "strong-snapshot-isolation",
            "strong-serializable",
            "strong-session-read-committed",
            "strong-session-serializable",
            "strong-session-snapshot-isolation",
            "update-serializable",
        ])
        .into_iter()
        .collect();
        assert_eq!(also, expected_also);

        assert_eq!(boundary(&["internal"]).0, ["read-atomic"]);
        assert_eq!(
            boundary(&["lost-update"]).0,
            ["cursor-stability", "update-atomic"]
        );
        assert_eq!(
            boundary(&["G-single-realtime"]),
            (
                vec!["strong-snapshot-isolation"],
                vec!["strong-serializable"]
            )
        );
        assert_eq!(
            boundary(&["G-single-item"]).0,
            ["consistent-view", "repeatable-read"]
        );
        assert_eq!(boundary(&["cyclic-versions"]).0, ["read-uncommitted"]);
        assert_eq!(boundary(&[]), (vec![], vec![]));
    }

    #[test]
    fn names_canonicalise_and_befriend() {
        assert_eq!(canonical("read-committed"), "PL-2");
        assert_eq!(canonical("linearizable"), "linearizable");
        assert_eq!(friendly("strict-serializable"), "strong-serializable");
        assert_eq!(friendly("PL-3"), "serializable");
        assert!(
            models_implying(&["strong-session-serializable"])
                .iter()
                .eq(["PL-SS", "strong-session-serializable"].iter())
        );
    }
}
