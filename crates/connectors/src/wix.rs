//! Wix REST client for a self-hosted app (public sources and the sections cited below:
//! docs/protocols.md, Wix) and the Wix Stores catalog behind the [`Catalog`] interface, for
//! sites on Catalog V3 and on the legacy V1.
//!
//! * Access tokens come from the client-credentials grant (§2.1) and are cached until five
//!   minutes before they expire, so a long sync never sends a token that dies mid-flight.
//!   A 401 mints once more and retries the call once (tokens can be revoked early); a
//!   second refusal, or a refused mint (app removed), is [`ConnectorError::Unauthorized`]
//!   with Wix's own code.
//! * The catalog version (§4.1) is read once and cached: it is permanent per site.
//! * Wix allows 200 requests per minute per instance (§6.2). Every client of an instance in
//!   this process draws from one token bucket and one pool of 10 concurrent requests, so
//!   parallel jobs for one site cannot together exceed what Wix accepts.
//! * Retries (timeouts, dropped connections, 5xx, 429 with `Retry-After`) go through the
//!   shared [`send_with_retries`]; the empty-body 403 that Wix sends for some bursts
//!   (§6.2) is retried with the same backoff.
//! * Error answers keep Wix's `applicationError.code`, or the violated rule and field of a
//!   `validationError`, with Wix's message (§6.1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{
    Availability, InfoSection, Money, Platform, ProductAttribute, ProductImage, SourceProduct,
};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{OnceCell, Semaphore};

use crate::catalog::{
    Catalog, CatalogCollection, CatalogPage, CatalogProduct, ContentUpdate, ProductUpdate,
};
use crate::http::{send_with_retries, ConnectorError, RetryPolicy};

/// Where Wix serves its REST APIs.
pub const DEFAULT_BASE_URL: &str = "https://www.wixapis.com";
/// The largest page of products, and the largest bulk update (§4.2, §4.4).
pub const MAX_PAGE: usize = 100;
/// Concurrent requests per Wix site, across every client of that site in the process.
pub const MAX_CONCURRENT_REQUESTS: usize = 10;
/// A token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// `expires_in` when Wix leaves it out (§2.1 documents four hours).
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 14_400;
/// The optional V3 blocks the mapping reads (§4.2 `fields`). List and get ask for the same
/// ones, so one product maps identically either way.
pub const V3_FIELDS: &[&str] = &[
    "PLAIN_DESCRIPTION",
    "MEDIA_ITEMS_INFO",
    "CURRENCY",
    "URL",
    "INFO_SECTION",
    "INFO_SECTION_PLAIN_DESCRIPTION",
    "DIRECT_CATEGORIES_INFO",
];
/// The Categories API tree of Wix Stores (§4.5).
const STORES_TREE: &str = "@wix/stores";

/// How many requests a site may receive per period (Wix: 200 per minute per instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests: 200,
            per: Duration::from_secs(60),
        }
    }
}

/// What a [`WixClient`] needs: the app's credentials and the site's instance.
#[derive(Clone)]
pub struct WixConfig {
    pub app_id: String,
    pub app_secret: String,
    pub instance_id: String,
    /// `https://www.wixapis.com` unless testing; plain `http` only to loopback hosts.
    pub base_url: String,
    pub retry: RetryPolicy,
    /// The first client of an instance in the process sets the shared limit.
    pub rate_limit: RateLimit,
}

impl WixConfig {
    pub fn new(app_id: &str, app_secret: &str, instance_id: &str) -> Self {
        WixConfig {
            app_id: app_id.to_owned(),
            app_secret: app_secret.to_owned(),
            instance_id: instance_id.to_owned(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            retry: RetryPolicy::default(),
            rate_limit: RateLimit::default(),
        }
    }
}

impl std::fmt::Debug for WixConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WixConfig")
            .field("app_id", &self.app_id)
            .field("instance_id", &self.instance_id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Which catalog a site runs (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogVersion {
    V1,
    V3,
    /// Wix Stores is not on the site (yet): there is no catalog to read.
    StoresNotInstalled,
}

/// The app's instance on a site (§5.1), as billing reconciliation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInstance {
    pub instance_id: String,
    pub app_name: Option<String>,
    pub app_version: Option<String>,
    /// `false` while a paid plan is active; then `billing` describes it.
    pub is_free: bool,
    pub billing: Option<Billing>,
    pub permissions: Vec<String>,
    pub site: Option<SiteInfo>,
}

/// The paid plan of an instance. Wix's own example omits most fields, so all are optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Billing {
    /// The plan's vendor product id.
    #[serde(default)]
    pub package_name: Option<String>,
    /// `MONTHLY`, `YEARLY`, ...
    #[serde(default)]
    pub billing_cycle: Option<String>,
    #[serde(default)]
    pub auto_renewing: Option<bool>,
    /// When the purchase or trial started.
    #[serde(default)]
    pub time_stamp: Option<DateTime<Utc>>,
    /// Only for yearly and multi-year plans.
    #[serde(default)]
    pub expiration_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub invoice_id: Option<String>,
    /// A coupon name, or empty.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteInfo {
    #[serde(default)]
    pub site_id: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub site_display_name: Option<String>,
    #[serde(default)]
    pub payment_currency: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInstance {
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    app_name: Option<String>,
    #[serde(default)]
    app_version: Option<String>,
    #[serde(default)]
    is_free: Option<bool>,
    #[serde(default)]
    billing: Option<Billing>,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(Deserialize)]
struct InstanceAnswer {
    instance: RawInstance,
    #[serde(default)]
    site: Option<SiteInfo>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The per-site request budget shared by every client of one instance in the process.
struct SiteLimits {
    bucket: Mutex<Bucket>,
    permits: Semaphore,
}

struct Bucket {
    capacity: f64,
    per_second: f64,
    /// Refill kept unused so latency jitter never lets Wix's bucket (which counts arrivals,
    /// not departures) see a burst our bucket allowed: 100 ms worth, at most a full token
    /// less than capacity. The steady rate stays the configured one.
    reserve: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.at = now;
    }
}

impl SiteLimits {
    fn new(rate: RateLimit) -> Self {
        let capacity = f64::from(rate.requests.max(1));
        let per_second = capacity / rate.per.as_secs_f64().max(0.001);
        SiteLimits {
            bucket: Mutex::new(Bucket {
                capacity,
                per_second,
                reserve: (per_second * 0.1).min(capacity - 1.0).max(0.0),
                tokens: capacity,
                at: Instant::now(),
            }),
            permits: Semaphore::new(MAX_CONCURRENT_REQUESTS),
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the site's budget allows one more request, and spends it.
    async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.bucket();
                bucket.refill();
                let needed = 1.0 + bucket.reserve;
                if bucket.tokens >= needed {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((needed - bucket.tokens) / bucket.per_second)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Spends a request a retry already sends (the budget may go negative, delaying the
    /// next calls instead).
    fn spend(&self) {
        let mut bucket = self.bucket();
        bucket.refill();
        bucket.tokens -= 1.0;
    }
}

fn site_limits(instance_id: &str, rate: RateLimit) -> Arc<SiteLimits> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<SiteLimits>>>> = OnceLock::new();
    let mut registry = REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    registry
        .entry(instance_id.to_owned())
        .or_insert_with(|| Arc::new(SiteLimits::new(rate)))
        .clone()
}

struct CachedToken {
    value: String,
    fresh_until: Instant,
}

struct Inner {
    http: reqwest::Client,
    config: WixConfig,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    version: OnceLock<CatalogVersion>,
    limits: Arc<SiteLimits>,
}

/// A client for one site (instance) of the app. Clones share the token and the cache.
#[derive(Clone)]
pub struct WixClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WixClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl WixClient {
    /// Checks the base URL; makes no request.
    pub fn new(mut config: WixConfig) -> Result<Self, ConnectorError> {
        let trimmed = config.base_url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&trimmed)
            .map_err(|_| ConnectorError::InvalidUrl(config.base_url.clone()))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(ConnectorError::InsecureUrl(
                    "Wix access tokens are only sent over HTTPS".into(),
                ))
            }
            _ => return Err(ConnectorError::InvalidUrl(config.base_url.clone())),
        }
        config.base_url = trimmed;
        let http = reqwest::Client::builder()
            .user_agent(concat!("UltimateOptimizer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ConnectorError::Unreachable(err.to_string()))?;
        let limits = site_limits(&config.instance_id, config.rate_limit);
        Ok(WixClient {
            inner: Arc::new(Inner {
                http,
                config,
                token: tokio::sync::Mutex::new(None),
                version: OnceLock::new(),
                limits,
            }),
        })
    }

    pub fn instance_id(&self) -> &str {
        &self.inner.config.instance_id
    }

    /// A usable access token: the cached one while fresh (and not the one Wix just
    /// `rejected`), else a new one. One caller mints at a time; the others reuse its token.
    async fn access_token(&self, rejected: Option<&str>) -> Result<String, ConnectorError> {
        let mut cached = self.inner.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if rejected.is_none_or(|r| r != token.value) && Instant::now() < token.fresh_until {
                return Ok(token.value.clone());
            }
        }
        let (value, lifetime) = self.mint().await?;
        *cached = Some(CachedToken {
            value: value.clone(),
            fresh_until: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
        });
        Ok(value)
    }

    /// `POST /oauth2/token` with the client-credentials grant (§2.1).
    async fn mint(&self) -> Result<(String, Duration), ConnectorError> {
        let config = &self.inner.config;
        let url = format!("{}/oauth2/token", config.base_url);
        let body = json!({
            "grant_type": "client_credentials",
            "client_id": config.app_id,
            "client_secret": config.app_secret,
            "instance_id": config.instance_id,
        });
        let response = send_with_retries(
            &config.retry,
            || self.inner.http.post(&url).json(&body),
            |status, text| async move {
                match status.as_u16() {
                    400 | 401 | 403 => {
                        let (code, message) = describe_error(status, &text);
                        ConnectorError::Unauthorized { code, message }
                    }
                    _ => wix_error(status, &text),
                }
            },
        )
        .await?;
        let answer: TokenAnswer =
            serde_json::from_slice(&read_bytes(response, "/oauth2/token").await?)
                .map_err(|err| ConnectorError::InvalidResponse(format!("/oauth2/token: {err}")))?;
        if answer.access_token.trim().is_empty() {
            return Err(ConnectorError::InvalidResponse(
                "/oauth2/token: the access token is empty".into(),
            ));
        }
        tracing::debug!(instance_id = %config.instance_id, "minted a Wix access token");
        Ok((
            answer.access_token,
            Duration::from_secs(answer.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS)),
        ))
    }

    /// One API call, within the site's rate and concurrency limits, re-minting the token
    /// once on a 401. Returns the JSON answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ConnectorError> {
        let limits = &self.inner.limits;
        let retry = &self.inner.config.retry;
        let _permit =
            limits.permits.acquire().await.map_err(|_| {
                ConnectorError::Unreachable("the request limiter was closed".into())
            })?;
        let url = format!("{}{path}", self.inner.config.base_url);
        let mut token = self.access_token(None).await?;
        let mut reminted = false;
        let mut forbidden_retries = 0;
        loop {
            limits.acquire().await;
            let attempts = AtomicU32::new(0);
            let outcome = send_with_retries(
                retry,
                || {
                    if attempts.fetch_add(1, Ordering::Relaxed) > 0 {
                        limits.spend();
                    }
                    let mut request = self
                        .inner
                        .http
                        .request(method.clone(), &url)
                        .header(reqwest::header::AUTHORIZATION, token.as_str())
                        .header(reqwest::header::ACCEPT, "application/json")
                        .query(query);
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    request
                },
                |status, text| async move { wix_error(status, &text) },
            )
            .await;
            match outcome {
                Ok(response) => {
                    let bytes = read_bytes(response, path).await?;
                    return serde_json::from_slice(&bytes)
                        .map_err(|err| ConnectorError::InvalidResponse(format!("{path}: {err}")));
                }
                Err(ConnectorError::Unauthorized { .. }) if !reminted => {
                    reminted = true;
                    tracing::debug!(path, "Wix refused the access token; minting a new one");
                    let fresh = self.access_token(Some(&token)).await?;
                    token = fresh;
                }
                Err(ConnectorError::Platform {
                    status: 403, code, ..
                }) if code == "http_403" && forbidden_retries < retry.max_retries => {
                    tokio::time::sleep(retry.backoff(forbidden_retries)).await;
                    forbidden_retries += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The site's catalog version, read once (§4.1). `StoresNotInstalled` is not cached:
    /// the merchant may add Wix Stores later.
    pub async fn catalog_version(&self) -> Result<CatalogVersion, ConnectorError> {
        if let Some(version) = self.inner.version.get() {
            return Ok(*version);
        }
        let answer = self
            .call(Method::GET, "/stores/v3/provision/version", &[], None)
            .await?;
        let version = match answer["catalogVersion"].as_str() {
            Some("V1_CATALOG") => CatalogVersion::V1,
            Some("V3_CATALOG") => CatalogVersion::V3,
            Some("STORES_NOT_INSTALLED") => return Ok(CatalogVersion::StoresNotInstalled),
            other => {
                return Err(ConnectorError::InvalidResponse(format!(
                    "/stores/v3/provision/version: unknown catalog version {other:?}"
                )))
            }
        };
        Ok(*self.inner.version.get_or_init(|| version))
    }

    /// The app's instance on the site (§5.1): plan, billing cycle, auto-renewal.
    pub async fn app_instance(&self) -> Result<AppInstance, ConnectorError> {
        let answer = self
            .call(Method::GET, "/apps/v1/instance", &[], None)
            .await?;
        let parsed: InstanceAnswer = serde_json::from_value(answer)
            .map_err(|err| ConnectorError::InvalidResponse(format!("/apps/v1/instance: {err}")))?;
        let raw = parsed.instance;
        Ok(AppInstance {
            is_free: raw.is_free.unwrap_or(raw.billing.is_none()),
            instance_id: raw.instance_id,
            app_name: raw.app_name,
            app_version: raw.app_version,
            billing: raw.billing,
            permissions: raw.permissions,
            site: parsed.site,
        })
    }
}

async fn read_bytes(response: reqwest::Response, path: &str) -> Result<Vec<u8>, ConnectorError> {
    response
        .bytes()
        .await
        .map(|bytes| bytes.to_vec())
        .map_err(|err| {
            ConnectorError::Unreachable(format!("{path}: the answer was cut off: {err}"))
        })
}

/// Wix's code and message for an error answer (§6.1): the `applicationError` code, the
/// violated rule of a `validationError` with its fields, an OAuth `error`, or `http_<status>`
/// with what can be said about an empty answer.
fn describe_error(status: StatusCode, body: &str) -> (String, String) {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = value["message"].as_str().unwrap_or("").trim().to_owned();
    let application = &value["details"]["applicationError"];
    if let Some(code) = application["code"].as_str().filter(|c| !c.is_empty()) {
        let description = application["description"].as_str().unwrap_or("").trim();
        let message = match (message.is_empty(), description.is_empty()) {
            (true, true) => code.to_owned(),
            (true, false) => description.to_owned(),
            (false, true) => message,
            (false, false) if description == message => message,
            (false, false) => format!("{message}: {description}"),
        };
        return (code.to_owned(), message);
    }
    if let Some(violations) = value["details"]["validationError"]["fieldViolations"]
        .as_array()
        .filter(|v| !v.is_empty())
    {
        let first = &violations[0];
        let code = [&first["ruleName"], &first["violatedRule"]]
            .into_iter()
            .filter_map(Value::as_str)
            .find(|c| !c.is_empty())
            .unwrap_or("VALIDATION_ERROR")
            .to_owned();
        let fields: Vec<String> = violations
            .iter()
            .map(|v| {
                format!(
                    "{} {}",
                    v["field"].as_str().unwrap_or("?"),
                    v["description"].as_str().unwrap_or("is invalid")
                )
            })
            .collect();
        let fields = fields.join("; ");
        let message = if message.is_empty() {
            fields
        } else {
            format!("{message} ({fields})")
        };
        return (code, message);
    }
    if let Some(error) = value["error"].as_str().filter(|e| !e.is_empty()) {
        let description = value["error_description"].as_str().unwrap_or("").trim();
        let message = if !description.is_empty() {
            description.to_owned()
        } else if !message.is_empty() {
            message
        } else {
            error.to_owned()
        };
        return (error.to_owned(), message);
    }
    let code = format!("http_{}", status.as_u16());
    let message = if !message.is_empty() {
        message
    } else if status.is_server_error() {
        format!(
            "Wix answered {} with no details (a system error; Wix asks to retry later)",
            status.as_u16()
        )
    } else if status == StatusCode::FORBIDDEN && body.trim().is_empty() {
        "Wix refused the request with an empty 403 (burst throttling, or a missing permission)"
            .to_owned()
    } else if body.trim().is_empty() || value.is_object() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        let snippet: String = body.chars().take(200).collect();
        format!("not a Wix API answer: {snippet}")
    };
    (code, message)
}

/// A Wix error answer as a [`ConnectorError`]: 401 (and a 403 that says why) refuse the
/// credentials, 409 is a conflict, the rest keep their status.
fn wix_error(status: StatusCode, body: &str) -> ConnectorError {
    let (code, message) = describe_error(status, body);
    match status.as_u16() {
        401 => ConnectorError::Unauthorized { code, message },
        403 if code != "http_403" => ConnectorError::Unauthorized { code, message },
        409 => ConnectorError::Conflict {
            code,
            message,
            current_revision: None,
        },
        status => ConnectorError::Platform {
            status,
            code,
            message,
        },
    }
}

/// Percent-encodes a product id for a URL path.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn non_empty(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn money(value: &Value) -> Option<Money> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    match Money::parse_decimal(&text) {
        Ok(money) => Some(money),
        Err(why) => {
            tracing::warn!(price = %text, why, "unreadable Wix price ignored");
            None
        }
    }
}

/// The title and meta description in `seoData.tags` (§4.3); disabled tags do not count.
fn seo_fields(seo: &Value) -> (Option<String>, Option<String>) {
    let tags = seo["tags"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let enabled = |tag: &&Value| tag["disabled"].as_bool() != Some(true);
    let title = tags
        .iter()
        .filter(enabled)
        .find(|tag| is_title_tag(tag))
        .and_then(|tag| non_empty(&tag["children"]));
    let description = tags
        .iter()
        .filter(enabled)
        .find(|tag| is_description_tag(tag))
        .and_then(|tag| non_empty(&tag["props"]["content"]));
    (title, description)
}

fn is_title_tag(tag: &Value) -> bool {
    tag["type"] == "title"
}

fn is_description_tag(tag: &Value) -> bool {
    tag["type"] == "meta" && tag["props"]["name"] == "description"
}

/// The full tag list to send: the current tags with the title and description set (an
/// empty text removes the tag). Whether Wix replaces the list is unconfirmed (§4.3), so
/// the list always carries every tag the merchant has.
fn merged_seo(current: &Value, update: &ContentUpdate) -> Value {
    let mut seo = if current.is_object() {
        current.clone()
    } else {
        json!({})
    };
    let mut tags: Vec<Value> = seo["tags"].as_array().cloned().unwrap_or_default();
    if let Some(title) = &update.seo_title {
        let position = tags.iter().position(is_title_tag);
        match (position, title.trim().is_empty()) {
            (Some(i), true) => {
                tags.remove(i);
            }
            (Some(i), false) => {
                tags[i]["children"] = title.clone().into();
                tags[i]["disabled"] = false.into();
            }
            (None, false) => tags.push(
                json!({"type": "title", "children": title, "custom": false, "disabled": false}),
            ),
            (None, true) => {}
        }
    }
    if let Some(description) = &update.seo_description {
        let position = tags.iter().position(is_description_tag);
        match (position, description.trim().is_empty()) {
            (Some(i), true) => {
                tags.remove(i);
            }
            (Some(i), false) => {
                tags[i]["props"]["content"] = description.clone().into();
                tags[i]["disabled"] = false.into();
            }
            (None, false) => tags.push(json!({"type": "meta", "props": {"name": "description", "content": description}, "custom": false, "disabled": false})),
            (None, true) => {}
        }
    }
    seo["tags"] = Value::Array(tags);
    seo
}

fn images_from(items: &[Value], url: &[&str], alt: &[&str]) -> Vec<ProductImage> {
    items
        .iter()
        .filter_map(|item| {
            let pick = |paths: &[&str]| {
                paths
                    .iter()
                    .find_map(|p| non_empty(item.pointer(p).unwrap_or(&Value::Null)))
            };
            Some(ProductImage {
                url: pick(url)?,
                alt: pick(alt),
            })
        })
        .collect()
}

fn id_of(product: &Value) -> Result<String, ConnectorError> {
    non_empty(&product["id"])
        .ok_or_else(|| ConnectorError::InvalidResponse("a Wix product without an id".into()))
}

/// A V3 product (§4.3) in the neutral form. Query results carry no variants (§4.2), so
/// variants, and the SKU that lives on them, are left out whether the product came from a
/// query or a get: both must map to the identical product.
fn map_v3(
    product: &Value,
    categories: &HashMap<String, String>,
) -> Result<CatalogProduct, ConnectorError> {
    let external_id = id_of(product)?;
    let revision = match &product["revision"] {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    let (seo_title, seo_description) = seo_fields(&product["seoData"]);
    let actual = money(&product["actualPriceRange"]["minValue"]["amount"]);
    let compare_at = money(&product["compareAtPriceRange"]["minValue"]["amount"]);
    let (price, sale_price) = match (actual, compare_at) {
        (Some(actual), Some(compare)) if compare.minor > actual.minor => {
            (Some(compare), Some(actual))
        }
        (actual, _) => (actual, None),
    };
    let inventory = &product["inventory"];
    let availability = match inventory["availabilityStatus"].as_str() {
        Some("OUT_OF_STOCK") if inventory["preorderStatus"] == "ENABLED" => Availability::Preorder,
        Some("OUT_OF_STOCK") => Availability::OutOfStock,
        _ => Availability::InStock,
    };
    let media = &product["media"];
    let images = match media["itemsInfo"]["items"].as_array() {
        Some(items) => images_from(
            items,
            &["/url", "/image/url"],
            &["/altText", "/image/altText"],
        ),
        None => images_from(
            std::slice::from_ref(&media["main"]),
            &["/url", "/image/url"],
            &["/altText", "/image/altText"],
        ),
    };
    let list = |value: &Value| value.as_array().cloned().unwrap_or_default();
    let source = SourceProduct {
        external_id,
        title: product["name"].as_str().unwrap_or_default().to_owned(),
        description_html: product["plainDescription"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        short_description: String::new(),
        seo_title,
        seo_description,
        info_sections: list(&product["infoSections"])
            .iter()
            .filter_map(|s| {
                let title = s["title"].as_str().unwrap_or_default().to_owned();
                let html = s["plainDescription"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (!title.is_empty() || !html.is_empty()).then_some(InfoSection { title, html })
            })
            .collect(),
        sku: None,
        gtin: None,
        mpn: None,
        brand: non_empty(&product["brand"]["name"]),
        price,
        sale_price,
        currency: product["currency"].as_str().unwrap_or_default().to_owned(),
        availability,
        stock: None,
        categories: list(&product["directCategoriesInfo"]["categories"])
            .iter()
            .filter_map(|c| categories.get(c["id"].as_str()?).cloned())
            .collect(),
        tags: Vec::new(),
        images,
        link: non_empty(&product["url"]["url"]).or_else(|| non_empty(&product["url"])),
        attributes: list(&product["options"])
            .iter()
            .filter_map(|o| {
                Some(ProductAttribute {
                    name: non_empty(&o["name"])?,
                    values: list(&o["choicesSettings"]["choices"])
                        .iter()
                        .filter_map(|c| non_empty(&c["name"]))
                        .collect(),
                })
            })
            .collect(),
        variants: Vec::new(),
        published: product["visible"].as_bool().unwrap_or(true),
    };
    Ok(CatalogProduct::from_store(source, revision))
}

/// A V1 product (§4.6) in the neutral form; its revision is `lastUpdated`.
fn map_v1(
    product: &Value,
    collections: &HashMap<String, String>,
) -> Result<CatalogProduct, ConnectorError> {
    let external_id = id_of(product)?;
    let (seo_title, seo_description) = seo_fields(&product["seoData"]);
    let prices = &product["priceData"];
    let regular = money(&prices["price"]);
    let discounted = money(&prices["discountedPrice"]);
    let sale_price = match (regular, discounted) {
        (Some(regular), Some(discounted)) if discounted.minor < regular.minor => Some(discounted),
        _ => None,
    };
    let stock = &product["stock"];
    let availability = match stock["inventoryStatus"].as_str() {
        Some("OUT_OF_STOCK") => Availability::OutOfStock,
        Some(_) => Availability::InStock,
        None if stock["inStock"].as_bool() == Some(false) => Availability::OutOfStock,
        None => Availability::InStock,
    };
    let media = &product["media"];
    let images = match media["items"].as_array().filter(|items| !items.is_empty()) {
        Some(items) => images_from(items, &["/image/url"], &["/image/altText"]),
        None => images_from(
            std::slice::from_ref(&media["mainMedia"]),
            &["/image/url"],
            &["/image/altText"],
        ),
    };
    let link = match (
        non_empty(&product["productPageUrl"]["base"]),
        non_empty(&product["productPageUrl"]["path"]),
    ) {
        (Some(base), Some(path)) => Some(format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )),
        _ => None,
    };
    let list = |value: &Value| value.as_array().cloned().unwrap_or_default();
    let source = SourceProduct {
        external_id,
        title: product["name"].as_str().unwrap_or_default().to_owned(),
        description_html: product["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        short_description: String::new(),
        seo_title,
        seo_description,
        info_sections: list(&product["additionalInfoSections"])
            .iter()
            .map(|s| InfoSection {
                title: s["title"].as_str().unwrap_or_default().to_owned(),
                html: s["description"].as_str().unwrap_or_default().to_owned(),
            })
            .collect(),
        sku: non_empty(&product["sku"]),
        gtin: None,
        mpn: None,
        brand: non_empty(&product["brand"]),
        price: regular.or(discounted),
        sale_price,
        currency: prices["currency"].as_str().unwrap_or_default().to_owned(),
        availability,
        stock: if stock["trackInventory"].as_bool() == Some(true) {
            stock["quantity"].as_i64()
        } else {
            None
        },
        categories: list(&product["collectionIds"])
            .iter()
            .filter_map(|id| collections.get(id.as_str()?).cloned())
            .collect(),
        tags: Vec::new(),
        images,
        link,
        attributes: list(&product["productOptions"])
            .iter()
            .filter_map(|o| {
                Some(ProductAttribute {
                    name: non_empty(&o["name"])?,
                    values: list(&o["choices"])
                        .iter()
                        .filter_map(|c| {
                            non_empty(&c["description"]).or_else(|| non_empty(&c["value"]))
                        })
                        .collect(),
                })
            })
            .collect(),
        variants: Vec::new(),
        published: product["visible"].as_bool().unwrap_or(true),
    };
    Ok(CatalogProduct::from_store(
        source,
        non_empty(&product["lastUpdated"]),
    ))
}

fn stale(expected: &str, current: Option<String>, code: &str) -> ConnectorError {
    ConnectorError::Conflict {
        code: code.to_owned(),
        message: format!(
            "the product is at revision {} in Wix, the update was prepared against {expected}",
            current.as_deref().unwrap_or("(none)")
        ),
        current_revision: current,
    }
}

/// Whether writing `update` needs the product's current state: its revision (a forced
/// write), its SEO tags (kept), its info-section ids (kept by title).
fn needs_current(update: &ProductUpdate) -> bool {
    let content = &update.update;
    update.expected_revision.is_none()
        || content.seo_title.is_some()
        || content.seo_description.is_some()
        || content.info_sections.is_some()
}

/// The V3 `product` of a PATCH or bulk item (§4.4): id, revision and the changed fields.
fn v3_patch(update: &ProductUpdate, current: Option<&Value>) -> Result<Value, ConnectorError> {
    let current_revision = current.and_then(|c| match &c["revision"] {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    });
    let revision = match (&update.expected_revision, current_revision) {
        (Some(expected), Some(current)) if *expected != current => {
            return Err(stale(expected, Some(current), "REVISION_MISMATCH"))
        }
        (Some(expected), _) => expected.clone(),
        (None, Some(current)) => current,
        (None, None) => {
            return Err(ConnectorError::InvalidResponse(format!(
                "Wix returned product {} without a revision",
                update.external_id
            )))
        }
    };
    let content = &update.update;
    let mut product = json!({"id": update.external_id, "revision": revision});
    if let Some(title) = &content.title {
        product["name"] = title.clone().into();
    }
    if let Some(html) = &content.description_html {
        product["plainDescription"] = html.clone().into();
    }
    if content.seo_title.is_some() || content.seo_description.is_some() {
        product["seoData"] = merged_seo(
            current.map(|c| &c["seoData"]).unwrap_or(&Value::Null),
            content,
        );
    }
    if let Some(sections) = &content.info_sections {
        let existing = current
            .and_then(|c| c["infoSections"].as_array())
            .cloned()
            .unwrap_or_default();
        product["infoSections"] = sections
            .iter()
            .map(|section| {
                let mut item = json!({"title": section.title, "plainDescription": section.html});
                if let Some(known) = existing
                    .iter()
                    .find(|e| e["title"] == section.title.as_str())
                {
                    for key in ["id", "uniqueName"] {
                        if !known[key].is_null() {
                            item[key] = known[key].clone();
                        }
                    }
                }
                item
            })
            .collect();
    }
    if let Some(images) = &content.images {
        let items: Vec<Value> = images
            .iter()
            .map(|image| json!({"url": image.url, "altText": image.alt}))
            .collect();
        product["media"] = json!({"itemsInfo": {"items": items}});
    }
    Ok(product)
}

/// A failed item of a bulk update: the call answered 200, the item did not apply.
fn item_error(error: &Value, external_id: &str) -> ConnectorError {
    let code = non_empty(&error["code"]).unwrap_or_else(|| "UNKNOWN".to_owned());
    let message = non_empty(&error["description"]).unwrap_or_else(|| code.clone());
    if code.contains("REVISION") {
        ConnectorError::Conflict {
            code,
            message,
            current_revision: None,
        }
    } else if code.contains("NOT_FOUND") {
        ConnectorError::NotFound(external_id.to_owned())
    } else {
        ConnectorError::Platform {
            status: 200,
            code,
            message,
        }
    }
}

fn not_installed() -> ConnectorError {
    ConnectorError::Platform {
        status: 428,
        code: "STORES_NOT_INSTALLED".into(),
        message: "Wix Stores is not installed on this site: add Wix Stores, then sync again".into(),
    }
}

/// A Wix site's store behind the [`Catalog`] interface, on Catalog V3 or V1.
///
/// Category (V3) and collection (V1) names are read once per `WixCatalog`, on first use,
/// and products name their categories by path through that map.
pub struct WixCatalog {
    client: WixClient,
    names: OnceCell<HashMap<String, String>>,
}

impl WixCatalog {
    pub fn new(client: WixClient) -> Self {
        WixCatalog {
            client,
            names: OnceCell::new(),
        }
    }

    pub fn client(&self) -> &WixClient {
        &self.client
    }

    async fn version(&self) -> Result<CatalogVersion, ConnectorError> {
        match self.client.catalog_version().await? {
            CatalogVersion::StoresNotInstalled => Err(not_installed()),
            version => Ok(version),
        }
    }

    /// Category or collection id → path.
    async fn names(&self) -> Result<&HashMap<String, String>, ConnectorError> {
        self.names
            .get_or_try_init(|| async {
                Ok(self
                    .collections()
                    .await?
                    .into_iter()
                    .map(|c| (c.external_id, c.path))
                    .collect())
            })
            .await
    }

    fn v3_fields() -> Vec<(&'static str, String)> {
        V3_FIELDS
            .iter()
            .map(|f| ("fields", (*f).to_owned()))
            .collect()
    }

    async fn v3_raw(&self, external_id: &str) -> Result<Option<Value>, ConnectorError> {
        let path = format!("/stores/v3/products/{}", segment(external_id));
        match self
            .client
            .call(Method::GET, &path, &Self::v3_fields(), None)
            .await
        {
            Ok(answer) => Ok(Some(answer["product"].clone())),
            Err(ConnectorError::Platform { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn v1_raw(&self, external_id: &str) -> Result<Option<Value>, ConnectorError> {
        let path = format!("/stores/v1/products/{}", segment(external_id));
        match self.client.call(Method::GET, &path, &[], None).await {
            Ok(answer) => Ok(Some(answer["product"].clone())),
            Err(ConnectorError::Platform { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn v3_query(&self, query: Value) -> Result<Value, ConnectorError> {
        let body = json!({"query": query, "fields": V3_FIELDS});
        self.client
            .call(Method::POST, "/stores/v3/products/query", &[], Some(&body))
            .await
    }

    async fn list_v3(
        &self,
        cursor: Option<&str>,
        modified_since: Option<DateTime<Utc>>,
    ) -> Result<CatalogPage, ConnectorError> {
        let names = self.names().await?;
        // With a cursor Wix takes only cursorPaging: the filter is inside the cursor (§4.2).
        let query = match cursor {
            Some(cursor) => json!({"cursorPaging": {"limit": MAX_PAGE, "cursor": cursor}}),
            None => {
                let mut query = json!({"cursorPaging": {"limit": MAX_PAGE}});
                if let Some(since) = modified_since {
                    query["filter"] = json!({"updatedDate": {"$gt": iso(since)}});
                }
                query
            }
        };
        let answer = self.v3_query(query).await?;
        let products = answer["products"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| map_v3(p, names))
            .collect::<Result<Vec<_>, _>>()?;
        let paging = &answer["pagingMetadata"];
        let next_cursor = if paging["hasNext"].as_bool() == Some(true) {
            Some(non_empty(&paging["cursors"]["next"]).ok_or_else(|| {
                ConnectorError::InvalidResponse(
                    "Wix said there is a next page but gave no cursor".into(),
                )
            })?)
        } else {
            None
        };
        Ok(CatalogPage {
            products,
            next_cursor,
        })
    }

    async fn list_v1(
        &self,
        cursor: Option<&str>,
        modified_since: Option<DateTime<Utc>>,
    ) -> Result<CatalogPage, ConnectorError> {
        let names = self.names().await?;
        let offset: u64 = match cursor {
            None => 0,
            Some(text) => text.parse().map_err(|_| {
                ConnectorError::InvalidResponse(format!("{text:?} is not a Wix V1 page cursor"))
            })?,
        };
        let mut query = json!({"paging": {"limit": MAX_PAGE, "offset": offset}});
        if let Some(since) = modified_since {
            // V1 takes the filter as a string holding JSON (§4.6).
            query["filter"] = json!({"lastUpdated": {"$gt": iso(since)}})
                .to_string()
                .into();
        }
        let body = json!({"query": query, "includeVariants": false, "includeHiddenProducts": true});
        let answer = self
            .client
            .call(Method::POST, "/stores/v1/products/query", &[], Some(&body))
            .await?;
        let products = answer["products"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| map_v1(p, names))
            .collect::<Result<Vec<_>, _>>()?;
        let total = answer["totalResults"].as_u64().unwrap_or(0);
        let next = offset + products.len() as u64;
        let next_cursor = (!products.is_empty() && next < total).then(|| next.to_string());
        Ok(CatalogPage {
            products,
            next_cursor,
        })
    }

    async fn update_v3(&self, update: &ProductUpdate) -> Result<CatalogProduct, ConnectorError> {
        let names = self.names().await?;
        let current = if needs_current(update) {
            Some(
                self.v3_raw(&update.external_id)
                    .await?
                    .ok_or_else(|| ConnectorError::NotFound(update.external_id.clone()))?,
            )
        } else {
            None
        };
        let body = json!({"product": v3_patch(update, current.as_ref())?, "fields": V3_FIELDS});
        let path = format!("/stores/v3/products/{}", segment(&update.external_id));
        match self
            .client
            .call(Method::PATCH, &path, &[], Some(&body))
            .await
        {
            Ok(answer) => map_v3(&answer["product"], names),
            Err(ConnectorError::Platform { status: 404, .. }) => {
                Err(ConnectorError::NotFound(update.external_id.clone()))
            }
            Err(err) => Err(err),
        }
    }

    /// V1 has no revision on writes (§4.6): the product is read first and its
    /// `lastUpdated` compared, which narrows (but cannot close) the window for lost
    /// updates.
    async fn update_v1(&self, update: &ProductUpdate) -> Result<CatalogProduct, ConnectorError> {
        let content = &update.update;
        if content.images.is_some() {
            return Err(ConnectorError::Platform {
                status: 501,
                code: "V1_MEDIA_NOT_SUPPORTED".into(),
                message: "images of Wix Catalog V1 products are managed through the media endpoints, which this connector does not write".into(),
            });
        }
        let names = self.names().await?;
        let current = self
            .v1_raw(&update.external_id)
            .await?
            .ok_or_else(|| ConnectorError::NotFound(update.external_id.clone()))?;
        let current_revision = non_empty(&current["lastUpdated"]);
        if let Some(expected) = &update.expected_revision {
            if current_revision.as_deref() != Some(expected.as_str()) {
                return Err(stale(expected, current_revision, "LAST_UPDATED_MISMATCH"));
            }
        }
        let mut product = json!({"id": update.external_id});
        if let Some(title) = &content.title {
            product["name"] = title.clone().into();
        }
        if let Some(html) = &content.description_html {
            product["description"] = html.clone().into();
        }
        if content.seo_title.is_some() || content.seo_description.is_some() {
            product["seoData"] = merged_seo(&current["seoData"], content);
        }
        if let Some(sections) = &content.info_sections {
            product["additionalInfoSections"] = sections
                .iter()
                .map(|s| json!({"title": s.title, "description": s.html}))
                .collect();
        }
        let path = format!("/stores/v1/products/{}", segment(&update.external_id));
        let body = json!({"product": product});
        match self
            .client
            .call(Method::PATCH, &path, &[], Some(&body))
            .await
        {
            Ok(answer) => map_v1(&answer["product"], names),
            Err(ConnectorError::Platform { status: 404, .. }) => {
                Err(ConnectorError::NotFound(update.external_id.clone()))
            }
            Err(err) => Err(err),
        }
    }

    /// The current V3 products among `ids` (at most 100), by id.
    async fn v3_by_ids(&self, ids: &[&str]) -> Result<HashMap<String, Value>, ConnectorError> {
        let answer = self
            .v3_query(json!({"filter": {"id": {"$in": ids}}, "cursorPaging": {"limit": MAX_PAGE}}))
            .await?;
        Ok(answer["products"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| Some((non_empty(&p["id"])?, p.clone())))
            .collect())
    }

    /// V3 bulk update (§4.4) in chunks of 100, one result per update in order.
    async fn update_many_v3(
        &self,
        updates: &[ProductUpdate],
    ) -> Result<Vec<Result<CatalogProduct, ConnectorError>>, ConnectorError> {
        let names = self.names().await?;
        let mut results: Vec<Option<Result<CatalogProduct, ConnectorError>>> =
            vec![None; updates.len()];
        for (chunk_number, chunk) in updates.chunks(MAX_PAGE).enumerate() {
            let base = chunk_number * MAX_PAGE;
            let wanted: Vec<&str> = chunk
                .iter()
                .filter(|u| needs_current(u))
                .map(|u| u.external_id.as_str())
                .collect();
            let currents = if wanted.is_empty() {
                HashMap::new()
            } else {
                self.v3_by_ids(&wanted).await?
            };
            let mut sent = Vec::new();
            let mut items = Vec::new();
            for (offset, update) in chunk.iter().enumerate() {
                let index = base + offset;
                let current = currents.get(&update.external_id);
                if needs_current(update) && current.is_none() {
                    results[index] =
                        Some(Err(ConnectorError::NotFound(update.external_id.clone())));
                    continue;
                }
                match v3_patch(update, current) {
                    Ok(product) => {
                        sent.push(index);
                        items.push(json!({"product": product}));
                    }
                    Err(err) => results[index] = Some(Err(err)),
                }
            }
            if items.is_empty() {
                continue;
            }
            let body = json!({"products": items, "returnEntity": true, "fields": V3_FIELDS});
            let answer = self
                .client
                .call(
                    Method::POST,
                    "/stores/v3/bulk/products/update",
                    &[],
                    Some(&body),
                )
                .await?;
            for result in answer["results"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let meta = &result["itemMetadata"];
                let Some(&index) = meta["originalIndex"]
                    .as_u64()
                    .and_then(|i| sent.get(i as usize))
                else {
                    continue;
                };
                results[index] = Some(if meta["success"].as_bool() == Some(true) {
                    map_v3(&result["item"], names)
                } else {
                    Err(item_error(&meta["error"], &updates[index].external_id))
                });
            }
        }
        Ok(results
            .into_iter()
            .zip(updates)
            .map(|(result, update)| {
                result.unwrap_or_else(|| {
                    Err(ConnectorError::InvalidResponse(format!(
                        "Wix's bulk answer said nothing about product {}",
                        update.external_id
                    )))
                })
            })
            .collect())
    }

    /// V3 categories (§4.5) with their `Parent > Child` paths.
    async fn categories_v3(&self) -> Result<Vec<CatalogCollection>, ConnectorError> {
        let mut raw: Vec<(String, String, Option<String>)> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut paging = json!({"limit": MAX_PAGE});
            if let Some(cursor) = &cursor {
                paging["cursor"] = cursor.clone().into();
            }
            // treeReference must be top-level, not inside query (§4.5).
            let body = json!({"query": {"cursorPaging": paging}, "treeReference": {"appNamespace": STORES_TREE}});
            let answer = self
                .client
                .call(
                    Method::POST,
                    "/categories/v1/categories/query",
                    &[],
                    Some(&body),
                )
                .await?;
            for category in answer["categories"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(id) = non_empty(&category["id"]) {
                    let name = category["name"].as_str().unwrap_or_default().to_owned();
                    raw.push((id, name, non_empty(&category["parentCategory"]["id"])));
                }
            }
            let paging = &answer["pagingMetadata"];
            let next = non_empty(&paging["cursors"]["next"]);
            match next {
                Some(next) if paging["hasNext"].as_bool() == Some(true) => {
                    if cursor.as_ref() == Some(&next) {
                        return Err(ConnectorError::InvalidResponse(
                            "Wix returned the same categories cursor twice".into(),
                        ));
                    }
                    cursor = Some(next);
                }
                _ => break,
            }
        }
        let by_id: HashMap<&str, (&str, Option<&str>)> = raw
            .iter()
            .map(|(id, name, parent)| (id.as_str(), (name.as_str(), parent.as_deref())))
            .collect();
        Ok(raw
            .iter()
            .map(|(id, name, parent)| {
                let mut names = vec![name.as_str()];
                let mut next = parent.as_deref();
                // Bounded: a malformed tree with a cycle must not hang a sync.
                while let Some((parent_name, grandparent)) = next.and_then(|p| by_id.get(p)) {
                    if names.len() > 20 {
                        break;
                    }
                    names.push(parent_name);
                    next = *grandparent;
                }
                names.reverse();
                CatalogCollection {
                    external_id: id.clone(),
                    name: name.clone(),
                    path: names.join(" > "),
                }
            })
            .collect())
    }

    async fn collections_v1(&self) -> Result<Vec<CatalogCollection>, ConnectorError> {
        let mut all = Vec::new();
        loop {
            let body = json!({"query": {"paging": {"limit": MAX_PAGE, "offset": all.len()}}});
            let answer = self
                .client
                .call(
                    Method::POST,
                    "/stores/v1/collections/query",
                    &[],
                    Some(&body),
                )
                .await?;
            let page = answer["collections"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = answer["totalResults"].as_u64().unwrap_or(0) as usize;
            let before = all.len();
            all.extend(page.iter().filter_map(|c| {
                let name = c["name"].as_str().unwrap_or_default().to_owned();
                Some(CatalogCollection {
                    external_id: non_empty(&c["id"])?,
                    path: name.clone(),
                    name,
                })
            }));
            if page.is_empty() || all.len() == before || all.len() >= total {
                return Ok(all);
            }
        }
    }
}

#[async_trait]
impl Catalog for WixCatalog {
    fn platform(&self) -> Platform {
        Platform::Wix
    }

    async fn list(
        &self,
        cursor: Option<&str>,
        modified_since: Option<DateTime<Utc>>,
    ) -> Result<CatalogPage, ConnectorError> {
        match self.version().await? {
            CatalogVersion::V1 => self.list_v1(cursor, modified_since).await,
            _ => self.list_v3(cursor, modified_since).await,
        }
    }

    async fn get(&self, external_id: &str) -> Result<Option<CatalogProduct>, ConnectorError> {
        let version = self.version().await?;
        let names = self.names().await?;
        match version {
            CatalogVersion::V1 => self
                .v1_raw(external_id)
                .await?
                .map(|p| map_v1(&p, names))
                .transpose(),
            _ => self
                .v3_raw(external_id)
                .await?
                .map(|p| map_v3(&p, names))
                .transpose(),
        }
    }

    async fn update(&self, update: &ProductUpdate) -> Result<CatalogProduct, ConnectorError> {
        if update.update.is_empty() {
            let current = self
                .get(&update.external_id)
                .await?
                .ok_or_else(|| ConnectorError::NotFound(update.external_id.clone()))?;
            if let Some(expected) = &update.expected_revision {
                if current.revision.as_deref() != Some(expected.as_str()) {
                    return Err(stale(expected, current.revision, "REVISION_MISMATCH"));
                }
            }
            return Ok(current);
        }
        match self.version().await? {
            CatalogVersion::V1 => self.update_v1(update).await,
            _ => self.update_v3(update).await,
        }
    }

    async fn update_many(
        &self,
        updates: &[ProductUpdate],
    ) -> Result<Vec<Result<CatalogProduct, ConnectorError>>, ConnectorError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        match self.version().await? {
            CatalogVersion::V1 => {
                let mut results = Vec::with_capacity(updates.len());
                for update in updates {
                    results.push(self.update(update).await);
                }
                Ok(results)
            }
            _ => self.update_many_v3(updates).await,
        }
    }

    async fn collections(&self) -> Result<Vec<CatalogCollection>, ConnectorError> {
        match self.version().await? {
            CatalogVersion::V1 => self.collections_v1().await,
            _ => self.categories_v3().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_keep_wix_codes_and_fields() {
        let app = r#"{"message":"Too many","details":{"applicationError":{"code":"RESOURCE_EXHAUSTED","description":"Too many"}}}"#;
        assert_eq!(
            describe_error(StatusCode::TOO_MANY_REQUESTS, app),
            ("RESOURCE_EXHAUSTED".to_owned(), "Too many".to_owned())
        );
        let validation = r#"{"message":"bad","details":{"validationError":{"fieldViolations":[{"field":"product.name","description":"too long","violatedRule":"MAX"}]}}}"#;
        let (code, message) = describe_error(StatusCode::BAD_REQUEST, validation);
        assert_eq!(code, "MAX");
        assert!(message.contains("product.name too long"), "{message}");
        let (code, message) = describe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"message":"","details":{}}"#,
        );
        assert_eq!(code, "http_500");
        assert!(message.contains("system error"), "{message}");
        let (code, _) = describe_error(StatusCode::FORBIDDEN, "");
        assert_eq!(code, "http_403");
        assert!(matches!(
            wix_error(StatusCode::FORBIDDEN, ""),
            ConnectorError::Platform { status: 403, .. }
        ));
        assert!(matches!(
            wix_error(StatusCode::CONFLICT, app),
            ConnectorError::Conflict { .. }
        ));
    }

    #[test]
    fn seo_updates_keep_other_tags() {
        let current = json!({"tags": [
            {"type": "title", "children": "Old"},
            {"type": "meta", "props": {"property": "og:title", "content": "Keep"}}
        ], "settings": {"preventAutoRedirect": true}});
        let update = ContentUpdate {
            seo_title: Some("New".into()),
            seo_description: Some("Desc".into()),
            ..ContentUpdate::default()
        };
        let merged = merged_seo(&current, &update);
        assert_eq!(
            seo_fields(&merged),
            (Some("New".into()), Some("Desc".into()))
        );
        assert_eq!(merged["tags"].as_array().unwrap().len(), 3);
        assert_eq!(merged["tags"][1]["props"]["content"], "Keep");
        assert_eq!(merged["settings"]["preventAutoRedirect"], true);
    }

    #[test]
    fn ids_are_escaped_in_paths() {
        assert_eq!(segment("abc-123"), "abc-123");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
