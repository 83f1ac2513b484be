//! The scheduler: periodic tasks that must run once across all processes (every
//! `optimizer serve` and `optimizer worker` against one database). Each tick, the process
//! holding the leadership (a PostgreSQL advisory lock, or a lease row on SQLite) queues the
//! due work and, every [`RETENTION_INTERVAL`], runs the retention task
//! ([`crate::retention`]); the others wait, and take over if the leader goes away.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use storage::Storage;

use crate::retention::{run_retention, RetentionPolicy, RetentionReport};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The leadership name of the scheduler.
pub const SCHEDULER_LEADERSHIP: &str = "scheduler";
/// Stores with automatic sync get an incremental sync this often.
pub const SCHEDULED_SYNC_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// How often the scheduler looks for due work (and a SQLite leader renews its lease).
pub const SCHEDULER_TICK: Duration = Duration::from_secs(30);

/// One scheduler tick: if this process leads, queue the due syncs. Returns how many were
/// queued, or `None` when another process leads.
pub async fn tick(
    storage: &dyn Storage,
    holder: &str,
    interval: Duration,
) -> Result<Option<u64>, storage::StorageError> {
    let now = Utc::now();
    // The lease outlives a few missed ticks, so a busy leader does not flap.
    let ttl = chrono::Duration::from_std(SCHEDULER_TICK * 4).unwrap_or_default();
    if !storage
        .try_lead(SCHEDULER_LEADERSHIP, holder, ttl, now)
        .await?
    {
        return Ok(None);
    }
    let interval = chrono::Duration::from_std(interval).unwrap_or_default();
    let queued = storage.enqueue_scheduled_syncs(now, interval).await?;
    if queued > 0 {
        tracing::info!(sync.queued = queued, "queued scheduled syncs");
    }
    run_billing_calendar(storage, now).await?;
    Ok(Some(queued))
}

/// The billing calendar: credits reset on each account's reset date, and canceled
/// subscriptions whose period ended move to the free plan. Both are idempotent, so a
/// leader that changes mid-tick cannot apply them twice.
pub async fn run_billing_calendar(
    storage: &dyn Storage,
    now: chrono::DateTime<Utc>,
) -> Result<(), storage::StorageError> {
    let reset = storage.reset_due_credits(now).await?;
    if reset > 0 {
        tracing::info!(billing.reset = reset, "reset monthly credits");
    }
    let ended = storage.end_canceled_periods(now).await?;
    if ended > 0 {
        tracing::info!(
            billing.downgraded = ended,
            "moved accounts whose canceled plan ended to the free plan"
        );
    }
    Ok(())
}

/// How often the leader runs the retention task. Old data has no urgency, so hourly is
/// plenty; a pass that left a backlog is followed by another at the next tick.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// If this process leads, one retention pass; `None` when another process leads.
pub async fn retention_tick(
    storage: &dyn Storage,
    holder: &str,
    policy: &RetentionPolicy,
) -> Result<Option<RetentionReport>, storage::StorageError> {
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(SCHEDULER_TICK * 4).unwrap_or_default();
    if !storage
        .try_lead(SCHEDULER_LEADERSHIP, holder, ttl, now)
        .await?
    {
        return Ok(None);
    }
    run_retention(storage, policy, now).await.map(Some)
}

/// Runs the scheduler every `tick_every` until `shutdown`, then gives up the leadership so
/// another process takes over at once.
pub async fn run_scheduler(
    storage: Arc<dyn Storage>,
    holder: String,
    interval: Duration,
    tick_every: Duration,
    retention: RetentionPolicy,
    wake_sync: Arc<Notify>,
    shutdown: CancellationToken,
) {
    // A process that becomes leader runs retention at once: passes are idempotent, and
    // the previous leader's schedule is not known here.
    let mut retention_due = tokio::time::Instant::now();
    loop {
        match tick(storage.as_ref(), &holder, interval).await {
            Ok(Some(queued)) if queued > 0 => wake_sync.notify_waiters(),
            Ok(_) => {}
            Err(err) => tracing::error!(error.cause = %err, "scheduler tick failed; retrying"),
        }
        if tokio::time::Instant::now() >= retention_due {
            // Cancelling mid-pass drops the open batch's transaction, which rolls it back.
            let pass = tokio::select! {
                () = shutdown.cancelled() => break,
                pass = retention_tick(storage.as_ref(), &holder, &retention) => pass,
            };
            match pass {
                Ok(Some(report)) if report.complete => {
                    retention_due = tokio::time::Instant::now() + RETENTION_INTERVAL;
                }
                // A backlog remains, or another process leads (and this one may lead
                // later): look again at the next tick.
                Ok(_) => {}
                Err(err) => tracing::error!(error.cause = %err, "retention failed; retrying"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(tick_every) => {}
        }
    }
    if let Err(err) = storage.resign_lead(SCHEDULER_LEADERSHIP, &holder).await {
        tracing::warn!(error.cause = %err, "could not resign the scheduler leadership");
    }
    tracing::info!("scheduler stopped");
}
