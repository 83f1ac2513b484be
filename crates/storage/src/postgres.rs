//! PostgreSQL, the production backend: several API and worker processes share one
//! database, so everything that coordinates them (locks, claims, notifications) lives here.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::shared::impl_storage;
use crate::{Backend, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub struct PostgresStorage {
    pool: PgPool,
}

impl PostgresStorage {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PostgresStorage { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Row locks and unique indexes already serialize conflicting writers on PostgreSQL, so
    /// a plain transaction is enough.
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// sqlx takes an advisory lock while migrating, so several processes starting at once
    /// apply each migration exactly once.
    async fn run_migrations(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

impl_storage!(PostgresStorage, Postgres, Backend::Postgres);
