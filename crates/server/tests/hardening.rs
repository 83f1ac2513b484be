//! What an attacker tried against the release binary, kept closed: ended sessions and
//! deleted accounts, the Wix header rule, registration floods, unauthenticated bodies,
//! caching of tokens, slow clients. Each scenario runs on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use axum::response::IntoResponse;
use common::{bearer, error_code, Engine, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

api_tests!(
    signing_out_ends_the_access_token_at_once,
    a_revoked_login_ends_its_access_tokens,
    a_deleted_account_is_refused_on_every_route,
    a_missing_reference_is_a_conflict_not_a_server_error,
    a_wix_instance_header_never_overrides_a_bearer_token,
    registration_is_limited_per_client_address,
    standalone_free_credits_are_the_operators_to_set,
    unauthenticated_bodies_are_held_to_the_json_limit,
    token_answers_are_never_cached_and_the_dashboard_is_locked_down,
    production_over_https_sends_hsts,
    half_open_connections_are_closed_and_health_still_answers,
    a_request_that_trickles_its_body_times_out,
    the_event_stream_ends_with_its_session,
);

/// Routes a signed-in merchant uses, each of which must refuse an ended session.
const SIGNED_IN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/me"),
    ("GET", "/api/stores"),
    ("GET", "/api/jobs"),
    ("GET", "/api/products"),
    ("GET", "/api/billing"),
    ("GET", "/api/jobs/events"),
];

async fn assert_refused_everywhere(server: &TestServer, authorization: &str, code: &str) {
    for (method, path) in SIGNED_IN_ROUTES {
        let response = server
            .request(method.parse().unwrap(), path)
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response, 401).await,
            code,
            "{method} {path} with an ended session"
        );
    }
    for (path, body) in [
        ("/api/stores", json!({"platform": "local", "name": "After"})),
        (
            "/api/stores/woocommerce/authorize",
            json!({"url": "https://shop.example.com", "currency": "EUR"}),
        ),
    ] {
        let response = server
            .post_json(path, body)
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(response, 401).await, code, "POST {path}");
    }
}

async fn signing_out_ends_the_access_token_at_once(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let session = server.register("leaving@example.com").await;
    let authorization = bearer(&session);
    let me = server
        .get("/api/me")
        .header("authorization", &authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let logout = server
        .post_json(
            "/api/v1/auth/logout",
            json!({"refreshToken": session["refreshToken"]}),
        )
        .header("authorization", &authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_refused_everywhere(&server, &authorization, "session_ended").await;

    // The refresh token of the ended session says so; it was not stolen.
    let refresh = server
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refreshToken": session["refreshToken"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(refresh, 401).await, "session_ended");

    // Another login of the same user is untouched.
    let login = server
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "leaving@example.com", "password": "correct horse battery"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let again: Value = login.json().await.unwrap();
    let me = server
        .get("/api/me")
        .header("authorization", bearer(&again))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

async fn a_revoked_login_ends_its_access_tokens(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let session = server.register("stolen@example.com").await;
    let refresh = |token: &Value| {
        server
            .post_json("/api/v1/auth/refresh", json!({"refreshToken": token}))
            .send()
    };
    let rotated: Value = refresh(&session["refreshToken"])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = bearer(&rotated);
    let me = server
        .get("/api/me")
        .header("authorization", &fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the rotated session works");

    // The spent token comes back: the whole login is revoked, its newest access token too.
    let replay = refresh(&session["refreshToken"]).await.unwrap();
    assert_eq!(error_code(replay, 401).await, "refresh_token_reused");
    assert_refused_everywhere(&server, &fresh, "session_ended").await;
    assert_refused_everywhere(&server, &bearer(&session), "session_ended").await;
}

async fn a_deleted_account_is_refused_on_every_route(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let session = server.register("deleted@example.com").await;
    let authorization = bearer(&session);
    let created = server
        .post_json("/api/stores", json!({"platform": "local", "name": "Shop"}))
        .header("authorization", &authorization)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let account_id = session["account"]["id"].as_str().unwrap().parse().unwrap();
    server.storage().delete_account(account_id).await.unwrap();

    assert_refused_everywhere(&server, &authorization, "session_ended").await;
    let refresh = server
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refreshToken": session["refreshToken"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(refresh, 401).await, "invalid_refresh_token");
    assert_eq!(server.count("stores").await, 0, "nothing was written");
}

async fn a_missing_reference_is_a_conflict_not_a_server_error(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    // A request whose account is deleted between its sign-in check and its write.
    let vanished = uuid::Uuid::now_v7();
    let err = server
        .storage()
        .create_store(
            vanished,
            storage::NewStore {
                platform: domain::Platform::Local,
                external_id: "local-vanished".into(),
                name: "Gone".into(),
                currency: "USD".into(),
                credentials_encrypted: None,
            },
            chrono::Utc::now(),
        )
        .await
        .expect_err("no such account");
    assert!(err.is_missing_reference(), "{err}");
    let response = server::error::ApiError::from(err).into_response();
    assert_eq!(response.status(), 409);
}

async fn a_wix_instance_header_never_overrides_a_bearer_token(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |settings| settings.wix = None).await
    else {
        return;
    };
    let session = server.register("both@example.com").await;
    let me = |instance: &'static str, with_bearer: bool| {
        let mut request = server.get("/api/me").header("x-wix-instance", instance);
        if with_bearer {
            request = request.header("authorization", bearer(&session));
        }
        request.send()
    };
    assert_eq!(me("", true).await.unwrap().status(), 200, "empty header");
    assert_eq!(me("   ", true).await.unwrap().status(), 200, "blank header");
    assert_eq!(
        me("some.instance", true).await.unwrap().status(),
        200,
        "Authorization counts when both are sent"
    );
    assert_eq!(
        error_code(me("", false).await.unwrap(), 401).await,
        "missing_credentials",
        "an empty header alone is no credential"
    );
    assert_eq!(
        error_code(me("some.instance", false).await.unwrap(), 401).await,
        "wix_not_configured"
    );
}

async fn registration_is_limited_per_client_address(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |settings| {
        settings.registrations_per_ip = 3;
        settings.trust_proxy = true;
    })
    .await
    else {
        return;
    };
    let register = |email: String, ip: &'static str| {
        server
            .post_json(
                "/api/v1/auth/register",
                json!({"email": email, "password": "correct horse battery"}),
            )
            .header("x-forwarded-for", ip)
            .send()
    };
    for n in 0..3 {
        let response = register(format!("farm{n}@example.com"), "203.0.113.7")
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "sign-up {n}");
    }
    let refused = register("farm3@example.com".into(), "203.0.113.7")
        .await
        .unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 3600, "{retry_after}");
    assert_eq!(error_code(refused, 429).await, "rate_limited");
    assert_eq!(server.count("accounts").await, 3, "no fourth account");
    let elsewhere = register("neighbour@example.com".into(), "198.51.100.4")
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 201, "another address is not affected");
}

async fn standalone_free_credits_are_the_operators_to_set(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |settings| {
        for plan in &mut settings.plans {
            if plan.id == "free" {
                plan.standalone_monthly_credits = Some(0);
            }
        }
    })
    .await
    else {
        return;
    };
    let session = server.register("freebie@example.com").await;
    let billing = server
        .get_json("/api/billing", ("authorization", &bearer(&session)))
        .await;
    assert_eq!(billing["credits"]["total"], 0, "{billing}");
    assert_eq!(billing["plan"]["monthlyCredits"], 0, "{billing}");
    assert_eq!(billing["history"]["items"][0]["delta"], 0, "{billing}");

    // A Wix merchant keeps the free plan's credits.
    let instance = testkit::wix::sign_instance(
        &testkit::wix::InstanceClaims::new("free-credits-site", common::WIX_APP_ID),
        common::WIX_SECRET,
    );
    let wix = server
        .get_json("/api/billing", ("x-wix-instance", &instance))
        .await;
    assert_eq!(wix["credits"]["total"], 200, "{wix}");

    // The monthly reset grants the standalone account what the operator set, not more.
    let account_id = session["account"]["id"].as_str().unwrap().parse().unwrap();
    let storage = server.storage();
    let next_month = chrono::Utc::now() + chrono::Duration::days(40);
    storage.reset_due_credits(next_month).await.unwrap();
    assert_eq!(
        storage.get_account(account_id).await.unwrap().credits_total,
        0
    );
}

async fn unauthenticated_bodies_are_held_to_the_json_limit(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |settings| {
        settings.max_body_bytes = 4096;
        settings.max_import_bytes = 1024 * 1024;
    })
    .await
    else {
        return;
    };
    // The store is checked before the body is read.
    let unknown = announce_body(
        &server,
        &format!("POST /api/webhooks/woocommerce/{}", uuid::Uuid::now_v7()),
        (20 << 20, 0),
        "none",
    )
    .await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    // A body announced beyond the limit is refused before it is sent, with the limit.
    let keys = announce_body(&server, "POST /api/woocommerce/keys", (20 << 20, 0), "none").await;
    assert!(keys.starts_with("HTTP/1.1 413"), "{keys}");
    assert!(keys.contains("\"limitBytes\":65536"), "{keys}");
    // A Wix webhook is refused before its body while Wix webhooks are not configured, and
    // held to the JSON limit once they are (see the billing tests for the configured case).
    let wix = announce_body(&server, "POST /api/webhooks/wix", (20 << 20, 0), "none").await;
    assert!(wix.starts_with("HTTP/1.1 404"), "{wix}");
    let limit_of = |body: Value| body["error"]["details"]["limitBytes"].as_u64();
    let session = server.register("limits@example.com").await;
    let created: Value = server
        .post_json("/api/stores", json!({"platform": "local", "name": "Shop"}))
        .header("authorization", bearer(&session))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let store = created["id"].as_str().unwrap();
    // A JSON body and a body read by the framework's own extractor state the same limit,
    // whether the length is announced or the body simply runs long.
    for request_line in [
        format!("PATCH /api/stores/{store}"),
        format!("POST /api/stores/{store}/sync"),
    ] {
        let answer =
            announce_body(&server, &request_line, (1 << 20, 8192), &bearer(&session)).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{request_line}: {answer}"
        );
        assert!(answer.contains("\"limitBytes\":4096"), "{answer}");
        assert!(answer.contains("4096-byte"), "{answer}");
    }
    let (method, path) = (Method::PATCH, format!("/api/stores/{store}"));
    let response = server
        .request(method.clone(), &path)
        .header("authorization", bearer(&session))
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "y".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413, "{method} {path}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(limit_of(body.clone()), Some(4096), "{body}");
    // A CSV import keeps its own, larger limit.
    let csv = format!(
        "Type,Name,Regular price\nsimple,{},9.99\n",
        "A".repeat(8000)
    );
    let imported = server
        .request(Method::POST, &format!("/api/stores/{store}/import"))
        .header("authorization", bearer(&session))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_ne!(
        imported.status(),
        413,
        "the import limit applies to imports"
    );
}

async fn token_answers_are_never_cached_and_the_dashboard_is_locked_down(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let register = server
        .post_json(
            "/api/v1/auth/register",
            json!({"email": "cache@example.com", "password": "correct horse battery"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(register.headers()["cache-control"], "no-store");
    let session: Value = register.json().await.unwrap();
    let login = server
        .post_json(
            "/api/v1/auth/login",
            json!({"email": "cache@example.com", "password": "correct horse battery"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()["cache-control"], "no-store");
    let refresh = server
        .post_json(
            "/api/v1/auth/refresh",
            json!({"refreshToken": session["refreshToken"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.headers()["cache-control"], "no-store");
    let me = server
        .get("/api/me")
        .header("authorization", bearer(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(me.headers()["cache-control"], "no-store");
    let refused = server
        .post_json("/api/v1/auth/demo-login", json!({"token": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["cache-control"], "no-store");

    let page = server.get("/").send().await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'self' https://manage.wix.com",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(
        !page.headers().contains_key("strict-transport-security"),
        "no HSTS on a development server"
    );
}

async fn production_over_https_sends_hsts(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |settings| {
        settings.environment = server::config::Environment::Production;
        settings.public_url = Some("https://optimizer.example.com".into());
        settings.wix = None;
    })
    .await
    else {
        return;
    };
    for path in ["/", "/health", "/api/openapi.json"] {
        let response = server.get(path).send().await.unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000; includeSubDomains",
            "{path}"
        );
    }
}

/// Sends a request head announcing a body of `length` bytes, then the first `sent` bytes of
/// it, and returns what the server answers: a route that refuses before reading answers
/// at once, one that reads refuses as soon as the body passes its limit.
async fn announce_body(
    server: &TestServer,
    request_line: &str,
    (length, sent): (usize, usize),
    authorization: &str,
) -> String {
    let mut stream = TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "{request_line} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close while this is still being written.
    stream.write_all(&vec![b' '; sent]).await.ok();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answered without the body")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Opens `count` connections that each send half a request head and wait.
async fn half_open(server: &TestServer, count: usize) -> Vec<TcpStream> {
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Wait: ")
            .await
            .unwrap();
        connections.push(stream);
    }
    connections
}

async fn half_open_connections_are_closed_and_health_still_answers(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |settings| {
        settings.header_read_timeout_secs = 3;
    })
    .await
    else {
        return;
    };
    // The test holds its own ends of the connections as well.
    rlimit::increase_nofile_limit(u64::MAX).ok();
    let mut connections = half_open(&server, 2000).await;
    let silent = TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    connections.push(silent);

    let health = tokio::time::timeout(Duration::from_secs(1), server.get("/health").send())
        .await
        .expect("/health answered within a second under 2,000 half-open connections")
        .unwrap();
    assert_eq!(health.status(), 200);

    // Every one of them is closed by the server once the header-read timeout passes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (index, mut connection) in connections.into_iter().enumerate() {
        let mut buffer = Vec::new();
        let read = tokio::time::timeout_at(deadline, connection.read_to_end(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("connection {index} is still open"));
        // Closed: an end of stream, a reset, or hyper's 408 before it closes.
        if let Ok(bytes) = read {
            let answer = String::from_utf8_lossy(&buffer[..bytes]);
            assert!(
                bytes == 0 || answer.starts_with("HTTP/1.1 408"),
                "connection {index} answered {answer}"
            );
        }
    }
}

async fn a_request_that_trickles_its_body_times_out(engine: Engine) {
    let Some(server) = TestServer::start_with(engine, false, |settings| {
        settings.request_timeout_secs = 1;
    })
    .await
    else {
        return;
    };
    let mut stream = TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: slow\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream.read(&mut buffer).await.unwrap_or(0);
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..read]);
            if answer.windows(4).any(|window| window == b"\r\n\r\n") && answer.ends_with(b"}}") {
                break;
            }
        }
    })
    .await
    .expect("the server answered the stalled request");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
}

async fn the_event_stream_ends_with_its_session(engine: Engine) {
    let Some(server) = TestServer::start(engine).await else {
        return;
    };
    let session = server.register("stream@example.com").await;
    let mut stream = server
        .get("/api/jobs/events")
        .header("authorization", bearer(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let logout = server
        .post_json(
            "/api/v1/auth/logout",
            json!({"refreshToken": session["refreshToken"]}),
        )
        .header("authorization", bearer(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    // The stream notices within its check interval and ends.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream outlived its session");
}
