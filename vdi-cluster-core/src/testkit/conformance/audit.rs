//! Cases of [`AuditLog`](crate::store::AuditLog).

use super::StoreFactory;
use crate::time::Timestamp;

/// The audit trail keeps entries, newest first.
pub async fn audit_trail_is_newest_first(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    for i in 0..5u64 {
        store
            .append_audit(&crate::store::AuditEntry {
                at: Timestamp(1_000 + i),
                actor: format!("admin-{i}"),
                action: "drain".into(),
                target: "w-1".into(),
                detail: serde_json::json!({ "i": i }),
            })
            .await
            .unwrap();
    }
    let recent = store.recent_audit(3).await.unwrap();
    let actors: Vec<&str> = recent.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["admin-4", "admin-3", "admin-2"]);
    assert_eq!(recent[0].detail, serde_json::json!({ "i": 4 }));
}
