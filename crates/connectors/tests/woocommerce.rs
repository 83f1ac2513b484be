//! The real WooCommerce client against the fake WooCommerce server, over HTTP.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use connectors::csv::parse_catalog;
use connectors::http::{ConnectorError, RetryPolicy};
use connectors::woocommerce::{ClientOptions, WooCommerceClient};
use domain::SourceProduct;
use testkit::woocommerce::{FakeWooCommerce, Fault};

fn sample() -> Vec<SourceProduct> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/woocommerce-sample_products.csv");
    parse_catalog(&std::fs::read(path).unwrap(), "USD")
        .unwrap()
        .products
}

fn fast_retries() -> ClientOptions {
    ClientOptions {
        allow_http: true,
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
    assert_eq!(products.len(), 18);
    let by_title = |title: &str| products.iter().find(|p| p.title == title).unwrap();
    let hoodie = by_title("Hoodie");
    assert_eq!(hoodie.variants.len(), 4);
    assert_eq!(hoodie.variants[0].options[0].name, "Color");
    assert_eq!(hoodie.variants[0].price.unwrap().minor, 4500);
    assert_eq!(hoodie.variants[0].sale_price.unwrap().minor, 4200);
    let pennant = by_title("WordPress Pennant");
    assert_eq!(pennant.price.unwrap().minor, 1105);
    assert_eq!(pennant.categories, ["Decor"]);
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
    fake.rename(46, "Hoodie with Logo — renamed", at(12));
    // The site clock is three hours behind GMT: a site-local comparison would miss this.
    let changed = woo.fetch_products("USD", Some(at(11))).await.unwrap();
    let titles: Vec<&str> = changed.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["Hoodie with Logo — renamed"]);
    assert!(woo
        .fetch_products("USD", Some(at(13)))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn wrong_keys_and_plain_http_are_refused_with_woocommerces_words() {
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
            assert_eq!(message, "Consumer secret is invalid.");
        }
        other => panic!("unexpected {other:?}"),
    }
    let unknown_key =
        WooCommerceClient::new(&fake.base_url, "ck_unknown", "cs_x", fast_retries()).unwrap();
    assert!(matches!(
        unknown_key.verify().await,
        Err(ConnectorError::Unauthorized { code, .. }) if code == "woocommerce_rest_cannot_view"
    ));
    fake.set_plain_http();
    assert!(
        matches!(
            client(&fake).verify().await,
            Err(ConnectorError::Unauthorized { .. })
        ),
        "Basic auth is ignored over plain HTTP"
    );
    assert_eq!(fake.requests(), 3, "authentication errors are not retried");
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
