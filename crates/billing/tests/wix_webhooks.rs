//! Wix webhook tokens
//! (<https://dev.wix.com/docs/build-apps/develop-your-app/access/authentication/verify-requests-received-from-wix>;
//! docs/protocols.md, Wix §3.1): only RS256 tokens signed by the
//! app's key pass, and their doubly nested JSON decodes to the event.

use base64::Engine;
use billing::{WebhookRejection, WixEventKind, WixWebhookVerifier};
use chrono::{Duration, Utc};
use serde_json::json;
use testkit::wix::{
    unsigned_webhook_token, webhook_body, webhook_envelope, webhook_token,
    webhook_token_over_raw_payload, WebhookKey, WEBHOOK_PUBLIC_KEY,
};

fn verifier() -> WixWebhookVerifier {
    WixWebhookVerifier::new(WEBHOOK_PUBLIC_KEY).unwrap()
}

#[test]
fn a_signed_purchase_decodes_to_its_plan_and_times() {
    let body = webhook_body(
        "8e9d6b70-6eb9-4ab4-a62d-e033063e2f05",
        "PaidPlanPurchased",
        &json!({
            "operationTimeStamp": "2019-12-09T07:44:53.659Z",
            "vendorProductId": "e8f429d5-0a6a-468f-8044-87f519a53202",
            "cycle": "MONTHLY",
            "expiresOn": "2020-01-09T07:44:53Z"
        }),
    );
    let event = verifier().verify(&body, Utc::now()).unwrap();
    assert_eq!(event.instance_id, "8e9d6b70-6eb9-4ab4-a62d-e033063e2f05");
    assert_eq!(event.kind, WixEventKind::PaidPlanPurchased);
    assert_eq!(
        event.vendor_product_id(),
        Some("e8f429d5-0a6a-468f-8044-87f519a53202")
    );
    assert_eq!(
        event.operation_at().unwrap().to_rfc3339(),
        "2019-12-09T07:44:53.659+00:00"
    );
    assert_eq!(
        event.expires_on().unwrap().to_rfc3339(),
        "2020-01-09T07:44:53+00:00"
    );
    assert_eq!(
        event.dedupe_key(),
        "8e9d6b70-6eb9-4ab4-a62d-e033063e2f05:PaidPlanPurchased:2019-12-09T07:44:53.659Z"
    );
    // The key does not depend on the token: a re-signed retry is the same delivery.
    let again = verifier()
        .verify(
            &webhook_body(&event.instance_id, "PaidPlanPurchased", &event.payload),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(again.dedupe_key(), event.dedupe_key());
}

#[test]
fn the_key_may_be_configured_as_base64_pem_or_with_escaped_newlines() {
    let encoded = base64::engine::general_purpose::STANDARD.encode(WEBHOOK_PUBLIC_KEY);
    let escaped = WEBHOOK_PUBLIC_KEY.replace('\n', "\\n");
    let body = webhook_body("i-1", "AppInstalled", &json!({"appId": "app"}));
    for key in [encoded.as_str(), escaped.as_str()] {
        let event = WixWebhookVerifier::new(key)
            .unwrap()
            .verify(&body, Utc::now())
            .unwrap();
        assert_eq!(event.kind, WixEventKind::AppInstalled);
    }
    assert!(WixWebhookVerifier::new("not a key").is_err());
}

#[test]
fn tokens_not_signed_by_the_app_are_refused() {
    let claims = json!({
        "data": webhook_envelope("i-1", "PaidPlanPurchased", &json!({"vendorProductId": "pro"})),
        "iat": Utc::now().timestamp(),
    });
    let other = webhook_token(&claims, WebhookKey::Other);
    assert_eq!(
        verifier().verify(&other, Utc::now()),
        Err(WebhookRejection::BadSignature)
    );
    let unsigned = unsigned_webhook_token(&claims);
    assert!(matches!(
        verifier().verify(&unsigned, Utc::now()),
        Err(WebhookRejection::Malformed(_) | WebhookRejection::BadSignature)
    ));
    // A tampered payload under the app's real signature.
    let genuine = webhook_token(&claims, WebhookKey::App);
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        json!({"data": webhook_envelope("i-1", "PaidPlanPurchased", &json!({"vendorProductId": "scale"}))})
            .to_string(),
    );
    assert_eq!(
        verifier().verify(&parts.join("."), Utc::now()),
        Err(WebhookRejection::BadSignature)
    );
    for garbage in ["", "hello", "a.b.c", "{\"data\":1}"] {
        assert!(
            matches!(
                verifier().verify(garbage, Utc::now()),
                Err(WebhookRejection::Malformed(_) | WebhookRejection::BadPayload(_))
            ),
            "{garbage:?}"
        );
    }
}

#[test]
fn expired_tokens_are_refused() {
    let iat = (Utc::now() - Duration::days(5)).timestamp();
    let token = webhook_token(
        &json!({
            "data": webhook_envelope("i-1", "AppRemoved", &json!({"appId": "app"})),
            "iat": iat,
            "exp": iat + 3600,
        }),
        WebhookKey::App,
    );
    assert_eq!(
        verifier().verify(&token, Utc::now()),
        Err(WebhookRejection::Expired)
    );
}

#[test]
fn signed_payloads_that_are_not_wix_json_are_refused_as_bad_payloads() {
    let not_json = webhook_token_over_raw_payload("this is not json");
    assert!(matches!(
        verifier().verify(&not_json, Utc::now()),
        Err(WebhookRejection::BadPayload(_))
    ));
    for claims in [
        json!({"data": "not json either"}),
        json!({"data": 42}),
        json!({"data": json!({"instanceId": "i-1", "eventType": "PaidPlanPurchased", "data": "{oops"}).to_string()}),
        json!({"data": json!({"instanceId": "", "eventType": "AppInstalled"}).to_string()}),
        json!({"data": json!({"instanceId": "i-1", "eventType": "AppInstalled", "data": "[1,2]"}).to_string()}),
    ] {
        let token = webhook_token(&claims, WebhookKey::App);
        assert!(
            matches!(
                verifier().verify(&token, Utc::now()),
                Err(WebhookRejection::BadPayload(_))
            ),
            "{claims}"
        );
    }
}

#[test]
fn unknown_event_types_decode_as_other() {
    let body = webhook_body("i-1", "SomethingNew", &json!({"x": 1}));
    let event = verifier().verify(&body, Utc::now()).unwrap();
    assert_eq!(event.kind, WixEventKind::Other("SomethingNew".into()));
    assert!(event.dedupe_key().starts_with("i-1:SomethingNew:iat:"));
}

#[test]
fn product_domain_events_name_their_product_and_dedupe_by_event_id() {
    let payload = json!({
        "id": "0a1b2c3d-evt",
        "entityFqdn": "wix.stores.catalog.v3.product",
        "slug": "updated",
        "entityId": "prod-42",
        "eventTime": "2026-12-03T07:00:00.000Z",
        "updatedEvent": {"currentEntity": {"id": "prod-42"}},
    });
    let event = verifier()
        .verify(
            &webhook_body("i-1", "wix.stores.catalog.v3.product_updated", &payload),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(event.catalog_product_id(), Some("prod-42"));
    assert_eq!(
        event.dedupe_key(),
        "i-1:wix.stores.catalog.v3.product_updated:event:0a1b2c3d-evt"
    );
    // Another entity, or an app event, names no product.
    let category = verifier()
        .verify(
            &webhook_body(
                "i-1",
                "wix.categories.v1.category_updated",
                &json!({"id": "e", "entityFqdn": "wix.categories.v1.category", "entityId": "c"}),
            ),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(category.catalog_product_id(), None);
    let install = verifier()
        .verify(
            &webhook_body("i-1", "AppInstalled", &json!({"appId": "a"})),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(install.catalog_product_id(), None);
}
