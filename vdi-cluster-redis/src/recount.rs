//! Recount: every counter checked against the dispatch records, one
//! counter group per atomic script, safe while allocations run.
//!
//! 1. One `MULTI` read of the worker index and the dispatched counts gives
//!    every worker with a record or a counter, and the dispatch keys of
//!    each worker and each exam. A `SCAN` adds exams whose affinity hash
//!    outlived their records.
//! 2. Per worker, `recount_worker.lua` receives the counter, the index and
//!    the worker's dispatch keys; per exam, `recount_exam.lua` receives the
//!    affinity hash, the exam's key set and its dispatch keys. Each script
//!    first checks that the membership it was given is still current —
//!    otherwise it answers with the current members and is run again with
//!    them — then compares and, when asked, repairs, all in one atomic step.
//!
//! So a reported drift is a real one at the instant of its script, and a
//! repair writes the count of the records as they are at that instant.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use vdi_cluster_core::WorkerId;
use vdi_cluster_core::store::{Counter, Drift, RecountReport};

use crate::error::{BackendError, BackendResult};
use crate::keys::{EncodedExam, split_index_member};
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

/// Runs of one counter's script before giving up on it for this pass
/// because its records keep changing.
const ATTEMPTS: usize = 8;

/// `SCAN` page size when looking for affinity hashes.
const SCAN_COUNT: usize = 1000;

/// One worker's counter, as checked.
struct WorkerCheck {
    stored: i64,
    actual: i64,
    present: bool,
    stale: u64,
}

/// One exam's counters, as checked.
struct ExamCheck {
    checked: u64,
    stale: u64,
    drift: Vec<(String, i64, i64)>,
}

fn number(script: &'static str, text: &str) -> BackendResult<i64> {
    text.parse()
        .map_err(|e| BackendError::malformed(format!("<reply of {script}.lua>"), "number", e))
}

fn flag(repair: bool) -> &'static str {
    if repair { "1" } else { "0" }
}

impl RedisStore {
    pub(crate) async fn recount_all(&self, repair: bool) -> BackendResult<RecountReport> {
        let (members, counters): (Vec<String>, HashMap<String, String>) = redis::pipe()
            .atomic()
            .cmd("ZRANGE")
            .arg(self.keys.worker_index())
            .arg(0)
            .arg(-1)
            .cmd("HGETALL")
            .arg(self.keys.dispatched())
            .query_async(&mut self.conn())
            .await?;

        let mut by_worker: BTreeMap<WorkerId, Vec<String>> = BTreeMap::new();
        let mut by_exam: BTreeMap<EncodedExam, BTreeSet<String>> = BTreeMap::new();
        for member in &members {
            let Some((worker, key)) = split_index_member(member) else {
                tracing::warn!(member, "malformed worker index entry left alone");
                continue;
            };
            if let Some(exam) = self.keys.exam_of_dispatch(key) {
                by_exam.entry(exam).or_default().insert(key.to_owned());
            }
            by_worker.entry(worker).or_default().push(key.to_owned());
        }
        for code in counters.keys() {
            match WorkerId::parse("code", code.as_str()) {
                Ok(worker) => {
                    by_worker.entry(worker).or_default();
                }
                Err(_) => tracing::warn!(code, "dispatched count of a malformed worker code"),
            }
        }
        let mut cursor = String::from("0");
        loop {
            let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
                .arg(&cursor)
                .arg("MATCH")
                .arg(self.keys.affinity_pattern())
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut self.conn())
                .await?;
            for key in keys {
                if let Some(exam) = self.keys.exam_of_affinity(&key) {
                    by_exam.entry(exam).or_default();
                }
            }
            if next == "0" {
                break;
            }
            cursor = next;
        }

        let mut report = RecountReport::default();
        let mut skipped = 0_u64;
        for (worker, keys) in by_worker {
            let Some(check) = self.check_worker(&worker, keys, repair).await? else {
                skipped += 1;
                continue;
            };
            if check.stale > 0 {
                tracing::warn!(%worker, stale = check.stale, repair, "worker index entries without their record");
            }
            if check.present || check.actual != 0 {
                report.counters_checked += 1;
            }
            if check.stored != check.actual {
                report.drift.push(Drift {
                    counter: Counter::WorkerDispatched { worker },
                    stored: check.stored,
                    actual: check.actual,
                });
            }
        }
        let mut exam_drift = Vec::new();
        for (exam, keys) in by_exam {
            let Some(check) = self.check_exam(&exam, keys, repair).await? else {
                skipped += 1;
                continue;
            };
            report.counters_checked += check.checked;
            if check.stale > 0 {
                tracing::warn!(
                    exam = exam.as_str(),
                    stale = check.stale,
                    repair,
                    "exam session entries without their record"
                );
            }
            if check.drift.is_empty() {
                continue;
            }
            let Some(exam_id) = exam.decode() else {
                tracing::warn!(
                    exam = exam.as_str(),
                    repair,
                    "affinity drift under a key this backend did not write"
                );
                continue;
            };
            for (worker, stored, actual) in check.drift {
                match WorkerId::parse("worker", worker) {
                    Ok(worker) => exam_drift.push(Drift {
                        counter: Counter::ExamAffinity {
                            exam_id: exam_id.clone(),
                            worker,
                        },
                        stored,
                        actual,
                    }),
                    Err(_) => tracing::warn!(
                        exam = exam.as_str(),
                        repair,
                        "affinity count of a malformed worker code"
                    ),
                }
            }
        }
        exam_drift.sort_by(|a, b| a.counter.cmp(&b.counter));
        report.drift.extend(exam_drift);
        if skipped > 0 {
            tracing::warn!(
                skipped,
                "recount skipped counters whose records kept changing; the next pass checks them"
            );
        }
        Ok(report)
    }

    async fn check_worker(
        &self,
        worker: &WorkerId,
        mut keys: Vec<String>,
        repair: bool,
    ) -> BackendResult<Option<WorkerCheck>> {
        let stem = format!("{} ", worker.as_str());
        for _ in 0..ATTEMPTS {
            let mut invocation = SCRIPTS.recount_worker.prepare_invoke();
            invocation
                .key(self.keys.dispatched())
                .key(self.keys.worker_index());
            for key in &keys {
                invocation.key(key);
            }
            let reply: Vec<String> = invocation
                .arg(worker.as_str())
                .arg(flag(repair))
                .invoke_async(&mut self.conn())
                .await?;
            match reply.split_first() {
                Some((status, members)) if status == "retry" => {
                    keys = members
                        .iter()
                        .filter_map(|m| m.strip_prefix(&stem).map(str::to_owned))
                        .collect();
                }
                Some((status, rest)) if status == "ok" && rest.len() == 4 => {
                    return Ok(Some(WorkerCheck {
                        stored: number("recount_worker", &rest[0])?,
                        actual: number("recount_worker", &rest[1])?,
                        present: rest[2] == "1",
                        stale: number("recount_worker", &rest[3])?.unsigned_abs(),
                    }));
                }
                other => {
                    return Err(BackendError::unexpected(
                        "recount_worker",
                        other.map(|(s, _)| s.as_str()),
                    ));
                }
            }
        }
        Ok(None)
    }

    async fn check_exam(
        &self,
        exam: &EncodedExam,
        keys: BTreeSet<String>,
        repair: bool,
    ) -> BackendResult<Option<ExamCheck>> {
        let mut keys: Vec<String> = keys.into_iter().collect();
        for _ in 0..ATTEMPTS {
            let mut invocation = SCRIPTS.recount_exam.prepare_invoke();
            invocation
                .key(self.keys.affinity(exam))
                .key(self.keys.exam_sessions(exam));
            for key in &keys {
                invocation.key(key);
            }
            let reply: Vec<String> = invocation
                .arg(flag(repair))
                .invoke_async(&mut self.conn())
                .await?;
            match reply.split_first() {
                Some((status, members)) if status == "retry" => keys = members.to_vec(),
                Some((status, rest))
                    if status == "ok" && rest.len() >= 2 && rest.len() % 3 == 2 =>
                {
                    let mut drift = Vec::new();
                    for triple in rest[2..].chunks_exact(3) {
                        drift.push((
                            triple[0].clone(),
                            number("recount_exam", &triple[1])?,
                            number("recount_exam", &triple[2])?,
                        ));
                    }
                    return Ok(Some(ExamCheck {
                        checked: number("recount_exam", &rest[0])?.unsigned_abs(),
                        stale: number("recount_exam", &rest[1])?.unsigned_abs(),
                        drift,
                    }));
                }
                other => {
                    return Err(BackendError::unexpected(
                        "recount_exam",
                        other.map(|(s, _)| s.as_str()),
                    ));
                }
            }
        }
        Ok(None)
    }
}
