//! [`DisruptionLedger`]: each session's entries in a hash
//! (`{p}:ledger:exam:{e}:user:{u}`, entry id → JSON) and each exam's
//! students with entries in a set; written by `ledger_append` in the
//! script of their cause (`confirm.lua`) or on their own
//! (`lua/ledger_append.lua`). A session's open interruptions are a hash
//! (`{p}:ledger:open:exam:{e}:user:{u}`, kind → JSON): opened with
//! `HSETNX` (by `release_lost.lua` in the step of the release), closed by
//! `lua/ledger_close.lua`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use redis::ScriptInvocation;
use vdi_cluster_core::ledger::{Disruption, DisruptionLedger, OpenInterruption};
use vdi_cluster_core::{ExamId, Result, SessionKey, UserId};

use crate::error::{BackendError, BackendResult};
use crate::keys::EncodedExam;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

/// `SCAN` page size when looking for the exams with a ledger.
const SCAN_COUNT: usize = 1000;

impl RedisStore {
    /// The session's two ledger keys and `entries` (all of `key`'s
    /// session) as `ledger_append` reads them: the student, the count,
    /// then id and JSON per entry.
    pub(crate) fn ledger_args(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        key: &SessionKey,
        entries: &[Disruption],
    ) -> BackendResult<()> {
        let ledger = self.keys.ledger(key);
        invocation
            .key(&ledger)
            .key(self.keys.ledger_users(&key.exam_id))
            .arg(key.user_id.as_str())
            .arg(entries.len());
        for e in entries {
            let json = serde_json::to_string(e)
                .map_err(|err| BackendError::malformed(ledger.clone(), "ledger entry", err))?;
            invocation.arg(&e.id).arg(json);
        }
        Ok(())
    }

    /// An open interruption as stored (JSON).
    pub(crate) fn open_json(&self, open: &OpenInterruption) -> BackendResult<String> {
        serde_json::to_string(open).map_err(|err| {
            BackendError::malformed(self.keys.ledger_open(&open.key), "open interruption", err)
        })
    }

    fn parse_open(&self, key: &str, value: &str) -> BackendResult<OpenInterruption> {
        serde_json::from_str(value)
            .map_err(|e| BackendError::malformed(key.to_owned(), "open interruption", e))
    }

    fn parse_ledger(&self, key: &str, values: Vec<String>) -> BackendResult<Vec<Disruption>> {
        let mut entries = values
            .iter()
            .map(|v| {
                serde_json::from_str(v)
                    .map_err(|e| BackendError::malformed(key.to_owned(), "ledger entry", e))
            })
            .collect::<BackendResult<Vec<Disruption>>>()?;
        entries.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(entries)
    }
}

#[async_trait]
impl DisruptionLedger for RedisStore {
    async fn append_disruptions(&self, entries: &[Disruption]) -> Result<u32> {
        let mut by_session: BTreeMap<&SessionKey, Vec<Disruption>> = BTreeMap::new();
        for e in entries {
            by_session.entry(&e.key).or_default().push(e.clone());
        }
        let mut written = 0;
        for (key, entries) in by_session {
            let mut invocation = SCRIPTS.ledger_append.prepare_invoke();
            self.ledger_args(&mut invocation, key, &entries)?;
            let n: u32 = invocation
                .invoke_async(&mut self.conn())
                .await
                .map_err(BackendError::from)?;
            written += n;
        }
        Ok(written)
    }

    async fn disruptions(&self, key: &SessionKey) -> Result<Vec<Disruption>> {
        let ledger = self.keys.ledger(key);
        let values: Vec<String> = redis::cmd("HVALS")
            .arg(&ledger)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(self.parse_ledger(&ledger, values)?)
    }

    async fn exam_disruptions(&self, exam: &ExamId) -> Result<Vec<Disruption>> {
        let users: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.ledger_users(exam))
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::with_capacity(users.len());
        for user in users {
            let user = UserId::parse("userId", user).map_err(|e| {
                BackendError::malformed(self.keys.ledger_users(exam), "ledger student", e)
            })?;
            keys.push(self.keys.ledger(&SessionKey::new(exam.clone(), user)));
        }
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.cmd("HVALS").arg(k);
        }
        let values: Vec<Vec<String>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut out = Vec::new();
        for (k, v) in keys.iter().zip(values) {
            out.extend(self.parse_ledger(k, v)?);
        }
        Ok(out)
    }

    async fn ledger_exams(&self) -> Result<Vec<ExamId>> {
        let mut exams = Vec::new();
        let mut cursor = String::from("0");
        loop {
            let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
                .arg(&cursor)
                .arg("MATCH")
                .arg(self.keys.ledger_users_pattern())
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut self.conn())
                .await
                .map_err(BackendError::from)?;
            exams.extend(
                keys.iter()
                    .filter_map(|k| self.keys.exam_of_ledger_users(k))
                    .filter_map(|e: EncodedExam| e.decode()),
            );
            if next == "0" {
                break;
            }
            cursor = next;
        }
        exams.sort();
        exams.dedup();
        Ok(exams)
    }

    async fn open_interruption(&self, open: &OpenInterruption) -> Result<OpenInterruption> {
        let key = self.keys.ledger_open(&open.key);
        let (stored,): (String,) = redis::pipe()
            .atomic()
            .cmd("HSETNX")
            .arg(&key)
            .arg(open.kind.name())
            .arg(self.open_json(open)?)
            .ignore()
            .cmd("HGET")
            .arg(&key)
            .arg(open.kind.name())
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(self.parse_open(&key, &stored)?)
    }

    async fn open_interruptions(&self, key: &SessionKey) -> Result<Vec<OpenInterruption>> {
        let hash = self.keys.ledger_open(key);
        let values: Vec<String> = redis::cmd("HVALS")
            .arg(&hash)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(values
            .iter()
            .map(|v| self.parse_open(&hash, v))
            .collect::<BackendResult<_>>()?)
    }

    async fn close_interruption(&self, open: &OpenInterruption) -> Result<bool> {
        let closed: u32 = SCRIPTS
            .ledger_close
            .key(self.keys.ledger_open(&open.key))
            .arg(open.kind.name())
            .arg(self.open_json(open)?)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(closed == 1)
    }
}
