//! Properties of content repair over generated tag soup: whatever a provider or a merchant
//! sends, what comes out is within the allow-list, well-formed, within the limit, and a
//! second repair changes nothing.

use std::cell::RefCell;

use domain::content::{html_to_text, limits, sanitize_html};
use domain::{repair, Attribute, ContentValue, Platform};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use proptest::prelude::*;

/// Elements the output may contain (after `h1` → `h2` and `h5`/`h6` → `h4`).
const ALLOWED: &[&str] = &[
    "p", "br", "ul", "ol", "li", "strong", "b", "em", "i", "a", "h2", "h3", "h4",
];

fn tag_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        // allowed
        "p",
        "br",
        "ul",
        "ol",
        "li",
        "strong",
        "b",
        "em",
        "i",
        "a",
        "h1",
        "h2",
        "h3",
        "h5",
        // removed, content kept
        "div",
        "span",
        "font",
        "table",
        "tr",
        "td",
        "th",
        "blockquote",
        "pre",
        "hr",
        "img",
        "u",
        "code",
        "section",
        "body",
        "html",
        "custom-tag",
        // removed with content
        "script",
        "style",
        "iframe",
        "svg",
        "math",
        "template",
        "noscript",
        "textarea",
        "title",
        "form",
        "button",
        "select",
        "object",
        "xmp",
        "plaintext",
        "noembed",
    ])
}

fn attribute() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "href=\"https://acme.example/a?b=1&amp;c=2\"",
            "href='http://acme.example'",
            "href=mailto:help@acme.example",
            "href=\"javascript:alert(1)\"",
            "href=\" JaVaScRiPt:alert(1)\"",
            "href=\"jav&#x61;script:alert(1)\"",
            "href=\"java&Tab;script:x\"",
            "href=\"data:text/html,<script>x</script>\"",
            "href=\"/relative\"",
            "href=\"https://\"",
            "href",
            "onclick=\"x()\"",
            "onerror=alert(1)",
            "style=\"color:red\"",
            "class=x",
            "id=t",
            "src=x",
            "title=\"a>b\"",
            "rel=nofollow",
            "target=_blank",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,6}=\"[^\"]{0,8}\"",
    ]
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (tag_name(), prop::collection::vec(attribute(), 0..3), any::<bool>()).prop_map(
            |(name, attrs, self_closing)| {
                let attrs: String = attrs.iter().map(|a| format!(" {a}")).collect();
                let slash = if self_closing { "/" } else { "" };
                format!("<{name}{attrs}{slash}>")
            }
        ),
        3 => tag_name().prop_map(|name| format!("</{name}>")),
        4 => "[A-Za-z]{1,10}",
        2 => prop::sample::select(vec![
            " ", "\n", "\n\n", "\t", "\u{a0}", "  ", "- ", "1. ", "## ", "**", "```", "\"",
            "Here is the description:", "Title:", "Let me know if you need more!",
        ])
        .prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            "&amp;", "&lt;", "&gt;", "&#60;", "&#x3c;", "&nbsp;", "&Ccaron;", "&unknown;",
            "&", "&#0;", "&#x110000;", "&eacute", "&amp;lt;", "&amp;amp;", "<", ">",
            "<3", "a < b",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec![
            "<!-- comment -->", "<!--", "-->", "<!doctype html>", "<![CDATA[x]]>",
            "<?php echo 1 ?>", "<a href=\"https://x.example", "<p", "</", "<!",
            "<script>alert(1)</script>", "<style>p{}</style>", "<img src=x onerror=alert(1)>",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{1,6}",
    ]
}

fn tag_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..48).prop_map(|parts| parts.concat())
}

/// A tag as the tokenizer read it: start or end, name, attributes.
type ReadTag = (TagKind, String, Vec<(String, String)>);

/// What html5ever's tokenizer reads from an output: tags with their attributes, and
/// whether anything else (a comment, a doctype) appeared.
#[derive(Default)]
struct Tags {
    tags: RefCell<Vec<ReadTag>>,
    other_markup: RefCell<Vec<String>>,
}

impl TokenSink for Tags {
    type Handle = ();

    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        match token {
            Token::TagToken(tag) => {
                let attrs = tag
                    .attrs
                    .iter()
                    .map(|a| (a.name.local.to_string(), a.value.to_string()))
                    .collect();
                self.tags
                    .borrow_mut()
                    .push((tag.kind, tag.name.to_string(), attrs));
            }
            Token::CommentToken(text) => self.other_markup.borrow_mut().push(text.to_string()),
            Token::DoctypeToken(_) => self.other_markup.borrow_mut().push("doctype".into()),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Checks that `html` holds only allow-listed elements, only a safe `href` on `a`, no other
/// markup, and that every element is closed in order.
fn assert_within_allow_list(html: &str) -> Result<(), TestCaseError> {
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let tokenizer = Tokenizer::new(Tags::default(), TokenizerOpts::default());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let Tags { tags, other_markup } = tokenizer.sink;
    prop_assert!(other_markup.into_inner().is_empty(), "{html:?}");
    let mut open: Vec<String> = Vec::new();
    for (kind, name, attrs) in tags.into_inner() {
        prop_assert!(ALLOWED.contains(&name.as_str()), "<{name}> in {html:?}");
        match kind {
            TagKind::StartTag => {
                for (attr, value) in &attrs {
                    prop_assert!(name == "a" && attr == "href", "{attr} on {name}: {html:?}");
                    let lower = value.to_ascii_lowercase();
                    prop_assert!(
                        lower.starts_with("https://")
                            || lower.starts_with("http://")
                            || lower.starts_with("mailto:"),
                        "href {value:?} in {html:?}"
                    );
                }
                if name == "a" {
                    prop_assert_eq!(attrs.len(), 1, "a link keeps its href: {}", html);
                }
                if name != "br" {
                    open.push(name);
                }
            }
            TagKind::EndTag => {
                prop_assert_eq!(open.pop(), Some(name), "balanced: {}", html);
            }
        }
    }
    prop_assert!(open.is_empty(), "all closed: {html:?}");
    Ok(())
}

fn repaired_text(
    platform: Platform,
    attribute: Attribute,
    raw: &str,
) -> Result<Option<String>, TestCaseError> {
    match repair(platform, attribute, ContentValue::Text(raw.to_owned())) {
        Ok(ContentValue::Text(text)) => Ok(Some(text)),
        Ok(other) => Err(TestCaseError::fail(format!("{other:?}"))),
        Err(_) => Ok(None),
    }
}

fn platform() -> impl Strategy<Value = Platform> {
    prop::sample::select(vec![Platform::Wix, Platform::Woocommerce, Platform::Local])
}

proptest! {
    // Failures are turned into named regression tests, not a persistence file.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn sanitized_html_is_within_the_allow_list_and_stable(soup in tag_soup()) {
        let clean = sanitize_html(&soup);
        assert_within_allow_list(&clean)?;
        prop_assert_eq!(sanitize_html(&clean), clean.clone(), "from {:?}", soup);
    }

    #[test]
    fn repaired_descriptions_are_allowed_within_limits_and_idempotent(
        soup in tag_soup(),
        platform in platform(),
        max_chars in prop::option::of(20usize..400),
    ) {
        // A small limit exercises the cut as often as the whole text.
        let repaired = match max_chars {
            Some(max) => {
                let cut = domain::content::truncate_html(&soup, max);
                prop_assert!(cut.chars().count() <= max, "{} > {}", cut.chars().count(), max);
                assert_within_allow_list(&cut)?;
                prop_assert_eq!(domain::content::truncate_html(&cut, max), cut.clone());
                None
            }
            None => repaired_text(platform, Attribute::Description, &soup)?,
        };
        if let Some(once) = repaired {
            assert_within_allow_list(&once)?;
            prop_assert!(
                once.chars().count() <= limits(platform, Attribute::Description).max_chars
            );
            let twice = repaired_text(platform, Attribute::Description, &once)?;
            prop_assert_eq!(twice, Some(once.clone()), "from {:?}", soup);
        }
    }

    #[test]
    fn repaired_titles_are_plain_text_and_idempotent(
        soup in tag_soup(),
        platform in platform(),
        attribute in prop::sample::select(vec![
            Attribute::Title, Attribute::SeoTitle, Attribute::SeoDescription,
        ]),
    ) {
        if let Some(once) = repaired_text(platform, attribute, &soup)? {
            prop_assert!(once.chars().count() <= limits(platform, attribute).max_chars);
            prop_assert!(!once.contains('\n'), "{once:?}");
            prop_assert_eq!(html_to_text(&once), once.clone(), "no markup left: {:?}", soup);
            let twice = repaired_text(platform, attribute, &once)?;
            prop_assert_eq!(twice, Some(once.clone()), "from {:?}", soup);
        }
    }
}
