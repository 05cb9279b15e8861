//! `GET /api/vdi/capacity-requests`: what the scale hook was asked for,
//! for operators (empty without `--scale-command`).

use crate::common::{Setup, TestServer};

#[tokio::test]
async fn operators_list_capacity_requests() {
    let (setup, _workers) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s.get("/api/vdi/capacity-requests").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json, serde_json::json!({"requests": []}));
}
