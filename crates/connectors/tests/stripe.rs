//! The real Stripe client against the fake Stripe, over HTTP, and the webhook verifier
//! against hand-made and delivered signatures.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use connectors::http::{ConnectorError, RetryPolicy};
use connectors::stripe::{
    verify_webhook, CheckoutCustomer, CheckoutParams, Event, StripeClient, StripeConfig,
    SubscriptionStatus, WebhookError, API_VERSION, DEFAULT_WEBHOOK_TOLERANCE,
};
use serde_json::{json, Value};
use testkit::stripe::{signature_header, FakeStripe, Fault, SignatureMode};

const SECRET: &str = "whsec_9f8e7d6c5b4a39281706f5e4d3c2b1a0";

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
    }
}

fn client_with_key(fake: &FakeStripe, secret_key: &str) -> StripeClient {
    StripeClient::new(StripeConfig {
        secret_key: secret_key.to_owned(),
        base_url: fake.base_url().to_owned(),
        retry: fast_retries(),
    })
    .unwrap()
}

fn client(fake: &FakeStripe) -> StripeClient {
    client_with_key(fake, fake.secret_key())
}

fn checkout(customer: CheckoutCustomer, idempotency_key: &str) -> CheckoutParams {
    CheckoutParams {
        price_id: "price_pro".into(),
        success_url: "https://app.example/billing/ok?session={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "https://app.example/billing".into(),
        account_id: "0193a6f2-7c1e-7d3a-9b8e-1f2a3b4c5d6e".into(),
        plan: "pro".into(),
        customer,
        idempotency_key: idempotency_key.into(),
    }
}

fn by_email() -> CheckoutCustomer {
    CheckoutCustomer::Email("merchant@shop.example".into())
}

/// The Stripe error fields of a failed call; panics on any other error.
fn stripe_error(error: &ConnectorError) -> (u16, &str, Option<&str>, Option<&str>) {
    match error {
        ConnectorError::Stripe {
            status,
            kind,
            code,
            param,
            ..
        } => (*status, kind, code.as_deref(), param.as_deref()),
        other => panic!("expected a Stripe error, got {other:?}"),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

// ---- API calls ----

#[tokio::test]
async fn checkout_by_email_sends_stripes_form_with_the_pinned_version() {
    let fake = FakeStripe::start().await;
    let session = client(&fake)
        .create_checkout_session(&checkout(by_email(), "checkout-1"))
        .await
        .unwrap();
    assert!(session.id.starts_with("cs_test_"), "{}", session.id);
    assert_eq!(
        session.url,
        format!("{}/c/pay/{}", fake.base_url(), session.id)
    );
    let page = reqwest::get(&session.url).await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the session URL leads to the fake's page"
    );

    let request = fake.requests().into_iter().next().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/checkout/sessions")
    );
    assert_eq!(request.stripe_version.as_deref(), Some(API_VERSION));
    assert_eq!(request.idempotency_key.as_deref(), Some("checkout-1"));
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let sent = &request.params;
    let account = "0193a6f2-7c1e-7d3a-9b8e-1f2a3b4c5d6e";
    assert_eq!(param(sent, "mode"), Some("subscription"));
    assert_eq!(param(sent, "line_items[0][price]"), Some("price_pro"));
    assert_eq!(param(sent, "line_items[0][quantity]"), Some("1"));
    assert_eq!(
        param(sent, "success_url"),
        Some("https://app.example/billing/ok?session={CHECKOUT_SESSION_ID}")
    );
    assert_eq!(param(sent, "client_reference_id"), Some(account));
    assert_eq!(param(sent, "metadata[account_id]"), Some(account));
    assert_eq!(param(sent, "metadata[plan]"), Some("pro"));
    assert_eq!(
        param(sent, "subscription_data[metadata][account_id]"),
        Some(account)
    );
    assert_eq!(param(sent, "customer_email"), Some("merchant@shop.example"));
    assert_eq!(param(sent, "customer"), None);

    let stored = fake.checkout_session(&session.id).unwrap();
    assert_eq!(stored["status"], "open");
    assert_eq!(stored["payment_status"], "unpaid");
    assert_eq!(stored["amount_total"], 4900);
    assert_eq!(
        stored["expires_at"].as_i64().unwrap() - stored["created"].as_i64().unwrap(),
        86_400
    );
    assert_eq!(
        stored["metadata"],
        json!({"account_id": account, "plan": "pro"})
    );
}

#[tokio::test]
async fn checkout_for_an_existing_customer_keeps_the_subscription_on_that_customer() {
    let fake = FakeStripe::start().await;
    let customer = fake.create_customer("returning@shop.example");
    let stripe = client(&fake);
    let session = stripe
        .create_checkout_session(&checkout(
            CheckoutCustomer::Existing(customer.clone()),
            "checkout-existing",
        ))
        .await
        .unwrap();
    let sent = &fake.requests()[0].params;
    assert_eq!(param(sent, "customer"), Some(customer.as_str()));
    assert_eq!(param(sent, "customer_email"), None);
    assert!(
        fake.complete_checkout(&session.id).await.is_empty(),
        "no endpoint, no deliveries"
    );
    let completed = fake.checkout_session(&session.id).unwrap();
    assert_eq!(completed["customer"], customer.as_str());
    assert_eq!(completed["status"], "complete");
    let subscriptions = stripe.list_subscriptions(&customer).await.unwrap();
    assert_eq!(subscriptions.len(), 1);
    assert_eq!(subscriptions[0].customer, customer);
    assert_eq!(subscriptions[0].price_id, "price_pro");
    assert_eq!(subscriptions[0].status, SubscriptionStatus::Active);
    assert_eq!(subscriptions[0].metadata["plan"], "pro");
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_first_session() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    let first = stripe
        .create_checkout_session(&checkout(by_email(), "double-click"))
        .await
        .unwrap();
    let replay = stripe
        .create_checkout_session(&checkout(by_email(), "double-click"))
        .await
        .unwrap();
    assert_eq!(replay, first);
    let other = stripe
        .create_checkout_session(&checkout(by_email(), "another-checkout"))
        .await
        .unwrap();
    assert_ne!(other.id, first.id, "a new key is a new session");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 200]);
}

#[tokio::test]
async fn a_key_reused_with_other_parameters_is_an_idempotency_error() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    stripe
        .create_checkout_session(&checkout(by_email(), "reused"))
        .await
        .unwrap();
    let mut other_plan = checkout(by_email(), "reused");
    other_plan.price_id = "price_scale".into();
    other_plan.plan = "scale".into();
    let error = stripe
        .create_checkout_session(&other_plan)
        .await
        .unwrap_err();
    let (status, kind, _, _) = stripe_error(&error);
    assert_eq!((status, kind), (400, "idempotency_error"));
    assert!(error.to_string().contains("same parameters"), "{error}");
    assert!(!error.is_retryable());
    assert_eq!(fake.requests().len(), 2, "a 400 is not retried");
}

#[tokio::test]
async fn portal_sessions_are_made_for_known_customers_only() {
    let fake = FakeStripe::start().await;
    let customer = fake.create_customer("merchant@shop.example");
    let stripe = client(&fake);
    let portal = stripe
        .create_portal_session(&customer, "https://app.example/account")
        .await
        .unwrap();
    assert!(portal.id.starts_with("bps_"), "{}", portal.id);
    assert_eq!(
        portal.url,
        format!("{}/p/session/{}", fake.base_url(), portal.id)
    );
    let again = stripe
        .create_portal_session(&customer, "https://app.example/account")
        .await
        .unwrap();
    assert_ne!(again.id, portal.id, "each call is a new session");
    let requests = fake.requests();
    assert_eq!(requests[0].path, "/v1/billing_portal/sessions");
    assert_eq!(
        param(&requests[0].params, "customer"),
        Some(customer.as_str())
    );
    assert_eq!(
        param(&requests[0].params, "return_url"),
        Some("https://app.example/account")
    );
    let keys: Vec<&str> = requests
        .iter()
        .map(|r| r.idempotency_key.as_deref().unwrap())
        .collect();
    assert_ne!(keys[0], keys[1], "a fresh idempotency key per call");
    assert!(keys.iter().all(|key| uuid::Uuid::parse_str(key).is_ok()));

    let error = stripe
        .create_portal_session("cus_unknown", "https://app.example/account")
        .await
        .unwrap_err();
    assert_eq!(
        stripe_error(&error),
        (
            400,
            "invalid_request_error",
            Some("resource_missing"),
            Some("customer")
        )
    );
}

#[tokio::test]
async fn subscriptions_are_read_with_the_period_from_their_items() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    let session = stripe
        .create_checkout_session(&checkout(by_email(), "read"))
        .await
        .unwrap();
    fake.complete_checkout(&session.id).await;
    let subscription_id = fake.checkout_session(&session.id).unwrap()["subscription"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = stripe
        .retrieve_subscription(&subscription_id)
        .await
        .unwrap();
    let raw = fake.subscription(&subscription_id, API_VERSION).unwrap();
    assert!(
        raw.get("current_period_end").is_none(),
        "the pinned version has no top-level period"
    );
    assert_eq!(
        read.current_period_end.timestamp(),
        raw["items"]["data"][0]["current_period_end"]
            .as_i64()
            .unwrap()
    );
    assert!(read.current_period_end > Utc::now() + chrono::Duration::days(27));
    assert_eq!(read.id, subscription_id);
    assert_eq!(read.customer, raw["customer"].as_str().unwrap());
    assert_eq!(read.status, SubscriptionStatus::Active);
    assert_eq!(read.price_id, "price_pro");
    assert!(!read.cancel_at_period_end);
    assert_eq!(
        read.metadata["account_id"],
        "0193a6f2-7c1e-7d3a-9b8e-1f2a3b4c5d6e"
    );

    fake.cancel_at_period_end(&subscription_id).await;
    let canceling = stripe
        .retrieve_subscription(&subscription_id)
        .await
        .unwrap();
    assert!(canceling.cancel_at_period_end);
    assert_eq!(canceling.status, SubscriptionStatus::Active);

    let error = stripe
        .retrieve_subscription("sub_doesnotexist")
        .await
        .unwrap_err();
    assert_eq!(
        stripe_error(&error),
        (
            404,
            "invalid_request_error",
            Some("resource_missing"),
            Some("id")
        )
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn listing_follows_has_more_and_includes_canceled_subscriptions() {
    let fake = FakeStripe::start().await;
    let customer = fake.create_customer("big@shop.example");
    let stripe = client(&fake);
    let mut subscription_ids = Vec::new();
    for n in 0..101 {
        let session = stripe
            .create_checkout_session(&checkout(
                CheckoutCustomer::Existing(customer.clone()),
                &format!("many-{n}"),
            ))
            .await
            .unwrap();
        fake.complete_checkout(&session.id).await;
        subscription_ids.push(
            fake.checkout_session(&session.id).unwrap()["subscription"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    fake.delete_subscription(&subscription_ids[0]).await;
    let other_customer = fake.create_customer("other@shop.example");
    assert!(stripe
        .list_subscriptions(&other_customer)
        .await
        .unwrap()
        .is_empty());

    let listed = stripe.list_subscriptions(&customer).await.unwrap();
    assert_eq!(listed.len(), 101);
    assert_eq!(listed[0].id, subscription_ids[100], "newest first");
    assert_eq!(listed[100].id, subscription_ids[0]);
    assert_eq!(listed[100].status, SubscriptionStatus::Canceled);
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| {
            r.path == "/v1/subscriptions" && param(&r.params, "customer") == Some(&customer)
        })
        .collect();
    assert_eq!(pages.len(), 2, "100 per page");
    assert_eq!(param(&pages[0].params, "status"), Some("all"));
    assert_eq!(param(&pages[0].params, "starting_after"), None);
    assert_eq!(
        param(&pages[1].params, "starting_after"),
        Some(subscription_ids[1].as_str())
    );
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_without_being_echoed() {
    let fake = FakeStripe::start().await;
    let wrong = "sk_test_51WrongKeyThatIsLongEnough0000XyZw";
    let stripe = client_with_key(&fake, wrong);
    let error = stripe
        .create_checkout_session(&checkout(by_email(), "auth"))
        .await
        .unwrap_err();
    let (status, kind, _, _) = stripe_error(&error);
    assert_eq!((status, kind), (401, "invalid_request_error"));
    let message = error.to_string();
    assert!(message.contains("Invalid API Key provided"), "{message}");
    assert!(message.ends_with("XyZw"), "{message}");
    assert!(!message.contains("WrongKeyThatIsLongEnough"), "{message}");
    assert!(!error.is_retryable());
    assert_eq!(fake.requests().len(), 1, "a 401 is not retried");

    let config = StripeConfig::new(wrong);
    assert!(!format!("{config:?}").contains(wrong));
    assert!(!format!("{stripe:?}").contains(wrong));
}

#[tokio::test]
async fn validation_errors_name_the_parameter_and_store_nothing_under_the_key() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    let mut unknown_price = checkout(by_email(), "fix-and-retry");
    unknown_price.price_id = "price_enterprise".into();
    let error = stripe
        .create_checkout_session(&unknown_price)
        .await
        .unwrap_err();
    assert_eq!(
        stripe_error(&error),
        (
            400,
            "invalid_request_error",
            Some("resource_missing"),
            Some("line_items[0][price]")
        )
    );
    assert!(error
        .to_string()
        .contains("No such price: 'price_enterprise'"));

    let mut bad_url = checkout(by_email(), "bad-url");
    bad_url.success_url = "not a url".into();
    let error = stripe.create_checkout_session(&bad_url).await.unwrap_err();
    assert_eq!(
        stripe_error(&error),
        (
            400,
            "invalid_request_error",
            Some("url_invalid"),
            Some("success_url")
        )
    );

    let unknown_customer = checkout(
        CheckoutCustomer::Existing("cus_nobody".into()),
        "unknown-customer",
    );
    let error = stripe
        .create_checkout_session(&unknown_customer)
        .await
        .unwrap_err();
    assert_eq!(stripe_error(&error).3, Some("customer"));

    let bad_email = checkout(CheckoutCustomer::Email("nobody".into()), "bad-email");
    let error = stripe
        .create_checkout_session(&bad_email)
        .await
        .unwrap_err();
    assert_eq!(stripe_error(&error).3, Some("customer_email"));

    // The refused request stored nothing: the same key with corrected parameters works.
    let fixed = stripe
        .create_checkout_session(&checkout(by_email(), "fix-and-retry"))
        .await
        .unwrap();
    assert!(fixed.id.starts_with("cs_test_"));
}

#[tokio::test]
async fn rate_limits_are_retried_with_the_same_key_and_never_replayed() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    fake.inject(&[Fault::RateLimited]);
    let session = stripe
        .create_checkout_session(&checkout(by_email(), "throttled"))
        .await
        .unwrap();
    let requests = fake.requests();
    let attempts: Vec<(u16, Option<&str>)> = requests
        .iter()
        .map(|r| (r.status, r.idempotency_key.as_deref()))
        .collect();
    assert_eq!(
        attempts,
        [(429, Some("throttled")), (200, Some("throttled"))],
        "the retry reuses the key, and the 429 was not stored under it"
    );
    assert!(session.id.starts_with("cs_test_"));

    fake.inject(&[Fault::RateLimited; 3]);
    let error = stripe.retrieve_subscription("sub_any").await.unwrap_err();
    assert_eq!(
        stripe_error(&error),
        (429, "invalid_request_error", Some("rate_limit"), None)
    );
    assert!(error.is_retryable(), "retries ran out; later may work");
}

#[tokio::test]
async fn server_errors_are_retryable_and_replayed_under_their_key() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    fake.inject(&[Fault::ServerError]);
    let error = stripe
        .create_checkout_session(&checkout(by_email(), "failed-once"))
        .await
        .unwrap_err();
    assert_eq!(stripe_error(&error), (500, "api_error", None, None));
    assert!(error.is_retryable());
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [500, 500, 500],
        "one injected failure, replayed to both retries with the same key"
    );
    let fresh = stripe
        .create_checkout_session(&checkout(by_email(), "a-new-attempt"))
        .await
        .unwrap();
    assert!(fresh.id.starts_with("cs_test_"), "a new key executes anew");

    // A read has no idempotency key: its retry meets a working Stripe.
    let customer = fake.create_customer("reads@shop.example");
    fake.inject(&[Fault::ServerError]);
    assert!(stripe
        .list_subscriptions(&customer)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_unreachable_or_insecure_stripe_is_reported_before_or_without_an_answer() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let stripe = StripeClient::new(StripeConfig {
        secret_key: "sk_test_x".into(),
        base_url: closed,
        retry: fast_retries(),
    })
    .unwrap();
    let error = stripe.retrieve_subscription("sub_1").await.unwrap_err();
    assert!(matches!(error, ConnectorError::Unreachable(_)), "{error:?}");
    assert!(error.is_retryable());

    let mut insecure = StripeConfig::new("sk_test_x");
    insecure.base_url = "http://api.stripe.example".into();
    assert!(matches!(
        StripeClient::new(insecure),
        Err(ConnectorError::InsecureUrl(_))
    ));
}

// ---- Webhook verification ----

fn event_body() -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "id": "evt_1QxYz2eZvKYlo2CabcDEF123",
        "object": "event",
        "api_version": API_VERSION,
        "created": 1_764_000_000,
        "data": {"object": {"id": "cs_test_a1", "object": "checkout.session", "payment_status": "paid",
            "client_reference_id": "acct-7", "customer": "cus_1", "subscription": {"id": "sub_1", "object": "subscription"},
            "metadata": {"plan": "starter"}}},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": "checkout.session.completed",
    }))
    .unwrap()
}

fn verify(body: &[u8], header: &str) -> Result<Event, WebhookError> {
    verify_webhook(body, header, SECRET, DEFAULT_WEBHOOK_TOLERANCE, Utc::now())
}

#[test]
fn a_correctly_signed_event_verifies_and_reads() {
    let body = event_body();
    let header = signature_header(&[SECRET], Utc::now().timestamp(), &body);
    let event = verify(&body, &header).unwrap();
    assert_eq!(event.id, "evt_1QxYz2eZvKYlo2CabcDEF123");
    assert_eq!(event.kind, "checkout.session.completed");
    assert_eq!(event.created.timestamp(), 1_764_000_000);
    assert!(!event.livemode);
    assert_eq!(event.api_version.as_deref(), Some(API_VERSION));
    let checkout = event.completed_checkout().unwrap();
    assert_eq!(checkout.session_id, "cs_test_a1");
    assert_eq!(checkout.customer.as_deref(), Some("cus_1"));
    assert_eq!(
        checkout.subscription.as_deref(),
        Some("sub_1"),
        "an expanded object reads as its id"
    );
    assert_eq!(checkout.client_reference_id.as_deref(), Some("acct-7"));
    assert_eq!(checkout.metadata["plan"], "starter");
    assert_eq!(checkout.payment_status, "paid");
    assert_eq!(
        event.subscription().unwrap_err(),
        WebhookError::UnexpectedObject {
            expected: "subscription",
            found: "checkout.session".into()
        }
    );
}

#[test]
fn during_a_secret_roll_either_v1_signature_verifies() {
    let body = event_body();
    let old = "whsec_previous_secret_still_configured";
    let at = Utc::now().timestamp();
    let header = format!(
        "{},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
        signature_header(&[old, SECRET], at, &body)
    );
    assert!(
        verify(&body, &header).is_ok(),
        "the new secret matches the second v1"
    );
    assert!(
        verify_webhook(&body, &header, old, DEFAULT_WEBHOOK_TOLERANCE, Utc::now()).is_ok(),
        "a receiver not yet updated matches the first v1"
    );
    assert_eq!(
        verify_webhook(
            &body,
            &header,
            "whsec_neither",
            DEFAULT_WEBHOOK_TOLERANCE,
            Utc::now()
        )
        .unwrap_err(),
        WebhookError::BadSignature
    );
}

#[test]
fn a_wrong_secret_or_a_changed_body_is_a_bad_signature() {
    let body = event_body();
    let at = Utc::now().timestamp();
    let wrong = signature_header(&["whsec_someone_else"], at, &body);
    assert_eq!(
        verify(&body, &wrong).unwrap_err(),
        WebhookError::BadSignature
    );

    let header = signature_header(&[SECRET], at, &body);
    let mut tampered = body.clone();
    let position = tampered.iter().position(|b| *b == b'7').unwrap();
    tampered[position] = b'8';
    assert_eq!(
        verify(&tampered, &header).unwrap_err(),
        WebhookError::BadSignature
    );
    let reserialized =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&body).unwrap()).unwrap();
    assert_eq!(
        verify(&reserialized, &header).unwrap_err(),
        WebhookError::BadSignature,
        "only the exact bytes received verify"
    );
    let signed_at_other_time = header.replacen(&format!("t={at}"), &format!("t={}", at - 1), 1);
    assert_eq!(
        verify(&body, &signed_at_other_time).unwrap_err(),
        WebhookError::BadSignature,
        "the timestamp is part of what is signed"
    );
    let not_hex = format!("t={at},v1=zz-not-hex");
    assert_eq!(
        verify(&body, &not_hex).unwrap_err(),
        WebhookError::BadSignature
    );
}

#[test]
fn stale_and_future_timestamps_are_outside_the_tolerance() {
    let body = event_body();
    let now = Utc::now();
    let signed_at = |offset: i64| signature_header(&[SECRET], now.timestamp() + offset, &body);
    let at = |header: &str, tolerance: u64| {
        verify_webhook(&body, header, SECRET, Duration::from_secs(tolerance), now)
    };
    assert!(
        at(&signed_at(-300), 300).is_ok(),
        "exactly at the tolerance"
    );
    assert_eq!(
        at(&signed_at(-301), 300).unwrap_err(),
        WebhookError::TimestampOutsideTolerance { age_secs: 301 }
    );
    assert!(at(&signed_at(300), 300).is_ok());
    assert_eq!(
        at(&signed_at(301), 300).unwrap_err(),
        WebhookError::TimestampOutsideTolerance { age_secs: -301 }
    );
    assert!(
        at(&signed_at(-3_000), 3_600).is_ok(),
        "the tolerance is the caller's"
    );
    let forged_time = format!("t=1,v1={}", "00".repeat(32));
    assert_eq!(
        at(&forged_time, 300).unwrap_err(),
        WebhookError::BadSignature,
        "the signature is checked before the time, as Stripe's libraries do"
    );
}

#[test]
fn missing_and_malformed_headers_are_told_apart() {
    let body = event_body();
    let at = Utc::now().timestamp();
    let signature = testkit::stripe::sign(SECRET, at, &body);
    assert_eq!(verify(&body, "").unwrap_err(), WebhookError::MissingHeader);
    for (header, reason) in [
        ("garbage".to_owned(), "no t= timestamp"),
        (format!("v1={signature}"), "no t= timestamp"),
        (format!("t={at}"), "no v1= signature"),
        (format!("t={at},v0={signature}"), "no v1= signature"),
        (
            format!("t=yesterday,v1={signature}"),
            "t is not a unix timestamp",
        ),
    ] {
        assert_eq!(
            verify(&body, &header).unwrap_err(),
            WebhookError::MalformedHeader(reason),
            "{header}"
        );
    }
    let spaced = format!("t={at}, v1={signature}");
    assert!(
        verify(&body, &spaced).is_ok(),
        "spaces after commas are tolerated"
    );
}

#[test]
fn signed_bodies_that_are_not_events_are_refused_after_the_signature() {
    let at = Utc::now().timestamp();
    let not_json = b"<html>502 Bad Gateway</html>".to_vec();
    let header = signature_header(&[SECRET], at, &not_json);
    assert!(matches!(
        verify(&not_json, &header).unwrap_err(),
        WebhookError::PayloadNotJson(_)
    ));
    let thin = serde_json::to_vec(&json!({"id": "evt_1", "object": "v2.core.event", "type": "v1.billing.meter.error_report_triggered"})).unwrap();
    let header = signature_header(&[SECRET], at, &thin);
    assert!(matches!(
        verify(&thin, &header).unwrap_err(),
        WebhookError::NotAnEvent(_)
    ));
    let unsigned_garbage = b"not json".to_vec();
    assert_eq!(
        verify(
            &unsigned_garbage,
            &signature_header(&["whsec_x"], at, &unsigned_garbage)
        )
        .unwrap_err(),
        WebhookError::BadSignature,
        "nothing is parsed before the signature holds"
    );
}

// ---- Deliveries from the fake to a receiver that verifies ----

/// What the receiver saw of one delivery.
#[derive(Clone)]
struct Received {
    body: Bytes,
    signature: String,
    verdict: Result<Event, WebhookError>,
}

/// A webhook endpoint that verifies with the real [`verify_webhook`] and answers 200 or
/// 400, as the service will; a forced status overrides the answer.
struct Receiver {
    url: String,
    forced_status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    async fn start(secret: &'static str) -> Self {
        let forced_status = Arc::new(AtomicU16::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (forced, log) = (forced_status.clone(), received.clone());
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (forced, log) = (forced.clone(), log.clone());
            async move {
                let signature = headers
                    .get("stripe-signature")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let verdict = verify_webhook(
                    &body,
                    &signature,
                    secret,
                    DEFAULT_WEBHOOK_TOLERANCE,
                    Utc::now(),
                );
                let status = match (forced.load(Ordering::SeqCst), &verdict) {
                    (0, Ok(_)) => StatusCode::OK,
                    (0, Err(_)) => StatusCode::BAD_REQUEST,
                    (forced, _) => StatusCode::from_u16(forced).unwrap(),
                };
                log.lock().unwrap().push(Received {
                    body,
                    signature,
                    verdict,
                });
                status
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/billing/stripe/webhook",
            listener.local_addr().unwrap()
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Receiver {
            url,
            forced_status,
            received,
            server,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<Event> {
        self.received()
            .into_iter()
            .map(|received| received.verdict.unwrap())
            .collect()
    }
}

/// A fake with an endpoint, and a subscription bought through Checkout; the receiver's
/// log is cleared. Returns the subscription id.
async fn subscribed(fake: &FakeStripe, receiver: &Receiver) -> String {
    fake.set_webhook_endpoint(&receiver.url, SECRET);
    let session = client(fake)
        .create_checkout_session(&checkout(by_email(), "subscribe"))
        .await
        .unwrap();
    fake.complete_checkout(&session.id).await;
    receiver.received.lock().unwrap().clear();
    fake.checkout_session(&session.id).unwrap()["subscription"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn completing_checkout_delivers_three_events_that_verify_and_read() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start(SECRET).await;
    fake.set_webhook_endpoint(&receiver.url, SECRET);
    let stripe = client(&fake);
    let session = stripe
        .create_checkout_session(&checkout(by_email(), "deliver"))
        .await
        .unwrap();
    let deliveries = fake.complete_checkout(&session.id).await;
    let kinds: Vec<&str> = deliveries.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.paid"
        ]
    );
    assert!(deliveries
        .iter()
        .all(|d| d.status == Some(200) && d.attempt == 1));

    let events = receiver.events();
    assert_eq!(events.len(), 3);
    let checkout = events[0].completed_checkout().unwrap();
    assert_eq!(checkout.session_id, session.id);
    assert_eq!(
        checkout.client_reference_id.as_deref(),
        Some("0193a6f2-7c1e-7d3a-9b8e-1f2a3b4c5d6e")
    );
    assert_eq!(checkout.metadata["plan"], "pro");
    assert_eq!(checkout.payment_status, "paid");
    let customer = checkout.customer.clone().unwrap();
    assert_eq!(
        fake.customer_email(&customer).as_deref(),
        Some("merchant@shop.example"),
        "Checkout made the customer from the email"
    );

    let subscription = events[1].subscription().unwrap();
    assert_eq!(Some(&subscription.id), checkout.subscription.as_ref());
    assert_eq!(subscription.customer, customer);
    assert_eq!(subscription.status, SubscriptionStatus::Active);
    assert_eq!(subscription.price_id, "price_pro");
    assert_eq!(
        subscription.metadata["account_id"], "0193a6f2-7c1e-7d3a-9b8e-1f2a3b4c5d6e",
        "subscription_data[metadata] reached the subscription"
    );
    assert_eq!(
        stripe
            .retrieve_subscription(&subscription.id)
            .await
            .unwrap(),
        subscription,
        "the event and the API read alike"
    );

    let invoice = events[2].paid_invoice().unwrap();
    assert_eq!(
        invoice.subscription.as_deref(),
        Some(subscription.id.as_str())
    );
    assert_eq!(invoice.customer, customer);
    assert_eq!(
        invoice.billing_reason.as_deref(),
        Some("subscription_create")
    );
    assert_eq!(invoice.period_end, subscription.current_period_end);

    let first = &receiver.received()[0];
    assert!(first.signature.starts_with("t="));
    assert!(
        first.body.starts_with(b"{\n  \""),
        "Stripe sends pretty JSON"
    );
    let compact =
        serde_json::to_vec(&serde_json::from_slice::<Value>(&first.body).unwrap()).unwrap();
    assert_eq!(
        verify(&compact, &first.signature).unwrap_err(),
        WebhookError::BadSignature
    );
}

#[tokio::test]
async fn bad_signatures_from_the_fake_are_refused_by_the_receiver() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start(SECRET).await;
    let subscription = subscribed(&fake, &receiver).await;
    let modes = [
        SignatureMode::WrongSecret,
        SignatureMode::StaleBy(Duration::from_secs(301)),
        SignatureMode::AheadBy(Duration::from_secs(600)),
        SignatureMode::RotatedFrom("whsec_the_previous_one".into()),
    ];
    for mode in modes {
        fake.set_signature_mode(mode);
        fake.cancel_at_period_end(&subscription).await;
    }
    let verdicts: Vec<Result<(), WebhookError>> = receiver
        .received()
        .into_iter()
        .map(|received| received.verdict.map(|_| ()))
        .collect();
    assert_eq!(verdicts[0], Err(WebhookError::BadSignature));
    assert!(matches!(
        verdicts[1],
        Err(WebhookError::TimestampOutsideTolerance { age_secs }) if age_secs >= 301
    ));
    assert!(matches!(
        verdicts[2],
        Err(WebhookError::TimestampOutsideTolerance { age_secs }) if age_secs <= -590
    ));
    assert_eq!(verdicts[3], Ok(()), "two v1 values, the second ours");
    let statuses: Vec<Option<u16>> = fake
        .deliveries()
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(|d| d.status)
        .collect();
    assert_eq!(statuses, [Some(400), Some(400), Some(400), Some(200)]);

    // The refused event goes through once signed correctly again.
    fake.set_signature_mode(SignatureMode::Correct);
    let refused = fake.deliveries().iter().rev().nth(3).unwrap().clone();
    let retried = fake.redeliver(&refused.event_id).await;
    assert_eq!((retried.status, retried.attempt), (Some(200), 2));
}

#[tokio::test]
async fn a_failing_endpoint_is_recorded_and_redelivery_repeats_the_same_event() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start(SECRET).await;
    let subscription = subscribed(&fake, &receiver).await;
    receiver.forced_status.store(500, Ordering::SeqCst);
    let failed = fake.delete_subscription(&subscription).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, Some(500));
    assert!(!failed[0].succeeded());
    receiver.forced_status.store(0, Ordering::SeqCst);
    let redelivered = fake.redeliver(&failed[0].event_id).await;
    assert!(redelivered.succeeded());
    assert_eq!(redelivered.attempt, 2);
    let events = receiver.events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].id, events[1].id,
        "a duplicate, to be deduplicated by id"
    );
    assert_eq!(events[1].kind, "customer.subscription.deleted");
    assert_eq!(
        events[1].subscription().unwrap().status,
        SubscriptionStatus::Canceled
    );
}

#[tokio::test]
async fn plan_changes_cancellation_and_renewal_arrive_as_stripe_sends_them() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start(SECRET).await;
    let subscription_id = subscribed(&fake, &receiver).await;
    let stripe = client(&fake);
    let before = stripe
        .retrieve_subscription(&subscription_id)
        .await
        .unwrap();

    fake.update_subscription(&subscription_id, "price_scale")
        .await;
    fake.end_current_period(&subscription_id).await;
    fake.cancel_at_period_end(&subscription_id).await;
    fake.end_current_period(&subscription_id).await;

    let events = receiver.events();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "customer.subscription.updated",
            "customer.subscription.updated",
            "invoice.paid",
            "customer.subscription.updated",
            "customer.subscription.deleted"
        ]
    );
    let upgraded = events[0].subscription().unwrap();
    assert_eq!(upgraded.price_id, "price_scale");
    let previous = events[0].data.previous_attributes.as_ref().unwrap();
    assert_eq!(previous["items"]["data"][0]["price"]["id"], "price_pro");
    assert!(events[1..]
        .iter()
        .all(|e| e.kind.ends_with(".updated") == e.data.previous_attributes.is_some()));

    let renewed = events[1].subscription().unwrap();
    assert!(renewed.current_period_end > before.current_period_end);
    let invoice = events[2].paid_invoice().unwrap();
    assert_eq!(
        invoice.billing_reason.as_deref(),
        Some("subscription_cycle")
    );
    assert_eq!(
        invoice.period_end, renewed.current_period_end,
        "the line's period: the one just paid for"
    );
    assert_eq!(
        events[2].data.object["period_end"].as_i64(),
        Some(before.current_period_end.timestamp()),
        "the invoice's own period_end is the period that ended"
    );

    let canceling = events[3].subscription().unwrap();
    assert!(canceling.cancel_at_period_end);
    assert_eq!(canceling.status, SubscriptionStatus::Active);
    assert_eq!(
        events[3].data.previous_attributes.as_ref().unwrap()["cancel_at_period_end"],
        false
    );
    let ended = events[4].subscription().unwrap();
    assert_eq!(ended.status, SubscriptionStatus::Canceled);
    assert_eq!(
        stripe
            .retrieve_subscription(&subscription_id)
            .await
            .unwrap()
            .status,
        SubscriptionStatus::Canceled
    );
}

#[tokio::test]
async fn events_from_an_endpoint_on_an_older_version_still_read() {
    let fake = FakeStripe::start().await;
    let receiver = Receiver::start(SECRET).await;
    let subscription_id = subscribed(&fake, &receiver).await;
    fake.set_webhook_api_version("2024-06-20");
    fake.end_current_period(&subscription_id).await;
    let events = receiver.events();
    assert_eq!(events[0].api_version.as_deref(), Some("2024-06-20"));
    assert!(
        events[0].data.object["current_period_end"].is_i64(),
        "pre-basil shape: the period on the subscription"
    );
    let renewed = events[0].subscription().unwrap();
    assert_eq!(
        renewed,
        client(&fake)
            .retrieve_subscription(&subscription_id)
            .await
            .unwrap()
    );
    assert!(events[1].data.object.get("parent").is_none());
    let invoice = events[1].paid_invoice().unwrap();
    assert_eq!(
        invoice.subscription.as_deref(),
        Some(subscription_id.as_str())
    );
    assert_eq!(invoice.period_end, renewed.current_period_end);
}
