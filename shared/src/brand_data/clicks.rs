//! Click records: written once per click id (idempotent capture), read by id, and listed newest
//! first by time. Both views of a click live in one of [`CLICK_SHARDS`] partitions chosen by a hash
//! of the click id, so a brand's capture rate is spread over that many partitions.

use serde::{Deserialize, Serialize};

use super::{ActivityRecord, Surface};
use crate::clock::{UnixMillis, push_zero_padded};
use crate::ids::BrandId;

/// Partitions per brand for clicks: sized for a brand at 10,000 captures/s, 313 clicks/s a
/// partition, under DynamoDB's 1,000 writes/s per partition key even at 2 units a click
/// (docs/ARCHITECTURE.md, "Click write sharding").
pub const CLICK_SHARDS: u32 = 32;
pub const MAX_CLICK_ID_LEN: usize = 128;
/// Scores at or above this flag a click.
pub const FLAGGED_SCORE: u8 = 90;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickRecord {
    pub brand_id: BrandId,
    pub click_id: String,
    pub at: UnixMillis,
    pub offer_id: Option<String>,
    pub partner_id: Option<String>,
    /// `sub1` .. `sub5` of the tracking link.
    pub sub_ids: [Option<String>; 5],
    pub landing_url: Option<String>,
    pub referrer: Option<String>,
    pub source_ip: String,
    pub user_agent: String,
    /// 0-100; at or above [`FLAGGED_SCORE`] the click is flagged.
    pub fraud_score: u8,
    /// Set on a click that capture recorded: the request's audit fields, so the click item is
    /// also the activity record of its capture (the delivery log lists it from the click
    /// shards; capture's one write holds both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<CaptureAudit>,
}

/// What a new capture's activity record holds beyond the click: the fields the edge guard would
/// have written (the click gives the time, source address and user agent; status and outcome are
/// those of a new capture, 201 and `ok`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureAudit {
    pub request_id: String,
    pub method: String,
    pub target: String,
    pub latency_ms: u64,
    pub key_id: String,
    pub fingerprint: String,
    /// When the activity record expires (Unix seconds): the edge's activity retention.
    pub expires_at: i64,
}

impl ClickRecord {
    pub fn flagged(&self) -> bool {
        self.fraud_score >= FLAGGED_SCORE
    }

    /// The activity record of the capture that wrote this click, as the edge guard would have
    /// written it (a new click, answered 201), if capture wrote it.
    pub fn capture_activity(&self) -> Option<ActivityRecord> {
        let CaptureAudit {
            request_id,
            method,
            target,
            latency_ms,
            key_id,
            fingerprint,
            expires_at,
        } = self.audit.clone()?;
        Some(ActivityRecord {
            brand_id: self.brand_id.clone(),
            at: self.at,
            request_id,
            surface: Surface::Capture,
            method,
            target,
            status: 201,
            latency_ms,
            key_id,
            fingerprint,
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            outcome: "ok".to_owned(),
            attempts: None,
            expires_at,
            click_id: Some(self.click_id.clone()),
        })
    }
}

/// Which clicks to list. Times are inclusive bounds in Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickFilter {
    pub from: Option<UnixMillis>,
    pub to: Option<UnixMillis>,
    pub offer_id: Option<String>,
    pub partner_id: Option<String>,
}

impl ClickFilter {
    pub fn keeps(&self, click: &ClickRecord) -> bool {
        self.offer_id
            .as_ref()
            .is_none_or(|offer| click.offer_id.as_ref() == Some(offer))
            && self
                .partner_id
                .as_ref()
                .is_none_or(|partner| click.partner_id.as_ref() == Some(partner))
    }
}

/// Whether a click id from a tracking link can be stored: 1-128 characters of `A-Z a-z 0-9 - _ .`.
pub fn is_valid_click_id(click_id: &str) -> bool {
    !click_id.is_empty()
        && click_id.len() <= MAX_CLICK_ID_LEN
        && click_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The partition of a click id.
pub fn click_shard(click_id: &str) -> u32 {
    crc32fast::hash(click_id.as_bytes()) % CLICK_SHARDS
}

/// Time-ordered key of a click: `<ms, 13 digits>#<click id>`.
pub fn click_sort_key(click: &ClickRecord) -> String {
    let mut key = String::with_capacity(14 + click.click_id.len());
    push_zero_padded(
        &mut key,
        click.at.clamp(0, 9_999_999_999_999).unsigned_abs(),
        13,
    );
    key.push('#');
    key.push_str(&click.click_id);
    key
}

/// Whether `text` has the shape of a click position.
pub fn is_click_sort_key(text: &str) -> bool {
    text.split_once('#').is_some_and(|(millis, click_id)| {
        millis.len() == 13
            && millis.bytes().all(|b| b.is_ascii_digit())
            && is_valid_click_id(click_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_ids_and_shards() {
        assert!(is_valid_click_id("abc-123_X.y"));
        for bad in ["", "a b", "a#b", "a/b", "é", &"a".repeat(129)] {
            assert!(!is_valid_click_id(bad), "{bad}");
        }
        let shards: std::collections::HashSet<u32> = (0..1_000)
            .map(|i| click_shard(&format!("click-{i}")))
            .collect();
        assert_eq!(
            shards.len(),
            CLICK_SHARDS as usize,
            "ids spread over every shard"
        );
        assert!(is_click_sort_key("0000000001000#abc"));
        assert!(!is_click_sort_key("1000#abc"));
        assert!(!is_click_sort_key("0000000001000#a b"));
    }
}
