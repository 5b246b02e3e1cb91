//! Elle's rw-register analysis (as Maelstrom configures it): anomalies
//! visible in single transactions or pairs (internal, G1a, G1b,
//! lost-update), the inferred version order of each key (initial state and
//! writes-follow-reads), and the dependency graph over committed
//! transactions that the cycle search then examines.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::graph::{Csr, PROCESS, REALTIME, RW, Rels, WR, WW};
use super::models::Name;
use super::report::{
    Case, CycleCase, CyclicVersionsCase, InternalCase, LostUpdateCase, ReadCase, Stats, Step,
};
use super::txn::{self, Key, Mop, Status, Txn, Val, intermediate_writes};
use super::{CheckOptions, cycles};
use crate::history::{History, Op, Process};

/// Which order, beyond the data dependencies, the graph must include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtraOrder {
    /// None: the model prohibits no process or realtime anomaly.
    None,
    /// Each process's transactions, in order.
    Process,
    /// Real time: a transaction precedes those invoked after it completed.
    Realtime,
}

/// What the analysis found, whether or not the model prohibits it.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) entries: BTreeMap<Name, Entry>,
    pub(crate) stats: Stats,
    /// Most cases kept per type; the rest are only counted.
    cap: usize,
}

/// The findings of one anomaly type.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A condition without instances (`empty-transaction-graph`).
    Present,
    /// Instances, of which the first `cap` are kept.
    Cases { total: usize, kept: Vec<Case> },
}

impl Findings {
    fn new(cap: usize) -> Findings {
        Findings {
            cap,
            ..Findings::default()
        }
    }

    /// Records an instance of `anomaly`.
    pub(crate) fn add(&mut self, anomaly: Name, case: Case) {
        let entry = self.entries.entry(anomaly).or_insert(Entry::Cases {
            total: 0,
            kept: Vec::new(),
        });
        if let Entry::Cases { total, kept } = entry {
            *total += 1;
            if kept.len() < self.cap {
                kept.push(case);
            }
        }
    }

    fn flag(&mut self, anomaly: Name) {
        self.entries.insert(anomaly, Entry::Present);
    }
}

/// Runs every analysis on the history. Fails when the history cannot be
/// analysed: malformed values, or a read of a value that several committed
/// transactions wrote (the checker relies on unique writes).
pub(crate) fn analyse(
    history: &History,
    order: ExtraOrder,
    opts: &CheckOptions,
) -> Result<Findings, String> {
    let txns = txn::parse(history)?;
    let mut findings = Findings::new(opts.max_witnesses);
    count_txns(&txns, &mut findings.stats);
    let oks = oks_in_completion_order(&txns);
    let op = |t: &Txn| history.ops()[t.op_index()].clone();
    internal_cases(&txns, &oks, &op, &mut findings);
    g1a_cases(history, &txns, &oks, &mut findings);
    g1b_cases(history, &txns, &oks, &mut findings);
    lost_update_cases(&txns, &oks, &op, &mut findings);
    let versions = version_order(&txns, &mut findings);
    let graph = DepGraph::build(history, &txns, versions, order)?;
    if !graph.has_vertices {
        findings.flag("empty-transaction-graph");
    }
    graph.count_edges(&mut findings.stats);
    cycles::search(&graph, opts.cycle_search_budget, &mut findings);
    Ok(findings)
}

fn count_txns(txns: &[Txn], stats: &mut Stats) {
    stats.txns = txns.len();
    for t in txns {
        match t.status {
            Status::Ok => stats.ok += 1,
            Status::Fail => stats.fail += 1,
            Status::Info => stats.info += 1,
        }
    }
}

/// Committed transactions in the order their completions appear, the order
/// Elle reports per-transaction anomalies in.
fn oks_in_completion_order(txns: &[Txn]) -> Vec<usize> {
    let mut oks: Vec<usize> = (0..txns.len())
        .filter(|&i| txns[i].status == Status::Ok)
        .collect();
    oks.sort_by_key(|&i| txns[i].op_index());
    oks
}

/// `internal`: a read that disagrees with what the transaction itself last
/// read or wrote for that key. A read of null counts as knowing the key is
/// unwritten (Elle after 0.2.2; 0.2.2 itself ignored such reads).
fn internal_cases(txns: &[Txn], oks: &[usize], op: &impl Fn(&Txn) -> Op, findings: &mut Findings) {
    for &i in oks {
        if let Some((mop, expected)) = first_internal_inconsistency(&txns[i].mops) {
            let case = InternalCase {
                op: op(&txns[i]),
                mop,
                expected,
            };
            findings.add("internal", Case::Internal(case));
        }
    }
}

/// The first read contradicting an earlier micro-op on its key, with the
/// value that earlier micro-op implies.
fn first_internal_inconsistency(mops: &[Mop]) -> Option<(Mop, Option<Val>)> {
    let mut known: Vec<(Key, Option<Val>)> = Vec::new();
    for &m in mops {
        match known.iter_mut().find(|(k, _)| *k == m.key) {
            Some(slot) if !m.write && slot.1 != m.value => return Some((m, slot.1)),
            Some(slot) => slot.1 = m.value,
            None => known.push((m.key, m.value)),
        }
    }
    None
}

/// `G1a` (aborted read): a committed transaction read a value that only a
/// failed transaction wrote.
fn g1a_cases(history: &History, txns: &[Txn], oks: &[usize], findings: &mut Findings) {
    let mut failed: Vec<(usize, Key, Val)> = txns
        .iter()
        .filter(|t| t.status == Status::Fail)
        .flat_map(|t| {
            let writes = t.mops.iter().filter(|m| m.write);
            writes.filter_map(move |m| Some((t.op_index(), m.key, m.value?)))
        })
        .collect();
    // Should two failed transactions write one value, the later one counts.
    failed.sort_unstable();
    let writer: HashMap<(Key, Val), usize> =
        failed.into_iter().map(|(i, k, v)| ((k, v), i)).collect();
    report_reads(history, txns, oks, &writer, "G1a", findings);
}

/// `G1b` (intermediate read): a committed transaction read a value that
/// another transaction overwrote within itself. Like Elle, every recorded
/// operation counts as a writer, whatever its outcome.
fn g1b_cases(history: &History, txns: &[Txn], oks: &[usize], findings: &mut Findings) {
    let mut writer: HashMap<(Key, Val), usize> = HashMap::new();
    let mut note = |mops: &[Mop], index: usize| {
        for kv in intermediate_writes(mops) {
            let w = writer.entry(kv).or_insert(index);
            *w = (*w).max(index);
        }
    };
    for t in txns {
        note(&t.invoked, t.invoke);
        if let Some(c) = t.completion {
            note(&t.mops, c);
        }
    }
    report_reads(history, txns, oks, &writer, "G1b", findings);
}

/// Reports every read by a committed transaction of a value in `writer`
/// (mapping key and value to the writing op), except reads of its own
/// writes.
fn report_reads(
    history: &History,
    txns: &[Txn],
    oks: &[usize],
    writer: &HashMap<(Key, Val), usize>,
    anomaly: Name,
    findings: &mut Findings,
) {
    for &i in oks {
        let t = &txns[i];
        for &m in t.mops.iter().filter(|m| !m.write) {
            let Some(&w) = m.value.and_then(|v| writer.get(&(m.key, v))) else {
                continue;
            };
            if w == t.op_index() {
                continue;
            }
            let case = ReadCase {
                op: history.ops()[t.op_index()].clone(),
                mop: m,
                writer: history.ops()[w].clone(),
            };
            findings.add(anomaly, Case::Read(case));
        }
    }
}

/// `lost-update`: two or more committed transactions read the same value of
/// a key and then wrote that key. As in Elle, a transaction's read counts
/// if it comes before its first write of the key that follows a read;
/// writes before any read of the key are ignored.
fn lost_update_cases(
    txns: &[Txn],
    oks: &[usize],
    op: &impl Fn(&Txn) -> Op,
    findings: &mut Findings,
) {
    let mut groups: BTreeMap<(Key, Option<Val>), Vec<usize>> = BTreeMap::new();
    for &i in oks {
        let mut first_read: Vec<(Key, Option<Val>)> = Vec::new();
        let mut written: Vec<Key> = Vec::new();
        for m in &txns[i].mops {
            let read = first_read.iter().find(|(k, _)| *k == m.key).map(|r| r.1);
            match read {
                Some(v) if m.write && !written.contains(&m.key) => {
                    groups.entry((m.key, v)).or_default().push(i);
                    written.push(m.key);
                }
                None if !m.write => first_read.push((m.key, m.value)),
                _ => {}
            }
        }
    }
    for ((key, value), group) in groups {
        if group.len() >= 2 {
            let txns = group.iter().map(|&i| op(&txns[i])).collect();
            let case = LostUpdateCase { key, value, txns };
            findings.add("lost-update", Case::LostUpdate(case));
        }
    }
}

/// A version-order edge: on `key`, `from` (None: the initial, unwritten
/// state) precedes `to`.
type VersionEdge = (Key, Option<Val>, Val);

/// The inferred version order: every edge, deduplicated and sorted.
fn version_order(txns: &[Txn], findings: &mut Findings) -> Vec<VersionEdge> {
    let mut edges: HashSet<VersionEdge> = initial_state_edges(txns);
    let wfr = writes_follow_reads_edges(txns);
    let cycles = version_cycles(&wfr);
    if cycles.is_empty() {
        edges.extend(wfr);
    }
    // Elle drops a whole inference source when it makes any key cyclic.
    for case in cycles {
        findings.add("cyclic-versions", Case::CyclicVersions(case));
    }
    let mut edges: Vec<VersionEdge> = edges.into_iter().collect();
    edges.sort_unstable();
    edges
}

/// The initial state (null) precedes every value committed or possibly
/// committed transactions wrote, and every value committed ones read.
fn initial_state_edges(txns: &[Txn]) -> HashSet<VersionEdge> {
    let mut edges = HashSet::new();
    for t in txns.iter().filter(|t| t.status != Status::Fail) {
        for (k, v) in t.ext_writes() {
            edges.insert((k, None, v));
        }
        if t.status == Status::Ok {
            for (k, v) in t.ext_reads() {
                if let Some(v) = v {
                    edges.insert((k, None, v));
                }
            }
        }
    }
    edges
}

/// Writes follow reads: a committed transaction that read `k = v` and then
/// wrote `k = v'` puts `v` before `v'`.
fn writes_follow_reads_edges(txns: &[Txn]) -> Vec<VersionEdge> {
    let mut edges = Vec::new();
    for t in txns.iter().filter(|t| t.status == Status::Ok) {
        let writes = t.ext_writes();
        for (k, v) in t.ext_reads() {
            let later = writes.iter().find(|(wk, _)| *wk == k);
            if let (Some(v), Some(&(_, v2))) = (v, later) {
                edges.push((k, Some(v), v2));
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// Cycles among the given version edges, per key, as Elle reports them.
fn version_cycles(edges: &[VersionEdge]) -> Vec<CyclicVersionsCase> {
    let mut by_key: BTreeMap<Key, Vec<(Val, Val)>> = BTreeMap::new();
    for &(k, from, to) in edges {
        if let Some(from) = from {
            by_key.entry(k).or_default().push((from, to));
        }
    }
    let mut cases = Vec::new();
    for (key, pairs) in by_key {
        let mut values: Vec<Val> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        values.sort_unstable();
        values.dedup();
        let id = |v: Val| values.binary_search(&v).expect("value indexed") as u32;
        let g = Csr::from_edges(
            values.len(),
            pairs.iter().map(|&(a, b)| (id(a), id(b), WW)).collect(),
        );
        let mut sccs: Vec<Vec<Val>> = super::graph::strongly_connected(&g, |_| true)
            .members()
            .into_iter()
            .filter(|m| m.len() > 1)
            .map(|m| m.iter().map(|&i| values[i as usize]).collect())
            .collect();
        sccs.sort();
        cases.extend(sccs.into_iter().map(|scc| CyclicVersionsCase {
            key,
            scc,
            sources: vec!["initial-state", "wfr-keys"],
        }));
    }
    cases
}

/// The dependency graph: one vertex per committed transaction, edges for
/// every inferred ww, wr and rw dependency, plus realtime or process order
/// when the model needs them. Self-dependencies are dropped.
pub(crate) struct DepGraph<'h> {
    history: &'h History,
    txns: &'h [Txn],
    /// The transaction of each vertex.
    nodes: Vec<usize>,
    ext_reads: Vec<Vec<(Key, Option<Val>)>>,
    ext_writes: Vec<Vec<(Key, Val)>>,
    versions: HashSet<VersionEdge>,
    /// The edges, by vertex.
    pub(crate) csr: Csr,
    /// Whether Elle's graph would have any vertex at all: some dependency
    /// was inferred, even one later dropped as a self-dependency or one to
    /// a transaction that did not commit. Without any, the history is an
    /// `empty-transaction-graph`.
    has_vertices: bool,
}

/// Collects edges while building the graph.
struct Edges {
    list: Vec<(u32, u32, Rels)>,
    linked: bool,
}

impl Edges {
    fn link(&mut self, a: u32, b: u32, rel: Rels) {
        self.linked = true;
        if a != b {
            self.list.push((a, b, rel));
        }
    }
}

impl<'h> DepGraph<'h> {
    fn build(
        history: &'h History,
        txns: &'h [Txn],
        versions: Vec<VersionEdge>,
        order: ExtraOrder,
    ) -> Result<DepGraph<'h>, String> {
        let nodes: Vec<usize> = (0..txns.len())
            .filter(|&i| txns[i].status == Status::Ok)
            .collect();
        let ext_reads: Vec<_> = nodes.iter().map(|&i| txns[i].ext_reads()).collect();
        let ext_writes: Vec<_> = nodes.iter().map(|&i| txns[i].ext_writes()).collect();
        let mut edges = Edges {
            list: Vec::new(),
            linked: false,
        };
        let index = ExtIndex::new(&ext_reads, &ext_writes);
        write_read_edges(&index, &ext_reads, txns, &nodes, &mut edges)?;
        version_edges(&index, &versions, &mut edges);
        let mut node_of = vec![None; txns.len()];
        for (n, &i) in nodes.iter().enumerate() {
            node_of[i] = Some(n as u32);
        }
        match order {
            ExtraOrder::None => {}
            ExtraOrder::Process => process_edges(history, txns, &node_of, &mut edges),
            ExtraOrder::Realtime => realtime_edges(history, txns, &node_of, &mut edges),
        }
        Ok(DepGraph {
            history,
            txns,
            csr: Csr::from_edges(nodes.len(), edges.list),
            nodes,
            ext_reads,
            ext_writes,
            versions: versions.into_iter().collect(),
            has_vertices: edges.linked,
        })
    }

    fn count_edges(&self, stats: &mut Stats) {
        for (_, _, r) in self.csr.edges() {
            let e = &mut stats.edges;
            for (bit, count) in [
                (WW, &mut e.ww),
                (WR, &mut e.wr),
                (RW, &mut e.rw),
                (REALTIME, &mut e.realtime),
                (PROCESS, &mut e.process),
            ] {
                *count += usize::from(r & bit != 0);
            }
        }
    }

    /// The history index of a vertex's transaction (its completion).
    pub(crate) fn op_index(&self, node: u32) -> usize {
        self.txns[self.nodes[node as usize]].op_index()
    }

    /// Describes a cycle of vertices (without repeating the first) as
    /// evidence of anomaly `kind`; `rels[i]` is the relationship Elle's
    /// explainer picks for the edge from `cycle[i]` to the next.
    pub(crate) fn explain_cycle(&self, kind: Name, cycle: &[u32], rels: &[Rels]) -> CycleCase {
        let name = |i: usize| format!("T{}", i % cycle.len() + 1);
        let steps = (0..cycle.len())
            .map(|i| {
                let (a, b) = (cycle[i], cycle[(i + 1) % cycle.len()]);
                self.explain_step(a, b, rels[i], &name(i), &name(i + 1))
            })
            .collect();
        let ops = cycle.iter().chain(&cycle[..1]);
        CycleCase {
            kind: kind.to_string(),
            cycle: ops
                .map(|&n| self.history.ops()[self.op_index(n)].clone())
                .collect(),
            steps,
        }
    }

    fn explain_step(&self, a: u32, b: u32, rel: Rels, ta: &str, tb: &str) -> Step {
        let step = Step {
            kind: super::graph::rel_name(rel),
            key: None,
            value: None,
            later_value: None,
            a_mop_index: None,
            b_mop_index: None,
            a_completion_index: None,
            b_invoke_index: None,
            process: None,
            explanation: String::new(),
        };
        match rel {
            WR => self.explain_wr(a, b, ta, tb, step),
            WW | RW => self.explain_version_step(a, b, rel, ta, tb, step),
            REALTIME => {
                let (ca, ib) = (self.op_index(a), self.txn(b).invoke);
                Step {
                    a_completion_index: Some(ca),
                    b_invoke_index: Some(ib),
                    explanation: format!(
                        "{ta} completed (op {ca}) before {tb} was invoked (op {ib})"
                    ),
                    ..step
                }
            }
            _ => {
                let p = self.txn(a).process;
                Step {
                    process: Some(p),
                    explanation: format!("process {p} ran {ta} before {tb}"),
                    ..step
                }
            }
        }
    }

    fn txn(&self, node: u32) -> &Txn {
        &self.txns[self.nodes[node as usize]]
    }

    /// Position of a micro-op within a vertex's transaction.
    fn mop_index(&self, node: u32, mop: Mop) -> Option<usize> {
        self.txn(node).mops.iter().position(|&m| m == mop)
    }

    fn explain_wr(&self, a: u32, b: u32, ta: &str, tb: &str, step: Step) -> Step {
        let reads = &self.ext_reads[b as usize];
        let found = self.ext_writes[a as usize]
            .iter()
            .find(|&&(k, v)| reads.contains(&(k, Some(v))));
        let Some(&(k, v)) = found else {
            return step;
        };
        Step {
            key: Some(k),
            value: Some(v.into()),
            a_mop_index: self.mop_index(a, write(k, v)),
            b_mop_index: self.mop_index(b, read(k, Some(v))),
            explanation: format!("{ta} wrote key {k} = {v}, which {tb} read"),
            ..step
        }
    }

    /// A ww or rw step: `a` wrote (ww) or read (rw) a version of some key
    /// that the version order puts directly before one `b` wrote.
    fn explain_version_step(
        &self,
        a: u32,
        b: u32,
        rel: Rels,
        ta: &str,
        tb: &str,
        step: Step,
    ) -> Step {
        let b_writes = &self.ext_writes[b as usize];
        let a_versions: Vec<(Key, Option<Val>)> = if rel == WW {
            let writes = self.ext_writes[a as usize].iter();
            writes.map(|&(k, v)| (k, Some(v))).collect()
        } else {
            self.ext_reads[a as usize].clone()
        };
        let found = a_versions.iter().find_map(|&(k, v)| {
            let &(_, later) = b_writes.iter().find(|(bk, _)| *bk == k)?;
            self.versions
                .contains(&(k, v, later))
                .then_some((k, v, later))
        });
        let Some((k, v, later)) = found else {
            return step;
        };
        let (a_mop, verb) = if rel == WW {
            (write(k, v.unwrap_or_default()), "wrote")
        } else {
            (read(k, v), "read")
        };
        let shown = v.map_or("null".to_string(), |v| v.to_string());
        Step {
            key: Some(k),
            value: Some(v.into()),
            later_value: Some(later),
            a_mop_index: self.mop_index(a, a_mop),
            b_mop_index: self.mop_index(b, write(k, later)),
            explanation: format!("{ta} {verb} key {k} = {shown}, {tb} overwrote it with {later}"),
            ..step
        }
    }
}

fn write(key: Key, value: Val) -> Mop {
    Mop {
        write: true,
        key,
        value: Some(value),
    }
}

fn read(key: Key, value: Option<Val>) -> Mop {
    Mop {
        write: false,
        key,
        value,
    }
}

/// Which vertices externally read or wrote each version.
struct ExtIndex {
    writers: HashMap<(Key, Val), Vec<u32>>,
    readers: HashMap<(Key, Option<Val>), Vec<u32>>,
}

impl ExtIndex {
    fn new(reads: &[Vec<(Key, Option<Val>)>], writes: &[Vec<(Key, Val)>]) -> ExtIndex {
        let mut index = ExtIndex {
            writers: HashMap::new(),
            readers: HashMap::new(),
        };
        for (n, rs) in reads.iter().enumerate() {
            for &kv in rs {
                index.readers.entry(kv).or_default().push(n as u32);
            }
        }
        for (n, ws) in writes.iter().enumerate() {
            for &kv in ws {
                index.writers.entry(kv).or_default().push(n as u32);
            }
        }
        index
    }

    fn writers(&self, key: Key, value: Option<Val>) -> &[u32] {
        value
            .and_then(|v| self.writers.get(&(key, v)))
            .map_or(&[], Vec::as_slice)
    }

    fn readers(&self, key: Key, value: Option<Val>) -> &[u32] {
        self.readers.get(&(key, value)).map_or(&[], Vec::as_slice)
    }
}

/// wr: the transaction that wrote a value precedes those that read it.
fn write_read_edges(
    index: &ExtIndex,
    reads: &[Vec<(Key, Option<Val>)>],
    txns: &[Txn],
    nodes: &[usize],
    edges: &mut Edges,
) -> Result<(), String> {
    for (b, rs) in reads.iter().enumerate() {
        for &(k, v) in rs {
            match index.writers(k, v) {
                [] => {}
                &[a] => edges.link(a, b as u32, WR),
                several => {
                    let ops: Vec<String> = several
                        .iter()
                        .map(|&n| txns[nodes[n as usize]].op_index().to_string())
                        .collect();
                    return Err(format!(
                        "key {k} value {} was written by more than one committed transaction \
                         (ops {}), so the read in op {} is ambiguous: txn-rw-register needs \
                         unique writes per key",
                        v.unwrap_or_default(),
                        ops.join(", "),
                        txns[nodes[b]].op_index()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// ww and rw, from each version-order edge `v1 -> v2` of a key: writers of
/// `v1` precede writers of `v2`, and readers of `v1` precede them too.
fn version_edges(index: &ExtIndex, versions: &[VersionEdge], edges: &mut Edges) {
    for &(k, v1, v2) in versions {
        let later = index.writers(k, Some(v2));
        if later.is_empty() {
            continue;
        }
        for (earlier, rel) in [(index.writers(k, v1), WW), (index.readers(k, v1), RW)] {
            for &a in earlier {
                for &b in later {
                    edges.link(a, b, rel);
                }
            }
        }
    }
}

/// Where each transaction's invocation and completion sit in the history:
/// `(transaction, is_invocation)` per history index.
fn events(history: &History, txns: &[Txn]) -> Vec<Option<(usize, bool)>> {
    let mut at = vec![None; history.len()];
    for (i, t) in txns.iter().enumerate() {
        at[t.invoke] = Some((i, true));
        if let Some(c) = t.completion {
            at[c] = Some((i, false));
        }
    }
    at
}

/// Real-time order, transitively reduced as Elle does: each invocation is
/// linked only from the committed transactions that completed before it
/// and are not already followed by a later committed one, so each
/// invocation gets at most about `concurrency` edges.
fn realtime_edges(history: &History, txns: &[Txn], node_of: &[Option<u32>], edges: &mut Edges) {
    let mut frontier: Vec<u32> = Vec::new();
    // Committed transactions in flight -> the frontier when they began.
    let mut preceded_by: HashMap<usize, Vec<u32>> = HashMap::new();
    for (t, invocation) in events(history, txns).into_iter().flatten() {
        let node = node_of[t];
        if invocation {
            if txns[t].completion.is_none() || frontier.is_empty() {
                continue;
            }
            // Elle links to failed and indeterminate completions too; they
            // cannot lie on a cycle, but they make the graph non-empty.
            edges.linked = true;
            if let Some(b) = node {
                for &a in &frontier {
                    edges.link(a, b, REALTIME);
                }
                preceded_by.insert(t, frontier.clone());
            }
        } else if let Some(b) = node {
            if let Some(before) = preceded_by.remove(&t) {
                frontier.retain(|a| !before.contains(a));
            }
            frontier.push(b);
        }
    }
}

/// Process order: each process's committed transactions, in order.
fn process_edges(history: &History, txns: &[Txn], node_of: &[Option<u32>], edges: &mut Edges) {
    let mut last: HashMap<Process, u32> = HashMap::new();
    for (t, invocation) in events(history, txns).into_iter().flatten() {
        if let (false, Some(b)) = (invocation, node_of[t])
            && let Some(a) = last.insert(txns[t].process, b)
        {
            edges.link(a, b, PROCESS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(k: Key, v: Val) -> Mop {
        write(k, v)
    }

    fn r(k: Key, v: Option<Val>) -> Mop {
        read(k, v)
    }

    #[test]
    fn internal_reads_must_match_earlier_reads_and_writes() {
        assert_eq!(
            first_internal_inconsistency(&[r(1, Some(2)), w(1, 3), r(1, Some(3))]),
            None
        );
        assert_eq!(
            first_internal_inconsistency(&[r(1, Some(1)), w(1, 2), r(1, Some(1))]),
            Some((r(1, Some(1)), Some(2)))
        );
        // A null read is knowledge too: the key was unwritten.
        assert_eq!(
            first_internal_inconsistency(&[r(1, None), r(1, Some(4))]),
            Some((r(1, Some(4)), None))
        );
    }
}
