//! PostgreSQL, the production backend: several API and worker processes share one
//! database, so everything that coordinates them (locks, claims, notifications) lives here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use crate::billing::impl_billing_storage;
use crate::jobs::{impl_job_storage, wake_all};
use crate::lifecycle::impl_lifecycle_storage;
use crate::shared::impl_storage;
use crate::{Backend, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub struct PostgresStorage {
    pool: PgPool,
    /// Leaderships this process holds: each is a session advisory lock, kept on its own
    /// connection (taken out of the pool) so the lock lives exactly as long as that
    /// session. If the connection dies, PostgreSQL releases the lock and another process
    /// can lead.
    leaderships: Arc<tokio::sync::Mutex<HashMap<String, (String, PgConnection)>>>,
    /// Wakes this process's job workers; fed by a `LISTEN` on [`JOB_CHANNEL`], so work
    /// queued by any process wakes every process.
    job_signal: Arc<Notify>,
    listening: Arc<AtomicBool>,
}

/// The channel job work is announced on. Notifications carry no payload: workers claim by
/// querying, so a lost notification costs at most one poll interval.
const JOB_CHANNEL: &str = "optimizer_job_work";

/// The advisory-lock key of a leadership name: the first 8 bytes of its SHA-256, stable
/// across processes and versions.
fn advisory_key(name: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("ultimate-optimizer:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl PostgresStorage {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PostgresStorage {
            pool,
            leaderships: Arc::default(),
            job_signal: Arc::default(),
            listening: Arc::default(),
        })
    }

    /// `pg_try_advisory_lock` on a dedicated session. A leader calling again proves its
    /// session is still alive; a dead session is dropped (its lock is gone with it) and the
    /// lock is tried afresh.
    async fn try_lead_impl(
        &self,
        name: &str,
        holder: &str,
        _ttl: chrono::Duration,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let mut held = self.leaderships.lock().await;
        if let Some((current, connection)) = held.get_mut(name) {
            if current != holder {
                return Ok(false);
            }
            if connection.ping().await.is_ok() {
                return Ok(true);
            }
            held.remove(name);
        }
        let mut connection = self.pool.acquire().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(advisory_key(name))
            .fetch_one(&mut connection)
            .await?;
        if locked {
            held.insert(name.to_owned(), (holder.to_owned(), connection));
        } else {
            connection.close().await.ok();
        }
        Ok(locked)
    }

    async fn resign_lead_impl(&self, name: &str, holder: &str) -> Result<()> {
        let mut held = self.leaderships.lock().await;
        if held.get(name).is_some_and(|(current, _)| current == holder) {
            if let Some((_, mut connection)) = held.remove(name) {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(advisory_key(name))
                    .execute(&mut connection)
                    .await
                    .ok();
                connection.close().await.ok();
            }
        }
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Row locks and unique indexes already serialize conflicting writers on PostgreSQL, so
    /// a plain transaction is enough.
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    async fn signal_job_work(&self) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOB_CHANNEL)
            .execute(&self.pool)
            .await?;
        wake_all(&self.job_signal);
        Ok(())
    }

    async fn await_job_work(&self, timeout: Duration) {
        self.ensure_job_listener();
        tokio::time::timeout(timeout, self.job_signal.notified())
            .await
            .ok();
    }

    /// Starts (once) the task that turns notifications on [`JOB_CHANNEL`] into local
    /// wake-ups. It reconnects after a lost connection (waking the workers, since
    /// notifications sent meanwhile are gone) and ends at the first notification after the
    /// storage is dropped.
    fn ensure_job_listener(&self) {
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool = self.pool.clone();
        let signal = Arc::downgrade(&self.job_signal);
        tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => match listener.listen(JOB_CHANNEL).await {
                        Ok(()) => loop {
                            // `try_recv` is awaited to completion (never raced against a
                            // timer), so no notification is dropped half-read.
                            let received = listener.try_recv().await;
                            let Some(signal) = signal.upgrade() else {
                                return;
                            };
                            match received {
                                Ok(Some(_)) => wake_all(&signal),
                                Ok(None) => {
                                    tracing::warn!("job wake-up connection lost; reconnecting");
                                    wake_all(&signal);
                                }
                                Err(err) => {
                                    tracing::warn!(error.cause = %err, "job wake-up listener failed");
                                    break;
                                }
                            }
                        },
                        Err(err) => {
                            tracing::warn!(error.cause = %err, "LISTEN for job wake-ups failed")
                        }
                    },
                    Err(err) => {
                        tracing::warn!(error.cause = %err, "job wake-up listener cannot connect")
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                match signal.upgrade() {
                    Some(signal) => wake_all(&signal),
                    None => return,
                }
            }
        });
    }

    /// sqlx takes an advisory lock while migrating, so several processes starting at once
    /// apply each migration exactly once.
    async fn run_migrations(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

impl_storage!(PostgresStorage, Postgres, Backend::Postgres);
// Several workers claim at once: each skips the rows another holds instead of queueing on them.
impl_job_storage!(
    PostgresStorage,
    Postgres,
    " FOR UPDATE SKIP LOCKED",
    " FOR UPDATE"
);
impl_billing_storage!(PostgresStorage, Postgres, " FOR UPDATE");
// Retention skips jobs another transaction holds (a retry about to run them again) and
// locks the items it deletes.
impl_lifecycle_storage!(
    PostgresStorage,
    Postgres,
    " FOR UPDATE SKIP LOCKED",
    " FOR UPDATE"
);
