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
    /// worker's description valid. Errors name the item and field
    /// (`dispatches[3].worker`), in the dump's camelCase spelling.
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
        Ok(())
    }
}

/// A description's error as a field of the worker's `description`.
fn within_description(error: ValidationError) -> ValidationError {
    ValidationError::new(format!("description.{}", error.field), error.message)
}
