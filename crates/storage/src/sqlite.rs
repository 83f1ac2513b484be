//! SQLite, the embedded default: one file under the data folder, WAL journal so readers
//! never wait for the writer, and a busy timeout so writers queue instead of failing.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Sqlite, Transaction};

use std::sync::Arc;

use tokio::sync::Notify;

use crate::billing::impl_billing_storage;
use crate::jobs::impl_job_storage;
use crate::lifecycle::impl_lifecycle_storage;
use crate::shared::impl_storage;
use crate::{Backend, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for the database lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct SqliteStorage {
    pool: SqlitePool,
    /// Wakes this process's job workers when work is queued. SQLite has no cross-process
    /// notification: other processes sharing the file find the work by their poll.
    job_signal: Arc<Notify>,
}

/// The database holds sessions, encrypted store keys and every merchant's catalog: it is
/// created readable by this user only (SQLite gives its `-wal` and `-shm` files the
/// database file's mode). An existing file with looser permissions is left as the operator
/// set it, with a warning.
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    database.path = %path.display(),
                    database.mode = format!("{:o}", mode & 0o777),
                    "the SQLite database is readable by other users; chmod 600 it"
                );
            }
            Ok(())
        }
        Err(err) => Err(err),
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `url`, e.g. `sqlite://data/optimizer.db`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("synchronous", "NORMAL");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
            }
        }
        if !url.contains(":memory:") && !url.contains("mode=memory") {
            create_private_file(options.get_filename()).map_err(sqlx::Error::Io)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        Ok(SqliteStorage {
            pool,
            job_signal: Arc::default(),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// `BEGIN IMMEDIATE` takes the write lock up front: a deferred transaction that read
    /// first could not upgrade its lock while another writer commits, and would fail with
    /// `SQLITE_BUSY` instead of waiting.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Leadership on SQLite is a lease row: processes sharing the file see the same row,
    /// and a leader that stops renewing loses it after `ttl`.
    async fn try_lead_impl(
        &self,
        name: &str,
        holder: &str,
        ttl: chrono::Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO leader_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind((now + ttl).timestamp_millis())
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn resign_lead_impl(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leader_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn signal_job_work(&self) -> Result<()> {
        crate::jobs::wake_all(&self.job_signal);
        Ok(())
    }

    async fn await_job_work(&self, timeout: Duration) {
        tokio::time::timeout(timeout, self.job_signal.notified())
            .await
            .ok();
    }

    async fn run_migrations(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

impl_storage!(SqliteStorage, Sqlite, Backend::Sqlite);
// One writer at a time: `BEGIN IMMEDIATE` already serializes claims, nothing to skip.
impl_job_storage!(SqliteStorage, Sqlite, "", "");
impl_billing_storage!(SqliteStorage, Sqlite, "");
impl_lifecycle_storage!(SqliteStorage, Sqlite, "", "");
