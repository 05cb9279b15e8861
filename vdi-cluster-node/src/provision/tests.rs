use std::os::unix::fs::PermissionsExt;

use super::*;

fn key() -> SessionKey {
    SessionKey::parse("exam-1", "student-1").unwrap()
}

fn open() -> NetworkPolicy {
    NetworkPolicy::default()
}

fn worker() -> WorkerId {
    WorkerId::parse("code", "w1").unwrap()
}

fn script(dir: &std::path::Path, body: &str) -> PathBuf {
    let path = dir.join("provision.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vdi-provision-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn simulated_sessions_and_prewarmed_machines() {
    let sim = SimulatedProvisioner::new(worker(), "127.0.0.1", Duration::ZERO, 0.0);
    let s = sim.allocate(&key(), None, &open()).await.unwrap();
    assert_eq!(s["prewarmed"], false);
    assert_eq!(s["userId"], "student-1");
    let m = sim.prewarm(&key().exam_id, &open()).await.unwrap();
    let s = sim.allocate(&key(), Some(&m), &open()).await.unwrap();
    assert_eq!(s["prewarmed"], true);
    assert_eq!(s["machineId"], m.0["machineId"]);
    let failing = SimulatedProvisioner::new(worker(), "h", Duration::ZERO, 1.0);
    assert!(matches!(
        failing.allocate(&key(), None, &open()).await,
        Err(ProvisionError::Failed(_))
    ));
}

#[tokio::test]
async fn the_program_sees_the_ids_and_its_json_comes_back() {
    let dir = temp_dir("ok");
    let program = script(
        &dir,
        r#"case "$VDI_ACTION" in
  allocate) printf '{"action":"%s","exam":"%s","user":"%s","machine":%s,"secret":"%s"}' "$VDI_ACTION" "$VDI_EXAM_ID" "$VDI_USER_ID" "${VDI_MACHINE:-null}" "$WORKER_CLUSTER_TOKEN" ;;
  prewarm) printf '{"vm":"pre-%s"}' "$VDI_EXAM_ID" ;;
  release) test -n "$VDI_SESSION" || exit 3 ;;
  discard) test -n "$VDI_MACHINE" || exit 4 ;;
esac"#,
    );
    let p = CommandProvisioner::new(program, worker(), Duration::from_secs(10));
    let s = p.allocate(&key(), None, &open()).await.unwrap();
    assert_eq!(s["exam"], "exam-1");
    assert_eq!(s["user"], "student-1");
    assert_eq!(s["machine"], Value::Null);
    assert_eq!(s["secret"], "", "secrets are not passed to the program");
    let m = p.prewarm(&key().exam_id, &open()).await.unwrap();
    assert_eq!(m.0["vm"], "pre-exam-1");
    let s = p.allocate(&key(), Some(&m), &open()).await.unwrap();
    assert_eq!(s["machine"]["vm"], "pre-exam-1");
    p.release(&key(), &s).await.unwrap();
    p.discard(&key().exam_id, &m).await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn failures_bad_output_and_timeouts() {
    let dir = temp_dir("bad");
    let program = script(
        &dir,
        r#"case "$VDI_USER_ID" in
  fail) echo "no image sot-exam-linux" >&2; exit 2 ;;
  text) echo "started" ;;
  slow) sleep 5 ;;
esac"#,
    );
    let p = CommandProvisioner::new(program, worker(), Duration::from_millis(500));
    let k = |user: &str| SessionKey::parse("exam-1", user).unwrap();
    let e = p.allocate(&k("fail"), None, &open()).await.unwrap_err();
    assert!(e.to_string().contains("no image sot-exam-linux"), "{e}");
    let e = p.allocate(&k("text"), None, &open()).await.unwrap_err();
    assert!(matches!(e, ProvisionError::BadOutput(_)), "{e}");
    let e = p.allocate(&k("slow"), None, &open()).await.unwrap_err();
    assert!(matches!(e, ProvisionError::Timeout(_)), "{e}");
    let missing = CommandProvisioner::new(dir.join("nope"), worker(), Duration::from_secs(1));
    assert!(matches!(
        missing.allocate(&key(), None, &open()).await,
        Err(ProvisionError::Spawn { .. })
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_check_reports_the_image_its_checks_and_failures() {
    let dir = temp_dir("check");
    let program = script(
        &dir,
        r#"[ "$VDI_ACTION" = check ] || exit 9
case "$VDI_EXAM_ID" in
  ok) echo '{"image":"sot-exam-linux","imagePresent":true,"startMs":1500}' ;;
  missing) echo '{"image":"sot-exam-linux","imagePresent":false}' ;;
  allow) echo '{"checks":[{"name":"network-allow-list","ok":false,"detail":"lms down"}]}' ;;
  broken) echo "qemu: cannot allocate memory" >&2; exit 1 ;;
esac"#,
    );
    let p = CommandProvisioner::new(program, worker(), Duration::from_secs(10));
    let exam = |id: &str| ExamId::parse("examId", id).unwrap();
    let ok = check::run_check(&p, &exam("ok"), &open()).await;
    assert!(ok.started);
    assert_eq!(ok.start_ms, 1500, "the program's own measure");
    assert_eq!(ok.image.as_deref(), Some("sot-exam-linux"));
    let missing = check::run_check(&p, &exam("missing"), &open()).await;
    assert!(!missing.started);
    assert_eq!(missing.image_present, Some(false));
    let allow = check::run_check(&p, &exam("allow"), &open()).await;
    assert!(allow.started);
    assert!(!allow.checks[0].ok);
    let broken = check::run_check(&p, &exam("broken"), &open()).await;
    assert!(!broken.started);
    assert!(broken.error.unwrap().contains("cannot allocate memory"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_simulated_check_answers_as_told() {
    let exam = key().exam_id;
    let sim = |c| SimulatedProvisioner::new(worker(), "h", Duration::ZERO, 0.0).with_check(c);
    let passes = check::run_check(&sim(SimulatedCheck::Passes), &exam, &open()).await;
    assert!(passes.started && passes.error.is_none());
    let fails = check::run_check(&sim(SimulatedCheck::Fails), &exam, &open()).await;
    assert!(!fails.started);
    assert!(fails.error.unwrap().contains("simulated check failure"));
    let missing = check::run_check(&sim(SimulatedCheck::ImageMissing), &exam, &open()).await;
    assert_eq!(missing.image_present, Some(false));
    let allow = check::run_check(&sim(SimulatedCheck::AllowListFails), &exam, &open()).await;
    assert_eq!(allow.checks[0].name, "network-allow-list");
    let slow = SimulatedCheck::parse("slow", Duration::from_millis(20)).unwrap();
    assert_eq!(slow, SimulatedCheck::Slow(Duration::from_millis(20)));
    let slow = check::run_check(&sim(slow), &exam, &open()).await;
    assert!(slow.started && slow.error.is_none());
    assert_eq!(SimulatedCheck::parse("sometimes", Duration::ZERO), None);
}
