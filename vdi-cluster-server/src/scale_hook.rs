//! [`CommandScaleHook`]: the scale hook of `--scale-command`, a program
//! run once per call (its contract is the protocol's `capacity` module:
//! `VDI_ACTION`, one JSON object in, the new workers' codes out).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use vdi_cluster_core::WorkerId;
use vdi_cluster_core::scale::{ScaleDown, ScaleHook, ScaleHookError, ScaleUp};
use vdi_cluster_node::provision::{SECRET_VARIABLES, run_program};
use vdi_cluster_protocol::capacity::{ScaleDownOrder, ScaleUpAnswer, ScaleUpOrder};

/// Runs `program` per call, killing runs longer than `timeout`.
#[derive(Debug, Clone)]
pub struct CommandScaleHook {
    program: PathBuf,
    timeout: Duration,
}

impl CommandScaleHook {
    /// A hook that runs `program`.
    pub fn new(program: PathBuf, timeout: Duration) -> Self {
        Self { program, timeout }
    }

    async fn run(
        &self,
        action: &str,
        input: &impl serde::Serialize,
    ) -> Result<Vec<u8>, ScaleHookError> {
        let input = serde_json::to_vec(input).map_err(|e| ScaleHookError(e.to_string()))?;
        let mut command = tokio::process::Command::new(&self.program);
        for name in SECRET_VARIABLES {
            command.env_remove(name);
        }
        command.env("VDI_ACTION", action);
        run_program(command, &self.program, action, Some(&input), self.timeout)
            .await
            .map_err(|e| ScaleHookError(e.to_string()))
    }
}

#[async_trait]
impl ScaleHook for CommandScaleHook {
    async fn scale_up(&self, order: &ScaleUp) -> Result<Vec<WorkerId>, ScaleHookError> {
        let out = self.run("scale_up", &ScaleUpOrder::from(order)).await?;
        let answer: ScaleUpAnswer = serde_json::from_slice(&out).map_err(|e| {
            ScaleHookError(format!(
                "scale_up: expected {{\"workers\": [codes]}} on standard output: {e}"
            ))
        })?;
        answer
            .codes()
            .map_err(|e| ScaleHookError(format!("scale_up: {e}")))
    }

    async fn scale_down(&self, order: &ScaleDown) -> Result<(), ScaleHookError> {
        self.run("scale_down", &ScaleDownOrder::from(order))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A script in a folder of this test's own.
    fn script(name: &str, body: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vdi-scale-hook-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hook.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn order() -> ScaleUp {
        ScaleUp {
            request: "cap-math-1".into(),
            slots: 3,
            constraints: Default::default(),
            deadline: vdi_cluster_core::Timestamp(0),
            exams: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_program_reads_its_order_and_names_its_workers() {
        // Echoes the request id from standard input as a worker code.
        let hook = CommandScaleHook::new(
            script(
                "answers",
                r#"[ "$VDI_ACTION" = scale_up ] || exit 3
id=$(sed 's/.*"requestId":"\([^"]*\)".*/\1/')
printf '{"workers":["%s-1"]}' "$id""#,
            ),
            Duration::from_secs(10),
        );
        let codes = hook.scale_up(&order()).await.unwrap();
        assert_eq!(codes[0].as_str(), "cap-math-1-1");
        let down = ScaleDown {
            request: "cap-math-1".into(),
            workers: codes,
        };
        let err = hook.scale_down(&down).await.unwrap_err();
        assert!(err.0.contains("exit status: 3"), "{err}");
    }

    #[tokio::test]
    async fn an_answer_without_valid_codes_fails_the_call() {
        let hook = CommandScaleHook::new(
            script("bad-codes", r#"echo '{"workers":["not a code"]}'"#),
            Duration::from_secs(10),
        );
        let err = hook.scale_up(&order()).await.unwrap_err();
        assert!(err.0.contains("workers[0]"), "{err}");
    }
}
