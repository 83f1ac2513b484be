//! Catalog files for tests. The project's own fixtures (written for this project, shipped
//! in `crates/testkit/fixtures/`) cover every format the tests need, so `make test` works
//! on a fresh clone. Real third-party sample catalogs are an extra conformance check: they
//! are read from the folder `OPTIMIZER_SAMPLE_DATA` names (CI points it at the shared
//! sample folder beside the checkout), and a test without them says loudly that it skipped.

use std::path::PathBuf;

/// Names the folder of third-party sample catalogs.
pub const SAMPLE_DATA_VAR: &str = "OPTIMIZER_SAMPLE_DATA";

/// A WooCommerce product CSV export of an outdoor shop, written for this project: variable
/// products with their variations (parent by SKU), simple, grouped, external and
/// downloadable products, an unpublished one, sale prices, `Parent > Child` categories,
/// HTML and multi-line descriptions, upsells and cross-sells, and a UTF-8 BOM. 20 rows:
/// 14 products and 6 variations.
pub fn woocommerce_export() -> Vec<u8> {
    include_bytes!("../fixtures/woocommerce-export.csv").to_vec()
}

/// A Shopify product CSV of the same shop, written for this project: a single-variant
/// product, one with two options and four variants on continuation rows plus an extra image
/// on a row of its own, one with three variants, and an unpublished gift card.
pub fn shopify_products() -> Vec<u8> {
    include_bytes!("../fixtures/shopify-products.csv").to_vec()
}

/// A third-party sample catalog from `OPTIMIZER_SAMPLE_DATA`, or `None` (with a loud note)
/// when that folder is not configured. Under CI the folder must be configured.
pub fn third_party_sample(name: &str) -> Option<Vec<u8>> {
    let Some(folder) = std::env::var_os(SAMPLE_DATA_VAR).filter(|value| !value.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{SAMPLE_DATA_VAR} is unset: CI must run the third-party sample checks"
        );
        eprintln!(
            "*** {SAMPLE_DATA_VAR} is unset: the check against the third-party sample {name} is SKIPPED ***"
        );
        return None;
    };
    let path = PathBuf::from(folder).join(name);
    Some(std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display())))
}
