//! The platform-neutral product: what every connector (Wix, WooCommerce, local catalog)
//! maps its products into, and what optimization, publishing and the feed work on.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a product can be bought now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    #[default]
    InStock,
    OutOfStock,
    Preorder,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::InStock => "in_stock",
            Availability::OutOfStock => "out_of_stock",
            Availability::Preorder => "preorder",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "in_stock" => Some(Availability::InStock),
            "out_of_stock" => Some(Availability::OutOfStock),
            "preorder" => Some(Availability::Preorder),
            _ => None,
        }
    }
}

/// An amount in minor units (cents) of `currency`, so arithmetic is exact. Serialized as
/// the decimal text merchants and platforms use (`"24.95"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
}

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "Decimal amount in the store's currency, e.g. \"24.95\"",
            ))
            .into()
    }
}

impl ToSchema for Money {}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_decimal())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Money::parse_decimal(&text).map_err(serde::de::Error::custom)
    }
}

impl Money {
    /// Parses a decimal price like `24`, `24.5` or `129.95` (two decimals at most, no sign).
    pub fn parse_decimal(text: &str) -> Result<Money, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty".into());
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_ok = |part: &str| part.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) || fraction.len() > 2 {
            return Err(format!("{text:?} is not a price like 24.95"));
        }
        let whole: i64 = whole
            .parse()
            .ok()
            .filter(|w: &i64| *w <= 1_000_000_000)
            .ok_or_else(|| format!("{text:?} is too large"))?;
        let cents: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
        Ok(Money {
            minor: whole * 100 + cents,
        })
    }

    /// `24.95`-style text, as the platforms and CSV files write prices.
    pub fn to_decimal(self) -> String {
        format!("{}.{:02}", self.minor / 100, self.minor % 100)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductImage {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

/// A titled block of extra product information (Wix "info sections", e.g. "Care").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfoSection {
    pub title: String,
    pub html: String,
}

/// A product option and its values (Color: Blue, Green).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductAttribute {
    pub name: String,
    pub values: Vec<String>,
}

/// One option's value in a variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OptionValue {
    pub name: String,
    pub value: String,
}

impl OptionValue {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        OptionValue {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// One purchasable combination of a product's options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    pub title: String,
    /// The option values that make this variant, e.g. Color: Blue, Size: M.
    pub options: Vec<OptionValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    pub availability: Availability,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A product as read from a store: the source layer every later layer (AI, manual) starts
/// from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceProduct {
    /// The platform's id (WooCommerce ID, Wix product id, CSV handle).
    pub external_id: String,
    pub title: String,
    pub description_html: String,
    #[serde(default)]
    pub short_description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seo_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seo_description: Option<String>,
    #[serde(default)]
    pub info_sections: Vec<InfoSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_price: Option<Money>,
    pub currency: String,
    pub availability: Availability,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<i64>,
    /// Category paths, `Parent > Child`.
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub images: Vec<ProductImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default)]
    pub attributes: Vec<ProductAttribute>,
    #[serde(default)]
    pub variants: Vec<Variant>,
    #[serde(default = "default_true")]
    pub published: bool,
}

fn default_true() -> bool {
    true
}

/// Checks a GTIN-8/12/13/14 check digit.
pub fn is_valid_gtin(gtin: &str) -> bool {
    let digits: Vec<u32> = gtin.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != gtin.len() || ![8, 12, 13, 14].contains(&digits.len()) {
        return false;
    }
    let (body, check) = digits.split_at(digits.len() - 1);
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    (10 - sum % 10) % 10 == check[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(Money::parse_decimal("24").unwrap().minor, 2400);
        assert_eq!(Money::parse_decimal("24.5").unwrap().minor, 2450);
        assert_eq!(Money::parse_decimal(" 129.95 ").unwrap().minor, 12995);
        assert_eq!(Money::parse_decimal("0.05").unwrap().to_decimal(), "0.05");
        for bad in ["", "abc", "-3", "1.234", "1,50", "1e3", ".5", "99999999999"] {
            assert!(Money::parse_decimal(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn money_serializes_as_decimal_text() {
        let json = serde_json::to_string(&Money { minor: 12995 }).unwrap();
        assert_eq!(json, "\"129.95\"");
        let back: Money = serde_json::from_str("\"7.5\"").unwrap();
        assert_eq!(back.minor, 750);
        assert!(serde_json::from_str::<Money>("\"abc\"").is_err());
    }

    #[test]
    fn gtin_check_digits() {
        assert!(is_valid_gtin("4006381333931"));
        assert!(is_valid_gtin("036000291452"));
        assert!(!is_valid_gtin("4006381333932"));
        assert!(!is_valid_gtin("40063813339a1"));
        assert!(!is_valid_gtin("123"));
    }
}
