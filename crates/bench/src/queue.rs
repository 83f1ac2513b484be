//! `bench queue`: the job engine's own overhead and behaviour, measured through the real
//! storage (SQLite and PostgreSQL) and the real engine, with a provider that answers at
//! once (or after a fixed latency), so the figures are the queue's and not an AI's.
//!
//! - throughput: items/s of one job worked to the end by 1 worker process (SQLite,
//!   PostgreSQL) and by 4 worker processes sharing one PostgreSQL; the workers are this
//!   binary started again as `bench queue-worker`, so they are real processes;
//! - latency: a provider answering in 200 ms at concurrency 64, the achieved rate as a
//!   share of the ideal 64 / 0.2 s;
//! - pickup: from a job's commit to its first item reaching the provider, on an idle queue;
//! - fairness: a 10-item account queued behind a 10,000-item one, its finishing time as a
//!   multiple of its solo time, with a provider answering in 25 to 75 ms.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use async_trait::async_trait;
use chrono::Utc;
use domain::{Attribute, Availability, ContentValue, JobKind, Plan, SourceProduct, SourceScope};
use rand::Rng;
use storage::{ClaimedItem, NewJob, NewStore, NewUser, Storage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use worker::engine::{EngineConfig, ItemError, ItemProcessor, JobEngine, ProcessedItem};

/// Items worked at once by each worker process in every run.
const CONCURRENCY: usize = 64;
const BATCH: usize = 64;

/// A provider that answers after `latency` (zero: at once), give or take `spread` (uniform),
/// and, when asked, reports each call's arrival so pickup can be timed.
struct FixedLatencyProvider {
    latency: Duration,
    spread: Duration,
    calls: Option<mpsc::UnboundedSender<Instant>>,
}

#[async_trait]
impl ItemProcessor for FixedLatencyProvider {
    async fn process(&self, item: &ClaimedItem) -> Result<ProcessedItem, ItemError> {
        if let Some(calls) = &self.calls {
            let _ = calls.send(Instant::now());
        }
        let wait = if self.spread.is_zero() {
            self.latency
        } else {
            let offset = rand::thread_rng().gen_range(0.0..=2.0) * self.spread.as_secs_f64();
            (self.latency + Duration::from_secs_f64(offset)).saturating_sub(self.spread)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let (product, revision) = item
            .product
            .as_ref()
            .ok_or_else(|| ItemError::fatal("product_gone", "no product"))?;
        Ok(ProcessedItem {
            before: ContentValue::Text(product.title.clone()),
            after: ContentValue::Text(format!("{} (optimized)", product.title)),
            product_revision: *revision,
        })
    }
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        concurrency: CONCURRENCY,
        batch_size: BATCH,
        poll: Duration::from_millis(500),
        ..EngineConfig::default()
    }
}

/// One engine in this process, stopped on drop of the returned token's owner.
fn start_engine(
    storage: Arc<dyn Storage>,
    provider: FixedLatencyProvider,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let engine = JobEngine::new(storage, Arc::new(provider), engine_config());
    let stop = CancellationToken::new();
    let handle = tokio::spawn(engine.run(stop.clone()));
    (stop, handle)
}

/// `bench queue-worker <url>`: one worker process; prints `ready`, works items until its
/// stdin closes.
pub async fn worker_process(url: &str) -> anyhow::Result<()> {
    let storage = storage::connect(url, 8).await?;
    let (stop, handle) = start_engine(
        storage,
        FixedLatencyProvider {
            latency: Duration::ZERO,
            spread: Duration::ZERO,
            calls: None,
        },
    );
    println!("ready");
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).unwrap_or(0) > 0 {}
    })
    .await?;
    stop.cancel();
    handle.await?;
    Ok(())
}

struct WorkerProcesses(Vec<Child>);

impl WorkerProcesses {
    fn start(count: usize, url: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut children = Vec::new();
        for _ in 0..count {
            let mut child = Command::new(&exe)
                .args(["queue-worker", url])
                .env("RUST_LOG", "error")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("start a worker process")?;
            let stdout = child.stdout.take().context("worker stdout")?;
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line)?;
            ensure!(
                line.trim() == "ready",
                "worker process did not start: {line:?}"
            );
            children.push(child);
        }
        Ok(WorkerProcesses(children))
    }

    fn stop(mut self) -> anyhow::Result<()> {
        for child in &mut self.0 {
            drop(child.stdin.take());
        }
        for child in &mut self.0 {
            child.wait()?;
        }
        self.0.clear();
        Ok(())
    }
}

impl Drop for WorkerProcesses {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn product(n: usize) -> SourceProduct {
    SourceProduct {
        external_id: format!("q{n}"),
        title: format!("Queue product {n}"),
        description_html: format!("<p>Product {n}.</p>"),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: None,
        gtin: None,
        mpn: None,
        brand: None,
        price: None,
        sale_price: None,
        currency: "USD".into(),
        availability: Availability::InStock,
        stock: None,
        categories: Vec::new(),
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}

/// A database of its own (a fresh PostgreSQL database or a SQLite file) with plans whose
/// credits never run short.
struct BenchDatabase {
    url: String,
    _db: testkit::TestDatabase,
}

impl BenchDatabase {
    async fn new(postgres_admin: Option<&str>) -> anyhow::Result<(Self, Arc<dyn Storage>)> {
        let db = match postgres_admin {
            Some(admin) => testkit::TestDatabase::postgres_on(admin).await,
            None => testkit::TestDatabase::sqlite(),
        };
        let url = db.url().to_owned();
        let storage = storage::connect(&url, 16).await?;
        let plans: Vec<Plan> = domain::default_plans()
            .into_iter()
            .map(|plan| Plan::new(&plan.id, &plan.name, plan.price_monthly_cents, 100_000_000))
            .collect();
        storage.sync_plans(&plans).await?;
        Ok((BenchDatabase { url, _db: db }, storage))
    }
}

/// An account with a local store of `products` products.
struct Shop {
    account: Uuid,
    store: Uuid,
    products: Vec<Uuid>,
}

async fn shop(storage: &Arc<dyn Storage>, products: usize) -> anyhow::Result<Shop> {
    let (_, account) = storage
        .register_user(
            NewUser {
                email: format!("{}@bench.example", Uuid::new_v4().simple()),
                password_hash: "$argon2id$bench".into(),
                account_name: "Bench".into(),
            },
            Utc::now(),
        )
        .await?;
    let store = storage
        .create_store(
            account.id,
            NewStore {
                platform: domain::Platform::Local,
                external_id: Uuid::new_v4().to_string(),
                name: "Bench catalog".into(),
                currency: "USD".into(),
                credentials_encrypted: None,
            },
            Utc::now(),
        )
        .await?;
    let catalog: Vec<SourceProduct> = (0..products).map(product).collect();
    for chunk in catalog.chunks(500) {
        storage
            .upsert_products(account.id, store.id, chunk, Utc::now())
            .await?;
    }
    let mut ids = Vec::with_capacity(products);
    let mut cursor = None;
    loop {
        let page = storage
            .list_products(
                account.id,
                &storage::ProductQuery {
                    store_id: Some(store.id),
                    limit: 1000,
                    after: cursor,
                    ..Default::default()
                },
            )
            .await?;
        ids.extend(page.items.iter().map(|p| p.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(
        ids.len() == products,
        "listed {} of {products} products",
        ids.len()
    );
    Ok(Shop {
        account: account.id,
        store: store.id,
        products: ids,
    })
}

impl Shop {
    /// Queues `products × attributes` items.
    async fn queue(
        &self,
        storage: &Arc<dyn Storage>,
        products: usize,
        attributes: usize,
    ) -> anyhow::Result<Uuid> {
        let all = [
            Attribute::Title,
            Attribute::Description,
            Attribute::SeoTitle,
            Attribute::SeoDescription,
            Attribute::InfoSections,
        ];
        let job = storage
            .create_job(
                self.account,
                NewJob {
                    store_id: self.store,
                    kind: JobKind::Text,
                    source_scope: SourceScope::Products,
                    source_ids: self.products[..products].to_vec(),
                    attributes: all[..attributes].to_vec(),
                    target_lang: None,
                    user_prompt: None,
                    brand_voice: None,
                    provider: "bench".into(),
                    credits_per_item: 1,
                    max_products: 1_000_000,
                },
                Utc::now(),
            )
            .await?;
        Ok(job.id)
    }

    /// Queues its whole catalog × 5 attributes and times it to the end, in ms.
    async fn time_job(&self, storage: &Arc<dyn Storage>) -> anyhow::Result<f64> {
        let start = Instant::now();
        let job = self.queue(storage, self.products.len(), 5).await?;
        let done = self.wait_done(storage, job).await?;
        Ok((done - start).as_secs_f64() * 1000.0)
    }

    /// Waits until the job has no item left to work; returns when that was seen.
    async fn wait_done(&self, storage: &Arc<dyn Storage>, job: Uuid) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let current = storage.get_job(self.account, job).await?;
            if current.counts.terminal() == current.counts.total {
                ensure!(
                    current.counts.done == current.counts.total,
                    "{} of {} items did not succeed",
                    current.counts.total - current.counts.done,
                    current.counts.total
                );
                return Ok(Instant::now());
            }
            ensure!(Instant::now() < deadline, "job {job} did not finish");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Items/s of a `products × 5` job worked by `processes` worker processes.
async fn throughput(
    postgres_admin: Option<&str>,
    processes: usize,
    products: usize,
) -> anyhow::Result<f64> {
    let (db, storage) = BenchDatabase::new(postgres_admin).await?;
    let shop = shop(&storage, products).await?;
    let workers = WorkerProcesses::start(processes, &db.url)?;
    let start = Instant::now();
    let job = shop.queue(&storage, products, 5).await?;
    let done = shop.wait_done(&storage, job).await?;
    workers.stop()?;
    Ok((products * 5) as f64 / (done - start).as_secs_f64())
}

/// The achieved rate with a 200 ms provider at concurrency 64, as a share of 64 / 0.2 s.
async fn latency_share(postgres_admin: Option<&str>) -> anyhow::Result<(f64, f64)> {
    let (_db, storage) = BenchDatabase::new(postgres_admin).await?;
    let latency = Duration::from_millis(200);
    let items = CONCURRENCY * 20;
    let shop = shop(&storage, items / 5).await?;
    let (stop, handle) = start_engine(
        storage.clone(),
        FixedLatencyProvider {
            latency,
            spread: Duration::ZERO,
            calls: None,
        },
    );
    let start = Instant::now();
    let job = shop.queue(&storage, items / 5, 5).await?;
    let done = shop.wait_done(&storage, job).await?;
    stop.cancel();
    handle.await?;
    let rate = items as f64 / (done - start).as_secs_f64();
    let ideal = CONCURRENCY as f64 / latency.as_secs_f64();
    Ok((rate, rate / ideal))
}

/// Pickup latency on an idle queue: p50 and p95 in ms over `samples` one-item jobs.
async fn pickup(postgres_admin: Option<&str>, samples: usize) -> anyhow::Result<(f64, f64)> {
    let (_db, storage) = BenchDatabase::new(postgres_admin).await?;
    let shop = shop(&storage, 1).await?;
    let (calls, mut arrivals) = mpsc::unbounded_channel();
    let (stop, handle) = start_engine(
        storage.clone(),
        FixedLatencyProvider {
            latency: Duration::ZERO,
            spread: Duration::ZERO,
            calls: Some(calls),
        },
    );
    // Let the engine settle into waiting (its first claim finds nothing).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let job = shop.queue(&storage, 1, 1).await?;
        let arrived = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
            .await
            .context("the item was not picked up within 10 s")?
            .context("engine stopped")?;
        latencies.push((arrived - start).as_secs_f64() * 1000.0);
        shop.wait_done(&storage, job).await?;
        // Idle again: the engine is back to waiting for a wake-up.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    handle.await?;
    latencies.sort_by(f64::total_cmp);
    Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.95)))
}

fn percentile(sorted: &[f64], share: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A 10-item account behind a 10,000-item one: (solo ms, queued ms, ratio), with a provider
/// answering in 25 to 75 ms (a fixed latency would free every slot at the same instant,
/// which no real provider does).
async fn fairness(postgres_admin: Option<&str>) -> anyhow::Result<(f64, f64, f64)> {
    let (_db, storage) = BenchDatabase::new(postgres_admin).await?;
    let big = shop(&storage, 2_000).await?;
    let small = shop(&storage, 2).await?;
    let (stop, handle) = start_engine(
        storage.clone(),
        FixedLatencyProvider {
            latency: Duration::from_millis(50),
            spread: Duration::from_millis(25),
            calls: None,
        },
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The small account alone, then behind the big one: medians of three runs each.
    let mut solo = Vec::new();
    for _ in 0..3 {
        solo.push(small.time_job(&storage).await?);
    }
    let big_job = big.queue(&storage, 2_000, 5).await?;
    // Let the big job fill every slot and the queue ahead of the small one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(small.time_job(&storage).await?);
    }
    solo.sort_by(f64::total_cmp);
    queued.sort_by(f64::total_cmp);
    let (solo, queued) = (solo[1], queued[1]);
    let big_state = storage.get_job(big.account, big_job).await?;
    ensure!(
        big_state.counts.terminal() < big_state.counts.total,
        "the big job finished before the small one: no contention was measured"
    );
    stop.cancel();
    handle.await?;
    Ok((solo, queued, queued / solo))
}

pub async fn run(postgres_admin: Option<&str>, json: bool) -> anyhow::Result<()> {
    let products = 4_000;
    let items = products * 5;
    let sqlite = throughput(None, 1, products).await?;
    let sqlite_pickup = pickup(None, 40).await?;
    let sqlite_fairness = fairness(None).await?;
    let mut figures = serde_json::json!({
        "items_per_run": items,
        "concurrency_per_process": CONCURRENCY,
        "sqlite_items_per_s": round(sqlite),
        "sqlite_pickup_p50_ms": round(sqlite_pickup.0),
        "sqlite_pickup_p95_ms": round(sqlite_pickup.1),
        "sqlite_fairness_solo_ms": round(sqlite_fairness.0),
        "sqlite_fairness_queued_ms": round(sqlite_fairness.1),
        "sqlite_fairness_ratio": round(sqlite_fairness.2),
    });
    let postgres = match postgres_admin {
        Some(admin) => {
            let one = throughput(Some(admin), 1, products).await?;
            let four = throughput(Some(admin), 4, products).await?;
            let latency = latency_share(Some(admin)).await?;
            let pickup = pickup(Some(admin), 40).await?;
            let fair = fairness(Some(admin)).await?;
            Some((one, four, latency, pickup, fair))
        }
        None => None,
    };
    let latency = match &postgres {
        Some((_, _, latency, _, _)) => *latency,
        None => latency_share(None).await?,
    };
    let map = figures.as_object_mut().context("figures")?;
    map.insert(
        "latency_backend".into(),
        postgres.as_ref().map_or("sqlite", |_| "postgres").into(),
    );
    map.insert("latency_items_per_s".into(), round(latency.0).into());
    map.insert("latency_share_of_ideal".into(), round(latency.1).into());
    if let Some((one, four, _, pickup, fair)) = &postgres {
        map.insert("postgres_1proc_items_per_s".into(), round(*one).into());
        map.insert("postgres_4proc_items_per_s".into(), round(*four).into());
        map.insert("pickup_p50_ms".into(), round(pickup.0).into());
        map.insert("pickup_p95_ms".into(), round(pickup.1).into());
        map.insert("fairness_solo_ms".into(), round(fair.0).into());
        map.insert("fairness_queued_ms".into(), round(fair.1).into());
        map.insert("fairness_ratio".into(), round(fair.2).into());
    } else {
        map.insert("pickup_p50_ms".into(), round(sqlite_pickup.0).into());
        map.insert("pickup_p95_ms".into(), round(sqlite_pickup.1).into());
        map.insert("fairness_ratio".into(), round(sqlite_fairness.2).into());
    }
    if json {
        println!("{figures}");
        return Ok(());
    }
    println!("job engine, zero-latency provider, {items} items per run, concurrency {CONCURRENCY} per process");
    println!("  SQLite, 1 process:      {sqlite:>9.0} items/s   (target >= 1,000)");
    if let Some((one, four, _, pickup, fair)) = &postgres {
        println!("  PostgreSQL, 1 process:  {one:>9.0} items/s   (target >= 2,000)");
        println!(
            "  PostgreSQL, 4 processes:{four:>9.0} items/s   (target >= 2,000, no slower than 1)"
        );
        println!(
            "pickup on an idle queue (commit to provider call): PostgreSQL p50 {:.2} ms, p95 {:.2} ms; SQLite p50 {:.2} ms, p95 {:.2} ms   (target p50 < 10 ms)",
            pickup.0, pickup.1, sqlite_pickup.0, sqlite_pickup.1
        );
        println!(
            "fairness, provider answering in 25-75 ms, medians of 3: 10 items behind 10,000 took {:.0} ms vs {:.0} ms alone = {:.2}x on PostgreSQL; SQLite {:.0} vs {:.0} ms = {:.2}x   (target <= 2x)",
            fair.1, fair.0, fair.2, sqlite_fairness.1, sqlite_fairness.0, sqlite_fairness.2
        );
    } else {
        println!("  (PostgreSQL skipped: set TEST_DATABASE_URL or --database-url)");
        println!(
            "pickup on an idle queue, SQLite: p50 {:.2} ms, p95 {:.2} ms   (target p50 < 10 ms)",
            sqlite_pickup.0, sqlite_pickup.1
        );
        println!(
            "fairness, provider answering in 25-75 ms, SQLite: {:.0} ms vs {:.0} ms alone = {:.2}x   (target <= 2x)",
            sqlite_fairness.1, sqlite_fairness.0, sqlite_fairness.2
        );
    }
    println!(
        "200 ms provider at concurrency {CONCURRENCY} ({}): {:.0} items/s = {:.1} % of the ideal {:.0}/s   (target >= 90 %)",
        postgres.as_ref().map_or("SQLite", |_| "PostgreSQL"),
        latency.0,
        latency.1 * 100.0,
        CONCURRENCY as f64 / 0.2
    );
    Ok(())
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
