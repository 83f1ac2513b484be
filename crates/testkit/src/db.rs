//! Throwaway databases. Each test gets its own: a SQLite file in a temporary folder, or a
//! uniquely named PostgreSQL database created on the server named by `TEST_DATABASE_URL`
//! and dropped when the [`TestDatabase`] is dropped.
//!
//! Without `TEST_DATABASE_URL`, PostgreSQL tests are skipped with a loud note on a laptop
//! and fail under CI (`CI` set), so CI can never pass while silently skipping them.

use sqlx::{Connection, Executor, PgConnection};

/// The PostgreSQL server for tests, or `None` (after a loud note) when none is configured
/// outside CI.
pub fn postgres_test_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("TEST_DATABASE_URL is not set: CI must run the PostgreSQL tests")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPING a PostgreSQL test: TEST_DATABASE_URL is not set. \
                 `make test` sets it; CI fails without it. ***\n"
            );
            None
        }
    }
}

/// A database that exists for the lifetime of this value.
pub struct TestDatabase {
    url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<PostgresCleanup>,
}

struct PostgresCleanup {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh SQLite database file in its own temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDatabase {
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh, empty PostgreSQL database, or `None` when PostgreSQL tests are skipped.
    pub async fn postgres() -> Option<Self> {
        Some(Self::postgres_on(&postgres_test_url()?).await)
    }

    /// A fresh, empty database on the PostgreSQL server at `admin_url`.
    pub async fn postgres_on(admin_url: &str) -> Self {
        let admin_url = admin_url.to_owned();
        let name = format!("optimizer_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL at TEST_DATABASE_URL is unreachable: {err}"));
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("create test database");
        admin.close().await.ok();
        TestDatabase {
            url: with_database(&admin_url, &name),
            _dir: None,
            postgres: Some(PostgresCleanup { admin_url, name }),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(cleanup) = self.postgres.take() else {
            return;
        };
        // Drop may run inside a Tokio runtime, which cannot be blocked on; a short-lived
        // thread with its own runtime removes the database.
        let result = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&cleanup.admin_url).await?;
                admin
                    .execute(
                        format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", cleanup.name)
                            .as_str(),
                    )
                    .await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(err)) = result {
            eprintln!("could not drop a test database: {err}");
        }
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{name}?{query}"),
        None => format!("{host_part}/{name}"),
    }
}

/// Instantiates each scenario `async fn name(storage: Arc<dyn Storage>)` of the calling
/// test file twice, as `sqlite::name` and `postgres::name`, each on its own throwaway
/// database opened by the file's `async fn open(&TestDatabase) -> Arc<dyn Storage>`. The
/// PostgreSQL ones return early (with the loud note of [`TestDatabase::postgres`]) where
/// no server is reachable.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let db = $crate::TestDatabase::sqlite();
                    super::$scenario(super::open(&db).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(db) = $crate::TestDatabase::postgres().await else { return };
                    super::$scenario(super::open(&db).await).await;
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@host/db?sslmode=disable", "t2"),
            "postgres://u:p@host/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://host", "t3"), "postgres://host/t3");
    }
}
