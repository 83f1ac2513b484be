//! `cargo run --release -p bench -- sync [--json] [--products N] [--database-url URL]`
//! `cargo run --release -p bench -- queue [--json] [--database-url URL | --sqlite]`
//!
//! `queue` measures the job engine (see [`queue`]).
//!
//! Measures catalog sync end to end: the real WooCommerce and Wix clients read the fake
//! WooCommerce store and the fake Wix API over loopback HTTP (100 products per page, as in
//! production), and the worker's sync writes them through the real storage (SQLite by default, PostgreSQL with
//! `--database-url` or `TEST_DATABASE_URL`). Prints human-readable figures, or one JSON
//! object whose keys name each figure and its unit with `--json`.

mod queue;

use std::time::Instant;

use anyhow::{bail, Context};
use chrono::Utc;
use connectors::woocommerce::{credentials_context, ClientOptions, Credentials};
use domain::{Availability, Money, Platform, ProductImage, SourceProduct};
use secrets::{EncryptionKey, Keyring};
use storage::{NewStore, SyncKind};
use testkit::wix_api::{CatalogVersion as WixCatalogVersion, FakeWix};
use testkit::woocommerce::FakeWooCommerce;

struct Args {
    command: String,
    json: bool,
    products: usize,
    database_url: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        command: String::new(),
        json: false,
        products: 10_000,
        database_url: std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty()),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => parsed.json = true,
            "--products" => {
                parsed.products = args.next().context("--products needs a number")?.parse()?
            }
            "--database-url" => {
                parsed.database_url = Some(args.next().context("--database-url needs a URL")?)
            }
            "--sqlite" => parsed.database_url = None,
            url if parsed.command == "queue-worker" => parsed.database_url = Some(url.to_owned()),
            command if parsed.command.is_empty() => parsed.command = command.to_owned(),
            other => bail!("unexpected argument {other:?}"),
        }
    }
    Ok(parsed)
}

fn product(n: usize) -> SourceProduct {
    SourceProduct {
        external_id: (10_000 + n).to_string(),
        title: format!("Benchmark product {n}"),
        description_html: format!("<p>Product {n}: a durable, well-made item.</p><ul><li>Feature one</li><li>Feature two</li></ul>"),
        short_description: "A durable item.".into(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: Some(format!("BENCH-{n:05}")),
        gtin: None,
        mpn: None,
        brand: Some("Benchmark".into()),
        price: Some(Money { minor: 1000 + (n as i64 % 9000) }),
        sale_price: None,
        currency: "USD".into(),
        availability: Availability::InStock,
        stock: Some((n % 50) as i64),
        categories: vec![format!("Department {} > Aisle {}", n % 10, n % 40)],
        tags: vec!["bench".into()],
        images: vec![ProductImage { url: format!("https://shop.example/img/{n}.jpg"), alt: None }],
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    match args.command.as_str() {
        "sync" => sync(args).await,
        "queue" => queue::run(args.database_url.as_deref(), args.json).await,
        "queue-worker" => {
            let url = args
                .database_url
                .context("queue-worker needs a database URL")?;
            queue::worker_process(&url).await
        }
        other => bail!("unknown benchmark {other:?}; available: sync, queue"),
    }
}

async fn sync(args: Args) -> anyhow::Result<()> {
    let fake = FakeWooCommerce::start().await;
    let catalog: Vec<SourceProduct> = (0..args.products).map(product).collect();
    fake.seed(&catalog, Utc::now() - chrono::Duration::hours(1));

    let sqlite_dir = tempdir()?;
    let _guard;
    let (url, backend) = match &args.database_url {
        Some(admin) => {
            let db = testkit::TestDatabase::postgres_on(admin).await;
            let url = db.url().to_owned();
            _guard = Some(db);
            (url, "postgres")
        }
        None => {
            _guard = None;
            (
                format!("sqlite://{}", sqlite_dir.join("bench.db").display()),
                "sqlite",
            )
        }
    };
    let storage = storage::connect(&url, 10).await?;
    storage.sync_plans(&domain::default_plans()).await?;
    let user = storage::NewUser {
        email: "bench@example.com".into(),
        password_hash: "$argon2id$bench".into(),
        account_name: "Bench".into(),
    };
    let (_, account) = storage.register_user(user, Utc::now()).await?;
    let keyring = Keyring::new(EncryptionKey::generate(), Vec::new());
    let credentials = serde_json::to_vec(&Credentials {
        consumer_key: fake.consumer_key.clone(),
        consumer_secret: fake.consumer_secret.clone(),
    })?;
    let store = storage
        .create_store(
            account.id,
            NewStore {
                platform: Platform::Woocommerce,
                external_id: fake.base_url.clone(),
                name: "Bench store".into(),
                currency: "USD".into(),
                credentials_encrypted: Some(
                    keyring.encrypt(&credentials, &credentials_context(&fake.base_url)),
                ),
            },
            Utc::now(),
        )
        .await?;
    let wix = FakeWix::start().await;
    let instance = "5f0c3a52-8d2e-4c1b-9f7a-6b3e2d1c0a99";
    wix.add_instance(instance, WixCatalogVersion::V3Catalog);
    wix.seed(
        instance,
        &(0..args.products).map(product).collect::<Vec<_>>(),
        Utc::now() - chrono::Duration::hours(1),
    );
    let settings = worker::sync::ConnectorSettings {
        woocommerce: ClientOptions {
            allow_http: true,
            ..Default::default()
        },
        wix: Some(worker::sync::WixApp {
            app_id: wix.app_id.clone(),
            app_secret: wix.app_secret.clone(),
            api_base_url: wix.base_url.clone(),
        }),
    };
    let catalog = worker::sync::catalog_for_store(&storage, &keyring, &settings, &store).await?;
    let sync = |kind| {
        worker::sync::run_sync(
            storage.as_ref(),
            catalog.as_ref(),
            &store,
            kind,
            "manual",
            None,
        )
    };

    let requests_before = fake.requests();
    let clock = Instant::now();
    let full = sync(SyncKind::Full).await?;
    let full_wall = clock.elapsed().as_secs_f64();
    let full_requests = fake.requests() - requests_before;

    let requests_before = fake.requests();
    let clock = Instant::now();
    let noop = sync(SyncKind::Full).await?;
    let noop_wall = clock.elapsed().as_secs_f64();
    let noop_requests = fake.requests() - requests_before;

    let requests_before = fake.requests();
    let clock = Instant::now();
    let incremental = sync(SyncKind::Incremental).await?;
    let incremental_wall = clock.elapsed().as_secs_f64();
    let incremental_requests = fake.requests() - requests_before;
    anyhow::ensure!(
        incremental.kind == "incremental" && incremental.created + incremental.updated == 0,
        "the incremental sync after no change wrote products"
    );
    anyhow::ensure!(
        full.created as usize == args.products,
        "full sync created {}",
        full.created
    );
    anyhow::ensure!(
        noop.unchanged as usize == args.products,
        "no-change sync saw changes"
    );

    let wix_store = storage
        .create_store(
            account.id,
            NewStore {
                platform: Platform::Wix,
                external_id: instance.into(),
                name: "Bench Wix site".into(),
                currency: "USD".into(),
                credentials_encrypted: None,
            },
            Utc::now(),
        )
        .await?;
    let wix_catalog =
        worker::sync::catalog_for_store(&storage, &keyring, &settings, &wix_store).await?;
    let wix_sync = |kind| {
        worker::sync::run_sync(
            storage.as_ref(),
            wix_catalog.as_ref(),
            &wix_store,
            kind,
            "manual",
            None,
        )
    };
    let requests_before = wix.requests();
    let clock = Instant::now();
    let wix_full = wix_sync(SyncKind::Full).await?;
    let wix_full_wall = clock.elapsed().as_secs_f64();
    let wix_full_requests = wix.requests() - requests_before;
    anyhow::ensure!(
        wix_full.created as usize == args.products,
        "Wix full sync created {}",
        wix_full.created
    );
    let requests_before = wix.requests();
    let clock = Instant::now();
    let wix_incremental = wix_sync(SyncKind::Incremental).await?;
    let wix_incremental_wall = clock.elapsed().as_secs_f64();
    let wix_incremental_requests = wix.requests() - requests_before;
    anyhow::ensure!(
        wix_incremental.created + wix_incremental.updated == 0,
        "the Wix incremental sync after no change wrote products"
    );

    let figures = serde_json::json!({
        "backend": backend,
        "products": args.products,
        "woo_full_wall_s": round(full_wall),
        "woo_full_requests": full_requests,
        "woo_full_products_per_s": round(args.products as f64 / full_wall),
        "woo_noop_wall_s": round(noop_wall),
        "woo_noop_requests": noop_requests,
        "woo_noop_products_per_s": round(args.products as f64 / noop_wall),
        "woo_incremental_noop_wall_s": round(incremental_wall),
        "woo_incremental_noop_requests": incremental_requests,
        "wix_full_wall_s": round(wix_full_wall),
        "wix_full_requests": wix_full_requests,
        "wix_full_products_per_s": round(args.products as f64 / wix_full_wall),
        "wix_incremental_noop_wall_s": round(wix_incremental_wall),
        "wix_incremental_noop_requests": wix_incremental_requests,
    });
    if args.json {
        println!("{figures}");
    } else {
        println!("catalog sync from the fake WooCommerce ({} products, 100 per page, storage: {backend})", args.products);
        println!(
            "  full sync:      {full_wall:>7.2} s  {full_requests:>5} requests  {:>8.0} products/s",
            args.products as f64 / full_wall
        );
        println!(
            "  full, no change: {noop_wall:>6.2} s  {noop_requests:>5} requests  {:>8.0} products/s",
            args.products as f64 / noop_wall
        );
        println!(
            "  incremental, nothing changed: {incremental_wall:>7.3} s  {incremental_requests:>5} requests"
        );
        println!(
            "catalog sync from the fake Wix (Catalog V3, 100 per page, 200 requests/min per site)"
        );
        println!(
            "  full sync:       {wix_full_wall:>6.2} s  {wix_full_requests:>5} requests  {:>8.0} products/s",
            args.products as f64 / wix_full_wall
        );
        println!(
            "  incremental, nothing changed: {wix_incremental_wall:>7.3} s  {wix_incremental_requests:>5} requests"
        );
        println!("  (targets: full < 10 s, no-change < 1 s)");
    }
    std::fs::remove_dir_all(&sqlite_dir).ok();
    Ok(())
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("optimizer-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
