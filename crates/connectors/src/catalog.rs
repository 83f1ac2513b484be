//! The platform-neutral catalog interface. Sync reads a store through it and publishing
//! writes content back through it, whatever the platform: Wix Stores (Catalog V3 or V1),
//! WooCommerce, or the local catalog kept in our own database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{InfoSection, Platform, ProductImage, SourceProduct};

use crate::http::ConnectorError;

/// A product as the store holds it now, with the platform's concurrency token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProduct {
    pub product: SourceProduct,
    /// The platform's revision of the record: Wix V3 `revision`, WooCommerce
    /// `date_modified_gmt`, Wix V1 `lastUpdated`, our own counter for local catalogs. An
    /// update that names an older revision is refused with [`ConnectorError::Conflict`].
    pub revision: Option<String>,
}

impl CatalogProduct {
    /// A product as a store's API handed it over, fitted to the service's text rules
    /// ([`SourceProduct::fit_text`]): NUL characters are removed and a field over its cap
    /// is cut to it, with a warning naming the product and the fields. Stores may hold
    /// either (WordPress keeps whatever a plugin wrote); a sync must neither fail on them
    /// (PostgreSQL cannot store NUL) nor keep a 10 MB description. Every connector builds
    /// its products here, so a sync and a publish check see the same fitted text.
    pub fn from_store(mut product: SourceProduct, revision: Option<String>) -> Self {
        let fixes = product.fit_text();
        if !fixes.is_empty() {
            let fixes: Vec<String> = fixes.iter().map(ToString::to_string).collect();
            tracing::warn!(
                product.external_id = %product.external_id,
                text.fixes = %fixes.join("; "),
                "product text from the store was fitted to the text rules"
            );
        }
        CatalogProduct { product, revision }
    }
}

/// One page of a catalog listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogPage {
    pub products: Vec<CatalogProduct>,
    /// Pass to [`Catalog::list`] for the next page; `None` on the last page. Opaque: a page
    /// number for WooCommerce, Wix's cursor for V3, an offset for V1.
    pub next_cursor: Option<String>,
}

/// A collection (Wix V1), category (Wix V3, WooCommerce) as the store names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogCollection {
    pub external_id: String,
    pub name: String,
    /// `Parent > Child` for nested categories; the name for flat collections.
    pub path: String,
}

/// The content fields the service writes back to a store. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentUpdate {
    pub title: Option<String>,
    pub description_html: Option<String>,
    pub seo_title: Option<String>,
    pub seo_description: Option<String>,
    /// Replaces the product's info sections wholesale (matched by title where the platform
    /// keeps ids for them).
    pub info_sections: Option<Vec<InfoSection>>,
    /// Replaces the product's images wholesale, in order; the first is the main image.
    pub images: Option<Vec<ProductImage>>,
}

impl ContentUpdate {
    pub fn is_empty(&self) -> bool {
        self == &ContentUpdate::default()
    }
}

/// One product's update in a bulk write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductUpdate {
    pub external_id: String,
    /// The revision the caller read; `None` writes without a concurrency check (a forced
    /// publish).
    pub expected_revision: Option<String>,
    pub update: ContentUpdate,
}

/// A store's catalog, read and written through the platform's own API.
#[async_trait]
pub trait Catalog: Send + Sync {
    fn platform(&self) -> Platform;

    /// A page of products in a stable order, starting at `cursor` (`None`: the first page).
    /// With `modified_since`, only products changed after that instant (incremental sync).
    async fn list(
        &self,
        cursor: Option<&str>,
        modified_since: Option<DateTime<Utc>>,
    ) -> Result<CatalogPage, ConnectorError>;

    /// One product, or `None` if the store no longer has it.
    async fn get(&self, external_id: &str) -> Result<Option<CatalogProduct>, ConnectorError>;

    /// Writes `update.update` to one product and returns it as the store now holds it.
    /// [`ConnectorError::Conflict`] when `expected_revision` is stale,
    /// [`ConnectorError::NotFound`] when the product is gone.
    async fn update(&self, update: &ProductUpdate) -> Result<CatalogProduct, ConnectorError>;

    /// Writes several products, using the platform's bulk endpoint where it has one. The
    /// outer error is a failure of the whole call; each item has its own result, in order.
    async fn update_many(
        &self,
        updates: &[ProductUpdate],
    ) -> Result<Vec<Result<CatalogProduct, ConnectorError>>, ConnectorError>;

    /// The store's collections or categories.
    async fn collections(&self) -> Result<Vec<CatalogCollection>, ConnectorError>;
}

/// The cursor to read next after a page, or `None` after the last page. A store that hands
/// back the cursor it was given would make a reader loop forever: that is an error.
pub fn next_cursor(
    current: Option<&str>,
    page_next: Option<String>,
) -> Result<Option<String>, ConnectorError> {
    match page_next {
        Some(next) if Some(next.as_str()) == current => Err(ConnectorError::InvalidResponse(
            "the store returned the same page cursor twice".into(),
        )),
        next => Ok(next),
    }
}

/// Reads every page of `catalog` (optionally only products modified since an instant).
pub async fn list_all(
    catalog: &dyn Catalog,
    modified_since: Option<DateTime<Utc>>,
) -> Result<Vec<CatalogProduct>, ConnectorError> {
    let mut products = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = catalog.list(cursor.as_deref(), modified_since).await?;
        products.extend(page.products);
        cursor = next_cursor(cursor.as_deref(), page.next_cursor)?;
        if cursor.is_none() {
            return Ok(products);
        }
    }
}
