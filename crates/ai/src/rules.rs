//! The `rules` provider: improves a field from the product's own data, offline and
//! deterministically, so optimization works without an AI key and its results are
//! reproducible.
//!
//! Per attribute:
//! * title: whitespace and spacing before punctuation repaired, ALL-CAPS turned into title
//!   case (acronyms such as USB or LED, sizes such as XL and units such as 100ml kept
//!   sensible), repeated words ("Shirt Shirt") removed, cut to the platform's limit;
//! * SEO title: the improved title with a distinguishing attribute and the brand
//!   ("Linen Shirt – Blue | Acme") as far as 60 characters allow;
//! * meta description: the first sentences of the description as plain text, up to about
//!   155 characters, ending at a sentence or word boundary;
//! * description: sanitized and tidied into paragraphs and lists, with a list of the
//!   product's details added when the text is missing or very short;
//! * info sections: existing sections cleaned, plus Material and Care sections from the
//!   attributes of those names and a Details list of the others.
//!
//! Rules cannot follow a merchant's instruction or brand voice: both are ignored. They
//! cannot translate either; a task with a target language is rejected (the API refuses
//! such jobs before they start; this is defence in depth).

use domain::content::{
    clean_plain_text, collapse_whitespace, escape_html, html_to_text, limits, looks_like_html,
    repair, sanitize_html, text_to_html, truncate_at_sentence, truncate_at_word,
};
use domain::{Attribute, ContentValue, InfoSection, Platform, SourceProduct};

use crate::{AiError, TextOptimizer, TextTask};

/// The offline, deterministic provider. See the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RulesOptimizer;

impl RulesOptimizer {
    pub fn new() -> Self {
        RulesOptimizer
    }
}

fn nothing_to_work_with(what: &str) -> AiError {
    AiError::Rejected {
        status: None,
        message: format!("the product has no {what} to improve"),
    }
}

#[async_trait::async_trait]
impl TextOptimizer for RulesOptimizer {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn can_translate(&self) -> bool {
        false
    }

    async fn optimize(&self, task: &TextTask<'_>) -> Result<ContentValue, AiError> {
        if let Some(lang) = task.target_lang {
            return Err(AiError::Rejected {
                status: None,
                message: format!(
                    "the rules optimizer cannot translate (to \"{lang}\"); choose the AI \
                     provider for translations"
                ),
            });
        }
        let product = task.product;
        let value = match task.attribute {
            Attribute::Title => ContentValue::Text(improve_title(&product.title)),
            Attribute::SeoTitle => ContentValue::Text(seo_title(product, task.platform)),
            Attribute::SeoDescription => ContentValue::Text(meta_description(product)),
            Attribute::Description => ContentValue::Text(description(product)),
            Attribute::InfoSections => ContentValue::Sections(info_sections(product)),
        };
        repair(task.platform, task.attribute, value)
            .map_err(|_| nothing_to_work_with(&task.attribute.label().to_lowercase()))
    }
}

/// Acronyms, sizes and roman numerals that stay upper case when ALL-CAPS text is
/// title-cased.
const ACRONYMS: &[&str] = &[
    "usb", "led", "lcd", "oled", "hdmi", "uv", "tv", "pc", "uk", "eu", "usa", "diy", "bpa", "spf",
    "gps", "ac", "dc", "hd", "uhd", "pvc", "abs", "rgb", "nfc", "cbd", "bbq", "dvd", "cd", "ssd",
    "hdd", "cpu", "gpu", "ram", "ip", "xs", "xxs", "xl", "xxl", "xxxl", "ii", "iii", "iv", "vi",
    "vii", "viii", "ix", "xi", "xii", "gots", "fsc",
];

/// Short words that stay lower case inside a title-cased title.
const SMALL_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "nor", "but", "of", "in", "on", "at", "to", "for", "with", "by",
    "from", "per", "via", "vs", "de", "du", "des", "le", "la", "en", "et", "und", "mit", "für",
    "y", "con", "di", "da", "van",
];

/// Units after a number, as they are conventionally written (`100ML` → `100ml`, `5l` →
/// `5L`, `20W` stays `20W`).
const UNITS: &[(&str, &str)] = &[
    ("ml", "ml"),
    ("cl", "cl"),
    ("dl", "dl"),
    ("l", "L"),
    ("g", "g"),
    ("kg", "kg"),
    ("mg", "mg"),
    ("mm", "mm"),
    ("cm", "cm"),
    ("m", "m"),
    ("km", "km"),
    ("oz", "oz"),
    ("lb", "lb"),
    ("lbs", "lbs"),
    ("ft", "ft"),
    ("in", "in"),
    ("w", "W"),
    ("kw", "kW"),
    ("v", "V"),
    ("mah", "mAh"),
    ("hz", "Hz"),
    ("ghz", "GHz"),
    ("gb", "GB"),
    ("tb", "TB"),
    ("mb", "MB"),
    ("k", "K"),
    ("d", "D"),
    ("xl", "XL"),
    ("pcs", "pcs"),
    ("pc", "pc"),
    ("pk", "pk"),
    ("x", "x"),
];

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One hyphen- or slash-separated part of a word, title-cased.
fn title_case_part(part: &str, first: bool) -> String {
    let lower = part.to_lowercase();
    if ACRONYMS.contains(&lower.as_str()) {
        return part.to_uppercase();
    }
    if part.chars().any(|c| c.is_ascii_digit()) {
        // 100ML, 2XL, 4K: a number and a unit.
        let digits_end = lower
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
            .map(|(i, _)| i)
            .unwrap_or(lower.len());
        let (number, unit) = lower.split_at(digits_end);
        if !number.is_empty() && unit.chars().all(|c| c.is_alphabetic()) {
            let unit = UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, canonical)| (*canonical).to_owned())
                .unwrap_or_else(|| unit.to_owned());
            return format!("{number}{unit}");
        }
        // Model numbers (A5, IPX7, T-1000) are kept as written.
        return part.to_owned();
    }
    if part.chars().count() == 1 && lower != "a" {
        // Sizes (S, M, L) and letters such as the T of "T Shirt".
        return part.to_uppercase();
    }
    if !first && SMALL_WORDS.contains(&lower.as_str()) {
        return lower;
    }
    capitalize(&lower)
}

fn title_case_word(word: &str, first: bool) -> String {
    let start = word
        .char_indices()
        .find(|(_, c)| c.is_alphanumeric())
        .map(|(i, _)| i);
    let Some(start) = start else {
        return word.to_owned();
    };
    let end = word
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_alphanumeric())
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(word.len());
    let (lead, core, trail) = (&word[..start], &word[start..end], &word[end..]);
    let mut out = String::from(lead);
    let mut part_start = 0;
    let mut first_part = first;
    for (i, c) in core.char_indices() {
        if c == '-' || c == '/' {
            out.push_str(&title_case_part(&core[part_start..i], first_part));
            out.push(c);
            part_start = i + 1;
            first_part = false;
        }
    }
    out.push_str(&title_case_part(&core[part_start..], first_part));
    out.push_str(trail);
    out
}

/// Whether text is written in capitals: most of its words of two or more letters are
/// upper case, and not only because of acronyms.
fn is_shouting(text: &str) -> bool {
    let mut cased = 0;
    let mut caps = 0;
    let mut caps_not_acronym = 0;
    for word in text.split_whitespace() {
        let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
        if letters.len() < 2 || !letters.iter().any(|c| c.is_uppercase() || c.is_lowercase()) {
            continue;
        }
        cased += 1;
        if letters.iter().all(|c| !c.is_lowercase()) {
            caps += 1;
            let core: String = letters.iter().collect::<String>().to_lowercase();
            if !ACRONYMS.contains(&core.as_str()) {
                caps_not_acronym += 1;
            }
        }
    }
    cased > 0 && caps * 5 >= cased * 3 && caps_not_acronym >= 1
}

/// ALL-CAPS or all-lower-case text in title case; mixed case is the merchant's choice
/// and stays as it is.
pub fn fix_caps(text: &str) -> String {
    let all_lower = !text.chars().any(char::is_uppercase);
    if is_shouting(text) || all_lower {
        return text
            .split(' ')
            .enumerate()
            .map(|(i, word)| title_case_word(word, i == 0))
            .collect::<Vec<_>>()
            .join(" ");
    }
    text.to_owned()
}

/// Abbreviations after which a full stop does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g.", "i.e.", "etc.", "approx.", "ca.", "z.b.", "bzw.", "vs.",
];

/// Capitalises the first word of each sentence when it is written all in lower case
/// ("warm hoodie. has pocket." → "Warm hoodie. Has pocket."). Words with capitals inside
/// ("iPhone") are left alone.
pub fn capitalize_sentences(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut sentence_start = true;
    for word in text.split(' ') {
        let lower_only =
            word.chars().any(char::is_alphabetic) && !word.chars().any(char::is_uppercase);
        if sentence_start && lower_only {
            out.push(capitalize(word));
        } else {
            out.push(word.to_owned());
        }
        if !word.is_empty() {
            let ends = word.ends_with(['.', '!', '?'])
                && !ABBREVIATIONS.contains(&word.to_lowercase().as_str());
            sentence_start = ends;
        }
    }
    out.join(" ")
}

/// Removes a word repeated right after itself ("Linen Linen Shirt"), keeping the
/// punctuation of the one removed ("Shirt Shirt," → "Shirt,").
pub fn remove_repeated_words(text: &str) -> String {
    fn core(word: &str) -> String {
        word.trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase()
    }
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ') {
        if let Some(previous) = words.last_mut() {
            let same = core(previous) == core(word) && word.chars().any(char::is_alphabetic);
            let previous_ends_clean = previous.chars().last().is_some_and(char::is_alphanumeric);
            if same && previous_ends_clean {
                let trail: String = word
                    .chars()
                    .rev()
                    .take_while(|c| !c.is_alphanumeric())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                previous.push_str(&trail);
                continue;
            }
        }
        words.push(word.to_owned());
    }
    words.join(" ")
}

/// No space before `,` `.` `)` or after `(`. Other marks keep their spacing: French puts
/// a space before `:` `!` `?`.
fn fix_spacing(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next = chars.get(i + 1).copied();
            let previous = out.chars().last();
            let before_mark = matches!(next, Some(',' | '.' | ')'))
                && previous.is_some_and(char::is_alphanumeric)
                && !chars
                    .get(i + 2)
                    .is_some_and(|after| after.is_ascii_digit() && next == Some('.'));
            if before_mark || previous == Some('(') {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The title with whitespace, spacing, capitals and repeated words repaired (not cut).
pub fn improve_title(title: &str) -> String {
    let clean = clean_plain_text(title);
    remove_repeated_words(&fix_caps(&fix_spacing(&clean)))
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Attribute names that tell products apart in a search result, in order of preference.
const KEY_ATTRIBUTES: &[&str] = &[
    "color",
    "colour",
    "farbe",
    "couleur",
    "color/colour",
    "material",
    "fabric",
    "materiał",
    "stoff",
    "matière",
    "style",
    "pattern",
];

/// The value of the product's most distinguishing single-valued attribute.
fn key_attribute(product: &SourceProduct) -> Option<String> {
    KEY_ATTRIBUTES.iter().find_map(|wanted| {
        product
            .attributes
            .iter()
            .find(|a| a.name.trim().eq_ignore_ascii_case(wanted) && a.values.len() == 1)
            .map(|a| improve_title(&a.values[0]))
            .filter(|v| !v.is_empty())
    })
}

/// "Title – Key | Brand", dropping the parts that do not fit the recommended length.
fn seo_title(product: &SourceProduct, platform: Platform) -> String {
    let target = limits(platform, Attribute::SeoTitle).target_chars;
    let title = improve_title(&product.title);
    let brand = product
        .brand
        .as_deref()
        .map(clean_plain_text)
        .filter(|b| !b.is_empty() && !contains_ci(&title, b));
    let key = key_attribute(product).filter(|k| !contains_ci(&title, k));
    let mut candidates = Vec::new();
    if let (Some(key), Some(brand)) = (&key, &brand) {
        candidates.push(format!("{title} – {key} | {brand}"));
    }
    if let Some(brand) = &brand {
        candidates.push(format!("{title} | {brand}"));
    }
    if let Some(key) = &key {
        candidates.push(format!("{title} – {key}"));
    }
    candidates
        .into_iter()
        .find(|c| c.chars().count() <= target)
        .unwrap_or_else(|| truncate_at_word(&title, target))
}

/// Lines of text as sentences: a line that does not end in a mark gets a full stop, so
/// list items read as "Organic cotton. Relaxed fit."
fn as_sentences(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            if line.ends_with(['.', '!', '?', '…', '。', '！', '？']) {
                line.to_owned()
            } else {
                format!("{}.", line.trim_end_matches([':', ';', ',']))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "Color: Blue, Green, Red" for each attribute: facts written without words of any
/// particular language.
fn attribute_facts(product: &SourceProduct) -> Vec<(String, String)> {
    product
        .attributes
        .iter()
        .filter(|a| !a.name.trim().is_empty() && !a.values.is_empty())
        .map(|a| {
            (
                collapse_whitespace(&a.name),
                a.values
                    .iter()
                    .map(|v| collapse_whitespace(v))
                    .filter(|v| !v.is_empty())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
        .filter(|(_, values)| !values.is_empty())
        .collect()
}

/// The first sentences of the description (or short description) as plain text, with the
/// product's attributes when the text is short.
fn meta_description(product: &SourceProduct) -> String {
    let target = limits(Platform::Wix, Attribute::SeoDescription).target_chars;
    let description = as_sentences(&html_to_text(&product.description_html));
    let short = as_sentences(&html_to_text(&product.short_description));
    let mut text = if description.chars().count() >= 60
        || short.is_empty()
        || contains_ci(&description, short.trim_end_matches('.'))
    {
        description
    } else if description.is_empty() {
        short
    } else {
        format!("{short} {description}")
    };
    if text.is_empty() {
        let title = improve_title(&product.title);
        text = match product.brand.as_deref().map(clean_plain_text) {
            Some(brand) if !brand.is_empty() && !contains_ci(&title, &brand) => {
                format!("{title} – {brand}.")
            }
            _ if title.is_empty() => String::new(),
            _ => format!("{title}."),
        };
    }
    if text.chars().count() < 80 {
        for (name, values) in attribute_facts(product) {
            text = format!("{text} {name}: {values}.");
        }
    }
    truncate_at_sentence(&capitalize_sentences(&collapse_whitespace(&text)), target)
}

fn facts_list(facts: &[(String, String)]) -> String {
    let items: String = facts
        .iter()
        .map(|(name, values)| {
            format!(
                "<li><strong>{}:</strong> {}</li>",
                escape_html(name),
                escape_html(values)
            )
        })
        .collect();
    if items.is_empty() {
        String::new()
    } else {
        format!("<ul>{items}</ul>")
    }
}

/// Below this many characters of text a description gets the product's details as a
/// list.
const SHORT_DESCRIPTION: usize = 200;

/// The description sanitized into paragraphs and lists, with the details as a list when
/// the text is missing or very short.
fn description(product: &SourceProduct) -> String {
    let source = if html_to_text(&product.description_html).is_empty() {
        &product.short_description
    } else {
        &product.description_html
    };
    let mut html = if looks_like_html(source) {
        sanitize_html(source)
    } else {
        let paragraphs: Vec<String> = source
            .split('\n')
            .map(|line| capitalize_sentences(line.trim()))
            .collect();
        sanitize_html(&text_to_html(&paragraphs.join("\n")))
    };
    let text = html_to_text(&html);
    if text.chars().count() < SHORT_DESCRIPTION {
        let mut facts = Vec::new();
        if let Some(brand) = product.brand.as_deref().map(clean_plain_text) {
            if !brand.is_empty() && !contains_ci(&text, &brand) {
                facts.push(("Brand".to_owned(), brand));
            }
        }
        facts.extend(
            attribute_facts(product)
                .into_iter()
                .filter(|(_, values)| !contains_ci(&text, values)),
        );
        let list = facts_list(&facts);
        if !list.is_empty() {
            html = if html.is_empty() {
                list
            } else {
                format!("{html}\n{list}")
            };
        }
    }
    html
}

/// Attribute names whose values are the product's material.
const MATERIAL_NAMES: &[&str] = &[
    "material",
    "materials",
    "fabric",
    "composition",
    "materiał",
    "stoff",
    "matière",
    "tejido",
    "materiale",
];

/// Attribute names whose values are care instructions.
const CARE_NAMES: &[&str] = &[
    "care",
    "care instructions",
    "washing",
    "washing instructions",
    "pflege",
    "pflegehinweise",
    "entretien",
    "cuidado",
    "cura",
];

/// The existing sections, plus Material, Care and Details sections from the attributes
/// when the product has no section of that title yet.
fn info_sections(product: &SourceProduct) -> Vec<InfoSection> {
    let mut sections: Vec<InfoSection> = product.info_sections.clone();
    let has_title = |sections: &[InfoSection], title: &str| {
        sections
            .iter()
            .any(|s| clean_plain_text(&s.title).eq_ignore_ascii_case(title))
    };
    let mut details = Vec::new();
    let mut special = Vec::new();
    for (name, values) in attribute_facts(product) {
        let lower = name.to_lowercase();
        if MATERIAL_NAMES.contains(&lower.as_str()) || CARE_NAMES.contains(&lower.as_str()) {
            special.push((improve_title(&name), values));
        } else {
            details.push((name, values));
        }
    }
    for (title, values) in special {
        if !has_title(&sections, &title) {
            sections.push(InfoSection {
                html: format!("<p>{}</p>", escape_html(&values)),
                title,
            });
        }
    }
    if let Some(brand) = product.brand.as_deref().map(clean_plain_text) {
        if !brand.is_empty() {
            details.insert(0, ("Brand".to_owned(), brand));
        }
    }
    let list = facts_list(&details);
    let already = ["details", "product details", "specifications", "specs"]
        .iter()
        .any(|t| has_title(&sections, t));
    if !list.is_empty() && !already {
        sections.push(InfoSection {
            title: "Details".into(),
            html: list,
        });
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Availability, ProductAttribute};

    fn product(title: &str) -> SourceProduct {
        SourceProduct {
            external_id: "1".into(),
            title: title.into(),
            description_html: String::new(),
            short_description: String::new(),
            seo_title: None,
            seo_description: None,
            info_sections: Vec::new(),
            sku: None,
            gtin: None,
            mpn: None,
            brand: None,
            price: None,
            sale_price: None,
            currency: "EUR".into(),
            availability: Availability::InStock,
            stock: None,
            categories: Vec::new(),
            tags: Vec::new(),
            images: Vec::new(),
            link: None,
            attributes: Vec::new(),
            variants: Vec::new(),
            published: true,
        }
    }

    fn attribute(name: &str, values: &[&str]) -> ProductAttribute {
        ProductAttribute {
            name: name.into(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn capitals_become_title_case_with_acronyms_and_units_kept() {
        assert_eq!(
            fix_caps("USB-C LED DESK LAMP WITH 3 BRIGHTNESS LEVELS"),
            "USB-C LED Desk Lamp with 3 Brightness Levels"
        );
        assert_eq!(
            fix_caps("ORGANIC FACE CREAM 100ML FOR DRY SKIN"),
            "Organic Face Cream 100ml for Dry Skin"
        );
        assert_eq!(fix_caps("MEN'S T-SHIRT XL BLACK"), "Men's T-Shirt XL Black");
        assert_eq!(fix_caps("WATERING CAN 5L"), "Watering Can 5L");
        assert_eq!(
            fix_caps("WATERPROOF SPEAKER IPX7"),
            "Waterproof Speaker IPX7"
        );
        assert_eq!(fix_caps("ÉCHARPE EN LAINE"), "Écharpe en Laine");
        // Mixed case and acronym-only capitals are the merchant's choice.
        assert_eq!(fix_caps("USB Cable for iPhone"), "USB Cable for iPhone");
        assert_eq!(fix_caps("Ocean Blue Shirt"), "Ocean Blue Shirt");
        assert_eq!(
            fix_caps("linen shirt with pocket"),
            "Linen Shirt with Pocket"
        );
    }

    #[test]
    fn sentences_start_with_a_capital() {
        assert_eq!(
            capitalize_sentences("warm fleece hoodie. has pocket. good for camping"),
            "Warm fleece hoodie. Has pocket. Good for camping"
        );
        assert_eq!(
            capitalize_sentences("fits e.g. laptops. iPhone cases too! yes"),
            "Fits e.g. laptops. iPhone cases too! Yes"
        );
    }

    #[test]
    fn repeated_words_and_spacing_are_repaired() {
        assert_eq!(remove_repeated_words("Linen Linen Shirt"), "Linen Shirt");
        assert_eq!(
            remove_repeated_words("Blue Shirt shirt, M"),
            "Blue Shirt, M"
        );
        assert_eq!(remove_repeated_words("Pack of 2 2"), "Pack of 2 2");
        assert_eq!(
            improve_title("  Linen   shirt ,  blue ( long ) "),
            "Linen shirt, blue (long)"
        );
        assert_eq!(improve_title("Screws 0 .5 mm"), "Screws 0 .5 mm");
    }

    #[tokio::test]
    async fn titles_are_repaired_and_cut_to_the_platform_limit() {
        let long = "HANDMADE CERAMIC COFFEE MUG MUG WITH SPECKLED GLAZE AND COMFORTABLE HANDLE, \
                    LARGE 16OZ CAPACITY, DISHWASHER AND MICROWAVE SAFE";
        let p = product(long);
        let task = TextTask {
            product: &p,
            attribute: Attribute::Title,
            target_lang: None,
            user_prompt: Some("ignored"),
            brand_voice: Some("ignored"),
            platform: Platform::Wix,
        };
        let ContentValue::Text(title) = RulesOptimizer.optimize(&task).await.unwrap() else {
            panic!()
        };
        assert!(title.chars().count() <= 80, "{title}");
        assert!(
            title.starts_with("Handmade Ceramic Coffee Mug with Speckled Glaze"),
            "{title}"
        );
        assert!(!title.ends_with(',') && !title.ends_with(" and"), "{title}");
        let woo = TextTask {
            platform: Platform::Woocommerce,
            ..task
        };
        let ContentValue::Text(title) = RulesOptimizer.optimize(&woo).await.unwrap() else {
            panic!()
        };
        assert!(title.ends_with("Dishwasher and Microwave Safe"), "{title}");
        assert!(title.contains("16oz"), "{title}");
    }

    #[test]
    fn seo_titles_add_key_attribute_and_brand_within_sixty_characters() {
        let mut p = product("Linen Shirt");
        p.brand = Some("Acme".into());
        p.attributes = vec![
            attribute("Color", &["Blue"]),
            attribute("Size", &["S", "M"]),
        ];
        assert_eq!(seo_title(&p, Platform::Wix), "Linen Shirt – Blue | Acme");
        p.attributes = vec![attribute("Color", &["Blue", "Green"])];
        assert_eq!(seo_title(&p, Platform::Wix), "Linen Shirt | Acme");
        p.title = "Acme Linen Shirt in Blue".into();
        p.attributes = vec![attribute("Color", &["Blue"])];
        assert_eq!(seo_title(&p, Platform::Wix), "Acme Linen Shirt in Blue");
        p.title = "Relaxed Linen Shirt with Mother-of-Pearl Buttons and Chest Pocket".into();
        p.brand = Some("Northwind Outfitters".into());
        let seo = seo_title(&p, Platform::Wix);
        assert!(seo.chars().count() <= 60, "{seo}");
        assert_eq!(
            seo,
            "Relaxed Linen Shirt with Mother-of-Pearl Buttons and Chest"
        );
    }

    #[test]
    fn meta_descriptions_come_from_the_first_sentences() {
        let mut p = product("Linen Shirt");
        p.description_html = "<p>Our linen shirt is woven in Portugal from European flax and \
             garment-washed for softness.</p><ul><li>Breathes on hot days</li><li>Gets \
             softer with every wash</li></ul><p>Machine wash at 30 °C.</p>"
            .into();
        let meta = meta_description(&p);
        assert_eq!(
            meta,
            "Our linen shirt is woven in Portugal from European flax and garment-washed for \
             softness. Breathes on hot days. Gets softer with every wash."
        );
        let mut bare = product("Linen Shirt");
        bare.brand = Some("Acme".into());
        bare.attributes = vec![attribute("Color", &["Blue", "Sand"])];
        assert_eq!(
            meta_description(&bare),
            "Linen Shirt – Acme. Color: Blue, Sand."
        );
    }

    #[test]
    fn short_descriptions_get_the_details_as_a_list() {
        let mut p = product("Linen Shirt");
        p.description_html = "Soft linen shirt.\n\nWoven in Portugal.".into();
        p.brand = Some("Acme".into());
        p.attributes = vec![attribute("Color", &["Blue", "Sand"])];
        assert_eq!(
            description(&p),
            "<p>Soft linen shirt.</p>\n<p>Woven in Portugal.</p>\n<ul><li><strong>Brand:\
             </strong> Acme</li><li><strong>Color:</strong> Blue, Sand</li></ul>"
        );
        p.description_html = format!(
            "<div style=\"x\"><p>{}</p><script>track()</script></div>",
            "A long and detailed text about the shirt. ".repeat(6)
        );
        let html = description(&p);
        assert!(!html.contains("<ul>"), "long enough already: {html}");
        assert!(!html.contains("script") && !html.contains("style"));
    }

    #[test]
    fn info_sections_come_from_attributes_and_keep_existing_ones() {
        let mut p = product("Linen Shirt");
        p.brand = Some("Acme".into());
        p.info_sections = vec![InfoSection {
            title: "Shipping".into(),
            html: "<p onclick=x>Ships in 2 days</p>".into(),
        }];
        p.attributes = vec![
            attribute("Material", &["100% linen"]),
            attribute("care", &["Machine wash at 30 °C"]),
            attribute("Color", &["Blue", "Sand"]),
        ];
        let sections = info_sections(&p);
        let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["Shipping", "Material", "Care", "Details"]);
        assert_eq!(sections[1].html, "<p>100% linen</p>");
        assert_eq!(
            sections[3].html,
            "<ul><li><strong>Brand:</strong> Acme</li><li><strong>Color:</strong> Blue, \
             Sand</li></ul>"
        );
    }

    #[tokio::test]
    async fn translation_is_refused_and_empty_products_are_rejected() {
        let p = product("Linen Shirt");
        let task = TextTask {
            product: &p,
            attribute: Attribute::Title,
            target_lang: Some("de"),
            user_prompt: None,
            brand_voice: None,
            platform: Platform::Local,
        };
        let err = RulesOptimizer.optimize(&task).await.unwrap_err();
        assert!(
            matches!(err, AiError::Rejected { status: None, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert!(!RulesOptimizer.can_translate());
        assert_eq!(RulesOptimizer.name(), "rules");
        let empty = product("  ");
        for attribute in [
            Attribute::Title,
            Attribute::Description,
            Attribute::InfoSections,
        ] {
            let task = TextTask {
                product: &empty,
                attribute,
                target_lang: None,
                ..task
            };
            let err = RulesOptimizer.optimize(&task).await.unwrap_err();
            assert_eq!(err.code(), "provider_rejected", "{attribute:?}");
        }
    }
}
