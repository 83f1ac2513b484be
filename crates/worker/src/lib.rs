//! Background work. Everything here runs identically inside `optimizer serve` (unless
//! `--no-worker`) and in `optimizer worker` processes, and stops promptly when the shared
//! shutdown token is cancelled: maintenance, the job engine ([`engine`]), the catalog sync
//! queue ([`sync`]) and the scheduler ([`scheduler`]), which also runs the retention task
//! ([`retention`]).

pub mod engine;
pub mod publish;
pub mod retention;
pub mod scheduler;
pub mod sync;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use storage::Storage;
use tokio_util::sync::CancellationToken;

/// Runs every background task of a process until `shutdown`: maintenance, the job
/// engine, the catalog sync queue and the scheduler (which acts, retention included, only
/// while this process leads).
pub async fn run_background(
    sync: sync::SyncWorker,
    engine: engine::JobEngine,
    retention: retention::RetentionPolicy,
    shutdown: CancellationToken,
) {
    let holder = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4());
    tokio::join!(
        engine.run(shutdown.clone()),
        run_maintenance(sync.storage.clone(), MAINTENANCE_INTERVAL, shutdown.clone()),
        sync::run_sync_queue(sync.clone(), shutdown.clone()),
        scheduler::run_scheduler(
            sync.storage.clone(),
            holder,
            scheduler::SCHEDULED_SYNC_INTERVAL,
            scheduler::SCHEDULER_TICK,
            retention,
            sync.wake.clone(),
            shutdown.clone(),
        ),
    );
}

/// How often maintenance runs.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Expired sessions are kept this long after expiry, so a just-expired refresh token is
/// still recognised (and answered "expired", not "unknown") for a while.
pub const SESSION_RETENTION: chrono::Duration = chrono::Duration::days(1);

/// One pass of maintenance: removes sessions and login links past their retention.
pub async fn run_maintenance_once(storage: &dyn Storage) -> Result<u64, storage::StorageError> {
    let purged = storage
        .purge_expired_sessions(Utc::now() - SESSION_RETENTION)
        .await?;
    if purged > 0 {
        tracing::info!(sessions.purged = purged, "purged expired sessions");
    }
    Ok(purged)
}

/// Runs maintenance every `interval` until `shutdown` is cancelled. Failures are logged
/// and retried on the next tick; they never stop the loop.
pub async fn run_maintenance(
    storage: Arc<dyn Storage>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(err) = run_maintenance_once(storage.as_ref()).await {
            tracing::error!(error.cause = %err, "maintenance failed; retrying next interval");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!("maintenance stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn maintenance_loop_purges_and_stops_on_shutdown() {
        let db = testkit::TestDatabase::sqlite();
        let storage = storage::connect(db.url(), 2).await.unwrap();
        storage.sync_plans(&domain::default_plans()).await.unwrap();
        let (user, account) = storage.ensure_demo_account(Utc::now()).await.unwrap();
        let link = storage::NewLoginLink {
            token_hash: "expired".into(),
            user_id: user.id,
            account_id: account.id,
            expires_at: Utc::now() - chrono::Duration::days(3),
        };
        storage.create_login_link(link, Utc::now()).await.unwrap();

        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_maintenance(
            storage.clone(),
            Duration::from_millis(20),
            shutdown.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("loop stops on shutdown")
            .unwrap();
        assert_eq!(
            run_maintenance_once(storage.as_ref()).await.unwrap(),
            0,
            "already purged"
        );
    }
}
