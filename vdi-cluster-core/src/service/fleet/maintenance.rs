//! Maintenance windows: when a worker, or a group of them (a rack, a
//! zone), can be taken out for a while without making any booked exam fit
//! worse. The decision is [`exam::maintenance_windows`](crate::exam::maintenance_windows)
//! over the calendar and the schedulable capacity with and without the
//! workers; this module reads both and checks the question.

use std::time::Duration;

use super::Fleet;
use crate::error::{Error, Result};
use crate::exam::{MaintenanceWindow, maintenance_windows};
use crate::ids::WorkerId;
use crate::time::Timestamp;

/// The range searched when none is given: seven days from now.
pub const DEFAULT_MAINTENANCE_RANGE: Duration = Duration::from_secs(7 * 86_400);
/// The longest range searched: 31 days.
pub const MAX_MAINTENANCE_RANGE: Duration = Duration::from_secs(31 * 86_400);
/// The shortest maintenance asked about: one minute.
pub const MIN_MAINTENANCE: Duration = Duration::from_secs(60);
/// Most workers in one group.
pub const MAX_MAINTENANCE_GROUP: usize = 100;

/// The question: which workers, for how long, between when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceQuery {
    /// The workers taken out together.
    pub workers: Vec<WorkerId>,
    /// How long they are out.
    pub duration: Duration,
    /// From (now if absent or past).
    pub from: Option<Timestamp>,
    /// To (`from` + [`DEFAULT_MAINTENANCE_RANGE`] if absent).
    pub to: Option<Timestamp>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenancePlan {
    /// The workers.
    pub workers: Vec<WorkerId>,
    /// How long they are out.
    pub duration: Duration,
    /// The range searched.
    pub from: Timestamp,
    /// Its end.
    pub to: Timestamp,
    /// The windows, in order.
    pub windows: Vec<MaintenanceWindow>,
}

impl Fleet {
    /// The windows in which taking `query.workers` out for
    /// `query.duration` keeps every booked exam fitting as it does.
    /// Invalid questions are [`Error::Invalid`] naming `workers`,
    /// `duration`, `from` or `to`; an unknown worker is
    /// [`Error::WorkerNotFound`].
    pub async fn maintenance_windows(&self, query: MaintenanceQuery) -> Result<MaintenancePlan> {
        let now = self.shared.clock.now();
        let (from, to) = check(&query, now)?;
        let views = self.shared.worker_views().await?;
        if let Some(unknown) = query
            .workers
            .iter()
            .find(|w| !views.iter().any(|v| v.id() == *w))
        {
            return Err(Error::WorkerNotFound(unknown.clone()));
        }
        let calendar = self.shared.store.exam_calendar().await?;
        let (with, without) = self.capacities(&views, &query.workers);
        let windows =
            maintenance_windows(&calendar.exams, &with, &without, from, to, query.duration);
        Ok(MaintenancePlan {
            workers: query.workers,
            duration: query.duration,
            from,
            to,
            windows,
        })
    }
}

/// The range of `query` at `now`, or what is wrong with it.
fn check(query: &MaintenanceQuery, now: Timestamp) -> Result<(Timestamp, Timestamp)> {
    if query.workers.is_empty() {
        return Err(Error::invalid("workers", "name at least one worker"));
    }
    if query.workers.len() > MAX_MAINTENANCE_GROUP {
        return Err(Error::invalid(
            "workers",
            format!("at most {MAX_MAINTENANCE_GROUP} workers"),
        ));
    }
    if query.duration < MIN_MAINTENANCE || query.duration > MAX_MAINTENANCE_RANGE {
        return Err(Error::invalid(
            "duration",
            "must be from one minute to 31 days",
        ));
    }
    let from = query.from.map_or(now, |f| f.max(now));
    let to = query.to.unwrap_or(from.plus(DEFAULT_MAINTENANCE_RANGE));
    if to <= from {
        return Err(Error::invalid("to", "must be after from (and after now)"));
    }
    if to.since(from) > MAX_MAINTENANCE_RANGE {
        return Err(Error::invalid("to", "at most 31 days after from"));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(duration: u64, from: Option<u64>, to: Option<u64>) -> MaintenanceQuery {
        MaintenanceQuery {
            workers: vec![WorkerId::parse("code", "w1").unwrap()],
            duration: Duration::from_secs(duration),
            from: from.map(Timestamp),
            to: to.map(Timestamp),
        }
    }

    fn field(r: Result<(Timestamp, Timestamp)>) -> String {
        match r {
            Err(Error::Invalid(v)) => v.field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn questions_are_bounded() {
        let now = Timestamp(1_000_000);
        let (from, to) = check(&query(3600, None, None), now).unwrap();
        assert_eq!((from, to), (now, now.plus(DEFAULT_MAINTENANCE_RANGE)));
        // A past `from` is now.
        assert_eq!(check(&query(3600, Some(5), None), now).unwrap().0, now);
        assert_eq!(field(check(&query(30, None, None), now)), "duration");
        assert_eq!(field(check(&query(3600, None, Some(5)), now)), "to");
        let far = now.plus(MAX_MAINTENANCE_RANGE).as_millis() + 1;
        assert_eq!(field(check(&query(3600, None, Some(far)), now)), "to");
        let mut q = query(3600, None, None);
        q.workers.clear();
        assert_eq!(field(check(&q, now)), "workers");
    }
}
