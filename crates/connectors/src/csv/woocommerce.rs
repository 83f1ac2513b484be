//! The WooCommerce product CSV export format, as in WooCommerce's own export of its sample
//! catalog (`woocommerce/woocommerce@ef015f740f89c35cebf34bc0c39a971be6723b68`
//! `plugins/woocommerce/sample-data/sample_products.csv`; docs/protocols.md, WooCommerce §C.1):
//! one row per product, `variation` rows pointing at their parent by `id:<ID>` or SKU in
//! `Parent`, `Parent > Child` category paths, comma-separated image URLs and numbered
//! `Attribute N name` / `Attribute N value(s)` columns.

use std::collections::HashMap;

use domain::{Availability, OptionValue, ProductAttribute, ProductImage, SourceProduct, Variant};

use super::{
    integer, price, split_list, text_reason, CsvError, CsvFormat, CsvImport, RejectedRow, Row,
    Table,
};

const PRODUCT_TYPES: [&str; 4] = ["simple", "variable", "grouped", "external"];
const MAX_ATTRIBUTES: usize = 20;

pub(crate) fn parse(table: &Table, rows: Vec<Row>, currency: &str) -> Result<CsvImport, CsvError> {
    let mut products: Vec<SourceProduct> = Vec::new();
    let mut rejected = Vec::new();
    // Parent references: `id:44` by ID, or the parent's SKU.
    let mut by_reference: HashMap<String, usize> = HashMap::new();
    let mut variations = Vec::new();
    let mut seen_ids = HashMap::new();

    for row in rows {
        let kind = row_type(table, &row);
        if kind == "variation" {
            variations.push(row);
            continue;
        }
        match product_from_row(table, &row, &kind, currency) {
            Ok(product) => {
                if let Some(first_line) = seen_ids.insert(product.external_id.clone(), row.line) {
                    rejected.push(RejectedRow {
                        line: row.line,
                        reason: format!(
                            "duplicate product {:?} (first seen on line {first_line})",
                            product.external_id
                        ),
                    });
                    continue;
                }
                let index = products.len();
                if let Some(id) = table.get(&row, "ID") {
                    by_reference.insert(format!("id:{id}"), index);
                }
                if let Some(sku) = &product.sku {
                    by_reference.insert(sku.clone(), index);
                }
                products.push(product);
            }
            Err(reason) => rejected.push(RejectedRow {
                line: row.line,
                reason,
            }),
        }
    }

    for row in variations {
        let parent = table.get(&row, "Parent").unwrap_or_default();
        let Some(&index) = by_reference.get(parent) else {
            let reason = if parent.is_empty() {
                "variation without a Parent".to_owned()
            } else {
                format!("variation's parent {parent:?} is not in the file (or was rejected)")
            };
            rejected.push(RejectedRow {
                line: row.line,
                reason,
            });
            continue;
        };
        match variant_from_row(table, &row, &products[index]) {
            Ok(variant) => products[index].variants.push(variant),
            Err(reason) => rejected.push(RejectedRow {
                line: row.line,
                reason,
            }),
        }
    }
    rejected.sort_by_key(|r| r.line);
    Ok(CsvImport {
        format: CsvFormat::WooCommerce,
        products,
        rejected,
    })
}

fn row_type(table: &Table, row: &Row) -> String {
    let cell = table
        .get(row, "Type")
        .unwrap_or("simple")
        .to_ascii_lowercase();
    split_list(&cell)
        .into_iter()
        .find(|kind| PRODUCT_TYPES.contains(&kind.as_str()) || kind == "variation")
        .unwrap_or_else(|| "simple".to_owned())
}

fn product_from_row(
    table: &Table,
    row: &Row,
    kind: &str,
    currency: &str,
) -> Result<SourceProduct, String> {
    let title = table.get(row, "Name").ok_or("Name is empty")?.to_owned();
    let sku = table.get(row, "SKU").map(str::to_owned);
    let external_id = table
        .get(row, "ID")
        .map(str::to_owned)
        .or_else(|| sku.clone())
        .ok_or("neither ID nor SKU is set")?;
    let regular = price(table, row, "Regular price")?;
    let sale = price(table, row, "Sale price")?;
    if let (Some(regular), Some(sale)) = (regular, sale) {
        if sale.minor > regular.minor {
            return Err(format!(
                "Sale price {} is higher than Regular price {}",
                sale.to_decimal(),
                regular.to_decimal()
            ));
        }
    }
    let stock = integer(table, row, "Stock")?;
    let attributes = attributes(table, row);
    let images = table
        .get(row, "Images")
        .map(split_list)
        .unwrap_or_default()
        .into_iter()
        .map(|url| ProductImage { url, alt: None })
        .collect();
    let published = !matches!(table.get(row, "Published"), Some("0") | Some("-1"));
    let _ = kind;
    let product = SourceProduct {
        external_id,
        title,
        description_html: table.raw(row, "Description").unwrap_or_default().to_owned(),
        short_description: table
            .raw(row, "Short description")
            .unwrap_or_default()
            .to_owned(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku,
        gtin: table
            .get(row, "Meta: gtin")
            .or_else(|| table.get(row, "GTIN, UPC, EAN, or ISBN"))
            .map(str::to_owned),
        mpn: None,
        brand: table
            .get(row, "Meta: brand")
            .or_else(|| table.get(row, "Brands"))
            .map(str::to_owned),
        price: regular,
        sale_price: sale,
        currency: currency.to_owned(),
        availability: availability(table, row, stock),
        stock,
        categories: table
            .get(row, "Categories")
            .map(split_list)
            .unwrap_or_default(),
        tags: table.get(row, "Tags").map(split_list).unwrap_or_default(),
        images,
        link: table.get(row, "External URL").map(str::to_owned),
        attributes,
        variants: Vec::new(),
        published,
    };
    product
        .check_text()
        .map_err(|err| text_reason(&err, |err| column(err.top)))?;
    Ok(product)
}

/// The column a product field is read from, for rejection reasons.
fn column(field: &str) -> Option<&'static str> {
    Some(match field {
        "externalId" => "ID",
        "title" => "Name",
        "descriptionHtml" => "Description",
        "shortDescription" => "Short description",
        "sku" => "SKU",
        "gtin" => "Meta: gtin",
        "brand" => "Meta: brand",
        "categories" => "Categories",
        "tags" => "Tags",
        "images" | "image" => "Images",
        "link" => "External URL",
        "attributes" | "options" => "Attribute name or value(s)",
        _ => return None,
    })
}

fn availability(table: &Table, row: &Row, stock: Option<i64>) -> Availability {
    match table.get(row, "In stock?") {
        Some("0") => Availability::OutOfStock,
        Some("backorder") => Availability::Preorder,
        Some(_) => Availability::InStock,
        None if stock == Some(0) => Availability::OutOfStock,
        None => Availability::InStock,
    }
}

fn attributes(table: &Table, row: &Row) -> Vec<ProductAttribute> {
    (1..=MAX_ATTRIBUTES)
        .filter_map(|n| {
            let name = table.get(row, &format!("Attribute {n} name"))?;
            let values = split_list(table.get(row, &format!("Attribute {n} value(s)"))?);
            Some(ProductAttribute {
                name: name.to_owned(),
                values,
            })
        })
        .collect()
}

fn variant_from_row(table: &Table, row: &Row, parent: &SourceProduct) -> Result<Variant, String> {
    let sku = table.get(row, "SKU").map(str::to_owned);
    let external_id = table
        .get(row, "ID")
        .map(str::to_owned)
        .or_else(|| sku.clone())
        .ok_or("variation has neither ID nor SKU")?;
    let options: Vec<OptionValue> = attributes(table, row)
        .into_iter()
        .filter_map(|attribute| {
            Some(OptionValue::new(
                attribute.name,
                attribute.values.into_iter().next()?,
            ))
        })
        .collect();
    let stock = integer(table, row, "Stock")?;
    let title = table
        .get(row, "Name")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let values: Vec<&str> = options.iter().map(|o| o.value.as_str()).collect();
            format!("{} - {}", parent.title, values.join(", "))
        });
    let variant = Variant {
        external_id,
        sku,
        title,
        options,
        price: price(table, row, "Regular price")?,
        sale_price: price(table, row, "Sale price")?,
        stock,
        availability: availability(table, row, stock),
        gtin: table.get(row, "Meta: gtin").map(str::to_owned),
        image: table
            .get(row, "Images")
            .and_then(|cell| split_list(cell).into_iter().next()),
    };
    variant.check_text().map_err(|err| {
        text_reason(&err, |err| match err.leaf {
            "name" | "value" => column("options"),
            leaf => column(leaf),
        })
    })?;
    Ok(variant)
}

const EXPORT_HEADER: [&str; 29] = [
    "ID",
    "Type",
    "SKU",
    "Name",
    "Published",
    "Is featured?",
    "Visibility in catalog",
    "Short description",
    "Description",
    "Tax status",
    "In stock?",
    "Stock",
    "Sale price",
    "Regular price",
    "Categories",
    "Tags",
    "Images",
    "Parent",
    "Attribute 1 name",
    "Attribute 1 value(s)",
    "Attribute 1 visible",
    "Attribute 1 global",
    "Attribute 2 name",
    "Attribute 2 value(s)",
    "Attribute 2 visible",
    "Attribute 2 global",
    "Meta: brand",
    "Meta: gtin",
    "External URL",
];

/// Writes products in the WooCommerce product CSV format (variants as `variation` rows).
/// Products imported from this format export back to equivalent rows.
pub fn export(products: &[SourceProduct]) -> Vec<u8> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let join = |items: &[String]| {
        items
            .iter()
            .map(|item| item.replace(',', "\\,"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let money = |m: Option<domain::Money>| m.map(|m| m.to_decimal()).unwrap_or_default();
    let in_stock = |a: Availability| match a {
        Availability::OutOfStock => "0",
        Availability::Preorder => "backorder",
        Availability::InStock => "1",
    };
    writer.write_record(EXPORT_HEADER).expect("in-memory write");
    for product in products {
        let kind = if product.variants.is_empty() {
            "simple"
        } else {
            "variable"
        };
        let mut record = vec![
            product.external_id.clone(),
            kind.to_owned(),
            product.sku.clone().unwrap_or_default(),
            product.title.clone(),
            if product.published { "1" } else { "0" }.to_owned(),
            "0".to_owned(),
            "visible".to_owned(),
            product.short_description.clone(),
            product.description_html.clone(),
            "taxable".to_owned(),
            in_stock(product.availability).to_owned(),
            product.stock.map(|s| s.to_string()).unwrap_or_default(),
            money(product.sale_price),
            money(product.price),
            join(&product.categories),
            join(&product.tags),
            product
                .images
                .iter()
                .map(|i| i.url.clone())
                .collect::<Vec<_>>()
                .join(", "),
            String::new(),
        ];
        for index in 0..2 {
            match product.attributes.get(index) {
                Some(attribute) => record.extend([
                    attribute.name.clone(),
                    join(&attribute.values),
                    "1".to_owned(),
                    "0".to_owned(),
                ]),
                None => record.extend(std::iter::repeat_n(String::new(), 4)),
            }
        }
        record.push(product.brand.clone().unwrap_or_default());
        record.push(product.gtin.clone().unwrap_or_default());
        record.push(product.link.clone().unwrap_or_default());
        writer.write_record(&record).expect("in-memory write");

        let parent = product
            .sku
            .clone()
            .unwrap_or_else(|| format!("id:{}", product.external_id));
        for variant in &product.variants {
            let mut record = vec![
                variant.external_id.clone(),
                "variation".to_owned(),
                variant.sku.clone().unwrap_or_default(),
                variant.title.clone(),
                "1".to_owned(),
                "0".to_owned(),
                "visible".to_owned(),
                String::new(),
                String::new(),
                "taxable".to_owned(),
                in_stock(variant.availability).to_owned(),
                variant.stock.map(|s| s.to_string()).unwrap_or_default(),
                money(variant.sale_price),
                money(variant.price),
                String::new(),
                String::new(),
                variant.image.clone().unwrap_or_default(),
                parent.clone(),
            ];
            for index in 0..2 {
                match variant.options.get(index) {
                    Some(option) => record.extend([
                        option.name.clone(),
                        option.value.replace(',', "\\,"),
                        "1".to_owned(),
                        "0".to_owned(),
                    ]),
                    None => record.extend(std::iter::repeat_n(String::new(), 4)),
                }
            }
            record.push(String::new());
            record.push(variant.gtin.clone().unwrap_or_default());
            record.push(String::new());
            writer.write_record(&record).expect("in-memory write");
        }
    }
    writer.into_inner().expect("in-memory buffer")
}

#[cfg(test)]
mod tests {
    use crate::csv::{parse_catalog, CsvFormat};

    const SAMPLE: &str = "\u{feff}ID,Type,SKU,Name,Published,Description,Regular price,Sale price,Categories,Images,Parent,In stock?,Stock,Attribute 1 name,Attribute 1 value(s)\r\n\
10,variable,TEE,\"Tee, organic\",1,\"<p>Soft\r\nand light</p>\",,,\"Clothing > Tshirts, Sale\",\"a.jpg, b.jpg\",,1,,Color,\"Blue, Green\"\r\n\
11,variation,TEE-B,,1,,20,15,,,TEE,1,5,Color,Blue\r\n\
12,variation,TEE-G,,1,,20,,,,id:10,0,0,Color,Green\r\n\
13,simple,MUG,Mug ☕ שלום &amp;,1,desc,abc,,,,,1,,,\r\n\
14,simple,CAP,Cap,1,desc,10,12,,,,1,,,\r\n\
15,variation,X-1,,1,,5,,,,NOPE,1,,Color,Red\r\n\
16,simple,BAG,Bag,0,desc,30.5,,Bags,,,1,2.5,,\r\n\
17,simple,,Mug ☕ שלום &amp;,1,\"<p>ok</p>\",9.99,,,,,1,,,\r\n";

    #[test]
    fn parses_products_variations_and_rejects_bad_rows_by_line() {
        let import = parse_catalog(SAMPLE.as_bytes(), "USD").unwrap();
        assert_eq!(import.format, CsvFormat::WooCommerce);
        let titles: Vec<&str> = import.products.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["Tee, organic", "Mug ☕ שלום &amp;"]);
        let tee = &import.products[0];
        assert_eq!(tee.description_html, "<p>Soft\r\nand light</p>");
        assert_eq!(tee.categories, ["Clothing > Tshirts", "Sale"]);
        assert_eq!(tee.images.len(), 2);
        assert_eq!(tee.variants.len(), 2);
        assert_eq!(tee.variants[0].price.unwrap().minor, 2000);
        assert_eq!(tee.variants[0].sale_price.unwrap().minor, 1500);
        assert_eq!(
            tee.variants[1].availability,
            domain::Availability::OutOfStock
        );
        assert_eq!(
            tee.variants[0].options,
            [domain::OptionValue::new("Color", "Blue")]
        );

        let reasons: Vec<(u64, &str)> = import
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        // Line numbers count the line break inside product 10's quoted description.
        assert_eq!(reasons[0].0, 6);
        assert!(reasons[0].1.contains("Regular price"), "{reasons:?}");
        assert_eq!(reasons[1].0, 7);
        assert!(reasons[1].1.contains("higher than Regular price"));
        assert_eq!(reasons[2].0, 8);
        assert!(reasons[2].1.contains("\"NOPE\""));
        assert_eq!(reasons[3].0, 9);
        assert!(reasons[3].1.contains("Stock"));
    }

    #[test]
    fn export_round_trips() {
        let import = parse_catalog(SAMPLE.as_bytes(), "USD").unwrap();
        let exported = super::export(&import.products);
        let again = parse_catalog(&exported, "USD").unwrap();
        assert!(again.rejected.is_empty(), "{:?}", again.rejected);
        assert_eq!(again.products, import.products);
    }
}
