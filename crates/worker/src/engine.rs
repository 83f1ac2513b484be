//! The durable job engine (ARCHITECTURE §4): claims items in batches under a lease, works
//! them concurrently, and records each outcome under the claim's token.
//!
//! - **Wake-ups**: [`storage::JobStorage::wait_for_job_work`] (`LISTEN/NOTIFY` on
//!   PostgreSQL, an in-process signal on SQLite) with a slow poll as backstop: retries that
//!   come due and work queued by other SQLite processes are found by the poll.
//! - **Leases**: a claim's lease is extended by a heartbeat independent of the work, so a
//!   slow provider call never loses its item; a crashed process stops heartbeating and its
//!   items are recovered once the lease expires. Completions are fenced by the token, so
//!   a late answer after recovery changes nothing.
//! - **Retries**: a retryable error goes back to the queue after an exponential backoff
//!   with jitter, never sooner than the provider's `Retry-After`; past the last attempt, or
//!   on a fatal error, the item fails and is refunded.
//! - **Rate limit**: provider calls per minute are capped (configuration), the cap halves
//!   when the provider answers 429 and grows back with successes, and a 429's
//!   `Retry-After` pauses every call of the process.
//! - **Shutdown**: stop claiming, let in-flight items finish until a deadline, then hand
//!   the rest back without counting their attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use domain::{ContentValue, RetryPolicy};
use rand::Rng;
use storage::{ClaimedItem, ItemOutcome, ItemResult, Storage};
use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio_util::sync::CancellationToken;

/// What working an item produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedItem {
    pub before: ContentValue,
    pub after: ContentValue,
    pub product_revision: i64,
}

/// Why working an item failed, classified for the retry decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// Stable code shown to merchants next to the message (e.g. `provider_unavailable`).
    pub code: String,
    pub message: String,
    /// Timeouts, 429s and 5xx are worth another attempt; bad input or output is not.
    pub retryable: bool,
    /// The provider said how long to wait.
    pub retry_after: Option<Duration>,
    /// The provider refused for rate reasons: slow the whole process down.
    pub rate_limited: bool,
}

impl ItemError {
    pub fn fatal(code: &str, message: impl Into<String>) -> Self {
        ItemError {
            code: code.to_owned(),
            message: message.into(),
            retryable: false,
            retry_after: None,
            rate_limited: false,
        }
    }
}

/// Works one claimed item (a text rewrite, later an image edit). Implementations must be
/// idempotent per item: after a crash an item may be worked again.
#[async_trait]
pub trait ItemProcessor: Send + Sync {
    async fn process(&self, item: &ClaimedItem) -> Result<ProcessedItem, ItemError>;
}

/// The engine's knobs; every one is configuration, none a constant in the code.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Items worked at once by this process.
    pub concurrency: usize,
    /// Most items taken by one claim.
    pub batch_size: usize,
    pub lease: Duration,
    /// How often held leases are extended; a third of the lease or less.
    pub heartbeat: Duration,
    /// The backstop poll when no wake-up arrives.
    pub poll: Duration,
    /// How often expired leases are looked for.
    pub recovery_interval: Duration,
    pub retry: RetryPolicy,
    /// Provider calls per minute for this process; `None` leaves only the 429 back-off.
    pub rate_limit_per_minute: Option<u32>,
    /// How long in-flight items may run on after shutdown was asked for.
    pub drain_deadline: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            concurrency: 16,
            batch_size: 32,
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(15),
            poll: Duration::from_secs(5),
            recovery_interval: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            rate_limit_per_minute: None,
            drain_deadline: Duration::from_secs(20),
        }
    }
}

/// Caps provider calls per second, adapting to the provider's 429s.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<LimiterState>,
}

/// Tokio's clock, so the limiter follows the runtime's time (and tests can control it).
type Instant = tokio::time::Instant;

#[derive(Debug)]
struct LimiterState {
    /// The configured rate (calls per second), the ceiling of `current`.
    ceiling: Option<f64>,
    current: Option<f64>,
    next_slot: Instant,
    paused_until: Instant,
}

impl RateLimiter {
    pub fn new(per_minute: Option<u32>) -> Self {
        let rate = per_minute.filter(|n| *n > 0).map(|n| f64::from(n) / 60.0);
        let now = Instant::now();
        RateLimiter {
            state: Mutex::new(LimiterState {
                ceiling: rate,
                current: rate,
                next_slot: now,
                paused_until: now,
            }),
        }
    }

    /// Waits for the next call slot.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                if state.paused_until > now {
                    state.paused_until - now
                } else if let Some(rate) = state.current {
                    let slot = state.next_slot.max(now);
                    state.next_slot = slot + Duration::from_secs_f64(1.0 / rate);
                    let wait = slot - now;
                    drop(state);
                    tokio::time::sleep(wait).await;
                    return;
                } else {
                    return;
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The provider said "too many": pause every call for `retry_after` (1 s if it did not
    /// say) and halve the rate.
    pub async fn throttled(&self, retry_after: Option<Duration>) {
        let mut state = self.state.lock().await;
        let until = Instant::now() + retry_after.unwrap_or(Duration::from_secs(1));
        state.paused_until = state.paused_until.max(until);
        if let Some(rate) = state.current {
            state.current = Some((rate / 2.0).max(1.0 / 60.0));
        }
    }

    /// A call went through: grow the rate back towards the configured one.
    pub async fn succeeded(&self) {
        let mut state = self.state.lock().await;
        if let (Some(rate), Some(ceiling)) = (state.current, state.ceiling) {
            state.current = Some((rate * 1.05).min(ceiling));
        }
    }

    /// The rate in force now (calls per second), for reports.
    pub async fn current_rate(&self) -> Option<f64> {
        self.state.lock().await.current
    }
}

/// Counters of what the engine did, for logs, benchmarks and tests.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub claimed: std::sync::atomic::AtomicU64,
    pub done: std::sync::atomic::AtomicU64,
    pub retried: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
    pub released: std::sync::atomic::AtomicU64,
    pub fenced: std::sync::atomic::AtomicU64,
    pub recovered: std::sync::atomic::AtomicU64,
}

impl EngineStats {
    fn add(counter: &std::sync::atomic::AtomicU64, n: u64) {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(counter: &std::sync::atomic::AtomicU64) -> u64 {
        counter.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One process's engine. Several engines (processes) can share one database.
#[derive(Clone)]
pub struct JobEngine {
    pub storage: Arc<dyn Storage>,
    pub processor: Arc<dyn ItemProcessor>,
    pub config: EngineConfig,
    pub limiter: Arc<RateLimiter>,
    pub stats: Arc<EngineStats>,
}

/// Claims whose leases this process holds, with how many of their items are unfinished.
type HeldClaims = Arc<std::sync::Mutex<HashMap<uuid::Uuid, usize>>>;

impl JobEngine {
    pub fn new(
        storage: Arc<dyn Storage>,
        processor: Arc<dyn ItemProcessor>,
        config: EngineConfig,
    ) -> Self {
        let limiter = Arc::new(RateLimiter::new(config.rate_limit_per_minute));
        JobEngine {
            storage,
            processor,
            config,
            limiter,
            stats: Arc::default(),
        }
    }

    /// Runs until `shutdown`, then drains (see the module docs) and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let held: HeldClaims = Arc::default();
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        // Cancelled at the drain deadline: in-flight work is abandoned and released.
        let hard_stop = CancellationToken::new();
        let (outcomes, received) = mpsc::unbounded_channel::<(uuid::Uuid, ItemOutcome)>();
        let recorder = tokio::spawn(record_outcomes(
            self.storage.clone(),
            received,
            held.clone(),
            self.stats.clone(),
        ));
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(run_heartbeat(
            self.storage.clone(),
            held.clone(),
            self.config.clone(),
            heartbeat_stop.clone(),
        ));

        let mut last_recovery: Option<Instant> = None;
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            if last_recovery.is_none_or(|at| at.elapsed() >= self.config.recovery_interval) {
                last_recovery = Some(Instant::now());
                match self
                    .storage
                    .recover_expired_items(Utc::now(), self.config.retry.max_attempts)
                    .await
                {
                    Ok(report) if report.requeued + report.failed > 0 => {
                        EngineStats::add(&self.stats.recovered, report.requeued + report.failed);
                        tracing::warn!(
                            items.requeued = report.requeued,
                            items.failed = report.failed,
                            "recovered items whose worker stopped"
                        );
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error.cause = %err, "lease recovery failed"),
                }
            }
            let free = slots.available_permits();
            if free == 0 {
                // Wait for a slot to free up (or shutdown).
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = slots.clone().acquire_owned() => drop(permit),
                }
                continue;
            }
            let want = free.min(self.config.batch_size.max(1)) as i64;
            let lease = chrono::Duration::from_std(self.config.lease)
                .unwrap_or(chrono::Duration::seconds(60));
            let claim = match self.storage.claim_items(want, lease, Utc::now()).await {
                Ok(claim) => {
                    failures = 0;
                    claim
                }
                Err(err) => {
                    // The database is down or restarting: back off and try again.
                    failures = failures.saturating_add(1);
                    let pause = Duration::from_millis(200 * 2u64.pow(failures.min(6)));
                    tracing::warn!(error.cause = %err, retry_in_ms = pause.as_millis() as u64, "claiming items failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            };
            if claim.items.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = self.storage.wait_for_job_work(self.config.poll) => {}
                }
                continue;
            }
            EngineStats::add(&self.stats.claimed, claim.items.len() as u64);
            held.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(claim.token, claim.items.len());
            for item in claim.items {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    // Cannot happen (we claimed at most the free slots); hand it back.
                    let _ = outcomes.send((
                        claim.token,
                        ItemOutcome {
                            item_id: item.id,
                            result: ItemResult::Release,
                        },
                    ));
                    continue;
                };
                let engine = self.clone();
                let outcomes = outcomes.clone();
                let hard_stop = hard_stop.clone();
                let token = claim.token;
                tokio::spawn(async move {
                    let result = tokio::select! {
                        result = engine.work(&item) => result,
                        () = hard_stop.cancelled() => ItemResult::Release,
                    };
                    let _ = outcomes.send((
                        token,
                        ItemOutcome {
                            item_id: item.id,
                            result,
                        },
                    ));
                    drop(permit);
                });
            }
        }

        // Drain: in-flight items may finish until the deadline, then they are released.
        let all = self.config.concurrency.max(1) as u32;
        let drained =
            tokio::time::timeout(self.config.drain_deadline, slots.acquire_many(all)).await;
        if drained.is_err() {
            tracing::warn!("drain deadline reached; releasing unfinished items");
            hard_stop.cancel();
            let _ = slots.acquire_many(all).await;
        }
        drop(outcomes);
        let _ = recorder.await;
        heartbeat_stop.cancel();
        let _ = heartbeat.await;
        tracing::info!("job engine stopped");
    }

    /// Works one item and decides what its attempt amounts to.
    async fn work(&self, item: &ClaimedItem) -> ItemResult {
        self.limiter.acquire().await;
        match self.processor.process(item).await {
            Ok(processed) => {
                self.limiter.succeeded().await;
                ItemResult::Done {
                    before: processed.before,
                    after: processed.after,
                    product_revision: processed.product_revision,
                }
            }
            Err(error) => {
                if error.rate_limited {
                    self.limiter.throttled(error.retry_after).await;
                }
                if error.retryable && self.config.retry.may_retry(item.attempts) {
                    let jitter: f64 = rand::thread_rng().gen();
                    let delay = self
                        .config
                        .retry
                        .delay(item.attempts, error.retry_after, jitter);
                    tracing::info!(
                        item.id = %item.id,
                        item.attempts = item.attempts,
                        error.code = %error.code,
                        retry_in_ms = delay.as_millis() as u64,
                        "item will be retried"
                    );
                    ItemResult::Retry {
                        at: Utc::now()
                            + chrono::Duration::from_std(delay)
                                .unwrap_or(chrono::Duration::seconds(60)),
                        code: error.code,
                        message: error.message,
                    }
                } else {
                    ItemResult::Fail {
                        code: error.code,
                        message: error.message,
                    }
                }
            }
        }
    }
}

/// Writes outcomes in batches (whatever has arrived since the last write), grouped by
/// claim. A failed write is retried: the outcomes are kept until the database takes them.
async fn record_outcomes(
    storage: Arc<dyn Storage>,
    mut received: mpsc::UnboundedReceiver<(uuid::Uuid, ItemOutcome)>,
    held: HeldClaims,
    stats: Arc<EngineStats>,
) {
    const MAX_BATCH: usize = 512;
    while let Some(first) = received.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match received.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut by_token: HashMap<uuid::Uuid, Vec<ItemOutcome>> = HashMap::new();
        for (token, outcome) in batch {
            match &outcome.result {
                ItemResult::Done { .. } => EngineStats::add(&stats.done, 1),
                ItemResult::Retry { .. } => EngineStats::add(&stats.retried, 1),
                ItemResult::Fail { .. } => EngineStats::add(&stats.failed, 1),
                ItemResult::Release => EngineStats::add(&stats.released, 1),
            }
            by_token.entry(token).or_default().push(outcome);
        }
        for (token, outcomes) in by_token {
            let mut failures = 0u32;
            loop {
                match storage.finish_items(token, &outcomes, Utc::now()).await {
                    Ok(report) => {
                        if report.fenced > 0 {
                            EngineStats::add(&stats.fenced, report.fenced);
                            tracing::warn!(
                                items.fenced = report.fenced,
                                "results refused: the items were taken over after a lease expiry"
                            );
                        }
                        break;
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        let pause = Duration::from_millis(200 * 2u64.pow(failures.min(6)));
                        tracing::warn!(error.cause = %err, retry_in_ms = pause.as_millis() as u64, "recording item results failed");
                        if failures > 40 {
                            // The lease has long expired: the items will be worked again.
                            tracing::error!(
                                items = outcomes.len(),
                                "giving up on recording item results"
                            );
                            break;
                        }
                        tokio::time::sleep(pause).await;
                    }
                }
            }
            let mut held = held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(left) = held.get_mut(&token) {
                *left = left.saturating_sub(outcomes.len());
                if *left == 0 {
                    held.remove(&token);
                }
            }
        }
    }
}

/// Extends the leases of every claim still held, every `heartbeat`.
async fn run_heartbeat(
    storage: Arc<dyn Storage>,
    held: HeldClaims,
    config: EngineConfig,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(config.heartbeat) => {}
        }
        let tokens: Vec<uuid::Uuid> = held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        let until = Utc::now()
            + chrono::Duration::from_std(config.lease).unwrap_or(chrono::Duration::seconds(60));
        for token in tokens {
            if let Err(err) = storage.extend_item_leases(token, until).await {
                tracing::warn!(error.cause = %err, "extending item leases failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Virtual time: the clock only moves when every task waits, so these are exact.
    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_spaces_calls_and_backs_off_on_429s() {
        let limiter = RateLimiter::new(Some(120));
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        // 120 a minute is one every 500 ms: the third call waits for its slot at 1 s.
        assert_eq!(start.elapsed(), Duration::from_millis(1000));

        limiter.throttled(Some(Duration::from_secs(5))).await;
        assert_eq!(limiter.current_rate().await, Some(1.0));
        let paused = tokio::time::Instant::now();
        limiter.acquire().await;
        assert!(
            paused.elapsed() >= Duration::from_secs(5),
            "the pause holds every call"
        );

        for _ in 0..100 {
            limiter.succeeded().await;
        }
        assert_eq!(
            limiter.current_rate().await,
            Some(2.0),
            "grows back to the cap"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_cap_only_a_429_holds_calls() {
        let limiter = RateLimiter::new(None);
        let start = tokio::time::Instant::now();
        for _ in 0..100 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.throttled(None).await;
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(limiter.current_rate().await, None);
    }
}
