//! The day's plan: the fleet, the exams the organiser books and the
//! students.

use std::time::Duration;

use vdi_cluster_core::capacity::{CapacityInput, CapacitySpec};
use vdi_cluster_core::exam::{Exam, Prewarm, PrewarmTarget};
use vdi_cluster_core::{ExamId, SessionKey, Timestamp, WorkerId};

/// 07:00:00 on exam day, UTC.
pub(crate) const MORNING: Timestamp = Timestamp(1_781_506_800_000);
/// The morning exams: id, students. They run 09:00–10:30.
pub(crate) const MORNING_EXAMS: [(&str, u32); 3] =
    [("MATH101", 150), ("PHYS201", 120), ("CS310", 80)];
/// The exam the organiser first asks for at 09:00 as well, and books where
/// the library says it fits.
pub(crate) const LATE_EXAM: (&str, u32) = ("BIO120", 340);

/// Students of [`LATE_EXAM`] who turn up without having been counted in
/// its booking: with them the surge is larger than the free slots.
pub(crate) const LATE_REGISTRATIONS: u32 = 60;

/// `minutes` after [`MORNING`].
pub(crate) fn at(minutes: u64) -> Timestamp {
    MORNING.plus(Duration::from_secs(minutes * 60))
}

/// A worker node: the exam platform's 32 cores / 64 GiB (18 slots), or a larger
/// one with 48 cores / 96 GiB (29 slots).
pub(crate) fn node(i: usize, large: bool) -> (WorkerId, CapacitySpec) {
    let (cpu, mem) = if large {
        (48.0, 98_304)
    } else {
        (32.0, 65_536)
    };
    let capacity = CapacitySpec::new(CapacityInput {
        total_cpu_cores: cpu,
        total_memory_mb: mem,
        reserved_cpu_cores: 4.0,
        reserved_memory_mb: 8192,
        vm_cpu_cores: 1.5,
        vm_memory_mb: 2048,
    })
    .expect("valid capacity");
    let id = WorkerId::parse("code", format!("worker-node-{i:02}")).expect("valid code");
    (id, capacity)
}

/// Twenty nodes: sixteen of the exam platform's size and four larger ones.
pub(crate) fn fleet() -> Vec<(WorkerId, CapacitySpec)> {
    (1..=20).map(|i| node(i, i % 5 == 0)).collect()
}

/// An exam of `students` starting at `starts_at` for `minutes`: a quarter
/// of its machines prewarmed 30 minutes ahead, the waiting room on.
pub(crate) fn exam(id: &str, students: u32, starts_at: Timestamp, minutes: u64) -> Exam {
    Exam {
        id: ExamId::parse("examId", id).expect("valid exam id"),
        name: format!("{id} final"),
        starts_at,
        ends_at: starts_at.plus(Duration::from_secs(minutes * 60)),
        students,
        constraints: Default::default(),
        prewarm: Prewarm {
            target: PrewarmTarget::Percent(25),
            lead_sec: 1800,
        },
        teardown_sec: vdi_cluster_core::exam::DEFAULT_TEARDOWN_SEC,
        queue: true,
        booked_by: String::new(),
        booked_at: Timestamp(0),
        updated_at: Timestamp(0),
        prewarm_started_at: None,
        prewarm_marks: Default::default(),
        network_policy: None,
        extensions: Vec::new(),
        extra_time: Vec::new(),
        expiry_warned_through: None,
    }
}

/// The students of `exam`.
pub(crate) fn students(exam: &str, n: u32) -> Vec<SessionKey> {
    (1..=n)
        .map(|i| SessionKey::parse(exam, format!("sv{i:04}")).expect("valid key"))
        .collect()
}

/// The students of the morning exams.
pub(crate) fn morning_students() -> Vec<SessionKey> {
    MORNING_EXAMS
        .iter()
        .flat_map(|(exam, n)| students(exam, *n))
        .collect()
}
