//! Writes that carry an outbox entry: a change and the webhook entries it
//! causes, written in one atomic step (see the operations wing's
//! `webhooks` for the whole rule), and a leader's fenced observations.

use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::events::{Event, EventKind};
use crate::ids::{SessionKey, WorkerId};
use crate::ledger::{Disruption, OpenInterruption};
use crate::outbox::{LostDispatch, LostRelease, OutboxEntry, WebhookEndpoint, alerts};
use crate::pacing::PermitReturn;
use crate::store::{CasOutcome, Lease};
use crate::worker::WorkerRecord;

use super::Shared;

impl Shared {
    /// The outbox entries of `events` happening now, for the endpoints that
    /// want them (read once), each under its de-duplication key (a fresh
    /// one if `None`). Reads no endpoint when no event is a webhook type.
    pub(crate) async fn outbox_entries(
        &self,
        events: &[(&EventKind, Option<String>)],
    ) -> Result<Vec<OutboxEntry>> {
        if events
            .iter()
            .all(|(kind, _)| alerts::webhook_type(kind).is_none())
        {
            return Ok(Vec::new());
        }
        let endpoints = self.store.webhooks().await?;
        Ok(self.entries_for(&endpoints, events))
    }

    /// [`outbox_entries`](Self::outbox_entries) for `endpoints` already
    /// read (a pass that writes many events reads them once).
    pub(crate) fn entries_for(
        &self,
        endpoints: &[WebhookEndpoint],
        events: &[(&EventKind, Option<String>)],
    ) -> Vec<OutboxEntry> {
        let at = self.clock.now();
        let mut entries = Vec::new();
        for (kind, dedup) in events {
            let event = Event {
                at,
                kind: (*kind).clone(),
            };
            let dedup = dedup.clone().unwrap_or_else(|| new_id("evt"));
            entries.extend(alerts::route(&event, &dedup, endpoints, || new_id("msg")));
        }
        entries
    }

    /// Writes an observation to the outbox at once, fenced by `fence` (the
    /// leader's lease) under `key`, the de-duplication key naming its
    /// occurrence ([`alerts::observed_key`]): a second leader observing
    /// the same occurrence writes nothing. Not emitted to the sinks (a new
    /// leader's catch-up: they may have had it from the previous leader).
    pub(crate) async fn append_observed(
        &self,
        kind: &EventKind,
        key: Option<String>,
        fence: Option<&Lease>,
    ) -> Result<()> {
        let entries = self.outbox_entries(&[(kind, key)]).await?;
        if !entries.is_empty() {
            self.store.append_outbox(&entries, fence).await?;
        }
        Ok(())
    }

    /// [`append_observed`](Self::append_observed), then emits the event
    /// to the sinks.
    pub(crate) async fn record_observed(
        &self,
        kind: EventKind,
        key: Option<String>,
        fence: Option<&Lease>,
    ) -> Result<()> {
        self.append_observed(&kind, key, fence).await?;
        self.emit(kind);
        Ok(())
    }

    /// A compare-and-set of a worker record (on its dispatched count too,
    /// with `dispatched`) carrying the outbox entries of `events`, written
    /// in the same atomic step. Without entries to write it is the plain
    /// [`Registry`](crate::store::Registry) write, with no step added.
    pub(crate) async fn put_worker_alerting(
        &self,
        record: &WorkerRecord,
        expected: Option<u64>,
        dispatched: Option<u32>,
        events: &[&EventKind],
    ) -> Result<CasOutcome> {
        let events: Vec<_> = events.iter().map(|k| (*k, None)).collect();
        let entries = self.outbox_entries(&events).await?;
        match (entries.is_empty(), expected, dispatched) {
            (true, Some(version), Some(n)) => {
                self.store
                    .put_worker_if_dispatched(record, version, n)
                    .await
            }
            (true, _, _) => self.store.put_worker(record, expected).await,
            (false, _, _) => {
                self.store
                    .put_worker_with_outbox(record, expected, dispatched, &entries)
                    .await
            }
        }
    }

    /// A compare-and-set of a worker record carrying the entries of
    /// `events`, with the release of the `lost` dispatches, each carrying
    /// its own event's entries, if it has one, under a key naming the
    /// dispatch and, when
    /// its flag is set (a booked exam's student), opening its
    /// `workerRestarted` interruption (closed into the ledger's entry by
    /// the session's next placement), all in one atomic step
    /// ([`Outbox::put_worker_releasing_lost`](crate::outbox::Outbox::put_worker_releasing_lost)).
    /// The endpoints are read once, and only when there is an event for
    /// webhooks.
    pub(crate) async fn put_worker_releasing_lost(
        &self,
        record: &WorkerRecord,
        expected: u64,
        events: &[&EventKind],
        lost: &[(&Dispatch, Option<EventKind>, bool)],
    ) -> Result<LostRelease> {
        let webhook = |k: &EventKind| alerts::webhook_type(k).is_some();
        let alerting = events.iter().any(|k| webhook(k))
            || lost.iter().any(|(_, k, _)| k.as_ref().is_some_and(webhook));
        let endpoints = if alerting {
            self.store.webhooks().await?
        } else {
            Vec::new()
        };
        let record_events: Vec<_> = events.iter().map(|k| (*k, None)).collect();
        let now = self.clock.now();
        let entries = self.entries_for(&endpoints, &record_events);
        let lost: Vec<LostDispatch> = lost
            .iter()
            .map(|(d, kind, opens)| LostDispatch {
                key: d.key.clone(),
                id: d.id,
                entries: kind.as_ref().map_or_else(Vec::new, |kind| {
                    self.entries_for(&endpoints, &[(kind, alerts::observed_key(kind, d.id))])
                }),
                interruption: opens
                    .then(|| OpenInterruption::restarted(d, record.boot_seen_at, now)),
            })
            .collect();
        self.store
            .put_worker_releasing_lost(record, expected, &entries, &lost)
            .await
    }

    /// The `session.migrated` entries of a session re-dispatched from
    /// `from` to the reservation `to`, under a key naming the new dispatch.
    /// Only a re-dispatch calls this (it reads the endpoints); an ordinary
    /// placement has no entries and confirms with no step added.
    pub(crate) async fn migrated_entries(
        &self,
        from: &WorkerId,
        to: &Dispatch,
    ) -> Result<Vec<OutboxEntry>> {
        let kind = migrated_kind(&to.key, from, to);
        let key = alerts::observed_key(&kind, to.id);
        self.outbox_entries(&[(&kind, key)]).await
    }

    /// Confirms the reservation `reserved` with the worker's answer,
    /// writing `entries` and the ledger's `disruptions` in the same atomic
    /// step
    /// ([`Outbox::confirm_with_outbox`](crate::outbox::Outbox::confirm_with_outbox));
    /// without either it is the plain
    /// [`DispatchStore::confirm`](crate::store::DispatchStore::confirm).
    /// Either gives `permit` back in its step.
    pub(crate) async fn confirm_alerting(
        &self,
        reserved: &Dispatch,
        session: serde_json::Value,
        permit: Option<&PermitReturn>,
        entries: &[OutboxEntry],
        disruptions: &[Disruption],
    ) -> Result<Option<Dispatch>> {
        let (key, id, now, ttl) = (
            &reserved.key,
            reserved.id,
            self.clock.now(),
            self.config.sticky_ttl,
        );
        if entries.is_empty() && disruptions.is_empty() {
            return self
                .store
                .confirm(key, id, Some(session), now, ttl, permit)
                .await;
        }
        self.store
            .confirm_with_outbox(
                key,
                id,
                Some(session),
                now,
                ttl,
                permit,
                entries,
                disruptions,
            )
            .await
    }

    /// Writes the `entries` of a reservation that its worker's heartbeat
    /// confirmed before the allocator could (that confirmation carried
    /// none), under the same keys, so they are written once. The session
    /// is placed whatever happens here: a store that fails now is logged.
    pub(crate) async fn append_confirmed_elsewhere(
        &self,
        entries: &[OutboxEntry],
        disruptions: &[Disruption],
    ) {
        if !disruptions.is_empty()
            && let Err(e) = self.store.append_disruptions(disruptions).await
        {
            tracing::warn!(error = %e, "could not write the session's disruptions to the ledger");
        }
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.store.append_outbox(entries, None).await {
            tracing::warn!(error = %e, "could not write session.migrated to the outbox");
        }
    }

    /// Emits `session.migrated` to the sinks (its outbox entries were
    /// written with the confirmation).
    pub(crate) fn migrated(&self, session: &SessionKey, from: &WorkerId, active: &Dispatch) {
        self.emit(migrated_kind(session, from, active));
    }
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn migrated_kind(session: &SessionKey, from: &WorkerId, to: &Dispatch) -> EventKind {
    EventKind::SessionMigrated {
        session: session.clone(),
        from: from.clone(),
        to: to.worker.clone(),
    }
}
