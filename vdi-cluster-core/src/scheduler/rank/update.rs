//! Bringing a [`RankIndex`] up to date worker by worker instead of
//! building it again.
//!
//! A worker's change costs what its places cost: out of the policy order
//! and its facets' orders as it was, into them as it is (a block of the
//! sorted order each, see the `order` module), and the state counts. A
//! change that moves nothing the ranking reads (a heartbeat's figures, the
//! record's version) only replaces the view. [`RankIndex::refresh`] takes
//! a whole read of the fleet and applies only what differs from the
//! index's views; the index then ranks exactly as one built from that read.
//!
//! The exams' affine orders are dropped by every change and rebuilt on
//! the next ranking of each exam, as they are for a new index.

use super::{Facet, RankIndex, state_exclusion};
use crate::ids::WorkerId;
use crate::scheduler::affine::AffineOrders;
use crate::worker::WorkerView;

/// Whether `a` and `b` stand in the same places of an index: the same
/// state, free slots, tie-break and facets.
fn ranks_alike(a: &WorkerView, b: &WorkerView) -> bool {
    let (da, db) = (&a.record.description, &b.record.description);
    a.available_sessions == b.available_sessions
        && a.tiebreak == b.tiebreak
        && state_exclusion(a) == state_exclusion(b)
        && da.zone == db.zone
        && da.labels == db.labels
        && da.capabilities == db.capabilities
}

impl RankIndex {
    /// Puts `view` in the index in place of the worker's previous view, or
    /// as a new worker.
    pub fn upsert(&mut self, view: WorkerView) {
        self.affine = AffineOrders::default();
        match self.by_id.get(view.id()) {
            Some(&i) => self.replace(i, view),
            None => self.push(view),
        }
    }

    /// Takes worker `id` out of the index; its last view, if it was in.
    pub fn remove(&mut self, id: &WorkerId) -> Option<WorkerView> {
        let i = *self.by_id.get(id)?;
        self.affine = AffineOrders::default();
        Some(self.remove_at(i))
    }

    /// Brings the index to `views`, a new read of the whole fleet: the
    /// workers whose places changed are moved, new ones put in, those
    /// missing from `views` taken out. It then ranks exactly as
    /// [`RankIndex::new`] of `views` would.
    pub fn refresh(&mut self, views: Vec<WorkerView>) {
        self.affine = AffineOrders::default();
        let before = self.views.len();
        let mut seen = vec![false; before];
        for (k, view) in views.into_iter().enumerate() {
            // A store that reads the fleet in the same order each time
            // needs no look-up.
            let at = match self.views.get(k) {
                Some(v) if v.id() == view.id() => Some(k),
                _ => self.by_id.get(view.id()).copied(),
            };
            match at {
                Some(i) => {
                    if let Some(s) = seen.get_mut(i) {
                        *s = true;
                    }
                    self.replace(i, view);
                }
                None => self.push(view),
            }
        }
        for i in (0..before).rev().filter(|&i| !seen[i]) {
            self.remove_at(i);
        }
    }

    fn replace(&mut self, i: usize, view: WorkerView) {
        if ranks_alike(&self.views[i], &view) {
            self.views[i] = view;
        } else {
            self.leave(i);
            self.views[i] = view;
            self.enter(i);
        }
    }

    fn push(&mut self, view: WorkerView) {
        let i = self.views.len();
        self.by_id.insert(view.id().clone(), i);
        self.views.push(view);
        self.enter(i);
    }

    /// Removes the view at `i`; the last view takes its position.
    fn remove_at(&mut self, i: usize) -> WorkerView {
        let last = self.views.len() - 1;
        self.leave(i);
        if i != last {
            self.leave(last);
        }
        let view = self.views.swap_remove(i);
        self.by_id.remove(view.id());
        if i != last {
            self.by_id.insert(self.views[i].id().clone(), i);
            self.enter(i);
        }
        view
    }

    /// Counts the view at `i` in its places.
    fn enter(&mut self, i: usize) {
        let v = &self.views[i];
        match state_exclusion(v) {
            Some(reason) => self.by_state.add(reason),
            None if v.available_sessions == 0 => self.full += 1,
            None => {
                self.order.insert(v, i);
                for facet in Facet::of_worker(v) {
                    self.facets.entry(facet).or_default().insert(v, i);
                }
            }
        }
    }

    /// Takes the view at `i` out of its places, as [`enter`](Self::enter)
    /// counted it.
    fn leave(&mut self, i: usize) {
        let v = &self.views[i];
        match state_exclusion(v) {
            Some(reason) => {
                if let Some(n) = self.by_state.0.get_mut(&reason) {
                    *n -= 1;
                    if *n == 0 {
                        self.by_state.0.remove(&reason);
                    }
                }
            }
            None if v.available_sessions == 0 => self.full -= 1,
            None => {
                self.order.remove(v, i);
                for facet in Facet::of_worker(v) {
                    if let Some(order) = self.facets.get_mut(&facet) {
                        order.remove(v, i);
                        if order.is_empty() {
                            self.facets.remove(&facet);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
