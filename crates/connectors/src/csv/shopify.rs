//! The Shopify product CSV format: rows grouped by `Handle`; the first row of a handle
//! carries the product (Title, Body (HTML), Vendor, SEO fields), every row may carry a
//! variant (`Option1..3 Name/Value`, `Variant *` columns) and an image (`Image Src`).

use std::collections::HashMap;

use domain::{Availability, OptionValue, ProductAttribute, ProductImage, SourceProduct, Variant};

use super::{
    integer, price, split_list, text_reason, CsvError, CsvFormat, CsvImport, RejectedRow, Row,
    Table,
};

/// Shopify's placeholder for products without options.
const DEFAULT_TITLE: &str = "Default Title";

pub(crate) fn parse(table: &Table, rows: Vec<Row>, currency: &str) -> Result<CsvImport, CsvError> {
    let mut products: Vec<SourceProduct> = Vec::new();
    let mut rejected = Vec::new();
    let mut by_handle: HashMap<String, usize> = HashMap::new();
    let mut rejected_handles: HashMap<String, u64> = HashMap::new();

    for row in rows {
        let Some(handle) = table.get(&row, "Handle").map(str::to_owned) else {
            rejected.push(RejectedRow {
                line: row.line,
                reason: "Handle is empty".into(),
            });
            continue;
        };
        if let Some(first_line) = rejected_handles.get(&handle) {
            rejected.push(RejectedRow {
                line: row.line,
                reason: format!(
                    "belongs to {handle:?}, whose product row (line {first_line}) was rejected"
                ),
            });
            continue;
        }
        if let Some(&index) = by_handle.get(&handle) {
            if let Err(reason) = add_row(table, &row, &mut products[index]) {
                rejected.push(RejectedRow {
                    line: row.line,
                    reason,
                });
            }
            continue;
        }
        // The first row of a handle: the product and its first variant stand or fall together.
        let first = product_from_row(table, &row, &handle, currency).and_then(|mut product| {
            product
                .check_text()
                .map_err(|err| text_reason(&err, column))?;
            add_row(table, &row, &mut product)?;
            Ok(product)
        });
        match first {
            Ok(product) => {
                by_handle.insert(handle, products.len());
                products.push(product);
            }
            Err(reason) => {
                rejected_handles.insert(handle, row.line);
                rejected.push(RejectedRow {
                    line: row.line,
                    reason,
                });
            }
        }
    }
    for product in &mut products {
        settle_simple_product(product);
    }
    Ok(CsvImport {
        format: CsvFormat::Shopify,
        products,
        rejected,
    })
}

fn product_from_row(
    table: &Table,
    row: &Row,
    handle: &str,
    currency: &str,
) -> Result<SourceProduct, String> {
    let title = table
        .get(row, "Title")
        .ok_or("Title is empty on the first row of this handle")?
        .to_owned();
    let attributes = (1..=3)
        .filter_map(|n| {
            let name = table.get(row, &format!("Option{n} Name"))?;
            Some(ProductAttribute {
                name: name.to_owned(),
                values: Vec::new(),
            })
        })
        .collect();
    let category = table
        .get(row, "Product Category")
        .or_else(|| table.get(row, "Type"))
        .map(str::to_owned);
    Ok(SourceProduct {
        external_id: handle.to_owned(),
        title,
        description_html: table.raw(row, "Body (HTML)").unwrap_or_default().to_owned(),
        short_description: String::new(),
        seo_title: table.get(row, "SEO Title").map(str::to_owned),
        seo_description: table.get(row, "SEO Description").map(str::to_owned),
        info_sections: Vec::new(),
        sku: None,
        gtin: None,
        mpn: table.get(row, "Google Shopping / MPN").map(str::to_owned),
        brand: table.get(row, "Vendor").map(str::to_owned),
        price: None,
        sale_price: None,
        currency: currency.to_owned(),
        availability: Availability::InStock,
        stock: None,
        categories: category.into_iter().collect(),
        tags: table.get(row, "Tags").map(split_list).unwrap_or_default(),
        images: Vec::new(),
        link: None,
        attributes,
        variants: Vec::new(),
        published: !matches!(table.get(row, "Published"), Some(v) if v.eq_ignore_ascii_case("false")),
    })
}

/// Adds the variant and image a row carries to its product.
fn add_row(table: &Table, row: &Row, product: &mut SourceProduct) -> Result<(), String> {
    let mut variant = None;
    let options: Vec<OptionValue> = (1..=3)
        .filter_map(|n| {
            let value = table.get(row, &format!("Option{n} Value"))?;
            let name = product.attributes.get(n - 1).map(|a| a.name.clone())?;
            Some(OptionValue::new(name, value))
        })
        .collect();
    let has_variant = !options.is_empty() || table.has_value(row, "Variant Price");
    if has_variant {
        let compare_at = price(table, row, "Variant Compare At Price")?;
        let listed = price(table, row, "Variant Price")?;
        // Shopify's "compare at" is the regular price when the variant is on sale.
        let (regular, sale) = match (listed, compare_at) {
            (Some(listed), Some(compare)) if compare.minor > listed.minor => {
                (Some(compare), Some(listed))
            }
            (listed, _) => (listed, None),
        };
        let stock = integer(table, row, "Variant Inventory Qty")?;
        let tracked = table.get(row, "Variant Inventory Tracker").is_some();
        let availability = match stock {
            Some(qty) if tracked && qty <= 0 => {
                if table.get(row, "Variant Inventory Policy") == Some("continue") {
                    Availability::Preorder
                } else {
                    Availability::OutOfStock
                }
            }
            _ => Availability::InStock,
        };
        let title = if options.is_empty() {
            product.title.clone()
        } else {
            options
                .iter()
                .map(|option| option.value.as_str())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        variant = Some(Variant {
            external_id: table
                .get(row, "Variant SKU")
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    format!("{}-{}", product.external_id, product.variants.len() + 1)
                }),
            sku: table.get(row, "Variant SKU").map(str::to_owned),
            title,
            options,
            price: regular,
            sale_price: sale,
            stock,
            availability,
            gtin: table.get(row, "Variant Barcode").map(str::to_owned),
            image: table.get(row, "Variant Image").map(str::to_owned),
        });
    }
    if let Some(variant) = &variant {
        variant
            .check_text()
            .map_err(|err| text_reason(&err, column))?;
    }
    for (name, cap) in [
        ("Image Src", domain::text::URL_MAX_CHARS),
        ("Image Alt Text", domain::text::LABEL_MAX_CHARS),
    ] {
        if let Some(cell) = table.get(row, name) {
            domain::check_text(cell, cap).map_err(|problem| format!("{name}: {problem}"))?;
        }
    }
    if let Some(src) = table.get(row, "Image Src") {
        if !product.images.iter().any(|image| image.url == src) {
            product.images.push(ProductImage {
                url: src.to_owned(),
                alt: table.get(row, "Image Alt Text").map(str::to_owned),
            });
        }
    }
    if let Some(variant) = variant {
        for option in &variant.options {
            if let Some(attribute) = product
                .attributes
                .iter_mut()
                .find(|a| a.name == option.name)
            {
                if !attribute.values.contains(&option.value) {
                    attribute.values.push(option.value.clone());
                }
            }
        }
        product.variants.push(variant);
    }
    Ok(())
}

/// The column a product or variant field is read from, for rejection reasons.
fn column(err: &domain::TextFieldError) -> Option<&'static str> {
    Some(match (err.top, err.leaf) {
        ("variant", "externalId" | "sku") => "Variant SKU",
        ("variant", "gtin") => "Variant Barcode",
        ("variant", "image") => "Variant Image",
        ("variant", "name") => "Option Name",
        ("variant", "value" | "title") => "Option Value",
        ("externalId", _) => "Handle",
        ("title", _) => "Title",
        ("descriptionHtml", _) => "Body (HTML)",
        ("seoTitle", _) => "SEO Title",
        ("seoDescription", _) => "SEO Description",
        ("mpn", _) => "Google Shopping / MPN",
        ("brand", _) => "Vendor",
        ("categories", _) => "Product Category or Type",
        ("tags", _) => "Tags",
        ("attributes", _) => "Option Name",
        ("images", "url") => "Image Src",
        ("images", "alt") => "Image Alt Text",
        _ => return None,
    })
}

/// Product-level price, SKU and stock come from the first variant; a product whose only
/// variant is Shopify's "Default Title" placeholder is a simple product.
fn settle_simple_product(product: &mut SourceProduct) {
    let Some(first) = product.variants.first().cloned() else {
        return;
    };
    product.price = first.price;
    product.sale_price = first.sale_price;
    let only_default = product.variants.len() == 1
        && first
            .options
            .iter()
            .all(|option| option.value == DEFAULT_TITLE);
    if only_default {
        product.sku = first.sku;
        product.gtin = first.gtin;
        product.stock = first.stock;
        product.availability = first.availability;
        product.variants.clear();
        product
            .attributes
            .retain(|a| a.values.iter().any(|v| v != DEFAULT_TITLE));
    } else {
        product.stock = product.variants.iter().map(|v| v.stock).sum();
        if product
            .variants
            .iter()
            .all(|v| v.availability == Availability::OutOfStock)
        {
            product.availability = Availability::OutOfStock;
        }
    }
}

impl Table {
    fn has_value(&self, row: &Row, column: &str) -> bool {
        self.get(row, column).is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::csv::{parse_catalog, CsvFormat};

    const SAMPLE: &str = "Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name,Option1 Value,Variant SKU,Variant Inventory Tracker,Variant Inventory Qty,Variant Inventory Policy,Variant Price,Variant Compare At Price,Variant Barcode,Image Src,Image Alt Text,SEO Title,SEO Description\n\
shirt,Blue Shirt,\"<p>Soft\ncotton</p>\",acme,Shirts,\"men, summer\",true,Size,Small,SH-S,shopify,3,deny,50,60,,https://x/1.jpg,front,Blue Shirt | Acme,A soft shirt\n\
shirt,,,,,,,,Medium,SH-M,shopify,0,deny,50,,,https://x/2.jpg,,,\n\
mug,Mug,Great mug,acme,,,true,Title,Default Title,MUG-1,,,deny,12.5,,4006381333931,,,,\n\
bad,Bad Price,x,acme,,,true,Title,Default Title,B-1,,,deny,12.345,,,,,,\n\
bad,,,,,,,,,,,,,,,,https://x/3.jpg,,,\n";

    #[test]
    fn groups_rows_by_handle() {
        let import = parse_catalog(SAMPLE.as_bytes(), "EUR").unwrap();
        assert_eq!(import.format, CsvFormat::Shopify);
        assert_eq!(import.products.len(), 2);
        let shirt = &import.products[0];
        assert_eq!(shirt.seo_title.as_deref(), Some("Blue Shirt | Acme"));
        assert_eq!(shirt.brand.as_deref(), Some("acme"));
        assert_eq!(shirt.tags, ["men", "summer"]);
        assert_eq!(shirt.images.len(), 2);
        assert_eq!(shirt.variants.len(), 2);
        assert_eq!(
            shirt.variants[0].price.unwrap().minor,
            6000,
            "compare-at is the regular price"
        );
        assert_eq!(shirt.variants[0].sale_price.unwrap().minor, 5000);
        assert_eq!(
            shirt.variants[1].availability,
            domain::Availability::OutOfStock
        );
        assert_eq!(shirt.attributes[0].values, ["Small", "Medium"]);
        let mug = &import.products[1];
        assert!(mug.variants.is_empty());
        assert_eq!(mug.sku.as_deref(), Some("MUG-1"));
        assert_eq!(mug.gtin.as_deref(), Some("4006381333931"));
        assert_eq!(mug.price.unwrap().minor, 1250);
        assert_eq!(mug.currency, "EUR");
        let lines: Vec<u64> = import.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [6, 7], "the shirt's description spans lines 2 and 3");
        assert!(import.rejected[0].reason.contains("Variant Price"));
    }
}
