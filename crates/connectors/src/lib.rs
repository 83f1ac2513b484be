//! Store connectors. Every platform's products are mapped into the platform-neutral
//! [`domain::SourceProduct`] and reached through one [`catalog::Catalog`] interface: the
//! local catalog's CSV formats ([`csv`]), Wix Stores on Catalog V3 and V1 ([`wix`]) and the
//! WooCommerce REST API ([`woocommerce`]), whose HTTP calls go through one resilient client
//! ([`http`]). Stripe subscription billing ([`stripe`]) uses the same client and errors.

pub mod address;
pub mod catalog;
pub mod csv;
pub mod http;
pub mod stripe;
pub mod wix;
pub mod woocommerce;

pub use catalog::{
    list_all, next_cursor, Catalog, CatalogCollection, CatalogPage, CatalogProduct, ContentUpdate,
    ProductUpdate,
};
