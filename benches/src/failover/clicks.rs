//! The students of the surge: each clicks once at its time through one
//! replica (round robin), and clicks again after a pause until it is
//! answered with a desktop; every answer is noted with its time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vdi_cluster_protocol::sessions::SessionJson;

use crate::http::message;

/// What the students saw.
#[derive(Debug, Default)]
pub(crate) struct Clicks {
    /// Per student: the worker of its first 200/201 answer, and when.
    pub(crate) answered: Vec<Option<(String, Instant)>>,
    /// When a click failed (503, transport error, 429, another 5xx).
    pub(crate) failed: Vec<Instant>,
    /// Requests sent.
    pub(crate) requests: u64,
    /// Of which answered 503.
    pub(crate) refused: u64,
    /// Of which not answered (connection refused or reset, timeout).
    pub(crate) transport_errors: u64,
    /// Of which answered 429 or a 5xx other than 503.
    pub(crate) other_failures: u64,
    /// Answers the API should never give here, with a few examples.
    pub(crate) unexpected: u64,
    /// The first few of those.
    pub(crate) first_unexpected: Vec<String>,
}

/// The surge: students, the replicas' doors, and what they saw.
#[derive(Debug)]
pub(crate) struct Surge {
    exam: String,
    doors: Vec<String>,
    jwt: String,
    client: reqwest::Client,
    /// Shared with every student.
    pub(crate) clicks: Mutex<Clicks>,
    /// A student gives up after this long without a desktop.
    give_up: Duration,
    /// Between two clicks of a student.
    pause: Duration,
}

/// The user id of student `i`.
pub(crate) fn user(i: usize) -> String {
    format!("s-{i:05}")
}

impl Surge {
    /// `students` students of `exam` clicking through `doors` with the
    /// service token `jwt`.
    pub(crate) fn new(
        exam: &str,
        doors: Vec<String>,
        jwt: String,
        students: usize,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            exam: exam.to_owned(),
            doors,
            jwt,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .timeout(Duration::from_secs(10))
                .build()?,
            clicks: Mutex::new(Clicks {
                answered: vec![None; students],
                ..Clicks::default()
            }),
            give_up: Duration::from_secs(120),
            pause: Duration::from_millis(200),
        })
    }

    fn note(&self, f: impl FnOnce(&mut Clicks)) {
        f(&mut self.clicks.lock().expect("clicks lock"));
    }

    /// Student `i` clicks at `at`, and again until it holds a desktop (or
    /// gives up).
    pub(crate) async fn student(self: Arc<Self>, i: usize, at: Instant) {
        tokio::time::sleep_until(at.into()).await;
        let url = format!("{}/api/vdi/sessions", self.doors[i % self.doors.len()]);
        let body = serde_json::json!({"examId": self.exam, "userId": user(i)});
        let started = Instant::now();
        while started.elapsed() < self.give_up {
            let sent = self
                .client
                .post(&url)
                .bearer_auth(&self.jwt)
                .json(&body)
                .send()
                .await;
            let reply = match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    r.bytes().await.map(|b| (status, b)).ok()
                }
                Err(_) => None,
            };
            let now = Instant::now();
            match reply {
                Some((200 | 201, body)) => match serde_json::from_slice::<SessionJson>(&body) {
                    Ok(s) => {
                        self.note(|c| {
                            c.requests += 1;
                            c.answered[i] = Some((s.worker_code, now));
                        });
                        return;
                    }
                    Err(e) => self.unexpected(format!("a session's body: {e}")),
                },
                Some((503, _)) => self.note(|c| {
                    c.requests += 1;
                    c.refused += 1;
                    c.failed.push(now);
                }),
                Some((status, _)) if status >= 500 || status == 429 => self.note(|c| {
                    c.requests += 1;
                    c.other_failures += 1;
                    c.failed.push(now);
                }),
                Some((status, body)) => {
                    self.unexpected(format!("{status} {}", message(&body)));
                    return;
                }
                None => self.note(|c| {
                    c.requests += 1;
                    c.transport_errors += 1;
                    c.failed.push(now);
                }),
            }
            tokio::time::sleep(self.pause).await;
        }
    }

    fn unexpected(&self, what: String) {
        self.note(|c| {
            c.requests += 1;
            c.unexpected += 1;
            if c.first_unexpected.len() < 5 {
                c.first_unexpected.push(what);
            }
        });
    }
}
