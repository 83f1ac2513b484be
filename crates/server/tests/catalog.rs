//! Stores, CSV import/export, products and collections over HTTP, on both backends.

mod common;

use common::{bearer, error_code, Engine, TestServer, WIX_APP_ID, WIX_SECRET};
use reqwest::Method;
use serde_json::{json, Value};
use testkit::wix::{sign_instance, InstanceClaims};
use testkit::woocommerce::FakeWooCommerce;

api_tests!(
    local_stores_are_created_listed_and_deleted,
    store_input_is_validated,
    own_catalog_imports_and_is_browsable,
    sample_catalog_imports_and_is_browsable,
    bad_csv_input_is_reported_without_losing_valid_rows,
    text_round_trips_unchanged_through_import_and_export,
    tenants_cannot_reach_each_others_catalogs,
    wix_stores_neither_import_nor_delete,
    demo_catalog_is_seeded_once_with_served_images,
    woocommerce_store_connects_and_syncs,
    woocommerce_connection_problems_are_explained,
    woocommerce_webhooks_keep_products_in_sync,
    wix_site_syncs_its_catalog_in_the_background,
    woocommerce_store_connects_by_key_approval,
);

/// A third-party sample catalog, or `None` where `OPTIMIZER_SAMPLE_DATA` is not set (the
/// test then skips, saying so).
fn shared_sample(name: &str) -> Option<Vec<u8>> {
    testkit::fixtures::third_party_sample(name)
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

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn create_store(&self, name: &str) -> String {
        let (status, store) = self
            .json(
                Method::POST,
                "/api/stores",
                Some(json!({"platform": "local", "name": name})),
            )
            .await;
        assert_eq!(status, 201, "{store}");
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
}

async fn local_stores_are_created_listed_and_deleted(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "stores@example.com").await;
    let (status, created) = merchant
        .json(
            Method::POST,
            "/api/stores",
            Some(json!({"platform": "local", "name": "Spring catalog", "currency": "eur"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["currency"], "EUR");
    assert_eq!(created["productCount"], 0);
    let id = created["id"].as_str().unwrap();

    let (_, list) = merchant.json(Method::GET, "/api/stores", None).await;
    assert_eq!(list["stores"].as_array().unwrap().len(), 1);
    let (status, one) = merchant
        .json(Method::GET, &format!("/api/stores/{id}"), None)
        .await;
    assert_eq!(
        (status, one["name"].as_str()),
        (200, Some("Spring catalog"))
    );

    let deleted = merchant
        .request(Method::DELETE, &format!("/api/stores/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = merchant
        .request(Method::GET, &format!("/api/stores/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(gone, 404).await, "not_found");
    let not_a_uuid = merchant
        .request(Method::GET, "/api/stores/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(not_a_uuid, 404).await, "not_found");
}

async fn store_input_is_validated(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "validate@example.com").await;
    for (body, field) in [
        (json!({"platform": "wix"}), "platform"),
        (json!({"platform": "woocommerce"}), "url"),
        (
            json!({"platform": "woocommerce", "url": "https://shop.example"}),
            "consumerKey",
        ),
        (json!({"platform": "shopify"}), "platform"),
        (
            json!({"platform": "local", "currency": "dollars"}),
            "currency",
        ),
        (json!({"platform": "local", "name": ""}), "name"),
        (json!({"platform": 7}), "platform"),
    ] {
        let (status, error) = merchant
            .json(Method::POST, "/api/stores", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            error["error"]["details"]["fields"][field].is_string(),
            "{body} → {error}"
        );
    }
    assert_eq!(server.count("stores").await, 0);

    for query in [
        "limit=0",
        "limit=500",
        "limit=abc",
        "cursor=nope",
        "storeId=123",
    ] {
        let response = merchant
            .request(Method::GET, &format!("/api/products?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response, 400).await,
            "validation_failed",
            "{query}"
        );
    }
}

/// The project's own fixtures, so a fresh clone tests import, browsing and export too.
async fn own_catalog_imports_and_is_browsable(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "outdoor@example.com").await;
    let store = merchant.create_store("Trailhead").await;
    let export_fixture = testkit::fixtures::woocommerce_export();
    let report: Value = merchant
        .import(&store, export_fixture.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["format"], "woocommerce");
    assert_eq!(
        (report["created"].as_u64(), report["rejected"].clone()),
        (Some(14), json!([]))
    );
    let again: Value = merchant
        .import(&store, export_fixture)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(14))
    );

    let mut titles = Vec::new();
    let mut path = format!("/api/products?storeId={store}&limit=5");
    loop {
        let (_, page) = merchant.json(Method::GET, &path, None).await;
        assert_eq!(page["total"], 14);
        titles.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["title"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => path = format!("/api/products?storeId={store}&limit=5&cursor={next}"),
            None => break,
        }
    }
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), 14, "every product once across the pages");

    let (_, found) = merchant
        .json(Method::GET, "/api/products?q=MERINO", None)
        .await;
    assert_eq!(found["total"], 1);
    let crew_id = found["items"][0]["id"].as_str().unwrap();
    let (_, crew) = merchant
        .json(Method::GET, &format!("/api/products/{crew_id}"), None)
        .await;
    assert_eq!(crew["source"]["variants"].as_array().unwrap().len(), 3);
    assert!(crew["collections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == "Clothing > Base layers"));
    let (_, collections) = merchant
        .json(
            Method::GET,
            &format!("/api/collections?storeId={store}"),
            None,
        )
        .await;
    let kitchen = collections["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "Gear > Kitchen")
        .expect("a sub-collection per category path");
    assert_eq!(kitchen["productCount"], 3);

    let export = merchant
        .request(Method::GET, &format!("/api/stores/{store}/export"))
        .send()
        .await
        .unwrap();
    let csv = export.bytes().await.unwrap().to_vec();
    let copy = merchant.create_store("Copy").await;
    let copied: Value = merchant.import(&copy, csv).await.json().await.unwrap();
    assert_eq!(
        (copied["created"].as_u64(), copied["rejected"].clone()),
        (Some(14), json!([]))
    );

    let shopify = merchant.create_store("From Shopify").await;
    let report: Value = merchant
        .import(&shopify, testkit::fixtures::shopify_products())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["format"], "shopify");
    assert_eq!(
        (report["created"].as_u64(), report["rejected"].clone()),
        (Some(4), json!([]))
    );
}

async fn sample_catalog_imports_and_is_browsable(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let Some(sample) = shared_sample("woocommerce-sample_products.csv") else {
        return;
    };
    let merchant = Merchant::register(&server, "woo@example.com").await;
    let store = merchant.create_store("Woo sample").await;

    let response = merchant.import(&store, sample.clone()).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["format"], "woocommerce");
    assert_eq!(report["imported"], 18);
    assert_eq!(report["created"], 18);
    assert_eq!(report["rejected"], json!([]));

    let again: Value = merchant.import(&store, sample).await.json().await.unwrap();
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(18))
    );

    let (_, page) = merchant
        .json(
            Method::GET,
            &format!("/api/products?storeId={store}&limit=5"),
            None,
        )
        .await;
    assert_eq!(page["total"], 18);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let mut titles: Vec<String> = Vec::new();
    let mut cursor = page["nextCursor"].as_str().map(str::to_owned);
    titles.extend(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].as_str().unwrap().to_owned()),
    );
    while let Some(next) = cursor {
        let (_, next_page) = merchant
            .json(
                Method::GET,
                &format!("/api/products?storeId={store}&limit=5&cursor={next}"),
                None,
            )
            .await;
        titles.extend(
            next_page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["title"].as_str().unwrap().to_owned()),
        );
        cursor = next_page["nextCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(titles.len(), 18);
    titles.dedup();
    assert_eq!(titles.len(), 18);

    let (_, hoodies) = merchant
        .json(Method::GET, "/api/products?q=HOODIE", None)
        .await;
    assert_eq!(hoodies["total"], 4);

    let (_, collections) = merchant
        .json(
            Method::GET,
            &format!("/api/collections?storeId={store}"),
            None,
        )
        .await;
    let clothing = collections["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "Clothing")
        .unwrap()
        .clone();
    let tshirts = collections["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "Clothing > Tshirts")
        .unwrap()
        .clone();
    assert_eq!(tshirts["name"], "Tshirts");
    assert_eq!(tshirts["productCount"], 5);
    assert_eq!(
        clothing["productCount"], 15,
        "Clothing's own product and its sub-collections' 14"
    );
    let (_, in_tshirts) = merchant
        .json(
            Method::GET,
            &format!(
                "/api/products?collectionId={}",
                tshirts["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(in_tshirts["total"], 5);

    let vneck = hoodies["items"].as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, detail) = merchant
        .json(Method::GET, &format!("/api/products/{vneck}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(detail["revision"], 1);
    assert!(detail["source"]["descriptionHtml"]
        .as_str()
        .unwrap()
        .starts_with("Pellentesque"));
    assert!(detail["collections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == "Clothing > Hoodies"));
    let (_, variable) = merchant
        .json(Method::GET, "/api/products?q=woo-hoodie&limit=1", None)
        .await;
    let hoodie_id = variable["items"][0]["id"].as_str().unwrap();
    let (_, hoodie) = merchant
        .json(Method::GET, &format!("/api/products/{hoodie_id}"), None)
        .await;
    assert_eq!(hoodie["source"]["variants"].as_array().unwrap().len(), 4);
    assert_eq!(hoodie["source"]["variants"][0]["price"], "45.00");

    let export = merchant
        .request(Method::GET, &format!("/api/stores/{store}/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    assert!(export.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(export.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("Woo_sample.csv"));
    let csv = export.bytes().await.unwrap().to_vec();
    let copy = merchant.create_store("Copy").await;
    let copied: Value = merchant.import(&copy, csv).await.json().await.unwrap();
    assert_eq!(
        (
            copied["created"].as_u64(),
            copied["rejected"].as_array().unwrap().len()
        ),
        (Some(18), 0)
    );

    for sample in [
        "shopify-apparel.csv",
        "shopify-jewelery.csv",
        "shopify-home-and-garden.csv",
    ] {
        let Some(csv) = shared_sample(sample) else {
            return;
        };
        let target = merchant.create_store(sample).await;
        let report: Value = merchant.import(&target, csv).await.json().await.unwrap();
        assert_eq!(report["format"], "shopify", "{sample}");
        assert_eq!(report["rejected"], json!([]), "{sample}");
        assert!(report["created"].as_u64().unwrap() >= 5, "{sample}");
    }
}

async fn bad_csv_input_is_reported_without_losing_valid_rows(engine: Engine) {
    let Some(server) =
        TestServer::start_with(engine, false, |s| s.max_import_bytes = 64 * 1024).await
    else {
        return;
    };
    let merchant = Merchant::register(&server, "badcsv@example.com").await;
    let store = merchant.create_store("Messy").await;

    let messy = "\u{feff}ID,Type,SKU,Name,Regular price,Description,Stock\r\n\
1,simple,A,Good one,10,\"Line one\r\nline two, with comma\",3\r\n\
2,simple,B,Bad price,ten dollars,x,1\r\n\
3,simple,C,,5,no name,1\r\n\
4,simple,D,Bad stock,5,x,lots\r\n\
5,simple,E,Also good,7.5,\"<p>ok</p>\",\r\n";
    let response = merchant.import(&store, messy.as_bytes().to_vec()).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["created"], 2);
    let rejected: Vec<(u64, String)> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected.iter().map(|r| r.0).collect::<Vec<_>>(),
        [4, 5, 6],
        "{rejected:?}"
    );
    assert!(rejected[0].1.contains("Regular price"));
    assert!(rejected[1].1.contains("Name"));
    assert!(rejected[2].1.contains("Stock"));

    let missing_columns = merchant
        .import(&store, b"Handle,Body (HTML)\nx,y\n".to_vec())
        .await;
    assert_eq!(error_code(missing_columns, 400).await, "invalid_csv");
    let junk: Vec<u8> = (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect();
    assert_eq!(
        error_code(merchant.import(&store, junk).await, 400).await,
        "invalid_csv"
    );
    let empty = merchant.import(&store, Vec::new()).await;
    assert_eq!(error_code(empty, 400).await, "invalid_csv");

    let oversized = "ID,Name\n".to_owned() + &"1,x\n".repeat(30_000);
    assert_eq!(
        error_code(merchant.import(&store, oversized.into_bytes()).await, 413).await,
        "payload_too_large"
    );
    let as_json = merchant
        .request(Method::POST, &format!("/api/stores/{store}/import"))
        .json(&json!({"rows": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(as_json, 415).await, "unsupported_media_type");

    let (_, page) = merchant.json(Method::GET, "/api/products", None).await;
    assert_eq!(page["total"], 2, "failed imports changed nothing");
}

async fn text_round_trips_unchanged_through_import_and_export(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let merchant = Merchant::register(&server, "unicode@example.com").await;
    let store = merchant.create_store("Unicode").await;
    let title = "Mug ☕ — שלום עולם &amp; “quotes” 🌲";
    let description = "<p>Café &eacute; crème, 日本語の説明 &lt;b&gt;</p>\n<ul><li>ok</li></ul>";
    let csv = format!(
        "ID,Type,SKU,Name,Regular price,Description,Categories\n1,simple,U-1,\"{title}\",9.99,\"{description}\",\"Küche > Becher\"\n"
    );
    let report: Value = merchant
        .import(&store, csv.into_bytes())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["created"], 1);
    let (_, page) = merchant
        .json(Method::GET, "/api/products?q=שלום", None)
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["title"], title);
    let id = page["items"][0]["id"].as_str().unwrap();
    let (_, detail) = merchant
        .json(Method::GET, &format!("/api/products/{id}"), None)
        .await;
    assert_eq!(detail["source"]["descriptionHtml"], description);
    assert_eq!(detail["source"]["categories"], json!(["Küche > Becher"]));

    let exported = merchant
        .request(Method::GET, &format!("/api/stores/{store}/export"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(exported.contains(title) && exported.contains(description));
}

async fn tenants_cannot_reach_each_others_catalogs(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let alice = Merchant::register(&server, "alice@shop-a.com").await;
    let bob = Merchant::register(&server, "bob@shop-b.com").await;
    let store = alice.create_store("Alice's").await;
    alice
        .import(&store, testkit::fixtures::woocommerce_export())
        .await;
    let (_, alice_page) = alice.json(Method::GET, "/api/products?limit=1", None).await;
    let product = alice_page["items"][0]["id"].as_str().unwrap();
    let (_, collections) = alice.json(Method::GET, "/api/collections", None).await;
    let collection = collections["items"][0]["id"].as_str().unwrap();

    for path in [
        format!("/api/stores/{store}"),
        format!("/api/stores/{store}/export"),
        format!("/api/products/{product}"),
    ] {
        let response = bob.request(Method::GET, &path).send().await.unwrap();
        assert_eq!(error_code(response, 404).await, "not_found", "{path}");
    }
    let import = bob
        .import(&store, b"ID,Name\n1,Bob's product\n".to_vec())
        .await;
    assert_eq!(error_code(import, 404).await, "not_found");
    let delete = bob
        .request(Method::DELETE, &format!("/api/stores/{store}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(delete, 404).await, "not_found");
    let (_, bob_products) = bob
        .json(Method::GET, &format!("/api/products?storeId={store}"), None)
        .await;
    assert_eq!(bob_products["total"], 0);
    let (_, bob_in_collection) = bob
        .json(
            Method::GET,
            &format!("/api/products?collectionId={collection}"),
            None,
        )
        .await;
    assert_eq!(bob_in_collection["total"], 0);
    let (_, bob_collections) = bob.json(Method::GET, "/api/collections", None).await;
    assert_eq!(bob_collections["items"], json!([]));
    let (_, bob_stores) = bob.json(Method::GET, "/api/stores", None).await;
    assert_eq!(bob_stores["stores"], json!([]));

    let (_, still) = alice
        .json(Method::GET, &format!("/api/stores/{store}"), None)
        .await;
    assert_eq!(still["productCount"], 14);
}

async fn wix_stores_neither_import_nor_delete(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let instance = sign_instance(
        &InstanceClaims::new("0d0f4f58-1f51-4a0e-9a37-1ac0e7a2c001", WIX_APP_ID),
        WIX_SECRET,
    );
    let stores: Value = server
        .get_json("/api/stores", ("x-wix-instance", &instance))
        .await;
    let store = stores["stores"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(stores["stores"][0]["platform"], "wix");
    let import = server
        .request(Method::POST, &format!("/api/stores/{store}/import"))
        .header("x-wix-instance", &instance)
        .header("content-type", "text/csv")
        .body("ID,Name\n1,x\n")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(import, 409).await, "not_local_store");
    let delete = server
        .request(Method::DELETE, &format!("/api/stores/{store}"))
        .header("x-wix-instance", &instance)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(delete, 409).await, "wix_store");
}

async fn demo_catalog_is_seeded_once_with_served_images(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, true, |_| {}).await else {
        return;
    };
    let first = server::demo::seed_catalog(&server.state).await.unwrap();
    assert_eq!((first.created, first.updated), (49, 0));
    let again = server::demo::seed_catalog(&server.state).await.unwrap();
    assert_eq!((again.created, again.unchanged), (0, 49));

    let token = server::auth::sessions::create_demo_login_link(&server.state)
        .await
        .unwrap();
    let session: Value = server
        .post_json("/api/v1/auth/demo-login", json!({"token": token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let demo = Merchant {
        server: &server,
        auth: bearer(&session),
    };
    let (_, stores) = demo.json(Method::GET, "/api/stores", None).await;
    assert_eq!(stores["stores"].as_array().unwrap().len(), 1);
    assert_eq!(stores["stores"][0]["productCount"], 49);
    let (_, page) = demo
        .json(Method::GET, "/api/products?q=ridgeline", None)
        .await;
    let image = page["items"][0]["imageUrl"].as_str().unwrap().to_owned();
    assert!(image.starts_with("/demo/images/"), "{image}");
    let served = server.get(&image).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/svg+xml");
    assert!(served.text().await.unwrap().starts_with("<svg"));
    for missing in ["/demo/images/nope.svg", "/demo/images/..%2Fcatalog.csv"] {
        assert_eq!(
            server.get(missing).send().await.unwrap().status(),
            404,
            "{missing}"
        );
    }
}

async fn fake_store() -> FakeWooCommerce {
    let fake = FakeWooCommerce::start().await;
    let products = connectors::csv::parse_catalog(&testkit::fixtures::woocommerce_export(), "USD")
        .unwrap()
        .products;
    fake.seed(&products, chrono::Utc::now() - chrono::Duration::hours(1));
    fake
}

async fn woocommerce_store_connects_and_syncs(engine: Engine) {
    let Some(server) =
        TestServer::start_with(engine, false, |s| s.woocommerce_allow_http = true).await
    else {
        return;
    };
    let fake = fake_store().await;
    let merchant = Merchant::register(&server, "woo-connect@example.com").await;
    let (status, store) = merchant
        .json(
            Method::POST,
            "/api/stores",
            Some(json!({"platform": "woocommerce", "url": format!("{}/", fake.base_url), "consumerKey": fake.consumer_key, "consumerSecret": fake.consumer_secret})),
        )
        .await;
    assert_eq!(status, 201, "{store}");
    assert_eq!(store["platform"], "woocommerce");
    assert_eq!(store["externalId"], fake.base_url);
    let id = store["id"].as_str().unwrap().to_owned();
    let status = server
        .wait_for_syncs(&id, ("authorization", &merchant.auth))
        .await;
    assert_eq!(status["last"]["trigger"], "connect");
    assert_eq!(status["last"]["created"], 14);
    assert!(status["syncedThrough"].is_string());
    let (_, store) = merchant
        .json(Method::GET, &format!("/api/stores/{id}"), None)
        .await;
    assert_eq!(store["productCount"], 14);

    let sealed: String = {
        let url = server.state.settings.resolved_database_url();
        let sql = "SELECT credentials_encrypted FROM stores WHERE platform = 'woocommerce'";
        if url.starts_with("sqlite:") {
            sqlx::query_scalar(sql)
                .fetch_one(&sqlx::SqlitePool::connect(&url).await.unwrap())
                .await
                .unwrap()
        } else {
            sqlx::query_scalar(sql)
                .fetch_one(&sqlx::PgPool::connect(&url).await.unwrap())
                .await
                .unwrap()
        }
    };
    assert!(
        sealed.starts_with("v1."),
        "credentials are encrypted at rest"
    );
    assert!(!sealed.contains(&fake.consumer_secret) && !sealed.contains(&fake.consumer_key));

    fake.delete(114);
    fake.rename(
        103,
        "Trail Running Socks (2026 edition)",
        chrono::Utc::now(),
    );
    let (status, request) = merchant
        .json(Method::POST, &format!("/api/stores/{id}/sync"), None)
        .await;
    assert_eq!(status, 202, "{request}");
    assert_eq!(request["kind"], "full");
    let request_id = request["id"].as_str().unwrap().to_owned();
    server
        .wait_for_syncs(&id, ("authorization", &merchant.auth))
        .await;
    let (_, request) = merchant
        .json(
            Method::GET,
            &format!("/api/stores/{id}/sync/{request_id}"),
            None,
        )
        .await;
    assert_eq!(request["status"], "done", "{request}");
    let (_, history) = merchant
        .json(Method::GET, &format!("/api/stores/{id}/syncs"), None)
        .await;
    let batch = &history["items"][0];
    assert_eq!(batch["id"], request["batchId"]);
    assert_eq!(
        (
            batch["fetched"].as_i64(),
            batch["updated"].as_i64(),
            batch["deleted"].as_i64()
        ),
        (Some(13), Some(1), Some(1))
    );
    assert_eq!(batch["unchanged"], 12);
    let (_, page) = merchant
        .json(
            Method::GET,
            &format!("/api/products?storeId={id}&q=2026"),
            None,
        )
        .await;
    assert_eq!(page["total"], 1);
    let (_, history) = merchant
        .json(Method::GET, &format!("/api/stores/{id}/syncs"), None)
        .await;
    let triggers: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["manual", "connect"]);

    let other = Merchant::register(&server, "other-woo@example.com").await;
    let response = other
        .request(Method::POST, &format!("/api/stores/{id}/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, 404).await, "not_found");
}

async fn woocommerce_connection_problems_are_explained(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let fake = fake_store().await;
    let merchant = Merchant::register(&server, "woo-problems@example.com").await;
    let connect = |url: String, secret: &str| {
        merchant.json(
            Method::POST,
            "/api/stores",
            Some(json!({"platform": "woocommerce", "url": url, "consumerKey": fake.consumer_key, "consumerSecret": secret})),
        )
    };
    let (status, body) = connect(fake.base_url.clone(), &fake.consumer_secret).await;
    assert_eq!(status, 400, "plain HTTP is refused unless allowed: {body}");
    assert!(body["error"]["details"]["fields"]["url"]
        .as_str()
        .unwrap()
        .contains("HTTPS"));
    let (status, body) = connect("not a url".into(), "cs").await;
    assert_eq!(
        (
            status,
            body["error"]["details"]["fields"]["url"].is_string()
        ),
        (400, true)
    );

    let Some(dev) =
        TestServer::start_with(engine, false, |s| s.woocommerce_allow_http = true).await
    else {
        return;
    };
    let merchant = Merchant::register(&dev, "woo-dev@example.com").await;
    let (status, body) = merchant
        .json(Method::POST, "/api/stores", Some(json!({"platform": "woocommerce", "url": fake.base_url, "consumerKey": fake.consumer_key, "consumerSecret": "cs_wrong"})))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "store_error");
    assert_eq!(
        body["error"]["details"]["platformCode"],
        "woocommerce_rest_authentication_error"
    );
    // Over plain HTTP the keys travel as an OAuth 1.0a signature, which a wrong secret
    // breaks (WooCommerce's words for it).
    assert_eq!(
        body["error"]["details"]["platformMessage"],
        "Invalid signature - provided signature does not match."
    );
    let (status, body) = merchant
        .json(Method::POST, "/api/stores", Some(json!({"platform": "woocommerce", "url": format!("{}/shop", fake.base_url), "consumerKey": "ck", "consumerSecret": "cs"})))
        .await;
    assert_eq!(
        (status, body["error"]["details"]["platformCode"].as_str()),
        (502, Some("rest_no_route"))
    );
    assert_eq!(
        dev.count("stores").await,
        0,
        "nothing is saved when the store refuses"
    );

    let local = merchant.create_store("Local").await;
    let response = merchant
        .request(Method::POST, &format!("/api/stores/{local}/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, 409).await, "not_syncable");
}

async fn woocommerce_webhooks_keep_products_in_sync(engine: Engine) {
    let Some(server) =
        TestServer::start_with(engine, false, |s| s.woocommerce_allow_http = true).await
    else {
        return;
    };
    let fake = fake_store().await;
    let merchant = Merchant::register(&server, "woo-hooks@example.com").await;
    let (status, store) = merchant
        .json(
            Method::POST,
            "/api/stores",
            Some(json!({"platform": "woocommerce", "url": fake.base_url, "consumerKey": fake.consumer_key, "consumerSecret": fake.consumer_secret})),
        )
        .await;
    assert_eq!(status, 201, "{store}");
    let id = store["id"].as_str().unwrap().to_owned();
    let auth = ("authorization", merchant.auth.as_str());
    server.wait_for_syncs(&id, auth).await;

    // Connecting registered the three product topics at our receiver; WooCommerce's ping
    // reached it and was answered 200 (the fake refuses to save a webhook otherwise).
    let hooks = fake.webhooks();
    let mut topics: Vec<&str> = hooks.iter().map(|h| h.topic.as_str()).collect();
    topics.sort_unstable();
    assert_eq!(
        topics,
        ["product.created", "product.deleted", "product.updated"]
    );
    let receiver = format!("{}/api/webhooks/woocommerce/{id}", server.base);
    assert!(hooks
        .iter()
        .all(|h| h.delivery_url == receiver && h.status == "active"));

    // The merchant edits a product in WooCommerce: the signed delivery queues a
    // single-product sync, which reads the product again.
    let deliveries = fake
        .update_product_as_merchant(103, json!({"name": "Trail socks — edited in wp-admin ✨"}))
        .await;
    assert!(
        deliveries
            .iter()
            .all(|d| d.success && d.status == Some(200)),
        "{deliveries:?}"
    );
    server.wait_for_syncs(&id, auth).await;
    let (_, page) = merchant
        .json(
            Method::GET,
            &format!("/api/products?storeId={id}&q=wp-admin"),
            None,
        )
        .await;
    assert_eq!(page["total"], 1, "{page}");
    let (_, history) = merchant
        .json(Method::GET, &format!("/api/stores/{id}/syncs"), None)
        .await;
    assert_eq!(history["items"][0]["trigger"], "webhook");
    assert_eq!(history["items"][0]["kind"], "single");
    assert_eq!(history["items"][0]["updated"], 1);

    // Deleted in the store: removed here.
    fake.delete_product_as_merchant(114).await;
    server.wait_for_syncs(&id, auth).await;
    let (_, store_now) = merchant
        .json(Method::GET, &format!("/api/stores/{id}"), None)
        .await;
    assert_eq!(store_now["productCount"], 13);

    // A delivery with a wrong or missing signature changes nothing.
    let body = br#"{"id":37,"name":"Forged"}"#.to_vec();
    let forged = server
        .request(Method::POST, &format!("/api/webhooks/woocommerce/{id}"))
        .header("content-type", "application/json")
        .header("x-wc-webhook-topic", "product.updated")
        .header("x-wc-webhook-signature", "c2lnbmVkIGJ5IHNvbWVib2R5IGVsc2U=")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(forged, 401).await, "invalid_signature");
    let unsigned = server
        .request(Method::POST, &format!("/api/webhooks/woocommerce/{id}"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unsigned, 401).await, "missing_signature");
    let (_, status_now) = merchant
        .json(Method::GET, &format!("/api/stores/{id}/sync"), None)
        .await;
    assert_eq!(
        status_now["active"].as_array().unwrap().len(),
        0,
        "nothing queued"
    );

    // A replayed delivery (same delivery id) has no second effect.
    let sealed = server
        .state
        .storage
        .webhook_store(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .1
        .unwrap();
    let secret = server
        .state
        .keyring
        .decrypt(&sealed, &format!("woocommerce-webhook-secret:{id}"))
        .unwrap();
    let secret = String::from_utf8(secret).unwrap();
    let deliver = || {
        server
            .request(Method::POST, &format!("/api/webhooks/woocommerce/{id}"))
            .header("content-type", "application/json")
            .header("x-wc-webhook-topic", "product.updated")
            .header("x-wc-webhook-delivery-id", "5f1c0e2d9a")
            .header(
                "x-wc-webhook-signature",
                testkit::woocommerce::webhook_signature(&secret, &body),
            )
            .body(body.clone())
            .send()
    };
    let first: Value = deliver().await.unwrap().json().await.unwrap();
    assert_eq!(first["result"], "queued");
    let second: Value = deliver().await.unwrap().json().await.unwrap();
    assert_eq!(second["result"], "duplicate");
    server.wait_for_syncs(&id, auth).await;

    // Another tenant's webhook address is not this store's: unknown stores are 404.
    let response = server
        .request(
            Method::POST,
            &format!("/api/webhooks/woocommerce/{}", uuid::Uuid::now_v7()),
        )
        .body("webhook_id=1")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, 404).await, "not_found");
}

async fn wix_site_syncs_its_catalog_in_the_background(engine: Engine) {
    let wix = testkit::wix_api::FakeWix::start().await;
    let instance_id = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
    wix.add_instance(instance_id, testkit::wix_api::CatalogVersion::V3Catalog);
    let products = connectors::csv::parse_catalog(&testkit::fixtures::woocommerce_export(), "USD")
        .unwrap()
        .products;
    wix.seed(
        instance_id,
        &products,
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    let (app_id, app_secret, api) = (
        wix.app_id.clone(),
        wix.app_secret.clone(),
        wix.base_url.clone(),
    );
    let secret = app_secret.clone();
    let Some(server) = TestServer::start_with(engine, false, move |s| {
        s.wix = Some(server::config::WixSettings {
            app_id,
            app_secret: Some(secrets::Secret::new(app_secret)),
            public_key: None,
            api_base_url: api,
        });
    })
    .await
    else {
        return;
    };
    let instance = sign_instance(&InstanceClaims::new(instance_id, &wix.app_id), &secret);
    let auth = ("x-wix-instance", instance.as_str());
    let stores = server.get_json("/api/stores", auth).await;
    let store = stores["stores"][0]["id"].as_str().unwrap().to_owned();
    let queued = server
        .request(Method::POST, &format!("/api/stores/{store}/sync"))
        .header(auth.0, auth.1)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    let status = server.wait_for_syncs(&store, auth).await;
    assert_eq!(status["last"]["succeeded"], true, "{status}");
    assert_eq!(status["last"]["created"], products.len());
    let page = server
        .get_json(&format!("/api/products?storeId={store}&limit=200"), auth)
        .await;
    assert_eq!(page["total"], products.len());

    // Edited in the Wix dashboard: the incremental sync reads just that change.
    let id = wix.product_ids(instance_id)[0].clone();
    wix.edit_in_dashboard(instance_id, &id, |product| {
        product["name"] = "Renamed in the Wix dashboard".into();
    });
    server
        .request(Method::POST, &format!("/api/stores/{store}/sync"))
        .header(auth.0, auth.1)
        .json(&json!({"kind": "incremental"}))
        .send()
        .await
        .unwrap();
    let status = server.wait_for_syncs(&store, auth).await;
    assert_eq!(status["last"]["kind"], "incremental");
    assert_eq!(status["last"]["updated"], 1, "{status}");
    assert_eq!(status["last"]["fetched"], 1);
    let found = server
        .get_json(
            &format!("/api/products?storeId={store}&q=wix%20dashboard"),
            auth,
        )
        .await;
    assert_eq!(found["total"], 1);

    // Automatic sync is a store setting the scheduler reads.
    let updated: Value = server
        .request(Method::PATCH, &format!("/api/stores/{store}"))
        .header(auth.0, auth.1)
        .json(&json!({"autoSync": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["autoSync"], true);
    let bad = server
        .request(Method::POST, &format!("/api/stores/{store}/sync"))
        .header(auth.0, auth.1)
        .json(&json!({"kind": "everything"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad, 400).await, "validation_failed");
}

async fn woocommerce_store_connects_by_key_approval(engine: Engine) {
    let Some(server) =
        TestServer::start_with(engine, false, |s| s.woocommerce_allow_http = true).await
    else {
        return;
    };
    let fake = fake_store().await;
    // Loopback is plain HTTP; a real store insists on an HTTPS callback.
    fake.set_allow_insecure_callback(true);
    fake.set_auth_decision(testkit::woocommerce::AuthDecision::Approve);
    let merchant = Merchant::register(&server, "woo-approve@example.com").await;
    let (status, start) = merchant
        .json(
            Method::POST,
            "/api/stores/woocommerce/authorize",
            Some(json!({"url": fake.base_url, "currency": "EUR"})),
        )
        .await;
    assert_eq!(status, 200, "{start}");
    let authorize_url = start["authorizeUrl"].as_str().unwrap().to_owned();
    assert!(authorize_url.starts_with(&format!("{}/wc-auth/v1/authorize?", fake.base_url)));
    assert!(authorize_url.contains("scope=read_write"));

    // The merchant approves on the store's screen: WooCommerce posts the keys to our
    // callback, which must answer 200, then sends the merchant back to the dashboard.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = no_redirects.get(&authorize_url).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{}", answer.text().await.unwrap());
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/stores?woocommerce=returned", server.base))
            && location.contains("success=1"),
        "{location}"
    );
    let (_, stores) = merchant.json(Method::GET, "/api/stores", None).await;
    let store = &stores["stores"][0];
    assert_eq!(store["platform"], "woocommerce");
    assert_eq!(store["currency"], "EUR");
    let id = store["id"].as_str().unwrap().to_owned();
    let status = server
        .wait_for_syncs(&id, ("authorization", &merchant.auth))
        .await;
    assert_eq!(status["last"]["created"], 14, "{status}");

    // The same request cannot connect twice, and an unknown one connects nothing.
    let replay = server
        .request(Method::POST, "/api/woocommerce/keys")
        .json(&json!({"key_id": 9, "user_id": "not-a-request", "consumer_key": "ck_x", "consumer_secret": "cs_x", "key_permissions": "read_write"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(replay, 404).await, "not_found");
    let junk = server
        .request(Method::POST, "/api/woocommerce/keys")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(junk, 400).await, "invalid_json");

    // Plain HTTP store addresses are refused outside local development.
    let Some(strict) = TestServer::start(engine).await else {
        return;
    };
    let other = Merchant::register(&strict, "woo-strict@example.com").await;
    let (status, body) = other
        .json(
            Method::POST,
            "/api/stores/woocommerce/authorize",
            Some(json!({"url": "http://shop.example"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["details"]["fields"]["url"].is_string());

    // Stores on private or local networks are refused (no requests into our own network),
    // whether named by address or by a host name that resolves there.
    for url in [
        "https://127.0.0.1:8443",
        "https://10.0.0.5",
        "https://169.254.169.254",
        "https://[::1]",
        "https://localhost:8443",
    ] {
        let (status, body) = other
            .json(
                Method::POST,
                "/api/stores",
                Some(json!({
                    "platform": "woocommerce",
                    "url": url,
                    "consumerKey": "ck_0123456789",
                    "consumerSecret": "cs_0123456789",
                })),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        let message = body["error"]["details"]["fields"]["url"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.contains("private or local network"),
            "{url}: {body}"
        );
    }
    assert_eq!(
        other.json(Method::GET, "/api/stores", None).await.1["stores"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "nothing was connected"
    );
}
