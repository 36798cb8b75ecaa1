//! A write's own activity record before the write: the edge drafts it, the operation completes
//! it and stores it in the same call as its write.

use crate::brand_data::ActivityRecord;

/// A write's own activity record before its write: everything but its latency, taken when the
/// write is sent ([`ActivityDraft::completed`]), so the record the write carries into its
/// transaction tells how long the request took up to its last round trip. The edge makes one for
/// each write request (`edge::auth`); an operation that stores it passes
/// `activity.map(ActivityDraft::completed)` to the store in the same call as its write.
#[derive(Debug, Clone)]
pub struct ActivityDraft {
    record: ActivityRecord,
    started: std::time::Instant,
}

impl ActivityDraft {
    /// The draft of `record` (its status and latency still to come), for a request that started
    /// at `started`.
    pub fn new(record: ActivityRecord, started: std::time::Instant) -> Self {
        Self { record, started }
    }

    /// The same draft, for a request whose write answers `status` when it succeeds.
    pub fn answering(mut self, status: u16) -> Self {
        self.record.status = status;
        self
    }

    /// The record as the write stores it, its latency measured up to now.
    pub fn completed(&self) -> ActivityRecord {
        let mut record = self.record.clone();
        record.latency_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        record
    }
}
