//! [`WaitingRoom`] on `vdi.queue_entries` under one `vdi.queue_state` row
//! per exam: each step is one call of a function of the
//! `20261202000000_waiting_room` migration that locks the exam's state row
//! first, so one exam's steps are serialised. Which student to promote or
//! abandon is decided in core, never in SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use vdi_cluster_core::store::{Completion, Enqueued, Standing, WaitingRoom};
use vdi_cluster_core::waiting_room::{
    ExamQueue, QueueClaim, QueueEntry, QueuePosition, QueueTotals,
};
use vdi_cluster_core::{ExamId, Result, Timestamp, UserId};

use crate::error::PgError;
use crate::{PgStore, millis, sql, to_u32, to_u64};

fn instant(what: &'static str, ms: Option<i64>) -> Result<Option<Timestamp>, PgError> {
    ms.map(|ms| to_u64(what, ms).map(Timestamp::from_millis))
        .transpose()
}

fn totals(row: &PgRow) -> Result<QueueTotals, PgError> {
    Ok(QueueTotals {
        placed: to_u64("placed", row.try_get("placed")?)?,
        abandoned: to_u64("abandoned", row.try_get("abandoned")?)?,
        first_placed_at: instant("first_placed", row.try_get("first_placed")?)?,
        last_placed_at: instant("last_placed", row.try_get("last_placed")?)?,
    })
}

fn position(row: &PgRow, user: &UserId) -> Result<QueuePosition, PgError> {
    Ok(QueuePosition {
        position: to_u32("position", row.try_get("pos")?)?,
        entry: QueueEntry {
            user: user.clone(),
            enqueued_at: Timestamp::from_millis(to_u64(
                "enqueued_at",
                row.try_get("enqueued_at")?,
            )?),
            last_seen: Timestamp::from_millis(to_u64("last_seen", row.try_get("last_seen")?)?),
        },
        totals: totals(row)?,
    })
}

fn user(what: &'static str, id: String) -> Result<UserId, PgError> {
    UserId::parse("userId", id).map_err(|source| PgError::Corrupt { what, source })
}

impl PgStore {
    /// Runs a `SELECT vdi.queue_…(…) AS done` step.
    async fn queue_step(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<bool> {
        self.call(async {
            let row = query.fetch_one(self.pool()).await?;
            Ok(row.try_get("done")?)
        })
        .await
    }
}

#[async_trait]
impl WaitingRoom for PgStore {
    async fn enqueue(&self, exam: &ExamId, user: &UserId, now: Timestamp) -> Result<Enqueued> {
        let now = millis("now", now)?;
        self.call(async {
            let row = sqlx::query(sql::WAITING_ROOM_ENQUEUE)
                .bind(exam.as_str())
                .bind(user.as_str())
                .bind(now)
                .fetch_one(self.pool())
                .await?;
            let p = position(&row, user)?;
            Ok(if row.try_get("joined")? {
                Enqueued::Joined(p)
            } else {
                Enqueued::Already(p)
            })
        })
        .await
    }

    async fn touch_queued(&self, exam: &ExamId, user: &UserId, now: Timestamp) -> Result<Standing> {
        let now = millis("now", now)?;
        self.call(async {
            let row = sqlx::query(sql::WAITING_ROOM_TOUCH)
                .bind(exam.as_str())
                .bind(user.as_str())
                .bind(now)
                .fetch_one(self.pool())
                .await?;
            Ok(if row.try_get("queued")? {
                Standing::Queued(position(&row, user)?)
            } else {
                Standing::NotQueued {
                    waiting: to_u32("waiting", row.try_get("waiting")?)?,
                }
            })
        })
        .await
    }

    async fn exam_queue(&self, exam: &ExamId) -> Result<ExamQueue> {
        self.call(async {
            let row = sqlx::query(sql::WAITING_ROOM_READ)
                .bind(exam.as_str())
                .fetch_one(self.pool())
                .await?;
            let users: Vec<String> = row.try_get("users")?;
            let enqueued: Vec<i64> = row.try_get("enqueued")?;
            let seen: Vec<i64> = row.try_get("seen")?;
            let entries = users
                .into_iter()
                .zip(enqueued)
                .zip(seen)
                .map(|((u, e), s)| {
                    Ok(QueueEntry {
                        user: user("queued user", u)?,
                        enqueued_at: Timestamp::from_millis(to_u64("enqueued_at", e)?),
                        last_seen: Timestamp::from_millis(to_u64("last_seen", s)?),
                    })
                })
                .collect::<Result<Vec<_>, PgError>>()?;
            let claim_user: Option<String> = row.try_get("claim_user")?;
            let claim_token: Option<i64> = row.try_get("claim_token")?;
            let claim_until = instant("claim_until", row.try_get("claim_until")?)?;
            let claim = match (claim_user, claim_token, claim_until) {
                (Some(u), Some(token), Some(until)) => Some(QueueClaim {
                    exam: exam.clone(),
                    user: user("claim user", u)?,
                    token: to_u64("claim token", token)?,
                    until,
                }),
                _ => None,
            };
            Ok(ExamQueue {
                entries,
                claim,
                totals: totals(&row)?,
            })
        })
        .await
    }

    async fn leave_queue(&self, exam: &ExamId, user: &UserId) -> Result<bool> {
        self.queue_step(
            sqlx::query(sql::WAITING_ROOM_LEAVE)
                .bind(exam.as_str())
                .bind(user.as_str()),
        )
        .await
    }

    async fn claim_queue_head(
        &self,
        exam: &ExamId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<QueueClaim>> {
        let (now, until_ms) = (millis("now", now)?, millis("until", until)?);
        self.call(async {
            let Some(row) = sqlx::query(sql::WAITING_ROOM_CLAIM)
                .bind(exam.as_str())
                .bind(now)
                .bind(until_ms)
                .fetch_optional(self.pool())
                .await?
            else {
                return Ok(None);
            };
            Ok(Some(QueueClaim {
                exam: exam.clone(),
                user: user("claim user", row.try_get("user_id")?)?,
                token: to_u64("claim token", row.try_get("token")?)?,
                until,
            }))
        })
        .await
    }

    async fn complete_queue_claim(&self, claim: &QueueClaim, now: Timestamp) -> Result<Completion> {
        let Ok(token) = i64::try_from(claim.token) else {
            return Ok(Completion::Lost);
        };
        let now = millis("now", now)?;
        self.call(async {
            let row = sqlx::query(sql::WAITING_ROOM_COMPLETE)
                .bind(claim.exam.as_str())
                .bind(claim.user.as_str())
                .bind(token)
                .bind(now)
                .fetch_one(self.pool())
                .await?;
            let done: i32 = row.try_get("done")?;
            match done {
                1 => Ok(Completion::Placed),
                2 => Ok(Completion::Left),
                0 => Ok(Completion::Lost),
                other => Err(PgError::UnknownOutcome {
                    function: "queue_complete",
                    outcome: other.to_string(),
                }),
            }
        })
        .await
    }

    async fn release_queue_claim(&self, claim: &QueueClaim) -> Result<()> {
        let Ok(token) = i64::try_from(claim.token) else {
            return Ok(());
        };
        self.queue_step(
            sqlx::query(sql::WAITING_ROOM_RELEASE)
                .bind(claim.exam.as_str())
                .bind(claim.user.as_str())
                .bind(token),
        )
        .await
        .map(drop)
    }

    async fn abandon_queued(
        &self,
        exam: &ExamId,
        user: &UserId,
        seen_before: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        self.queue_step(
            sqlx::query(sql::WAITING_ROOM_ABANDON)
                .bind(exam.as_str())
                .bind(user.as_str())
                .bind(millis("seenBefore", seen_before)?)
                .bind(millis("now", now)?),
        )
        .await
    }

    async fn queued_exams(&self) -> Result<Vec<ExamId>> {
        self.call(async {
            let rows = sqlx::query(sql::QUEUED_EXAMS)
                .fetch_all(self.pool())
                .await?;
            rows.iter()
                .map(|r| {
                    ExamId::parse("examId", r.try_get::<String, _>("exam_id")?).map_err(|source| {
                        PgError::Corrupt {
                            what: "queued exam",
                            source,
                        }
                    })
                })
                .collect()
        })
        .await
    }
}
