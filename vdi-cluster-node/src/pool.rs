//! The prewarm pool: idle machines started ahead of an exam, waiting per
//! exam for the next allocate of that exam to claim one.
//!
//! The pool only keeps count; the [session table](crate::sessions) decides
//! when to fill it, claim from it or evict from it, under its own lock.
//! When sessions and idle machines together exceed the node's slots, an
//! idle machine is evicted — another exam's first (the exam with most),
//! else the claiming exam's own.
//!
//! Per exam it also counts the machines still starting and the starts that
//! failed, which heartbeats report ([`PrewarmPool::report`]). Discarding an
//! exam's pool ([`PrewarmPool::discard`]) takes its idle machines, forgets
//! its failures and dooms the machines still starting: each is handed back
//! for discarding when its start finishes, instead of joining the pool.

use std::collections::{BTreeMap, HashMap};

use vdi_cluster_core::ExamId;
use vdi_cluster_core::worker::{ExamPool, PoolReport};

use crate::provision::Machine;

/// One exam's machines.
#[derive(Debug, Default)]
struct ExamMachines {
    idle: Vec<Machine>,
    /// Starts under way, doomed ones included.
    starting: usize,
    /// Starts under way whose machine is discarded when it has started.
    doomed: usize,
    failed: usize,
}

impl ExamMachines {
    fn is_empty(&self) -> bool {
        self.idle.is_empty() && self.starting == 0 && self.failed == 0
    }
}

/// Idle machines per exam, and how many are still starting or failed.
#[derive(Debug, Default)]
pub struct PrewarmPool {
    exams: HashMap<ExamId, ExamMachines>,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl PrewarmPool {
    /// Idle machines, all exams together.
    pub fn idle(&self) -> usize {
        self.exams.values().map(|e| e.idle.len()).sum()
    }

    /// Machines still starting (they hold a slot), all exams together.
    pub fn starting(&self) -> usize {
        self.exams.values().map(|e| e.starting).sum()
    }

    /// Idle machines per exam, by exam.
    pub fn per_exam(&self) -> BTreeMap<String, usize> {
        self.exams
            .iter()
            .filter(|(_, m)| !m.idle.is_empty())
            .map(|(e, m)| (e.to_string(), m.idle.len()))
            .collect()
    }

    /// Per exam: starting (doomed ones left out), ready and failed, for a
    /// heartbeat.
    pub fn report(&self) -> PoolReport {
        PoolReport {
            exams: self
                .exams
                .iter()
                .map(|(e, m)| {
                    let pool = ExamPool {
                        starting: count(m.starting - m.doomed),
                        ready: count(m.idle.len()),
                        failed: count(m.failed),
                    };
                    (e.clone(), pool)
                })
                .filter(|(_, p)| !p.is_empty())
                .collect(),
        }
    }

    /// Takes an idle machine of `exam`, if there is one.
    pub fn claim(&mut self, exam: &ExamId) -> Option<Machine> {
        let machines = self.exams.get_mut(exam)?;
        let machine = machines.idle.pop();
        self.forget_if_empty(exam);
        machine
    }

    /// Counts `n` machines of `exam` as starting.
    pub fn start(&mut self, exam: &ExamId, n: usize) {
        if n > 0 {
            self.exams.entry(exam.clone()).or_default().starting += n;
        }
    }

    /// One start of `exam` finished with `machine` (`None`: it failed).
    /// Keeps the machine, unless the exam's pool was discarded while it
    /// started: then the machine is returned, to be discarded.
    pub fn finish(&mut self, exam: &ExamId, machine: Option<Machine>) -> Option<Machine> {
        let entry = self.exams.entry(exam.clone()).or_default();
        entry.starting = entry.starting.saturating_sub(1);
        let doomed = entry.doomed > 0;
        if doomed {
            entry.doomed -= 1;
        }
        let out = match machine {
            Some(m) if doomed => Some(m),
            Some(m) => {
                entry.idle.push(m);
                None
            }
            None => {
                if !doomed {
                    entry.failed += 1;
                }
                None
            }
        };
        self.forget_if_empty(exam);
        out
    }

    /// Discards `exam`'s pool: returns its idle machines (to be discarded),
    /// forgets its failures, and dooms the machines still starting.
    pub fn discard(&mut self, exam: &ExamId) -> Vec<Machine> {
        let Some(entry) = self.exams.get_mut(exam) else {
            return Vec::new();
        };
        let idle = std::mem::take(&mut entry.idle);
        entry.failed = 0;
        entry.doomed = entry.starting;
        self.forget_if_empty(exam);
        idle
    }

    /// An idle machine to discard to make room for `exam`: another exam's
    /// first (the one with most), else `exam`'s own.
    pub fn evict(&mut self, exam: &ExamId) -> Option<(ExamId, Machine)> {
        let victim = self
            .exams
            .iter()
            .filter(|(e, m)| !m.idle.is_empty() && *e != exam)
            .max_by_key(|(_, m)| m.idle.len())
            .map(|(e, _)| e.clone())
            .or_else(|| {
                self.exams
                    .get(exam)
                    .is_some_and(|m| !m.idle.is_empty())
                    .then(|| exam.clone())
            })?;
        let machine = self.claim(&victim)?;
        Some((victim, machine))
    }

    fn forget_if_empty(&mut self, exam: &ExamId) {
        if self.exams.get(exam).is_some_and(ExamMachines::is_empty) {
            self.exams.remove(exam);
        }
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

    fn pool_of(pool: &PrewarmPool, id: &str) -> ExamPool {
        pool.report().of(&exam(id))
    }

    #[test]
    fn other_exams_are_evicted_first_then_the_own() {
        let mut pool = PrewarmPool::default();
        pool.start(&exam("a"), 1);
        pool.start(&exam("b"), 3);
        assert!(pool.finish(&exam("a"), machine(1)).is_none());
        assert!(pool.finish(&exam("b"), machine(2)).is_none());
        assert!(pool.finish(&exam("b"), machine(3)).is_none());
        assert!(pool.finish(&exam("b"), None).is_none());
        assert_eq!((pool.idle(), pool.starting()), (3, 0));
        assert_eq!(pool.evict(&exam("a")).unwrap().0, exam("b"));
        assert_eq!(pool.evict(&exam("a")).unwrap().0, exam("b"));
        assert_eq!(pool.evict(&exam("a")).unwrap().0, exam("a"));
        assert!(pool.evict(&exam("a")).is_none());
        assert!(pool.per_exam().is_empty());
    }

    #[test]
    fn starting_ready_and_failed_are_counted_per_exam() {
        let mut pool = PrewarmPool::default();
        pool.start(&exam("a"), 4);
        pool.start(&exam("b"), 1);
        pool.finish(&exam("a"), machine(1));
        pool.finish(&exam("a"), None);
        let a = pool_of(&pool, "a");
        assert_eq!((a.starting, a.ready, a.failed), (2, 1, 1));
        let b = pool_of(&pool, "b");
        assert_eq!((b.starting, b.ready, b.failed), (1, 0, 0));
        assert_eq!(pool.starting(), 3);
        pool.claim(&exam("a"));
        let a = pool_of(&pool, "a");
        assert_eq!((a.starting, a.ready, a.failed), (2, 0, 1));
        pool.finish(&exam("b"), None);
        assert_eq!(pool_of(&pool, "b").failed, 1, "a failure is reported");
    }

    #[test]
    fn a_discard_takes_the_idle_and_dooms_the_starting() {
        let mut pool = PrewarmPool::default();
        pool.start(&exam("a"), 4);
        pool.finish(&exam("a"), machine(1));
        pool.finish(&exam("a"), None);
        pool.start(&exam("b"), 1);
        assert_eq!(pool.discard(&exam("a")).len(), 1);
        assert!(pool_of(&pool, "a").is_empty(), "nothing left to report");
        assert_eq!(pool.starting(), 3, "the starts still hold their slots");
        assert!(pool.finish(&exam("a"), machine(2)).is_some(), "doomed");
        assert!(pool.finish(&exam("a"), None).is_none());
        assert_eq!(pool_of(&pool, "a").failed, 0, "a doomed failure is not one");
        assert!(pool.discard(&exam("a")).is_empty());
        assert!(pool.discard(&exam("zzz")).is_empty());
        assert!(
            pool.finish(&exam("b"), machine(3)).is_none(),
            "b is untouched"
        );
        assert_eq!(pool.report().exams.len(), 1);
        assert_eq!(pool.starting(), 0);
    }
}
