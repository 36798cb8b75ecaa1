//! The activity log writer. A record is written before the response leaves (nothing runs after
//! it in Lambda); a failed write is retried once, and if it still fails the whole record goes to
//! the logs as one structured error line, so it can be recovered from there. Never dropped silently.

use std::sync::Arc;
use std::time::Duration;

use crate::brand_data::{ActivityRecord, ActivityStore};

const RETRY_DELAY: Duration = Duration::from_millis(25);

#[derive(Clone, Copy)]
enum Write {
    Append,
    Summary,
    Replace,
}

#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn ActivityStore>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn ActivityStore>) -> Self {
        Self { store }
    }

    /// Stores the record; on failure, after one retry, logs it in full at error level.
    pub async fn record(&self, record: &ActivityRecord) {
        self.store_or_log(record, Write::Append).await;
    }

    /// Stores a summary record (one with `attempts`) over any smaller one, the same way.
    pub async fn record_summary(&self, record: &ActivityRecord) {
        self.store_or_log(record, Write::Summary).await;
    }

    /// Stores the record in place of the one written earlier under its time and request id (a
    /// read's record written before its rate check refused it), the same way.
    pub async fn replace(&self, record: &ActivityRecord) {
        self.store_or_log(record, Write::Replace).await;
    }

    async fn store_or_log(&self, record: &ActivityRecord, write: Write) {
        let attempt = || async {
            match write {
                Write::Append => self.store.append_activity(record).await,
                Write::Summary => self.store.record_activity_summary(record).await,
                Write::Replace => self.store.replace_activity(record).await,
            }
        };
        let first = match attempt().await {
            Ok(()) => return,
            Err(error) => error,
        };
        tokio::time::sleep(RETRY_DELAY).await;
        if let Err(second) = attempt().await {
            let serialized = serde_json::to_string(record).unwrap_or_default();
            tracing::error!(
                first_error = %first,
                error = %second,
                activity_record = %serialized,
                "activity record could not be stored; it is preserved in this log line"
            );
        }
    }
}
