//! Extra time booked with an exam: named students
//! ([`StudentExtraJson`], `extensions`) and a count per extra duration
//! ([`ExtraSeatsJson`], `extraTime`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::exam::{ExtraSeats, StudentExtra};
use vdi_cluster_core::{UserId, ValidationError};

/// A named student's extra time, booked with the exam.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StudentExtraJson {
    /// The student.
    pub user_id: String,
    /// Seconds past the exam's end (1–86400).
    #[schema(minimum = 1, maximum = 86400)]
    pub extra_sec: u32,
}

impl StudentExtraJson {
    /// The core value; the user id is checked here, the rest by core.
    pub fn into_extra(self, i: usize) -> Result<StudentExtra, ValidationError> {
        Ok(StudentExtra {
            user_id: UserId::parse(&format!("extensions[{i}].userId"), self.user_id)?,
            extra_sec: self.extra_sec,
        })
    }
}

impl From<&StudentExtra> for StudentExtraJson {
    fn from(s: &StudentExtra) -> Self {
        Self {
            user_id: s.user_id.to_string(),
            extra_sec: s.extra_sec,
        }
    }
}

/// Extended seats booked without names: how many students get how much
/// extra time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtraSeatsJson {
    /// Seconds past the exam's end (1–86400).
    #[schema(minimum = 1, maximum = 86400)]
    pub extra_sec: u32,
    /// How many students (at least 1; in total at most the exam's).
    #[schema(minimum = 1)]
    pub students: u32,
}

impl From<ExtraSeatsJson> for ExtraSeats {
    fn from(s: ExtraSeatsJson) -> Self {
        Self {
            extra_sec: s.extra_sec,
            students: s.students,
        }
    }
}

impl From<&ExtraSeats> for ExtraSeatsJson {
    fn from(s: &ExtraSeats) -> Self {
        Self {
            extra_sec: s.extra_sec,
            students: s.students,
        }
    }
}
