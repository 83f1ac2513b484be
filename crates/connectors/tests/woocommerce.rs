//! The real WooCommerce client against the fake WooCommerce server, over HTTP.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use connectors::csv::parse_catalog;
use connectors::http::{ConnectorError, RetryPolicy};
use connectors::woocommerce::{ClientOptions, WooCommerceClient};
use domain::SourceProduct;
use testkit::woocommerce::{FakeWooCommerce, Fault};

/// The products of the project's WooCommerce export fixture.
fn sample() -> Vec<SourceProduct> {
    parse_catalog(&testkit::fixtures::woocommerce_export(), "USD")
        .unwrap()
        .products
}

fn fast_retries() -> ClientOptions {
    ClientOptions {
        allow_http: true,
        allow_private_addresses: false,
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            timeout: Duration::from_millis(500),
        },
    }
}

fn client(fake: &FakeWooCommerce) -> WooCommerceClient {
    WooCommerceClient::new(
        &fake.base_url,
        &fake.consumer_key,
        &fake.consumer_secret,
        fast_retries(),
    )
    .unwrap()
}

fn at(hour: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, hour, 0, 0).unwrap()
}

#[tokio::test]
async fn reads_the_sample_store_with_variations() {
    let fake = FakeWooCommerce::start().await;
    let expected = sample();
    fake.seed(&expected, at(9));
    let products = client(&fake).fetch_products("USD", None).await.unwrap();
    assert_eq!(products.len(), 14);
    let by_title = |title: &str| products.iter().find(|p| p.title == title).unwrap();
    let crew = by_title("Merino Base Layer Crew");
    assert_eq!(crew.variants.len(), 3);
    assert_eq!(crew.variants[0].options[0].name, "Color");
    assert_eq!(crew.variants[0].price.unwrap().minor, 8900);
    assert_eq!(crew.variants[1].sale_price.unwrap().minor, 7500);
    let poles = by_title("Carbon Trekking Poles");
    assert_eq!(poles.price.unwrap().minor, 14900);
    let beanie = by_title("Ridge Beanie");
    assert_eq!(beanie.sale_price.unwrap().minor, 1900);
    assert_eq!(beanie.categories, ["Accessories"]);
    for original in &expected {
        let read = products
            .iter()
            .find(|p| p.external_id == original.external_id)
            .unwrap();
        assert_eq!(
            (&read.title, read.price, read.variants.len()),
            (&original.title, original.price, original.variants.len())
        );
        assert_eq!(read.images.len(), original.images.len());
    }
}

#[tokio::test]
async fn pages_through_large_catalogs_one_hundred_at_a_time() {
    let fake = FakeWooCommerce::start().await;
    let mut many = Vec::new();
    for n in 0..250 {
        let mut product = sample()[2].clone();
        product.external_id = (5000 + n).to_string();
        product.title = format!("Product {n}");
        many.push(product);
    }
    fake.seed(&many, at(9));
    let products = client(&fake).fetch_products("USD", None).await.unwrap();
    assert_eq!(products.len(), 250);
    assert_eq!(products[0].title, "Product 0");
    assert_eq!(products[249].title, "Product 249");
    assert_eq!(
        fake.requests(),
        3,
        "ceil(250 / 100) pages, no variations to read"
    );
}

#[tokio::test]
async fn incremental_reads_use_gmt_modified_dates() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&sample(), at(9));
    let woo = client(&fake);
    fake.rename(103, "Trail Running Socks — renamed", at(12));
    // The site clock is three hours behind GMT: a site-local comparison would miss this.
    let changed = woo.fetch_products("USD", Some(at(11))).await.unwrap();
    let titles: Vec<&str> = changed.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["Trail Running Socks — renamed"]);
    assert!(woo
        .fetch_products("USD", Some(at(13)))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn wrong_keys_over_plain_http_are_refused_with_woocommerces_words() {
    let fake = FakeWooCommerce::start().await;
    let wrong_secret = WooCommerceClient::new(
        &fake.base_url,
        &fake.consumer_key,
        "cs_wrong",
        fast_retries(),
    )
    .unwrap();
    match wrong_secret.verify().await {
        Err(ConnectorError::Unauthorized { code, message }) => {
            assert_eq!(code, "woocommerce_rest_authentication_error");
            assert_eq!(
                message,
                "Invalid signature - provided signature does not match."
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let unknown_key =
        WooCommerceClient::new(&fake.base_url, "ck_unknown", "cs_x", fast_retries()).unwrap();
    match unknown_key.verify().await {
        Err(ConnectorError::Unauthorized { code, message }) => {
            assert_eq!(code, "woocommerce_rest_authentication_error");
            assert_eq!(message, "Consumer key is invalid.");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fake.requests(), 2, "authentication errors are not retried");
}

/// Signs a GET as WooCommerce's JavaScript client does (OAuth 1.0a in the query), here with
/// HMAC-SHA1, independently of the connector's signer.
fn signed_query(
    fake: &FakeWooCommerce,
    path: &str,
    query: &[(&str, &str)],
    timestamp: i64,
    nonce: &str,
) -> Vec<(String, String)> {
    use base64::Engine;
    use hmac::Mac;
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encode = |text: &str| utf8_percent_encode(text, UNRESERVED).to_string();
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([
            ("oauth_consumer_key".to_owned(), fake.consumer_key.clone()),
            ("oauth_nonce".to_owned(), nonce.to_owned()),
            ("oauth_signature_method".to_owned(), "HMAC-SHA1".to_owned()),
            ("oauth_timestamp".to_owned(), timestamp.to_string()),
            ("oauth_version".to_owned(), "1.0".to_owned()),
        ])
        .collect();
    let mut encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    encoded.sort();
    let base = format!(
        "GET&{}&{}",
        encode(&format!("{}{path}", fake.base_url)),
        encode(&encoded.join("&"))
    );
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(format!("{}&", fake.consumer_secret).as_bytes())
            .unwrap();
    mac.update(base.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    pairs.push(("oauth_signature".to_owned(), signature));
    pairs
}

#[tokio::test]
async fn plain_http_takes_oauth_only_and_refuses_replays_as_woocommerce_does() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&sample()[..3], at(9));
    let http = reqwest::Client::new();
    let url = format!("{}{PRODUCTS}", fake.base_url);
    let status_and_body = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.unwrap())
    };
    // Over plain HTTP WooCommerce ignores Basic auth and query-string keys.
    let basic = http
        .get(&url)
        .basic_auth(&fake.consumer_key, Some(&fake.consumer_secret))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(basic).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("woocommerce_rest_cannot_view"))
    );
    let in_query = http
        .get(&url)
        .query(&[
            ("consumer_key", &fake.consumer_key),
            ("consumer_secret", &fake.consumer_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 401);

    let now = Utc::now().timestamp();
    let signed = signed_query(&fake, PRODUCTS, &[("per_page", "2")], now, "nonce-1");
    let first = http.get(&url).query(&signed).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let replayed = http.get(&url).query(&signed).send().await.unwrap();
    let (status, body) = status_and_body(replayed).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["message"],
        "Invalid nonce - nonce has already been used."
    );
    let stale = signed_query(&fake, PRODUCTS, &[], now - 16 * 60, "nonce-2");
    let (status, body) = status_and_body(http.get(&url).query(&stale).send().await.unwrap()).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Invalid timestamp."))
    );
    let mut partial = signed_query(&fake, PRODUCTS, &[], now, "nonce-3");
    partial.retain(|(name, _)| name != "oauth_nonce" && name != "oauth_signature");
    let (status, body) =
        status_and_body(http.get(&url).query(&partial).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["code"],
        "woocommerce_rest_authentication_missing_parameter"
    );
    assert_eq!(
        body["message"],
        "Missing OAuth parameters oauth_nonce, oauth_signature"
    );
}

#[tokio::test]
async fn the_link_header_is_absolute_and_keeps_the_query() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&sample()[..5], at(9));
    let http = reqwest::Client::new();
    let url = format!("{}{PRODUCTS}", fake.base_url);
    let query = [("per_page", "2"), ("page", "2"), ("orderby", "id")];
    let signed = signed_query(&fake, PRODUCTS, &query, Utc::now().timestamp(), "link-1");
    let response = http.get(&url).query(&signed).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    let links: Vec<(&str, reqwest::Url)> = link
        .split(", ")
        .map(|part| {
            let (target, rel) = part.split_once("; ").unwrap();
            let target = target.trim_start_matches('<').trim_end_matches('>');
            (rel, reqwest::Url::parse(target).unwrap())
        })
        .collect();
    assert_eq!(links.len(), 2, "{link}");
    for (rel, target) in &links {
        let expected_page = if *rel == "rel=\"prev\"" { "1" } else { "3" };
        assert_eq!(
            format!("{}{}", &target[..url::Position::BeforePath], target.path()),
            url
        );
        let pairs: Vec<(String, String)> = target.query_pairs().into_owned().collect();
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(value("page"), Some(expected_page), "{link}");
        assert_eq!(value("per_page"), Some("2"));
        assert_eq!(value("orderby"), Some("id"));
        assert_eq!(
            value("oauth_consumer_key"),
            Some(fake.consumer_key.as_str())
        );
    }
    // Our client pages by `X-WP-TotalPages` and still reads every product.
    let products = client(&fake).fetch_products("USD", None).await.unwrap();
    assert_eq!(products.len(), 5);
}

#[tokio::test]
async fn addresses_are_checked_before_any_request() {
    let https_only = ClientOptions::default();
    assert!(matches!(
        WooCommerceClient::new("http://shop.example", "ck", "cs", https_only.clone()),
        Err(ConnectorError::InsecureUrl(_))
    ));
    assert!(matches!(
        WooCommerceClient::new("not a url", "ck", "cs", https_only.clone()),
        Err(ConnectorError::InvalidUrl(_))
    ));
    assert!(matches!(
        WooCommerceClient::new("ftp://shop.example", "ck", "cs", https_only.clone()),
        Err(ConnectorError::InvalidUrl(_))
    ));
    assert!(matches!(
        WooCommerceClient::new(
            "https://user:pw@shop.example",
            "ck",
            "cs",
            https_only.clone()
        ),
        Err(ConnectorError::InvalidUrl(_))
    ));
    assert!(WooCommerceClient::new("https://shop.example/", "ck", "cs", https_only).is_ok());
}

#[tokio::test]
async fn not_a_woocommerce_store_is_reported_with_the_platforms_error() {
    let fake = FakeWooCommerce::start().await;
    let elsewhere = WooCommerceClient::new(
        &format!("{}/blog", fake.base_url),
        &fake.consumer_key,
        &fake.consumer_secret,
        fast_retries(),
    )
    .unwrap();
    match elsewhere.verify().await {
        Err(ConnectorError::Platform { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (404, "rest_no_route"))
        }
        other => panic!("unexpected {other:?}"),
    }
    let unreachable =
        WooCommerceClient::new("http://127.0.0.1:9", "ck", "cs", fast_retries()).unwrap();
    assert!(matches!(
        unreachable.verify().await,
        Err(ConnectorError::Unreachable(_))
    ));
}

#[tokio::test]
async fn transient_failures_are_retried_and_retry_after_is_honoured() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&sample()[..3], at(9));
    fake.inject(&[
        Fault::ServerError,
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        Fault::DropConnection,
    ]);
    let started = std::time::Instant::now();
    let products = client(&fake).fetch_products("USD", None).await.unwrap();
    assert_eq!(products.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(
        fake.requests(),
        3 + 1 + 2,
        "three failures, the page, two variable products' variations"
    );

    fake.inject(&[Fault::ServerError; 4]);
    match client(&fake).verify().await {
        Err(ConnectorError::Platform { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (500, "internal_server_error"))
        }
        other => panic!("unexpected {other:?}"),
    }
}

// ---- Catalog, SEO, webhooks and key generation ----

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use connectors::woocommerce::{
    authorize_url, verify_webhook_signature, AuthorizeCallback, KeyScope, SeoPlugin,
};
use connectors::{list_all, Catalog, ContentUpdate, ProductUpdate};
use domain::ProductImage;
use testkit::woocommerce::{AuthDecision, SeoPlugin as FakeSeo};

const BATCH: &str = "/wp-json/wc/v3/products/batch";
const PRODUCTS: &str = "/wp-json/wc/v3/products";

/// A tiny HTTP receiver that records every request and answers with a status the test sets.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let status = Arc::new(AtomicU16::new(status));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (answer, log) = (status.clone(), received.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (answer, log) = (answer.clone(), log.clone());
            async move {
                log.lock().unwrap().push((headers, body));
                StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Receiver {
            url,
            status,
            received,
            server,
        }
    }

    fn requests(&self) -> Vec<(HeaderMap, Bytes)> {
        self.received.lock().unwrap().clone()
    }
}

fn simple(id: i64, title: &str) -> SourceProduct {
    let mut product = sample()[2].clone();
    product.external_id = id.to_string();
    product.title = title.to_owned();
    product.seo_title = None;
    product.seo_description = None;
    product
}

fn content(title: &str) -> ContentUpdate {
    ContentUpdate {
        title: Some(title.to_owned()),
        ..Default::default()
    }
}

fn change(id: &str, revision: Option<String>, update: ContentUpdate) -> ProductUpdate {
    ProductUpdate {
        external_id: id.to_owned(),
        expected_revision: revision,
        update,
    }
}

#[tokio::test]
async fn catalog_lists_by_page_cursor_and_gets_products() {
    let fake = FakeWooCommerce::start().await;
    let many: Vec<SourceProduct> = (0..150)
        .map(|n| simple(5000 + n, &format!("P{n}")))
        .collect();
    fake.seed(&many, at(9));
    let woo = client(&fake);
    let first = woo.list(None, None).await.unwrap();
    assert_eq!(first.products.len(), 100);
    assert_eq!(first.next_cursor.as_deref(), Some("2"));
    assert_eq!(first.products[0].product.external_id, "5000");
    assert_eq!(
        first.products[0].revision.as_deref(),
        Some("2026-11-01T09:00:00"),
        "the revision is date_modified_gmt"
    );
    let second = woo.list(Some("2"), None).await.unwrap();
    assert_eq!(second.products.len(), 50);
    assert_eq!(second.next_cursor, None);
    assert_eq!(list_all(&woo, None).await.unwrap().len(), 150);

    fake.rename(5010, "Renamed", at(12));
    let changed = list_all(&woo, Some(at(11))).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].product.title, "Renamed");

    let got = woo.get("5010").await.unwrap().unwrap();
    assert_eq!(got.product.title, "Renamed");
    assert_eq!(got.revision.as_deref(), Some("2026-11-01T12:00:00"));
    assert_eq!(woo.get("999999").await.unwrap(), None);
    assert_eq!(woo.get("not-a-number").await.unwrap(), None);
    assert!(matches!(
        woo.list(Some("zero"), None).await,
        Err(ConnectorError::InvalidResponse(_))
    ));
}

#[tokio::test]
async fn store_text_is_fitted_where_the_connector_hands_it_over() {
    let fake = FakeWooCommerce::start().await;
    let mut odd = simple(6001, "Mug\0 deluxe");
    odd.description_html = format!(
        "<p>{}</p>",
        "x".repeat(domain::text::DESCRIPTION_HTML_MAX_CHARS)
    );
    fake.seed(&[odd, simple(6002, "Plain")], at(9));
    let woo = client(&fake);
    let listed = woo.list(None, None).await.unwrap().products;
    let fitted = &listed[0].product;
    assert_eq!(fitted.title, "Mug deluxe", "NULs are removed");
    assert_eq!(
        fitted.description_html.chars().count(),
        domain::text::DESCRIPTION_HTML_MAX_CHARS,
        "an overlong field is cut to its cap"
    );
    assert_eq!(fitted.check_text(), Ok(()));
    assert_eq!(listed[1].product.title, "Plain");
    let got = woo.get("6001").await.unwrap().unwrap();
    assert_eq!(&got.product, fitted, "every read fits the same way");
    let fetched = woo.fetch_products("USD", None).await.unwrap();
    assert_eq!(&fetched[0], fitted);
}

#[tokio::test]
async fn private_addresses_are_refused_before_a_merchant_is_sent_to_approve() {
    use connectors::woocommerce::ensure_allowed_store_address;
    let guarded = ClientOptions::default();
    for private in [
        "https://127.0.0.1:8443",
        "https://10.0.0.5",
        "https://[::1]",
        "https://localhost",
    ] {
        assert!(
            matches!(
                ensure_allowed_store_address(private, &guarded).await,
                Err(ConnectorError::PrivateAddress(_))
            ),
            "{private}"
        );
    }
    let intranet = ClientOptions {
        allow_private_addresses: true,
        ..ClientOptions::default()
    };
    assert!(
        ensure_allowed_store_address("https://127.0.0.1:8443", &intranet)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn variable_products_come_with_variations_through_the_catalog() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&sample(), at(9));
    let crew = client(&fake).get("101").await.unwrap().unwrap();
    assert_eq!(crew.product.variants.len(), 3);
}

#[tokio::test]
async fn update_writes_content_and_a_stale_revision_is_a_conflict() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&[simple(7001, "Old title")], at(9));
    let woo = client(&fake);
    let read = woo.get("7001").await.unwrap().unwrap();
    let update = ContentUpdate {
        title: Some("New title".into()),
        description_html: Some("<p>Better words.</p>".into()),
        images: Some(vec![ProductImage {
            url: "https://shop.example/wp-content/uploads/new.jpg".into(),
            alt: Some("Front view".into()),
        }]),
        ..Default::default()
    };
    let written = woo
        .update(&change("7001", read.revision.clone(), update.clone()))
        .await
        .unwrap();
    assert_eq!(written.product.title, "New title");
    assert_eq!(written.product.description_html, "<p>Better words.</p>");
    assert_eq!(written.product.images.len(), 1);
    assert_eq!(written.product.images[0].alt.as_deref(), Some("Front view"));
    assert_ne!(
        written.revision, read.revision,
        "the write bumps date_modified"
    );
    assert_eq!(fake.product(7001).unwrap()["name"], "New title");

    match woo
        .update(&change("7001", read.revision.clone(), content("Again")))
        .await
    {
        Err(ConnectorError::Conflict {
            current_revision, ..
        }) => assert_eq!(current_revision, written.revision),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        fake.product(7001).unwrap()["name"],
        "New title",
        "nothing written"
    );

    assert_eq!(
        woo.update(&change("424242", None, content("x"))).await,
        Err(ConnectorError::NotFound("424242".into()))
    );
    assert_eq!(
        woo.update(&change(
            "424242",
            Some("2026-11-01T09:00:00".into()),
            content("x")
        ))
        .await,
        Err(ConnectorError::NotFound("424242".into()))
    );
    let sections = ContentUpdate {
        info_sections: Some(vec![domain::InfoSection {
            title: "Care".into(),
            html: "<p>Wash cold.</p>".into(),
        }]),
        ..Default::default()
    };
    assert!(matches!(
        woo.update(&change("7001", None, sections)).await,
        Err(ConnectorError::Platform { status: 422, code, .. })
            if code == "woocommerce_info_sections_unsupported"
    ));
}

#[tokio::test]
async fn update_many_writes_in_batches_of_at_most_one_hundred() {
    let fake = FakeWooCommerce::start().await;
    let many: Vec<SourceProduct> = (0..250)
        .map(|n| simple(8000 + n, &format!("P{n}")))
        .collect();
    fake.seed(&many, at(9));
    let woo = client(&fake);
    let updates: Vec<ProductUpdate> = (0..250)
        .map(|n| {
            change(
                &(8000 + n).to_string(),
                Some("2026-11-01T09:00:00".into()),
                content(&format!("Q{n}")),
            )
        })
        .collect();
    let results = woo.update_many(&updates).await.unwrap();
    assert_eq!(results.len(), 250);
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result.as_ref().unwrap().product.title, format!("Q{n}"));
    }
    assert_eq!(fake.requests_to("POST", BATCH), 3, "100 + 100 + 50");
    assert_eq!(
        fake.requests_to("GET", PRODUCTS),
        3,
        "one include= read per chunk for the revision check"
    );
    assert_eq!(fake.product(8249).unwrap()["name"], "Q249");

    // The fake enforces WooCommerce's limit: the client never sends more.
    fake.set_batch_limit(10);
    let forced: Vec<ProductUpdate> = updates[..20]
        .iter()
        .map(|u| ProductUpdate {
            expected_revision: None,
            ..u.clone()
        })
        .collect();
    let err = woo.update_many(&forced).await.unwrap_err();
    assert!(
        matches!(err, ConnectorError::Platform { status: 413, code, .. }
        if code == "woocommerce_rest_request_entity_too_large")
    );
}

#[tokio::test]
async fn batch_item_errors_surface_per_item() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(
        &[simple(9001, "A"), simple(9002, "B"), simple(9003, "C")],
        at(9),
    );
    let woo = client(&fake);
    let bad_image = ContentUpdate {
        images: Some(vec![ProductImage {
            url: "https://images.nowhere.invalid/a.jpg".into(),
            alt: None,
        }]),
        ..Default::default()
    };
    let results = woo
        .update_many(&[
            change("9001", Some("2026-11-01T09:00:00".into()), content("A2")),
            change("9002", None, bad_image),
            change("9003", Some("2026-11-01T08:00:00".into()), content("C2")),
            change("9999", None, content("gone")),
        ])
        .await
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().product.title, "A2");
    assert!(
        matches!(&results[1], Err(ConnectorError::Platform { status: 400, code, .. })
        if code == "woocommerce_product_image_upload_error")
    );
    assert!(matches!(&results[2], Err(ConnectorError::Conflict { .. })));
    assert_eq!(results[3], Err(ConnectorError::NotFound("9999".into())));
    assert_eq!(fake.requests_to("POST", BATCH), 1);
    assert_eq!(fake.product(9003).unwrap()["name"], "C");
}

#[tokio::test]
async fn seo_title_and_description_round_trip_for_each_plugin() {
    let plugins = [
        (
            FakeSeo::Yoast,
            SeoPlugin::Yoast,
            "%%title%% %%sep%% %%sitename%%",
        ),
        (
            FakeSeo::RankMath,
            SeoPlugin::RankMath,
            "%title% %sep% %sitename%",
        ),
        (
            FakeSeo::AllInOneSeo,
            SeoPlugin::AllInOneSeo,
            "Linen shirt | Shop",
        ),
        (
            FakeSeo::SeoPress,
            SeoPlugin::SeoPress,
            "%%post_title%% - Shop",
        ),
    ];
    for (fake_plugin, plugin, stored_title) in plugins {
        let fake = FakeWooCommerce::start().await;
        let mut product = simple(6001, "Linen shirt");
        product.seo_title = Some(stored_title.into());
        product.seo_description = Some("Old description".into());
        fake.seed_with_seo(&[product], at(9), Some(fake_plugin));
        let woo = client(&fake);
        let read = woo.get("6001").await.unwrap().unwrap();
        assert_eq!(
            read.product.seo_title.as_deref(),
            Some(stored_title),
            "{plugin:?}"
        );
        assert_eq!(
            read.product.seo_description.as_deref(),
            Some("Old description")
        );
        let update = ContentUpdate {
            seo_title: Some("Linen shirt – breathable summer wear".into()),
            seo_description: Some("Cool linen for hot days.".into()),
            ..Default::default()
        };
        let written = woo
            .update(&change("6001", read.revision.clone(), update))
            .await
            .unwrap();
        assert_eq!(
            written.product.seo_description.as_deref(),
            Some("Cool linen for hot days.")
        );
        assert_eq!(
            fake.meta(6001, plugin.title_key()),
            Some(serde_json::json!("Linen shirt – breathable summer wear")),
            "{plugin:?}"
        );
        assert_eq!(
            fake.meta(6001, plugin.description_key()),
            Some(serde_json::json!("Cool linen for hot days."))
        );
        let again = woo.get("6001").await.unwrap().unwrap();
        assert_eq!(
            again.product.seo_title.as_deref(),
            Some("Linen shirt – breathable summer wear")
        );
        for other in SeoPlugin::ALL.into_iter().filter(|p| *p != plugin) {
            assert_eq!(
                fake.meta(6001, other.title_key()),
                None,
                "{other:?} untouched"
            );
        }
    }
}

#[tokio::test]
async fn seo_plugin_is_detected_at_store_level_else_yoast() {
    let fake = FakeWooCommerce::start().await;
    let mut with_seo = simple(6101, "Has SEO");
    with_seo.seo_title = Some("Set in Rank Math".into());
    fake.seed_with_seo(&[with_seo], at(9), Some(FakeSeo::RankMath));
    fake.seed_with_seo(&[simple(6102, "No SEO yet")], at(8), None);
    let woo = client(&fake);
    assert_eq!(
        woo.detect_seo_plugin().await.unwrap(),
        Some(SeoPlugin::RankMath)
    );
    let update = ContentUpdate {
        seo_description: Some("Now described.".into()),
        ..Default::default()
    };
    woo.update(&change("6102", None, update.clone()))
        .await
        .unwrap();
    assert_eq!(
        fake.meta(6102, "rank_math_description"),
        Some(serde_json::json!("Now described."))
    );

    let bare = FakeWooCommerce::start().await;
    bare.seed_with_seo(&[simple(6201, "Plain")], at(9), None);
    let woo = client(&bare);
    assert_eq!(woo.detect_seo_plugin().await.unwrap(), None);
    woo.update(&change("6201", None, update)).await.unwrap();
    assert_eq!(
        bare.meta(6201, "_yoast_wpseo_metadesc"),
        Some(serde_json::json!("Now described."))
    );
}

#[tokio::test]
async fn emoji_rtl_and_html_entities_round_trip_through_update() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&[simple(6301, "Plain")], at(9));
    let woo = client(&fake);
    let title = "Teetasse 🍵 — כוס תה &amp; «mug» <b>";
    let description = "<p dir=\"rtl\">שלום עולם &nbsp;&eacute; 👩‍👩‍👧 café</p>";
    let update = ContentUpdate {
        title: Some(title.into()),
        description_html: Some(description.into()),
        seo_title: Some("مرحبا 🌍 &lt;SEO&gt;".into()),
        ..Default::default()
    };
    let written = woo.update(&change("6301", None, update)).await.unwrap();
    assert_eq!(written.product.title, title);
    let read = woo.get("6301").await.unwrap().unwrap();
    assert_eq!(read.product.title, title);
    assert_eq!(read.product.description_html, description);
    assert_eq!(
        read.product.seo_title.as_deref(),
        Some("مرحبا 🌍 &lt;SEO&gt;")
    );
}

#[tokio::test]
async fn collections_carry_parent_paths() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&sample(), at(9));
    let garden = fake.add_category("Garden", 0);
    let tools = fake.add_category("Tools", garden);
    fake.add_category("Hand tools", tools);
    let collections = client(&fake).collections().await.unwrap();
    let path = |name: &str| {
        collections
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.path.clone())
            .unwrap()
    };
    assert_eq!(path("Hand tools"), "Garden > Tools > Hand tools");
    assert_eq!(path("Base layers"), "Clothing > Base layers");
    assert_eq!(path("Accessories"), "Accessories");
}

#[tokio::test]
async fn webhook_registration_pings_once_and_is_idempotent() {
    let fake = FakeWooCommerce::start().await;
    let receiver = Receiver::start(200).await;
    let woo = client(&fake);
    let ids = woo
        .register_product_webhooks(&receiver.url, "hook-secret")
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    let pings = receiver.requests();
    assert_eq!(pings.len(), 3, "one ping per created webhook");
    for ((headers, body), id) in pings.iter().zip(&ids) {
        assert_eq!(body.as_ref(), format!("webhook_id={id}").as_bytes());
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
        assert!(headers["user-agent"].to_str().unwrap().contains("Hookshot"));
        assert!(headers
            .keys()
            .all(|name| !name.as_str().starts_with("x-wc-")));
    }
    let again = woo
        .register_product_webhooks(&receiver.url, "hook-secret")
        .await
        .unwrap();
    assert_eq!(again, ids);
    assert_eq!(receiver.requests().len(), 3, "nothing re-created");
    let topics: Vec<String> = fake.webhooks().into_iter().map(|h| h.topic).collect();
    assert_eq!(
        topics,
        ["product.created", "product.updated", "product.deleted"]
    );

    woo.delete_webhooks(&ids).await.unwrap();
    assert!(fake.webhooks().is_empty());
    woo.delete_webhooks(&ids).await.unwrap();

    receiver.status.store(500, Ordering::SeqCst);
    match woo.register_product_webhooks(&receiver.url, "s").await {
        Err(ConnectorError::Platform { message, .. }) => {
            assert!(message.contains("response code: 500"), "{message}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(fake.webhooks().is_empty(), "a refused ping saves nothing");
}

#[tokio::test]
async fn deliveries_are_signed_over_the_exact_body() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&[simple(6401, "Mug")], at(9));
    let receiver = Receiver::start(200).await;
    let secret = "whsec-&amp;-2026";
    let ids = client(&fake)
        .register_product_webhooks(&receiver.url, secret)
        .await
        .unwrap();
    let deliveries = fake
        .update_product_as_merchant(6401, serde_json::json!({"name": "Mug ☕ / كوب"}))
        .await;
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].success);
    let (headers, body) = receiver.requests().pop().unwrap();
    assert_eq!(headers["x-wc-webhook-topic"], "product.updated");
    assert_eq!(headers["x-wc-webhook-resource"], "product");
    assert_eq!(headers["x-wc-webhook-event"], "updated");
    assert_eq!(headers["x-wc-webhook-id"], ids[1].to_string().as_str());
    assert_eq!(
        headers["x-wc-webhook-source"],
        format!("{}/", fake.base_url).as_str()
    );
    assert!(!headers["x-wc-webhook-delivery-id"].is_empty());
    assert_eq!(headers["content-type"], "application/json");
    let signature = headers["x-wc-webhook-signature"].to_str().unwrap();
    assert!(verify_webhook_signature(secret, &body, signature));
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["name"], "Mug ☕ / كوب");
    let reserialized = serde_json::to_vec(&payload).unwrap();
    assert!(
        !verify_webhook_signature(secret, &reserialized, signature),
        "PHP escapes / and non-ASCII: only the bytes received verify"
    );
    let mut tampered = body.to_vec();
    tampered[10] ^= 1;
    assert!(!verify_webhook_signature(secret, &tampered, signature));
    assert!(!verify_webhook_signature(
        "another secret",
        &body,
        signature
    ));

    fake.delete_product_as_merchant(6401).await;
    let (headers, body) = receiver.requests().pop().unwrap();
    assert_eq!(headers["x-wc-webhook-topic"], "product.deleted");
    assert_eq!(body.as_ref(), br#"{"id":6401}"#);
    assert!(verify_webhook_signature(
        secret,
        &body,
        headers["x-wc-webhook-signature"].to_str().unwrap()
    ));
}

#[tokio::test]
async fn a_failing_receiver_gets_its_webhook_disabled_after_the_threshold() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&[simple(6501, "Lamp")], at(9));
    fake.set_webhook_failure_threshold(2);
    let receiver = Receiver::start(200).await;
    client(&fake)
        .register_product_webhooks(&receiver.url, "s")
        .await
        .unwrap();
    receiver.status.store(503, Ordering::SeqCst);
    let updated = |fake: &FakeWooCommerce| {
        fake.webhooks()
            .into_iter()
            .find(|h| h.topic == "product.updated")
            .unwrap()
    };
    for n in 1..=3 {
        let outcome = fake
            .update_product_as_merchant(6501, serde_json::json!({"name": format!("Lamp {n}")}))
            .await;
        assert_eq!(outcome[0].status, Some(503));
        assert_eq!(updated(&fake).status, "active", "failure {n}");
    }
    // WooCommerce disables once the stored count is already past the threshold.
    fake.update_product_as_merchant(6501, serde_json::json!({"name": "Lamp 4"}))
        .await;
    assert_eq!(updated(&fake).status, "disabled");
    assert!(fake
        .update_product_as_merchant(6501, serde_json::json!({"name": "Lamp 5"}))
        .await
        .is_empty());
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn authorize(fake: &FakeWooCommerce, callback: &str, scope: KeyScope) -> String {
    authorize_url(
        &fake.base_url,
        "Ultimate Optimizer",
        scope,
        "store-77",
        "https://app.example/woo/return",
        callback,
    )
}

#[tokio::test]
async fn key_generation_delivers_keys_that_then_work() {
    let fake = FakeWooCommerce::start().await;
    fake.seed(&[simple(6601, "Kettle")], at(9));
    fake.set_allow_insecure_callback(true);
    let callback = Receiver::start(200).await;
    let answer = no_redirects()
        .get(authorize(&fake, &callback.url, KeyScope::Read))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    assert_eq!(
        answer.headers()["location"],
        "https://app.example/woo/return?success=1&user_id=store-77"
    );
    let (headers, body) = callback.requests().pop().unwrap();
    assert_eq!(headers["content-type"], "application/json;charset=UTF-8");
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(raw["user_id"].is_string() && raw["key_id"].is_i64());
    let keys: AuthorizeCallback = serde_json::from_slice(&body).unwrap();
    assert_eq!(keys.user_id, "store-77");
    assert_eq!(keys.key_permissions, "read");
    assert!(keys.consumer_key.starts_with("ck_") && keys.consumer_secret.starts_with("cs_"));

    let granted = WooCommerceClient::new(
        &fake.base_url,
        &keys.consumer_key,
        &keys.consumer_secret,
        fast_retries(),
    )
    .unwrap();
    granted.verify().await.unwrap();
    assert_eq!(
        granted.get("6601").await.unwrap().unwrap().product.title,
        "Kettle"
    );
    match granted.update(&change("6601", None, content("No"))).await {
        Err(ConnectorError::Unauthorized { message, .. }) => {
            assert_eq!(
                message,
                "The API key provided does not have write permissions."
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn key_generation_denied_or_unconfirmed_leaves_no_working_key() {
    let fake = FakeWooCommerce::start().await;
    fake.set_allow_insecure_callback(true);
    let callback = Receiver::start(200).await;
    fake.set_auth_decision(AuthDecision::Deny);
    let denied = no_redirects()
        .get(authorize(&fake, &callback.url, KeyScope::ReadWrite))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 302);
    assert_eq!(
        denied.headers()["location"],
        "https://app.example/woo/return?success=0&user_id=store-77"
    );
    assert!(callback.requests().is_empty());

    fake.set_auth_decision(AuthDecision::Approve);
    callback.status.store(500, Ordering::SeqCst);
    let failed = no_redirects()
        .get(authorize(&fake, &callback.url, KeyScope::ReadWrite))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let (_, body) = callback.requests().pop().unwrap();
    let keys: AuthorizeCallback = serde_json::from_slice(&body).unwrap();
    let orphan = WooCommerceClient::new(
        &fake.base_url,
        &keys.consumer_key,
        &keys.consumer_secret,
        fast_retries(),
    )
    .unwrap();
    assert!(matches!(
        orphan.verify().await,
        Err(ConnectorError::Unauthorized { .. })
    ));
    assert_eq!(fake.api_keys().len(), 1, "only the seeded key remains");

    fake.set_allow_insecure_callback(false);
    let insecure = no_redirects()
        .get(authorize(&fake, &callback.url, KeyScope::Read))
        .send()
        .await
        .unwrap();
    assert_eq!(insecure.status(), 401);
    assert!(insecure
        .text()
        .await
        .unwrap()
        .contains("The callback_url needs to be over SSL"));
    let missing = no_redirects()
        .get(format!(
            "{}/wc-auth/v1/authorize?app_name=x&scope=read",
            fake.base_url
        ))
        .send()
        .await
        .unwrap();
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("Missing parameter user_id"));
    let bad_scope = no_redirects()
        .get(authorize(&fake, &callback.url, KeyScope::Read).replace("scope=read", "scope=admin"))
        .send()
        .await
        .unwrap();
    assert!(bad_scope
        .text()
        .await
        .unwrap()
        .contains("Invalid scope admin"));
}
