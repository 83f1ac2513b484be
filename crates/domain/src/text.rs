//! Rules for the free text the service keeps: what a client sends, what a CSV file holds
//! and what a store's API returns.
//!
//! - **No NUL characters.** PostgreSQL cannot store U+0000 in a text column (it answers
//!   "invalid byte sequence for encoding UTF8: 0x00") while SQLite can; refusing it
//!   everywhere keeps both backends alike, and no product text needs it.
//! - **A cap per product field**, so one runaway cell or API answer (a 10 MB description,
//!   a CSV quote left open that swallows the rest of the file) cannot become a product the
//!   dashboard, the exports and the AI provider must carry. The caps, in characters:
//!
//! | Field | Cap |
//! |---|---|
//! | `title`, `variants[].title` | 500 |
//! | `descriptionHtml` | 100,000 |
//! | `shortDescription`, `infoSections[].html` | 20,000 |
//! | `seoTitle` | 300 |
//! | `seoDescription` | 1,000 |
//! | `infoSections[].title` | 200 |
//! | `externalId`, `sku`, `mpn`, `brand`, `tags[]`, `attributes[].name`, option names | 255 |
//! | `gtin` | 64 |
//! | `categories[]`, `attributes[].values[]`, option values, image `alt` | 1,000 |
//! | `link`, image URLs | 4,096 |
//! | `currency` | 16 |
//!
//! Entry points apply them differently: JSON inputs and CSV rows are refused (400 naming
//! the field; the row rejected with its line), while text read from a store during a sync
//! is fitted by [`SourceProduct::fit_text`] (NULs removed, overlong fields cut), because
//! the merchant cannot fix the store from here and a sync must not fail over one field.

use std::fmt;

use crate::catalog::{SourceProduct, Variant};

/// Longest product title (and variant title).
pub const TITLE_MAX_CHARS: usize = 500;
/// Longest product description (HTML).
pub const DESCRIPTION_HTML_MAX_CHARS: usize = 100_000;
/// Longest short description, and longest info-section body.
pub const SHORT_TEXT_MAX_CHARS: usize = 20_000;
/// Longest SEO title.
pub const SEO_TITLE_MAX_CHARS: usize = 300;
/// Longest SEO (meta) description.
pub const SEO_DESCRIPTION_MAX_CHARS: usize = 1_000;
/// Longest info-section title.
pub const SECTION_TITLE_MAX_CHARS: usize = 200;
/// Longest identifier or name: ids, SKUs, MPNs, brands, tags, attribute and option names.
pub const NAME_MAX_CHARS: usize = 255;
/// Longest GTIN (real ones have 8 to 14 digits).
pub const GTIN_MAX_CHARS: usize = 64;
/// Longest category path, attribute or option value, or image alt text.
pub const LABEL_MAX_CHARS: usize = 1_000;
/// Longest URL (product link, image).
pub const URL_MAX_CHARS: usize = 4_096;
/// Longest currency code.
pub const CURRENCY_MAX_CHARS: usize = 16;

/// What is wrong with a piece of text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    #[error("must not contain NUL characters (U+0000)")]
    Nul,
    #[error("must be at most {max_chars} characters (it has {chars})")]
    TooLong { max_chars: usize, chars: usize },
}

/// Refuses text with a NUL character or more than `max_chars` characters.
pub fn check_text(value: &str, max_chars: usize) -> Result<(), TextProblem> {
    if value.contains('\0') {
        return Err(TextProblem::Nul);
    }
    // A string never has more characters than bytes: most values need no counting.
    if value.len() > max_chars {
        let chars = value.chars().count();
        if chars > max_chars {
            return Err(TextProblem::TooLong { max_chars, chars });
        }
    }
    Ok(())
}

/// The place of a text field in a product, written as the API names it:
/// `title`, `categories[2]`, `variants[0].options[1].value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPath {
    segments: [(&'static str, Option<usize>); 3],
    len: usize,
}

impl FieldPath {
    fn root(name: &'static str) -> Self {
        FieldPath {
            segments: [(name, None); 3],
            len: 1,
        }
    }

    fn at(mut self, index: usize) -> Self {
        self.segments[self.len - 1].1 = Some(index);
        self
    }

    fn then(mut self, name: &'static str) -> Self {
        self.segments[self.len] = (name, None);
        self.len += 1;
        self
    }

    /// The first segment's name (`variants` for `variants[0].title`): what a CSV column
    /// or an API field is named after.
    pub fn top(&self) -> &'static str {
        self.segments[0].0
    }

    /// The last segment's name (`value` for `variants[0].options[1].value`).
    pub fn leaf(&self) -> &'static str {
        self.segments[self.len - 1].0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, (name, index)) in self.segments[..self.len].iter().enumerate() {
            if position > 0 {
                f.write_str(".")?;
            }
            f.write_str(name)?;
            if let Some(index) = index {
                write!(f, "[{index}]")?;
            }
        }
        Ok(())
    }
}

/// A product field whose text breaks a rule of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct TextFieldError {
    /// The field's path ([`FieldPath`]), e.g. `variants[0].title`.
    pub field: String,
    /// Its first segment's name ([`FieldPath::top`]).
    pub top: &'static str,
    /// Its last segment's name ([`FieldPath::leaf`]).
    pub leaf: &'static str,
    pub problem: TextProblem,
}

impl TextFieldError {
    fn new(field: FieldPath, problem: TextProblem) -> Self {
        TextFieldError {
            field: field.to_string(),
            top: field.top(),
            leaf: field.leaf(),
            problem,
        }
    }
}

/// What [`SourceProduct::fit_text`] changed in one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFix {
    pub field: String,
    pub nul_removed: bool,
    /// The field's length before it was cut to its cap, when it was.
    pub cut_from_chars: Option<usize>,
}

impl fmt::Display for TextFix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.field)?;
        if self.nul_removed {
            f.write_str(" NUL characters removed")?;
        }
        if let Some(chars) = self.cut_from_chars {
            write!(f, " cut from {chars} characters")?;
        }
        Ok(())
    }
}

/// Calls the closure `$visit(path, cap, value)` for every text field of a variant;
/// `$($mut)?` makes the values `&mut String`. Written once for reading and fitting, so the two never disagree.
macro_rules! visit_variant_text {
    ($variant:expr, $base:expr, $visit:ident, $($mut:tt)?) => {{
        let variant = $variant;
        let base: FieldPath = $base;
        $visit(base.then("externalId"), NAME_MAX_CHARS, & $($mut)? variant.external_id);
        if let Some(value) = & $($mut)? variant.sku {
            $visit(base.then("sku"), NAME_MAX_CHARS, value);
        }
        $visit(base.then("title"), TITLE_MAX_CHARS, & $($mut)? variant.title);
        for (index, option) in (& $($mut)? variant.options).into_iter().enumerate() {
            let path = base.then("options").at(index);
            $visit(path.then("name"), NAME_MAX_CHARS, & $($mut)? option.name);
            $visit(path.then("value"), LABEL_MAX_CHARS, & $($mut)? option.value);
        }
        if let Some(value) = & $($mut)? variant.gtin {
            $visit(base.then("gtin"), GTIN_MAX_CHARS, value);
        }
        if let Some(value) = & $($mut)? variant.image {
            $visit(base.then("image"), URL_MAX_CHARS, value);
        }
    }};
}

/// [`visit_variant_text`] for a whole product, variants included.
macro_rules! visit_product_text {
    ($product:expr, $visit:ident, $($mut:tt)?) => {{
        let product = $product;
        let field = FieldPath::root;
        $visit(field("externalId"), NAME_MAX_CHARS, & $($mut)? product.external_id);
        $visit(field("title"), TITLE_MAX_CHARS, & $($mut)? product.title);
        $visit(field("descriptionHtml"), DESCRIPTION_HTML_MAX_CHARS, & $($mut)? product.description_html);
        $visit(field("shortDescription"), SHORT_TEXT_MAX_CHARS, & $($mut)? product.short_description);
        if let Some(value) = & $($mut)? product.seo_title {
            $visit(field("seoTitle"), SEO_TITLE_MAX_CHARS, value);
        }
        if let Some(value) = & $($mut)? product.seo_description {
            $visit(field("seoDescription"), SEO_DESCRIPTION_MAX_CHARS, value);
        }
        for (index, section) in (& $($mut)? product.info_sections).into_iter().enumerate() {
            let path = field("infoSections").at(index);
            $visit(path.then("title"), SECTION_TITLE_MAX_CHARS, & $($mut)? section.title);
            $visit(path.then("html"), SHORT_TEXT_MAX_CHARS, & $($mut)? section.html);
        }
        for (name, cap, value) in [
            ("sku", NAME_MAX_CHARS, & $($mut)? product.sku),
            ("gtin", GTIN_MAX_CHARS, & $($mut)? product.gtin),
            ("mpn", NAME_MAX_CHARS, & $($mut)? product.mpn),
            ("brand", NAME_MAX_CHARS, & $($mut)? product.brand),
            ("link", URL_MAX_CHARS, & $($mut)? product.link),
        ] {
            if let Some(value) = value {
                $visit(field(name), cap, value);
            }
        }
        $visit(field("currency"), CURRENCY_MAX_CHARS, & $($mut)? product.currency);
        for (index, value) in (& $($mut)? product.categories).into_iter().enumerate() {
            $visit(field("categories").at(index), LABEL_MAX_CHARS, value);
        }
        for (index, value) in (& $($mut)? product.tags).into_iter().enumerate() {
            $visit(field("tags").at(index), NAME_MAX_CHARS, value);
        }
        for (index, image) in (& $($mut)? product.images).into_iter().enumerate() {
            let path = field("images").at(index);
            $visit(path.then("url"), URL_MAX_CHARS, & $($mut)? image.url);
            if let Some(value) = & $($mut)? image.alt {
                $visit(path.then("alt"), LABEL_MAX_CHARS, value);
            }
        }
        for (index, attribute) in (& $($mut)? product.attributes).into_iter().enumerate() {
            let path = field("attributes").at(index);
            $visit(path.then("name"), NAME_MAX_CHARS, & $($mut)? attribute.name);
            for (value_index, value) in (& $($mut)? attribute.values).into_iter().enumerate() {
                $visit(path.then("values").at(value_index), LABEL_MAX_CHARS, value);
            }
        }
        for (index, variant) in (& $($mut)? product.variants).into_iter().enumerate() {
            visit_variant_text!(variant, field("variants").at(index), $visit, $($mut)?);
        }
    }};
}

/// Keeps the first problem a visit meets.
struct FirstProblem {
    found: Option<TextFieldError>,
    nul_only: bool,
}

impl FirstProblem {
    fn new(nul_only: bool) -> Self {
        FirstProblem {
            found: None,
            nul_only,
        }
    }

    fn visit(&mut self, field: FieldPath, cap: usize, value: &str) {
        if self.found.is_some() {
            return;
        }
        let checked = if self.nul_only {
            if value.contains('\0') {
                Err(TextProblem::Nul)
            } else {
                Ok(())
            }
        } else {
            check_text(value, cap)
        };
        if let Err(problem) = checked {
            self.found = Some(TextFieldError::new(field, problem));
        }
    }

    fn into_result(self) -> Result<(), TextFieldError> {
        self.found.map_or(Ok(()), Err)
    }
}

/// Removes NULs and cuts `value` to `cap` characters, reporting what it did.
fn fit(fixes: &mut Vec<TextFix>, field: FieldPath, cap: usize, value: &mut String) {
    let nul_removed = value.contains('\0');
    if nul_removed {
        value.retain(|c| c != '\0');
    }
    let mut cut_from_chars = None;
    if value.len() > cap {
        if let Some((end, _)) = value.char_indices().nth(cap) {
            cut_from_chars = Some(value.chars().count());
            value.truncate(end);
        }
    }
    if nul_removed || cut_from_chars.is_some() {
        fixes.push(TextFix {
            field: field.to_string(),
            nul_removed,
            cut_from_chars,
        });
    }
}

impl SourceProduct {
    /// The first field that holds a NUL or exceeds its cap (see the module documentation).
    pub fn check_text(&self) -> Result<(), TextFieldError> {
        let mut first = FirstProblem::new(false);
        let mut visit = |field, cap, value: &String| first.visit(field, cap, value);
        visit_product_text!(self, visit,);
        first.into_result()
    }

    /// The first field that holds a NUL: what no database may be asked to store.
    pub fn find_nul(&self) -> Result<(), TextFieldError> {
        let mut first = FirstProblem::new(true);
        let mut visit = |field, cap, value: &String| first.visit(field, cap, value);
        visit_product_text!(self, visit,);
        first.into_result()
    }

    /// Makes a product read from a store fit the rules: NUL characters are **removed**
    /// (they carry nothing a shopper sees, and a replacement character would show up in
    /// the optimized text) and a field over its cap is **cut** at a character boundary to
    /// the cap. Applied where a connector hands over a product, so every read of the same
    /// store record, sync or publish check, yields the same fitted product on either
    /// backend. Returns what changed, for the caller to log.
    pub fn fit_text(&mut self) -> Vec<TextFix> {
        let mut fixes = Vec::new();
        let mut visit = |field, cap, value: &mut String| fit(&mut fixes, field, cap, value);
        visit_product_text!(self, visit, mut);
        fixes
    }
}

impl Variant {
    /// The first field of this variant that holds a NUL or exceeds its cap; paths are
    /// relative to the variant (`title`, `options[0].value`).
    pub fn check_text(&self) -> Result<(), TextFieldError> {
        let mut first = FirstProblem::new(false);
        let mut visit = |field, cap, value: &String| first.visit(field, cap, value);
        visit_variant_text!(self, FieldPath::root("variant"), visit,);
        first.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Availability, OptionValue, ProductImage};

    fn product() -> SourceProduct {
        SourceProduct {
            external_id: "1".into(),
            title: "Mug".into(),
            description_html: "<p>Mug</p>".into(),
            short_description: String::new(),
            seo_title: None,
            seo_description: None,
            info_sections: Vec::new(),
            sku: Some("MUG".into()),
            gtin: None,
            mpn: None,
            brand: None,
            price: None,
            sale_price: None,
            currency: "USD".into(),
            availability: Availability::InStock,
            stock: None,
            categories: vec!["Kitchen".into()],
            tags: Vec::new(),
            images: vec![ProductImage {
                url: "https://img.example/mug.jpg".into(),
                alt: None,
            }],
            link: None,
            attributes: Vec::new(),
            variants: vec![Variant {
                external_id: "1-a".into(),
                sku: None,
                title: "Blue".into(),
                options: vec![OptionValue::new("Color", "Blue")],
                price: None,
                sale_price: None,
                stock: None,
                availability: Availability::InStock,
                gtin: None,
                image: None,
            }],
            published: true,
        }
    }

    #[test]
    fn text_is_checked_for_nul_and_length() {
        assert_eq!(check_text("ok", 2), Ok(()));
        assert_eq!(check_text("a\0b", 10), Err(TextProblem::Nul));
        assert_eq!(
            check_text("ééé", 2),
            Err(TextProblem::TooLong {
                max_chars: 2,
                chars: 3
            })
        );
        // Bytes are not characters: two two-byte characters fit a cap of 2.
        assert_eq!(check_text("éé", 2), Ok(()));
    }

    #[test]
    fn problems_name_the_field_as_the_api_does() {
        assert_eq!(product().check_text(), Ok(()));
        let mut nul = product();
        nul.variants[0].options[0].value = "Bl\0ue".into();
        let err = nul.check_text().unwrap_err();
        assert_eq!(err.field, "variants[0].options[0].value");
        assert_eq!((err.top, err.leaf), ("variants", "value"));
        assert_eq!(nul.find_nul().unwrap_err(), err);

        let mut long = product();
        long.description_html = "x".repeat(DESCRIPTION_HTML_MAX_CHARS + 1);
        let err = long.check_text().unwrap_err();
        assert_eq!(
            err.to_string(),
            "descriptionHtml must be at most 100000 characters (it has 100001)"
        );
        assert_eq!(long.find_nul(), Ok(()), "length is not a NUL problem");
    }

    #[test]
    fn fitting_removes_nuls_and_cuts_at_a_character_boundary() {
        let mut fitted = product();
        fitted.title = "é".repeat(TITLE_MAX_CHARS + 5);
        fitted.description_html = "<p>a\0b</p>".into();
        fitted.categories.push("C\0".into());
        let fixes = fitted.fit_text();
        assert_eq!(fitted.title.chars().count(), TITLE_MAX_CHARS);
        assert_eq!(fitted.description_html, "<p>ab</p>");
        assert_eq!(fitted.categories[1], "C");
        let fields: Vec<String> = fixes.iter().map(ToString::to_string).collect();
        assert_eq!(
            fields,
            [
                "title: cut from 505 characters",
                "descriptionHtml: NUL characters removed",
                "categories[1]: NUL characters removed"
            ]
        );
        assert_eq!(fitted.check_text(), Ok(()));
        assert!(fitted.fit_text().is_empty(), "fitting is idempotent");
    }

    #[test]
    fn variants_are_checked_on_their_own() {
        let mut variant = product().variants.remove(0);
        assert_eq!(variant.check_text(), Ok(()));
        variant.title = "t".repeat(TITLE_MAX_CHARS + 1);
        assert_eq!(variant.check_text().unwrap_err().field, "variant.title");
    }
}
