//! Properties of catalog CSV import: no file panics it, every data row of a file is either
//! imported or rejected with the line it starts on, and an exported catalog imports back
//! to the same products.

use std::collections::BTreeSet;

use connectors::csv::{export_woocommerce, parse_catalog};
use domain::{
    Availability, Money, OptionValue, ProductAttribute, ProductImage, SourceProduct, Variant,
};
use proptest::prelude::*;

/// Text a merchant could type in a cell: trimmed, never blank.
fn cell_text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[A-Za-z0-9äöüéß€ &'\"/()<>.,;:-]{{1,{max}}}"))
        .unwrap()
        .prop_map(|s| s.trim().to_owned())
        .prop_filter("blank", |s| !s.is_empty())
}

fn money() -> impl Strategy<Value = Money> {
    (0i64..=100_000_000_000).prop_map(|minor| Money { minor })
}

fn availability() -> impl Strategy<Value = Availability> {
    prop::sample::select(vec![
        Availability::InStock,
        Availability::OutOfStock,
        Availability::Preorder,
    ])
}

fn list(max_items: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(cell_text(12), 0..=max_items)
}

fn variant(product: usize, index: usize) -> impl Strategy<Value = Variant> {
    (
        prop::option::of("[A-Z0-9-]{1,10}"),
        cell_text(30),
        prop::collection::vec((cell_text(10), cell_text(10)), 0..=2),
        prop::option::of(money()),
        prop::option::of(-1000i64..100_000),
        availability(),
        prop::option::of("[0-9]{8,14}"),
        prop::option::of("https://img\\.example/[a-z0-9]{1,8}\\.jpg"),
    )
        .prop_map(
            move |(sku, title, options, price, stock, availability, gtin, image)| Variant {
                external_id: format!("{}", 100_000 + product * 10 + index),
                sku: sku.map(|s| format!("V{product}-{index}-{s}")),
                title,
                options: options
                    .into_iter()
                    .map(|(name, value)| OptionValue::new(name, value))
                    .collect(),
                price,
                sale_price: None,
                stock,
                availability,
                gtin,
                image,
            },
        )
}

fn product(index: usize) -> impl Strategy<Value = SourceProduct> {
    (
        (
            prop::option::of("[A-Z0-9-]{1,10}"),
            cell_text(60),
            prop::option::of(cell_text(200)),
            prop::option::of(cell_text(80)),
            prop::option::of((money(), prop::option::of(0u8..=100))),
            prop::option::of(-1000i64..100_000),
            availability(),
            any::<bool>(),
        ),
        (
            list(3),
            list(3),
            prop::collection::vec("https://img\\.example/[a-z0-9]{1,8}\\.jpg", 0..=3),
            prop::collection::vec((cell_text(12), list(3)), 0..=2),
            prop::option::of(cell_text(20)),
            prop::option::of("[0-9]{8,14}"),
            prop::option::of("https://shop\\.example/[a-z0-9]{1,8}"),
            prop::collection::vec(Just(()), 0..=2),
        ),
    )
        .prop_flat_map(move |(first, second)| {
            let variants = second
                .7
                .iter()
                .enumerate()
                .map(|(i, _)| variant(index, i))
                .collect::<Vec<_>>();
            (Just(first), Just(second), variants)
        })
        .prop_map(move |(first, second, variants)| {
            let (sku, title, description, short, price, stock, availability, published) = first;
            let (categories, tags, images, attributes, brand, gtin, link, _) = second;
            let (price, sale_price) = match price {
                Some((regular, Some(percent))) => (
                    Some(regular),
                    Some(Money {
                        minor: regular.minor * i64::from(percent) / 100,
                    }),
                ),
                Some((regular, None)) => (Some(regular), None),
                None => (None, None),
            };
            SourceProduct {
                external_id: format!("{}", 1000 + index),
                title,
                description_html: description.unwrap_or_default(),
                short_description: short.unwrap_or_default(),
                seo_title: None,
                seo_description: None,
                info_sections: Vec::new(),
                sku: sku.map(|s| format!("P{index}-{s}")),
                gtin,
                mpn: None,
                brand,
                price,
                sale_price,
                currency: "EUR".into(),
                availability,
                stock,
                categories,
                tags,
                images: images
                    .into_iter()
                    .map(|url| ProductImage { url, alt: None })
                    .collect(),
                link,
                attributes: attributes
                    .into_iter()
                    .filter(|(_, values)| !values.is_empty())
                    .map(|(name, values)| ProductAttribute { name, values })
                    .collect(),
                variants,
                published,
            }
        })
}

fn catalog() -> impl Strategy<Value = Vec<SourceProduct>> {
    (0usize..6).prop_flat_map(|count| (0..count).map(product).collect::<Vec<_>>())
}

/// A data row of a WooCommerce file, from cells that are often wrong.
fn loose_row() -> impl Strategy<Value = Vec<String>> {
    let pick = |options: &[&str]| {
        prop::sample::select(options.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    };
    (
        pick(&["1", "2", "3", "", "id", " 4 "]),
        pick(&[
            "simple",
            "variable",
            "variation",
            "",
            "grouped, featured",
            "bogus",
        ]),
        pick(&["", "SKU-1", "SKU-2", "a,b"]),
        prop_oneof![pick(&["", "  "]), cell_text(20), "\\PC{1,30}"],
        pick(&[
            "",
            "12",
            "12.5",
            "12.345",
            "-3",
            "abc",
            "1e3",
            "99999999999",
            " 7 ",
        ]),
        pick(&["", "10", "20", "x"]),
        pick(&["", "5", "1.5", "many", "-2"]),
        pick(&["", "SKU-1", "id:1", "id:9", "nobody"]),
        prop_oneof![
            pick(&["", "line one\nline two", "a \"quoted\" word"]),
            "\\PC{0,20}"
        ],
    )
        .prop_map(
            |(id, kind, sku, name, regular, sale, stock, parent, description)| {
                vec![
                    id,
                    kind,
                    sku,
                    name,
                    regular,
                    sale,
                    stock,
                    parent,
                    description,
                ]
            },
        )
}

const LOOSE_HEADER: [&str; 9] = [
    "ID",
    "Type",
    "SKU",
    "Name",
    "Regular price",
    "Sale price",
    "Stock",
    "Parent",
    "Description",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_catalog(&bytes, "USD");
    }

    #[test]
    fn arbitrary_text_under_a_real_header_never_panics(
        header in prop::sample::select(vec![
            "ID,Type,SKU,Name,Regular price,Sale price,Parent,Attribute 1 name,Attribute 1 value(s)\n",
            "Handle,Title,Body (HTML),Variant SKU,Variant Price,Option1 Name,Option1 Value\n",
        ]),
        body in "\\PC{0,400}",
    ) {
        let _ = parse_catalog(format!("{header}{body}").as_bytes(), "USD");
    }

    #[test]
    fn every_row_is_imported_or_rejected_with_its_line(
        rows in prop::collection::vec(loose_row(), 1..12),
    ) {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(LOOSE_HEADER).unwrap();
        // The line each written row starts on (1-based; the header is line 1).
        let mut starts = Vec::new();
        let mut line = 2u64;
        for row in &rows {
            if row.iter().all(|cell| cell.trim().is_empty()) {
                continue;
            }
            writer.write_record(row).unwrap();
            starts.push(line);
            line += row.iter().map(|cell| cell.matches('\n').count() as u64).sum::<u64>() + 1;
        }
        let bytes = writer.into_inner().unwrap();
        let import = parse_catalog(&bytes, "USD")
            .map_err(|err| TestCaseError::fail(format!("{err}: {}", String::from_utf8_lossy(&bytes))))?;
        let imported: usize = import.products.iter().map(|p| 1 + p.variants.len()).sum();
        prop_assert_eq!(
            imported + import.rejected.len(),
            starts.len(),
            "{:?} from {}",
            import.rejected,
            String::from_utf8_lossy(&bytes)
        );
        let rejected_lines: BTreeSet<u64> = import.rejected.iter().map(|r| r.line).collect();
        prop_assert_eq!(rejected_lines.len(), import.rejected.len(), "one rejection per row");
        for rejected in &import.rejected {
            prop_assert!(starts.contains(&rejected.line), "{:?} not a row start {:?}", rejected, starts);
            prop_assert!(!rejected.reason.is_empty());
        }
    }

    #[test]
    fn an_exported_catalog_imports_back_to_the_same_products(products in catalog()) {
        let bytes = export_woocommerce(&products);
        let import = parse_catalog(&bytes, "EUR")
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert!(import.rejected.is_empty(), "{:?}", import.rejected);
        prop_assert_eq!(import.products, products);
    }
}
