//! [`FitsJson`]: whether a booked exam fits, on the wire.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::service::ExamStatus;

/// The word `fits` carries when an exam fits only with the slots the scale
/// hook may add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ScaleUpWord {
    /// `"with scale-up"`.
    #[serde(rename = "with scale-up")]
    WithScaleUp,
}

/// Whether a booked exam fits the capacity now: `true`, `false`, or
/// `"with scale-up"` (`--admission-counts-scalable`: it fits only with the
/// workers the scale hook is to start before its prewarm lead; a client
/// that tests the field for truth reads it as fitting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FitsJson {
    /// Fits the fleet as it stands (`true`), or is at risk (`false`).
    Fleet(bool),
    /// Fits with the scale-up.
    ScaleUp(ScaleUpWord),
}

impl From<&ExamStatus> for FitsJson {
    fn from(s: &ExamStatus) -> Self {
        if s.with_scale_up {
            Self::ScaleUp(ScaleUpWord::WithScaleUp)
        } else {
            Self::Fleet(s.at_risk.is_none())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fits_is_a_bool_or_the_scale_up_word() {
        let cases = [
            (FitsJson::Fleet(true), json!(true)),
            (FitsJson::Fleet(false), json!(false)),
            (
                FitsJson::ScaleUp(ScaleUpWord::WithScaleUp),
                json!("with scale-up"),
            ),
        ];
        for (fits, wire) in cases {
            assert_eq!(serde_json::to_value(fits).unwrap(), wire);
            assert_eq!(serde_json::from_value::<FitsJson>(wire).unwrap(), fits);
        }
        assert!(serde_json::from_value::<FitsJson>(json!("maybe")).is_err());
    }
}
