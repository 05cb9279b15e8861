//! How records are laid out in Redis: dispatch records as hashes of named
//! fields, worker records as JSON next to the fields scripts compare.

use std::collections::HashMap;

use vdi_cluster_core::store::CasOutcome;
use vdi_cluster_core::{
    Dispatch, DispatchId, DispatchState, ExamId, SessionKey, Timestamp, UserId, WorkerId,
    WorkerRecord,
};

use crate::error::{BackendError, BackendResult, MissingField, UnknownValue};

/// Fields of a dispatch record hash.
pub(crate) mod field {
    /// Exam id, verbatim.
    pub(crate) const EXAM: &str = "exam";
    /// User id, verbatim.
    pub(crate) const USER: &str = "user";
    /// Dispatch id (UUID).
    pub(crate) const ID: &str = "id";
    /// Worker code.
    pub(crate) const WORKER: &str = "worker";
    /// `reserved`, `active` or `orphaned`.
    pub(crate) const STATE: &str = "state";
    /// Milliseconds.
    pub(crate) const RESERVED_AT: &str = "reservedAt";
    /// Milliseconds, once active.
    pub(crate) const ACTIVATED_AT: &str = "activatedAt";
    /// The worker's boot id at reservation.
    pub(crate) const BOOT_ID: &str = "bootId";
    /// The worker's heartbeat sequence at reservation.
    pub(crate) const SEQ: &str = "seq";
    /// The worker's answer, JSON.
    pub(crate) const SESSION: &str = "session";
    /// `1` for a dispatch adopted from its worker's report; absent
    /// otherwise (a placement writes a whole new hash without it).
    pub(crate) const ADOPTED: &str = "adopted";
}

/// The hash fields of `d` (absent options are left out), as a flat
/// `field, value, …` list.
pub(crate) fn dispatch_fields(d: &Dispatch) -> Vec<String> {
    let mut out = vec![
        field::EXAM.to_owned(),
        d.key.exam_id.as_str().to_owned(),
        field::USER.to_owned(),
        d.key.user_id.as_str().to_owned(),
        field::ID.to_owned(),
        d.id.to_string(),
        field::WORKER.to_owned(),
        d.worker.as_str().to_owned(),
        field::STATE.to_owned(),
        d.state.name().to_owned(),
        field::RESERVED_AT.to_owned(),
        d.reserved_at.as_millis().to_string(),
    ];
    if let Some(at) = d.activated_at {
        out.extend([field::ACTIVATED_AT.to_owned(), at.as_millis().to_string()]);
    }
    if let Some(boot) = &d.worker_boot_id {
        out.extend([field::BOOT_ID.to_owned(), boot.clone()]);
    }
    if let Some(seq) = d.worker_seq {
        out.extend([field::SEQ.to_owned(), seq.to_string()]);
    }
    if let Some(session) = &d.session {
        out.extend([field::SESSION.to_owned(), session.to_string()]);
    }
    if d.adopted {
        out.extend([field::ADOPTED.to_owned(), "1".to_owned()]);
    }
    out
}

/// Pairs up a flat `field, value, …` reply.
pub(crate) fn pairs(flat: impl IntoIterator<Item = String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

fn state_of(text: &str) -> Option<DispatchState> {
    [
        DispatchState::Reserved,
        DispatchState::Active,
        DispatchState::Orphaned,
    ]
    .into_iter()
    .find(|s| s.name() == text)
}

/// Decodes the record stored at `key`; `None` for an empty hash (no
/// record).
pub(crate) fn dispatch_from_fields(
    key: &str,
    mut fields: HashMap<String, String>,
) -> BackendResult<Option<Dispatch>> {
    if fields.is_empty() {
        return Ok(None);
    }
    let malformed = |source: Box<dyn std::error::Error + Send + Sync>| BackendError::Malformed {
        key: key.to_owned(),
        what: "dispatch record",
        source,
    };
    let mut take = |name: &'static str| {
        fields
            .remove(name)
            .ok_or_else(|| malformed(Box::new(MissingField(name))))
    };
    let exam = take(field::EXAM)?;
    let user = take(field::USER)?;
    let id = take(field::ID)?;
    let worker = take(field::WORKER)?;
    let state = take(field::STATE)?;
    let reserved_at = take(field::RESERVED_AT)?;
    let opt = |fields: &mut HashMap<String, String>, name| fields.remove(name);
    let activated_at = opt(&mut fields, field::ACTIVATED_AT);
    let boot = opt(&mut fields, field::BOOT_ID);
    let seq = opt(&mut fields, field::SEQ);
    let session = opt(&mut fields, field::SESSION);
    let adopted = match opt(&mut fields, field::ADOPTED).as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => {
            return Err(malformed(Box::new(UnknownValue {
                field: field::ADOPTED,
            })));
        }
    };

    let millis = |text: &str| text.parse::<u64>().map(Timestamp::from_millis);
    Ok(Some(Dispatch {
        key: SessionKey::new(
            ExamId::parse("examId", exam).map_err(|e| malformed(Box::new(e)))?,
            UserId::parse("userId", user).map_err(|e| malformed(Box::new(e)))?,
        ),
        id: DispatchId(id.parse().map_err(|e| malformed(Box::new(e)))?),
        worker: WorkerId::parse("worker", worker).map_err(|e| malformed(Box::new(e)))?,
        state: state_of(&state).ok_or_else(|| {
            malformed(Box::new(UnknownValue {
                field: field::STATE,
            }))
        })?,
        reserved_at: millis(&reserved_at).map_err(|e| malformed(Box::new(e)))?,
        activated_at: activated_at
            .map(|t| millis(&t))
            .transpose()
            .map_err(|e| malformed(Box::new(e)))?,
        worker_boot_id: boot,
        worker_seq: seq
            .map(|s| s.parse::<u64>())
            .transpose()
            .map_err(|e| malformed(Box::new(e)))?,
        session: session
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| malformed(Box::new(e)))?,
        adopted,
    }))
}

/// Fields of a worker hash.
pub(crate) mod worker_field {
    /// The record, JSON.
    pub(crate) const RECORD: &str = "record";
    /// Version for compare-and-set.
    pub(crate) const VERSION: &str = "version";
    /// `WorkerRecord::unrecorded`, the count reserve.lua reads and a held
    /// removal increments.
    pub(crate) const UNRECORDED: &str = "unrecorded";
}

/// The record as stored.
pub(crate) fn worker_json(key: &str, record: &WorkerRecord) -> BackendResult<String> {
    serde_json::to_string(record).map_err(|e| BackendError::malformed(key, "worker record", e))
}

/// Decodes a worker hash's `record` and `version`.
pub(crate) fn worker_from_fields(
    key: &str,
    record: &str,
    version: &str,
) -> BackendResult<(WorkerRecord, u64)> {
    let record = serde_json::from_str(record)
        .map_err(|e| BackendError::malformed(key, "worker record", e))?;
    let version = version
        .parse()
        .map_err(|e| BackendError::malformed(key, "worker version", e))?;
    Ok((record, version))
}

/// A count stored as text; absent means zero, negative is clamped to zero.
pub(crate) fn count(key: &str, text: Option<&str>) -> BackendResult<u32> {
    match text {
        None => Ok(0),
        Some(t) => t
            .parse::<i64>()
            .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
            .map_err(|e| BackendError::malformed(key, "counter", e)),
    }
}

/// A compare-and-set's expected version as a script argument: empty for
/// "only if absent".
pub(crate) fn expected_arg(expected: Option<u64>) -> String {
    expected.map(|v| v.to_string()).unwrap_or_default()
}

/// A compare-and-set script's answer `{written, version}` as core's
/// outcome: the new version when written, else the stored one (none if
/// the script answered a negative version: nothing stored).
pub(crate) fn cas_outcome(written: i64, version: i64) -> CasOutcome {
    if written == 1 {
        CasOutcome::Written {
            version: u64::try_from(version).unwrap_or_default(),
        }
    } else {
        CasOutcome::Conflict {
            current: u64::try_from(version).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Dispatch {
        let mut d = Dispatch::reserve(
            SessionKey::parse("Thi cuối kỳ: Toán", "sv 001*").unwrap(),
            WorkerId::parse("code", "w-1").unwrap(),
            Timestamp(1_700_000_000_123),
            Some("boot-a".into()),
            Some(u64::MAX),
        );
        d.state = DispatchState::Active;
        d.activated_at = Some(Timestamp(1_700_000_000_456));
        d.session = Some(serde_json::json!({"url": "rdp://x", "n": 1.5, "nested": [1, null]}));
        d
    }

    #[test]
    fn dispatch_round_trips() {
        let d = sample();
        let back = dispatch_from_fields("k", pairs(dispatch_fields(&d)))
            .unwrap()
            .unwrap();
        assert_eq!(back, d);

        let bare = Dispatch::reserve(
            SessionKey::parse("e", "u").unwrap(),
            WorkerId::parse("code", "w").unwrap(),
            Timestamp(1),
            None,
            None,
        );
        let back = dispatch_from_fields("k", pairs(dispatch_fields(&bare)))
            .unwrap()
            .unwrap();
        assert_eq!(back, bare);

        let adopted = Dispatch {
            adopted: true,
            ..sample()
        };
        let fields = pairs(dispatch_fields(&adopted));
        assert_eq!(fields.get("adopted").map(String::as_str), Some("1"));
        let back = dispatch_from_fields("k", fields).unwrap().unwrap();
        assert_eq!(back, adopted);
        assert!(!pairs(dispatch_fields(&sample())).contains_key("adopted"));
    }

    #[test]
    fn empty_hash_is_no_record() {
        assert!(dispatch_from_fields("k", HashMap::new()).unwrap().is_none());
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let mut fields = pairs(dispatch_fields(&sample()));
        fields.insert("state".into(), "weird".into());
        assert!(dispatch_from_fields("k", fields).is_err());
        let mut fields = pairs(dispatch_fields(&sample()));
        fields.remove("id");
        assert!(dispatch_from_fields("k", fields).is_err());
        let mut fields = pairs(dispatch_fields(&sample()));
        fields.insert("session".into(), "{not json".into());
        assert!(dispatch_from_fields("k", fields).is_err());
        let mut fields = pairs(dispatch_fields(&sample()));
        fields.insert("adopted".into(), "yes".into());
        assert!(dispatch_from_fields("k", fields).is_err());
    }

    #[test]
    fn counts_clamp() {
        assert_eq!(count("k", None).unwrap(), 0);
        assert_eq!(count("k", Some("-3")).unwrap(), 0);
        assert_eq!(count("k", Some("7")).unwrap(), 7);
        assert!(count("k", Some("x")).is_err());
    }
}
