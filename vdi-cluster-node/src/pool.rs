//! The prewarm pool: idle machines started ahead of an exam, waiting per
//! exam for the next allocate of that exam to claim one.
//!
//! The pool only keeps count; the [session table](crate::sessions) decides
//! when to fill it, claim from it or evict from it, under its own lock.
//! When sessions and idle machines together exceed the node's slots, an
//! idle machine is evicted — another exam's first (the exam with most),
//! else the claiming exam's own.

use std::collections::{BTreeMap, HashMap};

use vdi_cluster_core::ExamId;

use crate::provision::Machine;

/// Idle machines per exam, and how many are still starting.
#[derive(Debug, Default)]
pub struct PrewarmPool {
    idle: HashMap<ExamId, Vec<Machine>>,
    starting: usize,
}

impl PrewarmPool {
    /// Idle machines, all exams together.
    pub fn idle(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Machines still starting.
    pub fn starting(&self) -> usize {
        self.starting
    }

    /// Idle machines per exam, by exam.
    pub fn per_exam(&self) -> BTreeMap<String, usize> {
        self.idle
            .iter()
            .map(|(e, m)| (e.to_string(), m.len()))
            .collect()
    }

    /// Takes an idle machine of `exam`, if there is one.
    pub fn claim(&mut self, exam: &ExamId) -> Option<Machine> {
        let machines = self.idle.get_mut(exam)?;
        let machine = machines.pop();
        if machines.is_empty() {
            self.idle.remove(exam);
        }
        machine
    }

    /// Counts `n` machines as starting.
    pub fn start(&mut self, n: usize) {
        self.starting += n;
    }

    /// One start finished: keeps the machine of `exam` when it started.
    pub fn finish(&mut self, exam: ExamId, machine: Option<Machine>) {
        self.starting = self.starting.saturating_sub(1);
        if let Some(machine) = machine {
            self.idle.entry(exam).or_default().push(machine);
        }
    }

    /// An idle machine to discard to make room for `exam`: another exam's
    /// first (the one with most), else `exam`'s own.
    pub fn evict(&mut self, exam: &ExamId) -> Option<(ExamId, Machine)> {
        let victim = self
            .idle
            .iter()
            .filter(|(e, m)| !m.is_empty() && *e != exam)
            .max_by_key(|(_, m)| m.len())
            .map(|(e, _)| e.clone())
            .or_else(|| {
                self.idle
                    .get(exam)
                    .is_some_and(|m| !m.is_empty())
                    .then(|| exam.clone())
            })?;
        let machine = self.claim(&victim)?;
        Some((victim, machine))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exam(id: &str) -> ExamId {
        ExamId::parse("examId", id).unwrap()
    }

    fn machine(n: u32) -> Option<Machine> {
        Some(Machine(json!({ "machineId": n })))
    }

    #[test]
    fn other_exams_are_evicted_first_then_the_own() {
        let mut pool = PrewarmPool::default();
        pool.start(4);
        pool.finish(exam("a"), machine(1));
        pool.finish(exam("b"), machine(2));
        pool.finish(exam("b"), machine(3));
        pool.finish(exam("b"), None);
        assert_eq!((pool.idle(), pool.starting()), (3, 0));
        assert_eq!(pool.evict(&exam("a")).unwrap().0, exam("b"));
        assert_eq!(pool.evict(&exam("a")).unwrap().0, exam("b"));
        assert_eq!(pool.evict(&exam("a")).unwrap().0, exam("a"));
        assert!(pool.evict(&exam("a")).is_none());
        assert!(pool.per_exam().is_empty());
    }
}
