//! A fake Stripe for subscription billing that follows Stripe's API reference
//! (<https://docs.stripe.com/api>; the sections below are those of docs/protocols.md, Stripe),
//! served on a random loopback port.
//!
//! API (§3–§5): `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//! `POST /v1/billing_portal/sessions`, `GET /v1/subscriptions/{id}`, `GET /v1/subscriptions`
//! (canceled subscriptions only with `status=all`), and customers (`POST /v1/customers`,
//! `GET` and `POST /v1/customers/{id}`, `GET /v1/customers`); lists in Stripe's envelope
//! with `limit`, `starting_after`/`ending_before` and `has_more`. Bearer and Basic
//! (`sk_...:`) auth, 401 otherwise; form bodies with bracket keys and percent-decoding.
//! Each endpoint knows the parameters Stripe defines for it ([`Known`]): those the fake does
//! not act on are accepted and ignored, others are refused as `parameter_unknown`;
//! `expand[]` replaces `customer`, `subscription` and `latest_invoice` ids with the objects
//! (in lists through `data.`). Errors
//! as `{"error": {"type", "code", "doc_url", "message", "param"}}`; a `Request-Id` on every
//! answer.
//! Idempotency per key (§5): the same key and parameters replay the stored status and body
//! (500s included), other parameters or another endpoint are an `idempotency_error`, and
//! nothing is stored for a request that failed validation or was throttled (429 runs before
//! the idempotency layer).
//!
//! Versions (§5 "Versioning"): answers are rendered in the request's
//! `Stripe-Version`, else in the account's default [`ACCOUNT_DEFAULT_API_VERSION`]; events in
//! the webhook endpoint's version ([`API_VERSION`] unless set). From `2025-03-31.basil` on,
//! periods sit on subscription items and an invoice names its subscription under
//! `parent.subscription_details`; older versions get the top-level fields (§2).
//!
//! Webhooks (§1, §2, §6): the test drives what customers do
//! ([`FakeStripe::complete_checkout`], [`FakeStripe::update_subscription`], ...). Each change
//! records a snapshot event (random `evt_` ids, `api_version`, `livemode: false`,
//! `previous_attributes` only on `*.updated`), serialized once as pretty JSON, and POSTs it
//! to the endpoint with `Stripe-Signature: t=..,v1=..` over `"{t}.{body}"`, keyed by the
//! whole `whsec_...` secret. Every attempt is recorded with the receiver's status; failed
//! deliveries are not retried on their own: the test redelivers ([`FakeStripe::redeliver`]),
//! which also stands in for Stripe's duplicate deliveries.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Months, Utc};
use hmac::{Hmac, Mac};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha256;

/// The version the webhook endpoint is pinned to unless a test sets another: the one the
/// client pins (§5 "Pin one version in the client *and* on the webhook endpoint").
pub const API_VERSION: &str = "2026-09-30.endive";
/// The account's default version, used for requests without `Stripe-Version`: an account
/// made before `basil`, so a client that forgets to pin meets the older shapes.
pub const ACCOUNT_DEFAULT_API_VERSION: &str = "2024-06-20";
/// The first version with periods on items and `invoice.parent` (§2).
const BASIL: &str = "2025-03-31";
/// Checkout Sessions expire a day after they are made (§3).
const SESSION_LIFETIME_SECS: i64 = 86_400;
/// Stripe's largest idempotency key (§5).
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// The `User-Agent` of Stripe's webhook deliveries.
const WEBHOOK_USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";

/// The prices the fake account sells: USD, monthly, one per paid plan.
pub const PRICES: [FakePrice; 3] = [
    FakePrice {
        id: "price_starter",
        lookup_key: "starter",
        unit_amount: 1900,
    },
    FakePrice {
        id: "price_pro",
        lookup_key: "pro",
        unit_amount: 4900,
    },
    FakePrice {
        id: "price_scale",
        lookup_key: "scale",
        unit_amount: 14900,
    },
];

/// A recurring monthly USD price of the fake account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakePrice {
    pub id: &'static str,
    pub lookup_key: &'static str,
    /// In cents.
    pub unit_amount: i64,
}

impl FakePrice {
    fn find(id: &str) -> Option<FakePrice> {
        PRICES.iter().copied().find(|price| price.id == id)
    }

    fn json(self) -> Value {
        json!({
            "id": self.id,
            "object": "price",
            "active": true,
            "billing_scheme": "per_unit",
            "currency": "usd",
            "livemode": false,
            "lookup_key": self.lookup_key,
            "metadata": {},
            "nickname": null,
            "product": format!("prod_{}", self.lookup_key),
            "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "unit_amount": self.unit_amount,
        })
    }
}

/// A failure the next API request meets: a 429 or a 5xx (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with Stripe's rate-limit error. It is answered before the idempotency layer and
    /// never stored under a key (§5 "Rate limits").
    RateLimited,
    /// 500 `api_error`, as if the endpoint failed while executing: stored under the
    /// request's idempotency key and replayed to retries with that key (§5 "Idempotency").
    ServerError,
}

/// How deliveries are signed (the test knobs of §1). Stays in force until changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureMode {
    /// As Stripe signs: now, with the endpoint's secret.
    Correct,
    /// With a secret that is not the endpoint's.
    WrongSecret,
    /// Correctly, with a timestamp this far in the past.
    StaleBy(Duration),
    /// Correctly, with a timestamp this far in the future.
    AheadBy(Duration),
    /// Two `v1` signatures, with this previous secret first and the endpoint's secret
    /// second, as while a secret is being rolled.
    RotatedFrom(String),
}

/// One delivery attempt of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    /// The event's `type`.
    pub event_type: String,
    /// 1 for the first delivery of the event, 2 for its first redelivery, ...
    pub attempt: u32,
    /// The receiver's status; `None` when it could not be reached.
    pub status: Option<u16>,
    pub signature_header: String,
}

impl Delivery {
    /// Stripe counts any 2xx as delivered (§6).
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// One API request as the fake saw it, for tests of what the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub stripe_version: Option<String>,
    pub idempotency_key: Option<String>,
    pub content_type: Option<String>,
    /// The decoded form body (POST) or query (GET), in the order sent.
    pub params: Vec<(String, String)>,
    pub status: u16,
}

struct Endpoint {
    url: String,
    secret: String,
    api_version: String,
}

/// A Checkout Session: the object the API shows, and what Checkout will subscribe to.
struct FakeSession {
    json: Value,
    line_items: Vec<(FakePrice, i64)>,
    /// `subscription_data[metadata]`, for the subscription Checkout makes.
    subscription_metadata: BTreeMap<String, String>,
}

struct FakeItem {
    id: String,
    price: FakePrice,
    quantity: i64,
}

struct FakeSubscription {
    id: String,
    customer: String,
    status: &'static str,
    items: Vec<FakeItem>,
    created: i64,
    period_start: i64,
    period_end: i64,
    cancel_at_period_end: bool,
    cancel_at: Option<i64>,
    canceled_at: Option<i64>,
    ended_at: Option<i64>,
    latest_invoice: Option<String>,
    metadata: BTreeMap<String, String>,
    /// Creation order, to list newest first when `created` ties.
    sequence: u64,
}

struct FakeInvoice {
    id: String,
    customer: String,
    subscription: String,
    subscription_metadata: BTreeMap<String, String>,
    lines: Vec<(FakePrice, i64)>,
    billing_reason: &'static str,
    created: i64,
    /// The invoice's own period: for a renewal, the period that just ended.
    period_start: i64,
    period_end: i64,
    /// The service period the lines pay for.
    line_period_start: i64,
    line_period_end: i64,
}

struct StoredEvent {
    id: String,
    kind: String,
    body: Vec<u8>,
}

/// A stored idempotent answer (§5).
struct StoredAnswer {
    endpoint: String,
    params: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
}

struct StripeState {
    base_url: String,
    secret_key: String,
    customers: BTreeMap<String, Value>,
    /// Creation order of the customers, to list newest first when `created` ties.
    customer_sequence: HashMap<String, u64>,
    sessions: BTreeMap<String, FakeSession>,
    subscriptions: BTreeMap<String, FakeSubscription>,
    invoices: BTreeMap<String, FakeInvoice>,
    events: Vec<StoredEvent>,
    endpoint: Option<Endpoint>,
    signature_mode: SignatureMode,
    faults: VecDeque<Fault>,
    idempotency: HashMap<String, StoredAnswer>,
    requests: Vec<RecordedRequest>,
    deliveries: Vec<Delivery>,
    outgoing: reqwest::Client,
    next_sequence: u64,
}

type Shared = Arc<Mutex<StripeState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, StripeState> {
    state.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A running fake Stripe account; dropped, it stops.
pub struct FakeStripe {
    base_url: String,
    secret_key: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn random_id(prefix: &str, length: usize) -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

fn now() -> i64 {
    Utc::now().timestamp()
}

fn one_month_after(seconds: i64) -> i64 {
    DateTime::from_timestamp(seconds, 0)
        .and_then(|at| at.checked_add_months(Months::new(1)))
        .map(|at| at.timestamp())
        .unwrap_or(seconds + 30 * 86_400)
}

/// The hex `v1` signature of `payload` signed at `timestamp` (§1): HMAC-SHA256 over
/// `"{timestamp}.{payload}"`, keyed by the UTF-8 bytes of the whole secret.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// A `Stripe-Signature` header as Stripe's test helpers build it: `t={timestamp}` and one
/// `v1=` per secret, in the order given.
pub fn signature_header(secrets: &[&str], timestamp: i64, payload: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&sign(secret, timestamp, payload));
    }
    header
}

impl FakeStripe {
    /// Starts an empty account with [`PRICES`] on a random loopback port.
    pub async fn start() -> Self {
        let secret_key = random_id("sk_test_", 32);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let base_url = format!("http://{address}");
        let outgoing = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let state = Arc::new(Mutex::new(StripeState {
            base_url: base_url.clone(),
            secret_key: secret_key.clone(),
            customers: BTreeMap::new(),
            customer_sequence: HashMap::new(),
            sessions: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            invoices: BTreeMap::new(),
            events: Vec::new(),
            endpoint: None,
            signature_mode: SignatureMode::Correct,
            faults: VecDeque::new(),
            idempotency: HashMap::new(),
            requests: Vec::new(),
            deliveries: Vec::new(),
            outgoing,
            next_sequence: 0,
        }));
        let app = Router::new()
            .route(
                "/v1/checkout/sessions",
                post(create_checkout_session).fallback(unknown_route),
            )
            .route(
                "/v1/checkout/sessions/{id}",
                get(retrieve_checkout_session).fallback(unknown_route),
            )
            .route(
                "/v1/billing_portal/sessions",
                post(create_portal_session).fallback(unknown_route),
            )
            .route(
                "/v1/customers",
                get(list_customers)
                    .post(create_customer_endpoint)
                    .fallback(unknown_route),
            )
            .route(
                "/v1/customers/{id}",
                get(retrieve_customer)
                    .post(update_customer)
                    .fallback(unknown_route),
            )
            .route(
                "/v1/subscriptions",
                get(list_subscriptions).fallback(unknown_route),
            )
            .route(
                "/v1/subscriptions/{id}",
                get(retrieve_subscription).fallback(unknown_route),
            )
            .route("/c/pay/{id}", get(checkout_page))
            .route("/p/session/{id}", get(portal_page))
            .fallback(unknown_route)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        FakeStripe {
            base_url,
            secret_key,
            state,
            server,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StripeState> {
        lock(&self.state)
    }

    /// Where the fake serves the API (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The account's secret key (`sk_test_...`), the only key the fake accepts.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// Registers the one webhook endpoint, signed with `signing_secret` (`whsec_...`) and
    /// pinned to [`API_VERSION`].
    pub fn set_webhook_endpoint(&self, url: &str, signing_secret: &str) {
        self.lock().endpoint = Some(Endpoint {
            url: url.to_owned(),
            secret: signing_secret.to_owned(),
            api_version: API_VERSION.to_owned(),
        });
    }

    /// Pins the endpoint to another version: events made from now on render in it.
    pub fn set_webhook_api_version(&self, version: &str) {
        if let Some(endpoint) = self.lock().endpoint.as_mut() {
            endpoint.api_version = version.to_owned();
        }
    }

    /// How the next deliveries are signed.
    pub fn set_signature_mode(&self, mode: SignatureMode) {
        self.lock().signature_mode = mode;
    }

    /// Queues failures for the next API requests, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.lock().faults.extend(faults.iter().copied());
    }

    /// A customer, as if made in the Dashboard or by an earlier Checkout; its id.
    pub fn create_customer(&self, email: &str) -> String {
        let mut state = self.lock();
        insert_customer(&mut state, email)
    }

    /// The customer's email, when the customer exists.
    pub fn customer_email(&self, customer_id: &str) -> Option<String> {
        self.lock()
            .customers
            .get(customer_id)
            .and_then(|customer| customer["email"].as_str().map(str::to_owned))
    }

    /// The Checkout Session as `GET /v1/checkout/sessions/{id}` answers it.
    pub fn checkout_session(&self, session_id: &str) -> Option<Value> {
        self.lock()
            .sessions
            .get(session_id)
            .map(|session| session.json.clone())
    }

    /// The subscription rendered in `version`.
    pub fn subscription(&self, subscription_id: &str, version: &str) -> Option<Value> {
        self.lock()
            .subscriptions
            .get(subscription_id)
            .map(|subscription| render_subscription(subscription, version))
    }

    /// The customer pays on the Checkout page: Checkout makes the customer (unless the
    /// session named one), an active subscription of the session's prices with the
    /// session's `subscription_data[metadata]`, and its first paid invoice, then delivers
    /// `checkout.session.completed`, `customer.subscription.created` and `invoice.paid`.
    /// Returns the deliveries (none without an endpoint). Panics for an unknown session or
    /// one that is no longer open: a test that does that is wrong.
    pub async fn complete_checkout(&self, session_id: &str) -> Vec<Delivery> {
        let events = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let session = state
                .sessions
                .get(session_id)
                .unwrap_or_else(|| panic!("the fake Stripe has no Checkout Session {session_id}"));
            assert_eq!(
                session.json["status"], "open",
                "only open Checkout Sessions can be completed"
            );
            let named_customer = session.json["customer"].as_str().map(str::to_owned);
            let email = session.json["customer_email"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let items: Vec<FakeItem> = session
                .line_items
                .iter()
                .map(|(price, quantity)| FakeItem {
                    id: random_id("si_", 14),
                    price: *price,
                    quantity: *quantity,
                })
                .collect();
            let subscription_metadata = session.subscription_metadata.clone();
            let customer = match named_customer {
                Some(id) => id,
                None => insert_customer(state, &email),
            };
            let created = now();
            let sequence = state.next_sequence;
            state.next_sequence += 1;
            let subscription_id = random_id("sub_", 24);
            let invoice_id = random_id("in_", 24);
            let period_end = one_month_after(created);
            state.invoices.insert(
                invoice_id.clone(),
                FakeInvoice {
                    id: invoice_id.clone(),
                    customer: customer.clone(),
                    subscription: subscription_id.clone(),
                    subscription_metadata: subscription_metadata.clone(),
                    lines: items
                        .iter()
                        .map(|item| (item.price, item.quantity))
                        .collect(),
                    billing_reason: "subscription_create",
                    created,
                    period_start: created,
                    period_end: created,
                    line_period_start: created,
                    line_period_end: period_end,
                },
            );
            state.subscriptions.insert(
                subscription_id.clone(),
                FakeSubscription {
                    id: subscription_id.clone(),
                    customer: customer.clone(),
                    status: "active",
                    items,
                    created,
                    period_start: created,
                    period_end,
                    cancel_at_period_end: false,
                    cancel_at: None,
                    canceled_at: None,
                    ended_at: None,
                    latest_invoice: Some(invoice_id.clone()),
                    metadata: subscription_metadata,
                    sequence,
                },
            );
            let completed = &mut state
                .sessions
                .get_mut(session_id)
                .expect("the session was read above")
                .json;
            completed["status"] = "complete".into();
            completed["payment_status"] = "paid".into();
            completed["customer"] = customer.clone().into();
            completed["subscription"] = subscription_id.clone().into();
            completed["url"] = Value::Null;
            let completed = completed.clone();
            let version = state.event_version();
            let subscription =
                render_subscription(&state.subscriptions[&subscription_id], &version);
            let invoice = render_invoice(&state.invoices[&invoice_id], &version);
            vec![
                record_event(state, "checkout.session.completed", completed, None),
                record_event(state, "customer.subscription.created", subscription, None),
                record_event(state, "invoice.paid", invoice, None),
            ]
        };
        self.deliver_all(&events).await
    }

    /// The customer switches plans in the portal: the first item moves to `price_id`
    /// (prorations wait for the next invoice, so no invoice now) and
    /// `customer.subscription.updated` carries the old items in `previous_attributes`.
    pub async fn update_subscription(
        &self,
        subscription_id: &str,
        price_id: &str,
    ) -> Vec<Delivery> {
        let price = FakePrice::find(price_id)
            .unwrap_or_else(|| panic!("the fake Stripe has no price {price_id}"));
        self.change_subscription(subscription_id, |subscription, version| {
            let previous = json!({"items": render_items(subscription, version)});
            if let Some(item) = subscription.items.first_mut() {
                item.price = price;
            }
            previous
        })
        .await
    }

    /// The customer cancels in the portal: the subscription stays active to the period's
    /// end (`cancel_at_period_end`, `cancel_at`, `canceled_at`), announced by
    /// `customer.subscription.updated`.
    pub async fn cancel_at_period_end(&self, subscription_id: &str) -> Vec<Delivery> {
        self.change_subscription(subscription_id, |subscription, _| {
            let previous = json!({
                "cancel_at": subscription.cancel_at,
                "cancel_at_period_end": subscription.cancel_at_period_end,
                "canceled_at": subscription.canceled_at,
            });
            subscription.cancel_at_period_end = true;
            subscription.cancel_at = Some(subscription.period_end);
            subscription.canceled_at = Some(now());
            previous
        })
        .await
    }

    /// The subscription is canceled at once (Dashboard or API): status `canceled`, and
    /// `customer.subscription.deleted`.
    pub async fn delete_subscription(&self, subscription_id: &str) -> Vec<Delivery> {
        let events = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let version = state.event_version();
            let subscription = state
                .subscriptions
                .get_mut(subscription_id)
                .unwrap_or_else(|| panic!("the fake Stripe has no subscription {subscription_id}"));
            end_subscription(subscription);
            let object = render_subscription(subscription, &version);
            vec![record_event(
                state,
                "customer.subscription.deleted",
                object,
                None,
            )]
        };
        self.deliver_all(&events).await
    }

    /// The current period ends. A subscription set to cancel at period end ends
    /// (`customer.subscription.deleted`); any other renews: the next period starts
    /// (`customer.subscription.updated` with the old items) and its invoice is paid
    /// (`invoice.paid`, `billing_reason: subscription_cycle`, whose own period is the one
    /// that just ended while its line covers the new one).
    pub async fn end_current_period(&self, subscription_id: &str) -> Vec<Delivery> {
        let events = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let version = state.event_version();
            let invoice_id = random_id("in_", 24);
            let subscription = state
                .subscriptions
                .get_mut(subscription_id)
                .unwrap_or_else(|| panic!("the fake Stripe has no subscription {subscription_id}"));
            if subscription.cancel_at_period_end {
                end_subscription(subscription);
                let object = render_subscription(subscription, &version);
                vec![record_event(
                    state,
                    "customer.subscription.deleted",
                    object,
                    None,
                )]
            } else {
                let previous = json!({
                    "items": render_items(subscription, &version),
                    "latest_invoice": subscription.latest_invoice,
                });
                let (ended_start, ended_end) = (subscription.period_start, subscription.period_end);
                subscription.period_start = ended_end;
                subscription.period_end = one_month_after(ended_end);
                subscription.latest_invoice = Some(invoice_id.clone());
                let invoice = FakeInvoice {
                    id: invoice_id.clone(),
                    customer: subscription.customer.clone(),
                    subscription: subscription.id.clone(),
                    subscription_metadata: subscription.metadata.clone(),
                    lines: subscription
                        .items
                        .iter()
                        .map(|item| (item.price, item.quantity))
                        .collect(),
                    billing_reason: "subscription_cycle",
                    created: now(),
                    period_start: ended_start,
                    period_end: ended_end,
                    line_period_start: subscription.period_start,
                    line_period_end: subscription.period_end,
                };
                let updated = render_subscription(subscription, &version);
                let paid = render_invoice(&invoice, &version);
                state.invoices.insert(invoice_id, invoice);
                vec![
                    record_event(
                        state,
                        "customer.subscription.updated",
                        updated,
                        Some(previous),
                    ),
                    record_event(state, "invoice.paid", paid, None),
                ]
            }
        };
        self.deliver_all(&events).await
    }

    /// Delivers a recorded event again, signed anew (Stripe's retries and duplicate
    /// deliveries, §6). Panics for an unknown event or without an endpoint.
    pub async fn redeliver(&self, event_id: &str) -> Delivery {
        assert!(
            self.lock().events.iter().any(|event| event.id == event_id),
            "the fake Stripe has no event {event_id}"
        );
        deliver(&self.state, event_id)
            .await
            .expect("redelivery needs a webhook endpoint")
    }

    /// Every event recorded, oldest first, parsed.
    pub fn events(&self) -> Vec<Value> {
        self.lock()
            .events
            .iter()
            .map(|event| serde_json::from_slice(&event.body).expect("events are JSON"))
            .collect()
    }

    /// The exact bytes an event is delivered with.
    pub fn event_body(&self, event_id: &str) -> Option<Vec<u8>> {
        self.lock()
            .events
            .iter()
            .find(|event| event.id == event_id)
            .map(|event| event.body.clone())
    }

    /// Every delivery attempted, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Every API request answered, in order (pages and unknown routes included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Applies `change` (which returns the `previous_attributes`) to a subscription and
    /// delivers `customer.subscription.updated`.
    async fn change_subscription(
        &self,
        subscription_id: &str,
        change: impl FnOnce(&mut FakeSubscription, &str) -> Value,
    ) -> Vec<Delivery> {
        let events = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let version = state.event_version();
            let subscription = state
                .subscriptions
                .get_mut(subscription_id)
                .unwrap_or_else(|| panic!("the fake Stripe has no subscription {subscription_id}"));
            let previous = change(subscription, &version);
            let object = render_subscription(subscription, &version);
            vec![record_event(
                state,
                "customer.subscription.updated",
                object,
                Some(previous),
            )]
        };
        self.deliver_all(&events).await
    }

    async fn deliver_all(&self, event_ids: &[String]) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for event_id in event_ids {
            deliveries.extend(deliver(&self.state, event_id).await);
        }
        deliveries
    }
}

impl StripeState {
    /// The version events render in: the endpoint's, else the account's default.
    fn event_version(&self) -> String {
        self.endpoint
            .as_ref()
            .map(|endpoint| endpoint.api_version.clone())
            .unwrap_or_else(|| ACCOUNT_DEFAULT_API_VERSION.to_owned())
    }
}

fn insert_customer(state: &mut StripeState, email: &str) -> String {
    let id = random_id("cus_", 14);
    state.next_sequence += 1;
    state
        .customer_sequence
        .insert(id.clone(), state.next_sequence);
    state.customers.insert(
        id.clone(),
        json!({
            "id": id,
            "object": "customer",
            "address": null,
            "balance": 0,
            "created": now(),
            "currency": null,
            "default_source": null,
            "delinquent": false,
            "description": null,
            "discount": null,
            "email": if email.is_empty() { Value::Null } else { email.into() },
            "invoice_prefix": random_id("", 8).to_uppercase(),
            "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
            "livemode": false,
            "metadata": {},
            "name": null,
            "next_invoice_sequence": 1,
            "phone": null,
            "preferred_locales": [],
            "shipping": null,
            "tax_exempt": "none",
            "test_clock": null,
        }),
    );
    id
}

fn end_subscription(subscription: &mut FakeSubscription) {
    let at = now();
    subscription.status = "canceled";
    subscription.canceled_at = subscription.canceled_at.or(Some(at));
    subscription.ended_at = Some(at);
}

/// Versions compare by their date (`YYYY-MM-DD.codename`).
fn is_basil_or_later(version: &str) -> bool {
    version.get(..10).unwrap_or(version) >= BASIL
}

fn render_items(subscription: &FakeSubscription, version: &str) -> Value {
    let basil = is_basil_or_later(version);
    let data: Vec<Value> = subscription
        .items
        .iter()
        .map(|item| {
            let mut json = json!({
                "id": item.id,
                "object": "subscription_item",
                "created": subscription.created,
                "metadata": {},
                "price": item.price.json(),
                "quantity": item.quantity,
                "subscription": subscription.id,
            });
            if basil {
                json["current_period_start"] = subscription.period_start.into();
                json["current_period_end"] = subscription.period_end.into();
            }
            json
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "total_count": subscription.items.len(),
        "url": format!("/v1/subscription_items?subscription={}", subscription.id),
    })
}

/// A subscription in `version`'s shape (§2 "current_period_start/end moved").
fn render_subscription(subscription: &FakeSubscription, version: &str) -> Value {
    let mut json = json!({
        "id": subscription.id,
        "object": "subscription",
        "billing_cycle_anchor": subscription.created,
        "cancel_at": subscription.cancel_at,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": subscription.canceled_at,
        "collection_method": "charge_automatically",
        "created": subscription.created,
        "currency": "usd",
        "customer": subscription.customer,
        "ended_at": subscription.ended_at,
        "items": render_items(subscription, version),
        "latest_invoice": subscription.latest_invoice,
        "livemode": false,
        "metadata": subscription.metadata,
        "start_date": subscription.created,
        "status": subscription.status,
    });
    if !is_basil_or_later(version) {
        json["current_period_start"] = subscription.period_start.into();
        json["current_period_end"] = subscription.period_end.into();
    }
    json
}

/// A paid invoice in `version`'s shape (§2 "Invoice → subscription link").
fn render_invoice(invoice: &FakeInvoice, version: &str) -> Value {
    let basil = is_basil_or_later(version);
    let total: i64 = invoice
        .lines
        .iter()
        .map(|(price, quantity)| price.unit_amount * quantity)
        .sum();
    let lines: Vec<Value> = invoice
        .lines
        .iter()
        .map(|(price, quantity)| {
            let mut line = json!({
                "id": random_id("il_", 24),
                "object": "line_item",
                "amount": price.unit_amount * quantity,
                "currency": "usd",
                "livemode": false,
                "metadata": {},
                "period": {"start": invoice.line_period_start, "end": invoice.line_period_end},
                "quantity": quantity,
            });
            if basil {
                line["pricing"] = json!({
                    "type": "price_details",
                    "price_details": {"price": price.id, "product": format!("prod_{}", price.lookup_key)},
                    "unit_amount_decimal": price.unit_amount.to_string(),
                });
            } else {
                line["price"] = price.json();
                line["subscription"] = invoice.subscription.clone().into();
            }
            line
        })
        .collect();
    let mut json = json!({
        "id": invoice.id,
        "object": "invoice",
        "amount_due": total,
        "amount_paid": total,
        "amount_remaining": 0,
        "billing_reason": invoice.billing_reason,
        "collection_method": "charge_automatically",
        "created": invoice.created,
        "currency": "usd",
        "customer": invoice.customer,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": false,
            "total_count": invoice.lines.len(),
            "url": format!("/v1/invoices/{}/lines", invoice.id),
        },
        "livemode": false,
        "metadata": {},
        "paid": true,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "status": "paid",
        "status_transitions": {"finalized_at": invoice.created, "paid_at": invoice.created},
        "total": total,
    });
    if basil {
        json["parent"] = json!({
            "type": "subscription_details",
            "quote_details": null,
            "subscription_details": {
                "metadata": invoice.subscription_metadata,
                "subscription": invoice.subscription,
            },
        });
    } else {
        json["subscription"] = invoice.subscription.clone().into();
        json["subscription_details"] = json!({"metadata": invoice.subscription_metadata});
    }
    json
}

/// Records a snapshot event (§2), serialized once; its id.
fn record_event(
    state: &mut StripeState,
    kind: &str,
    object: Value,
    previous_attributes: Option<Value>,
) -> String {
    let id = random_id("evt_", 24);
    let mut data = json!({"object": object});
    if let Some(previous) = previous_attributes {
        data["previous_attributes"] = previous;
    }
    let event = json!({
        "id": id,
        "object": "event",
        "api_version": state.event_version(),
        "created": now(),
        "data": data,
        "livemode": false,
        "pending_webhooks": u8::from(state.endpoint.is_some()),
        "request": {"id": null, "idempotency_key": null},
        "type": kind,
    });
    let body = serde_json::to_vec_pretty(&event).expect("events serialize");
    state.events.push(StoredEvent {
        id: id.clone(),
        kind: kind.to_owned(),
        body,
    });
    id
}

/// POSTs one event to the endpoint, signed per the current [`SignatureMode`], and records
/// the attempt. `None` without an endpoint.
async fn deliver(state: &Shared, event_id: &str) -> Option<Delivery> {
    let (url, header, body, kind, attempt, client) = {
        let state = lock(state);
        let endpoint = state.endpoint.as_ref()?;
        let event = state.events.iter().find(|event| event.id == event_id)?;
        let at = now();
        let shifted = |offset: Duration, later: bool| {
            let secs = i64::try_from(offset.as_secs()).unwrap_or(i64::MAX / 2);
            if later {
                at + secs
            } else {
                at - secs
            }
        };
        let secret = endpoint.secret.as_str();
        let header = match &state.signature_mode {
            SignatureMode::Correct => signature_header(&[secret], at, &event.body),
            SignatureMode::WrongSecret => {
                signature_header(&["whsec_not_the_endpoints_secret"], at, &event.body)
            }
            SignatureMode::StaleBy(age) => {
                signature_header(&[secret], shifted(*age, false), &event.body)
            }
            SignatureMode::AheadBy(lead) => {
                signature_header(&[secret], shifted(*lead, true), &event.body)
            }
            SignatureMode::RotatedFrom(previous) => {
                signature_header(&[previous.as_str(), secret], at, &event.body)
            }
        };
        let attempt = 1 + state
            .deliveries
            .iter()
            .filter(|delivery| delivery.event_id == event_id)
            .count() as u32;
        (
            endpoint.url.clone(),
            header,
            event.body.clone(),
            event.kind.clone(),
            attempt,
            state.outgoing.clone(),
        )
    };
    let status = client
        .post(&url)
        .header(reqwest::header::USER_AGENT, WEBHOOK_USER_AGENT)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .header("Stripe-Signature", &header)
        .body(body)
        .send()
        .await
        .ok()
        .map(|response| response.status().as_u16());
    let delivery = Delivery {
        event_id: event_id.to_owned(),
        event_type: kind,
        attempt,
        status,
        signature_header: header,
    };
    lock(state).deliveries.push(delivery.clone());
    Some(delivery)
}

// ---- The API ----

/// A finished error answer: status and Stripe's error body.
struct Failure {
    status: StatusCode,
    body: Value,
}

impl Failure {
    fn new(
        status: StatusCode,
        kind: &str,
        code: Option<&str>,
        param: Option<&str>,
        message: &str,
    ) -> Self {
        let mut error = json!({"type": kind, "message": message});
        if let Some(code) = code {
            error["code"] = code.into();
            // Stripe links each coded error to its page, the code hyphenated
            // (`parameter_unknown` → …/error-codes/parameter-unknown; stripe/stripe-java
            // `src/test/java/com/stripe/model/StripeErrorTest.java` pins a live answer).
            error["doc_url"] = format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            )
            .into();
        }
        if let Some(param) = param {
            error["param"] = param.into();
        }
        Failure {
            status,
            body: json!({ "error": error }),
        }
    }

    /// 400 `invalid_request_error` naming the parameter at fault.
    fn invalid(param: &str, code: Option<&str>, message: &str) -> Self {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            Some(param),
            message,
        )
    }

    fn missing(param: &str) -> Self {
        Failure::invalid(
            param,
            Some("parameter_missing"),
            &format!("Missing required param: {param}."),
        )
    }

    fn no_such(param: &str, what: &str, id: &str) -> Self {
        Failure::invalid(
            param,
            Some("resource_missing"),
            &format!("No such {what}: '{id}'"),
        )
    }
}

/// A form body or query string, decoded, in the order sent.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// `prefix[key]=value` pairs as a map of `key` to `value` (Stripe's `metadata[...]`).
    fn bracketed(&self, prefix: &str) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(name, value)| {
                let key = name
                    .strip_prefix(prefix)?
                    .strip_prefix('[')?
                    .strip_suffix(']')?;
                (!key.contains('[')).then(|| (key.to_owned(), value.clone()))
            })
            .collect()
    }

    /// The parameters `allowed` refuses, answered as Stripe answers unknown ones: all of them
    /// named in the message, the first in `param`.
    fn refuse_unknown(&self, allowed: impl Fn(&str) -> bool) -> Result<(), Failure> {
        let mut unknown: Vec<&str> = Vec::new();
        for (name, _) in &self.0 {
            if !allowed(name) && !unknown.contains(&name.as_str()) {
                unknown.push(name);
            }
        }
        match unknown.as_slice() {
            [] => Ok(()),
            [name] => Err(Failure::invalid(
                name,
                Some("parameter_unknown"),
                &format!("Received unknown parameter: {name}"),
            )),
            [first, ..] => Err(Failure::invalid(
                first,
                Some("parameter_unknown"),
                &format!("Received unknown parameters: {}", unknown.join(", ")),
            )),
        }
    }

    /// Refuses what `known` does not define ([`Known::defines`]).
    fn refuse_unknown_to(&self, known: &Known) -> Result<(), Failure> {
        self.refuse_unknown(|name| known.defines(name))
    }

    /// The parameters in a canonical order, to compare idempotent retries.
    fn canonical(&self) -> Vec<(String, String)> {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted
    }
}

/// What a handler knows about its request beyond the parameters.
struct Context {
    /// The version the answer renders in.
    version: String,
    path_id: Option<String>,
}

type Handler = fn(&mut StripeState, &Params, &Context) -> Result<Value, Failure>;

/// The parameters Stripe defines on one endpoint, to accept what Stripe accepts (even when
/// the fake ignores it) and refuse the rest as `parameter_unknown`. The top-level names are
/// those of the endpoint's `*Params` interface in stripe-node (`stripe` 23.2.0, API version
/// `2026-11-18.endive`, `esm/resources/**/*.d.ts`).
struct Known {
    /// Parameters the fake reads, as patterns of form keys: a literal segment, `N` for a list
    /// index, `*` for any one key (metadata), `**` for any nested keys.
    read: &'static [&'static str],
    /// Parameters the fake accepts and ignores, with whatever nested keys they carry.
    ignored: &'static [&'static str],
}

/// `name[a][b]` as `["name", "a", "b"]`; `None` for a malformed key.
fn form_key_segments(name: &str) -> Option<Vec<&str>> {
    let (head, mut rest) = match name.find('[') {
        Some(at) => (&name[..at], &name[at..]),
        None => (name, ""),
    };
    let mut segments = vec![head];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        segments.push(&inner[..end]);
        rest = &inner[end + 1..];
    }
    (!head.is_empty()).then_some(segments)
}

fn pattern_matches(pattern: &[&str], key: &[&str]) -> bool {
    match (pattern.split_first(), key.split_first()) {
        (None, None) => true,
        (Some((&"**", _)), Some(_)) => true,
        (Some((&"N", pattern)), Some((segment, key))) => {
            !segment.is_empty()
                && segment.bytes().all(|b| b.is_ascii_digit())
                && pattern_matches(pattern, key)
        }
        (Some((&"*", pattern)), Some((segment, key))) => {
            !segment.is_empty() && pattern_matches(pattern, key)
        }
        (Some((literal, pattern)), Some((segment, key))) => {
            literal == segment && pattern_matches(pattern, key)
        }
        _ => false,
    }
}

impl Known {
    fn defines(&self, name: &str) -> bool {
        let Some(key) = form_key_segments(name) else {
            return false;
        };
        self.ignored.contains(&key[0])
            || self.read.iter().any(|pattern| {
                let pattern: Vec<&str> = form_key_segments(pattern).unwrap_or_default();
                pattern_matches(&pattern, &key)
            })
    }
}

/// `POST /v1/checkout/sessions` (`Checkout.SessionCreateParams`).
const CHECKOUT_CREATE: Known = Known {
    read: &[
        "mode",
        "success_url",
        "cancel_url",
        "client_reference_id",
        "customer",
        "customer_email",
        "metadata[*]",
        "line_items[N][price]",
        "line_items[N][quantity]",
        "line_items[N][metadata][*]",
        "line_items[N][tax_rates][N]",
        "line_items[N][adjustable_quantity][**]",
        "line_items[N][price_data][**]",
        "automatic_tax[enabled]",
        "automatic_tax[liability][type]",
        "automatic_tax[liability][account]",
        "expand[N]",
    ],
    ignored: &[
        "adaptive_pricing",
        "after_expiration",
        "allow_promotion_codes",
        "allowed_payment_method_types",
        "billing_address_collection",
        "branding_settings",
        "consent_collection",
        "currency",
        "custom_fields",
        "custom_text",
        "customer_account",
        "customer_creation",
        "customer_update",
        "discounts",
        "excluded_payment_method_types",
        "expires_at",
        "integration_identifier",
        "invoice_creation",
        "locale",
        "managed_payments",
        "name_collection",
        "optional_items",
        "origin_context",
        "payment_intent_data",
        "payment_method_collection",
        "payment_method_configuration",
        "payment_method_data",
        "payment_method_options",
        "permissions",
        "phone_number_collection",
        "redirect_on_completion",
        "return_url",
        "saved_payment_method_options",
        "setup_intent_data",
        "shipping_address_collection",
        "shipping_options",
        "submit_type",
        "subscription_data",
        "tax_id_collection",
        "ui_mode",
        "wallet_options",
    ],
};

/// Retrieving one object (`*RetrieveParams`): `expand` only.
const RETRIEVE: Known = Known {
    read: &["expand[N]"],
    ignored: &[],
};

/// `POST /v1/billing_portal/sessions` (`BillingPortal.SessionCreateParams`).
const PORTAL_CREATE: Known = Known {
    read: &[
        "customer",
        "return_url",
        "configuration",
        "locale",
        "expand[N]",
    ],
    ignored: &[
        "after_expiration",
        "customer_account",
        "flow_data",
        "on_behalf_of",
    ],
};

/// `GET /v1/subscriptions` (`SubscriptionListParams` and Stripe's pagination).
const SUBSCRIPTION_LIST: Known = Known {
    read: &[
        "customer",
        "price",
        "status",
        "limit",
        "starting_after",
        "ending_before",
        "expand[N]",
    ],
    ignored: &[
        "automatic_tax",
        "collection_method",
        "created",
        "current_period_end",
        "current_period_start",
        "customer_account",
        "plan",
        "test_clock",
    ],
};

/// `POST /v1/customers` (`CustomerCreateParams`).
const CUSTOMER_CREATE: Known = Known {
    read: &[
        "email",
        "name",
        "description",
        "phone",
        "metadata[*]",
        "preferred_locales[N]",
        "expand[N]",
    ],
    ignored: &[
        "address",
        "balance",
        "business_name",
        "cash_balance",
        "individual_name",
        "invoice_prefix",
        "invoice_settings",
        "next_invoice_sequence",
        "payment_method",
        "shipping",
        "source",
        "tax",
        "tax_exempt",
        "tax_id_data",
        "test_clock",
        "validate",
    ],
};

/// `POST /v1/customers/{id}` (`CustomerUpdateParams`).
const CUSTOMER_UPDATE: Known = Known {
    read: CUSTOMER_CREATE.read,
    ignored: &[
        "address",
        "balance",
        "business_name",
        "cash_balance",
        "default_source",
        "individual_name",
        "invoice_prefix",
        "invoice_settings",
        "next_invoice_sequence",
        "shipping",
        "source",
        "tax",
        "tax_exempt",
        "validate",
    ],
};

/// `GET /v1/customers` (`CustomerListParams` and Stripe's pagination).
const CUSTOMER_LIST: Known = Known {
    read: &[
        "email",
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "created[gt]",
        "created[gte]",
        "created[lt]",
        "created[lte]",
        "expand[N]",
    ],
    ignored: &["test_clock"],
};

/// Refuses `param` unless it is absent or an `http(s)` URL.
fn check_url(params: &Params, param: &str) -> Result<(), Failure> {
    let Some(url) = params.get(param) else {
        return Ok(());
    };
    let web =
        reqwest::Url::parse(url).is_ok_and(|parsed| matches!(parsed.scheme(), "http" | "https"));
    if web {
        Ok(())
    } else {
        Err(Failure::invalid(
            param,
            Some("url_invalid"),
            "Not a valid URL",
        ))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_owned())
}

/// The key of an `Authorization: Bearer sk_...` or `Basic base64(sk_...:)` header (§3).
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = header(headers, "authorization")?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    Some(
        decoded
            .split_once(':')
            .map_or(decoded.clone(), |(key, _)| key.to_owned()),
    )
}

fn masked(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let prefix = if key.starts_with("sk_test_") {
        "sk_test_"
    } else {
        ""
    };
    format!("{prefix}********************{tail}")
}

fn authenticate(state: &StripeState, headers: &HeaderMap) -> Result<(), Failure> {
    match presented_key(headers) {
        None => Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        )),
        Some(key) if key == state.secret_key => Ok(()),
        Some(key) => Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("api_key_invalid"),
            None,
            &format!("Invalid API Key provided: {}", masked(&key)),
        )),
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DD.codename`.
fn valid_version(version: &str) -> bool {
    let (date, codename) = version.split_once('.').unwrap_or((version, "a"));
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok()
        && !codename.is_empty()
        && codename.chars().all(|c| c.is_ascii_lowercase())
}

fn answer(status: StatusCode, body: &Value, request_id: &str) -> Response {
    let mut response = (status, Json(body.clone())).into_response();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// One API request through the layers Stripe runs it through: auth, rate limiting,
/// version, parameters, idempotency (POST), then the endpoint. Records the request.
fn serve(
    shared: &Shared,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    path_id: Option<String>,
    handler: Handler,
) -> Response {
    let request_id = random_id("req_", 14);
    let mut guard = lock(shared);
    let state = &mut *guard;
    let is_post = method == "POST";
    let raw = if is_post {
        body.to_vec()
    } else {
        uri.query().unwrap_or("").as_bytes().to_vec()
    };
    let decoded = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&raw);
    let mut record = RecordedRequest {
        method: method.to_owned(),
        path: uri.path().to_owned(),
        stripe_version: header(headers, "stripe-version"),
        idempotency_key: header(headers, "idempotency-key").filter(|_| is_post),
        content_type: header(headers, "content-type"),
        params: decoded.clone().unwrap_or_default(),
        status: 0,
    };
    let (status, body) = run(state, headers, &record, decoded.ok(), path_id, handler);
    record.status = status.as_u16();
    state.requests.push(record);
    answer(status, &body, &request_id)
}

fn run(
    state: &mut StripeState,
    headers: &HeaderMap,
    request: &RecordedRequest,
    decoded: Option<Vec<(String, String)>>,
    path_id: Option<String>,
    handler: Handler,
) -> (StatusCode, Value) {
    let fail = |failure: Failure| (failure.status, failure.body);
    if let Err(failure) = authenticate(state, headers) {
        return fail(failure);
    }
    if state.faults.front() == Some(&Fault::RateLimited) {
        state.faults.pop_front();
        return fail(Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request_error",
            Some("rate_limit"),
            None,
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        ));
    }
    let version = match &request.stripe_version {
        Some(version) if !valid_version(version) => {
            return fail(Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                None,
                &format!("Invalid Stripe API version: {version}"),
            ))
        }
        Some(version) => version.clone(),
        None => ACCOUNT_DEFAULT_API_VERSION.to_owned(),
    };
    let is_post = request.method == "POST";
    let form_body = request
        .content_type
        .as_deref()
        .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
    let params = match decoded {
        Some(pairs) if !is_post || form_body || pairs.is_empty() => Params(pairs),
        _ => {
            return fail(Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                None,
                "Invalid request (check that your POST content type is application/x-www-form-urlencoded). If you have any questions, we can help at https://support.stripe.com/.",
            ))
        }
    };
    let endpoint = format!("{} {}", request.method, request.path);
    let key = request.idempotency_key.clone();
    if let Some(key) = &key {
        if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return fail(Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                None,
                &format!(
                    "Invalid idempotency key: keys can be at most {MAX_IDEMPOTENCY_KEY_LEN} characters long."
                ),
            ));
        }
        if let Some(stored) = state.idempotency.get(key) {
            if stored.endpoint != endpoint {
                return fail(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    None,
                    None,
                    &format!("Keys for idempotent requests can only be used for the same endpoint they were first used for ('{}' vs '{endpoint}'). Try using a key other than '{key}' if you meant to execute a different request.", stored.endpoint),
                ));
            }
            if stored.params != params.canonical() {
                return fail(Failure::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    None,
                    None,
                    &format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
                ));
            }
            return (stored.status, stored.body.clone());
        }
    }
    let (status, body) = if state.faults.front() == Some(&Fault::ServerError) {
        state.faults.pop_front();
        let failure = Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            None,
            None,
            "An unknown error occurred",
        );
        (failure.status, failure.body)
    } else {
        let context = Context { version, path_id };
        let answered = handler(state, &params, &context)
            .and_then(|body| expand(state, body, &params, &context.version));
        match answered {
            Ok(body) => (StatusCode::OK, body),
            // Nothing is stored for a request that fails validation (§5).
            Err(failure) => return fail(failure),
        }
    };
    if let Some(key) = key {
        state.idempotency.insert(
            key,
            StoredAnswer {
                endpoint,
                params: params.canonical(),
                status,
                body: body.clone(),
            },
        );
    }
    (status, body)
}

/// Stripe's `expand[]`: each dotted path (`customer`, `subscription`, `latest_invoice`, or
/// `data.customer` in a list) whose field holds an object id is replaced by that object.
/// A path to anything else is refused as Stripe refuses it.
fn expand(
    state: &StripeState,
    mut body: Value,
    params: &Params,
    version: &str,
) -> Result<Value, Failure> {
    let paths: Vec<&str> = params
        .0
        .iter()
        .filter(|(name, _)| name.starts_with("expand["))
        .map(|(_, path)| path.as_str())
        .collect();
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        if !expand_at(state, &mut body, &segments, version) {
            return Err(Failure::invalid(
                "expand",
                None,
                &format!("This property cannot be expanded ({path})."),
            ));
        }
    }
    Ok(body)
}

/// Expands `segments` under `value` (through every item of `data` lists); whether the path
/// named an expandable field.
fn expand_at(state: &StripeState, value: &mut Value, segments: &[&str], version: &str) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        return false;
    };
    if *first == "data" {
        if let Some(items) = value["data"].as_array_mut() {
            return items
                .iter_mut()
                .all(|item| expand_at(state, item, rest, version));
        }
    }
    let Some(field) = value.get_mut(*first) else {
        return false;
    };
    if !rest.is_empty() {
        return expand_at(state, field, rest, version);
    }
    let Some(id) = field.as_str() else {
        // Null (nothing to expand) or already an object.
        return field.is_null() || field.is_object();
    };
    let expanded = match (*first, id) {
        ("customer", id) => state.customers.get(id).cloned(),
        ("subscription", id) => state
            .subscriptions
            .get(id)
            .map(|subscription| render_subscription(subscription, version)),
        ("latest_invoice", id) => state
            .invoices
            .get(id)
            .map(|invoice| render_invoice(invoice, version)),
        _ => return false,
    };
    match expanded {
        Some(object) => {
            *field = object;
            true
        }
        None => false,
    }
}

/// `line_items[<index>][<field>]` as `(index, field)`.
fn line_item_key(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("line_items[")?;
    let (index, rest) = rest.split_once("][")?;
    let field = rest.strip_suffix(']')?;
    Some((index.parse().ok()?, field))
}

/// `POST /v1/checkout/sessions` (§3).
fn checkout_create(
    state: &mut StripeState,
    params: &Params,
    _: &Context,
) -> Result<Value, Failure> {
    params.refuse_unknown_to(&CHECKOUT_CREATE)?;
    let mode = params.get("mode").ok_or_else(|| Failure::missing("mode"))?;
    let mut lines: BTreeMap<usize, (Option<&str>, Option<&str>)> = BTreeMap::new();
    for (name, value) in &params.0 {
        if let Some((index, field)) = line_item_key(name) {
            let line = lines.entry(index).or_default();
            match field {
                "price" => line.0 = Some(value),
                "quantity" => line.1 = Some(value),
                _ => {}
            }
        }
    }
    match mode {
        "subscription" => {}
        "payment" => {
            return Err(Failure::invalid(
                "mode",
                None,
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
            ))
        }
        "setup" => {
            return Err(Failure::invalid(
                "line_items",
                None,
                "You cannot pass `line_items` in `setup` mode.",
            ))
        }
        other => {
            return Err(Failure::invalid(
                "mode",
                None,
                &format!("Invalid mode: must be one of payment, setup, or subscription (got {other:?})"),
            ))
        }
    }
    if lines.is_empty() {
        return Err(Failure::missing("line_items"));
    }
    let mut line_items = Vec::new();
    let mut amount = 0;
    for (index, (price, quantity)) in &lines {
        let param = format!("line_items[{index}][price]");
        let price_id = price.ok_or_else(|| Failure::missing(&param))?;
        let price =
            FakePrice::find(price_id).ok_or_else(|| Failure::no_such(&param, "price", price_id))?;
        let quantity_param = format!("line_items[{index}][quantity]");
        let quantity = quantity.ok_or_else(|| {
            Failure::invalid(
                &quantity_param,
                Some("parameter_missing"),
                &format!("Quantity is required. Add `quantity` to `line_items[{index}]`"),
            )
        })?;
        let quantity = quantity
            .parse::<i64>()
            .ok()
            .filter(|quantity| *quantity >= 1)
            .ok_or_else(|| {
                Failure::invalid(
                    &quantity_param,
                    Some("parameter_invalid_integer"),
                    &format!("Invalid positive integer: {quantity}"),
                )
            })?;
        amount += price.unit_amount * quantity;
        line_items.push((price, quantity));
    }
    let success_url = params
        .get("success_url")
        .ok_or_else(|| Failure::missing("success_url"))?;
    check_url(params, "success_url")?;
    check_url(params, "cancel_url")?;
    let customer = params.get("customer");
    let customer_email = params.get("customer_email");
    if customer.is_some() && customer_email.is_some() {
        return Err(Failure::invalid(
            "customer_email",
            None,
            "You may only specify one of these parameters: customer, customer_email.",
        ));
    }
    if let Some(id) = customer {
        if !state.customers.contains_key(id) {
            return Err(Failure::no_such("customer", "customer", id));
        }
    }
    if let Some(email) = customer_email {
        let (local, domain) = email.split_once('@').unwrap_or(("", ""));
        if local.is_empty() || !domain.contains('.') {
            return Err(Failure::invalid(
                "customer_email",
                Some("email_invalid"),
                &format!("Invalid email address: {email}"),
            ));
        }
    }
    let id = random_id("cs_test_", 58);
    let created = now();
    let session = json!({
        "id": id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": automatic_tax(params)?,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "created": created,
        "currency": "usd",
        "customer": customer,
        "customer_email": customer_email,
        "expires_at": created + SESSION_LIFETIME_SECS,
        "livemode": false,
        "metadata": params.bracketed("metadata"),
        "mode": "subscription",
        "payment_status": "unpaid",
        "status": "open",
        "subscription": null,
        "success_url": success_url,
        "url": format!("{}/c/pay/{id}", state.base_url),
    });
    state.sessions.insert(
        id,
        FakeSession {
            json: session.clone(),
            line_items,
            subscription_metadata: params.bracketed("subscription_data[metadata]"),
        },
    );
    Ok(session)
}

/// A session's `automatic_tax` from `automatic_tax[enabled]` and `automatic_tax[liability]`.
/// The fake computes no tax: an enabled session reports `status: complete` and no amount.
fn automatic_tax(params: &Params) -> Result<Value, Failure> {
    let enabled = match params.get("automatic_tax[enabled]") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Failure::invalid(
                "automatic_tax[enabled]",
                Some("parameter_invalid_boolean"),
                &format!("Invalid boolean: {other}"),
            ))
        }
    };
    let liability = params.get("automatic_tax[liability][type]").map(
        |kind| json!({"type": kind, "account": params.get("automatic_tax[liability][account]")}),
    );
    Ok(json!({
        "enabled": enabled,
        "liability": if enabled { liability.unwrap_or_else(|| json!({"type": "self"})) } else { Value::Null },
        "provider": if enabled { json!("stripe") } else { Value::Null },
        "status": if enabled { json!("complete") } else { Value::Null },
    }))
}

/// `GET /v1/checkout/sessions/{id}`.
fn checkout_retrieve(
    state: &mut StripeState,
    params: &Params,
    context: &Context,
) -> Result<Value, Failure> {
    params.refuse_unknown_to(&RETRIEVE)?;
    let id = context.path_id.as_deref().unwrap_or("");
    state
        .sessions
        .get(id)
        .map(|session| session.json.clone())
        .ok_or_else(|| not_found("checkout.session", id))
}

/// `POST /v1/billing_portal/sessions` (§4, implication 7).
fn portal_create(state: &mut StripeState, params: &Params, _: &Context) -> Result<Value, Failure> {
    params.refuse_unknown_to(&PORTAL_CREATE)?;
    let customer = params
        .get("customer")
        .ok_or_else(|| Failure::missing("customer"))?;
    if !state.customers.contains_key(customer) {
        return Err(Failure::no_such("customer", "customer", customer));
    }
    check_url(params, "return_url")?;
    let id = random_id("bps_", 24);
    Ok(json!({
        "id": id,
        "object": "billing_portal.session",
        "configuration": params.get("configuration").unwrap_or("bpc_fakedefaultconfiguration"),
        "created": now(),
        "customer": customer,
        "flow": null,
        "livemode": false,
        "locale": params.get("locale"),
        "on_behalf_of": null,
        "return_url": params.get("return_url"),
        "url": format!("{}/p/session/{id}", state.base_url),
    }))
}

/// 404 for an unknown id in the path (implication 7).
fn not_found(what: &str, id: &str) -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        Some("id"),
        &format!("No such {what}: '{id}'"),
    )
}

/// `GET /v1/subscriptions/{id}`.
fn subscription_retrieve(
    state: &mut StripeState,
    params: &Params,
    context: &Context,
) -> Result<Value, Failure> {
    params.refuse_unknown_to(&RETRIEVE)?;
    let id = context.path_id.as_deref().unwrap_or("");
    state
        .subscriptions
        .get(id)
        .map(|subscription| render_subscription(subscription, &context.version))
        .ok_or_else(|| not_found("subscription", id))
}

/// `limit`: 1–100, 10 by default.
fn list_limit(params: &Params) -> Result<usize, Failure> {
    match params.get("limit") {
        None => Ok(10),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=100).contains(limit))
            .ok_or_else(|| {
                Failure::invalid(
                    "limit",
                    Some("parameter_invalid_integer"),
                    "This value must be greater than or equal to 1 and less than or equal to 100.",
                )
            }),
    }
}

/// Stripe's list envelope over `matching` (ids in list order, newest first, with their JSON):
/// `limit` items after `starting_after` or before `ending_before` (either one; cursors must
/// name an existing object, `exists`), and `has_more` when the list goes on in that
/// direction.
fn list_envelope(
    matching: Vec<(String, Value)>,
    params: &Params,
    url: &str,
    what: &str,
    exists: impl Fn(&str) -> bool,
) -> Result<Value, Failure> {
    let limit = list_limit(params)?;
    let after = params.get("starting_after");
    let before = params.get("ending_before");
    if after.is_some() && before.is_some() {
        return Err(Failure::invalid(
            "ending_before",
            None,
            "You may only specify one of these parameters: ending_before, starting_after.",
        ));
    }
    let position = |param: &str, cursor: &str| -> Result<Option<usize>, Failure> {
        if !exists(cursor) {
            return Err(Failure::no_such(param, what, cursor));
        }
        Ok(matching.iter().position(|(id, _)| id == cursor))
    };
    let (start, end, has_more) = if let Some(cursor) = before {
        let end = position("ending_before", cursor)?.unwrap_or(0);
        let start = end.saturating_sub(limit);
        (start, end, start > 0)
    } else {
        let start = match after {
            Some(cursor) => position("starting_after", cursor)?.map_or(matching.len(), |at| at + 1),
            None => 0,
        };
        let end = (start + limit).min(matching.len());
        (start, end, matching.len() > end)
    };
    let data: Vec<Value> = matching
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .map(|(_, json)| json)
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "has_more": has_more,
        "url": url,
    }))
}

/// `GET /v1/subscriptions`: newest first; `customer`, `price` and `status` filters
/// (without `status`, canceled subscriptions are left out; `all` includes them, `ended`
/// means canceled or `incomplete_expired`) and Stripe's paging ([`list_envelope`]).
fn subscription_list(
    state: &mut StripeState,
    params: &Params,
    context: &Context,
) -> Result<Value, Failure> {
    params.refuse_unknown_to(&SUBSCRIPTION_LIST)?;
    list_limit(params)?;
    let status = params.get("status");
    const STATUSES: [&str; 10] = [
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
        "all",
        "ended",
    ];
    if let Some(status) = status.filter(|status| !STATUSES.contains(status)) {
        return Err(Failure::invalid(
            "status",
            None,
            &format!(
                "Invalid status: must be one of {} (got {status:?})",
                STATUSES.join(", ")
            ),
        ));
    }
    let wanted = |subscription: &FakeSubscription| match status {
        None => subscription.status != "canceled",
        Some("all") => true,
        Some("ended") => matches!(subscription.status, "canceled" | "incomplete_expired"),
        Some(status) => subscription.status == status,
    };
    let mut matching: Vec<&FakeSubscription> = state
        .subscriptions
        .values()
        .filter(|subscription| {
            params
                .get("customer")
                .is_none_or(|c| subscription.customer == c)
        })
        .filter(|subscription| {
            params
                .get("price")
                .is_none_or(|price| subscription.items.iter().any(|item| item.price.id == price))
        })
        .filter(|subscription| wanted(subscription))
        .collect();
    matching.sort_by_key(|subscription| {
        std::cmp::Reverse((subscription.created, subscription.sequence))
    });
    let matching = matching
        .into_iter()
        .map(|subscription| {
            (
                subscription.id.clone(),
                render_subscription(subscription, &context.version),
            )
        })
        .collect();
    list_envelope(
        matching,
        params,
        "/v1/subscriptions",
        "subscription",
        |id| state.subscriptions.contains_key(id),
    )
}

/// An email as Stripe checks it: something before and after `@`, a dot in the domain.
fn check_email(params: &Params, param: &str) -> Result<(), Failure> {
    let Some(email) = params.get(param).filter(|email| !email.is_empty()) else {
        return Ok(());
    };
    let (local, domain) = email.split_once('@').unwrap_or(("", ""));
    if local.is_empty() || !domain.contains('.') || domain.contains('@') {
        return Err(Failure::invalid(
            param,
            Some("email_invalid"),
            &format!("Invalid email address: {email}"),
        ));
    }
    Ok(())
}

/// Applies the customer fields the fake keeps: `email`, `name`, `description`, `phone`
/// (an empty value unsets them), `preferred_locales` and `metadata` (merged; an empty
/// value removes the key).
fn apply_customer_fields(customer: &mut Value, params: &Params) {
    for field in ["email", "name", "description", "phone"] {
        if let Some(value) = params.get(field) {
            customer[field] = if value.is_empty() {
                Value::Null
            } else {
                value.into()
            };
        }
    }
    let locales: Vec<&str> = params
        .0
        .iter()
        .filter(|(name, _)| name.starts_with("preferred_locales["))
        .map(|(_, value)| value.as_str())
        .collect();
    if !locales.is_empty() {
        customer["preferred_locales"] = locales.into();
    }
    if !customer["metadata"].is_object() {
        customer["metadata"] = json!({});
    }
    for (key, value) in params.bracketed("metadata") {
        if let Some(metadata) = customer["metadata"].as_object_mut() {
            if value.is_empty() {
                metadata.remove(&key);
            } else {
                metadata.insert(key, value.into());
            }
        }
    }
}

/// `POST /v1/customers`.
fn customer_create(
    state: &mut StripeState,
    params: &Params,
    _: &Context,
) -> Result<Value, Failure> {
    params.refuse_unknown_to(&CUSTOMER_CREATE)?;
    check_email(params, "email")?;
    let id = insert_customer(state, "");
    let customer = state
        .customers
        .get_mut(&id)
        .ok_or_else(|| not_found("customer", &id))?;
    apply_customer_fields(customer, params);
    Ok(customer.clone())
}

/// `GET /v1/customers/{id}`.
fn customer_retrieve(
    state: &mut StripeState,
    params: &Params,
    context: &Context,
) -> Result<Value, Failure> {
    params.refuse_unknown_to(&RETRIEVE)?;
    let id = context.path_id.as_deref().unwrap_or("");
    state
        .customers
        .get(id)
        .cloned()
        .ok_or_else(|| not_found("customer", id))
}

/// `POST /v1/customers/{id}`: only the given fields change.
fn customer_update(
    state: &mut StripeState,
    params: &Params,
    context: &Context,
) -> Result<Value, Failure> {
    params.refuse_unknown_to(&CUSTOMER_UPDATE)?;
    check_email(params, "email")?;
    let id = context.path_id.as_deref().unwrap_or("");
    let customer = state
        .customers
        .get_mut(id)
        .ok_or_else(|| not_found("customer", id))?;
    apply_customer_fields(customer, params);
    Ok(customer.clone())
}

/// `created` or `created[gt|gte|lt|lte]` as a filter on Unix seconds.
fn created_filter(params: &Params) -> Result<impl Fn(i64) -> bool, Failure> {
    let mut bounds: Vec<(&str, i64)> = Vec::new();
    for (name, operator) in [
        ("created", "eq"),
        ("created[gt]", "gt"),
        ("created[gte]", "gte"),
        ("created[lt]", "lt"),
        ("created[lte]", "lte"),
    ] {
        if let Some(text) = params.get(name) {
            let at = text.parse::<i64>().map_err(|_| {
                Failure::invalid(
                    name,
                    Some("parameter_invalid_integer"),
                    &format!("Invalid integer: {text}"),
                )
            })?;
            bounds.push((operator, at));
        }
    }
    Ok(move |created: i64| {
        bounds.iter().all(|(operator, at)| match *operator {
            "gt" => created > *at,
            "gte" => created >= *at,
            "lt" => created < *at,
            "lte" => created <= *at,
            _ => created == *at,
        })
    })
}

/// `GET /v1/customers`: newest first, `email` (exact) and `created` filters, Stripe's paging.
fn customer_list(state: &mut StripeState, params: &Params, _: &Context) -> Result<Value, Failure> {
    params.refuse_unknown_to(&CUSTOMER_LIST)?;
    list_limit(params)?;
    let created = created_filter(params)?;
    let mut matching: Vec<&Value> = state
        .customers
        .values()
        .filter(|customer| {
            params
                .get("email")
                .is_none_or(|email| customer["email"].as_str() == Some(email))
        })
        .filter(|customer| created(customer["created"].as_i64().unwrap_or(0)))
        .collect();
    matching.sort_by_key(|customer| {
        let id = customer["id"].as_str().unwrap_or("");
        std::cmp::Reverse((
            customer["created"].as_i64().unwrap_or(0),
            state.customer_sequence.get(id).copied().unwrap_or(0),
        ))
    });
    let matching = matching
        .into_iter()
        .map(|customer| {
            (
                customer["id"].as_str().unwrap_or("").to_owned(),
                customer.clone(),
            )
        })
        .collect();
    list_envelope(matching, params, "/v1/customers", "customer", |id| {
        state.customers.contains_key(id)
    })
}

async fn create_checkout_session(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&state, "POST", &uri, &headers, &body, None, checkout_create)
}

async fn retrieve_checkout_session(
    State(state): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    serve(
        &state,
        "GET",
        &uri,
        &headers,
        &[],
        Some(id),
        checkout_retrieve,
    )
}

async fn create_portal_session(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&state, "POST", &uri, &headers, &body, None, portal_create)
}

async fn retrieve_subscription(
    State(state): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    serve(
        &state,
        "GET",
        &uri,
        &headers,
        &[],
        Some(id),
        subscription_retrieve,
    )
}

async fn list_subscriptions(State(state): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    serve(&state, "GET", &uri, &headers, &[], None, subscription_list)
}

async fn list_customers(State(state): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    serve(&state, "GET", &uri, &headers, &[], None, customer_list)
}

async fn create_customer_endpoint(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&state, "POST", &uri, &headers, &body, None, customer_create)
}

async fn retrieve_customer(
    State(state): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    serve(
        &state,
        "GET",
        &uri,
        &headers,
        &[],
        Some(id),
        customer_retrieve,
    )
}

async fn update_customer(
    State(state): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        &state,
        "POST",
        &uri,
        &headers,
        &body,
        Some(id),
        customer_update,
    )
}

/// The hosted Checkout page a session's `url` leads to.
async fn checkout_page(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&state).sessions.get(&id) {
        Some(session) => Html(format!(
            "<!doctype html><title>Fake Stripe Checkout</title><p>Checkout Session {id}: {}</p>",
            session.json["status"].as_str().unwrap_or("")
        ))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The customer portal page a portal session's `url` leads to.
async fn portal_page(Path(id): Path<String>) -> Response {
    Html(format!(
        "<!doctype html><title>Fake Stripe customer portal</title><p>Portal session {id}</p>"
    ))
    .into_response()
}

/// Stripe's answer for a path or method it does not serve.
async fn unknown_route(
    State(state): State<Shared>,
    method: axum::http::Method,
    uri: Uri,
) -> Response {
    let failure = Failure::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        None,
        &format!(
            "Unrecognized request URL ({method}: {}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            uri.path()
        ),
    );
    lock(&state).requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        stripe_version: None,
        idempotency_key: None,
        content_type: None,
        params: Vec::new(),
        status: failure.status.as_u16(),
    });
    answer(failure.status, &failure.body, &random_id("req_", 14))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw form POST, so tests can send what the real client never would.
    async fn post(
        fake: &FakeStripe,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", fake.base_url()))
            .bearer_auth(fake.secret_key())
            .form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.unwrap()).await
    }

    async fn get(fake: &FakeStripe, path_and_query: &str, version: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .get(format!("{}{path_and_query}", fake.base_url()))
            .bearer_auth(fake.secret_key());
        if let Some(version) = version {
            request = request.header("Stripe-Version", version);
        }
        let (status, _, body) = read(request.send().await.unwrap()).await;
        (status, body)
    }

    async fn read(response: reqwest::Response) -> (u16, HeaderMap, Value) {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap())
    }

    const CHECKOUT: [(&str, &str); 4] = [
        ("mode", "subscription"),
        ("line_items[0][price]", "price_starter"),
        ("line_items[0][quantity]", "1"),
        ("success_url", "https://app.example/ok"),
    ];

    /// A completed checkout's subscription id.
    async fn subscription(fake: &FakeStripe) -> String {
        let (_, _, session) = post(fake, "/v1/checkout/sessions", &CHECKOUT, &[]).await;
        let id = session["id"].as_str().unwrap();
        fake.complete_checkout(id).await;
        fake.checkout_session(id).unwrap()["subscription"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn signatures_match_an_independent_hmac() {
        // printf '%s' '1700000000.{"id":"evt_1","object":"event"}' \
        //   | openssl dgst -sha256 -hmac 'whsec_test'
        let payload = br#"{"id":"evt_1","object":"event"}"#;
        assert_eq!(
            sign("whsec_test", 1_700_000_000, payload),
            "4c15fb2a43f93ef61eaa3e0893866d57cad9cad4223242cfb96f362480cb4021"
        );
        assert_eq!(
            signature_header(&["a", "b"], 5, b"x"),
            format!("t=5,v1={},v1={}", sign("a", 5, b"x"), sign("b", 5, b"x"))
        );
    }

    #[tokio::test]
    async fn bearer_and_basic_keys_are_accepted_and_others_refused() {
        let fake = FakeStripe::start().await;
        let url = format!("{}/v1/subscriptions", fake.base_url());
        let http = reqwest::Client::new();
        let basic = http
            .get(&url)
            .basic_auth(fake.secret_key(), None::<&str>)
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), 200);
        let (status, headers, body) = read(http.get(&url).send().await.unwrap()).await;
        assert_eq!(status, 401);
        assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key."));
        let (status, _, body) = read(
            http.get(&url)
                .bearer_auth("sk_test_somebodyelse1234")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 401);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.ends_with("1234") && !message.contains("somebodyelse"));
    }

    #[tokio::test]
    async fn bodies_must_be_forms_of_known_parameters() {
        let fake = FakeStripe::start().await;
        let json_body = reqwest::Client::new()
            .post(format!("{}/v1/checkout/sessions", fake.base_url()))
            .bearer_auth(fake.secret_key())
            .json(&json!({"mode": "subscription"}))
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(json_body).await;
        assert_eq!(status, 400);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/x-www-form-urlencoded"));
        let mut form = CHECKOUT.to_vec();
        form.push(("line_items[0][prices]", "price_pro"));
        let (status, _, body) = post(&fake, "/v1/checkout/sessions", &form, &[]).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "parameter_unknown");
        assert_eq!(body["error"]["param"], "line_items[0][prices]");
    }

    #[tokio::test]
    async fn checkout_parameters_are_validated_as_stripe_does() {
        let fake = FakeStripe::start().await;
        let without = |name: &str| -> Vec<(&str, &str)> {
            CHECKOUT
                .iter()
                .copied()
                .filter(|(key, _)| *key != name)
                .collect()
        };
        type Form<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(Form, &str, Option<&str>)> = vec![
            (without("mode"), "mode", Some("parameter_missing")),
            (
                without("success_url"),
                "success_url",
                Some("parameter_missing"),
            ),
            (
                without("line_items[0][quantity]"),
                "line_items[0][quantity]",
                Some("parameter_missing"),
            ),
            (
                without("line_items[0][price]")
                    .into_iter()
                    .filter(|(key, _)| !key.starts_with("line_items"))
                    .collect(),
                "line_items",
                Some("parameter_missing"),
            ),
        ];
        for (form, param, code) in cases {
            let (status, _, body) = post(&fake, "/v1/checkout/sessions", &form, &[]).await;
            assert_eq!(status, 400, "{param}");
            assert_eq!(body["error"]["param"], param);
            assert_eq!(body["error"]["code"].as_str(), code, "{param}");
        }
        let mut payment = without("mode");
        payment.push(("mode", "payment"));
        let (status, _, body) = post(&fake, "/v1/checkout/sessions", &payment, &[]).await;
        assert_eq!(
            (status, body["error"]["param"].as_str()),
            (400, Some("mode"))
        );
        let customer = fake.create_customer("a@b.example");
        let mut both = CHECKOUT.to_vec();
        both.push(("customer", &customer));
        both.push(("customer_email", "a@b.example"));
        let (status, _, body) = post(&fake, "/v1/checkout/sessions", &both, &[]).await;
        assert_eq!(
            (status, body["error"]["param"].as_str()),
            (400, Some("customer_email"))
        );
        assert!(
            fake.lock().sessions.is_empty(),
            "no refused request made a session"
        );
    }

    #[tokio::test]
    async fn idempotency_keys_are_bound_to_their_endpoint_and_length() {
        let fake = FakeStripe::start().await;
        let customer = fake.create_customer("a@b.example");
        let key = [("Idempotency-Key", "shared-key")];
        let (status, _, _) = post(&fake, "/v1/checkout/sessions", &CHECKOUT, &key).await;
        assert_eq!(status, 200);
        let portal = [("customer", customer.as_str())];
        let (status, _, body) = post(&fake, "/v1/billing_portal/sessions", &portal, &key).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["type"], "idempotency_error");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("same endpoint"));
        let long = "k".repeat(256);
        let (status, _, body) = post(
            &fake,
            "/v1/billing_portal/sessions",
            &portal,
            &[("Idempotency-Key", &long)],
        )
        .await;
        assert_eq!(status, 400);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("255 characters"));
    }

    #[tokio::test]
    async fn answers_render_in_the_requested_version_or_the_accounts_default() {
        let fake = FakeStripe::start().await;
        let id = subscription(&fake).await;
        let path = format!("/v1/subscriptions/{id}");
        let (_, pinned) = get(&fake, &path, Some(API_VERSION)).await;
        assert!(pinned.get("current_period_end").is_none());
        assert!(pinned["items"]["data"][0]["current_period_end"].is_i64());
        let (_, default) = get(&fake, &path, None).await;
        assert!(default["current_period_end"].is_i64());
        assert!(default["items"]["data"][0]
            .get("current_period_end")
            .is_none());
        assert_eq!(
            pinned["items"]["data"][0]["current_period_end"],
            default["current_period_end"]
        );
        let (status, body) = get(&fake, &path, Some("yesterday")).await;
        assert_eq!(status, 400);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid Stripe API version"));
        let (status, body) = get(&fake, "/v1/subscriptionz", None).await;
        assert_eq!(status, 404);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized request URL (GET: /v1/subscriptionz)"));
    }

    #[tokio::test]
    async fn lists_leave_canceled_subscriptions_out_unless_asked_and_page() {
        let fake = FakeStripe::start().await;
        let first = subscription(&fake).await;
        let second = subscription(&fake).await;
        fake.delete_subscription(&first).await;
        let ids = |list: &Value| -> Vec<String> {
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let (_, default) = get(&fake, "/v1/subscriptions", None).await;
        assert_eq!(ids(&default), std::slice::from_ref(&second));
        let (_, all) = get(&fake, "/v1/subscriptions?status=all&limit=1", None).await;
        assert_eq!(
            (ids(&all), all["has_more"].as_bool()),
            (vec![second.clone()], Some(true))
        );
        let (_, rest) = get(
            &fake,
            &format!("/v1/subscriptions?status=all&limit=1&starting_after={second}"),
            None,
        )
        .await;
        assert_eq!(
            (ids(&rest), rest["has_more"].as_bool()),
            (vec![first], Some(false))
        );
        let (status, body) = get(&fake, "/v1/subscriptions?limit=101", None).await;
        assert_eq!(
            (status, body["error"]["param"].as_str()),
            (400, Some("limit"))
        );
    }

    #[tokio::test]
    async fn events_are_snapshots_in_the_endpoints_version() {
        let fake = FakeStripe::start().await;
        subscription(&fake).await;
        let unsent = fake.events();
        assert_eq!(unsent.len(), 3);
        assert!(fake.deliveries().is_empty(), "no endpoint, no deliveries");
        assert_eq!(unsent[0]["api_version"], ACCOUNT_DEFAULT_API_VERSION);
        assert_eq!(unsent[0]["pending_webhooks"], 0);
        assert_eq!(unsent[0]["data"]["object"]["status"], "complete");
        assert!(
            unsent[2]["data"]["object"]["subscription"].is_string(),
            "a pre-basil invoice names its subscription at the top"
        );

        fake.set_webhook_endpoint("http://127.0.0.1:9/unreachable", "whsec_x");
        let id = subscription(&fake).await;
        let deliveries = fake.update_subscription(&id, "price_pro").await;
        assert_eq!(deliveries[0].status, None, "the endpoint cannot be reached");
        let events = fake.events();
        let updated = events.last().unwrap();
        assert_eq!(updated["object"], "event");
        assert_eq!(updated["api_version"], API_VERSION);
        assert_eq!(updated["pending_webhooks"], 1);
        assert_eq!(updated["livemode"], false);
        assert_eq!(
            updated["request"],
            json!({"id": null, "idempotency_key": null})
        );
        assert_eq!(
            updated["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"],
            "price_starter"
        );
        let invoice = &events[events.len() - 2]["data"]["object"];
        assert_eq!(
            invoice["parent"]["subscription_details"]["subscription"],
            id.as_str()
        );
        let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert!(ids
            .iter()
            .all(|id| id.starts_with("evt_") && id.len() == 28));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "unique ids");
        let body = fake.event_body(ids[0]).unwrap();
        assert!(body.starts_with(b"{\n  \""), "pretty JSON, as Stripe sends");
    }

    #[tokio::test]
    async fn parameters_stripe_defines_are_accepted_and_others_refused_with_a_doc_url() {
        let fake = FakeStripe::start().await;
        let mut form = CHECKOUT.to_vec();
        form.extend([
            ("automatic_tax[enabled]", "true"),
            ("allow_promotion_codes", "true"),
            ("subscription_data[trial_period_days]", "14"),
            ("expand[0]", "subscription"),
        ]);
        let (status, _, session) = post(&fake, "/v1/checkout/sessions", &form, &[]).await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(session["automatic_tax"]["enabled"], true);
        form.extend([("automatic_tax[enable]", "true"), ("colour", "red")]);
        let (status, _, body) = post(&fake, "/v1/checkout/sessions", &form, &[]).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "parameter_unknown");
        assert_eq!(body["error"]["param"], "automatic_tax[enable]");
        assert_eq!(
            body["error"]["message"],
            "Received unknown parameters: automatic_tax[enable], colour"
        );
        assert_eq!(
            body["error"]["doc_url"],
            "https://stripe.com/docs/error-codes/parameter-unknown"
        );
        let (status, body) = get(&fake, "/v1/subscriptions/sub_nope", None).await;
        assert_eq!(status, 404);
        assert_eq!(
            body["error"]["doc_url"],
            "https://stripe.com/docs/error-codes/resource-missing"
        );
    }

    #[tokio::test]
    async fn customers_are_created_retrieved_updated_and_listed() {
        let fake = FakeStripe::start().await;
        let (status, _, created) = post(
            &fake,
            "/v1/customers",
            &[
                ("email", "ada@shop.example"),
                ("name", "Ada"),
                ("metadata[account]", "42"),
                ("address[country]", "FR"),
            ],
            &[],
        )
        .await;
        assert_eq!(status, 200, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("cus_"));
        assert_eq!(created["object"], "customer");
        assert_eq!(created["metadata"]["account"], "42");
        let (status, _, updated) = post(
            &fake,
            &format!("/v1/customers/{id}"),
            &[
                ("name", "Ada L."),
                ("metadata[account]", ""),
                ("metadata[plan]", "pro"),
            ],
            &[],
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(updated["name"], "Ada L.");
        assert_eq!(updated["email"], "ada@shop.example");
        assert_eq!(updated["metadata"], json!({"plan": "pro"}));
        let (status, fetched) = get(&fake, &format!("/v1/customers/{id}"), None).await;
        assert_eq!((status, fetched), (200, updated));
        let (status, _, refused) =
            post(&fake, "/v1/customers", &[("email", "not-an-email")], &[]).await;
        assert_eq!(status, 400);
        assert_eq!(refused["error"]["code"], "email_invalid");
        let (status, missing) = get(&fake, "/v1/customers/cus_nope", None).await;
        assert_eq!(status, 404);
        assert_eq!(missing["error"]["code"], "resource_missing");

        let more: Vec<String> = (0..3)
            .map(|n| fake.create_customer(&format!("c{n}@shop.example")))
            .collect();
        let (_, first) = get(&fake, "/v1/customers?limit=2", None).await;
        let ids = |page: &Value| -> Vec<String> {
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(ids(&first), [more[2].clone(), more[1].clone()]);
        assert_eq!(first["has_more"], true);
        assert_eq!(first["url"], "/v1/customers");
        let (_, second) = get(
            &fake,
            &format!("/v1/customers?limit=2&starting_after={}", more[1]),
            None,
        )
        .await;
        assert_eq!(ids(&second), [more[0].clone(), id.clone()]);
        assert_eq!(second["has_more"], false);
        let (_, back) = get(
            &fake,
            &format!("/v1/customers?limit=1&ending_before={}", more[0]),
            None,
        )
        .await;
        assert_eq!(ids(&back), [more[1].clone()]);
        assert_eq!(back["has_more"], true);
        let (_, by_email) = get(&fake, "/v1/customers?email=ada%40shop.example", None).await;
        assert_eq!(ids(&by_email), [id]);
    }

    #[tokio::test]
    async fn expand_replaces_ids_with_their_objects() {
        let fake = FakeStripe::start().await;
        let customer = fake.create_customer("exp@shop.example");
        let mut form = CHECKOUT.to_vec();
        form.extend([("customer", customer.as_str()), ("expand[0]", "customer")]);
        let (status, _, session) = post(&fake, "/v1/checkout/sessions", &form, &[]).await;
        assert_eq!(status, 200, "{session}");
        assert_eq!(session["customer"]["id"], customer.as_str());
        assert_eq!(session["customer"]["email"], "exp@shop.example");
        let id = session["id"].as_str().unwrap().to_owned();
        fake.complete_checkout(&id).await;
        let (_, completed) = get(
            &fake,
            &format!("/v1/checkout/sessions/{id}?expand[0]=subscription&expand[1]=customer"),
            None,
        )
        .await;
        assert_eq!(completed["subscription"]["object"], "subscription");
        assert_eq!(completed["customer"]["object"], "customer");
        let (_, listed) = get(
            &fake,
            "/v1/subscriptions?expand[0]=data.customer&expand[1]=data.latest_invoice",
            Some(API_VERSION),
        )
        .await;
        assert_eq!(listed["data"][0]["customer"]["id"], customer.as_str());
        assert_eq!(listed["data"][0]["latest_invoice"]["object"], "invoice");
        let (status, refused) = get(
            &fake,
            &format!("/v1/customers/{customer}?expand[0]=email"),
            None,
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            refused["error"]["message"],
            "This property cannot be expanded (email)."
        );
    }
}
