//! Properties of Wix webhook decoding: no body panics the verifier, a body signed with the
//! app's key decodes to exactly the event that was signed, and any single changed byte of
//! a signed body is refused.

use billing::{WixEventKind, WixWebhookVerifier};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;
use testkit::wix::{webhook_envelope, webhook_token, WebhookKey, WEBHOOK_PUBLIC_KEY};

fn verifier() -> WixWebhookVerifier {
    WixWebhookVerifier::new(WEBHOOK_PUBLIC_KEY).unwrap()
}

fn event_type() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "AppInstalled",
            "AppRemoved",
            "PaidPlanPurchased",
            "PaidPlanChanged",
            "PaidPlanAutoRenewalCancelled",
            "PlanConvertedToPaid",
            "PlanReactivated",
            "PlanTransferred",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z.]{1,30}",
    ]
}

fn signed_body(instance_id: &str, event_type: &str, payload: &serde_json::Value) -> String {
    let iat = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .unwrap()
        .timestamp();
    webhook_token(
        &json!({
            "data": webhook_envelope(instance_id, event_type, payload),
            "iat": iat,
            "exp": iat + 300,
        }),
        WebhookKey::App,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_never_panic(body in "\\PC{0,400}") {
        let _ = verifier().verify(&body, Utc::now());
    }

    #[test]
    fn jwt_shaped_garbage_never_panics(
        parts in prop::collection::vec("[A-Za-z0-9_=+/-]{0,80}", 1..5),
    ) {
        let _ = verifier().verify(&parts.join("."), Utc::now());
    }

    #[test]
    fn signed_events_decode_to_what_was_signed(
        instance_id in "[a-f0-9-]{1,36}",
        event_type in event_type(),
        plan in "\\PC{0,20}",
        count in any::<i64>(),
    ) {
        let payload = json!({"vendorProductId": plan, "count": count});
        let body = signed_body(&instance_id, &event_type, &payload);
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 1, 0).unwrap();
        let event = verifier().verify(&body, now).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&event.instance_id, &instance_id);
        prop_assert_eq!(&event.event_type, &event_type);
        prop_assert_eq!(&event.payload, &payload);
        if let WixEventKind::Other(other) = &event.kind {
            prop_assert_eq!(other, &event_type);
        }
    }

    #[test]
    fn any_single_byte_change_is_refused(
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let body = signed_body("8e9d6b70", "PaidPlanPurchased", &json!({"cycle": "MONTHLY"}));
        let mut bytes = body.clone().into_bytes();
        let at = position.index(bytes.len());
        prop_assume!(bytes[at] != replacement);
        bytes[at] = replacement;
        let Ok(changed) = String::from_utf8(bytes) else { return Ok(()) };
        // Leading and trailing whitespace around the token is not part of it.
        prop_assume!(changed.trim() != body);
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 1, 0).unwrap();
        prop_assert!(verifier().verify(&changed, now).is_err(), "accepted byte {} changed", at);
    }
}
