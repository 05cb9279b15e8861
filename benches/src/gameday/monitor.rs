//! What the desktops themselves show: every agent's own list of the
//! sessions it runs (`GET /api/vdi/cluster/status`), polled a few times a
//! second. A student looks here to see whether its desktop still runs —
//! the way a real student notices that the remote desktop froze or went
//! black — and the run's over-allocation check samples every agent's
//! count against its slots on every poll.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use vdi_cluster_protocol::node_status::NodeStatus;
use vdi_cluster_protocol::{CLUSTER_TOKEN_HEADER, WORKER_STATUS_PATH};

/// How often every agent is polled.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(300);

/// One agent as last seen.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// When the last successful poll was sent, and the `examId/userId` of
    /// every session the agent listed then.
    polled: Option<(Instant, Arc<HashSet<String>>)>,
    /// Its slots, as it reports them.
    max_sessions: u32,
    /// The most sessions beyond its slots one poll saw.
    most_over: u64,
    /// The most sessions one poll saw.
    most: u64,
}

/// Whether a student's desktop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Desktop {
    /// Its worker listed it in a poll sent after the student got it.
    Alive,
    /// Not known yet (no poll since the student got it).
    Pending,
    /// A poll sent after the student got it did not list it.
    Lost,
    /// Its worker has not answered for longer than the freeze limit (and
    /// the student has had it that long).
    Frozen,
}

/// The agents' own views, kept up to date by [`Monitor::run`].
#[derive(Debug)]
pub(crate) struct Monitor {
    agents: Vec<(String, String)>,
    index: HashMap<String, usize>,
    seen: Vec<Mutex<Seen>>,
    token: String,
    client: reqwest::Client,
}

impl Monitor {
    /// A monitor of `agents` (`(code, base URL)`), calling them with the
    /// cluster token.
    pub(crate) fn new(agents: Vec<(String, String)>, token: String) -> anyhow::Result<Self> {
        Ok(Self {
            index: agents
                .iter()
                .enumerate()
                .map(|(i, (code, _))| (code.clone(), i))
                .collect(),
            seen: agents.iter().map(|_| Mutex::default()).collect(),
            agents,
            token,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()?,
        })
    }

    /// Agent codes, in order.
    pub(crate) fn codes(&self) -> impl Iterator<Item = &str> {
        self.agents.iter().map(|(c, _)| c.as_str())
    }

    async fn poll(&self, i: usize) {
        let sent = Instant::now();
        let answer = self
            .client
            .get(format!("{}{WORKER_STATUS_PATH}", self.agents[i].1))
            .header(CLUSTER_TOKEN_HEADER, &self.token)
            .send()
            .await;
        let Ok(r) = answer else { return };
        if !r.status().is_success() {
            return;
        }
        let Ok(status) = r.json::<NodeStatus>().await else {
            return;
        };
        let keys: HashSet<String> = status
            .sessions
            .iter()
            .map(|s| format!("{}/{}", s.exam_id, s.user_id))
            .collect();
        let count = status.sessions.len() as u64;
        let mut seen = self.seen[i].lock().expect("monitor lock");
        seen.max_sessions = status.max_sessions;
        seen.most = seen.most.max(count);
        seen.most_over = seen
            .most_over
            .max(count.saturating_sub(u64::from(status.max_sessions)));
        if seen.polled.as_ref().is_none_or(|(at, _)| *at < sent) {
            seen.polled = Some((sent, Arc::new(keys)));
        }
    }

    /// Polls every agent every [`POLL_EVERY`], forever (abort the task to
    /// stop it).
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            let round = Instant::now();
            let mut polls = JoinSet::new();
            for i in 0..self.agents.len() {
                let me = Arc::clone(&self);
                polls.spawn(async move { me.poll(i).await });
            }
            while polls.join_next().await.is_some() {}
            tokio::time::sleep_until((round + POLL_EVERY).into()).await;
        }
    }

    /// Whether `key`'s desktop, given to the student at `since` on worker
    /// `code`, runs now; `freeze`: how long a silent worker is taken to
    /// run it still.
    pub(crate) fn desktop(
        &self,
        code: &str,
        key: &str,
        since: Instant,
        freeze: Duration,
    ) -> Desktop {
        let Some(&i) = self.index.get(code) else {
            return Desktop::Lost;
        };
        let seen = self.seen[i].lock().expect("monitor lock");
        let answered_lately = seen
            .polled
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() <= freeze);
        match &seen.polled {
            _ if !answered_lately && since.elapsed() > freeze => Desktop::Frozen,
            Some((at, keys)) if *at >= since => {
                if keys.contains(key) {
                    Desktop::Alive
                } else {
                    Desktop::Lost
                }
            }
            _ => Desktop::Pending,
        }
    }

    /// Agent `code`'s sessions in its last poll sent after `after`.
    pub(crate) fn sessions_since(
        &self,
        code: &str,
        after: Instant,
    ) -> Option<Arc<HashSet<String>>> {
        let i = *self.index.get(code)?;
        let seen = self.seen[i].lock().expect("monitor lock");
        seen.polled
            .as_ref()
            .filter(|(at, _)| *at >= after)
            .map(|(_, keys)| Arc::clone(keys))
    }

    /// Agent `code`'s slots, as it last reported them.
    pub(crate) fn slots(&self, code: &str) -> u32 {
        self.index.get(code).map_or(0, |&i| {
            self.seen[i].lock().expect("monitor lock").max_sessions
        })
    }

    /// Over the whole run: the most sessions one poll of one agent saw
    /// beyond its slots (summed over agents), and the most one agent ran.
    pub(crate) fn most_over(&self) -> (u64, u64) {
        self.seen.iter().fold((0, 0), |(over, most), s| {
            let s = s.lock().expect("monitor lock");
            (over + s.most_over, most.max(s.most))
        })
    }
}
