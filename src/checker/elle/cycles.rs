//! The cycle search, per strongly connected component of the dependency
//! graph, following Elle 0.2.2's procedure:
//!
//! 1. *Cycle existence*: for each model's relevant subgraph (e.g. ww+wr for
//!    read-committed), is there any cycle at all? These cheap checks give
//!    the `*-cycle-exists` anomalies, which stand in for specific cycles
//!    when no specific one is found (e.g. the search ran out of budget),
//!    and they rule out searching for anomalies that cannot be there.
//! 2. *Specific cycles*, worst anomaly first (G-single-item, G0, G1c, ...):
//!    each anomaly type is a path constraint (which relationships a cycle
//!    may use, which it must use, how many anti-dependencies and whether
//!    they may be adjacent). Finding one type makes the types it implies
//!    redundant for this component.
//!
//! Elle searches each type by breadth-first enumeration of simple paths.
//! Here a path constraint is a small state machine; its product with the
//! component is an ordinary graph, where "is there a cycle through this
//! first edge?" becomes a reachability question. We answer all such
//! questions at once (components plus bit-set propagation), then extract a
//! witness by BFS for the first edge that has one. A witness is a walk; it
//! is split into simple cycles, and a simple cycle is accepted if it
//! satisfies the constraint and its edges classify it as the anomaly
//! sought (as Elle checks with its explainer).

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde_json::{Value, json};

use super::graph::{
    ALL_RELS, Bfs, Budget, Components, Csr, OutOfBudget, PROCESS, REALTIME, RW, Rels, WR, WW,
    each_rel, rel_name, strongly_connected,
};
use super::models::{self, Name};
use super::report::{Case, CycleExistsCase, TimeoutCase};
use super::rw_register::{DepGraph, Findings};

/// The base cycle anomalies a register history can exhibit. Elle also
/// searches G-single, G-nonadjacent and G2, which need predicate edges; its
/// explainer never gives register cycles those names, so they are omitted.
const BASE_TYPES: [Name; 5] = [
    "G0",
    "G1c",
    "G-single-item",
    "G-nonadjacent-item",
    "G2-item",
];

/// Every cycle anomaly name, with its process and realtime variants
/// (including the predicate ones, which matter when deciding which order
/// graphs a model needs).
const CYCLE_TYPES: [Name; 24] = [
    "G0",
    "G0-process",
    "G0-realtime",
    "G1c",
    "G1c-process",
    "G1c-realtime",
    "G-single-item",
    "G-single-item-process",
    "G-single-item-realtime",
    "G-single",
    "G-single-process",
    "G-single-realtime",
    "G-nonadjacent-item",
    "G-nonadjacent-item-process",
    "G-nonadjacent-item-realtime",
    "G-nonadjacent",
    "G-nonadjacent-process",
    "G-nonadjacent-realtime",
    "G2-item",
    "G2-item-process",
    "G2-item-realtime",
    "G2",
    "G2-process",
    "G2-realtime",
];

/// Whether `name` is a cycle anomaly with the given suffix (`-process` or
/// `-realtime`).
pub(crate) fn is_cycle_variant(name: &str, suffix: &str) -> bool {
    name.ends_with(suffix) && CYCLE_TYPES.contains(&name)
}

fn intern(name: &str) -> Option<Name> {
    CYCLE_TYPES.iter().copied().find(|&t| t == name)
}

/// A subgraph whose cycles violate a model.
#[derive(Debug, Clone, Copy)]
enum Subgraph {
    /// Edges with any of these relationships.
    Union(Rels),
    /// Edges of the first set, plus shortcuts for a step through the first
    /// set followed by one through the second (Elle's "sequential
    /// extension"): cycles whose anti-dependencies are never adjacent.
    Extension(Rels, Rels),
}

/// A cycle-existence check: a cycle in `subgraph` rules out `model`.
struct ExistsSpec {
    anomaly: Name,
    model: Name,
    subgraph: Subgraph,
}

const ANY_DATA: Rels = WW | WR | RW;

const EXISTS_SPECS: [ExistsSpec; 13] = [
    exists("PL-1-cycle-exists", "PL-1", Subgraph::Union(WW)),
    exists("PL-2-cycle-exists", "PL-2", Subgraph::Union(WW | WR)),
    exists(
        "PL-SI-cycle-exists",
        "PL-SI",
        Subgraph::Extension(WW | WR, RW),
    ),
    exists("PL-2.99-cycle-exists", "PL-2.99", Subgraph::Union(ANY_DATA)),
    exists("PL-3-cycle-exists", "PL-3", Subgraph::Union(ANY_DATA)),
    exists(
        "strong-session-PL-1-cycle-exists",
        "strong-session-PL-1",
        Subgraph::Union(WW | PROCESS),
    ),
    exists(
        "strong-session-PL-2-cycle-exists",
        "strong-session-PL-2",
        Subgraph::Union(WW | WR | PROCESS),
    ),
    exists(
        "strong-session-snapshot-isolation-cycle-exists",
        "strong-session-snapshot-isolation",
        Subgraph::Extension(WW | WR | PROCESS, RW),
    ),
    exists(
        "strong-session-serializable-cycle-exists",
        "strong-session-serializable",
        Subgraph::Union(ANY_DATA | PROCESS),
    ),
    exists(
        "strong-PL-1-cycle-exists",
        "strong-PL-1",
        Subgraph::Union(WW | REALTIME),
    ),
    exists(
        "strong-PL-2-cycle-exists",
        "strong-PL-2",
        Subgraph::Union(WW | WR | REALTIME),
    ),
    exists(
        "strong-snapshot-isolation-cycle-exists",
        "strong-snapshot-isolation",
        Subgraph::Extension(WW | WR | REALTIME, RW),
    ),
    exists(
        "PL-SS-cycle-exists",
        "PL-SS",
        Subgraph::Union(ANY_DATA | REALTIME),
    ),
];

const fn exists(anomaly: Name, model: Name, subgraph: Subgraph) -> ExistsSpec {
    ExistsSpec {
        anomaly,
        model,
        subgraph,
    }
}

/// The model a `*-cycle-exists` anomaly rules out, if `name` is one.
pub(crate) fn cycle_exists_model(name: &str) -> Option<Name> {
    EXISTS_SPECS
        .iter()
        .find(|s| s.anomaly == name)
        .map(|s| s.model)
}

fn describe(subgraph: Subgraph) -> Value {
    let union = |rels: Rels| {
        let mut names = vec![Value::from("union")];
        names.extend(each_rel(rels).map(|r| Value::from(rel_name(r))));
        Value::Array(names)
    };
    match subgraph {
        Subgraph::Union(rels) => union(rels),
        Subgraph::Extension(a, b) => json!(["extension", union(a), union(b)]),
    }
}

/// How a path may use anti-dependency (rw) edges, as in Elle's search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RwMode {
    /// Only where rw is an ordinary legal relationship.
    None,
    /// Exactly one rw edge beyond the legal ones.
    Single,
    /// rw edges, never two in a row; the last edge was not rw.
    Free,
    /// As `Free`, but the last edge was rw.
    Taken,
}

/// The progress of a path against a cycle constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PathState {
    /// Bit i set: the constraint's `want[i]` has not been used yet.
    want: u8,
    /// rw edges still needed (0-2).
    want_rw: u8,
    mode: RwMode,
}

impl PathState {
    fn code(self) -> usize {
        usize::from(self.want) | usize::from(self.want_rw) << 2 | (self.mode as usize) << 4
    }
}

/// A cycle anomaly as a path constraint.
#[derive(Debug)]
struct CycleSpec {
    name: Name,
    /// Relationships any edge may use.
    legal: Rels,
    /// Relationship sets the cycle must each use at least once.
    want: Vec<Rels>,
    /// rw edges the cycle must use: 1 (exactly, with `Single`) or 2+.
    want_rw: u8,
    mode: RwMode,
    /// Whether a found cycle must also be classified as `name`.
    typed: bool,
}

impl CycleSpec {
    fn initial(&self) -> PathState {
        PathState {
            want: (1u8 << self.want.len()) - 1,
            want_rw: self.want_rw,
            mode: self.mode,
        }
    }

    /// The relationships this constraint looks at.
    fn relevant(&self) -> Rels {
        let rw = if self.want_rw > 0 || self.mode != RwMode::None {
            RW
        } else {
            0
        };
        self.want.iter().fold(self.legal | rw, |acc, w| acc | w)
    }

    /// Whether a component using only `present` relationships could hold
    /// such a cycle.
    fn possible_with(&self, present: Rels) -> bool {
        self.want.iter().all(|w| w & present != 0) && (self.want_rw == 0 || present & RW != 0)
    }

    fn is_valid(&self, s: PathState) -> bool {
        s.want == 0 && s.want_rw == 0 && s.mode != RwMode::Taken
    }

    /// Marks the first still-wanted set containing `rel` as used.
    fn check_off(&self, want: u8, rel: Rels) -> u8 {
        let hit = (0..self.want.len()).find(|&i| want & (1 << i) != 0 && self.want[i] & rel != 0);
        hit.map_or(want, |i| want & !(1 << i))
    }

    /// The state after taking one edge as relationship `rel`, if allowed.
    fn step(&self, s: PathState, rel: Rels) -> Option<PathState> {
        let want = self.check_off(s.want, rel);
        if rel & self.legal != 0 {
            let want_rw = if rel == RW {
                s.want_rw.saturating_sub(1)
            } else {
                s.want_rw
            };
            let mode = if s.mode == RwMode::Taken {
                RwMode::Free
            } else {
                s.mode
            };
            return Some(PathState {
                want,
                want_rw,
                mode,
            });
        }
        let (want_rw, mode) = match (rel, s.mode) {
            (RW, RwMode::Single) => (0, RwMode::None),
            (RW, RwMode::Free) => (s.want_rw.saturating_sub(1), RwMode::Taken),
            _ => return None,
        };
        Some(PathState {
            want,
            want_rw,
            mode,
        })
    }

    /// Every state reachable by taking an edge with relationships `rels`
    /// from state `s`. Like Elle: rw first, then wanted relationships, then
    /// a single legal one (all legal ones lead to the same state); the
    /// first edge of a path must be an rw edge when rw edges are wanted,
    /// and a wanted one when others are wanted.
    fn for_each_move(&self, s: PathState, rels: Rels, first: bool, mut f: impl FnMut(PathState)) {
        let rw_active = s.want_rw > 0 || matches!(s.mode, RwMode::Single | RwMode::Free);
        let rw_mask = if rw_active { RW } else { 0 };
        let wanted = (0..self.want.len())
            .filter(|&i| s.want & (1 << i) != 0)
            .fold(0, |acc, i| acc | self.want[i]);
        let want_mask = wanted & !rw_mask;
        let legal_mask = self.legal & !rw_mask & !want_mask;
        for rel in each_rel(rels & rw_mask) {
            self.step(s, rel).into_iter().for_each(&mut f);
        }
        if s.want_rw > 0 && first {
            return;
        }
        for rel in each_rel(rels & want_mask) {
            self.step(s, rel).into_iter().for_each(&mut f);
        }
        if s.want != 0 && first {
            return;
        }
        if let Some(next) = each_rel(rels & legal_mask).find_map(|rel| self.step(s, rel)) {
            f(next);
        }
    }

    /// Every state a path can be in after its first edge.
    fn reachable_states(&self) -> Vec<PathState> {
        let all: Rels = ALL_RELS.iter().fold(0, |a, r| a | r);
        let mut states: Vec<PathState> = Vec::new();
        self.for_each_move(self.initial(), all, true, |s| {
            if !states.contains(&s) {
                states.push(s);
            }
        });
        let mut i = 0;
        while i < states.len() {
            let s = states[i];
            let mut new = Vec::new();
            self.for_each_move(s, all, false, |n| new.push(n));
            for n in new {
                if !states.contains(&n) {
                    states.push(n);
                }
            }
            i += 1;
        }
        states
    }

    /// Whether a path can follow edges with relationships `rels` in order,
    /// starting with the first, and end in a valid state.
    fn accepts(&self, rels: &[Rels]) -> bool {
        let mut states = Vec::new();
        self.for_each_move(self.initial(), rels[0], true, |s| states.push(s));
        for &r in &rels[1..] {
            let mut next: Vec<PathState> = Vec::new();
            for &s in &states {
                self.for_each_move(s, r, false, |n| {
                    if !next.contains(&n) {
                        next.push(n);
                    }
                });
            }
            states = next;
        }
        states.iter().any(|&s| self.is_valid(s))
    }
}

/// The searchable cycle anomalies, worst first, in Elle's order.
fn cycle_specs() -> &'static [CycleSpec] {
    static SPECS: OnceLock<Vec<CycleSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let base = [
            // name, legal, want, want_rw, mode, typed
            ("G0", WW, vec![], 0, RwMode::None, false),
            ("G1c", WW | WR, vec![WR], 0, RwMode::None, false),
            ("G-single-item", WW | WR, vec![], 1, RwMode::Single, true),
            ("G-nonadjacent-item", WW | WR, vec![], 2, RwMode::Free, true),
            ("G2-item", WW | WR | RW, vec![], 2, RwMode::None, true),
        ];
        debug_assert!(base.iter().map(|b| b.0).eq(BASE_TYPES));
        let mut specs = Vec::new();
        for (name, legal, want, want_rw, mode, typed) in base {
            for (suffix, extra) in [("", 0), ("-process", PROCESS), ("-realtime", REALTIME)] {
                let mut want = want.clone();
                if extra != 0 {
                    want.push(extra);
                }
                specs.push(CycleSpec {
                    name: intern(&format!("{name}{suffix}")).expect("known cycle type"),
                    legal: legal | extra,
                    want,
                    want_rw,
                    mode,
                    typed,
                });
            }
        }
        specs.sort_by_key(|s| (models::depth(s.name), s.name));
        specs
    })
}

/// The relationship Elle's explainer names an edge by: a write-read beats
/// write-write, then read-write, then the order relationships.
fn explained(rels: Rels) -> Rels {
    [WR, WW, RW, REALTIME, PROCESS]
        .into_iter()
        .find(|r| rels & r != 0)
        .unwrap_or(0)
}

/// The anomaly a cycle is, from its explained edges (Elle's cycle
/// explainer): by its rw edges, else wr, else ww; tagged `-realtime` or
/// `-process` if it needs those edges.
fn classify(steps: &[Rels]) -> Option<Name> {
    let count = |rel| steps.iter().filter(|&&s| s == rel).count();
    let adjacent_rw =
        (0..steps.len()).any(|i| steps[i] == RW && steps[(i + 1) % steps.len()] == RW);
    let base = match count(RW) {
        1 => "G-single-item",
        n if n > 1 && adjacent_rw => "G2-item",
        n if n > 1 => "G-nonadjacent-item",
        _ if count(WR) > 0 => "G1c",
        _ if count(WW) > 0 => "G0",
        _ => return None,
    };
    let suffix = if count(REALTIME) > 0 {
        "-realtime"
    } else if count(PROCESS) > 0 {
        "-process"
    } else {
        ""
    };
    intern(&format!("{base}{suffix}"))
}

/// Searches every strongly connected component of `graph` for cycle
/// anomalies, each with `budget` units of work, recording what it finds.
pub(crate) fn search(graph: &DepGraph, budget: u64, findings: &mut Findings) {
    let mut sccs: Vec<Vec<u32>> = strongly_connected(&graph.csr, |_| true)
        .members()
        .into_iter()
        .filter(|m| m.len() > 1)
        .collect();
    sccs.sort_unstable_by_key(|m| m[0]);
    findings.stats.sccs = sccs.len();
    findings.stats.largest_scc = sccs.iter().map(Vec::len).max().unwrap_or(0);
    let mut pruning = HashMap::new();
    for scc in &sccs {
        let component = Component::new(graph, scc);
        component.search(budget, &mut pruning, findings);
    }
}

/// One strongly connected component, with its own vertex numbering.
struct Component<'g, 'h> {
    graph: &'g DepGraph<'h>,
    /// Graph vertex of each local vertex, increasing.
    nodes: &'g [u32],
    csr: Csr,
    /// Every relationship on some edge of the component.
    present: Rels,
}

/// A cycle found in a component: local vertices, and the anomaly it is.
struct Found {
    cycle: Vec<u32>,
    kind: Name,
}

impl<'g, 'h> Component<'g, 'h> {
    fn new(graph: &'g DepGraph<'h>, nodes: &'g [u32]) -> Component<'g, 'h> {
        let mut edges = Vec::new();
        let mut present = 0;
        for (a, &v) in nodes.iter().enumerate() {
            for (w, r) in graph.csr.out(v) {
                if let Ok(b) = nodes.binary_search(&w) {
                    edges.push((a as u32, b as u32, r));
                    present |= r;
                }
            }
        }
        Component {
            graph,
            nodes,
            csr: Csr::from_edges(nodes.len(), edges),
            present,
        }
    }

    fn search(
        &self,
        budget: u64,
        pruning: &mut HashMap<u16, BTreeSet<Name>>,
        findings: &mut Findings,
    ) {
        let exists = self.cycle_exists_cases(findings);
        let mut skip = pruning
            .entry(exists)
            .or_insert_with(|| impossible_cycle_types(exists))
            .clone();
        let mut budget = Budget::new(budget);
        let mut bfs = Bfs::default();
        let mut searched: Vec<Name> = Vec::new();
        let mut found: Vec<Name> = Vec::new();
        for spec in cycle_specs() {
            if skip.contains(spec.name) {
                continue;
            }
            searched.push(spec.name);
            match self.find(spec, &mut budget, &mut bfs) {
                Ok(Some(cycle)) => {
                    found.push(cycle.kind);
                    self.record(&cycle, findings);
                    skip.extend(models::implied_anomalies(&[spec.name]));
                }
                Ok(None) => {}
                Err(OutOfBudget) => {
                    self.give_up(spec.name, &searched, &found, &mut bfs, findings);
                    return;
                }
            }
        }
    }

    /// Records the component's `*-cycle-exists` anomalies; returns which
    /// checks found a cycle, as a bit set over `EXISTS_SPECS`.
    fn cycle_exists_cases(&self, findings: &mut Findings) -> u16 {
        let mut hits = 0u16;
        let mut ruled_out: BTreeSet<Name> = BTreeSet::new();
        for (i, spec) in EXISTS_SPECS.iter().enumerate() {
            if ruled_out.contains(spec.model) {
                continue;
            }
            let Some(members) = self.smallest_cycle_component(spec.subgraph) else {
                continue;
            };
            hits |= 1 << i;
            ruled_out.extend(models::models_implying(&[spec.model]));
            let mut scc: Vec<usize> = members
                .iter()
                .map(|&l| self.graph.op_index(self.nodes[l as usize]))
                .collect();
            scc.sort_unstable();
            let case = CycleExistsCase {
                not: models::friendly(spec.model),
                subgraph: describe(spec.subgraph),
                scc_size: scc.len(),
                scc,
            };
            findings.add(spec.anomaly, Case::CycleExists(case));
        }
        hits
    }

    /// The local vertices of the smallest cyclic component of a subgraph.
    fn smallest_cycle_component(&self, subgraph: Subgraph) -> Option<Vec<u32>> {
        let (g, states) = match subgraph {
            Subgraph::Union(rels) => (self.filtered(rels), 1),
            Subgraph::Extension(a, b) => (self.extension(a, b), 2),
        };
        let members = strongly_connected(&g, |_| true).members();
        let smallest = members
            .into_iter()
            .filter(|m| m.len() > 1)
            .min_by_key(Vec::len)?;
        let mut vertices: Vec<u32> = smallest.iter().map(|&p| p / states).collect();
        vertices.dedup();
        Some(vertices)
    }

    fn filtered(&self, rels: Rels) -> Csr {
        let edges = self.csr.edges().filter(|e| e.2 & rels != 0).collect();
        Csr::from_edges(self.csr.len(), edges)
    }

    /// Elle's sequential extension of `a` by `b`, as a two-state graph:
    /// vertex `2v + 1` is "at v after an `a` edge", `2v` is "at v after a
    /// `b` edge (or fresh)"; a `b` edge may only follow an `a` edge. Its
    /// cycles are exactly those of the extension.
    fn extension(&self, a: Rels, b: Rels) -> Csr {
        let mut edges = Vec::new();
        for (x, y, r) in self.csr.edges() {
            if r & a != 0 {
                edges.push((2 * x, 2 * y + 1, 0));
                edges.push((2 * x + 1, 2 * y + 1, 0));
            }
            if r & b != 0 {
                edges.push((2 * x + 1, 2 * y, 0));
            }
        }
        Csr::from_edges(2 * self.csr.len(), edges)
    }

    fn record(&self, found: &Found, findings: &mut Findings) {
        let k = found.cycle.len();
        let rels: Vec<Rels> = (0..k)
            .map(|i| explained(self.rels(found.cycle[i], found.cycle[(i + 1) % k])))
            .collect();
        let global: Vec<u32> = found
            .cycle
            .iter()
            .map(|&l| self.nodes[l as usize])
            .collect();
        let case = self.graph.explain_cycle(found.kind, &global, &rels);
        findings.add(found.kind, Case::Cycle(case));
    }

    fn rels(&self, a: u32, b: u32) -> Rels {
        self.csr.rels_between(a, b)
    }

    /// Records a budget overrun as Elle does: a `cycle-search-timeout`,
    /// plus some cycle of the component so it is not left unexplained.
    fn give_up(
        &self,
        searching: Name,
        searched: &[Name],
        found: &[Name],
        bfs: &mut Bfs,
        findings: &mut Findings,
    ) {
        findings.stats.cycle_search_timeouts += 1;
        let done = &searched[..searched.len() - 1];
        let case = TimeoutCase {
            anomaly_spec_type: searching,
            does_not_contain: done
                .iter()
                .copied()
                .filter(|t| !found.contains(t))
                .collect(),
            scc_size: self.nodes.len(),
        };
        findings.add("cycle-search-timeout", Case::Timeout(case));
        if let Some(found) = self.any_cycle(bfs) {
            self.record(&found, findings);
        }
    }

    /// Some cycle through local vertex 0, classified.
    fn any_cycle(&self, bfs: &mut Bfs) -> Option<Found> {
        let (next, _) = self.csr.out(0).next()?;
        let mut unlimited = Budget::new(u64::MAX);
        let path = bfs
            .path(&self.csr, next, |_| true, |v| v == 0, &mut unlimited)
            .ok()??;
        let cycle: Vec<u32> = std::iter::once(0)
            .chain(path[..path.len() - 1].iter().copied())
            .collect();
        let kind = classify(&self.explained_steps(&cycle))?;
        Some(Found { cycle, kind })
    }

    fn explained_steps(&self, cycle: &[u32]) -> Vec<Rels> {
        let k = cycle.len();
        (0..k)
            .map(|i| explained(self.rels(cycle[i], cycle[(i + 1) % k])))
            .collect()
    }

    /// Searches the component for a cycle matching `spec`.
    fn find(
        &self,
        spec: &CycleSpec,
        budget: &mut Budget,
        bfs: &mut Bfs,
    ) -> Result<Option<Found>, OutOfBudget> {
        if !spec.possible_with(self.present) {
            return Ok(None);
        }
        let product = Product::build(self, spec, budget)?;
        if product.seeds.is_empty() {
            return Ok(None);
        }
        if let Some(found) = self.find_optimistically(spec, &product, bfs, budget)? {
            return Ok(Some(found));
        }
        for seed in product.satisfied_seeds(budget)? {
            let Some(walk) = product.witness(seed, bfs, budget)? else {
                continue;
            };
            if let Some(found) = self.accept_walk(spec, &walk) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Where a component has cycles of a kind it usually has many, and a
    /// bounded search from a few first edges finds one much faster than
    /// settling reachability for every first edge. Inconclusive when it
    /// finds none.
    fn find_optimistically(
        &self,
        spec: &CycleSpec,
        product: &Product,
        bfs: &mut Bfs,
        budget: &mut Budget,
    ) -> Result<Option<Found>, OutOfBudget> {
        let seeds = &product.seeds;
        let stride = seeds.len().div_ceil(OPTIMISTIC_TRIES);
        for &seed in seeds.iter().step_by(stride) {
            let mut allowance = Budget::new(OPTIMISTIC_STEPS.min(budget.left()));
            let walk = product.witness(seed, bfs, &mut allowance);
            budget.spend(allowance.used())?;
            if let Ok(Some(walk)) = walk
                && let Some(found) = self.accept_walk(spec, &walk)
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The first simple cycle of a closed walk that matches `spec`.
    fn accept_walk(&self, spec: &CycleSpec, walk: &[u32]) -> Option<Found> {
        simple_cycles(walk)
            .into_iter()
            .find_map(|cycle| self.accept(spec, cycle))
    }

    /// Whether a simple cycle matches `spec` from some starting point, and
    /// is classified as the anomaly sought; if so, rotated to that start.
    fn accept(&self, spec: &CycleSpec, cycle: Vec<u32>) -> Option<Found> {
        let kind = classify(&self.explained_steps(&cycle))?;
        if spec.typed && kind != spec.name {
            return None;
        }
        let k = cycle.len();
        let relevant = spec.relevant();
        let rels: Vec<Rels> = (0..k)
            .map(|i| self.rels(cycle[i], cycle[(i + 1) % k]) & relevant)
            .collect();
        (0..k)
            .find(|&start| {
                let rotated: Vec<Rels> = (0..k).map(|i| rels[(start + i) % k]).collect();
                spec.accepts(&rotated)
            })
            .map(|start| Found {
                cycle: (0..k).map(|i| cycle[(start + i) % k]).collect(),
                kind,
            })
    }
}

/// The cycle types that cannot occur in a component, given which cycle
/// existence checks found a cycle (`hits`): those prohibited by a model
/// whose subgraph turned out acyclic.
fn impossible_cycle_types(hits: u16) -> BTreeSet<Name> {
    let found: Vec<Name> = (0..EXISTS_SPECS.len())
        .filter(|&i| hits & (1 << i) != 0)
        .map(|i| EXISTS_SPECS[i].model)
        .collect();
    let impossible = models::models_implying(&found);
    let possible: Vec<Name> = EXISTS_SPECS
        .iter()
        .map(|s| s.model)
        .filter(|m| !impossible.contains(m))
        .collect();
    let prohibited = models::prohibited_by(&possible);
    CYCLE_TYPES
        .iter()
        .copied()
        .filter(|t| prohibited.contains(t))
        .collect()
}

/// Splits a closed walk (first vertex repeated last) into simple cycles,
/// innermost first.
fn simple_cycles(walk: &[u32]) -> Vec<Vec<u32>> {
    let mut stack: Vec<u32> = Vec::new();
    let mut cycles = Vec::new();
    for &v in walk {
        match stack.iter().position(|&u| u == v) {
            Some(i) => {
                cycles.push(stack[i..].to_vec());
                stack.truncate(i + 1);
            }
            None => stack.push(v),
        }
    }
    cycles
}

/// A path constraint's state machine multiplied with a component: vertex
/// `v * states + s` is "at local vertex v in path state s".
struct Product {
    states: Vec<PathState>,
    valid: Vec<bool>,
    csr: Csr,
    /// Possible first edges of a cycle.
    seeds: Vec<Seed>,
}

/// A cycle's first edge: it starts at `start` and, after the first edge,
/// is at product vertex `next`.
#[derive(Debug, Clone, Copy)]
struct Seed {
    start: u32,
    next: u32,
}

/// Reachability targets are processed in blocks of this many bits.
const TARGET_BLOCK: usize = 4096;

/// First edges tried, and work allowed for each, before the exhaustive
/// search.
const OPTIMISTIC_TRIES: usize = 8;
const OPTIMISTIC_STEPS: u64 = 200_000;

impl Product {
    fn build(c: &Component, spec: &CycleSpec, budget: &mut Budget) -> Result<Product, OutOfBudget> {
        let states = spec.reachable_states();
        let mut index = [u32::MAX; 64];
        for (i, s) in states.iter().enumerate() {
            index[s.code()] = i as u32;
        }
        let n = states.len() as u32;
        let node = |v: u32, s: PathState| v * n + index[s.code()];
        let relevant = spec.relevant();
        let mut edges = Vec::new();
        let mut seeds = Vec::new();
        for (x, y, r) in c.csr.edges() {
            let r = r & relevant;
            if r == 0 {
                continue;
            }
            budget.spend(u64::from(n))?;
            for &s in &states {
                spec.for_each_move(s, r, false, |t| edges.push((node(x, s), node(y, t), 0)));
            }
            spec.for_each_move(spec.initial(), r, true, |t| {
                seeds.push(Seed {
                    start: x,
                    next: node(y, t),
                })
            });
        }
        Ok(Product {
            valid: states.iter().map(|&s| spec.is_valid(s)).collect(),
            csr: Csr::from_edges(c.csr.len() * states.len(), edges),
            states,
            seeds,
        })
    }

    fn vertex(&self, p: u32) -> u32 {
        p / self.states.len() as u32
    }

    fn is_target(&self, p: u32, start: u32) -> bool {
        self.vertex(p) == start && self.valid[p as usize % self.states.len()]
    }

    /// The seeds from which some path returns to their start in a valid
    /// state, in order.
    fn satisfied_seeds(&self, budget: &mut Budget) -> Result<Vec<Seed>, OutOfBudget> {
        budget.spend(self.csr.edge_count() as u64)?;
        let comps = strongly_connected(&self.csr, |_| true);
        let n = self.states.len() as u32;
        let of = &comps.of;
        let target_comps = |start: u32| {
            (0..n)
                .filter(|&s| self.valid[s as usize])
                .map(move |s| of[(start * n + s) as usize])
        };
        // Edges only lead to components with smaller numbers, so many
        // questions are settled without propagating anything.
        let mut answer: Vec<Option<bool>> = Vec::with_capacity(self.seeds.len());
        for seed in &self.seeds {
            let from = comps.of[seed.next as usize];
            let mut targets = target_comps(seed.start);
            answer.push(if targets.clone().any(|c| c == from) {
                Some(true)
            } else if targets.all(|c| c > from) {
                Some(false)
            } else {
                None
            });
        }
        self.propagate(&comps, &mut answer, budget)?;
        Ok(self
            .seeds
            .iter()
            .zip(answer)
            .filter(|(_, a)| *a == Some(true))
            .map(|(s, _)| *s)
            .collect())
    }

    /// Settles the open reachability questions: each component learns,
    /// as a bit set, which start vertices it can reach in a valid state,
    /// from its own members and from the components it has edges to.
    fn propagate(
        &self,
        comps: &Components,
        answer: &mut [Option<bool>],
        budget: &mut Budget,
    ) -> Result<(), OutOfBudget> {
        let mut starts: Vec<u32> = self
            .seeds
            .iter()
            .zip(answer.iter())
            .filter(|(_, a)| a.is_none())
            .map(|(s, _)| s.start)
            .collect();
        if starts.is_empty() {
            return Ok(());
        }
        starts.sort_unstable();
        starts.dedup();
        let members = comps.members();
        let successors = self.component_successors(comps, &members);
        for block in starts.chunks(TARGET_BLOCK) {
            let bits = self.reach_bits(block, comps, &members, &successors, budget)?;
            let words = block.len().div_ceil(64);
            for (seed, a) in self.seeds.iter().zip(answer.iter_mut()) {
                let Ok(bit) = block.binary_search(&seed.start) else {
                    continue;
                };
                if a.is_none() {
                    let c = comps.of[seed.next as usize] as usize;
                    let set = bits[c * words + bit / 64] & (1 << (bit % 64)) != 0;
                    *a = set.then_some(true);
                }
            }
        }
        Ok(())
    }

    /// For each component, the distinct components its edges lead to.
    fn component_successors(&self, comps: &Components, members: &[Vec<u32>]) -> Vec<Vec<u32>> {
        members
            .iter()
            .enumerate()
            .map(|(c, ps)| {
                let mut next: Vec<u32> = ps
                    .iter()
                    .flat_map(|&p| self.csr.out(p))
                    .map(|(q, _)| comps.of[q as usize])
                    .filter(|&d| d as usize != c)
                    .collect();
                next.sort_unstable();
                next.dedup();
                next
            })
            .collect()
    }

    /// Bit `i` of component `c`'s set: `c` reaches `block[i]` in a valid
    /// state. Components are visited sinks first, so successors are done.
    fn reach_bits(
        &self,
        block: &[u32],
        comps: &Components,
        members: &[Vec<u32>],
        successors: &[Vec<u32>],
        budget: &mut Budget,
    ) -> Result<Vec<u64>, OutOfBudget> {
        let words = block.len().div_ceil(64);
        let mut bits = vec![0u64; comps.count * words];
        for c in 0..comps.count {
            budget.spend((successors[c].len() * words + members[c].len()) as u64)?;
            let (done, rest) = bits.split_at_mut(c * words);
            let own = &mut rest[..words];
            for &p in &members[c] {
                let start = self.vertex(p);
                if let (true, Ok(i)) = (self.is_target(p, start), block.binary_search(&start)) {
                    own[i / 64] |= 1 << (i % 64);
                }
            }
            for &d in &successors[c] {
                let theirs = &done[d as usize * words..(d as usize + 1) * words];
                own.iter_mut().zip(theirs).for_each(|(o, t)| *o |= t);
            }
        }
        Ok(bits)
    }

    /// A shortest closed walk through the seed's first edge, as local
    /// vertices with the start repeated at the end.
    fn witness(
        &self,
        seed: Seed,
        bfs: &mut Bfs,
        budget: &mut Budget,
    ) -> Result<Option<Vec<u32>>, OutOfBudget> {
        let is_end = |p: u32| self.is_target(p, seed.start);
        let path = if is_end(seed.next) {
            Some(vec![seed.next])
        } else {
            bfs.path(&self.csr, seed.next, |_| true, is_end, budget)?
        };
        Ok(path.map(|path| {
            std::iter::once(seed.start)
                .chain(path.iter().map(|&p| self.vertex(p)))
                .collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> &'static CycleSpec {
        cycle_specs().iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn search_order_is_elles_worst_first() {
        let names: Vec<Name> = cycle_specs().iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "G-single-item",
                "G0",
                "G-nonadjacent-item",
                "G-single-item-process",
                "G1c",
                "G-nonadjacent-item-process",
                "G-single-item-realtime",
                "G2-item",
                "G-nonadjacent-item-realtime",
                "G0-process",
                "G1c-process",
                "G2-item-process",
                "G0-realtime",
                "G1c-realtime",
                "G2-item-realtime",
            ]
        );
    }

    #[test]
    fn path_constraints_accept_what_elle_accepts() {
        // G-single-item: exactly one rw, and the cycle starts with it.
        let g = spec("G-single-item");
        assert!(g.accepts(&[RW, WR]));
        assert!(!g.accepts(&[WR, RW]));
        assert!(!g.accepts(&[RW, RW]));
        // G-nonadjacent-item: 2+ rw, never adjacent, even around the end.
        let n = spec("G-nonadjacent-item");
        assert!(n.accepts(&[RW, WW, RW, WR]));
        assert!(!n.accepts(&[RW, RW, WR]));
        assert!(!n.accepts(&[RW, WW, RW]));
        // G2-item: 2+ rw, anywhere.
        let g2 = spec("G2-item");
        assert!(g2.accepts(&[RW, RW]));
        assert!(!g2.accepts(&[RW, WR]));
        // G1c needs a wr first; G0 takes ww only.
        assert!(spec("G1c").accepts(&[WR, WW]));
        assert!(!spec("G1c").accepts(&[WW, WW]));
        assert!(spec("G0").accepts(&[WW, WW | WR]));
        // Realtime variants must use a realtime edge.
        let rt = spec("G-single-item-realtime");
        assert!(rt.accepts(&[RW, REALTIME]));
        assert!(!rt.accepts(&[RW, WR]));
    }

    #[test]
    fn cycles_classify_by_explained_edges() {
        assert_eq!(classify(&[WW, WW]), Some("G0"));
        assert_eq!(classify(&[WW, WR]), Some("G1c"));
        assert_eq!(classify(&[RW, WR]), Some("G-single-item"));
        assert_eq!(classify(&[RW, WR, RW, WW]), Some("G-nonadjacent-item"));
        assert_eq!(classify(&[RW, RW, WR]), Some("G2-item"));
        // The wrap-around counts as adjacent.
        assert_eq!(classify(&[RW, WR, RW]), Some("G2-item"));
        assert_eq!(classify(&[RW, REALTIME]), Some("G-single-item-realtime"));
        assert_eq!(classify(&[WR, PROCESS]), Some("G1c-process"));
        assert_eq!(classify(&[REALTIME, REALTIME]), None);
        assert_eq!(explained(WW | WR | REALTIME), WR);
        assert_eq!(explained(RW | REALTIME), RW);
    }

    #[test]
    fn closed_walks_split_into_simple_cycles() {
        assert_eq!(simple_cycles(&[0, 1, 2, 0]), vec![vec![0, 1, 2]]);
        assert_eq!(
            simple_cycles(&[0, 1, 2, 1, 3, 0]),
            vec![vec![1, 2], vec![0, 1, 3]]
        );
    }

    #[test]
    fn acyclic_models_rule_out_searching_their_anomalies() {
        // No cycle at all: nothing can be found.
        let none = impossible_cycle_types(0);
        assert!(none.contains("G-single-item") && none.contains("G1c-realtime"));
        // Only realtime cycles (strong snapshot isolation and PL-SS): only
        // realtime types remain.
        let realtime = 1 << (EXISTS_SPECS.len() - 1) | 1 << (EXISTS_SPECS.len() - 2);
        let skip = impossible_cycle_types(realtime);
        assert!(skip.contains("G-single-item") && skip.contains("G0-realtime"));
        assert!(!skip.contains("G-single-item-realtime"));
        assert!(!skip.contains("G2-item-realtime"));
    }
}
