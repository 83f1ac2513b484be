//! Content optimization jobs: create (credits reserved at once), follow (list, detail,
//! items, a live event stream), cancel, retry, and publish or revert the results. Every
//! query is scoped to the caller's account.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{Attribute, ContentValue, ItemStatus, JobCounts, JobStatus, Platform, SourceScope};
use serde::{Deserialize, Serialize};
use storage::{ItemQuery, Job, JobItem, JobQuery, NewJob};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use worker::publish::ItemPublishResult;

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::AppState;

/// Longest merchant instruction accepted.
pub const MAX_PROMPT_CHARS: usize = 2000;
/// Longest brand voice accepted.
pub const MAX_BRAND_VOICE_CHARS: usize = 500;
/// Most items one publish or revert call takes.
const MAX_PUBLISH_ITEMS: usize = 500;
/// How often the event stream looks for changes.
const STREAM_INTERVAL: Duration = Duration::from_millis(400);
/// How often an open event stream checks that its session still stands; a stream of a
/// signed-out session or a deleted account ends within this long.
const STREAM_AUTH_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, ToSchema)]
pub struct AttributeOption {
    pub id: Attribute,
    pub label: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LanguageOption {
    pub code: &'static str,
    pub name: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimizerOptions {
    /// `rules` (offline cleanup) or `openai`.
    pub provider: &'static str,
    /// Whether jobs may ask for another language.
    pub can_translate: bool,
    pub attributes: Vec<AttributeOption>,
    pub languages: Vec<LanguageOption>,
    pub credits_per_item: i64,
    pub max_products_per_job: usize,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobRequest {
    /// Whether `sourceIds` are products or collections.
    #[schema(value_type = SourceScope)]
    pub source_scope: String,
    /// Product or collection ids, as `/api/products` and `/api/collections` return them;
    /// at most `maxProductsPerJob` of `/api/optimizer/options`.
    #[schema(min_items = 1)]
    pub source_ids: Vec<Uuid>,
    /// Optional when the account has exactly one store.
    #[schema(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub store_id: Option<Uuid>,
    /// The fields to rewrite (WooCommerce products have no `info_sections`).
    #[schema(value_type = Vec<Attribute>, min_items = 1)]
    pub attributes: Vec<String>,
    /// A language code from `/api/optimizer/options`; absent or empty keeps each product's
    /// language. Only providers that can translate (`canTranslate`) take one.
    pub target_lang: Option<String>,
    /// The merchant's instruction, passed to the provider as data; blank is none.
    #[schema(max_length = 2000)]
    pub user_prompt: Option<String>,
    /// Blank is none.
    #[schema(max_length = 500)]
    pub brand_voice: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobCredits {
    pub reserved: i64,
    pub charged: i64,
    pub refunded: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: Uuid,
    pub store_id: Uuid,
    pub store_name: String,
    /// `text`.
    pub kind: String,
    pub status: JobStatus,
    pub source_scope: SourceScope,
    pub attributes: Vec<Attribute>,
    pub target_lang: Option<String>,
    pub user_prompt: Option<String>,
    pub brand_voice: Option<String>,
    pub provider: String,
    pub product_count: i64,
    pub counts: JobCounts,
    /// Terminal items as a share of all, 0–100.
    pub percent: u8,
    pub credits: JobCredits,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        JobView {
            id: job.id,
            store_id: job.store_id,
            store_name: job.store_name.clone(),
            kind: job.kind.as_str().into(),
            status: job.status,
            source_scope: job.source_scope,
            attributes: job.attributes.clone(),
            target_lang: job.target_lang.clone(),
            user_prompt: job.user_prompt.clone(),
            brand_voice: job.brand_voice.clone(),
            provider: job.provider.clone(),
            product_count: job.product_count,
            counts: job.counts,
            percent: job.counts.percent(),
            credits: JobCredits {
                reserved: job.credits_reserved,
                charged: job.credits_charged(),
                refunded: job.credits_refunded,
            },
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobPageView {
    pub items: Vec<JobView>,
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemErrorView {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobItemView {
    pub id: Uuid,
    pub job_id: Uuid,
    pub product_id: Uuid,
    pub product_title: Option<String>,
    pub attribute: Attribute,
    pub status: ItemStatus,
    pub attempts: i64,
    /// The value the job read (text, or a list of info sections).
    pub before: Option<ContentValue>,
    /// The proposed value.
    pub after: Option<ContentValue>,
    pub error: Option<ItemErrorView>,
    pub published_at: Option<DateTime<Utc>>,
    pub reverted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl From<JobItem> for JobItemView {
    fn from(item: JobItem) -> Self {
        let error = match (item.error_code, item.error_message) {
            (Some(code), Some(message)) => Some(ItemErrorView { code, message }),
            _ => None,
        };
        JobItemView {
            id: item.id,
            job_id: item.job_id,
            product_id: item.product_id,
            product_title: item.product_title,
            attribute: item.attribute,
            status: item.status,
            attempts: item.attempts,
            before: item.before,
            after: item.after,
            // A pending item's last error explains why it waits; only show it while it
            // matters.
            error,
            published_at: item.published_at,
            reverted_at: item.reverted_at,
            updated_at: item.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemPageView {
    pub items: Vec<JobItemView>,
    pub next_cursor: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    /// Only jobs in these states, comma-separated (`pending,running`); absent: all.
    #[param(value_type = Option<Vec<JobStatus>>)]
    pub status: Option<String>,
    /// `nextCursor` of the previous page; absent: the first page.
    pub cursor: Option<Uuid>,
    /// Page size (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ItemListParams {
    /// Only items in these states, comma-separated; absent: all.
    #[param(value_type = Option<Vec<ItemStatus>>)]
    pub status: Option<String>,
    /// `nextCursor` of the previous page; absent: the first page.
    pub cursor: Option<Uuid>,
    /// Page size (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only this job; the stream ends once it is finished.
    pub job_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishRequest {
    #[schema(min_items = 1, max_items = 500)]
    pub item_ids: Vec<Uuid>,
    /// Overwrite values the store changed since the job read them (publish) or since they
    /// were published (revert).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishResultView {
    pub item_id: Uuid,
    /// `published`, `reverted`, `unchanged`, `conflict` or `error`.
    pub outcome: String,
    /// The HTTP status this item's write amounts to (200, 404, 409, 422, 502).
    pub status: u16,
    pub error: Option<ItemErrorView>,
    /// What the store holds now, on a conflict.
    pub current: Option<ContentValue>,
}

impl From<ItemPublishResult> for PublishResultView {
    fn from(result: ItemPublishResult) -> Self {
        PublishResultView {
            item_id: result.item_id,
            outcome: result.outcome.as_str().into(),
            status: result.status,
            error: result
                .error
                .map(|(code, message)| ItemErrorView { code, message }),
            current: result.current,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishResponse {
    pub results: Vec<PublishResultView>,
}

fn parse_statuses<T>(
    field: &str,
    text: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> ApiResult<Vec<T>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty() && *part != "all")
        .map(|part| {
            parse(part).ok_or_else(|| {
                ApiError::field(
                    field,
                    format!("{part:?} is not a status (pending, running, done, failed, canceled)"),
                )
            })
        })
        .collect()
}

/// What the optimizer offers: attributes, languages, the provider and what a job costs.
#[utoipa::path(get, path = "/api/optimizer/options", tag = "jobs",
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = OptimizerOptions), (status = 401, body = ErrorBody)))]
pub async fn optimizer_options(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Json<OptimizerOptions> {
    Json(OptimizerOptions {
        provider: state.text_provider.name(),
        can_translate: state.text_provider.can_translate(),
        attributes: Attribute::ALL
            .into_iter()
            .map(|id| AttributeOption {
                id,
                label: id.label(),
            })
            .collect(),
        languages: ai::languages()
            .iter()
            .map(|(code, name)| LanguageOption { code, name })
            .collect(),
        credits_per_item: 1,
        max_products_per_job: state.settings.jobs.max_products_per_job,
    })
}

/// Checks a job request and turns it into the job to create.
async fn new_job(
    state: &AppState,
    account_id: Uuid,
    request: CreateJobRequest,
) -> ApiResult<NewJob> {
    let mut errors = domain::FieldErrors::new();
    let scope = SourceScope::parse(&request.source_scope);
    if scope.is_none() {
        errors.insert(
            "sourceScope".into(),
            "must be \"products\" or \"collections\"".into(),
        );
    }
    let max = state.settings.jobs.max_products_per_job;
    if request.source_ids.is_empty() {
        errors.insert("sourceIds".into(), "pick at least one".into());
    } else if request.source_ids.len() > max {
        errors.insert("sourceIds".into(), format!("at most {max} fit in one job"));
    }
    let mut attributes = Vec::new();
    for name in &request.attributes {
        match Attribute::parse(name) {
            Some(attribute) if !attributes.contains(&attribute) => attributes.push(attribute),
            Some(_) => {}
            None => {
                errors.insert(
                    "attributes".into(),
                    format!("{name:?} is not one of title, description, seo_title, seo_description, info_sections"),
                );
            }
        }
    }
    if request.attributes.is_empty() {
        errors.insert("attributes".into(), "pick at least one".into());
    }
    let target_lang = request
        .target_lang
        .as_deref()
        .map(str::trim)
        .filter(|code| !code.is_empty())
        .map(str::to_owned);
    if let Some(code) = &target_lang {
        if ai::language_name(code).is_none() {
            errors.insert(
                "targetLang".into(),
                format!("{code:?} is not a supported language code"),
            );
        }
    }
    let text =
        |value: Option<String>, field: &str, max: usize, errors: &mut domain::FieldErrors| {
            let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
            if value.as_ref().is_some_and(|v| v.chars().count() > max) {
                errors.insert(field.into(), format!("at most {max} characters"));
            }
            value
        };
    let user_prompt = text(
        request.user_prompt,
        "userPrompt",
        MAX_PROMPT_CHARS,
        &mut errors,
    );
    let brand_voice = text(
        request.brand_voice,
        "brandVoice",
        MAX_BRAND_VOICE_CHARS,
        &mut errors,
    );
    let stores = state.storage.list_stores(account_id).await?;
    let store = match request.store_id {
        Some(id) => stores.into_iter().find(|store| store.id == id),
        None if stores.len() == 1 => stores.into_iter().next(),
        None if stores.is_empty() => {
            return Err(ApiError::BadRequest {
                code: "no_store",
                message: "connect a store or create a local catalog first".into(),
            })
        }
        None => {
            errors.insert(
                "storeId".into(),
                "is required when the account has several stores".into(),
            );
            None
        }
    };
    if request.store_id.is_some() && store.is_none() {
        return Err(ApiError::NotFound("store"));
    }
    if let Some(store) = &store {
        if store.platform == Platform::Woocommerce && attributes.contains(&Attribute::InfoSections)
        {
            errors.insert(
                "attributes".into(),
                "WooCommerce products have no info sections".into(),
            );
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if target_lang.is_some() && !state.text_provider.can_translate() {
        return Err(ApiError::BadRequest {
            code: "translation_unavailable",
            message: format!(
                "the {} provider cannot translate: keep each product's language, or configure an AI provider (OPENAI_API_KEY)",
                state.text_provider.name()
            ),
        });
    }
    let (Some(scope), Some(store)) = (scope, store) else {
        return Err(ApiError::Validation(errors));
    };
    Ok(NewJob {
        store_id: store.id,
        kind: domain::JobKind::Text,
        source_scope: scope,
        source_ids: request.source_ids,
        attributes,
        target_lang,
        user_prompt,
        brand_voice,
        provider: state.text_provider.name().into(),
        credits_per_item: 1,
        max_products: max,
    })
}

/// Start a job: its credits (products × attributes) are reserved at once.
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", request_body = CreateJobRequest,
    security(("bearer" = []), ("wixInstance" = [])),
    responses(
        (status = 201, description = "Created; the items are queued", body = JobView),
        (status = 400, description = "Invalid request, or a language the provider cannot write", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 402, description = "Not enough credits; `details` has `required` and `remaining`", body = ErrorBody),
        (status = 404, description = "A store, product or collection not in this account", body = ErrorBody)))]
pub async fn create_job(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<CreateJobRequest>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let job = new_job(&state, caller.account_id, request).await?;
    let created = state
        .storage
        .create_job(caller.account_id, job, Utc::now())
        .await?;
    tracing::info!(job.id = %created.id, job.items = created.counts.total, "job created");
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The account's jobs, newest first.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(JobListParams),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = JobPageView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(params): ApiQuery<JobListParams>,
) -> ApiResult<Json<JobPageView>> {
    let query = JobQuery {
        statuses: parse_statuses("status", params.status.as_deref(), JobStatus::parse)?,
        before: params.cursor,
        limit: super::page_size(params.limit, 20, 100)?,
    };
    let page = state.storage.list_jobs(caller.account_id, &query).await?;
    Ok(Json(JobPageView {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One job with its progress and credits.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = JobView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(
        state.storage.get_job(caller.account_id, id).await?.into(),
    ))
}

/// A job's items with their before and after values, in order.
#[utoipa::path(get, path = "/api/jobs/{id}/items", tag = "jobs",
    params(("id" = Uuid, Path), ItemListParams),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = ItemPageView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_job_items(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<ItemListParams>,
) -> ApiResult<Json<ItemPageView>> {
    let query = ItemQuery {
        statuses: parse_statuses("status", params.status.as_deref(), ItemStatus::parse)?,
        after: params.cursor,
        limit: super::page_size(params.limit, 50, 500)?,
    };
    let page = state
        .storage
        .list_job_items(caller.account_id, id, &query)
        .await?;
    Ok(Json(ItemPageView {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Cancel a job: pending items are canceled and refunded, running ones finish.
#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "jobs", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = JobView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The job already ended", body = ErrorBody)))]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<JobView>> {
    let job = state
        .storage
        .cancel_job(caller.account_id, id, Utc::now())
        .await
        .map_err(|err| state_conflict(err, "job_finished"))?;
    Ok(Json(job.into()))
}

/// Retry a job's failed items; their credits are reserved again.
#[utoipa::path(post, path = "/api/jobs/{id}/retry", tag = "jobs", params(("id" = Uuid, Path)),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, body = JobView), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "No failed items", body = ErrorBody)))]
pub async fn retry_job(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<JobView>> {
    let job = state
        .storage
        .retry_job(caller.account_id, id, Utc::now())
        .await
        .map_err(|err| state_conflict(err, "nothing_to_retry"))?;
    Ok(Json(job.into()))
}

fn state_conflict(err: storage::StorageError, code: &'static str) -> ApiError {
    match err {
        storage::StorageError::InvalidState(message) => ApiError::Conflict { code, message },
        other => other.into(),
    }
}

/// Live progress: a `job` event with the job each time one of the account's jobs (or the
/// one named) changes. EventSource cannot send headers, so this route also takes the
/// credential as `?access_token=` or `?instance=`.
#[utoipa::path(get, path = "/api/jobs/events", tag = "jobs", params(EventParams),
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, description = "text/event-stream of `job` events", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn job_events(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(params): ApiQuery<EventParams>,
) -> ApiResult<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>> {
    let account_id = caller.account_id;
    let job_id = params.job_id;
    // A job of the one-job stream must exist; its current state is the first event.
    let since = match job_id {
        Some(id) => state.storage.get_job(account_id, id).await?.created_at,
        None => Utc::now(),
    };
    struct Cursor {
        since: DateTime<Utc>,
        sent: HashMap<Uuid, DateTime<Utc>>,
        pending: std::collections::VecDeque<Job>,
        finished: bool,
        checked_at: tokio::time::Instant,
    }
    let cursor = Cursor {
        since,
        sent: HashMap::new(),
        pending: Default::default(),
        finished: false,
        checked_at: tokio::time::Instant::now(),
    };
    let storage = state.storage.clone();
    let stream = futures_util::stream::unfold(cursor, move |mut cursor| {
        let storage = storage.clone();
        async move {
            loop {
                if let Some(job) = cursor.pending.pop_front() {
                    let terminal = job.status.is_terminal();
                    let data = serde_json::to_string(&JobView::from(job)).unwrap_or_default();
                    let event = Event::default().event("job").data(data);
                    if job_id.is_some() && terminal {
                        cursor.finished = true;
                    }
                    return Some((Ok(event), cursor));
                }
                if cursor.finished {
                    return None;
                }
                if cursor.checked_at.elapsed() >= STREAM_AUTH_INTERVAL {
                    if !caller.still_valid(storage.as_ref()).await {
                        tracing::debug!(account.id = %account_id, "job stream of an ended session closed");
                        return None;
                    }
                    cursor.checked_at = tokio::time::Instant::now();
                }
                match storage
                    .jobs_changed_since(account_id, cursor.since, job_id)
                    .await
                {
                    Ok(jobs) => {
                        for job in jobs {
                            cursor.since = cursor.since.max(job.updated_at);
                            if cursor.sent.get(&job.id) != Some(&job.updated_at) {
                                cursor.sent.insert(job.id, job.updated_at);
                                cursor.pending.push_back(job);
                            }
                        }
                    }
                    Err(err) => tracing::warn!(error.cause = %err, "job stream read failed"),
                }
                if cursor.pending.is_empty() {
                    tokio::time::sleep(STREAM_INTERVAL).await;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

fn check_item_ids(item_ids: &[Uuid]) -> ApiResult<()> {
    if item_ids.is_empty() {
        return Err(ApiError::field("itemIds", "name at least one item"));
    }
    if item_ids.len() > MAX_PUBLISH_ITEMS {
        return Err(ApiError::field(
            "itemIds",
            format!("at most {MAX_PUBLISH_ITEMS} items per call"),
        ));
    }
    Ok(())
}

/// Write finished items' values to their store. Each item has its own result: a value the
/// store changed since the job read it answers 409 for that item unless `force`.
#[utoipa::path(post, path = "/api/publish", tag = "jobs", request_body = PublishRequest,
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, description = "Per-item results", body = PublishResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<PublishRequest>,
) -> ApiResult<Json<PublishResponse>> {
    check_item_ids(&request.item_ids)?;
    let results = state
        .publisher()
        .publish(caller.account_id, &request.item_ids, request.force)
        .await?;
    Ok(Json(PublishResponse {
        results: results.into_iter().map(Into::into).collect(),
    }))
}

/// Restore the values published items replaced.
#[utoipa::path(post, path = "/api/revert", tag = "jobs", request_body = PublishRequest,
    security(("bearer" = []), ("wixInstance" = [])),
    responses((status = 200, description = "Per-item results", body = PublishResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn revert(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiJson(request): ApiJson<PublishRequest>,
) -> ApiResult<Json<PublishResponse>> {
    check_item_ids(&request.item_ids)?;
    let results = state
        .publisher()
        .revert(caller.account_id, &request.item_ids, request.force)
        .await?;
    Ok(Json(PublishResponse {
        results: results.into_iter().map(Into::into).collect(),
    }))
}
