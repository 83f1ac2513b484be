//! Catalog sync: reads a connected store through its [`Catalog`] and brings the `products`
//! cache up to date. Three kinds: a full sync reads everything and removes products the
//! store no longer has; an incremental sync reads what changed since the store's
//! `synced_through` instant; a single-product sync (a webhook's) reads one product and
//! removes it if the store no longer has it. Every run, successful or not, is recorded as
//! a sync batch.
//!
//! Syncs run in the background: requests are queued in storage and [`run_sync_queue`]
//! claims them with a lease (renewed while the sync runs), so any worker process can run
//! them and a crashed worker's request is taken over when its lease expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use connectors::http::ConnectorError;
use connectors::woocommerce::{credentials_context, ClientOptions, Credentials, WooCommerceClient};
use connectors::{Catalog, CatalogPage, CatalogProduct, ContentUpdate, ProductUpdate};
use domain::{Platform, SourceProduct, Store};
use secrets::Keyring;
use storage::{Storage, StorageError, SyncBatch, SyncKind, SyncOutcome, SyncRequest};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a claimed sync request is leased before another worker may take it over; the
/// running worker renews it every third of this.
pub const SYNC_LEASE: Duration = Duration::from_secs(120);
/// Idle workers look for due requests this often, besides being woken in-process.
pub const SYNC_POLL: Duration = Duration::from_secs(1);
/// Attempts before a request that keeps failing transiently is given up.
pub const SYNC_MAX_ATTEMPTS: i64 = 4;
/// An incremental sync re-reads this much before `synced_through`, so a product saved in
/// the same instant the last sync started is not missed.
const INCREMENTAL_OVERLAP: chrono::Duration = chrono::Duration::minutes(2);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] ConnectorError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the store's saved credentials cannot be read: {0}")]
    Credentials(String),
    #[error("{0} stores do not sync from here")]
    NotSyncable(&'static str),
    #[error("this service is not configured for {0}")]
    NotConfigured(&'static str),
}

impl SyncError {
    /// Whether trying again later may succeed (the store was down or throttling).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Store(ConnectorError::Unreachable(_)) => true,
            SyncError::Store(ConnectorError::Platform { status, .. }) => {
                *status == 429 || *status >= 500
            }
            SyncError::Storage(StorageError::Database(_)) => true,
            _ => false,
        }
    }
}

/// What the sync needs to reach each platform.
#[derive(Debug, Clone, Default)]
pub struct ConnectorSettings {
    pub woocommerce: ClientOptions,
    /// The Wix app this service is; `None` when Wix is not configured.
    pub wix: Option<WixApp>,
}

/// The Wix app's identity: every site's access token is minted with it.
#[derive(Clone)]
pub struct WixApp {
    pub app_id: String,
    pub app_secret: String,
    pub api_base_url: String,
}

impl std::fmt::Debug for WixApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WixApp")
            .field("app_id", &self.app_id)
            .field("api_base_url", &self.api_base_url)
            .finish_non_exhaustive()
    }
}

/// Builds the WooCommerce client for a connected store from its encrypted credentials.
pub async fn woocommerce_client(
    storage: &dyn Storage,
    keyring: &Keyring,
    store: &Store,
    options: ClientOptions,
) -> Result<WooCommerceClient, SyncError> {
    let sealed = storage
        .store_credentials(store.account_id, store.id)
        .await?
        .ok_or_else(|| SyncError::Credentials("none saved".into()))?;
    let plain = keyring
        .decrypt(&sealed, &credentials_context(&store.external_id))
        .map_err(|err| SyncError::Credentials(err.to_string()))?;
    let credentials: Credentials =
        serde_json::from_slice(&plain).map_err(|err| SyncError::Credentials(err.to_string()))?;
    Ok(WooCommerceClient::new(
        &store.external_id,
        &credentials.consumer_key,
        &credentials.consumer_secret,
        options,
    )?
    .with_currency(&store.currency))
}

/// The catalog of a connected store, through its platform's API (or our database for a
/// local catalog).
pub async fn catalog_for_store(
    storage: &Arc<dyn Storage>,
    keyring: &Keyring,
    settings: &ConnectorSettings,
    store: &Store,
) -> Result<Box<dyn Catalog>, SyncError> {
    match store.platform {
        Platform::Woocommerce => Ok(Box::new(
            woocommerce_client(
                storage.as_ref(),
                keyring,
                store,
                settings.woocommerce.clone(),
            )
            .await?,
        )),
        Platform::Local => Ok(Box::new(LocalCatalog {
            storage: storage.clone(),
            store: store.clone(),
        })),
        Platform::Wix => {
            let app = settings.wix.as_ref().ok_or(SyncError::NotConfigured(
                "Wix (set WIX_APP_ID and WIX_APP_SECRET)",
            ))?;
            let mut config =
                connectors::wix::WixConfig::new(&app.app_id, &app.app_secret, &store.external_id);
            config.base_url = app.api_base_url.clone();
            Ok(Box::new(connectors::wix::WixCatalog::new(
                connectors::wix::WixClient::new(config)?,
            )))
        }
    }
}

/// Runs one sync of `store` through `catalog` and records its batch. `product` names the
/// product of a single-product sync.
pub async fn run_sync(
    storage: &dyn Storage,
    catalog: &dyn Catalog,
    store: &Store,
    kind: SyncKind,
    trigger: &str,
    product: Option<&str>,
) -> Result<SyncBatch, SyncError> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let mut kind = kind;
    let since = match kind {
        SyncKind::Incremental => {
            let state = storage.store_sync_state(store.account_id, store.id).await?;
            match state.synced_through {
                Some(through) => Some(through - INCREMENTAL_OVERLAP),
                // Never read in full: an incremental sync has nothing to start from.
                None => {
                    kind = SyncKind::Full;
                    None
                }
            }
        }
        _ => None,
    };
    let mut batch = SyncBatch {
        id: Uuid::now_v7(),
        store_id: store.id,
        trigger: trigger.to_owned(),
        kind: kind.as_str().into(),
        succeeded: false,
        fetched: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        deleted: 0,
        error: None,
        started_at,
        duration_ms: 0,
    };
    let outcome = sync_products(storage, catalog, store, kind, since, product, &mut batch).await;
    batch.duration_ms = clock.elapsed().as_millis() as i64;
    batch.succeeded = outcome.is_ok();
    if let Err(err) = &outcome {
        batch.error = Some(err.to_string());
    }
    storage.record_sync_batch(store.account_id, &batch).await?;
    if outcome.is_ok() && kind != SyncKind::Single {
        storage
            .mark_synced_through(store.account_id, store.id, started_at)
            .await?;
    }
    tracing::info!(
        store.id = %store.id,
        sync.kind = kind.as_str(),
        sync.trigger = trigger,
        sync.succeeded = batch.succeeded,
        sync.fetched = batch.fetched,
        sync.created = batch.created,
        sync.updated = batch.updated,
        sync.deleted = batch.deleted,
        duration_ms = batch.duration_ms,
        "catalog sync finished"
    );
    outcome.map(|()| batch)
}

async fn sync_products(
    storage: &dyn Storage,
    catalog: &dyn Catalog,
    store: &Store,
    kind: SyncKind,
    since: Option<DateTime<Utc>>,
    product: Option<&str>,
    batch: &mut SyncBatch,
) -> Result<(), SyncError> {
    if kind == SyncKind::Single {
        let external_id = product.unwrap_or_default();
        match catalog.get(external_id).await? {
            Some(found) => {
                batch.fetched = 1;
                write_page(storage, store, vec![found], batch).await?;
            }
            None => {
                let removed = storage
                    .remove_product(store.account_id, store.id, external_id)
                    .await?;
                batch.deleted = i64::from(removed);
            }
        }
        return Ok(());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = catalog.list(cursor.as_deref(), since).await?;
        batch.fetched += page.products.len() as i64;
        if kind == SyncKind::Full {
            seen.extend(page.products.iter().map(|p| p.product.external_id.clone()));
        }
        // Each page is written as it arrives: memory stays bounded by a page, and a sync
        // cut short keeps what it read.
        write_page(storage, store, page.products, batch).await?;
        cursor = connectors::next_cursor(cursor.as_deref(), page.next_cursor)?;
        if cursor.is_none() {
            break;
        }
    }
    if kind == SyncKind::Full {
        batch.deleted = storage
            .remove_products_except(store.account_id, store.id, &seen)
            .await? as i64;
    }
    Ok(())
}

async fn write_page(
    storage: &dyn Storage,
    store: &Store,
    products: Vec<CatalogProduct>,
    batch: &mut SyncBatch,
) -> Result<(), SyncError> {
    if products.is_empty() {
        return Ok(());
    }
    let sources: Vec<SourceProduct> = products.into_iter().map(|p| p.product).collect();
    let summary = storage
        .upsert_products(store.account_id, store.id, &sources, Utc::now())
        .await?;
    batch.created += summary.created as i64;
    batch.updated += summary.updated as i64;
    batch.unchanged += summary.unchanged as i64;
    Ok(())
}

/// Everything a sync worker needs; cheap to clone.
#[derive(Clone)]
pub struct SyncWorker {
    pub storage: Arc<dyn Storage>,
    pub keyring: Keyring,
    pub settings: ConnectorSettings,
    /// Woken when this process queues a request, so it starts at once instead of at the
    /// next poll.
    pub wake: Arc<Notify>,
}

impl SyncWorker {
    /// Claims and runs one due request; `false` when none was due.
    pub async fn run_next(&self) -> Result<bool, StorageError> {
        let lease = chrono::Duration::from_std(SYNC_LEASE).unwrap_or(chrono::Duration::MAX);
        let Some(request) = self.storage.claim_sync_request(Utc::now(), lease).await? else {
            return Ok(false);
        };
        let heartbeat = CancellationToken::new();
        let renewing = tokio::spawn(renew_lease(
            self.storage.clone(),
            request.id,
            request.attempts,
            heartbeat.clone(),
        ));
        let result = self.run_request(&request).await;
        heartbeat.cancel();
        renewing.await.ok();
        let outcome = match result {
            Ok(batch) => SyncOutcome::Done { batch_id: batch.id },
            Err((batch_id, err)) => {
                let retry_at = (err.is_transient() && request.attempts < SYNC_MAX_ATTEMPTS)
                    .then(|| Utc::now() + retry_delay(request.attempts));
                SyncOutcome::Failed {
                    batch_id,
                    error: err.to_string(),
                    retry_at,
                }
            }
        };
        let kept = self
            .storage
            .finish_sync_request(request.id, request.attempts, outcome, Utc::now())
            .await?;
        if !kept {
            tracing::warn!(sync.request = %request.id, "sync lease was taken over; result discarded");
        }
        Ok(true)
    }

    async fn run_request(
        &self,
        request: &SyncRequest,
    ) -> Result<SyncBatch, (Option<Uuid>, SyncError)> {
        let store = self
            .storage
            .get_store(request.account_id, request.store_id)
            .await
            .map_err(|err| (None, err.into()))?;
        if store.platform == Platform::Local {
            return Err((None, SyncError::NotSyncable("local")));
        }
        let catalog = catalog_for_store(&self.storage, &self.keyring, &self.settings, &store)
            .await
            .map_err(|err| (None, err))?;
        run_sync(
            self.storage.as_ref(),
            catalog.as_ref(),
            &store,
            request.kind,
            &request.trigger,
            request.product_external_id.as_deref(),
        )
        .await
        .map_err(|err| (None, err))
    }
}

/// 30 s, 60 s, 120 s … after the first, second, third failure, with up to 25 % jitter so
/// the retries of many stores that failed together spread out.
fn retry_delay(attempts: i64) -> chrono::Duration {
    use rand::Rng;
    let base = 15i64.saturating_mul(1 << attempts.clamp(1, 10));
    let jitter = rand::thread_rng().gen_range(0..=base / 4);
    chrono::Duration::seconds(base + jitter)
}

async fn renew_lease(
    storage: Arc<dyn Storage>,
    request_id: Uuid,
    attempt: i64,
    stop: CancellationToken,
) {
    let every = SYNC_LEASE / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let until = Utc::now() + chrono::Duration::from_std(SYNC_LEASE).unwrap_or_default();
        match storage.extend_sync_lease(request_id, attempt, until).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => tracing::warn!(error.cause = %err, "could not renew a sync lease"),
        }
    }
}

/// Runs queued syncs until `shutdown`: one at a time per process, woken in-process by
/// [`SyncWorker::wake`] and otherwise polling every [`SYNC_POLL`]. A sync in progress when
/// shutdown comes is finished (its lease would otherwise delay the next worker).
pub async fn run_sync_queue(worker: SyncWorker, shutdown: CancellationToken) {
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        match worker.run_next().await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(err) => tracing::error!(error.cause = %err, "sync queue unavailable; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = worker.wake.notified() => {}
            () = tokio::time::sleep(SYNC_POLL) => {}
        }
    }
    tracing::info!("sync queue stopped");
}

/// The local catalog: the products kept in our own database are the store. Reading it is
/// reading the cache; publishing to it changes the product record, checked against the
/// revision the caller read.
pub struct LocalCatalog {
    pub storage: Arc<dyn Storage>,
    pub store: Store,
}

const LOCAL_PAGE: i64 = 200;

fn local_error(err: StorageError) -> ConnectorError {
    match err {
        StorageError::RevisionMismatch { current, .. } => ConnectorError::Conflict {
            code: "revision_mismatch".into(),
            message: "the product changed since it was read".into(),
            current_revision: Some(current.to_string()),
        },
        StorageError::NotFound { entity } => ConnectorError::NotFound(entity.into()),
        other => ConnectorError::Unreachable(format!("local catalog: {other}")),
    }
}

fn apply_update(product: &mut SourceProduct, update: &ContentUpdate) {
    if let Some(title) = &update.title {
        product.title = title.clone();
    }
    if let Some(description) = &update.description_html {
        product.description_html = description.clone();
    }
    if let Some(seo_title) = &update.seo_title {
        product.seo_title = Some(seo_title.clone());
    }
    if let Some(seo_description) = &update.seo_description {
        product.seo_description = Some(seo_description.clone());
    }
    if let Some(sections) = &update.info_sections {
        product.info_sections = sections.clone();
    }
    if let Some(images) = &update.images {
        product.images = images.clone();
    }
}

impl LocalCatalog {
    fn to_catalog(stored: storage::StoredProduct) -> CatalogProduct {
        CatalogProduct {
            product: stored.source,
            revision: Some(stored.revision.to_string()),
        }
    }
}

#[async_trait]
impl Catalog for LocalCatalog {
    fn platform(&self) -> Platform {
        Platform::Local
    }

    async fn list(
        &self,
        cursor: Option<&str>,
        _modified_since: Option<DateTime<Utc>>,
    ) -> Result<CatalogPage, ConnectorError> {
        let after = cursor
            .map(|c| Uuid::parse_str(c).map_err(|_| ConnectorError::InvalidResponse(c.to_owned())))
            .transpose()?;
        let query = storage::ProductQuery {
            store_id: Some(self.store.id),
            after,
            limit: LOCAL_PAGE,
            ..Default::default()
        };
        let page = self
            .storage
            .list_products(self.store.account_id, &query)
            .await
            .map_err(local_error)?;
        let mut products = Vec::with_capacity(page.items.len());
        for item in page.items {
            let stored = self
                .storage
                .get_product(self.store.account_id, item.id)
                .await
                .map_err(local_error)?;
            products.push(Self::to_catalog(stored));
        }
        Ok(CatalogPage {
            products,
            next_cursor: page.next_cursor.map(|id| id.to_string()),
        })
    }

    async fn get(&self, external_id: &str) -> Result<Option<CatalogProduct>, ConnectorError> {
        Ok(self
            .storage
            .find_product_by_external_id(self.store.account_id, self.store.id, external_id)
            .await
            .map_err(local_error)?
            .map(Self::to_catalog))
    }

    async fn update(&self, update: &ProductUpdate) -> Result<CatalogProduct, ConnectorError> {
        let stored = self
            .storage
            .find_product_by_external_id(self.store.account_id, self.store.id, &update.external_id)
            .await
            .map_err(local_error)?
            .ok_or_else(|| ConnectorError::NotFound(update.external_id.clone()))?;
        let expected = update
            .expected_revision
            .as_deref()
            .map(|text| {
                text.parse::<i64>().map_err(|_| ConnectorError::Conflict {
                    code: "revision_mismatch".into(),
                    message: format!("{text:?} is not a revision of this catalog"),
                    current_revision: Some(stored.revision.to_string()),
                })
            })
            .transpose()?;
        let mut source = stored.source.clone();
        apply_update(&mut source, &update.update);
        let written = self
            .storage
            .replace_product_source(
                self.store.account_id,
                stored.id,
                expected,
                &source,
                Utc::now(),
            )
            .await
            .map_err(local_error)?;
        Ok(Self::to_catalog(written))
    }

    async fn update_many(
        &self,
        updates: &[ProductUpdate],
    ) -> Result<Vec<Result<CatalogProduct, ConnectorError>>, ConnectorError> {
        let mut results = Vec::with_capacity(updates.len());
        for update in updates {
            results.push(self.update(update).await);
        }
        Ok(results)
    }

    async fn collections(&self) -> Result<Vec<connectors::CatalogCollection>, ConnectorError> {
        Ok(self
            .storage
            .list_collections(self.store.account_id, Some(self.store.id))
            .await
            .map_err(local_error)?
            .into_iter()
            .map(|c| connectors::CatalogCollection {
                external_id: c.id.to_string(),
                name: c.name,
                path: c.path,
            })
            .collect())
    }
}
