//! Properties of the webhook signature checks (Stripe and WooCommerce): no body or header
//! panics them, exactly what was signed with the secret is accepted, and a single changed
//! byte of the body is refused.

use std::time::Duration;

use base64::Engine;
use chrono::{TimeZone, Utc};
use connectors::stripe::{verify_webhook, WebhookError, DEFAULT_WEBHOOK_TOLERANCE};
use connectors::woocommerce::verify_webhook_signature;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::json;
use sha2::Sha256;
use testkit::stripe::signature_header;

const STRIPE_SECRET: &str = "whsec_test_0123456789abcdef";

fn stripe_event(id: &str, kind: &str) -> Vec<u8> {
    json!({
        "id": id,
        "object": "event",
        "type": kind,
        "created": 1_772_366_400,
        "livemode": false,
        "api_version": null,
        "data": {"object": {"object": "checkout.session", "id": "cs_test_1"}},
        "request": {"id": null, "idempotency_key": null},
    })
    .to_string()
    .into_bytes()
}

fn woo_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn stripe_header() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,120}",
        (
            prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX)],
            "[0-9a-f]{0,70}",
            "[tv0-9=, ]{0,12}"
        )
            .prop_map(|(t, v1, noise)| format!("t={t},v1={v1}{noise}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn stripe_never_panics_on_arbitrary_deliveries(
        body in prop::collection::vec(any::<u8>(), 0..300),
        header in stripe_header(),
        secret in "\\PC{0,30}",
        now_secs in any::<i64>(),
    ) {
        let now = Utc.timestamp_opt(now_secs.rem_euclid(10_000_000_000), 0).unwrap();
        let _ = verify_webhook(&body, &header, &secret, DEFAULT_WEBHOOK_TOLERANCE, now);
    }

    #[test]
    fn stripe_accepts_exactly_what_was_signed_within_the_tolerance(
        id in "evt_[A-Za-z0-9]{1,24}",
        kind in "[a-z_.]{1,40}",
        timestamp in prop_oneof![
            any::<i64>(),
            Just(i64::MIN),
            Just(i64::MAX),
            i64::MIN..i64::MIN + 10_000_000_000,
        ],
        age in -400i64..400,
        extra_secret in prop::option::of("whsec_[a-z0-9]{8}"),
    ) {
        let body = stripe_event(&id, &kind);
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        // Any timestamp at all, and ones near now.
        for signed_at in [timestamp, now.timestamp() - age] {
            let mut secrets = vec![STRIPE_SECRET];
            if let Some(extra) = extra_secret.as_deref() {
                secrets.insert(0, extra);
            }
            let header = signature_header(&secrets, signed_at, &body);
            let result = verify_webhook(&body, &header, STRIPE_SECRET, DEFAULT_WEBHOOK_TOLERANCE, now);
            let within = now.timestamp().checked_sub(signed_at).is_some_and(|a| a.abs() <= 300);
            match result {
                Ok(event) => {
                    prop_assert!(within, "accepted t={}", signed_at);
                    prop_assert_eq!(&event.id, &id);
                    prop_assert_eq!(&event.kind, &kind);
                }
                Err(WebhookError::TimestampOutsideTolerance { .. }) => prop_assert!(!within),
                Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
            prop_assert_eq!(
                verify_webhook(&body, &header, "whsec_other", Duration::from_secs(300), now)
                    .map(|e| e.id),
                Err(WebhookError::BadSignature)
            );
        }
    }

    #[test]
    fn stripe_refuses_any_single_byte_change_of_the_body(
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let body = stripe_event("evt_1", "checkout.session.completed");
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let header = signature_header(&[STRIPE_SECRET], now.timestamp(), &body);
        let mut changed = body.clone();
        let at = position.index(changed.len());
        prop_assume!(changed[at] != replacement);
        changed[at] = replacement;
        prop_assert_eq!(
            verify_webhook(&changed, &header, STRIPE_SECRET, DEFAULT_WEBHOOK_TOLERANCE, now)
                .map(|e| e.id),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn woocommerce_never_panics_on_arbitrary_deliveries(
        body in prop::collection::vec(any::<u8>(), 0..300),
        header in "\\PC{0,80}",
        secret in "\\PC{0,40}",
    ) {
        let _ = verify_webhook_signature(&secret, &body, &header);
    }

    #[test]
    fn woocommerce_accepts_exactly_what_was_signed(
        body in prop::collection::vec(any::<u8>(), 0..300),
        secret in "[A-Za-z0-9!#$%()*+,./:;=?@^_{|}~ -]{1,40}",
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let signature = woo_signature(&secret, &body);
        prop_assert!(verify_webhook_signature(&secret, &body, &signature));
        let other_secret = format!("{secret}x");
        prop_assert!(!verify_webhook_signature(&other_secret, &body, &signature));
        let mut changed = body.clone();
        changed.push(b' ');
        prop_assert!(!verify_webhook_signature(&secret, &changed, &signature));
        if !body.is_empty() {
            let mut changed = body.clone();
            let at = position.index(changed.len());
            prop_assume!(changed[at] != replacement);
            changed[at] = replacement;
            prop_assert!(!verify_webhook_signature(&secret, &changed, &signature));
        }
    }
}
