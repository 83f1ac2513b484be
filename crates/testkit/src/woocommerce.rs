//! A fake WooCommerce store that follows the REST API v3 as documented at
//! <https://woocommerce.github.io/woocommerce-rest-api-docs/> (sections: docs/protocols.md,
//! WooCommerce): the same paths under `/wp-json/wc/v3`, served over plain HTTP where, as in
//! WooCommerce, only OAuth 1.0a authenticates (Basic auth and query-string keys count only
//! over HTTPS; §B.5 and [`oauth`]), 10 products per
//! page by default and `per_page` limited to 1–100 with WooCommerce's `rest_invalid_param`
//! body (§B.3), `X-WP-Total` / `X-WP-TotalPages` and an absolute `Link` header keeping the
//! query, an empty array past the last page, `modified_after` compared in GMT only
//! with `dates_are_gmt=true` (site-local otherwise, with a configurable site offset), money
//! as strings, dates without offset, and the exact error bodies of §B.8. Switches inject
//! 429 with `Retry-After`, 500s, slow answers and dropped connections.
//!
//! Writes: `PUT`/`PATCH /products/{id}` merge the given fields (`meta_data` by key) and bump
//! `date_modified`; `POST /products/batch` with WooCommerce's 100-item limit over
//! create+update+delete together (413 past it) and per-item errors inside a 200 (§B.4).
//! Categories (`/products/categories`, with parent ids), webhooks (§B.7: the unsigned
//! form-encoded creation ping, signed deliveries with the seven `X-WC-Webhook-*` headers,
//! disabling after repeated failures) and the `/wc-auth/v1/authorize` key-generation flow
//! (§B.6), whose approval the test decides. Keys made by that flow authenticate afterwards,
//! with their read/write permission enforced.

// Request guards here fail with the finished WooCommerce error response, as handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use domain::{Availability, SourceProduct};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

mod oauth;

/// The `User-Agent` WooCommerce sends webhooks with (§B.7).
pub const HOOKSHOT_USER_AGENT: &str = "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)";

/// A failure the next request will meet.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// 429 with `Retry-After: secs`.
    RateLimited { retry_after_secs: u64 },
    /// 500 with WooCommerce's empty-ish error body.
    ServerError,
    /// Answers normally after this delay.
    Slow(Duration),
    /// Closes the connection without answering.
    DropConnection,
}

/// The SEO plugin whose post meta a seeded product carries. WooCommerce has no SEO fields of
/// its own; each plugin keeps the title and meta description in its own meta keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeoPlugin {
    Yoast,
    RankMath,
    AllInOneSeo,
    SeoPress,
}

impl SeoPlugin {
    /// `(title key, description key)`.
    pub fn keys(self) -> (&'static str, &'static str) {
        match self {
            SeoPlugin::Yoast => ("_yoast_wpseo_title", "_yoast_wpseo_metadesc"),
            SeoPlugin::RankMath => ("rank_math_title", "rank_math_description"),
            SeoPlugin::AllInOneSeo => ("_aioseo_title", "_aioseo_description"),
            SeoPlugin::SeoPress => ("_seopress_titles_title", "_seopress_titles_desc"),
        }
    }
}

/// What the merchant answers on the fake's grant screen (§B.6), decided by the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    Approve,
    Deny,
}

/// A webhook as the store keeps it (the secret stays inside the fake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookInfo {
    pub id: i64,
    pub topic: String,
    pub delivery_url: String,
    pub status: String,
    pub failures: u32,
}

/// One delivery attempt of a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub webhook_id: i64,
    pub topic: String,
    /// The receiver's status, `None` when it could not be reached.
    pub status: Option<u16>,
    pub success: bool,
}

/// An API key the store accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeApiKey {
    pub key_id: i64,
    pub consumer_key: String,
    pub consumer_secret: String,
    /// `read`, `write` or `read_write`.
    pub permissions: String,
    pub description: String,
}

struct FakeProduct {
    json: Value,
    modified: DateTime<Utc>,
    variations: Vec<Value>,
}

struct FakeWebhook {
    id: i64,
    name: String,
    status: String,
    topic: String,
    delivery_url: String,
    secret: String,
    failures: u32,
    created: DateTime<Utc>,
}

struct FakeCategory {
    id: i64,
    name: String,
    slug: String,
    parent: i64,
}

struct WooState {
    base_url: String,
    products: BTreeMap<i64, FakeProduct>,
    categories: BTreeMap<i64, FakeCategory>,
    keys: Vec<FakeApiKey>,
    webhooks: BTreeMap<i64, FakeWebhook>,
    /// Used OAuth nonces per consumer key, by timestamp (WooCommerce's `nonces` column).
    nonces: BTreeMap<String, BTreeMap<i64, String>>,
    site_offset_hours: i64,
    faults: VecDeque<Fault>,
    requests: u64,
    /// `METHOD /path` of every request, for tests that count calls to one endpoint.
    log: Vec<String>,
    next_id: i64,
    batch_limit: usize,
    webhook_failure_threshold: u32,
    allow_insecure_callback: bool,
    auth_decision: AuthDecision,
    deliveries: Vec<Delivery>,
    outgoing: reqwest::Client,
}

type Shared = Arc<Mutex<WooState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, WooState> {
    state.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A running fake store; dropped, it stops.
pub struct FakeWooCommerce {
    pub base_url: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWooCommerce {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeWooCommerce {
    /// Starts an empty store on a random loopback port.
    pub async fn start() -> Self {
        let consumer_key = "ck_4f1c2b8e9d0a7f6e5d4c3b2a1f0e9d8c7b6a5f4e".to_owned();
        let consumer_secret = "cs_9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b".to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let base_url = format!("http://{address}");
        // WooCommerce posts with `redirection 0` (§B.7); 60 s there, shorter here.
        let outgoing = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let state = Arc::new(Mutex::new(WooState {
            base_url: base_url.clone(),
            products: BTreeMap::new(),
            categories: BTreeMap::new(),
            keys: vec![FakeApiKey {
                key_id: 1,
                consumer_key: consumer_key.clone(),
                consumer_secret: consumer_secret.clone(),
                permissions: "read_write".into(),
                description: "Seeded - API".into(),
            }],
            webhooks: BTreeMap::new(),
            nonces: BTreeMap::new(),
            site_offset_hours: -3,
            faults: VecDeque::new(),
            requests: 0,
            log: Vec::new(),
            next_id: 1,
            batch_limit: 100,
            webhook_failure_threshold: 5,
            allow_insecure_callback: false,
            auth_decision: AuthDecision::Approve,
            deliveries: Vec::new(),
            outgoing,
        }));
        let api = "/wp-json/wc/v3";
        let app = Router::new()
            .route(
                &format!("{api}/products"),
                get(list_products).fallback(no_route),
            )
            .route(
                &format!("{api}/products/batch"),
                post(batch_products).put(batch_products).fallback(no_route),
            )
            .route(
                &format!("{api}/products/categories"),
                get(list_categories).fallback(no_route),
            )
            .route(
                &format!("{api}/products/{{id}}"),
                get(get_product)
                    .put(update_product)
                    .patch(update_product)
                    .fallback(no_route),
            )
            .route(
                &format!("{api}/products/{{id}}/variations"),
                get(list_variations).fallback(no_route),
            )
            .route(
                &format!("{api}/webhooks"),
                get(list_webhooks).post(create_webhook).fallback(no_route),
            )
            .route(
                &format!("{api}/webhooks/{{id}}"),
                get(get_webhook).delete(delete_webhook).fallback(no_route),
            )
            .route("/wc-auth/v1/authorize", get(authorize))
            .fallback(no_route)
            .layer(axum::middleware::from_fn_with_state(state.clone(), record))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        FakeWooCommerce {
            base_url,
            consumer_key,
            consumer_secret,
            state,
            server,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WooState> {
        lock(&self.state)
    }

    /// Adds products (ids from `external_id` when numeric, else sequential), modified at
    /// `modified`. Categories given as `Parent > Child` paths become category terms with
    /// parents; the product is filed under the last one. `seo_title`/`seo_description` are
    /// written as Yoast meta (see [`FakeWooCommerce::seed_with_seo`]).
    pub fn seed(&self, products: &[SourceProduct], modified: DateTime<Utc>) {
        self.seed_with_seo(products, modified, Some(SeoPlugin::Yoast));
    }

    /// As [`FakeWooCommerce::seed`], with the products' SEO title and description in the meta
    /// keys of `plugin` (`None`: as on a store without an SEO plugin, they are dropped).
    pub fn seed_with_seo(
        &self,
        products: &[SourceProduct],
        modified: DateTime<Utc>,
        plugin: Option<SeoPlugin>,
    ) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut next_id = state.products.keys().max().copied().unwrap_or(0).max(1000) + 1;
        let mut next_variation = 100_000 + next_id;
        for product in products {
            let id = product.external_id.parse().unwrap_or_else(|_| {
                next_id += 1;
                next_id
            });
            let variations = product
                .variants
                .iter()
                .map(|variant| {
                    next_variation += 1;
                    variation_json(variant, next_variation, modified)
                })
                .collect::<Vec<_>>();
            let ids: Vec<i64> = variations.iter().filter_map(|v| v["id"].as_i64()).collect();
            let mut json = product_json(product, id, &ids, modified, state.site_offset_hours);
            json["categories"] = product
                .categories
                .iter()
                .map(|path| {
                    let leaf = category_for_path(state, path);
                    category_ref(&state.categories[&leaf])
                })
                .collect::<Vec<_>>()
                .into();
            let mut meta = Vec::new();
            if let Some(brand) = &product.brand {
                meta.push(json!({"key": "brand", "value": brand}));
            }
            if let Some(plugin) = plugin {
                let (title_key, description_key) = plugin.keys();
                if let Some(title) = &product.seo_title {
                    meta.push(json!({"key": title_key, "value": title}));
                }
                if let Some(description) = &product.seo_description {
                    meta.push(json!({"key": description_key, "value": description}));
                }
            }
            json["meta_data"] = meta
                .into_iter()
                .map(|mut entry| {
                    entry["id"] = next_serial(&mut state.next_id).into();
                    entry
                })
                .collect::<Vec<_>>()
                .into();
            state.products.insert(
                id,
                FakeProduct {
                    json,
                    modified,
                    variations,
                },
            );
        }
    }

    /// Changes a product's name as a merchant would in wp-admin, bumping its modified date.
    pub fn rename(&self, id: i64, name: &str, modified: DateTime<Utc>) {
        let mut state = self.lock();
        let offset = state.site_offset_hours;
        if let Some(product) = state.products.get_mut(&id) {
            product.json["name"] = name.into();
            set_dates(&mut product.json, "date_modified", modified, offset);
            product.modified = modified;
        }
    }

    pub fn delete(&self, id: i64) {
        self.lock().products.remove(&id);
    }

    /// Sets (or adds) one meta entry of a product, without touching its modified date.
    pub fn set_meta(&self, id: i64, key: &str, value: Value) {
        let mut guard = self.lock();
        let state = &mut *guard;
        if let Some(product) = state.products.get_mut(&id) {
            merge_meta(
                &mut product.json,
                &json!([{"key": key, "value": value}]),
                &mut state.next_id,
            );
        }
    }

    /// The product's JSON as `GET /products/{id}` would answer it.
    pub fn product(&self, id: i64) -> Option<Value> {
        self.lock().products.get(&id).map(|p| p.json.clone())
    }

    /// The value of a product's meta entry.
    pub fn meta(&self, id: i64, key: &str) -> Option<Value> {
        let state = self.lock();
        let product = state.products.get(&id)?;
        product.json["meta_data"]
            .as_array()?
            .iter()
            .find(|entry| entry["key"] == key)
            .map(|entry| entry["value"].clone())
    }

    /// Changes a product as a merchant would in wp-admin (fields merged as in `PUT`), then
    /// delivers `product.updated` to the store's active webhooks for that topic.
    pub async fn update_product_as_merchant(&self, id: i64, changes: Value) -> Vec<Delivery> {
        let payload = {
            let mut guard = self.lock();
            let state = &mut *guard;
            match apply_changes(state, id, &changes) {
                Ok(json) => json,
                Err(error) => panic!("the fake store cannot update {id}: {}", error.message),
            }
        };
        deliver(&self.state, "product.updated", &payload).await
    }

    /// Deletes a product as a merchant would, then delivers `product.deleted` (`{"id": N}`).
    pub async fn delete_product_as_merchant(&self, id: i64) -> Vec<Delivery> {
        self.lock().products.remove(&id);
        deliver(&self.state, "product.deleted", &json!({"id": id})).await
    }

    /// The secrets the store signs its webhook deliveries with (for tests that check a
    /// secret never shows where it should not).
    pub fn webhook_secrets(&self) -> Vec<String> {
        self.lock()
            .webhooks
            .values()
            .map(|hook| hook.secret.clone())
            .collect()
    }

    /// Every webhook the store has, in id order.
    pub fn webhooks(&self) -> Vec<WebhookInfo> {
        self.lock()
            .webhooks
            .values()
            .map(|hook| WebhookInfo {
                id: hook.id,
                topic: hook.topic.clone(),
                delivery_url: hook.delivery_url.clone(),
                status: hook.status.clone(),
                failures: hook.failures,
            })
            .collect()
    }

    /// Every delivery attempted so far (pings excluded).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// WooCommerce's `woocommerce_max_webhook_delivery_failures` (default 5).
    pub fn set_webhook_failure_threshold(&self, failures: u32) {
        self.lock().webhook_failure_threshold = failures;
    }

    /// The `woocommerce_rest_batch_items_limit` filter (default 100).
    pub fn set_batch_limit(&self, items: usize) {
        self.lock().batch_limit = items;
    }

    /// Accept `http://` callback URLs in the key-generation flow (loopback tests). Off by
    /// default, as in WooCommerce.
    pub fn set_allow_insecure_callback(&self, allow: bool) {
        self.lock().allow_insecure_callback = allow;
    }

    /// What the merchant answers on the next grant screens.
    pub fn set_auth_decision(&self, decision: AuthDecision) {
        self.lock().auth_decision = decision;
    }

    /// The API keys the store accepts now.
    pub fn api_keys(&self) -> Vec<FakeApiKey> {
        self.lock().keys.clone()
    }

    /// Adds an API key with the given permission (`read`, `write`, `read_write`).
    pub fn add_api_key(&self, consumer_key: &str, consumer_secret: &str, permissions: &str) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let key_id = state.keys.iter().map(|k| k.key_id).max().unwrap_or(0) + 1;
        state.keys.push(FakeApiKey {
            key_id,
            consumer_key: consumer_key.into(),
            consumer_secret: consumer_secret.into(),
            permissions: permissions.into(),
            description: "Added by the test - API".into(),
        });
    }

    /// Revokes a key as a merchant would in WooCommerce → Settings → Advanced → REST API:
    /// calls with it are then refused like calls with an unknown key.
    pub fn revoke_api_key(&self, consumer_key: &str) {
        self.lock()
            .keys
            .retain(|key| key.consumer_key != consumer_key);
    }

    /// Adds a category under `parent` (0: top level) and returns its id.
    pub fn add_category(&self, name: &str, parent: i64) -> i64 {
        let mut guard = self.lock();
        let state = &mut *guard;
        insert_category(state, name, parent)
    }

    /// Queues failures for the next requests, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.lock().faults.extend(faults.iter().copied());
    }

    /// Requests answered so far (including injected failures).
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// How many requests had this method and path (`"POST"`, `"/wp-json/wc/v3/products/batch"`).
    pub fn requests_to(&self, method: &str, path: &str) -> usize {
        let wanted = format!("{method} {path}");
        self.lock()
            .log
            .iter()
            .filter(|line| **line == wanted)
            .count()
    }

    pub fn product_ids(&self) -> Vec<i64> {
        self.lock().products.keys().copied().collect()
    }
}

fn next_serial(counter: &mut i64) -> i64 {
    *counter += 1;
    *counter
}

fn slug(name: &str) -> String {
    name.trim().to_lowercase().replace(' ', "-")
}

fn insert_category(state: &mut WooState, name: &str, parent: i64) -> i64 {
    let id = 9000 + next_serial(&mut state.next_id);
    state.categories.insert(
        id,
        FakeCategory {
            id,
            name: name.trim().to_owned(),
            slug: slug(name),
            parent,
        },
    );
    id
}

/// The category term for a `Parent > Child` path, created (with its parents) when new.
fn category_for_path(state: &mut WooState, path: &str) -> i64 {
    let mut parent = 0;
    for name in path.split('>').map(str::trim).filter(|n| !n.is_empty()) {
        let existing = state
            .categories
            .values()
            .find(|c| c.parent == parent && c.name == name)
            .map(|c| c.id);
        parent = match existing {
            Some(id) => id,
            None => insert_category(state, name, parent),
        };
    }
    parent
}

fn category_ref(category: &FakeCategory) -> Value {
    json!({"id": category.id, "name": category.name, "slug": category.slug})
}

/// Records `METHOD /path` for [`FakeWooCommerce::requests_to`].
async fn record(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let line = format!("{} {}", request.method(), request.uri().path());
    lock(&state).log.push(line);
    next.run(request).await
}

fn money(value: Option<domain::Money>) -> String {
    value
        .map(|m| {
            let text = m.to_decimal();
            text.strip_suffix(".00").map(str::to_owned).unwrap_or(text)
        })
        .unwrap_or_default()
}

fn stock_status(availability: Availability) -> &'static str {
    match availability {
        Availability::InStock => "instock",
        Availability::OutOfStock => "outofstock",
        Availability::Preorder => "onbackorder",
    }
}

/// WooCommerce dates: `YYYY-MM-DDTHH:MM:SS`, no offset, site-local and `_gmt` variants.
fn set_dates(json: &mut Value, field: &str, at: DateTime<Utc>, site_offset_hours: i64) {
    let local = at + chrono::Duration::hours(site_offset_hours);
    json[field] = local.format("%Y-%m-%dT%H:%M:%S").to_string().into();
    json[format!("{field}_gmt")] = at.format("%Y-%m-%dT%H:%M:%S").to_string().into();
}

fn product_json(
    product: &SourceProduct,
    id: i64,
    variations: &[i64],
    modified: DateTime<Utc>,
    offset: i64,
) -> Value {
    let terms = |names: &[String]| -> Vec<Value> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| json!({"id": 10 + i, "name": name.rsplit('>').next().unwrap_or(name).trim(), "slug": name.to_lowercase().replace(' ', "-")}))
            .collect()
    };
    let mut json = json!({
        "id": id,
        "name": product.title,
        "slug": product.title.to_lowercase().replace(' ', "-"),
        "permalink": format!("https://shop.example/product/{id}/"),
        "type": if product.variants.is_empty() { "simple" } else { "variable" },
        "status": if product.published { "publish" } else { "draft" },
        "featured": false,
        "catalog_visibility": "visible",
        "description": product.description_html,
        "short_description": product.short_description,
        "sku": product.sku.clone().unwrap_or_default(),
        "price": money(product.sale_price.or(product.price)),
        "regular_price": money(product.price),
        "sale_price": money(product.sale_price),
        "on_sale": product.sale_price.is_some(),
        "manage_stock": product.stock.is_some(),
        "stock_quantity": product.stock,
        "stock_status": stock_status(product.availability),
        "categories": terms(&product.categories),
        "tags": terms(&product.tags),
        "images": product.images.iter().enumerate().map(|(i, image)| json!({"id": 500 + i, "src": image.url, "name": "", "alt": image.alt.clone().unwrap_or_default()})).collect::<Vec<_>>(),
        "attributes": product.attributes.iter().enumerate().map(|(i, a)| json!({"id": 0, "name": a.name, "position": i, "visible": true, "variation": !product.variants.is_empty(), "options": a.values})).collect::<Vec<_>>(),
        "variations": variations,
        "global_unique_id": product.gtin.clone().unwrap_or_default(),
        "meta_data": product.brand.iter().map(|brand| json!({"id": 1, "key": "brand", "value": brand})).collect::<Vec<_>>(),
        "external_url": "",
    });
    set_dates(&mut json, "date_created", modified, offset);
    set_dates(&mut json, "date_modified", modified, offset);
    json
}

fn variation_json(variant: &domain::Variant, id: i64, modified: DateTime<Utc>) -> Value {
    let mut json = json!({
        "id": id,
        "sku": variant.sku.clone().unwrap_or_default(),
        "price": money(variant.sale_price.or(variant.price)),
        "regular_price": money(variant.price),
        "sale_price": money(variant.sale_price),
        "manage_stock": variant.stock.is_some(),
        "stock_quantity": variant.stock,
        "stock_status": stock_status(variant.availability),
        "attributes": variant.options.iter().map(|o| json!({"id": 0, "name": o.name, "option": o.value})).collect::<Vec<_>>(),
        "image": variant.image.as_ref().map(|src| json!({"id": 900, "src": src, "name": "", "alt": ""})),
        "global_unique_id": variant.gtin.clone().unwrap_or_default(),
    });
    set_dates(&mut json, "date_modified", modified, 0);
    json
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"code": code, "message": message, "data": {"status": status.as_u16()}})),
    )
        .into_response()
}

async fn no_route() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "rest_no_route",
        "No route was found matching the URL and request method",
    )
}

/// Counts the request, applies an injected fault, authenticates it and checks the key's
/// permission for the method (§B.5). The fake is served over plain HTTP, where WordPress's
/// `is_ssl()` is false: WooCommerce then ignores Basic auth and `consumer_key`/
/// `consumer_secret` query parameters and tries OAuth 1.0a only (`WC_REST_Authentication::
/// authenticate` in woocommerce/woocommerce,
/// `plugins/woocommerce/includes/class-wc-rest-authentication.php`; see [`oauth`]).
async fn admit(
    state: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Response> {
    let fault = {
        let mut state = lock(state);
        state.requests += 1;
        state.faults.pop_front()
    };
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rest_too_many_requests",
                "Too many requests.",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after_secs));
            return Err(response);
        }
        Some(Fault::ServerError) => {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "There has been a critical error on this website.",
            ))
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::DropConnection) => {
            // Never answer: the client's timeout ends the exchange, as on a dropped socket.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        None => {}
    }
    let key = authenticate(state, method, uri, headers)?;
    let cannot_view = || {
        error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot list resources.",
        )
    };
    let Some(key) = key else {
        return Err(cannot_view());
    };
    let reads = matches!(*method, Method::GET | Method::HEAD);
    let allowed = match key.permissions.as_str() {
        "read" => reads || *method == Method::OPTIONS,
        "write" => !reads,
        _ => true,
    };
    if !allowed {
        let which = if reads { "read" } else { "write" };
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_authentication_error",
            &format!("The API key provided does not have {which} permissions."),
        ));
    }
    Ok(())
}

/// `perform_oauth_authentication`: `Ok(None)` when the request carries no OAuth parameter
/// (it then reaches the endpoint unauthenticated), the key when the signature, timestamp and
/// nonce check out, else WooCommerce's 401.
fn authenticate(
    state: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Option<FakeApiKey>, Response> {
    let refusal =
        |refusal: oauth::Refusal| error(StatusCode::UNAUTHORIZED, refusal.code, &refusal.message);
    // PHP's `$_GET`: names with `.` or ` ` are stored with `_`.
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or(""))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name.replace(['.', ' '], "_"), value))
            .collect();
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let Some(params) = oauth::parameters(&query, authorization).map_err(refusal)? else {
        return Ok(None);
    };
    let mut guard = lock(state);
    let state = &mut *guard;
    let Some(key) = state
        .keys
        .iter()
        .find(|key| key.consumer_key == params["oauth_consumer_key"].trim())
        .cloned()
    else {
        return Err(refusal(oauth::unknown_key()));
    };
    oauth::check_signature(
        method.as_str(),
        &state.base_url,
        uri.path(),
        &params,
        &key.consumer_secret,
    )
    .map_err(refusal)?;
    oauth::check_timestamp_and_nonce(
        state.nonces.entry(key.consumer_key.clone()).or_default(),
        &params["oauth_timestamp"],
        &params["oauth_nonce"],
        Utc::now().timestamp(),
    )
    .map_err(refusal)?;
    Ok(Some(key))
}

fn invalid_param(name: &str, rule: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"code": "rest_invalid_param", "message": format!("Invalid parameter(s): {name}"), "data": {"status": 400, "params": {name: rule}}})),
    )
        .into_response()
}

fn paging(query: &BTreeMap<String, String>) -> Result<(usize, usize), Response> {
    let per_page = match query.get("per_page") {
        None => 10,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                invalid_param(
                    "per_page",
                    "per_page must be between 1 (inclusive) and 100 (inclusive)",
                )
            })?,
    };
    let page = match query.get("page") {
        None => 1,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| invalid_param("page", "page must be greater than or equal to 1"))?,
    };
    Ok((page, per_page))
}

/// One page of `items` (only that page's JSON is copied) with WooCommerce's paging headers.
/// `Link` holds absolute `prev`/`next` URLs that keep the request's query with `page`
/// changed, as `WC_REST_CRUD_Controller::get_items` builds them (woocommerce/woocommerce,
/// `plugins/woocommerce/includes/rest-api/Controllers/Version3/class-wc-rest-crud-controller.php`:
/// `add_query_arg( $request->get_query_params(), rest_url( … ) )`, then
/// `add_query_arg( 'page', … )`); values are URL-encoded as WordPress core's controllers do
/// (`urlencode_deep`, wordpress-develop
/// `src/wp-includes/rest-api/endpoints/class-wp-rest-posts-controller.php`).
fn paged<'a>(
    home: &str,
    path: &str,
    uri: &Uri,
    items: impl ExactSizeIterator<Item = &'a Value>,
    page: usize,
    per_page: usize,
) -> Response {
    let total = items.len();
    let pages = total.div_ceil(per_page);
    let body: Vec<Value> = items
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert("x-wp-total", HeaderValue::from(total));
    headers.insert("x-wp-totalpages", HeaderValue::from(pages));
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let link_to = |target: usize| {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(query.len() + 1);
        let mut replaced = false;
        for (name, value) in &query {
            if name == "page" {
                if !replaced {
                    pairs.push((name.clone(), target.to_string()));
                    replaced = true;
                }
            } else {
                pairs.push((name.clone(), value.clone()));
            }
        }
        if !replaced {
            pairs.push(("page".to_owned(), target.to_string()));
        }
        let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{home}{path}?{encoded}")
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!(
            "<{}>; rel=\"prev\"",
            link_to((page - 1).min(pages))
        ));
    }
    if pages > page {
        links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
    }
    if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
        if !links.is_empty() {
            headers.insert("link", value);
        }
    }
    response
}

async fn list_products(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let (page, per_page) = match paging(&query) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let state = lock(&state);
    let modified_after = match query.get("modified_after") {
        None => None,
        Some(text) => {
            match NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S") {
                Ok(naive) => Some(naive),
                Err(_) => return invalid_param("modified_after", "Invalid date."),
            }
        }
    };
    let include: Option<Vec<i64>> = match query.get("include").filter(|v| !v.trim().is_empty()) {
        None => None,
        Some(text) => match text
            .split(',')
            .map(|id| id.trim().parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(ids) => Some(ids),
            Err(_) => return invalid_param("include", "include[0] is not of type integer."),
        },
    };
    let gmt = query
        .get("dates_are_gmt")
        .is_some_and(|v| v == "true" || v == "1");
    let mut items: Vec<(&i64, &FakeProduct)> = state
        .products
        .iter()
        .filter(|(id, _)| include.as_ref().is_none_or(|ids| ids.contains(id)))
        .filter(|(_, product)| match modified_after {
            None => true,
            Some(after) => {
                // Without dates_are_gmt WooCommerce compares against the site-local time.
                let compared = if gmt {
                    product.modified.naive_utc()
                } else {
                    product.modified.naive_utc() + chrono::Duration::hours(state.site_offset_hours)
                };
                compared > after
            }
        })
        .collect();
    let ascending = query.get("order").is_some_and(|o| o == "asc");
    match query.get("orderby").map(String::as_str).unwrap_or("date") {
        "id" => items.sort_by_key(|(id, _)| **id),
        "modified" => items.sort_by_key(|(id, product)| (product.modified, **id)),
        _ => items.sort_by_key(|(id, product)| (product.modified, **id)),
    }
    if !ascending {
        items.reverse();
    }
    let items: Vec<&Value> = items
        .into_iter()
        .map(|(_, product)| &product.json)
        .collect();
    paged(
        &state.base_url,
        "/wp-json/wc/v3/products",
        &uri,
        items.into_iter(),
        page,
        per_page,
    )
}

fn invalid_id() -> WooError {
    WooError::new(
        StatusCode::NOT_FOUND,
        "woocommerce_rest_product_invalid_id",
        "Invalid ID.",
    )
}

async fn get_product(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let state = lock(&state);
    match id
        .parse::<i64>()
        .ok()
        .and_then(|id| state.products.get(&id))
    {
        Some(product) => Json(product.json.clone()).into_response(),
        None => invalid_id().response(),
    }
}

async fn list_variations(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let (page, per_page) = match paging(&query) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let state = lock(&state);
    match id
        .parse::<i64>()
        .ok()
        .and_then(|id| state.products.get(&id))
    {
        Some(product) => paged(
            &state.base_url,
            &format!("/wp-json/wc/v3/products/{id}/variations"),
            &uri,
            product.variations.iter(),
            page,
            per_page,
        ),
        None => invalid_id().response(),
    }
}

/// A WooCommerce error, answered alone or as one item of a batch (§B.4).
struct WooError {
    status: StatusCode,
    code: String,
    message: String,
}

impl WooError {
    fn new(status: StatusCode, code: &str, message: &str) -> Self {
        WooError {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }

    fn body(&self) -> Value {
        json!({"code": self.code, "message": self.message, "data": {"status": self.status.as_u16()}})
    }

    fn response(&self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

fn parse_json(body: &[u8]) -> Result<Value, WooError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            WooError::new(
                StatusCode::BAD_REQUEST,
                "rest_invalid_json",
                "Invalid JSON body passed.",
            )
        })
}

/// The next `date_modified`: now, but always later than the last one, so every write gets a
/// new revision even within one second (real WooCommerce's second-resolution dates can repeat;
/// the fake keeps tests deterministic).
fn next_modified(previous: DateTime<Utc>) -> DateTime<Utc> {
    let now = Utc::now().trunc_subsecs(0);
    now.max(previous + chrono::Duration::seconds(1))
}

/// `meta_data` entries are matched by `id` when given, else by `key`; new keys are added.
fn merge_meta(product: &mut Value, changes: &Value, next_id: &mut i64) {
    let Some(changes) = changes.as_array() else {
        return;
    };
    if !product["meta_data"].is_array() {
        product["meta_data"] = json!([]);
    }
    let Some(meta) = product["meta_data"].as_array_mut() else {
        return;
    };
    for change in changes {
        let Some(key) = change["key"].as_str() else {
            continue;
        };
        let existing = meta.iter_mut().find(|entry| match change["id"].as_i64() {
            Some(id) => entry["id"].as_i64() == Some(id),
            None => entry["key"] == key,
        });
        match existing {
            Some(entry) => {
                entry["key"] = key.into();
                entry["value"] = change["value"].clone();
            }
            None => {
                meta.push(json!({"id": next_serial(next_id), "key": key, "value": change["value"]}))
            }
        }
    }
}

/// Images WooCommerce cannot download fail the write; hosts under the reserved `.invalid`
/// domain stand for those here.
fn check_images(changes: &Value) -> Result<(), WooError> {
    for image in changes["images"].as_array().into_iter().flatten() {
        let Some(src) = image["src"].as_str() else {
            continue;
        };
        let host = reqwest::Url::parse(src)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        if host.is_empty() || host.ends_with(".invalid") {
            return Err(WooError::new(
                StatusCode::BAD_REQUEST,
                "woocommerce_product_image_upload_error",
                &format!(
                    "Error getting remote image {src}. Error: cURL error 6: Could not resolve host: {host}"
                ),
            ));
        }
    }
    Ok(())
}

/// Merges `changes` into product `id` as `PUT /products/{id}` does and returns the result.
fn apply_changes(state: &mut WooState, id: i64, changes: &Value) -> Result<Value, WooError> {
    check_images(changes)?;
    let offset = state.site_offset_hours;
    let Some(product) = state.products.get_mut(&id) else {
        return Err(invalid_id());
    };
    let Some(fields) = changes.as_object() else {
        return Err(WooError::new(
            StatusCode::BAD_REQUEST,
            "rest_invalid_json",
            "Invalid JSON body passed.",
        ));
    };
    for (key, value) in fields {
        match key.as_str() {
            "id" | "permalink" | "date_created" | "date_created_gmt" | "date_modified"
            | "date_modified_gmt" | "price" | "price_html" | "on_sale" | "variations"
            | "_links" => {}
            "meta_data" => merge_meta(&mut product.json, value, &mut state.next_id),
            "images" => {
                let images: Vec<Value> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|image| {
                        json!({
                            "id": image["id"].as_i64().unwrap_or_else(|| next_serial(&mut state.next_id)),
                            "src": image["src"],
                            "name": image["name"].as_str().unwrap_or(""),
                            "alt": image["alt"].as_str().unwrap_or(""),
                        })
                    })
                    .collect();
                product.json["images"] = images.into();
            }
            "categories" => {
                let categories: Vec<Value> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| state.categories.get(&c["id"].as_i64()?))
                    .map(category_ref)
                    .collect();
                product.json["categories"] = categories.into();
            }
            _ => product.json[key] = value.clone(),
        }
    }
    product.modified = next_modified(product.modified);
    set_dates(&mut product.json, "date_modified", product.modified, offset);
    Ok(product.json.clone())
}

/// A new product from a batch `create` item.
fn create_product(state: &mut WooState, fields: &Value) -> Result<Value, WooError> {
    check_images(fields)?;
    let name = fields["name"].as_str().unwrap_or("");
    let id = state.products.keys().max().copied().unwrap_or(1000) + 1;
    let blank = SourceProduct {
        external_id: id.to_string(),
        title: name.to_owned(),
        description_html: String::new(),
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
        currency: String::new(),
        availability: Availability::InStock,
        stock: None,
        categories: Vec::new(),
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    };
    let created = Utc::now().trunc_subsecs(0) - chrono::Duration::seconds(1);
    let json = product_json(&blank, id, &[], created, state.site_offset_hours);
    state.products.insert(
        id,
        FakeProduct {
            json,
            modified: created,
            variations: Vec::new(),
        },
    );
    apply_changes(state, id, fields)
}

async fn update_product(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let changes = match parse_json(&body) {
        Ok(changes) => changes,
        Err(error) => return error.response(),
    };
    let mut guard = lock(&state);
    let Ok(id) = id.parse::<i64>() else {
        return invalid_id().response();
    };
    match apply_changes(&mut guard, id, &changes) {
        Ok(json) => Json(json).into_response(),
        Err(error) => error.response(),
    }
}

/// `POST /products/batch` (§B.4): at most `batch_limit` items over create+update+delete
/// (413 past it); failed items are `{id, error}` inside a 200.
async fn batch_products(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let request = match parse_json(&body) {
        Ok(request) => request,
        Err(error) => return error.response(),
    };
    let items = |name: &str| request[name].as_array().cloned().unwrap_or_default();
    let (create, update, delete) = (items("create"), items("update"), items("delete"));
    let mut guard = lock(&state);
    let state = &mut *guard;
    if create.len() + update.len() + delete.len() > state.batch_limit {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "woocommerce_rest_request_entity_too_large",
            &format!(
                "Unable to accept more than {} items for this request.",
                state.batch_limit
            ),
        );
    }
    let item = |id: i64, result: Result<Value, WooError>| match result {
        Ok(json) => json,
        Err(error) => json!({"id": id, "error": error.body()}),
    };
    let mut response = serde_json::Map::new();
    if request.get("create").is_some() {
        let results: Vec<Value> = create
            .iter()
            .map(|fields| item(0, create_product(state, fields)))
            .collect();
        response.insert("create".into(), results.into());
    }
    if request.get("update").is_some() {
        let results: Vec<Value> = update
            .iter()
            .map(|fields| {
                let id = fields["id"].as_i64().unwrap_or(0);
                item(id, apply_changes(state, id, fields))
            })
            .collect();
        response.insert("update".into(), results.into());
    }
    if request.get("delete").is_some() {
        let results: Vec<Value> = delete
            .iter()
            .map(|id| {
                let id = id.as_i64().unwrap_or(0);
                let deleted = state
                    .products
                    .remove(&id)
                    .map(|product| product.json)
                    .ok_or_else(invalid_id);
                item(id, deleted)
            })
            .collect();
        response.insert("delete".into(), results.into());
    }
    Json(Value::Object(response)).into_response()
}

/// `GET /products/categories`, ordered by name as WooCommerce does by default.
async fn list_categories(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let (page, per_page) = match paging(&query) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let state = lock(&state);
    let mut categories: Vec<&FakeCategory> = state.categories.values().collect();
    categories.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
    let json: Vec<Value> = categories
        .into_iter()
        .map(|c| {
            let count = state
                .products
                .values()
                .filter(|p| {
                    p.json["categories"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().any(|x| x["id"] == c.id))
                })
                .count();
            json!({"id": c.id, "name": c.name, "slug": c.slug, "parent": c.parent, "description": "", "display": "default", "image": null, "menu_order": 0, "count": count})
        })
        .collect();
    paged(
        &state.base_url,
        "/wp-json/wc/v3/products/categories",
        &uri,
        json.iter(),
        page,
        per_page,
    )
}

const WEBHOOK_TOPICS: &[&str] = &[
    "product.created",
    "product.updated",
    "product.deleted",
    "product.restored",
    "order.created",
    "order.updated",
    "order.deleted",
    "order.restored",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "coupon.created",
    "coupon.updated",
    "coupon.deleted",
    "coupon.restored",
];

fn webhook_json(hook: &FakeWebhook, offset: i64) -> Value {
    let (resource, event) = hook.topic.split_once('.').unwrap_or((&hook.topic, ""));
    let mut json = json!({
        "id": hook.id,
        "name": hook.name,
        "status": hook.status,
        "topic": hook.topic,
        "resource": resource,
        "event": event,
        "hooks": [format!("woocommerce_{}_{}", resource, event)],
        "delivery_url": hook.delivery_url,
    });
    set_dates(&mut json, "date_created", hook.created, offset);
    set_dates(&mut json, "date_modified", hook.created, offset);
    json
}

fn invalid_webhook() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "woocommerce_rest_webhook_invalid_id",
        "Invalid ID.",
    )
}

async fn list_webhooks(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let (page, per_page) = match paging(&query) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let state = lock(&state);
    let status = query.get("status").filter(|s| s.as_str() != "all");
    let json: Vec<Value> = state
        .webhooks
        .values()
        .filter(|hook| status.is_none_or(|s| *s == hook.status))
        .map(|hook| webhook_json(hook, state.site_offset_hours))
        .collect();
    paged(
        &state.base_url,
        "/wp-json/wc/v3/webhooks",
        &uri,
        json.iter(),
        page,
        per_page,
    )
}

async fn get_webhook(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let state = lock(&state);
    match id
        .parse::<i64>()
        .ok()
        .and_then(|id| state.webhooks.get(&id))
    {
        Some(hook) => Json(webhook_json(hook, state.site_offset_hours)).into_response(),
        None => invalid_webhook(),
    }
}

/// `POST /webhooks`. An active webhook is pinged at once (§B.7): `webhook_id=N`, form-encoded,
/// Hookshot User-Agent, no `X-WC-*` headers, unsigned. Anything but exactly 200 fails the save
/// (the error body's code is the fake's own: WooCommerce's REST wording is UNCONFIRMED).
async fn create_webhook(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let request = match parse_json(&body) {
        Ok(request) => request,
        Err(error) => return error.response(),
    };
    let topic = request["topic"].as_str().unwrap_or("").to_owned();
    let delivery_url = request["delivery_url"].as_str().unwrap_or("").to_owned();
    if topic.is_empty() || delivery_url.is_empty() {
        let missing = if topic.is_empty() {
            "topic"
        } else {
            "delivery_url"
        };
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": "rest_missing_callback_param", "message": format!("Missing parameter(s): {missing}"), "data": {"status": 400, "params": [missing]}})),
        )
            .into_response();
    }
    if !WEBHOOK_TOPICS.contains(&topic.as_str()) && !topic.starts_with("action.") {
        return error(
            StatusCode::BAD_REQUEST,
            "woocommerce_rest_webhook_invalid_topic",
            "Webhook topic is required and must be valid.",
        );
    }
    if reqwest::Url::parse(&delivery_url).is_err() {
        return invalid_param("delivery_url", "delivery_url is not a valid URL.");
    }
    let status = request["status"].as_str().unwrap_or("active").to_owned();
    let (id, client) = {
        let mut guard = lock(&state);
        let state = &mut *guard;
        let id = state.webhooks.keys().max().copied().unwrap_or(0) + 1;
        state.webhooks.insert(
            id,
            FakeWebhook {
                id,
                name: request["name"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        format!(
                            "Webhook created on {}",
                            Utc::now().format("%b %d, %Y @ %I:%M %p")
                        )
                    }),
                status: status.clone(),
                topic,
                delivery_url: delivery_url.clone(),
                secret: request["secret"].as_str().unwrap_or("").to_owned(),
                failures: 0,
                created: Utc::now().trunc_subsecs(0),
            },
        );
        (id, state.outgoing.clone())
    };
    if status == "active" {
        let ping = client
            .post(&delivery_url)
            .header(reqwest::header::USER_AGENT, HOOKSHOT_USER_AGENT)
            .form(&[("webhook_id", id.to_string())])
            .send()
            .await
            .ok()
            .map(|response| response.status().as_u16());
        if ping != Some(200) {
            lock(&state).webhooks.remove(&id);
            let code = ping.unwrap_or(0);
            return error(
                StatusCode::BAD_REQUEST,
                "woocommerce_rest_webhook_delivery_failed",
                &format!("Error: Delivery URL returned response code: {code}"),
            );
        }
    }
    let state = lock(&state);
    match state.webhooks.get(&id) {
        Some(hook) => (
            StatusCode::CREATED,
            Json(webhook_json(hook, state.site_offset_hours)),
        )
            .into_response(),
        None => invalid_webhook(),
    }
}

/// `DELETE /webhooks/{id}?force=true`; webhooks cannot be trashed (501 without `force`).
async fn delete_webhook(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&state, &method, &uri, &headers).await {
        return response;
    }
    let mut state = lock(&state);
    let Some(id) = id
        .parse::<i64>()
        .ok()
        .filter(|id| state.webhooks.contains_key(id))
    else {
        return invalid_webhook();
    };
    if !query.get("force").is_some_and(|f| f == "true" || f == "1") {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "woocommerce_rest_trash_not_supported",
            "Webhooks do not support trashing.",
        );
    }
    let offset = state.site_offset_hours;
    match state.webhooks.remove(&id) {
        Some(hook) => Json(webhook_json(&hook, offset)).into_response(),
        None => invalid_webhook(),
    }
}

/// PHP's `json_encode` defaults, which `wp_json_encode` keeps: `/` is escaped and non-ASCII
/// characters become `\uXXXX`. Receivers must verify the signature over the bytes received,
/// not over a re-serialization.
fn php_json_encode(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '/' => out.push_str("\\/"),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out
}

/// `wp_specialchars_decode($secret, ENT_QUOTES)`: WooCommerce signs with the decoded secret.
fn specialchars_decode(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// `X-WC-Webhook-Signature`: base64(HMAC-SHA256(body, secret)).
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(specialchars_decode(secret).as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Delivers `payload` to every active webhook of `topic` (§B.7) and counts failures:
/// 200–302 succeeds and resets the count; otherwise, once the count is already past the
/// threshold the webhook is disabled, else the count grows (WooCommerce's
/// `failed_delivery()`, read literally).
async fn deliver(state: &Shared, topic: &str, payload: &Value) -> Vec<Delivery> {
    let (targets, client, source) = {
        let state = lock(state);
        let targets: Vec<(i64, String, String)> = state
            .webhooks
            .values()
            .filter(|hook| hook.status == "active" && hook.topic == topic)
            .map(|hook| (hook.id, hook.delivery_url.clone(), hook.secret.clone()))
            .collect();
        (
            targets,
            state.outgoing.clone(),
            format!("{}/", state.base_url),
        )
    };
    let body = php_json_encode(payload).trim().to_owned();
    let (resource, event) = topic.split_once('.').unwrap_or((topic, ""));
    let mut outcomes = Vec::new();
    for (id, url, secret) in targets {
        let delivery_id = {
            let mut hash = Sha256::new();
            hash.update(format!(
                "{id}{}",
                Utc::now().timestamp_nanos_opt().unwrap_or(0)
            ));
            hash.finalize()
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let status = client
            .post(&url)
            .header(reqwest::header::USER_AGENT, HOOKSHOT_USER_AGENT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-WC-Webhook-Source", &source)
            .header("X-WC-Webhook-Topic", topic)
            .header("X-WC-Webhook-Resource", resource)
            .header("X-WC-Webhook-Event", event)
            .header(
                "X-WC-Webhook-Signature",
                webhook_signature(&secret, body.as_bytes()),
            )
            .header("X-WC-Webhook-ID", id.to_string())
            .header("X-WC-Webhook-Delivery-ID", delivery_id)
            .body(body.clone())
            .send()
            .await
            .ok()
            .map(|response| response.status().as_u16());
        let success = status.is_some_and(|s| (200..=302).contains(&s));
        let delivery = Delivery {
            webhook_id: id,
            topic: topic.to_owned(),
            status,
            success,
        };
        let mut guard = lock(state);
        let state = &mut *guard;
        let threshold = state.webhook_failure_threshold;
        if let Some(hook) = state.webhooks.get_mut(&id) {
            if success {
                hook.failures = 0;
            } else if hook.failures > threshold {
                hook.status = "disabled".into();
            } else {
                hook.failures += 1;
            }
        }
        state.deliveries.push(delivery.clone());
        outcomes.push(delivery);
    }
    outcomes
}

/// WordPress's `wp_redirect` answers 302 Found.
fn found(url: &reqwest::Url) -> Response {
    (
        StatusCode::FOUND,
        [(axum::http::header::LOCATION, url.as_str().to_owned())],
    )
        .into_response()
}

fn auth_error_page(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Html(format!(
            "<!DOCTYPE html><html><head><title>Access denied</title></head><body id=\"error-page\"><div class=\"wp-die-message\">Error: {}.</div></body></html>",
            message.replace('<', "&lt;")
        )),
    )
        .into_response()
}

fn random_hash() -> String {
    let mut hash = Sha256::new();
    hash.update(uuid::Uuid::new_v4().as_bytes());
    hash.finalize()
        .iter()
        .take(20)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A URL as WooCommerce checks it: `https://` prefixed when there is no scheme, then parsed.
fn auth_url(text: &str) -> Option<reqwest::Url> {
    let text = if text.contains("://") {
        text.to_owned()
    } else {
        format!("https://{text}")
    };
    reqwest::Url::parse(&text).ok()
}

/// `GET /wc-auth/v1/authorize` (§B.6). The login and grant screens are collapsed: the test's
/// [`AuthDecision`] answers them. On approval a key is created and POSTed to `callback_url`
/// (`application/json;charset=UTF-8`, `user_id` as a string); anything but exactly 200 deletes
/// the key and shows WooCommerce's 401 page. Then 302 to `return_url` with `success` and
/// `user_id`.
async fn authorize(
    State(state): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    for name in ["app_name", "scope", "user_id", "return_url", "callback_url"] {
        if query.get(name).is_none_or(|v| v.is_empty()) {
            return auth_error_page(&format!("Missing parameter {name}"));
        }
    }
    let scope = query["scope"].as_str();
    if !["read", "write", "read_write"].contains(&scope) {
        return auth_error_page(&format!("Invalid scope {scope}"));
    }
    let (Some(mut return_url), Some(callback_url)) = (
        auth_url(&query["return_url"]),
        auth_url(&query["callback_url"]),
    ) else {
        return auth_error_page("The return_url and callback_url must be valid URLs");
    };
    let (decision, insecure_ok, client) = {
        let state = lock(&state);
        (
            state.auth_decision,
            state.allow_insecure_callback,
            state.outgoing.clone(),
        )
    };
    if callback_url.scheme() != "https" && !insecure_ok {
        return auth_error_page("The callback_url needs to be over SSL");
    }
    let user_id = query["user_id"].clone();
    if decision == AuthDecision::Deny {
        return_url
            .query_pairs_mut()
            .append_pair("success", "0")
            .append_pair("user_id", &user_id);
        return found(&return_url);
    }
    let key = {
        let mut state = lock(&state);
        let key = FakeApiKey {
            key_id: state.keys.iter().map(|k| k.key_id).max().unwrap_or(0) + 1,
            consumer_key: format!("ck_{}", random_hash()),
            consumer_secret: format!("cs_{}", random_hash()),
            permissions: scope.to_owned(),
            description: format!(
                "{} - API ({})",
                query["app_name"],
                Utc::now().format("%Y-%m-%d %H:%M:%S")
            ),
        };
        state.keys.push(key.clone());
        key
    };
    let body = json!({
        "key_id": key.key_id,
        "user_id": user_id,
        "consumer_key": key.consumer_key,
        "consumer_secret": key.consumer_secret,
        "key_permissions": key.permissions,
    });
    let answered = client
        .post(callback_url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json;charset=UTF-8",
        )
        .body(body.to_string())
        .send()
        .await
        .ok()
        .map(|response| response.status().as_u16());
    if answered != Some(200) {
        lock(&state).keys.retain(|k| k.key_id != key.key_id);
        return auth_error_page(
            "An error occurred in the request and at the time were unable to send the consumer data",
        );
    }
    return_url
        .query_pairs_mut()
        .append_pair("success", "1")
        .append_pair("user_id", &user_id);
    found(&return_url)
}
