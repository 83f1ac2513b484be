//! The languages a translating provider may write in, as offered to merchants.

/// `(BCP-47 code, English name)`, in the order the dashboard lists them.
const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("de", "German"),
    ("fr", "French"),
    ("es", "Spanish"),
    ("it", "Italian"),
    ("pt", "Portuguese"),
    ("nl", "Dutch"),
    ("pl", "Polish"),
    ("sv", "Swedish"),
    ("da", "Danish"),
    ("fi", "Finnish"),
    ("no", "Norwegian"),
    ("cs", "Czech"),
    ("sk", "Slovak"),
    ("hu", "Hungarian"),
    ("ro", "Romanian"),
    ("bg", "Bulgarian"),
    ("el", "Greek"),
    ("hr", "Croatian"),
    ("sl", "Slovenian"),
    ("et", "Estonian"),
    ("lv", "Latvian"),
    ("lt", "Lithuanian"),
    ("uk", "Ukrainian"),
    ("tr", "Turkish"),
    ("ja", "Japanese"),
    ("zh", "Chinese"),
    ("ko", "Korean"),
    ("he", "Hebrew"),
    ("ar", "Arabic"),
    ("hi", "Hindi"),
    ("th", "Thai"),
    ("vi", "Vietnamese"),
    ("id", "Indonesian"),
];

/// Every supported target language: `(code, English name)`.
pub fn languages() -> &'static [(&'static str, &'static str)] {
    LANGUAGES
}

/// The English name of a supported language. Codes compare case-insensitively and a
/// region or script subtag falls back to its language (`pt-BR` is Portuguese), so the
/// API can accept what browsers send.
pub fn language_name(code: &str) -> Option<&'static str> {
    let code = code.trim();
    let find = |wanted: &str| {
        LANGUAGES
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(wanted))
            .map(|(_, name)| *name)
    };
    find(code).or_else(|| {
        let primary = code.split(['-', '_']).next()?;
        (primary.len() < code.len())
            .then(|| find(primary))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_by_code_and_primary_subtag() {
        assert_eq!(language_name("de"), Some("German"));
        assert_eq!(language_name("DE"), Some("German"));
        assert_eq!(language_name("pt-BR"), Some("Portuguese"));
        assert_eq!(language_name("zh_Hant"), Some("Chinese"));
        assert_eq!(language_name("xx"), None);
        assert_eq!(language_name(""), None);
        assert_eq!(language_name("-"), None);
        let codes: Vec<&str> = languages().iter().map(|(c, _)| *c).collect();
        for required in [
            "en", "de", "fr", "es", "it", "ja", "zh", "ko", "he", "ar", "tr",
        ] {
            assert!(codes.contains(&required), "{required}");
        }
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len(), "codes are unique");
    }
}
