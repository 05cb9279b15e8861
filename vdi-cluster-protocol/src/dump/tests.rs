use serde_json::json;
use vdi_cluster_core::worker::WorkerDescription;

use super::*;

fn contents() -> StoreContents {
    let mut record = WorkerRecord::registered(
        WorkerId::parse("code", "w-1").unwrap(),
        WorkerDescription::default(),
        Timestamp(1_000),
    );
    record.unrecorded = 2;
    StoreContents {
        workers: vec![record],
        ..StoreContents::default()
    }
}

#[test]
fn a_dump_keeps_what_is_stored_beside_a_record() {
    let dump = StoreDump::new(contents(), Timestamp(5));
    let text = serde_json::to_vec(&dump).unwrap();
    let back = StoreDump::parse(&text).unwrap();
    assert_eq!(back, dump);
    assert_eq!(back.into_contents(), contents());
}

#[test]
fn field_names_are_pinned() {
    let value = serde_json::to_value(StoreDump::new(contents(), Timestamp(5))).unwrap();
    let keys = crate::test_support::sorted_keys(&value);
    assert_eq!(
        keys,
        [
            "audit",
            "capacityRequests",
            "dispatches",
            "disruptions",
            "exams",
            "exportedAt",
            "formatVersion",
            "joinTokens",
            "outbox",
            "rehearsals",
            "scheduledDrains",
            "webhooks",
            "workerCredentials",
            "workers"
        ]
    );
    assert_eq!(value["formatVersion"], json!(4));
    assert_eq!(value["workers"][0]["unrecorded"], json!(2));
    assert_eq!(value["workers"][0]["record"]["id"], json!("w-1"));
}

#[test]
fn another_format_version_is_refused_before_its_fields() {
    let newer = json!({"formatVersion": 5, "exportedAt": 0, "somethingNew": []});
    let err = StoreDump::parse(newer.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "formatVersion");
    assert!(err.message.contains("reads 1 and 2 and 3 and 4"), "{err}");

    let none = json!({"exportedAt": 0, "workers": []});
    let err = StoreDump::parse(none.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "formatVersion");

    let err = StoreDump::parse(b"not json").unwrap_err();
    assert_eq!(err.field, "body");
}

#[test]
fn a_bad_item_is_named_by_its_place() {
    let mut value = serde_json::to_value(StoreDump::new(contents(), Timestamp(5))).unwrap();
    value["workers"][0]["record"]["reportedActive"] = json!("many");
    let err = StoreDump::parse(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "workers[0].record.reportedActive", "{err}");

    let unknown = json!({"formatVersion": 1, "exportedAt": 0, "wokers": []});
    let err = StoreDump::parse(unknown.to_string().as_bytes()).unwrap_err();
    assert!(err.message.contains("wokers"), "{err}");
}

fn exam_with_policy() -> Exam {
    let hour = std::time::Duration::from_secs(3600);
    let starts_at = Timestamp(1_780_300_800_000);
    Exam {
        id: vdi_cluster_core::ExamId::parse("examId", "math-1").unwrap(),
        name: "Math".into(),
        starts_at,
        ends_at: starts_at.plus(hour),
        students: 40,
        constraints: Default::default(),
        prewarm: Default::default(),
        teardown_sec: 300,
        queue: true,
        booked_by: "admin".into(),
        booked_at: Timestamp(0),
        updated_at: Timestamp(0),
        prewarm_started_at: None,
        prewarm_marks: Default::default(),
        network_policy: Some(vdi_cluster_core::network::NetworkPolicy {
            allowed_cidrs: vec!["103.90.220.0/22".parse().unwrap()],
            origin_ip: Some("203.210.213.198".parse().unwrap()),
            ..vdi_cluster_core::network::NetworkPolicy::restricted()
        }),
        extensions: Vec::new(),
        extra_time: Vec::new(),
        expiry_warned_through: None,
    }
}

#[test]
fn an_exams_network_policy_survives_a_dump_and_older_dumps_read() {
    let with_policy = StoreContents {
        exams: vec![exam_with_policy()],
        ..contents()
    };
    let dump = StoreDump::new(with_policy.clone(), Timestamp(5));
    let mut value = serde_json::to_value(&dump).unwrap();
    assert_eq!(
        value["exams"][0]["networkPolicy"]["allowedCidrs"],
        json!(["103.90.220.0/22"])
    );
    let back = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(back.into_contents(), with_policy);

    value["exams"][0]
        .as_object_mut()
        .unwrap()
        .remove("networkPolicy");
    let older = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(older.into_contents().exams[0].network_policy, None);
}

#[test]
fn a_format_1_dump_is_still_read_without_the_parts_format_2_added() {
    let mut value = serde_json::to_value(StoreDump::new(contents(), Timestamp(5))).unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("capacityRequests");
    object.remove("scheduledDrains");
    object.remove("disruptions");
    object.remove("rehearsals");
    object.insert("formatVersion".into(), json!(1));
    let old = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(old.format_version, 1);
    assert_eq!(old.into_contents(), contents());

    // A part format 1 does not have, in a dump that says it is of format 1.
    value["scheduledDrains"] = json!([{
        "id": "sa_1", "worker": "w-1", "kind": "drain", "at": 10, "actor": "alice",
        "reason": "patch", "createdAt": 1, "state": {"is": "pending"}
    }]);
    let err = StoreDump::parse(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "scheduledDrains", "{err}");
    value["formatVersion"] = json!(2);
    let current = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(current.scheduled_drains[0].id, "sa_1");
}

#[test]
fn a_format_2_dump_is_still_read_without_the_ledger() {
    let entry = vdi_cluster_core::ledger::Disruption::new(
        vdi_cluster_core::SessionKey::parse("e1", "u1").unwrap(),
        vdi_cluster_core::ledger::DisruptionKind::WorkerLost,
        Timestamp(1_000),
        Timestamp(4_000),
        vec![WorkerId::parse("code", "w-1").unwrap()],
        "dsp_1",
    );
    let with_ledger = StoreContents {
        disruptions: vec![entry],
        ..contents()
    };
    let mut value =
        serde_json::to_value(StoreDump::new(with_ledger.clone(), Timestamp(5))).unwrap();
    assert_eq!(value["disruptions"][0]["kind"], json!("workerLost"));
    let back = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(back.into_contents(), with_ledger);

    value.as_object_mut().unwrap().remove("rehearsals");
    value["formatVersion"] = json!(2);
    let err = StoreDump::parse(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "disruptions", "{err}");
    assert!(err.message.contains("format 3"), "{err}");
    value.as_object_mut().unwrap().remove("disruptions");
    let older = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(older.format_version, 2);
    assert_eq!(older.into_contents(), contents());
}

#[test]
fn a_format_3_dump_is_read_without_rehearsals_and_refused_with_them() {
    let mut value = serde_json::to_value(StoreDump::new(contents(), Timestamp(5))).unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("rehearsals");
    object.insert("formatVersion".into(), json!(3));
    let old = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(old.into_contents(), contents());
    value["rehearsals"] = json!([{
        "examId": "e", "run": 1, "by": "admin", "startedAt": 1, "updatedAt": 2,
        "workers": [{"worker": "w-1", "outcome": "imageMissing", "reason": "x", "checkedAt": 2}]
    }]);
    let err = StoreDump::parse(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "rehearsals", "{err}");
    assert!(err.message.contains("format 4"), "{err}");
    value["formatVersion"] = json!(4);
    let current = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(current.rehearsals[0].workers[0].worker.as_str(), "w-1");
}

#[test]
fn an_adopted_dispatchs_mark_survives_a_dump_and_older_dumps_read() {
    let mut adopted = vdi_cluster_core::Dispatch::reserve(
        vdi_cluster_core::SessionKey::parse("e1", "u1").unwrap(),
        WorkerId::parse("code", "w-1").unwrap(),
        Timestamp(1_000),
        Some("boot-1".into()),
        Some(7),
    );
    adopted.state = vdi_cluster_core::DispatchState::Active;
    adopted.activated_at = Some(Timestamp(1_000));
    adopted.adopted = true;
    let placed = vdi_cluster_core::Dispatch {
        key: vdi_cluster_core::SessionKey::parse("e1", "u2").unwrap(),
        adopted: false,
        ..adopted.clone()
    };
    let with_dispatches = StoreContents {
        dispatches: vec![adopted, placed],
        ..contents()
    };
    let mut value =
        serde_json::to_value(StoreDump::new(with_dispatches.clone(), Timestamp(5))).unwrap();
    assert_eq!(value["dispatches"][0]["adopted"], json!(true));
    assert_eq!(value["dispatches"][1].get("adopted"), None, "only when set");
    let back = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert_eq!(back.into_contents(), with_dispatches);

    // Written before the mark existed: read as not adopted.
    value["dispatches"][0]
        .as_object_mut()
        .unwrap()
        .remove("adopted");
    let older = StoreDump::parse(value.to_string().as_bytes()).unwrap();
    assert!(older.dispatches.iter().all(|d| !d.adopted));
}
