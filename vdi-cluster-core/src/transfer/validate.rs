//! [`StoreContents::validate`]: a dump is checked as a whole before
//! anything of it is written.

use std::collections::BTreeSet;
use std::fmt::Display;

use super::StoreContents;
use crate::dispatch::DispatchState;
use crate::outbox::endpoint::validate_url;
use crate::validation::ValidationError;

/// The first item of `items` whose key was seen before, as an error on
/// `section[i].field`.
fn unique<T, K: Ord + Display>(
    section: &str,
    field: &str,
    items: &[T],
    key: impl Fn(&T) -> K,
) -> Result<(), ValidationError> {
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        let message = format!("{k} appears more than once");
        if !seen.insert(k) {
            return Err(ValidationError::new(
                format!("{section}[{i}].{field}"),
                message,
            ));
        }
    }
    Ok(())
}

/// `error` of item `i` of `section`, its field prefixed with the item's
/// place.
fn within(section: &str, i: usize, error: ValidationError) -> ValidationError {
    ValidationError::new(format!("{section}[{i}].{}", error.field), error.message)
}

impl StoreContents {
    /// Checks the contents as a whole: no key twice in a part, every
    /// dispatch on a worker of the dump and live (a reservation in flight
    /// is never copied), every outbox entry for an endpoint of the dump,
    /// every exam and webhook URL as the API would accept it, every
    /// worker's description valid, every capacity request for an exam,
    /// every scheduled drain open (a finished one is never copied) and
    /// named, every ledger entry once, under its own id, every rehearsal of
    /// an exam of the dump. Errors name the item and field
    /// (`dispatches[3].worker`), in
    /// the dump's camelCase spelling.
    pub fn validate(&self) -> Result<(), ValidationError> {
        unique("workers", "id", &self.workers, |w| w.id.clone())?;
        for (i, worker) in self.workers.iter().enumerate() {
            worker
                .description
                .validate()
                .map_err(|e| within("workers", i, within_description(e)))?;
        }
        unique(
            "workerCredentials",
            "worker",
            &self.worker_credentials,
            |c| c.0.clone(),
        )?;
        unique("joinTokens", "id", &self.join_tokens, |t| t.id.clone())?;
        unique("joinTokens", "tokenHash", &self.join_tokens, |t| {
            t.token_hash.clone()
        })?;
        unique("exams", "id", &self.exams, |e| e.id.clone())?;
        for (i, exam) in self.exams.iter().enumerate() {
            exam.validate().map_err(|e| within("exams", i, e))?;
        }
        unique("webhooks", "id", &self.webhooks, |w| w.id.clone())?;
        for (i, endpoint) in self.webhooks.iter().enumerate() {
            validate_url(&endpoint.url).map_err(|e| within("webhooks", i, e))?;
        }
        unique("outbox", "id", &self.outbox, |o| o.id.clone())?;
        let endpoints: BTreeSet<&str> = self.webhooks.iter().map(|w| w.id.as_str()).collect();
        for (i, entry) in self.outbox.iter().enumerate() {
            if !endpoints.contains(entry.endpoint.as_str()) {
                return Err(ValidationError::new(
                    format!("outbox[{i}].endpoint"),
                    format!("webhook endpoint {} is not in the dump", entry.endpoint),
                ));
            }
        }
        unique("dispatches", "key", &self.dispatches, |d| d.key.clone())?;
        let workers: BTreeSet<&str> = self.workers.iter().map(|w| w.id.as_str()).collect();
        for (i, dispatch) in self.dispatches.iter().enumerate() {
            if !workers.contains(dispatch.worker.as_str()) {
                return Err(ValidationError::new(
                    format!("dispatches[{i}].worker"),
                    format!("worker {} is not in the dump", dispatch.worker),
                ));
            }
            if dispatch.state == DispatchState::Reserved {
                return Err(ValidationError::new(
                    format!("dispatches[{i}].state"),
                    "a reservation in flight is never copied: only active or orphaned dispatches",
                ));
            }
        }
        self.validate_scheduling()?;
        self.validate_ledger()
    }

    /// The ledger's entries: one per session and id, each id naming its
    /// kind and cause (`{kind}:{cause}`), none ending before it starts.
    fn validate_ledger(&self) -> Result<(), ValidationError> {
        unique("disruptions", "id", &self.disruptions, |d| {
            format!("{} {}", d.key, d.id)
        })?;
        for (i, d) in self.disruptions.iter().enumerate() {
            if d.id != format!("{}:{}", d.kind.name(), d.cause) {
                return Err(ValidationError::new(
                    format!("disruptions[{i}].id"),
                    "must be the entry's kind and cause, `{kind}:{cause}`",
                ));
            }
            if d.ended_at < d.started_at {
                return Err(ValidationError::new(
                    format!("disruptions[{i}].endedAt"),
                    "must not be before startedAt",
                ));
            }
        }
        Ok(())
    }

    /// The capacity requests, scheduled drains and rehearsals (see
    /// [`validate`](Self::validate)).
    fn validate_scheduling(&self) -> Result<(), ValidationError> {
        unique("capacityRequests", "id", &self.capacity_requests, |r| {
            r.id.clone()
        })?;
        for (i, request) in self.capacity_requests.iter().enumerate() {
            if request.id.trim().is_empty() {
                return Err(ValidationError::new(
                    format!("capacityRequests[{i}].id"),
                    "must not be empty",
                ));
            }
            if request.exams.is_empty() {
                return Err(ValidationError::new(
                    format!("capacityRequests[{i}].exams"),
                    "a capacity request is for at least one exam",
                ));
            }
        }
        unique("scheduledDrains", "id", &self.scheduled, |a| a.id.clone())?;
        for (i, action) in self.scheduled.iter().enumerate() {
            if action.id.trim().is_empty() {
                return Err(ValidationError::new(
                    format!("scheduledDrains[{i}].id"),
                    "must not be empty",
                ));
            }
            if !action.state.is_open() {
                return Err(ValidationError::new(
                    format!("scheduledDrains[{i}].state"),
                    format!(
                        "a {} action is never copied: only pending or firing ones",
                        action.state.name()
                    ),
                ));
            }
        }
        unique("rehearsals", "examId", &self.rehearsals, |r| {
            r.exam_id.to_string()
        })?;
        for (i, rehearsal) in self.rehearsals.iter().enumerate() {
            if !self.exams.iter().any(|e| e.id == rehearsal.exam_id) {
                return Err(ValidationError::new(
                    format!("rehearsals[{i}].examId"),
                    format!("exam {} is not in the dump", rehearsal.exam_id),
                ));
            }
        }
        Ok(())
    }
}

/// A description's error as a field of the worker's `description`.
fn within_description(error: ValidationError) -> ValidationError {
    ValidationError::new(format!("description.{}", error.field), error.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ExamId, WorkerId};
    use crate::scale::{CapacityRequest, CapacityState};
    use crate::scheduled::{ActionKind, ScheduledAction};
    use crate::time::Timestamp;

    fn request(id: &str, exams: &[&str]) -> CapacityRequest {
        CapacityRequest {
            id: id.into(),
            exams: exams
                .iter()
                .map(|e| ExamId::parse("examId", *e).unwrap())
                .collect(),
            constraints: Default::default(),
            slots: 2,
            deadline: Timestamp(10),
            needed_until: Timestamp(20),
            state: CapacityState::Requested,
            workers: Vec::new(),
            attempts: 0,
            next_attempt_at: Timestamp(0),
            last_error: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn drain(id: &str) -> ScheduledAction {
        let worker = WorkerId::parse("code", "w-1").unwrap();
        ScheduledAction::pending(
            id.into(),
            worker,
            ActionKind::Drain,
            Timestamp(50),
            "alice",
            "patch",
            Timestamp(0),
        )
    }

    fn field(contents: &StoreContents) -> String {
        contents.validate().unwrap_err().field
    }

    #[test]
    fn capacity_requests_and_scheduled_drains_are_checked_as_a_whole() {
        let valid = StoreContents {
            capacity_requests: vec![request("cap-a", &["a"]), request("cap-b", &["b"])],
            scheduled: vec![drain("sa_1"), drain("sa_2")],
            ..StoreContents::default()
        };
        valid.validate().unwrap();

        let mut twice = valid.clone();
        twice.capacity_requests[1].id = "cap-a".into();
        assert_eq!(field(&twice), "capacityRequests[1].id");
        let mut no_exam = valid.clone();
        no_exam.capacity_requests[0].exams.clear();
        assert_eq!(field(&no_exam), "capacityRequests[0].exams");
        let mut unnamed = valid.clone();
        unnamed.scheduled[1].id = " ".into();
        assert_eq!(field(&unnamed), "scheduledDrains[1].id");
        let mut finished = valid.clone();
        finished.scheduled[0] = drain("sa_1").cancel("bob", Timestamp(5)).unwrap();
        assert_eq!(field(&finished), "scheduledDrains[0].state");
        let mut repeated = valid;
        repeated.scheduled[1].id = "sa_1".into();
        assert_eq!(field(&repeated), "scheduledDrains[1].id");
    }

    #[test]
    fn ledger_entries_are_checked() {
        let entry = |cause: &str| {
            crate::ledger::Disruption::new(
                crate::ids::SessionKey::parse("e1", "u1").unwrap(),
                crate::ledger::DisruptionKind::WorkerLost,
                Timestamp(1),
                Timestamp(5),
                Vec::new(),
                cause,
            )
        };
        let valid = StoreContents {
            disruptions: vec![entry("a"), entry("b")],
            ..StoreContents::default()
        };
        valid.validate().unwrap();
        let mut twice = valid.clone();
        twice.disruptions[1] = entry("a");
        assert_eq!(field(&twice), "disruptions[1].id");
        let mut renamed = valid.clone();
        renamed.disruptions[0].id = "moved:a".into();
        assert_eq!(field(&renamed), "disruptions[0].id");
        let mut backwards = valid;
        backwards.disruptions[1].ended_at = Timestamp(0);
        assert_eq!(field(&backwards), "disruptions[1].endedAt");
    }
}
