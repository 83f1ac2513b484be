//! Hostile input over HTTP, on both backends: NUL characters anywhere a client can put
//! text (JSON bodies, query strings, path parameters, CSV cells, store data read by a
//! sync), oversized text, a CSV quote left open, imports past the per-store cap, and a
//! key-approval request for a private store address.

mod common;

use common::{bearer, error_code, Engine, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use testkit::woocommerce::FakeWooCommerce;

api_tests!(
    nul_characters_are_refused_naming_the_field,
    csv_rows_with_a_nul_are_rejected_and_the_rest_kept,
    csv_rows_with_a_quote_left_open_are_rejected_and_the_rest_kept,
    oversized_text_is_refused_naming_the_field_and_its_cap,
    imports_past_the_store_cap_are_refused_whole,
    store_text_with_nul_or_oversized_fields_syncs_alike,
    key_approval_refuses_private_store_addresses,
);

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

struct Merchant<'a> {
    server: &'a TestServer,
    auth: String,
}

impl<'a> Merchant<'a> {
    async fn register(server: &'a TestServer, email: &str) -> Merchant<'a> {
        let session = server.register(email).await;
        Merchant {
            server,
            auth: bearer(&session),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.server
            .request(method, path)
            .header("authorization", &self.auth)
    }

    /// Sends a raw JSON text (so escapes like `\u0000` reach the server as written).
    async fn send_json(&self, method: Method, path: &str, body: &str) -> reqwest::Response {
        self.request(method, path)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    async fn create_store(&self) -> String {
        let response = self
            .request(Method::POST, "/api/stores")
            .json(&json!({"platform": "local", "name": "Catalog"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let store: Value = response.json().await.unwrap();
        store["id"].as_str().unwrap().to_owned()
    }

    async fn import(&self, store: &str, csv: Vec<u8>) -> reqwest::Response {
        self.request(Method::POST, &format!("/api/stores/{store}/import"))
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap()
    }

    async fn import_report(&self, store: &str, csv: Vec<u8>) -> Value {
        let response = self.import(store, csv).await;
        let status = response.status();
        let report: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{report}");
        report
    }

    async fn titles(&self) -> Vec<String> {
        let page: Value = self
            .get("/api/products?limit=200")
            .await
            .json()
            .await
            .unwrap();
        let mut titles: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["title"].as_str().unwrap().to_owned())
            .collect();
        titles.sort();
        titles
    }
}

/// Asserts a 400 `validation_failed` naming `field` and returns its message.
async fn refused_field(response: reqwest::Response, field: &str) -> String {
    assert_eq!(response.status(), 400, "expected 400 for {field}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    body["error"]["details"]["fields"][field]
        .as_str()
        .unwrap_or_else(|| panic!("details do not name {field}: {body}"))
        .to_owned()
}

fn rejected_lines(report: &Value) -> Vec<(u64, String)> {
    report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["line"].as_u64().unwrap(),
                row["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn nul_characters_are_refused_naming_the_field(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "nul@example.com").await;
    let store = merchant.create_store().await;
    merchant
        .import_report(
            &store,
            b"ID,Type,SKU,Name,Regular price\n1,simple,M-1,Mug,10\n".to_vec(),
        )
        .await;
    let page: Value = merchant.get("/api/products").await.json().await.unwrap();
    let product = page["items"][0]["id"].as_str().unwrap().to_owned();

    // The three requests of the finding: each a 500 on PostgreSQL before.
    let message = refused_field(merchant.get("/api/products?q=%00").await, "q").await;
    assert!(message.contains("NUL"), "{message}");
    let job = format!(
        r#"{{"sourceScope":"products","sourceIds":["{product}"],"attributes":["title"],"userPrompt":"a\u0000b"}}"#
    );
    refused_field(
        merchant.send_json(Method::POST, "/api/jobs", &job).await,
        "userPrompt",
    )
    .await;

    // Nested JSON fields are named by their path; object keys count too.
    let nested = format!(
        r#"{{"sourceScope":"products","sourceIds":["{product}"],"attributes":["title","x\u0000"]}}"#
    );
    refused_field(
        merchant.send_json(Method::POST, "/api/jobs", &nested).await,
        "attributes[1]",
    )
    .await;
    refused_field(
        merchant
            .send_json(Method::PATCH, "/api/account", r#"{"name":"Sh\u0000p"}"#)
            .await,
        "name",
    )
    .await;
    refused_field(
        merchant
            .send_json(
                Method::POST,
                "/api/stores",
                r#"{"platform":"local","name":"ok","currency":"US\u0000"}"#,
            )
            .await,
        "currency",
    )
    .await;
    let register = server
        .request(Method::POST, "/api/v1/auth/register")
        .header("content-type", "application/json")
        .body(r#"{"email":"a\u0000@example.com","password":"correct horse battery"}"#)
        .send()
        .await
        .unwrap();
    refused_field(register, "email").await;
    let key_callback = server
        .request(Method::POST, "/api/woocommerce/keys")
        .header("content-type", "application/json")
        .body(r#"{"key_id":1,"user_id":"t\u0000","consumer_key":"ck_1","consumer_secret":"cs_1","key_permissions":"read_write"}"#)
        .send()
        .await
        .unwrap();
    refused_field(key_callback, "user_id").await;
    // An escaped backslash before `u0000` is text, not a NUL.
    let escaped = merchant
        .send_json(Method::PATCH, "/api/account", r#"{"name":"Shop \\u0000"}"#)
        .await;
    assert_eq!(escaped.status(), 200);

    // Query strings, keys included, and path parameters.
    refused_field(
        merchant.get("/api/collections?storeId=%00").await,
        "storeId",
    )
    .await;
    refused_field(merchant.get("/api/products?%00=1").await, "query").await;
    refused_field(merchant.get("/api/stores/%00").await, "id").await;
    refused_field(
        merchant
            .get(&format!("/api/stores/{store}/sync/a%00"))
            .await,
        "requestId",
    )
    .await;

    assert_eq!(merchant.titles().await, ["Mug"], "nothing was written");
    assert_eq!(server.count("jobs").await, 0);
}

async fn csv_rows_with_a_nul_are_rejected_and_the_rest_kept(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "nul-csv@example.com").await;
    let store = merchant.create_store().await;
    let report = merchant
        .import_report(&store, fixture("nul-byte.csv"))
        .await;
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(
        rejected_lines(&report),
        [(
            3,
            "Name: must not contain NUL characters (U+0000)".to_owned()
        )]
    );
    assert_eq!(merchant.titles().await, ["After the NUL", "Before the NUL"]);
}

async fn csv_rows_with_a_quote_left_open_are_rejected_and_the_rest_kept(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "quote@example.com").await;
    let store = merchant.create_store().await;
    let report = merchant
        .import_report(&store, fixture("unclosed-quote.csv"))
        .await;
    assert_eq!(report["created"], 3, "{report}");
    let rejected = rejected_lines(&report);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].0, 3);
    assert!(rejected[0].1.contains("never closed"), "{rejected:?}");
    assert_eq!(merchant.titles().await, ["First", "Fourth", "Third"]);
}

async fn oversized_text_is_refused_naming_the_field_and_its_cap(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "big@example.com").await;
    let store = merchant.create_store().await;

    // The finding: a 10 MB description was stored and served.
    let ten_megabytes = "d".repeat(10 * 1024 * 1024);
    let csv = format!(
        "ID,Type,SKU,Name,Regular price,Description\n\
         1,simple,B-1,Kept,10,fine\n\
         2,simple,B-2,Huge,10,{ten_megabytes}\n\
         3,simple,B-3,{},10,fine\n\
         4,simple,B-4,Also kept,10,fine\n",
        "t".repeat(501)
    );
    let report = merchant.import_report(&store, csv.into_bytes()).await;
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(
        rejected_lines(&report),
        [
            (
                3,
                "Description: must be at most 100000 characters (it has 10485760)".to_owned()
            ),
            (
                4,
                "Name: must be at most 500 characters (it has 501)".to_owned()
            ),
        ]
    );
    assert_eq!(merchant.titles().await, ["Also kept", "Kept"]);

    let long_url = format!("https://shop.example/{}", "p".repeat(5000));
    let message = refused_field(
        merchant
            .request(Method::POST, "/api/stores/woocommerce/authorize")
            .json(&json!({"url": long_url}))
            .send()
            .await
            .unwrap(),
        "url",
    )
    .await;
    assert!(message.contains("at most 4096 characters"), "{message}");
    let message = refused_field(
        merchant
            .request(Method::POST, "/api/stores")
            .json(&json!({"platform": "woocommerce", "url": "https://shop.example", "consumerKey": "ck_1", "consumerSecret": "s".repeat(300)}))
            .send()
            .await
            .unwrap(),
        "consumerSecret",
    )
    .await;
    assert!(message.contains("at most 255 characters"), "{message}");
}

async fn imports_past_the_store_cap_are_refused_whole(engine: Engine) {
    let Some(server) =
        TestServer::start_with(engine, false, |s| s.max_products_per_store = 4).await
    else {
        return;
    };
    let merchant = Merchant::register(&server, "cap@example.com").await;
    let store = merchant.create_store().await;
    let rows = |range: std::ops::Range<u32>| {
        let mut csv = String::from("ID,Type,SKU,Name,Regular price\n");
        for n in range {
            csv.push_str(&format!("{n},simple,C-{n},Product {n},10\n"));
        }
        csv.into_bytes()
    };
    assert_eq!(
        merchant.import_report(&store, rows(1..4)).await["created"],
        3
    );
    let response = merchant.import(&store, rows(1..6)).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let again = merchant.import(&store, rows(1..6)).await;
    assert_eq!(error_code(again, 400).await, "too_many_products");
    assert_eq!(body["error"]["code"], "too_many_products", "{body}");
    assert_eq!(
        body["error"]["details"],
        json!({"total": 5, "maxProductsPerStore": 4})
    );
    assert_eq!(server.count("products").await, 3, "nothing half-written");
    assert_eq!(
        merchant.import_report(&store, rows(3..5)).await["created"],
        1,
        "products already held count once"
    );
}

async fn store_text_with_nul_or_oversized_fields_syncs_alike(engine: Engine) {
    let Some(server) =
        TestServer::start_with(engine, false, |s| s.woocommerce_allow_http = true).await
    else {
        return;
    };
    let fake = FakeWooCommerce::start().await;
    let csv = "ID,Type,SKU,Name,Regular price,Description\n\
         71,simple,S-1,Plain,10,fine\n\
         72,simple,S-2,Nul,10,fine\n\
         73,simple,S-3,Long,10,fine\n";
    let mut products = connectors::csv::parse_catalog(csv.as_bytes(), "USD")
        .unwrap()
        .products;
    products[1].description_html = "<p>before\0after</p>".into();
    products[1].title = "Nul\0 title".into();
    products[2].description_html = "y".repeat(150_000);
    fake.seed(&products, chrono::Utc::now() - chrono::Duration::hours(1));

    let merchant = Merchant::register(&server, "sync-text@example.com").await;
    let response = merchant
        .request(Method::POST, "/api/stores")
        .json(&json!({"platform": "woocommerce", "url": fake.base_url, "consumerKey": fake.consumer_key, "consumerSecret": fake.consumer_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let store: Value = response.json().await.unwrap();
    let id = store["id"].as_str().unwrap();
    let status = server
        .wait_for_syncs(id, ("authorization", &merchant.auth))
        .await;
    assert_eq!(status["last"]["succeeded"], true, "{status}");
    assert_eq!(status["last"]["created"], 3, "{status}");

    let page: Value = merchant
        .get("/api/products?q=title")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["title"], "Nul title", "NULs are removed");
    let detail: Value = merchant
        .get(&format!(
            "/api/products/{}",
            page["items"][0]["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["source"]["descriptionHtml"], "<p>beforeafter</p>");
    let page: Value = merchant
        .get("/api/products?q=long")
        .await
        .json()
        .await
        .unwrap();
    let detail: Value = merchant
        .get(&format!(
            "/api/products/{}",
            page["items"][0]["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["source"]["descriptionHtml"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        domain::text::DESCRIPTION_HTML_MAX_CHARS,
        "an overlong description is cut to its cap"
    );
}

async fn key_approval_refuses_private_store_addresses(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "ssrf@example.com").await;
    for private in [
        "https://127.0.0.1:8443",
        "https://10.1.2.3",
        "https://[::1]",
        "https://localhost:8443",
    ] {
        let response = merchant
            .request(Method::POST, "/api/stores/woocommerce/authorize")
            .json(&json!({"url": private}))
            .send()
            .await
            .unwrap();
        let message = refused_field(response, "url").await;
        assert!(message.contains("private"), "{private}: {message}");
    }
    assert_eq!(server.count("woocommerce_authorizations").await, 0);

    let Some(intranet) =
        TestServer::start_with(engine, false, |s| s.allow_private_store_addresses = true).await
    else {
        return;
    };
    let merchant = Merchant::register(&intranet, "intranet@example.com").await;
    let response = merchant
        .request(Method::POST, "/api/stores/woocommerce/authorize")
        .json(&json!({"url": "https://127.0.0.1:8443"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "allowed by the operator");
}
