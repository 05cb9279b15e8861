//! The policy order of a [`RankIndex`](super::RankIndex): the workers
//! that can take a session, most free slots first, then by the hash of
//! their code, with the runs of equal free slots marked — kept sorted
//! under per-worker changes.
//!
//! The order is a list of sorted blocks of a few hundred entries each, so
//! that putting one worker in or taking it out moves at most one block's
//! entries and re-adds the blocks' lengths (a few hundred at 100,000
//! workers), and reading the `k`-th worker is a binary search over the
//! blocks. The runs are recounted from the number of workers with each
//! count of free slots, of which there are few.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Range;

use crate::worker::WorkerView;

/// Entries a block holds after a split; a block splits past twice that.
const BLOCK: usize = 256;

/// A worker's place in the order: most free slots first, then its fixed
/// tie-break, then its position in the index's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    free: Reverse<u32>,
    tiebreak: u64,
    index: usize,
}

impl Key {
    fn of(view: &WorkerView, index: usize) -> Self {
        Self {
            free: Reverse(view.available_sessions),
            tiebreak: view.tiebreak,
            index,
        }
    }
}

/// Sorted keys in blocks, none empty.
#[derive(Debug, Clone, Default)]
struct Blocks {
    blocks: Vec<Vec<Key>>,
    /// Position of each block's first key.
    starts: Vec<usize>,
    len: usize,
}

impl Blocks {
    fn from_sorted(keys: &[Key]) -> Self {
        let mut blocks = Self {
            blocks: keys.chunks(BLOCK).map(<[Key]>::to_vec).collect(),
            starts: Vec::new(),
            len: keys.len(),
        };
        blocks.recount();
        blocks
    }

    fn recount(&mut self) {
        self.starts.clear();
        let mut at = 0;
        for block in &self.blocks {
            self.starts.push(at);
            at += block.len();
        }
    }

    /// The block `key` belongs in: the first whose last key is not below
    /// it, or the last block.
    fn block_of(&self, key: &Key) -> usize {
        let b = self
            .blocks
            .partition_point(|block| block.last().is_some_and(|last| last < key));
        b.min(self.blocks.len().saturating_sub(1))
    }

    fn insert(&mut self, key: Key) {
        if self.blocks.is_empty() {
            self.blocks.push(vec![key]);
        } else {
            let b = self.block_of(&key);
            let block = &mut self.blocks[b];
            let at = block.partition_point(|k| *k < key);
            block.insert(at, key);
            if block.len() > 2 * BLOCK {
                let tail = block.split_off(BLOCK);
                self.blocks.insert(b + 1, tail);
            }
        }
        self.len += 1;
        self.recount();
    }

    fn remove(&mut self, key: &Key) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        let b = self.block_of(key);
        let Ok(at) = self.blocks[b].binary_search(key) else {
            return false;
        };
        self.blocks[b].remove(at);
        if self.blocks[b].is_empty() {
            self.blocks.remove(b);
        }
        self.len -= 1;
        self.recount();
        true
    }

    fn get(&self, position: usize) -> Key {
        let b = self.starts.partition_point(|&s| s <= position) - 1;
        self.blocks[b][position - self.starts[b]]
    }

    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = &Key> {
        self.blocks.iter().flatten()
    }
}

/// A subset of the workers that can take a session, in the policy order,
/// with the runs of equal free slots marked.
#[derive(Debug, Clone, Default)]
pub(super) struct Order {
    keys: Blocks,
    /// Workers by free slots, most first.
    counts: BTreeMap<Reverse<u32>, usize>,
    /// Runs of equal free slots, as positions in the order.
    runs: Vec<Range<usize>>,
}

impl Order {
    /// The order of the workers at `open` in `views`, in any order.
    pub(super) fn of(open: &[usize], views: &[WorkerView]) -> Self {
        let mut keys: Vec<Key> = open.iter().map(|&i| Key::of(&views[i], i)).collect();
        keys.sort_unstable();
        let mut counts = BTreeMap::new();
        for key in &keys {
            *counts.entry(key.free).or_default() += 1;
        }
        let mut order = Self {
            keys: Blocks::from_sorted(&keys),
            counts,
            runs: Vec::new(),
        };
        order.recount_runs();
        order
    }

    fn recount_runs(&mut self) {
        self.runs.clear();
        let mut at = 0;
        for &n in self.counts.values() {
            self.runs.push(at..at + n);
            at += n;
        }
    }

    /// Workers in the order.
    pub(super) fn len(&self) -> usize {
        self.keys.len
    }

    /// Whether no worker is in the order.
    pub(super) fn is_empty(&self) -> bool {
        self.keys.len == 0
    }

    /// The runs of equal free slots, most free slots first.
    pub(super) fn runs(&self) -> &[Range<usize>] {
        &self.runs
    }

    /// The position in the views of the worker at `position` in the order.
    pub(super) fn at(&self, position: usize) -> usize {
        self.keys.get(position).index
    }

    /// The positions in the views of the workers, in the order.
    #[cfg(test)]
    pub(super) fn indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.keys.iter().map(|k| k.index)
    }

    /// Puts the worker `view`, at `index` in the views, in its place.
    pub(super) fn insert(&mut self, view: &WorkerView, index: usize) {
        let key = Key::of(view, index);
        self.keys.insert(key);
        *self.counts.entry(key.free).or_default() += 1;
        self.recount_runs();
    }

    /// Takes out the worker `view`, at `index` in the views, as it was
    /// put in; false if it was not in the order.
    pub(super) fn remove(&mut self, view: &WorkerView, index: usize) -> bool {
        let key = Key::of(view, index);
        if !self.keys.remove(&key) {
            return false;
        }
        if let Some(n) = self.counts.get_mut(&key.free) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&key.free);
            }
        }
        self.recount_runs();
        true
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(free: u32, tiebreak: u64) -> Key {
        Key {
            free: Reverse(free),
            tiebreak,
            index: tiebreak as usize,
        }
    }

    proptest! {
        /// Blocks kept under inserts and removals hold what a sorted list
        /// holds, and find each position's key.
        #[test]
        fn blocks_stay_sorted(ops in proptest::collection::vec((any::<bool>(), 0u32..4, 0u64..2_000), 0..3_000)) {
            let mut blocks = Blocks::default();
            let mut model: Vec<Key> = Vec::new();
            for (insert, free, tiebreak) in ops {
                let k = key(free, tiebreak);
                let present = model.binary_search(&k);
                match (insert, present) {
                    (true, Err(at)) => {
                        model.insert(at, k);
                        blocks.insert(k);
                    }
                    (false, Ok(at)) => {
                        model.remove(at);
                        prop_assert!(blocks.remove(&k));
                    }
                    (false, Err(_)) => prop_assert!(!blocks.remove(&k)),
                    (true, Ok(_)) => {}
                }
            }
            prop_assert_eq!(blocks.len, model.len());
            prop_assert_eq!(blocks.iter().copied().collect::<Vec<_>>(), model.clone());
            for (i, k) in model.iter().enumerate() {
                prop_assert_eq!(blocks.get(i), *k);
            }
            prop_assert!(blocks.blocks.iter().all(|b| !b.is_empty() && b.len() <= 2 * BLOCK));
        }
    }
}
