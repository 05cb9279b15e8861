//! The session table's tests: idempotence, refusals, the prewarm pool
//! (claims, per-exam accounting, discards), incarnations, and which
//! network policy the provisioner is handed.

use std::time::Duration;

use super::*;
use crate::provision::SimulatedProvisioner;

fn node(max: u32, latency_ms: u64, failure_rate: f64) -> Arc<WorkerNode> {
    let code = WorkerId::parse("code", "w1").unwrap();
    let sim = SimulatedProvisioner::new(
        code.clone(),
        "127.0.0.1",
        Duration::from_millis(latency_ms),
        failure_rate,
    );
    Arc::new(WorkerNode::new(code, max, Arc::new(sim)))
}

/// No exam settings: the node's default applies.
fn none() -> DesktopSettings {
    DesktopSettings::default()
}

fn key(exam: &str, user: &str) -> SessionKey {
    SessionKey::parse(exam, user).unwrap()
}

fn admin(draining: bool, enabled: bool) -> AdminView {
    AdminView {
        status: "x".into(),
        is_draining: draining,
        is_enabled: enabled,
        drain_status: "none".into(),
    }
}

async fn settle<F: Fn() -> bool>(check: F) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn allocate_and_release_are_idempotent() {
    let n = node(2, 20, 0.0);
    let k = key("e", "u1");
    let plain = none();
    let (a, b) = tokio::join!(n.allocate(&k, &plain), n.allocate(&k, &plain));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b, "concurrent allocates share one start");
    assert_eq!(n.allocate(&k, &none()).await.unwrap(), a);
    assert_eq!(n.snapshot().active, 1);
    assert!(n.release(&k).await.unwrap());
    assert!(!n.release(&k).await.unwrap());
    assert_eq!(n.snapshot().active, 0);
}

#[tokio::test]
async fn full_disabled_and_draining_refuse_new_sessions_only() {
    let n = node(1, 0, 0.0);
    let k = key("e", "u1");
    n.allocate(&k, &none()).await.unwrap();
    assert!(matches!(
        n.allocate(&key("e", "u2"), &none()).await,
        Err(NodeError::Full { max: 1, .. })
    ));
    n.set_admin(admin(true, true));
    assert!(
        n.allocate(&k, &none()).await.is_ok(),
        "draining keeps its sessions"
    );
    n.release(&k).await.unwrap();
    assert!(matches!(
        n.allocate(&key("e", "u2"), &none()).await,
        Err(NodeError::Draining(_))
    ));
    n.set_admin(admin(false, false));
    let e = n.allocate(&key("e", "u2"), &none()).await.unwrap_err();
    assert!(e.to_string().contains("disabled"), "{e}");
    assert!(matches!(
        n.prewarm(&k.exam_id, 1, &none()),
        Err(NodeError::Disabled(_))
    ));
}

#[tokio::test]
async fn failed_starts_leave_nothing_behind() {
    let n = node(2, 0, 1.0);
    let e = n.allocate(&key("e", "u1"), &none()).await.unwrap_err();
    assert!(e.to_string().contains("simulated start failure"), "{e}");
    assert_eq!(n.snapshot().active, 0);
}

#[tokio::test]
async fn prewarmed_machines_are_claimed_by_their_exam() {
    let n = node(3, 0, 0.0);
    let exam = ExamId::parse("examId", "e").unwrap();
    assert_eq!(
        n.prewarm(&exam, 5, &none()).unwrap(),
        3,
        "within free slots"
    );
    settle(|| n.pool().0.get("e") == Some(&3)).await;
    let s = n.allocate(&key("e", "u1"), &none()).await.unwrap();
    assert_eq!(s["prewarmed"], true);
    assert_eq!(n.pool().0.get("e"), Some(&2));
    // Another exam's session takes the room of an idle machine.
    let s = n.allocate(&key("other", "u2"), &none()).await.unwrap();
    assert_eq!(s["prewarmed"], false);
    assert_eq!(n.pool().0.get("e"), Some(&1));
    assert_eq!(n.sessions().len(), 2);
}

#[tokio::test]
async fn a_discard_releases_the_exams_machines_and_their_slots() {
    let n = node(4, 0, 0.0);
    let exam = ExamId::parse("examId", "e").unwrap();
    let other = ExamId::parse("examId", "o").unwrap();
    assert_eq!(n.prewarm(&exam, 3, &none()).unwrap(), 3);
    assert_eq!(n.prewarm(&other, 1, &none()).unwrap(), 1);
    settle(|| n.pool_report().of(&exam).ready == 3).await;
    assert_eq!(n.discard_prewarm(&exam), 3);
    assert!(n.pool_report().of(&exam).is_empty());
    settle(|| n.pool_report().of(&other).ready == 1).await;
    assert_eq!(
        n.prewarm(&exam, 5, &none()).unwrap(),
        3,
        "the slots are free again"
    );
    assert_eq!(n.discard_prewarm(&other), 1);
}

#[tokio::test]
async fn failed_prewarms_are_reported_per_exam() {
    let n = node(2, 0, 1.0);
    let exam = ExamId::parse("examId", "e").unwrap();
    assert_eq!(n.prewarm(&exam, 2, &none()).unwrap(), 2);
    settle(|| n.pool_report().of(&exam).failed == 2).await;
    let pool = n.pool_report().of(&exam);
    assert_eq!((pool.starting, pool.ready), (0, 0));
    assert_eq!(n.discard_prewarm(&exam), 0);
    assert!(n.pool_report().is_empty(), "a discard forgets the failures");
}

#[tokio::test]
async fn only_the_reported_incarnation_is_stopped() {
    let n = node(2, 0, 0.0);
    let k = key("e", "u1");
    n.allocate(&k, &none()).await.unwrap();
    let snap = n.snapshot();
    let (_, old) = snap.live[0].clone();
    n.release(&k).await.unwrap();
    n.allocate(&k, &none()).await.unwrap();
    assert!(!n.release_if_incarnation(&k, old), "a newer start is kept");
    let (_, current) = n.snapshot().live[0].clone();
    assert!(n.release_if_incarnation(&k, current));
    settle(|| n.snapshot().active == 0).await;
}

/// Records the policy each start is handed.
#[derive(Debug, Default)]
struct Recording(Mutex<Vec<(&'static str, NetworkPolicy)>>);

#[async_trait::async_trait]
impl Provisioner for Recording {
    fn kind(&self) -> &'static str {
        "recording"
    }
    async fn allocate(
        &self,
        key: &SessionKey,
        _: Option<&Machine>,
        policy: &NetworkPolicy,
    ) -> Result<Value, ProvisionError> {
        self.0.lock().unwrap().push(("allocate", policy.clone()));
        Ok(serde_json::json!({ "user": key.user_id.as_str() }))
    }
    async fn release(&self, _: &SessionKey, _: &Value) -> Result<(), ProvisionError> {
        Ok(())
    }
    async fn prewarm(
        &self,
        exam: &ExamId,
        policy: &NetworkPolicy,
    ) -> Result<Machine, ProvisionError> {
        self.0.lock().unwrap().push(("prewarm", policy.clone()));
        Ok(Machine(serde_json::json!({ "exam": exam.as_str() })))
    }
    async fn discard(&self, _: &ExamId, _: &Machine) -> Result<(), ProvisionError> {
        Ok(())
    }
    async fn check(
        &self,
        _: &ExamId,
        policy: &NetworkPolicy,
    ) -> Result<vdi_cluster_protocol::node::CheckAnswer, ProvisionError> {
        self.0.lock().unwrap().push(("check", policy.clone()));
        Ok(Default::default())
    }
}

#[tokio::test]
async fn an_exams_policy_replaces_the_nodes_and_its_strict_flag_is_a_floor() {
    let default = NetworkPolicy {
        allowed_domains: vec!["neighbour.edu.vn".into()],
        ..NetworkPolicy::restricted()
    };
    let exam_policy = NetworkPolicy {
        allowed_ips: vec!["10.0.0.7".parse().unwrap()],
        enforce_strict: false,
        ..NetworkPolicy::restricted()
    };
    let recording = Arc::new(Recording::default());
    let code = WorkerId::parse("code", "w1").unwrap();
    let n = Arc::new(
        WorkerNode::new(code, 4, Arc::<Recording>::clone(&recording))
            .with_network_policy(default.clone()),
    );
    let exam = DesktopSettings {
        network_policy: Some(exam_policy.clone()),
    };
    n.allocate(&key("e", "booked"), &exam).await.unwrap();
    n.allocate(&key("e", "plain"), &none()).await.unwrap();
    assert_eq!(n.prewarm(&key("e", "x").exam_id, 1, &exam).unwrap(), 1);
    let checked = n.check(&key("e", "x").exam_id, &exam).await;
    assert!(checked.started, "{checked:?}");
    settle(|| recording.0.lock().unwrap().len() == 4).await;

    let handed = recording.0.lock().unwrap().clone();
    let applied = NetworkPolicy {
        enforce_strict: true,
        ..exam_policy
    };
    assert!(
        handed.contains(&("allocate", applied.clone())),
        "{handed:?}"
    );
    assert!(handed.contains(&("allocate", default)), "{handed:?}");
    assert!(handed.contains(&("prewarm", applied.clone())), "{handed:?}");
    assert!(
        handed.contains(&("check", applied)),
        "a rehearsal's desktop too: {handed:?}"
    );
    let sources: Vec<(String, &str)> = n
        .sessions()
        .iter()
        .map(|s| (s.key.user_id.to_string(), s.network_policy.as_str()))
        .collect();
    assert_eq!(
        sources,
        [("booked".to_owned(), "exam"), ("plain".to_owned(), "node")]
    );
}
