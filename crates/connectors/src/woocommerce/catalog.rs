//! [`Catalog`] on WooCommerce. Listing pages by page number (the cursor), 100 per page in id
//! order; writes go through `PUT /products/{id}` and `POST /products/batch`.
//!
//! WooCommerce has no revision check on writes: the revision is `date_modified_gmt`, and a
//! write that names one reads the product first and answers [`ConnectorError::Conflict`] when
//! it moved. Two limits follow from the platform: a change made between that read and the
//! write is not seen, and `date_modified_gmt` has one-second resolution, so two changes
//! within the same second look alike.
//!
//! Content mapping: title → `name`, description → `description`, images → `images[{src,
//! alt}]`, SEO title and description → the meta keys of the store's SEO plugin
//! ([`super::seo`]). WooCommerce has no info sections; rather than folding them into the
//! description (which would mix generated sections into the merchant's own text), a non-empty
//! `info_sections` update is refused with [`ConnectorError::Platform`] (status 422, code
//! [`INFO_SECTIONS_UNSUPPORTED`]); an empty one is a no-op.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Platform;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{to_source, SeoPlugin, WooCommerceClient, WooProduct, WooVariation, MAX_PER_PAGE};
use crate::catalog::{
    Catalog, CatalogCollection, CatalogPage, CatalogProduct, ContentUpdate, ProductUpdate,
};
use crate::http::ConnectorError;

/// WooCommerce's batch limit (`woocommerce_rest_batch_items_limit`, §B.4).
pub const MAX_BATCH_ITEMS: usize = 100;
/// The code of the error answered for info sections, which WooCommerce cannot hold.
pub const INFO_SECTIONS_UNSUPPORTED: &str = "woocommerce_info_sections_unsupported";
const INVALID_ID: &str = "woocommerce_rest_product_invalid_id";

#[derive(Deserialize)]
struct WooCategory {
    id: i64,
    name: String,
    #[serde(default)]
    parent: i64,
}

fn not_found(id: &str) -> ConnectorError {
    ConnectorError::NotFound(id.to_owned())
}

fn is_invalid_id(error: &ConnectorError) -> bool {
    matches!(error, ConnectorError::Platform { status: 404, code, .. } if code == INVALID_ID)
}

fn info_sections_unsupported() -> ConnectorError {
    ConnectorError::Platform {
        status: 422,
        code: INFO_SECTIONS_UNSUPPORTED.into(),
        message: "WooCommerce products have no info sections, so they are not published to \
                  WooCommerce stores"
            .into(),
    }
}

fn check_supported(update: &ContentUpdate) -> Result<(), ConnectorError> {
    match &update.info_sections {
        Some(sections) if !sections.is_empty() => Err(info_sections_unsupported()),
        _ => Ok(()),
    }
}

fn writes_seo(update: &ContentUpdate) -> bool {
    update.seo_title.is_some() || update.seo_description.is_some()
}

/// Whether anything would be sent (an empty `info_sections` writes nothing on WooCommerce).
fn writes_anything(update: &ContentUpdate) -> bool {
    update.title.is_some()
        || update.description_html.is_some()
        || update.images.is_some()
        || writes_seo(update)
}

fn conflict(id: &str, expected: &str, current: Option<String>) -> ConnectorError {
    ConnectorError::Conflict {
        code: "woocommerce_revision_mismatch".into(),
        message: format!(
            "product {id} was modified (date_modified_gmt {}) after revision {expected} was read",
            current.as_deref().unwrap_or("unknown")
        ),
        current_revision: current,
    }
}

fn check_revision(update: &ProductUpdate, current: &WooProduct) -> Result<(), ConnectorError> {
    match &update.expected_revision {
        Some(expected) if current.date_modified_gmt.as_deref() != Some(expected.as_str()) => {
            Err(conflict(
                &update.external_id,
                expected,
                current.date_modified_gmt.clone(),
            ))
        }
        _ => Ok(()),
    }
}

/// A failed batch item, `{id, error: {code, message, data: {status}}}` (§B.4).
fn item_error(id: &str, error: &Value) -> ConnectorError {
    let code = error["code"].as_str().unwrap_or("unknown_error").to_owned();
    let message = error["message"].as_str().unwrap_or("").to_owned();
    let status = error["data"]["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(400);
    if code == INVALID_ID {
        not_found(id)
    } else if status == 401 || status == 403 {
        ConnectorError::Unauthorized { code, message }
    } else {
        ConnectorError::Platform {
            status,
            code,
            message,
        }
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, ConnectorError> {
    response
        .json::<T>()
        .await
        .map_err(|err| ConnectorError::InvalidResponse(format!("{what}: {err}")))
}

impl WooCommerceClient {
    /// The store's SEO plugin as seen on a page of its most recently modified products: the
    /// first product carrying any plugin's keys decides. `None` when no product has any.
    pub async fn detect_seo_plugin(&self) -> Result<Option<SeoPlugin>, ConnectorError> {
        let query = [
            ("per_page", MAX_PER_PAGE.to_string()),
            ("orderby", "modified".to_owned()),
            ("order", "desc".to_owned()),
            ("status", "any".to_owned()),
        ];
        let response = self.get("/products", &query).await?;
        let products: Vec<WooProduct> = read_json(response, "products page").await?;
        Ok(products
            .iter()
            .find_map(|product| SeoPlugin::detect(&product.meta_data)))
    }

    /// The plugin to write SEO meta for on a product that carries none: the store's
    /// ([`WooCommerceClient::detect_seo_plugin`], looked up once per client), else Yoast SEO,
    /// the most installed, so a store that installs it later finds the values.
    async fn store_seo_plugin(&self) -> Result<SeoPlugin, ConnectorError> {
        self.store_seo
            .get_or_try_init(|| async {
                Ok(self.detect_seo_plugin().await?.unwrap_or(SeoPlugin::Yoast))
            })
            .await
            .copied()
    }

    /// The WooCommerce fields that write `update`; `current` is the product as read, if it was.
    async fn write_body(
        &self,
        current: Option<&WooProduct>,
        update: &ContentUpdate,
    ) -> Result<serde_json::Map<String, Value>, ConnectorError> {
        let mut body = serde_json::Map::new();
        if let Some(title) = &update.title {
            body.insert("name".into(), title.clone().into());
        }
        if let Some(description) = &update.description_html {
            body.insert("description".into(), description.clone().into());
        }
        if let Some(images) = &update.images {
            let images: Vec<Value> = images
                .iter()
                .map(
                    |image| json!({"src": image.url, "alt": image.alt.clone().unwrap_or_default()}),
                )
                .collect();
            body.insert("images".into(), images.into());
        }
        if writes_seo(update) {
            let plugin = match current.and_then(|p| SeoPlugin::detect(&p.meta_data)) {
                Some(plugin) => plugin,
                None => self.store_seo_plugin().await?,
            };
            let entries = plugin.meta_entries(
                update.seo_title.as_deref(),
                update.seo_description.as_deref(),
            );
            body.insert("meta_data".into(), entries.into());
        }
        Ok(body)
    }

    /// One product as WooCommerce holds it; `None` for `woocommerce_rest_product_invalid_id`.
    async fn product(&self, id: i64) -> Result<Option<WooProduct>, ConnectorError> {
        match self.get(&format!("/products/{id}"), &[]).await {
            Ok(response) => Ok(Some(read_json(response, "product").await?)),
            Err(error) if is_invalid_id(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Products by id in one listing request (at most 100 ids).
    async fn products_by_id(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, WooProduct>, ConnectorError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let include = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let query = [
            ("include", include),
            ("per_page", ids.len().min(MAX_BATCH_ITEMS).to_string()),
            ("status", "any".to_owned()),
        ];
        let response = self.get("/products", &query).await?;
        let products: Vec<WooProduct> = read_json(response, "products page").await?;
        Ok(products.into_iter().map(|p| (p.id, p)).collect())
    }

    /// Maps products to the neutral form, reading the variations of variable ones.
    async fn with_variations(
        &self,
        products: Vec<WooProduct>,
    ) -> Result<Vec<CatalogProduct>, ConnectorError> {
        let mut lookups = tokio::task::JoinSet::new();
        for (index, product) in products.iter().enumerate() {
            if product.kind == "variable" && !product.variations.is_empty() {
                let client = self.clone();
                let id = product.id;
                lookups.spawn(async move { (index, client.variations(id).await) });
            }
        }
        let mut variations: Vec<Vec<WooVariation>> = vec![Vec::new(); products.len()];
        while let Some(joined) = lookups.join_next().await {
            let (index, result) =
                joined.map_err(|err| ConnectorError::Unreachable(err.to_string()))?;
            variations[index] = result?;
        }
        Ok(products
            .into_iter()
            .zip(variations)
            .map(|(product, variations)| {
                let revision = product.date_modified_gmt.clone();
                CatalogProduct::from_store(to_source(product, variations, &self.currency), revision)
            })
            .collect())
    }

    async fn one(&self, product: WooProduct) -> Result<CatalogProduct, ConnectorError> {
        self.with_variations(vec![product])
            .await?
            .pop()
            .ok_or_else(|| ConnectorError::InvalidResponse("no product".into()))
    }

    /// Writes one chunk (at most [`MAX_BATCH_ITEMS`]) of `updates`: one listing request for
    /// the products whose revision or SEO plugin must be known, then one batch request.
    async fn update_chunk(
        &self,
        updates: &[ProductUpdate],
    ) -> Result<Vec<Result<CatalogProduct, ConnectorError>>, ConnectorError> {
        let mut results: Vec<Option<Result<CatalogProduct, ConnectorError>>> =
            vec![None; updates.len()];
        let mut ids = vec![0_i64; updates.len()];
        let mut to_read = Vec::new();
        for (index, update) in updates.iter().enumerate() {
            match (
                update.external_id.parse::<i64>(),
                check_supported(&update.update),
            ) {
                (Err(_), _) => results[index] = Some(Err(not_found(&update.external_id))),
                (_, Err(error)) => results[index] = Some(Err(error)),
                (Ok(id), Ok(())) => {
                    ids[index] = id;
                    let needs_read = update.expected_revision.is_some()
                        || writes_seo(&update.update)
                        || !writes_anything(&update.update);
                    if needs_read && !to_read.contains(&id) {
                        to_read.push(id);
                    }
                }
            }
        }
        let mut current = self.products_by_id(&to_read).await?;
        let mut items = Vec::new();
        let mut unchanged = Vec::new();
        for (index, update) in updates.iter().enumerate() {
            if results[index].is_some() {
                continue;
            }
            let id = ids[index];
            let read = current.get(&id);
            if to_read.contains(&id) {
                let Some(read) = read else {
                    results[index] = Some(Err(not_found(&update.external_id)));
                    continue;
                };
                if let Err(error) = check_revision(update, read) {
                    results[index] = Some(Err(error));
                    continue;
                }
            }
            if !writes_anything(&update.update) {
                unchanged.push(index);
                continue;
            }
            let mut body = self.write_body(read, &update.update).await?;
            body.insert("id".into(), id.into());
            items.push((index, Value::Object(body)));
        }
        for index in unchanged {
            if let Some(product) = current.remove(&ids[index]) {
                results[index] = Some(self.one(product).await);
            }
        }
        if !items.is_empty() {
            let request = json!({"update": items.iter().map(|(_, body)| body).collect::<Vec<_>>()});
            let response = self
                .send(Method::POST, "/products/batch", &[], Some(&request), true)
                .await?;
            let answer: Value = read_json(response, "batch answer").await?;
            let answered = answer["update"].as_array().cloned().unwrap_or_default();
            if answered.len() != items.len() {
                return Err(ConnectorError::InvalidResponse(format!(
                    "the batch answered {} items for {} sent",
                    answered.len(),
                    items.len()
                )));
            }
            let mut written = Vec::new();
            for ((index, _), item) in items.iter().zip(answered) {
                let external_id = &updates[*index].external_id;
                if item.get("error").is_some_and(|e| !e.is_null()) {
                    results[*index] = Some(Err(item_error(external_id, &item["error"])));
                    continue;
                }
                match serde_json::from_value::<WooProduct>(item) {
                    Ok(product) => written.push((*index, product)),
                    Err(err) => {
                        results[*index] = Some(Err(ConnectorError::InvalidResponse(format!(
                            "batch item: {err}"
                        ))))
                    }
                }
            }
            let (indexes, products): (Vec<usize>, Vec<WooProduct>) = written.into_iter().unzip();
            for (index, product) in indexes
                .into_iter()
                .zip(self.with_variations(products).await?)
            {
                results[index] = Some(Ok(product));
            }
        }
        Ok(results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(ConnectorError::InvalidResponse(
                        "no answer for the item".into(),
                    ))
                })
            })
            .collect())
    }
}

#[async_trait]
impl Catalog for WooCommerceClient {
    fn platform(&self) -> Platform {
        Platform::Woocommerce
    }

    /// The cursor is the next page number; `modified_since` is sent as `modified_after` with
    /// `dates_are_gmt=true` (§B.3).
    async fn list(
        &self,
        cursor: Option<&str>,
        modified_since: Option<DateTime<Utc>>,
    ) -> Result<CatalogPage, ConnectorError> {
        let page = match cursor {
            None => 1,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| {
                    ConnectorError::InvalidResponse(format!(
                        "{text:?} is not a WooCommerce page cursor"
                    ))
                })?,
        };
        let listed = self
            .products_page(page, MAX_PER_PAGE, modified_since)
            .await?;
        Ok(CatalogPage {
            products: self.with_variations(listed.products).await?,
            next_cursor: (page < listed.total_pages).then(|| (page + 1).to_string()),
        })
    }

    async fn get(&self, external_id: &str) -> Result<Option<CatalogProduct>, ConnectorError> {
        let Ok(id) = external_id.parse::<i64>() else {
            return Ok(None);
        };
        match self.product(id).await? {
            Some(product) => Ok(Some(self.one(product).await?)),
            None => Ok(None),
        }
    }

    async fn update(&self, update: &ProductUpdate) -> Result<CatalogProduct, ConnectorError> {
        check_supported(&update.update)?;
        let id = update
            .external_id
            .parse::<i64>()
            .map_err(|_| not_found(&update.external_id))?;
        let needs_read = update.expected_revision.is_some()
            || writes_seo(&update.update)
            || !writes_anything(&update.update);
        let current = if needs_read {
            let current = self
                .product(id)
                .await?
                .ok_or_else(|| not_found(&update.external_id))?;
            check_revision(update, &current)?;
            Some(current)
        } else {
            None
        };
        if !writes_anything(&update.update) {
            if let Some(current) = current {
                return self.one(current).await;
            }
        }
        let body = Value::Object(self.write_body(current.as_ref(), &update.update).await?);
        let response = match self
            .send(
                Method::PUT,
                &format!("/products/{id}"),
                &[],
                Some(&body),
                true,
            )
            .await
        {
            Ok(response) => response,
            Err(error) if is_invalid_id(&error) => return Err(not_found(&update.external_id)),
            Err(error) => return Err(error),
        };
        self.one(read_json(response, "product").await?).await
    }

    /// Chunks of at most 100 items (§B.4). A failure of the first chunk's requests fails the
    /// call; once a chunk has been written, a later chunk's failure becomes each of its
    /// items' error, so the caller still learns which products were written.
    async fn update_many(
        &self,
        updates: &[ProductUpdate],
    ) -> Result<Vec<Result<CatalogProduct, ConnectorError>>, ConnectorError> {
        let mut results = Vec::with_capacity(updates.len());
        for (number, chunk) in updates.chunks(MAX_BATCH_ITEMS).enumerate() {
            match self.update_chunk(chunk).await {
                Ok(chunk_results) => results.extend(chunk_results),
                Err(error) if number == 0 => return Err(error),
                Err(error) => results.extend(chunk.iter().map(|_| Err(error.clone()))),
            }
        }
        Ok(results)
    }

    /// Every product category, with its `Parent > Child` path.
    async fn collections(&self) -> Result<Vec<CatalogCollection>, ConnectorError> {
        let mut categories = Vec::new();
        for page in 1.. {
            let query = [
                ("page", page.to_string()),
                ("per_page", MAX_PER_PAGE.to_string()),
            ];
            let response = self.get("/products/categories", &query).await?;
            let pages = response
                .headers()
                .get("x-wp-totalpages")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u32>().ok())
                .unwrap_or(1);
            let batch: Vec<WooCategory> = read_json(response, "categories").await?;
            categories.extend(batch);
            if page >= pages {
                break;
            }
        }
        let by_id: HashMap<i64, &WooCategory> = categories.iter().map(|c| (c.id, c)).collect();
        Ok(categories
            .iter()
            .map(|category| {
                let mut names = vec![category.name.as_str()];
                let mut parent = category.parent;
                // Bounded: a corrupt parent loop must not hang the sync.
                while let Some(up) = by_id.get(&parent).filter(|_| names.len() < 32) {
                    names.push(up.name.as_str());
                    parent = up.parent;
                }
                names.reverse();
                CatalogCollection {
                    external_id: category.id.to_string(),
                    name: category.name.clone(),
                    path: names.join(" > "),
                }
            })
            .collect())
    }
}
