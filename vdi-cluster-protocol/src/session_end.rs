//! Operators ↔ control plane: a student's own end time.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `PATCH` | `/api/vdi/sessions/{examId}/{userId}` | [`PatchSessionRequest`] | 200 [`SessionEndJson`], 409 [`ExtensionRefusedJson`] |
//!
//! A booking carries known accommodations up front: named students
//! ([`crate::extra_time::StudentExtraJson`], `extensions`) or a count per extra duration
//! ([`crate::extra_time::ExtraSeatsJson`], `extraTime`). Times are RFC 3339.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::ValidationError;
use vdi_cluster_core::exam::{ExtensionRefusal, format_rfc3339, parse_rfc3339};
use vdi_cluster_core::service::{EndChange, SessionEnd};

use crate::exams::ShortfallJson;

/// `PATCH /api/vdi/sessions/{examId}/{userId}`: `extendSec` or `endsAt`
/// (not both), and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchSessionRequest {
    /// Seconds to add to the student's end as it stands (1–86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 86400)]
    pub extend_sec: Option<u32>,
    /// The student's new end (RFC 3339), not before the exam's `endsAt`,
    /// at most 24 h after it; the exam's `endsAt` takes the extension
    /// away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// Why (1–500 characters), kept in the audit trail.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// Grant it even if it does not fit beside later bookings (audited
    /// as forced, with the shortfall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

impl PatchSessionRequest {
    /// The change it asks for.
    pub fn change(&self) -> Result<EndChange, ValidationError> {
        match (self.extend_sec, &self.ends_at) {
            (Some(n), None) => Ok(EndChange::ExtendBy(n)),
            (None, Some(t)) => Ok(EndChange::EndsAt(parse_rfc3339("endsAt", t)?)),
            (Some(_), Some(_)) => Err(ValidationError::new(
                "extendSec",
                "give extendSec or endsAt, not both",
            )),
            (None, None) => Err(ValidationError::new(
                "extendSec",
                "give extendSec or endsAt",
            )),
        }
    }
}

/// A student's end as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionEndJson {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
    /// The exam's end (RFC 3339).
    pub exam_ends_at: String,
    /// The student's own end (RFC 3339).
    pub ends_at: String,
    /// Seconds past the exam's end.
    pub extra_sec: u32,
}

impl From<&SessionEnd> for SessionEndJson {
    fn from(e: &SessionEnd) -> Self {
        Self {
            exam_id: e.key.exam_id.to_string(),
            user_id: e.key.user_id.to_string(),
            exam_ends_at: format_rfc3339(e.exam_ends_at),
            ends_at: format_rfc3339(e.ends_at),
            extra_sec: e.extra_sec,
        }
    }
}

/// The 409 of an extension that does not fit: Aetherium's error fields,
/// the shortfall, and the longest extension that would fit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRefusedJson {
    /// `Conflict`.
    pub error: String,
    /// What went wrong, for humans.
    pub message: String,
    /// 409.
    pub code: u16,
    /// The peak shortfall with the extension.
    #[serde(flatten)]
    pub shortfall: ShortfallJson,
    /// The student's extra seconds as they stand.
    pub current_extra_sec: u32,
    /// The longest extra time (seconds past the exam's end) that fits.
    pub fits_extra_sec: u32,
    /// Seconds that could still be added (`fitsExtraSec −
    /// currentExtraSec`).
    pub fits_extend_sec: u32,
}

impl From<&ExtensionRefusal> for ExtensionRefusedJson {
    fn from(r: &ExtensionRefusal) -> Self {
        let s = &r.shortfall;
        let more = r.fits_extra_sec.saturating_sub(r.current_extra_sec);
        Self {
            error: "Conflict".into(),
            message: format!(
                "the extension does not fit: {} student(s) missing at {}; at most {more} s more fits",
                s.missing,
                format_rfc3339(s.at),
            ),
            code: 409,
            shortfall: ShortfallJson::from(s),
            current_extra_sec: r.current_extra_sec,
            fits_extra_sec: r.fits_extra_sec,
            fits_extend_sec: more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::sorted_keys;

    #[test]
    fn a_change_is_one_of_two() {
        let body = |v: serde_json::Value| serde_json::from_value::<PatchSessionRequest>(v).unwrap();
        let by = body(serde_json::json!({"extendSec": 600, "reason": "incident"}));
        assert_eq!(by.change().unwrap(), EndChange::ExtendBy(600));
        let at = body(serde_json::json!({"endsAt": "2026-06-01T10:00:00Z", "reason": "r"}));
        assert!(matches!(at.change().unwrap(), EndChange::EndsAt(_)));
        let both = body(
            serde_json::json!({"extendSec": 1, "endsAt": "2026-06-01T10:00:00Z", "reason": "r"}),
        );
        assert_eq!(both.change().unwrap_err().field, "extendSec");
        let bad = body(serde_json::json!({"endsAt": "soon", "reason": "r"}));
        assert_eq!(bad.change().unwrap_err().field, "endsAt");
        assert!(
            serde_json::from_value::<PatchSessionRequest>(serde_json::json!({"extendSec": 1}))
                .is_err()
        );
    }

    #[test]
    fn field_names() {
        let end = SessionEndJson {
            exam_id: "e".into(),
            user_id: "u".into(),
            exam_ends_at: "t".into(),
            ends_at: "t".into(),
            extra_sec: 1,
        };
        let json = serde_json::to_value(&end).unwrap();
        assert_eq!(
            sorted_keys(&json),
            ["endsAt", "examEndsAt", "examId", "extraSec", "userId"]
        );
    }
}
