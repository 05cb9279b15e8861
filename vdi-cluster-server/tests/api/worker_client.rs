//! The HTTP `WorkerClient` against fake workers: the wire format, the
//! cluster token, and the mapping of failures to `WorkerCallError`.

use vdi_cluster_core::{
    ExamId, SessionKey, Timestamp, WorkerCallError, WorkerClient, WorkerDescription, WorkerId,
    WorkerRecord,
};
use vdi_cluster_server::client::HttpWorkerClient;

use crate::common::{Behaviour, CLUSTER_TOKEN, FakeWorker, WORKER_CALL_TIMEOUT};

fn record(url: &str) -> WorkerRecord {
    WorkerRecord::registered(
        WorkerId::parse("code", "w-1").unwrap(),
        WorkerDescription {
            api_base_url: url.to_owned(),
            ..Default::default()
        },
        Timestamp(0),
    )
}

fn client(token: &str) -> HttpWorkerClient {
    HttpWorkerClient::new(Some(token), WORKER_CALL_TIMEOUT).unwrap()
}

#[tokio::test]
async fn speaks_the_protocol() {
    let fake = FakeWorker::start(Behaviour::Healthy).await;
    let w = record(&format!("{}/", fake.url));
    let key = SessionKey::parse("exam-1", "sv 1").unwrap();
    let c = client(CLUSTER_TOKEN);
    let session = c.allocate(&w, &key, &Default::default()).await.unwrap();
    assert_eq!(session["connection"], "rdp://fake/exam-1/sv 1");
    c.release(&w, &key).await.unwrap();
    let exam = ExamId::parse("examId", "exam-1").unwrap();
    assert_eq!(
        c.prewarm(&w, &exam, 3, &Default::default()).await.unwrap(),
        3
    );
    assert_eq!(
        fake.state
            .bad_tokens
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn maps_failures() {
    let fake = FakeWorker::start(Behaviour::Fail).await;
    let w = record(&fake.url);
    let key = SessionKey::parse("exam-1", "sv-1").unwrap();
    match client(CLUSTER_TOKEN)
        .allocate(&w, &key, &Default::default())
        .await
    {
        Err(WorkerCallError::Refused {
            status: 500,
            message,
        }) => {
            assert_eq!(message, "docker exploded");
        }
        other => panic!("{other:?}"),
    }
    match client("wrong")
        .allocate(&record(&fake.url), &key, &Default::default())
        .await
    {
        Err(WorkerCallError::Refused { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    fake.set(Behaviour::BadJson);
    assert!(matches!(
        client(CLUSTER_TOKEN)
            .allocate(&w, &key, &Default::default())
            .await,
        Err(WorkerCallError::BadAnswer(_))
    ));
    fake.set(Behaviour::Hang);
    assert!(matches!(
        client(CLUSTER_TOKEN)
            .allocate(&w, &key, &Default::default())
            .await,
        Err(WorkerCallError::Timeout)
    ));
    // Nothing listens on a port just freed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    assert!(matches!(
        client(CLUSTER_TOKEN)
            .allocate(&record(&closed), &key, &Default::default())
            .await,
        Err(WorkerCallError::Unreachable(_))
    ));
    assert!(matches!(
        client(CLUSTER_TOKEN)
            .allocate(&record(""), &key, &Default::default())
            .await,
        Err(WorkerCallError::Unreachable(_))
    ));
}
