//! Store connectors. Every platform's products are mapped into the platform-neutral
//! [`domain::SourceProduct`]. This crate starts with the local catalog's CSV formats
//! ([`csv`]): the WooCommerce product CSV export format and the Shopify product CSV format,
//! both imported, WooCommerce's also exported.

pub mod csv;
