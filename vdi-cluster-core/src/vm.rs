//! Sessions and prewarmed machines as VMs: Aetherium's resource view
//! (docs/compat/aetherium.md, "VMs").
//!
//! Aetherium lists VMs, each on a worker, with a CPU and memory size. Here
//! a machine is either a student's session (its dispatch) or a machine a
//! worker holds in its prewarm pool for an exam (counted per exam in the
//! worker's heartbeat, [`PoolReport`](crate::worker::PoolReport)). Both are
//! as large as one slot of their worker: its `vmCpuCores` and `vmMemoryMb`
//! (the node's `EXAM_VM_CPUS` and `EXAM_VM_MEMORY_MB`).
//!
//! A VM's id is stable and safe in a URL path without escaping:
//!
//! * a session: `session:<examId>:<userId>`, each id in unpadded base64url
//!   of its UTF-8 (an exam id may itself hold `:` or any letter);
//! * a prewarmed machine: `prewarm:<workerCode>:<examId>:<n>`, the exam id
//!   likewise encoded, `n` counting from 1 over the exam's pool on that
//!   worker (ready machines first, then those starting). Workers count
//!   their pools without naming the machines, so such an id stands for
//!   "the n-th machine" while the pool holds at least `n`.
//!
//! Pure: no I/O; the reads are the operations wing's `vms`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::capacity::{CapacitySpec, Millicores};
use crate::dispatch::{Dispatch, DispatchState};
use crate::ids::{ExamId, MAX_SUBJECT_ID_LEN, SessionKey, UserId, WorkerId};
use crate::validation::ValidationError;
use crate::worker::ExamPool;

const SESSION_PREFIX: &str = "session";
const PREWARM_PREFIX: &str = "prewarm";

/// Unpadded base64 length of `bytes` bytes.
const fn encoded_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

/// Longest id [`VmId`] writes: a session's, its two ids of
/// [`MAX_SUBJECT_ID_LEN`] characters of up to four bytes each.
pub const MAX_VM_ID_LEN: usize = SESSION_PREFIX.len() + 2 + 2 * encoded_len(MAX_SUBJECT_ID_LEN * 4);

/// Which machine a VM id names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VmId {
    /// A student's session.
    Session(SessionKey),
    /// The `index`-th machine (from 1) of `exam`'s prewarm pool on `worker`.
    Prewarmed {
        /// The worker holding the pool.
        worker: WorkerId,
        /// The exam the machine is prewarmed for.
        exam: ExamId,
        /// Its place in the pool, from 1.
        index: u32,
    },
}

fn encode(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text.as_bytes())
}

fn decode(field: &str, part: &str) -> Result<String, ValidationError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ValidationError::new(field, "an id part is not unpadded base64url"))?;
    String::from_utf8(bytes)
        .map_err(|_| ValidationError::new(field, "an id part does not decode to UTF-8 text"))
}

/// Whether `text` has the form of a VM id (the OpenAPI document's
/// pattern): `session:<b64>:<b64>` or `prewarm:<code>:<b64>:<n>`, `n` from
/// 1, `<b64>` of the base64url alphabet. A well-formed id that
/// [`VmId::parse`] refuses (its parts do not decode to ids) names no VM.
pub fn well_formed(text: &str) -> bool {
    let b64 = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    };
    let code = |part: &str| {
        part.as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let place = |part: &str| {
        (1..=10).contains(&part.len())
            && !part.starts_with('0')
            && part.bytes().all(|b| b.is_ascii_digit())
    };
    match text.split(':').collect::<Vec<_>>().as_slice() {
        [SESSION_PREFIX, exam, user] => b64(exam) && b64(user),
        [PREWARM_PREFIX, worker, exam, n] => code(worker) && b64(exam) && place(n),
        _ => false,
    }
}

impl VmId {
    /// Reads an id written by [`Display`](fmt::Display), naming `field` in
    /// the error when it is not one.
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        let bad = || {
            ValidationError::new(
                field,
                "must be session:<examId>:<userId> or prewarm:<workerCode>:<examId>:<n>",
            )
        };
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            [SESSION_PREFIX, exam, user] => Ok(Self::Session(SessionKey::new(
                ExamId::parse(field, decode(field, exam)?)?,
                UserId::parse(field, decode(field, user)?)?,
            ))),
            [PREWARM_PREFIX, worker, exam, index] => {
                let index: u32 = index.parse().map_err(|_| bad())?;
                if index == 0 {
                    return Err(ValidationError::new(
                        field,
                        "a machine's place counts from 1",
                    ));
                }
                Ok(Self::Prewarmed {
                    worker: WorkerId::parse(field, *worker)?,
                    exam: ExamId::parse(field, decode(field, exam)?)?,
                    index,
                })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session(key) => write!(
                f,
                "{SESSION_PREFIX}:{}:{}",
                encode(key.exam_id.as_str()),
                encode(key.user_id.as_str())
            ),
            Self::Prewarmed {
                worker,
                exam,
                index,
            } => write!(
                f,
                "{PREWARM_PREFIX}:{worker}:{}:{index}",
                encode(exam.as_str())
            ),
        }
    }
}

/// What a VM is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VmStatus {
    /// A session's slot is reserved and its worker is starting it, or a
    /// prewarmed machine is still starting.
    Starting,
    /// A session its worker started.
    Running,
    /// A prewarmed machine, started and idle, waiting for a student.
    Ready,
    /// A session on a failed worker waiting for an operator (the `manual`
    /// failure policy).
    Orphaned,
}

impl VmStatus {
    /// Lowercase name (Aetherium's spelling for `running`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Ready => "ready",
            Self::Orphaned => "orphaned",
        }
    }
}

impl From<DispatchState> for VmStatus {
    fn from(state: DispatchState) -> Self {
        match state {
            DispatchState::Reserved => Self::Starting,
            DispatchState::Active => Self::Running,
            DispatchState::Orphaned => Self::Orphaned,
        }
    }
}

/// One slot's size: the CPU and memory of one machine on its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VmSize {
    /// CPU of the machine.
    pub cpu: Millicores,
    /// Memory of the machine, MB.
    pub memory_mb: u64,
}

impl From<&CapacitySpec> for VmSize {
    fn from(spec: &CapacitySpec) -> Self {
        Self {
            cpu: spec.vm_cpu,
            memory_mb: spec.vm_memory_mb,
        }
    }
}

/// A session or a prewarmed machine, as a VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    /// Its id.
    pub id: VmId,
    /// The worker it runs on.
    pub worker: WorkerId,
    /// What it is doing.
    pub status: VmStatus,
    /// Its size: one slot of its worker, unknown before the worker has
    /// reported its capacity.
    pub size: Option<VmSize>,
}

impl Vm {
    /// A session's dispatch as a VM of `size`.
    pub fn of_dispatch(dispatch: &Dispatch, size: Option<VmSize>) -> Self {
        Self {
            id: VmId::Session(dispatch.key.clone()),
            worker: dispatch.worker.clone(),
            status: dispatch.state.into(),
            size,
        }
    }

    /// The `index`-th machine (from 1) of `pool`, the prewarm pool of
    /// `exam` on `worker`, if the pool holds that many: ready machines
    /// first, then those starting.
    pub fn prewarmed(
        worker: &WorkerId,
        exam: &ExamId,
        pool: ExamPool,
        index: u32,
        size: Option<VmSize>,
    ) -> Option<Self> {
        let status = if index == 0 || index > pool.held() {
            return None;
        } else if index <= pool.ready {
            VmStatus::Ready
        } else {
            VmStatus::Starting
        };
        Some(Self {
            id: VmId::Prewarmed {
                worker: worker.clone(),
                exam: exam.clone(),
                index,
            },
            worker: worker.clone(),
            status,
            size,
        })
    }

    /// Every machine of `pool`, in order.
    pub fn pool(
        worker: &WorkerId,
        exam: &ExamId,
        pool: ExamPool,
        size: Option<VmSize>,
    ) -> impl Iterator<Item = Self> {
        (1..=pool.held()).filter_map(move |i| Self::prewarmed(worker, exam, pool, i, size))
    }

    /// The exam it serves.
    pub fn exam(&self) -> &ExamId {
        match &self.id {
            VmId::Session(key) => &key.exam_id,
            VmId::Prewarmed { exam, .. } => exam,
        }
    }

    /// The student on it, for a session.
    pub fn user(&self) -> Option<&UserId> {
        match &self.id {
            VmId::Session(key) => Some(&key.user_id),
            VmId::Prewarmed { .. } => None,
        }
    }

    /// A name for humans: `<examId>/<userId>` for a session,
    /// `prewarm <examId> #<n>` for a prewarmed machine.
    pub fn name(&self) -> String {
        match &self.id {
            VmId::Session(key) => key.to_string(),
            VmId::Prewarmed { exam, index, .. } => format!("prewarm {exam} #{index}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exam(s: &str) -> ExamId {
        ExamId::parse("examId", s).unwrap()
    }

    fn worker() -> WorkerId {
        WorkerId::parse("code", "worker-node.2").unwrap()
    }

    #[test]
    fn ids_round_trip_whatever_the_exam_id_holds() {
        let ids = [
            VmId::Session(SessionKey::parse("math:101 thi cuối kỳ", "u/1?x=%").unwrap()),
            VmId::Prewarmed {
                worker: worker(),
                exam: exam("a:b:c"),
                index: 7,
            },
        ];
        for id in ids {
            let text = id.to_string();
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.')),
                "{text} needs escaping in a path"
            );
            assert_eq!(VmId::parse("id", &text).unwrap(), id);
        }
        let widest = "𝔼".repeat(MAX_SUBJECT_ID_LEN);
        let longest = VmId::Session(SessionKey::parse(widest.clone(), widest).unwrap());
        assert_eq!(longest.to_string().len(), MAX_VM_ID_LEN);
    }

    #[test]
    fn a_session_id_spells_both_ids() {
        let key = SessionKey::parse("exam-1", "u1").unwrap();
        assert_eq!(VmId::Session(key).to_string(), "session:ZXhhbS0x:dTE");
    }

    #[test]
    fn malformed_ids_name_the_field() {
        for bad in [
            "",
            "vm-123",
            "session:ZXhhbS0x",
            "session:ZXhhbS0x:dTE:x",
            "session:!!:dTE",
            "session::dTE",
            "prewarm:w1:ZXhhbS0x:0",
            "prewarm:w1:ZXhhbS0x:one",
            "prewarm:-bad:ZXhhbS0x:1",
            "session:_w:dTE",
        ] {
            let err = VmId::parse("id", bad).unwrap_err();
            assert_eq!(err.field, "id", "{bad}");
        }
    }

    #[test]
    fn a_pool_is_ready_machines_then_starting_ones() {
        let pool = ExamPool {
            starting: 1,
            ready: 2,
            failed: 5,
        };
        let e = exam("e");
        let statuses: Vec<_> = Vm::pool(&worker(), &e, pool, None)
            .map(|vm| vm.status)
            .collect();
        assert_eq!(
            statuses,
            [VmStatus::Ready, VmStatus::Ready, VmStatus::Starting]
        );
        assert!(Vm::prewarmed(&worker(), &e, pool, 4, None).is_none());
        assert!(Vm::prewarmed(&worker(), &e, pool, 0, None).is_none());
        let third = Vm::prewarmed(&worker(), &e, pool, 3, None).unwrap();
        assert_eq!(third.name(), "prewarm e #3");
        assert_eq!(third.user(), None);
    }

    #[test]
    fn the_form_of_an_id_is_told_from_what_it_names() {
        for id in [
            "session:ZXhhbQ:dTE",
            "session:_w:dTE",
            "prewarm:w-1:ZXhhbQ:12",
        ] {
            assert!(well_formed(id), "{id}");
        }
        for id in [
            "vm-123",
            "session:!!:dTE",
            "prewarm:w:ZXhhbQ:0",
            "session::dTE",
            "prewarm:-w:e:1",
        ] {
            assert!(!well_formed(id), "{id}");
        }
        assert!(
            VmId::parse("id", "session:_w:dTE").is_err(),
            "well formed, names nothing"
        );
    }
}
