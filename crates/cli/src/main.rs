//! `optimizer`: one binary for every role. `serve` runs the API, the dashboard and (unless
//! `--no-worker`) the background work; `worker` runs only the background work, so several
//! worker processes can share one PostgreSQL; `migrate` applies database migrations;
//! `import`, `export` and `account` are operator tools working directly on the database.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use server::config::{LogFormat, Settings};
use server::AppState;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "optimizer",
    version,
    about = "Ultimate Optimizer: better product catalogs with AI"
)]
struct Cli {
    /// TOML configuration file (also OPTIMIZER_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and dashboard (and background work unless --no-worker).
    Serve {
        /// Port to listen on (0 picks a free port); overrides OPTIMIZER_PORT.
        #[arg(long)]
        port: Option<u16>,
        /// Address to listen on; overrides OPTIMIZER_HOST.
        #[arg(long)]
        host: Option<String>,
        /// Do not run background work in this process (run `optimizer worker` instead).
        #[arg(long)]
        no_worker: bool,
        /// Create the demo account and print a single-use login link for it.
        #[arg(long)]
        demo: bool,
    },
    /// Run background work only.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Import a catalog CSV (WooCommerce export or Shopify format) into a local store.
    Import {
        /// The local store's id (as `GET /api/stores` lists it).
        #[arg(long)]
        store: uuid::Uuid,
        /// The CSV file.
        file: PathBuf,
    },
    /// Export a store's catalog as a WooCommerce product CSV.
    Export {
        #[arg(long)]
        store: uuid::Uuid,
        /// Where to write the CSV (standard output if omitted).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Operator actions on accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Delete an account and everything it owns: users, sessions, stores and their
    /// credentials, catalog, syncs, jobs, publish logs and credit ledger. Cannot be undone.
    Delete {
        /// The account's id.
        id: uuid::Uuid,
        /// Delete without asking; otherwise the command asks on standard input and deletes
        /// only after the answer `yes`.
        #[arg(long)]
        yes: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("optimizer: configuration error: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    match run(cli.command, settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(
                error.cause = format!("{err:#}"),
                "optimizer stopped with an error"
            );
            eprintln!("optimizer: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            port,
            host,
            no_worker,
            demo,
        } => {
            if let Some(port) = port {
                settings.port = port;
            }
            if let Some(host) = host {
                settings.host = host;
            }
            serve(settings, !no_worker, demo).await
        }
        Command::Worker => {
            let state = AppState::build(settings, false)
                .await
                .context("starting the worker")?;
            let shutdown = shutdown_on_signal();
            tracing::info!("worker started");
            worker::run_background(
                state.sync_worker(),
                state.job_engine(),
                state.retention_policy(),
                shutdown,
            )
            .await;
            Ok(())
        }
        Command::Import { store, file } => {
            let storage = connect(&settings).await?;
            let store = storage
                .find_store_for_operator(store)
                .await
                .context("finding the store")?;
            anyhow::ensure!(
                store.platform == domain::Platform::Local,
                "store {} is not a local catalog; it syncs from its platform",
                store.id
            );
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let import = connectors::csv::parse_catalog(&bytes, &store.currency)
                .with_context(|| format!("{} is not a catalog CSV", file.display()))?;
            let summary = storage
                .import_products(
                    store.account_id,
                    store.id,
                    &import.products,
                    settings.max_products_per_store,
                    chrono::Utc::now(),
                )
                .await?;
            println!(
                "imported {} products into {:?}: {} new, {} updated, {} unchanged, {} rows rejected",
                import.products.len(),
                store.name,
                summary.created,
                summary.updated,
                summary.unchanged,
                import.rejected.len()
            );
            for rejected in &import.rejected {
                println!("  line {}: {}", rejected.line, rejected.reason);
            }
            Ok(())
        }
        Command::Export { store, output } => {
            let storage = connect(&settings).await?;
            let store = storage
                .find_store_for_operator(store)
                .await
                .context("finding the store")?;
            let products = storage.store_products(store.account_id, store.id).await?;
            let csv = connectors::csv::export_woocommerce(&products);
            match output {
                Some(path) => {
                    std::fs::write(&path, csv)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("exported {} products to {}", products.len(), path.display());
                }
                None => std::io::stdout().write_all(&csv)?,
            }
            Ok(())
        }
        Command::Account {
            command: AccountCommand::Delete { id, yes },
        } => {
            let storage = connect(&settings).await?;
            let account = storage
                .get_account(id)
                .await
                .context("finding the account")?;
            if !yes && !confirm_deletion(&account)? {
                anyhow::bail!(
                    "account {id} was not deleted: answer `yes` to confirm, or pass --yes"
                );
            }
            let deletion = storage
                .delete_account(id)
                .await
                .context("deleting the account")?;
            println!(
                "deleted account {} ({:?}): {} rows",
                deletion.account_id,
                deletion.account_name,
                deletion.total()
            );
            for (table, count) in &deletion.rows {
                println!("  {table}: {count}");
            }
            Ok(())
        }
        Command::Migrate => {
            let url = settings.resolved_database_url();
            storage::connect(&url, 1)
                .await
                .context("migrating the database")?;
            println!("migrations applied to {}", storage::redact_url(&url));
            Ok(())
        }
    }
}

/// Asks on standard input whether to delete `account`; only the answer `yes` confirms, so
/// a closed or non-interactive input refuses.
fn confirm_deletion(account: &domain::Account) -> anyhow::Result<bool> {
    eprint!(
        "Delete account {} ({:?}) and all its data? This cannot be undone. Type `yes` to confirm: ",
        account.id, account.name
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !answer.ends_with('\n') {
        // The input closed without an answer: end the prompt's line before the refusal.
        eprintln!();
    }
    Ok(answer.trim() == "yes")
}

async fn connect(settings: &Settings) -> anyhow::Result<std::sync::Arc<dyn storage::Storage>> {
    storage::connect(
        &settings.resolved_database_url(),
        settings.database_max_connections,
    )
    .await
    .context("connecting to the database")
}

async fn serve(mut settings: Settings, with_worker: bool, demo: bool) -> anyhow::Result<()> {
    let address = format!("{}:{}", settings.host, settings.port);
    let shutdown_timeout = Duration::from_secs(settings.shutdown_timeout_secs);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let local = listener.local_addr()?;
    // Links the service hands out (login links, webhook addresses) name the bound port.
    let public_url = settings
        .public_url
        .get_or_insert_with(|| format!("http://{local}"))
        .trim_end_matches('/')
        .to_owned();
    let state = AppState::build(settings, demo)
        .await
        .context("starting the service")?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "Ultimate Optimizer listening on http://{local}")?;
    if demo {
        let seeded = server::demo::seed_catalog(&state)
            .await
            .map_err(|err| anyhow::anyhow!("loading the demo catalog: {err}"))?;
        tracing::info!(
            products.created = seeded.created,
            products.updated = seeded.updated,
            "demo catalog ready"
        );
        let token = server::auth::sessions::create_demo_login_link(&state)
            .await
            .map_err(|err| anyhow::anyhow!("creating the demo login link: {err}"))?;
        writeln!(
            out,
            "Demo login (single use): {public_url}/demo-login#token={token}"
        )?;
    }
    out.flush()?;
    drop(out);

    let shutdown = shutdown_on_signal();
    let worker = with_worker.then(|| {
        tokio::spawn(worker::run_background(
            state.sync_worker(),
            state.job_engine(),
            state.retention_policy(),
            shutdown.clone(),
        ))
    });
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(server::serve(listener, state, async move {
        server_shutdown.cancelled().await;
    }));

    shutdown.cancelled().await;
    tracing::info!(timeout_s = shutdown_timeout.as_secs(), "shutting down");
    let drained = tokio::time::timeout(shutdown_timeout, async {
        if let Some(worker) = worker {
            worker.await.ok();
        }
        server.await
    })
    .await;
    match drained {
        Ok(Ok(result)) => result.context("serving HTTP")?,
        Ok(Err(join_error)) => return Err(join_error.into()),
        Err(_) => tracing::warn!("in-flight work did not finish before the shutdown timeout"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// A token cancelled on SIGINT or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = interrupt => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        interrupt.await.ok();
        tracing::info!("shutdown signal received");
        trigger.cancel();
    });
    token
}
