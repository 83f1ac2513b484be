//! A fake Wix REST API for one app, enforcing the rules listed in docs/protocols.md (Wix, with
//! the public source of each) with the wire shapes of §2 (OAuth client credentials), §4 (Stores
//! Catalog V3 and V1, Categories), §5.1 (app instance) and §6 (error bodies, rate limits).
//!
//! Served on a random loopback port. Every answer carries `x-wix-request-id` (§2.2). Every
//! API route needs `Authorization: <token>` or `Authorization: Bearer <token>` with a token
//! minted by `POST /oauth2/token` for one installed instance (§7.5). Each instance has a
//! token bucket (200 requests a minute by default, §6.2) answering 429 `RESOURCE_EXHAUSTED`
//! when it runs dry. Switches inject 429 (with or without `Retry-After`), empty-bodied
//! 500/503 (§6.1 "sent empty by design"), slow answers, dropped connections and the
//! empty-body 403 burst quirk of §6.2.
//!
//! Where Wix's public sources leave a detail open (token-endpoint error bodies, the code of a
//! revision mismatch, the REST shape of `url`), the fake picks a plausible shape and says so;
//! clients must not depend on more than those sources confirm.

// Request guards here fail with the finished Wix error response, as handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{Availability, Money, SourceProduct};
use serde_json::{json, Map, Value};

/// Which catalog a site runs (§4.1), as `GET /stores/v3/provision/version` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogVersion {
    V1Catalog,
    V3Catalog,
    StoresNotInstalled,
}

impl CatalogVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogVersion::V1Catalog => "V1_CATALOG",
            CatalogVersion::V3Catalog => "V3_CATALOG",
            CatalogVersion::StoresNotInstalled => "STORES_NOT_INSTALLED",
        }
    }
}

/// A failure the next request (any route) will meet.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// 429 `RESOURCE_EXHAUSTED` (§6.1). With `Some(secs)` it carries `Retry-After: secs` and
    /// every request in that window is throttled too, so a client that retries early fails.
    RateLimited { retry_after_secs: Option<u64> },
    /// 500 with the empty system-error body `{"message":"","details":{}}` (§6.1).
    ServerError,
    /// 503 with the empty system-error body.
    Unavailable,
    /// Answers normally after this delay.
    Slow(Duration),
    /// Closes the connection without answering.
    DropConnection,
    /// 403 with an empty body: the burst throttling quirk of §6.2.
    EmptyForbidden,
}

/// A paid plan as `GET /apps/v1/instance` reports it in `billing` (§5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidPlan {
    /// The plan's vendor product id.
    pub package_name: String,
    /// `MONTHLY`, `YEARLY`, ...
    pub billing_cycle: String,
    pub auto_renewing: bool,
    pub time_stamp: DateTime<Utc>,
    pub expiration_date: Option<DateTime<Utc>>,
    pub invoice_id: String,
}

struct Stored {
    json: Value,
    updated: DateTime<Utc>,
}

struct Category {
    id: String,
    name: String,
    parent: Option<String>,
}

struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(requests: u32, per: Duration) -> Self {
        let capacity = f64::from(requests.max(1));
        Bucket {
            capacity,
            per_second: capacity / per.as_secs_f64().max(0.001),
            tokens: capacity,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct FakeInstance {
    version: CatalogVersion,
    removed: bool,
    plan: Option<PaidPlan>,
    site_url: String,
    products: BTreeMap<String, Stored>,
    categories: Vec<Category>,
    collections: Vec<(String, String)>,
    bucket: Bucket,
}

struct TokenRecord {
    instance_id: String,
    expires: Instant,
    revoked: bool,
}

struct WixState {
    app_id: String,
    app_secret: String,
    token_lifetime_secs: u64,
    instances: HashMap<String, FakeInstance>,
    tokens: HashMap<String, TokenRecord>,
    faults: VecDeque<Fault>,
    throttled_until: Option<Instant>,
    latency: Duration,
    requests: u64,
    per_path: HashMap<String, u64>,
    tokens_minted: u64,
    bucket_refusals: u64,
    in_flight: u64,
    max_in_flight: u64,
    next_id: u64,
}

impl WixState {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_id)
    }
}

type Shared = Arc<Mutex<WixState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, WixState> {
    state.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A running fake Wix; dropped, it stops.
pub struct FakeWix {
    /// Replaces `https://www.wixapis.com`.
    pub base_url: String,
    pub app_id: String,
    pub app_secret: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeWix {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeWix {
    /// Starts a fake with no instances on a random loopback port.
    pub async fn start() -> Self {
        let app_id = "7d0c1e4a-3b6f-4c2d-9e8a-5f1b2c3d4e5f".to_owned();
        let app_secret = "2b7e1f9a-8c4d-4e6b-a1f3-9d5c7e2b8a60".to_owned();
        let state = Arc::new(Mutex::new(WixState {
            app_id: app_id.clone(),
            app_secret: app_secret.clone(),
            token_lifetime_secs: 14_400,
            instances: HashMap::new(),
            tokens: HashMap::new(),
            faults: VecDeque::new(),
            throttled_until: None,
            latency: Duration::ZERO,
            requests: 0,
            per_path: HashMap::new(),
            tokens_minted: 0,
            bucket_refusals: 0,
            in_flight: 0,
            max_in_flight: 0,
            next_id: 0,
        }));
        let app = Router::new()
            .route("/oauth2/token", post(mint_token))
            .route("/apps/v1/instance", get(app_instance))
            .route("/stores/v3/provision/version", get(catalog_version))
            .route(
                "/stores/v3/products/query",
                post(v3_query).get(v3_query_get),
            )
            .route("/stores/v3/products/{id}", get(v3_get).patch(v3_patch))
            .route("/stores/v3/bulk/products/update", post(v3_bulk_update))
            .route("/categories/v1/categories/query", post(categories_query))
            .route("/stores/v1/products/query", post(v1_query))
            .route("/stores/v1/products/{id}", get(v1_get).patch(v1_patch))
            .route("/stores/v1/collections/query", post(v1_collections))
            .fallback(no_route)
            .layer(axum::middleware::from_fn_with_state(state.clone(), gate))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        FakeWix {
            base_url: format!("http://{address}"),
            app_id,
            app_secret,
            state,
            server,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WixState> {
        lock(&self.state)
    }

    /// Installs the app on a site whose stores run `version`, on the free plan.
    pub fn add_instance(&self, instance_id: &str, version: CatalogVersion) {
        let mut state = self.lock();
        let site = state.instances.len() + 1;
        state.instances.insert(
            instance_id.to_owned(),
            FakeInstance {
                version,
                removed: false,
                plan: None,
                site_url: format!("https://merchant{site}.wixsite.example/shop"),
                products: BTreeMap::new(),
                categories: Vec::new(),
                collections: Vec::new(),
                bucket: Bucket::new(200, Duration::from_secs(60)),
            },
        );
    }

    pub fn set_catalog_version(&self, instance_id: &str, version: CatalogVersion) {
        if let Some(instance) = self.lock().instances.get_mut(instance_id) {
            instance.version = version;
        }
    }

    /// `None`: the free plan (`isFree: true`, no `billing`).
    pub fn set_plan(&self, instance_id: &str, plan: Option<PaidPlan>) {
        if let Some(instance) = self.lock().instances.get_mut(instance_id) {
            instance.plan = plan;
        }
    }

    /// The instance's token bucket: `requests` per `per`, starting full.
    pub fn set_rate_limit(&self, instance_id: &str, requests: u32, per: Duration) {
        if let Some(instance) = self.lock().instances.get_mut(instance_id) {
            instance.bucket = Bucket::new(requests, per);
        }
    }

    /// `expires_in` of tokens minted from now on (default 14400, §2.1).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.lock().token_lifetime_secs = secs;
    }

    /// The merchant removes the app: minting fails and issued tokens answer 401.
    pub fn remove_app(&self, instance_id: &str) {
        if let Some(instance) = self.lock().instances.get_mut(instance_id) {
            instance.removed = true;
        }
    }

    /// The app is installed again on the same instance (its catalog kept).
    pub fn restore_app(&self, instance_id: &str) {
        if let Some(instance) = self.lock().instances.get_mut(instance_id) {
            instance.removed = false;
        }
    }

    /// Invalidates every token issued so far for `instance_id` (the app stays installed).
    pub fn revoke_tokens(&self, instance_id: &str) {
        for token in self.lock().tokens.values_mut() {
            if token.instance_id == instance_id {
                token.revoked = true;
            }
        }
    }

    /// Makes every token issued so far expired, as if its `expires_in` had passed.
    pub fn expire_tokens(&self) {
        let past = Instant::now() - Duration::from_millis(1);
        for token in self.lock().tokens.values_mut() {
            token.expires = token.expires.min(past);
        }
    }

    /// Queues failures for the next requests, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.lock().faults.extend(faults.iter().copied());
    }

    /// Delays every answer by `latency` (to observe concurrency).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Adds products to the instance's catalog in its version's shape (V3 §4.3, V1 §4.6),
    /// created and last updated at `at`, creating the categories (V3, nested by `>`) or
    /// collections (V1, one per path) they name. Returns the new product ids in order.
    pub fn seed(
        &self,
        instance_id: &str,
        products: &[SourceProduct],
        at: DateTime<Utc>,
    ) -> Vec<String> {
        let mut state = self.lock();
        let mut ids = Vec::new();
        for product in products {
            let id = state.new_id();
            let Some(version) = state.instances.get(instance_id).map(|i| i.version) else {
                return ids;
            };
            let mut category_ids = Vec::new();
            for path in &product.categories {
                category_ids.push(ensure_category(&mut state, instance_id, path, version));
            }
            let Some(instance) = state.instances.get_mut(instance_id) else {
                return ids;
            };
            let json = match version {
                CatalogVersion::V1Catalog => {
                    v1_json(product, &id, at, &instance.site_url, &category_ids)
                }
                _ => v3_json(product, &id, at, &instance.site_url, &category_ids),
            };
            instance
                .products
                .insert(id.clone(), Stored { json, updated: at });
            ids.push(id);
        }
        ids
    }

    /// Edits a product as the merchant would in the Wix dashboard: applies `edit` to the
    /// stored JSON, then bumps `revision` (V3) and `updatedDate` / `lastUpdated`.
    pub fn edit_in_dashboard(
        &self,
        instance_id: &str,
        product_id: &str,
        edit: impl FnOnce(&mut Value),
    ) {
        let mut state = self.lock();
        let Some(instance) = state.instances.get_mut(instance_id) else {
            return;
        };
        let version = instance.version;
        if let Some(stored) = instance.products.get_mut(product_id) {
            edit(&mut stored.json);
            touch(stored, version);
        }
    }

    /// The product exactly as stored (every optional block included).
    pub fn product(&self, instance_id: &str, product_id: &str) -> Option<Value> {
        let state = self.lock();
        state
            .instances
            .get(instance_id)?
            .products
            .get(product_id)
            .map(|stored| stored.json.clone())
    }

    pub fn product_ids(&self, instance_id: &str) -> Vec<String> {
        let state = self.lock();
        state
            .instances
            .get(instance_id)
            .map(|i| i.products.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Requests received so far, on every route, including failed ones.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Requests received on one path (e.g. `/stores/v3/products/query`).
    pub fn requests_to(&self, path: &str) -> u64 {
        self.lock().per_path.get(path).copied().unwrap_or(0)
    }

    /// Access tokens minted so far.
    pub fn tokens_minted(&self) -> u64 {
        self.lock().tokens_minted
    }

    /// 429s answered because an instance's token bucket ran dry (not injected ones).
    pub fn bucket_refusals(&self) -> u64 {
        self.lock().bucket_refusals
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> u64 {
        self.lock().max_in_flight
    }
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Bumps a product's modification markers after a write (§4.4: revision + 1, as a string).
fn touch(stored: &mut Stored, version: CatalogVersion) {
    let now = Utc::now().max(stored.updated + chrono::Duration::milliseconds(1));
    stored.updated = now;
    match version {
        CatalogVersion::V1Catalog => stored.json["lastUpdated"] = iso(now).into(),
        _ => {
            let revision = revision_of(&stored.json).unwrap_or(0) + 1;
            stored.json["revision"] = revision.to_string().into();
            stored.json["updatedDate"] = iso(now).into();
        }
    }
}

fn revision_of(json: &Value) -> Option<u64> {
    match &json["revision"] {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

/// The category (V3) or collection (V1) for `path`, created if new; returns its id.
fn ensure_category(
    state: &mut WixState,
    instance_id: &str,
    path: &str,
    version: CatalogVersion,
) -> String {
    if version == CatalogVersion::V1Catalog {
        if let Some((id, _)) = state
            .instances
            .get(instance_id)
            .and_then(|i| i.collections.iter().find(|(_, name)| name == path))
        {
            return id.clone();
        }
        let id = state.new_id();
        if let Some(instance) = state.instances.get_mut(instance_id) {
            instance.collections.push((id.clone(), path.to_owned()));
        }
        return id;
    }
    let mut parent: Option<String> = None;
    for name in path.split('>').map(str::trim).filter(|n| !n.is_empty()) {
        let existing = state.instances.get(instance_id).and_then(|i| {
            i.categories
                .iter()
                .find(|c| c.name == name && c.parent == parent)
                .map(|c| c.id.clone())
        });
        let id = match existing {
            Some(id) => id,
            None => {
                let id = state.new_id();
                if let Some(instance) = state.instances.get_mut(instance_id) {
                    instance.categories.push(Category {
                        id: id.clone(),
                        name: name.to_owned(),
                        parent: parent.clone(),
                    });
                }
                id
            }
        };
        parent = Some(id);
    }
    parent.unwrap_or_default()
}

fn slug(title: &str) -> String {
    let slug: String = title
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    slug.trim_matches('-').to_owned()
}

/// A minimal Ricos document holding the HTML's text (§4.3 `description`).
fn ricos(html: &str) -> Value {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    json!({"nodes": [{"type": "PARAGRAPH", "id": "p1", "nodes": [{"type": "TEXT", "id": "", "nodes": [], "textData": {"text": text, "decorations": []}}]}], "metadata": {"version": 1}, "documentStyle": {}})
}

fn seo_tags(product: &SourceProduct) -> Vec<Value> {
    let mut tags = Vec::new();
    if let Some(title) = &product.seo_title {
        tags.push(json!({"type": "title", "children": title, "custom": false, "disabled": false}));
    }
    if let Some(description) = &product.seo_description {
        tags.push(json!({"type": "meta", "props": {"name": "description", "content": description}, "custom": false, "disabled": false}));
    }
    // A tag the merchant set that writers must keep (§4.3 "send the full desired list").
    tags.push(json!({"type": "meta", "props": {"property": "og:title", "content": product.title}, "custom": true, "disabled": false}));
    tags
}

fn amount(money: Money, currency: &str) -> Value {
    json!({"amount": money.to_decimal(), "formattedAmount": format!("{} {}", money.to_decimal(), currency)})
}

/// A V3 product (§4.3) holding every optional block; queries strip what was not asked for.
fn v3_json(
    product: &SourceProduct,
    id: &str,
    at: DateTime<Utc>,
    site_url: &str,
    categories: &[String],
) -> Value {
    let slug = slug(&product.title);
    let actual = product.sale_price.or(product.price);
    let compare_at = product.sale_price.and(product.price);
    let items: Vec<Value> = product
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            json!({"id": format!("{id}-m{i}"), "url": image.url, "altText": image.alt, "mediaType": "IMAGE",
                   "image": {"id": format!("{id}-m{i}"), "url": image.url, "height": 1000, "width": 1000, "altText": image.alt}})
        })
        .collect();
    let (status, preorder) = match product.availability {
        Availability::InStock => ("IN_STOCK", "DISABLED"),
        Availability::OutOfStock => ("OUT_OF_STOCK", "DISABLED"),
        Availability::Preorder => ("OUT_OF_STOCK", "ENABLED"),
    };
    let variants: Vec<Value> = if product.variants.is_empty() {
        vec![
            json!({"id": format!("{id}-v0"), "visible": true, "sku": product.sku, "choices": [],
                    "price": {"actualPrice": actual.map(|m| json!({"amount": m.to_decimal()}))}}),
        ]
    } else {
        product
            .variants
            .iter()
            .map(|v| {
                json!({"id": format!("{id}-{}", v.external_id), "visible": true, "sku": v.sku,
                       "choices": v.options.iter().map(|o| json!({"optionChoiceNames": {"optionName": o.name, "choiceName": o.value, "renderType": "TEXT_CHOICES"}})).collect::<Vec<_>>(),
                       "price": {"actualPrice": v.sale_price.or(v.price).map(|m| json!({"amount": m.to_decimal()}))}})
            })
            .collect()
    };
    let mut json = json!({
        "id": id,
        "revision": "1",
        "createdDate": iso(at),
        "updatedDate": iso(at),
        "name": product.title,
        "slug": slug,
        "visible": product.published,
        "visibleInPos": true,
        "plainDescription": product.description_html,
        "description": ricos(&product.description_html),
        "seoData": {"tags": seo_tags(product), "settings": {"preventAutoRedirect": false, "keywords": []}},
        "media": {"main": items.first().cloned(), "itemsInfo": {"items": items}},
        "infoSections": product.info_sections.iter().enumerate().map(|(i, s)| json!({"id": format!("{id}-s{i}"), "uniqueName": slug_section(&s.title, i), "title": s.title, "plainDescription": s.html, "description": ricos(&s.html)})).collect::<Vec<_>>(),
        "directCategoriesInfo": {"categories": categories.iter().enumerate().map(|(i, c)| json!({"id": c, "index": i})).collect::<Vec<_>>()},
        "allCategoriesInfo": {"categories": categories.iter().enumerate().map(|(i, c)| json!({"id": c, "index": i})).collect::<Vec<_>>()},
        "currency": product.currency,
        "url": {"relativePath": format!("/product-page/{slug}"), "url": format!("{site_url}/product-page/{slug}")},
        "inventory": {"availabilityStatus": status, "preorderStatus": preorder, "preorderAvailability": "ALL_VARIANTS"},
        "productType": "PHYSICAL",
        "physicalProperties": {},
        "options": product.attributes.iter().enumerate().map(|(i, a)| json!({"id": format!("{id}-o{i}"), "name": a.name, "optionRenderType": "TEXT_CHOICES", "choicesSettings": {"choices": a.values.iter().enumerate().map(|(j, v)| json!({"choiceId": format!("{id}-o{i}c{j}"), "name": v, "choiceType": "CHOICE_TEXT"})).collect::<Vec<_>>()}})).collect::<Vec<_>>(),
        "variantsInfo": {"variants": variants},
        "variantSummary": {"variantCount": product.variants.len().max(1)},
    });
    if let Some(main) = categories.first() {
        json["mainCategoryId"] = main.clone().into();
    }
    if let Some(brand) = &product.brand {
        json["brand"] = json!({"id": format!("brand-{}", slug_section(brand, 0)), "name": brand});
    }
    if let Some(actual) = actual {
        json["actualPriceRange"] = json!({"minValue": amount(actual, &product.currency), "maxValue": amount(actual, &product.currency)});
    }
    if let Some(compare_at) = compare_at {
        json["compareAtPriceRange"] = json!({"minValue": amount(compare_at, &product.currency), "maxValue": amount(compare_at, &product.currency)});
    }
    json
}

fn slug_section(title: &str, index: usize) -> String {
    let slug = slug(title);
    if slug.is_empty() {
        format!("section-{index}")
    } else {
        slug
    }
}

fn number(money: Money) -> Value {
    serde_json::from_str(&money.to_decimal()).unwrap_or(Value::Null)
}

/// A V1 product (§4.6): HTML `description`, plain-string `brand`, numeric prices.
fn v1_json(
    product: &SourceProduct,
    id: &str,
    at: DateTime<Utc>,
    site_url: &str,
    collections: &[String],
) -> Value {
    let slug = slug(&product.title);
    let price = product.price.or(product.sale_price);
    let discounted = product.sale_price.or(product.price);
    let in_stock = product.availability == Availability::InStock;
    let items: Vec<Value> = product
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"id": format!("{id}-m{i}"), "title": "", "mediaType": "image", "image": {"url": image.url, "width": 1000, "height": 1000, "altText": image.alt}}))
        .collect();
    json!({
        "id": id,
        "name": product.title,
        "slug": slug,
        "visible": product.published,
        "productType": "physical",
        "description": product.description_html,
        "sku": product.sku.clone().unwrap_or_default(),
        "weight": 0,
        "stock": {"trackInventory": product.stock.is_some(), "quantity": product.stock, "inStock": in_stock,
                  "inventoryStatus": if in_stock { "IN_STOCK" } else { "OUT_OF_STOCK" }},
        "priceData": {"currency": product.currency, "price": price.map(number), "discountedPrice": discounted.map(number),
                      "formatted": {"price": price.map(|m| m.to_decimal()), "discountedPrice": discounted.map(|m| m.to_decimal())}},
        "additionalInfoSections": product.info_sections.iter().map(|s| json!({"title": s.title, "description": s.html})).collect::<Vec<_>>(),
        "ribbon": "",
        "brand": product.brand,
        "media": {"mainMedia": items.first().cloned(), "items": items},
        "productPageUrl": {"base": format!("{site_url}/"), "path": format!("/product-page/{slug}")},
        "numericId": id.rsplit('-').next().and_then(|n| u64::from_str_radix(n, 16).ok()).unwrap_or(0).to_string(),
        "collectionIds": collections,
        "seoData": {"tags": seo_tags(product)},
        "productOptions": product.attributes.iter().map(|a| json!({"optionType": "drop_down", "name": a.name, "choices": a.values.iter().map(|v| json!({"value": v, "description": v, "inStock": true, "visible": true})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "createdDate": iso(at),
        "lastUpdated": iso(at),
    })
}

// ---------------------------------------------------------------------------------------
// Errors (§6.1)

fn application_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "details": {"applicationError": {"code": code, "description": message, "data": {}}}})),
    )
        .into_response()
}

fn validation_error(field: &str, rule: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"message": format!("INVALID_ARGUMENT: {field} {description}"),
                    "details": {"validationError": {"fieldViolations": [{"field": field, "description": description, "violatedRule": rule, "data": {}}]}}})),
    )
        .into_response()
}

fn system_error(status: StatusCode) -> Response {
    (status, Json(json!({"message": "", "details": {}}))).into_response()
}

fn throttled(retry_after_secs: Option<u64>) -> Response {
    let mut response = application_error(
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        "Too many requests: the app exceeded 200 requests per minute for this instance",
    );
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    response
}

async fn no_route() -> Response {
    application_error(StatusCode::NOT_FOUND, "NOT_FOUND", "No such API")
}

/// Decrements the in-flight count however the request ends (dropped connections too).
struct InFlight(Shared);

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).in_flight -= 1;
    }
}

/// Counts the request, applies injected faults and the throttle window, and stamps
/// `x-wix-request-id` on the answer (§2.2).
async fn gate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let (fault, throttle_left, latency) = {
        let mut st = lock(&state);
        st.requests += 1;
        *st.per_path
            .entry(request.uri().path().to_owned())
            .or_default() += 1;
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        let now = Instant::now();
        let throttle_left = st
            .throttled_until
            .filter(|until| *until > now)
            .map(|until| until - now);
        (st.faults.pop_front(), throttle_left, st.latency)
    };
    let _in_flight = InFlight(state.clone());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut response = if let Some(left) = throttle_left {
        throttled(Some(left.as_secs_f64().ceil() as u64))
    } else {
        match fault {
            Some(Fault::RateLimited { retry_after_secs }) => {
                if let Some(secs) = retry_after_secs {
                    lock(&state).throttled_until = Some(Instant::now() + Duration::from_secs(secs));
                }
                throttled(retry_after_secs)
            }
            Some(Fault::ServerError) => system_error(StatusCode::INTERNAL_SERVER_ERROR),
            Some(Fault::Unavailable) => system_error(StatusCode::SERVICE_UNAVAILABLE),
            Some(Fault::EmptyForbidden) => StatusCode::FORBIDDEN.into_response(),
            Some(Fault::DropConnection) => {
                // Unwinding ends the connection's task, so the socket closes unanswered.
                // `resume_unwind` skips the panic hook: nothing is printed.
                std::panic::resume_unwind(Box::new("fake Wix drops the connection"));
            }
            Some(Fault::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                next.run(request).await
            }
            None => next.run(request).await,
        }
    };
    if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-wix-request-id", value);
    }
    response
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|err| {
        application_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("request body is not JSON: {err}"),
        )
    })
}

// ---------------------------------------------------------------------------------------
// OAuth (§2.1) and authentication (§2.2, §7.5)

/// `POST /oauth2/token` with the client-credentials grant. Error bodies are the Wix shape
/// with an OAuth `error` member as well (the exact shape is **UNCONFIRMED** in §2.1).
async fn mint_token(State(state): State<Shared>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
    let oauth_error = |status: StatusCode, error: &str, code: &str, message: &str| {
        (
            status,
            Json(json!({"error": error, "error_description": message, "message": message,
                        "details": {"applicationError": {"code": code, "description": message, "data": {}}}})),
        )
            .into_response()
    };
    let mut st = lock(&state);
    if text("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "UNSUPPORTED_GRANT_TYPE",
            "grant_type must be client_credentials",
        );
    }
    if text("client_id") != st.app_id || text("client_secret") != st.app_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "INVALID_CLIENT_CREDENTIALS",
            "client_id or client_secret is wrong",
        );
    }
    let instance_id = text("instance_id");
    match st.instances.get(&instance_id) {
        Some(instance) if !instance.removed => {}
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "APP_NOT_INSTALLED",
                "the app is not installed on this instance",
            )
        }
    }
    let lifetime = st.token_lifetime_secs;
    let header = URL_SAFE_NO_PAD.encode(r#"{"kid":"YHBsuJpH","alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        json!({"data": json!({"instance": {"instanceId": instance_id, "appDefId": st.app_id}}).to_string(),
               "iat": Utc::now().timestamp(), "exp": Utc::now().timestamp() + lifetime as i64})
        .to_string(),
    );
    let signature = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    let token = format!("OauthNG.JWS.{header}.{payload}.{signature}");
    st.tokens.insert(
        token.clone(),
        TokenRecord {
            instance_id,
            expires: Instant::now() + Duration::from_secs(lifetime),
            revoked: false,
        },
    );
    st.tokens_minted += 1;
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime}))
        .into_response()
}

/// The instance a request's token is bound to, after the instance's token bucket (§6.2).
fn authorize(st: &mut WixState, headers: &HeaderMap) -> Result<String, Response> {
    let unauthenticated =
        |message: &str| application_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message);
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(unauthenticated("missing Authorization header"));
    };
    let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
    let Some(record) = st.tokens.get(token) else {
        return Err(unauthenticated("the access token is not valid"));
    };
    if record.revoked {
        return Err(unauthenticated("the access token was revoked"));
    }
    if record.expires <= Instant::now() {
        return Err(unauthenticated("the access token expired"));
    }
    let instance_id = record.instance_id.clone();
    let Some(instance) = st.instances.get_mut(&instance_id) else {
        return Err(unauthenticated("unknown instance"));
    };
    if instance.removed {
        return Err(application_error(
            StatusCode::UNAUTHORIZED,
            "APP_REMOVED",
            "the app was removed from this site",
        ));
    }
    if !instance.bucket.take() {
        st.bucket_refusals += 1;
        return Err(throttled(None));
    }
    Ok(instance_id)
}

/// Authenticates and checks that the site runs the catalog the route belongs to. The code
/// for calling the wrong catalog's API is **UNCONFIRMED**.
fn authorize_catalog(
    st: &mut WixState,
    headers: &HeaderMap,
    version: CatalogVersion,
) -> Result<String, Response> {
    let instance_id = authorize(st, headers)?;
    let actual = st.instances.get(&instance_id).map(|i| i.version);
    if actual != Some(version) {
        let code = match actual {
            Some(CatalogVersion::V1Catalog) => "CATALOG_V1_SITE_CALLING_CATALOG_V3_API",
            Some(CatalogVersion::V3Catalog) => "CATALOG_V3_SITE_CALLING_CATALOG_V1_API",
            _ => "STORES_NOT_INSTALLED",
        };
        return Err(application_error(
            StatusCode::PRECONDITION_REQUIRED,
            code,
            "this site's catalog version does not serve this API",
        ));
    }
    Ok(instance_id)
}

macro_rules! guard {
    ($expr:expr) => {
        match $expr {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}

// ---------------------------------------------------------------------------------------
// App instance (§5.1) and catalog version (§4.1)

async fn app_instance(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut st = lock(&state);
    let instance_id = guard!(authorize(&mut st, &headers));
    let Some(instance) = st.instances.get(&instance_id) else {
        return system_error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let mut body = json!({
        "instance": {"appName": "ULTIMATE_OPTIMIZER", "appVersion": "1.0.0", "instanceId": instance_id,
                     "isFree": instance.plan.is_none(),
                     "permissions": ["WIX_DEVELOPERS.MANAGE_APP_INSTANCE"],
                     "availablePlans": [], "copiedFromTemplate": false, "freeTrialAvailable": instance.plan.is_none()},
        "site": {"locale": "en", "multilingual": {"isMultiLingual": false, "supportedLanguages": []},
                 "paymentCurrency": "USD", "siteDisplayName": "Merchant site", "url": instance.site_url,
                 "siteId": format!("site-{instance_id}"), "installedWixApps": []},
    });
    if let Some(plan) = &instance.plan {
        let mut billing = json!({"billingCycle": plan.billing_cycle, "packageName": plan.package_name,
                                 "timeStamp": iso(plan.time_stamp), "autoRenewing": plan.auto_renewing,
                                 "invoiceId": plan.invoice_id, "source": "",
                                 "freeTrialInfo": {"status": "NOT_AVAILABLE"}});
        if let Some(expiration) = plan.expiration_date {
            billing["expirationDate"] = iso(expiration).into();
        }
        body["instance"]["billing"] = billing;
    }
    Json(body).into_response()
}

async fn catalog_version(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut st = lock(&state);
    let instance_id = guard!(authorize(&mut st, &headers));
    let version = st
        .instances
        .get(&instance_id)
        .map(|i| i.version)
        .unwrap_or(CatalogVersion::StoresNotInstalled);
    Json(json!({"catalogVersion": version.as_str()})).into_response()
}

// ---------------------------------------------------------------------------------------
// Catalog V3 (§4.2–§4.4)

const V3_FIELDS: &[&str] = &[
    "URL",
    "CURRENCY",
    "INFO_SECTION",
    "MERCHANT_DATA",
    "PLAIN_DESCRIPTION",
    "INFO_SECTION_PLAIN_DESCRIPTION",
    "SUBSCRIPTION_PRICES_INFO",
    "BREADCRUMBS_INFO",
    "WEIGHT_MEASUREMENT_UNIT_INFO",
    "VARIANT_OPTION_CHOICE_NAMES",
    "MEDIA_ITEMS_INFO",
    "DESCRIPTION",
    "DIRECT_CATEGORIES_INFO",
    "ALL_CATEGORIES_INFO",
    "INFO_SECTION_DESCRIPTION",
    "THUMBNAIL",
    "PRODUCT_CHOICES_MEDIA_REFERENCES",
    "PRODUCT_CHOICES_DISPLAY_IMAGE",
    "MIN_PRICE_VARIANT",
    "DISCOUNT_INFO",
];

fn requested_fields<'a>(
    values: impl Iterator<Item = &'a str>,
) -> Result<HashSet<String>, Response> {
    let mut fields = HashSet::new();
    for value in values {
        if !V3_FIELDS.contains(&value) {
            return Err(validation_error(
                "fields",
                "FORMAT",
                &format!("{value:?} is not a RequestedFields value"),
            ));
        }
        fields.insert(value.to_owned());
    }
    Ok(fields)
}

fn body_fields(body: &Value) -> Result<HashSet<String>, Response> {
    match &body["fields"] {
        Value::Null => Ok(HashSet::new()),
        Value::Array(items) => requested_fields(items.iter().map(|v| v.as_str().unwrap_or("?"))),
        _ => Err(validation_error("fields", "FORMAT", "must be a list")),
    }
}

/// A copy of the product with only the optional blocks `fields` asked for (§4.2, §7.8).
fn project_v3(json: &Value, fields: &HashSet<String>, with_variants: bool) -> Value {
    let mut out = json.clone();
    let Some(object) = out.as_object_mut() else {
        return out;
    };
    let has = |f: &str| fields.contains(f);
    if !has("PLAIN_DESCRIPTION") {
        object.remove("plainDescription");
    }
    if !has("DESCRIPTION") {
        object.remove("description");
    }
    if !has("CURRENCY") {
        object.remove("currency");
        for range in ["actualPriceRange", "compareAtPriceRange"] {
            if let Some(range) = object.get_mut(range).and_then(Value::as_object_mut) {
                for bound in range.values_mut() {
                    if let Some(bound) = bound.as_object_mut() {
                        bound.remove("formattedAmount");
                    }
                }
            }
        }
    }
    if !has("URL") {
        object.remove("url");
    }
    if !has("MEDIA_ITEMS_INFO") {
        if let Some(media) = object.get_mut("media").and_then(Value::as_object_mut) {
            media.remove("itemsInfo");
        }
    }
    if !has("DIRECT_CATEGORIES_INFO") {
        object.remove("directCategoriesInfo");
    }
    if !has("ALL_CATEGORIES_INFO") {
        object.remove("allCategoriesInfo");
    }
    if let Some(sections) = object.get_mut("infoSections").and_then(Value::as_array_mut) {
        for section in sections.iter_mut().filter_map(Value::as_object_mut) {
            if !(has("INFO_SECTION")
                || has("INFO_SECTION_PLAIN_DESCRIPTION")
                || has("INFO_SECTION_DESCRIPTION"))
            {
                section.retain(|key, _| key == "id");
            }
            if !has("INFO_SECTION_PLAIN_DESCRIPTION") {
                section.remove("plainDescription");
            }
            if !has("INFO_SECTION_DESCRIPTION") {
                section.remove("description");
            }
        }
    }
    if !with_variants {
        object.remove("variantsInfo");
    }
    out
}

/// The filter operators the fake understands (§4.2 "Query filters").
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Filter {
    ids: Option<Vec<String>>,
    updated: Vec<(String, DateTime<Utc>)>,
    visible: Option<bool>,
}

impl Filter {
    fn parse(value: &Value, date_field: &str) -> Result<Filter, Response> {
        let mut filter = Filter::default();
        let Some(object) = value.as_object() else {
            return if value.is_null() {
                Ok(filter)
            } else {
                Err(validation_error(
                    "query.filter",
                    "FORMAT",
                    "must be an object",
                ))
            };
        };
        for (field, condition) in object {
            let operators: Vec<(String, Value)> = match condition {
                Value::Object(ops) => ops.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                other => vec![("$eq".to_owned(), other.clone())],
            };
            for (op, operand) in operators {
                match (field.as_str(), op.as_str()) {
                    ("id", "$eq") => {
                        filter.ids = Some(vec![operand.as_str().unwrap_or_default().to_owned()])
                    }
                    ("id", "$in") => {
                        filter.ids = Some(
                            operand
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|v| v.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        )
                    }
                    ("visible", "$eq") => filter.visible = operand.as_bool(),
                    (f, "$gt" | "$gte" | "$lt" | "$lte") if f == date_field => {
                        let at = operand
                            .as_str()
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .ok_or_else(|| {
                                validation_error(
                                    &format!("query.filter.{f}"),
                                    "FORMAT",
                                    "must be an ISO-8601 date",
                                )
                            })?;
                        filter.updated.push((op.clone(), at.with_timezone(&Utc)));
                    }
                    _ => {
                        return Err(application_error(
                            StatusCode::BAD_REQUEST,
                            "INVALID_FILTER",
                            &format!("filter on {field} with {op} is not supported"),
                        ))
                    }
                }
            }
        }
        Ok(filter)
    }

    fn matches(&self, stored: &Stored) -> bool {
        let dates_ok = self.updated.iter().all(|(op, at)| match op.as_str() {
            "$gt" => stored.updated > *at,
            "$gte" => stored.updated >= *at,
            "$lt" => stored.updated < *at,
            _ => stored.updated <= *at,
        });
        let visible_ok = self
            .visible
            .is_none_or(|v| stored.json["visible"].as_bool() == Some(v));
        dates_ok && visible_ok
    }
}

/// What an opaque V3 cursor carries: where the page ends and the query's filter.
#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    after: String,
    filter: Filter,
}

fn cursor_limit(paging: &Value, default: u64) -> Result<usize, Response> {
    match &paging["limit"] {
        Value::Null => Ok(default as usize),
        value => match value.as_u64() {
            Some(limit) if (1..=100).contains(&limit) => Ok(limit as usize),
            _ => Err(validation_error(
                "query.cursorPaging.limit",
                "MAX",
                "must be between 1 and 100",
            )),
        },
    }
}

async fn v3_query(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = guard!(parse_body(&body));
    v3_query_products(&state, &headers, &body)
}

/// `GET /stores/v3/products/query`, the form Wix's SDK sends first (`@wix/sdk` falls back to
/// `POST` only when the query string would pass 4,000 characters).
async fn v3_query_get(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let body = guard!(query_string_body(query.as_deref().unwrap_or("")));
    v3_query_products(&state, &headers, &body)
}

/// The request message of a `GET` call, as Wix's SDK encodes it (`toURLSearchParams` in
/// `@wix/sdk-runtime`, `build/rest-modules.js`): a message with nested fields travels whole
/// as `.r=<base64url(JSON), unpadded>`; a flat one as its fields, dotted paths as names,
/// repeated for lists (values stay strings, as proto3 JSON reads numbers from strings).
fn query_string_body(query: &str) -> Result<Value, Response> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
        application_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "query string is not URL-encoded",
        )
    })?;
    if let Some((_, encoded)) = pairs.iter().find(|(name, _)| name == ".r") {
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| {
                application_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "the .r parameter is not base64url",
                )
            })?;
        return serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                application_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "the .r parameter is not a JSON object",
                )
            });
    }
    let mut body = json!({});
    for (name, value) in pairs {
        let mut slot = &mut body;
        for segment in name.split('.') {
            if !slot.is_object() {
                *slot = json!({});
            }
            slot = &mut slot[segment];
        }
        match slot {
            Value::Null => *slot = Value::String(value),
            Value::Array(items) => items.push(Value::String(value)),
            other => *other = json!([other.take(), value]),
        }
    }
    Ok(body)
}

fn v3_query_products(state: &Shared, headers: &HeaderMap, body: &Value) -> Response {
    let mut st = lock(state);
    let instance_id = guard!(authorize_catalog(
        &mut st,
        headers,
        CatalogVersion::V3Catalog
    ));
    let fields = guard!(body_fields(body));
    let query = &body["query"];
    let limit = guard!(cursor_limit(&query["cursorPaging"], 100));
    // With a cursor only cursorPaging counts: the filter travels inside the cursor (§4.2).
    let (filter, after) = match query["cursorPaging"]["cursor"].as_str() {
        Some(text) => {
            let decoded = URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok());
            match decoded {
                Some(cursor) => (cursor.filter, Some(cursor.after)),
                None => {
                    return validation_error(
                        "query.cursorPaging.cursor",
                        "FORMAT",
                        "invalid cursor",
                    )
                }
            }
        }
        None => (guard!(Filter::parse(&query["filter"], "updatedDate")), None),
    };
    let Some(instance) = st.instances.get(&instance_id) else {
        return system_error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let range = match &after {
        Some(after) => instance
            .products
            .range::<String, _>((Bound::Excluded(after), Bound::Unbounded)),
        None => instance.products.range::<String, _>(..),
    };
    let wanted: Option<HashSet<&str>> = filter
        .ids
        .as_ref()
        .map(|ids| ids.iter().map(String::as_str).collect());
    let mut page: Vec<(&String, &Stored)> = range
        .filter(|(id, stored)| {
            wanted.as_ref().is_none_or(|w| w.contains(id.as_str())) && filter.matches(stored)
        })
        .take(limit + 1)
        .collect();
    let has_next = page.len() > limit;
    page.truncate(limit);
    let products: Vec<Value> = page
        .iter()
        .map(|(_, stored)| project_v3(&stored.json, &fields, false))
        .collect();
    let next = match (has_next, page.last()) {
        (true, Some((last, _))) => {
            let cursor = Cursor {
                after: (*last).clone(),
                filter,
            };
            Some(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default()))
        }
        _ => None,
    };
    Json(json!({"products": products, "pagingMetadata": {"count": products.len(), "cursors": {"next": next, "prev": null}, "hasNext": has_next}}))
        .into_response()
}

fn query_fields(raw: Option<String>) -> Result<HashSet<String>, Response> {
    let raw = raw.unwrap_or_default();
    requested_fields(
        raw.split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(key, _)| *key == "fields")
            .map(|(_, value)| value),
    )
}

fn product_not_found(id: &str) -> Response {
    application_error(
        StatusCode::NOT_FOUND,
        "PRODUCT_NOT_FOUND",
        &format!("Product with id {id} not found"),
    )
}

async fn v3_get(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut st = lock(&state);
    let instance_id = guard!(authorize_catalog(
        &mut st,
        &headers,
        CatalogVersion::V3Catalog
    ));
    let fields = guard!(query_fields(raw));
    match st
        .instances
        .get(&instance_id)
        .and_then(|i| i.products.get(&id))
    {
        Some(stored) => {
            Json(json!({"product": project_v3(&stored.json, &fields, true)})).into_response()
        }
        None => product_not_found(&id),
    }
}

/// Why one product's write failed: the HTTP status alone, and the per-item error of bulk.
struct WriteError {
    status: StatusCode,
    code: String,
    message: String,
    field: Option<(String, String)>,
}

impl WriteError {
    fn response(&self) -> Response {
        match &self.field {
            Some((field, rule)) => validation_error(field, rule, &self.message),
            None => application_error(self.status, &self.code, &self.message),
        }
    }

    fn item(&self) -> Value {
        json!({"code": self.code, "description": self.message, "data": {}})
    }
}

fn too_long(field: &str, max: usize) -> WriteError {
    WriteError {
        status: StatusCode::BAD_REQUEST,
        code: "INVALID_ARGUMENT".into(),
        message: format!("must be at most {max} characters"),
        field: Some((field.to_owned(), "MAX".to_owned())),
    }
}

/// Applies a V3 product patch (§4.4): revision required and current, top-level fields
/// merged (arrays and objects replaced wholesale), `name` ≤ 80 and `plainDescription`
/// ≤ 16000 characters, `plainDescription` rewriting `description`, the first media item
/// becoming `main`, then revision + 1 and a new `updatedDate`.
fn apply_v3_patch(instance: &mut FakeInstance, id: &str, patch: &Value) -> Result<(), WriteError> {
    let Some(stored) = instance.products.get_mut(id) else {
        return Err(WriteError {
            status: StatusCode::NOT_FOUND,
            code: "PRODUCT_NOT_FOUND".into(),
            message: format!("Product with id {id} not found"),
            field: None,
        });
    };
    let given = match &patch["revision"] {
        Value::String(text) => text.parse::<u64>().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    };
    let Some(given) = given else {
        return Err(WriteError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_ARGUMENT".into(),
            message: "is required".into(),
            field: Some(("product.revision".into(), "REQUIRED_FIELD".into())),
        });
    };
    let current = revision_of(&stored.json).unwrap_or(0);
    if given != current {
        // The applicationError code of a revision mismatch is UNCONFIRMED (§4.4).
        return Err(WriteError {
            status: StatusCode::CONFLICT,
            code: "REVISION_MISMATCH".into(),
            message: format!("Product {id} has a different revision ({current}) than the one you're attempting to update ({given})"),
            field: None,
        });
    }
    if let Some(name) = patch.get("name") {
        let length = name.as_str().map(|n| n.chars().count()).unwrap_or(0);
        if length == 0 {
            return Err(WriteError {
                status: StatusCode::BAD_REQUEST,
                code: "INVALID_ARGUMENT".into(),
                message: "must not be empty".into(),
                field: Some(("product.name".into(), "MIN".into())),
            });
        }
        if length > 80 {
            return Err(too_long("product.name", 80));
        }
    }
    if let Some(description) = patch.get("plainDescription").and_then(Value::as_str) {
        if description.chars().count() > 16_000 {
            return Err(too_long("product.plainDescription", 16_000));
        }
    }
    let Some(patch) = patch.as_object() else {
        return Ok(());
    };
    for (key, value) in patch {
        match key.as_str() {
            "id" | "revision" | "createdDate" | "updatedDate" => {}
            "plainDescription" => {
                let html = value.as_str().unwrap_or_default();
                stored.json["description"] = ricos(html);
                stored.json["plainDescription"] = value.clone();
            }
            "media" => {
                let mut media = value.clone();
                if let Some(items) = media["itemsInfo"]["items"].as_array_mut() {
                    for (i, item) in items.iter_mut().enumerate() {
                        if item.get("id").is_none() {
                            item["id"] = format!("{id}-u{i}").into();
                        }
                        item["mediaType"] = "IMAGE".into();
                        let url = item["url"].clone();
                        let alt = item["altText"].clone();
                        item["image"] = json!({"id": item["id"], "url": url, "height": 1000, "width": 1000, "altText": alt});
                    }
                    let main = items.first().cloned();
                    media["main"] = main.unwrap_or(Value::Null);
                }
                stored.json["media"] = media;
            }
            "infoSections" => {
                let mut sections = value.clone();
                if let Some(items) = sections.as_array_mut() {
                    for (i, section) in items.iter_mut().enumerate() {
                        if section.get("id").is_none() {
                            section["id"] = format!("{id}-n{i}").into();
                        }
                        let html = section["plainDescription"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        section["description"] = ricos(&html);
                        if section.get("uniqueName").is_none() {
                            section["uniqueName"] =
                                slug_section(section["title"].as_str().unwrap_or_default(), i)
                                    .into();
                        }
                    }
                }
                stored.json["infoSections"] = sections;
            }
            _ => stored.json[key] = value.clone(),
        }
    }
    touch(stored, CatalogVersion::V3Catalog);
    Ok(())
}

async fn v3_patch(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = guard!(parse_body(&body));
    let mut st = lock(&state);
    let instance_id = guard!(authorize_catalog(
        &mut st,
        &headers,
        CatalogVersion::V3Catalog
    ));
    let fields = guard!(body_fields(&body));
    let Some(instance) = st.instances.get_mut(&instance_id) else {
        return system_error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    if let Err(error) = apply_v3_patch(instance, &id, &body["product"]) {
        return error.response();
    }
    match instance.products.get(&id) {
        Some(stored) => {
            Json(json!({"product": project_v3(&stored.json, &fields, true)})).into_response()
        }
        None => product_not_found(&id),
    }
}

async fn v3_bulk_update(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = guard!(parse_body(&body));
    let mut st = lock(&state);
    let instance_id = guard!(authorize_catalog(
        &mut st,
        &headers,
        CatalogVersion::V3Catalog
    ));
    let fields = guard!(body_fields(&body));
    let items = body["products"].as_array().cloned().unwrap_or_default();
    if items.is_empty() || items.len() > 100 {
        return validation_error("products", "MAX", "must hold between 1 and 100 items");
    }
    let return_entity = body["returnEntity"].as_bool().unwrap_or(false);
    let Some(instance) = st.instances.get_mut(&instance_id) else {
        return system_error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let mut results = Vec::new();
    let (mut successes, mut failures) = (0, 0);
    for (index, item) in items.iter().enumerate() {
        let patch = &item["product"];
        let id = patch["id"].as_str().unwrap_or_default().to_owned();
        match apply_v3_patch(instance, &id, patch) {
            Ok(()) => {
                successes += 1;
                let mut result =
                    json!({"itemMetadata": {"id": id, "originalIndex": index, "success": true}});
                if return_entity {
                    if let Some(stored) = instance.products.get(&id) {
                        result["item"] = project_v3(&stored.json, &fields, true);
                    }
                }
                results.push(result);
            }
            Err(error) => {
                failures += 1;
                results.push(json!({"itemMetadata": {"id": id, "originalIndex": index, "success": false, "error": error.item()}}));
            }
        }
    }
    Json(json!({"results": results, "bulkActionMetadata": {"totalSuccesses": successes, "totalFailures": failures, "undetailedFailures": 0}}))
        .into_response()
}

/// `POST /categories/v1/categories/query` (§4.5): `treeReference` must be top-level.
async fn categories_query(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = guard!(parse_body(&body));
    let mut st = lock(&state);
    let instance_id = guard!(authorize(&mut st, &headers));
    if body["treeReference"]["appNamespace"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return validation_error(
            "treeReference",
            "REQUIRED_FIELD",
            "treeReference must not be empty",
        );
    }
    let limit = guard!(cursor_limit(&body["query"]["cursorPaging"], 50));
    let offset = match body["query"]["cursorPaging"]["cursor"].as_str() {
        Some(cursor) => match URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.parse::<usize>().ok())
        {
            Some(offset) => offset,
            None => {
                return validation_error("query.cursorPaging.cursor", "FORMAT", "invalid cursor")
            }
        },
        None => 0,
    };
    let Some(instance) = st.instances.get(&instance_id) else {
        return system_error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let categories: Vec<Value> = instance
        .categories
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| {
            let mut category = json!({"id": c.id, "name": c.name, "visible": true, "slug": slug(&c.name), "treeReference": {"appNamespace": "@wix/stores"}});
            if let Some(parent) = &c.parent {
                category["parentCategory"] = json!({"id": parent, "index": 0});
            }
            category
        })
        .collect();
    let has_next = offset + categories.len() < instance.categories.len();
    let next = has_next.then(|| URL_SAFE_NO_PAD.encode((offset + categories.len()).to_string()));
    Json(json!({"categories": categories, "pagingMetadata": {"count": categories.len(), "cursors": {"next": next}, "hasNext": has_next}}))
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Catalog V1 (§4.6)

/// V1 `filter` and `sort` are strings holding JSON.
fn json_string(value: &Value, field: &str) -> Result<Value, Response> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::String(text) if text.trim().is_empty() => Ok(Value::Null),
        Value::String(text) => serde_json::from_str(text)
            .map_err(|_| validation_error(field, "FORMAT", "must be a JSON string")),
        _ => Err(validation_error(
            field,
            "FORMAT",
            "must be a string holding JSON",
        )),
    }
}

fn offset_paging(paging: &Value) -> Result<(usize, usize), Response> {
    let limit = match &paging["limit"] {
        Value::Null => 100,
        value => match value.as_u64() {
            Some(limit) if (1..=100).contains(&limit) => limit as usize,
            _ => {
                return Err(validation_error(
                    "query.paging.limit",
                    "MAX",
                    "must be between 1 and 100",
                ))
            }
        },
    };
    Ok((limit, paging["offset"].as_u64().unwrap_or(0) as usize))
}

async fn v1_query(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = guard!(parse_body(&body));
    let mut st = lock(&state);
    let instance_id = guard!(authorize_catalog(
        &mut st,
        &headers,
        CatalogVersion::V1Catalog
    ));
    let query = &body["query"];
    let filter = guard!(Filter::parse(
        &guard!(json_string(&query["filter"], "query.filter")),
        "lastUpdated"
    ));
    guard!(json_string(&query["sort"], "query.sort"));
    let (limit, offset) = guard!(offset_paging(&query["paging"]));
    let Some(instance) = st.instances.get(&instance_id) else {
        return system_error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let wanted: Option<HashSet<&str>> = filter
        .ids
        .as_ref()
        .map(|ids| ids.iter().map(String::as_str).collect());
    let mut total = 0;
    let mut products = Vec::new();
    for (id, stored) in &instance.products {
        if wanted.as_ref().is_none_or(|w| w.contains(id.as_str())) && filter.matches(stored) {
            if total >= offset && products.len() < limit {
                products.push(stored.json.clone());
            }
            total += 1;
        }
    }
    Json(json!({"products": products, "metadata": {"items": products.len(), "offset": offset}, "totalResults": total})).into_response()
}

async fn v1_get(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut st = lock(&state);
    let instance_id = guard!(authorize_catalog(
        &mut st,
        &headers,
        CatalogVersion::V1Catalog
    ));
    match st
        .instances
        .get(&instance_id)
        .and_then(|i| i.products.get(&id))
    {
        Some(stored) => Json(json!({"product": stored.json})).into_response(),
        None => product_not_found(&id),
    }
}

/// V1 PATCH: top-level merge with no revision check (§4.6), `lastUpdated` bumped.
async fn v1_patch(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body = guard!(parse_body(&body));
    let mut st = lock(&state);
    let instance_id = guard!(authorize_catalog(
        &mut st,
        &headers,
        CatalogVersion::V1Catalog
    ));
    let Some(stored) = st
        .instances
        .get_mut(&instance_id)
        .and_then(|i| i.products.get_mut(&id))
    else {
        return product_not_found(&id);
    };
    let patch: Map<String, Value> = body["product"].as_object().cloned().unwrap_or_default();
    if let Some(name) = patch.get("name") {
        if name.as_str().map(|n| n.chars().count()).unwrap_or(0) > 80 {
            return too_long("product.name", 80).response();
        }
    }
    for (key, value) in patch {
        if !matches!(
            key.as_str(),
            "id" | "lastUpdated" | "createdDate" | "numericId"
        ) {
            stored.json[key] = value;
        }
    }
    touch(stored, CatalogVersion::V1Catalog);
    Json(json!({"product": stored.json})).into_response()
}

async fn v1_collections(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = guard!(parse_body(&body));
    let mut st = lock(&state);
    let instance_id = guard!(authorize_catalog(
        &mut st,
        &headers,
        CatalogVersion::V1Catalog
    ));
    let (limit, offset) = guard!(offset_paging(&body["query"]["paging"]));
    let Some(instance) = st.instances.get(&instance_id) else {
        return system_error(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let collections: Vec<Value> = instance
        .collections
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, name)| json!({"id": id, "name": name, "slug": slug(name), "visible": true, "numberOfProducts": 0}))
        .collect();
    Json(json!({"collections": collections, "metadata": {"items": collections.len(), "offset": offset}, "totalResults": instance.collections.len()}))
        .into_response()
}
