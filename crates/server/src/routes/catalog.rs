//! Stores and their catalogs: connect a local catalog, import and export its CSV, browse
//! products and collections. Every query is scoped to the caller's account.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use connectors::csv::{parse_catalog, CsvError, CsvFormat};
use domain::{Availability, Platform, SourceProduct, Store};
use serde::{Deserialize, Serialize};
use storage::{NewStore, ProductQuery, SyncKind};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{read_body, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::AppState;

const DEFAULT_PAGE_SIZE: i64 = 50;
const MAX_PAGE_SIZE: i64 = 200;

/// What `POST /api/stores` reads; the document describes it as [`NewStoreBody`], one shape
/// per platform.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateStoreRequest {
    pub platform: String,
    pub name: Option<String>,
    pub currency: Option<String>,
    pub url: Option<String>,
    pub consumer_key: Option<String>,
    pub consumer_secret: Option<String>,
}

/// A store to connect. Wix stores connect themselves when the app is opened from the Wix
/// dashboard.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = CreateStoreRequest)]
#[serde(untagged)]
pub enum NewStoreBody {
    Local(NewLocalStore),
    WooCommerce(NewWooCommerceStore),
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum LocalPlatform {
    Local,
}

#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum WooCommercePlatform {
    Woocommerce,
}

/// A catalog kept here, filled by CSV import.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct NewLocalStore {
    platform: LocalPlatform,
    /// Default `Local catalog`. 1 to 100 characters once trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    /// ISO 4217 code of the catalog's prices, any case; default `USD`.
    #[schema(pattern = r"^\s*[A-Za-z]{3}\s*$")]
    currency: Option<String>,
}

/// A WooCommerce store reached with a REST API key. The address and key are checked
/// against the store before anything is saved.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct NewWooCommerceStore {
    platform: WooCommercePlatform,
    /// The store's address, e.g. `https://shop.example`.
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    url: String,
    /// A REST API key with read/write access (`ck_…`).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    consumer_key: String,
    /// The key's secret (`cs_…`). Stored encrypted.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    consumer_secret: String,
    /// Default: the store's host name.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    name: Option<String>,
    /// ISO 4217 code of the store's prices, any case; default `USD`.
    #[schema(pattern = r"^\s*[A-Za-z]{3}\s*$")]
    currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncBatchView {
    pub id: Uuid,
    /// `manual`, `schedule`, `webhook` or `connect`.
    pub trigger: String,
    /// `full`, `incremental` or `single`.
    pub kind: String,
    pub succeeded: bool,
    pub fetched: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncHistory {
    pub items: Vec<SyncBatchView>,
}

fn sync_view(batch: storage::SyncBatch) -> SyncBatchView {
    SyncBatchView {
        id: batch.id,
        trigger: batch.trigger,
        kind: batch.kind,
        succeeded: batch.succeeded,
        fetched: batch.fetched,
        created: batch.created,
        updated: batch.updated,
        unchanged: batch.unchanged,
        deleted: batch.deleted,
        error: batch.error,
        started_at: batch.started_at,
        duration_ms: batch.duration_ms,
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreView {
    pub id: Uuid,
    /// `local`, `wix` or `woocommerce`.
    pub platform: String,
    pub name: String,
    pub currency: String,
    pub external_id: String,
    pub product_count: i64,
    /// Takes part in the scheduled incremental sync.
    pub auto_sync: bool,
    /// Changes up to this instant have been read from the store.
    pub synced_through: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoreList {
    pub stores: Vec<StoreView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedLine {
    /// Line of the file where the rejected row starts (1 is the header).
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// `woocommerce` or `shopify`: the format the header was recognised as.
    pub format: String,
    /// Products read from the file (variations fold into their product).
    pub imported: usize,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: Vec<RejectedLine>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ProductListParams {
    /// Only this store's products.
    pub store_id: Option<Uuid>,
    /// Case-insensitive text in title, SKU, brand or category.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Only products in this collection (or its sub-collections).
    pub collection_id: Option<Uuid>,
    /// `nextCursor` of the previous page; absent: the first page.
    pub cursor: Option<Uuid>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductSummaryView {
    pub id: Uuid,
    pub store_id: Uuid,
    pub external_id: String,
    pub title: String,
    pub sku: Option<String>,
    /// Decimal price, e.g. "24.95".
    pub price: Option<String>,
    pub currency: String,
    pub availability: Availability,
    pub published: bool,
    pub image_url: Option<String>,
    pub variant_count: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPageView {
    pub items: Vec<ProductSummaryView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<Uuid>,
    /// Products matching the filters across all pages.
    pub total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionView {
    pub id: Uuid,
    pub store_id: Uuid,
    pub name: String,
    pub path: String,
    pub product_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionList {
    pub items: Vec<CollectionView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    pub id: Uuid,
    pub store_id: Uuid,
    /// Incremented on every change read from the store.
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
    pub collections: Vec<CollectionView>,
    /// The product as read from its store.
    pub source: SourceProduct,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CollectionParams {
    pub store_id: Option<Uuid>,
}

async fn store_view(state: &AppState, store: Store, product_count: i64) -> ApiResult<StoreView> {
    let sync = state
        .storage
        .store_sync_state(store.account_id, store.id)
        .await?;
    Ok(StoreView {
        id: store.id,
        platform: store.platform.as_str().into(),
        name: store.name,
        currency: store.currency,
        external_id: store.external_id,
        product_count,
        auto_sync: sync.auto_sync,
        synced_through: sync.synced_through,
        created_at: store.created_at,
    })
}

async fn product_count(state: &AppState, account_id: Uuid, store_id: Uuid) -> ApiResult<i64> {
    let query = ProductQuery {
        store_id: Some(store_id),
        limit: 0,
        ..Default::default()
    };
    Ok(state.storage.list_products(account_id, &query).await?.total)
}

/// The stores connected to the account.
#[utoipa::path(get, path = "/api/stores", tag = "catalog",
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = StoreList), (status = 401, body = ErrorBody)))]
pub async fn list_stores(
    State(state): State<AppState>,
    caller: Authenticated,
) -> ApiResult<Json<StoreList>> {
    let mut stores = Vec::new();
    for store in state.storage.list_stores(caller.account_id).await? {
        let count = product_count(&state, caller.account_id, store.id).await?;
        stores.push(store_view(&state, store, count).await?);
    }
    Ok(Json(StoreList { stores }))
}

/// Create a store connection. Only local catalogs are created here.
#[utoipa::path(post, path = "/api/stores", tag = "catalog", request_body = NewStoreBody,
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 201, description = "Created", body = StoreView),
        (status = 400, description = "Invalid platform, name or currency", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn create_store(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<CreateStoreRequest>,
) -> ApiResult<(StatusCode, Json<StoreView>)> {
    let mut errors = domain::FieldErrors::new();
    let platform = match Platform::parse(&request.platform) {
        Some(Platform::Wix) => {
            errors.insert(
                "platform".into(),
                "Wix stores connect automatically when the app is opened from the Wix dashboard"
                    .into(),
            );
            None
        }
        Some(platform) => Some(platform),
        None => {
            errors.insert(
                "platform".into(),
                "must be \"local\" or \"woocommerce\"".into(),
            );
            None
        }
    };
    let name = request
        .name
        .as_deref()
        .map(|name| {
            domain::validate_account_name(name)
                .map_err(|message| errors.insert("name".into(), message))
                .ok()
        })
        .unwrap_or(Some(String::new()));
    let currency = request
        .currency
        .as_deref()
        .unwrap_or("USD")
        .trim()
        .to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        errors.insert(
            "currency".into(),
            "must be a three-letter ISO 4217 code like USD".into(),
        );
    }
    let mut required = |field: &str, value: &Option<String>, cap: usize| {
        let value = value
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        if value.is_empty() {
            errors.insert(
                field.into(),
                "is required to connect a WooCommerce store".into(),
            );
        } else if let Err(problem) = domain::check_text(&value, cap) {
            errors.insert(field.into(), problem.to_string());
        }
        value
    };
    let woo = (platform == Some(Platform::Woocommerce)).then(|| {
        (
            required("url", &request.url, domain::text::URL_MAX_CHARS),
            required(
                "consumerKey",
                &request.consumer_key,
                domain::text::NAME_MAX_CHARS,
            ),
            required(
                "consumerSecret",
                &request.consumer_secret,
                domain::text::NAME_MAX_CHARS,
            ),
        )
    });
    let (Some(_), Some(name), true) = (platform, name, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let store = match woo {
        None => {
            let name = if name.is_empty() {
                "Local catalog".to_owned()
            } else {
                name
            };
            let new_store = NewStore {
                platform: Platform::Local,
                external_id: Uuid::new_v4().to_string(),
                name,
                currency,
                credentials_encrypted: None,
            };
            state
                .storage
                .create_store(caller.account_id, new_store, Utc::now())
                .await?
        }
        Some((url, consumer_key, consumer_secret)) => {
            connect_woocommerce(
                &state,
                caller.account_id,
                name,
                currency,
                url,
                consumer_key,
                consumer_secret,
            )
            .await?
        }
    };
    let count = product_count(&state, caller.account_id, store.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(store_view(&state, store, count).await?),
    ))
}

/// Checks the address and keys against the store, saves the keys encrypted, and reads the
/// catalog once.
pub(crate) async fn connect_woocommerce(
    state: &AppState,
    account_id: Uuid,
    name: String,
    currency: String,
    url: String,
    consumer_key: String,
    consumer_secret: String,
) -> ApiResult<Store> {
    use connectors::http::ConnectorError;
    use connectors::woocommerce::{
        credentials_context, normalize_store_url, Credentials, WooCommerceClient,
    };
    let url_error = |err: ConnectorError| ApiError::field("url", err.to_string());
    let url = normalize_store_url(&url).map_err(url_error)?;
    let client = WooCommerceClient::new(
        &url,
        &consumer_key,
        &consumer_secret,
        state.connector_settings().woocommerce,
    )
    .map_err(url_error)?;
    // An address that leads to no store is the request's fault (400 on `url`); a store
    // that answers and refuses speaks for itself (its error, passed on).
    client.verify().await.map_err(|err| match err {
        err @ (ConnectorError::PrivateAddress(_)
        | ConnectorError::Unreachable(_)
        | ConnectorError::InvalidResponse(_)) => url_error(err),
        other => ApiError::Store(other),
    })?;
    let credentials = serde_json::to_vec(&Credentials {
        consumer_key,
        consumer_secret,
    })
    .map_err(ApiError::internal)?;
    let sealed = state
        .keyring
        .encrypt(&credentials, &credentials_context(&url));
    let name = if name.is_empty() {
        reqwest_host(&url).unwrap_or_else(|| url.clone())
    } else {
        name
    };
    let new_store = NewStore {
        platform: Platform::Woocommerce,
        external_id: url,
        name,
        currency,
        credentials_encrypted: Some(sealed),
    };
    let store = state
        .storage
        .create_store(account_id, new_store, Utc::now())
        .await?;
    // The first read is queued at once; the dashboard follows it through the store's sync
    // status, and a failure stays in the sync history while the connection stays.
    queue_sync(state, &store, SyncKind::Full, "connect", None).await?;
    register_webhooks(state, &store, &client).await;
    Ok(store)
}

/// The context binding a store's webhook secret to that store when sealed.
pub(crate) fn webhook_secret_context(store_id: Uuid) -> String {
    format!("woocommerce-webhook-secret:{store_id}")
}

/// Gives the store a fresh webhook secret and asks WooCommerce to send product changes to
/// our receiver. Best effort: a store that cannot reach this service (a development
/// machine, a firewall) still syncs on schedule and on demand; the failure is logged.
async fn register_webhooks(
    state: &AppState,
    store: &Store,
    client: &connectors::woocommerce::WooCommerceClient,
) {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let sealed = state
        .keyring
        .encrypt(secret.as_bytes(), &webhook_secret_context(store.id));
    if let Err(err) = state
        .storage
        .set_webhook_secret(store.account_id, store.id, Some(&sealed))
        .await
    {
        tracing::warn!(store.id = %store.id, error.cause = %err, "could not save the webhook secret");
        return;
    }
    let delivery_url = format!(
        "{}/api/webhooks/woocommerce/{}",
        state.settings.public_base_url(),
        store.id
    );
    match client
        .register_product_webhooks(&delivery_url, &secret)
        .await
    {
        Ok(ids) => {
            tracing::info!(store.id = %store.id, webhooks = ids.len(), "WooCommerce webhooks registered")
        }
        Err(err) => tracing::warn!(
            store.id = %store.id,
            error.cause = %err,
            "WooCommerce webhooks could not be registered; the store syncs on schedule and on demand"
        ),
    }
}

fn reqwest_host(url: &str) -> Option<String> {
    url.split("://")
        .nth(1)
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequestBody {
    /// `full` (default: everything, removing products the store no longer has) or
    /// `incremental` (what changed since the last sync).
    #[schema(value_type = Option<SyncKindName>)]
    pub kind: Option<String>,
}

/// The kinds of sync a client can ask for.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SyncKindName {
    Full,
    Incremental,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequestView {
    pub id: Uuid,
    pub store_id: Uuid,
    /// `full`, `incremental` or `single`.
    pub kind: String,
    /// `manual`, `schedule`, `webhook` or `connect`.
    pub trigger: String,
    /// For single-product syncs: the product's id in the store.
    pub product_external_id: Option<String>,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The sync run of the last attempt (see the history).
    pub batch_id: Option<Uuid>,
    pub error: Option<String>,
}

fn sync_request_view(request: storage::SyncRequest) -> SyncRequestView {
    SyncRequestView {
        id: request.id,
        store_id: request.store_id,
        kind: request.kind.as_str().into(),
        trigger: request.trigger,
        product_external_id: request.product_external_id,
        status: request.status.as_str().into(),
        attempts: request.attempts,
        created_at: request.created_at,
        finished_at: request.finished_at,
        batch_id: request.batch_id,
        error: request.error,
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatusView {
    /// The store takes part in the scheduled incremental sync (every 15 minutes).
    pub auto_sync: bool,
    /// Changes up to this instant have been read.
    pub synced_through: Option<DateTime<Utc>>,
    /// Waiting and running syncs, oldest first.
    pub active: Vec<SyncRequestView>,
    /// The newest finished run.
    pub last: Option<SyncBatchView>,
    /// The store's products now (changes as syncs run).
    pub product_count: i64,
}

/// Queues a sync of `store` and wakes this process's sync worker.
pub(crate) async fn queue_sync(
    state: &AppState,
    store: &Store,
    kind: SyncKind,
    trigger: &str,
    product: Option<String>,
) -> ApiResult<storage::SyncRequest> {
    let request = state
        .storage
        .enqueue_sync(
            store.account_id,
            store.id,
            storage::NewSyncRequest {
                kind,
                trigger: trigger.to_owned(),
                product_external_id: product,
            },
            Utc::now(),
        )
        .await?;
    state.sync_wake.notify_waiters();
    Ok(request)
}

fn ensure_syncable(store: &Store) -> ApiResult<()> {
    match store.platform {
        Platform::Local => Err(ApiError::Conflict {
            code: "not_syncable",
            message: "local catalogs are filled by CSV import, not synced".into(),
        }),
        Platform::Wix | Platform::Woocommerce => Ok(()),
    }
}

/// Queue a sync of the store's catalog (full by default). The sync runs in the background;
/// follow it with `GET /api/stores/{id}/sync`.
#[utoipa::path(post, path = "/api/stores/{id}/sync", tag = "catalog", params(("id" = Uuid, Path)),
    request_body(content = Option<SyncRequestBody>, description = "Optional; `{\"kind\": \"incremental\"}`"),
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 202, description = "Queued (or already waiting)", body = SyncRequestView),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Local catalogs are filled by import", body = ErrorBody)))]
pub async fn sync_store(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<SyncRequestView>)> {
    // No body, or `null`, asks for the default sync; a body is JSON like any other.
    let request: SyncRequestBody = if body.iter().all(u8::is_ascii_whitespace) {
        SyncRequestBody::default()
    } else if !crate::error::has_json_content_type(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    } else if body.len() > state.settings.max_body_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: state.settings.max_body_bytes,
        });
    } else {
        crate::error::parse_json::<Option<SyncRequestBody>>(&body)?.unwrap_or_default()
    };
    let kind = match request.kind.as_deref().unwrap_or("full") {
        "full" => SyncKind::Full,
        "incremental" => SyncKind::Incremental,
        _ => {
            return Err(ApiError::field(
                "kind",
                "must be \"full\" or \"incremental\"",
            ))
        }
    };
    let store = state.storage.get_store(caller.account_id, id).await?;
    ensure_syncable(&store)?;
    let request = queue_sync(&state, &store, kind, "manual", None).await?;
    Ok((StatusCode::ACCEPTED, Json(sync_request_view(request))))
}

/// The store's sync settings, the syncs waiting or running, and the last finished run.
#[utoipa::path(get, path = "/api/stores/{id}/sync", tag = "catalog", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = SyncStatusView), (status = 404, body = ErrorBody)))]
pub async fn sync_status(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SyncStatusView>> {
    // The active requests are read first: a sync writes its batch and `syncedThrough`
    // before it leaves the active list, so an answer with nothing active always shows
    // what the last sync wrote.
    let active = state
        .storage
        .active_sync_requests(caller.account_id, id)
        .await?
        .into_iter()
        .map(sync_request_view)
        .collect();
    let sync = state
        .storage
        .store_sync_state(caller.account_id, id)
        .await?;
    let last = state
        .storage
        .list_sync_batches(caller.account_id, id, 1)
        .await?
        .into_iter()
        .next()
        .map(sync_view);
    Ok(Json(SyncStatusView {
        auto_sync: sync.auto_sync,
        synced_through: sync.synced_through,
        active,
        last,
        product_count: product_count(&state, caller.account_id, id).await?,
    }))
}

/// One queued or finished sync request.
#[utoipa::path(get, path = "/api/stores/{id}/sync/{requestId}", tag = "catalog",
    params(("id" = Uuid, Path), ("requestId" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = SyncRequestView), (status = 404, body = ErrorBody)))]
pub async fn get_sync_request(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath((id, request_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<SyncRequestView>> {
    let request = state
        .storage
        .get_sync_request(caller.account_id, request_id)
        .await?;
    if request.store_id != id {
        return Err(ApiError::NotFound("sync request"));
    }
    Ok(Json(sync_request_view(request)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateStoreRequest {
    /// Take part in the scheduled incremental sync every 15 minutes.
    pub auto_sync: Option<bool>,
}

/// Change a store's settings.
#[utoipa::path(patch, path = "/api/stores/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    request_body = UpdateStoreRequest,
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 200, body = StoreView),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Local catalogs do not sync", body = ErrorBody)))]
pub async fn update_store(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<UpdateStoreRequest>,
) -> ApiResult<Json<StoreView>> {
    let store = state.storage.get_store(caller.account_id, id).await?;
    if let Some(enabled) = request.auto_sync {
        if enabled {
            ensure_syncable(&store)?;
        }
        state
            .storage
            .set_auto_sync(caller.account_id, id, enabled)
            .await?;
    }
    let count = product_count(&state, caller.account_id, id).await?;
    Ok(Json(store_view(&state, store, count).await?))
}

/// The store's sync runs, newest first.
#[utoipa::path(get, path = "/api/stores/{id}/syncs", tag = "catalog", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = SyncHistory), (status = 404, body = ErrorBody)))]
pub async fn sync_history(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SyncHistory>> {
    state.storage.get_store(caller.account_id, id).await?;
    let items = state
        .storage
        .list_sync_batches(caller.account_id, id, 50)
        .await?
        .into_iter()
        .map(sync_view)
        .collect();
    Ok(Json(SyncHistory { items }))
}

/// One store.
#[utoipa::path(get, path = "/api/stores/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = StoreView), (status = 404, body = ErrorBody)))]
pub async fn get_store(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<StoreView>> {
    let store = state.storage.get_store(caller.account_id, id).await?;
    let count = product_count(&state, caller.account_id, id).await?;
    Ok(Json(store_view(&state, store, count).await?))
}

/// Disconnect a store and delete everything cached from it.
#[utoipa::path(delete, path = "/api/stores/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Wix stores leave when the app is uninstalled", body = ErrorBody)))]
pub async fn delete_store(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let store = state.storage.get_store(caller.account_id, id).await?;
    if store.platform == Platform::Wix {
        return Err(ApiError::Conflict {
            code: "wix_store",
            message: "a Wix store is disconnected by removing the app from the Wix site".into(),
        });
    }
    state.storage.delete_store(caller.account_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Import a catalog CSV (WooCommerce product export or Shopify product format) into a
/// local store. Valid rows are imported; each rejected row is reported with its line
/// (a NUL character, a field over its size cap, a quoted cell never closed, …). An import
/// that would take the store past `OPTIMIZER_MAX_PRODUCTS_PER_STORE` products is refused
/// whole (400 `too_many_products`).
#[utoipa::path(post, path = "/api/stores/{id}/import", tag = "catalog", params(("id" = Uuid, Path)),
    request_body(content = String, content_type = "text/csv"),
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 200, description = "Import report", body = ImportReport),
        (status = 400, description = "Not a catalog CSV (`invalid_csv`), or more products than a store may hold (`too_many_products`)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not a local store", body = ErrorBody),
        (status = 413, description = "File larger than the import limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not text/csv", body = ErrorBody)))]
pub async fn import_catalog(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json<ImportReport>> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(
        content_type.as_str(),
        "text/csv" | "application/csv" | "text/plain"
    ) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let store = state.storage.get_store(caller.account_id, id).await?;
    if store.platform != Platform::Local {
        return Err(ApiError::Conflict {
            code: "not_local_store",
            message: "CSV import is for local catalogs; this store syncs from its platform".into(),
        });
    }
    let body = read_body(&headers, body, state.settings.max_import_bytes).await?;
    let currency = store.currency.clone();
    let parsed = tokio::task::spawn_blocking(move || parse_catalog(&body, &currency))
        .await
        .map_err(ApiError::internal)?
        .map_err(|err: CsvError| ApiError::InvalidCsv(err.to_string()))?;
    let summary = state
        .storage
        .import_products(
            caller.account_id,
            id,
            &parsed.products,
            state.settings.max_products_per_store,
            Utc::now(),
        )
        .await?;
    tracing::info!(
        account.id = %caller.account_id,
        store.id = %id,
        import.products = parsed.products.len(),
        import.rejected = parsed.rejected.len(),
        "catalog imported"
    );
    Ok(Json(ImportReport {
        format: match parsed.format {
            CsvFormat::WooCommerce => "woocommerce",
            CsvFormat::Shopify => "shopify",
        }
        .into(),
        imported: parsed.products.len(),
        created: summary.created,
        updated: summary.updated,
        unchanged: summary.unchanged,
        rejected: parsed
            .rejected
            .into_iter()
            .map(|row| RejectedLine {
                line: row.line,
                reason: row.reason,
            })
            .collect(),
    }))
}

/// Export a store's catalog as a WooCommerce product CSV.
#[utoipa::path(get, path = "/api/stores/{id}/export", tag = "catalog", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 200, description = "The catalog", content_type = "text/csv", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn export_catalog(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let store = state.storage.get_store(caller.account_id, id).await?;
    let products = state.storage.store_products(caller.account_id, id).await?;
    let csv = connectors::csv::export_woocommerce(&products);
    let file_name: String = store
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}.csv\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"catalog.csv\""));
    Ok((
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

/// Products of the account's stores: search, collection filter, cursor paging.
#[utoipa::path(get, path = "/api/products", tag = "catalog", params(ProductListParams),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = ProductPageView), (status = 400, body = ErrorBody)))]
pub async fn list_products(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(params): ApiQuery<ProductListParams>,
) -> ApiResult<Json<ProductPageView>> {
    let limit = super::page_size(params.limit, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
    if params.q.as_deref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let query = ProductQuery {
        store_id: params.store_id,
        search: params.q,
        collection_id: params.collection_id,
        after: params.cursor,
        limit,
    };
    let page = state
        .storage
        .list_products(caller.account_id, &query)
        .await?;
    Ok(Json(ProductPageView {
        items: page
            .items
            .into_iter()
            .map(|item| ProductSummaryView {
                id: item.id,
                store_id: item.store_id,
                external_id: item.external_id,
                title: item.title,
                sku: item.sku,
                price: item
                    .price_minor
                    .map(|minor| domain::Money { minor }.to_decimal()),
                currency: item.currency,
                availability: item.availability,
                published: item.published,
                image_url: item.image_url,
                variant_count: item.variant_count,
                updated_at: item.updated_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
        total: page.total,
    }))
}

/// One product with everything read from its store.
#[utoipa::path(get, path = "/api/products/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = ProductView), (status = 404, body = ErrorBody)))]
pub async fn get_product(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ProductView>> {
    let product = state.storage.get_product(caller.account_id, id).await?;
    let collections = state
        .storage
        .list_collections(caller.account_id, Some(product.store_id))
        .await?
        .into_iter()
        .filter(|collection| product.collection_ids.contains(&collection.id))
        .map(collection_view)
        .collect();
    Ok(Json(ProductView {
        id: product.id,
        store_id: product.store_id,
        revision: product.revision,
        updated_at: product.updated_at,
        collections,
        source: product.source,
    }))
}

/// Collections (categories) of the account's stores with their product counts.
#[utoipa::path(get, path = "/api/collections", tag = "catalog", params(CollectionParams),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = CollectionList)))]
pub async fn list_collections(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(params): ApiQuery<CollectionParams>,
) -> ApiResult<Json<CollectionList>> {
    let items = state
        .storage
        .list_collections(caller.account_id, params.store_id)
        .await?
        .into_iter()
        .map(collection_view)
        .collect();
    Ok(Json(CollectionList { items }))
}

fn collection_view(collection: storage::Collection) -> CollectionView {
    CollectionView {
        id: collection.id,
        store_id: collection.store_id,
        name: collection.name,
        path: collection.path,
        product_count: collection.product_count,
    }
}
