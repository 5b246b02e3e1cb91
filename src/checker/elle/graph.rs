//! Graph primitives for the cycle search: relationship bit sets, a compact
//! adjacency representation, Tarjan's strongly connected components and a
//! breadth-first path search, all with an explicit work budget.

/// A set of dependency relationships between two transactions, as bits.
pub(crate) type Rels = u8;

/// T1 wrote a version of a key, T2 wrote a later one.
pub(crate) const WW: Rels = 1;
/// T2 read the version T1 wrote.
pub(crate) const WR: Rels = 1 << 1;
/// T1 read a version, T2 wrote a later one (an anti-dependency).
pub(crate) const RW: Rels = 1 << 2;
/// Both ran on one process, T1 first.
pub(crate) const PROCESS: Rels = 1 << 3;
/// T1 completed before T2 was invoked.
pub(crate) const REALTIME: Rels = 1 << 4;

/// Every relationship, in the order Elle's path search tries them.
pub(crate) const ALL_RELS: [Rels; 5] = [WW, WR, RW, PROCESS, REALTIME];

/// The name Elle gives a single relationship.
pub(crate) fn rel_name(rel: Rels) -> &'static str {
    match rel {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROCESS => "process",
        REALTIME => "realtime",
        _ => "none",
    }
}

/// The single relationships in `rels`, lowest bit first.
pub(crate) fn each_rel(rels: Rels) -> impl Iterator<Item = Rels> {
    ALL_RELS.into_iter().filter(move |r| rels & r != 0)
}

/// The search ran out of its work budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfBudget;

/// A work allowance, counted in edge visits, so that a search gives up
/// deterministically (the same history always gives the same answer)
/// instead of after a wall-clock timeout.
#[derive(Debug)]
pub(crate) struct Budget {
    left: u64,
    granted: u64,
}

impl Budget {
    pub(crate) fn new(steps: u64) -> Budget {
        Budget {
            left: steps,
            granted: steps,
        }
    }

    /// Work still allowed.
    pub(crate) fn left(&self) -> u64 {
        self.left
    }

    /// Work spent so far.
    pub(crate) fn used(&self) -> u64 {
        self.granted - self.left
    }

    /// Spends `steps` units of work, failing once the allowance is gone.
    pub(crate) fn spend(&mut self, steps: u64) -> Result<(), OutOfBudget> {
        if self.left < steps {
            self.left = 0;
            return Err(OutOfBudget);
        }
        self.left -= steps;
        Ok(())
    }
}

/// A directed graph in compressed sparse row form: the out-edges of vertex
/// `v` are `targets[offsets[v]..offsets[v + 1]]`, sorted by target, each
/// carrying the set of relationships it stands for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Csr {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    rels: Vec<Rels>,
}

impl Csr {
    /// Builds a graph on `n` vertices; parallel edges are merged into one
    /// whose relationships are their union.
    pub(crate) fn from_edges(n: usize, mut edges: Vec<(u32, u32, Rels)>) -> Csr {
        edges.sort_unstable_by_key(|&(a, b, _)| (a, b));
        let mut csr = Csr {
            offsets: vec![0; n + 1],
            targets: Vec::with_capacity(edges.len()),
            rels: Vec::with_capacity(edges.len()),
        };
        let mut last: Option<(u32, u32)> = None;
        for (a, b, r) in edges {
            if last == Some((a, b)) {
                *csr.rels.last_mut().expect("merged edge exists") |= r;
                continue;
            }
            last = Some((a, b));
            csr.targets.push(b);
            csr.rels.push(r);
            csr.offsets[a as usize + 1] += 1;
        }
        for v in 0..n {
            csr.offsets[v + 1] += csr.offsets[v];
        }
        csr
    }

    /// Number of vertices.
    pub(crate) fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Number of (merged) edges.
    pub(crate) fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// The out-edges of `v` with their relationships.
    pub(crate) fn out(&self, v: u32) -> impl Iterator<Item = (u32, Rels)> + '_ {
        let range = self.offsets[v as usize] as usize..self.offsets[v as usize + 1] as usize;
        self.targets[range.clone()]
            .iter()
            .copied()
            .zip(self.rels[range].iter().copied())
    }

    /// The relationships on the edge `a -> b` (empty if there is none).
    pub(crate) fn rels_between(&self, a: u32, b: u32) -> Rels {
        let range = self.offsets[a as usize] as usize..self.offsets[a as usize + 1] as usize;
        match self.targets[range.clone()].binary_search(&b) {
            Ok(i) => self.rels[range.start + i],
            Err(_) => 0,
        }
    }

    /// Every edge as `(from, to, rels)`, in vertex order.
    pub(crate) fn edges(&self) -> impl Iterator<Item = (u32, u32, Rels)> + '_ {
        (0..self.len() as u32).flat_map(move |v| self.out(v).map(move |(w, r)| (v, w, r)))
    }
}

/// Strongly connected components: `of[v]` is the component of vertex `v`.
/// Components are numbered in the order Tarjan's algorithm completes them,
/// so every edge goes from a component to one with the same or a smaller
/// number (component 0 has no edges leaving it).
#[derive(Debug, Clone)]
pub(crate) struct Components {
    pub(crate) of: Vec<u32>,
    pub(crate) count: usize,
}

impl Components {
    /// The vertices of each component, each list in increasing order.
    pub(crate) fn members(&self) -> Vec<Vec<u32>> {
        let mut members = vec![Vec::new(); self.count];
        for (v, &c) in self.of.iter().enumerate() {
            members[c as usize].push(v as u32);
        }
        members
    }
}

const UNVISITED: u32 = u32::MAX;

/// Tarjan's algorithm over the edges whose relationships pass `keep`,
/// iterative so that long chains of transactions cannot overflow the stack.
pub(crate) fn strongly_connected(g: &Csr, keep: impl Fn(Rels) -> bool) -> Components {
    let mut t = Tarjan::new(g.len());
    for root in 0..g.len() as u32 {
        if t.index[root as usize] == UNVISITED {
            t.run_from(g, root, &keep);
        }
    }
    Components {
        of: t.of,
        count: t.count as usize,
    }
}

/// The state of one run of Tarjan's algorithm.
struct Tarjan {
    index: Vec<u32>,
    low: Vec<u32>,
    on_stack: Vec<bool>,
    stack: Vec<u32>,
    /// The simulated call stack: a vertex and the position of its next edge.
    frames: Vec<(u32, u32)>,
    of: Vec<u32>,
    count: u32,
    next_index: u32,
}

impl Tarjan {
    fn new(n: usize) -> Tarjan {
        Tarjan {
            index: vec![UNVISITED; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            frames: Vec::new(),
            of: vec![0; n],
            count: 0,
            next_index: 0,
        }
    }

    fn visit(&mut self, g: &Csr, v: u32) {
        self.index[v as usize] = self.next_index;
        self.low[v as usize] = self.next_index;
        self.next_index += 1;
        self.on_stack[v as usize] = true;
        self.stack.push(v);
        self.frames.push((v, g.offsets[v as usize]));
    }

    fn run_from(&mut self, g: &Csr, root: u32, keep: &impl Fn(Rels) -> bool) {
        self.visit(g, root);
        while let Some(&(v, pos)) = self.frames.last() {
            if pos < g.offsets[v as usize + 1] {
                self.frames.last_mut().expect("frame exists").1 += 1;
                let (w, r) = (g.targets[pos as usize], g.rels[pos as usize]);
                if !keep(r) {
                    continue;
                }
                if self.index[w as usize] == UNVISITED {
                    self.visit(g, w);
                } else if self.on_stack[w as usize] {
                    self.low[v as usize] = self.low[v as usize].min(self.index[w as usize]);
                }
                continue;
            }
            self.frames.pop();
            if self.low[v as usize] == self.index[v as usize] {
                self.close_component(v);
            }
            if let Some(&(parent, _)) = self.frames.last() {
                self.low[parent as usize] = self.low[parent as usize].min(self.low[v as usize]);
            }
        }
    }

    /// Pops the component rooted at `v` off the stack and numbers it.
    fn close_component(&mut self, v: u32) {
        loop {
            let w = self.stack.pop().expect("v is on the stack");
            self.on_stack[w as usize] = false;
            self.of[w as usize] = self.count;
            if w == v {
                break;
            }
        }
        self.count += 1;
    }
}

/// Reusable scratch space for breadth-first searches on one graph, so that
/// repeated searches do not reallocate per call.
#[derive(Debug, Default)]
pub(crate) struct Bfs {
    parent: Vec<u32>,
    seen_in: Vec<u32>,
    round: u32,
    queue: std::collections::VecDeque<u32>,
}

impl Bfs {
    /// The shortest path from `from` to the first vertex satisfying
    /// `is_target` (excluding `from` itself), following edges that pass
    /// `keep`; the path includes both ends.
    pub(crate) fn path(
        &mut self,
        g: &Csr,
        from: u32,
        keep: impl Fn(Rels) -> bool,
        is_target: impl Fn(u32) -> bool,
        budget: &mut Budget,
    ) -> Result<Option<Vec<u32>>, OutOfBudget> {
        self.start(g.len(), from);
        while let Some(v) = self.queue.pop_front() {
            for (w, r) in g.out(v) {
                budget.spend(1)?;
                if !keep(r) || self.seen(w) {
                    continue;
                }
                self.mark(w, v);
                if is_target(w) {
                    return Ok(Some(self.trace(from, w)));
                }
                self.queue.push_back(w);
            }
        }
        Ok(None)
    }

    fn start(&mut self, n: usize, from: u32) {
        if self.parent.len() < n {
            self.parent.resize(n, 0);
            self.seen_in.resize(n, 0);
        }
        self.round = self.round.wrapping_add(1);
        if self.round == 0 {
            // The counter wrapped: forget every old mark.
            self.seen_in.fill(0);
            self.round = 1;
        }
        self.queue.clear();
        self.mark(from, from);
        self.queue.push_back(from);
    }

    fn seen(&self, v: u32) -> bool {
        self.seen_in[v as usize] == self.round
    }

    fn mark(&mut self, v: u32, parent: u32) {
        self.seen_in[v as usize] = self.round;
        self.parent[v as usize] = parent;
    }

    fn trace(&self, from: u32, to: u32) -> Vec<u32> {
        let mut path = vec![to];
        let mut v = to;
        while v != from {
            v = self.parent[v as usize];
            path.push(v);
        }
        path.reverse();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(u32, u32)]) -> Csr {
        Csr::from_edges(n, edges.iter().map(|&(a, b)| (a, b, WW)).collect())
    }

    #[test]
    fn parallel_edges_merge_their_relationships() {
        let g = Csr::from_edges(2, vec![(0, 1, WW), (0, 1, RW), (1, 0, WR)]);
        assert_eq!(g.edge_count(), 2);
        assert_eq!(g.rels_between(0, 1), WW | RW);
        assert_eq!(g.rels_between(1, 0), WR);
        assert_eq!(g.rels_between(1, 1), 0);
    }

    #[test]
    fn tarjan_numbers_components_sinks_first() {
        // 0 <-> 1 -> 2 <-> 3, and 4 alone.
        let g = graph(5, &[(0, 1), (1, 0), (1, 2), (2, 3), (3, 2)]);
        let c = strongly_connected(&g, |_| true);
        assert_eq!(c.count, 3);
        assert_eq!(c.of[0], c.of[1]);
        assert_eq!(c.of[2], c.of[3]);
        assert!(c.of[0] > c.of[2], "edges go to smaller components");
        // Filtering edges out splits the components.
        let none = strongly_connected(&g, |_| false);
        assert_eq!(none.count, 5);
    }

    #[test]
    fn tarjan_handles_long_chains_without_recursion() {
        let n = 200_000u32;
        let mut edges: Vec<(u32, u32)> = (0..n - 1).map(|v| (v, v + 1)).collect();
        edges.push((n - 1, 0));
        let c = strongly_connected(&graph(n as usize, &edges), |_| true);
        assert_eq!(c.count, 1);
    }

    #[test]
    fn bfs_finds_a_shortest_path_within_budget() {
        let g = graph(4, &[(0, 1), (1, 2), (2, 3), (0, 3)]);
        let mut bfs = Bfs::default();
        let mut budget = Budget::new(100);
        let path = bfs.path(&g, 0, |_| true, |v| v == 3, &mut budget);
        assert_eq!(path, Ok(Some(vec![0, 3])));
        let path = bfs.path(&g, 1, |_| true, |v| v == 0, &mut budget);
        assert_eq!(path, Ok(None));
        let mut tiny = Budget::new(1);
        assert_eq!(
            bfs.path(&g, 0, |_| true, |v| v == 2, &mut tiny),
            Err(OutOfBudget)
        );
    }
}
