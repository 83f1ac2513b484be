//! The `optimizer` binary as an operator runs it: real process, real signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_optimizer");

struct Running {
    child: Child,
    lines: Vec<String>,
}

/// Starts `optimizer serve` with `args` and env, and reads stdout until the listening line
/// (and, in demo mode, the login line) appear.
fn start(
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    expect_lines: usize,
) -> Running {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--port", "0"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OPTIMIZER_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("start optimizer");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout).lines();
    let mut lines = Vec::new();
    while lines.len() < expect_lines {
        match reader.next() {
            Some(Ok(line)) => lines.push(line),
            _ => panic!("optimizer exited early; output so far: {lines:?}"),
        }
    }
    Running { child, lines }
}

fn base_url(lines: &[String]) -> String {
    lines[0]
        .strip_prefix("Ultimate Optimizer listening on ")
        .expect("listening line")
        .to_owned()
}

fn terminate(running: &mut Running) -> std::process::ExitStatus {
    let pid = running.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "optimizer did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn demo_mode_prints_a_working_single_use_link_and_stops_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut running = start(data.path(), &["--demo"], &[], 2);
    let base = base_url(&running.lines);
    let link = running.lines[1]
        .strip_prefix("Demo login (single use): ")
        .expect("demo line")
        .to_owned();
    assert!(link.starts_with(&format!("{base}/demo-login#token=")));
    let token = link.split("#token=").nth(1).unwrap();

    let client = reqwest::Client::new();
    let health: Value = client
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let login = |token: &str| {
        client
            .post(format!("{base}/api/v1/auth/demo-login"))
            .json(&json!({"token": token}))
            .send()
    };
    let session: Value = login(token).await.unwrap().json().await.unwrap();
    let me: Value = client
        .get(format!("{base}/api/me"))
        .bearer_auth(session["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["account"]["name"], "Demo store");
    assert_eq!(me["credits"]["remaining"], 200);
    assert_eq!(
        login(token).await.unwrap().status(),
        401,
        "the link is single use"
    );

    assert!(
        terminate(&mut running).success(),
        "graceful exit on SIGTERM"
    );
    assert!(data.path().join("optimizer.db").exists());
    assert!(data.path().join("encryption.key").exists());
}

#[tokio::test]
async fn without_demo_there_is_no_demo_link() {
    let data = tempfile::tempdir().unwrap();
    let mut running = start(data.path(), &["--no-worker"], &[], 1);
    let base = base_url(&running.lines);
    let ready: Value = reqwest::get(format!("{base}/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "sqlite");
    assert!(terminate(&mut running).success());
    assert_eq!(running.lines.len(), 1);
}

#[tokio::test]
async fn serves_from_postgresql_when_configured() {
    let Some(db) = testkit::TestDatabase::postgres().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut running = start(data.path(), &[], &[("DATABASE_URL", db.url())], 1);
    let base = base_url(&running.lines);
    let ready: Value = reqwest::get(format!("{base}/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "postgres");
    assert!(terminate(&mut running).success());
}

#[test]
fn production_refuses_to_start_without_its_secrets() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .env_clear()
        .env("OPTIMIZER_DATA_DIR", data.path())
        .env("OPTIMIZER_ENV", "production")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OPTIMIZER_ENCRYPTION_KEY"), "{stderr}");
    assert!(
        !data.path().join("encryption.key").exists(),
        "no development key in production"
    );

    let with_wix = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .env_clear()
        .env("OPTIMIZER_DATA_DIR", data.path())
        .env("OPTIMIZER_ENV", "production")
        .env(
            "OPTIMIZER_ENCRYPTION_KEY",
            "6tO+0Hy6wWqT3m5Wb8rJc7Jm3b0oQ2y6o2gE1mQk9Xo=",
        )
        .env("WIX_APP_ID", "app")
        .output()
        .unwrap();
    assert!(!with_wix.status.success());
    assert!(String::from_utf8_lossy(&with_wix.stderr).contains("WIX_APP_SECRET"));
}

#[test]
fn migrate_creates_the_database_and_bad_config_is_reported() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .arg("migrate")
        .env_clear()
        .env("OPTIMIZER_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    assert!(data.path().join("optimizer.db").exists());

    let bad = Command::new(BIN)
        .arg("migrate")
        .env_clear()
        .env("OPTIMIZER_PORT", "not-a-port")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("OPTIMIZER_PORT"));
}

#[test]
fn worker_runs_until_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("worker")
        .env_clear()
        .env("OPTIMIZER_DATA_DIR", data.path())
        .env("OPTIMIZER_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("worker started"));
    assert!(started.is_some(), "the worker announces itself");
    let mut running = Running {
        child,
        lines: Vec::new(),
    };
    assert!(
        terminate(&mut running).success(),
        "graceful exit on SIGTERM"
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|line| line.contains("maintenance stopped")),
        "{rest:?}"
    );
    assert!(
        data.path().join("optimizer.db").exists(),
        "the worker migrated the database"
    );
}

#[tokio::test]
async fn import_and_export_a_local_catalog_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("optimizer.db").display());
    let storage = storage::connect(&url, 2).await.unwrap();
    storage.sync_plans(&domain::default_plans()).await.unwrap();
    let new_user = storage::NewUser {
        email: "cli@example.com".into(),
        password_hash: "$argon2id$placeholder".into(),
        account_name: "CLI".into(),
    };
    let (_, account) = storage
        .register_user(new_user, chrono::Utc::now())
        .await
        .unwrap();
    let store = storage
        .create_store(
            account.id,
            storage::NewStore {
                platform: domain::Platform::Local,
                external_id: "cli".into(),
                name: "CLI catalog".into(),
                currency: "USD".into(),
                credentials_encrypted: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let sample = data.path().join("catalog.csv");
    std::fs::write(&sample, testkit::fixtures::woocommerce_export()).unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env_clear()
            .env("OPTIMIZER_DATA_DIR", data.path())
            .output()
            .unwrap()
    };
    let store_id = store.id.to_string();
    let imported = run(&["import", "--store", &store_id, sample.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&imported.stdout);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(
        stdout.contains("imported 14 products") && stdout.contains("14 new"),
        "{stdout}"
    );

    let out = data.path().join("export.csv");
    let exported = run(&[
        "export",
        "--store",
        &store_id,
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let csv = std::fs::read(&out).unwrap();
    let parsed = connectors::csv::parse_catalog(&csv, "USD").unwrap();
    assert_eq!(parsed.products.len(), 14);

    let unknown = run(&[
        "import",
        "--store",
        "0193a5f0-0000-7000-8000-000000000000",
        sample.to_str().unwrap(),
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("store not found"));
}
