//! A rehearsal's check on the node: one test desktop of an exam started
//! through the provisioner's `check`, timed, and its answer turned into
//! the worker API's [`CheckResponse`]; and how the simulated provisioner
//! answers it ([`SimulatedCheck`], the node's `--sim-check`).
//!
//! The start time is the one the provisioner reports (`startMs`), or else
//! the whole run of its `check` (the test desktop's start and stop). A
//! `check` that fails (a non-zero exit, a timeout, output that is not its
//! answer) is a desktop that did not start; an answer with
//! `imagePresent: false` is one that could not.

use std::time::Duration;

use tokio::time::Instant;
use vdi_cluster_core::ExamId;
use vdi_cluster_core::WorkerId;
use vdi_cluster_core::network::NetworkPolicy;
use vdi_cluster_protocol::node::{CheckAnswer, CheckResponse, ProvisionerCheckJson};

use super::{ProvisionError, Provisioner};

/// How the simulated provisioner answers a rehearsal's check (for tests
/// and demos: the node's `--sim-check`, `VDI_SIM_CHECK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimulatedCheck {
    /// The test desktop starts in the start latency; the image is there.
    #[default]
    Passes,
    /// The test desktop does not start.
    Fails,
    /// It starts, after the start latency and this much more.
    Slow(Duration),
    /// The exam's image is not on the node.
    ImageMissing,
    /// It starts, but the network allow-list check fails.
    AllowListFails,
}

impl SimulatedCheck {
    /// Reads `ok`, `fail`, `slow`, `image-missing` or `allow-list-fails`;
    /// `slow` waits `slow_by` more than a start.
    pub fn parse(value: &str, slow_by: Duration) -> Option<Self> {
        Some(match value {
            "ok" => Self::Passes,
            "fail" => Self::Fails,
            "slow" => Self::Slow(slow_by),
            "image-missing" => Self::ImageMissing,
            "allow-list-fails" => Self::AllowListFails,
            _ => return None,
        })
    }

    /// The simulated answer of `worker`, once its start latency is over.
    pub(super) async fn answer(&self, worker: &WorkerId) -> Result<CheckAnswer, ProvisionError> {
        let present = CheckAnswer {
            image_present: Some(true),
            image: Some("simulated-exam-image".into()),
            ..CheckAnswer::default()
        };
        match self {
            Self::Passes => Ok(present),
            Self::Fails => Err(ProvisionError::Failed(format!(
                "simulated check failure on {worker}"
            ))),
            Self::Slow(by) => {
                tokio::time::sleep(*by).await;
                Ok(present)
            }
            Self::ImageMissing => Ok(CheckAnswer {
                image_present: Some(false),
                ..present
            }),
            Self::AllowListFails => Ok(CheckAnswer {
                checks: vec![ProvisionerCheckJson {
                    name: "network-allow-list".into(),
                    ok: false,
                    detail: Some("simulated: an allowed address is unreachable".into()),
                }],
                ..present
            }),
        }
    }
}

/// Runs `provisioner`'s check of `exam` under `policy`, timed (see the
/// module docs).
pub async fn run_check(
    provisioner: &dyn Provisioner,
    exam: &ExamId,
    policy: &NetworkPolicy,
) -> CheckResponse {
    let began = Instant::now();
    let answer = provisioner.check(exam, policy).await;
    let took = u32::try_from(began.elapsed().as_millis()).unwrap_or(u32::MAX);
    match answer {
        Ok(a) => CheckResponse {
            started: a.image_present != Some(false),
            start_ms: a.start_ms.unwrap_or(took),
            image_present: a.image_present,
            image: a.image,
            checks: a.checks,
            error: None,
        },
        Err(e) => CheckResponse {
            started: false,
            start_ms: took,
            image_present: None,
            image: None,
            checks: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}
