//! Elle's cycle search as Maelstrom's kafka test runs it, reduced to what
//! can occur there.
//!
//! Elle builds a graph over send and poll completions with write-read edges
//! (sender → every poller of the message) and real-time edges (an `ok` op →
//! every op invoked after it completed); with Maelstrom's settings there are
//! no write-write edges and no process graph. Every op's real-time
//! reachability is then "completed before the other was invoked", so a cycle
//! exists exactly when some `ok` poll completed before the send of a message
//! it returned was invoked (a *future read*): along any cycle without one,
//! invocation and completion indices would have to increase forever.
//!
//! Elle reports one cycle per strongly connected component, named
//! `G1c-realtime` (every cycle has a real-time edge, and a write-read one).
//! We find the components with Tarjan's algorithm on a transitively reduced
//! real-time graph, and show each as its earliest future read.

use super::Analysis;
use super::parse::{Func, KOp, Msg};
use super::report::{Cycle, Step};

/// The cycles found, and whether Elle's graph would have no vertex at all
/// (`empty-transaction-graph`).
pub(crate) struct CycleSearch {
    pub cycles: Vec<Cycle>,
    pub empty_graph: bool,
}

/// A write-read edge whose poll completed before its send was invoked.
struct FutureRead<'a> {
    writer: usize,
    reader: usize,
    key: u32,
    msg: &'a Msg,
}

fn in_graph(op: &KOp) -> bool {
    matches!(op.f, Func::Send | Func::Poll)
}

/// Runs the search.
pub(crate) fn search(a: &Analysis) -> CycleSearch {
    let (wr_edges, future) = write_read_edges(a);
    let empty_graph = wr_edges.is_empty() && !has_realtime_edge(a);
    if future.is_empty() {
        return CycleSearch {
            cycles: Vec::new(),
            empty_graph,
        };
    }
    let rt_edges = realtime_edges(a);
    let graph = Csr::new(a.parsed.ops.len(), wr_edges.into_iter().chain(rt_edges));
    let component = graph.strongly_connected();
    let mut sizes = vec![0usize; a.parsed.ops.len()];
    for (id, c) in component.iter().enumerate() {
        if in_graph(&a.parsed.ops[id]) {
            sizes[*c as usize] += 1;
        }
    }
    let mut reported = vec![false; a.parsed.ops.len()];
    let mut cycles = Vec::new();
    for f in &future {
        let c = component[f.reader] as usize;
        if component[f.writer] as usize == c && !reported[c] {
            reported[c] = true;
            cycles.push(explain(a, f, sizes[c]));
        }
    }
    CycleSearch {
        cycles,
        empty_graph,
    }
}

/// Every write-read edge (sender → poller, never an op to itself), and the
/// future reads among them, ordered by the poll's completion.
fn write_read_edges<'a>(a: &Analysis<'a>) -> (Vec<(u32, u32)>, Vec<FutureRead<'a>>) {
    let ops = &a.parsed.ops;
    let mut edges = Vec::new();
    let mut future = Vec::new();
    for (reader, op) in ops.iter().enumerate().filter(|(_, op)| in_graph(op)) {
        for reads in &op.reads {
            for pair in &reads.pairs {
                // A message with no writer makes Jepsen's analysis throw; it
                // is reported as `no-writer-of-value` instead.
                let Some(writer) = a.facts.writer(reads.key, &pair.msg) else {
                    continue;
                };
                if writer == reader {
                    continue;
                }
                edges.push((writer as u32, reader as u32));
                if op.is_ok() && op.index < ops[writer].invoke_index {
                    future.push(FutureRead {
                        writer,
                        reader,
                        key: reads.key,
                        msg: &pair.msg,
                    });
                }
            }
        }
    }
    (edges, future)
}

/// Whether some `ok` send or poll completed before another was invoked.
fn has_realtime_edge(a: &Analysis) -> bool {
    let ops = a.parsed.ops.iter().filter(|op| in_graph(op));
    let first_ok_completion = ops.clone().filter(|op| op.is_ok()).map(|op| op.index).min();
    let last_invocation = ops.map(|op| op.invoke_index).max();
    matches!((first_ok_completion, last_invocation), (Some(c), Some(i)) if c < i)
}

/// Elle's real-time graph: walking the history, each invocation is linked
/// from every `ok` completion in a buffer; an `ok` completion replaces in the
/// buffer the ops it is itself linked from. This keeps reachability (`a`
/// reaches `b` iff `a` is `ok` and completed before `b` was invoked) with
/// few edges.
fn realtime_edges(a: &Analysis) -> Vec<(u32, u32)> {
    let ops = &a.parsed.ops;
    // (history index, op id, is invocation)
    let mut events: Vec<(usize, usize, bool)> = Vec::with_capacity(2 * ops.len());
    for (id, op) in ops.iter().enumerate().filter(|(_, op)| in_graph(op)) {
        events.push((op.invoke_index, id, true));
        events.push((op.index, id, false));
    }
    events.sort_unstable();
    let mut buffer: Vec<u32> = Vec::new();
    let mut preds: Vec<Vec<u32>> = vec![Vec::new(); ops.len()];
    let mut edges = Vec::new();
    for (_, id, is_invoke) in events {
        if is_invoke {
            edges.extend(buffer.iter().map(|b| (*b, id as u32)));
            preds[id] = buffer.clone();
        } else if ops[id].is_ok() {
            let implied = std::mem::take(&mut preds[id]);
            buffer.retain(|b| !implied.contains(b));
            buffer.push(id as u32);
        }
    }
    edges
}

fn explain(a: &Analysis, f: &FutureRead, scc_size: usize) -> Cycle {
    let (writer, reader) = (&a.parsed.ops[f.writer], &a.parsed.ops[f.reader]);
    let w = a.op_ref(f.writer, f.key);
    let r = a.op_ref(f.reader, f.key);
    Cycle {
        cycle: vec![w.clone(), r, w],
        steps: vec![
            Step::Wr {
                key: a.key_name(f.key),
                value: f.msg.clone(),
            },
            Step::Realtime {
                completed_index: reader.index,
                invoked_index: writer.invoke_index,
            },
        ],
        scc_size,
        same_process: writer.process == reader.process,
    }
}

/// A directed graph in compressed sparse row form.
struct Csr {
    starts: Vec<usize>,
    targets: Vec<u32>,
}

impl Csr {
    fn new(n: usize, edges: impl Iterator<Item = (u32, u32)>) -> Csr {
        let mut edges: Vec<(u32, u32)> = edges.collect();
        edges.sort_unstable();
        let mut starts = vec![0usize; n + 1];
        for (from, _) in &edges {
            starts[*from as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let targets = edges.into_iter().map(|(_, to)| to).collect();
        Csr { starts, targets }
    }

    fn out(&self, v: usize) -> &[u32] {
        &self.targets[self.starts[v]..self.starts[v + 1]]
    }

    /// Tarjan's algorithm, iteratively (histories are long enough to
    /// overflow a recursive walk): each vertex's component number.
    fn strongly_connected(&self) -> Vec<u32> {
        let n = self.starts.len() - 1;
        let mut t = Tarjan {
            index: vec![u32::MAX; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            component: vec![u32::MAX; n],
            next_index: 0,
            next_component: 0,
        };
        for root in 0..n {
            if t.index[root] == u32::MAX {
                t.walk(self, root);
            }
        }
        t.component
    }
}

struct Tarjan {
    index: Vec<u32>,
    low: Vec<u32>,
    on_stack: Vec<bool>,
    stack: Vec<u32>,
    component: Vec<u32>,
    next_index: u32,
    next_component: u32,
}

impl Tarjan {
    fn visit(&mut self, v: usize) {
        self.index[v] = self.next_index;
        self.low[v] = self.next_index;
        self.next_index += 1;
        self.stack.push(v as u32);
        self.on_stack[v] = true;
    }

    fn walk(&mut self, g: &Csr, root: usize) {
        // (vertex, how many of its out-edges were followed)
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        self.visit(root);
        while let Some(&(v, followed)) = calls.last() {
            if let Some(&w) = g.out(v).get(followed) {
                calls.last_mut().expect("non-empty").1 += 1;
                let w = w as usize;
                if self.index[w] == u32::MAX {
                    self.visit(w);
                    calls.push((w, 0));
                } else if self.on_stack[w] {
                    self.low[v] = self.low[v].min(self.index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                self.low[parent] = self.low[parent].min(self.low[v]);
            }
            if self.low[v] == self.index[v] {
                self.close_component(v);
            }
        }
    }

    fn close_component(&mut self, v: usize) {
        loop {
            let w = self.stack.pop().expect("v is on the stack") as usize;
            self.on_stack[w] = false;
            self.component[w] = self.next_component;
            if w == v {
                break;
            }
        }
        self.next_component += 1;
    }
}
