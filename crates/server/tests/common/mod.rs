//! Starts the real server on a random port, over a throwaway database, and talks HTTP to
//! it. `api_tests!` instantiates each scenario for SQLite and PostgreSQL.

use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use server::config::{Settings, WixSettings};
use server::AppState;
use testkit::TestDatabase;
use tokio::sync::oneshot;

pub const WIX_APP_ID: &str = "2f1b6a6e-5d8c-4f3a-9a57-0c3c4d1e9b11";
pub const WIX_SECRET: &str = "test-wix-app-secret";
/// A fixed key so tests can reason about tokens; real deployments configure their own.
pub const ENCRYPTION_KEY: &str = "6tO+0Hy6wWqT3m5Wb8rJc7Jm3b0oQ2y6o2gE1mQk9Xo=";

#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    _db: TestDatabase,
    _data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// A server with Wix enabled and default settings.
    pub async fn start(engine: Engine) -> Option<Self> {
        Self::start_with(engine, false, |_| {}).await
    }

    /// A server whose settings `customize` may change, optionally in demo mode. `None` when
    /// PostgreSQL tests are skipped on this machine.
    pub async fn start_with(
        engine: Engine,
        demo: bool,
        customize: impl FnOnce(&mut Settings),
    ) -> Option<Self> {
        let db = match engine {
            Engine::Sqlite => TestDatabase::sqlite(),
            Engine::Postgres => TestDatabase::postgres().await?,
        };
        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: data_dir.path().to_path_buf(),
            database_url: Some(db.url().to_owned()),
            database_max_connections: 5,
            web_dir: data_dir.path().join("web"),
            encryption_key: Some(secrets::Secret::new(ENCRYPTION_KEY.to_owned())),
            // Every test client comes from 127.0.0.1; the sign-up limit has its own test.
            registrations_per_ip: 1000,
            wix: Some(WixSettings {
                app_id: WIX_APP_ID.into(),
                app_secret: Some(secrets::Secret::new(WIX_SECRET.into())),
                public_key: None,
                api_base_url: connectors::wix::DEFAULT_BASE_URL.into(),
            }),
            ..Settings::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        settings.public_url = Some(base.clone());
        customize(&mut settings);
        let state = AppState::build(settings, demo).await.expect("server state");
        let (shutdown, stopped) = oneshot::channel::<()>();
        // The process's sync worker and job engine, as `optimizer serve` runs it: syncs are queued by the
        // API and run in the background.
        let background = tokio_util::sync::CancellationToken::new();
        tokio::spawn(worker::sync::run_sync_queue(
            state.sync_worker(),
            background.clone(),
        ));
        // And its job engine.
        tokio::spawn(state.job_engine().run(background.clone()));
        tokio::spawn(server::serve(listener, state.clone(), async move {
            stopped.await.ok();
            background.cancel();
        }));
        Some(TestServer {
            base,
            client: reqwest::Client::new(),
            state,
            _db: db,
            _data_dir: data_dir,
            shutdown: Some(shutdown),
        })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post_json(&self, path: &str, body: Value) -> RequestBuilder {
        self.request(Method::POST, path).json(&body)
    }

    /// GETs `path` with one header (the credential) and returns the JSON body.
    pub async fn get_json(&self, path: &str, header: (&str, &str)) -> Value {
        let response = self
            .get(path)
            .header(header.0, header.1)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Registers a user and returns the session JSON.
    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post_json(
                "/api/v1/auth/register",
                serde_json::json!({"email": email, "password": "correct horse battery"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "register {email}");
        response.json().await.unwrap()
    }

    /// Number of rows in `table`, read directly from the database.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let url = self.state.settings.resolved_database_url();
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
        } else {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap()
        }
    }

    #[allow(dead_code, reason = "not every test binary reaches into storage")]
    pub fn storage(&self) -> Arc<dyn storage::Storage> {
        self.state.storage.clone()
    }
}

impl TestServer {
    #[allow(dead_code)] // Not every test binary that includes this module syncs.
    /// Waits until the store has no waiting or running sync (the background worker has
    /// finished what was queued), failing after 30 s.
    pub async fn wait_for_syncs(&self, store_id: &str, header: (&str, &str)) -> Value {
        for _ in 0..300 {
            let status = self
                .get_json(&format!("/api/stores/{store_id}/sync"), header)
                .await;
            if status["active"].as_array().is_some_and(Vec::is_empty) {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the store's syncs did not finish in 30 s");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).ok();
        }
    }
}

/// Asserts the standard error envelope and returns `error.code`.
pub async fn error_code(response: Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "error content type {content_type}"
    );
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error.get("details").is_some(), "{body}");
    error["code"].as_str().expect("error.code").to_owned()
}

pub fn bearer(session: &Value) -> String {
    format!("Bearer {}", session["accessToken"].as_str().unwrap())
}

#[macro_export]
macro_rules! api_tests {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::common::Engine::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::common::Engine::Postgres).await;
                }
            )*
        }
    };
}
