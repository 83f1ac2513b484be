//! WooCommerce REST API v3 client (<https://woocommerce.github.io/woocommerce-rest-api-docs/>;
//! sections: docs/protocols.md, WooCommerce): HTTPS with
//! Basic auth (consumer key and secret), or OAuth 1.0a for `http://` stores allowed in
//! development ([`oauth`]), products read 100 per page in id order with the
//! page count from `X-WP-TotalPages`, incremental reads by `modified_after` in GMT, and the
//! variations of variable products fetched at most 10 at a time.
//!
//! The client implements [`crate::Catalog`] ([`catalog`]), reads and writes the SEO plugin's
//! title and description ([`seo`]), registers product webhooks and verifies their signatures
//! ([`webhooks`]), and builds the key-generation flow's URL and callback type ([`auth`]).

pub mod auth;
mod catalog;
mod oauth;
pub mod seo;
pub mod webhooks;

pub use auth::{authorize_url, AuthorizeCallback, KeyScope};
pub use seo::SeoPlugin;
pub use webhooks::{verify_webhook_signature, Webhook, PRODUCT_TOPICS};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{
    Availability, Money, OptionValue, ProductAttribute, ProductImage, SourceProduct, Variant,
};
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::http::{send_with_retries, ConnectorError, RetryPolicy};

/// WooCommerce's largest page.
pub const MAX_PER_PAGE: u32 = 100;
/// Concurrent requests per store, so a sync never floods a merchant's server.
pub const MAX_CONCURRENT_REQUESTS: usize = 10;

/// The keys a merchant gives us, stored encrypted (`credentials_context` binds the
/// ciphertext to its store).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub consumer_key: String,
    pub consumer_secret: String,
}

/// The encryption context of a WooCommerce store's credentials.
pub fn credentials_context(store_url: &str) -> String {
    format!("woocommerce-credentials:{store_url}")
}

/// A store URL in the form stores are identified by (no trailing slash, lower-case host).
pub fn normalize_store_url(store_url: &str) -> Result<String, ConnectorError> {
    let mut url = reqwest::Url::parse(store_url.trim())
        .map_err(|_| ConnectorError::InvalidUrl(store_url.to_owned()))?;
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Refuses a store address that a client with `options` would not call: a private,
/// loopback or link-local address, literal or resolved ([`crate::address`]), unless the
/// options allow those. For the steps that name a store before any client calls it, such
/// as sending the merchant to the store's key-approval screen.
pub async fn ensure_allowed_store_address(
    store_url: &str,
    options: &ClientOptions,
) -> Result<(), ConnectorError> {
    if !options.guards_addresses() {
        return Ok(());
    }
    let url = reqwest::Url::parse(store_url.trim())
        .map_err(|_| ConnectorError::InvalidUrl(store_url.to_owned()))?;
    crate::address::ensure_public_host(&url).await
}

#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Accept `http://` store URLs (local development only). Requests to them are signed with
    /// OAuth 1.0a, the only authentication WooCommerce accepts over plain HTTP.
    pub allow_http: bool,
    /// Accept stores on private or local networks (an intranet store of a self-hosted
    /// installation). Implied by `allow_http`. Off, every connection is held to public
    /// addresses ([`crate::address`]).
    pub allow_private_addresses: bool,
    pub retry: RetryPolicy,
}

impl ClientOptions {
    fn guards_addresses(&self) -> bool {
        !(self.allow_http || self.allow_private_addresses)
    }
}

#[derive(Clone)]
pub struct WooCommerceClient {
    http: reqwest::Client,
    /// Connections are held to public addresses.
    guarded: bool,
    /// The store is reached over `http://`, where WooCommerce authenticates OAuth 1.0a only.
    plain_http: bool,
    base: String,
    consumer_key: String,
    consumer_secret: String,
    retry: RetryPolicy,
    permits: Arc<Semaphore>,
    /// WooCommerce answers prices without a currency; the store's currency, "USD" unless set.
    currency: String,
    /// The store's SEO plugin, found once ([`WooCommerceClient::detect_seo_plugin`]) for
    /// products that carry no SEO meta yet.
    store_seo: Arc<tokio::sync::OnceCell<SeoPlugin>>,
}

impl std::fmt::Debug for WooCommerceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WooCommerceClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// One page of products and the totals WooCommerce reports in its headers.
#[derive(Debug, Clone)]
pub struct ProductsPage {
    pub products: Vec<WooProduct>,
    pub total: u64,
    pub total_pages: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WooTerm {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WooImage {
    pub src: String,
    #[serde(default)]
    pub alt: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WooAttribute {
    pub name: String,
    #[serde(default)]
    pub options: Vec<String>,
    /// Set on variations: the variation's value for this attribute.
    #[serde(default)]
    pub option: Option<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct WooMeta {
    pub key: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

/// The product fields the service reads (§B.2).
#[derive(Debug, Clone, Deserialize)]
pub struct WooProduct {
    pub id: i64,
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub permalink: String,
    #[serde(default)]
    pub date_modified_gmt: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub short_description: String,
    #[serde(default)]
    pub sku: String,
    #[serde(default)]
    pub regular_price: String,
    #[serde(default)]
    pub sale_price: String,
    #[serde(default)]
    pub stock_status: String,
    #[serde(default)]
    pub stock_quantity: Option<i64>,
    #[serde(default)]
    pub categories: Vec<WooTerm>,
    #[serde(default)]
    pub tags: Vec<WooTerm>,
    #[serde(default)]
    pub images: Vec<WooImage>,
    #[serde(default)]
    pub attributes: Vec<WooAttribute>,
    #[serde(default)]
    pub variations: Vec<i64>,
    #[serde(default)]
    pub meta_data: Vec<WooMeta>,
    #[serde(default)]
    pub global_unique_id: Option<String>,
    #[serde(default)]
    pub external_url: String,
}

/// A variation (§B.2 "Variations"): one selected option per attribute, one image.
#[derive(Debug, Clone, Deserialize)]
pub struct WooVariation {
    pub id: i64,
    #[serde(default)]
    pub sku: String,
    #[serde(default)]
    pub regular_price: String,
    #[serde(default)]
    pub sale_price: String,
    #[serde(default)]
    pub stock_status: String,
    #[serde(default)]
    pub stock_quantity: Option<i64>,
    #[serde(default)]
    pub attributes: Vec<WooAttribute>,
    #[serde(default)]
    pub image: Option<WooImage>,
    #[serde(default)]
    pub global_unique_id: Option<String>,
}

#[derive(Deserialize)]
struct WooErrorBody {
    code: String,
    message: String,
}

impl WooCommerceClient {
    /// A client for the store at `store_url` (its home address, e.g. `https://shop.example`).
    pub fn new(
        store_url: &str,
        consumer_key: &str,
        consumer_secret: &str,
        options: ClientOptions,
    ) -> Result<Self, ConnectorError> {
        let trimmed = store_url.trim().trim_end_matches('/');
        let parsed = reqwest::Url::parse(trimmed)
            .map_err(|_| ConnectorError::InvalidUrl(store_url.to_owned()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if options.allow_http => {}
            "http" => {
                return Err(ConnectorError::InsecureUrl(
                    "WooCommerce accepts API keys only over HTTPS".into(),
                ))
            }
            _ => return Err(ConnectorError::InvalidUrl(store_url.to_owned())),
        }
        if parsed.host_str().is_none() || !parsed.username().is_empty() {
            return Err(ConnectorError::InvalidUrl(store_url.to_owned()));
        }
        let guarded = options.guards_addresses();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("UltimateOptimizer/", env!("CARGO_PKG_VERSION")));
        if guarded {
            crate::address::ensure_public_literal(&parsed)?;
            builder = builder
                .dns_resolver(Arc::new(crate::address::PublicOnlyResolver))
                .redirect(crate::address::public_redirects(3));
        } else {
            builder = builder.redirect(reqwest::redirect::Policy::limited(3));
        }
        let http = builder
            .build()
            .map_err(|err| ConnectorError::Unreachable(err.to_string()))?;
        Ok(WooCommerceClient {
            http,
            guarded,
            plain_http: parsed.scheme() == "http",
            base: trimmed.to_owned(),
            consumer_key: consumer_key.trim().to_owned(),
            consumer_secret: consumer_secret.trim().to_owned(),
            retry: options.retry,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS)),
            currency: "USD".to_owned(),
            store_seo: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// The store's currency (WooCommerce's `woocommerce_currency` setting), used for the
    /// prices of products read through [`crate::Catalog`].
    pub fn with_currency(mut self, currency: &str) -> Self {
        currency.trim().clone_into(&mut self.currency);
        self
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, ConnectorError> {
        self.send(reqwest::Method::GET, path, query, None, true)
            .await
    }

    /// One API call under the per-store concurrency limit. `retry` is false for calls that
    /// are not idempotent (creating a webhook twice makes two).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        retry: bool,
    ) -> Result<reqwest::Response, ConnectorError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ConnectorError::Unreachable("the client is shutting down".into()))?;
        let url = format!("{}/wp-json/wc/v3{path}", self.base);
        let policy = if retry {
            self.retry
        } else {
            RetryPolicy {
                max_retries: 0,
                ..self.retry
            }
        };
        send_with_retries(
            &policy,
            || {
                let request = self
                    .http
                    .request(method.clone(), &url)
                    .query(query)
                    .header(reqwest::header::ACCEPT, "application/json");
                // Each attempt is signed anew: WooCommerce refuses a nonce it has seen.
                let request = if self.plain_http {
                    request.query(&oauth::signature_parameters(
                        method.as_str(),
                        &url,
                        query,
                        &self.consumer_key,
                        &self.consumer_secret,
                        Utc::now().timestamp(),
                        &oauth::nonce(),
                    ))
                } else {
                    request.basic_auth(&self.consumer_key, Some(&self.consumer_secret))
                };
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            },
            |status, body| async move { platform_error(status, &body) },
        )
        .await
    }

    /// Checks that the address is a WooCommerce store and the keys may read products.
    pub async fn verify(&self) -> Result<(), ConnectorError> {
        if self.guarded {
            // Resolved once here for a clear answer; every request is held to public
            // addresses by the client's resolver anyway.
            let url = reqwest::Url::parse(&self.base)
                .map_err(|_| ConnectorError::InvalidUrl(self.base.clone()))?;
            crate::address::ensure_public_host(&url).await?;
        }
        self.products_page(1, 1, None).await.map(|_| ())
    }

    /// One page of products in id order, optionally only those modified after `since`.
    pub async fn products_page(
        &self,
        page: u32,
        per_page: u32,
        since: Option<DateTime<Utc>>,
    ) -> Result<ProductsPage, ConnectorError> {
        let mut query = vec![
            ("page", page.to_string()),
            ("per_page", per_page.clamp(1, MAX_PER_PAGE).to_string()),
            ("orderby", "id".to_owned()),
            ("order", "asc".to_owned()),
            ("status", "any".to_owned()),
        ];
        if let Some(since) = since {
            query.push((
                "modified_after",
                since.format("%Y-%m-%dT%H:%M:%S").to_string(),
            ));
            // Without it WooCommerce compares against site-local time (§B.3).
            query.push(("dates_are_gmt", "true".to_owned()));
        }
        let response = self.get("/products", &query).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
        };
        let total = header("x-wp-total").unwrap_or(0);
        let total_pages = header("x-wp-totalpages").unwrap_or(0) as u32;
        let products = response
            .json::<Vec<WooProduct>>()
            .await
            .map_err(|err| ConnectorError::InvalidResponse(format!("products page: {err}")))?;
        Ok(ProductsPage {
            products,
            total,
            total_pages,
        })
    }

    /// Every variation of a variable product.
    pub async fn variations(&self, product_id: i64) -> Result<Vec<WooVariation>, ConnectorError> {
        let mut all = Vec::new();
        for page in 1.. {
            let query = [
                ("page", page.to_string()),
                ("per_page", MAX_PER_PAGE.to_string()),
                ("orderby", "id".to_owned()),
                ("order", "asc".to_owned()),
            ];
            let response = self
                .get(&format!("/products/{product_id}/variations"), &query)
                .await?;
            let pages = response
                .headers()
                .get("x-wp-totalpages")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u32>().ok())
                .unwrap_or(1);
            let batch = response
                .json::<Vec<WooVariation>>()
                .await
                .map_err(|err| ConnectorError::InvalidResponse(format!("variations: {err}")))?;
            all.extend(batch);
            if page >= pages {
                break;
            }
        }
        Ok(all)
    }

    /// Every product (or every product modified after `since`) mapped to the neutral form,
    /// with variations. Also returns how many HTTP requests it took.
    pub async fn fetch_products(
        &self,
        currency: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<SourceProduct>, ConnectorError> {
        let first = self.products_page(1, MAX_PER_PAGE, since).await?;
        let mut products = first.products;
        for page in 2..=first.total_pages.max(1) {
            products.extend(
                self.products_page(page, MAX_PER_PAGE, since)
                    .await?
                    .products,
            );
        }
        let mut lookups = tokio::task::JoinSet::new();
        for (index, product) in products.iter().enumerate() {
            if product.kind == "variable" && !product.variations.is_empty() {
                let client = self.clone();
                let id = product.id;
                lookups.spawn(async move { (index, client.variations(id).await) });
            }
        }
        let mut variations = vec![Vec::new(); products.len()];
        while let Some(joined) = lookups.join_next().await {
            let (index, result) =
                joined.map_err(|err| ConnectorError::Unreachable(err.to_string()))?;
            variations[index] = result?;
        }
        Ok(products
            .into_iter()
            .zip(variations)
            .map(|(product, variations)| {
                crate::CatalogProduct::from_store(to_source(product, variations, currency), None)
                    .product
            })
            .collect())
    }
}

fn platform_error(status: StatusCode, body: &str) -> ConnectorError {
    let (code, message) = match serde_json::from_str::<WooErrorBody>(body) {
        Ok(error) => (error.code, error.message),
        Err(_) => {
            let snippet: String = body.chars().take(200).collect();
            (
                format!("http_{}", status.as_u16()),
                if snippet.trim().is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    format!("not a WooCommerce API answer: {snippet}")
                },
            )
        }
    };
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        ConnectorError::Unauthorized { code, message }
    } else {
        ConnectorError::Platform {
            status: status.as_u16(),
            code,
            message,
        }
    }
}

fn money(text: &str) -> Option<Money> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match Money::parse_decimal(text) {
        Ok(money) => Some(money),
        Err(why) => {
            tracing::warn!(price = text, why, "unreadable WooCommerce price ignored");
            None
        }
    }
}

fn availability(stock_status: &str) -> Availability {
    match stock_status {
        "outofstock" => Availability::OutOfStock,
        "onbackorder" => Availability::Preorder,
        _ => Availability::InStock,
    }
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Maps a WooCommerce product and its variations to the platform-neutral product.
pub fn to_source(
    product: WooProduct,
    variations: Vec<WooVariation>,
    currency: &str,
) -> SourceProduct {
    let brand = product
        .meta_data
        .iter()
        .find(|meta| meta.key == "brand" || meta.key == "_brand")
        .and_then(|meta| meta.value.as_str().map(str::to_owned));
    let variants = variations
        .into_iter()
        .map(|variation| {
            let options: Vec<OptionValue> = variation
                .attributes
                .iter()
                .filter_map(|a| Some(OptionValue::new(a.name.clone(), a.option.clone()?)))
                .collect();
            let values: Vec<&str> = options.iter().map(|o| o.value.as_str()).collect();
            Variant {
                external_id: variation.id.to_string(),
                sku: non_empty(&variation.sku),
                title: format!("{} - {}", product.name, values.join(", ")),
                options,
                price: money(&variation.regular_price),
                sale_price: money(&variation.sale_price),
                stock: variation.stock_quantity,
                availability: availability(&variation.stock_status),
                gtin: variation.global_unique_id.as_deref().and_then(non_empty),
                image: variation.image.map(|image| image.src),
            }
        })
        .collect();
    let (seo_title, seo_description) = SeoPlugin::detect(&product.meta_data)
        .map(|plugin| plugin.read(&product.meta_data))
        .unwrap_or_default();
    SourceProduct {
        external_id: product.id.to_string(),
        title: product.name,
        description_html: product.description,
        short_description: product.short_description,
        seo_title,
        seo_description,
        info_sections: Vec::new(),
        sku: non_empty(&product.sku),
        gtin: product.global_unique_id.as_deref().and_then(non_empty),
        mpn: None,
        brand,
        price: money(&product.regular_price),
        sale_price: money(&product.sale_price),
        currency: currency.to_owned(),
        availability: availability(&product.stock_status),
        stock: product.stock_quantity,
        categories: product
            .categories
            .into_iter()
            .map(|term| term.name)
            .collect(),
        tags: product.tags.into_iter().map(|term| term.name).collect(),
        images: product
            .images
            .into_iter()
            .map(|image| ProductImage {
                alt: non_empty(&image.alt),
                url: image.src,
            })
            .collect(),
        link: non_empty(&product.permalink),
        attributes: product
            .attributes
            .into_iter()
            .map(|a| ProductAttribute {
                name: a.name,
                values: a.options,
            })
            .collect(),
        variants,
        published: product.status.is_empty() || product.status == "publish",
    }
}
