//! [`DispatchStore`] on `vdi.dispatches`, `vdi.sticky` and `vdi.affinity`.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use vdi_cluster_core::pacing::PermitReturn;
use vdi_cluster_core::store::{
    Adoption, Counter, DispatchPage, DispatchStore, Drift, ExamPlacement, Lease, RecountReport,
    Reservation, ReserveRequest,
};
use vdi_cluster_core::{
    Dispatch, DispatchId, DispatchState, Error, ExamId, Result, SessionKey, Timestamp, WorkerId,
};

use crate::error::{PgError, is_serialization_failure};
use crate::{PgStore, millis, row_limit, sql, to_u32};

fn record(row: &PgRow) -> Result<Dispatch, PgError> {
    let Json(dispatch) = row.try_get("record")?;
    Ok(dispatch)
}

fn worker_id(what: &'static str, text: String) -> Result<WorkerId, PgError> {
    WorkerId::parse("worker", text).map_err(|source| PgError::Corrupt { what, source })
}

/// The scan cursor: the last session key of a page, as JSON (the same
/// encoding as the in-memory backend's).
fn encode_cursor(key: &SessionKey) -> String {
    serde_json::to_string(key).unwrap_or_default()
}

fn decode_cursor(cursor: &str) -> Result<SessionKey> {
    serde_json::from_str(cursor).map_err(|e| Error::invalid("cursor", e))
}

/// A start permit given back by a confirmation or an undo, as the
/// statements bind it: the worker (`None`: no permit), the permit's id
/// (the dispatch's), the sample's milliseconds and starts in flight, and
/// the samples kept.
#[derive(Debug, Default)]
pub(crate) struct PermitArgs {
    pub(crate) worker: Option<String>,
    pub(crate) id: String,
    pub(crate) millis: Option<i32>,
    pub(crate) in_flight: Option<i32>,
    pub(crate) keep: i32,
}

impl PermitArgs {
    pub(crate) fn new(id: DispatchId, given: Option<&PermitReturn>) -> Self {
        let int = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let Some(given) = given else {
            return Self::default();
        };
        Self {
            worker: Some(given.worker.as_str().to_owned()),
            id: id.to_string(),
            millis: given.sample.map(|s| int(s.millis)),
            in_flight: given.sample.map(|s| int(s.in_flight)),
            keep: int(given.keep),
        }
    }
}

/// The arguments of `confirm.sql`, checked once; [`run`](Self::run) on
/// the pool or in the transaction of the confirmation's outbox entries.
pub(crate) struct ConfirmArgs {
    pub(crate) key: SessionKey,
    pub(crate) id: DispatchId,
    pub(crate) session: Option<serde_json::Value>,
    pub(crate) now: i64,
    pub(crate) sticky_until: i64,
    pub(crate) permit: PermitArgs,
}

impl ConfirmArgs {
    pub(crate) fn new(
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
    ) -> Result<Self> {
        Ok(Self {
            key: key.clone(),
            id,
            session,
            now: millis("activatedAt", now)?,
            // An expiry beyond what PostgreSQL's bigint holds never comes.
            sticky_until: i64::try_from(now.plus(sticky_ttl).as_millis()).unwrap_or(i64::MAX),
            permit: PermitArgs::new(id, permit),
        })
    }

    /// The confirmed dispatch, or `None` if the reservation is gone or not
    /// `id`.
    pub(crate) async fn run<'c, E>(&self, executor: E) -> Result<Option<Dispatch>, PgError>
    where
        E: sqlx::Executor<'c, Database = sqlx::Postgres>,
    {
        let confirmed: Option<Json<Dispatch>> = sqlx::query_scalar(sql::CONFIRM)
            .bind(self.key.exam_id.as_str())
            .bind(self.key.user_id.as_str())
            .bind(self.id.0)
            .bind(self.session.as_ref().map(Json))
            .bind(self.now)
            .bind(self.sticky_until)
            .bind(self.permit.worker.as_deref())
            .bind(&self.permit.id)
            .bind(self.permit.millis)
            .bind(self.permit.in_flight)
            .bind(self.permit.keep)
            .fetch_one(executor)
            .await?;
        Ok(confirmed.map(|Json(d)| d))
    }
}

/// One counter that a recount found wrong, as `recount.sql` and
/// `vdi.repair_worker` report it.
#[derive(Debug, serde::Deserialize)]
struct FoundDrift {
    worker: String,
    exam: Option<String>,
    stored: i64,
    actual: i64,
}

impl FoundDrift {
    fn into_drift(self) -> Result<Drift, PgError> {
        let worker = worker_id("affinity worker", self.worker)?;
        let counter = match self.exam {
            None => Counter::WorkerDispatched { worker },
            Some(exam) => Counter::ExamAffinity {
                exam_id: ExamId::parse("examId", exam).map_err(|source| PgError::Corrupt {
                    what: "affinity exam",
                    source,
                })?,
                worker,
            },
        };
        Ok(Drift {
            counter,
            stored: self.stored,
            actual: self.actual,
        })
    }
}

impl PgStore {
    /// Dispatches in `state` reserved before `reserved_before`, oldest first,
    /// at most `limit`: stuck reservations to reclaim, or orphans awaiting
    /// an operator. Served by the `(state, reserved_at)` index.
    pub async fn dispatches_by_age(
        &self,
        state: DispatchState,
        reserved_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<Dispatch>> {
        let before = millis("reservedBefore", reserved_before)?;
        self.call(async {
            let rows = sqlx::query(sql::DISPATCHES_BY_AGE)
                .bind(state.name())
                .bind(before)
                .bind(row_limit(limit))
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(record).collect()
        })
        .await
    }

    async fn remove(
        &self,
        key: &SessionKey,
        id: Option<DispatchId>,
        only_reserved: bool,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
        permit: Option<&PermitReturn>,
    ) -> Result<Option<Dispatch>> {
        let permit_id = permit.and(id).map(|id| id.to_string());
        let removed: Option<Json<Dispatch>> = self
            .fenced(
                fence,
                |(lease, holder, token)| {
                    sqlx::query(sql::REMOVE_DISPATCH)
                        .bind(key.exam_id.as_str())
                        .bind(key.user_id.as_str())
                        .bind(id.map(|id| id.0))
                        .bind(only_reserved)
                        .bind(lease)
                        .bind(holder)
                        .bind(token)
                        .bind(hold.map(WorkerId::as_str))
                        .bind(permit.map(|p| p.worker.as_str()))
                        .bind(permit_id)
                },
                |row| row.try_get("record"),
            )
            .await?;
        Ok(removed.map(|Json(d)| d))
    }

    async fn repair(&self, worker: &str) -> Result<Vec<Drift>, PgError> {
        let rows = sqlx::query(sql::REPAIR_WORKER)
            .bind(worker)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                FoundDrift {
                    worker: worker.to_owned(),
                    exam: row.try_get("r_exam")?,
                    stored: row.try_get("r_stored")?,
                    actual: row.try_get("r_actual")?,
                }
                .into_drift()
            })
            .collect()
    }
}

#[async_trait]
impl DispatchStore for PgStore {
    async fn reserve(&self, request: &ReserveRequest) -> Result<Reservation> {
        let mut dispatch = request.dispatch.clone();
        dispatch.state = DispatchState::Reserved;
        let reserved_at = millis("reservedAt", dispatch.reserved_at)?;
        let permit = request.permit.as_ref();
        let permit_now = permit.map(|p| millis("now", p.now)).transpose()?;
        let permit_until = permit.map(|p| millis("until", p.until)).transpose()?;
        let answer = self
            .bounded(async {
                let row = sqlx::query(sql::RESERVE)
                    .bind(dispatch.key.exam_id.as_str())
                    .bind(dispatch.key.user_id.as_str())
                    .bind(dispatch.id.0)
                    .bind(dispatch.worker.as_str())
                    .bind(reserved_at)
                    .bind(Json(&dispatch))
                    .bind(request.supersede.map(|id| id.0))
                    .bind(permit.map(|p| i32::try_from(p.limit).unwrap_or(i32::MAX)))
                    .bind(dispatch.id.to_string())
                    .bind(permit_now)
                    .bind(permit_until)
                    .fetch_one(self.pool())
                    .await?;
                let outcome: String = row.try_get("outcome")?;
                match outcome.as_str() {
                    "reserved" => {
                        let superseded: Option<Json<Dispatch>> = row.try_get("superseded")?;
                        let slots_left: i64 = row.try_get("slots_left")?;
                        let permit: Option<i64> = row.try_get("permit")?;
                        Ok(Reservation::Reserved {
                            dispatch: dispatch.clone(),
                            superseded: superseded.map(|Json(d)| d),
                            slots_left: u32::try_from(slots_left.max(0)).unwrap_or(u32::MAX),
                            permit: permit.map(|n| to_u32("permits held", n)).transpose()?,
                        })
                    }
                    "existing" => {
                        let Json(existing) = row.try_get("dispatch")?;
                        Ok(Reservation::Existing(existing))
                    }
                    "full" => Ok(Reservation::Full),
                    "not_accepting" => Ok(Reservation::NotAccepting),
                    "ended" => Ok(Reservation::Ended),
                    _ => Err(PgError::UnknownOutcome {
                        function: "vdi.compare_and_reserve",
                        outcome,
                    }),
                }
            })
            .await;
        match answer {
            Err(e) if is_serialization_failure(&e) => Err(Error::Conflict {
                what: format!("dispatch of {}", request.dispatch.key),
            }),
            other => other.map_err(Error::from),
        }
    }

    async fn adopt(&self, dispatch: &Dispatch, sticky_ttl: Duration) -> Result<Adoption> {
        let mut dispatch = dispatch.clone();
        dispatch.state = DispatchState::Active;
        let reserved_at = millis("reservedAt", dispatch.reserved_at)?;
        let activated_at = dispatch
            .activated_at
            .map(|at| millis("activatedAt", at))
            .transpose()?;
        let since = dispatch.activated_at.unwrap_or(dispatch.reserved_at);
        // An expiry beyond what PostgreSQL's bigint holds never comes.
        let sticky_until = i64::try_from(since.plus(sticky_ttl).as_millis()).unwrap_or(i64::MAX);
        let answer = self
            .bounded(async {
                let row = sqlx::query(sql::ADOPT)
                    .bind(dispatch.key.exam_id.as_str())
                    .bind(dispatch.key.user_id.as_str())
                    .bind(dispatch.id.0)
                    .bind(dispatch.worker.as_str())
                    .bind(reserved_at)
                    .bind(activated_at)
                    .bind(Json(&dispatch))
                    .bind(sticky_until)
                    .fetch_one(self.pool())
                    .await?;
                let outcome: String = row.try_get("outcome")?;
                match outcome.as_str() {
                    "adopted" => Ok(Adoption::Adopted(dispatch.clone())),
                    "existing" => {
                        let Json(existing) = row.try_get("dispatch")?;
                        Ok(Adoption::Existing(existing))
                    }
                    "unknown_worker" => Ok(Adoption::UnknownWorker),
                    _ => Err(PgError::UnknownOutcome {
                        function: "vdi.adopt",
                        outcome,
                    }),
                }
            })
            .await;
        match answer {
            Err(e) if is_serialization_failure(&e) => Err(Error::Conflict {
                what: format!("dispatch of {}", dispatch.key),
            }),
            other => other.map_err(Error::from),
        }
    }

    async fn confirm(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
    ) -> Result<Option<Dispatch>> {
        let args = ConfirmArgs::new(key, id, session, now, sticky_ttl, permit)?;
        self.call(self.confirms.confirm(self.pool(), args)).await
    }

    async fn undo(
        &self,
        key: &SessionKey,
        id: DispatchId,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
        permit: Option<&PermitReturn>,
    ) -> Result<bool> {
        Ok(self
            .remove(key, Some(id), true, fence, hold, permit)
            .await?
            .is_some())
    }

    async fn release(
        &self,
        key: &SessionKey,
        id: Option<DispatchId>,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
    ) -> Result<Option<Dispatch>> {
        self.remove(key, id, false, fence, hold, None).await
    }

    async fn mark_orphaned(
        &self,
        key: &SessionKey,
        id: DispatchId,
        fence: Option<&Lease>,
    ) -> Result<bool> {
        let marked: i64 = self
            .fenced(
                fence,
                |(lease, holder, token)| {
                    sqlx::query(sql::MARK_ORPHANED)
                        .bind(key.exam_id.as_str())
                        .bind(key.user_id.as_str())
                        .bind(id.0)
                        .bind(lease)
                        .bind(holder)
                        .bind(token)
                },
                |row| row.try_get("marked"),
            )
            .await?;
        Ok(marked == 1)
    }

    async fn dispatch(&self, key: &SessionKey) -> Result<Option<Dispatch>> {
        self.call(async {
            let row = sqlx::query(sql::DISPATCH)
                .bind(key.exam_id.as_str())
                .bind(key.user_id.as_str())
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(record).transpose()
        })
        .await
    }

    async fn worker_dispatches(&self, worker: &WorkerId, limit: usize) -> Result<Vec<Dispatch>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.call(async {
            let rows = sqlx::query(sql::WORKER_DISPATCHES)
                .bind(worker.as_str())
                .bind(row_limit(limit))
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(record).collect()
        })
        .await
    }

    async fn scan_dispatches(&self, cursor: Option<&str>, count: usize) -> Result<DispatchPage> {
        let after = cursor.map(decode_cursor).transpose()?;
        let count = count.max(1);
        self.call(async {
            let rows = match &after {
                None => {
                    sqlx::query(sql::SCAN_FIRST)
                        .bind(row_limit(count))
                        .fetch_all(self.pool())
                        .await?
                }
                Some(key) => {
                    sqlx::query(sql::SCAN_AFTER)
                        .bind(key.exam_id.as_str())
                        .bind(key.user_id.as_str())
                        .bind(row_limit(count))
                        .fetch_all(self.pool())
                        .await?
                }
            };
            let dispatches = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
            let next = if dispatches.len() == count {
                dispatches.last().map(|d| encode_cursor(&d.key))
            } else {
                None
            };
            Ok(DispatchPage { dispatches, next })
        })
        .await
    }

    async fn placement(&self, exam: &ExamId, now: Timestamp) -> Result<ExamPlacement> {
        // A `now` beyond bigint is after every stored expiry.
        let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
        self.call(async {
            let rows = sqlx::query(sql::PLACEMENT)
                .bind(exam.as_str())
                .bind(now_ms)
                .fetch_all(self.pool())
                .await?;
            let mut placement = ExamPlacement::default();
            for row in &rows {
                let worker = worker_id("sticky or affinity worker", row.try_get("worker_id")?)?;
                match row.try_get::<Option<i32>, _>("sessions")? {
                    None => placement.sticky = Some(worker),
                    Some(n) => {
                        placement
                            .affinity
                            .insert(worker, to_u32("affinity count", i64::from(n))?);
                    }
                }
            }
            Ok(placement)
        })
        .await
    }

    async fn recount(&self, repair: bool) -> Result<RecountReport> {
        let (checked, found) = self
            .call(async {
                let row = sqlx::query(sql::RECOUNT).fetch_one(self.pool()).await?;
                let checked: i64 = row.try_get("checked")?;
                let Json(found): Json<Vec<FoundDrift>> = row.try_get("drift")?;
                Ok((checked, found))
            })
            .await?;
        let mut report = RecountReport {
            counters_checked: u64::try_from(checked).unwrap_or(0),
            drift: Vec::new(),
        };
        if !repair {
            report.drift = found
                .into_iter()
                .map(FoundDrift::into_drift)
                .collect::<Result<_, _>>()
                .map_err(Error::from)?;
            report.drift.sort_by(|a, b| a.counter.cmp(&b.counter));
            return Ok(report);
        }
        // Repair worker by worker, each under its row lock, and report what
        // was found wrong there (a concurrent repair may have fixed it).
        let mut workers: Vec<String> = found.into_iter().map(|f| f.worker).collect();
        workers.sort();
        workers.dedup();
        for worker in &workers {
            let repaired = self.call(self.repair(worker)).await?;
            report.drift.extend(repaired);
        }
        // Workers' own counts first, then affinity, each in key order (the
        // order of `Counter`, and of the in-memory backend's report).
        report.drift.sort_by(|a, b| a.counter.cmp(&b.counter));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let key = SessionKey::parse("exam:2026:Toán", "sv 001").unwrap();
        assert_eq!(decode_cursor(&encode_cursor(&key)).unwrap(), key);
        let err = decode_cursor("not a cursor").unwrap_err();
        assert!(matches!(err, Error::Invalid(v) if v.field == "cursor"));
    }

    /// `vdi.confirm` and `mark_orphaned.sql` patch these JSON fields of the
    /// stored record: they must be the names serde gives them.
    #[test]
    fn stored_field_names_match_serde() {
        let mut d = Dispatch::reserve(
            SessionKey::parse("e", "u").unwrap(),
            WorkerId::parse("code", "w1").unwrap(),
            Timestamp(1),
            None,
            None,
        );
        d.state = DispatchState::Active;
        d.activated_at = Some(Timestamp(7));
        d.session = Some(serde_json::json!({"rdp": "x"}));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["state"], "active");
        assert_eq!(json["activatedAt"], 7);
        assert_eq!(json["session"]["rdp"], "x");
        for state in [
            DispatchState::Reserved,
            DispatchState::Active,
            DispatchState::Orphaned,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.name());
        }
    }
}
