//! The HTTP API, end to end over real HTTP, on SQLite and PostgreSQL.

mod common;

use chrono::{Duration, Utc};
use common::{bearer, error_code, Engine, TestServer, WIX_APP_ID, WIX_SECRET};
use reqwest::Method;
use serde_json::{json, Value};
use server::auth::tokens::{AccessIdentity, AccessTokens};
use testkit::wix::{sign_instance, sign_payload_segment, InstanceClaims};

api_tests!(
    health_and_readiness_answer,
    register_login_refresh_and_logout,
    registration_input_is_validated_without_a_trace,
    malformed_requests_get_json_errors,
    bad_access_tokens_are_refused,
    replayed_refresh_token_revokes_the_family,
    wix_instance_signs_in_and_provisions_once,
    bad_wix_instances_are_refused_and_create_nothing,
    concurrent_first_wix_requests_create_one_account,
    demo_login_link_works_once_and_only_in_demo_mode,
    login_attempts_are_rate_limited,
    api_requests_are_rate_limited_per_account,
    tenants_cannot_read_or_change_each_other,
    cors_and_framing_allow_the_wix_dashboard,
    openapi_document_covers_every_route,
    dashboard_is_served_with_app_fallback,
);

async fn health_and_readiness_answer(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let health: Value = server
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let response = server.get("/ready").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let ready: Value = response.json().await.unwrap();
    let expected = match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    assert_eq!(ready["database"], expected);
    let echoed = server
        .get("/health")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
}

async fn register_login_refresh_and_logout(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let session = server.register("Owner@Example.com").await;
    assert_eq!(session["user"]["email"], "owner@example.com");
    assert_eq!(session["tokenType"], "Bearer");
    assert_eq!(session["expiresIn"], 900);

    let me: Value = server
        .get_json("/api/me", ("authorization", &bearer(&session)))
        .await;
    assert_eq!(me["authMethod"], "password");
    assert_eq!(me["plan"]["id"], "free");
    assert_eq!(me["plan"]["monthlyCredits"], 200);
    assert_eq!(
        me["credits"],
        json!({
            "total": 200, "used": 0, "remaining": 200,
            "resetsOn": domain::next_reset_date(Utc::now().date_naive()).to_string()
        })
    );
    assert_eq!(me["account"]["name"], "example.com");
    assert_eq!(me["user"]["email"], "owner@example.com");

    let who: Value = server
        .get_json("/api/v1/auth/me", ("authorization", &bearer(&session)))
        .await;
    assert_eq!(who["account"]["id"], me["account"]["id"]);

    let wrong = server
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "owner@example.com", "password": "not the password"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong, 401).await, "invalid_credentials");
    let unknown = server
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": "whatever it is"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown, 401).await, "invalid_credentials");

    let login: Value = server
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "OWNER@example.com", "password": "correct horse battery"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["account"]["id"], me["account"]["id"]);

    let refreshed = server
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refreshToken": login["refreshToken"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_ne!(refreshed["refreshToken"], login["refreshToken"]);

    let logout = server
        .post_json(
            "/api/v1/auth/logout",
            json!({"refreshToken": refreshed["refreshToken"]}),
        )
        .header("authorization", bearer(&refreshed))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let after_logout = server
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refreshToken": refreshed["refreshToken"]}),
        )
        .send()
        .await
        .unwrap();
    // Signed out is not stolen: the answer says the session ended.
    assert_eq!(error_code(after_logout, 401).await, "session_ended");
    // The first session (from registration) is a separate family and still works.
    let first = server
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refreshToken": session["refreshToken"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
}

async fn registration_input_is_validated_without_a_trace(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let attempt = |body: Value| server.post_json("/api/v1/auth/register", body).send();

    let weak = attempt(json!({"email": "a@example.com", "password": "short"}))
        .await
        .unwrap();
    assert_eq!(weak.status(), 400);
    let body: Value = weak.json().await.unwrap();
    assert_eq!(body["error"]["code"], "validation_failed");
    assert!(body["error"]["details"]["fields"]["password"]
        .as_str()
        .unwrap()
        .contains("at least"));

    let both = attempt(json!({"email": "not-an-email", "password": "aaaaaaaaaaaaaa"}))
        .await
        .unwrap();
    let body: Value = both.json().await.unwrap();
    let fields = &body["error"]["details"]["fields"];
    assert!(
        fields["email"].is_string() && fields["password"].is_string(),
        "{body}"
    );

    let long_name = attempt(json!({"email": "b@example.com", "password": "correct horse battery", "accountName": "x".repeat(200)}))
        .await
        .unwrap();
    let body: Value = long_name.json().await.unwrap();
    assert!(
        body["error"]["details"]["fields"]["accountName"].is_string(),
        "{body}"
    );

    assert_eq!(server.count("users").await, 0);
    assert_eq!(server.count("accounts").await, 0);

    server.register("dup@example.com").await;
    let duplicate =
        attempt(json!({"email": "DUP@example.com", "password": "another good password"}))
            .await
            .unwrap();
    assert_eq!(error_code(duplicate, 409).await, "email_taken");
    assert_eq!(server.count("users").await, 1);
    assert_eq!(server.count("accounts").await, 1);
    assert_eq!(server.count("credit_ledger").await, 1);
}

async fn malformed_requests_get_json_errors(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |s| s.max_body_bytes = 2048).await
    else {
        return;
    };
    let raw = |body: &'static str| {
        server
            .request(Method::POST, "/api/v1/auth/register")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        error_code(raw("{\"email\": ").await.unwrap(), 400).await,
        "invalid_json"
    );
    assert_eq!(
        error_code(raw("not json at all").await.unwrap(), 400).await,
        "invalid_json"
    );

    let wrong_type = raw(r#"{"email": 42, "password": "correct horse battery"}"#)
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(body["error"]["code"], "validation_failed");
    assert!(body["error"]["details"]["fields"]["email"]
        .as_str()
        .unwrap()
        .contains("invalid type"));

    let missing = raw(r#"{"email": "x@example.com"}"#).await.unwrap();
    let body: Value = missing.json().await.unwrap();
    assert!(
        body["error"]["details"]["fields"]["body"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{body}"
    );

    let no_content_type = server
        .request(Method::POST, "/api/v1/auth/login")
        .body(r#"{"email":"a@b.co","password":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(no_content_type, 415).await,
        "unsupported_media_type"
    );

    let oversized = server
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "x@example.com", "password": "p".repeat(5000)}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(oversized, 413).await, "payload_too_large");

    let unknown = server.get("/api/does-not-exist").send().await.unwrap();
    assert_eq!(error_code(unknown, 404).await, "route_not_found");
    let wrong_method = server
        .request(Method::DELETE, "/api/me")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong_method, 405).await, "method_not_allowed");
    let wrong_method_get = server.get("/api/v1/auth/login").send().await.unwrap();
    assert_eq!(
        error_code(wrong_method_get, 405).await,
        "method_not_allowed"
    );

    assert_eq!(server.count("users").await, 0);
}

async fn bad_access_tokens_are_refused(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let session = server.register("tok@example.com").await;
    let me = |authorization: String| {
        server
            .get("/api/me")
            .header("authorization", authorization)
            .send()
    };

    assert_eq!(
        error_code(server.get("/api/me").send().await.unwrap(), 401).await,
        "missing_credentials"
    );
    assert_eq!(
        error_code(me("Bearer garbage".into()).await.unwrap(), 401).await,
        "invalid_token"
    );
    let token = session["accessToken"].as_str().unwrap();
    let truncated = format!("Bearer {}", &token[..token.len() - 5]);
    assert_eq!(
        error_code(me(truncated).await.unwrap(), 401).await,
        "invalid_token"
    );
    assert_eq!(
        error_code(me("Basic dXNlcjpwYXNz".into()).await.unwrap(), 401).await,
        "invalid_authorization"
    );
    assert_eq!(
        error_code(me("Bearer".into()).await.unwrap(), 401).await,
        "invalid_authorization"
    );

    let identity = AccessIdentity {
        user_id: session["user"]["id"].as_str().unwrap().parse().unwrap(),
        account_id: session["account"]["id"].as_str().unwrap().parse().unwrap(),
        session_id: uuid::Uuid::now_v7(),
    };
    let foreign = AccessTokens::new(&[9; 32]).issue(identity, Utc::now());
    assert_eq!(
        error_code(me(format!("Bearer {foreign}")).await.unwrap(), 401).await,
        "invalid_token"
    );
    let expired = server
        .state
        .access_tokens
        .issue(identity, Utc::now() - Duration::minutes(20));
    assert_eq!(
        error_code(me(format!("Bearer {expired}")).await.unwrap(), 401).await,
        "token_expired"
    );
    assert_eq!(me(bearer(&session)).await.unwrap().status(), 200);
}

async fn replayed_refresh_token_revokes_the_family(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let session = server.register("replay@example.com").await;
    let refresh = |token: &Value| {
        server
            .post_json("/api/v1/auth/refresh", json!({"refreshToken": token}))
            .send()
    };
    let second: Value = refresh(&session["refreshToken"])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let replay = refresh(&session["refreshToken"]).await.unwrap();
    assert_eq!(error_code(replay, 401).await, "refresh_token_reused");
    let stolen_successor = refresh(&second["refreshToken"]).await.unwrap();
    assert_eq!(
        error_code(stolen_successor, 401).await,
        "refresh_token_reused"
    );
    let garbage = refresh(&json!("not-a-token")).await.unwrap();
    assert_eq!(error_code(garbage, 401).await, "invalid_refresh_token");
}

fn instance_for(id: &str) -> String {
    sign_instance(&InstanceClaims::new(id, WIX_APP_ID), WIX_SECRET)
}

async fn wix_instance_signs_in_and_provisions_once(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let instance = instance_for("8d1d4d6c-1c4e-4bb4-9d1a-5b6a2b7f0001");
    let first: Value = server
        .get_json("/api/me", ("x-wix-instance", &instance))
        .await;
    assert_eq!(first["authMethod"], "wixInstance");
    assert_eq!(first["account"]["billingSource"], "wix");
    assert_eq!(first["user"], Value::Null);
    assert_eq!(first["credits"]["remaining"], 200);
    let second: Value = server
        .get_json(
            "/api/me",
            ("authorization", &format!("WixInstance {instance}")),
        )
        .await;
    assert_eq!(first["account"]["id"], second["account"]["id"]);
    assert_eq!(server.count("accounts").await, 1);
    assert_eq!(server.count("stores").await, 1);

    // A padded, standard-alphabet encoding of the same instance verifies too.
    let payload = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        InstanceClaims::new("8d1d4d6c-1c4e-4bb4-9d1a-5b6a2b7f0001", WIX_APP_ID)
            .to_json()
            .to_string(),
    );
    let padded = sign_payload_segment(&payload, WIX_SECRET);
    let third = server
        .get("/api/me")
        .header("x-wix-instance", &padded)
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 200);
    let logout = server
        .post_json("/api/v1/auth/logout", json!({"refreshToken": "x"}))
        .header("x-wix-instance", &instance)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(logout, 401).await, "not_a_session");
}

async fn bad_wix_instances_are_refused_and_create_nothing(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let id = "8d1d4d6c-1c4e-4bb4-9d1a-5b6a2b7f0002";
    let claims = InstanceClaims::new(id, WIX_APP_ID);
    let other_secret = sign_instance(&claims, "someone-elses-secret");
    let mut expired_claims = claims.clone();
    expired_claims.sign_date = Utc::now() - Duration::hours(6);
    expired_claims.expiration = Utc::now() - Duration::hours(2);
    let expired = sign_instance(&expired_claims, WIX_SECRET);
    let mut other_app = claims.clone();
    other_app.app_def_id = "another-app".into();
    let wrong_app = sign_instance(&other_app, WIX_SECRET);
    let valid = sign_instance(&claims, WIX_SECRET);
    let (signature, payload) = valid.split_once('.').unwrap();
    let tampered = format!("{signature}.{}", payload.replacen('e', "f", 1));
    let truncated = valid[..valid.len() - 12].to_owned();

    for (token, code) in [
        (other_secret, "invalid_instance"),
        (expired, "instance_expired"),
        (wrong_app, "invalid_instance"),
        (tampered, "invalid_instance"),
        (truncated, "invalid_instance"),
        ("garbage".to_owned(), "invalid_instance"),
        ("a.b.c".to_owned(), "invalid_instance"),
    ] {
        let response = server
            .get("/api/me")
            .header("x-wix-instance", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(response, 401).await, code, "token {token}");
    }
    assert_eq!(server.count("accounts").await, 0);
    assert_eq!(server.count("stores").await, 0);

    let Some(without_wix) = TestServer::start_with(engine, false, |s| s.wix = None).await else {
        return;
    };
    let response = without_wix
        .get("/api/me")
        .header("x-wix-instance", &valid)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, 401).await, "wix_not_configured");
}

async fn concurrent_first_wix_requests_create_one_account(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let instance = instance_for("8d1d4d6c-1c4e-4bb4-9d1a-5b6a2b7f0003");
    let requests = (0..12).map(|_| {
        server
            .get("/api/me")
            .header("x-wix-instance", &instance)
            .send()
    });
    let responses = futures_join_all(requests).await;
    let mut ids = Vec::new();
    for response in responses {
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        ids.push(body["account"]["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(server.count("accounts").await, 1);
    assert_eq!(server.count("credit_ledger").await, 1);
}

async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

async fn demo_login_link_works_once_and_only_in_demo_mode(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, true, |_| {}).await else {
        return;
    };
    let token = server::auth::sessions::create_demo_login_link(&server.state)
        .await
        .unwrap();
    let login = |token: String| {
        server
            .post_json("/api/v1/auth/demo-login", json!({"token": token}))
            .send()
    };
    let session: Value = login(token.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(session["account"]["name"], "Demo store");
    let me = server
        .get("/api/me")
        .header("authorization", bearer(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        error_code(login(token).await.unwrap(), 401).await,
        "invalid_login_link"
    );
    assert_eq!(
        error_code(login("made-up".into()).await.unwrap(), 401).await,
        "invalid_login_link"
    );

    let Some(plain) = TestServer::start(engine).await else {
        return;
    };
    assert_eq!(
        plain.count("accounts").await,
        0,
        "no demo account without --demo"
    );
    let response = plain
        .post_json("/api/v1/auth/demo-login", json!({"token": "anything"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, 401).await, "invalid_login_link");
}

async fn login_attempts_are_rate_limited(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |s| {
        s.login_attempts_per_email = 3;
        s.login_attempts_per_ip = 5;
    })
    .await
    else {
        return;
    };
    server.register("limited@example.com").await;
    let attempt = |email: &str| {
        server
            .post_json(
                "/api/v1/auth/login",
                json!({"email": email, "password": "wrong password!"}),
            )
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt("limited@example.com").await.unwrap().status(), 401);
    }
    let limited = attempt("limited@example.com").await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert_eq!(error_code(limited, 429).await, "rate_limited");
    // Per IP: two more attempts on other emails use up the IP's five.
    assert_eq!(attempt("other1@example.com").await.unwrap().status(), 401);
    assert_eq!(
        error_code(attempt("other2@example.com").await.unwrap(), 429).await,
        "rate_limited"
    );
}

async fn api_requests_are_rate_limited_per_account(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |s| s.rate_limit_per_minute = 5).await
    else {
        return;
    };
    let busy = server.register("busy@example.com").await;
    let calm = server.register("calm@example.com").await;
    for _ in 0..5 {
        let ok = server
            .get("/api/me")
            .header("authorization", bearer(&busy))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
    let limited = server
        .get("/api/me")
        .header("authorization", bearer(&busy))
        .send()
        .await
        .unwrap();
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(error_code(limited, 429).await, "rate_limited");
    let other = server
        .get("/api/me")
        .header("authorization", bearer(&calm))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        200,
        "one account's limit does not affect another"
    );
}

async fn tenants_cannot_read_or_change_each_other(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let a = server.register("a@tenant-a.com").await;
    let b = server.register("b@tenant-b.com").await;
    let wix = instance_for("8d1d4d6c-1c4e-4bb4-9d1a-5b6a2b7f0004");

    let rename = server
        .request(Method::PATCH, "/api/account")
        .header("authorization", bearer(&a))
        .json(&json!({"name": "A's renamed shop", "id": b["account"]["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(rename.status(), 200);
    let renamed: Value = rename.json().await.unwrap();
    assert_eq!(
        renamed["id"], a["account"]["id"],
        "the body cannot redirect the write"
    );

    let me_b: Value = server
        .get_json("/api/me", ("authorization", &bearer(&b)))
        .await;
    assert_eq!(me_b["account"]["name"], "tenant-b.com");
    let me_wix: Value = server.get_json("/api/me", ("x-wix-instance", &wix)).await;
    assert_ne!(me_wix["account"]["id"], a["account"]["id"]);
    assert_eq!(me_wix["account"]["name"], "Wix store");

    // A's session cannot end B's.
    let logout = server
        .post_json(
            "/api/v1/auth/logout",
            json!({"refreshToken": b["refreshToken"]}),
        )
        .header("authorization", bearer(&a))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let b_refresh = server
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refreshToken": b["refreshToken"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(b_refresh.status(), 200);

    // Storage-level scoping: A's account id never reaches B's rows.
    let storage = server.storage();
    let a_id = a["account"]["id"].as_str().unwrap().parse().unwrap();
    let b_user = b["user"]["id"].as_str().unwrap().parse().unwrap();
    assert!(storage.get_user(a_id, b_user).await.is_err());
    assert!(storage.list_stores(a_id).await.unwrap().is_empty());
}

async fn cors_and_framing_allow_the_wix_dashboard(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |s| {
        s.cors_origins = vec!["https://shop.example.org".into()]
    })
    .await
    else {
        return;
    };
    let preflight = |origin: &'static str| {
        server
            .request(Method::OPTIONS, "/api/me")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-wix-instance")
            .send()
    };
    for allowed in [
        "https://manage.wix.com",
        "https://www.wix.com",
        "https://shop.example.org",
    ] {
        let response = preflight(allowed).await.unwrap();
        assert_eq!(response.headers()["access-control-allow-origin"], allowed);
    }
    for refused in [
        "https://evil.example",
        "http://manage.wix.com",
        "https://wix.com.evil.example",
    ] {
        let response = preflight(refused).await.unwrap();
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{refused}"
        );
    }
    let page = server.get("/").send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors") && csp.contains("https://manage.wix.com"));
    assert!(!page.headers().contains_key("x-frame-options"));
}

async fn openapi_document_covers_every_route(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let doc: Value = server
        .get("/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            documented.push(format!("{} {path}", method.to_uppercase()));
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                !responses.is_empty(),
                "{method} {path} documents no responses"
            );
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        [
            "DELETE /api/stores/{id}",
            "GET /api/billing",
            "GET /api/billing/history",
            "GET /api/collections",
            "GET /api/jobs",
            "GET /api/jobs/events",
            "GET /api/jobs/{id}",
            "GET /api/jobs/{id}/items",
            "GET /api/me",
            "GET /api/openapi.json",
            "GET /api/optimizer/options",
            "GET /api/products",
            "GET /api/products/{id}",
            "GET /api/stores",
            "GET /api/stores/{id}",
            "GET /api/stores/{id}/export",
            "GET /api/stores/{id}/sync",
            "GET /api/stores/{id}/sync/{requestId}",
            "GET /api/stores/{id}/syncs",
            "GET /api/v1/auth/me",
            "GET /health",
            "GET /ready",
            "PATCH /api/account",
            "PATCH /api/stores/{id}",
            "POST /api/billing/checkout",
            "POST /api/billing/portal",
            "POST /api/billing/sync-credits",
            "POST /api/jobs",
            "POST /api/jobs/{id}/cancel",
            "POST /api/jobs/{id}/retry",
            "POST /api/publish",
            "POST /api/revert",
            "POST /api/stores",
            "POST /api/stores/woocommerce/authorize",
            "POST /api/stores/{id}/import",
            "POST /api/stores/{id}/sync",
            "POST /api/v1/auth/demo-login",
            "POST /api/v1/auth/login",
            "POST /api/v1/auth/logout",
            "POST /api/v1/auth/refresh",
            "POST /api/v1/auth/register",
            "POST /api/webhooks/stripe",
            "POST /api/webhooks/wix",
            "POST /api/webhooks/woocommerce/{storeId}",
            "POST /api/woocommerce/keys",
        ]
    );
    // Every documented operation is really routed (none answers route_not_found).
    for entry in &documented {
        let (method, path) = entry.split_once(' ').unwrap();
        let response = server
            .request(method.parse().unwrap(), path)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(
            (status.as_u16(), body["error"]["code"].as_str()),
            (404, Some("route_not_found")),
            "{entry} is documented but not routed"
        );
    }
    assert!(doc["components"]["securitySchemes"]["wixInstance"].is_object());
}

async fn dashboard_is_served_with_app_fallback(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let not_built = server.get("/").send().await.unwrap();
    assert_eq!(not_built.status(), 200);
    assert!(not_built
        .text()
        .await
        .unwrap()
        .contains("has not been built"));

    let web = &server.state.settings.web_dir;
    std::fs::create_dir_all(web.join("assets")).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><div id=root>app</div>",
    )
    .unwrap();
    std::fs::write(web.join("assets/app-1234.js"), "console.log('app')").unwrap();

    for page in ["/", "/login", "/account/settings"] {
        let response = server.get(page).send().await.unwrap();
        assert_eq!(response.status(), 200, "{page}");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert!(response.text().await.unwrap().contains("id=root"));
    }
    let asset = server.get("/assets/app-1234.js").send().await.unwrap();
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let missing = server.get("/assets/missing-999.js").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let posted = server
        .request(Method::POST, "/somewhere")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(posted, 405).await, "method_not_allowed");
}
