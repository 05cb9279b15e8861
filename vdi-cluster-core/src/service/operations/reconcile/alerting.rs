//! The alerts a pass raises: `migration.suspended` when a step first
//! holds migration back, `migration.manual_required` for the sessions the
//! `manual` policy orphaned (with reminders), at the end of a pass.

use std::collections::HashMap;

use super::Pass;
use crate::error::Result;
use crate::events::EventKind;
use crate::ids::WorkerId;
use crate::outbox::alerts;
use crate::service::Operations;
use crate::time::Timestamp;

impl Operations {
    fn orphan_alerts(&self) -> std::sync::MutexGuard<'_, HashMap<WorkerId, Timestamp>> {
        self.orphan_alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Pass<'_> {
    /// `migration.suspended` once per episode: when a step first holds
    /// migration back after a pass that did not, under a key naming the
    /// episode's first step (a leader that takes over mid-episode starts
    /// an episode of its own, so it may repeat the alert once). The
    /// episode ends only with `episode_over`: at the end of a pass this
    /// replica ran whole, none of whose steps held migration back.
    pub(super) async fn alert_suspension(&mut self, episode_over: bool) -> Result<()> {
        let service = self.service;
        let started = {
            let mut episode = service
                .suspension
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match (&self.suspended, *episode) {
                (None, _) => {
                    if episode_over {
                        *episode = None;
                    }
                    return Ok(());
                }
                (Some(_), Some(_)) => return Ok(()),
                (Some(_), None) => {
                    *episode = Some(self.report.started_at);
                    self.report.started_at
                }
            }
        };
        let kind = EventKind::MigrationSuspended {
            reason: self.suspended.clone().unwrap_or_default(),
        };
        let key = alerts::observed_key(&kind, started.as_millis());
        let written = service.shared.record_observed(kind, key, self.fence).await;
        if written.is_err() {
            // Not written: the next step of the episode tries again.
            *service
                .suspension
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        written
    }

    /// `migration.manual_required` per worker, at the end of a pass: for
    /// the sessions the pass orphaned, then every `manual_migration_remind`
    /// while sessions stay orphaned on it (with their count). The leader
    /// remembers when it last alerted; one that takes over starts
    /// counting from its first pass, so a reminder never comes sooner
    /// than the interval, and at worst one interval late. Reminders and
    /// catch-ups need the whole keyspace's orphans: only when `whole`
    /// (this replica ran every step of the pass that just completed).
    ///
    /// The first alert of an episode is keyed by the worker and the
    /// smallest orphaned dispatch id on it, which every leader derives
    /// from the records alone. It is written after the marks, and a leader
    /// that finds orphans it has not alerted about (it just took over, or
    /// the previous one stopped between the marks and the alert) writes
    /// it again under that key: the store skips it if it was written, and
    /// writes it if a crash lost it, as long as the sessions are still
    /// orphaned (the marks are durable until an operator moves them).
    pub(super) async fn alert_orphans(&mut self, whole: bool) -> Result<()> {
        let service = self.service;
        let now = service.shared.clock.now();
        let marked = std::mem::take(&mut self.memory.orphaned);
        let still = std::mem::take(&mut self.memory.still_orphaned);
        let every = service.shared.config.manual_migration_remind;
        let mut due = Vec::new();
        if whole {
            let mut last = service.orphan_alerts();
            last.retain(|w, _| marked.contains_key(w) || still.contains_key(w));
            for (worker, orphans) in &still {
                if marked.contains_key(worker) {
                    continue;
                }
                match (last.get(worker), every) {
                    (None, _) => {
                        last.insert(worker.clone(), now);
                        let episode = orphans.first.to_string();
                        due.push((worker.clone(), orphans.count, episode, false));
                    }
                    (Some(at), Some(every)) if now.since(*at) >= every => {
                        let episode = now.as_millis().to_string();
                        due.push((worker.clone(), orphans.count, episode, true));
                    }
                    _ => {}
                }
            }
        }
        let fresh = marked.into_iter().map(|(w, o)| {
            let first = still.get(&w).map_or(o.first, |s| s.first.min(o.first));
            (w, o.count, first.to_string(), true)
        });
        // A catch-up is not emitted to the sinks (they may have had it
        // from the previous leader).
        for (worker, count, episode, emit) in fresh.chain(due) {
            let kind = EventKind::SessionsOrphaned {
                worker: worker.clone(),
                count,
            };
            let key = alerts::observed_key(&kind, episode);
            if emit {
                service
                    .shared
                    .record_observed(kind, key, self.fence)
                    .await?;
            } else {
                service
                    .shared
                    .append_observed(&kind, key, self.fence)
                    .await?;
            }
            service.orphan_alerts().insert(worker, now);
        }
        Ok(())
    }
}
