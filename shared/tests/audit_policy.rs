//! The audit policy under store faults: a failed activity write is retried once; if the retry
//! fails too, the complete record goes out as ONE structured error log line from which it can be
//! recovered field for field. Never dropped silently. (Its own test binary: it installs the
//! process-wide log capture.)

use std::sync::Arc;
use std::time::Duration;
use trcker_shared::brand_data::ActivityStore;

use serde_json::Value;
use trcker_shared::brand_data::faulty::FaultyBrandData;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::{ActivityRecord, Surface};
use trcker_shared::edge::audit::AuditLog;
use trcker_shared::ids::BrandId;
use trcker_shared::store::fault::{Fault, Trigger};
use trcker_shared::testing::LogCapture;

const PRESERVED: &str = "activity record could not be stored; it is preserved in this log line";

fn record(request_id: &str) -> ActivityRecord {
    ActivityRecord {
        brand_id: BrandId::parse("acme").unwrap(),
        at: 1_795_000_123_456,
        request_id: request_id.to_owned(),
        surface: Surface::Mcp,
        method: "POST".into(),
        target: "tools/call list_offers".into(),
        status: 200,
        latency_ms: 17,
        key_id: "key_0000000000aa12345678".into(),
        fingerprint: "fp_0123456789ab".into(),
        source_ip: "198.51.100.7".into(),
        user_agent: "Claude-User/1.0 (\"quoted\" \\ agent)".into(),
        outcome: "ok".into(),
        attempts: None,
        expires_at: 1_802_776_123,
        click_id: None,
    }
}

fn harness() -> (Arc<FaultyBrandData<MemoryBrandData>>, AuditLog) {
    let data = Arc::new(FaultyBrandData::new(MemoryBrandData::new()));
    let audit = AuditLog::new(data.clone());
    (data, audit)
}

async fn stored(data: &FaultyBrandData<MemoryBrandData>) -> Vec<ActivityRecord> {
    data.list_activity(
        &BrandId::parse("acme").unwrap(),
        Default::default(),
        100,
        None,
    )
    .await
    .unwrap()
    .items
}

/// The error lines that preserve a record with this request id, parsed as JSON.
fn preserving_lines(logs: &LogCapture, request_id: &str) -> Vec<Value> {
    logs.text()
        .lines()
        .filter(|line| line.contains(PRESERVED) && line.contains(request_id))
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON line ({e}): {line}"))
        })
        .collect()
}

#[tokio::test]
async fn one_failed_write_is_retried_and_stored() {
    let logs = LogCapture::install_global();
    let (data, audit) = harness();
    for fault in Fault::transient(Duration::from_millis(5)) {
        data.clear();
        data.take_calls();
        data.inject(Some("append_activity"), fault.clone(), Trigger::Next(1));
        let request_id = format!("retried-{fault:?}");
        audit.record(&record(&request_id)).await;
        assert_eq!(
            data.take_calls(),
            ["append_activity", "append_activity"],
            "{fault:?}: one retry"
        );
        assert!(
            stored(&data).await.contains(&record(&request_id)),
            "{fault:?}: the retry stored it"
        );
        assert!(
            preserving_lines(&logs, &request_id).is_empty(),
            "{fault:?}: nothing to preserve"
        );
    }
}

#[tokio::test]
async fn a_record_that_cannot_be_stored_is_one_recoverable_error_line() {
    let logs = LogCapture::install_global();
    let (data, audit) = harness();
    for fault in Fault::transient(Duration::from_millis(5)) {
        data.clear();
        data.take_calls();
        data.inject(Some("append_activity"), fault.clone(), Trigger::Always);
        let request_id = format!("preserved-{fault:?}");
        let original = record(&request_id);
        audit.record(&original).await;

        assert_eq!(
            data.take_calls(),
            ["append_activity", "append_activity"],
            "{fault:?}: written, retried once, then given up"
        );
        assert!(
            !stored(&data)
                .await
                .iter()
                .any(|r| r.request_id == request_id),
            "{fault:?}: the store really has nothing"
        );
        let lines = preserving_lines(&logs, &request_id);
        assert_eq!(
            lines.len(),
            1,
            "{fault:?}: exactly one line per lost record"
        );
        let line = &lines[0];
        assert_eq!(line["level"], "ERROR", "{line}");
        assert!(
            line["fields"]["error"]
                .as_str()
                .is_some_and(|error| error.contains(&fault.error().to_string())),
            "{fault:?}: the line says why: {line}"
        );
        let preserved = line["fields"]["activity_record"]
            .as_str()
            .unwrap_or_else(|| panic!("no activity_record field: {line}"));
        // Every field, by name and value, as the store would have held it.
        let as_json: Value = serde_json::from_str(preserved).unwrap();
        assert_eq!(as_json, serde_json::to_value(&original).unwrap());
        let recovered: ActivityRecord = serde_json::from_str(preserved).unwrap();
        assert_eq!(recovered, original, "{fault:?}: recoverable as the record");

        // Replaying the recovered record stores exactly the lost one.
        data.clear();
        data.append_activity(&recovered).await.unwrap();
        assert!(stored(&data).await.contains(&original));
    }
}
