//! A restarted worker's lost sessions on PostgreSQL:
//! `vdi.put_worker_releasing_lost` (migration
//! `20261206000000_release_lost.sql`) writes the record and removes the
//! lost dispatches, with their counters and alerts, in one statement, and
//! the released sessions' open interruptions are written in its
//! transaction
//! ([`Outbox::put_worker_releasing_lost`](vdi_cluster_core::outbox::Outbox::put_worker_releasing_lost)).

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::types::Json;
use vdi_cluster_core::outbox::{LostDispatch, LostRelease, OutboxEntry};
use vdi_cluster_core::{Result, SessionKey, WorkerRecord};

use crate::error::PgError;
use crate::outbox::{AppendRow, append_rows, rows};
use crate::{PgStore, ledger, sql, to_u64};

/// One lost dispatch as the function reads it.
#[derive(Serialize)]
struct LostRow<'a> {
    exam: &'a str,
    user: &'a str,
    id: String,
    entries: Vec<AppendRow<'a>>,
}

/// One released session as the function answers it.
#[derive(Deserialize)]
struct Released {
    exam: String,
    user: String,
}

impl PgStore {
    /// `vdi.put_worker_releasing_lost` on version `expected`.
    pub(crate) async fn release_lost(
        &self,
        record: &WorkerRecord,
        expected: u64,
        entries: &[OutboxEntry],
        lost: &[LostDispatch],
    ) -> Result<LostRelease> {
        let Ok(version) = i64::try_from(expected) else {
            // No stored version is that large.
            return Ok(LostRelease::Conflict {
                current: self.call(self.current_version(&record.id)).await?,
            });
        };
        let lost_rows: Vec<LostRow<'_>> = lost
            .iter()
            .map(|l| LostRow {
                exam: l.key.exam_id.as_str(),
                user: l.key.user_id.as_str(),
                id: l.id.0.to_string(),
                entries: append_rows(&l.entries),
            })
            .collect();
        self.call(async {
            let mut tx = self.pool().begin().await?;
            let row = sqlx::query(sql::PUT_WORKER_RELEASING_LOST)
                .bind(record.id.as_str())
                .bind(Json(record))
                .bind(i32::try_from(record.max_sessions()).unwrap_or(i32::MAX))
                .bind(i64::from(record.unrecorded))
                .bind(record.accepting())
                .bind(i64::from(record.reported_active))
                .bind(version)
                .bind(rows(entries))
                .bind(Json(&lost_rows))
                .fetch_one(&mut *tx)
                .await?;
            let outcome: String = row.try_get("outcome")?;
            let version: Option<i64> = row.try_get("version")?;
            let version = version.map(|v| to_u64("worker version", v)).transpose()?;
            match (outcome.as_str(), version) {
                ("written", Some(version)) => {
                    let Json(released): Json<Vec<Released>> = row.try_get("released")?;
                    let released = released
                        .into_iter()
                        .map(|r| {
                            SessionKey::parse(r.exam, r.user).map_err(|source| PgError::Corrupt {
                                what: "released session",
                                source,
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    // Each release opens its interruption, in the same
                    // transaction.
                    for l in lost.iter().filter(|l| released.contains(&l.key)) {
                        if let Some(o) = &l.interruption {
                            ledger::open(&mut *tx, o).await?;
                        }
                    }
                    tx.commit().await?;
                    Ok(LostRelease::Written {
                        version,
                        released: in_given_order(lost, released),
                    })
                }
                ("conflict", current) => Ok(LostRelease::Conflict { current }),
                _ => Err(PgError::UnknownOutcome {
                    function: "vdi.put_worker_releasing_lost",
                    outcome,
                }),
            }
        })
        .await
    }
}

/// The `released` sessions in the order `lost` gave them.
fn in_given_order(lost: &[LostDispatch], released: Vec<SessionKey>) -> Vec<SessionKey> {
    lost.iter()
        .filter(|l| released.contains(&l.key))
        .map(|l| l.key.clone())
        .collect()
}
