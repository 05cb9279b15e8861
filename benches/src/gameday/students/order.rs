//! The waiting room's order as clients can see it, audited during the day
//! and checked at the end.

use std::collections::HashSet;

use vdi_cluster_protocol::waiting_room::WaitingStudentJson;

use super::{Crowd, Holding, Student};

/// What is wrong with the order of a waiting room's listing: positions
/// not 1..n, a student listed twice, or one overtaken — a student who was
/// answered "queued" before another one sent the request that queued it
/// must be ahead of it (invariant E, as clients can see it). Only students
/// who believe they wait, with the stay that queued them, are compared.
pub(crate) fn waiting_room_order(
    listed: &[WaitingStudentJson],
    crowd: &Crowd,
    states: &[Student],
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if listed
        .iter()
        .enumerate()
        .any(|(k, w)| w.position as usize != k + 1)
    {
        problems.push(("waiting room positions not 1..n", crowd.exam.clone()));
    }
    let mut seen = HashSet::new();
    for w in listed {
        if !seen.insert(w.user_id.as_str()) {
            problems.push(("listed twice in the waiting room", w.user_id.clone()));
        }
    }
    // The student behind answered "queued" first: (answered at, who).
    let mut earliest_behind: Option<(u64, &WaitingStudentJson)> = None;
    for w in listed.iter().rev() {
        let stint = crowd
            .index_of(&w.user_id)
            .map(|i| &states[i])
            .filter(|s| s.holding == Holding::Queued)
            .and_then(|s| s.stint);
        let Some(stint) = stint else { continue };
        if let Some((answered, behind)) = earliest_behind
            && answered < stint.sent_ms
        {
            problems.push((
                "overtaken in the waiting room",
                format!(
                    "{} (#{}) was answered \"queued\" {} ms before {} (#{}) asked; \
                     the room says they joined at {} and {}",
                    behind.user_id,
                    behind.position,
                    stint.sent_ms - answered,
                    w.user_id,
                    w.position,
                    behind.enqueued_at,
                    w.enqueued_at
                ),
            ));
        }
        if earliest_behind.is_none_or(|(a, _)| stint.answered_ms < a) {
            earliest_behind = Some((stint.answered_ms, w));
        }
    }
    problems
}
