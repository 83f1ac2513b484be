//! Real third-party sample catalogs (WooCommerce's own sample catalog, Shopify Partners'
//! product CSVs) import cleanly: an extra conformance check beside the project's own
//! fixtures, run where `OPTIMIZER_SAMPLE_DATA` names their folder (CI does).

use connectors::csv::{export_woocommerce, parse_catalog, CsvFormat};
use testkit::fixtures::third_party_sample;

#[test]
fn woocommerce_sample_catalog_imports_with_its_variations() {
    let Some(csv) = third_party_sample("woocommerce-sample_products.csv") else {
        return;
    };
    let import = parse_catalog(&csv, "USD").unwrap();
    assert_eq!(import.format, CsvFormat::WooCommerce);
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    assert_eq!(import.products.len(), 18, "25 rows less 7 variations");
    let variations: usize = import.products.iter().map(|p| p.variants.len()).sum();
    assert_eq!(variations, 7);
    let tee = import
        .products
        .iter()
        .find(|p| p.title == "V-Neck T-Shirt")
        .unwrap();
    assert_eq!(tee.categories, ["Clothing > Tshirts"]);
    assert_eq!(tee.images.len(), 3);
    assert_eq!(tee.attributes[0].values, ["Blue", "Green", "Red"]);
    assert!(tee.variants.iter().all(|v| v.price.is_some()));

    let exported = export_woocommerce(&import.products);
    let again = parse_catalog(&exported, "USD").unwrap();
    assert!(again.rejected.is_empty(), "{:?}", again.rejected);
    assert_eq!(again.products, import.products);
}

#[test]
fn shopify_sample_catalogs_import() {
    for (file, min_products) in [
        ("shopify-apparel.csv", 5),
        ("shopify-home-and-garden.csv", 5),
        ("shopify-jewelery.csv", 5),
    ] {
        let Some(csv) = third_party_sample(file) else {
            return;
        };
        let import = parse_catalog(&csv, "USD").unwrap();
        assert_eq!(import.format, CsvFormat::Shopify, "{file}");
        assert!(import.rejected.is_empty(), "{file}: {:?}", import.rejected);
        assert!(
            import.products.len() >= min_products,
            "{file}: {}",
            import.products.len()
        );
        for product in &import.products {
            assert!(!product.title.is_empty(), "{file}");
            assert!(
                product.price.is_some(),
                "{file}: {} has no price",
                product.title
            );
        }
        let exported = export_woocommerce(&import.products);
        let again = parse_catalog(&exported, "USD").unwrap();
        assert!(again.rejected.is_empty(), "{file}: {:?}", again.rejected);
        assert_eq!(again.products.len(), import.products.len());
    }
}

#[test]
fn demo_catalog_imports_completely() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo/catalog.csv");
    let import = parse_catalog(&std::fs::read(&path).unwrap(), "USD").unwrap();
    assert!(import.rejected.is_empty(), "{:?}", import.rejected);
    assert_eq!(import.products.len(), 49);
    assert_eq!(
        import
            .products
            .iter()
            .map(|p| p.variants.len())
            .sum::<usize>(),
        12
    );
    let demo_dir = path.parent().unwrap();
    for product in &import.products {
        assert!(!product.images.is_empty(), "{} has no image", product.title);
        for image in &product.images {
            assert!(demo_dir.join(&image.url).exists(), "missing {}", image.url);
        }
        if let Some(gtin) = &product.gtin {
            assert!(domain::is_valid_gtin(gtin), "{gtin}");
        }
    }
    assert!(import
        .products
        .iter()
        .any(|p| p.title.contains("שלום") || p.title.contains("ספל")));
    assert!(import.products.iter().any(|p| p.title.chars().count() > 80));
}
