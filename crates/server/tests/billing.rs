//! Billing over HTTP on both backends: the Wix story (install → purchase → upgrade →
//! cancel → period end → free) through signed webhooks with the credits checked at every
//! step, repeated and late deliveries, refused tokens, reconciliation from the fake Wix
//! instance API, the monthly reset, and the usage history; and the Stores product events
//! the same Wix endpoint receives.

mod common;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use common::{Engine, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use testkit::wix::{
    sign_instance, unsigned_webhook_token, webhook_body, webhook_envelope, webhook_token,
    webhook_token_over_raw_payload, InstanceClaims, WebhookKey, WEBHOOK_PUBLIC_KEY,
};
use testkit::wix_api::{CatalogVersion, FakeWix, PaidPlan};

api_tests!(
    the_wix_plan_story_keeps_credits_right_at_every_step,
    refused_webhooks_change_nothing,
    reconciliation_repairs_a_lost_webhook,
    recorded_but_unprocessed_deliveries_are_swept,
    credits_reset_monthly_and_the_history_pages,
    the_stripe_plan_story_keeps_credits_right_at_every_step,
    stripe_refusals_and_reconciliation,
    wix_product_events_sync_that_product,
);

/// The vendor product id the operator mapped to `pro` (`OPTIMIZER_PLAN_ALIASES`).
const PRO_VENDOR_ID: &str = "e8f429d5-0a6a-468f-8044-87f519a53202";

struct Shop {
    server: TestServer,
    wix: FakeWix,
}

async fn shop(engine: Engine) -> Option<Shop> {
    let wix = FakeWix::start().await;
    let (app_id, app_secret, api) = (
        wix.app_id.clone(),
        wix.app_secret.clone(),
        wix.base_url.clone(),
    );
    let server = TestServer::start_with(engine, false, move |s| {
        s.wix = Some(server::config::WixSettings {
            app_id,
            app_secret: Some(secrets::Secret::new(app_secret)),
            public_key: Some(secrets::Secret::new(WEBHOOK_PUBLIC_KEY.to_owned())),
            api_base_url: api,
        });
        s.plan_aliases = [(PRO_VENDOR_ID.to_owned(), "pro".to_owned())].into();
    })
    .await?;
    Some(Shop { server, wix })
}

fn iso(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Shop {
    fn instance(&self, instance_id: &str) -> String {
        sign_instance(
            &InstanceClaims::new(instance_id, &self.wix.app_id),
            &self.wix.app_secret,
        )
    }

    async fn deliver(&self, body: String) -> (u16, Value) {
        let response = self
            .server
            .request(Method::POST, "/api/webhooks/wix")
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Delivers a correctly signed event and returns the acknowledged result.
    async fn event(&self, instance_id: &str, event_type: &str, payload: Value) -> String {
        let (status, body) = self
            .deliver(webhook_body(instance_id, event_type, &payload))
            .await;
        assert_eq!(status, 200, "{event_type}: {body}");
        body["result"].as_str().unwrap().to_owned()
    }

    async fn billing(&self, instance_id: &str) -> Value {
        let instance = self.instance(instance_id);
        self.server
            .get_json("/api/billing", ("x-wix-instance", instance.as_str()))
            .await
    }

    async fn call(
        &self,
        instance_id: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .server
            .request(method, path)
            .header("x-wix-instance", self.instance(instance_id));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Spends `count` credits: a title job over `count` synced products.
    async fn spend(&self, instance_id: &str, count: usize) {
        let stores = self
            .call(instance_id, Method::GET, "/api/stores", None)
            .await
            .1;
        let store = stores["stores"][0]["id"].as_str().unwrap().to_owned();
        let (status, _) = self
            .call(
                instance_id,
                Method::POST,
                &format!("/api/stores/{store}/sync"),
                None,
            )
            .await;
        assert_eq!(status, 202);
        let instance = self.instance(instance_id);
        self.server
            .wait_for_syncs(&store, ("x-wix-instance", instance.as_str()))
            .await;
        let products = self
            .call(
                instance_id,
                Method::GET,
                &format!("/api/products?storeId={store}&limit=100"),
                None,
            )
            .await
            .1;
        let ids: Vec<&Value> = products["items"]
            .as_array()
            .unwrap()
            .iter()
            .take(count)
            .map(|p| &p["id"])
            .collect();
        assert_eq!(ids.len(), count);
        let (status, job) = self
            .call(
                instance_id,
                Method::POST,
                "/api/jobs",
                Some(json!({"sourceScope": "products", "sourceIds": ids, "attributes": ["title"]})),
            )
            .await;
        assert_eq!(status, 201, "{job}");
    }

    fn add_site(&self, instance_id: &str) {
        self.wix
            .add_instance(instance_id, CatalogVersion::V3Catalog);
        let products =
            connectors::csv::parse_catalog(&testkit::fixtures::woocommerce_export(), "USD")
                .unwrap()
                .products;
        self.wix.seed(
            instance_id,
            &products[..10],
            Utc::now() - Duration::hours(1),
        );
    }

    async fn plan_rows(&self, instance_id: &str) -> usize {
        let account = self.account_id(instance_id).await;
        self.server
            .state
            .storage
            .list_ledger(account, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|entry| entry.reason == domain::LedgerReason::PlanChange)
            .count()
    }

    async fn account_id(&self, instance_id: &str) -> uuid::Uuid {
        self.server
            .state
            .storage
            .provision_wix_instance(instance_id, Utc::now())
            .await
            .unwrap()
            .account
            .id
    }
}

fn credits(billing: &Value) -> (i64, i64, i64) {
    let c = &billing["credits"];
    (
        c["total"].as_i64().unwrap(),
        c["used"].as_i64().unwrap(),
        c["remaining"].as_i64().unwrap(),
    )
}

async fn the_wix_plan_story_keeps_credits_right_at_every_step(engine: Engine) {
    let Some(shop) = shop(engine).await else {
        return;
    };
    let site = "7a1f0c2e-1b2d-4e3f-8a9b-0c1d2e3f4a5b";
    shop.add_site(site);

    // Installed: a free account with the free plan's credits and the Wix upgrade link.
    assert_eq!(
        shop.event(site, "AppInstalled", json!({"appId": shop.wix.app_id}))
            .await,
        "installed"
    );
    let billing = shop.billing(site).await;
    assert_eq!(billing["plan"]["id"], "free");
    assert_eq!(billing["billingSource"], "wix");
    assert_eq!(credits(&billing), (200, 0, 200));
    assert_eq!(billing["upgrade"]["kind"], "wix");
    assert_eq!(
        billing["upgrade"]["url"],
        format!(
            "https://www.wix.com/apps/upgrade/{}?appInstanceId={site}",
            shop.wix.app_id
        )
    );
    shop.spend(site, 5).await;
    assert_eq!(credits(&shop.billing(site).await), (200, 5, 195));

    // Purchased Starter (named as Wix plans often are): the month's use is kept.
    let t0 = Utc::now() - Duration::hours(3);
    let purchased_at = t0 + Duration::minutes(10);
    let expires = purchased_at + Duration::days(30);
    let purchase = json!({
        "operationTimeStamp": iso(purchased_at),
        "vendorProductId": "Starter-Monthly",
        "cycle": "MONTHLY",
        "expiresOn": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
    });
    assert_eq!(
        shop.event(site, "PaidPlanPurchased", purchase.clone())
            .await,
        "applied"
    );
    let billing = shop.billing(site).await;
    assert_eq!(billing["plan"]["id"], "starter");
    assert_eq!(credits(&billing), (1_000, 5, 995));
    assert_eq!(billing["cancelAtPeriodEnd"], false);

    // The same purchase delivered three more times, at once: no second effect.
    let (a, b, c) = tokio::join!(
        shop.deliver(webhook_body(site, "PaidPlanPurchased", &purchase)),
        shop.deliver(webhook_body(site, "PaidPlanPurchased", &purchase)),
        shop.deliver(webhook_body(site, "PaidPlanPurchased", &purchase)),
    );
    for (status, body) in [a, b, c] {
        assert_eq!(status, 200);
        assert_eq!(body["result"], "duplicate");
    }
    assert_eq!(shop.plan_rows(site).await, 1);
    assert_eq!(credits(&shop.billing(site).await), (1_000, 5, 995));

    // Upgraded to Pro (the operator's vendor product id).
    let changed = json!({
        "operationTimeStamp": iso(t0 + Duration::minutes(20)),
        "vendorProductId": PRO_VENDOR_ID,
        "cycle": "MONTHLY",
        "previousVendorProductId": "Starter-Monthly",
        "previousCycle": "MONTHLY",
    });
    // Delivered three times at once from the start: one applies it.
    let (a, b, c) = tokio::join!(
        shop.deliver(webhook_body(site, "PaidPlanChanged", &changed)),
        shop.deliver(webhook_body(site, "PaidPlanChanged", &changed)),
        shop.deliver(webhook_body(site, "PaidPlanChanged", &changed)),
    );
    let mut results: Vec<String> = [a, b, c]
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, 200, "{body}");
            body["result"].as_str().unwrap().to_owned()
        })
        .collect();
    results.sort();
    assert_eq!(results, ["applied", "duplicate", "duplicate"]);
    assert_eq!(shop.plan_rows(site).await, 2);
    let billing = shop.billing(site).await;
    assert_eq!(billing["plan"]["id"], "pro");
    assert_eq!(credits(&billing), (5_000, 5, 4_995));

    // A purchase from before the upgrade arrives late (a retried delivery): ignored.
    let late = json!({
        "operationTimeStamp": iso(t0),
        "vendorProductId": "starter",
        "cycle": "MONTHLY",
    });
    assert_eq!(shop.event(site, "PaidPlanPurchased", late).await, "stale");
    assert_eq!(shop.billing(site).await["plan"]["id"], "pro");

    // Auto-renewal cancelled: Pro stays until the period the purchase gave ends.
    let cancelled = json!({
        "operationTimeStamp": iso(t0 + Duration::minutes(30)),
        "vendorProductId": PRO_VENDOR_ID,
        "cycle": "MONTHLY",
        "cancelReason": "USER_CANCEL",
        "userReason": "Cancel reason: No reason chosen",
        "subscriptionCancellationType": "AT_END_OF_PERIOD",
    });
    assert_eq!(
        shop.event(site, "PaidPlanAutoRenewalCancelled", cancelled)
            .await,
        "applied"
    );
    let billing = shop.billing(site).await;
    assert_eq!(billing["plan"]["id"], "pro");
    assert_eq!(billing["cancelAtPeriodEnd"], true);
    let period_end: DateTime<Utc> = billing["periodEnd"].as_str().unwrap().parse().unwrap();
    assert_eq!(period_end.timestamp(), expires.timestamp());
    // The scheduler's billing calendar before and after the period's end.
    let storage = shop.server.state.storage.clone();
    worker::scheduler::run_billing_calendar(storage.as_ref(), expires - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(shop.billing(site).await["plan"]["id"], "pro");
    worker::scheduler::run_billing_calendar(storage.as_ref(), expires + Duration::minutes(1))
        .await
        .unwrap();
    let billing = shop.billing(site).await;
    assert_eq!(billing["plan"]["id"], "free");
    assert_eq!(billing["cancelAtPeriodEnd"], false);
    assert_eq!(billing["periodEnd"], Value::Null);
    let (total, used, _) = credits(&billing);
    assert_eq!(total, 200);
    assert!(
        used == 5 || used == 0,
        "kept, or reset if the period end passed a reset date"
    );

    // A plan nobody knows is the free plan, never a crash; unknown events are ignored.
    let unknown_plan = json!({"operationTimeStamp": iso(Utc::now()), "vendorProductId": "platinum-ultra", "cycle": "MONTHLY"});
    assert_eq!(
        shop.event(site, "PlanReactivated", unknown_plan).await,
        "applied"
    );
    assert_eq!(shop.billing(site).await["plan"]["id"], "free");
    assert_eq!(
        shop.event(site, "SomethingWixAddsLater", json!({"x": 1}))
            .await,
        "ignored"
    );

    // Removed, then installed again.
    let account = shop.account_id(site).await;
    assert_eq!(
        shop.event(site, "AppRemoved", json!({"appId": shop.wix.app_id}))
            .await,
        "deactivated"
    );
    let removed = storage.get_account(account).await.unwrap();
    assert_eq!(removed.status, domain::AccountStatus::Inactive);
    // The reinstall is signed later than the first install (Wix dedupes by `iat` here).
    let iat = Utc::now().timestamp() + 5;
    let reinstall = webhook_token(
        &json!({
            "data": webhook_envelope(site, "AppInstalled", &json!({"appId": shop.wix.app_id})),
            "iat": iat,
            "exp": iat + 300_000,
        }),
        WebhookKey::App,
    );
    let (status, answer) = shop.deliver(reinstall).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("reactivated"))
    );
    assert_eq!(
        storage.get_account(account).await.unwrap().status,
        domain::AccountStatus::Active
    );

    // A purchase for an instance never seen creates its account, once.
    let newcomer = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
    let purchase = json!({"operationTimeStamp": iso(Utc::now()), "vendorProductId": "scale-yearly", "cycle": "YEARLY"});
    assert_eq!(
        shop.event(newcomer, "PaidPlanPurchased", purchase).await,
        "applied"
    );
    let billing = shop.billing(newcomer).await;
    assert_eq!(billing["plan"]["id"], "scale");
    assert_eq!(credits(&billing), (25_000, 0, 25_000));
    // The first shop is untouched by the other instance's events.
    assert_eq!(shop.billing(site).await["plan"]["id"], "free");
}

async fn refused_webhooks_change_nothing(engine: Engine) {
    let Some(shop) = shop(engine).await else {
        return;
    };
    let site = "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b";
    shop.add_site(site);
    shop.event(site, "AppInstalled", json!({"appId": shop.wix.app_id}))
        .await;
    let before = shop.billing(site).await;
    let recorded = shop.server.count("webhook_events").await;
    let purchase = json!({"operationTimeStamp": iso(Utc::now()), "vendorProductId": "scale", "cycle": "MONTHLY"});
    let claims = |exp: i64| {
        json!({
            "data": webhook_envelope(site, "PaidPlanPurchased", &purchase),
            "iat": Utc::now().timestamp(),
            "exp": exp,
        })
    };
    let far = Utc::now().timestamp() + 3600;
    let cases: Vec<(String, u16, &str)> = vec![
        (
            webhook_token(&claims(far), WebhookKey::Other),
            401,
            "invalid_signature",
        ),
        (
            unsigned_webhook_token(&claims(far)),
            401,
            "invalid_signature",
        ),
        (
            webhook_token(&claims(Utc::now().timestamp() - 60), WebhookKey::App),
            401,
            "expired_token",
        ),
        (
            webhook_token_over_raw_payload("not json at all"),
            400,
            "invalid_payload",
        ),
        (
            webhook_token(&json!({"data": "{\"instanceId\": 1"}), WebhookKey::App),
            400,
            "invalid_payload",
        ),
        ("".to_owned(), 401, "invalid_signature"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = shop.deliver(body).await;
        assert_eq!(got, status, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    let after = shop.billing(site).await;
    assert_eq!(after["plan"], before["plan"]);
    assert_eq!(after["credits"], before["credits"]);
    assert_eq!(shop.plan_rows(site).await, 0);
    assert_eq!(
        shop.server.count("webhook_events").await,
        recorded,
        "refused deliveries are not recorded"
    );

    // Without the app's public key, deliveries are refused with 404, not a server error
    // anyone could provoke (Wix retries any answer but 200).
    let Some(unconfigured) = TestServer::start(engine).await else {
        return;
    };
    let response = unconfigured
        .request(Method::POST, "/api/webhooks/wix")
        .body(webhook_body(site, "PaidPlanPurchased", &purchase))
        .send()
        .await
        .unwrap();
    assert_eq!(common::error_code(response, 404).await, "not_found");
}

async fn reconciliation_repairs_a_lost_webhook(engine: Engine) {
    let Some(shop) = shop(engine).await else {
        return;
    };
    let site = "2f3e4d5c-6b7a-4899-8a0b-2c3d4e5f6a7b";
    shop.add_site(site);
    shop.event(site, "AppInstalled", json!({"appId": shop.wix.app_id}))
        .await;
    // The merchant bought Scale yearly; the webhook never arrived.
    let renews = Utc::now() + Duration::days(365);
    shop.wix.set_plan(
        site,
        Some(PaidPlan {
            package_name: "scale-yearly".into(),
            billing_cycle: "YEARLY".into(),
            auto_renewing: true,
            time_stamp: Utc::now() - Duration::minutes(5),
            expiration_date: Some(renews),
            invoice_id: "inv-1".into(),
        }),
    );
    assert_eq!(shop.billing(site).await["plan"]["id"], "free");
    let (status, synced) = shop
        .call(site, Method::POST, "/api/billing/sync-credits", None)
        .await;
    assert_eq!(status, 200, "{synced}");
    assert_eq!(synced["plan"]["id"], "scale");
    assert_eq!(credits(&synced), (25_000, 0, 25_000));
    assert_eq!(
        synced["periodEnd"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
            .timestamp(),
        renews.timestamp()
    );
    // Syncing again finds nothing to correct and writes nothing.
    let rows = shop.plan_rows(site).await;
    shop.call(site, Method::POST, "/api/billing/sync-credits", None)
        .await;
    assert_eq!(shop.plan_rows(site).await, rows);
    // A delivery older than what the sync read does not undo it.
    let stale = json!({"operationTimeStamp": iso(Utc::now() - Duration::minutes(1)), "vendorProductId": "starter", "cycle": "MONTHLY"});
    assert_eq!(shop.event(site, "PaidPlanPurchased", stale).await, "stale");
    // Auto-renewal turned off in Wix, then the plan lapses: both are read back.
    shop.wix.set_plan(
        site,
        Some(PaidPlan {
            package_name: "scale-yearly".into(),
            billing_cycle: "YEARLY".into(),
            auto_renewing: false,
            time_stamp: Utc::now() - Duration::minutes(5),
            expiration_date: Some(renews),
            invoice_id: "inv-1".into(),
        }),
    );
    let synced = shop
        .call(site, Method::POST, "/api/billing/sync-credits", None)
        .await
        .1;
    assert_eq!(synced["cancelAtPeriodEnd"], true);
    assert_eq!(synced["plan"]["id"], "scale");
    shop.wix.set_plan(site, None);
    let synced = shop
        .call(site, Method::POST, "/api/billing/sync-credits", None)
        .await
        .1;
    assert_eq!(synced["plan"]["id"], "free");
    assert_eq!(credits(&synced), (200, 0, 200));
    // When Wix cannot be read, the merchant gets a clear answer and nothing changes.
    shop.wix.remove_app(site);
    let (status, answer) = shop
        .call(site, Method::POST, "/api/billing/sync-credits", None)
        .await;
    assert!(status == 502 || status == 401, "{status} {answer}");
    assert!(answer["error"]["code"].is_string());
    // Standalone accounts have nothing to sync: answered as they are.
    let session = shop.server.register("standalone-billing@example.com").await;
    let response = shop
        .server
        .request(Method::POST, "/api/billing/sync-credits")
        .header("authorization", common::bearer(&session))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["billingSource"], "none");
    assert_eq!(body["upgrade"]["kind"], "none");
}

async fn recorded_but_unprocessed_deliveries_are_swept(engine: Engine) {
    let Some(shop) = shop(engine).await else {
        return;
    };
    let site = "3a4b5c6d-7e8f-4a9b-8c0d-3e4f5a6b7c8d";
    shop.add_site(site);
    let verifier = billing::WixWebhookVerifier::new(WEBHOOK_PUBLIC_KEY).unwrap();
    let body = webhook_body(
        site,
        "PaidPlanPurchased",
        &json!({"operationTimeStamp": iso(Utc::now()), "vendorProductId": "pro", "cycle": "MONTHLY"}),
    );
    let event = verifier.verify(&body, Utc::now()).unwrap();
    // The process stopped right after recording the delivery.
    let recorded_at = Utc::now() - Duration::minutes(5);
    let billing = &shop.server.state.billing;
    assert_eq!(
        billing
            .record_wix_delivery(&event, recorded_at)
            .await
            .unwrap(),
        billing::Delivery::New
    );
    // Wix's retry of it is a duplicate: the sweep, not the retry, finishes it.
    let (status, answer) = shop.deliver(body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(
        billing
            .process_wix_backlog(Utc::now(), Duration::minutes(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(shop.billing(site).await["plan"]["id"], "pro");
    assert_eq!(
        billing
            .process_wix_backlog(Utc::now(), Duration::minutes(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(shop.plan_rows(site).await, 1);
}

async fn credits_reset_monthly_and_the_history_pages(engine: Engine) {
    let Some(shop) = shop(engine).await else {
        return;
    };
    let site = "4b5c6d7e-8f9a-4b0c-9d1e-4f5a6b7c8d9e";
    shop.add_site(site);
    shop.event(site, "AppInstalled", json!({"appId": shop.wix.app_id}))
        .await;
    shop.spend(site, 4).await;
    let billing = shop.billing(site).await;
    assert_eq!(credits(&billing), (200, 4, 196));
    let resets_on: chrono::NaiveDate = billing["credits"]["resetsOn"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let reset_day = resets_on.and_hms_opt(0, 5, 0).unwrap().and_utc();
    let storage = shop.server.state.storage.clone();
    for _ in 0..2 {
        worker::scheduler::run_billing_calendar(storage.as_ref(), reset_day)
            .await
            .unwrap();
    }
    let billing = shop.billing(site).await;
    assert_eq!(credits(&billing), (200, 0, 200));
    assert_eq!(
        billing["credits"]["resetsOn"],
        domain::next_reset_date(resets_on).to_string()
    );
    // History: the reset, the job's reservation, the grant at install; newest first.
    let reasons: Vec<&str> = billing["history"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["monthly_grant", "reserve", "monthly_grant"]);
    assert_eq!(billing["history"]["items"][0]["delta"], 4);
    let mut seen = Vec::new();
    let mut path = "/api/billing/history?limit=2".to_owned();
    loop {
        let page = shop.call(site, Method::GET, &path, None).await.1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|entry| entry["id"].clone()));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/billing/history?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    let (status, answer) = shop
        .call(
            site,
            Method::GET,
            "/api/billing/history?cursor=forged",
            None,
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "validation_failed");
    let (status, _) = shop
        .call(site, Method::GET, "/api/billing/history?limit=abc", None)
        .await;
    assert_eq!(status, 400);
}

const STRIPE_WEBHOOK_SECRET: &str = "whsec_test_endpoint_secret";

struct StripeShop {
    server: TestServer,
    stripe: testkit::stripe::FakeStripe,
    bearer: String,
}

async fn stripe_shop(engine: Engine, email: &str) -> Option<StripeShop> {
    let stripe = testkit::stripe::FakeStripe::start().await;
    let (key, base) = (stripe.secret_key().to_owned(), stripe.base_url().to_owned());
    let server = TestServer::start_with(engine, false, move |s| {
        s.stripe = Some(server::config::StripeSettings {
            secret_key: secrets::Secret::new(key),
            webhook_secret: Some(secrets::Secret::new(STRIPE_WEBHOOK_SECRET.to_owned())),
            prices: [
                ("starter".to_owned(), "price_starter".to_owned()),
                ("pro".to_owned(), "price_pro".to_owned()),
                ("scale".to_owned(), "price_scale".to_owned()),
            ]
            .into(),
            api_base_url: base,
        });
    })
    .await?;
    stripe.set_webhook_endpoint(
        &format!("{}/api/webhooks/stripe", server.base),
        STRIPE_WEBHOOK_SECRET,
    );
    let session = server.register(email).await;
    let bearer = common::bearer(&session);
    Some(StripeShop {
        server,
        stripe,
        bearer,
    })
}

impl StripeShop {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .server
            .request(method, path)
            .header("authorization", &self.bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn billing(&self) -> Value {
        let (status, body) = self.call(Method::GET, "/api/billing", None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn account_id(&self) -> uuid::Uuid {
        let me = self.call(Method::GET, "/api/me", None).await.1;
        me["account"]["id"].as_str().unwrap().parse().unwrap()
    }

    /// Starts a checkout for `plan` and returns the session id the Checkout URL names.
    async fn checkout(&self, plan: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/billing/checkout",
                Some(json!({"plan": plan})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let url = body["url"].as_str().unwrap();
        assert!(url.starts_with(self.stripe.base_url()), "{url}");
        url.rsplit('/').next().unwrap().to_owned()
    }

    async fn subscription_id(&self) -> String {
        let account = self.account_id().await;
        self.server
            .state
            .storage
            .stripe_link(account)
            .await
            .unwrap()
            .subscription_id
            .expect("linked")
    }

    /// Spends `count` credits through a title job on a local catalog.
    async fn spend(&self, count: usize) {
        let (status, store) = self
            .call(
                Method::POST,
                "/api/stores",
                Some(json!({"platform": "local", "name": "Catalog"})),
            )
            .await;
        assert_eq!(status, 201, "{store}");
        let store = store["id"].as_str().unwrap().to_owned();
        let csv = testkit::fixtures::woocommerce_export();
        let imported = self
            .server
            .request(Method::POST, &format!("/api/stores/{store}/import"))
            .header("authorization", &self.bearer)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(imported.status(), 200);
        let products = self
            .call(
                Method::GET,
                &format!("/api/products?storeId={store}&limit=100"),
                None,
            )
            .await
            .1;
        let ids: Vec<&Value> = products["items"]
            .as_array()
            .unwrap()
            .iter()
            .take(count)
            .map(|p| &p["id"])
            .collect();
        let (status, job) = self
            .call(
                Method::POST,
                "/api/jobs",
                Some(json!({"sourceScope": "products", "sourceIds": ids, "attributes": ["title"]})),
            )
            .await;
        assert_eq!(status, 201, "{job}");
    }

    async fn plan_rows(&self) -> usize {
        let account = self.account_id().await;
        self.server
            .state
            .storage
            .list_ledger(account, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|entry| entry.reason == domain::LedgerReason::PlanChange)
            .count()
    }
}

fn all_delivered(deliveries: &[testkit::stripe::Delivery]) {
    assert!(!deliveries.is_empty());
    for delivery in deliveries {
        assert!(delivery.succeeded(), "{delivery:?}");
    }
}

async fn the_stripe_plan_story_keeps_credits_right_at_every_step(engine: Engine) {
    let Some(shop) = stripe_shop(engine, "stripe-story@example.com").await else {
        return;
    };
    let billing = shop.billing().await;
    assert_eq!(billing["plan"]["id"], "free");
    assert_eq!(billing["upgrade"]["kind"], "stripe");
    shop.spend(3).await;
    assert_eq!(credits(&shop.billing().await), (200, 3, 197));

    // Checkout for Starter; nothing changes until Stripe confirms.
    let session = shop.checkout("starter").await;
    assert_eq!(shop.billing().await["plan"]["id"], "free");
    let deliveries = shop.stripe.complete_checkout(&session).await;
    all_delivered(&deliveries);
    let billing = shop.billing().await;
    assert_eq!(billing["plan"]["id"], "starter");
    assert_eq!(billing["billingSource"], "stripe");
    assert_eq!(credits(&billing), (1_000, 3, 997));
    assert!(billing["periodEnd"].is_string());
    assert_eq!(billing["cancelAtPeriodEnd"], false);
    // A redelivered event has no second effect.
    let rows = shop.plan_rows().await;
    let again = shop.stripe.redeliver(&deliveries[0].event_id).await;
    assert!(again.succeeded());
    assert_eq!(shop.plan_rows().await, rows);

    // Upgraded to Pro in the portal.
    let (status, portal) = shop.call(Method::POST, "/api/billing/portal", None).await;
    assert_eq!(status, 200, "{portal}");
    assert!(portal["url"]
        .as_str()
        .unwrap()
        .starts_with(shop.stripe.base_url()));
    let subscription = shop.subscription_id().await;
    all_delivered(
        &shop
            .stripe
            .update_subscription(&subscription, "price_pro")
            .await,
    );
    let billing = shop.billing().await;
    assert_eq!(billing["plan"]["id"], "pro");
    assert_eq!(credits(&billing), (5_000, 3, 4_997));

    // Canceled: Pro stays until the period ends, then the account is free.
    all_delivered(&shop.stripe.cancel_at_period_end(&subscription).await);
    let billing = shop.billing().await;
    assert_eq!(billing["plan"]["id"], "pro");
    assert_eq!(billing["cancelAtPeriodEnd"], true);
    all_delivered(&shop.stripe.end_current_period(&subscription).await);
    let billing = shop.billing().await;
    assert_eq!(billing["plan"]["id"], "free");
    assert_eq!(billing["cancelAtPeriodEnd"], false);
    assert_eq!(credits(&billing), (200, 3, 197));
    let account = shop.account_id().await;
    let ledger = shop
        .server
        .state
        .storage
        .list_ledger(account, 1000)
        .await
        .unwrap();
    let sum: i64 = ledger.iter().map(|entry| entry.delta).sum();
    assert_eq!(sum, 197, "the ledger agrees with the counters");
}

async fn stripe_refusals_and_reconciliation(engine: Engine) {
    let Some(shop) = stripe_shop(engine, "stripe-refusals@example.com").await else {
        return;
    };
    // Plans that cannot be bought, and a portal without a subscription.
    for plan in ["platinum", "free"] {
        let (status, body) = shop
            .call(
                Method::POST,
                "/api/billing/checkout",
                Some(json!({"plan": plan})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "validation_failed");
    }
    let (status, body) = shop
        .call(Method::POST, "/api/billing/checkout", Some(json!({})))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = shop.call(Method::POST, "/api/billing/portal", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("not_applicable"))
    );

    // Deliveries with a stale timestamp or a wrong secret are refused and change nothing.
    let session = shop.checkout("pro").await;
    shop.stripe
        .set_signature_mode(testkit::stripe::SignatureMode::StaleBy(
            std::time::Duration::from_secs(600),
        ));
    let refused = shop.stripe.complete_checkout(&session).await;
    assert!(
        refused.iter().all(|delivery| delivery.status == Some(400)),
        "{refused:?}"
    );
    shop.stripe
        .set_signature_mode(testkit::stripe::SignatureMode::WrongSecret);
    let again = shop.stripe.redeliver(&refused[0].event_id).await;
    assert_eq!(again.status, Some(400));
    assert_eq!(shop.billing().await["plan"]["id"], "free");
    let unsigned = shop
        .server
        .request(Method::POST, "/api/webhooks/stripe")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(common::error_code(unsigned, 400).await, "invalid_signature");

    // Correctly signed, the same events apply.
    shop.stripe
        .set_signature_mode(testkit::stripe::SignatureMode::Correct);
    for delivery in &refused {
        assert!(shop.stripe.redeliver(&delivery.event_id).await.succeeded());
    }
    assert_eq!(shop.billing().await["plan"]["id"], "pro");

    // A change whose webhooks are lost (the endpoint is down) is repaired on sync.
    let subscription = shop.subscription_id().await;
    shop.stripe.set_webhook_endpoint(
        "http://127.0.0.1:9/api/webhooks/stripe",
        STRIPE_WEBHOOK_SECRET,
    );
    let lost = shop
        .stripe
        .update_subscription(&subscription, "price_scale")
        .await;
    assert!(lost.iter().all(|delivery| !delivery.succeeded()));
    assert_eq!(shop.billing().await["plan"]["id"], "pro");
    let (status, synced) = shop
        .call(Method::POST, "/api/billing/sync-credits", None)
        .await;
    assert_eq!(status, 200, "{synced}");
    assert_eq!(synced["plan"]["id"], "scale");
    assert_eq!(credits(&synced), (25_000, 0, 25_000));
    // The late delivery of an older event, once the endpoint is back, does not undo it.
    shop.stripe.set_webhook_endpoint(
        &format!("{}/api/webhooks/stripe", shop.server.base),
        STRIPE_WEBHOOK_SECRET,
    );
    let late = shop.stripe.redeliver(&refused[1].event_id).await;
    assert!(late.succeeded());
    assert_eq!(shop.billing().await["plan"]["id"], "scale");

    // A Wix account cannot check out with Stripe.
    let wix_instance = sign_instance(
        &InstanceClaims::new("5d6e7f80-9a1b-4c2d-8e3f-405162738495", common::WIX_APP_ID),
        common::WIX_SECRET,
    );
    let response = shop
        .server
        .request(Method::POST, "/api/billing/checkout")
        .header("x-wix-instance", wix_instance)
        .json(&json!({"plan": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(common::error_code(response, 400).await, "not_applicable");
}

async fn wix_product_events_sync_that_product(engine: Engine) {
    let Some(shop) = shop(engine).await else {
        return;
    };
    let site = "6c7d8e9f-0a1b-4c2d-9e3f-5a6b7c8d9e0f";
    shop.add_site(site);
    let instance = shop.instance(site);
    let stores = shop.call(site, Method::GET, "/api/stores", None).await.1;
    let store = stores["stores"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = shop
        .call(
            site,
            Method::POST,
            &format!("/api/stores/{store}/sync"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    shop.server
        .wait_for_syncs(&store, ("x-wix-instance", instance.as_str()))
        .await;
    let product_id = shop.wix.product_ids(site)[0].clone();
    shop.wix.edit_in_dashboard(site, &product_id, |product| {
        product["name"] = json!("Renamed in the Wix dashboard");
    });
    let event = json!({
        "id": "5f0e1d2c-3b4a-4968-8776-655443322110",
        "entityFqdn": "wix.stores.catalog.v3.product",
        "slug": "updated",
        "entityId": product_id,
        "eventTime": iso(Utc::now()),
        "updatedEvent": {"currentEntity": {"id": product_id}},
    });
    assert_eq!(
        shop.event(site, "wix.stores.catalog.v3.product_updated", event.clone())
            .await,
        "queued"
    );
    shop.server
        .wait_for_syncs(&store, ("x-wix-instance", instance.as_str()))
        .await;
    let found = shop
        .call(
            site,
            Method::GET,
            &format!("/api/products?storeId={store}&q=Renamed"),
            None,
        )
        .await
        .1;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["items"][0]["title"], "Renamed in the Wix dashboard");
    // The same event again is a repeat, and the backlog sweep leaves it alone.
    assert_eq!(
        shop.event(site, "wix.stores.catalog.v3.product_updated", event)
            .await,
        "duplicate"
    );
    assert_eq!(
        shop.server
            .state
            .billing
            .process_wix_backlog(Utc::now() + Duration::minutes(5), Duration::minutes(1))
            .await
            .unwrap(),
        0
    );
}
