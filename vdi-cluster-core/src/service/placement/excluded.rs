//! The workers an exam's rehearsal left out ([`crate::rehearsal`]): its
//! placements rank none of them until a re-check finds them passing.
//!
//! Only a booked exam (on this replica's cached calendar) can have a
//! rehearsal, so an exam that is not booked costs no read. A booked
//! exam's record is read once per
//! [`ServiceConfig::snapshot_max_age`](crate::service::ServiceConfig::snapshot_max_age)
//! (zero: at every placement) and dropped by this replica's own
//! rehearsal writes; another replica's are seen within that age. The
//! rehearsal runs before the exam, so that age costs nothing in practice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::Placement;
use crate::error::Result;
use crate::ids::{ExamId, WorkerId};

/// An exam's failing workers and when they were read.
type Read = (Instant, Arc<HashSet<WorkerId>>);

/// The failing workers of each booked exam, as this replica last read
/// them.
#[derive(Debug, Default)]
pub(crate) struct Excluded(Mutex<HashMap<ExamId, Read>>);

impl Excluded {
    fn lock(&self) -> MutexGuard<'_, HashMap<ExamId, Read>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Placement {
    /// The workers `exam`'s rehearsal leaves out (see the module docs).
    pub(crate) async fn excluded_by_rehearsal(
        &self,
        exam: &ExamId,
    ) -> Result<Arc<HashSet<WorkerId>>> {
        let max_age = self.shared.config.snapshot_max_age;
        if let Some((at, set)) = self.excluded.lock().get(exam)
            && at.elapsed() < max_age
        {
            return Ok(Arc::clone(set));
        }
        if self.cached_calendar().await?.get(exam).is_none() {
            return Ok(Arc::default());
        }
        let fetched = Instant::now();
        let set: HashSet<WorkerId> = self
            .shared
            .store
            .rehearsal(exam)
            .await?
            .map(|s| s.rehearsal.failing_workers())
            .unwrap_or_default();
        let set = Arc::new(set);
        let mut cache = self.excluded.lock();
        cache.retain(|_, (at, _)| at.elapsed() < max_age);
        cache.insert(exam.clone(), (fetched, Arc::clone(&set)));
        Ok(set)
    }

    /// Drops this replica's copy of `exam`'s failing workers (after its
    /// own rehearsal write).
    pub(crate) fn forget_rehearsal(&self, exam: &ExamId) {
        self.excluded.lock().remove(exam);
    }
}
