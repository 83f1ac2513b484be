//! The OpenAPI document states what the server does: every status an operation can answer,
//! the constraints the server enforces, and links from the operations that create resources
//! to those that act on them. `make test` fuzzes the running server against the whole
//! document with Schemathesis (scripts/schemathesis.sh); these tests pin the rules the
//! document states and the server behaviour the fuzzer asked for, on both backends.

mod common;

use std::collections::HashSet;

use common::{bearer, error_code, Engine, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

api_tests!(
    every_operation_documents_the_answers_its_extractors_give,
    the_document_states_the_constraints_the_server_enforces,
    links_chain_created_resources_to_the_operations_on_them,
    list_limits_are_enforced_as_documented,
    empty_query_parameters_are_absent_ones,
    a_sync_body_may_be_null_and_is_json_when_present,
    unconfigured_webhook_receivers_answer_404_not_a_server_error,
    a_store_address_that_leads_nowhere_is_a_bad_request,
);

async fn document(server: &TestServer) -> Value {
    server
        .get("/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            all.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    all
}

async fn every_operation_documents_the_answers_its_extractors_give(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let doc = document(&server).await;
    let mut ids = HashSet::new();
    for (method, path, operation) in operations(&doc) {
        let label = format!("{method} {path}");
        let id = operation["operationId"].as_str().unwrap().to_owned();
        assert!(
            ids.insert(id.clone()),
            "{label}: operationId {id} is used twice"
        );
        let responses = operation["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        let secured = operation["security"]
            .as_array()
            .is_some_and(|requirements| !requirements.is_empty());
        if secured {
            assert!(has("401") && has("429"), "{label}: 401 and 429");
            assert!(
                responses["429"]["headers"]["Retry-After"].is_object(),
                "{label}: 429 names Retry-After"
            );
        }
        let streams = responses
            .values()
            .any(|response| response["content"].get("text/event-stream").is_some());
        assert_eq!(
            has("408"),
            !streams,
            "{label}: 408 past the request timeout"
        );
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if parameters.iter().any(|p| p["in"] == "path") {
            assert!(has("404"), "{label}: 404 for an unknown id");
        }
        for parameter in parameters.iter().filter(|p| p["in"] == "query") {
            assert!(has("400"), "{label}: 400 for a bad query parameter");
            assert_eq!(
                parameter["allowEmptyValue"], true,
                "{label}: an empty {} is an absent one",
                parameter["name"]
            );
        }
        if let Some(body) = operation.get("requestBody") {
            assert!(has("413"), "{label}: 413 for a large body");
            let webhook = operation["tags"][0] == "webhooks";
            if body["content"].get("application/json").is_some() && !webhook {
                assert!(
                    has("400") && has("415"),
                    "{label}: 400 and 415 for JSON bodies"
                );
            }
        }
    }
}

async fn the_document_states_the_constraints_the_server_enforces(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let doc = document(&server).await;
    let parameter = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    for (path, max) in [
        ("/api/products", 200),
        ("/api/jobs", 100),
        ("/api/jobs/{id}/items", 500),
        ("/api/billing/history", 100),
    ] {
        let limit = parameter(path, "limit");
        assert_eq!(
            (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
            (&json!(1), &json!(max)),
            "{path}"
        );
    }
    let status = parameter("/api/jobs", "status");
    assert_eq!(
        (&status["style"], &status["explode"]),
        (&json!("form"), &json!(false))
    );
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["PublishRequest"]["properties"]["itemIds"]["minItems"],
        1
    );
    assert_eq!(
        schemas["CreateStoreRequest"]["oneOf"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        schemas["RegisterRequest"]["properties"]["password"]["minLength"],
        10
    );
    assert_eq!(
        schemas["CreateJobRequest"]["properties"]["sourceIds"]["minItems"],
        1
    );
    // No text holds a NUL character: strings without a pattern of their own say so.
    let no_nul = json!(r"^[^\u0000]*$");
    assert_eq!(
        schemas["CheckoutRequest"]["properties"]["plan"]["pattern"],
        no_nul
    );
    assert_eq!(
        schemas["LoginRequest"]["properties"]["password"]["pattern"],
        no_nul
    );
    assert_eq!(parameter("/api/products", "q")["schema"]["pattern"], no_nul);
    let keys = &doc["paths"]["/api/woocommerce/keys"]["post"]["requestBody"]["content"];
    assert!(keys["application/json"].is_object(), "{keys}");
}

async fn links_chain_created_resources_to_the_operations_on_them(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let doc = document(&server).await;
    let all = operations(&doc);
    let by_id = |id: &str| {
        all.iter()
            .find(|(_, _, operation)| operation["operationId"] == id)
            .unwrap_or_else(|| panic!("no operation {id}"))
            .2
            .clone()
    };
    let created = &doc["paths"]["/api/stores"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        created["GetStore"],
        json!({"operationId": "get_store", "parameters": {"id": "$response.body#/id"}})
    );
    let job = &doc["paths"]["/api/jobs"]["post"]["responses"]["201"]["links"];
    for name in ["GetJob", "ListJobItems", "CancelJob", "RetryJob"] {
        assert!(job[name].is_object(), "POST /api/jobs links {name}");
    }
    // Every link names an operation that exists and parameters that operation takes.
    let mut links = 0;
    for (method, path, operation) in &all {
        for response in operation["responses"].as_object().unwrap().values() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = by_id(link["operationId"].as_str().unwrap());
                let taken: Vec<&Value> = target["parameters"]
                    .as_array()
                    .map(|parameters| parameters.iter().map(|p| &p["name"]).collect())
                    .unwrap_or_default();
                for parameter in link["parameters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    assert!(
                        taken.iter().any(|name| *name == parameter),
                        "{method} {path} link {name}: the target takes no {parameter}"
                    );
                }
            }
        }
    }
    assert!(links >= 20, "{links} links");
}

async fn list_limits_are_enforced_as_documented(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let auth = bearer(&server.register("limits@example.com").await);
    let job = uuid::Uuid::new_v4();
    for (path, max) in [
        ("/api/products".to_owned(), 200),
        ("/api/jobs".to_owned(), 100),
        (format!("/api/jobs/{job}/items"), 500),
        ("/api/billing/history".to_owned(), 100),
    ] {
        for limit in [0, max + 1] {
            let response = server
                .get(&format!("{path}?limit={limit}"))
                .header("authorization", &auth)
                .send()
                .await
                .unwrap();
            assert_eq!(
                error_code(response, 400).await,
                "validation_failed",
                "{path} {limit}"
            );
        }
    }
    for path in [
        "/api/products?limit=200",
        "/api/jobs?limit=100",
        "/api/billing/history?limit=1",
    ] {
        let response = server
            .get(path)
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

async fn empty_query_parameters_are_absent_ones(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let auth = bearer(&server.register("empty@example.com").await);
    for path in [
        "/api/products?storeId=&q=&collectionId=&cursor=&limit=",
        "/api/collections?storeId=",
        "/api/jobs?status=&cursor=&limit=",
        "/api/jobs?status=pending,running",
        "/api/billing/history?cursor=&limit=",
    ] {
        let response = server
            .get(path)
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let response = server
        .get("/api/jobs/events?jobId=&access_token=")
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "an empty jobId streams every job");
}

async fn a_sync_body_may_be_null_and_is_json_when_present(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let auth = bearer(&server.register("sync-body@example.com").await);
    let store: Value = server
        .request(Method::POST, "/api/stores")
        .header("authorization", &auth)
        .json(&json!({"platform": "local"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sync = format!("/api/stores/{}/sync", store["id"].as_str().unwrap());
    let post = |body: &'static str, content_type: &'static str| {
        server
            .request(Method::POST, &sync)
            .header("authorization", &auth)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // The body is read (a `null` one as no body) before the store is found not to sync.
    for body in ["", "null", "{}", r#"{"kind": "incremental"}"#] {
        let response = post(body, "application/json").await.unwrap();
        assert_eq!(error_code(response, 409).await, "not_syncable", "{body:?}");
    }
    let response = post(r#"{"kind": "full"}"#, "text/plain").await.unwrap();
    assert_eq!(error_code(response, 415).await, "unsupported_media_type");
    let response = post(r#"{"kind": "sometimes"}"#, "application/json")
        .await
        .unwrap();
    assert_eq!(error_code(response, 400).await, "validation_failed");
}

async fn unconfigured_webhook_receivers_answer_404_not_a_server_error(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    for path in ["/api/webhooks/wix", "/api/webhooks/stripe"] {
        let response = server
            .request(Method::POST, path)
            .body("anything")
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(response, 404).await, "not_found", "{path}");
    }
}

async fn a_store_address_that_leads_nowhere_is_a_bad_request(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let auth = bearer(&server.register("nowhere@example.com").await);
    // `.invalid` never resolves (RFC 2606).
    let response = server
        .request(Method::POST, "/api/stores")
        .header("authorization", &auth)
        .json(&json!({
            "platform": "woocommerce",
            "url": "https://shop.invalid",
            "consumerKey": "ck_1",
            "consumerSecret": "cs_1"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["details"]["fields"]["url"].is_string(),
        "{body}"
    );
    assert_eq!(server.count("stores").await, 0);
}
