//! Garbage collection by reachability.
//!
//! The marking algorithm knows nothing of images or labels: it walks a graph from roots. The store
//! side (`Store::collect_garbage`) supplies the roots (image targets, leased content, content labelled
//! as a root) and the edges (`io.skiff.gc.ref.content.*` labels that the image layer sets on indexes
//! and manifests when it stores them), then sweeps what was not marked.

use std::collections::HashSet;
use std::hash::Hash;

/// Every node reachable from `roots` by following `edges`.
pub fn mark<N, R, E, I>(roots: R, mut edges: E) -> HashSet<N>
where
    N: Clone + Eq + Hash,
    R: IntoIterator<Item = N>,
    E: FnMut(&N) -> I,
    I: IntoIterator<Item = N>,
{
    let mut seen = HashSet::new();
    let mut stack: Vec<N> = roots.into_iter().collect();
    while let Some(n) = stack.pop() {
        if seen.insert(n.clone()) {
            stack.extend(edges(&n).into_iter().filter(|c| !seen.contains(c)));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn marks_transitively_and_handles_cycles() {
        let g: HashMap<u32, Vec<u32>> =
            [(1, vec![2, 3]), (2, vec![4]), (3, vec![4]), (4, vec![1]), (5, vec![6]), (6, vec![])].into();
        let marked = mark([1], |n| g.get(n).cloned().unwrap_or_default());
        assert_eq!(marked, [1, 2, 3, 4].into());
        assert!(mark(Vec::<u32>::new(), |_| vec![]).is_empty());
    }
}
