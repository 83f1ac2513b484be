//! The rules provider on real catalogs: our demo catalog and catalog fixtures, and the
//! third-party samples where `OPTIMIZER_SAMPLE_DATA` names their folder.

use std::path::PathBuf;

use ai::{RulesOptimizer, TextOptimizer, TextTask};
use connectors::csv::parse_catalog;
use domain::content::{html_to_text, limits, sanitize_html, section_limits};
use domain::{Attribute, ContentValue, Platform, SourceProduct};

fn catalog(bytes: &[u8]) -> Vec<SourceProduct> {
    parse_catalog(bytes, "USD").unwrap().products
}

fn samples() -> Vec<(String, Vec<SourceProduct>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let demo = std::fs::read(root.join("../../demo/catalog.csv")).unwrap();
    let mut all = vec![
        ("demo".to_owned(), catalog(&demo)),
        (
            "woocommerce fixture".to_owned(),
            catalog(&testkit::fixtures::woocommerce_export()),
        ),
        (
            "shopify fixture".to_owned(),
            catalog(&testkit::fixtures::shopify_products()),
        ),
    ];
    for name in [
        "woocommerce-sample_products.csv",
        "shopify-apparel.csv",
        "shopify-home-and-garden.csv",
        "shopify-jewelery.csv",
    ] {
        if let Some(bytes) = testkit::fixtures::third_party_sample(name) {
            all.push((name.to_owned(), catalog(&bytes)));
        }
    }
    all
}

fn task(product: &SourceProduct, attribute: Attribute, platform: Platform) -> TextTask<'_> {
    TextTask {
        product,
        attribute,
        target_lang: None,
        user_prompt: None,
        brand_voice: None,
        platform,
    }
}

#[tokio::test]
async fn every_sample_product_gets_valid_content_for_every_field() {
    let rules = RulesOptimizer::new();
    let mut checked = 0;
    for (file, products) in samples() {
        assert!(!products.is_empty(), "{file}");
        for product in &products {
            for platform in [Platform::Wix, Platform::Woocommerce] {
                for attribute in Attribute::ALL {
                    let outcome = rules.optimize(&task(product, attribute, platform)).await;
                    let value = match outcome {
                        Ok(value) => value,
                        Err(err) => {
                            // Only a product without details has no sections to build.
                            assert_eq!(attribute, Attribute::InfoSections, "{file}: {err}");
                            assert_eq!(err.code(), "provider_rejected");
                            continue;
                        }
                    };
                    checked += 1;
                    let max = limits(platform, attribute).max_chars;
                    match (attribute, value) {
                        (Attribute::Description, ContentValue::Text(html)) => {
                            assert!(html.chars().count() <= max);
                            assert_eq!(sanitize_html(&html), html, "{file}: stable");
                            assert!(!html_to_text(&html).is_empty());
                        }
                        (Attribute::InfoSections, ContentValue::Sections(sections)) => {
                            let l = section_limits(platform);
                            assert!(!sections.is_empty() && sections.len() <= l.max_sections);
                            for s in sections {
                                assert!(s.title.chars().count() <= l.title.max_chars);
                                assert_eq!(sanitize_html(&s.html), s.html);
                            }
                        }
                        (_, ContentValue::Text(text)) => {
                            let count = text.chars().count();
                            assert!(count > 0 && count <= max, "{file}: {text:?}");
                            assert!(!text.contains('<') || !text.contains('>'), "{text}");
                            assert!(!text.ends_with(','), "{file}: {text:?}");
                            assert_eq!(text.trim(), text);
                            assert!(!text.contains("  "));
                        }
                        (attribute, value) => panic!("{attribute:?}: {value:?}"),
                    }
                }
            }
        }
    }
    assert!(checked > 400, "{checked}");
}

#[tokio::test]
async fn demo_products_get_seo_fields_from_their_own_data() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let products = catalog(&std::fs::read(root.join("../../demo/catalog.csv")).unwrap());
    let tee = products
        .iter()
        .find(|p| p.title == "Ridgeline Organic Cotton Tee")
        .expect("the demo tee");
    let rules = RulesOptimizer::new();
    let ContentValue::Text(seo) = rules
        .optimize(&task(tee, Attribute::SeoTitle, Platform::Wix))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(seo.starts_with("Ridgeline Organic Cotton Tee"), "{seo}");
    assert!(seo.chars().count() <= 60, "{seo}");
    if let Some(brand) = tee.brand.as_deref() {
        assert!(seo.ends_with(&format!("| {brand}")), "{seo}");
    }
    let ContentValue::Text(meta) = rules
        .optimize(&task(tee, Attribute::SeoDescription, Platform::Wix))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        meta.starts_with("The Ridgeline Tee is the shirt you reach for first."),
        "{meta}"
    );
    assert!(meta.ends_with('.'), "ends with a whole sentence: {meta}");
    assert!(!meta.contains('<'));
}

#[tokio::test]
async fn a_sloppy_demo_product_is_tidied() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let products = catalog(&std::fs::read(root.join("../../demo/catalog.csv")).unwrap());
    let hoodie = products
        .iter()
        .find(|p| p.title == "hoodie hoodie fleece pullover")
        .expect("the sloppy demo hoodie");
    let rules = RulesOptimizer::new();
    assert_eq!(
        rules
            .optimize(&task(hoodie, Attribute::Title, Platform::Local))
            .await
            .unwrap(),
        ContentValue::Text("Hoodie Fleece Pullover".into())
    );
    let ContentValue::Text(meta) = rules
        .optimize(&task(hoodie, Attribute::SeoDescription, Platform::Local))
        .await
        .unwrap()
    else {
        panic!()
    };
    // The short description leads, the description follows, each sentence capitalised.
    assert_eq!(
        meta,
        "Warm hoodie. Warm fleece hoodie. Has pocket. Good for camping. Color: Rust, Charcoal."
    );
    let ContentValue::Text(description) = rules
        .optimize(&task(hoodie, Attribute::Description, Platform::Local))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(
        description.starts_with("<p>Warm fleece hoodie. Has pocket. Good for camping</p>"),
        "{description}"
    );
    assert!(description.contains("<li><strong>Color:</strong> Rust, Charcoal</li>"));
}
