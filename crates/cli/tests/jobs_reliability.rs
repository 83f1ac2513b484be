//! The job engine as operators run it: real `optimizer worker` processes working real jobs
//! through the OpenAI provider (against the fake), while things go wrong — a worker
//! SIGKILLed mid-job, PostgreSQL restarted under load, every database session cut, the
//! provider down for a while. After each, every item ends DONE exactly once, nothing
//! failed, and the credits charged equal the successful items, with the ledger agreeing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::{
    default_plans, Attribute, Availability, ItemStatus, JobKind, SourceProduct, SourceScope,
};
use storage::{ItemQuery, NewJob, NewStore, NewUser, Storage};
use testkit::openai::FakeOpenAi;
use testkit::TestDatabase;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_optimizer");

/// A running `optimizer worker`; killed when dropped.
struct Worker {
    child: Child,
}

impl Worker {
    fn start(data_dir: &Path, database_url: &str, openai: &FakeOpenAi) -> Worker {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("worker.log"))
            .expect("worker log");
        let child = Command::new(BIN)
            .arg("worker")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OPTIMIZER_DATA_DIR", data_dir)
            .env("DATABASE_URL", database_url)
            .env("OPTIMIZER_AI_PROVIDER", "openai")
            .env("OPENAI_API_KEY", openai.api_key())
            .env("OPENAI_BASE_URL", openai.base_url())
            .env("OPTIMIZER_JOB_CONCURRENCY", "4")
            .env("OPTIMIZER_JOB_BATCH_SIZE", "4")
            .env("OPTIMIZER_JOB_LEASE_SECS", "3")
            .env("OPTIMIZER_JOB_RETRY_BASE_MS", "200")
            .env("OPTIMIZER_LOG_FORMAT", "pretty")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start optimizer worker");
        Worker { child }
    }

    fn kill(mut self) {
        // SIGKILL: no drain, no release; the items it held keep their leases.
        self.child.kill().expect("SIGKILL the worker");
        self.child.wait().expect("reap the worker");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn product(n: usize) -> SourceProduct {
    SourceProduct {
        external_id: format!("r{n}"),
        title: format!("sturdy canvas tote bag {n}"),
        description_html: format!("<p>A sturdy canvas tote, model {n}.</p>"),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: None,
        gtin: None,
        mpn: None,
        brand: Some("Harbor".into()),
        price: None,
        sale_price: None,
        currency: "USD".into(),
        availability: Availability::InStock,
        stock: None,
        categories: vec!["Bags".into()],
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}

/// A merchant (free plan: 200 credits) with a local catalog of `count` products.
struct Merchant {
    account: Uuid,
    store: Uuid,
    products: Vec<Uuid>,
}

async fn merchant(storage: &Arc<dyn Storage>, count: usize) -> Merchant {
    storage.sync_plans(&default_plans()).await.unwrap();
    let (_, account) = storage
        .register_user(
            NewUser {
                email: format!("{}@example.com", Uuid::new_v4().simple()),
                password_hash: "$argon2id$placeholder".into(),
                account_name: "Harbor Bags".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let store = storage
        .create_store(
            account.id,
            NewStore {
                platform: domain::Platform::Local,
                external_id: Uuid::new_v4().to_string(),
                name: "Catalog".into(),
                currency: "USD".into(),
                credentials_encrypted: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let catalog: Vec<SourceProduct> = (0..count).map(product).collect();
    storage
        .upsert_products(account.id, store.id, &catalog, Utc::now())
        .await
        .unwrap();
    let page = storage
        .list_products(
            account.id,
            &storage::ProductQuery {
                store_id: Some(store.id),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Merchant {
        account: account.id,
        store: store.id,
        products: page.items.iter().map(|p| p.id).collect(),
    }
}

impl Merchant {
    /// A title rewrite of every product: one item (one credit) per product.
    async fn queue_titles(&self, storage: &Arc<dyn Storage>) -> Uuid {
        storage
            .create_job(
                self.account,
                NewJob {
                    store_id: self.store,
                    kind: JobKind::Text,
                    source_scope: SourceScope::Products,
                    source_ids: self.products.clone(),
                    attributes: vec![Attribute::Title],
                    target_lang: None,
                    user_prompt: Some("Make it crisp.".into()),
                    brand_voice: None,
                    provider: "openai".into(),
                    credits_per_item: 1,
                    max_products: 1000,
                },
                Utc::now(),
            )
            .await
            .unwrap()
            .id
    }

    /// Items of `job` done so far; database errors (it may be restarting) read as `None`.
    async fn done(&self, storage: &Arc<dyn Storage>, job: Uuid) -> Option<i64> {
        storage
            .get_job(self.account, job)
            .await
            .ok()
            .map(|job| job.counts.done)
    }

    async fn wait_until_done(&self, storage: &Arc<dyn Storage>, job: Uuid, at_least: i64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if self.done(storage, job).await.unwrap_or(0) >= at_least {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "job {job} did not reach {at_least} done items in 90 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every item DONE exactly once, nothing failed or refunded, the credits charged equal
    /// the items, and the ledger equals the account's counters. Returns the items' attempts.
    async fn assert_done_exactly_once(&self, storage: &Arc<dyn Storage>, job: Uuid) -> Vec<i64> {
        let state = storage.get_job(self.account, job).await.unwrap();
        let total = self.products.len() as i64;
        assert_eq!(state.counts.total, total);
        assert_eq!(
            (
                state.counts.done,
                state.counts.failed,
                state.counts.canceled,
                state.counts.pending,
                state.counts.running
            ),
            (total, 0, 0, 0, 0),
            "job counts {:?}",
            state.counts
        );
        assert_eq!(state.credits_reserved, total);
        assert_eq!(state.credits_refunded, 0);
        let items = storage
            .list_job_items(
                self.account,
                job,
                &ItemQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items;
        assert_eq!(items.len() as i64, total);
        for item in &items {
            assert_eq!(item.status, ItemStatus::Done, "item {item:?}");
            assert!(item.after.is_some(), "a done item has its result");
        }
        let account = storage.get_account(self.account).await.unwrap();
        let ledger = storage.list_ledger(self.account, 100_000).await.unwrap();
        let sum: i64 = ledger.iter().map(|entry| entry.delta).sum();
        assert_eq!(
            sum,
            account.credits_total - account.credits_used,
            "ledger {ledger:?} vs counters"
        );
        items.iter().map(|item| item.attempts).collect()
    }
}

async fn open(url: &str) -> Arc<dyn Storage> {
    storage::connect(url, 4).await.expect("connect and migrate")
}

/// SIGKILL a worker while it holds items; a second worker recovers them once their lease
/// expires and finishes the job.
async fn killed_worker_scenario(db: TestDatabase) {
    let storage = open(db.url()).await;
    let data = tempfile::tempdir().unwrap();
    let openai = FakeOpenAi::start().await;
    openai.set_delay(Duration::from_millis(200));
    let shop = merchant(&storage, 40).await;
    let job = shop.queue_titles(&storage).await;

    let first = Worker::start(data.path(), db.url(), &openai);
    shop.wait_until_done(&storage, job, 8).await;
    first.kill();
    let after_kill = storage.get_job(shop.account, job).await.unwrap();
    assert!(
        after_kill.counts.running > 0,
        "the killed worker held items in flight: {:?}",
        after_kill.counts
    );
    assert!(after_kill.counts.done < 40, "killed mid-job");

    let second = Worker::start(data.path(), db.url(), &openai);
    shop.wait_until_done(&storage, job, 40).await;
    drop(second);
    let attempts = shop.assert_done_exactly_once(&storage, job).await;
    assert!(
        attempts.iter().any(|n| *n >= 2),
        "the items in flight at the kill were worked again: {attempts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_worker_killed_mid_job_loses_nothing() {
    killed_worker_scenario(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_worker_killed_mid_job_loses_nothing() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    killed_worker_scenario(db).await;
}

/// The provider answers 503 to everything for a while: items wait and retry, none fails
/// (the outage is shorter than the attempts allow), and all succeed once it is back.
async fn provider_outage_scenario(db: TestDatabase) {
    let storage = open(db.url()).await;
    let data = tempfile::tempdir().unwrap();
    let openai = FakeOpenAi::start().await;
    openai.set_delay(Duration::from_millis(50));
    let shop = merchant(&storage, 20).await;
    let worker = Worker::start(data.path(), db.url(), &openai);
    let job = shop.queue_titles(&storage).await;
    shop.wait_until_done(&storage, job, 3).await;
    openai.set_down(true);
    let before_outage = openai.request_count();
    // Long enough for several retries of each waiting item (200 ms, 400 ms, 800 ms...).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = storage.get_job(shop.account, job).await.unwrap();
    assert_eq!(during.counts.failed, 0, "nothing fails during an outage");
    assert!(during.counts.done < 20, "the outage held the job up");
    assert!(
        openai.request_count() > before_outage,
        "items were tried during the outage"
    );
    openai.set_down(false);
    shop.wait_until_done(&storage, job, 20).await;
    drop(worker);
    let attempts = shop.assert_done_exactly_once(&storage, job).await;
    assert!(
        attempts.iter().any(|n| *n >= 2),
        "items were retried: {attempts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_provider_outage_is_waited_out() {
    provider_outage_scenario(TestDatabase::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_provider_outage_is_waited_out() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    provider_outage_scenario(db).await;
}

/// Every session of the job's database is terminated by the server, twice, while a worker
/// works it (what a failover or an operator's `pg_terminate_backend` does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_terminated_under_load_lose_nothing() {
    let Some(admin) = testkit::postgres_test_url() else {
        return;
    };
    let db = TestDatabase::postgres_on(&admin).await;
    let name = db.url().rsplit('/').next().unwrap().to_owned();
    let storage = open(db.url()).await;
    let data = tempfile::tempdir().unwrap();
    let openai = FakeOpenAi::start().await;
    openai.set_delay(Duration::from_millis(100));
    let shop = merchant(&storage, 60).await;
    let job = shop.queue_titles(&storage).await;
    let worker = Worker::start(data.path(), db.url(), &openai);
    let mut admin_conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    for round in 1..=2 {
        shop.wait_until_done(&storage, job, round * 15).await;
        let terminated: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .fetch_all(&mut admin_conn)
        .await
        .unwrap();
        assert!(!terminated.is_empty(), "the worker had sessions to cut");
    }
    shop.wait_until_done(&storage, job, 60).await;
    // New work after the cuts is picked up too: the worker's wake-ups came back.
    let second = shop.queue_titles(&storage).await;
    shop.wait_until_done(&storage, second, 60).await;
    drop(worker);
    shop.assert_done_exactly_once(&storage, job).await;
}

/// A PostgreSQL server of this test's own, so it can be stopped and started.
struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// `None` when the machine has no PostgreSQL server binaries (outside CI only).
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|entry| entry.path().join("bin"))
                    .find(|bin| bin.join("initdb").exists())
            });
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs PostgreSQL's server binaries (initdb, pg_ctl) for the restart test"
            );
            eprintln!("\n*** SKIPPING the PostgreSQL restart test: no initdb found ***\n");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("optimizer-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PrivatePostgres { dir, bin, port };
        if Self::as_root() {
            // PostgreSQL refuses to run as root: the folder goes to its own user.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown the server folder");
        }
        server.pg(&[
            "initdb",
            "-D",
            "data",
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        server.ctl("start");
        Some(server)
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
            .unwrap_or(false)
    }

    fn pg(&self, args: &[&str]) {
        let program = self.bin.join(args[0]);
        let mut command = if Self::as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        let status = command
            .args(&args[1..])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run a PostgreSQL tool");
        assert!(status.success(), "{args:?} failed");
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.pg(&[
            "pg_ctl",
            "-D",
            "data",
            "-l",
            "server.log",
            "-w",
            "-m",
            "fast",
            "-o",
            &options,
            action,
        ]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.ctl("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL itself stopped and started twice while a worker works a job: the worker
/// rides it out, the job finishes with every item done once, and new work is picked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_no_job() {
    if testkit::postgres_test_url().is_none() {
        return;
    }
    let Some(server) = PrivatePostgres::start() else {
        return;
    };
    let db = TestDatabase::postgres_on(&server.url()).await;
    let storage = open(db.url()).await;
    let data = tempfile::tempdir().unwrap();
    let openai = FakeOpenAi::start().await;
    openai.set_delay(Duration::from_millis(100));
    let shop = merchant(&storage, 60).await;
    let job = shop.queue_titles(&storage).await;
    let worker = Worker::start(data.path(), db.url(), &openai);
    for round in 1..=2 {
        shop.wait_until_done(&storage, job, round * 15).await;
        server.ctl("stop");
        let probe = tokio::time::timeout(Duration::from_secs(3), shop.done(&storage, job)).await;
        assert!(!matches!(probe, Ok(Some(_))), "the database is really down");
        tokio::time::sleep(Duration::from_secs(1)).await;
        server.ctl("start");
    }
    shop.wait_until_done(&storage, job, 60).await;
    let second = shop.queue_titles(&storage).await;
    shop.wait_until_done(&storage, second, 60).await;
    drop(worker);
    shop.assert_done_exactly_once(&storage, job).await;
    drop(storage);
    drop(db);
}
