//! The step graph: order, earliest start and finish, critical path.
//!
//! An edge runs from a dependency to its dependent. A blocking dependency
//! releases its dependents when it finishes; a non-blocking one as soon as
//! it starts (the seed's backup that lets the upgrade go on while it runs).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

/// What the graph needs to know of a step.
pub struct Node<'a> {
    /// Step id.
    pub id: &'a str,
    /// Dependencies (unknown ids are ignored: the loader reported them).
    pub needs: &'a [String],
    /// Whether dependents wait for the finish (true) or only the start.
    pub blocking: bool,
    /// Expected duration in seconds (0 for a skipped step).
    pub estimate: u64,
}

/// The computed schedule.
#[derive(Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Indices into the input, dependencies before dependents, ties in input order.
    pub order: Vec<usize>,
    /// Earliest start per input index.
    pub start: Vec<u64>,
    /// Earliest finish per input index.
    pub finish: Vec<u64>,
    /// Indices of the critical path, first step first.
    pub critical_path: Vec<usize>,
    /// The latest finish.
    pub total: u64,
}

/// The dependency graph of `nodes` (petgraph, node weight = input index).
pub fn graph(nodes: &[Node<'_>]) -> DiGraph<usize, ()> {
    let mut graph = DiGraph::with_capacity(nodes.len(), nodes.len() * 2);
    let index: HashMap<&str, NodeIndex> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id, graph.add_node(i)))
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        for need in node.needs {
            if let Some(&from) = index.get(need.as_str()) {
                graph.add_edge(from, NodeIndex::new(i), ());
            }
        }
    }
    graph
}

/// Orders the graph and computes the schedule. Returns `None` for a graph
/// with a cycle (the loader reports cycles before planning).
pub fn schedule(nodes: &[Node<'_>]) -> Option<Schedule> {
    let graph = graph(nodes);
    let order = stable_topological_order(&graph)?;
    let n = nodes.len();
    let (mut start, mut finish) = (vec![0u64; n], vec![0u64; n]);
    // The predecessor that decided each step's start, for the critical path.
    let mut decided_by: Vec<Option<usize>> = vec![None; n];
    for &i in &order {
        for pred in graph.neighbors_directed(NodeIndex::new(i), Direction::Incoming) {
            let p = pred.index();
            let release = if nodes[p].blocking {
                finish[p]
            } else {
                start[p]
            };
            if release > start[i] || decided_by[i].is_none() && release == start[i] {
                start[i] = release;
                decided_by[i] = Some(p);
            }
        }
        finish[i] = start[i] + nodes[i].estimate;
    }
    let last = (0..n).max_by_key(|&i| (finish[i], Reverse(i)));
    let mut critical_path = Vec::new();
    let mut at = last;
    while let Some(i) = at {
        critical_path.push(i);
        at = decided_by[i];
    }
    critical_path.reverse();
    let total = last.map_or(0, |i| finish[i]);
    Some(Schedule {
        order,
        start,
        finish,
        critical_path,
        total,
    })
}

/// Kahn's algorithm with a min-heap on the input index, so independent
/// steps keep the order the runbook lists them in (petgraph's `toposort`
/// gives a valid but arbitrary order, which would make plans jump around).
fn stable_topological_order(graph: &DiGraph<usize, ()>) -> Option<Vec<usize>> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|v| graph.neighbors_directed(v, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for next in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            let d = &mut indegree[next.index()];
            *d -= 1;
            if *d == 0 {
                ready.push(Reverse(next.index()));
            }
        }
    }
    (order.len() == indegree.len()).then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(id: &'a str, needs: &'a [String], blocking: bool, estimate: u64) -> Node<'a> {
        Node {
            id,
            needs,
            blocking,
            estimate,
        }
    }

    #[test]
    fn critical_path_follows_the_longest_chain() {
        let none: Vec<String> = vec![];
        let a = vec!["a".to_owned()];
        let bc = vec!["b".to_owned(), "c".to_owned()];
        let nodes = [
            node("a", &none, true, 10),
            node("b", &a, true, 5),
            node("c", &a, true, 30),
            node("d", &bc, true, 1),
        ];
        let s = schedule(&nodes).unwrap();
        assert_eq!(s.order, [0, 1, 2, 3]);
        assert_eq!(s.critical_path, [0, 2, 3]);
        assert_eq!(s.total, 41);
        assert_eq!(s.start[3], 40);
    }

    #[test]
    fn non_blocking_steps_release_dependents_at_their_start() {
        let none: Vec<String> = vec![];
        let backup = vec!["backup".to_owned()];
        let nodes = [
            node("backup", &none, false, 100),
            node("upgrade", &backup, true, 30),
        ];
        let s = schedule(&nodes).unwrap();
        assert_eq!(
            s.start[1], 0,
            "the upgrade need not wait for the backup to finish"
        );
        assert_eq!(
            s.total, 100,
            "but the upgrade is not over until the backup is"
        );
        assert_eq!(s.critical_path, [0]);
    }

    #[test]
    fn independent_steps_keep_their_written_order() {
        let none: Vec<String> = vec![];
        let z = vec!["z".to_owned()];
        let nodes = [
            node("z", &none, true, 1),
            node("y", &none, true, 1),
            node("x", &z, true, 1),
        ];
        assert_eq!(schedule(&nodes).unwrap().order, [0, 1, 2]);
    }

    #[test]
    fn cycles_have_no_schedule() {
        let a = vec!["a".to_owned()];
        let b = vec!["b".to_owned()];
        assert!(schedule(&[node("a", &b, true, 1), node("b", &a, true, 1)]).is_none());
    }
}
