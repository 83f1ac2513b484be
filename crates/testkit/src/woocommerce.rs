//! A fake WooCommerce store that follows the REST API v3 as documented in
//! `../shared/reference/woocommerce.md` (Part B): the same paths under `/wp-json/wc/v3`,
//! Basic auth only over HTTPS (§B.5; loopback is plain HTTP, so the fake "pretends TLS"
//! unless told not to), 10 products per page by default and `per_page` limited to 1–100
//! with WooCommerce's `rest_invalid_param` body (§B.3), `X-WP-Total` / `X-WP-TotalPages` /
//! `Link` headers, an empty array past the last page, `modified_after` compared in GMT only
//! with `dates_are_gmt=true` (site-local otherwise, with a configurable site offset), money
//! as strings, dates without offset, and the exact error bodies of §B.8. Switches inject
//! 429 with `Retry-After`, 500s, slow answers and dropped connections.

// Request guards here fail with the finished WooCommerce error response, as handlers do.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use domain::{Availability, SourceProduct};
use serde_json::{json, Value};

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

struct FakeProduct {
    json: Value,
    modified: DateTime<Utc>,
    variations: Vec<Value>,
}

struct WooState {
    products: BTreeMap<i64, FakeProduct>,
    consumer_key: String,
    consumer_secret: String,
    pretend_tls: bool,
    site_offset_hours: i64,
    faults: VecDeque<Fault>,
    requests: u64,
}

/// A running fake store; dropped, it stops.
pub struct FakeWooCommerce {
    pub base_url: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    state: Arc<Mutex<WooState>>,
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
        let state = Arc::new(Mutex::new(WooState {
            products: BTreeMap::new(),
            consumer_key: consumer_key.clone(),
            consumer_secret: consumer_secret.clone(),
            pretend_tls: true,
            site_offset_hours: -3,
            faults: VecDeque::new(),
            requests: 0,
        }));
        let app = Router::new()
            .route("/wp-json/wc/v3/products", get(list_products))
            .route("/wp-json/wc/v3/products/{id}", get(get_product))
            .route(
                "/wp-json/wc/v3/products/{id}/variations",
                get(list_variations),
            )
            .fallback(no_route)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        FakeWooCommerce {
            base_url: format!("http://{address}"),
            consumer_key,
            consumer_secret,
            state,
            server,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WooState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Adds products (ids from `external_id` when numeric, else sequential), modified at
    /// `modified`.
    pub fn seed(&self, products: &[SourceProduct], modified: DateTime<Utc>) {
        let mut state = self.lock();
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
            let json = product_json(product, id, &ids, modified, state.site_offset_hours);
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

    /// Queues failures for the next requests, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.lock().faults.extend(faults.iter().copied());
    }

    /// Serve as if reached over plain HTTP: Basic auth is ignored, as WooCommerce does.
    pub fn set_plain_http(&self) {
        self.lock().pretend_tls = false;
    }

    /// Requests answered so far (including injected failures).
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    pub fn product_ids(&self) -> Vec<i64> {
        self.lock().products.keys().copied().collect()
    }
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

/// Counts the request, applies an injected fault, and checks the credentials (§B.5).
async fn admit(
    state: &Arc<Mutex<WooState>>,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
) -> Result<(), Response> {
    let (fault, pretend_tls, key, secret) = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.requests += 1;
        (
            state.faults.pop_front(),
            state.pretend_tls,
            state.consumer_key.clone(),
            state.consumer_secret.clone(),
        )
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
    let secure = pretend_tls
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            == Some("https");
    let credentials =
        if let (Some(k), Some(s)) = (query.get("consumer_key"), query.get("consumer_secret")) {
            Some((k.clone(), s.clone()))
        } else {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| STANDARD.decode(b.trim()).ok())
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| {
                    text.split_once(':')
                        .map(|(k, s)| (k.to_owned(), s.to_owned()))
                })
        };
    let cannot_view = || {
        error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_cannot_view",
            "Sorry, you cannot list resources.",
        )
    };
    let Some((given_key, given_secret)) = credentials.filter(|_| secure) else {
        return Err(cannot_view());
    };
    if given_key != key {
        return Err(cannot_view());
    }
    if given_secret != secret {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "woocommerce_rest_authentication_error",
            "Consumer secret is invalid.",
        );
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"WooCommerce API. Use a consumer key in the username field and a consumer secret in the password field.\""),
        );
        return Err(response);
    }
    Ok(())
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
fn paged<'a>(
    base: &str,
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
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{base}?page={}>; rel=\"prev\"", page - 1));
    }
    if pages > page {
        links.push(format!("<{base}?page={}>; rel=\"next\"", page + 1));
    }
    if let Ok(value) = HeaderValue::from_str(&links.join(", ")) {
        if !links.is_empty() {
            headers.insert("link", value);
        }
    }
    response
}

async fn list_products(
    State(state): State<Arc<Mutex<WooState>>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&state, &headers, &query).await {
        return response;
    }
    let (page, per_page) = match paging(&query) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let state = state.lock().unwrap_or_else(|p| p.into_inner());
    let modified_after = match query.get("modified_after") {
        None => None,
        Some(text) => {
            match NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S") {
                Ok(naive) => Some(naive),
                Err(_) => return invalid_param("modified_after", "Invalid date."),
            }
        }
    };
    let gmt = query
        .get("dates_are_gmt")
        .is_some_and(|v| v == "true" || v == "1");
    let mut items: Vec<(&i64, &FakeProduct)> = state
        .products
        .iter()
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
        _ => items.sort_by_key(|(id, product)| (product.modified, **id)),
    }
    if !ascending {
        items.reverse();
    }
    let items: Vec<&Value> = items
        .into_iter()
        .map(|(_, product)| &product.json)
        .collect();
    paged("/wp-json/wc/v3/products", items.into_iter(), page, per_page)
}

async fn get_product(
    State(state): State<Arc<Mutex<WooState>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&state, &headers, &query).await {
        return response;
    }
    let state = state.lock().unwrap_or_else(|p| p.into_inner());
    match id
        .parse::<i64>()
        .ok()
        .and_then(|id| state.products.get(&id))
    {
        Some(product) => Json(product.json.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "woocommerce_rest_product_invalid_id",
            "Invalid ID.",
        ),
    }
}

async fn list_variations(
    State(state): State<Arc<Mutex<WooState>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(response) = admit(&state, &headers, &query).await {
        return response;
    }
    let (page, per_page) = match paging(&query) {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let state = state.lock().unwrap_or_else(|p| p.into_inner());
    match id
        .parse::<i64>()
        .ok()
        .and_then(|id| state.products.get(&id))
    {
        Some(product) => paged(
            &format!("/wp-json/wc/v3/products/{id}/variations"),
            product.variations.iter(),
            page,
            per_page,
        ),
        None => error(
            StatusCode::NOT_FOUND,
            "woocommerce_rest_product_invalid_id",
            "Invalid ID.",
        ),
    }
}
