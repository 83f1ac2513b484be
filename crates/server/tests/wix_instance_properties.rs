//! Properties of the Wix instance-token check: it never panics on any header value, a
//! token signed with the app secret verifies to what was signed, and changing any single
//! byte of it is refused (except the two base64 alphabet swaps Wix's verifier allows).

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use server::auth::wix_instance::{verify, InstanceError};
use testkit::wix::{sign_instance, InstanceClaims};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn claims() -> impl Strategy<Value = InstanceClaims> {
    (
        "[A-Za-z0-9-]{1,40}",
        "\\PC{0,30}",
        prop::option::of("[a-f0-9-]{0,36}"),
        -200i64..=0,
        1i64..=600,
    )
        .prop_map(|(instance_id, app_def_id, vendor, signed_ago, lifetime)| {
            let sign_date = now() + Duration::minutes(signed_ago);
            InstanceClaims {
                instance_id,
                app_def_id,
                sign_date,
                expiration: sign_date + Duration::minutes(lifetime.max(-signed_ago + 1)),
                vendor_product_id: vendor,
            }
        })
}

/// Byte swaps the verifier treats as the same signature: Wix's example verifier maps the
/// standard base64 alphabet onto the URL-safe one before comparing.
fn equivalent_in_signature(original: u8, replacement: u8) -> bool {
    matches!(
        (original, replacement),
        (b'-', b'+') | (b'_', b'/') | (b'+', b'-') | (b'/', b'_')
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_headers_never_panic(token in "\\PC{0,200}", secret in "\\PC{0,40}") {
        let _ = verify(&token, &secret, None, now());
        let _ = verify(&token, &secret, Some("app"), now());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let token = String::from_utf8_lossy(&bytes);
        let _ = verify(&token, "secret", None, now());
    }

    #[test]
    fn signed_instances_round_trip(claims in claims(), secret in "\\PC{1,40}") {
        let token = sign_instance(&claims, &secret);
        let instance = verify(&token, &secret, Some(&claims.app_def_id), now());
        let instance = match instance {
            Ok(instance) => instance,
            Err(err) => return Err(TestCaseError::fail(format!("{err:?} for {token}"))),
        };
        prop_assert_eq!(&instance.instance_id, &claims.instance_id);
        prop_assert_eq!(instance.app_def_id.as_deref(), Some(claims.app_def_id.as_str()));
        prop_assert_eq!(
            instance.vendor_product_id,
            claims.vendor_product_id.filter(|id| !id.is_empty())
        );
        prop_assert!(instance.is_owner);
        prop_assert_eq!(
            instance.expires_at.timestamp_millis(),
            claims.expiration.timestamp_millis()
        );
        prop_assert_eq!(
            verify(&token, &format!("{secret}x"), None, now()),
            Err(InstanceError::BadSignature)
        );
    }

    #[test]
    fn any_single_byte_change_is_refused(
        claims in claims(),
        position in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let secret = "c8175096-0c39-4adc-9c93-2eccf3c9f6d5";
        let token = sign_instance(&claims, secret);
        let mut bytes = token.clone().into_bytes();
        let at = position.index(bytes.len());
        let original = bytes[at];
        prop_assume!(original != replacement);
        bytes[at] = replacement;
        // A header that is not UTF-8 never reaches the check.
        let Ok(changed) = String::from_utf8(bytes) else { return Ok(()) };
        let in_signature = at < token.find('.').unwrap_or(0);
        let result = verify(&changed, secret, None, now());
        if in_signature && equivalent_in_signature(original, replacement) {
            prop_assert!(result.is_ok(), "{changed}");
        } else {
            prop_assert!(result.is_err(), "accepted {changed:?} (byte {at})");
        }
    }
}
