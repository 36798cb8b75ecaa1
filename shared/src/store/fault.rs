//! The faults the test store wrappers ([`super::faulty::FaultyStore`],
//! [`crate::brand_data::faulty::FaultyBrandData`]) inject, and when: one vocabulary for both, in
//! the spirit of object_store's `ThrottledStore`. Each fault is the [`StoreError`] the DynamoDB
//! backends' `classify` produces for the real failure, so a test with an injected fault sees what
//! production would.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::StoreError;

/// What an injected call does instead of (or after) reaching the wrapped store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// DynamoDB refused for capacity (`ProvisionedThroughputExceededException`,
    /// `ThrottlingException`, a `ThrottlingError` cancellation reason): [`StoreError::Throttled`].
    Throttled,
    /// DynamoDB answered 5xx (`InternalServerError`, `ServiceUnavailable`):
    /// [`StoreError::Unavailable`].
    ServerError,
    /// No answer: the call waits this long (the configured SDK operation timeout) and then fails
    /// as the SDK's `TimeoutError` does, [`StoreError::Unavailable`].
    Timeout(Duration),
    /// The wrapped store does the work, then the answer is lost (a timeout after DynamoDB
    /// committed): [`StoreError::Unavailable`] although the write happened.
    ResponseLost,
    /// The call never answers (no timeout anywhere would end it).
    Hang,
    /// Not a failure: the call waits this long, then reaches the wrapped store. Under tokio's
    /// paused clock, a request's wall time over this latency counts the store round trips it
    /// waited on in sequence.
    Latency(Duration),
    /// Any other error, as given.
    Error(StoreError),
}

impl Fault {
    /// The three transient failures every caller must turn into 503 + `Retry-After`, a timeout
    /// lasting `timeout`.
    pub fn transient(timeout: Duration) -> [Fault; 3] {
        [
            Fault::Throttled,
            Fault::ServerError,
            Fault::Timeout(timeout),
        ]
    }

    /// The error the caller sees, as `classify` maps the real failure.
    pub fn error(&self) -> StoreError {
        match self {
            Fault::Throttled => StoreError::Throttled,
            Fault::ServerError => StoreError::Unavailable(
                "injected fault: service error (500 InternalServerError)".into(),
            ),
            Fault::Timeout(_) => {
                StoreError::Unavailable("injected fault: operation timed out".into())
            }
            Fault::ResponseLost | Fault::Hang | Fault::Latency(_) => {
                StoreError::Unavailable("injected fault: response lost".into())
            }
            Fault::Error(error) => error.clone(),
        }
    }
}

/// Which matching calls a fault applies to, counted from when it was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Every matching call, until cleared.
    Always,
    /// The next `n` matching calls.
    Next(u32),
    /// Only the `n`th matching call (1-based): the way to fail one step of a multi-step
    /// operation.
    Nth(u32),
}

#[derive(Debug)]
struct Rule<Op> {
    /// `None`: every operation.
    operation: Option<Op>,
    fault: Fault,
    trigger: Trigger,
    matched: u32,
}

impl<Op: PartialEq> Rule<Op> {
    /// Counts the call if it matches and says whether the fault applies to it.
    fn applies_to(&mut self, operation: &Op) -> bool {
        if self.operation.as_ref().is_some_and(|own| own != operation) {
            return false;
        }
        self.matched = self.matched.saturating_add(1);
        match self.trigger {
            Trigger::Always => true,
            Trigger::Next(n) => self.matched <= n,
            Trigger::Nth(n) => self.matched == n,
        }
    }
}

/// The injected faults of one wrapper, and how many calls went through it.
#[derive(Debug)]
pub struct FaultInjector<Op> {
    rules: Mutex<Vec<Rule<Op>>>,
    calls: AtomicU64,
    fired: AtomicU64,
}

impl<Op> Default for FaultInjector<Op> {
    fn default() -> Self {
        Self {
            rules: Mutex::default(),
            calls: AtomicU64::new(0),
            fired: AtomicU64::new(0),
        }
    }
}

impl<Op: PartialEq> FaultInjector<Op> {
    /// Adds a fault for `operation` (`None`: any operation). Earlier faults take precedence when
    /// several apply to one call.
    pub fn inject(&self, operation: Option<Op>, fault: Fault, trigger: Trigger) {
        self.lock().push(Rule {
            operation,
            fault,
            trigger,
            matched: 0,
        });
    }

    /// Removes every fault (the call and fired counts stay).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Calls that went through the wrapper, faulty or not.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls a fault was applied to.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule<Op>>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `call` (the wrapped store's operation) unless a fault applies to it.
    pub async fn run<T, F>(&self, operation: Op, call: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let fault = {
            let mut rules = self.lock();
            // Every matching rule counts the call, even behind one that applies.
            let mut applied = None;
            for rule in rules.iter_mut() {
                if rule.applies_to(&operation) && applied.is_none() {
                    applied = Some(rule.fault.clone());
                }
            }
            applied
        };
        let Some(fault) = fault else {
            return call.await;
        };
        self.fired.fetch_add(1, Ordering::SeqCst);
        match fault {
            Fault::Hang => std::future::pending().await,
            Fault::Timeout(wait) => {
                tokio::time::sleep(wait).await;
                Err(fault.error())
            }
            Fault::ResponseLost => {
                call.await?;
                Err(fault.error())
            }
            Fault::Latency(wait) => {
                tokio::time::sleep(wait).await;
                call.await
            }
            other => Err(other.error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn outcomes(injector: &FaultInjector<&'static str>, calls: &[&'static str]) -> Vec<bool> {
        let mut failed = Vec::new();
        for operation in calls {
            let result = injector.run(*operation, async { Ok(()) }).await;
            failed.push(result.is_err());
        }
        failed
    }

    #[tokio::test]
    async fn triggers_pick_the_calls_they_name() {
        let injector = FaultInjector::default();
        injector.inject(None, Fault::Throttled, Trigger::Nth(3));
        assert_eq!(
            outcomes(&injector, &["a", "b", "a", "b"]).await,
            [false, false, true, false]
        );
        injector.clear();
        injector.inject(Some("b"), Fault::ServerError, Trigger::Next(2));
        assert_eq!(
            outcomes(&injector, &["a", "b", "a", "b", "b"]).await,
            [false, true, false, true, false]
        );
        injector.clear();
        injector.inject(Some("a"), Fault::ServerError, Trigger::Always);
        assert_eq!(
            outcomes(&injector, &["a", "b", "a"]).await,
            [true, false, true]
        );
        assert_eq!(injector.calls(), 12);
        assert_eq!(injector.fired(), 5);
    }

    #[tokio::test]
    async fn faults_map_to_what_classify_reports() {
        let injector = FaultInjector::default();
        for (fault, transient) in [
            (Fault::Throttled, StoreError::Throttled),
            (
                Fault::ServerError,
                Fault::ServerError.error(), // Unavailable
            ),
            (
                Fault::Timeout(Duration::from_millis(1)),
                Fault::Timeout(Duration::ZERO).error(),
            ),
        ] {
            injector.clear();
            injector.inject(None, fault.clone(), Trigger::Always);
            let error = injector.run("x", async { Ok(()) }).await.unwrap_err();
            assert_eq!(error, transient, "{fault:?}");
            assert!(error.is_transient(), "{fault:?}");
        }
        assert!(matches!(
            Fault::ServerError.error(),
            StoreError::Unavailable(_)
        ));
    }

    #[tokio::test]
    async fn a_lost_response_still_runs_the_call() {
        let injector = FaultInjector::default();
        injector.inject(None, Fault::ResponseLost, Trigger::Always);
        let ran = std::sync::atomic::AtomicBool::new(false);
        let result = injector
            .run("x", async {
                ran.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(ran.load(Ordering::SeqCst));
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_answers_after_its_wait() {
        let injector = FaultInjector::default();
        injector.inject(
            None,
            Fault::Timeout(Duration::from_secs(2)),
            Trigger::Always,
        );
        let start = tokio::time::Instant::now();
        let result = injector.run("x", async { Ok(()) }).await;
        assert!(result.is_err());
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(2),
            "paused clock: exact"
        );
    }
}
