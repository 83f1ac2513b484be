//! No secret reaches the logs. The real `optimizer serve` (with its worker) runs at debug
//! level with JSON logs, against the fake WooCommerce, Stripe and OpenAI, while a merchant
//! registers, logs in, refreshes and logs out, connects a WooCommerce store by key, runs a
//! job through the OpenAI provider, buys a plan through Stripe Checkout (signed webhooks),
//! receives a WooCommerce webhook, and opens the app from Wix (signed instance and
//! webhook). Then every secret involved, and its base64, is looked for in stdout and
//! stderr.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use testkit::openai::FakeOpenAi;
use testkit::stripe::FakeStripe;
use testkit::wix::{sign_instance, webhook_body, InstanceClaims, WEBHOOK_PUBLIC_KEY};
use testkit::woocommerce::FakeWooCommerce;

const BIN: &str = env!("CARGO_BIN_EXE_optimizer");

const PASSWORD: &str = "Plum-Orchard-Lantern-4711";
const NEW_PASSWORD_ATTEMPT: &str = "Wrong-Guess-Quartz-0815";
const ENCRYPTION_KEY: &str = "Yq3x9bT1kR7vW2mN5pL8sD4fG6hJ0cZ1aE3rU7iO9yQ=";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_sturdyLogsTest3f9a1c7e5b2d8046";
const WIX_APP_ID: &str = "5c1e0d7a-sturdy-logs-app";
const WIX_APP_SECRET: &str = "wixsecret-7d3f9b21-4c8e-4a6f-b0d2-e5a1c3f7b9d4";

/// The running binary and everything it printed so far.
struct Optimizer {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    base: String,
}

impl Optimizer {
    fn start(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Optimizer {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--port", "0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OPTIMIZER_DATA_DIR", data_dir)
            .env("OPTIMIZER_LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                "debug,cli=trace,server=trace,worker=trace,storage=trace,connectors=trace,\
                 billing=trace,ai=trace,secrets=trace,domain=trace",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start optimizer");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (listening_tx, listening_rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("Ultimate Optimizer listening on ") {
                    listening_tx.send(base.to_owned()).ok();
                }
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read) = err.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        let base = match listening_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => panic!(
                "optimizer did not start: {}",
                stderr.lock().unwrap().as_str()
            ),
        };
        Optimizer {
            child,
            stdout,
            stderr,
            base,
        }
    }

    /// Stops the process with SIGTERM and returns everything it printed.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "optimizer did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the reader threads drain the pipes.
        std::thread::sleep(Duration::from_millis(300));
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        format!("{out}\n{err}")
    }
}

impl Drop for Optimizer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn product(n: usize) -> domain::SourceProduct {
    domain::SourceProduct {
        external_id: format!("{n}"),
        title: format!("waxed canvas tote {n}"),
        description_html: format!("<p>A waxed canvas tote, model {n}.</p>"),
        short_description: String::new(),
        seo_title: None,
        seo_description: None,
        info_sections: Vec::new(),
        sku: Some(format!("TOTE-{n}")),
        gtin: None,
        mpn: None,
        brand: Some("Harbor".into()),
        price: Some(domain::Money { minor: 4900 }),
        sale_price: None,
        currency: "USD".into(),
        availability: domain::Availability::InStock,
        stock: Some(5),
        categories: vec!["Bags".into()],
        tags: Vec::new(),
        images: Vec::new(),
        link: None,
        attributes: Vec::new(),
        variants: Vec::new(),
        published: true,
    }
}

/// Every form a secret could take in a log line: as is, JSON-escaped, base64 (standard and
/// URL-safe, with and without padding).
fn forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_owned()];
    let escaped = serde_json::to_string(secret).unwrap();
    forms.push(escaped.trim_matches('"').to_owned());
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.sort();
    forms.dedup();
    forms
}

#[tokio::test]
async fn no_secret_of_any_flow_reaches_the_logs_on_sqlite() {
    every_flow_keeps_its_secrets_out_of_the_logs(None).await;
}

#[tokio::test]
async fn no_secret_of_any_flow_reaches_the_logs_on_postgres() {
    let Some(db) = testkit::TestDatabase::postgres().await else {
        return;
    };
    every_flow_keeps_its_secrets_out_of_the_logs(Some(db.url())).await;
}

async fn every_flow_keeps_its_secrets_out_of_the_logs(database_url: Option<&str>) {
    let data = tempfile::tempdir().unwrap();
    let openai = FakeOpenAi::start().await;
    let stripe = FakeStripe::start().await;
    let woo = FakeWooCommerce::start().await;
    woo.seed(
        &[product(1), product(2)],
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    let openai_key = openai.api_key();
    let stripe_key = stripe.secret_key().to_owned();

    let mut env = vec![
        ("OPTIMIZER_ENCRYPTION_KEY", ENCRYPTION_KEY),
        ("OPTIMIZER_AI_PROVIDER", "openai"),
        ("OPENAI_API_KEY", &openai_key),
        ("OPENAI_BASE_URL", openai.base_url()),
        ("STRIPE_SECRET_KEY", &stripe_key),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET),
        (
            "STRIPE_PRICES",
            "starter=price_starter,pro=price_pro,scale=price_scale",
        ),
        ("STRIPE_API_BASE_URL", stripe.base_url()),
        ("OPTIMIZER_WOOCOMMERCE_ALLOW_HTTP", "true"),
        ("WIX_APP_ID", WIX_APP_ID),
        ("WIX_APP_SECRET", WIX_APP_SECRET),
        ("WIX_PUBLIC_KEY", WEBHOOK_PUBLIC_KEY),
        ("OPTIMIZER_JOB_RETRY_BASE_MS", "200"),
    ];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url));
    }
    let optimizer = Optimizer::start(data.path(), &env);
    let client = Client {
        http: reqwest::Client::new(),
        base: optimizer.base.clone(),
    };
    stripe.set_webhook_endpoint(
        &format!("{}/api/webhooks/stripe", optimizer.base),
        STRIPE_WEBHOOK_SECRET,
    );
    let mut secrets: Vec<(&str, String)> = vec![
        ("password", PASSWORD.to_owned()),
        ("wrong password", NEW_PASSWORD_ATTEMPT.to_owned()),
        ("encryption key", ENCRYPTION_KEY.to_owned()),
        ("OpenAI key", openai_key.clone()),
        ("Stripe secret key", stripe_key.clone()),
        ("Stripe webhook secret", STRIPE_WEBHOOK_SECRET.to_owned()),
        ("Wix app secret", WIX_APP_SECRET.to_owned()),
        ("WooCommerce consumer key", woo.consumer_key.clone()),
        ("WooCommerce consumer secret", woo.consumer_secret.clone()),
    ];

    // Register, log in (once with a wrong password), refresh, log out.
    let email = "owner@harbor-bags.example";
    let (status, registered) = client
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": PASSWORD, "accountName": "Harbor Bags"})),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let (status, _) = client
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": NEW_PASSWORD_ATTEMPT})),
        )
        .await;
    assert_eq!(status, 401);
    let (status, session) = client
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    let (status, refreshed) = client
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refreshToken": session["refreshToken"]})),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    for (name, value) in [
        ("registration access token", &registered["accessToken"]),
        ("registration refresh token", &registered["refreshToken"]),
        ("login access token", &session["accessToken"]),
        ("login refresh token", &session["refreshToken"]),
        ("refreshed access token", &refreshed["accessToken"]),
        ("refreshed refresh token", &refreshed["refreshToken"]),
    ] {
        secrets.push((name, value.as_str().unwrap().to_owned()));
    }
    let (status, _) = client
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            registered["accessToken"].as_str(),
            Some(json!({"refreshToken": registered["refreshToken"]})),
        )
        .await;
    assert!(status == 204 || status == 200, "logout: {status}");
    let token = refreshed["accessToken"].as_str().unwrap().to_owned();
    let bearer = Some(token.as_str());

    // Connect a WooCommerce store by key; the first sync registers webhooks.
    let (status, store) = client
        .call(
            Method::POST,
            "/api/stores",
            bearer,
            Some(json!({
                "platform": "woocommerce",
                "url": woo.base_url,
                "consumerKey": woo.consumer_key,
                "consumerSecret": woo.consumer_secret,
            })),
        )
        .await;
    assert_eq!(status, 201, "{store}");
    let store_id = store["id"].as_str().unwrap().to_owned();
    let wait_for_syncs = || async {
        for _ in 0..300 {
            let (_, sync) = client
                .call(
                    Method::GET,
                    &format!("/api/stores/{store_id}/sync"),
                    bearer,
                    None,
                )
                .await;
            if sync["active"].as_array().is_some_and(Vec::is_empty) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the store's syncs did not finish");
    };
    wait_for_syncs().await;
    let webhook_secrets = woo.webhook_secrets();
    assert!(!webhook_secrets.is_empty(), "the sync registered webhooks");
    for secret in webhook_secrets {
        secrets.push(("WooCommerce webhook secret", secret));
    }

    // A signed WooCommerce webhook: the merchant edits a product in wp-admin.
    let product_id = woo.product_ids()[0];
    let deliveries = woo
        .update_product_as_merchant(product_id, json!({"name": "Waxed tote, edited"}))
        .await;
    assert!(deliveries.iter().all(|d| d.success), "{deliveries:?}");
    wait_for_syncs().await;

    // A job through the OpenAI provider, followed on its event stream (token in the query).
    let (_, products) = client
        .call(
            Method::GET,
            &format!("/api/products?storeId={store_id}"),
            bearer,
            None,
        )
        .await;
    let ids: Vec<Value> = products["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert!(!ids.is_empty(), "{products}");
    let (status, job) = client
        .call(
            Method::POST,
            "/api/jobs",
            bearer,
            Some(json!({"sourceScope": "products", "sourceIds": ids, "attributes": ["title"]})),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let mut finished = Value::Null;
    for _ in 0..300 {
        let (_, current) = client
            .call(Method::GET, &format!("/api/jobs/{job_id}"), bearer, None)
            .await;
        if ["done", "failed", "canceled"].contains(&current["status"].as_str().unwrap_or("")) {
            finished = current;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(finished["status"], "done", "{finished}");
    assert!(
        !openai.requests().is_empty(),
        "the OpenAI provider was used"
    );
    let events = client
        .http
        .get(format!(
            "{}/api/jobs/events?jobId={job_id}&access_token={token}",
            optimizer.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    drop(events);

    // Stripe Checkout, completed: signed webhooks change the plan.
    let (status, checkout) = client
        .call(
            Method::POST,
            "/api/billing/checkout",
            bearer,
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(status, 200, "{checkout}");
    let session_id = checkout["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let deliveries = stripe.complete_checkout(&session_id).await;
    assert!(!deliveries.is_empty());
    assert!(deliveries.iter().all(|d| d.succeeded()), "{deliveries:?}");

    // The app opened from Wix (a signed instance), and a signed Wix webhook.
    let instance = sign_instance(
        &InstanceClaims::new("0f2c8a4e-sturdy-instance", WIX_APP_ID),
        WIX_APP_SECRET,
    );
    let me = client
        .http
        .get(format!("{}/api/me", optimizer.base))
        .header("x-wix-instance", &instance)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let wix_webhook = client
        .http
        .post(format!("{}/api/webhooks/wix", optimizer.base))
        .header("content-type", "text/plain")
        .body(webhook_body(
            "0f2c8a4e-sturdy-instance",
            "PaidPlanPurchased",
            &json!({"vendorProductId": "pro", "cycle": "MONTHLY"}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wix_webhook.status(), 200);
    // A refused instance is logged as refused, not shown.
    let forged = format!("{instance}x");
    let refused = client
        .http
        .get(format!("{}/api/me", optimizer.base))
        .header("x-wix-instance", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let logs = optimizer.stop();
    assert!(
        logs.lines()
            .filter(|line| line.contains("\"level\":\"DEBUG\""))
            .count()
            > 10,
        "the logs were written at debug level: {}",
        &logs[..logs.len().min(2000)]
    );
    let mut leaks = Vec::new();
    for (name, secret) in &secrets {
        for form in forms(secret) {
            if let Some(line) = logs.lines().find(|line| line.contains(&form)) {
                leaks.push(format!("{name} ({form}) in: {line}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
}
