//! Cases of the lists a store answers a page at a time
//! ([`AuditLog::audit_page`](crate::store::AuditLog::audit_page),
//! [`Outbox::delivery_page`](crate::outbox::Outbox::delivery_page)):
//! pages follow on from one another in the list's order, and each answers
//! the whole list's length.

use super::StoreFactory;
use super::fixtures::now;
use super::outbox::{endpoint, entry};
use crate::page::Page;
use crate::store::AuditEntry;
use crate::time::Timestamp;

fn page(limit: usize, offset: usize) -> Page {
    Page::new(Some(limit), Some(offset), None).unwrap()
}

/// The audit trail's pages are newest first, follow on from one another,
/// and answer the trail's length; a page past the end is empty.
pub async fn audit_trail_pages_newest_first(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let empty = store.audit_page(page(10, 0)).await.unwrap();
    assert_eq!((empty.items.len(), empty.total), (0, 0));
    for i in 0..7u64 {
        store
            .append_audit(&AuditEntry {
                at: Timestamp(1_000 + i),
                actor: format!("admin-{i}"),
                action: "drain".into(),
                target: "w-1".into(),
                detail: serde_json::json!({ "i": i }),
            })
            .await
            .unwrap();
    }
    let actors = |p: &crate::page::Paged<AuditEntry>| -> Vec<String> {
        p.items.iter().map(|e| e.actor.clone()).collect()
    };
    let first = store.audit_page(page(3, 0)).await.unwrap();
    assert_eq!(actors(&first), ["admin-6", "admin-5", "admin-4"]);
    assert_eq!(first.total, 7);
    let second = store.audit_page(page(3, 3)).await.unwrap();
    assert_eq!(actors(&second), ["admin-3", "admin-2", "admin-1"]);
    assert_eq!(second.total, 7);
    let last = store.audit_page(page(3, 6)).await.unwrap();
    assert_eq!(actors(&last), ["admin-0"]);
    assert_eq!(last.items[0].detail, serde_json::json!({ "i": 0 }));
    let past = store.audit_page(page(3, 50)).await.unwrap();
    assert_eq!((past.items.len(), past.total), (0, 7));
    let all = store.audit_page(Page::ALL).await.unwrap();
    assert_eq!(all.items.len(), 7);
    let rest = store.audit_page(Page::new(None, Some(5), None).unwrap());
    assert_eq!(actors(&rest.await.unwrap()), ["admin-1", "admin-0"]);
    let none = store.audit_page(Page::first(0)).await.unwrap();
    assert_eq!((none.items.len(), none.total), (0, 7));
}

/// An endpoint's deliveries page newest first, follow on from one another,
/// count only that endpoint's, and a page past the end is empty.
pub async fn deliveries_page_newest_first(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t = now();
    for id in ["wh_pg", "wh_other"] {
        assert!(store.put_webhook(&endpoint(id, t)).await.unwrap());
    }
    for i in 0..5 {
        let e = entry(&format!("msg_pg{i}"), "wh_pg", &format!("kpg{i}"), t);
        assert_eq!(store.append_outbox(&[e], None).await.unwrap(), 1);
    }
    let other = entry("msg_other", "wh_other", "kother", t);
    assert_eq!(store.append_outbox(&[other], None).await.unwrap(), 1);

    let ids = |p: &crate::page::Paged<crate::outbox::Delivery>| -> Vec<String> {
        p.items.iter().map(|d| d.entry.id.clone()).collect()
    };
    let first = store.delivery_page("wh_pg", page(2, 0)).await.unwrap();
    assert_eq!(ids(&first), ["msg_pg4", "msg_pg3"]);
    assert_eq!(first.total, 5);
    let second = store.delivery_page("wh_pg", page(2, 2)).await.unwrap();
    assert_eq!(ids(&second), ["msg_pg2", "msg_pg1"]);
    let third = store.delivery_page("wh_pg", page(2, 4)).await.unwrap();
    assert_eq!(ids(&third), ["msg_pg0"]);
    assert_eq!(third.total, 5);
    let past = store.delivery_page("wh_pg", page(2, 9)).await.unwrap();
    assert_eq!((past.items.len(), past.total), (0, 5));
    let others = store.delivery_page("wh_other", Page::ALL).await.unwrap();
    assert_eq!((ids(&others), others.total), (vec!["msg_other".into()], 1));
    let unknown = store.delivery_page("wh_none", page(2, 0)).await.unwrap();
    assert_eq!((unknown.items.len(), unknown.total), (0, 0));
}
