//! Stripe client for subscription billing (<https://docs.stripe.com/api>; sections:
//! docs/protocols.md, Stripe): hosted
//! Checkout to start a subscription, the customer portal to manage it, reads of
//! subscriptions to reconcile, and the verification of the webhooks Stripe sends
//! ([`webhook`]).
//!
//! * Requests carry `Authorization: Bearer sk_...` and a pinned `Stripe-Version`
//!   ([`API_VERSION`]): without it Stripe renders objects in the account's default version
//!   (§5 "Versioning"), whose shapes this module does not read. Pin the webhook endpoint to
//!   the same version so events arrive in the shapes [`webhook`] reads.
//! * Bodies are `application/x-www-form-urlencoded` with bracket keys
//!   (`line_items[0][price]`), as Stripe takes no JSON (§3).
//! * Every POST sends an `Idempotency-Key` (§5 "Idempotency"), kept across the retries of
//!   one call, so a retry after a lost answer replays Stripe's first answer instead of
//!   creating a second session.
//! * Retries (timeouts, dropped connections, 429, 5xx) go through the shared
//!   [`send_with_retries`]; errors keep Stripe's `type`, `code`, `message` and `param`
//!   ([`ConnectorError::Stripe`]).
//! * The secret key never appears in `Debug` output, logs or errors.

pub mod webhook;

pub use webhook::{
    verify_webhook, CompletedCheckout, Event, EventData, EventRequest, PaidInvoice, WebhookError,
    DEFAULT_WEBHOOK_TOLERANCE,
};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::http::{send_with_retries, ConnectorError, RetryPolicy};

/// Where Stripe serves its API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
/// The API version every request pins (the current version named by
/// <https://docs.stripe.com/api/versioning>, §5 "Versioning"): periods live on subscription
/// items and an invoice names its subscription under `parent.subscription_details`, the
/// shapes introduced by `2025-03-31.basil` (§2).
pub const API_VERSION: &str = "2026-09-30.endive";
/// Subscriptions asked for per page; Stripe's largest page.
const LIST_PAGE_SIZE: u32 = 100;

/// What a [`StripeClient`] needs.
#[derive(Clone)]
pub struct StripeConfig {
    /// `sk_test_...` or `sk_live_...` (a restricted `rk_...` key works too).
    pub secret_key: String,
    /// [`DEFAULT_BASE_URL`] unless testing; plain `http` only to loopback hosts.
    pub base_url: String,
    pub retry: RetryPolicy,
}

impl StripeConfig {
    pub fn new(secret_key: &str) -> Self {
        StripeConfig {
            secret_key: secret_key.trim().to_owned(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            retry: RetryPolicy::default(),
        }
    }
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Who pays in a Checkout Session: a customer Stripe already knows (a returning account,
/// so its subscriptions stay on one customer), or an email Checkout creates the customer
/// with (§3: `customer` or `customer_email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutCustomer {
    Existing(String),
    Email(String),
}

/// A subscription Checkout for one account and plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutParams {
    /// The Stripe price of the plan (`price_...`).
    pub price_id: String,
    /// Where Checkout sends the browser after payment; may contain Stripe's
    /// `{CHECKOUT_SESSION_ID}` placeholder.
    pub success_url: String,
    /// Where Checkout sends the browser when the customer backs out.
    pub cancel_url: String,
    /// The service's account: sent as `client_reference_id` and as `account_id` metadata on
    /// the session and on the subscription, so every event leads back to the account.
    pub account_id: String,
    /// The service's plan id (`starter`, ...), as `plan` metadata next to `account_id`.
    pub plan: String,
    pub customer: CheckoutCustomer,
    /// One key per intended checkout (≤ 255 characters): the same key replays Stripe's
    /// first answer, so a double click or a retried request cannot open two sessions.
    pub idempotency_key: String,
}

/// A Checkout Session to send the browser to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `cs_test_...` / `cs_live_...`: `checkout.session.completed` names it.
    pub id: String,
    pub url: String,
}

/// A customer portal session (§4): short-lived, so made on demand each time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub id: String,
    pub url: String,
}

/// A subscription's status (§2 "Subscription"). Statuses added by later API versions read
/// as [`SubscriptionStatus::Other`] rather than failing the whole object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    #[serde(other)]
    Other,
}

/// The fields of a subscription billing needs, read the same way from API answers and
/// from `customer.subscription.*` events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: SubscriptionStatus,
    /// `items.data[0].price.id`: the plan the subscription is on.
    pub price_id: String,
    /// When the paid period ends. Read from `items.data[0].current_period_end` (where
    /// `2025-03-31.basil` and later put it, §2), falling back to the top-level field of
    /// older versions, for events from an endpoint pinned to one.
    pub current_period_end: DateTime<Utc>,
    /// Set when the customer canceled in the portal: the subscription runs to
    /// `current_period_end`, then ends with `customer.subscription.deleted`.
    pub cancel_at_period_end: bool,
    pub metadata: BTreeMap<String, String>,
}

impl Subscription {
    /// Reads a subscription object (`"object": "subscription"`).
    pub fn from_object(object: &Value) -> Result<Self, String> {
        let kind = object["object"].as_str().unwrap_or("");
        if kind != "subscription" {
            return Err(format!("expected a subscription, found {kind:?}"));
        }
        let item = &object["items"]["data"][0];
        let status = serde_json::from_value(object["status"].clone())
            .map_err(|err| format!("subscription status: {err}"))?;
        let period_end = item["current_period_end"]
            .as_i64()
            .or_else(|| object["current_period_end"].as_i64())
            .ok_or("a subscription without current_period_end")?;
        Ok(Subscription {
            id: required_str(object, "id")?,
            customer: expandable_id(&object["customer"])
                .ok_or("a subscription without customer")?,
            status,
            price_id: item["price"]["id"]
                .as_str()
                .ok_or("a subscription without items.data[0].price.id")?
                .to_owned(),
            current_period_end: timestamp(period_end)?,
            cancel_at_period_end: object["cancel_at_period_end"].as_bool().unwrap_or(false),
            metadata: metadata(&object["metadata"]),
        })
    }
}

/// A string field that must be present.
pub(crate) fn required_str(object: &Value, field: &str) -> Result<String, String> {
    object[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("missing {field}"))
}

/// The id of an expandable field: Stripe sends the id, or the whole object when the request
/// asked to expand it (§2 "Checkout Session": `customer`, `subscription`).
pub(crate) fn expandable_id(value: &Value) -> Option<String> {
    match value {
        Value::String(id) => Some(id.clone()),
        Value::Object(object) => object.get("id")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Stripe metadata: string keys and string values.
pub(crate) fn metadata(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Unix seconds, as Stripe sends every time.
pub(crate) fn timestamp(seconds: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| format!("{seconds} is not a timestamp"))
}

/// A client for one Stripe account. Clones share the connection pool.
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base_url: reqwest::Url,
    secret_key: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct StripeErrorBody {
    error: StripeErrorObject,
}

#[derive(Deserialize)]
struct StripeErrorObject {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
}

/// Stripe's error answer as a [`ConnectorError::Stripe`] (§5 "Error object"). An answer
/// without Stripe's error body (a proxy's 502, say) keeps its status as an `api_error`.
fn stripe_error(status: StatusCode, body: &str) -> ConnectorError {
    match serde_json::from_str::<StripeErrorBody>(body) {
        Ok(StripeErrorBody { error }) => ConnectorError::Stripe {
            status: status.as_u16(),
            kind: error.kind.unwrap_or_else(|| "api_error".to_owned()),
            code: error.code,
            message: error
                .message
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
            param: error.param,
        },
        Err(_) => {
            let snippet: String = body.chars().take(200).collect();
            ConnectorError::Stripe {
                status: status.as_u16(),
                kind: "api_error".to_owned(),
                code: None,
                message: if snippet.trim().is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    format!("not a Stripe API answer: {snippet}")
                },
                param: None,
            }
        }
    }
}

impl StripeClient {
    /// Checks the base URL; makes no request.
    pub fn new(config: StripeConfig) -> Result<Self, ConnectorError> {
        let trimmed = config.base_url.trim().trim_end_matches('/');
        let base_url = reqwest::Url::parse(trimmed)
            .map_err(|_| ConnectorError::InvalidUrl(config.base_url.clone()))?;
        let loopback = matches!(
            base_url.host_str(),
            Some("127.0.0.1" | "localhost" | "[::1]")
        );
        match base_url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(ConnectorError::InsecureUrl(
                    "the Stripe secret key is only sent over HTTPS".into(),
                ))
            }
            _ => return Err(ConnectorError::InvalidUrl(config.base_url.clone())),
        }
        if base_url.cannot_be_a_base() || !base_url.username().is_empty() {
            return Err(ConnectorError::InvalidUrl(config.base_url.clone()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("UltimateOptimizer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ConnectorError::Unreachable(err.to_string()))?;
        Ok(StripeClient {
            http,
            base_url,
            secret_key: config.secret_key,
            retry: config.retry,
        })
    }

    /// The URL of an API path given as segments (`["v1", "subscriptions", id]`), each
    /// percent-encoded so an id cannot change the path.
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One API call with retries; the JSON answer. `form` is sent as the body of a POST,
    /// as the query of a GET.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let url = self.url(segments);
        let path = url.path().to_owned();
        tracing::debug!(%method, path, "Stripe request");
        let response = send_with_retries(
            &self.retry,
            || {
                let request = self
                    .http
                    .request(method.clone(), url.clone())
                    .bearer_auth(&self.secret_key)
                    .header("Stripe-Version", API_VERSION)
                    .header(reqwest::header::ACCEPT, "application/json");
                let request = match idempotency_key {
                    Some(key) => request.header("Idempotency-Key", key),
                    None => request,
                };
                if method == Method::GET {
                    request.query(form)
                } else {
                    request.form(form)
                }
            },
            |status, body| async move { stripe_error(status, &body) },
        )
        .await?;
        let bytes = response.bytes().await.map_err(|err| {
            ConnectorError::Unreachable(format!("{path}: the answer was cut off: {err}"))
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|err| ConnectorError::InvalidResponse(format!("{path}: {err}")))
    }

    /// Opens a hosted Checkout Session for a monthly subscription (§3) and returns where to
    /// send the browser. The account and plan travel as `client_reference_id` and metadata
    /// on the session, and as `subscription_data[metadata]` on the subscription Checkout
    /// creates, so `checkout.session.completed` and every `customer.subscription.*` event
    /// name the account.
    pub async fn create_checkout_session(
        &self,
        params: &CheckoutParams,
    ) -> Result<CheckoutSession, ConnectorError> {
        let mut form: Vec<(String, String)> = [
            ("mode", "subscription"),
            ("line_items[0][price]", params.price_id.as_str()),
            ("line_items[0][quantity]", "1"),
            ("success_url", params.success_url.as_str()),
            ("cancel_url", params.cancel_url.as_str()),
            ("client_reference_id", params.account_id.as_str()),
            ("metadata[account_id]", params.account_id.as_str()),
            ("metadata[plan]", params.plan.as_str()),
            (
                "subscription_data[metadata][account_id]",
                params.account_id.as_str(),
            ),
            ("subscription_data[metadata][plan]", params.plan.as_str()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        form.push(match &params.customer {
            CheckoutCustomer::Existing(id) => ("customer".to_owned(), id.clone()),
            CheckoutCustomer::Email(email) => ("customer_email".to_owned(), email.clone()),
        });
        let session = self
            .call(
                Method::POST,
                &["v1", "checkout", "sessions"],
                &form,
                Some(&params.idempotency_key),
            )
            .await?;
        let read = |field: &str| {
            required_str(&session, field).map_err(|why| {
                ConnectorError::InvalidResponse(format!("/v1/checkout/sessions: {why}"))
            })
        };
        Ok(CheckoutSession {
            id: read("id")?,
            url: read("url")?,
        })
    }

    /// Opens a customer portal session (§4) for managing or canceling the subscription;
    /// the portal sends the browser back to `return_url`. Each call is its own request, so
    /// the idempotency key is fresh per call and shared only by that call's retries.
    pub async fn create_portal_session(
        &self,
        customer_id: &str,
        return_url: &str,
    ) -> Result<PortalSession, ConnectorError> {
        let form = [
            ("customer".to_owned(), customer_id.to_owned()),
            ("return_url".to_owned(), return_url.to_owned()),
        ];
        let key = uuid::Uuid::new_v4().to_string();
        let session = self
            .call(
                Method::POST,
                &["v1", "billing_portal", "sessions"],
                &form,
                Some(&key),
            )
            .await?;
        let read = |field: &str| {
            required_str(&session, field).map_err(|why| {
                ConnectorError::InvalidResponse(format!("/v1/billing_portal/sessions: {why}"))
            })
        };
        Ok(PortalSession {
            id: read("id")?,
            url: read("url")?,
        })
    }

    /// One subscription, as Stripe has it now: webhooks arrive out of order and more than
    /// once (§6), so reconciliation reads the current state rather than trusting an event.
    pub async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, ConnectorError> {
        let object = self
            .call(Method::GET, &["v1", "subscriptions", id], &[], None)
            .await?;
        Subscription::from_object(&object)
            .map_err(|why| ConnectorError::InvalidResponse(format!("/v1/subscriptions: {why}")))
    }

    /// Every subscription of a customer, canceled ones included (`status=all`; Stripe's
    /// default leaves them out), newest first, following `has_more` page by page.
    pub async fn list_subscriptions(
        &self,
        customer_id: &str,
    ) -> Result<Vec<Subscription>, ConnectorError> {
        let mut all = Vec::new();
        let mut starting_after: Option<String> = None;
        loop {
            let mut query = vec![
                ("customer".to_owned(), customer_id.to_owned()),
                ("status".to_owned(), "all".to_owned()),
                ("limit".to_owned(), LIST_PAGE_SIZE.to_string()),
            ];
            if let Some(last) = &starting_after {
                query.push(("starting_after".to_owned(), last.clone()));
            }
            let page = self
                .call(Method::GET, &["v1", "subscriptions"], &query, None)
                .await?;
            let invalid = |why: String| {
                ConnectorError::InvalidResponse(format!("/v1/subscriptions list: {why}"))
            };
            let data = page["data"]
                .as_array()
                .ok_or_else(|| invalid("no data array".into()))?;
            for object in data {
                all.push(Subscription::from_object(object).map_err(invalid)?);
            }
            match (page["has_more"].as_bool(), all.last()) {
                (Some(true), Some(last)) if !data.is_empty() => {
                    starting_after = Some(last.id.clone());
                }
                _ => return Ok(all),
            }
        }
    }
}
