//! [`ScriptedScaleHook`]: a scale hook that records its calls.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::ids::WorkerId;
use crate::scale::{ScaleDown, ScaleHook, ScaleHookError, ScaleUp};

#[derive(Debug, Default)]
struct Calls {
    ups: Vec<ScaleUp>,
    downs: Vec<ScaleDown>,
    failing: bool,
}

/// Answers every `scale_up` with `workers` codes `{request}-{n}` (or fails
/// while [`fail`](Self::fail) is on) and records every call. Clones share
/// the record.
#[derive(Debug, Clone)]
pub struct ScriptedScaleHook {
    workers: usize,
    calls: Arc<Mutex<Calls>>,
}

impl ScriptedScaleHook {
    /// A hook that starts `workers` workers per request.
    pub fn new(workers: usize) -> Self {
        Self {
            workers,
            calls: Arc::default(),
        }
    }

    /// Makes every call fail (`true`) or succeed again.
    pub fn fail(&self, failing: bool) {
        self.calls.lock().expect("hook record").failing = failing;
    }

    /// Every `scale_up` so far, failed ones included.
    pub fn ups(&self) -> Vec<ScaleUp> {
        self.calls.lock().expect("hook record").ups.clone()
    }

    /// Every `scale_down` so far, failed ones included.
    pub fn downs(&self) -> Vec<ScaleDown> {
        self.calls.lock().expect("hook record").downs.clone()
    }

    /// The codes this hook answers for `request`.
    pub fn codes(&self, request: &str) -> Vec<WorkerId> {
        (1..=self.workers)
            .map(|n| WorkerId::parse("code", format!("{request}-{n}")).expect("valid code"))
            .collect()
    }
}

#[async_trait]
impl ScaleHook for ScriptedScaleHook {
    async fn scale_up(&self, order: &ScaleUp) -> Result<Vec<WorkerId>, ScaleHookError> {
        let failing = {
            let mut calls = self.calls.lock().expect("hook record");
            calls.ups.push(order.clone());
            calls.failing
        };
        // Let racing callers interleave here, as a real command would.
        tokio::task::yield_now().await;
        if failing {
            return Err(ScaleHookError("the cloud said no".into()));
        }
        Ok(self.codes(&order.request))
    }

    async fn scale_down(&self, order: &ScaleDown) -> Result<(), ScaleHookError> {
        let mut calls = self.calls.lock().expect("hook record");
        calls.downs.push(order.clone());
        if calls.failing {
            return Err(ScaleHookError("the cloud said no".into()));
        }
        Ok(())
    }
}
