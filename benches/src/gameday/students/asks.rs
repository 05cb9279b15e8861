//! A student's requests and what each answer tells them: the session API
//! through one replica's door (`POST`, `GET`, `DELETE`), a double click
//! through two at once, and every answer the API should never give noted.

use vdi_cluster_protocol::session_answers::SessionAnswerJson;
use vdi_cluster_protocol::sessions::SessionJson;
use vdi_cluster_protocol::waiting_room::QueuedJson;

use std::time::Instant;

use super::{Crowd, Holding, Stint, now_ms};
use crate::http::message;

/// A reply: the status and body, or a transport error.
pub(super) enum Reply {
    Status(u16, Vec<u8>),
    Transport,
}

/// What one request told a student.
pub(super) enum Told {
    Session(Box<SessionJson>),
    Queued(QueuedJson, u64, u64),
    /// Its seat is reserved and its desktop starting after the answer
    /// (paced starts): it asks again shortly.
    Starting,
    Refused,
    Gone,
    Failed,
}

impl Crowd {
    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        match request.bearer_auth(&self.jwt).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Ok(body) => Reply::Status(status, body.to_vec()),
                    Err(_) => Reply::Transport,
                }
            }
            Err(_) => Reply::Transport,
        }
    }

    pub(super) fn unexpected(&self, what: &str, status: u16, body: &[u8]) -> Told {
        let text = format!("{what}: {status} {}", message(body));
        self.note(|l| {
            l.answers.unexpected += 1;
            if l.answers.first_unexpected.len() < 5 {
                l.answers.first_unexpected.push(text);
            }
        });
        Told::Failed
    }

    /// `POST /api/vdi/sessions` through door `door`.
    pub(super) async fn post(&self, i: usize, door: usize) -> Told {
        let url = format!("{}/api/vdi/sessions", self.doors[door % self.doors.len()]);
        let body = serde_json::json!({"examId": self.exam, "userId": self.plans[i].user});
        let sent_ms = now_ms();
        {
            let mut st = self.state(i);
            st.asked = true;
            st.asking_since_ms.get_or_insert(sent_ms);
        }
        let reply = self.send(self.client.post(url).json(&body)).await;
        self.note(|l| l.answers.requests += 1);
        match reply {
            Reply::Status(200 | 201, body) => match serde_json::from_slice::<SessionJson>(&body) {
                Ok(s) => Told::Session(Box::new(s)),
                Err(e) => self.unexpected("POST session body", 200, e.to_string().as_bytes()),
            },
            Reply::Status(202, body) => match serde_json::from_slice::<SessionAnswerJson>(&body) {
                Ok(SessionAnswerJson::Queued(q)) => Told::Queued(q, sent_ms, now_ms()),
                Ok(SessionAnswerJson::Starting(_)) => Told::Starting,
                Ok(SessionAnswerJson::Session(_)) => {
                    self.unexpected("POST 202 body: a session", 202, &body)
                }
                Err(e) => self.unexpected("POST 202 body", 202, e.to_string().as_bytes()),
            },
            Reply::Status(503, _) => Told::Refused,
            Reply::Status(status, body) => self.unexpected("POST /api/vdi/sessions", status, &body),
            Reply::Transport => {
                self.note(|l| l.answers.transport_errors += 1);
                Told::Failed
            }
        }
    }

    /// `GET /api/vdi/sessions/:examId/:userId`.
    pub(super) async fn get(&self, i: usize, door: usize) -> Told {
        let url = format!(
            "{}/api/vdi/sessions/{}/{}",
            self.doors[door % self.doors.len()],
            self.exam,
            self.plans[i].user
        );
        let sent_ms = now_ms();
        let reply = self.send(self.client.get(url)).await;
        self.note(|l| l.answers.requests += 1);
        match reply {
            Reply::Status(200, body) => match serde_json::from_slice::<SessionAnswerJson>(&body) {
                Ok(SessionAnswerJson::Session(s)) => Told::Session(s),
                Ok(SessionAnswerJson::Queued(q)) => Told::Queued(q, sent_ms, now_ms()),
                Ok(SessionAnswerJson::Starting(_)) => Told::Starting,
                Err(e) => self.unexpected("GET session body", 200, e.to_string().as_bytes()),
            },
            Reply::Status(404, _) => Told::Gone,
            Reply::Status(503, _) => Told::Refused,
            Reply::Status(status, body) => self.unexpected("GET /api/vdi/sessions", status, &body),
            Reply::Transport => {
                self.note(|l| l.answers.transport_errors += 1);
                Told::Failed
            }
        }
    }

    /// `DELETE /api/vdi/sessions/:examId/:userId`: whether it was done.
    pub(super) async fn submit(&self, i: usize, door: usize) -> bool {
        let url = format!(
            "{}/api/vdi/sessions/{}/{}",
            self.doors[door % self.doors.len()],
            self.exam,
            self.plans[i].user
        );
        let reply = self.send(self.client.delete(url)).await;
        self.note(|l| l.answers.requests += 1);
        match reply {
            Reply::Status(200..=299, _) => true,
            Reply::Status(503, _) => false,
            Reply::Status(status, body) => {
                self.unexpected("DELETE /api/vdi/sessions", status, &body);
                false
            }
            Reply::Transport => {
                self.note(|l| l.answers.transport_errors += 1);
                false
            }
        }
    }

    fn placing(&self, i: usize) {
        let mut st = self.state(i);
        st.holding = Holding::Placing;
        st.stint = None;
        st.asking_since_ms = None;
    }

    /// Applies what a request told student `i`.
    pub(super) fn apply(&self, i: usize, told: &Told) {
        match told {
            // A seat whose desktop is still starting: a promotion seen
            // half-way, or a paced start.
            Told::Starting => self.placing(i),
            Told::Session(s) if s.state == "reserved" => self.placing(i),
            Told::Session(s) => {
                let mut st = self.state(i);
                let new = st.dispatch.as_deref() != Some(s.dispatch_id.as_str());
                st.dispatch = Some(s.dispatch_id.clone());
                st.holding = Holding::Seated {
                    worker: s.worker_code.clone(),
                    since: Instant::now(),
                };
                st.stint = None;
                st.asking_since_ms = None;
                drop(st);
                let at = s.activated_at.unwrap_or(s.reserved_at);
                self.note(|l| {
                    if new {
                        l.placements.push(at);
                    }
                    match s.outcome.as_deref() {
                        Some("existing") => l.answers.existing += 1,
                        Some(_) => l.answers.placed += 1,
                        None => {}
                    }
                });
            }
            Told::Queued(q, sent_ms, answered_ms) => {
                let mut st = self.state(i);
                match st.stint.filter(|_| st.holding == Holding::Queued) {
                    Some(stint) => {
                        if q.position > stint.position {
                            st.position_rises += 1;
                        }
                        st.stint = Some(Stint {
                            position: q.position,
                            ..stint
                        });
                    }
                    None => {
                        let since = st.asking_since_ms.take().unwrap_or(*sent_ms);
                        st.stint = Some(Stint {
                            sent_ms: since.min(*sent_ms),
                            answered_ms: *answered_ms,
                            position: q.position,
                        });
                    }
                }
                st.holding = Holding::Queued;
                drop(st);
                self.note(|l| l.answers.queued += 1);
            }
            Told::Refused => self.note(|l| l.answers.refused += 1),
            Told::Gone => {
                let mut st = self.state(i);
                st.holding = Holding::Nothing;
                st.stint = None;
                st.asking_since_ms = None;
            }
            Told::Failed => {}
        }
    }

    /// A click: one request, or two at once through two doors for a
    /// double-clicking student's first click.
    pub(super) async fn click(&self, i: usize, door: &mut usize, double: bool) {
        if !double {
            let told = self.post(i, *door).await;
            if matches!(told, Told::Failed) {
                *door += 1;
            }
            self.apply(i, &told);
            return;
        }
        let (a, b) = tokio::join!(self.post(i, *door), self.post(i, *door + 1));
        // A seat held: a desktop, or one starting (paced starts).
        let seated = |t: &Told| matches!(t, Told::Session(_) | Told::Starting);
        let dispatch = |t: &Told| match t {
            Told::Session(s) => Some(s.dispatch_id.clone()),
            _ => None,
        };
        self.note(|l| {
            let d = &mut l.doubles;
            d.students += 1;
            let pair = [(&a, &b), (&b, &a)];
            if pair
                .iter()
                .any(|(x, y)| seated(x) && matches!(y, Told::Refused))
            {
                d.refused_while_held += 1;
            }
            if pair
                .iter()
                .any(|(x, y)| seated(x) && matches!(y, Told::Queued(..)))
            {
                d.queued_while_held += 1;
            }
            // A starting answer names no dispatch: only two desktops can
            // differ.
            if let (Some(x), Some(y)) = (dispatch(&a), dispatch(&b))
                && x != y
            {
                d.two_dispatches += 1;
            }
        });
        // What the student sees: a desktop if either answered one. Two
        // places in the queue were read at two instants while the queue
        // moved: the nearer one is the newer, and is seen last (seen the
        // other way round, the place would seem to go up).
        let rank = |t: &Told| match t {
            Told::Session(_) => (4, 0),
            Told::Starting => (3, 0),
            Told::Queued(q, ..) => (2, u32::MAX - q.position),
            Told::Refused | Told::Gone => (1, 0),
            Told::Failed => (0, 0),
        };
        let (first, second) = if rank(&a) >= rank(&b) { (b, a) } else { (a, b) };
        self.apply(i, &first);
        self.apply(i, &second);
        if matches!(second, Told::Failed) {
            *door += 1;
        }
    }
}
