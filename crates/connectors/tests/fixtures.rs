//! The project's own catalog fixtures import as the formats say, and round-trip.

use connectors::csv::{export_woocommerce, parse_catalog, CsvFormat};

#[test]
fn the_woocommerce_export_fixture_imports_with_its_variations() {
    let import = parse_catalog(&testkit::fixtures::woocommerce_export(), "USD").unwrap();
    assert_eq!(import.format, CsvFormat::WooCommerce);
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    assert_eq!(import.products.len(), 14, "20 rows less 6 variations");
    let variations: usize = import.products.iter().map(|p| p.variants.len()).sum();
    assert_eq!(variations, 6);
    let crew = import
        .products
        .iter()
        .find(|p| p.title == "Merino Base Layer Crew")
        .unwrap();
    assert_eq!(crew.categories, ["Clothing > Base layers"]);
    assert_eq!(crew.images.len(), 2);
    assert_eq!(crew.attributes[0].values, ["Slate", "Moss"]);
    assert_eq!(crew.variants.len(), 3);
    assert!(crew.variants.iter().all(|v| v.price.is_some()));

    let exported = export_woocommerce(&import.products);
    let again = parse_catalog(&exported, "USD").unwrap();
    assert!(again.rejected.is_empty(), "{:?}", again.rejected);
    assert_eq!(again.products, import.products);
}

#[test]
fn the_shopify_fixture_imports_variants_from_continuation_rows() {
    let import = parse_catalog(&testkit::fixtures::shopify_products(), "USD").unwrap();
    assert_eq!(import.format, CsvFormat::Shopify);
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    assert_eq!(import.products.len(), 4);
    let fleece = import
        .products
        .iter()
        .find(|p| p.title == "Highland Fleece Pullover")
        .unwrap();
    assert_eq!(fleece.variants.len(), 4);
    assert_eq!(fleece.images.len(), 2, "the extra image on its own row");
    let socks = import
        .products
        .iter()
        .find(|p| p.title.starts_with("Wool Hiking Socks"))
        .unwrap();
    assert_eq!(socks.variants.len(), 3);
    for product in &import.products {
        assert!(product.price.is_some(), "{} has no price", product.title);
    }
    let exported = export_woocommerce(&import.products);
    let again = parse_catalog(&exported, "USD").unwrap();
    assert!(again.rejected.is_empty(), "{:?}", again.rejected);
}
