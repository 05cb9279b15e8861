//! The auth matrix, generated from the route table: every route × every
//! credential → the expected status. A route added to the table is tested
//! here without anyone writing a line.

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::SessionKey;
use vdi_cluster_core::vm::VmId;
use vdi_cluster_server::auth::{Access, CredentialKind, Permit};
use vdi_cluster_server::route_table;

use crate::common::{Cred, Setup, TestServer, exam_platform_heartbeat, slots_heartbeat};

const CODE: &str = "w-auth";
const EXAM: &str = "exam-auth";
const USER: &str = "student-a";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Denied(u16),
}

fn credentials() -> Vec<Cred> {
    vec![
        Cred::None,
        Cred::Wrong,
        Cred::Worker,
        Cred::Cluster,
        Cred::Service,
        Cred::Proctor,
        Cred::Admin,
        Cred::Student("student-b".into()),
        Cred::Student(USER.into()),
        Cred::Expired,
        Cred::AlgNone,
        Cred::WrongSecret,
    ]
}

/// Worker routes that take only the worker's own credential (no
/// credential of the matrix is one): the shared token is refused.
fn own_credential_only(path: &str) -> bool {
    path.ends_with("/credential/rotate")
}

fn expected(access: Access, path: &str, cred: &Cred) -> Expect {
    use Expect::{Allowed, Denied};
    if own_credential_only(path) {
        return Denied(401);
    }
    let own_student = matches!(cred, Cred::Student(s) if s == USER);
    // Valid JWTs whose role does not fit are 403; the exam application's
    // SERVICE token opens nothing but the session API.
    let student = matches!(cred, Cred::Student(_) | Cred::Service);
    match access {
        Access::Public => Allowed,
        Access::Worker => match cred {
            Cred::Worker => Allowed,
            _ => Denied(401),
        },
        Access::OwnWorker => match cred {
            Cred::Admin => Allowed,
            // Valid credentials that may not: the shared token proves only
            // "some worker".
            Cred::Worker | Cred::Proctor => Denied(403),
            _ if student => Denied(403),
            _ => Denied(401),
        },
        Access::Operator => match cred {
            Cred::Admin | Cred::Proctor => Allowed,
            _ if student => Denied(403),
            _ => Denied(401),
        },
        Access::Admin => match cred {
            Cred::Admin => Allowed,
            Cred::Proctor => Denied(403),
            _ if student => Denied(403),
            _ => Denied(401),
        },
        // The cluster token (every worker holds it) opens no route here.
        Access::Session => match cred {
            Cred::Admin | Cred::Proctor | Cred::Service => Allowed,
            _ if own_student => Allowed,
            _ if student => Denied(403),
            _ => Denied(401),
        },
        Access::Service => match cred {
            Cred::Admin | Cred::Proctor | Cred::Service => Allowed,
            _ if student => Denied(403),
            _ => Denied(401),
        },
        // No credential of the matrix is a join token.
        Access::Join => Denied(401),
    }
}

/// The kind of credential `cred` is, for those the roles table lists.
fn kind(cred: &Cred) -> Option<CredentialKind> {
    Some(match cred {
        Cred::None => CredentialKind::Anonymous,
        Cred::Worker => CredentialKind::WorkerToken,
        Cred::Cluster => CredentialKind::ClusterToken,
        Cred::Service => CredentialKind::Service,
        Cred::Proctor => CredentialKind::Proctor,
        Cred::Admin => CredentialKind::Admin,
        Cred::Student(_) => CredentialKind::Student,
        Cred::Wrong | Cred::Expired | Cred::AlgNone | Cred::WrongSecret => return None,
    })
}

#[test]
fn the_documented_model_is_the_tested_one() {
    // `Access::permits` generates the README's roles table; it must say
    // what this matrix expects (on defaults: no anonymous heartbeats).
    for route in route_table() {
        // Rotation takes only the worker's own credential, a kind the
        // matrix does not have (its handler checks; tested in credentials.rs).
        if own_credential_only(route.path) {
            continue;
        }
        for cred in credentials() {
            let Some(kind) = kind(&cred) else { continue };
            let documented = match route.access.permits(kind) {
                Permit::Yes => true,
                Permit::OwnOnly => matches!(&cred, Cred::Student(s) if s == USER),
                Permit::OptIn | Permit::No => false,
            };
            let tested = expected(route.access, route.path, &cred) == Expect::Allowed;
            assert_eq!(documented, tested, "{} with {cred:?}", route.path);
        }
    }
}

/// A concrete request for a route: its path with parameters filled in, and
/// a valid body where it takes one.
fn sample(method: &Method, path: &str) -> (String, Option<Value>) {
    let mut concrete = path
        .replace("{code}", CODE)
        .replace("{examId}", EXAM)
        .replace("{userId}", USER);
    if path == "/api/vdi/vms/{id}" {
        // The VM of the student's session (allocated where a test needs it).
        let key = SessionKey::parse(EXAM, USER).unwrap();
        concrete = concrete.replace("{id}", &VmId::Session(key).to_string());
    }
    if path.ends_with("/maintenance-windows") {
        concrete.push_str("?duration=PT1H");
        if !path.contains("{code}") {
            concrete.push_str(&format!("&workers={CODE}"));
        }
    }
    let body = match (method.as_str(), path) {
        ("POST", "/api/vdi/workers/heartbeat") => {
            Some(exam_platform_heartbeat(CODE, "http://127.0.0.1:1", 0))
        }
        ("POST", "/api/vdi/workers/register") => {
            Some(json!({"code": CODE, "apiBaseUrl": "http://127.0.0.1:1"}))
        }
        ("POST", "/api/vdi/workers/join") => {
            Some(json!({"code": "w-joined", "apiBaseUrl": "http://127.0.0.1:1"}))
        }
        ("PATCH", "/api/vdi/exams/{examId}") => Some(json!({"name": "Renamed"})),
        ("PATCH", "/api/vdi/sessions/{examId}/{userId}") => {
            Some(json!({"extendSec": 60, "reason": "accommodation"}))
        }
        ("PATCH", _) => Some(json!({"isDraining": false})),
        ("POST", "/api/vdi/exams") => Some(json!({
            "examId": EXAM, "name": "Exam", "students": 1,
            "startsAt": "2099-01-01T08:00:00Z", "endsAt": "2099-01-01T09:00:00+00:00"
        })),
        ("POST", "/api/vdi/sessions") => Some(json!({"examId": EXAM, "userId": USER})),
        ("POST", "/api/vdi/exams/{examId}/prewarm") => Some(json!({"count": 1})),
        ("POST", "/api/vdi/webhooks") => Some(json!({"url": "http://127.0.0.1:9/hook"})),
        ("POST", "/api/vdi/workers/{code}/scheduled-drains") => Some(scheduled_drain()),
        _ => None,
    };
    (concrete, body)
}

#[tokio::test]
async fn every_route_times_every_credential() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&slots_heartbeat(CODE, "http://127.0.0.1:1", 8, 0))
        .await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in route_table() {
        let method = route.method.method();
        let (path, body) = sample(&method, route.path);
        // Keep the worker registered and healthy whatever the last route did.
        s.heartbeat(&slots_heartbeat(CODE, "http://127.0.0.1:1", 8, 0))
            .await;
        for cred in credentials() {
            let want = expected(route.access, route.path, &cred);
            let mut req = cred.apply(s.request(method.clone(), &path));
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            drop(r);
            checked += 1;
            let ok = match want {
                Expect::Denied(code) => status == code,
                // Past authentication: anything but an auth refusal or a bug
                // (a 503 NoCapacity is a legitimate answer).
                Expect::Allowed => status != 401 && status != 403 && status != 500,
            };
            if !ok {
                failures.push(format!(
                    "{method} {} with {cred:?}: got {status}, want {want:?}",
                    route.path
                ));
            }
        }
    }
    assert!(checked >= route_table().len() * 12);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn allowed_credentials_reach_a_success() {
    // The main allowed credential of each route gets a 2xx (or, for the
    // destructive DELETE on a worker with sessions, a clean 4xx).
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    s.heartbeat(&slots_heartbeat(CODE, "http://127.0.0.1:1", 8, 0))
        .await;
    s.allocate(EXAM, USER).await;
    for route in route_table() {
        let method = route.method.method();
        let (path, body) = sample(&method, route.path);
        let cred = match route.access {
            Access::Public | Access::Join => Cred::None,
            Access::Worker => Cred::Worker,
            Access::Operator | Access::Admin | Access::OwnWorker => Cred::Admin,
            Access::Session | Access::Service => Cred::Service,
        };
        if route.path == "/api/vdi/workers/{code}" && method == Method::DELETE {
            continue;
        }
        s.heartbeat(&slots_heartbeat(CODE, "http://127.0.0.1:1", 8, 0))
            .await;
        if route.path == "/api/vdi/vms/{id}" {
            // The session's VM: placed again, as the release route ran.
            s.allocate(EXAM, USER).await;
        }
        if route.path.contains("/rehearsal") {
            // Booked again: the exam's cancellation ran before.
            let (_, booking) = sample(&Method::POST, "/api/vdi/exams");
            s.send(
                Method::POST,
                "/api/vdi/exams",
                &Cred::Admin,
                booking.as_ref(),
            )
            .await;
        }
        if route.path.starts_with("/api/vdi/webhooks/") {
            let path = webhook_path(&s, &path).await;
            let status = cred
                .apply(s.request(method.clone(), &path))
                .send()
                .await
                .unwrap()
                .status();
            assert!(
                status.is_success(),
                "{method} {} with {cred:?}: {status}",
                route.path
            );
            continue;
        }
        if route.path.contains("/scheduled-drains/{id}") {
            let path = scheduled_drain_path(&s, &path).await;
            let status = cred
                .apply(s.request(method.clone(), &path))
                .send()
                .await
                .unwrap()
                .status();
            assert!(
                status.is_success(),
                "{method} {} with {cred:?}: {status}",
                route.path
            );
            continue;
        }
        // Join routes need a join token that exists.
        let needs_token = route.access == Access::Join || route.path.contains("{id}");
        let token = if needs_token {
            let created = s
                .send(Method::POST, "/api/vdi/join-tokens", &Cred::Admin, None)
                .await;
            assert_eq!(created.status, 201, "{}", created.text);
            Some(created.json)
        } else {
            None
        };
        let path = match &token {
            Some(t) => path.replace("{id}", t["id"].as_str().unwrap()),
            None => path,
        };
        let mut req = cred.apply(s.request(method.clone(), &path));
        if own_credential_only(route.path) {
            // The worker's own credential, from joining.
            let created = s
                .send(Method::POST, "/api/vdi/join-tokens", &Cred::Admin, None)
                .await;
            let joined = s
                .request(Method::POST, "/api/vdi/workers/join")
                .header("x-join-token", created.json["token"].as_str().unwrap())
                .json(&json!({"code": "w-own", "apiBaseUrl": "http://127.0.0.1:1"}))
                .send()
                .await
                .unwrap();
            let joined: Value = joined.json().await.unwrap();
            let own = joined["credential"].as_str().unwrap();
            req = s
                .request(method.clone(), &path.replace(CODE, "w-own"))
                .header("x-worker-token", own);
        }
        if route.access == Access::Join {
            let t = token.as_ref().unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned();
            req = req.header("x-join-token", t);
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let status = req.send().await.unwrap().status();
        assert!(
            status.is_success(),
            "{method} {} with {cred:?}: {status}",
            route.path
        );
    }
}

/// `path` with `{id}` an existing webhook endpoint and `{deliveryId}` a
/// failed delivery of it.
/// A scheduled drain's body: at the worker's next hour-long window.
fn scheduled_drain() -> Value {
    json!({"window": "next", "duration": "PT1H", "reason": "maintenance"})
}

/// `path` with `{id}` naming a pending scheduled drain of the worker.
async fn scheduled_drain_path(s: &TestServer, path: &str) -> String {
    let created = s
        .send(
            Method::POST,
            &format!("/api/vdi/workers/{CODE}/scheduled-drains"),
            &Cred::Admin,
            Some(&scheduled_drain()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    path.replace("{id}", created.json["id"].as_str().unwrap())
}

async fn webhook_path(s: &TestServer, path: &str) -> String {
    use vdi_cluster_core::events::{Event, EventKind};
    use vdi_cluster_core::outbox::{Attempt, Next, OutboxEntry};

    let created = s
        .send(
            Method::POST,
            "/api/vdi/webhooks",
            &Cred::Admin,
            Some(&json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let now = vdi_cluster_core::Clock::now(&vdi_cluster_core::SystemClock);
    let delivery = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let entry = OutboxEntry {
        id: delivery.clone(),
        endpoint: id.clone(),
        dedup: delivery.clone(),
        event: Event {
            at: now,
            kind: EventKind::WorkerRemoved {
                worker: vdi_cluster_core::WorkerId::parse("code", CODE).unwrap(),
            },
        },
    };
    s.store.append_outbox(&[entry], None).await.unwrap();
    let far = now.plus(std::time::Duration::from_secs(3600));
    let leased = s.store.lease_deliveries(far, far, 100).await.unwrap();
    for d in &leased {
        let attempt = Attempt {
            at: now,
            status: Some(500),
            error: None,
            latency_ms: 1,
        };
        s.store
            .finish_delivery(d, &attempt, Next::GiveUp, None)
            .await
            .unwrap();
    }
    path.replace("{id}", &id).replace("{deliveryId}", &delivery)
}
