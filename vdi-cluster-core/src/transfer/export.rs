//! [`export`]: a store's contents, read through the storage traits.

use super::StoreContents;
use crate::dispatch::DispatchState;
use crate::error::Result;
use crate::outbox::DeliveryState;
use crate::store::Store;

/// Dispatches read per page of the scan.
const PAGE: usize = 500;
/// "All of them" for the reads that take a limit: more than any store
/// keeps (the audit trail and each endpoint's deliveries are bounded far
/// below it).
const ALL: usize = u32::MAX as usize;

/// Reads everything of `store` that must survive a move (see the
/// [module's table](super)), each part in its stable order. Reservations
/// in flight are left out; so is every delivery already delivered or
/// given up, every scheduled action that finished, and the rehearsal of
/// an exam the calendar no longer holds.
pub async fn export(store: &dyn Store) -> Result<StoreContents> {
    let mut contents = StoreContents {
        workers: store
            .workers()
            .await?
            .into_iter()
            .map(|w| w.record)
            .collect(),
        worker_credentials: store
            .worker_credentials()
            .await?
            .into_iter()
            .map(|(worker, snapshot)| (worker, snapshot.credential))
            .collect(),
        join_tokens: store.join_tokens().await?,
        exams: store.exam_calendar().await?.exams,
        webhooks: store.webhooks().await?,
        capacity_requests: store
            .capacity_requests()
            .await?
            .into_iter()
            .map(|r| r.request)
            .collect(),
        scheduled: store
            .open_scheduled(None, ALL)
            .await?
            .into_iter()
            .map(|s| s.action)
            .collect(),
        ..StoreContents::default()
    };
    // A cancelled exam's record that awaits the leader's removal (see
    // `Exams::remove_cancelled_rehearsals`) is not part of the store's
    // state: the dump holds only the rehearsals of the exams it holds.
    contents.rehearsals = store
        .rehearsals()
        .await?
        .into_iter()
        .map(|s| s.rehearsal)
        .filter(|r| contents.exams.iter().any(|e| e.id == r.exam_id))
        .collect();
    for endpoint in &contents.webhooks {
        let deliveries = store.deliveries(&endpoint.id, ALL).await?;
        contents.outbox.extend(
            deliveries
                .into_iter()
                .filter(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::Leased))
                .map(|d| d.entry),
        );
    }
    for exam in store.ledger_exams().await? {
        contents
            .disruptions
            .extend(store.exam_disruptions(&exam).await?);
    }
    let mut audit = store.recent_audit(ALL).await?;
    audit.reverse();
    contents.audit = audit;
    let mut cursor = None;
    loop {
        let page = store.scan_dispatches(cursor.as_deref(), PAGE).await?;
        contents.dispatches.extend(
            page.dispatches
                .into_iter()
                .filter(|d| d.state != DispatchState::Reserved),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    contents.sort();
    Ok(contents)
}
