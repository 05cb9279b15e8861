//! A restarted worker's lost sessions on Redis: `lua/release_lost.lua`
//! writes the record and removes the lost dispatches, with their counters,
//! alerts and open interruptions, in one script
//! ([`Outbox::put_worker_releasing_lost`](vdi_cluster_core::outbox::Outbox::put_worker_releasing_lost)).

use vdi_cluster_core::outbox::{LostDispatch, LostRelease, OutboxEntry};
use vdi_cluster_core::{Result, WorkerRecord};

use crate::error::BackendError;
use crate::keys::EncodedExam;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

impl RedisStore {
    /// `release_lost.lua` on version `expected`.
    pub(crate) async fn release_lost(
        &self,
        record: &WorkerRecord,
        expected: u64,
        entries: &[OutboxEntry],
        lost: &[LostDispatch],
    ) -> Result<LostRelease> {
        let mut invocation = SCRIPTS.release_lost.prepare_invoke();
        self.worker_write(&mut invocation, record, Some(expected))?;
        invocation.key(self.keys.worker_index());
        self.outbox_keys(&mut invocation);
        invocation.arg(lost.len());
        for l in lost {
            let exam = EncodedExam::of(&l.key.exam_id);
            invocation
                .key(self.keys.dispatch(&l.key))
                .key(self.keys.exam_sessions(&exam))
                .key(self.keys.affinity(&exam))
                .key(self.keys.ledger_open(&l.key))
                .arg(l.id.to_string());
        }
        for l in lost {
            match &l.interruption {
                Some(open) => invocation.arg(open.kind.name()).arg(self.open_json(open)?),
                None => invocation.arg("").arg(""),
            };
        }
        self.outbox_entries(&mut invocation, entries)?;
        for l in lost {
            self.outbox_entries(&mut invocation, &l.entries)?;
        }
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let unexpected =
            || BackendError::unexpected("release_lost", reply.first().map(String::as_str));
        match reply.split_first() {
            Some((status, [v, removed @ ..])) if status == "written" => {
                let mut released = Vec::with_capacity(removed.len());
                for position in removed {
                    let l = position
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| lost.get(i.checked_sub(1)?))
                        .ok_or_else(unexpected)?;
                    released.push(l.key.clone());
                }
                Ok(LostRelease::Written {
                    version: self.parse_version(&record.id, v)?,
                    released,
                })
            }
            Some((status, [v])) if status == "conflict" => Ok(LostRelease::Conflict {
                current: if v.is_empty() {
                    None
                } else {
                    Some(self.parse_version(&record.id, v)?)
                },
            }),
            _ => Err(unexpected().into()),
        }
    }
}
