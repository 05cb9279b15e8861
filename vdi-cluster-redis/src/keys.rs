//! Every Redis key name the backend uses, built in one place.
//!
//! Identifiers are percent-encoded before they become part of a key: every
//! byte outside `A–Z a–z 0–9 . _ ~ -` is written as `%XX` (upper-case hex).
//! The encoding is injective and its output never contains `:` (the key
//! separator), white space, or a glob character (`*`, `?`, `[`, `]`, `\`),
//! so
//!
//! * no identifier can forge another key (exam `a:user:b` with user `c` and
//!   exam `a` with user `b:user:c` get different keys), and
//! * `SCAN … MATCH` patterns built here match exactly the keys they name.
//!
//! The prefix itself is validated ([`validate_prefix`]) to a character set
//! without glob characters, so it can be used verbatim in patterns.

use vdi_cluster_core::{ExamId, SessionKey, ValidationError, WorkerId};

/// Default key prefix (the exam platform's `vdi:` keys).
pub const DEFAULT_PREFIX: &str = "vdi";

/// Longest accepted prefix, in bytes.
pub const MAX_PREFIX_LEN: usize = 64;

/// Checks a key prefix: 1 to [`MAX_PREFIX_LEN`] bytes of ASCII letters,
/// digits, `.`, `_`, `-`, `:`, `{` and `}` (a Redis Cluster hash tag such as
/// `{vdi}` keeps every key of a deployment in one slot).
pub fn validate_prefix(prefix: &str) -> Result<(), ValidationError> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
        return Err(ValidationError::new(
            "prefix",
            format!("must be 1 to {MAX_PREFIX_LEN} characters"),
        ));
    }
    let ok = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'{' | b'}'));
    if !ok {
        return Err(ValidationError::new(
            "prefix",
            "may contain only ASCII letters, digits, '.', '_', '-', ':', '{' and '}'",
        ));
    }
    Ok(())
}

/// Percent-encodes `id` for use as one key segment.
pub(crate) fn encode(id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

/// Whether `segment` could have been produced by [`encode`].
fn is_encoded(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-' | b'%'))
}

/// An exam id, already percent-encoded: what recount recovers from key
/// names without decoding them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EncodedExam(String);

impl EncodedExam {
    /// Encodes `exam`.
    pub(crate) fn of(exam: &ExamId) -> Self {
        Self(encode(exam.as_str()))
    }

    /// The exam id, or `None` if the segment is not a valid encoding of
    /// one (a key written by something else).
    pub(crate) fn decode(&self) -> Option<ExamId> {
        let text = decode(&self.0)?;
        let exam = ExamId::parse("examId", text).ok()?;
        // Only the canonical encoding names this exam.
        (encode(exam.as_str()) == self.0).then_some(exam)
    }

    /// The encoded text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reverses [`encode`]; `None` for text [`encode`] cannot produce.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Key names of one store, under its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Key names under `prefix` (checked with [`validate_prefix`]).
    pub(crate) fn new(prefix: &str) -> Result<Self, ValidationError> {
        validate_prefix(prefix)?;
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{p}:dispatch:exam:{exam}:user:{user}` — hash, the dispatch record.
    pub(crate) fn dispatch(&self, key: &SessionKey) -> String {
        format!(
            "{}:dispatch:exam:{}:user:{}",
            self.prefix,
            encode(key.exam_id.as_str()),
            encode(key.user_id.as_str())
        )
    }

    /// `{p}:ledger:exam:{exam}:user:{user}` — hash, the session's
    /// disruption ledger: entry id → entry (JSON).
    pub(crate) fn ledger(&self, key: &SessionKey) -> String {
        format!(
            "{}:ledger:exam:{}:user:{}",
            self.prefix,
            encode(key.exam_id.as_str()),
            encode(key.user_id.as_str())
        )
    }

    /// `{p}:ledger:exam:{exam}:users` — set, the students of an exam with
    /// ledger entries.
    pub(crate) fn ledger_users(&self, exam: &ExamId) -> String {
        format!(
            "{}:ledger:exam:{}:users",
            self.prefix,
            encode(exam.as_str())
        )
    }

    /// `SCAN` pattern matching exactly the exams' ledger student sets.
    pub(crate) fn ledger_users_pattern(&self) -> String {
        format!("{}:ledger:exam:*:users", self.prefix)
    }

    /// The encoded exam of a ledger student set's key.
    pub(crate) fn exam_of_ledger_users(&self, key: &str) -> Option<EncodedExam> {
        let exam = key
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":ledger:exam:")?
            .strip_suffix(":users")?;
        is_encoded(exam).then(|| EncodedExam(exam.to_owned()))
    }

    /// `{p}:ledger:open:exam:{exam}:user:{user}` — hash, the session's
    /// open interruptions: kind → interruption (JSON).
    pub(crate) fn ledger_open(&self, key: &SessionKey) -> String {
        format!(
            "{}:ledger:open:exam:{}:user:{}",
            self.prefix,
            encode(key.exam_id.as_str()),
            encode(key.user_id.as_str())
        )
    }

    /// The encoded exam of a dispatch record's key, or `None` if `key` is
    /// not one of this store's dispatch keys.
    pub(crate) fn exam_of_dispatch(&self, key: &str) -> Option<EncodedExam> {
        let rest = key
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":dispatch:exam:")?;
        let (exam, user) = rest.split_once(":user:")?;
        (is_encoded(exam) && is_encoded(user)).then(|| EncodedExam(exam.to_owned()))
    }

    /// `{p}:sticky:exam:{exam}:worker` — string, the exam's sticky worker.
    pub(crate) fn sticky_worker(&self, exam: &ExamId) -> String {
        format!(
            "{}:sticky:exam:{}:worker",
            self.prefix,
            encode(exam.as_str())
        )
    }

    /// `{p}:sticky:exam:{exam}:until` — string, the sticky worker's expiry
    /// on the control plane's clock (milliseconds).
    pub(crate) fn sticky_until(&self, exam: &ExamId) -> String {
        format!(
            "{}:sticky:exam:{}:until",
            self.prefix,
            encode(exam.as_str())
        )
    }

    /// `{p}:sticky:exam:{exam}:affinity` — hash, worker → sessions.
    pub(crate) fn affinity(&self, exam: &EncodedExam) -> String {
        format!("{}:sticky:exam:{}:affinity", self.prefix, exam.0)
    }

    /// `SCAN` pattern matching exactly the affinity hashes.
    pub(crate) fn affinity_pattern(&self) -> String {
        format!("{}:sticky:exam:*:affinity", self.prefix)
    }

    /// The encoded exam of an affinity hash's key.
    pub(crate) fn exam_of_affinity(&self, key: &str) -> Option<EncodedExam> {
        let exam = key
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":sticky:exam:")?
            .strip_suffix(":affinity")?;
        is_encoded(exam).then(|| EncodedExam(exam.to_owned()))
    }

    /// `{p}:sticky:exam:{exam}:sessions` — set of the exam's dispatch keys.
    pub(crate) fn exam_sessions(&self, exam: &EncodedExam) -> String {
        format!("{}:sticky:exam:{}:sessions", self.prefix, exam.0)
    }

    /// `{p}:worker:{code}` — hash, the worker record and its CAS fields.
    pub(crate) fn worker(&self, worker: &WorkerId) -> String {
        format!("{}:worker:{}", self.prefix, encode(worker.as_str()))
    }

    /// `{p}:workers` — set of registered worker codes.
    pub(crate) fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// `{p}:dispatched` — hash, worker code → dispatch records on it.
    pub(crate) fn dispatched(&self) -> String {
        format!("{}:dispatched", self.prefix)
    }

    /// `{p}:index:worker-dispatches` — sorted set (all scores 0) of
    /// `"{code} {dispatch key}"`, range-read by worker with `ZRANGEBYLEX`
    /// and paged through whole by dispatch scans.
    pub(crate) fn worker_index(&self) -> String {
        format!("{}:index:worker-dispatches", self.prefix)
    }

    /// `{p}:lease:{name}` — hash `holder`, `token`, with the lease's TTL.
    pub(crate) fn lease(&self, name: &str) -> String {
        format!("{}:lease:{}", self.prefix, encode(name))
    }

    /// `{p}:checkpoint:{name}` — string, the checkpoint the holders of
    /// lease `name` save beside it (no TTL: it outlives the lease).
    pub(crate) fn checkpoint(&self, name: &str) -> String {
        format!("{}:checkpoint:{}", self.prefix, encode(name))
    }

    /// `{p}:lease-token` — string counter, the last fencing token issued.
    pub(crate) fn lease_token(&self) -> String {
        format!("{}:lease-token", self.prefix)
    }

    /// `{p}:audit` — list of JSON audit entries, newest first.
    pub(crate) fn audit(&self) -> String {
        format!("{}:audit", self.prefix)
    }

    /// `{p}:join-token:{id}` — hash `json`, `expires_at`, `max_uses`,
    /// `uses`: one join token (only the hash of its secret).
    pub(crate) fn join_token(&self, id: &str) -> String {
        format!("{}:join-token:{}", self.prefix, encode(id))
    }

    /// `{p}:join-tokens` — hash, token hash → join token id.
    pub(crate) fn join_tokens(&self) -> String {
        format!("{}:join-tokens", self.prefix)
    }

    /// `{p}:exams` — hash, exam id → the booked exam as JSON.
    pub(crate) fn exams(&self) -> String {
        format!("{}:exams", self.prefix)
    }

    /// `{p}:exams:version` — string counter, the exam calendar's version.
    pub(crate) fn exams_version(&self) -> String {
        format!("{}:exams:version", self.prefix)
    }

    /// `{p}:exams:risk` — hash, exam id → students missing (at-risk flag).
    pub(crate) fn exams_risk(&self) -> String {
        format!("{}:exams:risk", self.prefix)
    }

    /// `{p}:capacity:requests` — hash, capacity request id → the request
    /// as JSON.
    pub(crate) fn capacity_requests(&self) -> String {
        format!("{}:capacity:requests", self.prefix)
    }

    /// `{p}:capacity:versions` — hash, capacity request id → its version.
    pub(crate) fn capacity_versions(&self) -> String {
        format!("{}:capacity:versions", self.prefix)
    }

    /// `{p}:rehearsals` — hash, exam id → its rehearsal as
    /// `"<version> <json>"`.
    pub(crate) fn rehearsals(&self) -> String {
        format!("{}:rehearsals", self.prefix)
    }

    /// `{p}:scheduled` — hash, scheduled action id → `"<version> <json>"`.
    pub(crate) fn scheduled(&self) -> String {
        format!("{}:scheduled", self.prefix)
    }

    /// `{p}:scheduled:open` — sorted set, the open scheduled actions' ids
    /// by due time (ms).
    pub(crate) fn scheduled_open(&self) -> String {
        format!("{}:scheduled:open", self.prefix)
    }

    /// `{p}:webhooks` — hash, endpoint id → the endpoint as JSON.
    pub(crate) fn webhooks(&self) -> String {
        format!("{}:webhooks", self.prefix)
    }

    /// `{p}:outbox:{part}` — the outbox's shared keys: `entries` (hash id
    /// → JSON), `due` (zset id → ms), `state` (hash id → state), `dedup`
    /// (hash endpoint and key → id), `tokens` (hash id → delivery lease
    /// token), `lease-token` (counter), `attempts` (hash id → JSON lines),
    /// `failures` (hash endpoint → consecutive failures), `finished` (zset
    /// id → ms of a delivered or failed delivery's last attempt).
    pub(crate) fn outbox(&self, part: &str) -> String {
        format!("{}:outbox:{part}", self.prefix)
    }

    /// `{p}:outbox:endpoint:{id}` — list of one endpoint's delivery ids,
    /// newest first.
    pub(crate) fn outbox_endpoint(&self, endpoint: &str) -> String {
        format!("{}:outbox:endpoint:{}", self.prefix, encode(endpoint))
    }

    /// `{p}:worker-credentials` — hash, worker code → hash of its own
    /// credential.
    pub(crate) fn worker_credentials(&self) -> String {
        format!("{}:worker-credentials", self.prefix)
    }

    /// `{p}:operator-sessions` — hash, SHA-256 of a page session's id →
    /// the session's JSON.
    pub(crate) fn operator_sessions(&self) -> String {
        format!("{}:operator-sessions", self.prefix)
    }

    /// `{p}:queue:exam:{exam}:order` — sorted set, the exam's waiting
    /// students by arrival number.
    pub(crate) fn queue_order(&self, exam: &ExamId) -> String {
        format!("{}:queue:exam:{}:order", self.prefix, encode(exam.as_str()))
    }

    /// `{p}:queue:exam:{exam}:entries` — hash, student → `"{enqueued_at}
    /// {last_seen}"` (milliseconds).
    pub(crate) fn queue_entries(&self, exam: &ExamId) -> String {
        format!(
            "{}:queue:exam:{}:entries",
            self.prefix,
            encode(exam.as_str())
        )
    }

    /// `{p}:queue:exam:{exam}:state` — hash, the claim on the head
    /// (`claim_user`, `claim_token`, `claim_until`) and the totals
    /// (`placed`, `abandoned`, `first_placed`, `last_placed`).
    pub(crate) fn queue_state(&self, exam: &ExamId) -> String {
        format!("{}:queue:exam:{}:state", self.prefix, encode(exam.as_str()))
    }

    /// `{p}:queue:exams` — set of exam ids whose queue is not empty.
    pub(crate) fn queued_exams(&self) -> String {
        format!("{}:queue:exams", self.prefix)
    }

    /// `{p}:permits:worker:{code}:{part}` — a worker's start permits:
    /// `held` (hash, id → `"{since} {until}"`), `waiting` (sorted set, id
    /// by arrival), `waiting-until` (sorted set, id by lease end),
    /// `samples` (list of `"{millis} {in_flight}"`, oldest first).
    pub(crate) fn permits(&self, worker: &WorkerId, part: &str) -> String {
        format!(
            "{}:permits:worker:{}:{part}",
            self.prefix,
            encode(worker.as_str())
        )
    }

    /// `{p}:permits:seq` — string counter: arrival numbers in the workers'
    /// start queues.
    pub(crate) fn permits_seq(&self) -> String {
        format!("{}:permits:seq", self.prefix)
    }

    /// `{p}:queue:seq` — string counter: arrival numbers and claim tokens.
    pub(crate) fn queue_seq(&self) -> String {
        format!("{}:queue:seq", self.prefix)
    }
}

/// `ZRANGEBYLEX` bounds selecting exactly `worker`'s index members. Worker
/// codes never contain a space, and `!` is the byte after it.
pub(crate) fn index_range(worker: &WorkerId) -> (String, String) {
    (
        format!("[{} ", worker.as_str()),
        format!("({}!", worker.as_str()),
    )
}

/// Splits an index member into worker code and dispatch key.
pub(crate) fn split_index_member(member: &str) -> Option<(WorkerId, &str)> {
    let (worker, key) = member.split_once(' ')?;
    Some((WorkerId::parse("code", worker).ok()?, key))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// A member of the worker index, as the scripts write it.
    fn index_member(worker: &WorkerId, dispatch_key: &str) -> String {
        format!("{} {dispatch_key}", worker.as_str())
    }

    fn keys() -> Keys {
        Keys::new("vdi").unwrap()
    }

    fn session(exam: &str, user: &str) -> SessionKey {
        SessionKey::parse(exam, user).unwrap()
    }

    #[test]
    fn exam_platform_layout_for_plain_ids() {
        let k = keys();
        let s = session("exam-42", "student_7");
        assert_eq!(k.dispatch(&s), "vdi:dispatch:exam:exam-42:user:student_7");
        assert_eq!(
            k.sticky_worker(&s.exam_id),
            "vdi:sticky:exam:exam-42:worker"
        );
        assert_eq!(
            k.affinity(&EncodedExam::of(&s.exam_id)),
            "vdi:sticky:exam:exam-42:affinity"
        );
        let w = WorkerId::parse("code", "worker-node-2").unwrap();
        assert_eq!(k.worker(&w), "vdi:worker:worker-node-2");
    }

    #[test]
    fn encoding_escapes_separators_globs_and_space() {
        assert_eq!(encode("a:b"), "a%3Ab");
        assert_eq!(encode("50%"), "50%25");
        assert_eq!(encode("*?[]\\"), "%2A%3F%5B%5D%5C");
        assert_eq!(encode("sv 001"), "sv%20001");
        assert_eq!(encode("Toán"), "To%C3%A1n");
        assert_eq!(encode("a.b_c~d-e"), "a.b_c~d-e");
        for s in ["a:b", "x y", "Thi cuối kỳ: Toán*", "[1]?", "%41"] {
            let e = encode(s);
            assert!(is_encoded(&e), "{e}");
            assert!(!e.contains(':'));
        }
    }

    #[test]
    fn hostile_ids_never_collide() {
        let k = keys();
        let pairs = [
            ("a:user:b", "c"),
            ("a", "b:user:c"),
            ("a:user", "b:user:c"),
            ("a", "user:b:user:c"),
            ("%41", "x"),
            ("A", "x"),
            ("a*", "x"),
            ("a?", "x"),
            ("a b", "x"),
            ("a%20b", "x"),
            ("Kỳ thi", "Nguyễn Văn A"),
            ("Ky thi", "Nguyen Van A"),
        ];
        let names: HashSet<String> = pairs
            .iter()
            .map(|(e, u)| k.dispatch(&session(e, u)))
            .collect();
        assert_eq!(names.len(), pairs.len());
        for (e, u) in pairs {
            let name = k.dispatch(&session(e, u));
            let exam = k.exam_of_dispatch(&name).unwrap();
            assert_eq!(exam, EncodedExam::of(&ExamId::parse("examId", e).unwrap()));
        }
    }

    #[test]
    fn decoding_reverses_encoding_only_for_canonical_text() {
        for s in ["a:b", "Thi cuối kỳ: Toán*", "50%", "x y", "plain-id"] {
            let exam = ExamId::parse("examId", s).unwrap();
            assert_eq!(EncodedExam::of(&exam).decode(), Some(exam));
        }
        assert_eq!(EncodedExam("%3a".into()).decode(), None, "lower-case hex");
        assert_eq!(EncodedExam("a%3".into()).decode(), None, "truncated");
        assert_eq!(EncodedExam("%FF".into()).decode(), None, "not UTF-8");
        assert_eq!(EncodedExam("%41".into()).decode(), None, "over-encoded");
        assert_eq!(
            EncodedExam::of(&ExamId::parse("examId", "e").unwrap()).as_str(),
            "e"
        );
    }

    #[test]
    fn patterns_only_match_their_keys() {
        let k = keys();
        let s = session("e:user:x", "u");
        let exam = EncodedExam::of(&s.exam_id);
        assert!(k.exam_of_dispatch(&k.dispatch(&s)).is_some());
        assert!(k.exam_of_dispatch(&k.affinity(&exam)).is_none());
        assert!(k.exam_of_dispatch("other:dispatch:exam:a:user:b").is_none());
        assert_eq!(k.exam_of_affinity(&k.affinity(&exam)), Some(exam.clone()));
        assert!(k.exam_of_affinity(&k.exam_sessions(&exam)).is_none());
        assert!(k.exam_of_affinity(&k.sticky_worker(&s.exam_id)).is_none());
    }

    #[test]
    fn prefix_is_validated() {
        for good in ["vdi", "{vdi}", "prod:vdi", "vdi-test-0a1b"] {
            assert!(Keys::new(good).is_ok(), "{good}");
        }
        for bad in ["", "a*", "a b", "a?", "a[1]", "a\\b", "ä", &"p".repeat(65)] {
            assert_eq!(Keys::new(bad).unwrap_err().field, "prefix", "{bad}");
        }
        assert_eq!(Keys::new("p").unwrap().prefix(), "p");
    }

    #[test]
    fn index_ranges_separate_workers_sharing_a_stem() {
        let w = WorkerId::parse("code", "w").unwrap();
        let (lo, hi) = index_range(&w);
        let inside = |m: &str| m >= &lo[1..] && m < &hi[1..];
        assert!(inside(&index_member(&w, "vdi:dispatch:exam:e:user:u")));
        for other in ["w-2", "w.1", "w_x", "wa", "W"] {
            let o = WorkerId::parse("code", other).unwrap();
            assert!(!inside(&index_member(&o, "vdi:dispatch:exam:e:user:u")));
        }
        let m = index_member(&w, "vdi:dispatch:exam:e:user:u");
        let (worker, key) = split_index_member(&m).unwrap();
        assert_eq!(worker, w);
        assert_eq!(key, "vdi:dispatch:exam:e:user:u");
    }

    #[test]
    fn lease_names_are_encoded() {
        let k = keys();
        assert_eq!(k.lease("reconcile"), "vdi:lease:reconcile");
        assert_eq!(k.lease("a:b"), "vdi:lease:a%3Ab");
        assert_ne!(k.lease("token"), k.lease_token());
        assert_eq!(k.checkpoint("background"), "vdi:checkpoint:background");
        assert_eq!(k.checkpoint("a:b"), "vdi:checkpoint:a%3Ab");
    }
}
