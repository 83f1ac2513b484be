//! Store connectors. Every platform's products are mapped into the platform-neutral
//! [`domain::SourceProduct`]: the local catalog's CSV formats ([`csv`]) and the WooCommerce
//! REST API ([`woocommerce`]), whose HTTP calls go through one resilient client
//! ([`http`]).

pub mod csv;
pub mod http;
pub mod woocommerce;
